"""The HTTP probes source against small HTTP(S) servers on loopback (fake_https, with the
harness PKI): one daemon checks a target of every kind every second, and the test reads its
``probe.failure`` and ``probe.recovered`` signals: an answer that passes (plain and HTTPS),
a wrong status (our server's 500, and Google's own 502 page on two hosts, told apart by
``answered_by`` and counted in ``gfe_hosts``), the body text missing, a silent server timed
out without delaying the others, refused, reset, TLS errors named as the certs source names
them (an untrusted CA, a name mismatch), a name that does not resolve (``.invalid``), the
consecutive-failure threshold, flapping, a recovery; the metrics. End to end, a page while
the sign-up canvas answers 500 ranks "One of the ops canvases isn't working" first with
the URL, the status and since when.

The signal log line ("signal", debug level) carries every label as a field of its own."""

from __future__ import annotations

import re
import socket
import time
import unittest
from datetime import datetime, timezone
from typing import Optional

import fake_https
import harness
import pagerduty
from harness import wait_for

INTERVAL = "1s"
TIMEOUT_S = 1
SLOW_TIMEOUT_S = 4
UNRESOLVED = "nowhere.invalid"  # RFC 6761: never resolves

ACC_ID, ACC_NAME = "PACC001", "Accounts"
SERVICES = {ACC_ID: {"name": ACC_NAME, "impact": "New users may not be able to sign up."}}

GOOGLE_502 = ("<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
              "  <title>Error 502 (Server Error)!!1</title>\n"
              "  <p><b>502.</b> <ins>That\u2019s an error.</ins>\n"
              "  <p>The server encountered a temporary error and could not complete your request."
              "<p>Please try again in 30 seconds.  <ins>That\u2019s all we know.</ins>\n").encode()


def yaml_text(value: dict, indent: int = 0) -> str:
    """harness.to_yaml, plus block sequences of mappings (probes.targets)."""
    pad = "  " * indent
    lines = []
    for k, v in value.items():
        if isinstance(v, dict):
            lines.append(f"{pad}{k}:")
            lines.append(yaml_text(v, indent + 1))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            lines.append(f"{pad}{k}:")
            for item in v:
                sub = yaml_text(item, indent + 2).split("\n")
                lines.append(f"{pad}  - {sub[0].lstrip()}")
                lines.extend(sub[1:])
        else:
            lines.append(harness.to_yaml({k: v}, indent))
    return "\n".join(lines)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


class Site(fake_https.FakeHTTPS):
    """The probed site: a path per behaviour. ``/flap`` alternates 500 and 200; ``/toggle``
    answers 503 until ``toggle_ok`` is set."""
    name = "probed site"

    def __init__(self, ssl_context=None):
        super().__init__(ssl_context)
        self.keep_alive = False
        self.flaps = 0
        self.toggle_ok = False

    def _dispatch(self, h, rec):
        p = rec.path
        if p == "/ok":
            self._send(h, rec, 200, b"status: healthy\n", "text/plain")
        elif p == "/500":
            self._send(h, rec, 500, b"Internal Server Error\n", "text/plain")
        elif p == "/gfe":
            self._send(h, rec, 502, GOOGLE_502, "text/html; charset=UTF-8", {"Via": "1.1 google"})
        elif p == "/degraded":
            self._send(h, rec, 200, b"status: degraded\n", "text/plain")
        elif p == "/flap":
            self.flaps += 1
            self._send(h, rec, 500 if self.flaps % 2 else 200, b"flap\n", "text/plain")
        elif p == "/toggle":
            self._send(h, rec, 200 if self.toggle_ok else 503, b"toggle\n", "text/plain")
        else:
            self._send(h, rec, 404, b"not found\n", "text/plain")


