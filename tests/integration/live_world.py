"""What the live scenarios share: a scenario of the corpus (tests/scenarios/*.yaml) read for
its services, its page, its timeline and its expected top cause; a Kubernetes world in the
fake API server built from that timeline (objects with their real past times); and a daemon
started against the world, paged, and read back from the first #operations summary.

A live scenario builds the world first, starts the daemon, waits for /readyz, pages it, and
reads the FIRST version of the first #operations summary (before any edit): what an
engineer reads when the page arrives.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Optional

import yaml

import fake_kubernetes as k8s
import harness
import pagerduty
from harness import wait_for
from test_probes import yaml_text

SCENARIOS = os.path.join(harness.REPO, "tests", "scenarios")
RULES = os.path.join(harness.REPO, "rules", "runbook.yaml")
K8S_TOKEN = "sa-token-" + harness.unique_token(20)
SUMMARY_TIMEOUT = 20  # bounded: the page-time gathering's deadline is 3 s by default

_DURATION = re.compile(r"^(-)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def seconds(text: Any) -> int:
    """A scenario duration ("-4m", "90s", "-3h", "1h30m") in seconds."""
    m = _DURATION.match(str(text).strip())
    if not m or not any(m.group(i) for i in (2, 3, 4)):
        raise ValueError(f"not a scenario duration: {text!r}")
    total = int(m.group(2) or 0) * 3600 + int(m.group(3) or 0) * 60 + int(m.group(4) or 0)
    return -total if m.group(1) else total


def human_age(secs: float) -> str:
    """The daemon's human_duration (core/time.cpp) of a whole number of seconds."""
    s = int(abs(secs))
    h, m = s // 3600, (s % 3600) // 60
    if h:
        return f"{h}h {m:02d}m"
    return f"{m}m" if m else f"{s % 60}s"


def unescape(text: str) -> str:
    """Discord markdown escapes undone (\\( -> (), as a reader sees the text."""
    return re.sub(r"\\(.)", r"\1", text)


def rule_titles() -> dict[str, str]:
    """rule id -> title, from the embedded pack."""
    with open(RULES) as f:
        return {r["id"]: r["title"] for r in yaml.safe_load(f)["rules"]}


_TOP = re.compile(r"^\*\*1\. (.+?) \u2014 \d+%(?: \(tied\))?\*\*$", re.M)


def top_of(text: str) -> str:
    """The rule id of the first suspect of a summary's (unescaped) text, or "none"."""
    m = _TOP.search(text)
    if m is None:
        return "none"
    by_title = {t: i for i, t in rule_titles().items()}
    return by_title.get(m.group(1), f"(unknown title {m.group(1)!r})")


# --------------------------------------------------------------------------- scenario files


class Step:
    """One timeline step: `at` in seconds relative to the page, and its signal (if any)."""

    def __init__(self, raw: dict):
        self.raw = raw
        self.at = seconds(raw["at"])
        sig = raw.get("signal") or {}
        self.kind: str = sig.get("kind", "")
        self.value = sig.get("value")
        self.subject: str = sig.get("subject", "")
        self.labels: dict = {k: str(v) for k, v in (sig.get("labels") or {}).items()}

    def __getitem__(self, key: str) -> str:
        return self.labels[key]

    def get(self, key: str, default: str = "") -> str:
        return self.labels.get(key, default)


