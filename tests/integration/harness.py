"""Integration-test harness: temp dirs, a test CA, config files, the daemon process.

Every wait is bounded (``wait_for``); sleeps appear only as short poll intervals
inside bounded waits.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from typing import Any, Callable, Iterable, Optional

import fake_discord
import pagerduty

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_BIN = os.path.join(REPO, "build", "daemon", "runbookd")

POLL = 0.02  # poll interval inside bounded waits


def daemon_binary() -> str:
    return os.environ.get("RUNBOOKD_BIN") or DEFAULT_BIN


def require_binary(testcase: Optional[unittest.TestCase] = None) -> str:
    path = daemon_binary()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise AssertionError(f"runbookd binary not found or not executable: {path} "
                             f"(set RUNBOOKD_BIN)")
    return path


# --------------------------------------------------------------------------- waiting


def embedded_rule_count() -> int:
    """How many rules the embedded pack (rules/runbook.yaml) has: tests compare against the
    file, so adding a rule to the pack does not break them."""
    import yaml
    with open(os.path.join(REPO, "rules", "runbook.yaml")) as f:
        return len(yaml.safe_load(f)["rules"])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str = "condition",
             interval: float = POLL, diagnostics: Optional[Callable[[], str]] = None) -> Any:
    """Polls ``predicate`` until it returns a truthy value (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = ""
            if diagnostics is not None:
                try:
                    extra = "\n" + diagnostics()
                except Exception as e:  # diagnostics must never hide the timeout
                    extra = f"\n(diagnostics failed: {e!r})"
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


def stays(predicate: Callable[[], Any], duration: float, interval: float = 0.05) -> bool:
    """True if ``predicate`` stays truthy for the whole (bounded) observation window."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(interval)
    return bool(predicate())


# --------------------------------------------------------------------------- temp dirs and PKI


def make_tempdir(prefix: str = "runbookd-it-") -> str:
    return tempfile.mkdtemp(prefix=prefix)


def _openssl(*args: str, cwd: str) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {r.stderr}")


class Pki:
    """A throw-away CA and a server certificate for IP 127.0.0.1, made with the openssl CLI."""

    def __init__(self, directory: str):
        self.dir = directory
        self.ca_key = os.path.join(directory, "ca.key")
        self.ca_cert = os.path.join(directory, "ca.pem")
        self.server_key = os.path.join(directory, "server.key")
        self.server_cert = os.path.join(directory, "server.pem")
        ext = os.path.join(directory, "server.ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=IP:127.0.0.1\n")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                 "-nodes", "-keyout", self.ca_key, "-out", self.ca_cert, "-days", "2",
                 "-subj", "/CN=runbookd integration test CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
        csr = os.path.join(directory, "server.csr")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", self.server_key, "-out", csr, "-subj", "/CN=127.0.0.1", cwd=directory)
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                 "-CAcreateserial", "-out", self.server_cert, "-days", "2", "-sha256",
                 "-extfile", ext, cwd=directory)


_pki_lock = threading.Lock()
_pki: Optional[Pki] = None


def test_pki() -> Pki:
    """One CA per test run (process), in its own temp dir, removed at exit."""
    global _pki
    with _pki_lock:
        if _pki is None:
            d = make_tempdir("runbookd-it-pki-")
            atexit.register(shutil.rmtree, d, True)
            _pki = Pki(d)
        return _pki


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- config


def to_yaml(value: Any, indent: int = 0) -> str:
    """A tiny YAML emitter: block mappings, flow lists of scalars, JSON-quoted strings."""
    pad = "  " * indent

    def scalar(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        if v is None:
            return "null"
        return json.dumps(str(v), ensure_ascii=False)

    lines = []
    for k, v in value.items():
        key = scalar(k) if not str(k).replace("_", "").isalnum() else str(k)
        if isinstance(v, dict):
            lines.append(f"{pad}{key}:")
            lines.append(to_yaml(v, indent + 1))
        elif isinstance(v, list):
            lines.append(f"{pad}{key}: [{', '.join(scalar(x) for x in v)}]")
        else:
            lines.append(f"{pad}{key}: {scalar(v)}")
    return "\n".join(lines)


def deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


SERVICE_ID = "PF9KMXH"
SERVICE_NAME = "Editor"
SERVICE_IMPACT = "Saving and loading canvases in the editor may fail."


def base_config(secrets: list[str]) -> dict:
    return {
        "server": {
            "listen": "127.0.0.1:0",
            "max_body_bytes": 65536,
            "header_timeout": "1s",
            "body_timeout": "5s",
            "idle_timeout": "30s",
            "max_connections": 64,
        },
        "log": {"level": "info"},
        "pagerduty": {"webhook_secrets": secrets, "dedupe_capacity": 1000},
        "status": {"reminder_interval": "10m",
                   "default_impact": "Some users may see errors or slowness."},
        "notify": {"kind": "discord", "drain_timeout": "3s", "coalesce_window": "200ms"},
        "services": {SERVICE_ID: {"name": SERVICE_NAME, "impact": SERVICE_IMPACT}},
    }


# --------------------------------------------------------------------------- the daemon


class Daemon:
    """One ``runbookd run`` process with its stdout/stderr captured by reader threads."""

    def __init__(self, config: dict, workdir: str, name: str = "runbookd"):
        self.workdir = workdir
        self.config_path = os.path.join(workdir, f"{name}.yaml")
        # Each daemon keeps its state in its own directory (never the default
        # /var/lib/runbookd): a restart of this Daemon recovers it; another test never sees it.
        # (Set in the caller's dict too, so a test that rewrites the file keeps them.)
        config.setdefault("store", {"dir": os.path.join(workdir, f"{name}-state")})
        self.state_dir = config["store"].get("dir")
        # Tests page one daemon many times in a row: only the storm tests want a storm.
        config.setdefault("limits", {"storm_threshold": 0})
        with open(self.config_path, "w") as f:
            f.write(to_yaml(config) + "\n")
        self.proc: Optional[subprocess.Popen] = None
        self.lines: list[str] = []  # raw stdout lines
        self.logs: list[dict] = []  # parsed JSON stdout lines
        self.bad_lines: list[str] = []  # stdout lines that are not JSON objects
        self.stderr_lines: list[str] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.port: Optional[int] = None
        self.returncode: Optional[int] = None

    # ---------------------------------------------------------------- process

    def start(self, timeout: float = 15.0, env: Optional[dict] = None) -> "Daemon":
        """Starts the process; a second start (after stop) reads only its own run's lines,
        so the port is the new one."""
        binary = require_binary()
        with self._lock:
            first = len(self.logs)
        # A test machine inside a cluster must not make every daemon watch that cluster.
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_SERVICE_")}
        full_env.update(env or {})
        self.proc = subprocess.Popen([binary, "run", "--config", self.config_path],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir, env=full_env)
        for stream, sink in ((self.proc.stdout, self._on_stdout), (self.proc.stderr, self._on_stderr)):
            t = threading.Thread(target=self._reader, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        listening = self.wait_log(lambda e: e.get("msg") == "listening", timeout, "'listening' log line",
                                  since=first)
        self.port = int(listening["port"])
        self.wait_log(lambda e: e.get("msg") == "ready", timeout, "'ready' log line", since=first)
        return self

    def _reader(self, stream, sink) -> None:
        for raw in iter(stream.readline, b""):
            sink(raw.decode("utf-8", "replace").rstrip("\r\n"))
        stream.close()

    def _on_stdout(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)
            try:
                obj = json.loads(line)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                self.logs.append(obj)
            else:
                self.bad_lines.append(line)

    def _on_stderr(self, line: str) -> None:
        with self._lock:
            self.stderr_lines.append(line)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, then a bounded wait for exit; returns the exit code (kills on timeout)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"runbookd did not exit within {timeout}s of SIGTERM"
                                 f"\n{self.tail()}")
        self._join_readers()
        return self.returncode

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM and assert exit code 0."""
        code = self.terminate(timeout)
        if code != 0:
            raise AssertionError(f"runbookd exited with {code} after SIGTERM, expected 0\n{self.tail()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._join_readers()

    def _join_readers(self) -> None:
        for t in self._threads:
            t.join(timeout=2)

    # ---------------------------------------------------------------- logs

    def snapshot_logs(self) -> list[dict]:
        with self._lock:
            return list(self.logs)

    def output(self) -> str:
        """Everything the daemon printed on stdout and stderr."""
        with self._lock:
            return "\n".join(self.lines + self.stderr_lines)

    def tail(self, n: int = 40) -> str:
        with self._lock:
            out = self.lines[-n:]
            err = self.stderr_lines[-n:]
        return ("--- runbookd stdout (tail) ---\n" + "\n".join(out) +
                "\n--- runbookd stderr (tail) ---\n" + "\n".join(err))

    def find_log(self, pred: Callable[[dict], bool], since: int = 0) -> Optional[dict]:
        for e in self.snapshot_logs()[since:]:
            if pred(e):
                return e
        return None

    def wait_log(self, pred: Callable[[dict], bool], timeout: float, what: str, since: int = 0) -> dict:
        """Waits for a log line matching `pred` among the lines from index `since` on."""
        def check():
            e = self.find_log(pred, since)
            if e is None and self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"runbookd exited ({self.proc.returncode}) while waiting "
                                     f"for {what}\n{self.tail()}")
            return e
        return wait_for(check, timeout, what, diagnostics=self.tail)

    def assert_logs_well_formed(self) -> None:
        with self._lock:
            bad = list(self.bad_lines)
            logs = list(self.logs)
        if bad:
            raise AssertionError(f"stdout lines that are not JSON objects: {bad[:5]}")
        missing = [e for e in logs if not all(k in e for k in ("ts", "level", "msg"))]
        if missing:
            raise AssertionError(f"log lines without ts/level/msg: {missing[:5]}")

    def assert_no_secret(self, secrets: Iterable[str]) -> None:
        text = self.output()
        for s in secrets:
            if s and s in text:
                i = text.index(s)
                raise AssertionError(f"secret {s[:4]}… appears in daemon output: "
                                     f"…{text[max(0, i - 200):i + len(s) + 50]}…")

    # ---------------------------------------------------------------- HTTP

    def sender(self, secrets: Iterable[str]) -> pagerduty.Sender:
        assert self.port is not None
        return pagerduty.Sender("127.0.0.1", self.port, secrets)

    def http(self, method: str, path: str, body: Optional[bytes] = None,
             headers: Optional[dict] = None, timeout: float = 10.0) -> pagerduty.Response:
        """One request on a fresh connection."""
        s = pagerduty.Sender("127.0.0.1", self.port, [], timeout=timeout)
        try:
            return s.request(method, path, body, headers)
        finally:
            s.close()


# --------------------------------------------------------------------------- Discord-backed fixture


def unique_token(n: int = 68) -> str:
    """A Discord-like webhook token (URL-safe characters)."""
    import secrets as _s
    return _s.token_urlsafe(n)[:n]


def snowflake_id() -> str:
    import random
    return str(random.randint(10 ** 17, 10 ** 19 - 1))


class DaemonWithDiscord:
    """A fake Discord plus a daemon configured to post to it."""

    def __init__(self, overrides: Optional[dict] = None, name: str = "runbookd",
                 known_status_webhook: bool = True, operations_webhook: bool = True):
        self.tmp = make_tempdir()
        pki = test_pki()
        self.secret = "pdsecret-" + unique_token(24)
        self.second_secret = "pdsecret2-" + unique_token(24)
        self.discord = fake_discord.FakeDiscord(pki.server_cert, pki.server_key).start()
        self.status_id, self.status_token = snowflake_id(), unique_token()
        self.ops_id, self.ops_token = snowflake_id(), unique_token()
        # The webhook URLs name the fake's host and port, as a proxy's would.
        status_url = self.discord.url(self.status_id, self.status_token)
        if known_status_webhook:
            self.discord.add_webhook(self.status_id, self.status_token)
        self.discord.add_webhook(self.ops_id, self.ops_token)
        ops_url = self.discord.url(self.ops_id, self.ops_token)
        cfg = base_config([self.secret, self.second_secret])
        cfg["discord"] = {
            "ca_file": pki.ca_cert,
            "username": "runbookd-test",
            "request_timeout": "3s",
            "status_webhook_url": status_url,
        }
        if operations_webhook:
            cfg["discord"]["operations_webhook_url"] = ops_url
        self.config = deep_merge(cfg, overrides or {})
        self.daemon = Daemon(self.config, self.tmp, name)
        self.pd: Optional[pagerduty.Sender] = None

    @property
    def tokens(self) -> list[str]:
        return [self.status_token, self.ops_token]

    def start(self, env: Optional[dict] = None) -> "DaemonWithDiscord":
        try:
            self.daemon.start(env=env)
        except BaseException:
            self.close()
            raise
        self.pd = self.daemon.sender([self.secret])
        return self

    def stop(self) -> None:
        """SIGTERM with exit code 0 asserted; then cleanup."""
        try:
            if self.pd is not None:
                self.pd.close()
            if self.daemon.proc is not None:
                self.daemon.stop()
        finally:
            self.close()

    def close(self) -> None:
        if self.pd is not None:
            self.pd.close()
        self.daemon.kill()
        self.discord.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---------------------------------------------------------------- posts

    def status_embeds(self) -> list[tuple[fake_discord.Message, dict]]:
        return self.discord.embeds(self.status_id)

    @staticmethod
    def embed_matches(embed: dict, inc: pagerduty.Incident) -> bool:
        if embed.get("url") == inc.html_url:
            return True
        text = " ".join(str(x) for x in (embed.get("title"), embed.get("description"),
                                          (embed.get("footer") or {}).get("text")))
        return inc.id in text

    def embeds_for(self, inc: pagerduty.Incident) -> list[dict]:
        return [e for _, e in self.status_embeds() if self.embed_matches(e, inc)]

    def wait_embeds(self, inc: pagerduty.Incident, count: int = 1, timeout: float = 10.0) -> list[dict]:
        return wait_for(lambda: (lambda es: es if len(es) >= count else None)(self.embeds_for(inc)),
                        timeout, f"{count} #status embed(s) for incident {inc.id}",
                        diagnostics=self.diagnostics)

    def diagnostics(self) -> str:
        reqs = self.discord.snapshot_requests()
        summary = [f"{r.method} {r.path.replace(self.status_token, '<token>')} -> {r.status} ({r.action})"
                   for r in reqs[-15:]]
        return ("--- fake Discord requests (last 15) ---\n" + "\n".join(summary) +
                f"\nviolations: {self.discord.violations}\ntls errors: {self.discord.tls_errors}\n" +
                self.daemon.tail())

    def hup_and_wait(self, msg: str, timeout: float = 10) -> dict:
        """SIGHUP, then the first log line with message `msg` written after it."""
        before = len(self.daemon.snapshot_logs())
        self.daemon.signal(signal.SIGHUP)
        return wait_for(
            lambda: next((e for e in self.daemon.snapshot_logs()[before:] if e.get("msg") == msg), None),
            timeout, f"'{msg}' log line", diagnostics=self.diagnostics)

    def trigger(self, inc: Optional[pagerduty.Incident] = None, **kw) -> pagerduty.Incident:
        inc = inc or pagerduty.Incident()
        r = self.pd.send(pagerduty.triggered(inc), **kw)
        if r.status != 202:
            raise AssertionError(f"trigger answered {r.status} {r.body!r}, expected 202")
        return inc


class DiscordTestCase(unittest.TestCase):
    """One daemon + fake Discord per test class; the daemon must exit 0 on SIGTERM."""

    overrides: dict = {}
    env: Optional[dict] = None
    #: Whether #operations has a webhook; without one, only #status posts are made.
    operations_webhook: bool = True
    rig: DaemonWithDiscord

    @classmethod
    def setUpClass(cls):
        cls.rig = DaemonWithDiscord(cls.overrides, name=cls.__name__, operations_webhook=cls.operations_webhook)
        cls.rig.start()

    @classmethod
    def tearDownClass(cls):
        rig = cls.rig
        try:
            rig.stop()
        finally:
            rig.close()
        rig.daemon.assert_no_secret(rig.tokens)
        rig.daemon.assert_logs_well_formed()

    def setUp(self):
        self.rig.discord.reset_state()
        self._violations_mark = len(self.rig.discord.violations)
        self.assertTrue(self.rig.daemon.alive(), "runbookd is not running (exit code "
                        f"{self.rig.daemon.proc.poll()})\n" + self.rig.daemon.tail(8))

    def tearDown(self):
        self.rig.discord.reset_state()

    def assertNoViolations(self):
        """No request during this test broke a Discord rule (see fake_discord.violations)."""
        mark = getattr(self, "_violations_mark", 0)
        self.assertEqual(self.rig.discord.violations[mark:], [],
                         "the daemon sent requests that Discord would reject or mis-render")


# --------------------------------------------------------------------------- sources

class SourceRig:
    """What the source tests ask of a daemon that runs sources, read from its debug log
    ("signal" lines), its "source status" lines, /metrics and #operations. A rig using it
    has ``rig`` (a DaemonWithDiscord) and may override ``diagnostics()``."""

    rig: DaemonWithDiscord

    @property
    def daemon(self) -> Daemon:
        return self.rig.daemon

    def diagnostics(self) -> str:
        return self.rig.diagnostics()

    def signals(self, kind: str, **fields) -> list[dict]:
        return [e for e in self.daemon.snapshot_logs()
                if e.get("msg") == "signal" and e.get("kind") == kind
                and all(e.get(k) == v for k, v in fields.items())]

    def wait_signal(self, kind: str, timeout: float = 15, where: Callable[[dict], bool] = lambda e: True,
                    **fields) -> dict:
        """The newest signal of `kind` with `fields` that passes `where`."""
        return wait_for(lambda: next((e for e in reversed(self.signals(kind, **fields)) if where(e)), None),
                        timeout, f"a {kind} signal {fields}", diagnostics=self.diagnostics)

    def wait_signals(self, kind: str, count: int = 1, timeout: float = 15, **fields) -> list[dict]:
        return wait_for(lambda: (lambda s: s if len(s) >= count else None)(self.signals(kind, **fields)),
                        timeout, f"{count} {kind} signal(s) {fields}", diagnostics=self.diagnostics)

    def source_statuses(self, source: str) -> list[dict]:
        return [e for e in self.daemon.snapshot_logs()
                if e.get("msg") == "source status" and e.get("source") == source]

    def wait_source(self, source: str, state: str, after: int = 0, timeout: float = 20,
                    error: str = "") -> dict:
        """The first status of `source` from the `after`th on in `state` whose error has `error`."""
        return wait_for(lambda: next((e for e in self.source_statuses(source)[after:]
                                      if e["state"] == state and error in e["error"]), None),
                        timeout, f"the {source} source {state} {error}".rstrip(),
                        diagnostics=self.diagnostics)

    def metric(self, name: str, **labels) -> Optional[float]:
        import test_prometheus  # imports this module: read lazily
        r = self.daemon.http("GET", "/metrics")
        return test_prometheus.value(test_prometheus.parse_exposition(r.body.decode()), name, **labels)

    def wait_operations(self, inc: pagerduty.Incident, contains: str = "",
                        what: str = "#operations summary", timeout: float = 20) -> str:
        """The text of the #operations embed about `inc` once it holds `contains`."""
        def find() -> Optional[str]:
            for m in self.rig.discord.snapshot_messages(self.rig.ops_id):
                for e in m.embeds:
                    text = e.get("description") or ""
                    if inc.title in text and contains in text:
                        return text
            return None
        return wait_for(find, timeout, what, diagnostics=self.diagnostics)
