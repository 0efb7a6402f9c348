"""The common base of the test fakes: a threaded HTTP(S) server on loopback that records
every request and can be told to misbehave.

A fake (``fake_discord``, ``fake_kubernetes``, ``fake_google``, and the next ones:
PagerDuty REST, a Prometheus-like API, ...) subclasses ``FakeHTTPS`` and writes only its
API: it overrides ``_dispatch`` (and, where it records more, ``_new_request`` with a
``Request`` subclass), and answers with ``_send``/``_send_json``/``_drop``. The base gives:

* the server: ``ThreadingHTTPServer`` bound to ``127.0.0.1:0``, TLS with a certificate of
  ``harness.test_pki()`` (``server_context``) or plain HTTP (``ssl_context=None``); the TLS
  handshake runs in the connection's own thread, never in the accept loop, so a stalled
  client cannot block other connections. ``start``/``stop`` (also ``close``, and ``with``),
  ``port``, ``host``, ``url``.
* the request log: every request as a ``Request`` (method, path, query, headers, body,
  ``time.monotonic()`` on arrival, then status, fault, response and ``responded_at``),
  recorded before the answer leaves, so a test that saw the answer sees the record.
  ``snapshot_requests``; bounded waits ``wait_until``, ``wait_for_request``,
  ``wait_for_requests``, woken on every request and answer.
* faults: ``down`` (new connections reset, open ones cut, requests dropped),
  ``response_delay`` (every request), and scripted ``Fault`` s matched by path prefix and/or
  substring of the request target, one-shot (``count``) or persistent (``count=None``):
  ``fault_answer`` (a status and a body), ``fault_delay``, ``fault_drop`` (closed without
  an answer), ``fault_reset`` (TCP RST). ``clear_faults`` removes them.
* the body read with a limit (``read_body``; 413 past ``max_body``), chunked or by
  ``Content-Length``; exceptions inside the fake kept in ``errors`` (tests assert it stays
  empty), TLS handshake failures in ``tls_errors``.

Subclass hooks: ``_dispatch(h, rec)`` (required), ``_new_request(h, **fields)``,
``_answer_fault(h, rec, fault)``, ``_on_down()``, ``_on_stop()``. Class attributes:
``name``, ``thread_name``, ``server_header``, ``handshake_timeout``, ``idle_timeout``,
``tcp_nodelay``, ``max_body``.

A minimal fake::

    class FakeThing(fake_https.FakeHTTPS):
        name = "fake Thing"

        def _dispatch(self, h, rec):
            if rec.path == "/v1/things" and rec.method == "GET":
                self._send_json(h, rec, 200, {"things": []})
            else:
                self._send_json(h, rec, 404, {"error": "not found"})

    with FakeThing(fake_https.server_context()) as thing:   # started by ``with``
        thing.fault_answer(503, prefix="/v1/", count=2)
        ...  # point the daemon at thing.url
        thing.wait_for_request("/v1/things", 10)

Standard library only. Every wait is bounded; the only sleeps are scripted slow answers,
and those end at once when the fake stops.
"""

from __future__ import annotations

import http
import json
import select
import socket
import ssl
import struct
import threading
import time
import traceback
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Optional, Union

LOOPBACK = "127.0.0.1"

#: The largest request body a fake reads (``FakeHTTPS.max_body``); larger ones get 413.
DEFAULT_MAX_BODY = 8 * 1024 * 1024

# Fault kinds (``Fault.kind``).
FAIL = "fail"  # answer ``status`` with a body instead of handling the request
DROP = "drop"  # read the request, then close the connection without answering
RESET = "reset"  # like DROP, with a TCP RST (SO_LINGER 0)
DELAY = "delay"  # wait ``seconds``, then handle the request normally

_UNSET: Any = object()


# --------------------------------------------------------------------------- helpers


