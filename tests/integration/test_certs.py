"""The certificate-expiry source against real TLS servers on loopback (tls_rig): one
``cert.expiry`` signal per target per round with its outcome (ok, expired, not yet valid,
name mismatch, untrusted issuer, handshake failed, refused, timed out, unresolved), the
earliest-expiring certificate of the chain (an expired intermediate is named as such), a
silent server timed out within the bounded timeout while the other targets are reported
promptly, a 100-certificate chain without a stall; the metrics; per-target and system trust;
and end to end, a page on a service whose host serves an expired certificate ranks "A cert
ran out" first with the host and ``openssl s_client``, while another service's certificate
expiring in 9 days is a warning line of #operations and not a cause.

The signal log line ("signal", debug level) is read with every label of the kind as a field
of its own (or, equally, under a ``labels`` object), and without ``value`` (or with
``null``) when no certificate was read."""

from __future__ import annotations

import re
import unittest
from datetime import datetime, timezone
from typing import Any, Callable, Optional

import harness
import pagerduty
import test_prometheus
import tls_rig
from harness import wait_for

INTERVAL = "5s"
TIMEOUT_S = 3
UNRESOLVED = "nowhere.invalid"  # RFC 6761: never resolves

API_ID, API_NAME = "PAPI001", "API"
WWW_ID, WWW_NAME = "PWWW002", "Website"
SERVICES = {
    API_ID: {"name": API_NAME, "impact": "API requests may fail."},
    WWW_ID: {"name": WWW_NAME, "impact": "The website may not load."},
}

OUTCOMES = {"ok", "expired", "not_yet_valid", "name_mismatch", "untrusted_issuer", "handshake_failed",
            "refused", "timed_out", "unresolved"}


# --------------------------------------------------------------------------- helpers


def yaml_text(value: dict, indent: int = 0) -> str:
    """harness.to_yaml, plus block sequences of mappings (certs.targets)."""
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


def label(sig: dict, name: str) -> Any:
    """A label of a signal log line: a field of its own, or under `labels`."""
    if isinstance(sig.get("labels"), dict):
        return sig["labels"].get(name)
    return sig.get(name)


