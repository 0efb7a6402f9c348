"""A real PostgreSQL server for integration tests, and real workloads on it.

``PostgresServer`` runs ``initdb`` in a temp dir and starts its own cluster with
``pg_ctl``: TCP on ``127.0.0.1`` only (a free port, SCRAM passwords), a unix socket
in the temp dir (trust), ``fsync=off``, the server log in the temp dir. When the
tests run as root (CI), ``initdb``/``pg_ctl`` run as the ``postgres`` system user
(they refuse root) and the temp dir is chowned to it; otherwise as the current user.

Roles made at first start: ``rig`` (the superuser, with a password) and ``app``
(LOGIN, not superuser, owner of database ``app``). ``seed()`` makes the tables the
workloads use. ``Session`` is a long-lived ``psql`` process with its own
``application_name``, so a test can leave a statement running or a transaction
open; ``long_query``, ``idle_in_transaction``, ``blocked_migration`` and
``fill_connections`` build the situations an incident runbook looks at, and return
only once ``pg_stat_activity`` shows them.

Every wait is bounded (``harness.wait_for``). Standard library only: SQL goes
through the ``psql`` CLI (``-X -A -t -v ON_ERROR_STOP=1``).
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import threading
from typing import Any, Mapping, NamedTuple, Optional, Union

from harness import free_port, make_tempdir, wait_for

SUPERUSER = "rig"
APP_ROLE = "app"
APP_DB = "app"
SYSTEM_USER = "postgres"  # the Debian package's system user, for runs as root
PG_LIB = "/usr/lib/postgresql"

ConfValue = Union[str, int, float, bool]

_names = itertools.count(1)


def _unique(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_names)}"


# --------------------------------------------------------------------------- binaries and quoting


def pg_bindir() -> str:
    """``$PG_BINDIR``, else the highest ``/usr/lib/postgresql/<ver>/bin`` that has ``postgres``."""
    env = os.environ.get("PG_BINDIR")
    if env:
        return env
    versions = []
    try:
        for v in os.listdir(PG_LIB):
            if os.path.isfile(os.path.join(PG_LIB, v, "bin", "postgres")):
                try:
                    versions.append((float(v), v))
                except ValueError:
                    pass
    except FileNotFoundError:
        pass
    if not versions:
        raise AssertionError(f"no PostgreSQL server under {PG_LIB}/<ver>/bin (install the "
                             f"'postgresql' package: scripts/install-deps) or set PG_BINDIR")
    return os.path.join(PG_LIB, max(versions)[1], "bin")


def quote_ident(name: str) -> str:
    """SQL identifier quoting (``"..."``, doubled quotes)."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """SQL string literal (standard_conforming_strings is on: only quotes are doubled)."""
    return "'" + value.replace("'", "''") + "'"


def conninfo_value(value: Union[str, int]) -> str:
    """A libpq keyword/value connection-string value, quoted when needed."""
    s = str(value)
    if s and re.fullmatch(r"[A-Za-z0-9_.\-/:@+]+", s):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _conf_value(value: ConfValue) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    return quote_literal(str(value))


def _client_env(extra: Optional[Mapping[str, str]] = None) -> dict:
    """The environment without inherited ``PG*`` settings, so nothing redirects a client."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"PGCONNECT_TIMEOUT": "5", "PGSSLMODE": "disable"})
    env.update(extra or {})
    return env


def _process_state(pid: int) -> Optional[str]:
    """The ``/proc`` state letter of ``pid``, or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _alive(pid: int) -> bool:
    return _process_state(pid) not in (None, "Z", "X")


class PsqlError(RuntimeError):
    """psql exited non-zero; ``stderr`` has the server's message."""

    def __init__(self, returncode: int, stderr: str, sql: str):
        super().__init__(f"psql exited {returncode}: {stderr.strip()}\n--- sql ---\n{sql[:2000]}")
        self.returncode = returncode
        self.stderr = stderr


class Role(NamedTuple):
    name: str
    password: str


# --------------------------------------------------------------------------- the server


