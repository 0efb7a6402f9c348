"""Intake: PagerDuty V3 webhooks, HTTP status codes, de-duplication, slow clients."""

from __future__ import annotations

import http.client
import json
import socket
import time
import unittest
import uuid

import harness
import pagerduty
from harness import DiscordTestCase, wait_for


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Sends raw bytes on a fresh connection and reads until EOF or ``timeout``.

    Returns (bytes received, whether the server closed the connection)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = b""
    closed = False
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        s.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
    finally:
        s.close()
    return got, closed


def status_of(raw: bytes) -> int | None:
    if not raw.startswith(b"HTTP/1."):
        return None
    try:
        return int(raw.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


class IntakeTests(DiscordTestCase):

    # ---------------------------------------------------------------- helpers

    def assertServing(self):
        r = self.rig.daemon.http("GET", "/healthz")
        self.assertEqual(r.status, 200, "daemon stopped serving /healthz")

    def send(self, payload, **kw) -> pagerduty.Response:
        return self.rig.pd.send(payload, **kw)

    def assertStatus(self, resp: pagerduty.Response, expected: int, what: str):
        self.assertEqual(resp.status, expected, f"{what}: got {resp.status} {resp.body[:200]!r}")

    def assertPostedOnce(self, inc: pagerduty.Incident):
        """Posts to one channel go out in order: once a later sentinel incident's notice has
        arrived, any duplicate of ``inc`` would have arrived before it."""
        sentinel = self.rig.trigger()
        self.rig.wait_embeds(sentinel)
        embeds = self.rig.embeds_for(inc)
        self.assertEqual(len(embeds), 1, f"expected exactly one #status post for {inc.id}, "
                                         f"got {len(embeds)}: {embeds}")

    def assertNotPosted(self, inc: pagerduty.Incident):
        sentinel = self.rig.trigger()
        self.rig.wait_embeds(sentinel)
        self.assertEqual(self.rig.embeds_for(inc), [], f"rejected webhook for {inc.id} was posted")

    # ---------------------------------------------------------------- health

    def test_healthz_and_readyz(self):
        self.assertEqual(self.rig.daemon.http("GET", "/healthz").status, 200)
        self.assertEqual(self.rig.daemon.http("GET", "/readyz").status, 200)

    def test_metrics_endpoint_serves_text(self):
        r = self.rig.daemon.http("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"),
                        r.headers.get("content-type"))
        self.assertIn(b"runbookd_", r.body)

    # ---------------------------------------------------------------- the happy path

    def test_signed_trigger_posts_notice(self):
        inc = pagerduty.Incident(service_id=harness.SERVICE_ID)
        r = self.send(pagerduty.triggered(inc))
        self.assertStatus(r, 202, "signed incident.triggered")
        embeds = self.rig.wait_embeds(inc)
        embed = embeds[0]
        for key in ("title", "description", "color", "footer"):
            self.assertIn(key, embed, f"notice embed lacks {key}: {embed}")
        self.assertIsInstance(embed["color"], int)
        self.assertIn("text", embed["footer"])
        if "url" in embed:
            self.assertEqual(embed["url"], inc.html_url)
        text = json.dumps(embeds, ensure_ascii=False)
        self.assertIn(harness.SERVICE_IMPACT, text, "the notice does not state the configured impact")

        req = next(r for r in self.rig.discord.execute_requests(self.rig.status_id)
                   if r.body and any(self.rig.embed_matches(e, inc) for e in r.body.get("embeds", [])))
        self.assertEqual(req.path, f"/api/v10/webhooks/{self.rig.status_id}/{self.rig.status_token}")
        self.assertIn(req.query.get("wait"), ("true", "1", "True"))
        self.assertTrue(req.headers.get("content-type", "").startswith("application/json"))
        self.assertTrue(req.headers.get("user-agent", "").startswith("DiscordBot ("),
                        req.headers.get("user-agent"))
        self.assertEqual(req.body.get("username"), "runbookd-test")
        self.assertEqual(req.body.get("allowed_mentions"), {"parse": []})
        self.assertNoViolations()

    def test_keep_alive(self):
        s = self.rig.daemon.sender([self.rig.secret])
        try:
            self.assertEqual(s.get("/healthz").status, 200)
            self.assertEqual(s.send(pagerduty.ping()).status // 100, 2)
            self.assertEqual(s.get("/readyz").status, 200)
            self.assertEqual(s.connections_opened, 1, "the daemon closed a keep-alive connection")
        finally:
            s.close()

    # ---------------------------------------------------------------- rejections

    def test_bad_signature_is_403(self):
        inc = pagerduty.Incident()
        r = self.send(pagerduty.triggered(inc), secrets=["not-the-secret"])
        self.assertStatus(r, 403, "signature made with a wrong secret")
        self.assertServing()
        body = pagerduty.encode(pagerduty.triggered(inc))
        r = self.send(body, signature="v1=" + "0" * 64)
        self.assertStatus(r, 403, "well-formed but wrong v1= signature")
        self.assertServing()
        # A signature over different bytes (re-serialised JSON) must not verify.
        r = self.send(json.dumps(pagerduty.triggered(inc), indent=2).encode(),
                      signature=pagerduty.signature(self.rig.secret, body))
        self.assertStatus(r, 403, "signature of a different body")
        self.assertServing()
        self.assertNotPosted(inc)

    def test_missing_signature_is_400(self):
        inc = pagerduty.Incident()
        r = self.send(pagerduty.triggered(inc), omit_signature=True)
        self.assertStatus(r, 400, "no X-PagerDuty-Signature header")
        self.assertServing()
        self.assertNotPosted(inc)

    def test_malformed_signature_header_is_400(self):
        inc = pagerduty.Incident()
        body = pagerduty.encode(pagerduty.triggered(inc))
        good = pagerduty.signature(self.rig.secret, body)[3:]
        for value in ("", "sha256=" + good, good, "v0=" + good):
            with self.subTest(header=value[:12]):
                r = self.send(body, signature=value)
                self.assertStatus(r, 400, f"X-PagerDuty-Signature {value[:12]!r}…")
                self.assertServing()
        self.assertNotPosted(inc)

    def test_malformed_json_is_400(self):
        for body in (b'{"event": {"id": "x", ', b"not json at all", b"\xff\xfe{}"):
            with self.subTest(body=body[:12]):
                r = self.send(body)
                self.assertStatus(r, 400, f"signed malformed JSON {body[:20]!r}")
                self.assertServing()

    def test_empty_body_is_400(self):
        r = self.send(b"")
        self.assertStatus(r, 400, "signed empty body")
        self.assertServing()

    def test_oversized_body_is_413(self):
        limit = self.rig.config["server"]["max_body_bytes"]
        payload = pagerduty.triggered(pagerduty.Incident())
        payload["event"]["data"]["padding"] = "x" * (limit + 1000)
        body = pagerduty.encode(payload)
        self.assertGreater(len(body), limit)
        head = (f"POST {pagerduty.PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"X-Webhook-Id: {uuid.uuid4()}\r\n"
                f"X-PagerDuty-Signature: {pagerduty.signature(self.rig.secret, body)}\r\n\r\n").encode()
        got, _ = raw_exchange(self.rig.daemon.port, head + body, timeout=5)
        self.assertEqual(status_of(got), 413, f"oversized body: got {got[:120]!r}")
        self.assertServing()
        # A normal-sized webhook still works afterwards.
        inc = self.rig.trigger()
        self.rig.wait_embeds(inc)

    def test_unknown_path_is_404(self):
        self.assertEqual(self.rig.daemon.http("GET", "/nope").status, 404)
        body = pagerduty.encode(pagerduty.ping())
        r = self.rig.daemon.http("POST", "/webhooks/nope", body,
                                 pagerduty.headers(body, [self.rig.secret]))
        self.assertEqual(r.status, 404)
        self.assertServing()

    def test_wrong_method_is_405(self):
        self.assertEqual(self.rig.daemon.http("GET", pagerduty.PATH).status, 405,
                         "GET /webhooks/pagerduty")
        self.assertServing()
        self.assertEqual(self.rig.daemon.http("POST", "/healthz", b"{}",
                                              {"Content-Type": "application/json"}).status, 405,
                         "POST /healthz")
        self.assertServing()

    # ---------------------------------------------------------------- slow clients

    def test_slowloris_stalled_headers_are_cut_off(self):
        port = self.rig.daemon.port
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            start = time.monotonic()
            s.sendall(b"POST /webhooks/pagerduty HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            # Meanwhile a normal client is served.
            self.assertServing()
            inc = self.rig.trigger()
            self.rig.wait_embeds(inc)
            closed_at = self._wait_closed(s, timeout=6.0)
        finally:
            s.close()
        elapsed = closed_at - start
        self.assertGreaterEqual(elapsed, 0.5, "cut off long before header_timeout (1s)")
        self.assertLessEqual(elapsed, 4.0, "not cut off within a few seconds of header_timeout (1s)")
        self.assertServing()

    def test_slowloris_trickling_headers_are_cut_off(self):
        port = self.rig.daemon.port
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        closed_at = None
        start = time.monotonic()
        try:
            s.sendall(b"POST /webhooks/pagerduty HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            deadline = start + 6.0
            while time.monotonic() < deadline:  # one byte every 200 ms, never finishing
                try:
                    s.sendall(b"a")
                except (BrokenPipeError, ConnectionResetError):
                    closed_at = time.monotonic()
                    break
                closed_at = self._wait_closed(s, timeout=0.2, must=False)
                if closed_at:
                    break
        finally:
            s.close()
        self.assertIsNotNone(closed_at, "a client trickling header bytes was never cut off (6s)")
        self.assertLessEqual(closed_at - start, 4.0,
                             "trickling client not cut off within a few seconds of header_timeout")
        self.assertServing()

    @staticmethod
    def _wait_closed(s: socket.socket, timeout: float, must: bool = True):
        """Reads (discarding e.g. a 408) until EOF/reset; returns the time, bounded."""
        deadline = time.monotonic() + timeout
        s.settimeout(0.05)
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return time.monotonic()
            if not chunk:
                return time.monotonic()
        if must:
            raise AssertionError(f"connection still open after {timeout}s")
        return None

    # ---------------------------------------------------------------- de-duplication
    # A repeated incident.triggered for an open incident posts nothing anyway, so these
    # tests redeliver events that would post again if processed twice: a status update
    # (each one is relayed to #status) and a trigger after the incident resolved (which
    # would reopen it).

    def assertEmbedCount(self, inc: pagerduty.Incident, expected: int, what: str):
        sentinel = self.rig.trigger()
        self.rig.wait_embeds(sentinel)
        embeds = self.rig.embeds_for(inc)
        self.assertEqual(len(embeds), expected,
                         f"{what}: expected {expected} #status embeds for {inc.id}, got "
                         f"{[e.get('title') for e in embeds]}")

    def test_redelivery_with_same_webhook_id_posts_once(self):
        inc = self.rig.trigger()
        self.rig.wait_embeds(inc)
        body = pagerduty.encode(pagerduty.status_update_published(inc, "We rolled back the deploy."))
        wid = str(uuid.uuid4())
        self.assertStatus(self.send(body, webhook_id=wid), 202, "first delivery")
        self.rig.wait_embeds(inc, 2)
        for _ in range(2):
            self.assertStatus(self.send(body, webhook_id=wid), 202, "redelivery (same X-Webhook-Id)")
        self.assertEmbedCount(inc, 2, "notice + one relayed status update")

    def test_back_to_back_redeliveries_post_once(self):
        inc = self.rig.trigger()
        self.rig.wait_embeds(inc)
        body = pagerduty.encode(pagerduty.status_update_published(inc, "Mitigated; watching."))
        wid = str(uuid.uuid4())
        for _ in range(3):  # inside one coalesce window
            self.assertStatus(self.send(body, webhook_id=wid), 202, "delivery")
        self.rig.wait_embeds(inc, 2)
        self.assertEmbedCount(inc, 2, "notice + one relayed status update")

    def test_same_event_id_under_new_webhook_id_posts_once(self):
        inc = self.rig.trigger()
        self.rig.wait_embeds(inc)
        event_id = str(uuid.uuid4())
        payload = pagerduty.status_update_published(inc, "Root cause found.", event_id=event_id)
        self.assertStatus(self.send(payload), 202, "first")
        self.rig.wait_embeds(inc, 2)
        self.assertStatus(self.send(payload), 202, "same event.id, new X-Webhook-Id")
        self.assertEmbedCount(inc, 2, "notice + one relayed status update")

    def test_late_redelivered_trigger_does_not_reopen(self):
        inc = pagerduty.Incident()
        trigger = pagerduty.encode(pagerduty.triggered(inc))
        wid = str(uuid.uuid4())
        self.assertStatus(self.send(trigger, webhook_id=wid), 202, "trigger")
        self.rig.wait_embeds(inc)
        self.assertStatus(self.send(pagerduty.resolved(inc)), 202, "resolve")
        self.rig.wait_embeds(inc, 2)
        self.assertStatus(self.send(trigger, webhook_id=wid), 202, "trigger redelivered after resolve")
        self.assertEmbedCount(inc, 2, "notice + resolved, and no reopening")

    # ---------------------------------------------------------------- secrets

    def test_rotation_header_with_two_values_second_valid(self):
        inc = pagerduty.Incident()
        body = pagerduty.encode(pagerduty.triggered(inc))
        header = pagerduty.signature_header(["an-old-secret-no-longer-configured", self.rig.secret], body)
        self.assertEqual(header.count("v1="), 2)
        self.assertStatus(self.send(body, signature=header), 202, "two v1= values, second valid")
        self.rig.wait_embeds(inc)

    def test_rotation_second_configured_secret(self):
        inc = pagerduty.Incident()
        r = self.send(pagerduty.triggered(inc), secrets=[self.rig.second_secret])
        self.assertStatus(r, 202, "signed with the second of pagerduty.webhook_secrets")
        self.rig.wait_embeds(inc)

    # ---------------------------------------------------------------- other event types

    def test_pagey_ping_is_2xx(self):
        r = self.send(pagerduty.ping())
        self.assertEqual(r.status // 100, 2, f"pagey.ping: {r.status} {r.body!r}")
        self.assertServing()

    def test_unknown_event_type_is_2xx(self):
        r = self.send(pagerduty.unknown_event())
        self.assertEqual(r.status // 100, 2, f"unknown event type: {r.status} {r.body!r}")
        r = self.send(pagerduty.service_updated())
        self.assertEqual(r.status // 100, 2, f"service.updated: {r.status} {r.body!r}")
        self.assertServing()

    def test_incident_lifecycle_is_accepted(self):
        inc = pagerduty.Incident()
        for payload in (pagerduty.triggered(inc), pagerduty.acknowledged(inc),
                        pagerduty.annotated(inc, "Rolled back the deploy."),
                        pagerduty.status_update_published(inc, "We rolled back; watching."),
                        pagerduty.resolved(inc), pagerduty.reopened(inc), pagerduty.resolved(inc)):
            r = self.send(payload)
            self.assertStatus(r, 202, payload["event"]["event_type"])
        self.rig.wait_embeds(inc)
        self.assertServing()


class StaleAndContentTypeTests(DiscordTestCase):
    """A signed event older than pagerduty.max_age is answered 2xx (PagerDuty must neither
    redeliver it nor count it towards disabling the subscription) and acts on nothing; a
    body not sent as JSON is a 415."""

    overrides = {"pagerduty": {"max_age": "30m"}}

    def metric(self, **labels) -> float:
        import test_prometheus
        r = self.rig.daemon.http("GET", "/metrics")
        return test_prometheus.value(test_prometheus.parse_exposition(r.body.decode()),
                                     "runbookd_webhooks_total", **labels) or 0

    def test_a_stale_trigger_is_2xx_counted_and_posts_nothing(self):
        stale = pagerduty.Incident(title="Stale page " + uuid.uuid4().hex[:8])
        two_hours_ago = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 7200))
        r = self.rig.pd.send(pagerduty.triggered(stale, occurred_at=two_hours_ago))
        self.assertEqual(r.status, 202, r.body)
        self.assertEqual(json.loads(r.body), {"status": "stale"})
        wait_for(lambda: self.metric(source="pagerduty", result="stale") == 1, 5, "the stale count")
        self.rig.daemon.wait_log(lambda e: e.get("msg") == "webhook refused" and e.get("reason") == "stale",
                                 5, "the stale refusal's log line")
        # A fresh page after it is posted; the stale one never is.
        fresh = self.rig.trigger()
        self.rig.wait_embeds(fresh)
        self.assertEqual(self.rig.embeds_for(stale), [])

    def test_a_body_not_sent_as_json_is_415(self):
        inc = pagerduty.Incident(title="Form page " + uuid.uuid4().hex[:8])
        body = pagerduty.encode(pagerduty.triggered(inc))
        for content_type in ("application/x-www-form-urlencoded", "text/plain"):
            h = pagerduty.headers(body, [self.rig.secret], extra={"Content-Type": content_type})
            r = self.rig.daemon.http("POST", pagerduty.PATH, body, h)
            self.assertEqual(r.status, 415, f"{content_type}: {r.status} {r.body!r}")
        wait_for(lambda: self.metric(source="pagerduty", result="unsupported_media_type") == 2, 5,
                 "the unsupported_media_type count")
        h = pagerduty.headers(body, [self.rig.secret], extra={"Content-Type": "application/json; charset=utf-8"})
        self.assertEqual(self.rig.daemon.http("POST", pagerduty.PATH, body, h).status, 202)
        self.rig.wait_embeds(inc)


FLOOD = 600  # silent connections, more than the default max_connections (512)


def open_silent(port: int, count: int, sources: list[str]) -> list[socket.socket]:
    """``count`` connections that send nothing, from the given loopback addresses in turn."""
    out = []
    try:
        for i in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            out.append(s)
            s.bind((sources[i % len(sources)], 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
    except BaseException:
        for s in out:
            s.close()
        raise
    return out


def served(port: int, source: str = "127.0.0.1", path: str = "/healthz", timeout: float = 2.0) -> bool:
    """Whether a fresh connection from ``source`` gets a 200 for ``path``."""
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((source, 0))
            s.settimeout(timeout)
            s.connect(("127.0.0.1", port))
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            got = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        finally:
            s.close()
    except OSError:
        return False
    return status_of(got) == 200


class FloodTests(DiscordTestCase):
    """Connections that send nothing are closed at header_timeout (1 s here), whatever
    idle_timeout says; one address holds at most max_connections_per_client; the admin
    listener answers /healthz, /readyz and /metrics whatever the webhook port suffers."""

    overrides = {"server": {"admin_listen": "127.0.0.1:0", "max_connections": 512,
                            "max_connections_per_client": 64, "idle_timeout": "60s"}}

    @property
    def admin_port(self) -> int:
        e = self.rig.daemon.find_log(lambda e: e.get("msg") == "listening" and e.get("listener") == "admin")
        self.assertIsNotNone(e, "no 'listening' line for the admin listener")
        return int(e["port"])

    def metric(self, name: str, **labels) -> float:
        import test_prometheus
        got, _ = raw_exchange(self.admin_port, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                               b"Connection: close\r\n\r\n", timeout=5)
        text = got.split(b"\r\n\r\n", 1)[1].decode()
        return test_prometheus.value(test_prometheus.parse_exposition(text), name, **labels) or 0

    def test_the_admin_listener_serves_the_probes_only(self):
        port = self.admin_port
        self.assertNotEqual(port, self.rig.daemon.port)
        for path in ("/healthz", "/readyz", "/metrics"):
            self.assertTrue(served(port, path=path), path)
        got, _ = raw_exchange(port, b"POST /webhooks/pagerduty HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                    b"Content-Type: application/json\r\nContent-Length: 2\r\n"
                                    b"Connection: close\r\n\r\n{}")
        self.assertEqual(status_of(got), 404, got[:80])
        # The main listener keeps them too (probes set up before the admin listener).
        self.assertTrue(served(self.rig.daemon.port, path="/readyz"))

    def test_a_flood_from_one_address_locks_out_neither_others_nor_the_probes(self):
        port = self.rig.daemon.port
        refused_before = self.metric("runbookd_http_connections_refused_total", listener="main",
                                     reason="max_connections_per_client")
        flood = open_silent(port, FLOOD, ["127.0.0.1"])
        try:
            # Another address is served at once, and so are the probes.
            self.assertTrue(served(port, source="127.0.0.2"), "another client was locked out")
            self.assertTrue(served(self.admin_port), "the admin listener was locked out")
            wait_for(lambda: self.metric("runbookd_http_connections_refused_total", listener="main",
                                         reason="max_connections_per_client") - refused_before >= FLOOD - 64,
                     5, "the refused connections counted")
            # The flooding address itself is served again once its silent connections meet
            # header_timeout (1 s), far short of idle_timeout (60 s).
            wait_for(lambda: served(port, timeout=1.0), 5, "the main listener serving 127.0.0.1 again")
        finally:
            for s in flood:
                s.close()
        lines = [e for e in self.rig.daemon.snapshot_logs() if e.get("msg") == "connections refused"]
        self.assertGreaterEqual(len(lines), 1)
        self.assertLessEqual(len(lines), 3, "refusals are logged at most once every 10 s")

    def test_a_flood_past_max_connections_recovers_within_header_timeout(self):
        port = self.rig.daemon.port
        # 10 addresses at 60 connections each: none reaches its own limit, all of them the
        # listener's 512.
        flood = open_silent(port, FLOOD, [f"127.0.0.{i}" for i in range(10, 20)])
        try:
            self.assertTrue(served(self.admin_port), "the admin listener was locked out")
            self.assertTrue(served(self.admin_port, path="/readyz"), "/readyz on the admin listener")
            wait_for(lambda: self.metric("runbookd_http_connections_refused_total", listener="main",
                                         reason="max_connections") >= FLOOD - 512,
                     5, "the refused connections counted")
            wait_for(lambda: served(port, source="127.0.0.30", timeout=1.0), 5,
                     "the main listener serving again after header_timeout")
        finally:
            for s in flood:
                s.close()
        # What made room: silent connections cut at header_timeout (those still open when
        # the flood ended were closed by this side instead).
        self.assertGreater(self.metric("runbookd_http_timeouts_total", listener="main", phase="header"), 0)


class MaxConnectionsTests(DiscordTestCase):
    overrides = {"server": {"max_connections": 4}}

    def test_connections_beyond_max_are_closed(self):
        port = self.rig.daemon.port
        held = []
        try:
            for _ in range(4):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/healthz")
                r = c.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
                held.append(c)
            got, closed = raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                                       timeout=4)
            self.assertTrue(closed, "the connection beyond max_connections was not closed")
            self.assertNotEqual(status_of(got), 200,
                                f"the connection beyond max_connections was served: {got[:80]!r}")
        finally:
            for c in held:
                c.close()
        # Once the held connections are gone, new ones are served again.
        wait_for(lambda: self._healthz_ok(port), 5.0, "service after releasing connections")

    @staticmethod
    def _healthz_ok(port: int) -> bool:
        try:
            got, _ = raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                        b"Connection: close\r\n\r\n", timeout=1)
        except OSError:
            return False
        return status_of(got) == 200


if __name__ == "__main__":
    unittest.main()
