"""Fake Google Cloud endpoints: the metadata server, the OAuth token endpoint, Cloud
Monitoring, Cloud SQL Admin and the status feed.

Implements the subset described in /work/shared/api-facts.md section 3:

* ``FakeMetadata`` (plain HTTP, like the GKE metadata server):
  ``GET /computeMetadata/v1/instance/service-accounts/default/token[?scopes=a,b]`` →
  ``{"access_token":"ya29.md-<n>","expires_in":3599,"token_type":"Bearer"}``;
  ``…/project/project-id`` and ``…/instance/service-accounts/default/email`` (text).
  Every ``/computeMetadata/`` request needs ``Metadata-Flavor: Google`` (else 403) and
  every answer carries it; ``GET /`` answers ``computeMetadata/`` as the real server
  does (a GCE probe); anything else is 404.
* ``FakeGoogle`` (one HTTPS server for all of these, with ``harness.test_pki()``):
  - ``POST /token``: the JWT-bearer grant of a service-account key. The assertion is
    verified fully: unpadded base64url, header ``{"alg":"RS256","typ":"JWT","kid"}``
    naming a registered key of the ``iss`` account, the RS256 signature (``openssl dgst
    -verify`` with the key's public half), ``aud`` == ``token_url``, a non-empty
    space-separated ``scope`` of Google scope URLs, integer ``iat``/``exp`` with
    ``0 < exp-iat <= 3600``, ``iat`` within 5 minutes of now and ``exp`` in the future.
    Failures: 400 ``invalid_grant`` (``invalid_scope`` for a bad scope claim,
    ``unsupported_grant_type``, ``invalid_request``) with an ``error_description``.
  - ``GET /v3/projects/{p}/timeSeries`` (Cloud Monitoring ``timeSeries.list``): the filter
    must name exactly one ``metric.type`` (``=`` terms joined by ``AND`` are
    understood: ``metric.type``, ``resource.type``, ``resource.labels.*``,
    ``metric.labels.*``, ``project``); ``interval.endTime`` is required (RFC 3339),
    ``interval.startTime`` optional; ``view=FULL`` is required; aggregation parameters
    are validated and recorded but NOT applied (the stored points are returned as they
    are). Points newest first, INT64 values as JSON strings, ``{}`` when nothing
    matches, ``pageSize`` counts points, ``nextPageToken`` continues one snapshot. A
    point may be *late*, as Cloud SQL's are (visible minutes after its time): set with
    ``set_points(..., late=[times])``, it is left out of every answer until
    ``publish_late()``, then served at its own time among the others.
  - ``GET /v1/projects/{p}/instances/{i}`` (also ``/sql/v1beta4/…``): Cloud SQL Admin
    ``instances.get``; 404 ``NOT_FOUND`` for unknown instances. The maintenance fields as
    Google's Cloud SQL Admin reference gives them (``sql_instance``):
    ``settings.maintenanceWindow`` ``{"kind": "sql#maintenanceWindow", "day": 1-7 (1 =
    Monday, UTC), "hour": 0-23 (UTC), "updateTrack": "canary" | "stable" | "week5"}`` (day
    and hour are Int32Value wrappers: absent when unset, "any window"), and
    ``scheduledMaintenance`` ``{"startTime", "canDefer" (deprecated), "canReschedule",
    "scheduleDeadlineTime" (no reschedule may start past it)}``, RFC 3339 times, present
    only while a maintenance is upcoming or under way.
  - ``GET /incidents.json``: the status feed, a bare JSON array, no auth.
  Google APIs need ``Authorization: Bearer <token>`` issued by either fake (a shared
  ``TokenBook``), not expired or revoked (else 401 UNAUTHENTICATED), with a scope that
  covers the API (else 403 ``ACCESS_TOKEN_SCOPE_INSUFFICIENT``). Errors use Google's
  ``{"error":{"code","message","status"}}`` shape; JSON is pretty-printed as Google's
  front ends do (``prettyPrint=false`` makes it compact).

Faults (``FakeGoogle``, per path prefix, ``""`` = every path): ``fail_next``,
``drop_next`` (close without answering), ``delay`` (slow answers), ``down`` (reset every
connection), ``revoke_tokens``; ``FakeMetadata`` has ``fail_next``, ``drop_next``,
``delay`` (an attribute, as in fake_kubernetes) and ``down``. Every request is recorded
(method, path, query, headers, body, ``time.monotonic()``, status, fault, answer). The
servers, the request log, ``wait_until`` and the fault plumbing come from ``fake_https``.

Builders: ``make_service_account_key`` (a real RSA key made with ``openssl genpkey`` and
its key-file JSON), ``sign_jwt``, ``sql_instance``, ``incident``. Standard library only;
RSA work is done by the ``openssl`` CLI.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Optional, Union

import fake_https
import harness

_Handler = fake_https.Handler

DEFAULT_PROJECT = "darklang-prod"
DEFAULT_REGION = "us-central1"
DEFAULT_EXPIRES_IN = 3599
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

#: How far ``iat`` may be from the fake's clock, and the longest assertion lifetime.
MAX_CLOCK_SKEW = 300
MAX_ASSERTION_LIFETIME = 3600

#: ``pageSize`` default and cap of timeSeries.list (in points).
MAX_PAGE_SIZE = 100_000

SCOPE_CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
SCOPE_MONITORING_READ = "https://www.googleapis.com/auth/monitoring.read"
SCOPE_SQL_ADMIN = "https://www.googleapis.com/auth/sqlservice.admin"
MONITORING_SCOPES = frozenset({SCOPE_CLOUD_PLATFORM, SCOPE_MONITORING_READ,
                               "https://www.googleapis.com/auth/monitoring"})
SQL_ADMIN_SCOPES = frozenset({SCOPE_CLOUD_PLATFORM, SCOPE_SQL_ADMIN,
                              "https://www.googleapis.com/auth/sqlservice"})
_SCOPE_RE = re.compile(r"^(https://www\.googleapis\.com/auth/[A-Za-z0-9._/-]+|openid|email|profile)$")

CPU_UTILIZATION = "cloudsql.googleapis.com/database/cpu/utilization"
NUM_BACKENDS = "cloudsql.googleapis.com/database/postgresql/num_backends"

#: metric type → (valueType, unit) for the Cloud SQL metrics tests are likely to use.
#: Other metric types: INT64 when every value is a Python int, else DOUBLE; unit "1".
METRICS: dict[str, tuple[str, str]] = {
    CPU_UTILIZATION: ("DOUBLE", "10^2.%"),
    "cloudsql.googleapis.com/database/memory/utilization": ("DOUBLE", "10^2.%"),
    "cloudsql.googleapis.com/database/disk/utilization": ("DOUBLE", "10^2.%"),
    "cloudsql.googleapis.com/database/postgresql/transaction_id_utilization": ("DOUBLE", "10^2.%"),
    "cloudsql.googleapis.com/database/replication/replica_lag": ("DOUBLE", "s"),
    NUM_BACKENDS: ("INT64", "1"),
    "cloudsql.googleapis.com/database/up": ("INT64", "1"),
    "cloudsql.googleapis.com/database/disk/bytes_used": ("INT64", "By"),
    "cloudsql.googleapis.com/database/memory/usage": ("INT64", "By"),
}

ALIGNERS = frozenset(
    "ALIGN_NONE ALIGN_DELTA ALIGN_RATE ALIGN_INTERPOLATE ALIGN_NEXT_OLDER ALIGN_MIN ALIGN_MAX "
    "ALIGN_MEAN ALIGN_COUNT ALIGN_SUM ALIGN_STDDEV ALIGN_COUNT_TRUE ALIGN_COUNT_FALSE "
    "ALIGN_FRACTION_TRUE ALIGN_PERCENTILE_99 ALIGN_PERCENTILE_95 ALIGN_PERCENTILE_50 "
    "ALIGN_PERCENTILE_05 ALIGN_PERCENT_CHANGE".split())
REDUCERS = frozenset(
    "REDUCE_NONE REDUCE_MEAN REDUCE_MIN REDUCE_MAX REDUCE_SUM REDUCE_STDDEV REDUCE_COUNT "
    "REDUCE_COUNT_TRUE REDUCE_COUNT_FALSE REDUCE_FRACTION_TRUE REDUCE_PERCENTILE_99 "
    "REDUCE_PERCENTILE_95 REDUCE_PERCENTILE_50 REDUCE_PERCENTILE_05".split())

UNAUTHENTICATED_MESSAGE = "Request had invalid authentication credentials."
INVALID_SIGNATURE = "Invalid JWT Signature."
BAD_TIMEFRAME = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                 "timeframe. Check your iat and exp values in the JWT claim.")

_GOOGLE_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                  404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                  501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
                  504: "DEADLINE_EXCEEDED"}
_GOOGLE_MESSAGES = {
    400: "Request contains an invalid argument.",
    401: UNAUTHENTICATED_MESSAGE,
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: ("Quota exceeded for quota metric 'Time series queries' and limit 'Time series queries "
          "per minute' of service 'monitoring.googleapis.com' for consumer "
          "'project_number:123456789012'."),
    500: "Internal error encountered.",
    502: "Bad Gateway",
    503: "The service is currently unavailable.",
    504: "The request timed out. Please try again.",
}


# --------------------------------------------------------------------------- helpers


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _b64url_decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_compact = fake_https.compact_json
_pretty = fake_https.pretty_json


def google_error(code: int, message: Optional[str] = None, status: Optional[str] = None,
                 details: Optional[list] = None, errors: Optional[list] = None) -> dict:
    """A google.rpc.Status error body: ``{"error":{"code","message",["errors"],"status",["details"]}}``."""
    err: dict = {"code": code, "message": message or _GOOGLE_MESSAGES.get(code, f"fake failure {code}")}
    if errors is not None:
        err["errors"] = errors
    err["status"] = status or _GOOGLE_STATUS.get(code, "UNKNOWN")
    if details is not None:
        err["details"] = details
    return {"error": err}


def to_utc(when: Union[datetime, str, float, int]) -> datetime:
    """A timezone-aware UTC datetime from a datetime (naive = UTC), RFC 3339 text or Unix time."""
    if isinstance(when, datetime):
        return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    if isinstance(when, str):
        return parse_rfc3339(when)
    return datetime.fromtimestamp(float(when), tz=timezone.utc)


_RFC3339_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?"
                         r"([Zz]|[+-]\d{2}:\d{2})$")


def parse_rfc3339(text: str) -> datetime:
    """Strict RFC 3339 (``2024-01-01T00:00:00Z``, fractions up to ns, offsets); raises ValueError."""
    m = _RFC3339_RE.match(text)
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
    micro = int((m.group(7) or ".0")[1:].ljust(6, "0")[:6])
    off = m.group(8)
    tz = timezone.utc
    if off not in ("Z", "z"):
        sign = 1 if off[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(off[1:3]), minutes=int(off[4:6])))
    return datetime(y, mo, d, h, mi, s, micro, tzinfo=tz).astimezone(timezone.utc)


def rfc3339(when: Union[datetime, str, float, int]) -> str:
    """``2024-01-01T00:10:00Z`` (microseconds only when not zero), as the APIs write it."""
    dt = to_utc(when)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    return base + (f".{dt.microsecond:06d}Z" if dt.microsecond else "Z")


def _feed_time(when: Union[datetime, str, float, int]) -> str:
    """The status feed's format: ``2024-05-01T10:00:00+00:00``."""
    return to_utc(when).replace(microsecond=0).isoformat()