class PostgresServer:
    """One throw-away PostgreSQL cluster on ``127.0.0.1:<free port>``.

    ``start()`` runs ``initdb`` the first time (then creates role/database ``app``);
    ``stop()``, ``kill()``, ``restart()`` keep the data dir; ``close()`` removes it.
    """

    def __init__(self, max_connections: int = 100,
                 extra_conf: Optional[Mapping[str, ConfValue]] = None,
                 track_activity_query_size: int = 1024):
        self.bindir = pg_bindir()
        self.max_connections = max_connections
        self.track_activity_query_size = track_activity_query_size
        self.extra_conf = dict(extra_conf or {})
        self.dir = make_tempdir("runbookd-pg-")
        self.data_dir = os.path.join(self.dir, "data")
        self._log_path = os.path.join(self.dir, "postgres.log")
        self._port = free_port()
        self.superuser = SUPERUSER
        self.superuser_password = "rig-" + secrets.token_urlsafe(18)
        self.app_password = "app-" + secrets.token_urlsafe(18)
        self._as_other: Optional[pwd.struct_passwd] = None
        if os.geteuid() == 0:
            self._as_other = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.dir, self._as_other.pw_uid, self._as_other.pw_gid)
        self._sessions: list["Session"] = []
        self._lock = threading.Lock()
        self._closed = False
        atexit.register(self.close)

    # ---------------------------------------------------------------- properties

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._port

    @property
    def socket_dir(self) -> str:
        return self.dir

    @property
    def log_path(self) -> str:
        return self._log_path

    def log(self) -> str:
        """The server log so far."""
        try:
            with open(self._log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 30) -> str:
        return "--- postgres log (tail) ---\n" + "\n".join(self.log().splitlines()[-n:])

    def dsn(self, user: Optional[str] = None, password: Optional[str] = None,
            db: str = APP_DB, **params: Union[str, int]) -> str:
        """A libpq keyword/value string for TCP ``127.0.0.1:port``; ``params`` add keywords.

        ``user`` defaults to the superuser; ``password`` to the superuser's or ``app``'s
        password when ``user`` is one of those (other roles need it given).
        """
        user = user or self.superuser
        if password is None:
            password = {self.superuser: self.superuser_password,
                        APP_ROLE: self.app_password}.get(user)
        parts = {"host": self.host, "port": self.port, "dbname": db, "user": user}
        if password is not None:
            parts["password"] = password
        parts.update(params)
        return " ".join(f"{k}={conninfo_value(v)}" for k, v in parts.items())

    # ---------------------------------------------------------------- running server programs

    def _server_cmd(self, *args: str) -> list[str]:
        """``args`` run as the ``postgres`` system user when we are root."""
        if self._as_other is None:
            return list(args)
        if shutil.which("runuser"):
            return ["runuser", "-u", self._as_other.pw_name, "--", *args]
        return ["setpriv", f"--reuid={self._as_other.pw_uid}", f"--regid={self._as_other.pw_gid}",
                "--init-groups", "--", *args]

    def _run_server_tool(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run(self._server_cmd(*args), cwd=self.dir, env=_client_env(),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)

    def _chown(self, path: str) -> None:
        if self._as_other is not None:
            os.chown(path, self._as_other.pw_uid, self._as_other.pw_gid)

    def _initdb(self) -> None:
        pwfile = os.path.join(self.dir, "superuser.pw")
        with open(pwfile, "w") as f:
            f.write(self.superuser_password + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        try:
            r = self._run_server_tool(
                os.path.join(self.bindir, "initdb"), "-D", self.data_dir, "-U", self.superuser,
                f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
                "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
        finally:
            os.unlink(pwfile)
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        self._write_conf()

    def _write_conf(self) -> None:
        conf: dict[str, ConfValue] = {
            "listen_addresses": "127.0.0.1",
            "port": self._port,
            "unix_socket_directories": self.dir,
            "max_connections": self.max_connections,
            "superuser_reserved_connections": 3,
            "track_activity_query_size": self.track_activity_query_size,
            "fsync": False,  # synchronous_commit stays on: a kill() loses no committed row
            "full_page_writes": False,
            "shared_buffers": "32MB",
            "password_encryption": "scram-sha-256",
            # a backend whose psql was killed mid-statement notices within a second
            "client_connection_check_interval": "1s",
            "logging_collector": False,
            "log_line_prefix": "%m [%p] %q%u@%d/%a ",
            "log_timezone": "UTC",
            "timezone": "UTC",
        }
        conf.update(self.extra_conf)
        with open(os.path.join(self.data_dir, "postgresql.conf"), "a") as f:
            f.write("\n# --- postgres_rig ---\n")
            for k, v in conf.items():
                f.write(f"{k} = {_conf_value(v)}\n")

    def _set_port(self, port: int) -> None:
        self._port = port
        with open(os.path.join(self.data_dir, "postgresql.conf"), "a") as f:
            f.write(f"port = {port}\n")

    # ---------------------------------------------------------------- lifecycle

    def postmaster_pid(self) -> Optional[int]:
        """The pid in ``postmaster.pid`` if that process is alive, else None."""
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
                pid = int(f.readline().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def is_running(self) -> bool:
        return self.postmaster_pid() is not None

    def cluster_pids(self) -> list[int]:
        """Every live process whose working directory is this data dir (postmaster, backends)."""
        data = os.path.realpath(self.data_dir)
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{entry}/cwd") == data and _alive(int(entry)):
                    pids.append(int(entry))
            except OSError:
                continue
        return pids

    def start(self, timeout: float = 30.0) -> "PostgresServer":
        """Starts the cluster (``initdb`` first time) and waits until it accepts connections."""
        if self._closed:
            raise RuntimeError("PostgresServer is closed")
        if self.is_running():
            return self
        first = not os.path.isdir(self.data_dir)
        if first:
            self._initdb()
        # After kill(), the old backends must be gone or the new postmaster refuses
        # ("pre-existing shared memory block is still in use").
        wait_for(lambda: not self.cluster_pids(), 10, "the old cluster's processes to exit")
        for attempt in range(3):
            r = self._run_server_tool(
                os.path.join(self.bindir, "pg_ctl"), "start", "-D", self.data_dir,
                "-l", self._log_path, "-w", "-t", str(int(timeout)), timeout=timeout + 10)
            if r.returncode == 0:
                break
            # Someone took the free port between free_port() and bind: take another.
            if first and "could not bind" in self.log() and attempt < 2:
                self._set_port(free_port())
                continue
            raise RuntimeError(f"pg_ctl start failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                               f"{self.log_tail()}")
        if first:
            self.psql(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER "
                      f"PASSWORD {quote_literal(self.app_password)};\n"
                      f"CREATE DATABASE {APP_DB} OWNER {APP_ROLE};", db="postgres")
        return self

    def stop(self, mode: str = "fast", timeout: float = 30.0) -> None:
        """``pg_ctl stop -m mode`` (smart, fast, immediate); waits for the postmaster to exit."""
        if not self.is_running():
            return
        r = self._run_server_tool(os.path.join(self.bindir, "pg_ctl"), "stop", "-D", self.data_dir,
                                  "-m", mode, "-w", "-t", str(int(timeout)), timeout=timeout + 10)
        if r.returncode != 0 and self.is_running():
            raise RuntimeError(f"pg_ctl stop failed ({r.returncode}):\n{r.stdout}\n{r.stderr}\n"
                               f"{self.log_tail()}")

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILLs the postmaster (a crash) and waits until its backends have exited too."""
        pid = self.postmaster_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not _alive(pid), timeout, "the postmaster to die")
        wait_for(lambda: not self.cluster_pids(), timeout, "the backends to exit after the crash")
        # The dead postmaster is reparented to init, which may reap it late (or never, in a
        # container without one); while it is a zombie a new postmaster takes the pid in
        # its lock files for a live server and refuses to start. No live process of the
        # cluster is left (checked above), so the lock files are stale: remove them.
        if pid is not None and _process_state(pid) is not None:
            for lock in (os.path.join(self.data_dir, "postmaster.pid"),
                         os.path.join(self.socket_dir, f".s.PGSQL.{self._port}.lock")):
                try:
                    os.unlink(lock)
                except FileNotFoundError:
                    pass

    def restart(self, mode: str = "fast", timeout: float = 30.0) -> "PostgresServer":
        self.stop(mode, timeout)
        return self.start(timeout)

    def close(self) -> None:
        """Closes sessions, stops the server (kills it if that fails) and removes the temp dir."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            atexit.unregister(self.close)
        except Exception:
            pass
        for s in list(self._sessions):
            try:
                s.close(terminate_backend=False)
            except Exception:
                pass
        try:
            if os.path.isdir(self.data_dir):
                try:
                    self.stop("fast", timeout=15)
                except Exception:
                    self.kill()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- SQL

    def psql_cmd(self, db: str = APP_DB, user: Optional[str] = None,
                 password: Optional[str] = None) -> list[str]:
        """psql arguments for the unix socket (trust), or TCP with SCRAM when ``password`` is set."""
        user = user or self.superuser
        base = [os.path.join(self.bindir, "psql"), "-X", "-A", "-t", "-q"]
        if password is not None:
            return base + ["-d", self.dsn(user, password, db)]
        return base + ["-h", self.socket_dir, "-p", str(self._port), "-U", user, "-d", db]

    def psql(self, sql: str, db: str = APP_DB, user: Optional[str] = None,
             password: Optional[str] = None, timeout: float = 30.0) -> list[str]:
        """Runs ``sql`` (one or more statements, from stdin) and returns stdout's lines.

        As the superuser over the unix socket unless ``user``/``password`` say otherwise
        (a password means TCP to 127.0.0.1 with SCRAM). Fields are ``|``-separated.
        Raises ``PsqlError`` on any error (``ON_ERROR_STOP=1``).
        """
        cmd = self.psql_cmd(db, user, password) + ["-v", "ON_ERROR_STOP=1", "-f", "-"]
        r = subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=timeout,
                           env=_client_env({"PGAPPNAME": "postgres_rig"}))
        if r.returncode != 0:
            raise PsqlError(r.returncode, r.stderr, sql)
        return [line for line in r.stdout.split("\n") if line != ""]

    def rows(self, select: str, db: str = APP_DB, user: Optional[str] = None,
             password: Optional[str] = None, timeout: float = 30.0) -> list[dict]:
        """One SELECT's rows as dicts (typed through JSON; NULL is None)."""
        sql = (f"SELECT coalesce(json_agg(t), '[]'::json) FROM ({select.strip().rstrip(';')}) AS t;")
        out = self.psql(sql, db, user, password, timeout)
        return json.loads("".join(out))

    def scalar(self, select: str, db: str = APP_DB, user: Optional[str] = None,
               password: Optional[str] = None) -> Optional[str]:
        """The first column of the first row as psql prints it, or None for no rows."""
        out = self.psql(select, db, user, password)
        return out[0].split("|")[0] if out else None

    def can_connect(self, user: Optional[str] = None, password: Optional[str] = None,
                    db: str = APP_DB) -> bool:
        """True if ``SELECT 1`` succeeds (over TCP when ``password`` is given)."""
        try:
            return self.psql("SELECT 1", db, user, password, timeout=10) == ["1"]
        except (PsqlError, subprocess.TimeoutExpired):
            return False

    def create_database(self, name: str, owner: Optional[str] = None) -> None:
        """Creates database ``name`` (idempotent), owned by ``owner`` when given."""
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(name)}",
                     db="postgres"):
            return
        sql = f"CREATE DATABASE {quote_ident(name)}"
        if owner:
            sql += f" OWNER {quote_ident(owner)}"
        self.psql(sql + ";", db="postgres")

    def create_role(self, name: str, password: Optional[str] = None, *,
                    grants: tuple[str, ...] = (), db: str = APP_DB) -> Role:
        """A LOGIN, non-superuser role (created or its password reset), member of ``grants``."""
        password = password or "pw-" + secrets.token_urlsafe(18)
        exists = self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = {quote_literal(name)}",
                           db="postgres")
        verb = "ALTER" if exists else "CREATE"
        sql = (f"{verb} ROLE {quote_ident(name)} LOGIN NOSUPERUSER "
               f"PASSWORD {quote_literal(password)};\n")
        for g in grants:
            sql += f"GRANT {quote_ident(g)} TO {quote_ident(name)};\n"
        sql += f"GRANT CONNECT ON DATABASE {quote_ident(db)} TO {quote_ident(name)};\n"
        self.psql(sql, db="postgres")
        return Role(name, password)

    def create_monitor_role(self, name: str = "runbookd_monitor",
                            password: Optional[str] = None, db: str = APP_DB) -> Role:
        """The daemon's read-only monitoring role: LOGIN, ``pg_monitor``, CONNECT on ``db``."""
        return self.create_role(name, password, grants=("pg_monitor",), db=db)

    def activity(self, where: str = "true") -> list[dict]:
        """Client backends from ``pg_stat_activity`` (not this query's own), filtered by ``where``."""
        return self.rows(
            "SELECT pid, datname, usename, application_name, state, wait_event_type, wait_event, "
            "backend_type, query, "
            # pg_blocking_pids takes the lock manager: only for sessions waiting on a lock
            "CASE WHEN wait_event_type = 'Lock' THEN pg_blocking_pids(pid) "
            "ELSE '{}'::int[] END AS blocking_pids "
            "FROM pg_stat_activity WHERE backend_type = 'client backend' "
            f"AND pid <> pg_backend_pid() AND ({where})", db="postgres")

    def client_backends(self) -> int:
        """How many client backends exist, not counting the one asking."""
        return int(self.scalar("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                               "'client backend' AND pid <> pg_backend_pid()", db="postgres") or 0)

    def terminate(self, pids: list[int]) -> None:
        """``pg_terminate_backend`` on each pid (best effort)."""
        if pids:
            self.psql("SELECT pg_terminate_backend(pid) FROM unnest(ARRAY[" +
                      ",".join(str(int(p)) for p in pids) + "]::int[]) AS pid", db="postgres")


# --------------------------------------------------------------------------- sessions


class Session:
    """A long-lived ``psql`` (stdin a pipe) connected as ``application_name=name``.

    ``send()`` writes a statement and returns at once, so a test can leave a query
    running or a transaction open. Over the unix socket as ``user`` (default ``app``),
    or over TCP when ``password`` is given. Errors go to ``errors()``; the session
    carries on after them (``ON_ERROR_STOP=0``).
    """

    def __init__(self, server: PostgresServer, name: Optional[str] = None, db: str = APP_DB,
                 user: str = APP_ROLE, password: Optional[str] = None):
        self.server = server
        self.name = name or _unique("rig-session")
        self.db = db
        self.user = user
        self._pid: Optional[int] = None
        self._lock = threading.Lock()
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._closed = False
        cmd = server.psql_cmd(db, user, password) + ["-v", "ON_ERROR_STOP=0", "-f", "-"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE,
                                     env=_client_env({"PGAPPNAME": self.name}))
        self._threads = []
        for stream, sink in ((self.proc.stdout, self._stdout), (self.proc.stderr, self._stderr)):
            t = threading.Thread(target=self._reader, args=(stream, sink), daemon=True)
            t.start()
            self._threads.append(t)
        server._sessions.append(self)

    def _reader(self, stream, sink: list[str]) -> None:
        for raw in iter(stream.readline, b""):
            with self._lock:
                sink.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
        stream.close()

    # ---------------------------------------------------------------- I/O

    def send(self, sql: str) -> None:
        """Writes ``sql`` to psql and returns immediately (a missing final ``;`` is added)."""
        text = sql.strip()
        if not text.endswith(";") and not text.startswith("\\"):
            text += ";"
        assert self.proc.stdin is not None
        self.proc.stdin.write((text + "\n").encode())
        self.proc.stdin.flush()

    def output(self) -> list[str]:
        with self._lock:
            return list(self._stdout)

    def errors(self) -> list[str]:
        with self._lock:
            return list(self._stderr)

    def alive(self) -> bool:
        """True while the psql process runs."""
        return self.proc.poll() is None

    def describe(self) -> str:
        return (f"session {self.name} (psql {'running' if self.alive() else self.proc.returncode}) "
                f"stderr: {self.errors()[-5:]}")

    # ---------------------------------------------------------------- server view

    @property
    def pid(self) -> int:
        """The backend pid, from ``pg_stat_activity`` by ``application_name`` (waits up to 10 s)."""
        if self._pid is None:
            self._pid = self.wait_pid(10.0)
        return self._pid

    def wait_pid(self, timeout: float) -> int:
        def find() -> Optional[int]:
            if not self.alive():
                raise AssertionError(f"psql exited before connecting: {self.describe()}")
            rows = self.server.activity(f"application_name = {quote_literal(self.name)}")
            if len(rows) > 1:
                raise AssertionError(f"{len(rows)} backends named {self.name!r}; names must be unique")
            return rows[0]["pid"] if rows else None
        return int(wait_for(find, timeout, f"backend of session {self.name}",
                            diagnostics=self.describe))

    def activity(self) -> Optional[dict]:
        """This backend's ``pg_stat_activity`` row (with ``blocking_pids``), or None if gone."""
        rows = self.server.activity(f"pid = {self.pid}")
        return rows[0] if rows else None

    def wait_state(self, state: str, timeout: float = 10.0,
                   wait_event_type: Optional[str] = None) -> dict:
        """Waits until the backend's ``state`` (and ``wait_event_type``, if given) match."""
        def check() -> Optional[dict]:
            row = self.activity()
            if row and row["state"] == state and (
                    wait_event_type is None or row["wait_event_type"] == wait_event_type):
                return row
            return None
        return wait_for(check, timeout, f"session {self.name} in state {state!r}"
                        + (f" waiting on {wait_event_type}" if wait_event_type else ""),
                        interval=0.05, diagnostics=lambda: f"{self.activity()}\n{self.describe()}")

    def backend_gone(self) -> bool:
        """True once no backend with this pid and name exists (or the server is down)."""
        if self._pid is None or not self.server.is_running():
            return True
        try:
            return not self.server.activity(
                f"pid = {self._pid} AND application_name = {quote_literal(self.name)}")
        except PsqlError:
            return not self.server.is_running()

    # ---------------------------------------------------------------- end

    def close(self, terminate_backend: bool = True, timeout: float = 5.0) -> None:
        """Ends psql (EOF, then SIGTERM/SIGKILL) and, if still there, its backend. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if terminate_backend and self._pid is not None and self.server.is_running():
            try:
                self.server.psql(
                    f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = {self._pid} "
                    f"AND application_name = {quote_literal(self.name)}", db="postgres", timeout=10)
            except (PsqlError, subprocess.TimeoutExpired):
                pass
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        for t in self._threads:
            t.join(timeout=2)
        try:
            self.server._sessions.remove(self)
        except ValueError:
            pass

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def close_all(sessions: list[Session]) -> None:
    """Closes many sessions with one ``pg_terminate_backend`` round trip."""
    if not sessions:
        return
    server = sessions[0].server
    pids = [s._pid for s in sessions if s._pid is not None]
    if server.is_running():
        try:
            server.terminate([p for p in pids if p is not None])
        except PsqlError:
            pass
    for s in sessions:
        s.close(terminate_backend=False)


# --------------------------------------------------------------------------- data and workloads


def seed(server: PostgresServer, db: str = APP_DB, rows: int = 5) -> None:
    """Creates ``events(id serial primary key, value text)`` with ``rows`` rows, as ``app``.

    Idempotent: rows are added only to an empty table.
    """
    server.psql("CREATE TABLE IF NOT EXISTS events (id serial PRIMARY KEY, value text);\n"
                "INSERT INTO events (value) SELECT 'event ' || g FROM generate_series(1, "
                f"{int(rows)}) AS g WHERE NOT EXISTS (SELECT 1 FROM events);",
                db=db, user=APP_ROLE)


def long_query(server: PostgresServer, seconds: float, name: Optional[str] = None,
               db: str = APP_DB, user: str = APP_ROLE, timeout: float = 10.0) -> Session:
    """A session running ``SELECT pg_sleep(seconds)``, returned once it shows as active."""
    s = Session(server, name or _unique("rig-long-query"), db=db, user=user)
    try:
        s.send(f"SELECT pg_sleep({float(seconds)})")
        s.wait_state("active", timeout)
    except BaseException:
        s.close()
        raise
    return s


def idle_in_transaction(server: PostgresServer, name: Optional[str] = None, db: str = APP_DB,
                        user: str = APP_ROLE, timeout: float = 10.0) -> Session:
    """A session after ``BEGIN; SELECT 1;``, returned once it shows ``idle in transaction``."""
    s = Session(server, name or _unique("rig-idle-tx"), db=db, user=user)
    try:
        s.send("BEGIN;\nSELECT 1;")
        s.wait_state("idle in transaction", timeout)
    except BaseException:
        s.close()
        raise
    return s


def blocked_migration(server: PostgresServer, table: str = "events", mode: str = "for_update",
                      db: str = APP_DB, user: str = APP_ROLE, column: Optional[str] = None,
                      timeout: float = 10.0) -> tuple[Session, Session]:
    """``(holder, migration)``: an idle-in-transaction lock holder and an ALTER TABLE behind it.

    The holder runs ``BEGIN; SELECT * FROM table FOR UPDATE;`` (``mode="for_update"``) or
    ``BEGIN; LOCK TABLE table IN ROW EXCLUSIVE MODE;`` (``mode="lock"``) and stays idle in
    transaction; the migration runs ``ALTER TABLE table ADD COLUMN <column> integer`` and
    waits on the lock. Returned once ``pg_blocking_pids(migration)`` contains the holder.
    Closing the holder lets the migration finish.
    """
    t = quote_ident(table)
    if mode == "for_update":
        take = f"SELECT * FROM {t} FOR UPDATE;"
    elif mode == "lock":
        take = f"LOCK TABLE {t} IN ROW EXCLUSIVE MODE;"
    else:
        raise ValueError(f"mode must be 'for_update' or 'lock', not {mode!r}")
    column = column or "rig_" + secrets.token_hex(4)
    holder = Session(server, _unique("rig-lock-holder"), db=db, user=user)
    migration: Optional[Session] = None
    try:
        holder.send("BEGIN;\n" + take)
        holder.wait_state("idle in transaction", timeout)
        migration = Session(server, _unique("rig-migration"), db=db, user=user)
        migration.send(f"ALTER TABLE {t} ADD COLUMN {quote_ident(column)} integer")
        migration.wait_state("active", timeout, wait_event_type="Lock")
        hpid = holder.pid
        wait_for(lambda: hpid in (migration.activity() or {}).get("blocking_pids", []), timeout,
                 "the holder in pg_blocking_pids(migration)",
                 diagnostics=lambda: f"{migration.activity()}\n{migration.describe()}")
    except BaseException:
        if migration is not None:
            migration.close()
        holder.close()
        raise
    return holder, migration


def fill_connections(server: PostgresServer, n: int, db: str = APP_DB, user: str = APP_ROLE,
                     prefix: Optional[str] = None, timeout: float = 20.0) -> list[Session]:
    """``n`` idle sessions (one psql each; fine for n ≤ 50), returned once all are connected.

    Names are ``<prefix>-<i>``. Close them with ``close_all``. While waiting, the rig's
    probe (a superuser psql) holds one more connection, in an ordinary slot if one is free.
    """
    prefix = prefix or _unique("rig-fill")
    sessions = [Session(server, f"{prefix}-{i}", db=db, user=user) for i in range(n)]
    try:
        def connected() -> bool:
            dead = [s for s in sessions if not s.alive()]
            if dead:
                raise AssertionError(f"{len(dead)} of {n} psql sessions exited: {dead[0].describe()}")
            found = {r["application_name"]: r["pid"] for r in server.activity(
                f"application_name LIKE {quote_literal(prefix + '-%')}")}
            for s in sessions:
                if s.name in found:
                    s._pid = found[s.name]
            return len(found) == n
        wait_for(connected, timeout, f"{n} connections named {prefix}-*", interval=0.1)
    except BaseException:
        close_all(sessions)
        raise
    return sessions