class Scenario:
    """A corpus file. The live test takes from it what the two must agree on: the services,
    the page, the history's kinds, labels and times, and the expected top cause."""

    def __init__(self, stem: str):
        self.stem = stem
        self.path = os.path.join(SCENARIOS, stem + ".yaml")
        with open(self.path) as f:
            self.doc = yaml.safe_load(f)
        self.steps = [Step(s) for s in self.doc.get("timeline", [])]

    @property
    def start(self) -> datetime:
        """The scenario's start (the page's time in the corpus), timezone-aware."""
        v = self.doc["start"]
        if not isinstance(v, datetime):  # PyYAML reads an unquoted timestamp as a datetime
            v = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)

    def offset(self, text: str) -> float:
        """A time written in a label (RFC 3339), in seconds relative to the page."""
        return (datetime.fromisoformat(text.replace("Z", "+00:00")) - self.start).total_seconds()

    @property
    def top(self) -> str:
        return str(self.doc["expect"].get("top", "none"))

    @property
    def services(self) -> dict:
        return self.doc.get("services") or {}

    def page_step(self) -> dict:
        return next(s.raw for s in self.steps if s.raw.get("page") == "triggered")

    @property
    def service_id(self) -> str:
        inc = self.page_step().get("incident") or {}
        return str(inc.get("service") or next(iter(self.services)))

    def history(self, kind: Optional[str] = None, **labels: str) -> list[Step]:
        """Signals before the page (the world's history), oldest first."""
        return [s for s in self.steps if s.kind and s.at < 0 and (kind is None or s.kind == kind)
                and all(s.labels.get(k) == v for k, v in labels.items())]

    def first(self, kind: str, **labels: str) -> Step:
        found = self.history(kind, **labels)
        if not found:
            raise AssertionError(f"{self.stem}: no {kind} {labels} before the page")
        return found[0]

    def last(self, kind: str, **labels: str) -> Step:
        found = self.history(kind, **labels)
        if not found:
            raise AssertionError(f"{self.stem}: no {kind} {labels} before the page")
        return found[-1]

    def incident(self) -> pagerduty.Incident:
        """The page's incident, created now (its created_at is the alert's start)."""
        inc = self.page_step().get("incident") or {}
        sid = self.service_id
        name = (self.services.get(sid) or {}).get("name", sid)
        return pagerduty.Incident(id=pagerduty.pd_id(), number=int(inc.get("number", 1)),
                                  title=str(inc.get("title", "")) or f"{self.stem} page",
                                  service_id=sid, service_name=name)

    def service_config(self) -> dict:
        """services: as the daemon reads them (name, impact, kubernetes, github)."""
        out = {}
        for sid, svc in self.services.items():
            entry = {k: svc[k] for k in ("name", "impact", "kubernetes", "github") if k in svc}
            entry.setdefault("impact", "Some users may see errors.")
            out[sid] = entry
        return out


# --------------------------------------------------------------------------- the Kubernetes world


def ts(offset: float, base: float) -> str:
    """RFC 3339 of `base + offset` (offset in seconds, negative in the past)."""
    return k8s.rfc3339(base + offset)


def split_pod(pod: str, deployment: str) -> tuple[str, str]:
    """(pod-template-hash, suffix) of a pod named <deployment>-<hash>-<suffix>."""
    rest = pod[len(deployment) + 1:]
    template_hash, _, suffix = rest.rpartition("-")
    return template_hash, suffix


