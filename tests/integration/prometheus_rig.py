"""A real Prometheus server for integration tests (Debian's /usr/bin/prometheus 2.42 and
promtool), on a free loopback port in a temp dir: history backfilled from OpenMetrics text
with ``promtool tsdb create-blocks-from openmetrics`` before it starts, a loopback
``Exporter`` it scrapes every second for the present, and optionally TLS and basic auth
(``--web.config.file``). Every wait is bounded.

    rig = PrometheusRig(tmp)
    rig.backfill(openmetrics_text)         # before start()
    rig.start(targets=[exporter.address], tls=(cert, key), users={"runbookd": "pw"})
    rig.query("up")                         # the API, with the rig's credentials
    rig.stop()
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

import harness

PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL_BIN = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool") or "/usr/bin/promtool"


def require_prometheus(testcase) -> None:
    for b in (PROMETHEUS_BIN, PROMTOOL_BIN):
        if not (os.path.isfile(b) and os.access(b, os.X_OK)):
            testcase.fail(f"{b} not found (scripts/install-deps installs prometheus)")


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for basic_auth_users, from the C library's crypt(3) (libxcrypt)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # deprecated in 3.11, still the only bcrypt without a third-party package
        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


class Exporter:
    """A loopback /metrics endpoint of counters that grow at a set rate, so that ``rate()``
    over them is exactly that rate (linear counters extrapolate exactly)."""

    def __init__(self):
        self._lock = threading.Lock()
        # (name, labels as sorted tuple) -> (value at `since`, since, rate per second)
        self._series: dict[tuple, tuple[float, float, float]] = {}
        self.scrapes = 0
        rig = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                body = rig.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "Exporter":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_rate(self, name: str, labels: dict, per_second: float) -> None:
        key = (name, tuple(sorted(labels.items())))
        now = time.time()
        with self._lock:
            value, since, rate = self._series.get(key, (0.0, now, 0.0))
            self._series[key] = (value + rate * (now - since), now, per_second)

    def exposition(self) -> str:
        now = time.time()
        lines = []
        with self._lock:
            self.scrapes += 1
            for (name, labels), (value, since, rate) in sorted(self._series.items()):
                text = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{name}{{{text}}} {value + rate * (now - since):.6f}")
        return "\n".join(lines) + "\n"


def counter_history(name: str, series: list[tuple[dict, float]], start: float, end: float,
                    every: float = 15.0) -> list[str]:
    """OpenMetrics sample lines of counters growing at each series' rate from `start` to
    `end` (Unix seconds), one sample per `every` seconds; ``# TYPE`` and ``# EOF`` are the
    caller's (openmetrics_text())."""
    out = []
    for labels, rate in series:
        text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        t = start
        while t <= end:
            out.append(f"{name}_total{{{text}}} {rate * (t - start):.6f} {t:.3f}")
            t += every
    return out


def openmetrics_text(families: dict[str, list[str]]) -> str:
    """A complete OpenMetrics document of counter families (name -> sample lines)."""
    parts = []
    for name, lines in families.items():
        parts.append(f"# TYPE {name} counter")
        parts.extend(lines)
    parts.append("# EOF")
    return "\n".join(parts) + "\n"


class PrometheusRig:
    """One Prometheus server in `directory` (its tsdb, config, web config and log)."""

    def __init__(self, directory: str):
        self.dir = directory
        self.tsdb = os.path.join(directory, "tsdb")
        os.makedirs(self.tsdb, exist_ok=True)
        self.port = harness.free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.tls = False
        self.ca_file: Optional[str] = None
        self.user: Optional[tuple[str, str]] = None
        self._log = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def backfill(self, openmetrics: str) -> None:
        """Writes `openmetrics` into blocks of the tsdb (before start())."""
        path = os.path.join(self.dir, "history.om")
        with open(path, "w") as f:
            f.write(openmetrics)
        r = subprocess.run([PROMTOOL_BIN, "tsdb", "create-blocks-from", "openmetrics", path, self.tsdb],
                           capture_output=True, text=True, timeout=60, cwd=self.dir)
        if r.returncode != 0:
            raise RuntimeError(f"promtool create-blocks-from failed: {r.stdout}\n{r.stderr}")

    def start(self, targets: list[str], scrape_interval: str = "1s", tls: Optional[tuple[str, str]] = None,
              ca_file: Optional[str] = None, users: Optional[dict[str, str]] = None, job: str = "app",
              timeout: float = 30) -> "PrometheusRig":
        """Starts scraping `targets` (host:port, /metrics) as `job` every `scrape_interval`, and
        waits (bounded) for /-/ready. `tls` is (cert, key) to serve HTTPS, trusted by the
        rig's own requests through `ca_file`; `users` maps basic-auth users to passwords."""
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(f"global:\n  scrape_interval: {scrape_interval}\n  scrape_timeout: {scrape_interval}\n"
                    f"  evaluation_interval: {scrape_interval}\nscrape_configs:\n  - job_name: {job}\n"
                    f"    metrics_path: /metrics\n"
                    f"    static_configs:\n      - targets: {json.dumps(targets)}\n")
        args = [PROMETHEUS_BIN, f"--config.file={cfg}", f"--storage.tsdb.path={self.tsdb}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=30d",
                "--log.level=info"]
        if tls or users:
            web = os.path.join(self.dir, "web.yml")
            with open(web, "w") as f:
                if tls:
                    f.write(f"tls_server_config:\n  cert_file: {tls[0]}\n  key_file: {tls[1]}\n")
                if users:
                    f.write("basic_auth_users:\n")
                    for name, password in users.items():
                        f.write(f"  {name}: {json.dumps(bcrypt_hash(password))}\n")
            args.append(f"--web.config.file={web}")
        self.tls = tls is not None
        self.ca_file = ca_file
        if users:
            self.user = next(iter(users.items()))
        self._log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir)
        harness.wait_for(self._ready, timeout, "prometheus /-/ready", diagnostics=self.log_tail)
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}\n{self.log_tail()}")
        try:
            with self._open(self.url + "/-/ready", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
            return False

    def _open(self, url: str, timeout: float, data: Optional[bytes] = None):
        req = urllib.request.Request(url, data=data)
        if self.user:
            token = base64.b64encode(f"{self.user[0]}:{self.user[1]}".encode()).decode()
            req.add_header("Authorization", f"Basic {token}")
        ctx = ssl.create_default_context(cafile=self.ca_file) if self.tls else None
        return urllib.request.urlopen(req, timeout=timeout, context=ctx)

    def api(self, path: str, **params) -> Optional[dict]:
        """The JSON of an API GET, or None when unreachable or not JSON (an error answer's
        JSON is returned)."""
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with self._open(url, timeout=5) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                return json.loads(e.read())
            except ValueError:
                return None
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return None

    def query(self, promql: str, at: Optional[float] = None) -> list[dict]:
        """An instant query's result list ([] on error)."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        doc = self.api("/api/v1/query", **params) or {}
        return doc.get("data", {}).get("result", []) if doc.get("status") == "success" else []

    def query_value(self, promql: str, at: Optional[float] = None) -> Optional[float]:
        result = self.query(promql, at)
        return float(result[0]["value"][1]) if result else None

    def log_tail(self) -> str:
        if self._log is None:
            return "(prometheus not started)"
        self._log.flush()
        with open(self._log.name, "rb") as f:
            return "--- prometheus log (tail) ---\n" + f.read().decode("utf-8", "replace")[-3000:]

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM; asserts that Prometheus stops within `timeout`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"prometheus did not stop within {timeout}s of SIGTERM")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self._log is not None:
            self._log.close()
            self._log = None