def _openssl(args: list[str], input_bytes: Optional[bytes] = None) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], input=input_bytes, capture_output=True, timeout=30)


# --------------------------------------------------------------------------- service-account keys


@dataclass
class ServiceAccountKey:
    """A service-account key: the key-file JSON (``path``) and its PEM files."""
    path: str  # the key-file JSON
    private_key_path: str  # PKCS#8 PEM ("BEGIN PRIVATE KEY")
    public_key_path: str  # SubjectPublicKeyInfo PEM
    private_key_id: str
    client_email: str
    client_id: str
    project_id: str
    token_uri: str
    private_key: str  # the PEM text, as in the JSON
    info: dict  # the key-file JSON as written

    def sign(self, data: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 SHA-256 signature of ``data`` (``openssl dgst -sha256 -sign``)."""
        r = _openssl(["dgst", "-sha256", "-sign", self.private_key_path], data)
        if r.returncode != 0:
            raise RuntimeError(f"openssl dgst -sign failed: {r.stderr.decode(errors='replace')}")
        return r.stdout


def make_service_account_key(directory: str,
                             client_email: str = f"runbookd@{DEFAULT_PROJECT}.iam.gserviceaccount.com",
                             project_id: str = DEFAULT_PROJECT,
                             token_uri: str = GOOGLE_TOKEN_URI) -> ServiceAccountKey:
    """Generates an RSA 2048 key (``openssl genpkey``) and writes ``<id>.json`` (the key
    file, mode 0600), ``<id>.key.pem`` and ``<id>.pub.pem`` into ``directory``."""
    os.makedirs(directory, exist_ok=True)
    key_id = secrets.token_hex(20)
    priv = os.path.join(directory, f"sa-{key_id[:12]}.key.pem")
    pub = os.path.join(directory, f"sa-{key_id[:12]}.pub.pem")
    path = os.path.join(directory, f"sa-{key_id[:12]}.json")
    for args in (["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", priv],
                 ["pkey", "-in", priv, "-pubout", "-out", pub]):
        r = _openssl(args)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
    with open(priv) as f:
        pem = f.read()
    if "-----BEGIN PRIVATE KEY-----" not in pem:
        raise RuntimeError("openssl genpkey did not write a PKCS#8 key")
    client_id = str(10 ** 20 + secrets.randbelow(9 * 10 ** 20))  # 21 digits
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": client_email,
        "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
                                + urllib.parse.quote(client_email, safe=""),
        "universe_domain": "googleapis.com",
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    return ServiceAccountKey(path=path, private_key_path=priv, public_key_path=pub,
                             private_key_id=key_id, client_email=client_email, client_id=client_id,
                             project_id=project_id, token_uri=token_uri, private_key=pem, info=info)


def sign_jwt(key: ServiceAccountKey, claims: dict, header: Optional[dict] = None) -> str:
    """``header.claims.signature`` signed with ``key`` (default header: RS256, JWT, its kid)."""
    hdr = header if header is not None else {"alg": "RS256", "typ": "JWT", "kid": key.private_key_id}
    signing_input = f"{_b64url(_compact(hdr))}.{_b64url(_compact(claims))}"
    return f"{signing_input}.{_b64url(key.sign(signing_input.encode()))}"


# --------------------------------------------------------------------------- tokens


@dataclass
class Token:
    value: str
    source: str  # "metadata", "service_account" or whatever ``add`` was given
    scopes: tuple  # empty: any scope
    subject: str  # the service account's email
    issued_at: float  # time.monotonic()
    expires_at: float  # time.monotonic()
    revoked: bool = False


class TokenBook:
    """The access tokens the fakes have issued (thread-safe), shared by FakeMetadata and
    FakeGoogle so that a token from either is accepted by the API fakes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}
        self._n = 0

    def issue(self, kind: str, expires_in: float, scopes: Iterable[str] = (), source: str = "",
              subject: str = "") -> Token:
        """A new token ``ya29.<kind>-<n>`` valid for ``expires_in`` seconds."""
        with self._lock:
            self._n += 1
            now = time.monotonic()
            tok = Token(f"ya29.{kind}-{self._n}", source or kind, tuple(scopes), subject, now,
                        now + expires_in)
            self._tokens[tok.value] = tok
            return tok

    def add(self, value: str, expires_in: float = DEFAULT_EXPIRES_IN, scopes: Iterable[str] = (),
            source: str = "manual", subject: str = "") -> Token:
        """Registers a token chosen by the test (``scopes`` empty: any scope)."""
        now = time.monotonic()
        tok = Token(value, source, tuple(scopes), subject, now, now + expires_in)
        with self._lock:
            self._tokens[value] = tok
        return tok

    def check(self, value: Optional[str]) -> tuple[Optional[Token], str]:
        """(token, "ok") or (token or None, "missing" | "unknown" | "revoked" | "expired")."""
        if not value:
            return None, "missing"
        with self._lock:
            tok = self._tokens.get(value)
        if tok is None:
            return None, "unknown"
        if tok.revoked:
            return tok, "revoked"
        if time.monotonic() >= tok.expires_at:
            return tok, "expired"
        return tok, "ok"

    def valid(self, value: Optional[str]) -> bool:
        return self.check(value)[1] == "ok"

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and self.valid(value)

    def revoke(self, value: Optional[str] = None) -> int:
        """Revokes one token, or every token issued so far (``None``); returns how many."""
        with self._lock:
            toks = [self._tokens[value]] if value in self._tokens else [] if value else list(self._tokens.values())
            for t in toks:
                t.revoked = True
            return len(toks)

    def expire(self, value: Optional[str] = None) -> int:
        """Makes one token, or every token issued so far, expired now; returns how many."""
        now = time.monotonic()
        with self._lock:
            toks = [self._tokens[value]] if value in self._tokens else [] if value else list(self._tokens.values())
            for t in toks:
                t.expires_at = min(t.expires_at, now)
            return len(toks)

    def snapshot(self) -> list[Token]:
        """Every token ever issued or added, oldest first."""
        with self._lock:
            return sorted(self._tokens.values(), key=lambda t: t.issued_at)


