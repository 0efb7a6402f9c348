"""Real TLS servers on loopback with certificates of chosen dates and names, for the
certificate-expiry source.

``TlsPki`` makes a throw-away PKI with the ``openssl`` CLI: ``openssl ca`` with a minimal
config and ``-startdate``/``-enddate`` picks exact validity dates (OpenSSL 3.0's
``openssl x509`` cannot set notBefore); the roots are ``openssl ca -selfsign``. A root CA
(the only certificate of ``ca_file``), an intermediate under it, and leaf certificates
(EC P-256) for each endpoint below. It is made once per process (``tls_pki()``), in a temp
dir removed at exit; every date is relative to the moment it was made.

``TlsRig`` (a context manager) starts one server per endpoint on ``127.0.0.1`` (a free
port each), threaded, stoppable and bounded (at most ``MAX_CONNECTIONS`` connections at a
time per server, every read under ``IO_TIMEOUT``). A TLS endpoint presents its leaf and the
chain above it (never the root), records the SNI names it was sent and the handshakes it
completed, and answers one HTTP/1.1 request with ``200 OK`` (or closes when the client sends
nothing). Endpoints, by attribute name:

================== ================ =========================================================
name               host             what it serves
================== ================ =========================================================
valid              api.test         leaf valid for a year (SANs api.test, api2.test)
expired            expired.test     leaf that expired 2 hours ago
expires_5d         soon.test        leaf expiring in 5 days (and an hour)
expires_9d         www.test         leaf expiring in 9 days (and an hour)
not_yet_valid      future.test      leaf valid from tomorrow
wrong_host         wrong.test       leaf for another name (SAN other.test only)
untrusted          rogue.test       leaf + intermediate under a root not in ``ca_file``
expired_intermediate chain.test     leaf fine, its intermediate expired yesterday
no_san             nosan.test       leaf with CN=nosan.test and no subjectAltName at all
long_chain         long.test        100 certificates: the leaf and 99 intermediates
refused            refused.test     a bound port that does not listen: connections refused
silent             silent.test      accepts and never answers
plain_http         plain.test       answers the ClientHello with a plain HTTP/1.1 400
truncated          truncated.test   reads the ClientHello, sends 11 bytes of a ServerHello
                                    that claims 122, then closes
================== ================ =========================================================

Every endpoint has ``name``, ``host``, ``address`` (``127.0.0.1``), ``port``, and for TLS
ones ``not_after`` (timezone-aware ``datetime``: the notAfter of the presented certificate
that expires first, what a checker reports; the intermediate's for
``expired_intermediate``), ``which`` (``"leaf"``/``"intermediate"``: which one that is),
``leaf_not_after``, ``not_before`` (the leaf's), ``sans``, ``cert_subject`` (the leaf's
CN), ``issuer`` (the CN of the leaf's issuer), ``chain_length`` (certificates presented),
``cert_file``/``chain_file``/``key_file``. Non-TLS endpoints have ``not_after = None``.
Servers count ``connections``/``handshakes`` and record ``sni`` (names sent by clients).
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import ssl
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

from harness import make_tempdir

ADDRESS = "127.0.0.1"
MAX_CONNECTIONS = 32  # per server, at a time
IO_TIMEOUT = 5.0  # every read and handshake of a server
LONG_CHAIN = 100  # certificates the long chain presents (leaf included)

ROOT_CN = "runbookd tls-rig root CA"
INTERMEDIATE_CN = "runbookd tls-rig intermediate CA"
EXPIRED_INTERMEDIATE_CN = "runbookd tls-rig expired intermediate CA"
ROGUE_ROOT_CN = "runbookd tls-rig rogue root CA"
ROGUE_INTERMEDIATE_CN = "runbookd tls-rig rogue intermediate CA"
LONG_CN = "runbookd tls-rig long chain CA {}"

# The bytes of the truncated ServerHello: a handshake record that claims 122 bytes
# (0x7a), a ServerHello header that claims 118, the legacy version and 2 bytes of random.
TRUNCATED_SERVER_HELLO = bytes.fromhex("160303007a" "02000076" "0303" "5a5a")
PLAIN_HTTP_ANSWER = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 40\r\n"
                     b"Connection: close\r\n\r\nThis port speaks plain HTTP, not TLS.\r\n\r\n")
HTTP_OK = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
           b"Connection: close\r\n\r\nok\n")


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def asn1_time(t: datetime) -> str:
    """``YYYYMMDDHHMMSSZ``, as ``openssl ca -startdate/-enddate`` takes it."""
    return t.astimezone(timezone.utc).strftime("%Y%m%d%H%M%SZ")


# --------------------------------------------------------------------------- the PKI

CA_CONFIG = """# A minimal `openssl ca` configuration: one database for every issuer of the rig.
[ ca ]
default_ca = rig