class KubernetesWorld:
    """The fake API server, in-cluster access for the daemon (a service-account directory),
    and builders of workloads with a history."""

    def __init__(self, tmp: str, git_version: str = "v1.29.4-gke.1043002"):
        pki = harness.test_pki()
        self.base = time.time()  # every world time is relative to this instant
        self.fake = k8s.FakeKubernetes(pki.server_cert, pki.server_key, tokens=(K8S_TOKEN,)).start()
        self.fake.set_version(git_version)
        self.sa_dir = os.path.join(tmp, "serviceaccount")
        os.makedirs(self.sa_dir)
        with open(os.path.join(self.sa_dir, "token"), "w") as f:
            f.write(K8S_TOKEN)
        shutil.copy(pki.ca_cert, os.path.join(self.sa_dir, "ca.crt"))
        with open(os.path.join(self.sa_dir, "namespace"), "w") as f:
            f.write("runbookd\n")

    def at(self, offset: float) -> str:
        return ts(offset, self.base)

    def config(self) -> dict:
        return {"enabled": True, "service_account_dir": self.sa_dir}

    def env(self) -> dict:
        return {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(self.fake.port)}

    def close(self) -> None:
        self.fake.stop()

    def diagnostics(self) -> str:
        reqs = self.fake.snapshot_requests()[-12:]
        return "--- fake Kubernetes requests (last 12) ---\n" + "\n".join(
            f"{r.method} {r.path} -> {r.status}" for r in reqs)

    # ---------------------------------------------------------------- builders

    def nodes(self, names: Iterable[str], version: str, created: float = -30 * 86400,
              cordoned: Optional[float] = None, ready_since: Optional[float] = None) -> None:
        """Nodes made `created` ago; `cordoned`: when the cordon's taint was added;
        `ready_since`: when the node last turned Ready (its kubelet back after an upgrade)."""
        for name in names:
            n = k8s.node(name, version, unschedulable=cordoned is not None)
            n["metadata"]["creationTimestamp"] = self.at(created)
            if cordoned is not None:
                n["spec"]["taints"][0]["timeAdded"] = self.at(cordoned)
            for c in n["status"]["conditions"]:
                if c["type"] == "Ready":
                    c["lastTransitionTime"] = self.at(ready_since if ready_since is not None else created)
            self.fake.apply("nodes", n)

    def workload(self, ns: str, deployment: str, container: str, revisions: list[tuple[str, str, str, float]],
                 volumes: Optional[list[dict]] = None, env_from: Optional[list[dict]] = None,
                 **status: Any) -> None:
        """A Deployment with its ReplicaSets, one per (revision, template hash, image, created
        offset), oldest first; the last is the current one, and the Deployment's spec was last
        applied when it was created."""
        for revision, template_hash, image, created in revisions:
            self.fake.apply("replicasets", k8s.replicaset(ns, deployment, template_hash, revision, image,
                                                          created=self.at(created), container=container))
        revision, _, image, created = revisions[-1]
        template: dict = {}
        if volumes:
            template["volumes"] = volumes
        spec = {"template": {"spec": template}} if template else None
        dep = k8s.deployment(ns, deployment, image, generation=len(revisions), revision=revision,
                             containers=[{"name": container, "image": image}],
                             managers=[("kubectl-client-side-apply", "Update", self.at(created)),
                                       ("kube-controller-manager", "Update", self.at(-60), "status")],
                             extra_spec=spec, **status)
        dep["metadata"]["creationTimestamp"] = self.at(-90 * 86400)
        if env_from:
            dep["spec"]["template"]["spec"]["containers"][0]["envFrom"] = env_from
        self.fake.apply("deployments", dep)

    def pod(self, ns: str, deployment: str, name: str, container: str, image: str, node: str,
            created: float, restarts: int = 0, waiting: Optional[str] = None, waiting_message: str = "",
            last: Optional[dict] = None, last_finished: Optional[float] = None) -> None:
        """A pod of <deployment>-<hash> (from its name) on `node`; `last` is its last
        termination (reason, exitCode, message) at `last_finished`."""
        template_hash, _ = split_pod(name, deployment)
        terminated = None
        if last is not None:
            terminated = dict(last, finishedAt=self.at(last_finished if last_finished is not None else -60))
        started = (last_finished if last is not None and last_finished is not None else created) + 20
        status = k8s.container_status(container, restarts=restarts, waiting=waiting,
                                      waiting_message=waiting_message, last_terminated=terminated,
                                      image=image, started_at=self.at(started))
        p = k8s.pod(ns, name, deployment, template_hash, containers=[status], node_name=node)
        p["metadata"]["creationTimestamp"] = self.at(created)
        p["status"]["startTime"] = self.at(created)
        self.fake.apply("pods", p)

    def warning(self, ns: str, involved: str, reason: str, message: str, count: int, last: float,
                node: str = k8s.DEFAULT_NODE) -> None:
        name = f"{involved}.{hashlib.sha256((involved + reason).encode()).hexdigest()[:16]}"
        ev = k8s.warning_event(ns, name, reason, message, involved_name=involved, count=count,
                               last_timestamp=self.at(last), host=node)
        self.fake.apply("events", ev)


# --------------------------------------------------------------------------- the daemon