# --------------------------------------------------------------------------- records


@dataclass
class Request(fake_https.Request):
    """``fake_https.Request`` (method, path, query, query_list, raw_query, headers, body,
    time, status, fault: "fail_next", "drop", "delay", "down"; response bytes,
    ``response_json()``, ``authorization``) and:"""
    auth: Optional[str] = None  # API paths: "ok", "missing", "unknown", "revoked", "expired", "scope"


@dataclass
class Assertion:
    """One JWT assertion that passed verification at ``/token``."""
    header: dict
    claims: dict
    key_id: str
    token: str  # the access token issued for it
    time: float  # time.monotonic()


# --------------------------------------------------------------------------- server plumbing


class _FakeBase(fake_https.FakeHTTPS):
    """What both fakes share beyond ``fake_https``: serving from construction (``close()``
    stops), Google's 30 s handshake timeout, and ``Request`` records."""

    handshake_timeout = 30.0
    request_class = Request

    def __init__(self, ssl_context: Optional[ssl.SSLContext]):
        super().__init__(ssl_context)
        self.start()


# --------------------------------------------------------------------------- metadata server


_MD = "/computeMetadata/v1/"
MD_TOKEN_PATH = _MD + "instance/service-accounts/default/token"
MD_EMAIL_PATH = _MD + "instance/service-accounts/default/email"
MD_PROJECT_PATH = _MD + "project/project-id"


