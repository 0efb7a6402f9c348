"""deploy/: `kubectl kustomize deploy/` renders, RBAC grants only what the Kubernetes
source reads (get/list/watch), the ConfigMap's configuration passes check-config, and the
state directory is on a volume only one pod holds."""

from __future__ import annotations

import os
import shutil
import subprocess
import unittest

import yaml

import harness

DEPLOY = os.path.join(harness.REPO, "deploy")

# What daemon/sources/kubernetes/source.cpp lists and watches, by API group.
NAMESPACED_READS = {("", "pods"), ("", "configmaps"), ("", "events"), ("apps", "deployments"),
                    ("apps", "replicasets"), ("cert-manager.io", "certificates")}
CLUSTER_READS = {("", "nodes")}


def render() -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise AssertionError("kubectl is missing: scripts/install-deps installs kubernetes-client")
    out = subprocess.run([kubectl, "kustomize", DEPLOY], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize deploy/ failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


class DeployTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = render()

    def of_kind(self, kind: str) -> list[dict]:
        return [d for d in self.docs if d["kind"] == kind]

    def test_renders_every_object(self):
        kinds = sorted(d["kind"] for d in self.docs)
        self.assertEqual(kinds, sorted([
            "Namespace", "ServiceAccount", "ConfigMap", "Deployment", "Service", "PersistentVolumeClaim",
            "ClusterRole", "ClusterRole", "RoleBinding", "ClusterRoleBinding"]))
        deployment = self.of_kind("Deployment")[0]
        self.assertEqual(deployment["spec"]["template"]["spec"]["serviceAccountName"], "runbookd")
        for d in self.docs:
            if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
                self.assertIn("namespace", d["metadata"], d["kind"])

    def test_rbac_grants_only_reads_of_what_is_watched(self):
        granted: dict[str, set] = {}
        for role in self.of_kind("ClusterRole") + self.of_kind("Role"):
            pairs = set()
            for rule in role["rules"]:
                self.assertEqual(sorted(rule["verbs"]), ["get", "list", "watch"], role["metadata"]["name"])
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        self.assertNotIn("*", (group, resource))
                        pairs.add((group, resource))
            granted[role["metadata"]["name"]] = pairs
        # Workloads through RoleBindings (per namespace), nodes through the ClusterRoleBinding.
        bound_in_namespaces = {b["roleRef"]["name"] for b in self.of_kind("RoleBinding")}
        bound_cluster_wide = {b["roleRef"]["name"] for b in self.of_kind("ClusterRoleBinding")}
        self.assertEqual(set().union(*(granted[n] for n in bound_in_namespaces)), NAMESPACED_READS)
        self.assertEqual(set().union(*(granted[n] for n in bound_cluster_wide)), CLUSTER_READS)
        sa = self.of_kind("ServiceAccount")[0]["metadata"]
        for binding in self.of_kind("RoleBinding") + self.of_kind("ClusterRoleBinding"):
            self.assertEqual(binding["subjects"],
                             [{"kind": "ServiceAccount", "name": sa["name"], "namespace": sa["namespace"]}])

    def test_the_configmap_config_is_valid_and_watches_the_bound_namespaces(self):
        text = self.of_kind("ConfigMap")[0]["data"]["config.yaml"]
        workdir = harness.make_tempdir()
        secrets = os.path.join(workdir, "secrets")
        os.makedirs(secrets)
        files = {
            "pagerduty-webhook-secrets": "a-signing-secret-0123456789\n",
            "discord-status-webhook-url":
                "https://discord.com/api/webhooks/123456789012345678/statusTOKENabcdefghijklmnop0123456789\n",
        }
        for name, value in files.items():
            with open(os.path.join(secrets, name), "w") as f:
                f.write(value)
        path = os.path.join(workdir, "config.yaml")
        with open(path, "w") as f:
            f.write(text.replace("/etc/runbookd/secrets", secrets))
        out = subprocess.run([harness.require_binary(), "check-config", path],
                             capture_output=True, text=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        config = yaml.safe_load(text)
        self.assertTrue(config["kubernetes"]["enabled"])
        namespaces = {w.split("/")[0] for s in config["services"].values() for w in s.get("kubernetes", [])}
        bound = {b["metadata"]["namespace"] for b in self.of_kind("RoleBinding")}
        self.assertEqual(namespaces, bound, "each watched namespace needs its RoleBinding")

    def test_probes_and_scrapes_use_the_admin_listener(self):
        config = yaml.safe_load(self.of_kind("ConfigMap")[0]["data"]["config.yaml"])
        admin_port = int(config["server"]["admin_listen"].rsplit(":", 1)[1])
        pod = self.of_kind("Deployment")[0]["spec"]["template"]
        container = pod["spec"]["containers"][0]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        self.assertEqual(ports["admin"], admin_port)
        for probe in ("readinessProbe", "livenessProbe"):
            self.assertEqual(container[probe]["httpGet"]["port"], "admin", probe)
        self.assertEqual(pod["metadata"]["annotations"]["prometheus.io/port"], str(admin_port))
        # Only the webhook port is behind the Service.
        service_ports = {p["targetPort"] for p in self.of_kind("Service")[0]["spec"]["ports"]}
        self.assertEqual(service_ports, {"http"})

    def test_the_state_directory_is_on_a_claim_one_pod_at_a_time_can_write(self):
        config = yaml.safe_load(self.of_kind("ConfigMap")[0]["data"]["config.yaml"])
        state_dir = config["store"]["dir"]
        deployment = self.of_kind("Deployment")[0]["spec"]
        # Two pods must never share the journal (its lock would stop the second anyway).
        self.assertEqual(deployment["replicas"], 1)
        self.assertEqual(deployment["strategy"]["type"], "Recreate")
        pod = deployment["template"]["spec"]
        container = pod["containers"][0]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        self.assertIn(state_dir, mounts, "store.dir must be on the volume")
        self.assertFalse(mounts[state_dir].get("readOnly", False))
        volumes = {v["name"]: v for v in pod["volumes"]}
        claim_name = volumes[mounts[state_dir]["name"]]["persistentVolumeClaim"]["claimName"]
        claim = self.of_kind("PersistentVolumeClaim")[0]
        self.assertEqual(claim["metadata"]["name"], claim_name)
        self.assertEqual(claim["spec"]["accessModes"], ["ReadWriteOnce"])
        # The non-root user writes it; the root filesystem stays read-only.
        self.assertEqual(pod["securityContext"]["fsGroup"], pod["securityContext"]["runAsUser"])
        self.assertTrue(container["securityContext"]["readOnlyRootFilesystem"])


if __name__ == "__main__":
    unittest.main()