def compact_json(value: Any) -> bytes:
    """JSON without spaces, UTF-8 (what most APIs send)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def pretty_json(value: Any) -> bytes:
    """JSON indented by two, with a final newline (Google's front ends, ``prettyPrint``)."""
    return json.dumps(value, indent=2, ensure_ascii=False).encode() + b"\n"


def reason_phrase(status: int, default: str = "") -> str:
    """The standard reason phrase of ``status`` ("Service Unavailable"), else ``default``."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return default


def server_context(cert_file: Optional[str] = None, key_file: Optional[str] = None, *,
                   client_ca_file: Optional[str] = None,
                   alpn: Optional[Iterable[str]] = ("http/1.1",)) -> ssl.SSLContext:
    """A TLS server context; without ``cert_file``/``key_file``, the server certificate of
    ``harness.test_pki()`` (for IP 127.0.0.1, trusted through ``test_pki().ca_cert``).

    ``client_ca_file``: client certificates signed by it are verified when presented
    (``CERT_OPTIONAL``; read them with ``peer_common_name``). ``alpn``: the protocols
    offered in ALPN (``None``: no ALPN at all)."""
    if cert_file is None or key_file is None:
        import harness  # here, not at the top: harness imports fake_discord, which imports us
        pki = harness.test_pki()
        cert_file, key_file = cert_file or pki.server_cert, key_file or pki.server_key
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if client_ca_file:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(client_ca_file)
    return ctx


def peer_common_name(conn: Any) -> tuple[bool, Optional[str]]:
    """(a verified client certificate was presented, its subject CN) on a server socket."""
    cert = conn.getpeercert() if isinstance(conn, ssl.SSLSocket) else None
    cn = None
    for rdn in (cert or {}).get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                cn = v
    return bool(cert), cn


def hard_shutdown(conn: Any) -> None:
    """Shuts the TCP socket down (under TLS: without touching the TLS state, so a thread
    blocked reading or writing it returns at once)."""
    try:
        socket.socket.shutdown(conn, socket.SHUT_RDWR)
    except (OSError, ValueError):
        pass


def set_reset_on_close(conn: Any) -> None:
    """Makes the next ``close()`` of ``conn`` send a TCP RST instead of a FIN."""
    try:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, ValueError):
        pass


def peer_closed(conn: Any) -> bool:
    """Whether the client closed ``conn`` (for a stream the client sends nothing on, such
    as a watch): readable with nothing to read, or broken."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
    except (OSError, ValueError):
        return True
    if not readable:
        return False
    old = conn.gettimeout()
    try:
        conn.settimeout(0.05)
        return conn.recv(1) == b""
    except (socket.timeout, ssl.SSLWantReadError):
        return False
    except (OSError, ssl.SSLError, ValueError):
        return True
    finally:
        try:
            conn.settimeout(old)
        except OSError:
            pass


def alias(attribute: str, doc: str = "") -> property:
    """A read/write property forwarding to ``attribute``, for a fake whose API names a base
    setting its own way (``delay = alias("response_delay")``)."""
    return property(lambda self: getattr(self, attribute),
                    lambda self, value: setattr(self, attribute, value), doc=doc)


class BodyTooLarge(Exception):
    """The request announced (or sent) more than the limit of ``read_body``."""


def read_body(rfile: Any, headers: dict, limit: int = DEFAULT_MAX_BODY) -> bytes:
    """The request body from ``rfile``: chunked (trailers skipped) or by Content-Length
    (lower-cased ``headers``); raises ``BodyTooLarge`` past ``limit`` bytes, before
    reading them."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = b""
        while True:
            size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return out
            if len(out) + size > limit:
                raise BodyTooLarge(f"chunked body over {limit} bytes")
            out += rfile.read(size)
            rfile.readline()
    length = int(headers.get("content-length", "0") or "0")
    if length > limit:
        raise BodyTooLarge(f"Content-Length {length} over {limit} bytes")
    return rfile.read(length) if length > 0 else b""


# --------------------------------------------------------------------------- records


@dataclass
class Request:
    """One request as the fake read it, then how it was answered. Fakes that record more
    subclass it (a ``@dataclass`` whose added fields all have defaults)."""
    method: str
    path: str  # without the query string, as sent (not percent-decoded)
    query: dict  # name -> value (the last one when repeated)
    headers: dict  # lower-cased names
    body: Any  # bytes as read (a subclass may keep a parsed form here)
    time: float  # time.monotonic() when the request had been read
    target: str = ""  # the request target as sent: path?query
    raw_query: str = ""
    query_list: list = field(default_factory=list)  # every (name, value) pair, in order
    status: Optional[int] = None  # None: not answered (dropped, reset, or still running)
    fault: Optional[str] = None  # "fail_next", "drop", "reset", "delay", "down", "too-large"
    response: Any = b""  # what was answered (bytes unless the fake records something else)
    responded_at: Optional[float] = None  # time.monotonic() when answered or dropped

    @property
    def authorization(self) -> Optional[str]:
        """The Authorization header as sent."""
        return self.headers.get("authorization")

    def json(self) -> Any:
        """The request body parsed as JSON (None when empty; a body a subclass keeps
        parsed already is returned as it is)."""
        if isinstance(self.body, (bytes, str)):
            return json.loads(self.body) if self.body else None
        return self.body

    def response_json(self) -> Any:
        """The answer's body parsed as JSON (None when empty)."""
        return json.loads(self.response) if self.response else None


@dataclass
class Fault:
    """A scripted misbehaviour. It applies to requests whose path starts with ``prefix``
    and whose target (path?query) contains ``contains`` (when given); ``remaining``
    requests (one-shot, counted down) or, with ``None``, every one until cleared.

    ``kind``: ``FAIL`` (answer ``status`` with ``body``: bytes as they are, a str as text,
    anything else as JSON; with no body, the fake's own error shape with ``message`` and
    ``reason``), ``DELAY`` (``seconds``, then handled), ``DROP``, ``RESET``."""
    kind: str
    prefix: str = ""
    remaining: Optional[int] = 1
    status: int = 0
    seconds: float = 0.0
    message: Optional[str] = None
    reason: Optional[str] = None
    body: Any = None
    headers: Optional[dict] = None
    contains: Optional[str] = None

    def matches(self, rec: Request) -> bool:
        return rec.path.startswith(self.prefix) and (self.contains is None or self.contains in rec.target)


# --------------------------------------------------------------------------- server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, fake: "FakeHTTPS"):
        self.fake = fake
        super().__init__((LOOPBACK, 0), Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the per-connection thread, never in the accept loop.
        fake = self.fake
        if fake.down:
            fake._refuse(request)
            return
        request.settimeout(fake.handshake_timeout)
        if fake.tcp_nodelay:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delay on answers
        conn = request
        if fake.ssl_context is not None:
            try:
                conn = fake.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                fake._note_tls_error(e)
                return
        fake._track(conn, True)
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            fake._track(conn, False)
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass  # connection errors caused by clients or scripted drops are expected


class Handler(BaseHTTPRequestHandler):
    """Hands every request, whatever its method, to ``FakeHTTPS._handle``."""
    protocol_version = "HTTP/1.1"
    sys_version = ""

    def setup(self):
        self.timeout = self.server.fake.idle_timeout
        super().setup()

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def version_string(self):
        return self.server.fake.server_header

    def do_GET(self):
        self.server.fake._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET


class FakeHTTPS:
    """A fake HTTP(S) API on ``127.0.0.1:0``; see the module docstring. ``ssl_context``:
    TLS (``server_context()``) or ``None`` for plain HTTP. Not serving until ``start()``
    (or ``with``); ``stop()``/``close()`` end it (idempotent)."""

    name = "fake"  # in messages ("fake Discord: timed out ...")
    thread_name = "fake-https"
    server_header = "fake"  # the Server header
    handshake_timeout = 10.0  # seconds for the TLS handshake (then idle_timeout applies)
    idle_timeout: Optional[float] = 30.0  # socket timeout while serving a connection
    tcp_nodelay = True
    max_body = DEFAULT_MAX_BODY
    request_class: type = Request

    def __init__(self, ssl_context: Optional[ssl.SSLContext] = None):
        self.ssl_context = ssl_context
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._conns: set = set()
        self._down = False
        self._faults: list[Fault] = []
        self.requests: list[Request] = []
        self.errors: list[str] = []  # exceptions inside the fake (should stay empty)
        self.tls_errors: list[str] = []
        self.refused_connections = 0  # connections reset while ``down``
        self.response_delay = 0.0  # seconds every request waits before it is handled
        self.keep_alive = True  # False: answer every request with Connection: close
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # ---------------------------------------------------------------- lifecycle

    def start(self):
        """Starts serving (once; a second call does nothing); returns the fake."""
        if self._server is None:
            self._closing.clear()
            self._server = _Server(self)
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.05},
                                            name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and cuts every open connection; scripted waits end (idempotent)."""
        if self._server is None:
            return
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._on_stop()
        for c in self._open_connections():
            hard_shutdown(c)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def close(self) -> None:
        """The same as ``stop()``."""
        self.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    @property
    def port(self) -> int:
        assert self._server is not None, f"{self.name} not started"
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT`` (``http://`` without TLS)."""
        return f"{'http' if self.ssl_context is None else 'https'}://{self.host}"

    # ---------------------------------------------------------------- faults

    @property
    def down(self) -> bool:
        """True: new connections are reset unanswered, requests on connections still open
        are dropped; switching it on also cuts the open connections (``_on_down``)."""
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        self._down = bool(value)
        if value:
            self._on_down()

    def add_fault(self, fault: Fault) -> Fault:
        """Scripts ``fault`` (after those already scripted; the first match applies)."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Removes every scripted fault (``down`` and ``response_delay`` stay as they are)."""
        with self._lock:
            self._faults.clear()

    def fault_answer(self, status: int, body: Any = None, *, prefix: str = "",
                     contains: Optional[str] = None, count: Optional[int] = 1,
                     message: Optional[str] = None, headers: Optional[dict] = None) -> Fault:
        """The next ``count`` matching requests (``None``: all, until cleared) answer
        ``status`` with ``body`` (see ``Fault``) and ``headers``."""
        return self.add_fault(Fault(FAIL, prefix, count, status=status, body=body, message=message,
                                    headers=headers, contains=contains))

    def fault_delay(self, seconds: float, *, prefix: str = "", contains: Optional[str] = None,
                    count: Optional[int] = None) -> None:
        """Matching requests wait ``seconds`` before being handled (``count`` of them, or
        until cleared). Replaces the delays of the same prefix/substring; ``seconds <= 0``
        just removes them."""
        with self._lock:
            self._faults = [f for f in self._faults
                            if not (f.kind == DELAY and f.prefix == prefix and f.contains == contains)]
            if seconds > 0:
                self._faults.append(Fault(DELAY, prefix, count, seconds=seconds, contains=contains))

    def fault_drop(self, *, prefix: str = "", contains: Optional[str] = None,
                   count: Optional[int] = 1) -> Fault:
        """The next ``count`` matching requests are read, then their connection is closed
        without an answer."""
        return self.add_fault(Fault(DROP, prefix, count, contains=contains))

    def fault_reset(self, *, prefix: str = "", contains: Optional[str] = None,
                    count: Optional[int] = 1) -> Fault:
        """Like ``fault_drop``, with a TCP RST."""
        return self.add_fault(Fault(RESET, prefix, count, contains=contains))

    # ---------------------------------------------------------------- queries

    def snapshot_requests(self, prefix: str = "") -> list:
        """Requests so far (whose path starts with ``prefix``), oldest first."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith(prefix)]

    def wait_until(self, predicate: Callable[[], Any], timeout: float, what: str = "condition"):
        """Bounded wait on the fake's own state, woken on every request and answer; returns
        the predicate's first true value, raises AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: timed out after {timeout}s waiting for {what}")
                self._cond.wait(min(left, 0.1))

    def wait_for_requests(self, count: int, match: Union[str, Callable[[Any], bool]] = "",
                          timeout: float = 10.0, answered: bool = False,
                          what: Optional[str] = None) -> list:
        """Waits until ``count`` requests match (a path prefix, or a predicate on the
        ``Request``; with ``answered``, only those answered or dropped) and returns all the
        matching ones, oldest first."""
        test = match if callable(match) else (lambda r: r.path.startswith(match))

        def found():
            with self._lock:
                got = [r for r in self.requests
                       if test(r) and (not answered or r.responded_at is not None)]
            return got if len(got) >= count else None

        return self.wait_until(found, timeout, what or f"{count} request(s) matching {match!r}")

    def wait_for_request(self, match: Union[str, Callable[[Any], bool]] = "", timeout: float = 10.0,
                         answered: bool = False, what: Optional[str] = None):
        """The first request that matches (see ``wait_for_requests``), once there is one."""
        return self.wait_for_requests(1, match, timeout, answered, what)[0]

    # ---------------------------------------------------------------- answering (for subclasses)

    def _send(self, h: Handler, rec: Request, status: int, body: bytes = b"",
              content_type: Optional[str] = None, headers: Optional[dict] = None, *,
              response: Any = _UNSET) -> None:
        """Answers ``status`` with ``body``. ``rec`` is completed first (``response``:
        what to record, ``body`` by default), so a test that saw the answer sees it."""
        self._finish(rec, status, body if response is _UNSET else response)
        try:
            h.send_response(status)
            if content_type:
                h.send_header("Content-Type", content_type)
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            if not self.keep_alive:
                h.send_header("Connection", "close")
                h.close_connection = True
            h.end_headers()
            if body and h.command != "HEAD":
                h.wfile.write(body)
            h.wfile.flush()
        except OSError:
            h.close_connection = True

    def _send_json(self, h: Handler, rec: Request, status: int, value: Any,
                   headers: Optional[dict] = None, *, content_type: str = "application/json",
                   pretty: bool = False) -> None:
        """Answers ``value`` as JSON: compact with a final newline, or ``pretty``."""
        body = pretty_json(value) if pretty else compact_json(value) + b"\n"
        self._send(h, rec, status, body, content_type, headers)

    def _send_text(self, h: Handler, rec: Request, status: int, text: str,
                   headers: Optional[dict] = None, *,
                   content_type: str = "text/plain; charset=utf-8") -> None:
        self._send(h, rec, status, text.encode(), content_type, headers)

    def _drop(self, h: Handler, rec: Request, fault: Optional[str] = None, rst: bool = False) -> None:
        """Closes the connection without answering (``rst``: with a TCP RST); ``rec`` is
        completed with status None first."""
        if fault is not None:
            rec.fault = fault
        h.close_connection = True
        self._finish(rec, None)
        if rst:
            # No shutdown first: it would send a FIN, and the client would read a clean end
            # before the RST. The handler closes the connection as soon as this returns.
            set_reset_on_close(h.connection)
        else:
            hard_shutdown(h.connection)

    def _sleep(self, seconds: float) -> None:
        """A deliberately slow answer (not synchronisation), cut short by ``stop()``."""
        self._closing.wait(seconds)

    def _finish(self, rec: Request, status: Optional[int], response: Any = _UNSET) -> None:
        with self._lock:
            rec.status = status
            if response is not _UNSET:
                rec.response = response
            rec.responded_at = time.monotonic()
            self._cond.notify_all()

    def _notify(self) -> None:
        """Wakes ``wait_until`` (call with new state in place, under or after ``_lock``)."""
        with self._lock:
            self._cond.notify_all()

    # ---------------------------------------------------------------- hooks

    def _dispatch(self, h: Handler, rec: Request) -> None:
        """Handles one recorded request that no fault took (required)."""
        raise NotImplementedError

    def _new_request(self, h: Handler, **fields: Any) -> Request:
        """Makes the record of a request (``fields``: those of ``Request``)."""
        return self.request_class(**fields)

    def _answer_fault(self, h: Handler, rec: Request, fault: Fault) -> None:
        """The answer of a ``FAIL`` fault; fakes with an error shape override it."""
        body = fault.body
        if isinstance(body, bytes):
            self._send(h, rec, fault.status, body, "application/octet-stream", fault.headers)
        elif body is None or isinstance(body, str):
            text = body if body is not None else (fault.message or reason_phrase(fault.status, "error")) + "\n"
            self._send_text(h, rec, fault.status, text, fault.headers)
        else:
            self._send_json(h, rec, fault.status, body, fault.headers)

    def _on_down(self) -> None:
        """``down`` switched on: cuts every open connection."""
        for c in self._open_connections():
            hard_shutdown(c)

    def _on_stop(self) -> None:
        """Called by ``stop()`` once no new connection is accepted, before the open ones
        are cut (e.g. to end streams)."""

    # ---------------------------------------------------------------- internals

    def _handle(self, h: Handler) -> None:
        try:
            rec = self._receive(h)
            if rec is not None and not self._apply_faults(h, rec):
                self._dispatch(h, rec)
        except Exception:
            h.close_connection = True
            with self._lock:
                self.errors.append(traceback.format_exc())
                self._cond.notify_all()

    def _receive(self, h: Handler) -> Optional[Request]:
        """Reads and records the request; None when it was answered already (413)."""
        split = urllib.parse.urlsplit(h.path)
        headers = {k.lower(): v for k, v in h.headers.items()}
        too_large = False
        try:
            body = read_body(h.rfile, headers, self.max_body)
        except BodyTooLarge:
            body, too_large = b"", True
        pairs = urllib.parse.parse_qsl(split.query, keep_blank_values=True)
        rec = self._new_request(h, method=h.command, path=split.path, query=dict(pairs),
                                headers=headers, body=body, time=time.monotonic(), target=h.path,
                                raw_query=split.query, query_list=pairs)
        with self._lock:
            self.requests.append(rec)
            self._cond.notify_all()
        if too_large:
            rec.fault = "too-large"
            h.close_connection = True  # the body was not read
            self._send_text(h, rec, 413, "request body too large\n", {"Connection": "close"})
            return None
        return rec

    def _take_fault(self, kinds: tuple[str, ...], rec: Request) -> Optional[Fault]:
        """The first scripted fault of ``kinds`` matching ``rec``, counted down."""
        with self._lock:
            for f in self._faults:
                if f.kind in kinds and f.matches(rec):
                    if f.remaining is not None:
                        f.remaining -= 1
                        if f.remaining <= 0:
                            self._faults.remove(f)
                    return f
        return None

    def _apply_faults(self, h: Handler, rec: Request) -> bool:
        """down, drop/reset, delays, then a scripted answer; True when the request is done."""
        if self._down:
            self._drop(h, rec, "down")
            return True
        f = self._take_fault((DROP, RESET), rec)
        if f is not None:
            self._drop(h, rec, f.kind, rst=f.kind == RESET)
            return True
        if self.response_delay > 0:
            rec.fault = "delay"
            self._sleep(self.response_delay)
        f = self._take_fault((DELAY,), rec)
        if f is not None:
            rec.fault = "delay"
            self._sleep(f.seconds)
        f = self._take_fault((FAIL,), rec)
        if f is not None:
            rec.fault = "fail_next"
            self._answer_fault(h, rec, f)
            return True
        return False

    def _open_connections(self) -> list:
        with self._lock:
            return list(self._conns)

    def _track(self, conn: Any, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def _note_tls_error(self, e: Exception) -> None:
        with self._lock:
            self.tls_errors.append(repr(e))
            self._cond.notify_all()

    def _refuse(self, sock: Any) -> None:
        with self._lock:  # counted before the client can see the reset
            self.refused_connections += 1
            self._cond.notify_all()
        set_reset_on_close(sock)
        try:
            sock.close()
        except OSError:
            pass
