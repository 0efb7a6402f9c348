"""A fake PagerDuty REST API v2 (api-facts §1.2), for the ``pagerduty_api`` source.

Implements, on ``fake_https`` (HTTPS with ``harness.test_pki()``):

* ``GET /incidents``: ``statuses[]`` (repeated; OR'd), ``service_ids[]``, ``date_range=all``
  (without it only incidents created in the last 30 days are listed, as PagerDuty's
  default range does), ``sort_by`` (``created_at`` or ``incident_number``, ``:asc``/``:desc``),
  ``limit`` (default 25, at most 100), ``offset``. Classic pagination: ``offset + limit``
  over 10000 is a 400 (PagerDuty/developer-docs 09-Pagination.md). Answers ``{"incidents",
  "limit", "offset", "more", "total": null}``.
* ``GET /incidents/{id}``: ``{"incident": {...}}``, or 404.
* ``GET /incidents/{id}/alerts``: ``{"alerts": [...], "limit", "offset", "more"}``.
* ``GET /incidents/{id}/notes``: ``{"notes": [{"id", "user", "channel", "content", "created_at"}]}``.
* ``GET /log_entries``: the log the fake's changes leave (``trigger_log_entry`` and a
  ``notify_log_entry`` from ``add``, ``acknowledge``/``unacknowledge``/``resolve_log_entry``
  from ``set_status``, ``annotate_log_entry`` from ``annotate``), newest first, ``since``
  (inclusive) and ``until`` (exclusive; ISO 8601, a bad one is a 400), ``is_overview=true``
  (drops ``notify_log_entry``), ``include[]=incidents`` (the whole incident instead of a
  reference), ``limit``/``offset`` as ``/incidents`` (the same 10000 bound). Answers
  ``{"log_entries", "limit", "offset", "more", "total": null}``.
* ``GET /maintenance_windows``: the windows ``add_maintenance_window`` made, ``filter``
  (``past``, ``future``, ``ongoing``, ``open`` = ongoing or future, ``all``; absent: all;
  another value is a 400), ``service_ids[]``, ``query`` (in the description), ``limit``/
  ``offset`` as ``/incidents``; ordered by start_time. Each window is REST-shaped: ``id``,
  ``type``, ``summary``, ``self``, ``html_url``, ``sequence_number``, ``start_time``,
  ``end_time``, ``description``, ``created_by``, ``services[]`` and ``teams[]`` as
  references (``id``, ``type``, ``summary``, ``self``, ``html_url``). Answers
  ``{"maintenance_windows", "limit", "offset", "more", "total": null}``.
* Every request needs ``Authorization: Token token=<token>`` (else 401, code 2006). Every
  answer carries ``ratelimit-limit``/``ratelimit-remaining``/``ratelimit-reset``; with
  ``rate_limit`` set, requests past it in one window get 429 (code 2020).
* Errors use ``{"error": {"message", "code"}}``.

Incidents are REST-shaped dicts (``incident_number``, ``assignments[].assignee``,
``last_status_change_at``, ``resolved_at``), made from ``pagerduty.Incident`` by ``add``;
``set_status`` changes one as PagerDuty would (no webhook is sent: that is the point).
Faults (429, 5xx, slow, dropped) come from ``fake_https`` (``fault_answer``, ``fault_delay``,
``fault_drop``). Standard library only.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone
from typing import Optional

import fake_https
import pagerduty

OFFSET_BOUND = 10000
MAX_LIMIT = 100


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def error(message: str, code: int) -> dict:
    return {"error": {"message": message, "code": code}}


class FakePagerDuty(fake_https.FakeHTTPS):
    name = "fake PagerDuty"
    thread_name = "fake-pagerduty"
    server_header = "fake-pagerduty"

    def __init__(self, ssl_context=None, token: str = "pd-api-token"):
        super().__init__(ssl_context if ssl_context is not None else fake_https.server_context())
        self.token = token
        self.incidents: dict[str, dict] = {}
        self.alerts: dict[str, list] = {}
        self.notes: dict[str, list] = {}
        self.log: list[dict] = []
        self.maintenance_windows: list[dict] = []
        self.rate_limit: Optional[int] = None  # requests per window; None: unlimited
        self.rate_window = 60.0
        self._window_start = time.monotonic()
        self._window_count = 0
        self._data_lock = threading.Lock()

    # ---------------------------------------------------------------- data

    def add(self, inc: pagerduty.Incident, status: str = "triggered", *,
            created: Optional[datetime] = None, alert_summary: Optional[str] = None,
            details: Optional[dict] = None, acknowledger: str = "Ada Lovelace") -> dict:
        created = created or datetime.now(timezone.utc)
        rest = {
            "id": inc.id, "type": "incident", "summary": f"[#{inc.number}] {inc.title}",
            "self": inc.self_url, "html_url": inc.html_url,
            "incident_number": inc.number, "title": inc.title,
            "created_at": iso(created), "updated_at": iso(created),
            "status": status, "incident_key": inc.id.lower(),
            "service": {"id": inc.service_id, "type": "service_reference", "summary": inc.service_name},
            "assignments": [{"at": iso(created), "assignee": {"id": "PTUXL6G", "type": "user_reference",
                                                              "summary": "Ada Lovelace"}}],
            "last_status_change_at": iso(created),
            "resolved_at": None,
            "priority": None if inc.priority is None else {"id": "PSO75BM", "type": "priority_reference",
                                                           "summary": inc.priority},
            "urgency": inc.urgency,
            "alert_counts": {"all": 1, "triggered": 1, "resolved": 0},
            "acknowledgements": [],
            "resolve_reason": None,
        }
        with self._data_lock:
            self.incidents[inc.id] = rest
            self._record("trigger_log_entry", inc.id, created, agent=None)
            self._record("notify_log_entry", inc.id, created, agent=None)
            if alert_summary is not None:
                self.alerts[inc.id] = [{
                    "id": "A" + inc.id, "type": "alert", "summary": alert_summary, "status": "triggered",
                    "created_at": iso(created), "alert_key": inc.id.lower(),
                    "body": {"type": "alert_body", "contexts": [], "details": details or {}},
                }]
        if status != "triggered":
            self.set_status(inc.id, status, at=created, acknowledger=acknowledger)
        return rest

    def set_status(self, incident_id: str, status: str, *, at: Optional[datetime] = None,
                   acknowledger: str = "Ada Lovelace") -> None:
        at = at or datetime.now(timezone.utc)
        with self._data_lock:
            rest = self.incidents[incident_id]
            kind = {"acknowledged": "acknowledge_log_entry", "resolved": "resolve_log_entry"}.get(status)
            if status == "triggered" and rest["status"] == "acknowledged":
                kind = "unacknowledge_log_entry"
            if kind is not None:
                self._record(kind, incident_id, at, agent=acknowledger)
            rest["status"] = status
            rest["last_status_change_at"] = iso(at)
            rest["updated_at"] = iso(at)
            rest["resolved_at"] = iso(at) if status == "resolved" else None
            rest["acknowledgements"] = ([{"at": iso(at), "acknowledger": {
                "id": "PACK", "type": "user_reference", "summary": acknowledger}}]
                if status == "acknowledged" else [])

    def annotate(self, incident_id: str, content: str, *, at: Optional[datetime] = None,
                 user: str = "Ada Lovelace", text_in_entry: bool = True) -> dict:
        """A note, as added in PagerDuty's web UI: in the incident's notes and in the log
        (``channel.summary`` holds the text unless ``text_in_entry`` is false; then only the
        notes have it). No webhook is sent. Returns the log entry."""
        at = at or datetime.now(timezone.utc)
        with self._data_lock:
            note_id = f"N{len(self.log):06d}"
            user_ref = {"id": "PUSER1", "type": "user_reference", "summary": user}
            self.notes.setdefault(incident_id, []).append(
                {"id": note_id, "user": user_ref, "channel": {"summary": "The PagerDuty website"},
                 "content": content, "created_at": iso(at)})
            channel = {"type": "note", "summary": content} if text_in_entry else {"type": "web_ui"}
            return self._record("annotate_log_entry", incident_id, at, agent=user, channel=channel)

    def _record(self, kind: str, incident_id: str, at: datetime, *, agent: Optional[str],
                channel: Optional[dict] = None) -> dict:
        """Appends a log entry (the caller holds the data lock)."""
        entry = {
            "id": f"R{len(self.log):06d}", "type": kind, "summary": kind.replace("_log_entry", ""),
            "created_at": iso(at),
            "agent": None if agent is None else {"id": "PUSER1", "type": "user_reference", "summary": agent},
            "channel": channel or {"type": "auto" if agent is None else "web_ui"},
            "incident": {"id": incident_id, "type": "incident_reference"},
        }
        self.log.append(entry)
        return entry

    def add_maintenance_window(self, id: str, start: datetime, end: datetime, description: str = "",
                               services: tuple = (("PDB0001", "Postgres"),)) -> dict:
        """A maintenance window on ``services`` ((id, name) pairs) from ``start`` to ``end``,
        as PagerDuty keeps it (a start in the past is when it began)."""
        window = {
            "id": id, "type": "maintenance_window", "summary": description,
            "self": f"https://api.pagerduty.com/maintenance_windows/{id}",
            "html_url": f"https://acme.pagerduty.com/maintenance_windows/{id}",
            "sequence_number": len(self.maintenance_windows) + 1,
            "start_time": iso(start), "end_time": iso(end), "description": description,
            "created_by": {"id": "PUSER1", "type": "user_reference", "summary": "Ada Lovelace"},
            "services": [{"id": sid, "type": "service_reference", "summary": name,
                          "self": f"https://api.pagerduty.com/services/{sid}",
                          "html_url": f"https://acme.pagerduty.com/service-directory/{sid}"}
                         for sid, name in services],
            "teams": [],
        }
        with self._data_lock:
            self.maintenance_windows.append(window)
        return window

    def add_many(self, n: int, prefix: str = "PB") -> list[str]:
        """`n` triggered incidents (ids prefix + number), created a second apart."""
        base = datetime.now(timezone.utc) - timedelta(seconds=n)
        ids = []
        for i in range(n):
            inc = pagerduty.Incident(id=f"{prefix}{i:05d}", number=i + 1)
            self.add(inc, created=base + timedelta(seconds=i))
            ids.append(inc.id)
        return ids

    # ---------------------------------------------------------------- serving

    def _limits(self) -> tuple[bool, dict]:
        """Counts this request against the window; (allowed, the ratelimit-* headers)."""
        with self._data_lock:
            now = time.monotonic()
            if now - self._window_start >= self.rate_window:
                self._window_start, self._window_count = now, 0
            self._window_count += 1
            limit = self.rate_limit if self.rate_limit is not None else 960
            remaining = max(0, limit - self._window_count)
            reset = max(1, int(self.rate_window - (now - self._window_start) + 0.999))
            allowed = self.rate_limit is None or self._window_count <= self.rate_limit
        return allowed, {"ratelimit-limit": str(limit), "ratelimit-remaining": str(remaining),
                         "ratelimit-reset": str(reset)}

    def _dispatch(self, h, rec):
        if rec.authorization != f"Token token={self.token}":
            self._send_json(h, rec, 401, error("Invalid API key", 2006))
            return
        allowed, headers = self._limits()
        if not allowed:
            self._send_json(h, rec, 429, error("Rate Limit Exceeded", 2020), headers)
            return
        if rec.method != "GET":
            self._send_json(h, rec, 405, error("Method not allowed", 2000), headers)
            return
        parts = [urllib.parse.unquote(p) for p in rec.path.strip("/").split("/")]
        if parts == ["incidents"]:
            self._list(h, rec, headers)
        elif len(parts) == 2 and parts[0] == "incidents":
            with self._data_lock:
                inc = self.incidents.get(parts[1])
                body = None if inc is None else {"incident": dict(inc)}
            if body is None:
                self._send_json(h, rec, 404, error("Not Found", 2100), headers)
            else:
                self._send_json(h, rec, 200, body, headers)
        elif parts == ["log_entries"]:
            self._log_entries(h, rec, headers)
        elif parts == ["maintenance_windows"]:
            self._maintenance_windows(h, rec, headers)
        elif len(parts) == 3 and parts[0] == "incidents" and parts[2] == "notes":
            with self._data_lock:
                known = parts[1] in self.incidents
                notes = [dict(n) for n in self.notes.get(parts[1], [])]
            if not known:
                self._send_json(h, rec, 404, error("Not Found", 2100), headers)
            else:
                self._send_json(h, rec, 200, {"notes": notes}, headers)
        elif len(parts) == 3 and parts[0] == "incidents" and parts[2] == "alerts":
            with self._data_lock:
                known = parts[1] in self.incidents
                alerts = list(self.alerts.get(parts[1], []))
            if not known:
                self._send_json(h, rec, 404, error("Not Found", 2100), headers)
                return
            limit, offset = self._paging(rec, h, headers)
            if limit is None:
                return
            self._send_json(h, rec, 200, {"alerts": alerts[offset:offset + limit], "limit": limit,
                                          "offset": offset, "more": offset + limit < len(alerts)}, headers)
        else:
            self._send_json(h, rec, 404, error("Not Found", 2100), headers)

    def _paging(self, rec, h, headers):
        try:
            limit = min(int(rec.query.get("limit", "25")), MAX_LIMIT)
            offset = int(rec.query.get("offset", "0"))
        except ValueError:
            self._send_json(h, rec, 400, error("Invalid Input Provided", 2001), headers)
            return None, None
        if limit < 1 or offset < 0 or offset + limit > OFFSET_BOUND:
            self._send_json(h, rec, 400, error(
                "Offset must be less than 10000 when using classic pagination", 2001), headers)
            return None, None
        return limit, offset

    def _list(self, h, rec, headers):
        limit, offset = self._paging(rec, h, headers)
        if limit is None:
            return
        statuses = {v for k, v in rec.query_list if k == "statuses[]"}
        services = {v for k, v in rec.query_list if k == "service_ids[]"}
        everything = rec.query.get("date_range") == "all"
        horizon = iso(datetime.now(timezone.utc) - timedelta(days=30))
        sort = rec.query.get("sort_by", "created_at:asc")
        field_name, _, direction = sort.partition(":")
        if field_name not in ("created_at", "incident_number"):
            self._send_json(h, rec, 400, error("Invalid Input Provided", 2001), headers)
            return
        with self._data_lock:
            rows = [dict(i) for i in self.incidents.values()
                    if (not statuses or i["status"] in statuses)
                    and (not services or i["service"]["id"] in services)
                    and (everything or i["created_at"] >= horizon)]
        rows.sort(key=lambda i: (i[field_name], i["id"]), reverse=direction == "desc")
        self._send_json(h, rec, 200, {"incidents": rows[offset:offset + limit], "limit": limit,
                                      "offset": offset, "more": offset + limit < len(rows),
                                      "total": None}, headers)

    def _maintenance_windows(self, h, rec, headers):
        limit, offset = self._paging(rec, h, headers)
        if limit is None:
            return
        which = rec.query.get("filter", "all")
        if which not in ("past", "future", "ongoing", "open", "all"):
            self._send_json(h, rec, 400, error("Invalid Input Provided", 2001), headers)
            return
        services = {v for k, v in rec.query_list if k == "service_ids[]"}
        text = rec.query.get("query", "").lower()
        now = datetime.now(timezone.utc)

        def state(w: dict) -> str:
            start = datetime.fromisoformat(w["start_time"])
            end = datetime.fromisoformat(w["end_time"])
            return "past" if end <= now else "future" if start > now else "ongoing"

        with self._data_lock:
            rows = [dict(w) for w in self.maintenance_windows
                    if (which == "all" or state(w) == which or (which == "open" and state(w) != "past"))
                    and (not services or any(s["id"] in services for s in w["services"]))
                    and text in w["description"].lower()]
        rows.sort(key=lambda w: (w["start_time"], w["id"]))
        self._send_json(h, rec, 200, {"maintenance_windows": rows[offset:offset + limit], "limit": limit,
                                      "offset": offset, "more": offset + limit < len(rows),
                                      "total": None}, headers)

    def _log_entries(self, h, rec, headers):
        limit, offset = self._paging(rec, h, headers)
        if limit is None:
            return
        try:
            since = _when(rec.query.get("since"), datetime.now(timezone.utc) - timedelta(days=30))
            until = _when(rec.query.get("until"), datetime.now(timezone.utc) + timedelta(days=1))
        except ValueError:
            self._send_json(h, rec, 400, error("Invalid Input Provided", 2001), headers)
            return
        overview = rec.query.get("is_overview") == "true"
        with_incidents = ("include[]", "incidents") in rec.query_list
        with self._data_lock:
            rows = []
            for e in self.log:
                at = datetime.fromisoformat(e["created_at"])
                if not since <= at < until or (overview and e["type"] == "notify_log_entry"):
                    continue
                row = dict(e)
                if with_incidents and e["incident"]["id"] in self.incidents:
                    row["incident"] = dict(self.incidents[e["incident"]["id"]])
                rows.append(row)
        rows.sort(key=lambda r: r["created_at"], reverse=True)  # newest first (stable)
        self._send_json(h, rec, 200, {"log_entries": rows[offset:offset + limit], "limit": limit,
                                      "offset": offset, "more": offset + limit < len(rows),
                                      "total": None}, headers)


def _when(text: Optional[str], default: datetime) -> datetime:
    """An ISO 8601 time of a query ("2026-03-05T15:00:00.000Z"); ValueError when not one."""
    if text is None:
        return default
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        raise ValueError(text)
    return t