[ rig ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
default_md = sha256
policy = any_name
unique_subject = no
email_in_dn = no
copy_extensions = none
preserve = no

[ any_name ]
commonName = supplied

[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


def _openssl(args: list[str], cwd: str, input_: Optional[bytes] = None) -> bytes:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=60, input=input_)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({r.returncode}): "
                           f"{r.stderr.decode(errors='replace')}")
    return r.stdout


@dataclass
class Cert:
    """One certificate of the PKI and its key."""
    cn: str
    cert: str  # PEM file
    key: str  # PEM file
    not_before: datetime
    not_after: datetime
    issuer: Optional["Cert"] = None  # None: self-signed root
    sans: list[str] = field(default_factory=list)

    def pem(self) -> str:
        with open(self.cert) as f:
            return f.read()


class TlsPki:
    """Roots, intermediates and leaves made with ``openssl req`` and ``openssl ca``."""

    def __init__(self, directory: str, now: Optional[datetime] = None):
        self.dir = directory
        self.now = now or utc_now()
        os.makedirs(os.path.join(directory, "issued"), exist_ok=True)
        with open(os.path.join(directory, "index.txt"), "w"):
            pass
        with open(os.path.join(directory, "serial"), "w") as f:
            f.write("1000\n")
        self.config = os.path.join(directory, "ca.cnf")
        with open(self.config, "w") as f:
            f.write(CA_CONFIG.format(dir=directory))
        self._n = 0
        self._lock = threading.Lock()
        self._sign_lock = threading.Lock()

    def _name(self, stem: str) -> str:
        with self._lock:
            self._n += 1
            return os.path.join(self.dir, f"{self._n:03d}-{stem}")

    def _request(self, cn: str) -> tuple[str, str, str]:
        """A new EC key and a CSR for CN=cn: (base path, key, csr)."""
        base = self._name("".join(c if c.isalnum() else "-" for c in cn))
        key, csr = base + ".key", base + ".csr"
        _openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", f"/CN={cn}"], self.dir)
        return base, key, csr

    def _sign(self, base: str, key: str, csr: str, cn: str, issuer: Optional[Cert], not_before: datetime,
              not_after: datetime, ca: bool, sans: list[str]) -> Cert:
        out = base + ".pem"
        args = ["ca", "-batch", "-notext", "-config", self.config, "-in", csr, "-out", out,
                "-startdate", asn1_time(not_before), "-enddate", asn1_time(not_after)]
        if issuer is None:
            args += ["-selfsign", "-keyfile", key]
        else:
            args += ["-cert", issuer.cert, "-keyfile", issuer.key]
        if ca:
            args += ["-extensions", "v3_ca"]
        else:
            ext = base + ".ext"
            with open(ext, "w") as f:
                f.write("[ leaf ]\nbasicConstraints = critical,CA:FALSE\n"
                        "keyUsage = critical,digitalSignature,keyEncipherment\n"
                        "extendedKeyUsage = serverAuth\nsubjectKeyIdentifier = hash\n"
                        "authorityKeyIdentifier = keyid\n")
                if sans:
                    f.write("subjectAltName = " + ",".join(f"DNS:{s}" for s in sans) + "\n")
            args += ["-extfile", ext, "-extensions", "leaf"]
        with self._sign_lock:  # one database, index and serial for every issuer
            _openssl(args, self.dir)
        return Cert(cn, out, key, not_before, not_after, issuer, list(sans))

    def issue(self, cn: str, issuer: Optional[Cert], not_before: datetime, not_after: datetime,
              ca: bool = False, sans: Optional[list[str]] = None) -> Cert:
        base, key, csr = self._request(cn)
        return self._sign(base, key, csr, cn, issuer, not_before, not_after, ca, sans or [])

    def chain(self, cns: list[str], issuer: Cert, not_before: datetime, not_after: datetime) -> list[Cert]:
        """CA certificates, each issued by the one before (the first by `issuer`); keys made
        in parallel, signatures in order."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            requests = list(pool.map(self._request, cns))
        out: list[Cert] = []
        for cn, (base, key, csr) in zip(cns, requests):
            issuer = self._sign(base, key, csr, cn, issuer, not_before, not_after, True, [])
            out.append(issuer)
        return out

    def bundle(self, name: str, certs: list[Cert]) -> str:
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            for c in certs:
                f.write(c.pem())
        return path


@dataclass
class Endpoint:
    """One server of the rig (see the module's table)."""
    name: str
    host: str
    kind: str  # "tls", "refused", "silent", "plain_http", "truncated"
    address: str = ADDRESS
    port: int = 0
    not_after: Optional[datetime] = None
    which: Optional[str] = None
    leaf_not_after: Optional[datetime] = None
    not_before: Optional[datetime] = None
    sans: list[str] = field(default_factory=list)
    cert_subject: Optional[str] = None
    issuer: Optional[str] = None
    chain_length: int = 0
    cert_file: Optional[str] = None  # the leaf
    chain_file: Optional[str] = None  # what is presented: leaf first, then the intermediates
    key_file: Optional[str] = None
    server: Optional["_Server"] = field(default=None, repr=False)

    @property
    def connections(self) -> int:
        return self.server.connections if self.server else 0

    @property
    def handshakes(self) -> int:
        return self.server.handshakes if self.server else 0

    @property
    def sni(self) -> list[str]:
        return self.server.snapshot_sni() if self.server else []


class RigPki:
    """Every certificate the rig's endpoints present, made once per process."""

    def __init__(self, directory: str):
        self.pki = p = TlsPki(directory)
        now = p.now
        day, year = timedelta(days=1), timedelta(days=365)
        self.root = p.issue(ROOT_CN, None, now - 2 * year, now + 10 * year, ca=True)
        self.intermediate = p.issue(INTERMEDIATE_CN, self.root, now - year, now + 5 * year, ca=True)
        self.expired_intermediate = p.issue(EXPIRED_INTERMEDIATE_CN, self.root, now - 2 * year, now - day, ca=True)
        self.rogue_root = p.issue(ROGUE_ROOT_CN, None, now - year, now + 10 * year, ca=True)
        self.rogue_intermediate = p.issue(ROGUE_INTERMEDIATE_CN, self.rogue_root, now - year, now + 5 * year,
                                          ca=True)
        self.long = p.chain([LONG_CN.format(i) for i in range(1, LONG_CHAIN)], self.root,
                            now - year, now + 5 * year)
        self.ca_file = p.bundle("ca.pem", [self.root])

        # (name, host, issuer, not_before, not_after, sans)
        month = 30 * day
        hour = timedelta(hours=1)
        plan = [
            ("valid", "api.test", self.intermediate, now - month, now + year, ["api.test", "api2.test"]),
            ("expired", "expired.test", self.intermediate, now - month, now - 2 * hour, ["expired.test"]),
            ("expires_5d", "soon.test", self.intermediate, now - month, now + 5 * day + hour, ["soon.test"]),
            ("expires_9d", "www.test", self.intermediate, now - month, now + 9 * day + hour, ["www.test"]),
            ("not_yet_valid", "future.test", self.intermediate, now + day, now + year, ["future.test"]),
            ("wrong_host", "wrong.test", self.intermediate, now - month, now + year, ["other.test"]),
            ("untrusted", "rogue.test", self.rogue_intermediate, now - month, now + year, ["rogue.test"]),
            ("expired_intermediate", "chain.test", self.expired_intermediate, now - month, now + year,
             ["chain.test"]),
            ("no_san", "nosan.test", self.intermediate, now - month, now + year, []),
            ("long_chain", "long.test", self.long[-1], now - month, now + year, ["long.test"]),
        ]
        with ThreadPoolExecutor(max_workers=4) as pool:
            leaves = list(pool.map(lambda e: p.issue(e[1], e[2], e[3], e[4], sans=e[5]), plan))
        self.endpoints: dict[str, Endpoint] = {}
        for (name, host, issuer, nb, na, sans), leaf in zip(plan, leaves):
            presented = [leaf]
            c = issuer
            while c is not None and c.issuer is not None:  # up to, not including, the root
                presented.append(c)
                c = c.issuer
            first = min(presented, key=lambda x: x.not_after)
            self.endpoints[name] = Endpoint(
                name=name, host=host, kind="tls", not_after=first.not_after,
                which="leaf" if first is leaf else "intermediate", leaf_not_after=na, not_before=nb,
                sans=list(sans), cert_subject=host, issuer=issuer.cn, chain_length=len(presented),
                cert_file=leaf.cert, chain_file=p.bundle(f"chain-{name}.pem", presented), key_file=leaf.key)
        for name, host in (("refused", "refused.test"), ("silent", "silent.test"),
                           ("plain_http", "plain.test"), ("truncated", "truncated.test")):
            self.endpoints[name] = Endpoint(name=name, host=host, kind=name)


_pki_lock = threading.Lock()
_pki: Optional[RigPki] = None


def tls_pki() -> RigPki:
    """One PKI per process, in its own temp dir, removed at exit."""
    global _pki
    with _pki_lock:
        if _pki is None:
            d = make_tempdir("runbookd-it-tls-")
            atexit.register(shutil.rmtree, d, True)
            _pki = RigPki(d)
        return _pki


# --------------------------------------------------------------------------- servers


def _read_record(conn: socket.socket, limit: int = 1 << 16) -> bytes:
    """One TLS record (the ClientHello), or what arrived before EOF/timeout/limit."""
    data = b""
    try:
        while len(data) < limit:
            need = 5 if len(data) < 5 else 5 + int.from_bytes(data[3:5], "big")
            if len(data) >= need:
                break
            chunk = conn.recv(need - len(data))
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    return data


def _drain_and_close(conn: socket.socket, timeout: float = 2.0) -> None:
    """Half-close, then read until the peer closes (bounded), so nothing unread turns the
    close into a reset."""
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(timeout)
        while conn.recv(4096):
            pass
    except OSError:
        pass
    finally:
        conn.close()


class _Server:
    """A listening socket on 127.0.0.1, an accept thread and a thread per connection."""

    def __init__(self, name: str, handle: Callable[["_Server", socket.socket], None]):
        self.name = name
        self._handle = handle
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._open: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._sni: list[str] = []
        self.connections = 0
        self.handshakes = 0
        self.errors: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ADDRESS, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self._accepter = threading.Thread(target=self._accept_loop, name=f"tls-rig-{name}", daemon=True)

    def start(self) -> "_Server":
        self._accepter.start()
        return self

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def note_sni(self, name: Optional[str]) -> None:
        with self._lock:
            self._sni.append(name or "")

    def note_handshake(self) -> None:
        with self._lock:
            self.handshakes += 1

    def snapshot_sni(self) -> list[str]:
        with self._lock:
            return list(self._sni)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            if not self._slots.acquire(blocking=False):
                conn.close()  # bounded: over MAX_CONNECTIONS, refuse by closing
                continue
            with self._lock:
                self.connections += 1
                self._open.add(conn)
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            with self._lock:
                self._threads.add(t)
            t.start()

    def _run(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(IO_TIMEOUT)
            self._handle(self, conn)
        except Exception as e:  # a client that gives up mid-way is normal
            with self._lock:
                self.errors.append(repr(e))
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self._lock:
                self._open.discard(conn)
                self._threads.discard(threading.current_thread())
            self._slots.release()

    def stop(self) -> None:
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        if self._accepter.is_alive():
            self._accepter.join(timeout=2)
        with self._lock:
            conns, threads = list(self._open), list(self._threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(timeout=2)


def _tls_handler(context: ssl.SSLContext) -> Callable[[_Server, socket.socket], None]:
    def handle(server: _Server, conn: socket.socket) -> None:
        tls = context.wrap_socket(conn, server_side=True)  # the handshake, under IO_TIMEOUT
        server.note_handshake()
        try:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 16384:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                request += chunk
            if request:
                tls.sendall(HTTP_OK)
        finally:
            tls.close()
    return handle


def _silent(server: _Server, conn: socket.socket) -> None:
    """Reads (and drops) whatever comes, answers nothing, until the client or the rig stops."""
    conn.settimeout(0.2)
    while not server.stopping:
        try:
            if not conn.recv(4096):
                return
        except socket.timeout:
            continue


def _plain_http(server: _Server, conn: socket.socket) -> None:
    _read_record(conn)
    conn.sendall(PLAIN_HTTP_ANSWER)
    _drain_and_close(conn)


def _truncated(server: _Server, conn: socket.socket) -> None:
    _read_record(conn)
    conn.sendall(TRUNCATED_SERVER_HELLO)
    _drain_and_close(conn)


class TlsRig:
    """Every endpoint of the module's table, started; a context manager."""

    def __init__(self):
        pki = tls_pki()
        self.pki = pki
        self.ca_file = pki.ca_file
        self.now = pki.pki.now
        self.endpoints: dict[str, Endpoint] = {}
        self._servers: list[_Server] = []
        self._refused: Optional[socket.socket] = None
        self._started = False

    def __getattr__(self, name: str) -> Endpoint:
        endpoints = self.__dict__.get("endpoints") or {}
        if name in endpoints:
            return endpoints[name]
        raise AttributeError(name)

    def start(self) -> "TlsRig":
        try:
            for name, proto in self.pki.endpoints.items():
                ep = Endpoint(**{k: getattr(proto, k) for k in proto.__dataclass_fields__ if k != "server"})
                if ep.kind == "tls":
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(ep.chain_file, ep.key_file)
                    server = _Server(name, _tls_handler(ctx))
                    ctx.sni_callback = lambda _obj, sni, _ctx, s=server: s.note_sni(sni)
                elif ep.kind == "refused":
                    # Bound and never listening: connections are refused (RST), and no one
                    # else can take the port while the rig runs.
                    self._refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    self._refused.bind((ADDRESS, 0))
                    ep.port = self._refused.getsockname()[1]
                    self.endpoints[name] = ep
                    continue
                else:
                    server = _Server(name, {"silent": _silent, "plain_http": _plain_http,
                                            "truncated": _truncated}[ep.kind])
                ep.port = server.port
                ep.server = server
                self._servers.append(server.start())
                self.endpoints[name] = ep
        except BaseException:
            self.stop()
            raise
        self._started = True
        return self

    def stop(self) -> None:
        for s in self._servers:
            s.stop()
        self._servers = []
        if self._refused is not None:
            self._refused.close()
            self._refused = None

    def __enter__(self) -> "TlsRig":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def tls_endpoints(self) -> list[Endpoint]:
        return [e for e in self.endpoints.values() if e.kind == "tls"]
