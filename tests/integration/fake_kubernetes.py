"""A fake Kubernetes API server (read side: list, watch, get, /version) over HTTPS.

Implements the subset of the API described in /work/shared/api-facts.md section 4:

* ``GET /api/v1/namespaces/{ns}/{pods|configmaps|events}`` and ``/api/v1/{pods|...}``
  (all namespaces), ``/apis/apps/v1/[namespaces/{ns}/]{deployments|replicasets}``,
  ``/api/v1/nodes``; cert-manager's ``/apis/cert-manager.io/v1/[namespaces/{ns}/]certificates``
  (a CRD: ``certificate_crd = False`` removes it, and its paths answer 404 with the
  ``Status`` the real server gives for an API group it does not serve); ``…/{name}`` for
  one object; ``GET /version``.
* Lists: ``{"kind":"PodList",...,"metadata":{"resourceVersion","continue"},"items"}``;
  items carry no kind/apiVersion. ``limit``/``continue`` page through one consistent
  snapshot (the resourceVersion is the same on every page).
* Watches (``watch=1|true``): 200, chunked, one ``{"type","object"}`` JSON line per
  event, replayed from ``resourceVersion`` and then live; bookmarks only with
  ``allowWatchBookmarks=true``; ``timeoutSeconds`` ends the stream cleanly. Like the
  real server, several events may share a chunk and a long event spans several chunks.
* Errors are ``Status`` objects (401 Unauthorized, 404 NotFound, 410 Expired, ...).
* Leases (``coordination.k8s.io/v1``, leader election): ``GET``/``PUT``
  ``/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}`` and ``POST`` to
  ``…/namespaces/{ns}/leases``. A create of an existing Lease is 409 AlreadyExists; a PUT
  whose ``metadata.resourceVersion`` is not the stored one is 409 Conflict (one without
  a resourceVersion is unconditional, as the real server allows for Leases); a PUT of an
  absent Lease is 404; malformed MicroTimes or a non-positive ``leaseDurationSeconds``
  are 422 Invalid. Every write takes the next resourceVersion. ``partition(token)``
  refuses every request carrying that bearer token (dropped unanswered, or answered
  503) to cut one replica off the API server; ``heal`` undoes it.

There is one global resourceVersion counter; objects are changed with ``apply`` and
``delete``. Faults: ``compact`` (old resourceVersions expire), ``expire_continue_tokens``,
``expire_watches``, ``end_watches``, ``drop_watches``, ``fail_next``, ``down``,
``delay``. Every request is recorded with its arrival time (``time.monotonic()``). The
server, the request log, ``wait_until`` and the fault plumbing come from ``fake_https``.

The module-level builders (``pod``, ``container_status``, ``deployment``, ``replicaset``,
``configmap``, ``warning_event``, ``node``, ``certificate``) return objects shaped like the
real API's JSON, including the bulky fields (managedFields, spec details) parsers must skip.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import queue
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Optional

import fake_https
import harness

_Handler = fake_https.Handler

DEFAULT_GIT_VERSION = "v1.29.4-gke.1043002"

#: The first resourceVersion handed out is one above this. Close to a power of ten, so
#: resourceVersions soon gain a digit (a client comparing them as strings goes wrong).
FIRST_RESOURCE_VERSION = 99_990

#: How long a watch from a resourceVersion newer than the store waits before the
#: "Too large resource version" 504 (the real watch cache waits 3 s).
TOO_LARGE_RV_WAIT = 3.0

_TRUE = ("1", "t", "T", "true", "TRUE", "True")


# --------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class Resource:
    name: str  # plural, as in the path
    kind: str
    api_version: str
    prefix: str  # "/api/v1", "/apis/apps/v1", "/apis/cert-manager.io/v1"
    namespaced: bool

    @property
    def group(self) -> str:
        """The API group as RBAC and Status details name it ("" for the core group)."""
        return self.api_version.rpartition("/")[0]


RESOURCES: dict[str, Resource] = {r.name: r for r in (
    Resource("pods", "Pod", "v1", "/api/v1", True),
    Resource("configmaps", "ConfigMap", "v1", "/api/v1", True),
    Resource("events", "Event", "v1", "/api/v1", True),
    Resource("nodes", "Node", "v1", "/api/v1", False),
    Resource("deployments", "Deployment", "apps/v1", "/apis/apps/v1", True),
    Resource("replicasets", "ReplicaSet", "apps/v1", "/apis/apps/v1", True),
    # cert-manager's CRD (https://cert-manager.io/docs/reference/api-docs/#cert-manager.io/v1.Certificate)
    Resource("certificates", "Certificate", "cert-manager.io/v1", "/apis/cert-manager.io/v1", True),
    # Leader election (https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/lease-v1/)
    Resource("leases", "Lease", "coordination.k8s.io/v1", "/apis/coordination.k8s.io/v1", True),
)}

#: MicroTime as the server parses it (RFC 3339; runbookd and client-go send 6 digits).
_MICRO_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")

#: The resources that exist only while their CustomResourceDefinition is installed.
CRD_RESOURCES = frozenset({"certificates"})

_PATH_RE = re.compile(r"^(?P<prefix>/api/v1|/apis/[^/]+/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?"
                      r"/(?P<res>[^/]+)(?:/(?P<name>[^/]+))?$")

# Field selectors the real server supports per resource (others: ignored here, 400 there).
_FIELD_LABELS: dict[str, dict[str, str]] = {
    "events": {"type": "type", "reason": "reason", "source": "source.component",
               "reportingComponent": "reportingComponent",
               **{f"involvedObject.{k}": f"involvedObject.{k}" for k in (
                   "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}},
    "pods": {"spec.nodeName": "spec.nodeName", "status.phase": "status.phase",
             "spec.restartPolicy": "spec.restartPolicy", "spec.schedulerName": "spec.schedulerName",
             "spec.serviceAccountName": "spec.serviceAccountName", "status.podIP": "status.podIP",
             "status.nominatedNodeName": "status.nominatedNodeName"},
    "nodes": {"spec.unschedulable": "spec.unschedulable"},
}


def status_object(code: int, reason: str, message: str, details: Optional[dict] = None) -> dict:
    """A ``Status`` failure body, key order as the real server writes it."""
    out: dict = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                 "message": message, "reason": reason}
    if details is not None:
        out["details"] = details
    out["code"] = code
    return out


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 422: "Invalid",
            429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable",
            504: "Timeout"}
_MESSAGES = {429: "Too many requests, please try again later.",
             500: "Internal error occurred: etcdserver: request timed out",
             502: "Internal error occurred: bad gateway",
             503: "the server is currently unable to handle the request",
             504: "Timeout: request did not complete within the allotted timeout"}

CONTINUE_EXPIRED_MESSAGE = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list.")


_compact_json = fake_https.compact_json


def _key_order(key: tuple[str, str]) -> str:
    """List order: etcd key order, ``<namespace>/<name>`` (continue tokens use the same)."""
    return f"{key[0]}/{key[1]}"


def _store_order(item: tuple) -> tuple[str, str]:
    (resource, ns, name), _ = item
    return resource, _key_order((ns, name))


def _encode_continue(rv: int, start: str) -> str:
    """A continue token as the real server makes it: unpadded URL-safe base64 of JSON."""
    raw = _compact_json({"v": "meta.k8s.io/v1", "rv": rv, "start": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", token):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _lookup(obj: dict, dotted: str) -> str:
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


def _parse_field_selector(resource: str, text: str) -> list[tuple[str, bool, str]]:
    """(dotted path, equal?, value) for the supported terms; others are ignored."""
    labels = {"metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace",
              **_FIELD_LABELS.get(resource, {})}
    out = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        m = re.match(r"^([^!=]+)(!=|==|=)(.*)$", term)
        if m and m.group(1) in labels:
            out.append((labels[m.group(1)], m.group(2) != "!=", m.group(3)))
    return out


def _parse_label_selector(text: str) -> list[Callable[[dict], bool]]:
    """Equality, inequality, existence and set terms; unparseable terms are ignored."""
    terms, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur.strip())
            cur = ""
        else:
            cur += ch
    terms.append(cur.strip())
    out: list[Callable[[dict], bool]] = []
    for t in filter(None, terms):
        if m := re.match(r"^([\w./-]+)\s+(in|notin)\s+\((.*)\)$", t):
            key, op, vals = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            if op == "in":
                out.append(lambda ls, k=key, v=vals: ls.get(k) in v)
            else:
                out.append(lambda ls, k=key, v=vals: ls.get(k) not in v)
        elif m := re.match(r"^([\w./-]+)\s*(!=|==|=)\s*([\w./-]*)$", t):
            key, op, val = m.groups()
            if op == "!=":
                out.append(lambda ls, k=key, v=val: ls.get(k) != v)
            else:
                out.append(lambda ls, k=key, v=val: ls.get(k) == v)
        elif m := re.match(r"^!([\w./-]+)$", t):
            out.append(lambda ls, k=m.group(1): k not in ls)
        elif m := re.match(r"^([\w./-]+)$", t):
            out.append(lambda ls, k=m.group(1): k in ls)
    return out


@dataclass
class _Selector:
    fields: list
    labels: list

    @classmethod
    def from_query(cls, resource: str, query: dict) -> "_Selector":
        return cls(_parse_field_selector(resource, query.get("fieldSelector", "")),
                   _parse_label_selector(query.get("labelSelector", "")))

    def matches(self, obj: dict) -> bool:
        for path, equal, value in self.fields:
            if (_lookup(obj, path) == value) != equal:
                return False
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(t(labels) for t in self.labels)

    @property
    def empty(self) -> bool:
        return not self.fields and not self.labels


# --------------------------------------------------------------------------- records


@dataclass
class Request(fake_https.Request):
    """``fake_https.Request`` (method, path, query, headers, ``authorization``, time, status,
    fault: "fail_next", "down", "delay"; ``responded_at``: watches, the headers) and:"""
    client_cert: bool = False  # a client certificate was presented (and verified)
    client_cn: Optional[str] = None  # the client certificate's CN
    watch: bool = False
    ended_at: Optional[float] = None  # watches: when the stream ended


@dataclass
class Watch:
    """One watch stream. ``end_reason``: timeout, ended, expired, dropped, client, stopped."""
    resource: str
    namespace: Optional[str]  # None: all namespaces (or cluster-scoped)
    resource_version: str  # as requested ("" when absent)
    bookmarks: bool
    request: Request
    selector: _Selector = field(repr=False)
    started: float = 0.0
    ended: Optional[float] = None
    end_reason: str = ""
    sent: list = field(default_factory=list)  # (type, resourceVersion) per event written
    queue: "queue.Queue" = field(default_factory=queue.Queue, repr=False)
    conn: Any = field(default=None, repr=False)

    def covers(self, resource: str, namespace: str) -> bool:
        return self.resource == resource and (self.namespace is None or self.namespace == namespace)


_CLEAN_END = "clean-end"  # queue markers for watch writers
_ABORT = "abort"


@dataclass
class _Change:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    namespace: str
    name: str
    obj: dict  # the stored state (with kind/apiVersion)


# --------------------------------------------------------------------------- server


class FakeKubernetes(fake_https.FakeHTTPS):
    """Start with ``start()``; ``url`` is the API server address to give the daemon.

    ``down`` (from ``fake_https``): new connections are reset unanswered, requests on open
    connections are dropped, and open watches are dropped when it is switched on (idle
    keep-alive connections stay open)."""

    name = "fake Kubernetes"
    thread_name = "fake-kubernetes"
    server_header = "FakeKubernetes/1.0"
    idle_timeout = 60.0
    tcp_nodelay = False
    request_class = Request
    delay = fake_https.alias("response_delay", "Seconds to wait before answering any request.")

    def __init__(self, cert_file: str, key_file: str, tokens: Iterable[str] = ("tok",),
                 client_ca_file: Optional[str] = None):
        super().__init__(fake_https.server_context(cert_file, key_file, client_ca_file=client_ca_file))
        self.tokens: set[str] = set(tokens)
        self._rv = FIRST_RESOURCE_VERSION
        self._objects: dict[tuple[str, str, str], dict] = {}
        self._history: dict[str, list[_Change]] = {r: [] for r in RESOURCES}
        self._compacted_rv = 0  # watches from below this resourceVersion have expired
        self._continue_floor = 0  # continue tokens of snapshots at or below this: 410
        self._watches: list[Watch] = []
        self._forbidden: set[tuple[str, Optional[str]]] = set()
        self.version: dict = {}
        self.set_version(DEFAULT_GIT_VERSION)
        self.requests: list[Request] = []
        self.watches: list[Watch] = []  # every watch ever opened
        self.expiry_mode = "event"  # "event": 200 + ERROR line; "http": 410 on the watch
        self.chunk_size = 2048  # largest chunk of a watch stream (Go's buffer before chunking)
        self.max_watch_seconds: Optional[float] = None  # the server's own watch timeout
        self._certificate_crd = True
        self._partitioned: dict[str, str] = {}  # bearer token -> "drop" | "503"

    # ---------------------------------------------------------------- store

    @property
    def resource_version(self) -> str:
        """The current (latest) resourceVersion."""
        with self._lock:
            return str(self._rv)

    def apply(self, resource: str, obj: dict) -> dict:
        """Creates (ADDED) or replaces (MODIFIED) an object; returns the stored copy.

        Sets kind, apiVersion and metadata.resourceVersion; a replacement keeps the
        stored uid and creationTimestamp, as the real server does."""
        res = self._resource(resource)
        obj = copy.deepcopy(obj)
        md = obj.setdefault("metadata", {})
        name = md.get("name")
        if not name:
            raise ValueError("apply: metadata.name is required")
        if res.namespaced:
            ns = md.get("namespace") or "default"
            md["namespace"] = ns
        else:
            ns = ""
            md.pop("namespace", None)
        obj = {"kind": res.kind, "apiVersion": res.api_version,
               **{k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}}
        md = obj["metadata"]
        with self._lock:
            key = (resource, ns, name)
            prev = self._objects.get(key)
            if prev is not None:
                md["uid"] = prev["metadata"]["uid"]
                md["creationTimestamp"] = prev["metadata"]["creationTimestamp"]
            else:
                md.setdefault("uid", str(uuid.uuid4()))
                md.setdefault("creationTimestamp", rfc3339())
            self._rv += 1
            md["resourceVersion"] = str(self._rv)
            self._objects[key] = obj
            self._record(resource, "MODIFIED" if prev is not None else "ADDED", ns, name, obj)
            return copy.deepcopy(obj)

    def delete(self, resource: str, ns: Optional[str], name: str) -> Optional[dict]:
        """Removes an object (DELETED with its last state); returns that state or None."""
        res = self._resource(resource)
        ns = (ns or "default") if res.namespaced else ""
        with self._lock:
            obj = self._objects.pop((resource, ns, name), None)
            if obj is None:
                return None
            obj = copy.deepcopy(obj)
            self._rv += 1
            obj["metadata"]["resourceVersion"] = str(self._rv)  # the deletion's revision
            self._record(resource, "DELETED", ns, name, obj)
            return copy.deepcopy(obj)

    def get(self, resource: str, ns: Optional[str], name: str) -> Optional[dict]:
        res = self._resource(resource)
        ns = (ns or "default") if res.namespaced else ""
        with self._lock:
            obj = self._objects.get((resource, ns, name))
            return copy.deepcopy(obj) if obj is not None else None

    def objects(self, resource: str, ns: Optional[str] = None) -> list[dict]:
        """Current objects of a resource (one namespace or all), in list order."""
        self._resource(resource)
        with self._lock:
            return [copy.deepcopy(o) for (r, n, m), o in sorted(self._objects.items(), key=_store_order)
                    if r == resource and (ns is None or n == ns)]

    def set_version(self, git_version: str) -> None:
        """What ``GET /version`` answers (major/minor are taken from the gitVersion)."""
        m = re.match(r"^v(\d+)\.(\d+)", git_version)
        major, minor = (m.group(1), m.group(2)) if m else ("1", "0")
        gke = "-gke." in git_version
        with self._lock:
            self.version = {
                "major": major,
                "minor": minor,
                "gitVersion": git_version,
                "gitCommit": hashlib.sha1(git_version.encode()).hexdigest(),
                "gitTreeState": "clean",
                "buildDate": "2024-04-30T09:17:27Z",
                "goVersion": "go1.21.9 X:boringcrypto" if gke else "go1.21.9",
                "compiler": "gc",
                "platform": "linux/amd64",
            }

    # ---------------------------------------------------------------- controls

    def compact(self) -> str:
        """Forgets the change history up to now: watches from an older resourceVersion
        expire. Returns the compaction point."""
        with self._lock:
            self._compacted_rv = self._rv
            return str(self._rv)

    def expire_continue_tokens(self) -> None:
        """Every continue token handed out so far answers 410 Expired from now on."""
        with self._lock:
            self._continue_floor = self._rv

    def send_bookmark(self, resource: Optional[str] = None) -> int:
        """A BOOKMARK at the current resourceVersion to open watches that allow bookmarks;
        returns how many watches got one."""
        n = 0
        with self._lock:
            for w in self._watches:
                if w.bookmarks and (resource is None or w.resource == resource):
                    res = RESOURCES[w.resource]
                    w.queue.put(("BOOKMARK", self._rv, _compact_json({
                        "type": "BOOKMARK",
                        "object": {"kind": res.kind, "apiVersion": res.api_version,
                                   "metadata": {"resourceVersion": str(self._rv)}}}) + b"\n"))
                    n += 1
        return n

    def expire_watches(self) -> int:
        """Sends the 410 Expired ERROR event on every open watch and ends them."""
        with self._lock:
            watches, self._watches = self._watches, []
            for w in watches:
                w.end_reason = "expired"
                w.queue.put(("ERROR", None, self._expired_line(w.resource_version)))
                w.queue.put(_CLEAN_END)
            return len(watches)

    def end_watches(self) -> int:
        """Ends every open watch cleanly (terminating chunk), like the server's timeout."""
        with self._lock:
            watches, self._watches = self._watches, []
            for w in watches:
                w.end_reason = "ended"
                w.queue.put(_CLEAN_END)
            return len(watches)

    def drop_watches(self) -> int:
        """Aborts every open watch connection (TCP shutdown, no terminating chunk)."""
        with self._lock:
            watches, self._watches = self._watches, []
            for w in watches:
                w.end_reason = "dropped"
                w.queue.put(_ABORT)
                if w.conn is not None:
                    fake_https.hard_shutdown(w.conn)  # the socket stays open while registered
            return len(watches)

    def fail_next(self, status: int, count: int = 1, path_contains: Optional[str] = None,
                  reason: Optional[str] = None, message: Optional[str] = None) -> None:
        """The next ``count`` requests whose path and query contain ``path_contains``
        answer ``status`` with a Status body (429 also gets ``Retry-After: 1``)."""
        self.add_fault(fake_https.Fault(fake_https.FAIL, remaining=count, status=status, reason=reason,
                                        message=message, contains=path_contains))

    def clear_faults(self) -> None:
        with self._lock:
            super().clear_faults()
            self._forbidden.clear()

    @property
    def certificate_crd(self) -> bool:
        """Whether cert-manager's Certificate CRD is installed (the default). Without it,
        every ``/apis/cert-manager.io/...`` request answers 404 with a ``NotFound`` Status,
        as the real server does for a group it does not serve; removing it ends the open
        certificates watches cleanly, as the real server does when a CRD is deleted.
        Objects applied meanwhile are kept and served again once it is back."""
        with self._lock:
            return self._certificate_crd

    @certificate_crd.setter
    def certificate_crd(self, installed: bool) -> None:
        with self._lock:
            self._certificate_crd = bool(installed)
            if not installed:
                for w in [w for w in self._watches if w.resource in CRD_RESOURCES]:
                    self._watches.remove(w)
                    w.end_reason = "ended"
                    w.queue.put(_CLEAN_END)

    def forbid(self, resource: str, namespace: Optional[str] = None) -> None:
        """Requests for ``resource`` (in ``namespace``, or anywhere) answer 403 as RBAC does."""
        self._resource(resource)
        with self._lock:
            self._forbidden.add((resource, namespace))

    def partition(self, token: str, mode: str = "drop") -> None:
        """Refuses every request with bearer ``token`` from now on: ``drop`` closes the
        connection unanswered (a network partition), ``503`` answers ServiceUnavailable."""
        if mode not in ("drop", "503"):
            raise ValueError(f"partition mode {mode!r}: 'drop' or '503'")
        with self._lock:
            self._partitioned[token] = mode

    def heal(self, token: Optional[str] = None) -> None:
        """Ends the partition of ``token`` (or of every token)."""
        with self._lock:
            if token is None:
                self._partitioned.clear()
            else:
                self._partitioned.pop(token, None)

    def lease(self, ns: str, name: str) -> Optional[dict]:
        """The stored Lease, or None."""
        return self.get("leases", ns, name)

    def lease_writes(self, ns: Optional[str] = None, name: Optional[str] = None) -> list[Request]:
        """Answered POST/PUT requests for Leases (optionally of one), in arrival order."""
        with self._lock:
            recs = list(self.requests)
        out = []
        for r in recs:
            if r.method not in ("POST", "PUT") or not r.path.startswith("/apis/coordination.k8s.io/v1/"):
                continue
            m = _PATH_RE.match(r.path)
            if m is None or (ns is not None and m.group("ns") != ns):
                continue
            if name is not None and m.group("name") not in (name, None):
                continue
            out.append(r)
        return out

    # ---------------------------------------------------------------- queries

    def open_watches(self, resource: Optional[str] = None) -> list[Watch]:
        with self._lock:
            return [w for w in self._watches if resource is None or w.resource == resource]

    def list_requests(self, resource: Optional[str] = None) -> list[Request]:
        """Answered non-watch GETs of collections (optionally of one resource)."""
        out = []
        for r in self.snapshot_requests():
            m = _PATH_RE.match(r.path)
            if r.method == "GET" and not r.watch and m and not m.group("name") \
                    and (resource is None or m.group("res") == resource):
                out.append(r)
        return out

    def watch_requests(self, resource: Optional[str] = None) -> list[Request]:
        out = []
        for r in self.snapshot_requests():
            m = _PATH_RE.match(r.path)
            if r.watch and m and (resource is None or m.group("res") == resource):
                out.append(r)
        return out

    # ---------------------------------------------------------------- internals

    @staticmethod
    def _resource(resource: str) -> Resource:
        if resource not in RESOURCES:
            raise ValueError(f"unknown resource {resource!r} (known: {', '.join(RESOURCES)})")
        return RESOURCES[resource]

    def _record(self, resource: str, typ: str, ns: str, name: str, obj: dict) -> None:
        """Appends to the history and queues the event for open watches (lock held)."""
        self._history[resource].append(_Change(self._rv, typ, ns, name, obj))
        line = None
        for w in self._watches:
            if w.covers(resource, ns) and w.selector.matches(obj):
                line = line or _compact_json({"type": typ, "object": obj}) + b"\n"
                w.queue.put((typ, self._rv, line))
        self._cond.notify_all()

    def _state_at(self, resource: str, rv: int) -> dict[tuple[str, str], dict]:
        state: dict[tuple[str, str], dict] = {}
        for c in self._history[resource]:
            if c.rv > rv:
                break
            if c.type == "DELETED":
                state.pop((c.namespace, c.name), None)
            else:
                state[(c.namespace, c.name)] = c.obj
        return state

    def _expired_line(self, requested: str) -> bytes:
        return _compact_json({"type": "ERROR", "object": self._too_old(requested)}) + b"\n"

    def _too_old(self, requested: str) -> dict:
        return status_object(410, "Expired",
                             f"too old resource version: {requested} ({self._compacted_rv})")

    def _on_down(self) -> None:
        self.drop_watches()

    def _on_stop(self) -> None:
        with self._lock:
            for w in self._watches:
                w.end_reason = w.end_reason or "stopped"
                w.queue.put(_ABORT)
            self._watches.clear()

    def _reply(self, h: _Handler, rec: Request, status: int, payload: Any,
               headers: Optional[dict] = None) -> None:
        self._send_json(h, rec, status, payload, {"Audit-Id": str(uuid.uuid4()),
                                                  "Cache-Control": "no-cache, private", **(headers or {})})

    def _status(self, h: _Handler, rec: Request, code: int, message: str, reason: Optional[str] = None,
                details: Optional[dict] = None, headers: Optional[dict] = None) -> None:
        self._reply(h, rec, code, status_object(code, reason or _REASONS.get(code, "InternalError"),
                                                message, details), headers)

    def _answer_fault(self, h: _Handler, rec: Request, fault: fake_https.Fault) -> None:
        extra = {"Retry-After": "1"} if fault.status == 429 else None
        details = {"retryAfterSeconds": 1} if fault.status == 429 else None
        self._status(h, rec, fault.status,
                     fault.message or _MESSAGES.get(fault.status, f"fake failure {fault.status}"),
                     fault.reason, details, extra)

    def _new_request(self, h: _Handler, **fields: Any) -> Request:
        client_cert, cn = fake_https.peer_common_name(h.connection)
        return Request(**fields, client_cert=client_cert, client_cn=cn,
                       watch=fields["method"] == "GET" and fields["query"].get("watch", "") in _TRUE)

    def _dispatch(self, h: _Handler, rec: Request) -> None:
        path, query = rec.path, rec.query
        mode = self._partition_of(rec)
        if mode == "drop":
            self._drop(h, rec, "partition")
            return
        if mode == "503":
            rec.fault = "partition"
            self._status(h, rec, 503, _MESSAGES[503])
            return
        if not self._authenticated(rec):
            self._status(h, rec, 401, "Unauthorized")
            return

        if path == "/version":
            if h.command not in ("GET", "HEAD"):
                self._status(h, rec, 405, "the server does not allow this method on the requested resource")
                return
            with self._lock:
                version = dict(self.version)
            self._reply(h, rec, 200, version)
            return

        m = _PATH_RE.match(path)
        res = RESOURCES.get(m.group("res")) if m else None
        if res is not None and res.name in CRD_RESOURCES and not self.certificate_crd:
            res = None  # the group is not served at all
        if m is None or res is None or res.prefix != m.group("prefix") \
                or (m.group("ns") is not None and not res.namespaced) \
                or (m.group("name") is not None and res.namespaced and m.group("ns") is None):
            self._status(h, rec, 404, "the server could not find the requested resource",
                         details={})
            return
        ns, name = m.group("ns"), m.group("name")
        if res.name == "leases" and h.command in ("POST", "PUT"):
            self._write_lease(h, rec, res, ns, name)
            return
        if h.command not in ("GET", "HEAD"):
            self._status(h, rec, 405, "the server does not allow this method on the requested resource")
            return
        verb = "watch" if rec.watch else ("get" if name else "list")
        if self._forbidden_for(res.name, ns):
            self._forbid_answer(h, rec, res, ns, verb)
            return
        if name:
            self._get_one(h, rec, res, ns, name)
        elif rec.watch:
            self._watch(h, rec, res, ns, query)
        else:
            self._list(h, rec, res, ns, query)

    def _authenticated(self, rec: Request) -> bool:
        if rec.client_cert:
            return True
        auth = rec.authorization or ""
        scheme, _, token = auth.strip().partition(" ")
        token = token.strip()
        with self._lock:
            return scheme.lower() == "bearer" and bool(token) and token in self.tokens

    def _partition_of(self, rec: Request) -> Optional[str]:
        scheme, _, token = (rec.authorization or "").strip().partition(" ")
        with self._lock:
            return self._partitioned.get(token.strip()) if scheme.lower() == "bearer" else None

    def _write_lease(self, h: _Handler, rec: Request, res: Resource, ns: Optional[str],
                     name: Optional[str]) -> None:
        """POST (create, to the collection) or PUT (update, to the object) of a Lease."""
        create = h.command == "POST"
        if ns is None or create == (name is not None):
            self._status(h, rec, 405, "the server does not allow this method on the requested resource")
            return
        if self._forbidden_for(res.name, ns):
            self._forbid_answer(h, rec, res, ns, "create" if create else "update")
            return
        try:
            obj = json.loads(rec.body or b"")
        except ValueError as e:
            self._status(h, rec, 400, f"the body of the request was in an unknown format: {e}")
            return
        if not isinstance(obj, dict) or obj.get("kind") not in (None, "Lease") \
                or obj.get("apiVersion") not in (None, res.api_version):
            self._status(h, rec, 400, "the object provided is not a coordination.k8s.io/v1 Lease")
            return
        md = obj.get("metadata") or {}
        obj_name = md.get("name") or name
        if md.get("namespace", ns) != ns:
            self._status(h, rec, 400, "the namespace of the provided object does not match the namespace "
                                      "sent on the request")
            return
        if not create and obj_name != name:
            self._status(h, rec, 400, "the name of the object does not match the name on the URL")
            return
        if not obj_name:
            self._status(h, rec, 422, "Lease.coordination.k8s.io is invalid: metadata.name: Required value",
                         "Invalid")
            return
        problem = _lease_spec_problem(obj.get("spec") or {})
        if problem:
            self._status(h, rec, 422, f'Lease.coordination.k8s.io "{obj_name}" is invalid: {problem}',
                         "Invalid", details={"name": obj_name, "group": res.group, "kind": "Lease"})
            return
        details = {"name": obj_name, "group": res.group, "kind": res.name}
        with self._lock:
            stored = self._objects.get((res.name, ns, obj_name))
            if create and stored is not None:
                conflict = f'leases.{res.group} "{obj_name}" already exists'
                reason = "AlreadyExists"
            elif not create and stored is None:
                conflict, reason = None, "NotFound"
            elif not create and md.get("resourceVersion") not in (None, "") \
                    and md["resourceVersion"] != stored["metadata"]["resourceVersion"]:
                conflict = (f'Operation cannot be fulfilled on leases.{res.group} "{obj_name}": the object '
                            "has been modified; please apply your changes to the latest version and try again")
                reason = "Conflict"
            else:
                conflict, reason = None, None
                new = {"metadata": {k: v for k, v in md.items() if k != "resourceVersion"},
                       "spec": obj.get("spec") or {}}
                new["metadata"]["name"], new["metadata"]["namespace"] = obj_name, ns
                written = self.apply(res.name, new)
        if reason == "NotFound":
            self._status(h, rec, 404, f'leases.{res.group} "{obj_name}" not found', details=details)
        elif reason is not None:
            self._status(h, rec, 409, conflict, reason, details=details)
        else:
            self._reply(h, rec, 201 if create else 200, written)

    def _forbidden_for(self, resource: str, ns: Optional[str]) -> bool:
        with self._lock:
            return (resource, None) in self._forbidden or (ns is not None and (resource, ns) in self._forbidden)

    def _forbid_answer(self, h: _Handler, rec: Request, res: Resource, ns: Optional[str], verb: str) -> None:
        user = rec.client_cn or "system:serviceaccount:ops:runbookd"
        group = res.group
        where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
        self._status(h, rec, 403,
                     f'{res.name}{"." + group if group else ""} is forbidden: User "{user}" cannot {verb} '
                     f'resource "{res.name}" in API group "{group}"{where}',
                     details={"group": group, "kind": res.name} if group else {"kind": res.name})

    def _get_one(self, h: _Handler, rec: Request, res: Resource, ns: Optional[str], name: str) -> None:
        obj = self.get(res.name, ns, name)
        if obj is None:
            group = res.group
            details = {"name": name, "kind": res.name}
            if group:
                details = {"name": name, "group": group, "kind": res.name}
            self._status(h, rec, 404, f'{res.name}{"." + group if group else ""} "{name}" not found',
                         details=details)
            return
        self._reply(h, rec, 200, obj)

    # ---------------------------------------------------------------- list

    def _list(self, h: _Handler, rec: Request, res: Resource, ns: Optional[str], query: dict) -> None:
        selector = _Selector.from_query(res.name, query)
        limit = 0
        if query.get("limit"):
            try:
                limit = max(0, int(query["limit"]))
            except ValueError:
                self._status(h, rec, 400, f'invalid limit "{query["limit"]}"', "BadRequest")
                return
        start = ""
        token = query.get("continue", "")
        with self._lock:
            if token:
                try:
                    decoded = json.loads(_decode_continue(token))
                    snap_rv = int(decoded["rv"])
                    start = str(decoded["start"])
                    if decoded.get("v") != "meta.k8s.io/v1":
                        raise ValueError("version")
                except (ValueError, KeyError, TypeError):
                    answer = ("bad", None)
                else:
                    if snap_rv == -1:  # an "inconsistent" token from a 410: continue at the latest
                        snap_rv = self._rv
                        answer = ("ok", None)
                    elif snap_rv <= self._continue_floor or snap_rv <= 0:
                        answer = ("expired", start)
                    else:
                        answer = ("ok", None)
            else:
                snap_rv = self._rv
                answer = ("ok", None)
            if answer[0] == "ok":
                state = self._state_at(res.name, snap_rv)
                keys = sorted((k for k, o in state.items()
                               if (ns is None or k[0] == ns) and selector.matches(o)), key=_key_order)
                keys = [k for k in keys if f"{k[0]}/{k[1]}" > start] if start else keys
                page = keys[:limit] if limit else keys
                items = []
                for k in page:
                    item = copy.deepcopy(state[k])
                    item.pop("kind", None)
                    item.pop("apiVersion", None)
                    items.append(item)
                rest = len(keys) - len(page)
        if answer[0] == "bad":
            self._status(h, rec, 400, "continue key is not valid: illegal base64 data or bad token",
                         "BadRequest")
            return
        if answer[0] == "expired":
            inconsistent = _encode_continue(-1, answer[1])
            body = status_object(410, "Expired", CONTINUE_EXPIRED_MESSAGE)
            body["metadata"] = {"continue": inconsistent}
            self._reply(h, rec, 410, body)
            return
        meta: dict = {"resourceVersion": str(snap_rv)}
        if rest > 0:
            last = page[-1]
            meta["continue"] = _encode_continue(snap_rv, _key_order(last) + "\x00")
            if selector.empty:
                meta["remainingItemCount"] = rest
        self._reply(h, rec, 200, {"kind": res.kind + "List", "apiVersion": res.api_version,
                                 "metadata": meta, "items": items})

    # ---------------------------------------------------------------- watch

    def _watch(self, h: _Handler, rec: Request, res: Resource, ns: Optional[str], query: dict) -> None:
        requested = query.get("resourceVersion", "")
        try:
            from_rv = int(requested) if requested else 0
            if from_rv < 0:
                raise ValueError(requested)
        except ValueError:
            self._status(h, rec, 400, f'resourceVersion: Invalid value: "{requested}": '
                                      f'invalid resource version', "BadRequest")
            return
        timeout: Optional[float] = None
        if query.get("timeoutSeconds"):
            try:
                timeout = float(int(query["timeoutSeconds"]))
            except ValueError:
                self._status(h, rec, 400, f'invalid timeoutSeconds "{query["timeoutSeconds"]}"',
                             "BadRequest")
                return
        if self.max_watch_seconds is not None:
            timeout = self.max_watch_seconds if timeout is None else min(timeout, self.max_watch_seconds)
        w = Watch(resource=res.name, namespace=ns, resource_version=requested,
                  bookmarks=query.get("allowWatchBookmarks", "") in _TRUE, request=rec,
                  selector=_Selector.from_query(res.name, query), conn=h.connection)
        too_large = expired = False
        with self._cond:
            if from_rv > self._rv:
                self._cond.wait_for(lambda: self._rv >= from_rv, TOO_LARGE_RV_WAIT)
            current = self._rv
            if from_rv > current:
                too_large = True
            elif 0 < from_rv < self._compacted_rv:
                expired = True
                if self.expiry_mode != "http":
                    w.end_reason = "expired"
                    w.queue.put(("ERROR", None, self._expired_line(requested)))
                    w.queue.put(_CLEAN_END)
            else:
                if from_rv == 0:  # no resourceVersion: the current state as ADDED, then live
                    for (r, n, _), o in sorted(self._objects.items(), key=_store_order):
                        if w.covers(r, n) and w.selector.matches(o):
                            w.queue.put(("ADDED", int(o["metadata"]["resourceVersion"]),
                                         _compact_json({"type": "ADDED", "object": o}) + b"\n"))
                else:
                    for c in self._history[res.name]:
                        if c.rv > from_rv and w.covers(res.name, c.namespace) and w.selector.matches(c.obj):
                            w.queue.put((c.type, c.rv, _compact_json({"type": c.type, "object": c.obj}) + b"\n"))
                self._watches.append(w)
            self.watches.append(w)
        if too_large:
            w.end_reason = "too-large"
            self._status(h, rec, 504, f"Too large resource version: {from_rv}, current: {current}",
                         "Timeout", details={"causes": [{"reason": "ResourceVersionTooLarge",
                                                         "message": "Too large resource version"}],
                                             "retryAfterSeconds": 1})
            return
        if expired and self.expiry_mode == "http":
            w.end_reason = "expired"
            self._reply(h, rec, 410, self._too_old(requested))
            return
        self._stream(h, rec, w, timeout)

    def _stream(self, h: _Handler, rec: Request, w: Watch, timeout: Optional[float]) -> None:
        conn = h.connection
        w.started = time.monotonic()
        deadline = w.started + timeout if timeout is not None else None
        self._finish(rec, 200)
        try:
            h.send_response(200)
            h.send_header("Audit-Id", str(uuid.uuid4()))
            h.send_header("Cache-Control", "no-cache, private")
            h.send_header("Content-Type", "application/json")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            h.wfile.flush()
        except OSError:
            self._end_watch(h, rec, w, "client", clean=False)
            return
        while True:
            wait = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic()))
            try:
                first = w.queue.get(timeout=wait)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    self._end_watch(h, rec, w, "timeout", clean=True)
                    return
                if fake_https.peer_closed(conn):
                    self._end_watch(h, rec, w, "client", clean=False)
                    return
                continue
            items = [first]
            while True:
                try:
                    items.append(w.queue.get_nowait())
                except queue.Empty:
                    break
            data, end = b"", None
            for it in items:
                if isinstance(it, tuple):
                    typ, rv, line = it
                    data += line
                    w.sent.append((typ, None if rv is None else str(rv)))
                else:
                    end = it
                    break
            if data:
                try:
                    step = max(1, int(self.chunk_size))
                    for i in range(0, len(data), step):
                        piece = data[i:i + step]
                        h.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                except OSError:
                    self._end_watch(h, rec, w, "client", clean=False)
                    return
            if end == _ABORT:
                self._end_watch(h, rec, w, "dropped", clean=False)
                return
            if end == _CLEAN_END:
                self._end_watch(h, rec, w, "ended", clean=True)
                return
            if deadline is not None and time.monotonic() >= deadline:
                self._end_watch(h, rec, w, "timeout", clean=True)
                return

    def _end_watch(self, h: _Handler, rec: Request, w: Watch, reason: str, clean: bool) -> None:
        # Recorded before the client can see the end, so a test that saw it sees the record.
        with self._lock:
            if w in self._watches:
                self._watches.remove(w)
            w.end_reason = w.end_reason or reason
            w.ended = rec.ended_at = time.monotonic()
            self._cond.notify_all()
        if clean:
            try:
                h.wfile.write(b"0\r\n\r\n")
            except OSError:
                clean = False
        if not clean:
            h.close_connection = True
            fake_https.hard_shutdown(h.connection)