class LiveRig(harness.SourceRig):
    """A fake Discord and a daemon for one scenario: its services, and `sections` (the
    sources, configured against the world). Started after the world is built."""

    def __init__(self, scenario: Scenario, name: str, sections: dict, env: Optional[dict] = None,
                 diagnostics: Optional[Callable[[], str]] = None):
        self.scenario = scenario
        self.env = env
        self._more = diagnostics
        self.rig = harness.DaemonWithDiscord({"log": {"level": "debug"},
                                              "operations": {"edit_interval": "0s"}}, name=name)
        cfg = harness.deep_merge(self.rig.config, sections)
        # The scenario's services and only those, with what the sections add to them.
        cfg["services"] = harness.deep_merge(scenario.service_config(), sections.get("services", {}))
        self.rig.config = cfg
        with open(self.daemon.config_path, "w") as f:
            f.write(yaml_text(cfg) + "\n")

    @property
    def tmp(self) -> str:
        return self.rig.tmp

    def diagnostics(self) -> str:
        extra = self._more() + "\n" if self._more is not None else ""
        return extra + self.rig.diagnostics()

    def start(self) -> "LiveRig":
        self.rig.start(env=self.env)
        # Ready: the config is loaded and every source has had its first look at the world.
        wait_for(lambda: self.daemon.http("GET", "/readyz").status == 200, 30, "/readyz 200",
                 diagnostics=lambda: self.daemon.http("GET", "/readyz?verbose").body.decode()
                 + "\n" + self.diagnostics())
        return self

    def close(self) -> None:
        try:
            if self.rig.daemon.proc is not None:
                self.rig.stop()
        finally:
            self.rig.close()

    def page(self) -> pagerduty.Incident:
        return self.rig.trigger(self.scenario.incident())

    def first_summary(self, inc: pagerduty.Incident) -> str:
        """The first #operations summary of `inc` as it was first posted (before any edit):
        its title, a newline and its text, markdown escapes undone."""
        def find() -> Optional[str]:
            for m in self.rig.discord.snapshot_messages(self.rig.ops_id):
                for e in m.body.get("embeds") or []:
                    if e.get("url") == inc.html_url and "likely cause" in (e.get("title") or ""):
                        return unescape(e["title"] + "\n" + (e.get("description") or ""))
            return None
        return wait_for(find, SUMMARY_TIMEOUT, f"the first #operations summary of {inc.id}",
                        diagnostics=self.diagnostics)


class LiveScenario:
    """A scenario run through the real binary: `world()` builds the history and returns the
    daemon's source sections (and env); the test pages, reads the first summary, asserts the
    scenario's top cause and then `check(text)`. Mixed into a unittest.TestCase."""

    scenario: str  # the corpus file's stem
    live: LiveRig
    sc: Scenario

    def world(self) -> tuple[dict, Optional[dict]]:
        raise NotImplementedError

    def after_start(self) -> None:
        """What happens in the world between the start and the page (webhooks, late points)."""

    def check(self, text: str) -> None:
        """The scenario's own assertions about the first summary."""

    def more_diagnostics(self) -> str:
        return ""

    def setUp(self) -> None:
        self.sc = Scenario(self.scenario)
        self.cleanups: list[Callable[[], None]] = []
        self.tmp = harness.make_tempdir("runbookd-live-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        sections, env = self.world()
        self.live = LiveRig(self.sc, type(self).__name__, sections, env, self.more_diagnostics)
        self.addCleanup(self.live.close)
        self.live.start()

    def close_later(self, closer: Callable[[], None]) -> None:
        self.addCleanup(closer)

    def test_first_summary_names_the_expected_cause(self) -> None:
        self.after_start()
        inc = self.live.page()
        text = self.live.first_summary(inc)
        got = top_of(text)
        self.assertEqual(got, self.sc.top, f"{self.sc.stem}: the first summary's top suspect\n{text}")
        self.check(text)
        self.live.daemon.assert_no_secret(self.live.rig.tokens)

    # ---------------------------------------------------------------- shared assertions

    def assertAge(self, text: str, line: str, step: Step) -> None:
        """`line` (a regex) followed by the age of `step` in the world ("4m before the alert")."""
        age = human_age(step.at)
        self.assertRegex(text, line + re.escape(f" {age} before the alert"),
                         f"the evidence is dated by the world ({age} before the alert)")

    def assertNoSecondsOld(self, text: str) -> None:
        """Nothing in this world happened seconds before the page: no evidence says so."""
        self.assertNotRegex(text, r"\b\d+s before the alert", "evidence dated at the daemon's start")
