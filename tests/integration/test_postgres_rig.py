"""The PostgreSQL rig's own tests: a real server, the monitor role, each workload, lifecycle.

So that a wrong rig cannot make the daemon's database tests pass: every workload is
checked in ``pg_stat_activity`` the way the daemon will look at it. Every wait is bounded.
"""

from __future__ import annotations

import os
import pwd
import unittest

import postgres_rig
from harness import wait_for
from postgres_rig import (PostgresServer, PsqlError, Session, blocked_migration, close_all,
                          fill_connections, idle_in_transaction, long_query, seed)


class WorkloadsTest(unittest.TestCase):
    """One server for the class; each test closes its own sessions."""

    server: PostgresServer

    @classmethod
    def setUpClass(cls):
        cls.server = PostgresServer(max_connections=60).start()
        cls.addClassCleanup(cls.server.close)
        seed(cls.server)
        cls.monitor = cls.server.create_monitor_role()

    def setUp(self):
        self.sessions: list[Session] = []
        self.addCleanup(lambda: close_all(self.sessions))

    def keep(self, *sessions: Session) -> None:
        self.sessions.extend(sessions)

    def test_server_answers(self):
        s = self.server
        self.assertEqual(s.psql("SELECT 1"), ["1"])
        self.assertEqual(s.psql("SELECT count(*) FROM events"), ["5"])
        settings = {r["name"]: r["setting"] for r in s.rows(
            "SELECT name, setting FROM pg_settings WHERE name IN ('listen_addresses', "
            "'max_connections', 'superuser_reserved_connections', 'fsync', 'port', "
            "'track_activity_query_size')")}
        self.assertEqual(settings, {"listen_addresses": "127.0.0.1", "max_connections": "60",
                                    "superuser_reserved_connections": "3", "fsync": "off",
                                    "port": str(s.port), "track_activity_query_size": "1024"})
        # TCP with SCRAM through dsn(): the superuser and the app role
        self.assertEqual(s.host, "127.0.0.1")
        row = s.rows("SELECT current_user AS u, host(inet_server_addr()) AS addr, "
                     "inet_server_port() AS port", password=s.superuser_password)[0]
        self.assertEqual(row, {"u": "rig", "addr": "127.0.0.1", "port": s.port})
        self.assertIn(f"port={s.port}", s.dsn())
        self.assertEqual(s.scalar("SELECT current_user", user="app", password=s.app_password), "app")
        self.assertFalse(s.can_connect(user="app", password="wrong"))
        with self.assertRaisesRegex(PsqlError, "password authentication failed"):
            s.psql("SELECT 1", user="app", password="wrong")
        self.assertTrue(os.path.exists(os.path.join(s.socket_dir, f".s.PGSQL.{s.port}")))
        self.assertTrue(os.path.isfile(s.log_path))
        if os.geteuid() == 0:  # initdb/postgres refuse root: the rig runs them as 'postgres'
            owner = os.stat(f"/proc/{s.postmaster_pid()}").st_uid
            self.assertEqual(owner, pwd.getpwnam(postgres_rig.SYSTEM_USER).pw_uid)

    def test_dsn_quotes_values(self):
        role = self.server.create_role("rig odd role", password="it's a \\ pass")
        dsn = self.server.dsn(role.name, role.password, "app")
        self.assertIn("user='rig odd role'", dsn)
        self.assertIn("password='it\\'s a \\\\ pass'", dsn)
        self.assertEqual(self.server.scalar("SELECT current_user", user=role.name,
                                            password=role.password), "rig odd role")

    def test_monitor_role_reads_other_users_queries(self):
        q = long_query(self.server, 30, name="rig-monitored")
        self.keep(q)
        select = f"SELECT usename, query FROM pg_stat_activity WHERE pid = {q.pid}"
        # control: a role without pg_monitor sees the row but not the query text
        plain = self.server.create_role("rig_plain")
        row = self.server.rows(select, user=plain.name, password=plain.password)[0]
        self.assertEqual(row["query"], "<insufficient privilege>")
        mon = self.monitor
        self.assertEqual(mon.name, "runbookd_monitor")
        row = self.server.rows(select, user=mon.name, password=mon.password)[0]
        self.assertEqual(row["usename"], "app")
        self.assertIn("pg_sleep(30", row["query"])
        facts = self.server.rows(
            "SELECT rolsuper, rolcanlogin, pg_has_role(rolname, 'pg_monitor', 'member') AS monitor, "
            "has_database_privilege(rolname, 'app', 'CONNECT') AS can_connect "
            f"FROM pg_roles WHERE rolname = '{mon.name}'")[0]
        self.assertEqual(facts, {"rolsuper": False, "rolcanlogin": True, "monitor": True,
                                 "can_connect": True})
        # pg_monitor reads; it may not end other users' sessions
        with self.assertRaisesRegex(PsqlError, "permission denied|must be a member"):
            self.server.psql(f"SELECT pg_terminate_backend({q.pid})", user=mon.name,
                             password=mon.password)
        self.assertEqual(q.activity()["state"], "active")

    def test_long_query_is_active(self):
        q = long_query(self.server, 30, name="rig-long")
        self.keep(q)
        row = q.activity()
        self.assertEqual((row["state"], row["wait_event_type"], row["wait_event"]),
                         ("active", "Timeout", "PgSleep"))
        self.assertEqual((row["application_name"], row["usename"], row["datname"]),
                         ("rig-long", "app", "app"))
        self.assertIn("pg_sleep", row["query"])

    def test_idle_in_transaction(self):
        s = idle_in_transaction(self.server, name="rig-idle")
        self.keep(s)
        rows = self.server.rows("SELECT state, xact_start IS NOT NULL AS in_xact, query "
                                f"FROM pg_stat_activity WHERE pid = {s.pid}")
        self.assertEqual(rows, [{"state": "idle in transaction", "in_xact": True,
                                 "query": "SELECT 1;"}])

    def check_blocked_migration(self, mode: str):
        holder, migration = blocked_migration(self.server, "events", mode=mode, column=f"c_{mode}")
        self.keep(holder, migration)
        m = migration.activity()
        self.assertEqual((m["state"], m["wait_event_type"]), ("active", "Lock"))
        self.assertIn(holder.pid, m["blocking_pids"])
        self.assertIn("ALTER TABLE", m["query"])
        self.assertEqual(holder.activity()["state"], "idle in transaction")
        # the query the daemon runs finds the pair
        pairs = self.server.rows(
            "SELECT w.pid AS waiting, b.pid AS blocking FROM pg_stat_activity w "
            "JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid) ON true "
            "JOIN pg_stat_activity b ON b.pid = bp.pid WHERE w.wait_event_type = 'Lock'")
        self.assertIn({"waiting": migration.pid, "blocking": holder.pid}, pairs)
        # the holder gone, the migration completes
        holder.close()
        migration.wait_state("idle", 10)
        self.assertEqual(self.server.psql(
            f"SELECT count(*) FROM information_schema.columns WHERE table_name = 'events' "
            f"AND column_name = 'c_{mode}'"), ["1"])

    def test_blocked_migration_behind_select_for_update(self):
        self.check_blocked_migration("for_update")

    def test_blocked_migration_behind_lock_table(self):
        self.check_blocked_migration("lock")

    def test_fill_connections(self):
        before = self.server.client_backends()
        sessions = fill_connections(self.server, 20)
        self.keep(*sessions)
        self.assertEqual(self.server.client_backends(), before + 20)
        self.assertEqual(len({s.pid for s in sessions}), 20)
        self.assertEqual({s.activity()["state"] for s in sessions[:3]}, {"idle"})
        close_all(sessions)
        wait_for(lambda: self.server.client_backends() == before, 10, "the filled connections to end")

    def test_session_close_ends_its_backend(self):
        q = long_query(self.server, 60)
        self.keep(q)
        pid = q.pid
        q.close()
        q.close()  # idempotent
        self.assertFalse(q.alive())
        wait_for(q.backend_gone, 5, f"backend {pid} to end")


