"""The TLS rig's own tests: each endpoint presents what it claims, as ``openssl s_client``
(and Python's ssl module) see it, so a wrong rig cannot make the certificate source's tests
pass. Every subprocess and socket is bounded."""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import time
import unittest
from datetime import datetime, timedelta, timezone

import tls_rig
from harness import wait_for

CMD_TIMEOUT = 15
PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----\n.*?\n-----END CERTIFICATE-----\n?", re.S)


def openssl(args: list[str], input_: str | None = None) -> subprocess.CompletedProcess:
    kw = {"input": input_} if input_ is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=CMD_TIMEOUT, **kw)


def s_client(ep: tls_rig.Endpoint, ca_file: str | None, *extra: str, verify_error: bool = True) -> tuple[int, str]:
    """``openssl s_client`` to the endpoint with SNI = its host; stdin is /dev/null."""
    args = ["s_client", "-connect", f"{ep.address}:{ep.port}", "-servername", ep.host]
    if ca_file:
        args += ["-CAfile", ca_file]
    if verify_error:
        args.append("-verify_return_error")
    r = openssl(args + list(extra))
    return r.returncode, r.stdout + r.stderr


def parse_openssl_date(text: str) -> datetime:
    """``Dec  2 21:31:40 2027 GMT`` (x509 -enddate) as an aware datetime."""
    return datetime.strptime(text.strip(), "%b %d %H:%M:%S %Y GMT").replace(tzinfo=timezone.utc)


def describe(pem: str) -> dict:
    """notBefore, notAfter, subject, issuer (RFC 2253) and SANs of one PEM certificate."""
    r = openssl(["x509", "-noout", "-startdate", "-enddate", "-subject", "-issuer", "-nameopt", "RFC2253",
                 "-ext", "subjectAltName"], pem)
    if r.returncode != 0:
        raise AssertionError(f"openssl x509 failed: {r.stderr}")
    out: dict = {"sans": re.findall(r"DNS:([^,\s]+)", r.stdout)}
    for line in r.stdout.splitlines():
        for key, name in (("notBefore=", "not_before"), ("notAfter=", "not_after")):
            if line.startswith(key):
                out[name] = parse_openssl_date(line[len(key):])
        for key, name in (("subject=", "subject"), ("issuer=", "issuer")):
            if line.startswith(key):
                out[name] = line[len(key):].strip()
    return out


def presented(ep: tls_rig.Endpoint) -> list[dict]:
    """The certificates the endpoint sends, leaf first (s_client -showcerts, no verification)."""
    code, out = s_client(ep, None, "-showcerts", verify_error=False)
    pems = PEM_RE.findall(out)
    if not pems:
        raise AssertionError(f"no certificate from {ep.name} (exit {code}):\n{out[-2000:]}")
    return [describe(p) for p in pems]


class TlsRigTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        started = time.monotonic()
        cls.rig = tls_rig.TlsRig().start()
        cls.setup_seconds = time.monotonic() - started

    @classmethod
    def tearDownClass(cls):
        cls.rig.stop()

    def assertVerifyFails(self, ep: tls_rig.Endpoint, reason: str, *extra: str) -> str:
        code, out = s_client(ep, self.rig.ca_file, *extra)
        self.assertNotEqual(code, 0, f"{ep.name} verified:\n{out[-1500:]}")
        self.assertIn(reason, out, f"{ep.name}: {out[-1500:]}")
        return out

    def assertVerifies(self, ep: tls_rig.Endpoint, *extra: str, ca_file: str | None = None) -> str:
        code, out = s_client(ep, ca_file or self.rig.ca_file, *extra)
        self.assertEqual(code, 0, f"{ep.name} did not verify:\n{out[-1500:]}")
        self.assertIn("Verify return code: 0 (ok)", out)
        return out

    # ------------------------------------------------------------------ the PKI

    def test_the_trust_file_holds_the_root_only(self):
        with open(self.rig.ca_file) as f:
            pems = PEM_RE.findall(f.read())
        self.assertEqual(len(pems), 1)
        root = describe(pems[0])
        self.assertEqual(root["subject"], f"CN={tls_rig.ROOT_CN}")
        self.assertEqual(root["issuer"], root["subject"])
        self.assertLess(self.setup_seconds, 40, "the PKI and servers took too long to make")

    def test_every_tls_endpoint_presents_its_dates_names_and_chain(self):
        for ep in self.rig.tls_endpoints():
            with self.subTest(ep.name):
                certs = presented(ep)
                self.assertEqual(len(certs), ep.chain_length)
                leaf = certs[0]
                self.assertEqual(leaf["not_after"], ep.leaf_not_after)
                self.assertEqual(leaf["not_before"], ep.not_before)
                self.assertEqual(leaf["subject"], f"CN={ep.cert_subject}")
                self.assertEqual(leaf["issuer"], f"CN={ep.issuer}")
                self.assertEqual(leaf["sans"], ep.sans)
                first = min(range(len(certs)), key=lambda i: certs[i]["not_after"])
                self.assertEqual(certs[first]["not_after"], ep.not_after)
                self.assertEqual(ep.which, "leaf" if first == 0 else "intermediate")
                for child, parent in zip(certs, certs[1:]):  # each issued by the next
                    self.assertEqual(child["issuer"], parent["subject"])
                self.assertNotIn(f"CN={tls_rig.ROOT_CN}", [c["subject"] for c in certs], "the root is not sent")

    def test_the_dates_are_the_ones_asked_for(self):
        now, hour, day = self.rig.now, timedelta(hours=1), timedelta(days=1)
        self.assertEqual(self.rig.expired.not_after, now - 2 * hour)
        self.assertEqual(self.rig.expires_5d.not_after, now + 5 * day + hour)
        self.assertEqual(self.rig.expires_9d.not_after, now + 9 * day + hour)
        self.assertEqual(self.rig.not_yet_valid.not_before, now + day)
        self.assertEqual(self.rig.valid.not_after, now + 365 * day)
        self.assertEqual(self.rig.expired_intermediate.not_after, now - day)
        self.assertEqual(self.rig.expired_intermediate.which, "intermediate")
        self.assertGreater(self.rig.expired_intermediate.leaf_not_after, now + 300 * day)
        for ep in self.rig.tls_endpoints():
            self.assertIsNotNone(ep.not_after.tzinfo)
        for name in ("refused", "silent", "plain_http", "truncated"):
            self.assertIsNone(self.rig.endpoints[name].not_after)

    # ------------------------------------------------------------------ verification outcomes

    def test_valid_verifies_sees_the_sni_and_answers_http(self):
        ep = self.rig.valid
        handshakes = ep.handshakes
        self.assertVerifies(ep, "-verify_hostname", ep.host)
        self.assertVerifies(ep, "-verify_hostname", "api2.test")
        wait_for(lambda: ep.handshakes >= handshakes + 2, 5, "the server to count the handshakes")
        self.assertIn("api.test", ep.sni)
        ctx = ssl.create_default_context(cafile=self.rig.ca_file)
        with socket.create_connection((ep.address, ep.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname=ep.host) as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := tls.recv(4096):
                    answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer)

    def test_expiring_soon_still_verifies(self):
        for ep in (self.rig.expires_5d, self.rig.expires_9d):
            with self.subTest(ep.name):
                self.assertVerifies(ep, "-verify_hostname", ep.host)
        self.assertEqual(self.rig.expires_9d.host, "www.test")

    def test_expired_is_refused_as_expired(self):
        self.assertVerifyFails(self.rig.expired, "certificate has expired")
        self.assertLess(self.rig.expired.not_after, datetime.now(timezone.utc))

    def test_not_yet_valid(self):
        self.assertVerifyFails(self.rig.not_yet_valid, "certificate is not yet valid")

    def test_wrong_host_fails_only_the_name_check(self):
        ep = self.rig.wrong_host
        self.assertVerifies(ep)  # the chain is fine
        self.assertVerifyFails(ep, "hostname mismatch", "-verify_hostname", ep.host)
        self.assertVerifies(ep, "-verify_hostname", "other.test")
        self.assertEqual(ep.sans, ["other.test"])

    def test_untrusted_issuer(self):
        ep = self.rig.untrusted
        self.assertVerifyFails(ep, "unable to get local issuer certificate")
        # Only the trust is missing: with the rogue root it verifies.
        self.assertVerifies(ep, "-verify_hostname", ep.host, ca_file=self.rig.pki.rogue_root.cert)

    def test_expired_intermediate_is_the_one_that_expired(self):
        ep = self.rig.expired_intermediate
        out = self.assertVerifyFails(ep, "certificate has expired")
        lines = out.splitlines()
        i = next(n for n, line in enumerate(lines) if "verify error:num=10" in line)
        self.assertTrue(lines[i - 1].startswith("depth=1 "), lines[max(0, i - 3):i + 1])
        self.assertIn(tls_rig.EXPIRED_INTERMEDIATE_CN, lines[i - 1])
        self.assertGreater(ep.leaf_not_after, datetime.now(timezone.utc))

    def test_no_san_verifies_by_the_common_name(self):
        """OpenSSL's X509_check_host (default flags) falls back to the subject CN when the
        certificate has no DNS subjectAltName, so a CN-only certificate matches its CN."""
        ep = self.rig.no_san
        self.assertEqual(presented(ep)[0]["sans"], [])
        self.assertVerifies(ep, "-verify_hostname", ep.host)
        self.assertVerifyFails(ep, "hostname mismatch", "-verify_hostname", "other.test")
        r = openssl(["x509", "-noout", "-checkhost", ep.host, "-in", ep.cert_file])
        self.assertIn(f"Hostname {ep.host} does match certificate", r.stdout)

    def test_the_long_chain_is_100_certificates_and_verifies_promptly(self):
        ep = self.rig.long_chain
        self.assertEqual(ep.chain_length, 100)
        started = time.monotonic()
        out = self.assertVerifies(ep, "-verify_hostname", ep.host, "-showcerts")
        self.assertEqual(len(PEM_RE.findall(out)), 100)
        self.assertLess(time.monotonic() - started, 5)

    # ------------------------------------------------------------------ the endpoints that are not TLS

    def test_refused(self):
        ep = self.rig.refused
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((ep.address, ep.port), timeout=5).close()
        code, out = s_client(ep, self.rig.ca_file)
        self.assertNotEqual(code, 0)
        self.assertIn("Connection refused", out)

    def test_silent_accepts_and_never_answers(self):
        ep = self.rig.silent
        before = ep.connections
        started = time.monotonic()
        with socket.create_connection((ep.address, ep.port), timeout=5) as raw:
            raw.settimeout(1.0)
            ctx = ssl.create_default_context(cafile=self.rig.ca_file)
            with self.assertRaises((socket.timeout, TimeoutError)):
                ctx.wrap_socket(raw, server_hostname=ep.host)
        self.assertLess(time.monotonic() - started, 3)
        wait_for(lambda: ep.connections > before, 5, "the silent server to count the connection")
        with self.assertRaises(subprocess.TimeoutExpired):
            subprocess.run(["openssl", "s_client", "-connect", f"{ep.address}:{ep.port}", "-servername", ep.host],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=1.5)

    def test_plain_http_on_the_tls_port(self):
        ep = self.rig.plain_http
        code, out = s_client(ep, self.rig.ca_file)
        self.assertNotEqual(code, 0)
        self.assertIn("wrong version number", out)
        with socket.create_connection((ep.address, ep.port), timeout=5) as raw:
            raw.sendall(fake_client_hello())
            answer = read_all(raw)
        self.assertEqual(answer, tls_rig.PLAIN_HTTP_ANSWER)

    def test_truncated_handshake(self):
        ep = self.rig.truncated
        code, out = s_client(ep, self.rig.ca_file)
        self.assertNotEqual(code, 0)
        self.assertIn("unexpected eof while reading", out)
        with socket.create_connection((ep.address, ep.port), timeout=5) as raw:
            raw.sendall(fake_client_hello())
            answer = read_all(raw)
        self.assertEqual(answer, tls_rig.TRUNCATED_SERVER_HELLO)
        self.assertEqual(answer[0], 0x16)  # a handshake record...
        self.assertLess(len(answer) - 5, int.from_bytes(answer[3:5], "big"))  # ...cut short


