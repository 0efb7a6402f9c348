"""A fake Discord REST API (execute webhook + webhook message edits) over HTTPS.

Implements the subset of Discord described in /work/shared/api-facts.md section 2:

* ``POST /api/v10/webhooks/{id}/{token}?wait=true`` -> 200 + message object
* ``PATCH|GET|DELETE /api/v10/webhooks/{id}/{token}/messages/{message_id}``
* unknown webhook id/token -> 404 ``{"message":"Unknown Webhook","code":10015}``
* body validation (Content-Type, JSON, the section 2.5 limits, ``allowed_mentions``)
  -> 400 with the 50035 "Invalid Form Body" error shape; every such rejection is
  also recorded in ``violations`` because the daemon must never trigger one.

Behaviour can be scripted per request (``ok``, ``rate_limit``, ``server_error``,
``slow``, ``drop``, ``reset``, ``rate_limit_headers``) and an outage switch makes every
request fail until it is turned off. Every request is recorded with its arrival
time (``time.monotonic()``, the same clock the tests use). The server, the request log,
``wait_until`` and the generic faults (``down``, ``fault_*``) come from ``fake_https``.
"""

from __future__ import annotations

import collections
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import fake_https

_Handler = fake_https.Handler

DISCORD_EPOCH_MS = 1420070400000

# Section 2.5 limits (inclusive; leading/trailing whitespace trimmed before counting).
LIMIT_CONTENT = 2000
LIMIT_EMBEDS = 10
LIMIT_TITLE = 256
LIMIT_DESCRIPTION = 4096
LIMIT_FIELDS = 25
LIMIT_FIELD_NAME = 256
LIMIT_FIELD_VALUE = 1024
LIMIT_FOOTER = 2048
LIMIT_AUTHOR_NAME = 256
LIMIT_EMBED_TOTAL = 6000

_WEBHOOK_RE = re.compile(r"^/api/v10/webhooks/(?P<id>[^/]+)/(?P<token>[^/]+)(?P<rest>/.*)?$")
_MESSAGE_RE = re.compile(r"^/messages/(?P<mid>[^/]+)$")


