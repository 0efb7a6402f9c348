"""Evidence gathered when the page arrives, and /readyz, with the real daemon.

The probes source checks one site (plain HTTP on loopback) once an hour, so only a
page-time refresh can see what changed after start-up:
- the site breaks, a page arrives: the refresh sees the failure and the first #operations
  summary already names it ("evidence gathered" before the summary is decided);
- the site hangs when the page arrives: the summary goes out at the deadline without it
  ("past its deadline", naming the probes source), and is edited when the answer lands
  (another canvas failing from the start keeps the top suspect, so it is an edit in place).

/readyz: a daemon whose probe target never answers stays 503 and names the probes source,
while a status feed that refuses connections counts as answered (failing, and why);
`?verbose` lists every source. Once the silent target fails, /readyz is 200.
"""

from __future__ import annotations

import socket
import threading
import unittest

import fake_https
import harness
from harness import wait_for
from test_probes import Silent, closed_port, yaml_text

ACC_ID, ACC_NAME = "PACC001", "Accounts"
SERVICES = {ACC_ID: {"name": ACC_NAME, "impact": "New users may not be able to sign up."}}
CANVAS_TEXT = "sign-up is failing"  # the ops-canvas rule's evidence line


class Canvas(fake_https.FakeHTTPS):
    """The sign-up canvas: 200 until broken; when `hold` is set, each request waits (bounded)
    for `release` before its answer."""
    name = "sign-up canvas"

    def __init__(self):
        super().__init__(None)
        self.keep_alive = False
        self.broken = False
        self.hold = False
        self.release = threading.Event()

    def _dispatch(self, h, rec):
        if rec.path == "/always-500":
            self._send(h, rec, 500, b"Internal Server Error\n", "text/plain")
            return
        if self.hold:
            self.release.wait(timeout=20)
        if self.broken:
            self._send(h, rec, 500, b"Internal Server Error\n", "text/plain")
        else:
            self._send(h, rec, 200, b"ok\n", "text/plain")


class GatherRig(harness.SourceRig):
    """`other_failing`: a second ops canvas that fails from the start, so that the top suspect
    is the same before and after the sign-up canvas's late evidence (an edit, not a new message)."""

    def __init__(self, name: str, deadline: str, other_failing: bool = False):
        self.canvas = Canvas().start()
        targets = [{"name": "ops-adduser", "url": f"{self.canvas.url}/", "ops_canvas": "sign-up",
                    "services": [ACC_ID]}]
        if other_failing:
            targets.append({"name": "ops-other", "url": f"{self.canvas.url}/always-500", "ops_canvas": "other",
                            "services": [ACC_ID]})
        section = {"interval": "1h", "timeout": "15s", "failures_before_alert": 1, "targets": targets}
        self.rig = harness.DaemonWithDiscord({
            "log": {"level": "debug"},
            "operations": {"edit_interval": "0s", "gather_deadline": deadline},
            "services": SERVICES,
            "probes": section,
        }, name=name)
        with open(self.daemon.config_path, "w") as f:
            f.write(yaml_text(self.rig.config) + "\n")

    def start(self) -> "GatherRig":
        try:
            self.rig.start()
        except BaseException:
            self.canvas.stop()
            raise
        wait_for(lambda: self.daemon.http("GET", "/readyz").status == 200, 15, "/readyz 200",
                 diagnostics=self.diagnostics)
        return self

    def close(self) -> None:
        self.canvas.release.set()
        try:
            self.rig.stop()
        finally:
            self.rig.close()
            self.canvas.stop()

    def page(self):
        import pagerduty
        return self.rig.trigger(pagerduty.Incident(title="Sign-ups failing", service_id=ACC_ID,
                                                   service_name=ACC_NAME))

    def log_index(self, pred) -> int:
        for i, e in enumerate(self.daemon.snapshot_logs()):
            if pred(e):
                return i
        return -1

    def summary_decided(self, e) -> bool:
        return e.get("msg") == "post decided" and e.get("kind") == "summary"