class FakeMetadata(_FakeBase):
    """The GKE metadata server (plain HTTP on 127.0.0.1:0). Give the daemon ``url``
    (or ``host`` as ``GCE_METADATA_HOST``). Serves from construction; ``close()`` stops."""

    name = "FakeMetadata"
    server_header = "GKE Metadata Server"
    thread_name = "fake-metadata"
    delay = fake_https.alias("response_delay", "Seconds to wait before answering any request.")

    def __init__(self, tokens: Optional[TokenBook] = None, project_id: str = DEFAULT_PROJECT,
                 email: Optional[str] = None, expires_in: int = DEFAULT_EXPIRES_IN):
        self.tokens = tokens if tokens is not None else TokenBook()
        self.project_id = project_id
        self.email = email or f"runbookd@{project_id}.iam.gserviceaccount.com"
        self.expires_in = expires_in  # seconds, in every token answer (and the token's lifetime)
        self.issued: list[Token] = []
        super().__init__(None)

    def fail_next(self, status: int, count: int = 1, message: Optional[str] = None) -> None:
        """The next ``count`` requests answer ``status`` with a text body."""
        self.add_fault(fake_https.Fault(fake_https.FAIL, remaining=count, status=status, message=message))

    def drop_next(self, count: int = 1) -> None:
        """The next ``count`` requests are read and the connection closed unanswered."""
        self.fault_drop(count=count)

    def token_requests(self) -> list[Request]:
        return self.snapshot_requests(MD_TOKEN_PATH)

    def _text(self, h: _Handler, rec: Request, status: int, text: str,
              content_type: str = "text/plain; charset=utf-8") -> None:
        self._send(h, rec, status, text.encode(), content_type, {"Metadata-Flavor": "Google"})

    def _answer_fault(self, h: _Handler, rec: Request, fault: fake_https.Fault) -> None:
        self._text(h, rec, fault.status, (fault.message or fake_https.reason_phrase(fault.status, "error")) + "\n")

    def _dispatch(self, h: _Handler, rec: Request) -> None:
        if rec.path == "/" and rec.method in ("GET", "HEAD"):
            self._text(h, rec, 200, "computeMetadata/\n", "application/text")
            return
        if rec.path.startswith("/computeMetadata/") and rec.headers.get("metadata-flavor") != "Google":
            self._text(h, rec, 403, 'Missing required header "Metadata-Flavor": "Google"\n')
            return
        if rec.method not in ("GET", "HEAD"):
            self._text(h, rec, 405, "Method Not Allowed\n")
            return
        if rec.path == MD_TOKEN_PATH:
            scopes = [s for s in rec.query.get("scopes", "").split(",") if s] or [SCOPE_CLOUD_PLATFORM]
            tok = self.tokens.issue("md", self.expires_in, scopes, "metadata", self.email)
            with self._lock:
                self.issued.append(tok)
            self._send(h, rec, 200, _compact({"access_token": tok.value, "expires_in": int(self.expires_in),
                                              "token_type": "Bearer"}),
                       "application/json", {"Metadata-Flavor": "Google"})
        elif rec.path == MD_PROJECT_PATH:
            self._text(h, rec, 200, self.project_id, "application/text")
        elif rec.path == MD_EMAIL_PATH:
            self._text(h, rec, 200, self.email, "application/text")
        else:
            self._text(h, rec, 404, "Not Found\n")


# --------------------------------------------------------------------------- Google APIs


class _GrantError(Exception):
    def __init__(self, description: str, error: str = "invalid_grant"):
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass
class _Series:
    metric_type: str
    database_id: str
    project_id: str
    region: str
    value_type: str  # DOUBLE | INT64
    unit: str
    points: list  # [(datetime UTC, value)], oldest first
    late: set  # times of points not visible yet (publish_late makes them so)


_TS_RE = re.compile(r"^/v3/projects/([^/]+)/timeSeries$")
_SQL_RE = re.compile(r"^/(?:v1|sql/v1beta4)/projects/([^/]+)/instances/([^/]+)$")
_DURATION_RE = re.compile(r"^(\d+)(\.\d{1,9})?s$")