def parse_time(text: str) -> datetime:
    """RFC 3339 (`Z` or an offset, with or without fractions) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def names(csv: Optional[str]) -> list[str]:
    """A comma-separated label as a list (a `DNS:` prefix tolerated)."""
    out = []
    for part in (csv or "").split(","):
        part = part.strip()
        if part.startswith("DNS:"):
            part = part[4:]
        if part:
            out.append(part)
    return out


def target(ep: tls_rig.Endpoint, services: list[str], **extra) -> dict:
    t = {"host": ep.host, "port": ep.port, "address": ep.address, "services": services}
    t.update(extra)
    return t


class CertRig(harness.SourceRig):
    """The TLS rig and a daemon checking `targets(rig)` every INTERVAL."""

    def __init__(self, name: str, targets: Callable[[tls_rig.TlsRig], list[dict]], certs: Optional[dict] = None):
        self.tls = tls_rig.TlsRig().start()
        try:
            section = {"interval": INTERVAL, "timeout": f"{TIMEOUT_S}s", "concurrency": 16,
                       "warn_within": "14d", "ca_file": self.tls.ca_file}
            section.update(certs or {})
            self.rig = harness.DaemonWithDiscord({
                "log": {"level": "debug"},  # "signal" lines
                "operations": {"edit_interval": "0s"},
                "services": SERVICES,
                "certs": section,
            }, name=name)
            self.rig.config["certs"]["targets"] = targets(self.tls)
            with open(self.daemon.config_path, "w") as f:
                f.write(yaml_text(self.rig.config) + "\n")
        except BaseException:
            self.tls.stop()
            raise

    def start(self) -> "CertRig":
        try:
            self.rig.start()
        except BaseException:
            self.tls.stop()
            raise
        return self

    def close(self) -> None:
        try:
            self.rig.stop()
        finally:
            self.rig.close()
            self.tls.stop()

    def diagnostics(self) -> str:
        eps = [f"{e.name} {e.host}:{e.port} connections={e.connections} handshakes={e.handshakes} sni={e.sni[-3:]}"
               for e in self.tls.endpoints.values()]
        return "--- TLS rig ---\n" + "\n".join(eps) + "\n" + self.rig.diagnostics()

    # ---------------------------------------------------------------- cert.expiry signals

    def certs(self, host: Optional[str] = None) -> list[dict]:
        return [e for e in self.signals("cert.expiry") if host is None or e.get("subject") == host]

    def wait_cert(self, host: str, count: int = 1, timeout: float = 20) -> dict:
        """The `count`th cert.expiry signal of `host`."""
        return wait_for(lambda: (lambda s: s[count - 1] if len(s) >= count else None)(self.certs(host)),
                        timeout, f"cert.expiry signal #{count} of {host}", diagnostics=self.diagnostics)

    def wait_round(self, hosts: list[str], timeout: float = 20) -> dict[str, dict]:
        """The first signal of every host."""
        wait_for(lambda: all(self.certs(h) for h in hosts), timeout, f"a signal for each of {hosts}",
                 diagnostics=self.diagnostics)
        return {h: self.certs(h)[0] for h in hosts}


def logged_at(entry: dict) -> datetime:
    return parse_time(entry["ts"])


# --------------------------------------------------------------------------- every outcome


def every_target(rig: tls_rig.TlsRig) -> list[dict]:
    out = []
    for ep in rig.endpoints.values():
        services = [API_ID, harness.SERVICE_ID] if ep.name == "valid" else [WWW_ID]
        out.append(target(ep, services))
    out.append({"host": UNRESOLVED, "port": 443, "services": [WWW_ID]})  # resolved, not `address`
    return out


class CertSignalsTests(unittest.TestCase):
    """Every endpoint of the rig, and a host that does not resolve, in one daemon."""

    @classmethod
    def setUpClass(cls):
        cls.c = CertRig(cls.__name__, every_target).start()
        cls.tls = cls.c.tls
        cls.hosts = [e.host for e in cls.tls.endpoints.values()] + [UNRESOLVED]
        cls.first = cls.c.wait_round(cls.hosts, timeout=10 + 3 * TIMEOUT_S)

    @classmethod
    def tearDownClass(cls):
        c = cls.c
        try:
            c.close()
        finally:
            c.daemon.assert_no_secret(c.rig.tokens)
            c.daemon.assert_logs_well_formed()

    # ---------------------------------------------------------------- assertions

    def assertSignal(self, ep_or_host, outcome: str, error: Optional[str] = None) -> dict:
        """The first signal of the endpoint (or host): source, subject, host, port, outcome,
        and `error` (a regex) found in the error label, which is empty exactly when ok."""
        host = ep_or_host if isinstance(ep_or_host, str) else ep_or_host.host
        sig = self.first[host]
        self.assertEqual(sig.get("source"), "certs")
        self.assertEqual(sig.get("subject"), host)
        self.assertEqual(label(sig, "host"), host)
        if not isinstance(ep_or_host, str):
            self.assertEqual(str(label(sig, "port")), str(ep_or_host.port))
        self.assertEqual(label(sig, "outcome"), outcome, sig)
        if outcome == "ok":
            self.assertEqual(label(sig, "error"), "", sig)
        else:
            self.assertTrue(label(sig, "error"), f"an {outcome} signal says why: {sig}")
            if error:
                self.assertRegex(label(sig, "error"), error)
        return sig

    def assertCertificate(self, sig: dict, ep: tls_rig.Endpoint) -> None:
        """The certificate labels and value match what the endpoint presents."""
        self.assertEqual(parse_time(label(sig, "not_after")), ep.not_after, sig)
        self.assertEqual(label(sig, "which"), ep.which, sig)
        self.assertIn(ep.cert_subject, label(sig, "cert_subject"))
        self.assertEqual(names(label(sig, "sans")), ep.sans)
        self.assertIn(ep.issuer, label(sig, "issuer"))
        value = sig.get("value")
        self.assertIsNotNone(value, f"a certificate was read, so there is a value: {sig}")
        expected = (ep.not_after - logged_at(sig)).total_seconds()
        self.assertAlmostEqual(value, expected, delta=30)

    def assertNoCertificate(self, sig: dict) -> None:
        self.assertIsNone(sig.get("value"), f"no certificate read, no value: {sig}")
        self.assertFalse(label(sig, "not_after"), sig)
        self.assertFalse(label(sig, "which"), sig)

    # ---------------------------------------------------------------- the outcomes

    def test_a_valid_certificate_is_ok_with_every_label(self):
        ep = self.tls.valid
        sig = self.assertSignal(ep, "ok")
        self.assertCertificate(sig, ep)
        self.assertEqual(names(label(sig, "sans")), ["api.test", "api2.test"])
        self.assertEqual(set(names(label(sig, "services"))), {API_ID, harness.SERVICE_ID})
        self.assertGreater(sig["value"], 364 * 86400)
        self.assertIn(ep.host, ep.sni, "SNI is the target's host")

    def test_an_expired_certificate(self):
        ep = self.tls.expired
        sig = self.assertSignal(ep, "expired", "(?i)certificate has expired")
        self.assertCertificate(sig, ep)
        self.assertLess(sig["value"], -7000)
        self.assertGreater(sig["value"], -7200 - 600)
        self.assertEqual(label(sig, "which"), "leaf")

    def test_certificates_expiring_soon_are_ok_with_the_time_left(self):
        for ep, days in ((self.tls.expires_5d, 5), (self.tls.expires_9d, 9)):
            with self.subTest(ep.host):
                sig = self.assertSignal(ep, "ok")
                self.assertCertificate(sig, ep)
                self.assertEqual(int(sig["value"] // 86400), days)
                self.assertEqual(label(sig, "services"), WWW_ID)

    def test_a_certificate_not_yet_valid(self):
        ep = self.tls.not_yet_valid
        sig = self.assertSignal(ep, "not_yet_valid", "certificate is not yet valid")
        self.assertCertificate(sig, ep)
        self.assertGreater(sig["value"], 0)

    def test_a_certificate_for_another_name(self):
        ep = self.tls.wrong_host
        sig = self.assertSignal(ep, "name_mismatch", r"(?i)hostname mismatch|other\.test")
        self.assertCertificate(sig, ep)
        self.assertEqual(label(sig, "sans"), "other.test")

    def test_an_untrusted_issuer(self):
        ep = self.tls.untrusted
        sig = self.assertSignal(ep, "untrusted_issuer", "unable to get local issuer certificate")
        self.assertCertificate(sig, ep)
        self.assertIn(tls_rig.ROGUE_INTERMEDIATE_CN, label(sig, "issuer"))

    def test_an_expired_intermediate_is_named_as_the_one_that_expired(self):
        ep = self.tls.expired_intermediate
        sig = self.assertSignal(ep, "expired", "(?i)certificate has expired")
        self.assertEqual(label(sig, "which"), "intermediate")
        self.assertEqual(parse_time(label(sig, "not_after")), ep.not_after)  # the intermediate's, not the leaf's
        self.assertCertificate(sig, ep)
        self.assertLess(sig["value"], -86000)
        # The leaf's own labels: its name, and its issuer the expired intermediate.
        self.assertIn("chain.test", label(sig, "cert_subject"))
        self.assertIn(tls_rig.EXPIRED_INTERMEDIATE_CN, label(sig, "issuer"))

    def test_a_certificate_without_san_matches_its_common_name(self):
        """OpenSSL's X509_check_host with default flags (what SSL_set1_host and Asio's
        host_name_verification use) falls back to the subject CN when a certificate has no
        DNS subjectAltName; test_tls_rig checks the same with s_client -verify_hostname."""
        ep = self.tls.no_san
        sig = self.assertSignal(ep, "ok")
        self.assertCertificate(sig, ep)
        self.assertEqual(label(sig, "sans"), "")
        self.assertIn("nosan.test", label(sig, "cert_subject"))

    def test_a_100_certificate_chain_has_a_clear_outcome_without_a_stall(self):
        ep = self.tls.long_chain
        sig = self.first[ep.host]
        outcome = label(sig, "outcome")
        self.assertIn(outcome, OUTCOMES - {"timed_out"}, sig)
        # Reported before the silent target's timeout ends the round: no stall.
        self.assertLess(logged_at(sig), logged_at(self.first[self.tls.silent.host]))
        if outcome == "ok":  # OpenSSL's default verify depth (100) takes 99 intermediates
            self.assertCertificate(sig, ep)
            self.assertEqual(label(sig, "which"), "leaf")
        else:
            self.assertTrue(label(sig, "error"), sig)

    def test_a_refused_connection(self):
        sig = self.assertSignal(self.tls.refused, "refused", r"(?i)connection refused")
        self.assertNoCertificate(sig)

    def test_a_silent_server_times_out_while_the_others_are_reported_promptly(self):
        silent = self.assertSignal(self.tls.silent, "timed_out", r"(?i)timed? ?out")
        self.assertNoCertificate(silent)
        self.assertGreater(self.tls.silent.connections, 0, "the daemon did connect")
        prompt = [self.first[self.tls.endpoints[n].host] for n in ("valid", "expired", "refused", "truncated")]
        first_done = min(logged_at(s) for s in prompt)
        last_prompt = max(logged_at(s) for s in prompt)
        waited = (logged_at(silent) - first_done).total_seconds()
        self.assertGreaterEqual(waited, TIMEOUT_S - 0.5, "the silent target is given its whole timeout")
        self.assertLessEqual(waited, TIMEOUT_S + 2.5, "and no more than that")
        self.assertLessEqual((last_prompt - first_done).total_seconds(), 1.5,
                             "the other targets do not wait for the silent one")

    def test_plain_http_on_the_tls_port_is_a_failed_handshake(self):
        sig = self.assertSignal(self.tls.plain_http, "handshake_failed", "wrong version number")
        self.assertNoCertificate(sig)

    def test_a_truncated_handshake_is_a_failed_handshake(self):
        sig = self.assertSignal(self.tls.truncated, "handshake_failed",
                                r"(?i)unexpected eof|stream truncated|end of file|eof")
        self.assertNoCertificate(sig)
        self.assertLess(logged_at(sig), logged_at(self.first[self.tls.silent.host]), "not a timeout")

    def test_a_host_that_does_not_resolve(self):
        sig = self.assertSignal(UNRESOLVED, "unresolved", r"(?i)resolv|not known|not found")
        self.assertEqual(str(label(sig, "port")), "443")
        self.assertNoCertificate(sig)

    # ---------------------------------------------------------------- rounds, SNI, health, metrics

    def test_one_signal_per_target_per_round(self):
        # Between the end of one round (the silent target, last) and the start of the next,
        # every target has had exactly as many signals as there were rounds.
        def even() -> Optional[dict]:
            counts = {h: len(self.c.certs(h)) for h in self.hosts}
            return counts if len(set(counts.values())) == 1 and min(counts.values()) >= 2 else None
        counts = wait_for(even, 30, "two whole rounds", diagnostics=self.c.diagnostics)
        self.assertGreaterEqual(counts[self.tls.valid.host], 2)
        self.assertEqual({s["subject"] for s in self.c.certs()}, set(self.hosts))

    def test_sni_is_the_host_of_every_tls_target(self):
        for ep in self.tls.tls_endpoints():
            with self.subTest(ep.host):
                self.assertIn(ep.host, ep.sni)
                self.assertEqual(set(ep.sni), {ep.host})

    def test_the_source_is_healthy_though_targets_fail(self):
        self.c.wait_source("certs", "healthy")
        self.assertEqual(self.c.metric("runbookd_source_up", source="certs"), 1)

    def test_the_metrics(self):
        r = self.c.daemon.http("GET", "/metrics")
        text = r.body.decode()
        samples = test_prometheus.parse_exposition(text)
        v = lambda name, **labels: test_prometheus.value(samples, name, **labels)  # noqa: E731
        self.assertIn("# TYPE runbookd_cert_not_after_timestamp_seconds gauge", text)
        self.assertIn("# TYPE runbookd_cert_checks_total counter", text)
        self.assertIn("# TYPE runbookd_cert_check_duration_seconds histogram", text)
        for ep in self.tls.tls_endpoints():
            if ep.name == "long_chain" and label(self.first[ep.host], "outcome") != "ok":
                continue
            with self.subTest(ep.host):
                self.assertAlmostEqual(v("runbookd_cert_not_after_timestamp_seconds", host=ep.host),
                                       ep.not_after.timestamp(), delta=1)
        for host in (self.tls.refused.host, self.tls.silent.host, UNRESOLVED):
            self.assertIsNone(v("runbookd_cert_not_after_timestamp_seconds", host=host),
                              f"no certificate read from {host}")
        # At least the first round's outcomes are counted.
        seen: dict[str, int] = {}
        for s in self.first.values():
            seen[label(s, "outcome")] = seen.get(label(s, "outcome"), 0) + 1
        for outcome, n in seen.items():
            with self.subTest(outcome):
                self.assertGreaterEqual(v("runbookd_cert_checks_total", outcome=outcome), n)
        self.assertGreaterEqual(v("runbookd_cert_checks_total"), len(self.hosts))
        count = v("runbookd_cert_check_duration_seconds_count")
        self.assertGreaterEqual(count, len(self.hosts))
        self.assertEqual(v("runbookd_cert_check_duration_seconds_bucket", le="+Inf"), count)
        # The silent target alone took the whole timeout.
        self.assertGreaterEqual(v("runbookd_cert_check_duration_seconds_sum"), TIMEOUT_S - 0.5)
        self.assertEqual(v("runbookd_source_up", source="certs"), 1)


# --------------------------------------------------------------------------- trust


class CertTrustTests(unittest.TestCase):
    def test_the_system_store_by_default_and_a_targets_own_ca_file(self):
        def targets(rig: tls_rig.TlsRig) -> list[dict]:
            return [target(rig.valid, [API_ID]),  # our root is not in the system store
                    target(rig.untrusted, [API_ID], ca_file=rig.pki.rogue_root.cert)]
        c = CertRig(type(self).__name__, targets, certs={"ca_file": ""}).start()
        try:
            c.wait_round([c.tls.valid.host, c.tls.untrusted.host])
            valid = c.certs(c.tls.valid.host)[0]
            self.assertEqual(label(valid, "outcome"), "untrusted_issuer", valid)
            self.assertTrue(label(valid, "error"))
            self.assertIsNotNone(valid.get("value"))
            rogue = c.certs(c.tls.untrusted.host)[0]
            self.assertEqual(label(rogue, "outcome"), "ok", rogue)
            self.assertEqual(parse_time(label(rogue, "not_after")), c.tls.untrusted.not_after)
        finally:
            c.close()


# --------------------------------------------------------------------------- end to end


class CertEndToEndTests(unittest.TestCase):
    def test_a_page_on_a_service_with_an_expired_certificate(self):
        def targets(rig: tls_rig.TlsRig) -> list[dict]:
            return [target(rig.valid, [API_ID]),
                    target(rig.expired, [API_ID]),
                    target(rig.expires_9d, [WWW_ID])]
        c = CertRig(type(self).__name__, targets).start()
        try:
            expired, soon = c.tls.expired, c.tls.expires_9d
            c.wait_round([c.tls.valid.host, expired.host, soon.host])
            self.assertEqual(label(c.certs(expired.host)[0], "outcome"), "expired")
            c.wait_source("certs", "healthy")
            inc = c.rig.trigger(pagerduty.Incident(title="API clients see TLS errors", service_id=API_ID,
                                                   service_name=API_NAME))
            text = c.wait_operations(inc, "A cert ran out", "#operations ranking the expired certificate")
            self.assertIn("**1. A cert ran out", text)
            # The evidence names the host and when it expired (2h ago; not after, to the minute).
            self.assertRegex(text, r"the certificate of expired\.test expired 2h 0\dm ago")
            self.assertIn(expired.not_after.strftime("%Y-%m-%dT%H:%M"), text)
            self.assertIn(f"openssl s_client -connect {expired.host}:{expired.port} -servername {expired.host}",
                          text)
            # The other service's certificate expiring in 9 days: a warning line, not a cause.
            self.assertRegex(text, r"www\.test[^\n]*expires in 9 days")
            suspects = [b for b in text.split("\n\n") if re.match(r"\*\*\d+\. ", b)]
            self.assertTrue(suspects)
            for block in suspects:
                self.assertNotIn("www.test", block, "a certificate that has not expired is not a cause")
            self.assertNotRegex(text, r"api\.test[^\n]*expires in", "a year away is no warning")
            self.assertNotIn("certs source is", text)  # checked, not "not checkable"
        finally:
            c.close()
            c.daemon.assert_no_secret(c.rig.tokens)


if __name__ == "__main__":
    unittest.main()
