"""The Kubernetes source against a fake API server (HTTPS, bearer tokens, chunked watches):
every k8s.* signal, cert.expiry from cert-manager Certificates (and a cluster without their
CRD, or without the RBAC to read them, that stays healthy), relists after expiry (in-stream
ERROR and HTTP 410), token rotation,
the API going down and coming back, kubeconfig access with a client certificate and with an
exec plugin, and end to end: a rollout, crash-looping pods and a page rank "bad deploy"
first in #operations with the rollback command for the right deployment."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import time
import unittest
from datetime import datetime

import fake_kubernetes as k8s
import harness
import pagerduty
from harness import wait_for

NS = "darklang"
DEPLOY = "bwdserver-deployment"
HASH = "7d9f5c6b8"
TOKEN = "sa-token-" + harness.unique_token(20)


def daemon_overrides(extra: dict | None = None) -> dict:
    return harness.deep_merge({
        "log": {"level": "debug"},  # "signal" lines
        "operations": {"edit_interval": "0s"},
        "services": {harness.SERVICE_ID: {"kubernetes": [f"{NS}/{DEPLOY}"]}},
    }, extra or {})


def seed(fake: k8s.FakeKubernetes) -> None:
    """A healthy cluster: the service's deployment with two running pods, its ConfigMap and
    two nodes on one kubelet version."""
    fake.set_version("v1.29.4-gke.1043002")
    fake.apply("deployments", k8s.deployment(NS, DEPLOY, "gcr.io/dark/bwd:9c1e", revision="41"))
    for suffix in ("a1b2c", "d3e4f"):
        fake.apply("pods", k8s.pod(NS, f"{DEPLOY}-{HASH}-{suffix}", DEPLOY, HASH,
                                   containers=[k8s.container_status("bwdserver-ctr")]))
    fake.apply("configmaps", k8s.configmap(NS, "bwd-config", {"MODE": "a"}))
    fake.apply("nodes", k8s.node("gke-prod-pool-1-aaaa", "v1.29.3-gke.100"))
    fake.apply("nodes", k8s.node("gke-prod-pool-1-bbbb", "v1.29.3-gke.100"))


class ClusterRig(harness.SourceRig):
    """A fake API server, a service-account directory, and a daemon watching in-cluster."""

    def __init__(self, name: str, extra: dict | None = None):
        pki = harness.test_pki()
        self.fake = k8s.FakeKubernetes(pki.server_cert, pki.server_key, tokens=(TOKEN,)).start()
        seed(self.fake)
        self.rig = harness.DaemonWithDiscord(daemon_overrides(extra), name=name)
        self.sa_dir = os.path.join(self.rig.tmp, "serviceaccount")
        os.makedirs(self.sa_dir)
        self.write_token(TOKEN)
        shutil.copy(pki.ca_cert, os.path.join(self.sa_dir, "ca.crt"))
        with open(os.path.join(self.sa_dir, "namespace"), "w") as f:
            f.write("runbookd\n")
        self.rig.config["kubernetes"] = harness.deep_merge({
            "enabled": True, "service_account_dir": self.sa_dir, "version_interval": "1s",
        }, (extra or {}).get("kubernetes", {}))
        with open(self.rig.daemon.config_path, "w") as f:
            f.write(harness.to_yaml(self.rig.config) + "\n")

    def write_token(self, token: str) -> None:
        path = os.path.join(self.sa_dir, "token")
        with open(path + ".new", "w") as f:
            f.write(token)
        os.replace(path + ".new", path)  # as the kubelet rotates it: a new file in place

    def start(self) -> "ClusterRig":
        self.rig.start(env={"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                            "KUBERNETES_SERVICE_PORT": str(self.fake.port)})
        return self

    def close(self) -> None:
        try:
            self.rig.stop()
        finally:
            self.rig.close()
            self.fake.stop()

    def diagnostics(self) -> str:
        reqs = self.fake.snapshot_requests()[-12:]
        lines = [f"{r.method} {r.path}?{'&'.join(f'{k}={v}' for k, v in r.query.items())} -> {r.status}"
                 for r in reqs]
        return "--- fake Kubernetes requests (last 12) ---\n" + "\n".join(lines) + "\n" + self.rig.diagnostics()

    def statuses(self) -> list[dict]:
        return self.source_statuses("kubernetes")

    def wait_state(self, state: str, after: int = 0, timeout: float = 15) -> dict:
        return self.wait_source("kubernetes", state, after, timeout)

    def wait_summary(self, inc: pagerduty.Incident, what: str = "#operations summary"):
        """The #operations message whose summary names `inc`'s title."""
        self.wait_operations(inc, what=what, timeout=10)
        return next(m for m in self.rig.discord.snapshot_messages(self.rig.ops_id)
                    for e in m.embeds if inc.title in (e.get("description") or ""))



