"""The Alertmanager intake against a real Alertmanager 0.25 (/usr/bin/prometheus-alertmanager).

Alertmanager listens on loopback with gossip off, groups within a second and repeats every few
seconds, and posts its webhook to runbookd with a bearer token. An alert posted to its API v2
gives a #status notice; repeats within repeat_interval and an alert joining the group do not
post again; resolving it (endsAt in the past) gives the resolved post. Direct POSTs cover
bad input: credentials, malformed bodies, another payload version, a huge body.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import subprocess
import unittest
import urllib.error
import urllib.request

from harness import (SERVICE_ID, DaemonWithDiscord, free_port, make_tempdir, stays, unique_token,
                     wait_for)

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
TOKEN = "am-token-" + unique_token(24)
BASIC_USER, BASIC_PASSWORD = "alertmanager", "am-pass-" + unique_token(16)
REPEAT_INTERVAL = 3  # seconds; group_interval 1s


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def rfc3339(dt: datetime.datetime) -> str:
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Alertmanager:
    """One Alertmanager process routing every alert to `url`."""

    def __init__(self, url: str, workdir: str):
        self.port = free_port()
        self.workdir = workdir
        config = {
            "route": {
                "receiver": "runbookd",
                "group_by": ["alertname", "service"],
                "group_wait": "500ms",
                "group_interval": "1s",
                "repeat_interval": f"{REPEAT_INTERVAL}s",
            },
            "receivers": [{
                "name": "runbookd",
                "webhook_configs": [{
                    "url": url,
                    "send_resolved": True,
                    "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}},
                }],
            }],
        }
        self.config_path = os.path.join(workdir, "alertmanager.yml")
        with open(self.config_path, "w") as f:
            json.dump(config, f)  # JSON is YAML
        self.log_path = os.path.join(workdir, "alertmanager.log")
        self.proc = None

    def start(self) -> "Alertmanager":
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={self.config_path}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             f"--storage.path={os.path.join(self.workdir, 'am-data')}", "--log.level=debug"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(self._ready, 20, "Alertmanager /-/ready", diagnostics=self.tail)
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError("Alertmanager exited:\n" + self.tail())
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, OSError):
            return False

    def post_alerts(self, alerts: list[dict]) -> None:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/v2/alerts",
                                     data=json.dumps(alerts).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200, r.status

    def tail(self, n: int = 30) -> str:
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "--- alertmanager log ---\n" + "\n".join(lines[-n:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if getattr(self, "log", None):
            self.log.close()


class AlertmanagerIntake(unittest.TestCase):
    rig: DaemonWithDiscord
    am: Alertmanager

    @classmethod
    def setUpClass(cls):
        if not os.access(ALERTMANAGER, os.X_OK):
            raise AssertionError(f"{ALERTMANAGER} is missing: run scripts/install-deps")
        cls.rig = DaemonWithDiscord({
            "alertmanager": {
                "bearer_tokens": [TOKEN],
                "basic_auth": {"username": BASIC_USER, "password": BASIC_PASSWORD},
                "priorities": {"critical": "P1", "warning": "P3"},
            },
            "services": {SERVICE_ID: {"alertmanager": ['service="editor"']}},
        }, name="alertmanager", operations_webhook=False)
        cls.rig.start()
        cls.tmp = make_tempdir("runbookd-am-")
        url = f"http://127.0.0.1:{cls.rig.daemon.port}/webhooks/alertmanager"
        try:
            cls.am = Alertmanager(url, cls.tmp).start()
        except BaseException:
            cls.rig.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.am.stop()
            cls.rig.stop()
        finally:
            cls.rig.close()
            shutil.rmtree(cls.tmp, ignore_errors=True)
        cls.rig.daemon.assert_no_secret([TOKEN, BASIC_PASSWORD] + cls.rig.tokens)
        cls.rig.daemon.assert_logs_well_formed()

    # ---------------------------------------------------------------- helpers

    def diagnostics(self) -> str:
        return self.rig.diagnostics() + "\n" + self.am.tail()

    def metrics(self) -> str:
        r = self.rig.daemon.http("GET", "/metrics")
        self.assertEqual(r.status, 200)
        return r.body.decode()

    def webhooks(self, result: str) -> float:
        return metric(self.metrics(), "runbookd_webhooks_total", source="alertmanager", result=result)

    def embeds_about(self, text: str) -> list[dict]:
        out = []
        for _, e in self.rig.status_embeds():
            blob = " ".join(str(x) for x in (e.get("title"), e.get("description"),
                                              (e.get("footer") or {}).get("text")))
            if text in blob:
                out.append(e)
        return out

    def wait_embeds(self, text: str, count: int, timeout: float = 15) -> list[dict]:
        return wait_for(lambda: (lambda es: es if len(es) >= count else None)(self.embeds_about(text)),
                        timeout, f"{count} #status embed(s) about {text!r}", diagnostics=self.diagnostics)

    def post(self, body: bytes, auth: str | None = None) -> tuple[int, str]:
        headers = {"Content-Type": "application/json"}
        if auth is not None:
            headers["Authorization"] = auth
        r = self.rig.daemon.http("POST", "/webhooks/alertmanager", body, headers)
        return r.status, r.body.decode("utf-8", "replace")

    @staticmethod
    def payload(summary: str, version: str = "4") -> dict:
        now = rfc3339(datetime.datetime.now(datetime.timezone.utc))
        return {
            "receiver": "runbookd", "status": "firing", "version": version,
            "groupKey": '{}:{alertname="Direct-' + summary + '"}', "truncatedAlerts": 0,
            "groupLabels": {"alertname": "Direct"}, "commonLabels": {"alertname": "Direct"},
            "commonAnnotations": {"summary": summary}, "externalURL": "http://127.0.0.1:9093",
            "alerts": [{"status": "firing", "labels": {"alertname": "Direct"}, "annotations": {"summary": summary},
                        "startsAt": now, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                        "fingerprint": "0123456789abcdef"}],
        }

    # ---------------------------------------------------------------- end to end

    def test_alert_notice_repeat_and_resolve_through_a_real_alertmanager(self):
        summary = "Editor saves failing " + unique_token(8)
        started = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=3)
        labels = {"alertname": "EditorSaveErrors", "service": "editor", "severity": "critical",
                  "instance": "web-1"}
        alert = {"labels": labels, "annotations": {"summary": summary},
                 "startsAt": rfc3339(started), "generatorURL": "http://127.0.0.1:9090/graph"}
        accepted0 = self.webhooks("accepted")
        duplicates0 = self.webhooks("duplicate")
        self.am.post_alerts([alert])

        notice = self.wait_embeds(summary, 1)[0]
        self.assertIn("investigating", notice["title"])
        self.assertIn("Editor", notice["title"])  # services.<id>.alertmanager matched
        self.assertIn("Saving and loading canvases", notice["description"])  # the service's impact
        self.assertIn("P1", notice["footer"]["text"])  # severity critical -> P1
        self.assertTrue(notice["footer"]["text"].startswith("Alertmanager"), notice["footer"])

        # Alertmanager repeats the group every repeat_interval: runbookd counts the repeat as a
        # duplicate and posts nothing.
        wait_for(lambda: self.webhooks("duplicate") >= duplicates0 + 1, REPEAT_INTERVAL * 4 + 5,
                 "a repeat notification counted as duplicate", diagnostics=self.diagnostics)
        # A second alert joining the firing group is a new state, accepted, and no new post.
        self.am.post_alerts([dict(alert, labels=dict(labels, instance="web-2"))])
        wait_for(lambda: self.webhooks("accepted") >= accepted0 + 2, 15,
                 "the grown group accepted", diagnostics=self.diagnostics)
        self.assertTrue(stays(lambda: len(self.embeds_about(summary)) == 1, 1.5),
                        "a repeat or a grown group posted again:\n" + self.diagnostics())

        ended = rfc3339(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5))
        self.am.post_alerts([dict(alert, endsAt=ended),
                             dict(alert, labels=dict(labels, instance="web-2"), endsAt=ended)])
        embeds = self.wait_embeds(summary, 2)
        self.assertIn("resolved", (embeds[1]["title"] + embeds[1]["description"]).lower())
        self.assertTrue(stays(lambda: len(self.embeds_about(summary)) == 2, 1.5),
                        "the resolved post was repeated:\n" + self.diagnostics())
        m = self.metrics()
        self.assertGreaterEqual(metric(m, "runbookd_alertmanager_notifications_total", status="resolved"), 1)
        self.assertNoViolations()

    def assertNoViolations(self):
        self.assertEqual(self.rig.discord.violations, [])

    # ---------------------------------------------------------------- bad input

    def test_credentials_are_checked(self):
        body = json.dumps(self.payload("auth " + unique_token(6))).encode()
        self.assertEqual(self.post(body)[0], 401)
        self.assertEqual(self.post(body, "Bearer " + TOKEN + "x")[0], 401)
        self.assertEqual(self.post(body, "Bearer " + TOKEN[:-1])[0], 401)
        wrong = base64.b64encode(f"{BASIC_USER}:nope".encode()).decode()
        self.assertEqual(self.post(body, "Basic " + wrong)[0], 401)
        self.assertEqual(self.post(body, "Token " + TOKEN)[0], 401)
        good = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
        status, answer = self.post(body, "Basic " + good)
        self.assertEqual(status, 200, answer)
        self.assertGreaterEqual(self.webhooks("bad_auth"), 3)
        self.assertGreaterEqual(self.webhooks("missing_auth"), 2)

    def test_malformed_and_other_versions_get_400_and_the_daemon_keeps_running(self):
        auth = "Bearer " + TOKEN
        for body, why in ((b"", "empty"), (b"{oops", "not valid JSON"), (b"[]", "object"),
                          (json.dumps({**self.payload("x"), "groupKey": 7}).encode(), "groupKey"),
                          (json.dumps({**self.payload("x"), "alerts": [{"status": "firing", "labels": {"a": 1}}]})
                           .encode(), "alerts[0].labels.a")):
            status, answer = self.post(body, auth)
            self.assertEqual(status, 400, (body[:40], answer))
            self.assertIn(why, answer)
        status, answer = self.post(json.dumps(self.payload("v3", version="3")).encode(), auth)
        self.assertEqual(status, 400)
        self.assertIn("version", answer)
        huge = json.dumps({**self.payload("huge"), "pad": "x" * 200_000}).encode()
        self.assertEqual(self.post(huge, auth)[0], 413)
        self.assertTrue(self.rig.daemon.alive())
        self.assertGreaterEqual(self.webhooks("malformed"), 5)
        self.assertGreaterEqual(self.webhooks("unsupported_version"), 1)
        status, answer = self.post(json.dumps(self.payload("after " + unique_token(6))).encode(), auth)
        self.assertEqual(status, 200, answer)


if __name__ == "__main__":
    unittest.main()