class FakeGoogle(_FakeBase):
    """One HTTPS server for the token endpoint, Cloud Monitoring, Cloud SQL Admin and the
    status feed. Serves from construction; ``close()`` stops. Trust ``ca_file``."""

    name = "FakeGoogle"
    server_header = "ESF"
    thread_name = "fake-google"

    def __init__(self, tokens: Optional[TokenBook] = None, cert_file: Optional[str] = None,
                 key_file: Optional[str] = None, ca_file: Optional[str] = None,
                 expires_in: int = DEFAULT_EXPIRES_IN):
        pki = harness.test_pki() if cert_file is None or ca_file is None else None
        self.tokens = tokens if tokens is not None else TokenBook()
        self.ca_file = ca_file or pki.ca_cert
        self.expires_in = expires_in  # seconds, in every /token answer (and the token's lifetime)
        self.assertions: list[Assertion] = []  # verified JWTs, oldest first
        self.issued: list[Token] = []
        self._keys: dict[str, ServiceAccountKey] = {}
        self._series: dict[tuple[str, str], _Series] = {}
        self._instances: dict[tuple[str, str], dict] = {}
        self._incidents: list = []
        self._pages: dict[str, tuple[tuple, list, int]] = {}  # token -> (query, entries, offset)
        self._tmp = tempfile.mkdtemp(prefix="runbookd-it-google-")
        super().__init__(fake_https.server_context(cert_file or pki.server_cert, key_file or pki.server_key))

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def token_url(self) -> str:
        """The ``aud`` assertions must carry and the key file's ``token_uri``."""
        return f"{self.url}/token"

    # ---------------------------------------------------------------- configuration

    def register_key(self, key: ServiceAccountKey) -> None:
        with self._lock:
            self._keys[key.private_key_id] = key

    def delete_key(self, key: ServiceAccountKey) -> None:
        """As if the key were deleted in IAM: its assertions now fail the signature check."""
        with self._lock:
            self._keys.pop(key.private_key_id, None)

    def set_points(self, metric_type: str, database_id: str, points: Iterable[tuple],
                   value_type: Optional[str] = None, unit: Optional[str] = None,
                   region: str = DEFAULT_REGION, late: Iterable = ()) -> None:
        """Replaces the series of ``metric_type`` for ``database_id`` ("project:instance")
        with ``points``: (datetime | RFC 3339 | Unix time, value) pairs, any order. The
        points at the times in ``late`` are not served until ``publish_late()``."""
        pts = sorted(((to_utc(t), v) for t, v in points), key=lambda p: p[0])
        known = METRICS.get(metric_type)
        vt = value_type or (known[0] if known else
                            ("INT64" if pts and all(isinstance(v, int) and not isinstance(v, bool)
                                                    for _, v in pts) else "DOUBLE"))
        if vt not in ("DOUBLE", "INT64"):
            raise ValueError(f"value_type {vt!r}: DOUBLE or INT64")
        s = _Series(metric_type, database_id, database_id.split(":", 1)[0], region, vt,
                    unit or (known[1] if known else "1"), pts, {to_utc(t) for t in late})
        with self._lock:
            self._series[(metric_type, database_id)] = s

    def publish_late(self) -> int:
        """Makes every late point visible, as Cloud Monitoring does once it has ingested
        them; returns how many."""
        with self._lock:
            n = 0
            for s in self._series.values():
                n += len(s.late)
                s.late = set()
            return n

    def clear_points(self) -> None:
        with self._lock:
            self._series.clear()

    def set_instance(self, project: str, instance: str, body: Optional[dict]) -> None:
        """The ``instances.get`` answer for project/instance (``None``: remove it → 404)."""
        with self._lock:
            if body is None:
                self._instances.pop((project, instance), None)
            else:
                self._instances[(project, instance)] = body

    def set_incidents(self, incidents: list) -> None:
        """The ``/incidents.json`` body (a list, served as is)."""
        with self._lock:
            self._incidents = list(incidents)

    # ---------------------------------------------------------------- faults

    def fail_next(self, prefix: str, status: int, count: int = 1, message: Optional[str] = None,
                  body: Any = None) -> None:
        """The next ``count`` requests whose path starts with ``prefix`` answer ``status``
        with Google's error shape (or ``body``, JSON-encoded unless bytes)."""
        self.add_fault(fake_https.Fault(fake_https.FAIL, prefix, count, status=status, message=message,
                                        body=body))

    def drop_next(self, prefix: str = "", count: int = 1) -> None:
        """The next ``count`` requests under ``prefix`` are read, then the connection is
        closed without an answer."""
        self.fault_drop(prefix=prefix, count=count)

    def delay(self, prefix: str, seconds: float, count: Optional[int] = None) -> None:
        """Requests under ``prefix`` wait ``seconds`` before being handled (``count``
        requests, or until cleared; ``seconds <= 0`` clears the delays of ``prefix``)."""
        self.fault_delay(seconds, prefix=prefix, count=count)

    def revoke_tokens(self) -> int:
        """Every token issued so far (by any fake sharing the TokenBook) now gets 401."""
        return self.tokens.revoke()

    # ---------------------------------------------------------------- dispatch

    def _json(self, h: _Handler, rec: Request, status: int, value: Any,
              headers: Optional[dict] = None, pretty: bool = True) -> None:
        pretty = pretty and rec.query.get("prettyPrint", "true") != "false"
        self._send(h, rec, status, _pretty(value) if pretty else _compact(value) + b"\n",
                   "application/json; charset=UTF-8", {"Vary": "Origin, X-Origin, Referer", **(headers or {})})

    def _error(self, h: _Handler, rec: Request, code: int, message: Optional[str] = None,
               status: Optional[str] = None, **kw) -> None:
        self._json(h, rec, code, google_error(code, message, status, **kw))

    def _answer_fault(self, h: _Handler, rec: Request, fault: fake_https.Fault) -> None:
        if fault.body is not None:
            data = fault.body if isinstance(fault.body, bytes) else _pretty(fault.body)
            self._send(h, rec, fault.status, data, "application/json; charset=UTF-8")
        else:
            self._error(h, rec, fault.status, fault.message)

    def _dispatch(self, h: _Handler, rec: Request) -> None:
        path, method = rec.path, rec.method
        if path == "/token":
            if method != "POST":
                self._error(h, rec, 405, "Method Not Allowed", "INVALID_ARGUMENT")
            else:
                self._token(h, rec)
            return
        if path == "/incidents.json":
            if method not in ("GET", "HEAD"):
                self._error(h, rec, 405, "Method Not Allowed", "INVALID_ARGUMENT")
                return
            with self._lock:
                body = _compact(self._incidents)
            self._send(h, rec, 200, body, "application/json", {"Cache-Control": "public, max-age=60"})
            return
        m_ts, m_sql = _TS_RE.match(path), _SQL_RE.match(path)
        if method not in ("GET", "HEAD") or not (m_ts or m_sql):
            self._error(h, rec, 404, "The requested URL was not found on this server.", "NOT_FOUND")
            return
        if m_ts:
            if self._authorize(h, rec, MONITORING_SCOPES, "monitoring.googleapis.com",
                               "google.monitoring.v3.MetricService.ListTimeSeries"):
                self._time_series(h, rec, urllib.parse.unquote(m_ts.group(1)))
        else:
            if self._authorize(h, rec, SQL_ADMIN_SCOPES, "sqladmin.googleapis.com",
                               "google.cloud.sql.v1.SqlInstancesService.Get"):
                self._instance(h, rec, urllib.parse.unquote(m_sql.group(1)),
                               urllib.parse.unquote(m_sql.group(2)))

    def _authorize(self, h: _Handler, rec: Request, scopes: frozenset, service: str, method: str) -> bool:
        auth = (rec.authorization or "").strip()
        scheme, _, value = auth.partition(" ")
        tok, reason = self.tokens.check(value.strip() if scheme == "Bearer" else None)
        if reason == "missing" and auth:
            reason = "unknown"
        if reason == "ok" and tok is not None and tok.scopes and not scopes.intersection(tok.scopes):
            reason = "scope"
        rec.auth = reason
        if reason == "ok":
            return True
        if reason == "scope":
            self._error(h, rec, 403, "Request had insufficient authentication scopes.", "PERMISSION_DENIED",
                        details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                  "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT", "domain": "googleapis.com",
                                  "metadata": {"service": service, "method": method}}])
        else:
            self._json(h, rec, 401, google_error(401, UNAUTHENTICATED_MESSAGE, "UNAUTHENTICATED"),
                       {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'})
        return False

    # ---------------------------------------------------------------- /token

    def _oauth_error(self, h: _Handler, rec: Request, error: str, description: str) -> None:
        self._json(h, rec, 400, {"error": error, "error_description": description},
                   {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", "Pragma": "no-cache"})

    def _token(self, h: _Handler, rec: Request) -> None:
        ctype = rec.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            self._oauth_error(h, rec, "invalid_request",
                              f"fake_google: Content-Type must be application/x-www-form-urlencoded, got {ctype!r}")
            return
        try:
            form = urllib.parse.parse_qs(rec.body.decode("utf-8"), keep_blank_values=True,
                                         strict_parsing=bool(rec.body))
        except (UnicodeDecodeError, ValueError):
            self._oauth_error(h, rec, "invalid_request", "fake_google: the body is not a valid form")
            return
        if any(len(v) > 1 for v in form.values()):
            self._oauth_error(h, rec, "invalid_request", "fake_google: a form field is repeated")
            return
        grant_type = form.get("grant_type", [""])[0]
        if grant_type != JWT_BEARER:
            self._oauth_error(h, rec, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
            return
        assertion = form.get("assertion", [""])[0]
        if not assertion:
            self._oauth_error(h, rec, "invalid_request", "Missing required parameter: assertion")
            return
        try:
            header, claims, key = self._verify(assertion)
        except _GrantError as e:
            self._oauth_error(h, rec, e.error, e.description)
            return
        tok = self.tokens.issue("sa", self.expires_in, claims["scope"].split(), "service_account",
                                key.client_email)
        with self._lock:
            self.issued.append(tok)
            self.assertions.append(Assertion(header, claims, key.private_key_id, tok.value, time.monotonic()))
        self._json(h, rec, 200, {"access_token": tok.value, "expires_in": int(self.expires_in),
                                 "token_type": "Bearer"},
                   {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate", "Pragma": "no-cache"})

    def _verify(self, assertion: str) -> tuple[dict, dict, ServiceAccountKey]:
        parts = assertion.split(".")
        if len(parts) != 3:
            raise _GrantError("Invalid JWT: expected three dot-separated parts (header.claims.signature).")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, UnicodeDecodeError):
            raise _GrantError("Invalid JWT: each part must be base64url without padding "
                              "and the header and claims JSON objects.") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise _GrantError("Invalid JWT: the header and claims must be JSON objects.")
        if header.get("alg") != "RS256":
            raise _GrantError(f"Invalid JWT: alg must be RS256, got {header.get('alg')!r}.")
        if header.get("typ") != "JWT":
            raise _GrantError(f"Invalid JWT: typ must be JWT, got {header.get('typ')!r}.")
        iss = claims.get("iss")
        with self._lock:
            account_keys = {k.private_key_id: k for k in self._keys.values() if k.client_email == iss}
        if not isinstance(iss, str) or not account_keys:
            raise _GrantError("Invalid grant: account not found")
        kid = header.get("kid")
        key = account_keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise _GrantError(INVALID_SIGNATURE)
        if not self._signature_ok(key, f"{parts[0]}.{parts[1]}".encode(), signature):
            raise _GrantError(INVALID_SIGNATURE)
        if claims.get("aud") != self.token_url:
            raise _GrantError(f"Invalid JWT: Failed audience check. The expected audience is {self.token_url}.")
        sub = claims.get("sub")
        if sub is not None and sub != iss:
            raise _GrantError("fake_google: sub (domain-wide delegation) is not supported", "unauthorized_client")
        scope = claims.get("scope")
        if not isinstance(scope, str) or not scope.split() or \
                not all(_SCOPE_RE.match(s) for s in scope.split(" ") if s) or scope != " ".join(scope.split()):
            raise _GrantError("Invalid OAuth scope or ID token audience provided.", "invalid_scope")
        iat, exp = claims.get("iat"), claims.get("exp")
        if type(iat) is not int or type(exp) is not int:
            raise _GrantError(BAD_TIMEFRAME)
        now = time.time()
        if not 0 < exp - iat <= MAX_ASSERTION_LIFETIME or abs(iat - now) > MAX_CLOCK_SKEW or exp <= now:
            raise _GrantError(BAD_TIMEFRAME)
        return header, claims, key

    def _signature_ok(self, key: ServiceAccountKey, signing_input: bytes, signature: bytes) -> bool:
        d = tempfile.mkdtemp(dir=self._tmp)
        try:
            data, sig = os.path.join(d, "input"), os.path.join(d, "sig")
            with open(data, "wb") as f:
                f.write(signing_input)
            with open(sig, "wb") as f:
                f.write(signature)
            r = _openssl(["dgst", "-sha256", "-verify", key.public_key_path, "-signature", sig, data])
            return r.returncode == 0 and b"Verified OK" in r.stdout
        finally:
            shutil.rmtree(d, ignore_errors=True)

    # ---------------------------------------------------------------- timeSeries.list

    def _time_series(self, h: _Handler, rec: Request, project: str) -> None:
        q = rec.query

        def bad(message: str) -> None:
            self._error(h, rec, 400, message, "INVALID_ARGUMENT")

        flt = q.get("filter", "")
        try:
            terms = _parse_filter(flt)
        except ValueError as e:
            bad(f'Field filter had an invalid value of "{flt}": {e}')
            return
        if "interval.endTime" not in q:
            bad("Field interval.endTime had an invalid value: The end time must be specified.")
            return
        try:
            end = parse_rfc3339(q["interval.endTime"])
        except ValueError:
            bad(f'Field interval.endTime had an invalid value of "{q["interval.endTime"]}": '
                "Invalid time format.")
            return
        try:
            start = parse_rfc3339(q["interval.startTime"]) if "interval.startTime" in q else end
        except ValueError:
            bad(f'Field interval.startTime had an invalid value of "{q["interval.startTime"]}": '
                "Invalid time format.")
            return
        if start > end:
            bad(f'Field interval.startTime had an invalid value of "{q["interval.startTime"]}": '
                "The start time must be before the end time.")
            return
        if q.get("view") != "FULL":
            bad(f'fake_google: view must be FULL, got {q.get("view")!r}.')
            return
        aligner = q.get("aggregation.perSeriesAligner", "")
        period = q.get("aggregation.alignmentPeriod", "")
        reducer = q.get("aggregation.crossSeriesReducer", "")
        if aligner and aligner not in ALIGNERS:
            bad(f'Invalid value at \'aggregation.per_series_aligner\', "{aligner}"')
            return
        if reducer and reducer not in REDUCERS:
            bad(f'Invalid value at \'aggregation.cross_series_reducer\', "{reducer}"')
            return
        if period:
            m = _DURATION_RE.match(period)
            if not m:
                bad("Invalid value at 'aggregation.alignment_period' (type.googleapis.com/"
                    f"google.protobuf.Duration), Field 'alignmentPeriod', Illegal duration format; "
                    f"duration must end with 's', got {period!r}")
                return
            if float(m.group(1) + (m.group(2) or "")) < 60:
                bad("Field aggregation.alignmentPeriod had an invalid value: The alignment period "
                    "must be at least 60 seconds.")
                return
        if aligner and aligner != "ALIGN_NONE" and not period:
            bad("Field aggregation.alignmentPeriod had an invalid value: The alignment period must be "
                "specified when an aligner is specified.")
            return
        if aligner in ("ALIGN_DELTA", "ALIGN_RATE"):
            bad(f"The aligner {aligner} cannot be applied to metrics with kind GAUGE.")
            return
        try:
            page_size = int(q.get("pageSize", "0") or "0")
        except ValueError:
            bad(f'Invalid value at \'page_size\' (TYPE_INT32), "{q.get("pageSize")}"')
            return
        if page_size < 0:
            bad("Field pageSize had an invalid value: must not be negative.")
            return
        page_size = min(page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        fingerprint = (project, flt, start, end, aligner, period, reducer,
                       tuple(v for k, v in rec.query_list if k == "aggregation.groupByFields"))
        page_token = q.get("pageToken", "")
        with self._lock:
            if page_token:
                state = self._pages.get(page_token)
                if state is None or state[0] != fingerprint:
                    answer = None
                else:
                    _, entries, offset = state
                    answer = (entries, offset)
            else:
                entries = []
                for key in sorted(self._series):
                    s = self._series[key]
                    if s.project_id != project or not _series_matches(s, terms):
                        continue
                    for t, v in reversed(s.points):  # newest first
                        if start <= t <= end and t not in s.late:
                            entries.append((s, t, v))
                answer = (entries, 0)
        if answer is None:
            bad(f'Field pageToken had an invalid value of "{page_token}": the page token is unknown '
                "or belongs to another query.")
            return
        entries, offset = answer
        chunk = entries[offset:offset + page_size]
        out: dict = {}
        if chunk:
            series_out: list[dict] = []
            last = None
            for s, t, v in chunk:
                if s is not last:
                    series_out.append(_series_json(s))
                    last = s
                series_out[-1]["points"].append(
                    {"interval": {"startTime": rfc3339(t), "endTime": rfc3339(t)},
                     "value": _value_json(s.value_type, v)})
            for so in series_out:
                so["unit"] = so.pop("unit")  # after the points, as the API orders it
            out["timeSeries"] = series_out
        if offset + page_size < len(entries):
            token = secrets.token_urlsafe(24)
            with self._lock:
                self._pages[token] = (fingerprint, entries, offset + page_size)
            out["nextPageToken"] = token
        if chunk:
            out["unit"] = chunk[0][0].unit
        self._json(h, rec, 200, out)

    # ---------------------------------------------------------------- instances.get

    def _instance(self, h: _Handler, rec: Request, project: str, instance: str) -> None:
        with self._lock:
            body = self._instances.get((project, instance))
        if body is None:
            msg = "The Cloud SQL instance does not exist."
            self._error(h, rec, 404, msg, "NOT_FOUND",
                        errors=[{"message": msg, "domain": "global", "reason": "instanceDoesNotExist"}])
            return
        self._json(h, rec, 200, body)


# --------------------------------------------------------------------------- filter parsing


def _split_and(text: str) -> list[str]:
    """Splits on ``AND`` outside double-quoted strings."""
    parts, cur, in_q, i = [], "", False, 0
    while i < len(text):
        c = text[i]
        if in_q:
            cur += c
            if c == "\\" and i + 1 < len(text):
                cur += text[i + 1]
                i += 1
            elif c == '"':
                in_q = False
        elif c == '"':
            in_q = True
            cur += c
        elif text.startswith("AND", i) and (i == 0 or text[i - 1].isspace()) \
                and (i + 3 == len(text) or text[i + 3].isspace()):
            parts.append(cur)
            cur = ""
            i += 3
            continue
        else:
            cur += c
        i += 1
    if in_q:
        raise ValueError("unterminated string")
    parts.append(cur)
    return parts


_TERM_RE = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*$')
_KEY_RE = re.compile(r"^(metric\.type|resource\.type|project|(?:resource|metric)\.labels?\.[A-Za-z0-9_]+)$")


def _parse_filter(flt: str) -> list[tuple[str, str]]:
    """``key = "value"`` terms joined by AND; exactly one ``metric.type``. ValueError otherwise."""
    if not flt.strip():
        raise ValueError("A filter must be specified.")
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', flt)
    if len(re.findall(r"\bmetric\.type\b", unquoted)) != 1:
        raise ValueError("The filter must specify exactly one metric type.")
    terms = []
    for part in _split_and(flt):
        m = _TERM_RE.match(part)
        if not m:
            raise ValueError(f"fake_google: unsupported filter term {part.strip()!r} "
                             '(only key = "value" terms joined by AND)')
        key, value = m.group(1), re.sub(r"\\(.)", r"\1", m.group(2))
        if not _KEY_RE.match(key):
            raise ValueError(f"unknown filter object {key!r}")
        terms.append((key.replace(".label.", ".labels."), value))
    if not any(k == "metric.type" for k, _ in terms):
        raise ValueError("The filter must specify exactly one metric type.")
    return terms


def _series_matches(s: _Series, terms: list[tuple[str, str]]) -> bool:
    labels = {"project_id": s.project_id, "database_id": s.database_id, "region": s.region}
    for key, value in terms:
        if key == "metric.type":
            ok = value == s.metric_type
        elif key == "resource.type":
            ok = value == "cloudsql_database"
        elif key == "project":
            ok = value == s.project_id
        elif key.startswith("resource.labels."):
            ok = labels.get(key[len("resource.labels."):]) == value
        else:  # metric.labels.*: these series have no metric labels
            ok = False
        if not ok:
            return False
    return True


def _series_json(s: _Series) -> dict:
    return {"metric": {"type": s.metric_type, "labels": {}},
            "resource": {"type": "cloudsql_database",
                         "labels": {"project_id": s.project_id, "database_id": s.database_id,
                                    "region": s.region}},
            "metricKind": "GAUGE", "valueType": s.value_type, "points": [], "unit": s.unit}


def _value_json(value_type: str, v: Any) -> dict:
    if value_type == "INT64":
        return {"int64Value": str(int(v))}
    f = float(v)
    if math.isnan(f):
        return {"doubleValue": "NaN"}
    if math.isinf(f):
        return {"doubleValue": "Infinity" if f > 0 else "-Infinity"}
    # proto3 JSON writes integral doubles without a fraction ("1", not "1.0")
    return {"doubleValue": int(f) if f.is_integer() and abs(f) < 2 ** 53 else f}


# --------------------------------------------------------------------------- builders


def sql_instance(name: str, project: str = DEFAULT_PROJECT, state: str = "RUNNABLE",
                 activation_policy: str = "ALWAYS", window_day: Optional[int] = 7,
                 window_hour: Optional[int] = 3, update_track: Optional[str] = "stable",
                 scheduled_start: Union[datetime, str, None] = None,
                 can_reschedule: bool = True, deadline: Union[datetime, str, None] = None,
                 region: str = DEFAULT_REGION, database_version: str = "POSTGRES_15",
                 deny_periods: Iterable[tuple[str, str]] = ()) -> dict:
    """A Cloud SQL ``DatabaseInstance`` as ``instances.get`` returns it (api-facts §3.3),
    with the bulky fields a parser must skip. ``window_day``/``window_hour`` None: not set
    ("any window"); ``scheduled_start``: an upcoming maintenance (start time), which may
    be rescheduled (``can_reschedule``) until ``deadline`` (default: 9 days after it)."""
    window: dict = {"kind": "sql#maintenanceWindow"}
    if window_hour is not None:
        window["hour"] = window_hour
    if window_day is not None:
        window["day"] = window_day
    if update_track is not None:
        window["updateTrack"] = update_track
    zone = f"{region}-c"
    settings: dict = {
        "authorizedGaeApplications": [],
        "tier": "db-custom-2-7680",
        "kind": "sql#settings",
        "availabilityType": "REGIONAL",
        "pricingPlan": "PER_USE",
        "replicationType": "SYNCHRONOUS",
        "activationPolicy": activation_policy,
        "ipConfiguration": {"privateNetwork": f"projects/{project}/global/networks/default",
                            "authorizedNetworks": [], "ipv4Enabled": False, "requireSsl": True,
                            "sslMode": "ENCRYPTED_ONLY"},
        "locationPreference": {"zone": zone, "kind": "sql#locationPreference"},
        "databaseFlags": [{"name": "max_connections", "value": "200"},
                          {"name": "log_min_duration_statement", "value": "1000"}],
        "dataDiskType": "PD_SSD",
        "maintenanceWindow": window,
        "backupConfiguration": {"startTime": "08:00", "kind": "sql#backupConfiguration",
                                "location": "us", "backupRetentionSettings":
                                    {"retentionUnit": "COUNT", "retainedBackups": 7},
                                "enabled": True, "replicationLogArchivingEnabled": False,
                                "pointInTimeRecoveryEnabled": True, "transactionLogRetentionDays": 7,
                                "transactionalLogStorageState": "CLOUD_STORAGE"},
        "settingsVersion": "57",
        "storageAutoResizeLimit": "0",
        "storageAutoResize": True,
        "dataDiskSizeGb": "100",
        "deletionProtectionEnabled": True,
        "insightsConfig": {"queryInsightsEnabled": True, "queryStringLength": 1024},
        "edition": "ENTERPRISE",
    }
    periods = [{"startDate": s, "endDate": e, "time": "00:00:00"} for s, e in deny_periods]
    if periods:
        settings["denyMaintenancePeriods"] = periods
    version_minor = {"POSTGRES_14": "POSTGRES_14_12", "POSTGRES_15": "POSTGRES_15_7",
                     "POSTGRES_16": "POSTGRES_16_3"}.get(database_version, database_version + "_1")
    inst: dict = {
        "kind": "sql#instance",
        "state": state,
        "databaseVersion": database_version,
        "settings": settings,
        "etag": hashlib.sha256(f"{project}/{name}/{state}".encode()).hexdigest(),
        "ipAddresses": [{"type": "PRIVATE", "ipAddress": "10.12.0.3"}],
        "serverCaCert": {"kind": "sql#sslCert", "certSerialNumber": "0",
                         "cert": "-----BEGIN CERTIFICATE-----\nMIIDfzCCAmegAwIBAgIBADANBgkqhkiG9w0BAQsFADB3"
                                 "\n-----END CERTIFICATE-----",
                         "commonName": "C=US,O=Google\\, Inc,CN=Google Cloud SQL Server CA,dnQualifier=x",
                         "sha1Fingerprint": "2e0f6c7a1b8d9e3f4a5b6c7d8e9f0a1b2c3d4e5f",
                         "instance": name, "createTime": "2023-03-01T12:00:00.000Z",
                         "expirationTime": "2033-02-26T12:01:00.000Z"},
        "instanceType": "CLOUD_SQL_INSTANCE",
        "project": project,
        "serviceAccountEmailAddress": "p123456789012-abcdef@gcp-sa-cloud-sql.iam.gserviceaccount.com",
        "backendType": "SECOND_GEN",
        "selfLink": f"https://sqladmin.googleapis.com/v1/projects/{project}/instances/{name}",
        "connectionName": f"{project}:{region}:{name}",
        "name": name,
        "region": region,
        "gceZone": zone,
        "secondaryGceZone": f"{region}-f",
        "databaseInstalledVersion": version_minor,
        "createTime": "2023-03-01T11:52:08.123Z",
        "maintenanceVersion": f"{version_minor}.R20240514.00_04",
        "availableMaintenanceVersions": [f"{version_minor}.R20240910.01_02"],
        "upgradableDatabaseVersions": [{"majorVersion": "POSTGRES_16", "name": "POSTGRES_16",
                                        "displayName": "PostgreSQL 16"}],
        "sqlNetworkArchitecture": "NEW_NETWORK_ARCHITECTURE",
        "pscServiceAttachmentLink": "",
    }
    if scheduled_start is not None:
        start = to_utc(scheduled_start)
        inst["scheduledMaintenance"] = {
            "startTime": rfc3339(start), "canDefer": can_reschedule, "canReschedule": can_reschedule,
            "scheduleDeadlineTime": rfc3339(to_utc(deadline) if deadline is not None else start + timedelta(days=9))}
    return inst


REGION_TITLES = {
    "global": "Global", "us-central1": "Iowa (us-central1)", "us-east1": "South Carolina (us-east1)",
    "us-east4": "Northern Virginia (us-east4)", "us-west1": "Oregon (us-west1)",
    "us-west2": "Los Angeles (us-west2)", "europe-west1": "Belgium (europe-west1)",
    "europe-west2": "London (europe-west2)", "europe-west3": "Frankfurt (europe-west3)",
    "europe-west4": "Netherlands (europe-west4)", "asia-east1": "Taiwan (asia-east1)",
    "asia-northeast1": "Tokyo (asia-northeast1)", "asia-southeast1": "Singapore (asia-southeast1)",
}


def product(title: str) -> dict:
    """``{"title","id"}``; the id is made up but stable (20 base62 characters)."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    n = int.from_bytes(hashlib.sha256(title.encode()).digest(), "big")
    out = ""
    for _ in range(20):
        n, r = divmod(n, 62)
        out += alphabet[r]
    return {"title": title, "id": out}


def location(region: str) -> dict:
    return {"title": REGION_TITLES.get(region, region), "id": region}


def incident(id: str, title: str, products: Iterable[Union[str, dict]] = ("Cloud SQL",),
             locations: Iterable[Union[str, dict]] = (DEFAULT_REGION,),
             begin: Union[datetime, str, float, None] = None,
             end: Union[datetime, str, float, None] = None, severity: str = "medium",
             status_impact: str = "SERVICE_DISRUPTION", text: Optional[str] = None) -> dict:
    """A status-feed incident (api-facts §3.4). Open while ``end`` is None (then the key
    is absent). ``begin`` defaults to 30 minutes ago. Products and locations are titles /
    region ids (or ready ``{"title","id"}`` dicts)."""
    prods = [p if isinstance(p, dict) else product(p) for p in products]
    locs = [loc if isinstance(loc, dict) else location(loc) for loc in locations]
    began = to_utc(begin) if begin is not None else datetime.now(timezone.utc) - timedelta(minutes=30)
    began = began.replace(microsecond=0)
    names = ", ".join(p["title"] for p in prods) or "Google Cloud"

    def update(when: datetime, status: str, body: str) -> dict:
        return {"created": _feed_time(when), "modified": _feed_time(when + timedelta(seconds=37)),
                "when": _feed_time(when), "text": body, "status": status, "affected_locations": locs}

    updates = [update(began, status_impact, text or (
        f"Summary: {title}\nDescription: We are experiencing an issue with {names}. "
        "Our engineering team continues to investigate the issue.\n"
        "We will provide an update by the top of the hour with current details."))]
    ended = to_utc(end).replace(microsecond=0) if end is not None else None
    if ended is not None:
        updates.insert(0, update(ended, "AVAILABLE",
                                 f"The issue with {names} has been resolved for all affected users "
                                 f"as of {ended.strftime('%A, %Y-%m-%d %H:%M')} UTC."))
    out: dict = {
        "id": id,
        "number": str(int.from_bytes(hashlib.sha256(id.encode()).digest()[:8], "big") % 10 ** 20),
        "begin": _feed_time(began),
        "created": _feed_time(began + timedelta(minutes=2)),
    }
    if ended is not None:
        out["end"] = _feed_time(ended)
    out.update({
        "modified": updates[0]["modified"],
        "external_desc": title,
        "updates": updates,
        "most_recent_update": updates[0],
        "status_impact": status_impact,
        "severity": severity,
        "service_key": prods[0]["id"] if prods else "",
        "service_name": prods[0]["title"] if prods else "Multiple Products",
        "affected_products": prods,
        "uri": f"incidents/{id}",
        "currently_affected_locations": locs if ended is None else [],
        "previously_affected_locations": [] if ended is None else locs,
    })
    return out