class KubernetesSignalsTests(unittest.TestCase):
    """One cluster and daemon for the signal tests; each test changes its own objects."""

    @classmethod
    def setUpClass(cls):
        cls.c = ClusterRig(cls.__name__).start()
        cls.c.wait_state("healthy")

    @classmethod
    def tearDownClass(cls):
        c = cls.c
        try:
            c.close()
        finally:
            c.daemon.assert_no_secret([TOKEN, *c.rig.tokens])
            c.daemon.assert_logs_well_formed()

    def test_lists_in_pages_then_watches_from_the_list_version_with_bookmarks(self):
        lists = self.c.fake.list_requests("pods")
        self.assertTrue(lists)
        self.assertEqual(lists[0].path, f"/api/v1/namespaces/{NS}/pods")  # from services.*.kubernetes
        self.assertEqual(lists[0].query.get("limit"), "500")
        self.assertEqual(lists[0].authorization, f"Bearer {TOKEN}")
        watches = self.c.fake.watch_requests("pods")
        self.assertTrue(watches)
        self.assertEqual(watches[0].query.get("allowWatchBookmarks"), "true")
        self.assertTrue(watches[0].query.get("resourceVersion"))
        self.assertGreaterEqual(int(watches[0].query["timeoutSeconds"]), 300)
        self.assertEqual(self.c.fake.watch_requests("events")[0].query.get("fieldSelector"), "type=Warning")
        self.assertEqual(self.c.metric("runbookd_kubernetes_up"), 1)
        for resource, ns in (("pods", NS), ("nodes", None)):
            held = len(self.c.fake.objects(resource, ns))
            wait_for(lambda: self.c.metric("runbookd_kubernetes_objects", resource=resource) == held, 10,
                     f"{held} {resource} held", diagnostics=self.c.diagnostics)
        # Everything requested is what deploy/kubernetes/rbac.yaml grants, and only reads.
        paths = {r.path for r in self.c.fake.snapshot_requests()}
        self.assertEqual({r.method for r in self.c.fake.snapshot_requests()}, {"GET"})
        self.assertEqual(paths, {f"/api/v1/namespaces/{NS}/pods", f"/api/v1/namespaces/{NS}/configmaps",
                                 f"/api/v1/namespaces/{NS}/events", f"/apis/apps/v1/namespaces/{NS}/deployments",
                                 f"/apis/apps/v1/namespaces/{NS}/replicasets",
                                 f"/apis/cert-manager.io/v1/namespaces/{NS}/certificates",
                                 "/api/v1/nodes", "/version"})

    def test_a_restart_and_a_crash_loop(self):
        name = f"{DEPLOY}-{HASH}-r1r1r"
        self.c.fake.apply("pods", k8s.pod(NS, name, DEPLOY, HASH, containers=[k8s.container_status("bwdserver-ctr")]))
        self.c.fake.apply("pods", k8s.pod(NS, name, DEPLOY, HASH, containers=[k8s.container_status(
            "bwdserver-ctr", restarts=1, waiting="CrashLoopBackOff", waiting_message="back-off 10s",
            last_terminated={"reason": "OOMKilled", "exitCode": 137, "finishedAt": k8s.rfc3339()})]))
        restart = self.c.wait_signal("k8s.restart", subject=name)
        self.assertEqual(restart["source"], "kubernetes")
        self.c.wait_signal("k8s.waiting", subject=name)

    def test_a_rollout_a_spec_change_and_a_stuck_rollout(self):
        name = "rollout-test"
        self.c.fake.apply("deployments", k8s.deployment(NS, name, "img:1"))
        self.c.fake.apply("deployments", k8s.deployment(NS, name, "img:2", generation=2, revision="2"))
        self.c.wait_signal("k8s.rollout", subject=name)
        self.c.fake.apply("deployments", k8s.deployment(
            NS, name, "img:2", generation=3, revision="2",
            extra_spec={"template": {"metadata": {"annotations": {"x": "y"}}}, "minReadySeconds": 5}))
        self.c.wait_signal("k8s.config_change", subject=name)
        self.c.fake.apply("deployments", k8s.deployment(NS, name, "img:2", generation=3, revision="2",
                                                         progressing_reason="ProgressDeadlineExceeded"))
        self.c.wait_signal("k8s.rollout_stuck", subject=name)

    def test_a_configmap_data_change(self):
        self.c.fake.apply("configmaps", k8s.configmap(NS, "flags", {"A": "1"}))
        self.c.fake.apply("configmaps", k8s.configmap(NS, "flags", {"A": "1"}, labels={"x": "y"}))
        self.c.fake.apply("configmaps", k8s.configmap(NS, "flags", {"A": "2"}))
        self.c.wait_signal("k8s.config_change", subject="flags")
        self.assertEqual(len(self.c.signals("k8s.config_change", subject="flags")), 1)  # a label is no change

    def test_a_warning_event(self):
        self.c.fake.apply("events", k8s.warning_event(NS, "ev-unhealthy", "Unhealthy", "Readiness probe failed",
                                                      involved_name="some-pod"))
        self.c.wait_signal("k8s.warning", subject="some-pod")

    def test_node_and_control_plane_upgrades(self):
        self.c.fake.apply("nodes", k8s.node("gke-prod-pool-1-aaaa", "v1.29.3-gke.100", unschedulable=True))
        self.c.wait_signal("k8s.version_change", subject="node/gke-prod-pool-1-aaaa")
        self.c.fake.apply("nodes", k8s.node("gke-prod-pool-2-cccc", "v1.30.1-gke.200"))
        self.c.wait_signal("k8s.version_change", subject="node/gke-prod-pool-2-cccc")
        self.c.fake.set_version("v1.30.1-gke.200")
        self.c.wait_signal("k8s.version_change", subject="control-plane")

    def test_an_expired_certificate_and_its_renewal(self):
        name = "expired-tls"
        subject = f"{NS}/{name}"
        became_unready = k8s.rfc3339(time.time() - 60)
        self.c.fake.apply("certificates", k8s.certificate(
            NS, name, ["darklang.com", "www.darklang.com"], not_after=k8s.rfc3339(time.time() - 3600),
            ready=False, ready_since=became_unready))
        sig = self.c.wait_signal("cert.expiry", subject=subject)
        self.assertEqual(sig["source"], "kubernetes")
        self.assertLess(sig["value"], -3500)  # seconds until notAfter: an hour past
        self.assertGreater(sig["value"], -3600 - 120)
        self.assertEqual(parse_time(sig["at"]), parse_time(became_unready))  # when Ready turned False
        expect = {"host": "darklang.com", "port": "", "outcome": "expired", "which": "leaf",
                  "cert_subject": subject, "sans": "darklang.com,www.darklang.com", "services": "",
                  "expires_soon": "false", "issuer": "ClusterIssuer/letsencrypt-prod"}
        for key, want in expect.items():
            self.assertEqual(label(sig, key), want, f"{key}: {sig}")
        self.assertRegex(label(sig, "error"), r"^Ready False: Expired: Certificate expired on ")
        self.assertTrue(label(sig, "not_after"))
        # Renewed: notAfter moves and Ready turns True; another signal, now positive.
        self.c.fake.apply("certificates", k8s.certificate(
            NS, name, ["darklang.com", "www.darklang.com"], not_after=k8s.rfc3339(time.time() + 90 * 86400)))
        renewed = self.c.wait_signal("cert.expiry", subject=subject, where=lambda e: e.get("value", 0) > 0)
        self.assertGreater(renewed["value"], 89 * 86400)
        self.assertEqual(label(renewed, "outcome"), "ok")
        self.assertEqual(label(renewed, "error"), "")
        self.assertEqual(self.c.metric("runbookd_kubernetes_objects", resource="certificates"),
                         len(self.c.fake.objects("certificates", NS)))

    def test_a_bookmark_moves_the_resume_point(self):
        wait_for(lambda: self.c.fake.open_watches("pods"), 10, "a pods watch")
        bookmarks = self.c.metric("runbookd_kubernetes_watch_events_total", resource="pods", type="BOOKMARK")
        self.c.fake.apply("configmaps", k8s.configmap(NS, "unrelated", {"a": "1"}))  # pods' last RV falls behind
        bookmark_rv = self.c.fake.resource_version
        self.assertGreater(self.c.fake.send_bookmark("pods"), 0)
        wait_for(lambda: self.c.metric("runbookd_kubernetes_watch_events_total", resource="pods",
                                       type="BOOKMARK") > bookmarks, 10, "the bookmark read")
        self.c.fake.drop_watches()
        wait_for(lambda: any(r.query.get("resourceVersion") == bookmark_rv for r in self.c.fake.watch_requests("pods")),
                 10, f"a pods watch resumed from the bookmark's {bookmark_rv}", diagnostics=self.c.diagnostics)

    def test_relist_after_an_expired_version_reports_what_changed_meanwhile(self):
        name = f"{DEPLOY}-{HASH}-relst"
        self.c.fake.apply("pods", k8s.pod(NS, name, DEPLOY, HASH, containers=[k8s.container_status("bwdserver-ctr")]))
        held = len(self.c.fake.objects("pods", NS))
        wait_for(lambda: self.c.metric("runbookd_kubernetes_objects", resource="pods") == held, 10,
                 f"{held} pods held", diagnostics=self.c.diagnostics)
        before = self.c.metric("runbookd_kubernetes_relists_total", resource="pods")
        for mode in ("event", "http"):
            with self.subTest(mode=mode):
                lists = len(self.c.fake.list_requests("pods"))
                self.c.fake.expiry_mode = mode
                # The pod restarts while nobody can see; history is compacted; the watch drops.
                self.c.fake.drop_watches()
                self.c.fake.apply("pods", k8s.pod(NS, name, DEPLOY, HASH, containers=[k8s.container_status(
                    "bwdserver-ctr", restarts=1 if mode == "event" else 2,
                    last_terminated={"reason": "Error", "exitCode": 1, "finishedAt": k8s.rfc3339()})]))
                self.c.fake.compact()
                wait_for(lambda: len(self.c.fake.list_requests("pods")) > lists, 10, "a relist",
                         diagnostics=self.c.diagnostics)
                wait_for(lambda: len(self.c.signals("k8s.restart", subject=name)) >= (1 if mode == "event" else 2),
                         10, "the restart found by the relist", diagnostics=self.c.diagnostics)
        self.assertEqual(self.c.metric("runbookd_kubernetes_relists_total", resource="pods"), before + 2)
        self.c.fake.expiry_mode = "event"


