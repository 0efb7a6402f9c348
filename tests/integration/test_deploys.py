"""Deploy webhooks (daemon/intake/deploys): GitHub's deployment, deployment_status,
workflow_run and ping deliveries with GitHub's header set, signatures and their rotation,
de-duplication by X-GitHub-Delivery, stale deliveries refused, the generic signed webhook
sent exactly as docs/sources/deploys.md's curl example sends it, and end to end: a failed CI
deploy and a page rank "Something unexpected happened during the CI deploy" first."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import unittest
import uuid

import harness
import pagerduty
from harness import DiscordTestCase, SourceRig, wait_for
from test_intake import raw_exchange, status_of

PATH = "/webhooks/deploys"
GH_OLD = "gh-old-" + harness.unique_token(24)
GH_NEW = "gh-new-" + harness.unique_token(24)
GENERIC = "generic-" + harness.unique_token(24)
REPO = "acme/editor"
SERVICE_ID = harness.SERVICE_ID
# The end-to-end test's own service and repository, so that the other tests' deploys (all
# in one daemon's signal log) are not related to its page.
E2E_REPO = "acme/checkout"
E2E_SERVICE_ID = "PCHK0E2"
E2E_SERVICE_NAME = "Checkout"


def iso(t: datetime.datetime) -> str:
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(**kw) -> str:
    return iso(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(**kw))


def deployment(dep_id: int, sha: str, created: str, repo: str = REPO) -> dict:
    return {"url": f"https://api.github.com/repos/{repo}/deployments/{dep_id}", "id": dep_id,
            "node_id": "DE_kwDOB", "task": "deploy", "original_environment": "production",
            "environment": "production", "description": None, "created_at": created, "updated_at": created,
            "statuses_url": f"https://api.github.com/repos/{repo}/deployments/{dep_id}/statuses",
            "repository_url": f"https://api.github.com/repos/{repo}",
            "creator": {"login": "jane", "id": 1, "type": "User"}, "sha": sha, "ref": "main", "payload": {},
            "transient_environment": False, "production_environment": True}


def deployment_status(state: str, dep_id: int, sha: str, created: str, at: str, status_id: int,
                      repo: str = REPO) -> dict:
    return {
        "action": "created",
        "deployment_status": {
            "url": f"https://api.github.com/repos/{repo}/deployments/{dep_id}/statuses/{status_id}",
            "id": status_id, "node_id": "DES_kwDOB", "state": state,
            "creator": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
            "description": "", "environment": "production",
            "target_url": f"https://github.com/{repo}/actions/runs/{dep_id}",
            "log_url": f"https://github.com/{repo}/actions/runs/{dep_id}",
            "environment_url": "", "created_at": at, "updated_at": at,
            "deployment_url": f"https://api.github.com/repos/{repo}/deployments/{dep_id}",
            "repository_url": f"https://api.github.com/repos/{repo}"},
        "deployment": deployment(dep_id, sha, created, repo),
        "check_run": None, "workflow": None, "workflow_run": None,
        "repository": {"id": 42, "name": repo.split("/")[1], "full_name": repo, "private": True},
        "sender": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
    }


def workflow_run(action: str, run_id: int, sha: str, status: str, conclusion, started: str, updated: str) -> dict:
    return {
        "action": action,
        "workflow_run": {"id": run_id, "name": "Deploy", "head_branch": "main", "head_sha": sha,
                         "path": ".github/workflows/deploy.yml", "display_title": "Deploy main",
                         "run_number": 7, "event": "push", "status": status, "conclusion": conclusion,
                         "workflow_id": 11, "html_url": f"https://github.com/{REPO}/actions/runs/{run_id}",
                         "created_at": started, "updated_at": updated, "run_started_at": started,
                         "run_attempt": 1, "actor": {"login": "jane"}, "triggering_actor": {"login": "jane"}},
        "workflow": {"id": 11, "name": "Deploy", "path": ".github/workflows/deploy.yml"},
        "repository": {"id": 42, "name": "editor", "full_name": REPO},
        "sender": {"login": "jane"},
    }


def sha() -> str:
    return hashlib.sha1(uuid.uuid4().bytes).hexdigest()


class DeploysTests(DiscordTestCase, SourceRig):
    overrides = {
        "log": {"level": "debug"},  # "signal" lines carry each signal's labels
        "operations": {"edit_interval": "0s"},
        "deploys": {"github_secrets": [GH_OLD, GH_NEW], "generic_secrets": [GENERIC],
                    "workflows": ["Deploy@production"], "max_age": "1h", "timestamp_tolerance": "5m"},
        "services": {SERVICE_ID: {"github": [f"{REPO}@production"]},
                     E2E_SERVICE_ID: {"name": E2E_SERVICE_NAME, "github": [f"{E2E_REPO}@production"]}},
    }

    # ---------------------------------------------------------------- senders

    def github(self, event: str, payload, *, secret: str = GH_NEW, delivery: str | None = None,
               signature: str | None = None, omit_signature: bool = False) -> pagerduty.Response:
        """One delivery with the header set GitHub sends (docs "Webhook events and payloads",
        "Delivery headers")."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/7a1c6f3",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-GitHub-Hook-ID": "109948940",
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": "42",
            "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        }
        if not omit_signature:
            headers["X-Hub-Signature-256"] = signature or (
                "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest())
        return self.daemon.http("POST", PATH, body, headers)

    def results(self, result: str) -> float:
        return self.metric("runbookd_webhooks_total", source="deploys", result=result) or 0

    def assertStatus(self, r: pagerduty.Response, expected: int, what: str):
        self.assertEqual(r.status, expected, f"{what}: got {r.status} {r.body[:200]!r}")

    def assertServing(self):
        self.assertEqual(self.daemon.http("GET", "/healthz").status, 200, "daemon stopped serving")

    # ---------------------------------------------------------------- GitHub

    def test_a_deployment_status_becomes_a_signal_of_the_mapped_service(self):
        commit = sha()
        at = ago(minutes=1)
        r = self.github("deployment_status", deployment_status("success", 501, commit, ago(minutes=4), at, 9001))
        self.assertStatus(r, 202, "signed deployment_status")
        s = self.wait_signal("deploy.ci", commit=commit)
        self.assertEqual(s["status"], "success")
        self.assertEqual(s["services"], SERVICE_ID)          # acme/editor@production -> services:
        self.assertEqual(s["service"], harness.SERVICE_NAME)
        self.assertEqual(s["at"][:19], at[:19])               # the status's time, not ours
        self.assertAlmostEqual(s["value"], 180, delta=1)      # running for 3 minutes
        self.assertEqual(self.metric("runbookd_source_up", source="deploys"), 1)

    def test_workflow_runs_of_the_deploy_workflow_and_the_rest(self):
        commit = sha()
        r = self.github("workflow_run", workflow_run("in_progress", 7001, commit, "in_progress", None,
                                                     ago(minutes=2), ago(minutes=1)))
        self.assertStatus(r, 202, "workflow_run of Deploy")
        s = self.wait_signal("deploy.ci", commit=commit)
        self.assertEqual((s["status"], s["environment"], s["services"]), ("in_progress", "production", SERVICE_ID))
        other = workflow_run("completed", 7002, sha(), "completed", "success", ago(minutes=2), ago(minutes=1))
        other["workflow_run"]["name"] = "Tests"
        other["workflow_run"]["path"] = ".github/workflows/tests.yml"
        before = self.results("ignored")
        self.assertStatus(self.github("workflow_run", other), 202, "workflow_run of Tests")
        self.assertEqual(self.results("ignored"), before + 1)

    def test_rotation_accepts_either_configured_secret(self):
        for secret in (GH_OLD, GH_NEW):
            commit = sha()
            r = self.github("deployment_status",
                            deployment_status("queued", 502, commit, ago(minutes=1), ago(seconds=30), hash(secret) % 10**6),
                            secret=secret)
            self.assertStatus(r, 202, f"signed with {'old' if secret == GH_OLD else 'new'} secret")
            self.wait_signal("deploy.ci", commit=commit)

    def test_wrong_missing_and_malformed_signatures(self):
        payload = deployment_status("failure", 503, sha(), ago(minutes=2), ago(minutes=1), 9003)
        self.assertStatus(self.github("deployment_status", payload, secret="not-it"), 403, "wrong secret")
        self.assertStatus(self.github("deployment_status", payload, omit_signature=True), 400, "no signature")
        self.assertStatus(self.github("deployment_status", payload, signature="sha256=xyz"), 400, "malformed")
        # The generic scheme's header does not authenticate a GitHub delivery.
        self.assertStatus(self.github("deployment_status", payload, signature="v1=" + "0" * 64), 400,
                          "v1= on a GitHub delivery")
        self.assertEqual(self.signals("deploy.ci", commit=payload["deployment"]["sha"]), [])
        self.assertServing()

    def test_malformed_empty_and_oversized_bodies(self):
        for body in (b"{oops", b"[]", b'{"deployment": 3}', "\u00ff".encode("latin-1")):
            with self.subTest(body=body[:10]):
                self.assertStatus(self.github("deployment_status", body), 400, f"malformed {body[:10]!r}")
        self.assertStatus(self.github("deployment_status", b""), 400, "empty body")
        limit = self.rig.config["server"]["max_body_bytes"]
        body = json.dumps({"padding": "x" * (limit + 1000)}).encode()
        sig = "sha256=" + hmac.new(GH_NEW.encode(), body, hashlib.sha256).hexdigest()
        head = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nX-GitHub-Event: deployment_status\r\n"
                f"X-GitHub-Delivery: {uuid.uuid4()}\r\nX-Hub-Signature-256: {sig}\r\n\r\n").encode()
        got, _ = raw_exchange(self.daemon.port, head + body, timeout=5)
        self.assertEqual(status_of(got), 413, f"oversized body: got {got[:120]!r}")
        self.assertServing()

    def test_a_redelivery_is_one_signal(self):
        commit = sha()
        payload = deployment_status("success", 504, commit, ago(minutes=3), ago(minutes=1), 9004)
        delivery = str(uuid.uuid4())
        before = self.results("duplicate")
        self.assertStatus(self.github("deployment_status", payload, delivery=delivery), 202, "first delivery")
        self.assertStatus(self.github("deployment_status", payload, delivery=delivery), 202, "redelivery")
        # The same status by a second hook (another delivery id) is the same status.
        self.assertStatus(self.github("deployment_status", payload, secret=GH_OLD), 202, "second hook")
        self.wait_signal("deploy.ci", commit=commit)
        wait_for(lambda: self.results("duplicate") >= before + 2, 5, "two duplicates counted")
        self.assertEqual(len(self.signals("deploy.ci", commit=commit)), 1)

    def test_a_stale_or_replayed_delivery_is_refused(self):
        commit = sha()
        old = deployment_status("failure", 505, commit, ago(hours=3), ago(hours=2), 9005)
        before = self.results("stale")
        r = self.github("deployment_status", old)
        self.assertStatus(r, 401, "a status from 2h ago (max_age 1h)")
        self.assertIn(b"stale", r.body)
        self.assertEqual(self.results("stale"), before + 1)
        self.assertEqual(self.signals("deploy.ci", commit=commit), [])

    def test_ping(self):
        ping = {"zen": "Design for failure.", "hook_id": 109948940,
                "hook": {"type": "Repository", "id": 109948940, "events": ["deployment_status", "workflow_run"],
                         "config": {"content_type": "json", "url": "https://runbookd.example.com/webhooks/deploys"}},
                "repository": {"full_name": REPO}, "sender": {"login": "jane"}}
        r = self.github("ping", ping)
        self.assertStatus(r, 200, "ping")
        self.assertEqual(r.json(), {"status": "pong"})

    # ---------------------------------------------------------------- generic

    def curl_example(self) -> str:
        """The curl example of docs/sources/deploys.md, as written there."""
        with open(os.path.join(harness.REPO, "docs", "sources", "deploys.md")) as f:
            text = f.read()
        m = re.search(r"<!-- curl-example -->\s*```sh\n(.*?)```", text, re.S)
        self.assertIsNotNone(m, "docs/sources/deploys.md has no curl example")
        return m.group(1)

    def run_curl_example(self, body: str, secret: str = GENERIC) -> tuple[int, str]:
        """Runs the example with its URL pointed at the daemon and its body replaced;
        returns the HTTP status it prints last, and its output."""
        for tool in ("curl", "openssl", "bash"):
            if shutil.which(tool) is None:
                raise AssertionError(f"{tool} is missing (scripts/install-deps installs it)")
        script = self.curl_example().replace("https://runbookd.example.com", f"http://127.0.0.1:{self.daemon.port}")
        script, n = re.subn(r"^body=.*$", 'body="$BODY"', script, count=1, flags=re.M)
        self.assertEqual(n, 1, "the curl example sets body= on one line")
        out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=20,
                             env={**os.environ, "RUNBOOKD_DEPLOY_SECRET": secret, "BODY": body})
        self.assertEqual(out.returncode, 0, out.stderr)
        m = re.search(r"(\d{3})\s*$", out.stdout)
        self.assertIsNotNone(m, out.stdout)
        return int(m.group(1)), out.stdout

    def test_the_documented_curl_example(self):
        version = "2026.12.03-" + harness.unique_token(6)
        body = json.dumps({"service": "editor", "version": version, "status": "failure", "actor": "ci-bot",
                           "url": "https://ci.example.com/runs/7", "environment": "production"})
        status, out = self.run_curl_example(body)
        self.assertEqual(status, 202, out)
        self.assertIn('{"status":"accepted"}', out)
        s = self.wait_signal("deploy.ci", version=version)
        self.assertEqual((s["service"], s["status"], s["source"]), ("editor", "failure", "deploys"))
        status, _ = self.run_curl_example(body, secret="not-the-secret")
        self.assertEqual(status, 403)
        self.assertEqual(len(self.signals("deploy.ci", version=version)), 1)

    def test_a_generic_replay_inside_the_tolerance_is_one_signal(self):
        version = "replay-" + harness.unique_token(6)
        body = json.dumps({"service": "editor", "version": version, "status": "success"}).encode()
        ts = str(int(datetime.datetime.now(datetime.timezone.utc).timestamp()))
        sig = "v1=" + hmac.new(GENERIC.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Runbookd-Timestamp": ts, "X-Runbookd-Signature": sig}
        for what in ("first", "replayed"):
            r = self.daemon.http("POST", PATH, body, headers)
            self.assertStatus(r, 202, what)
        self.assertEqual(r.json(), {"status": "duplicate"})
        self.wait_signal("deploy.ci", version=version)
        self.assertEqual(len(self.signals("deploy.ci", version=version)), 1)

    def test_a_generic_delivery_outside_the_tolerance_is_refused(self):
        body = json.dumps({"service": "editor", "version": "old-1", "status": "success"}).encode()
        ts = str(int(datetime.datetime.now(datetime.timezone.utc).timestamp()) - 3600)
        sig = "v1=" + hmac.new(GENERIC.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        r = self.daemon.http("POST", PATH, body, {"Content-Type": "application/json", "X-Runbookd-Timestamp": ts,
                                                  "X-Runbookd-Signature": sig})
        self.assertStatus(r, 401, "timestamp an hour old")
        r = self.daemon.http("POST", PATH, body, {"Content-Type": "application/json"})
        self.assertStatus(r, 400, "no signature headers")

    # ---------------------------------------------------------------- end to end

    def test_a_failed_ci_deploy_and_a_page_rank_ci_trouble_first(self):
        commit = sha()
        started = ago(minutes=9)
        self.assertStatus(self.github("deployment", {
            "action": "created", "deployment": deployment(506, commit, started, E2E_REPO), "workflow": None,
            "workflow_run": None, "repository": {"full_name": E2E_REPO}, "sender": {"login": "jane"}}),
            202, "deployment created")
        self.assertStatus(self.github("deployment_status", deployment_status(
            "in_progress", 506, commit, started, ago(minutes=8), 9061, E2E_REPO)), 202, "in progress")
        self.assertStatus(self.github("deployment_status", deployment_status(
            "failure", 506, commit, started, ago(minutes=6), 9062, E2E_REPO)), 202, "failure")
        self.wait_signal("deploy.ci", commit=commit, status="failure", services=E2E_SERVICE_ID)
        inc = self.rig.trigger(pagerduty.Incident(service_id=E2E_SERVICE_ID, service_name=E2E_SERVICE_NAME))
        text = self.wait_operations(inc, "Something unexpected happened during the CI deploy")
        first = re.search(r"\*\*1\. ([^*]+?) — \d+%\*\*", text)
        self.assertIsNotNone(first, text)
        self.assertEqual(first.group(1), "Something unexpected happened during the CI deploy", text)
        self.assertIn(f"CI deploy of {E2E_SERVICE_NAME} main@\u200b{commit[:7]} by github-actions\\[bot\\] ended in "
                      "failure 6m before the alert", text)
        self.assertIn(f"Open https://github.com/{E2E_REPO}/actions/runs/506", text)
        self.daemon.assert_no_secret([GH_OLD, GH_NEW, GENERIC])


if __name__ == "__main__":
    unittest.main()
