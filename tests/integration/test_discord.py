"""Discord delivery: rate limits, retries, outages, mentions, secrecy, reminders, SIGTERM."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import unittest

import fake_discord as fd
import harness
import pagerduty
from harness import DaemonWithDiscord, DiscordTestCase, stays, wait_for

EPS = 0.05  # clock granularity between the fake's timestamps and the daemon's timers


def strings_in(value) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


class DeliveryCase(DiscordTestCase):
    """Shared checks for classes whose daemon posts to the fake. Only #status is
    configured, so each scripted answer meets the #status post it is meant for
    (test_operations covers #operations)."""

    operations_webhook = False

    def tearDown(self):
        super().tearDown()
        self.assertNoViolations()
        for r in self.rig.discord.snapshot_requests():
            if r.method in ("POST", "PATCH") and isinstance(r.body, dict):
                self.assertEqual(r.body.get("allowed_mentions"), {"parse": []},
                                 f"{r.method} without allowed_mentions {{'parse': []}}: {r.body}")

    def requests_for(self, inc: pagerduty.Incident) -> list[fd.Request]:
        return [r for r in self.rig.discord.execute_requests(self.rig.status_id)
                if isinstance(r.body, dict)
                and any(self.rig.embed_matches(e, inc) for e in r.body.get("embeds") or [])]

    def assertPostedOnce(self, *incs: pagerduty.Incident):
        """Posts to one channel go out in order, so once a later sentinel's notice has
        arrived, a duplicate of an earlier post would already be visible."""
        sentinel = self.rig.trigger()
        self.rig.wait_embeds(sentinel, timeout=40)
        for inc in incs:
            n = len(self.rig.embeds_for(inc))
            self.assertEqual(n, 1, f"incident {inc.id}: {n} #status embeds, expected exactly 1")

    def assertInOrder(self, incs: list[pagerduty.Incident]):
        seq = [e for _, e in self.rig.status_embeds()]
        firsts = []
        for inc in incs:
            idx = next(i for i, e in enumerate(seq) if self.rig.embed_matches(e, inc))
            firsts.append(idx)
        self.assertEqual(firsts, sorted(firsts), "notices arrived out of order")


class DeliveryTests(DeliveryCase):

    def test_rate_limit_retry_after_is_honoured(self):
        self.rig.discord.script(fd.rate_limit(1.5))
        inc = self.rig.trigger()
        self.rig.wait_embeds(inc, timeout=15)
        reqs = self.requests_for(inc)
        limited = [r for r in reqs if r.status == 429]
        self.assertEqual(len(limited), 1, f"statuses: {[r.status for r in reqs]}")
        retry = reqs[reqs.index(limited[0]) + 1]
        waited = retry.time - limited[0].responded_at
        self.assertGreaterEqual(waited, 1.5 - EPS, f"retried {waited:.3f}s after a 429 with retry_after 1.5")
        self.assertPostedOnce(inc)

    def test_global_rate_limit_is_honoured(self):
        before = len(self.rig.discord.snapshot_requests())
        self.rig.discord.script(fd.rate_limit(1.2, global_=True))
        inc = self.rig.trigger()
        self.rig.wait_embeds(inc, timeout=15)
        reqs = self.rig.discord.snapshot_requests()[before:]
        limited = next(r for r in reqs if r.status == 429)
        after = [r for r in reqs if r.time > limited.responded_at]
        self.assertTrue(after)
        waited = after[0].time - limited.responded_at
        self.assertGreaterEqual(waited, 1.2 - EPS,
                                f"next request {waited:.3f}s after a global 429 with retry_after 1.2")
        self.assertPostedOnce(inc)

    def test_exhausted_bucket_headers_are_honoured(self):
        self.rig.discord.script(fd.rate_limit_headers(remaining=0, reset_after=1.5))
        first = self.rig.trigger()
        self.rig.wait_embeds(first)
        answered = self.requests_for(first)[0]
        self.assertEqual(answered.status, 200)
        second = self.rig.trigger()
        self.rig.wait_embeds(second, timeout=15)
        nxt = self.requests_for(second)[0]
        waited = nxt.time - answered.responded_at
        self.assertGreaterEqual(waited, 1.5 - EPS,
                                f"posted {waited:.3f}s after X-RateLimit-Remaining: 0, Reset-After: 1.5")
        self.assertNotIn(429, [r.status for r in self.requests_for(second)],
                         "the daemon ran into a 429 although the headers said to wait")

    def test_server_errors_are_retried_and_post_arrives_once(self):
        self.rig.discord.script(fd.server_error(500), fd.server_error(502), fd.server_error(503))
        inc = self.rig.trigger()
        self.rig.wait_embeds(inc, timeout=20)
        statuses = [r.status for r in self.requests_for(inc)]
        self.assertEqual(statuses[:4], [500, 502, 503, 200], f"statuses {statuses}")
        gaps = [b.time - a.responded_at for a, b in zip(self.requests_for(inc), self.requests_for(inc)[1:])]
        self.assertLess(max(gaps), 10.0, f"retry gaps {gaps}: backoff far beyond ~0.5s, 1s, 2s")
        self.assertPostedOnce(inc)

    def test_dropped_connection_is_retried(self):
        self.rig.discord.script(fd.drop())
        inc = self.rig.trigger()
        self.rig.wait_embeds(inc, timeout=20)
        statuses = [r.status for r in self.requests_for(inc)]
        self.assertEqual(statuses[0], None, f"statuses {statuses}")
        self.assertPostedOnce(inc)

    def test_reset_connection_is_retried(self):
        self.rig.discord.script(fd.reset())
        inc = self.rig.trigger()
        self.rig.wait_embeds(inc, timeout=20)
        self.assertPostedOnce(inc)

    def test_slow_answer_within_timeout_posts_once(self):
        self.rig.discord.script(fd.slow(1.0))  # request_timeout is 3s
        inc = self.rig.trigger()
        self.rig.wait_embeds(inc, timeout=10)
        self.assertPostedOnce(inc)
        self.assertEqual(len(self.requests_for(inc)), 1, "a slow (1s) but successful post was re-sent")

    def _outage(self, mode: str, count: int):
        d = self.rig.discord
        d.set_outage(mode)
        began = time.monotonic()
        before = len(d.snapshot_requests())
        incs = []
        for _ in range(count):
            incs.append(self.rig.trigger())
        # The daemon is retrying into the outage...
        wait_for(lambda: sum(1 for r in d.snapshot_requests()[before:] if r.status != 200) >= 2,
                 15, "two failed attempts during the outage", diagnostics=self.rig.diagnostics)
        # ...and the outage lasts a few seconds (a deliberately stalling fake).
        left = 3.0 - (time.monotonic() - began)
        if left > 0:
            time.sleep(left)
        self.assertEqual(self.rig.embeds_for(incs[0]), [])
        d.set_outage(None)
        for inc in incs:
            self.rig.wait_embeds(inc, timeout=45)
        self.assertInOrder(incs)
        self.assertPostedOnce(*incs)

    def test_outage_503_loses_no_post(self):
        self._outage("503", 3)

    def test_outage_dropped_connections_loses_no_post(self):
        self._outage("drop", 2)

    def test_burst_is_coalesced_within_limits_in_order(self):
        incs = [self.rig.trigger() for _ in range(12)]
        for inc in incs:
            self.rig.wait_embeds(inc, timeout=60)
        for m in self.rig.discord.snapshot_messages(self.rig.status_id):
            self.assertLessEqual(len(m.embeds), 10)
        self.assertInOrder(incs)
        self.assertPostedOnce(*incs)

    def test_mentions_are_suppressed_and_escaped(self):
        inc = pagerduty.Incident(title="@everyone @here the DB is on fire <@&1234> <@5678>",
                                 service_id="PZZZZZZ", service_name="@everyone Service")
        self.rig.trigger(inc)
        self.rig.wait_embeds(inc)
        # Sent after the notice is out, so the relay is not coalesced with it (see
        # CoalescingTests for that case).
        r = self.rig.pd.send(pagerduty.status_update_published(inc, "@everyone please @here stay calm"))
        self.assertEqual(r.status, 202)
        self.rig.wait_embeds(inc, 2)
        sentinel = self.rig.trigger()
        self.rig.wait_embeds(sentinel)
        reqs = self.rig.discord.snapshot_requests()
        self.assertTrue(reqs)
        for r in reqs:
            if not isinstance(r.body, dict):
                continue
            self.assertEqual(r.body.get("allowed_mentions"), {"parse": []}, r.body)
            for s in strings_in({k: v for k, v in r.body.items() if k != "allowed_mentions"}):
                for bad in ("@everyone", "@here"):
                    self.assertNotIn(bad, s, f"unescaped {bad} in a Discord request: {s!r}")


class CoalescingTests(DeliveryCase):
    """A longer coalesce window so that several posts surely share one message."""

    overrides = {"notify": {"coalesce_window": "1s"}}

    def test_posts_of_one_incident_in_one_message_are_all_shown(self):
        # The notice and a relayed status update, queued within one coalesce window, may
        # share a message; Discord de-duplicates embeds by URL (api-facts 2.5), so two
        # embeds with the incident's url in one message would hide the second.
        inc = self.rig.trigger()
        self.rig.wait_embeds(inc, 1)
        r = self.rig.pd.send(pagerduty.status_update_published(inc, "We rolled back the deploy."))
        self.assertEqual(r.status, 202)
        r = self.rig.pd.send(pagerduty.resolved(inc))
        self.assertEqual(r.status, 202)
        self.rig.wait_embeds(inc, 3, timeout=10)
        shared = []
        for m in self.rig.discord.snapshot_messages(self.rig.status_id):
            titles = [e.get("title") for e in m.embeds if e.get("url") == inc.html_url]
            if len(titles) > 1:
                shared.append(titles)
        # Reported here once, not again by tearDown's violation check.
        self._violations_mark = len(self.rig.discord.violations)
        self.assertEqual(shared, [],
                         f"one Discord message carries several embeds with the incident's url "
                         f"{inc.html_url}; Discord de-duplicates embeds by URL, so only the first "
                         f"of each group is shown")

    def test_separate_incidents_coalesce_into_one_message(self):
        a, b, c = self.rig.trigger(), self.rig.trigger(), self.rig.trigger()
        for inc in (a, b, c):
            self.rig.wait_embeds(inc)
        msgs = {id(m) for m, e in self.rig.status_embeds()
                if any(self.rig.embed_matches(e, inc) for inc in (a, b, c))}
        self.assertLess(len(msgs), 3, "three notices queued within coalesce_window went out "
                                      "as three messages")
        self.assertInOrder([a, b, c])


class TokenSecrecyTests(DeliveryCase):
    """Discord answers 404 Unknown Webhook: the token must still never be printed."""

    overrides = {"log": {"level": "debug"}}

    @classmethod
    def setUpClass(cls):
        cls.rig = DaemonWithDiscord(cls.overrides, name=cls.__name__, known_status_webhook=False)
        cls.rig.start()

    def test_token_not_logged_on_404(self):
        d = self.rig.discord
        self.rig.trigger()
        got = d.wait_until(lambda: [r for r in d.snapshot_requests()
                                    if r.webhook_id == self.rig.status_id and r.status == 404],
                           10, "the daemon's post to the unknown webhook")
        self.assertEqual(got[0].response, {"message": "Unknown Webhook", "code": 10015})
        # Give the daemon a bounded chance to log the failure, then look for the token.
        try:
            self.rig.daemon.wait_log(lambda e: e.get("level") in ("warn", "warning", "error"),
                                     5, "a warn/error log about the 404")
        except AssertionError:
            pass
        # A 404 is final: no hammering of a webhook Discord says does not exist.
        self.assertTrue(stays(lambda: len([r for r in d.snapshot_requests()
                                           if r.webhook_id == self.rig.status_id]) == 1, 1.5),
                        "the daemon retried a post that Discord answered with 404")
        self.rig.daemon.assert_no_secret(self.rig.tokens)
        self.rig.daemon.assert_no_secret([self.rig.secret, self.rig.second_secret])
        self.assertTrue(self.rig.daemon.alive())

    def test_token_not_logged_at_startup_or_on_requests(self):
        self.rig.daemon.http("GET", "/metrics")
        self.rig.daemon.assert_no_secret(self.rig.tokens)


class RetryAfterCapTests(unittest.TestCase):
    """A global 429 asking for a day (retry_after 86400) is honoured for 10 minutes at most
    (net::max_retry_after): counted, logged, and both channels wait that long, not a day.
    A daemon of its own: it is left waiting, then killed."""

    def test_a_day_long_global_429_is_cut_to_ten_minutes(self):
        rig = DaemonWithDiscord({}, name="retry_after_cap")
        self.addCleanup(rig.close)
        rig.start()
        rig.discord.script(fd.rate_limit(86400, global_=True))
        rig.trigger()
        capped = rig.daemon.wait_log(lambda e: e.get("msg") == "upstream wait capped", 10,
                                     "the capped wait's log line")
        self.assertEqual(capped.get("client"), "discord")
        self.assertEqual(capped.get("asked_s"), 86400)
        self.assertEqual(capped.get("waiting_s"), 600)
        limited = rig.daemon.wait_log(lambda e: e.get("msg") == "post rate limited", 10,
                                      "the outbox's rate-limit line")
        self.assertTrue(limited.get("global"))
        self.assertLessEqual(limited.get("retry_after_ms"), 600_000,
                             "a global 429 of a day silences the channels for more than 10 minutes")
        r = rig.daemon.http("GET", "/metrics")
        import test_prometheus
        samples = test_prometheus.parse_exposition(r.body.decode())
        self.assertEqual(test_prometheus.value(samples, "runbookd_retry_after_capped_total", client="discord"), 1)
        rig.daemon.assert_no_secret(rig.tokens)


class TlsVerificationTests(unittest.TestCase):
    """The daemon trusts a different CA than the one that signed the fake's certificate:
    it must refuse the connection (verification is always on) and still not print the token."""

    def test_untrusted_certificate_is_refused_and_token_not_logged(self):
        other = harness.Pki(harness.make_tempdir("runbookd-it-otherca-"))
        self.addCleanup(shutil.rmtree, other.dir, True)
        rig = DaemonWithDiscord({"discord": {"ca_file": other.ca_cert}, "log": {"level": "debug"}},
                                name="untrusted")
        self.addCleanup(rig.close)
        rig.start()
        rig.trigger()
        rig.discord.wait_until(lambda: rig.discord.tls_errors, 10,
                               "the daemon's TLS handshake to be refused")
        self.assertEqual(rig.discord.snapshot_requests(), [],
                         "the daemon sent a request over a connection it should not trust")
        # A bounded look for the daemon's own report of the failure, then the secrecy check.
        try:
            rig.daemon.wait_log(lambda e: e.get("level") in ("warn", "warning", "error"), 5,
                                "a warn/error log about the TLS failure")
        except AssertionError:
            pass
        rig.daemon.assert_no_secret(rig.tokens)
        self.assertEqual(rig.daemon.terminate(timeout=10), 0, rig.daemon.tail())
        rig.daemon.assert_no_secret(rig.tokens)
        rig.daemon.assert_logs_well_formed()


class TlsCauseTests(unittest.TestCase):
    """A TLS failure says why: an expired certificate, one for another name, an untrusted
    issuer, each in the outbox's log line (no token in it)."""

    @classmethod
    def setUpClass(cls):
        # A root and an intermediate of their own (tls_rig's whole table would cost seconds).
        import tls_rig
        from datetime import timedelta
        cls.dir = harness.make_tempdir("runbookd-it-tlscause-")
        cls.pki = tls_rig.TlsPki(cls.dir)
        now, year = cls.pki.now, timedelta(days=365)
        cls.root = cls.pki.issue("runbookd tls-cause root", None, now - year, now + year, ca=True)
        cls.intermediate = cls.pki.issue("runbookd tls-cause intermediate", cls.root, now - year, now + year,
                                         ca=True)
        cls.ca_file = cls.pki.bundle("ca.pem", [cls.root])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def failure_logged(self, name: str, leaf_sans: list[str], expired: bool, ca_file: str,
                       host: str = "localhost") -> str:
        import fake_discord
        from datetime import timedelta
        now = self.pki.now
        not_after = now - timedelta(hours=2) if expired else now + timedelta(days=30)
        leaf = self.pki.issue(host, self.intermediate, now - timedelta(days=30), not_after, sans=leaf_sans)
        chain = self.pki.bundle(f"discord-{name}.pem", [leaf, self.intermediate])
        fake = fake_discord.FakeDiscord(chain, leaf.key).start()
        self.addCleanup(fake.stop)
        hook_id, token = harness.snowflake_id(), harness.unique_token()
        fake.add_webhook(hook_id, token)
        url = fake.url(hook_id, token).replace("127.0.0.1", host)
        rig = DaemonWithDiscord({"discord": {"ca_file": ca_file, "status_webhook_url": url}},
                                name=f"tls_{name}", operations_webhook=False)
        self.addCleanup(rig.close)
        rig.start()
        rig.trigger()
        line = rig.daemon.wait_log(lambda e: e.get("msg") == "post attempt failed", 15,
                                   "the failed attempt's log line")
        self.assertEqual(fake.snapshot_requests(), [], "a request went over a connection not trusted")
        rig.daemon.assert_no_secret([token])
        return line.get("error", "")

    def test_an_expired_certificate_is_named(self):
        error = self.failure_logged("expired", ["localhost"], True, self.ca_file)
        self.assertIn("tls handshake: certificate has expired", error)

    def test_a_certificate_for_another_name_is_named(self):
        error = self.failure_logged("wrong_host", ["other.test"], False, self.ca_file)
        self.assertIn("tls handshake: certificate is for another host (hostname mismatch)", error)

    def test_an_untrusted_issuer_is_named(self):
        other = harness.Pki(harness.make_tempdir("runbookd-it-otherca-"))
        self.addCleanup(shutil.rmtree, other.dir, True)
        error = self.failure_logged("untrusted", ["localhost"], False, other.ca_cert)
        self.assertIn("tls handshake: untrusted issuer (", error)


class WebhookUrlTests(unittest.TestCase):
    """A webhook URL may name any HTTPS host and port (a proxy, this fake): requests go there,
    verified, with the unversioned /api made /api/v10; the deprecated base_url still works."""

    def test_posts_go_to_the_host_and_port_the_url_names(self):
        rig = DaemonWithDiscord({"log": {"level": "debug"}}, name="direct_url", operations_webhook=False)
        self.addCleanup(rig.close)
        self.assertNotIn("base_url", rig.config["discord"])
        self.assertTrue(rig.config["discord"]["status_webhook_url"].startswith(
            f"https://127.0.0.1:{rig.discord.port}/api/webhooks/"))
        rig.start()
        inc = rig.trigger()
        rig.wait_embeds(inc)
        posts = rig.discord.execute_requests(rig.status_id)
        self.assertEqual(posts[0].path, f"/api/v10/webhooks/{rig.status_id}/{rig.status_token}")
        self.assertEqual(posts[0].status, 200)
        self.assertFalse([e for e in rig.daemon.snapshot_logs() if "deprecated" in str(e.get("msg"))])
        self.assertEqual(rig.daemon.terminate(timeout=10), 0, rig.daemon.tail())
        rig.daemon.assert_no_secret([*rig.tokens, rig.config["discord"]["status_webhook_url"]])
        rig.daemon.assert_logs_well_formed()

    def test_a_deprecated_base_url_still_delivers_and_warns(self):
        rig = DaemonWithDiscord(name="base_url", operations_webhook=False)
        self.addCleanup(rig.close)
        # As configurations written before: Discord's own URL, the fake named apart.
        rig.config["discord"]["base_url"] = rig.discord.base_url
        rig.config["discord"]["status_webhook_url"] = (
            f"https://discord.com/api/webhooks/{rig.status_id}/{rig.status_token}")
        with open(rig.daemon.config_path, "w") as f:
            f.write(harness.to_yaml(rig.config) + "\n")
        rig.start()
        rig.daemon.wait_log(lambda e: e.get("level") == "warn" and "base_url is deprecated" in e.get("msg", ""),
                            10, "the deprecation warning")
        inc = rig.trigger()
        rig.wait_embeds(inc)
        self.assertEqual(rig.daemon.terminate(timeout=10), 0, rig.daemon.tail())
        rig.daemon.assert_no_secret(rig.tokens)

    def test_http_and_a_conflicting_base_url_are_refused_without_the_url(self):
        token = "cfgSECRET" + harness.unique_token(16)
        cases = {
            "http": ({"status_webhook_url": f"http://127.0.0.1:9/api/webhooks/1/{token}"},
                     "the scheme must be https"),
            "conflict": ({"status_webhook_url": f"https://127.0.0.1:9/api/webhooks/1/{token}",
                          "base_url": "https://127.0.0.1:8/api/v10"},
                         "the webhook URLs name their own host"),
        }
        for name, (discord, reason) in cases.items():
            with self.subTest(name):
                rig = DaemonWithDiscord({"discord": discord}, name=f"refused_{name}")
                self.addCleanup(rig.close)
                r = subprocess.run([harness.require_binary(), "check-config", rig.daemon.config_path],
                                   capture_output=True, text=True, timeout=20)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(reason, r.stdout + r.stderr)
                self.assertNotIn(token, r.stdout + r.stderr)


class ReminderTests(DeliveryCase):
    overrides = {"status": {"reminder_interval": "2s"}}

    def test_update_after_interval_then_resolved(self):
        inc = pagerduty.Incident()
        sent = time.monotonic()
        self.rig.trigger(inc)
        self.rig.wait_embeds(inc, 1)
        notice_at = self._times(inc)[0]
        self.rig.wait_embeds(inc, 2, timeout=10)
        update_at = self._times(inc)[1]
        self.assertGreaterEqual(update_at - sent, 2.0 - EPS,
                                f"first update {update_at - sent:.2f}s after the trigger (interval 2s)")
        self.assertLess(update_at - notice_at, 6.0, "first update far later than the 2s interval")
        notice, update = self.rig.embeds_for(inc)[:2]
        self.assertNotEqual(notice.get("title"), update.get("title"), "the update repeats the notice")

        self.assertEqual(self.rig.pd.send(pagerduty.resolved(inc)).status, 202)
        resolved = wait_for(lambda: [e for e in self.rig.embeds_for(inc)
                                     if "resolved" in (e.get("title", "") + e.get("description", "")).lower()],
                            10, "a resolved message", diagnostics=self.rig.diagnostics)
        self.assertEqual(len(resolved), 1)
        count = len(self.rig.embeds_for(inc))
        last = self.rig.embeds_for(inc)[-1]
        self.assertIs(last, resolved[0], "a post for the incident came after the resolved message")
        # No reminders after resolution: watch for 1.5 intervals.
        self.assertTrue(stays(lambda: len(self.rig.embeds_for(inc)) == count, 3.0),
                        "an update was posted after the incident resolved")

    def _times(self, inc: pagerduty.Incident) -> list[float]:
        out = []
        for m, e in self.rig.status_embeds():
            if self.rig.embed_matches(e, inc):
                out.append(m.time)
        return out


class SigtermTests(unittest.TestCase):
    """Each test has its own daemon, since each ends it."""

    def setUp(self):
        self.rig = DaemonWithDiscord(name=self.id().rsplit(".", 1)[-1]).start()

    def tearDown(self):
        self.rig.close()
        self.rig.daemon.assert_no_secret(self.rig.tokens)
        self.rig.daemon.assert_logs_well_formed()

    def test_sigterm_when_idle_exits_0(self):
        inc = self.rig.trigger()
        self.rig.wait_embeds(inc)
        self.assertEqual(self.rig.daemon.terminate(timeout=10), 0, self.rig.daemon.tail())

    def test_sigterm_finishes_in_flight_post(self):
        d = self.rig.discord
        d.script(fd.slow(1.5))
        inc = self.rig.trigger()
        rec = d.wait_until(lambda: next((r for r in d.snapshot_requests()
                                         if r.webhook_id == self.rig.status_id), None),
                           10, "the post to be in flight")
        port = self.rig.daemon.port
        self.rig.daemon.signal(signal.SIGTERM)
        # It stops accepting connections (bounded: the slow post keeps it alive ~1.5s).
        wait_for(lambda: not self._accepts(port), 1.4, "the listener to close after SIGTERM")
        code = self.rig.daemon.terminate(timeout=10)
        exited = time.monotonic()
        self.assertEqual(code, 0, self.rig.daemon.tail())
        self.assertEqual(rec.status, 200)
        self.assertGreaterEqual(exited, rec.responded_at,
                                "exited before the in-flight post was answered")
        self.assertEqual(len(self.rig.embeds_for(inc)), 1)

    def test_sigterm_with_undeliverable_post_exits_0_within_drain_timeout(self):
        d = self.rig.discord
        d.set_outage("503")
        self.rig.trigger()
        d.wait_until(lambda: any(r.status == 503 for r in d.snapshot_requests()), 10,
                     "a failed post")
        start = time.monotonic()
        code = self.rig.daemon.terminate(timeout=12)
        took = time.monotonic() - start
        self.assertEqual(code, 0, self.rig.daemon.tail())
        self.assertLess(took, 3.0 + 2.0, f"took {took:.1f}s to exit; drain_timeout is 3s")

    def test_sigterm_aborts_a_post_stalled_past_drain_timeout(self):
        # request_timeout far beyond drain_timeout: only the shutdown abort can end the send.
        self.rig.close()
        self.rig = DaemonWithDiscord({"discord": {"request_timeout": "30s"}}, name="StalledDrain").start()
        d = self.rig.discord
        d.script(fd.slow(8.0))
        self.rig.trigger()
        d.wait_until(lambda: any(r.webhook_id == self.rig.status_id for r in d.snapshot_requests()), 10,
                     "the post to be in flight")
        start = time.monotonic()
        code = self.rig.daemon.terminate(timeout=12)
        took = time.monotonic() - start
        self.assertEqual(code, 0, self.rig.daemon.tail())
        self.assertLess(took, 3.0 + 1.5, f"took {took:.1f}s to exit; drain_timeout is 3s")
        self.assertIsNotNone(self.rig.daemon.find_log(lambda e: e.get("msg") == "post undelivered at shutdown"),
                             self.rig.daemon.tail())

    @staticmethod
    def _accepts(port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.settimeout(0.3)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(16).startswith(b"HTTP/1.1 200")
        except OSError:
            return False


if __name__ == "__main__":
    unittest.main()