class LifecycleTest(unittest.TestCase):
    """A small server (max_connections=10) that tests stop, restart and crash; each test
    leaves it running."""

    server: PostgresServer

    @classmethod
    def setUpClass(cls):
        cls.server = PostgresServer(max_connections=10).start()
        cls.addClassCleanup(cls.server.close)
        seed(cls.server)

    def tearDown(self):
        if not self.server.is_running():
            self.server.start()

    def test_connection_limit(self):
        # 10 - superuser_reserved_connections (3) = 7 slots for everyone else. The rig's
        # own probes (superuser psql) take a free ordinary slot while they run, so the
        # seventh app session is opened when no probe runs.
        sessions = fill_connections(self.server, 6)
        self.addCleanup(close_all, sessions)
        # A probe's backend may still be exiting when the seventh connects: retry until its
        # slot is free (bounded).
        def open_seventh():
            s = Session(self.server, "rig-seventh")
            self.addCleanup(s.close)
            try:
                return s if s.pid > 0 else None
            except AssertionError:  # refused: the slot was still taken
                s.close()
                return None
        seventh = wait_for(open_seventh, 10, "a seventh app session")
        self.assertGreater(seventh.pid, 0)
        self.assertEqual(self.server.client_backends(), 7)
        extra = Session(self.server, "rig-one-too-many")
        self.addCleanup(extra.close)
        wait_for(lambda: not extra.alive(), 10, "the eighth app connection to be refused")
        self.assertRegex("\n".join(extra.errors()), "reserved for non-replication superuser|"
                                                    "too many clients")
        self.assertEqual(self.server.psql("SELECT 1"), ["1"])  # the superuser still gets in

    def test_stop_makes_connections_fail(self):
        s = self.server
        self.server.stop()
        self.assertFalse(s.is_running())
        self.assertFalse(s.can_connect())  # unix socket
        self.assertFalse(s.can_connect(user="app", password=s.app_password))  # TCP
        s.stop()  # no-op when stopped
        s.start()
        self.assertTrue(s.can_connect(user="app", password=s.app_password))

    def test_restart(self):
        s = self.server
        session = idle_in_transaction(s)
        self.addCleanup(session.close)
        old = s.postmaster_pid()
        s.restart()
        self.assertNotEqual(s.postmaster_pid(), old)
        self.assertEqual(s.psql("SELECT count(*) > 0 FROM events"), ["t"])
        self.assertTrue(session.backend_gone())
        self.assertEqual(s.client_backends(), 0)

    def test_kill_then_start_recovers(self):
        s = self.server
        s.psql("INSERT INTO events (value) VALUES ('before the crash')", user="app")
        q = long_query(s, 60)
        self.addCleanup(q.close)
        s.kill()
        self.assertFalse(s.is_running())
        self.assertEqual(s.cluster_pids(), [])
        self.assertFalse(s.can_connect())
        s.start()
        self.assertIn("not properly shut down; automatic recovery in progress", s.log())
        self.assertEqual(s.psql("SELECT count(*) FROM events WHERE value = 'before the crash'"),
                         ["1"])
        wait_for(lambda: not q.alive() or q.errors(), 5, "the killed session's psql to notice")


class CloseTest(unittest.TestCase):
    def test_close_is_idempotent_and_removes_everything(self):
        s = PostgresServer(max_connections=5).start()
        q = long_query(s, 60)
        pid = s.postmaster_pid()
        s.close()
        s.close()
        self.assertFalse(os.path.exists(s.dir))
        self.assertFalse(postgres_rig._alive(pid))
        self.assertFalse(q.alive())
        with self.assertRaises(RuntimeError):
            s.start()


if __name__ == "__main__":
    unittest.main()