def fake_client_hello() -> bytes:
    """A handshake record header and a body of its announced length (not a real hello)."""
    body = b"\x01" + (40).to_bytes(3, "big") + bytes(40)
    return b"\x16\x03\x01" + len(body).to_bytes(2, "big") + body


def read_all(sock: socket.socket, limit: int = 65536) -> bytes:
    data = b""
    while len(data) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class TlsRigLifecycleTests(unittest.TestCase):
    def test_connections_are_bounded_and_stop_is_prompt(self):
        rig = tls_rig.TlsRig().start()
        held: list[socket.socket] = []
        try:
            ep = rig.silent
            for _ in range(tls_rig.MAX_CONNECTIONS):
                held.append(socket.create_connection((ep.address, ep.port), timeout=5))
            wait_for(lambda: ep.connections >= tls_rig.MAX_CONNECTIONS, 5, "every connection accepted")
            with socket.create_connection((ep.address, ep.port), timeout=5) as extra:
                extra.settimeout(5)
                self.assertEqual(extra.recv(1), b"", "a connection over the bound is closed at once")
            ports = [e.port for e in rig.endpoints.values()]
            started = time.monotonic()
        finally:
            rig.stop()
        self.assertLess(time.monotonic() - started, 5)
        for s in held:  # the held connections were closed by the rig
            s.settimeout(5)
            try:
                self.assertEqual(s.recv(1), b"")
            except ConnectionResetError:
                pass
            s.close()
        for port in ports:
            with self.assertRaises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()

    def test_a_context_manager(self):
        with tls_rig.TlsRig() as rig:
            port = rig.valid.port
            self.assertEqual(rig.valid.host, "api.test")
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        self.assertTrue(os.path.isfile(rig.ca_file))


if __name__ == "__main__":
    unittest.main()