# --------------------------------------------------------------------------- client certificates


def issue_client_cert(ca_cert: str, ca_key: str, directory: str, cn: str = "runbookd",
                      organization: Optional[str] = None) -> tuple[str, str]:
    """A client certificate (clientAuth) signed by the given CA; returns (cert, key) paths."""
    base = os.path.join(directory, f"client-{re.sub(r'[^A-Za-z0-9_.-]', '_', cn)}")
    key, csr, crt, ext = base + ".key", base + ".csr", base + ".pem", base + ".ext"
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\n")
    subj = f"/CN={cn}" + (f"/O={organization}" if organization else "")
    for args in (["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", subj],
                 ["x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                  "-out", crt, "-days", "2", "-sha256", "-extfile", ext]):
        r = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed: {r.stderr}")
    return crt, key


# --------------------------------------------------------------------------- builders


DEFAULT_IMAGE = "us-docker.pkg.dev/darklang-prod/apps/app:1.0.0"
DEFAULT_NODE = "gke-prod-default-pool-4f2a9c1e-x8k2"
_RS_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what the controllers use for generated names


def _lease_spec_problem(spec: Any) -> str:
    """Why the server's validation refuses a LeaseSpec, or ""."""
    if not isinstance(spec, dict):
        return "spec: Invalid value: must be an object"
    for key in ("acquireTime", "renewTime"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, str) or not _MICRO_TIME_RE.match(value)):
            return f"spec.{key}: Invalid value: {value!r}: not a MicroTime"
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not isinstance(duration, int) or duration <= 0):
        return "spec.leaseDurationSeconds: Invalid value: must be greater than 0"
    transitions = spec.get("leaseTransitions")
    if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
        return "spec.leaseTransitions: Invalid value: must be greater than or equal to 0"
    holder = spec.get("holderIdentity")
    if holder is not None and not isinstance(holder, str):
        return "spec.holderIdentity: Invalid value: must be a string"
    return ""