def parse_time(text: str) -> datetime:
    """RFC 3339 (`Z`, with or without fractions) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def label(sig: dict, name: str):
    """A label of a signal log line: a field of its own, or under `labels`; None when absent."""
    if isinstance(sig.get("labels"), dict):
        return sig["labels"].get(name)
    return sig.get(name)


class KubernetesWithoutCertManagerTests(unittest.TestCase):
    """A cluster without cert-manager's CRD, and one whose RBAC does not grant Certificates:
    the source says so once, keeps watching the rest, and stays healthy."""

    def run_rig(self, prepare) -> ClusterRig:
        c = ClusterRig(self.id().split(".")[-1])
        prepare(c.fake)
        self.addCleanup(c.close)
        return c.start()

    def assert_healthy_throughout(self, c: ClusterRig) -> None:
        c.wait_state("healthy")
        # A change elsewhere goes through: the other watches are up.
        c.fake.apply("events", k8s.warning_event(NS, "ev-after", "Unhealthy", "probe failed",
                                                 involved_name="after-pod"))
        c.wait_signal("k8s.warning", subject="after-pod")
        self.assertEqual(c.metric("runbookd_kubernetes_up"), 1)
        statuses = c.statuses()
        self.assertEqual([s["state"] for s in statuses][-1], "healthy")
        for s in statuses:
            self.assertNotIn("certificates", s["error"], s)
        self.assertIsNone(c.daemon.find_log(lambda e: e.get("msg") == "kubernetes source failing"))
        # Asked once, not again and again (the next look is minutes away).
        self.assertEqual(len(c.fake.list_requests("certificates")), 1)
        self.assertEqual(c.fake.watch_requests("certificates"), [])
        self.assertEqual(c.metric("runbookd_kubernetes_errors_total", resource="certificates"), 0)

    def test_without_the_crd_it_is_said_once_and_the_source_stays_healthy(self):
        c = self.run_rig(lambda fake: setattr(fake, "certificate_crd", False))
        self.assert_healthy_throughout(c)
        said = [e for e in c.daemon.snapshot_logs()
                if e.get("msg") == "cert-manager Certificates not found; not watching them"]
        self.assertEqual(len(said), 1, said)
        self.assertEqual(said[0]["level"], "info")
        self.assertEqual(c.fake.list_requests("certificates")[0].status, 404)
        self.assertEqual(c.signals("cert.expiry"), [])

    def test_forbidden_is_a_warning_once_and_the_source_stays_healthy(self):
        c = self.run_rig(lambda fake: fake.forbid("certificates"))
        self.assert_healthy_throughout(c)
        said = [e for e in c.daemon.snapshot_logs()
                if e.get("msg") == "cert-manager Certificates forbidden; not watching them"]
        self.assertEqual(len(said), 1, said)
        self.assertEqual(said[0]["level"], "warn")
        self.assertEqual((said[0]["verb"], said[0]["resource"]), ("list", "certificates.cert-manager.io"))
        self.assertIn('cannot list resource "certificates" in API group "cert-manager.io"', said[0]["error"])


class KubernetesOutageTests(unittest.TestCase):
    """Token rotation, the API down, and a page during the outage."""

    @classmethod
    def setUpClass(cls):
        cls.c = ClusterRig(cls.__name__).start()
        cls.c.wait_state("healthy")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.c.close()
        finally:
            cls.c.daemon.assert_no_secret([TOKEN, "rotated-" + TOKEN])

    def test_1_a_rotated_token_is_read_again_after_a_401(self):
        rotated = "rotated-" + TOKEN
        self.c.fake.tokens.clear()
        self.c.fake.tokens.add(rotated)
        self.c.write_token(rotated)
        mark = len(self.c.statuses())
        self.c.fake.drop_watches()  # the reconnect carries the old token: 401
        wait_for(lambda: any(r.authorization == f"Bearer {rotated}" and r.status == 200
                             for r in self.c.fake.snapshot_requests()), 15, "a request with the rotated token",
                 diagnostics=self.c.diagnostics)
        self.assertTrue(any(r.status == 401 for r in self.c.fake.snapshot_requests()))
        failing = self.c.wait_state("failing", mark)
        self.assertIn("unauthorized (401)", failing["error"])
        self.c.wait_state("healthy", mark + 1)

    def test_2_the_api_down_is_not_checkable_then_recovers(self):
        mark = len(self.c.statuses())
        errors_before = self.c.metric("runbookd_kubernetes_errors_total")  # summed over resources
        self.c.fake.down = True
        failing = self.c.wait_state("failing", mark)
        self.assertTrue(self.c.daemon.alive())
        self.assertEqual(self.c.metric("runbookd_kubernetes_up"), 0)
        self.assertGreater(self.c.metric("runbookd_kubernetes_errors_total"), errors_before)
        # A page now: the #operations summary says the Kubernetes rules cannot be checked.
        inc = self.c.rig.trigger(pagerduty.Incident(service_name=harness.SERVICE_NAME))
        summary = self.c.wait_summary(inc)
        text = summary.embeds[0]["description"]
        self.assertIn("the kubernetes source is failing", text, text)
        self.c.fake.down = False
        self.c.wait_state("healthy", mark + 1, timeout=45)  # backoff is at most 30 s
        self.assertEqual(self.c.metric("runbookd_kubernetes_up"), 1)


class KubernetesEndToEndTests(unittest.TestCase):
    """A rollout, then crash-looping pods, then the page."""

    def test_a_bad_rollout_ranks_bad_deploy_first_with_its_rollback(self):
        # The service names its workload by a label selector of its pods, resolved by the
        # source to the Deployment (and any other: "api" carries other labels).
        c = ClusterRig(type(self).__name__, {
            "services": {harness.SERVICE_ID: {"kubernetes": [f"{NS}/app={DEPLOY}"]}}}).start()
        try:
            c.fake.apply("deployments", k8s.deployment(NS, "api", "gcr.io/dark/api:1"))
            c.wait_state("healthy")
            c.daemon.wait_log(lambda e: e.get("msg") == "service workloads changed", 10, "selector resolved")
            new_hash = "5f6a7b8c9"
            c.fake.apply("replicasets", k8s.replicaset(NS, DEPLOY, new_hash, "42", "gcr.io/dark/bwd:4f2a",
                                                       container="bwdserver-ctr"))
            c.fake.apply("deployments", k8s.deployment(
                NS, DEPLOY, "gcr.io/dark/bwd:4f2a", generation=2, observed_generation=2, revision="42",
                updated=1, available=1, progressing_reason="ReplicaSetUpdated"))
            for i, suffix in enumerate(("x2x4q", "p9z8k")):
                c.fake.apply("pods", k8s.pod(NS, f"{DEPLOY}-{new_hash}-{suffix}", DEPLOY, new_hash, containers=[
                    k8s.container_status("bwdserver-ctr", restarts=3 + i, waiting="CrashLoopBackOff",
                                         waiting_message="back-off 40s restarting failed container",
                                         image="gcr.io/dark/bwd:4f2a",
                                         last_terminated={"reason": "Error", "exitCode": 1,
                                                          "finishedAt": k8s.rfc3339()})]))
            rollout = c.wait_signal("k8s.rollout", subject=DEPLOY, where=lambda e: label(e, "revision") == "42")
            waiting = c.wait_signal("k8s.waiting", subject=f"{DEPLOY}-{new_hash}-p9z8k")
            # The crash loop names the ReplicaSet the rollout created, and the node it runs on.
            self.assertEqual(label(rollout, "replicaset"), f"{DEPLOY}-{new_hash}")
            self.assertEqual(label(waiting, "replicaset"), f"{DEPLOY}-{new_hash}")
            self.assertEqual(label(waiting, "node"), k8s.DEFAULT_NODE)
            inc = c.rig.trigger(pagerduty.Incident(title="Editor returns 502s", service_name=harness.SERVICE_NAME))
            summary = c.wait_summary(inc)
            text = summary.embeds[0]["description"]
            first = text.index("Bad or broken code got deployed")
            for other in ("Bad or broken Kubernetes configuration", "won't restart"):
                if other in text:
                    self.assertLess(first, text.index(other), text)
            self.assertIn(f"kubectl rollout undo -n {NS} deploy/{DEPLOY}", text)
            self.assertIn("gcr.io/dark/bwd:4f2a", text)
            self.assertIn("CrashLoopBackOff", text)
            self.assertNotIn("kubernetes source is", text)  # checked, not "not checkable"
            # A rollout of a deployment the selector does not pick is no evidence.
            c.fake.apply("deployments", k8s.deployment(NS, "api", "gcr.io/dark/api:2", generation=2))
            c.wait_signal("k8s.rollout", subject="api")
            again = c.rig.trigger(pagerduty.Incident(title="Editor still returns 502s",
                                                     service_name=harness.SERVICE_NAME))
            second = c.wait_summary(again, "the second #operations summary")
            self.assertIn("gcr.io/dark/bwd:4f2a", second.embeds[0]["description"])
            self.assertNotIn("gcr.io/dark/api:2", second.embeds[0]["description"])
        finally:
            c.close()


class KubernetesHistoryTests(unittest.TestCase):
    """The daemon started after the changes were made: a rollout three hours ago and an edit,
    ten minutes ago, of a ConfigMap the paged service's Deployment mounts. Both are read from
    the objects at their own times, not as if they had just happened."""

    def test_changes_made_before_the_start_keep_their_time_and_the_ranking_follows(self):
        c = ClusterRig(type(self).__name__)
        try:
            now = time.time()
            rolled_at, edited_at = k8s.rfc3339(now - 3 * 3600), k8s.rfc3339(now - 600)
            old_hash, new_hash = "77c4d9f5b", "5f6a7b8c9"
            c.fake.apply("replicasets", k8s.replicaset(NS, DEPLOY, old_hash, "41", "gcr.io/dark/bwd:9c1e",
                                                       created=k8s.rfc3339(now - 6 * 86400),
                                                       container="bwdserver-ctr"))
            c.fake.apply("replicasets", k8s.replicaset(NS, DEPLOY, new_hash, "42", "gcr.io/dark/bwd:4f2a",
                                                       created=rolled_at, container="bwdserver-ctr"))
            c.fake.apply("deployments", k8s.deployment(
                NS, DEPLOY, "gcr.io/dark/bwd:4f2a", generation=2, revision="42",
                containers=[{"name": "bwdserver-ctr", "image": "gcr.io/dark/bwd:4f2a"}],
                managers=[("kubectl-client-side-apply", "Update", rolled_at),
                          ("kube-controller-manager", "Update", k8s.rfc3339(now - 60), "status")],
                extra_spec={"template": {"spec": {"volumes": [
                    {"name": "config", "configMap": {"name": "bwd-config", "defaultMode": 420}}]}}}))
            for suffix in ("k2m4p", "q7r8s"):
                c.fake.apply("pods", k8s.pod(NS, f"{DEPLOY}-{new_hash}-{suffix}", DEPLOY, new_hash,
                                             containers=[k8s.container_status("bwdserver-ctr",
                                                                              image="gcr.io/dark/bwd:4f2a")]))
            # Created a day before its edit by the seed; edited (data) ten minutes ago.
            c.fake.apply("configmaps", k8s.configmap(NS, "bwd-config", {"MODE": "b"}, time=edited_at))
            c.start()
            c.wait_state("healthy")

            rollout = c.wait_signal("k8s.rollout", where=lambda e: label(e, "revision") == "42")
            self.assertEqual(parse_time(rollout["at"]), parse_time(rolled_at))  # its ReplicaSet's creation
            self.assertEqual(label(rollout, "replicaset"), f"{DEPLOY}-{new_hash}")
            self.assertEqual(label(rollout, "previous_image"), "gcr.io/dark/bwd:9c1e")
            change = c.wait_signal("k8s.config_change", where=lambda e: label(e, "object") == "cm/bwd-config")
            self.assertEqual(parse_time(change["at"]), parse_time(edited_at))
            self.assertEqual(label(change, "deployment"), DEPLOY)  # through the Deployment's volume

            inc = c.rig.trigger(pagerduty.Incident(title="Editor fails to save", service_name=harness.SERVICE_NAME))
            summary = c.wait_summary(inc)
            text = summary.embeds[0]["description"]
            # The edit is evidence for the service, at its age; nothing claims to be seconds old.
            # (Discord markdown: the post escapes parentheses.)
            self.assertIn(r"ConfigMap cm/bwd-config changed in darklang \(by kubectl-edit\) 10m before the alert",
                          text)
            self.assertNotRegex(text, r"\b\d+s before the alert")
            # The three-hour-old rollout is not the top suspect: the recent edit is. It is
            # outside bad-deploy's 2h window, so no suspect rests on it.
            self.assertIn("**1. Bad or broken Kubernetes configuration was set", text)
            self.assertNotRegex(text, r"\*\*\d\. Bad or broken code got deployed")
            self.assertNotIn("rolled out gcr.io/dark/bwd:4f2a", text)
        finally:
            c.close()


class KubernetesNodeUpgradeTests(unittest.TestCase):
    """A node upgrade: one node cordoned, a replacement on a new kubelet version, and the
    service's pods restarting on the new node. The restarts name the node, so the rules
    count them as the upgrade's (the node-change effect), not as a server that won't restart."""

    def test_restarts_on_a_replaced_node_are_the_upgrades(self):
        c = ClusterRig(type(self).__name__).start()
        try:
            c.wait_state("healthy")
            new_node = "gke-prod-pool-2-cccc"
            c.fake.apply("nodes", k8s.node("gke-prod-pool-1-aaaa", "v1.29.3-gke.100", unschedulable=True))
            c.fake.apply("nodes", k8s.node(new_node, "v1.30.1-gke.200", created=k8s.rfc3339()))
            cordon = c.wait_signal("k8s.node", where=lambda e: label(e, "change") == "cordoned")
            self.assertEqual(label(cordon, "node"), "gke-prod-pool-1-aaaa")
            c.wait_signal("k8s.version_change", where=lambda e: label(e, "node") == new_node)
            for suffix in ("n3w1a", "n3w2b"):
                name = f"{DEPLOY}-{HASH}-{suffix}"
                c.fake.apply("pods", k8s.pod(NS, name, DEPLOY, HASH, node_name=new_node,
                                             containers=[k8s.container_status("bwdserver-ctr")]))
                c.fake.apply("pods", k8s.pod(NS, name, DEPLOY, HASH, node_name=new_node, containers=[
                    k8s.container_status("bwdserver-ctr", restarts=2, last_terminated={
                        "reason": "Error", "exitCode": 1, "finishedAt": k8s.rfc3339()})]))
                restart = c.wait_signal("k8s.restart", subject=name)
                self.assertEqual(label(restart, "node"), new_node)
            inc = c.rig.trigger(pagerduty.Incident(title="Editor is slow", service_name=harness.SERVICE_NAME))
            text = c.wait_summary(inc).embeds[0]["description"]
            self.assertIn("2 restarts on nodes replaced by the upgrade", text, text)
            # ...and the upgrade, not a server that won't restart on its own, comes first.
            self.assertIn("**1. GKE upgraded Kubernetes from beneath our feet", text, text)
        finally:
            c.close()


class KubeconfigTests(unittest.TestCase):
    """Out of a cluster: a kubeconfig with a client certificate, and one with an exec plugin."""

    def run_with(self, user: dict, client_ca: bool, tokens=("exec-token",)) -> tuple[k8s.FakeKubernetes, harness.DaemonWithDiscord]:
        pki = harness.test_pki()
        fake = k8s.FakeKubernetes(pki.server_cert, pki.server_key, tokens=tokens,
                                  client_ca_file=pki.ca_cert if client_ca else None).start()
        seed(fake)
        rig = harness.DaemonWithDiscord(daemon_overrides(), name=self.id().split(".")[-1])
        with open(pki.ca_cert, "rb") as f:
            ca_data = base64.b64encode(f.read()).decode()
        kubeconfig = os.path.join(rig.tmp, "kubeconfig")
        with open(kubeconfig, "w") as f:  # JSON is YAML
            json.dump({
                "apiVersion": "v1", "kind": "Config", "current-context": "test",
                "clusters": [{"name": "fake", "cluster": {"server": fake.url, "certificate-authority-data": ca_data}}],
                "contexts": [{"name": "test", "context": {"cluster": "fake", "user": "me", "namespace": NS}}],
                "users": [{"name": "me", "user": user}],
            }, f)
        rig.config["kubernetes"] = {"enabled": True, "kubeconfig": kubeconfig, "nodes": False}
        with open(rig.daemon.config_path, "w") as f:
            f.write(harness.to_yaml(rig.config) + "\n")
        rig.start()
        return fake, rig

    def wait_listed(self, fake, rig) -> None:
        wait_for(lambda: rig.daemon.find_log(lambda e: e.get("msg") == "source status" and e.get("state") == "healthy"),
                 15, "the kubernetes source healthy", diagnostics=rig.diagnostics)
        self.assertTrue(fake.list_requests("deployments"))

    def test_a_client_certificate(self):
        pki = harness.test_pki()
        tmp = harness.make_tempdir()
        try:
            cert, key = k8s.issue_client_cert(pki.ca_cert, pki.ca_key, tmp, cn="runbookd")
            fake, rig = self.run_with({"client-certificate": cert, "client-key": key}, client_ca=True, tokens=())
            try:
                self.wait_listed(fake, rig)
                self.assertTrue(all(r.client_cert and not r.authorization for r in fake.snapshot_requests()))
            finally:
                rig.stop()
                fake.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_an_exec_plugin(self):
        tmp = harness.make_tempdir()
        try:
            plugin = os.path.join(tmp, "auth-plugin")
            with open(plugin, "w") as f:
                f.write("#!/bin/sh\n"
                        "case \"$KUBERNETES_EXEC_INFO\" in *'\"kind\":\"ExecCredential\"'*) ;; *) exit 2;; esac\n"
                        "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\","
                        "\"status\":{\"token\":\"exec-token\",\"expirationTimestamp\":\"2099-01-01T00:00:00Z\"}}'\n")
            os.chmod(plugin, stat.S_IRWXU)
            fake, rig = self.run_with({"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                                                "command": plugin, "provideClusterInfo": True,
                                                "interactiveMode": "Never"}}, client_ca=False)
            try:
                self.wait_listed(fake, rig)
                self.assertTrue(all(r.authorization == "Bearer exec-token" for r in fake.snapshot_requests()))
                rig.daemon.assert_no_secret(["exec-token"])
            finally:
                rig.stop()
                fake.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