class GatherTests(unittest.TestCase):
    def test_the_first_summary_waits_for_the_refresh_and_has_its_evidence(self):
        r = GatherRig("gather-in-time", deadline="20s").start()
        try:
            checks = len(r.canvas.snapshot_requests())
            r.canvas.broken = True  # after the start-up round; the next periodic one is an hour away
            inc = r.page()
            text = r.wait_operations(inc, CANVAS_TEXT, "a first summary naming the failing canvas", timeout=15)
            self.assertIn("ops-adduser", text)
            self.assertGreater(len(r.canvas.snapshot_requests()), checks, "the refresh checked the canvas")
            gathered = r.log_index(lambda e: e.get("msg") == "evidence gathered" and e.get("incident") == inc.id)
            decided = r.log_index(r.summary_decided)
            self.assertGreaterEqual(gathered, 0, r.daemon.tail())
            self.assertLess(gathered, decided, "the summary was decided once the evidence was in")
            self.assertEqual(r.log_index(lambda e: e.get("msg") == "evidence gathering past its deadline"), -1)
            messages = [m for m in r.rig.discord.snapshot_messages(r.rig.ops_id)]
            self.assertEqual(len(messages), 1, "one summary, not a summary and a correction")
            self.assertEqual(messages[0].edits, [])
            self.assertEqual(r.metric("runbookd_gathers_total", outcome="complete"), 1)
            self.assertEqual(r.metric("runbookd_gather_seconds_count"), 1)
        finally:
            r.close()

    def test_at_the_deadline_the_summary_goes_out_and_late_evidence_edits_it(self):
        r = GatherRig("gather-late", deadline="1s", other_failing=True).start()
        try:
            r.canvas.broken = True
            r.canvas.hold = True
            inc = r.page()
            late = r.daemon.wait_log(lambda e: e.get("msg") == "evidence gathering past its deadline", 10,
                                     "the deadline passing")
            self.assertEqual(late["incident"], inc.id)
            self.assertEqual(late["waiting_for"], "probes")
            first = r.wait_operations(inc, "ops-other", "the summary at the deadline")
            self.assertNotIn(CANVAS_TEXT, first)
            r.canvas.release.set()  # the canvas answers 500 now
            r.wait_signal("probe.failure", subject="ops-adduser")

            def edited():
                for m in r.rig.discord.snapshot_messages(r.rig.ops_id):
                    if m.edits and any(CANVAS_TEXT in (e.get("description") or "") for e in m.embeds):
                        return m
                return None
            wait_for(edited, 15, "the summary edited with the late evidence", diagnostics=r.diagnostics)
            self.assertEqual(r.metric("runbookd_gathers_total", outcome="deadline"), 1)
            self.assertEqual(r.metric("runbookd_gather_late_total", source="probes"), 1)
        finally:
            r.close()


class ReadyzTests(unittest.TestCase):
    def test_readyz_waits_for_every_source_and_names_the_one_pending(self):
        pki = harness.test_pki()
        silent = Silent()
        rig = harness.DaemonWithDiscord({
            "google": {"ca_file": pki.ca_cert, "request_timeout": "2s"},
            "gcp_status": {"enabled": True, "url": f"https://127.0.0.1:{closed_port()}/incidents.json",
                           "interval": "1h"},
            "probes": {"interval": "1h", "timeout": "60s",
                       "targets": [{"name": "silent", "url": f"http://127.0.0.1:{silent.port}/"}]},
        }, name="readyz")
        with open(rig.daemon.config_path, "w") as f:
            f.write(yaml_text(rig.config) + "\n")
        try:
            rig.start()
            d = rig.daemon
            d.wait_log(lambda e: e.get("msg") == "source status" and e.get("source") == "gcp_status"
                       and e.get("state") == "failing" and not e["error"].startswith("waiting"), 15,
                       "the status feed failing")
            r = d.http("GET", "/readyz")
            self.assertEqual(r.status, 503)
            self.assertEqual(r.body.decode(), "not ready: waiting for probes\n")
            v = d.http("GET", "/readyz?verbose").body.decode().splitlines()
            self.assertEqual(v[0], "[+]config loaded")
            feed = next(line for line in v if "gcp_status" in line)
            self.assertTrue(feed.startswith("[+]gcp_status: failing: "), v)
            self.assertIn("refused", feed)
            self.assertIn("[-]probes: pending: waiting for the first", "\n".join(v))
            self.assertEqual(v[-1], "not ready: waiting for probes")
            self.assertTrue(harness.stays(lambda: d.http("GET", "/readyz").status == 503, 1.0),
                            "a source that never answers keeps the daemon not ready")

            silent.close()  # the connection waiting in its backlog is reset: the check fails
            wait_for(lambda: d.http("GET", "/readyz").status == 200, 15, "/readyz 200 once the probe failed",
                     diagnostics=rig.diagnostics)
            self.assertEqual(d.http("GET", "/readyz").body.decode(), "ready\n")
            v = d.http("GET", "/readyz?verbose=1").body.decode().splitlines()
            self.assertIn("[+]probes: healthy", v)
            self.assertEqual(v[-1], "ready")
            r = d.http("GET", "/metrics").body.decode()
            self.assertIn("runbookd_ready 1", r)
            rig.stop()
        finally:
            rig.close()
            silent.close()


if __name__ == "__main__":
    unittest.main()
