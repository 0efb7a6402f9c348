"""PagerDuty webhook V3 payload builders, signer and sender (api-facts section 1.1)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import http.client
import json
import random
import string
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Union

USER_AGENT = "PagerDuty-Webhook/V3.0"
PATH = "/webhooks/pagerduty"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def pd_id(prefix: str = "Q") -> str:
    """A PagerDuty-style id, e.g. Q3K9ZT2 (7 upper-case alphanumerics)."""
    return prefix + "".join(random.choice(string.ascii_uppercase + string.digits) for _ in range(6))


def _ref(kind: str, id_: str, summary: str, sub: str) -> dict:
    return {"id": id_, "type": f"{kind}_reference", "summary": summary,
            "self": f"https://api.pagerduty.com/{sub}/{id_}",
            "html_url": f"https://acme.pagerduty.com/{sub}/{id_}"}


@dataclass
class Incident:
    """What the tests know about one PagerDuty incident."""
    id: str = field(default_factory=pd_id)
    number: int = field(default_factory=lambda: random.randint(100, 99999))
    title: str = ""
    service_id: str = "PF9KMXH"
    service_name: str = "API Service"
    priority: Optional[str] = "P1"
    urgency: str = "high"
    created_at: str = field(default_factory=_now)

    def __post_init__(self):
        if not self.title:
            self.title = f"Checkout latency is high {self.id}"

    @property
    def html_url(self) -> str:
        return f"https://acme.pagerduty.com/incidents/{self.id}"

    @property
    def self_url(self) -> str:
        return f"https://api.pagerduty.com/incidents/{self.id}"

    def reference(self) -> dict:
        return {"id": self.id, "type": "incident_reference", "summary": self.title,
                "self": self.self_url, "html_url": self.html_url}

    def data(self, status: str) -> dict:
        return {
            "id": self.id,
            "type": "incident",
            "self": self.self_url,
            "html_url": self.html_url,
            "number": self.number,
            "status": status,
            "incident_key": uuid.uuid4().hex,
            "created_at": self.created_at,
            "title": self.title,
            "incident_type": {"name": "major"},
            "service": _ref("service", self.service_id, self.service_name, "services"),
            "assignees": [_ref("user", "PTUXL6G", "Ada Lovelace", "users")],
            "escalation_policy": _ref("escalation_policy", "PUS0KTE", "Default", "escalation_policies"),
            "teams": [_ref("team", "PFCVPS0", "Engineering", "teams")],
            "priority": None if self.priority is None else
            _ref("priority", "PSO75BM", self.priority, "priorities"),
            "urgency": self.urgency,
            "conference_bridge": {"conference_number": "+1 555-0100,,123#",
                                  "conference_url": "https://example.com/bridge"},
            "resolve_reason": None,
        }


def envelope(event_type: str, resource_type: str, data: dict, *, event_id: Optional[str] = None,
             occurred_at: Optional[str] = None, agent: Optional[dict] = "default",
             client: Optional[dict] = "default") -> dict:
    return {"event": {
        "id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "resource_type": resource_type,
        "occurred_at": occurred_at or _now(),
        "agent": _ref("user", "PLH1HKV", "Ada Lovelace", "users") if agent == "default" else agent,
        "client": {"name": "PagerDuty"} if client == "default" else client,
        "data": data,
    }}


_STATUS_FOR = {
    "incident.triggered": "triggered",
    "incident.acknowledged": "acknowledged",
    "incident.unacknowledged": "triggered",
    "incident.resolved": "resolved",
    "incident.reopened": "triggered",
    "incident.escalated": "triggered",
    "incident.reassigned": "triggered",
    "incident.priority_updated": "triggered",
}


def incident_event(event_type: str, inc: Incident, **kw) -> dict:
    """Any event whose data.type is "incident"."""
    data = inc.data(_STATUS_FOR.get(event_type, "triggered"))
    if event_type == "incident.reopened":
        data["reopened_at"] = _now()
    if event_type == "incident.resolved":
        data["resolve_reason"] = None
    return envelope(event_type, "incident", data, **kw)


def triggered(inc: Incident, **kw) -> dict:
    return incident_event("incident.triggered", inc, agent=None, **kw)


def acknowledged(inc: Incident, **kw) -> dict:
    return incident_event("incident.acknowledged", inc, **kw)


def resolved(inc: Incident, **kw) -> dict:
    return incident_event("incident.resolved", inc, **kw)


def reopened(inc: Incident, **kw) -> dict:
    return incident_event("incident.reopened", inc, **kw)


def annotated(inc: Incident, content: str, **kw) -> dict:
    data = {"incident": inc.reference(), "id": pd_id("N"), "content": content,
            "trimmed": False, "type": "incident_note"}
    return envelope("incident.annotated", "incident", data, **kw)


def status_update_published(inc: Incident, message: str, **kw) -> dict:
    data = {"incident": inc.reference(), "id": pd_id("S"), "message": message,
            "trimmed": False, "type": "incident_status_update"}
    return envelope("incident.status_update_published", "incident", data, **kw)


def ping(**kw) -> dict:
    return envelope("pagey.ping", "pagey",
                    {"message": "Hello from your friend Pagey!", "type": "ping"},
                    agent=None, client=None, **kw)


def unknown_event(inc: Optional[Incident] = None, **kw) -> dict:
    """An event type the daemon cannot know ("additional event types may be added")."""
    inc = inc or Incident()
    data = {"incident": inc.reference(), "id": pd_id("X"), "type": "incident_hologram",
            "shimmer": 0.7}
    return envelope("incident.hologram.projected", "incident", data, **kw)


def service_updated(**kw) -> dict:
    sid = pd_id("P")
    data = {"id": sid, "type": "service", "summary": "API Service",
            "self": f"https://api.pagerduty.com/services/{sid}",
            "html_url": f"https://acme.pagerduty.com/services/{sid}"}
    return envelope("service.updated", "service", data, **kw)


# --------------------------------------------------------------------------- signing

def encode(payload: Union[dict, bytes, str]) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    return json.dumps(payload, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], body: bytes) -> str:
    """The X-PagerDuty-Signature value for one or several (rotating) secrets."""
    return ",".join(signature(s, body) for s in secrets)


def headers(body: bytes, secrets: Optional[Iterable[str]], webhook_id: Optional[str] = None,
            extra: Optional[dict] = None) -> dict:
    h = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Webhook-Subscription": "PSUB123",
    }
    if secrets is not None:
        h["X-PagerDuty-Signature"] = signature_header(secrets, body)
    if extra:
        h.update(extra)
    return h


# --------------------------------------------------------------------------- sending

@dataclass
class Response:
    status: int
    body: bytes
    headers: dict

    def json(self) -> Any:
        return json.loads(self.body)


class Sender:
    """Sends webhooks to the daemon over one keep-alive HTTP/1.1 connection.

    A request on a reused connection that fails before any response arrives
    (the server closed the idle connection) is retried once on a fresh one.
    """

    def __init__(self, host: str, port: int, secrets: Iterable[str], timeout: float = 10.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.secrets = list(secrets)
        self._conn: Optional[http.client.HTTPConnection] = None
        self.connections_opened = 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._conn.connect()
            self.connections_opened += 1
        return self._conn

    def request(self, method: str, path: str, body: Optional[bytes] = None,
                headers: Optional[dict] = None) -> Response:
        for attempt in (0, 1):
            fresh = self._conn is None
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers or {})
                r = conn.getresponse()
                data = r.read()
                resp = Response(r.status, data, {k.lower(): v for k, v in r.getheaders()})
                if r.will_close:
                    self.close()
                return resp
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                self.close()
                if fresh or attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def send(self, payload: Union[dict, bytes, str], *, webhook_id: Optional[str] = None,
             secrets: Optional[Iterable[str]] = None, signature: Optional[str] = None,
             extra_headers: Optional[dict] = None, omit_signature: bool = False) -> Response:
        body = encode(payload)
        h = headers(body, None if omit_signature else (secrets if secrets is not None else self.secrets),
                    webhook_id, extra_headers)
        if signature is not None:
            h["X-PagerDuty-Signature"] = signature
        return self.request("POST", PATH, body, h)

    def get(self, path: str) -> Response:
        return self.request("GET", path)