def lease(ns: str, name: str, holder: str, transitions: int = 0, duration: int = 15,
          renew: Optional[str] = None, acquire: Optional[str] = None) -> dict:
    """A Lease held by ``holder`` (for ``apply``), shaped like the real API's."""
    renew = renew or micro_time()
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                     "acquireTime": acquire or renew, "renewTime": renew,
                     "leaseTransitions": transitions}}


def rfc3339(t: Optional[float] = None) -> str:
    """RFC 3339 with seconds, UTC (``metav1.Time``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if t is None else t))


def micro_time(t: Optional[float] = None) -> str:
    """RFC 3339 with exactly 6 fractional digits, UTC (``metav1.MicroTime``)."""
    dt = datetime.fromtimestamp(time.time() if t is None else t, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ago(seconds: float) -> str:
    return rfc3339(time.time() - seconds)


def _shift(ts: str, seconds: float) -> str:
    """``ts`` (RFC 3339, "Z") moved by ``seconds``; unparsable input is returned as is."""
    try:
        dt = datetime.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return ts
    return (dt + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stable_uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "k8s:" + "/".join(parts)))


def _short(seed: str, n: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_RS_ALPHABET[b % len(_RS_ALPHABET)] for b in digest[:n])


def _hex(seed: str, n: int = 64) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:n]


def _image_id(image: str) -> str:
    repo = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    return f"{repo}@sha256:{_hex(image)}"


def _managed(entries: Iterable[Any], api_version: str, fields_for: Callable[[str, str], dict]) -> list[dict]:
    """managedFields from (manager, operation, time[, subresource]) tuples or dicts."""
    out = []
    for e in entries:
        if isinstance(e, dict):
            manager, operation, when, sub = (e.get("manager", ""), e.get("operation", "Update"),
                                             e.get("time", rfc3339()), e.get("subresource"))
        else:
            manager, operation, when = e[0], e[1], e[2]
            sub = e[3] if len(e) > 3 else None
        m = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": when,
             "fieldsType": "FieldsV1", "fieldsV1": fields_for(manager, sub or "")}
        if sub:
            m["subresource"] = sub
        out.append(m)
    return out


def container_status(name: str = "app", restarts: int = 0, waiting: Optional[str] = None,
                     waiting_message: str = "", last_terminated: Optional[dict] = None,
                     image: str = DEFAULT_IMAGE, started_at: Optional[str] = None) -> dict:
    """One ``status.containerStatuses[]`` entry: running unless ``waiting`` names a reason.

    ``last_terminated`` fills ``lastState.terminated`` over realistic defaults, e.g.
    ``dict(reason="OOMKilled", exitCode=137, message="", finishedAt="2024-05-01T10:00:00Z")``;
    an empty message is omitted, as the kubelet does."""
    ever_ran = restarts > 0 or waiting is None or last_terminated is not None
    cid = "containerd://" + _hex(f"{name}/{image}/{restarts}")
    st: dict = {"name": name}
    if waiting is None:
        st["state"] = {"running": {"startedAt": started_at or _ago(120)}}
    else:
        w: dict = {"reason": waiting}
        if waiting_message:
            w["message"] = waiting_message
        st["state"] = {"waiting": w}
    if last_terminated is not None:
        finished = last_terminated.get("finishedAt") or _ago(30)
        t = {"exitCode": 1, "reason": "Error", "startedAt": _shift(finished, -60),
             "finishedAt": finished, "containerID": "containerd://" + _hex(f"{name}/{image}/{restarts - 1}")}
        t.update(last_terminated)
        if not t.get("message"):
            t.pop("message", None)
        if not t.get("signal"):
            t.pop("signal", None)
        st["lastState"] = {"terminated": t}
        if waiting is not None:
            cid = t["containerID"]  # a waiting container reports its last run
    else:
        st["lastState"] = {}
    pulled = waiting not in ("ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull",
                             "InvalidImageName", "ImageInspectError", "RegistryUnavailable",
                             "ContainerCreating")
    st.update({
        "ready": waiting is None,
        "restartCount": restarts,
        "image": image,
        "imageID": _image_id(image) if pulled else "",
        "started": waiting is None,
    })
    if ever_ran and pulled:
        st["containerID"] = cid
    return st


def _container_spec(name: str, image: str) -> dict:
    return {
        "name": name,
        "image": image,
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "LOG_FORMAT", "value": "json"},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
        "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "250m", "memory": "256Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                           "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                           "failureThreshold": 3},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def pod(ns: str, name: str, deployment: str, template_hash: str = "abc123",
        containers: Optional[list[dict]] = None, phase: str = "Running",
        node_name: str = DEFAULT_NODE, labels: Optional[dict] = None) -> dict:
    """A Pod owned by ReplicaSet ``<deployment>-<template_hash>`` (label pod-template-hash).

    ``containers`` are ``container_status(...)`` entries; the spec follows them."""
    statuses = containers if containers is not None else [container_status("app")]
    rs = f"{deployment}-{template_hash}"
    uid = str(uuid.uuid4())
    token_vol = "kube-api-access-" + _short(name, 5)
    specs = []
    for s in statuses:
        c = _container_spec(s["name"], s.get("image", DEFAULT_IMAGE))
        c["volumeMounts"] = [{"name": token_vol, "readOnly": True,
                              "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]
        specs.append(c)
    all_ready = all(s.get("ready") for s in statuses)
    unready = [s["name"] for s in statuses if not s.get("ready")]
    created = _ago(600)
    ready_cond = {"type": "Ready", "status": "True" if all_ready else "False", "lastProbeTime": None,
                  "lastTransitionTime": _ago(300)}
    cr_cond = {"type": "ContainersReady", "status": "True" if all_ready else "False",
               "lastProbeTime": None, "lastTransitionTime": _ago(300)}
    if not all_ready:
        msg = f"containers with unready status: [{' '.join(unready)}]"
        ready_cond.update(reason="ContainersNotReady", message=msg)
        cr_cond.update(reason="ContainersNotReady", message=msg)
    ip = hashlib.sha256(name.encode()).digest()
    pod_ip = f"10.4.{ip[0]}.{ip[1] % 254 + 1}"
    host_ip = f"10.128.0.{ip[2] % 250 + 2}"

    def fields(manager: str, sub: str) -> dict:
        if sub == "status":
            return {"f:status": {"f:conditions": {'k:{"type":"Ready"}': {".": {}, "f:lastProbeTime": {},
                                                                            "f:lastTransitionTime": {},
                                                                            "f:status": {}, "f:type": {}}},
                                 "f:containerStatuses": {}, "f:hostIP": {}, "f:phase": {},
                                 "f:podIP": {}, "f:podIPs": {".": {}, 'k:{"ip":"%s"}' % pod_ip: {".": {}, "f:ip": {}}},
                                 "f:startTime": {}}}
        return {"f:metadata": {"f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
                               "f:ownerReferences": {".": {}, f'k:{{"uid":"{_stable_uid(ns, "rs", rs)}"}}': {}}},
                "f:spec": {"f:containers": {f'k:{{"name":"{c["name"]}"}}': {".": {}, "f:image": {}, "f:name": {}}
                                            for c in specs},
                           "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {}}}

    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "generateName": f"{rs}-",
            "namespace": ns,
            "uid": uid,
            "creationTimestamp": created,
            "labels": {"app": deployment, "pod-template-hash": template_hash, **(labels or {})},
            "annotations": {"kubectl.kubernetes.io/default-container": specs[0]["name"] if specs else "app"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                 "uid": _stable_uid(ns, "rs", rs), "controller": True,
                                 "blockOwnerDeletion": True}],
            "managedFields": _managed([("kube-controller-manager", "Update", created),
                                       ("kubelet", "Update", _ago(60), "status")], "v1", fields),
        },
        "spec": {
            "volumes": [{"name": token_vol, "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                              "fieldPath": "metadata.namespace"}}]}}],
                "defaultMode": 420}}],
            "containers": specs,
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "serviceAccount": "default",
            "nodeName": node_name,
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300},
                            {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": phase,
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": _ago(590)},
                {"type": "Initialized", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": _ago(595)},
                ready_cond,
                cr_cond,
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": created},
            ],
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": created,
            "containerStatuses": statuses,
            "qosClass": "Burstable",
        },
    }


def deployment(ns: str, name: str, image: str, generation: int = 1,
               observed_generation: Optional[int] = None, replicas: int = 2,
               updated: Optional[int] = None, available: Optional[int] = None, revision: str = "1",
               progressing_reason: str = "NewReplicaSetAvailable",
               containers: Optional[list[dict]] = None, managers: Optional[list] = None,
               extra_spec: Optional[dict] = None, total: Optional[int] = None) -> dict:
    """A Deployment with status and conditions.

    Defaults describe a finished rollout: observedGeneration = generation,
    updated = total = replicas, available = updated. ``containers`` are ``{"name","image"}``
    (default: one container "app" running ``image``). ``managers`` are managedFields
    entries, (manager, operation, time[, subresource]) or dicts. ``extra_spec`` is merged
    into ``spec`` recursively (e.g. ``{"paused": True}`` or template annotations)."""
    observed = generation if observed_generation is None else observed_generation
    updated = replicas if updated is None else updated
    available = updated if available is None else available
    total = max(replicas, updated) if total is None else total
    unavailable = max(0, total - available)
    conts = containers or [{"name": "app", "image": image}]
    template = {
        "metadata": {"creationTimestamp": None, "labels": {"app": name}},
        "spec": {"containers": [_container_spec(c["name"], c["image"]) for c in conts],
                 "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                 "dnsPolicy": "ClusterFirst", "securityContext": {},
                 "schedulerName": "default-scheduler"},
    }
    spec = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": template,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": 600,
    }
    if extra_spec:
        spec = harness.deep_merge(spec, extra_spec)
    rs_name = f"{name}-{_short(json.dumps(spec['template'], sort_keys=True), 10)}"
    now = _ago(5)
    min_available = replicas - (replicas * 25 // 100)  # maxUnavailable 25%, rounded down
    avail_ok = available >= min_available
    progressing_status = "False" if progressing_reason == "ProgressDeadlineExceeded" else "True"
    progressing_message = {
        "NewReplicaSetAvailable": f'ReplicaSet "{rs_name}" has successfully progressed.',
        "ProgressDeadlineExceeded": f'ReplicaSet "{rs_name}" has timed out progressing.',
        "NewReplicaSetCreated": f'Created new replica set "{rs_name}"',
        "FoundNewReplicaSet": f'Found new replica set "{rs_name}"',
        "DeploymentPaused": "Deployment is paused",
        "DeploymentResumed": "Deployment is resumed",
    }.get(progressing_reason, f'ReplicaSet "{rs_name}" is progressing.')
    if managers is None:
        managers = [("kubectl-client-side-apply", "Update", _ago(86400)),
                    ("kube-controller-manager", "Update", now, "status")]

    def fields(manager: str, sub: str) -> dict:
        if sub == "status":
            return {"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}},
                    "f:status": {"f:availableReplicas": {}, "f:conditions": {
                        ".": {}, 'k:{"type":"Available"}': {".": {}, "f:lastTransitionTime": {}, "f:lastUpdateTime": {},
                                                            "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}},
                        'k:{"type":"Progressing"}': {".": {}, "f:lastTransitionTime": {}, "f:lastUpdateTime": {},
                                                     "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}}},
                        "f:observedGeneration": {}, "f:readyReplicas": {}, "f:replicas": {},
                        "f:updatedReplicas": {}}}
        return {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
                "f:spec": {"f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {},
                           "f:selector": {}, "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {},
                                                                                "f:maxUnavailable": {}},
                                                            "f:type": {}},
                           "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                                          "f:spec": {"f:containers": {f'k:{{"name":"{c["name"]}"}}': {
                                              ".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {}}
                                              for c in conts}}}}}

    last_applied = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                               "metadata": {"annotations": {}, "name": name, "namespace": ns},
                               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                                        "template": {"metadata": {"labels": {"app": name}},
                                                     "spec": {"containers": [{"name": c["name"], "image": c["image"]}
                                                                             for c in conts]}}}},
                              separators=(",", ":")) + "\n"
    status: dict = {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
                    "readyReplicas": available, "availableReplicas": available,
                    "unavailableReplicas": unavailable}
    status = {k: v for k, v in status.items() if v}  # the real API omits zero counts
    status["conditions"] = [
        {"type": "Available", "status": "True" if avail_ok else "False", "lastUpdateTime": now,
         "lastTransitionTime": now,
         "reason": "MinimumReplicasAvailable" if avail_ok else "MinimumReplicasUnavailable",
         "message": "Deployment has minimum availability." if avail_ok
         else "Deployment does not have minimum availability."},
        {"type": "Progressing", "status": progressing_status, "lastUpdateTime": now,
         "lastTransitionTime": _ago(3600), "reason": progressing_reason, "message": progressing_message},
    ]
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": str(uuid.uuid4()),
            "generation": generation,
            "creationTimestamp": _ago(86400 * 30),
            "labels": {"app": name},
            "annotations": {"deployment.kubernetes.io/revision": revision,
                            "kubectl.kubernetes.io/last-applied-configuration": last_applied},
            "managedFields": _managed(managers, "apps/v1", fields),
        },
        "spec": spec,
        "status": status,
    }


def replicaset(ns: str, deployment: str, template_hash: str, revision: str, image: str,
               created: Optional[str] = None, revision_history: Optional[str] = None,
               replicas: int = 2, container: str = "app") -> dict:
    """The ReplicaSet ``<deployment>-<template_hash>`` the deployment controller makes for a
    Deployment's ``revision``: owned by it, created at ``created`` (RFC 3339, default now).
    ``revision_history`` is the annotation a rollback leaves on a ReplicaSet it brings back."""
    name = f"{deployment}-{template_hash}"
    when = created or rfc3339()
    annotations = {"deployment.kubernetes.io/desired-replicas": str(replicas),
                   "deployment.kubernetes.io/max-replicas": str(replicas + 1),
                   "deployment.kubernetes.io/revision": revision}
    if revision_history:
        annotations["deployment.kubernetes.io/revision-history"] = revision_history
    labels = {"app": deployment, "pod-template-hash": template_hash}
    return {
        "kind": "ReplicaSet",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": _stable_uid(ns, "rs", name),
            "generation": 1,
            "creationTimestamp": when,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment,
                                 "uid": _stable_uid(ns, "deployment", deployment), "controller": True,
                                 "blockOwnerDeletion": True}],
            "managedFields": _managed([("kube-controller-manager", "Update", when),
                                       ("kube-controller-manager", "Update", when, "status")], "apps/v1",
                                      lambda m, sub: {"f:status": {"f:replicas": {}}} if sub
                                      else {"f:metadata": {"f:annotations": {}}, "f:spec": {"f:replicas": {}}}),
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"creationTimestamp": None, "labels": labels},
                         "spec": {"containers": [_container_spec(container, image)],
                                  "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                                  "dnsPolicy": "ClusterFirst", "securityContext": {},
                                  "schedulerName": "default-scheduler"}},
        },
        "status": {"replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": replicas,
                   "availableReplicas": replicas, "observedGeneration": 1},
    }


def configmap(ns: str, name: str, data: dict, manager: str = "kubectl-edit",
              time: Optional[str] = None, binary_data: Optional[dict] = None,
              labels: Optional[dict] = None) -> dict:
    """A ConfigMap whose newest managedFields entry is ``manager`` at ``time`` (RFC 3339)."""
    when = time or rfc3339()
    entries = []
    if manager != "kubectl-create":
        entries.append(("kubectl-create", "Update", _shift(when, -86400)))
    entries.append((manager, "Apply" if manager == "kubectl" else "Update", when))

    def fields(_manager: str, _sub: str) -> dict:
        return {"f:data": {".": {}, **{f"f:{k}": {} for k in data}}}

    obj: dict = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": str(uuid.uuid4()),
            "creationTimestamp": _shift(when, -86400),
            "managedFields": _managed(entries, "v1", fields),
        },
        "data": dict(data),
    }
    if labels:
        obj["metadata"]["labels"] = dict(labels)
    if binary_data:
        obj["binaryData"] = {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v
                             for k, v in binary_data.items()}
    return obj


_KIND_API_VERSION = {"Pod": "v1", "Node": "v1", "ConfigMap": "v1", "Service": "v1",
                     "Deployment": "apps/v1", "ReplicaSet": "apps/v1", "StatefulSet": "apps/v1",
                     "DaemonSet": "apps/v1", "Job": "batch/v1", "CronJob": "batch/v1"}


def warning_event(ns: str, name: str, reason: str, message: str, involved_kind: str = "Pod",
                  involved_name: Optional[str] = None, count: int = 1,
                  last_timestamp: Optional[str] = None, new_api: bool = False,
                  type: str = "Warning", component: str = "kubelet",
                  host: str = DEFAULT_NODE) -> dict:
    """A core/v1 Event named ``name``; ``involved_name`` defaults to ``name`` without its
    ``.<hex>`` suffix. ``new_api``: written through events.k8s.io, so first/lastTimestamp
    are null and eventTime/series (count > 1) carry the times."""
    inv = involved_name or (name.rsplit(".", 1)[0] if "." in name else name)
    last = last_timestamp or rfc3339()
    first = _shift(last, -30 * (count - 1))
    involved: dict = {"kind": involved_kind, "namespace": ns, "name": inv,
                      "uid": _stable_uid(ns, involved_kind, inv),
                      "apiVersion": _KIND_API_VERSION.get(involved_kind, "v1"),
                      "resourceVersion": str(10000 + int(_hex(inv, 4), 16) % 80000)}
    if involved_kind == "Pod" and component == "kubelet":
        involved["fieldPath"] = "spec.containers{app}"
    obj: dict = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()),
                     "creationTimestamp": first},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
    }
    if not new_api:
        obj.update({
            "source": {"component": component, "host": host} if component == "kubelet"
            else {"component": component},
            "firstTimestamp": first,
            "lastTimestamp": last,
            "count": count,
            "type": type,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host if component == "kubelet" else "",
        })
    else:
        micro = last[:19] + ".%06dZ" % (int(_hex(name, 5), 16) % 1_000_000) if last.endswith("Z") else last
        obj.update({
            "source": {},
            "firstTimestamp": None,
            "lastTimestamp": None,
            "type": type,
            "eventTime": micro if count <= 1 else first[:19] + ".000000Z",
            "action": {"FailedScheduling": "Scheduling"}.get(reason, "Reconciling"),
            "reportingComponent": component,
            "reportingInstance": f"{component}-{_short(component, 8)}",
        })
        if count > 1:
            obj["series"] = {"count": count, "lastObservedTime": micro}
    return obj


def node(name: str, kubelet_version: str, unschedulable: bool = False,
         created: Optional[str] = None) -> dict:
    """A GKE-like Node; ``unschedulable`` adds the cordon taint, as ``kubectl cordon`` does.
    ``created`` is its creationTimestamp (RFC 3339; default three days ago)."""
    pool = "default-pool"
    h = hashlib.sha256(name.encode()).digest()
    internal = f"10.128.0.{h[0] % 250 + 2}"
    spec: dict = {"podCIDR": f"10.4.{h[1]}.0/24", "podCIDRs": [f"10.4.{h[1]}.0/24"],
                  "providerID": f"gce://darklang-prod/us-central1-a/{name}"}
    if unschedulable:
        spec["unschedulable"] = True
        spec["taints"] = [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule",
                           "timeAdded": _ago(10)}]
    conds = [
        {"type": t, "status": "False", "lastHeartbeatTime": _ago(20), "lastTransitionTime": _ago(86400),
         "reason": r, "message": msg}
        for t, r, msg in (("FrequentContainerdRestart", "NoFrequentContainerdRestart", "containerd is functioning properly"),
                          ("KernelDeadlock", "KernelHasNoDeadlock", "kernel has no deadlock"),
                          ("NetworkUnavailable", "RouteCreated", "NodeController create implicit route"),
                          ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                          ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                          ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"))
    ]
    conds.append({"type": "Ready", "status": "True", "lastHeartbeatTime": _ago(20),
                  "lastTransitionTime": _ago(86400), "reason": "KubeletReady",
                  "message": "kubelet is posting ready status. AppArmor enabled"})
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": str(uuid.uuid4()),
            "creationTimestamp": created or _ago(86400 * 3),
            "labels": {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                       "cloud.google.com/gke-nodepool": pool, "cloud.google.com/gke-os-distribution": "cos",
                       "cloud.google.com/machine-family": "e2", "kubernetes.io/arch": "amd64",
                       "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "node.kubernetes.io/instance-type": "e2-standard-4",
                       "topology.kubernetes.io/region": "us-central1",
                       "topology.kubernetes.io/zone": "us-central1-a"},
            "annotations": {"container.googleapis.com/instance_id": str(int(_hex(name, 15), 16)),
                            "node.alpha.kubernetes.io/ttl": "0",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
            "managedFields": _managed([("kubelet", "Update", _ago(86400 * 3)),
                                       ("kubelet", "Update", _ago(20), "status")], "v1",
                                      lambda m, s: {"f:status": {"f:conditions": {}}} if s
                                      else {"f:metadata": {"f:labels": {}}}),
        },
        "spec": spec,
        "status": {
            "capacity": {"cpu": "4", "ephemeral-storage": "98831908Ki", "memory": "16393300Ki", "pods": "110"},
            "allocatable": {"cpu": "3920m", "ephemeral-storage": "47060071478", "memory": "13201492Ki",
                            "pods": "110"},
            "conditions": conds,
            "addresses": [{"type": "InternalIP", "address": internal},
                          {"type": "ExternalIP", "address": f"34.72.{h[2]}.{h[3] % 254 + 1}"},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": _hex(name + "machine", 32),
                "systemUUID": _stable_uid(name, "system"),
                "bootID": _stable_uid(name, "boot", kubelet_version),
                "kernelVersion": "6.1.75+",
                "osImage": "Container-Optimized OS from Google",
                "containerRuntimeVersion": "containerd://1.7.13",
                "kubeletVersion": kubelet_version,
                "kubeProxyVersion": kubelet_version,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [
                {"names": [f"{DEFAULT_IMAGE.rsplit(':', 1)[0]}@sha256:{_hex('img')}", DEFAULT_IMAGE],
                 "sizeBytes": 87_654_321},
                {"names": ["gke.gcr.io/gke-metrics-agent@sha256:" + _hex("gma"),
                           "gke.gcr.io/gke-metrics-agent:1.10.3-gke.3"], "sizeBytes": 43_521_987},
                {"names": ["registry.k8s.io/pause@sha256:" + _hex("pause"), "registry.k8s.io/pause:3.9"],
                 "sizeBytes": 268_051},
            ],
        },
    }


def certificate(ns: str, name: str, dns_names: Iterable[str] = ("example.com",),
                not_after: Optional[str] = None, ready: Optional[bool] = True,
                reason: Optional[str] = None, message: Optional[str] = None,
                ready_since: Optional[str] = None, secret_name: Optional[str] = None,
                issuer: tuple[str, str] = ("ClusterIssuer", "letsencrypt-prod"),
                status: bool = True, created: Optional[str] = None) -> dict:
    """A cert-manager ``Certificate`` (cert-manager.io/v1) as cert-manager leaves it.

    ``not_after`` (RFC 3339; default 60 days from now) is written as given, so a test can
    put anything there. ``ready``: True (reason ``Ready``), False (reason ``Expired`` when
    ``not_after`` has passed, else ``Failed``), or None for no Ready condition (an
    ``Issuing`` one only, as before the first issuance: no notAfter either).
    ``reason``/``message`` override the Ready condition's; ``ready_since`` is its
    lastTransitionTime (default: 5 minutes ago). ``status=False`` leaves the status out
    (a Certificate cert-manager has not reconciled yet)."""
    names = list(dns_names)
    secret = secret_name or f"{name}-tls"
    created = created or _ago(86400 * 30)
    meta = {
        "name": name,
        "namespace": ns,
        "uid": _stable_uid(ns, "certificate", name),
        "generation": 1,
        "creationTimestamp": created,
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "managedFields": _managed(
            [("helm", "Update", created),
             ("cert-manager-certificates-readiness", "Update", _ago(300), "status")],
            "cert-manager.io/v1",
            lambda m, s: {"f:status": {"f:conditions": {}, "f:notAfter": {}, "f:notBefore": {},
                                       "f:renewalTime": {}}} if s
            else {"f:spec": {"f:dnsNames": {}, "f:issuerRef": {}, "f:secretName": {}}}),
    }
    spec: dict = {
        "dnsNames": names,
        "issuerRef": {"group": "cert-manager.io", "kind": issuer[0], "name": issuer[1]},
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "secretName": secret,
        "usages": ["digital signature", "key encipherment"],
        "duration": "2160h0m0s",
        "renewBefore": "720h0m0s",
    }
    obj: dict = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": meta, "spec": spec}
    if not status:
        return obj
    since = ready_since or _ago(300)
    if ready is None:
        obj["status"] = {"conditions": [
            {"type": "Issuing", "status": "True", "reason": "DoesNotExist",
             "message": "Issuing certificate as Secret does not exist", "lastTransitionTime": since,
             "observedGeneration": 1}]}
        return obj
    after = not_after or rfc3339(time.time() + 86400 * 60)
    try:
        expired = datetime.fromisoformat(after.replace("Z", "+00:00")) < datetime.now(timezone.utc)
    except ValueError:
        expired = False
    if ready:
        cond_reason, cond_message = "Ready", "Certificate is up to date and has not expired"
    elif expired:
        cond_reason, cond_message = "Expired", f"Certificate expired on {after}"
    else:
        cond_reason, cond_message = "Failed", ("The certificate request has failed to complete and "
                                               "will be retried: Failed to wait for order resource "
                                               f'"{name}-1-1234567890" to become ready')
    obj["status"] = {
        "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                        "reason": reason or cond_reason, "message": message or cond_message,
                        "lastTransitionTime": since, "observedGeneration": 1}],
        "notAfter": after,
        "notBefore": _shift(after, -86400 * 90),
        "renewalTime": _shift(after, -86400 * 30),
        "revision": 1,
    }
    return obj
