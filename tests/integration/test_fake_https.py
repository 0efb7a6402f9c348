"""Self-test of fake_https, the base of the HTTPS fakes: TLS with the test CA and plain
HTTP, the request log and its bounded waits, every fault switch, the body limit, a
stalled TLS client, errors kept, and stop() cutting a slow answer short. Through a
minimal subclass defined here, with http.client/ssl/socket only (no daemon)."""

from __future__ import annotations

import http.client
import io
import json
import socket
import ssl
import threading
import time
import unittest
from typing import Any, Callable, Optional

import fake_https
import harness

TIMEOUT = 5.0  # every socket operation and every wait in this file


class FakeThing(fake_https.FakeHTTPS):
    """The smallest fake: ``/boom`` raises, every other request is answered with what the
    fake recorded of it (and whether it was in the log while being handled)."""
    name = "fake Thing"
    thread_name = "fake-thing"
    server_header = "fake-thing/1"
    max_body = 1024

    def _dispatch(self, h, rec):
        if rec.path == "/boom":
            raise RuntimeError("boom in _dispatch")
        recorded = any(r is rec for r in self.snapshot_requests())
        self._send_json(h, rec, 200, {"method": rec.method, "path": rec.path, "query": rec.query,
                                      "size": len(rec.body), "recorded": recorded})


class KeepOpenWhenDown(FakeThing):
    """A fake whose ``_on_down`` leaves open connections alone: requests on them are then
    dropped by the base."""

    def _on_down(self):
        pass


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


class FakeHTTPSTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = harness.test_pki()
        cls.ctx = ssl.create_default_context(cafile=cls.pki.ca_cert)

    def setUp(self):
        self.fakes: list[fake_https.FakeHTTPS] = []
        self.sockets: list[Any] = []
        self.threads: list[threading.Thread] = []
        self.fake = self.serve(FakeThing(fake_https.server_context()))

    def tearDown(self):
        for s in self.sockets:
            s.close()
        for f in self.fakes:
            f.stop()
        for t in self.threads:
            t.join(TIMEOUT)
            self.assertFalse(t.is_alive(), "a client thread of the test is still running")
        for f in self.fakes:
            self.assertEqual(f.errors, [], "exceptions inside the fake")

    # ---------------------------------------------------------------- helpers

    def serve(self, fake: fake_https.FakeHTTPS) -> Any:
        """Starts ``fake``; stopped and checked for errors in tearDown."""
        self.fakes.append(fake)
        return fake.start()

    def connection(self, fake: Optional[fake_https.FakeHTTPS] = None) -> http.client.HTTPConnection:
        fake = fake or self.fake
        if fake.ssl_context is None:
            return http.client.HTTPConnection("127.0.0.1", fake.port, timeout=TIMEOUT)
        return http.client.HTTPSConnection("127.0.0.1", fake.port, timeout=TIMEOUT, context=self.ctx)

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[dict] = None, fake: Optional[fake_https.FakeHTTPS] = None) -> Response:
        """One request on a fresh connection."""
        conn = self.connection(fake)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, r.headers, r.read())
        finally:
            conn.close()

    def get(self, path: str, fake: Optional[fake_https.FakeHTTPS] = None) -> Response:
        return self.request("GET", path, fake=fake)

    def timed_get(self, path: str) -> tuple[Response, float]:
        t0 = time.monotonic()
        r = self.get(path)
        return r, time.monotonic() - t0

    def raw(self, fake: Optional[fake_https.FakeHTTPS] = None, handshake: bool = True) -> Any:
        """A client socket (TLS-wrapped for a TLS fake unless ``handshake`` is False),
        closed in tearDown."""
        fake = fake or self.fake
        s = socket.create_connection(("127.0.0.1", fake.port), timeout=TIMEOUT)
        self.sockets.append(s)
        if fake.ssl_context is not None and handshake:
            s = self.ctx.wrap_socket(s, server_hostname="127.0.0.1")
            self.sockets.append(s)
        return s

    @staticmethod
    def exchange(sock: Any, data: bytes, method: str = "GET") -> Response:
        """Sends ``data`` whole, then reads one response."""
        sock.sendall(data)
        r = http.client.HTTPResponse(sock, method=method)
        r.begin()
        return Response(r.status, r.headers, r.read())

    def cut(self, call: Callable[[], Any]) -> None:
        """``call`` fails on the connection (reset or closed without an answer)."""
        with self.assertRaises((OSError, http.client.HTTPException)):
            call()

    def background(self, call: Callable[[], Any]) -> list:
        """Runs ``call`` on a thread (joined in tearDown); the list gets its result or
        exception."""
        out: list = []

        def run():
            try:
                out.append(call())
            except (OSError, http.client.HTTPException) as e:
                out.append(e)

        t = threading.Thread(target=run, daemon=True)
        self.threads.append(t)
        t.start()
        return out

    @staticmethod
    def plain_get(port: int, path: str) -> None:
        """A plain-HTTP GET to ``port``, whatever the fake there speaks."""
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        try:
            conn.request("GET", path)
            conn.getresponse().read()
        finally:
            conn.close()

    def last(self) -> fake_https.Request:
        return self.fake.snapshot_requests()[-1]

    # ---------------------------------------------------------------- TLS, plain HTTP, lifecycle

    def test_tls_with_the_test_ca(self):
        self.assertEqual(self.fake.url, f"https://127.0.0.1:{self.fake.port}")
        self.assertEqual(self.fake.host, f"127.0.0.1:{self.fake.port}")
        r = self.get("/hello")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["path"], "/hello")
        self.assertEqual(r.headers["Server"], "fake-thing/1")
        self.assertEqual(r.headers["Content-Type"], "application/json")
        # The certificate is for IP 127.0.0.1, verified against the test CA; ALPN offers http/1.1.
        ctx = ssl.create_default_context(cafile=self.pki.ca_cert)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", self.fake.port), timeout=TIMEOUT) as plain:
            with ctx.wrap_socket(plain, server_hostname="127.0.0.1") as s:
                self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
                self.assertEqual(dict(x[0] for x in s.getpeercert()["subject"])["commonName"], "127.0.0.1")
        # The system CAs do not trust it: the client refuses, the fake notes the failed handshake.
        with self.assertRaises(ssl.SSLCertVerificationError):
            http.client.HTTPSConnection("127.0.0.1", self.fake.port, timeout=TIMEOUT,
                                        context=ssl.create_default_context()).request("GET", "/")
        self.fake.wait_until(lambda: self.fake.tls_errors, TIMEOUT, "the refused handshake")
        self.assertEqual([r.path for r in self.fake.snapshot_requests()], ["/hello"])
        # Plain HTTP to the TLS port is no request either.
        n = len(self.fake.tls_errors)
        self.cut(lambda: self.plain_get(self.fake.port, "/plain"))
        self.fake.wait_until(lambda: len(self.fake.tls_errors) > n, TIMEOUT, "the plain-HTTP handshake error")
        self.assertEqual(len(self.fake.snapshot_requests()), 1)

    def test_explicit_certificate_files(self):
        fake = self.serve(FakeThing(fake_https.server_context(self.pki.server_cert, self.pki.server_key,
                                                              alpn=None)))
        self.assertEqual(self.get("/x", fake=fake).status, 200)

    def test_plain_http_without_ssl_context(self):
        fake = self.serve(FakeThing(None))
        self.assertEqual(fake.url, f"http://127.0.0.1:{fake.port}")
        r = self.request("POST", "/plain?x=1", body=b"abc", fake=fake)
        self.assertEqual((r.status, r.json()["query"], r.json()["size"]), (200, {"x": "1"}, 3))
        self.assertEqual(fake.snapshot_requests()[0].body, b"abc")
        self.assertEqual(fake.tls_errors, [])
        # A TLS client is not answered with TLS.
        with self.assertRaises((ssl.SSLError, OSError)):
            http.client.HTTPSConnection("127.0.0.1", fake.port, timeout=TIMEOUT,
                                        context=self.ctx).request("GET", "/")

    def test_lifecycle_with_start_stop_and_with(self):
        fake = FakeThing(None)
        with self.assertRaises(AssertionError):
            fake.port  # not started
        with fake as f:
            self.assertIs(f, fake)
            port = f.port
            self.assertIs(f.start(), f)  # a second start does nothing
            self.assertEqual(f.port, port)
            self.assertEqual(self.get("/in", fake=f).status, 200)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
        fake.stop()  # idempotent
        fake.close()
        self.assertEqual(fake.errors, [])

    def test_keep_alive_head_and_connection_close(self):
        conn = self.connection()
        try:
            for _ in range(3):
                conn.request("GET", "/again")
                r = conn.getresponse()
                self.assertEqual((r.status, r.getheader("Connection")), (200, None))
                r.read()
            conn.request("HEAD", "/head")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            self.assertGreater(int(r.getheader("Content-Length")), 0)
            self.assertEqual(r.read(), b"")  # no body after HEAD: the next answer still parses
            conn.request("GET", "/after-head")
            r = conn.getresponse()
            self.assertEqual(json.loads(r.read())["path"], "/after-head")
        finally:
            conn.close()
        self.fake.keep_alive = False
        r = self.get("/closing")
        self.assertEqual((r.status, r.headers["Connection"]), (200, "close"))

    # ---------------------------------------------------------------- the request log

    def test_request_is_recorded_whole(self):
        before = time.monotonic()
        target = "/v1/things/a%2Fb?a=1&b=x%20y&a=2&empty="
        r = self.request("POST", target, body=b'{"k": 1}',
                         headers={"Authorization": "Bearer t0k", "X-Custom-Header": "Value",
                                  "Content-Type": "application/json"})
        after = time.monotonic()
        self.assertEqual(r.status, 200)
        rec = self.last()
        self.assertEqual((rec.method, rec.path, rec.target), ("POST", "/v1/things/a%2Fb", target))
        self.assertEqual(rec.query, {"a": "2", "b": "x y", "empty": ""})  # the last one when repeated
        self.assertEqual(rec.query_list, [("a", "1"), ("b", "x y"), ("a", "2"), ("empty", "")])
        self.assertEqual(rec.raw_query, "a=1&b=x%20y&a=2&empty=")
        self.assertEqual(rec.headers["x-custom-header"], "Value")
        self.assertEqual(rec.headers["content-length"], "8")
        self.assertNotIn("X-Custom-Header", rec.headers)
        self.assertEqual(rec.authorization, "Bearer t0k")
        self.assertEqual((rec.body, rec.json()), (b'{"k": 1}', {"k": 1}))
        self.assertEqual((rec.status, rec.fault), (200, None))
        self.assertEqual(rec.response, r.body)
        self.assertEqual(rec.response_json()["path"], "/v1/things/a%2Fb")
        self.assertTrue(before <= rec.time <= rec.responded_at <= after)
        empty = self.get("/empty")
        self.assertEqual(empty.status, 200)
        self.assertIsNone(self.last().json())

    def test_record_is_complete_before_the_answer_leaves(self):
        conn = self.connection()
        try:
            for i in range(20):
                conn.request("PUT", f"/n/{i}", body=b"x" * i)
                r = conn.getresponse()
                body = json.loads(r.read())
                self.assertTrue(body["recorded"], "in the log while _dispatch ran")
                rec = self.last()  # no wait: seeing the answer means the record is complete
                self.assertEqual((rec.path, rec.status, rec.body), (f"/n/{i}", 200, b"x" * i))
                self.assertIsNotNone(rec.responded_at)
        finally:
            conn.close()

    def test_snapshot_requests_by_prefix_oldest_first(self):
        for path in ("/v1/a", "/v2/b", "/v1/c"):
            self.get(path)
        snap = self.fake.snapshot_requests()
        self.assertEqual([r.path for r in snap], ["/v1/a", "/v2/b", "/v1/c"])
        self.assertEqual([r.path for r in self.fake.snapshot_requests("/v1/")], ["/v1/a", "/v1/c"])
        self.assertEqual(self.fake.snapshot_requests("/v3/"), [])
        snap.clear()  # a copy: the log is untouched
        self.assertEqual(len(self.fake.snapshot_requests()), 3)
        self.assertTrue(all(a.time <= b.time for a, b in zip(self.fake.requests, self.fake.requests[1:])))

    def test_wait_for_request_sees_arrival_then_answer(self):
        self.fake.fault_delay(0.5, prefix="/slow")
        out = self.background(lambda: self.get("/slow/1").status)
        rec = self.fake.wait_for_request("/slow", TIMEOUT)
        status = rec.status
        if time.monotonic() - rec.time < 0.5:  # read before the delay ran out: not answered yet
            self.assertIsNone(status)
        done = self.fake.wait_for_request("/slow", TIMEOUT, answered=True)
        self.assertIs(done, rec)
        self.assertEqual(done.status, 200)
        self.assertGreaterEqual(done.responded_at - done.time, 0.5)
        self.threads[-1].join(TIMEOUT)
        self.assertEqual(out, [200])

    def test_wait_for_requests_count_predicate_and_answered(self):
        for i in range(3):
            self.get(f"/v1/items/{i}")
        self.get("/v2/other")
        got = self.fake.wait_for_requests(3, "/v1/", TIMEOUT)
        self.assertEqual([r.path for r in got], [f"/v1/items/{i}" for i in range(3)])
        got = self.fake.wait_for_requests(2, lambda r: r.path.endswith(("/1", "/other")), TIMEOUT, answered=True)
        self.assertEqual([r.path for r in got], ["/v1/items/1", "/v2/other"])
        self.assertEqual(self.fake.wait_for_request(timeout=TIMEOUT).path, "/v1/items/0")  # any: the first
        self.assertEqual(self.fake.wait_until(lambda: len(self.fake.requests), TIMEOUT), 4)

    def test_waits_are_bounded_and_fail_clearly(self):
        self.get("/v1/one")
        cases = [
            (lambda: self.fake.wait_for_request("/never", timeout=0.3),
             "fake Thing: timed out after 0.3s waiting for 1 request(s) matching '/never'"),
            (lambda: self.fake.wait_for_requests(2, "/v1/", timeout=0.2),
             "fake Thing: timed out after 0.2s waiting for 2 request(s) matching '/v1/'"),
            (lambda: self.fake.wait_for_requests(2, "/v1/", 0.2, what="the second call"),
             "fake Thing: timed out after 0.2s waiting for the second call"),
            (lambda: self.fake.wait_until(lambda: None, 0.2, "the moon"),
             "fake Thing: timed out after 0.2s waiting for the moon"),
        ]
        for call, message in cases:
            with self.subTest(message=message):
                t0 = time.monotonic()
                with self.assertRaises(AssertionError) as cm:
                    call()
                elapsed = time.monotonic() - t0
                self.assertEqual(str(cm.exception), message)
                self.assertGreaterEqual(elapsed, 0.2)
                self.assertLess(elapsed, 2.0)

    # ---------------------------------------------------------------- down and delays

    def test_down_cuts_open_connections_resets_new_ones_and_recovers(self):
        conn = self.connection()
        try:
            conn.request("GET", "/before")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            self.fake.down = True
            self.assertTrue(self.fake.down)

            def again():
                conn.request("GET", "/on-the-open-connection")
                conn.getresponse().read()
            self.cut(again)
        finally:
            conn.close()
        self.cut(lambda: self.get("/new-connection"))
        self.assertGreaterEqual(self.fake.refused_connections, 1)
        self.assertEqual([r.path for r in self.fake.snapshot_requests()], ["/before"])
        self.fake.down = False
        self.assertEqual(self.get("/after").status, 200)

    def test_down_resets_a_new_plain_connection(self):
        fake = self.serve(FakeThing(None))
        fake.down = True
        with self.assertRaises(ConnectionError):  # reset (even before connect returns), not a clean close
            s = self.raw(fake)
            s.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
            s.recv(100)
        self.assertEqual(fake.refused_connections, 1)
        fake.down = False
        self.assertEqual(self.get("/x", fake=fake).status, 200)

    def test_requests_on_an_open_connection_are_dropped_while_down(self):
        fake = self.serve(KeepOpenWhenDown(fake_https.server_context()))
        conn = self.connection(fake)
        try:
            conn.request("GET", "/before")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
            fake.down = True

            def again():
                conn.request("GET", "/while-down")
                conn.getresponse().read()
            self.cut(again)
        finally:
            conn.close()
        rec = fake.wait_for_request("/while-down", TIMEOUT, answered=True)
        self.assertEqual((rec.fault, rec.status), ("down", None))

    def test_response_delay(self):
        self.fake.response_delay = 0.3
        r, elapsed = self.timed_get("/a")
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(elapsed, 0.3)
        self.assertEqual(self.last().fault, "delay")
        self.assertGreaterEqual(self.last().responded_at - self.last().time, 0.3)
        self.fake.clear_faults()  # the delay stays
        self.assertGreaterEqual(self.timed_get("/b")[1], 0.3)
        self.fake.response_delay = 0
        self.assertEqual(self.get("/c").status, 200)
        self.assertIsNone(self.last().fault)

    def test_fault_delay_persistent_one_shot_replaced_and_removed(self):
        self.fake.fault_delay(0.3, prefix="/slow")
        self.get("/fast")
        self.assertIsNone(self.last().fault)
        for _ in range(2):  # persistent by default
            r, elapsed = self.timed_get("/slow/x")
            self.assertEqual(r.status, 200)
            self.assertGreaterEqual(elapsed, 0.3)
            self.assertEqual(self.last().fault, "delay")
        # The same prefix replaces: a 30 s delay replaced by 0.2 s takes 0.2 s.
        self.fake.fault_delay(30, prefix="/slow")
        self.fake.fault_delay(0.2, prefix="/slow")
        r, elapsed = self.timed_get("/slow/y")
        self.assertEqual(r.status, 200)
        self.assertGreaterEqual(elapsed, 0.2)
        self.fake.fault_delay(0, prefix="/slow")  # removed
        self.get("/slow/z")
        self.assertIsNone(self.last().fault)
        # One-shot, and by substring.
        self.fake.fault_delay(0.2, contains="once=1", count=1)
        self.assertGreaterEqual(self.timed_get("/q?once=1")[1], 0.2)
        self.assertEqual(self.last().fault, "delay")
        self.get("/q?once=1")
        self.assertIsNone(self.last().fault)

    # ---------------------------------------------------------------- scripted answers, drops, resets

    def test_fault_answer_one_shot_and_persistent(self):
        self.fake.fault_answer(503, prefix="/v1/", count=2)
        self.assertEqual(self.get("/v2/x").status, 200)  # another prefix: untouched
        for _ in range(2):
            r = self.get("/v1/x")
            self.assertEqual((r.status, r.body), (503, b"Service Unavailable\n"))
            self.assertEqual(r.headers["Content-Type"], "text/plain; charset=utf-8")
            rec = self.last()
            self.assertEqual((rec.status, rec.fault, rec.response), (503, "fail_next", b"Service Unavailable\n"))
        self.assertEqual(self.get("/v1/x").status, 200)
        self.assertIsNone(self.last().fault)

        self.fake.fault_answer(429, {"error": "slow down"}, count=None, headers={"Retry-After": "2"})
        for _ in range(3):
            r = self.get("/anything")
            self.assertEqual((r.status, r.json(), r.headers["Retry-After"]), (429, {"error": "slow down"}, "2"))
            self.assertEqual(r.headers["Content-Type"], "application/json")
        self.fake.clear_faults()
        self.assertEqual(self.get("/anything").status, 200)

    def test_fault_answer_bodies_and_order(self):
        self.fake.fault_answer(500, b"\x00raw", prefix="/bytes")
        self.fake.fault_answer(502, "as it is", prefix="/text")
        self.fake.fault_answer(503, message="custom message", prefix="/message")
        self.fake.fault_answer(599, prefix="/unknown")
        r = self.get("/bytes")
        self.assertEqual((r.status, r.body, r.headers["Content-Type"]), (500, b"\x00raw", "application/octet-stream"))
        self.assertEqual((self.get("/text").status, self.get("/text").status), (502, 200))
        self.assertEqual(self.last().path, "/text")
        self.assertEqual(self.get("/message").body, b"custom message\n")
        r = self.get("/unknown")
        self.assertEqual((r.status, r.body), (599, b"error\n"))
        # The first scripted match applies; the others wait their turn.
        first = self.fake.fault_answer(418, prefix="/v1/")
        self.fake.fault_answer(409)
        self.assertIsInstance(first, fake_https.Fault)
        self.assertEqual(self.get("/v1/x").status, 418)
        self.assertEqual(self.get("/v1/x").status, 409)
        self.assertEqual(self.get("/v1/x").status, 200)

    def test_prefix_and_substring_matching(self):
        self.fake.fault_answer(503, prefix="/v1/", contains="page=2", count=None)
        self.assertEqual(self.get("/v1/things?page=1").status, 200)
        self.assertEqual(self.get("/v2/things?page=2").status, 200)
        self.assertEqual(self.get("/v1/things?page=2").status, 503)
        self.assertEqual(self.get("/v1/other?x=1&page=2").status, 503)
        self.assertEqual(self.get("/v1/things?page=22").status, 503)  # a substring, not a parameter
        self.fake.clear_faults()
        self.fake.fault_answer(404, contains="/admin/", count=None)  # substring of the path too
        self.assertEqual(self.get("/v1/admin/users").status, 404)
        self.assertEqual(self.get("/admin/").status, 404)
        self.assertEqual(self.get("/v1/administrator").status, 200)
        self.fake.clear_faults()
        self.fake.fault_answer(404, prefix="/v1")  # a prefix of the path, not of the query
        self.assertEqual(self.get("/x?/v1").status, 200)
        self.assertEqual(self.get("/v1beta").status, 404)

    def test_fault_drop_closes_without_an_answer(self):
        self.fake.fault_drop(prefix="/v1/", count=2)
        self.assertEqual(self.get("/v2/x").status, 200)
        for _ in range(2):
            self.cut(lambda: self.get("/v1/x"))
            rec = self.last()
            self.assertEqual((rec.path, rec.fault, rec.status, rec.response), ("/v1/x", "drop", None, b""))
            self.assertIsNotNone(rec.responded_at)
        self.assertEqual(self.get("/v1/x").status, 200)
        # On the wire: a clean close (FIN), no bytes, no reset.
        fake = self.serve(FakeThing(None))
        fake.fault_drop()
        s = self.raw(fake)
        s.sendall(b"GET /drop HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(s.recv(100), b"")

    def test_fault_reset_sends_a_tcp_rst(self):
        self.fake.fault_reset(prefix="/v1/")
        self.cut(lambda: self.get("/v1/x"))
        rec = self.last()
        self.assertEqual((rec.fault, rec.status), ("reset", None))
        self.assertIsNotNone(rec.responded_at)
        self.assertEqual(self.get("/v1/x").status, 200)  # one-shot
        # On the wire: a reset, not a clean close.
        fake = self.serve(FakeThing(None))
        fake.fault_reset(count=None)
        for _ in range(3):
            s = self.raw(fake)
            s.sendall(b"GET /reset HTTP/1.1\r\nHost: t\r\n\r\n")
            with self.assertRaises(ConnectionResetError):
                s.recv(100)
        # Under TLS too (read below TLS, after a first answer took the session tickets).
        self.fake.fault_reset(contains="second")
        s = self.raw()
        self.assertEqual(self.exchange(s, b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n").status, 200)
        s.sendall(b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n")
        with self.assertRaises(ConnectionResetError):
            socket.socket.recv(s, 100)

    def test_clear_faults_keeps_down_and_response_delay(self):
        self.fake.fault_answer(500, count=None)
        self.fake.fault_drop(prefix="/d", count=None)
        self.fake.fault_reset(prefix="/r", count=None)
        self.fake.fault_delay(30, prefix="/s")
        self.fake.response_delay = 0.2
        self.fake.clear_faults()
        for path in ("/x", "/d", "/r", "/s"):
            r, elapsed = self.timed_get(path)
            self.assertEqual(r.status, 200, path)
            self.assertGreaterEqual(elapsed, 0.2)
        self.fake.response_delay = 0
        self.fake.down = True
        self.fake.clear_faults()
        self.cut(lambda: self.get("/still-down"))
        self.fake.down = False

    # ---------------------------------------------------------------- request bodies

    def test_body_by_content_length_up_to_max_body(self):
        r = self.request("POST", "/at-limit", body=b"a" * 1024)
        self.assertEqual((r.status, r.json()["size"]), (200, 1024))
        s = self.raw()
        r = self.exchange(s, b"POST /too-large HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\n\r\n" + b"b" * 4096)
        self.assertEqual((r.status, r.body, r.headers["Connection"]), (413, b"request body too large\n", "close"))
        rec = self.last()
        self.assertEqual((rec.path, rec.status, rec.fault, rec.body), ("/too-large", 413, "too-large", b""))
        self.assertEqual(rec.response, b"request body too large\n")
        self.assertEqual(self.get("/next").status, 200)

    def test_chunked_body_with_extensions_and_trailers(self):
        s = self.raw()
        r = self.exchange(s, b"POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n")
        self.assertEqual((r.status, r.json()["size"]), (200, 11))
        self.assertEqual(self.last().body, b"hello world")
        # The trailers were read to their end: the connection goes on with the next request.
        r = self.exchange(s, b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(r.json()["path"], "/next")
        # http.client's own chunked encoding.
        conn = self.connection()
        try:
            conn.request("POST", "/hc", body=iter([b"x" * 300, b"y" * 300]), encode_chunked=True)
            r = conn.getresponse()
            self.assertEqual((r.status, json.loads(r.read())["size"]), (200, 600))
        finally:
            conn.close()

    def test_chunked_body_over_max_body(self):
        s = self.raw()
        chunk = b"258\r\n" + b"c" * 600 + b"\r\n"  # 0x258 = 600: the second one crosses 1024
        r = self.exchange(s, b"POST /chunked-too-large HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                             + chunk + chunk + b"0\r\n\r\n")
        self.assertEqual((r.status, r.headers["Connection"]), (413, "close"))
        rec = self.last()
        self.assertEqual((rec.path, rec.status, rec.fault, rec.body), ("/chunked-too-large", 413, "too-large", b""))

    def test_read_body_directly(self):
        self.assertEqual(fake_https.read_body(io.BytesIO(b"abcdef"), {"content-length": "3"}), b"abc")
        self.assertEqual(fake_https.read_body(io.BytesIO(b""), {}), b"")
        chunked = {"transfer-encoding": "chunked"}
        self.assertEqual(fake_https.read_body(io.BytesIO(b"3\r\nabc\r\n0\r\n\r\nrest"), chunked, 3), b"abc")
        # Past the limit, before reading the bytes (there are none to read here).
        with self.assertRaises(fake_https.BodyTooLarge):
            fake_https.read_body(io.BytesIO(b""), {"content-length": "11"}, 10)
        with self.assertRaises(fake_https.BodyTooLarge):
            fake_https.read_body(io.BytesIO(b"b\r\n"), chunked, 10)

    # ---------------------------------------------------------------- robustness

    def test_stalled_tls_client_does_not_block_others(self):
        stalled = [self.raw(handshake=False) for _ in range(3)]  # connected, never say hello
        for i in range(3):
            self.assertEqual(self.get(f"/meanwhile/{i}").status, 200)
        self.assertEqual(self.fake.tls_errors, [])
        # A short handshake_timeout ends such a connection: closed, noted as a TLS error.
        self.fake.handshake_timeout = 0.5
        s = self.raw(handshake=False)
        errs = self.fake.wait_until(lambda: list(self.fake.tls_errors), TIMEOUT, "the handshake to time out")
        self.assertIn("timed out", errs[0])
        self.assertEqual(s.recv(1), b"")
        self.assertEqual(self.get("/after").status, 200)
        for s in stalled:
            s.close()

    def test_exception_in_dispatch_is_kept_in_errors(self):
        self.assertEqual(self.get("/fine").status, 200)
        self.assertEqual(self.fake.errors, [])
        self.cut(lambda: self.get("/boom"))
        errs = self.fake.wait_until(lambda: list(self.fake.errors), TIMEOUT, "the exception")
        self.assertEqual(len(errs), 1)
        self.assertIn("RuntimeError: boom in _dispatch", errs[0])
        self.assertIn("Traceback", errs[0])
        self.assertEqual((self.last().path, self.last().status), ("/boom", None))
        self.assertEqual(self.get("/still-serving").status, 200)
        self.fake.errors.clear()  # expected here; tearDown checks that nothing else was kept

    def test_stop_ends_a_scripted_slow_answer_at_once(self):
        for how in ("fault_delay", "response_delay"):
            with self.subTest(how=how):
                self.fake.start()
                if how == "fault_delay":
                    self.fake.fault_delay(30, prefix="/slow")
                else:
                    self.fake.response_delay = 30
                out = self.background(lambda: self.get("/slow").status)
                self.fake.wait_for_request("/slow", TIMEOUT)
                t0 = time.monotonic()
                self.fake.stop()
                self.assertLess(time.monotonic() - t0, 2.0)
                self.threads[-1].join(TIMEOUT)
                self.assertFalse(self.threads[-1].is_alive())
                self.assertLess(time.monotonic() - t0, 3.0)
                self.assertEqual(len(out), 1)  # the answer, or the connection cut: either way at once
                self.fake.requests.clear()
                self.fake.response_delay = 0
                self.fake.clear_faults()
        # Started again, on a port of its own, it serves without delay.
        self.fake.start()
        r, elapsed = self.timed_get("/restarted")
        self.assertEqual(r.status, 200)
        self.assertLess(elapsed, TIMEOUT)


if __name__ == "__main__":
    unittest.main()