class Silent:
    """A listening socket that never accepts: connections complete in the backlog and wait."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


class ProbeRig(harness.SourceRig):
    """A plain and an HTTPS site, a silent port, and a daemon probing `targets`."""

    def __init__(self, name: str, targets, probes: Optional[dict] = None):
        pki = harness.test_pki()
        self.http = Site().start()
        self.https = Site(fake_https.server_context(pki.server_cert, pki.server_key)).start()
        self.silent = Silent()
        try:
            section = {"interval": INTERVAL, "timeout": f"{TIMEOUT_S}s", "concurrency": 8,
                       "failures_before_alert": 2, "flap_window": 6, "flap_changes": 4,
                       "ca_file": pki.ca_cert}
            section.update(probes or {})
            self.rig = harness.DaemonWithDiscord({
                "log": {"level": "debug"},  # "signal" lines
                "operations": {"edit_interval": "0s"},
                "services": SERVICES,
                "probes": section,
            }, name=name)
            self.rig.config["probes"]["targets"] = targets(self)
            with open(self.daemon.config_path, "w") as f:
                f.write(yaml_text(self.rig.config) + "\n")
        except BaseException:
            self._close_servers()
            raise

    def url(self, path: str, tls: bool = False, host: str = "127.0.0.1") -> str:
        site = self.https if tls else self.http
        return f"{'https' if tls else 'http'}://{host}:{site.port}{path}"

    def start(self) -> "ProbeRig":
        try:
            self.rig.start()
        except BaseException:
            self._close_servers()
            raise
        return self

    def _close_servers(self) -> None:
        for closer in (self.http.stop, self.https.stop, self.silent.close):
            try:
                closer()
            except Exception:  # noqa: BLE001 - the others still close
                pass

    def close(self) -> None:
        try:
            self.rig.stop()
        finally:
            self.rig.close()
            self._close_servers()

    def failures(self, target: Optional[str] = None) -> list[dict]:
        return [e for e in self.signals("probe.failure") if target is None or e.get("subject") == target]

    def wait_failure(self, target: str, timeout: float = 15, where=lambda e: True) -> dict:
        return wait_for(lambda: next((e for e in self.failures(target) if where(e)), None), timeout,
                        f"a probe.failure of {target}", diagnostics=self.diagnostics)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def every_target(r: ProbeRig) -> list[dict]:
    other_ca = harness.Pki(harness.make_tempdir("runbookd-it-other-ca-")).ca_cert
    silent = f"http://127.0.0.1:{r.silent.port}/"
    return [
        {"name": "ok", "url": r.url("/ok"), "body_contains": "healthy"},
        {"name": "ops-adduser", "url": r.url("/500"), "ops_canvas": "sign-up", "services": [ACC_ID]},
        {"name": "degraded", "url": r.url("/degraded"), "body_contains": "healthy"},
        {"name": "silent", "url": silent},
        {"name": "slow", "url": silent + "slow", "timeout": f"{SLOW_TIMEOUT_S}s"},
        {"name": "refused", "url": f"http://127.0.0.1:{closed_port()}/"},
        {"name": "reset", "url": r.url("/reset")},
        {"name": "tls-ok", "url": r.url("/ok", tls=True)},
        {"name": "tls-untrusted", "url": r.url("/ok", tls=True), "ca_file": other_ca},
        {"name": "tls-name", "url": r.url("/ok", tls=True, host="localhost")},
        {"name": "dns", "url": f"http://{UNRESOLVED}/"},
        {"name": "gfe-a", "url": r.url("/gfe")},
        {"name": "gfe-b", "url": r.url("/gfe", host="localhost")},
        {"name": "flap", "url": r.url("/flap")},
        {"name": "toggle", "url": r.url("/toggle"), "expect_status": ["200", "204"]},
    ]


class ProbeSignalsTests(unittest.TestCase):
    """Every kind of target in one daemon."""

    @classmethod
    def setUpClass(cls):
        cls.c = ProbeRig(cls.__name__, every_target)
        cls.c.http.fault_reset(prefix="/reset", count=None)
        cls.started = time.monotonic()
        cls.c.start()

    @classmethod
    def tearDownClass(cls):
        c = cls.c
        try:
            c.close()
        finally:
            c.daemon.assert_no_secret(c.rig.tokens)
            c.daemon.assert_logs_well_formed()
            assert not c.http.errors and not c.https.errors, (c.http.errors, c.https.errors)

    def assertFailure(self, target: str, outcome: str, error: str = "", status: str = "") -> dict:
        sig = self.c.wait_failure(target, timeout=10 + SLOW_TIMEOUT_S)
        self.assertEqual(sig.get("source"), "probes")
        self.assertEqual(sig.get("target"), target)
        self.assertEqual(sig.get("outcome"), outcome, sig)
        self.assertEqual(sig.get("status"), status, sig)
        self.assertTrue(sig.get("error"), sig)
        if error:
            self.assertRegex(sig["error"], error)
        self.assertIsNotNone(sig.get("value"), "the latency")
        return sig

    # ---------------------------------------------------------------- outcomes

    def test_passing_targets_give_no_failure(self):
        self.c.wait_failure("silent", timeout=10)  # several rounds have run by then
        for name in ("ok", "tls-ok"):
            with self.subTest(name):
                self.assertEqual(self.c.failures(name), [])
                self.assertEqual(self.c.metric("runbookd_probe_up", target=name), 1)

    def test_a_wrong_status_from_our_server(self):
        sig = self.assertFailure("ops-adduser", "wrong_status", r"^HTTP 500 \(expected 2xx\)$", "500")
        self.assertEqual(sig.get("answered_by"), "backend")
        self.assertEqual(sig.get("canvas"), "sign-up")
        self.assertEqual(sig.get("services"), ACC_ID)
        self.assertEqual(sig.get("url"), self.c.url("/500"))

    def test_googles_502_page_on_two_hosts_is_the_front_ends(self):
        a = self.assertFailure("gfe-a", "wrong_status", "Google's load balancer", "502")
        self.assertEqual(a.get("answered_by"), "google_frontend")
        b = self.c.wait_failure("gfe-b", where=lambda e: e.get("gfe_hosts") == "2")
        self.assertEqual(b.get("answered_by"), "google_frontend")

    def test_the_body_text_missing(self):
        self.assertFailure("degraded", "body_mismatch", "without the expected text", "200")

    def test_a_silent_server_times_out_at_its_timeout(self):
        sig = self.assertFailure("silent", "timed_out", rf"timed out after {TIMEOUT_S}s during waiting for the answer")
        self.assertAlmostEqual(sig["value"], TIMEOUT_S, delta=0.5)

    def test_a_slow_target_delays_no_other(self):
        slow = self.assertFailure("slow", "timed_out", rf"timed out after {SLOW_TIMEOUT_S}s")
        first_slow = parse_time(slow["since"])
        # While the slow target's first check waited its 4 s, the fast targets were checked
        # every second.
        oks = self.c.http.snapshot_requests("/ok")
        self.assertGreaterEqual(len(oks), 3)
        by_then = [r for r in oks if r.time - oks[0].time < SLOW_TIMEOUT_S - 0.5]
        self.assertGreaterEqual(len(by_then), 3, [r.time for r in oks])
        self.assertIsNotNone(first_slow)

    def test_a_refused_connection(self):
        self.assertFailure("refused", "refused", r"(?i)connection refused")

    def test_a_reset_connection(self):
        self.assertFailure("reset", "reset", r"(?i)reset|closed the connection")

    def test_an_untrusted_ca_is_a_tls_error_named_as_the_certs_source_does(self):
        sig = self.assertFailure("tls-untrusted", "tls_error", r"(?i)unable to get local issuer|untrusted")
        self.assertEqual(sig.get("tls"), "untrusted_issuer")

    def test_a_certificate_for_another_name_is_a_tls_error(self):
        sig = self.assertFailure("tls-name", "tls_error", r"(?i)hostname mismatch|another host")
        self.assertEqual(sig.get("tls"), "name_mismatch")

    def test_a_name_that_does_not_resolve(self):
        self.assertFailure("dns", "dns_failure", rf"resolve {UNRESOLVED}")

    # ---------------------------------------------------------------- runs, flapping, recovery

    def test_a_failure_counts_after_two_checks_in_a_row_since_the_first(self):
        sigs = wait_for(lambda: (lambda s: s if len(s) >= 2 else None)(self.c.failures("ops-adduser")), 15,
                        "two failures of ops-adduser", diagnostics=self.c.diagnostics)
        self.assertEqual(sigs[0]["consecutive"], "2", "never after one failed check")
        self.assertEqual(sigs[1]["consecutive"], "3")
        self.assertEqual(sigs[0]["since"], sigs[1]["since"])
        first_check = parse_time(sigs[0]["since"])
        self.assertGreater(parse_time(sigs[0]["ts"]), first_check)
        self.assertEqual(sigs[0]["flapping"], "false")

    def test_a_flapping_target_is_reported_as_flapping(self):
        sig = self.c.wait_failure("flap", timeout=20, where=lambda e: e.get("flapping") == "true")
        self.assertEqual(sig["consecutive"], "1", "one failed check at a time: counted because it flaps")
        self.assertEqual(sig["status"], "500")

    def test_a_target_that_passes_again_recovers(self):
        fail = self.c.wait_failure("toggle")
        self.assertEqual(fail["status"], "503")
        self.c.http.toggle_ok = True
        rec = self.c.wait_signal("probe.recovered", timeout=10, subject="toggle")
        self.assertEqual(rec["since"], fail["since"])
        self.assertEqual(rec["status"], "200")
        self.assertGreater(rec["value"], 0)

    # ---------------------------------------------------------------- health and metrics

    def test_the_source_is_healthy_though_targets_fail_and_the_metrics(self):
        self.c.wait_failure("slow", timeout=10 + SLOW_TIMEOUT_S)
        self.c.wait_source("probes", "healthy", timeout=15)
        r = self.c.daemon.http("GET", "/metrics")
        text = r.body.decode()
        import test_prometheus
        samples = test_prometheus.parse_exposition(text)
        v = lambda name, **labels: test_prometheus.value(samples, name, **labels)  # noqa: E731
        self.assertIn("# TYPE runbookd_probe_checks_total counter", text)
        self.assertIn("# TYPE runbookd_probe_duration_seconds histogram", text)
        self.assertEqual(v("runbookd_source_up", source="probes"), 1)
        for outcome in ("ok", "wrong_status", "body_mismatch", "timed_out", "reset", "refused", "tls_error",
                        "dns_failure"):
            with self.subTest(outcome):
                self.assertGreaterEqual(v("runbookd_probe_checks_total", outcome=outcome), 1)
        self.assertEqual(v("runbookd_probe_checks_total", outcome="bad_response"), 0, "pre-initialised")
        self.assertEqual(v("runbookd_probe_up", target="refused"), 0)
        self.assertGreaterEqual(v("runbookd_probe_signals_total", kind="probe.failure"), 1)


class ProbeEndToEndTests(unittest.TestCase):
    def test_a_page_while_the_sign_up_canvas_fails_ranks_the_ops_canvas_first(self):
        def targets(r: ProbeRig) -> list[dict]:
            return [{"name": "ops-adduser", "url": r.url("/500"), "ops_canvas": "sign-up", "services": [ACC_ID]},
                    {"name": "www", "url": r.url("/ok")}]
        c = ProbeRig(type(self).__name__, targets).start()
        try:
            sig = c.wait_failure("ops-adduser")
            c.wait_source("probes", "healthy")
            inc = c.rig.trigger(pagerduty.Incident(title="Sign-ups failing", service_id=ACC_ID,
                                                   service_name=ACC_NAME))
            text = c.wait_operations(inc, "ops canvases", "#operations ranking the ops canvas")
            self.assertIn("**1. One of the ops canvases isn't working", text)
            url = c.url("/500")
            plain = re.sub(r"\\(.)", r"\1", text)  # Discord's markdown escapes: \( -> (
            self.assertIn(f"sign-up is failing: the ops-adduser canvas ({url}) HTTP 500 (expected 2xx) "
                          f"since {sig['since']}", plain)
            self.assertIn(f"Open {url} and check the canvas's handlers and 404s", text)
            self.assertNotIn("probes source is", text)  # checked, not "not checkable"
        finally:
            c.close()
            c.daemon.assert_no_secret(c.rig.tokens)


if __name__ == "__main__":
    unittest.main()