def text_length(s: str) -> int:
    """Length as Discord might count it; UTF-16 code units is the safe upper bound."""
    return len(s.strip().encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- actions


@dataclass
class Action:
    kind: str  # ok | rate_limit | server_error | slow | drop | reset | rate_limit_headers
    retry_after: float = 0.0
    is_global: bool = False
    scope: str = "user"
    status: int = 500
    seconds: float = 0.0
    remaining: int = 0
    reset_after: float = 0.0


def ok() -> Action:
    return Action("ok")


def rate_limit(retry_after: float, global_: bool = False, scope: Optional[str] = None) -> Action:
    """429 with Discord's body and headers (section 2.8)."""
    return Action("rate_limit", retry_after=retry_after, is_global=global_,
                  scope=scope or ("global" if global_ else "user"))


def server_error(status: int = 500) -> Action:
    return Action("server_error", status=status)


def slow(seconds: float) -> Action:
    """Wait ``seconds`` after reading the request, then answer normally (200)."""
    return Action("slow", seconds=seconds)


def drop() -> Action:
    """Read the request, then close the connection without answering (no message created)."""
    return Action("drop")


def reset() -> Action:
    """Like drop, but with a TCP RST (SO_LINGER 0)."""
    return Action("reset")


def rate_limit_headers(remaining: int = 0, reset_after: float = 1.0) -> Action:
    """A normal 200 whose X-RateLimit-Remaining/Reset-After say the bucket is exhausted."""
    return Action("rate_limit_headers", remaining=remaining, reset_after=reset_after)


# --------------------------------------------------------------------------- records


@dataclass
class Request(fake_https.Request):
    """``fake_https.Request`` (method, path, query, headers, time, status, responded_at...)
    where ``body`` is the parsed JSON (None when not JSON) and ``response`` the JSON
    payload answered (None: no body, or the connection was dropped)."""
    response: Any = None
    raw_body: bytes = b""
    webhook_id: Optional[str] = None
    token: Optional[str] = None
    action: str = "ok"


@dataclass
class Message:
    id: str
    webhook_id: str
    body: dict  # the request body that created it
    time: float
    edits: list = field(default_factory=list)  # bodies of successful PATCHes
    deleted: bool = False

    @property
    def embeds(self) -> list:
        """The current embeds (after edits)."""
        embeds = self.body.get("embeds") or []
        for e in self.edits:
            if "embeds" in e and e["embeds"] is not None:
                embeds = e["embeds"]
        return embeds


# --------------------------------------------------------------------------- server


class FakeDiscord(fake_https.FakeHTTPS):
    """Start with ``start()``; ``url()`` is a webhook URL the daemon can post to."""

    name = "fake Discord"
    thread_name = "fake-discord"
    server_header = "FakeDiscord/1.0"
    tcp_nodelay = False
    request_class = Request

    def __init__(self, certfile: str, keyfile: str):
        super().__init__(fake_https.server_context(certfile, keyfile, alpn=None))
        self._webhooks: dict[str, str] = {}  # id -> token
        self._script: collections.deque[Action] = collections.deque()
        self._outage: Optional[str] = None
        self._snowflake_seq = 0
        self.requests: list[Request] = []
        self.messages: list[Message] = []
        self.violations: list[str] = []
        self.default_remaining = 4
        self.default_reset_after = 2.0

    @property
    def base_url(self) -> str:
        """The API root, for the deprecated ``discord.base_url``."""
        return f"https://127.0.0.1:{self.port}/api/v10"

    def url(self, webhook_id: str, token: str) -> str:
        """A webhook URL naming this server's host and port, as a proxy's would."""
        return f"https://127.0.0.1:{self.port}/api/webhooks/{webhook_id}/{token}"

    # ---------------------------------------------------------------- configuration

    def add_webhook(self, webhook_id: str, token: str) -> str:
        """Registers a webhook; returns the URL as Discord's UI shows it."""
        with self._lock:
            self._webhooks[webhook_id] = token
        return f"https://discord.com/api/webhooks/{webhook_id}/{token}"

    def remove_webhook(self, webhook_id: str) -> None:
        with self._lock:
            self._webhooks.pop(webhook_id, None)

    def script(self, *actions: Action) -> None:
        """Queues behaviours for the next requests (one action per request, then ``ok``)."""
        with self._lock:
            self._script.extend(actions)

    def clear_script(self) -> None:
        with self._lock:
            self._script.clear()

    def pending_script(self) -> int:
        with self._lock:
            return len(self._script)

    def set_outage(self, mode: Optional[str]) -> None:
        """``"503"`` (every request gets 503), ``"drop"`` (connections closed unanswered),
        or ``None`` to end the outage."""
        assert mode in (None, "503", "drop"), mode
        with self._lock:
            self._outage = mode

    def reset_state(self) -> None:
        """Ends any outage and clears the script (records are kept)."""
        with self._lock:
            self._outage = None
            self._script.clear()

    # ---------------------------------------------------------------- queries

    def snapshot_messages(self, webhook_id: Optional[str] = None) -> list[Message]:
        with self._lock:
            return [m for m in self.messages
                    if (webhook_id is None or m.webhook_id == webhook_id) and not m.deleted]

    def embeds(self, webhook_id: Optional[str] = None) -> list[tuple[Message, dict]]:
        """Every embed of every created message, in creation order."""
        out = []
        for m in self.snapshot_messages(webhook_id):
            for e in m.embeds:
                out.append((m, e))
        return out

    def execute_requests(self, webhook_id: Optional[str] = None) -> list[Request]:
        return [r for r in self.snapshot_requests()
                if r.method == "POST" and r.webhook_id is not None
                and (webhook_id is None or r.webhook_id == webhook_id)
                and "/messages/" not in r.path]

    # ---------------------------------------------------------------- internals

    def _snowflake(self) -> str:
        with self._lock:
            self._snowflake_seq = (self._snowflake_seq + 1) & 0xFFF
            seq = self._snowflake_seq
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (1 << 17) | (1 << 12) | seq)

    def _next_action(self) -> Action:
        with self._lock:
            if self._outage == "503":
                return Action("server_error", status=503)
            if self._outage == "drop":
                return Action("drop")
            if self._script:
                return self._script.popleft()
            return Action("ok")

    def _rl_headers(self, remaining: Optional[int] = None,
                    reset_after: Optional[float] = None) -> dict:
        remaining = self.default_remaining if remaining is None else remaining
        reset_after = self.default_reset_after if reset_after is None else reset_after
        return {
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": "fakebucket0123456789abcdef",
        }

    def _reply(self, h: _Handler, rec: Request, status: int, payload: Any,
               headers: Optional[dict] = None) -> None:
        """Answers ``payload`` as JSON (None: no body) and records it as ``rec.response``."""
        data = b"" if payload is None else json.dumps(payload).encode()
        self._send(h, rec, status, data, None if payload is None else "application/json",
                   headers, response=payload)

    def _form_error(self, h: _Handler, rec: Request, errors: dict, why: str) -> None:
        with self._lock:
            self.violations.append(f"{rec.method} {self._redact(rec.path)}: {why}")
        self._reply(h, rec, 400, {"code": 50035, "message": "Invalid Form Body", "errors": errors})

    @staticmethod
    def _err(field_path: str, code: str, message: str) -> dict:
        # {"embeds": {"0": {"title": {"_errors": [...]}}}} style nesting.
        node: dict = {"_errors": [{"code": code, "message": message}]}
        for part in reversed(field_path.split(".")):
            node = {part: node}
        return node

    def _validate_message_body(self, body: Any, creating: bool) -> Optional[tuple[dict, str]]:
        """Returns (errors, description) for the first problem, or None."""
        if not isinstance(body, dict):
            return {"_errors": [{"code": "DICT_TYPE_CONVERT", "message": "Only dictionaries may be used in a DictType"}]}, "body is not a JSON object"
        content = body.get("content")
        if content is not None:
            if not isinstance(content, str):
                return self._err("content", "STRING_TYPE_CONVERT", "Could not interpret value as string."), "content is not a string"
            if text_length(content) > LIMIT_CONTENT:
                return self._err("content", "BASE_TYPE_MAX_LENGTH", f"Must be {LIMIT_CONTENT} or fewer in length."), f"content is {text_length(content)} long"
        embeds = body.get("embeds")
        if embeds is not None:
            if not isinstance(embeds, list):
                return self._err("embeds", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"), "embeds is not a list"
            if len(embeds) > LIMIT_EMBEDS:
                return self._err("embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {LIMIT_EMBEDS} or fewer in length."), f"{len(embeds)} embeds"
            total = 0
            for i, e in enumerate(embeds):
                if not isinstance(e, dict):
                    return self._err(f"embeds.{i}", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"), f"embed {i} is not an object"

                def check(value: Any, limit: int, path: str):
                    nonlocal total
                    if value is None:
                        return None
                    if not isinstance(value, str):
                        return self._err(path, "STRING_TYPE_CONVERT", "Could not interpret value as string."), f"{path} is not a string"
                    n = text_length(value)
                    total += n
                    if n > limit:
                        return self._err(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."), f"{path} is {n} long (limit {limit})"
                    return None

                for key, limit in (("title", LIMIT_TITLE), ("description", LIMIT_DESCRIPTION)):
                    r = check(e.get(key), limit, f"embeds.{i}.{key}")
                    if r:
                        return r
                footer = e.get("footer")
                if footer is not None:
                    if not isinstance(footer, dict) or "text" not in footer:
                        return self._err(f"embeds.{i}.footer.text", "BASE_TYPE_REQUIRED", "This field is required"), "footer without text"
                    r = check(footer.get("text"), LIMIT_FOOTER, f"embeds.{i}.footer.text")
                    if r:
                        return r
                author = e.get("author")
                if author is not None:
                    if not isinstance(author, dict) or "name" not in author:
                        return self._err(f"embeds.{i}.author.name", "BASE_TYPE_REQUIRED", "This field is required"), "author without name"
                    r = check(author.get("name"), LIMIT_AUTHOR_NAME, f"embeds.{i}.author.name")
                    if r:
                        return r
                fields = e.get("fields")
                if fields is not None:
                    if not isinstance(fields, list) or len(fields) > LIMIT_FIELDS:
                        return self._err(f"embeds.{i}.fields", "BASE_TYPE_MAX_LENGTH", f"Must be {LIMIT_FIELDS} or fewer in length."), "too many fields"
                    for j, f in enumerate(fields):
                        if not isinstance(f, dict) or "name" not in f or "value" not in f:
                            return self._err(f"embeds.{i}.fields.{j}", "BASE_TYPE_REQUIRED", "This field is required"), "field without name/value"
                        r = check(f.get("name"), LIMIT_FIELD_NAME, f"embeds.{i}.fields.{j}.name") or \
                            check(f.get("value"), LIMIT_FIELD_VALUE, f"embeds.{i}.fields.{j}.value")
                        if r:
                            return r
                color = e.get("color")
                if color is not None and (not isinstance(color, int) or isinstance(color, bool)
                                          or color < 0 or color > 0xFFFFFF):
                    return self._err(f"embeds.{i}.color", "NUMBER_TYPE_COERCE", "Value is not a valid color."), f"bad color {color!r}"
                url = e.get("url")
                if url is not None and (not isinstance(url, str) or
                                        not re.match(r"^https?://\S+$", url)):
                    return self._err(f"embeds.{i}.url", "URL_TYPE_INVALID_URL", "Not a well formed URL."), f"bad url {url!r}"
            if total > LIMIT_EMBED_TOTAL:
                return self._err("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"), f"embeds total {total}"
        if creating and not content and not embeds and not body.get("components") \
                and not body.get("poll"):
            return {}, "empty message (code 50006 on real Discord)"
        am = body.get("allowed_mentions")
        if am is None:
            # Discord itself accepts this; the fake rejects it because the daemon
            # must always send allowed_mentions (section 2.6).
            return self._err("allowed_mentions", "BASE_TYPE_REQUIRED", "This field is required"), "allowed_mentions missing"
        if not isinstance(am, dict):
            return self._err("allowed_mentions", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"), "allowed_mentions not an object"
        parse = am.get("parse", [])
        if not isinstance(parse, list) or any(p not in ("roles", "users", "everyone") for p in parse):
            return self._err("allowed_mentions.parse", "ENUM_TYPE_COERCE", "Value is not a valid enum value."), f"bad parse {parse!r}"
        for kind in ("users", "roles"):
            if kind in parse and am.get(kind):
                return self._err(f"allowed_mentions.{kind}", "SET_TYPE_ALREADY_CONTAINS_VALUE", "parse and list conflict"), f"parse {kind} combined with {kind} list"
        flags = body.get("flags")
        if flags is not None and (not isinstance(flags, int) or flags & ~((1 << 2) | (1 << 12) | (1 << 15))):
            return self._err("flags", "BASE_TYPE_CHOICES", "Invalid flags"), f"bad flags {flags!r}"
        return None

    @staticmethod
    def _redact(path: str) -> str:
        m = _WEBHOOK_RE.match(path)
        if not m:
            return path
        return f"/api/v10/webhooks/{m.group('id')}/<token>{m.group('rest') or ''}"

    def _check_embed_urls(self, rec: Request) -> None:
        """Discord de-duplicates embeds by URL (api-facts 2.5): in one message, a later embed
        with the same url as an earlier one is folded into it and its text is not shown.
        Real Discord answers 200, so this is recorded as a violation, not rejected."""
        seen: dict = {}
        for i, e in enumerate(rec.body.get("embeds") or []):
            url = e.get("url") if isinstance(e, dict) else None
            if not url:
                continue
            if url in seen:
                with self._lock:
                    self.violations.append(
                        f"{rec.method} {self._redact(rec.path)}: embeds {seen[url]} and {i} share url {url}; "
                        f"Discord de-duplicates embeds by URL, so embed {i} would not be shown")
            else:
                seen[url] = i

    def _message_object(self, mid: str, webhook_id: str, body: dict, username: str) -> dict:
        embeds = []
        urls = set()
        for e in body.get("embeds") or []:
            if e.get("url") and e["url"] in urls:
                continue  # what Discord shows: embeds de-duplicated by URL
            urls.add(e.get("url"))
            e = dict(e)
            e["type"] = "rich"
            embeds.append(e)
        return {
            "id": mid,
            "channel_id": "290926798999357250",
            "type": 0,
            "author": {"id": webhook_id, "username": username, "avatar": None,
                       "discriminator": "0000", "global_name": None, "bot": True},
            "content": body.get("content") or "",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime()),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": embeds,
            "pinned": False,
            "flags": 0,
            "components": [],
            "webhook_id": webhook_id,
        }

    def _new_request(self, h: _Handler, **fields: Any) -> Request:
        raw = fields["body"]
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        rec = Request(**{**fields, "body": body}, raw_body=raw)
        m = _WEBHOOK_RE.match(rec.path)
        if m:
            rec.webhook_id, rec.token = m.group("id"), m.group("token")
        return rec

    def _dispatch(self, h: _Handler, rec: Request) -> None:
        m = _WEBHOOK_RE.match(rec.path)
        if not m:
            self._reply(h, rec, 404, {"message": "404: Not Found", "code": 0})
            return

        action = self._next_action()
        rec.action = action.kind
        if action.kind in ("drop", "reset"):
            self._drop(h, rec, rst=action.kind == "reset")
            return
        if action.kind == "slow":
            self._sleep(action.seconds)  # deliberately slow fake, not synchronisation
        if action.kind == "server_error":
            phrase = {500: "Internal Server Error", 502: "Bad Gateway",
                      503: "Service Unavailable", 504: "Gateway Timeout"}.get(action.status, "Error")
            self._reply(h, rec, action.status, {"message": f"{action.status}: {phrase}", "code": 0})
            return
        if action.kind == "rate_limit":
            hdrs = self._rl_headers(remaining=0, reset_after=action.retry_after)
            hdrs["Retry-After"] = str(max(1, math.ceil(action.retry_after)))
            hdrs["X-RateLimit-Scope"] = action.scope
            if action.is_global:
                hdrs["X-RateLimit-Global"] = "true"
                for k in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                          "X-RateLimit-Reset-After", "X-RateLimit-Bucket"):
                    hdrs.pop(k, None)
            self._reply(h, rec, 429, {"message": "You are being rate limited.",
                                     "retry_after": action.retry_after,
                                     "global": action.is_global}, hdrs)
            return

        rl = self._rl_headers()
        if action.kind == "rate_limit_headers":
            rl = self._rl_headers(remaining=action.remaining, reset_after=action.reset_after)

        webhook_id, token = m.group("id"), m.group("token")
        with self._lock:
            known = self._webhooks.get(webhook_id) == token
        if not known:
            self._reply(h, rec, 404, {"message": "Unknown Webhook", "code": 10015}, rl)
            return

        rest = m.group("rest") or ""
        ua = rec.headers.get("user-agent", "")
        if not ua.startswith("DiscordBot ("):
            with self._lock:
                self.violations.append(f"{rec.method} {self._redact(rec.path)}: User-Agent {ua!r} does not start with 'DiscordBot ('")

        if rest == "" and h.command == "POST":
            self._execute(h, rec, webhook_id, rl)
            return
        mm = _MESSAGE_RE.match(rest)
        if mm and h.command in ("PATCH", "GET", "DELETE"):
            self._message_op(h, rec, webhook_id, mm.group("mid"), rl)
            return
        if rest == "" or mm:
            self._reply(h, rec, 405, {"message": "405: Method Not Allowed", "code": 0}, rl)
            return
        self._reply(h, rec, 404, {"message": "404: Not Found", "code": 0}, rl)

    def _check_json_request(self, h: _Handler, rec: Request) -> bool:
        ctype = rec.headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            self._form_error(h, rec, {"_errors": [{"code": "CONTENT_TYPE_INVALID", "message": "Expected \"Content-Type\" header to be one of {'application/json', 'application/x-www-form-urlencoded', 'multipart/form-data'}."}]},
                             f"Content-Type {ctype!r}")
            return False
        if rec.body is None:
            self._form_error(h, rec, {"_errors": [{"code": "JSON_INVALID", "message": "The request body contains invalid JSON."}]},
                             "body is not valid JSON")
            return False
        return True

    def _execute(self, h: _Handler, rec: Request, webhook_id: str, rl: dict) -> None:
        if not self._check_json_request(h, rec):
            return
        problem = self._validate_message_body(rec.body, creating=True)
        if problem:
            self._form_error(h, rec, problem[0], problem[1])
            return
        self._check_embed_urls(rec)
        wait = rec.query.get("wait", "false")
        mid = self._snowflake()
        msg = Message(id=mid, webhook_id=webhook_id, body=rec.body, time=time.monotonic())
        # The message becomes visible to tests only once its answer has been sent (and
        # recorded), so a test that sees the message also sees the request's status.
        if wait not in ("true", "1", "True"):
            with self._lock:
                self.violations.append(f"POST {self._redact(rec.path)}: without wait=true (Discord answers 204, no message id)")
            self._reply(h, rec, 204, None, rl)
        else:
            username = rec.body.get("username") or "Captain Hook"
            self._reply(h, rec, 200, self._message_object(mid, webhook_id, rec.body, username), rl)
        with self._lock:
            self.messages.append(msg)
            self._cond.notify_all()

    def _message_op(self, h: _Handler, rec: Request, webhook_id: str, mid: str, rl: dict) -> None:
        with self._lock:
            msg = next((m for m in self.messages
                        if m.id == mid and m.webhook_id == webhook_id and not m.deleted), None)
        if msg is None:
            self._reply(h, rec, 404, {"message": "Unknown Message", "code": 10008}, rl)
            return
        if h.command == "GET":
            self._reply(h, rec, 200, self._message_object(mid, webhook_id, msg.body,
                                                         msg.body.get("username") or "Captain Hook"), rl)
            return
        if h.command == "DELETE":
            with self._lock:
                msg.deleted = True
            self._reply(h, rec, 204, None, rl)
            return
        if not self._check_json_request(h, rec):
            return
        problem = self._validate_message_body(rec.body, creating=False)
        if problem:
            self._form_error(h, rec, problem[0], problem[1])
            return
        self._check_embed_urls(rec)
        with self._lock:
            msg.edits.append(rec.body)
            merged = dict(msg.body)
            for e in msg.edits:
                merged.update({k: v for k, v in e.items() if v is not None})
        obj = self._message_object(mid, webhook_id, merged, msg.body.get("username") or "Captain Hook")
        obj["edited_timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
        self._reply(h, rec, 200, obj, rl)
