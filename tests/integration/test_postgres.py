"""The Postgres source against a real PostgreSQL server (Debian's, started by the tests on
loopback in a temp dir): long queries, idle transactions, a migration blocked behind a lock
holder, connections near max_connections, the server stopped mid-run; and end to end, a
page during the blocked migration ranks "a bad migration or manual DB query" first with the
lock holder's pid in the action."""

from __future__ import annotations

import unittest

import harness
import pagerduty
import postgres_rig as pg
from harness import wait_for

INSTANCE = "dark-west"


class PostgresRig(harness.SourceRig):
    """A real server, a monitoring role, and a daemon polling it every second."""

    def __init__(self, name: str, max_connections: int = 30, extra: dict | None = None):
        self.server = pg.PostgresServer(max_connections=max_connections).start()
        pg.seed(self.server)
        self.role = self.server.create_monitor_role(password="mon-" + harness.unique_token(16))
        self.rig = harness.DaemonWithDiscord(harness.deep_merge({
            "log": {"level": "debug"},  # "signal" lines
            "operations": {"edit_interval": "0s"},
            "postgres": {
                "dsn": self.server.dsn(user=self.role.name, password=self.role.password, db="app"),
                "instance": INSTANCE,
                "interval": "1s",
                "long_query_threshold": "2s",
                "migration_threshold": "1s",
                "idle_in_transaction_threshold": "2s",
                "lock_wait_threshold": "1s",
                "connect_timeout": "2s",
            },
        }, extra or {}), name=name)
        self.sessions: list[pg.Session] = []

    def start(self) -> "PostgresRig":
        self.rig.start()
        return self

    def close(self) -> None:
        try:
            pg.close_all(self.sessions)
            self.rig.stop()
        finally:
            self.rig.close()
            self.server.close()

    def diagnostics(self) -> str:
        return self.server.log_tail(15) + "\n" + self.rig.diagnostics()

    def close_and_check(self) -> None:
        """Closes everything, then: no secret in the logs, every line well formed."""
        try:
            self.close()
        finally:
            self.daemon.assert_no_secret([self.role.password, *self.rig.tokens])
            self.daemon.assert_logs_well_formed()

    def keep(self, session: pg.Session) -> pg.Session:
        self.sessions.append(session)
        return session


class PostgresSignalsTests(unittest.TestCase):
    """One server and daemon; each test makes its own sessions and closes them."""

    @classmethod
    def setUpClass(cls):
        cls.p = PostgresRig(cls.__name__).start()
        cls.p.wait_source("postgres", "healthy")

    @classmethod
    def tearDownClass(cls):
        cls.p.close_and_check()

    def test_the_source_is_up_and_counts_connections(self):
        self.assertEqual(self.p.metric("runbookd_source_up", source="postgres"), 1)
        sessions = [self.p.keep(s) for s in pg.fill_connections(self.p.server, 3)]
        # The server's own count, the monitor and these three included (the asking psql not).
        expected = self.p.server.client_backends()
        self.assertGreaterEqual(expected, 4)
        self.p.wait_signal("db.connections", subject=INSTANCE, where=lambda e: e["value"] >= expected)
        for s in sessions:
            s.close()
        self.assertGreater(self.p.metric("runbookd_source_polls_total", source="postgres", job="activity",
                                         outcome="ok"), 0)

    def test_a_long_query_is_seen_with_its_pid(self):
        s = self.p.keep(pg.long_query(self.p.server, 30, name="report-job"))
        first = self.p.wait_signal("db.long_query", subject=str(s.pid))
        self.assertEqual(first["source"], "postgres")
        # One sample a poll, its value the time the query has run.
        self.p.wait_signal("db.long_query", subject=str(s.pid), where=lambda e: e["value"] >= first["value"] + 1)
        s.close()

    def test_a_short_query_is_not_a_long_one(self):
        s = self.p.keep(pg.long_query(self.p.server, 1.5, name="quick"))
        pid = str(s.pid)
        before = len(self.p.signals("db.connections"))
        # Two polls after it ended, it was never reported.
        wait_for(lambda: len(self.p.signals("db.connections")) >= before + 3, 10, "three more polls")
        self.assertEqual(self.p.signals("db.long_query", subject=pid), [])
        s.close()

    def test_a_session_idle_in_a_transaction(self):
        s = self.p.keep(pg.idle_in_transaction(self.p.server, name="forgotten-psql"))
        sig = self.p.wait_signal("db.idle_in_transaction", subject=str(s.pid))
        self.assertGreaterEqual(sig["value"], 2)
        s.close()

    def test_a_migration_blocked_behind_a_lock_holder(self):
        holder, migration = pg.blocked_migration(self.p.server, table="events")
        self.p.keep(holder)
        self.p.keep(migration)
        wait = self.p.wait_signal("db.lock_wait", subject=str(migration.pid))
        self.assertGreaterEqual(wait["value"], 1)
        # The waiting ALTER TABLE is a migration in progress as well.
        self.p.wait_signal("db.long_query", subject=str(migration.pid))
        migration.close()
        holder.close()

    def test_connections_near_max_connections(self):
        sessions = [self.p.keep(s) for s in pg.fill_connections(self.p.server, 20)]
        self.p.wait_signal("db.connections", subject=INSTANCE, where=lambda e: e["value"] >= 21)
        for s in sessions:
            s.close()


class PostgresOutageTests(unittest.TestCase):
    def test_the_server_stopped_mid_run_is_unreachable_then_recovers(self):
        p = PostgresRig(type(self).__name__).start()
        try:
            p.wait_source("postgres", "healthy")
            seen = len(p.source_statuses("postgres"))
            p.server.stop()
            p.wait_signal("db.unreachable", subject=INSTANCE)
            failing = p.wait_source("postgres", "failing", after=seen)
            self.assertRegex(failing["error"], "cannot connect|connection lost")
            self.assertEqual(p.metric("runbookd_source_up", source="postgres"), 0)
            # While it is down, a page says the database refused the monitor (checked, found),
            # and that the other Postgres evidence could not be checked.
            inc = p.rig.trigger(pagerduty.Incident(title="API errors while the DB is down",
                                                   service_name=harness.SERVICE_NAME))
            text = p.wait_operations(inc, "the database refused the monitor", "#operations with db.unreachable")
            self.assertIn("the postgres source is failing", text)
            after = len(p.source_statuses("postgres"))
            p.server.start()
            p.wait_source("postgres", "healthy", after=after)
        finally:
            p.close()
            p.daemon.assert_no_secret([p.role.password])

    def test_wrong_password_is_unreachable_and_says_why_without_the_password(self):
        p = PostgresRig(type(self).__name__)
        wrong = "wrong-" + harness.unique_token(16)
        p.rig.config["postgres"]["dsn"] = p.server.dsn(user=p.role.name, password=wrong, db="app")
        p.daemon.config = p.rig.config
        with open(p.daemon.config_path, "w") as f:
            f.write(harness.to_yaml(p.rig.config) + "\n")
        p.start()
        try:
            failing = wait_for(lambda: next((e for e in p.source_statuses("postgres")
                                             if "password authentication failed" in e.get("error", "")), None),
                               20, "the authentication failure named", diagnostics=p.diagnostics)
            self.assertNotIn(wrong, failing["error"])
            p.wait_signal("db.unreachable", subject=INSTANCE)
        finally:
            p.close()
            p.daemon.assert_no_secret([wrong, p.role.password])


class PostgresPrivilegeTests(unittest.TestCase):
    def test_a_role_without_pg_monitor_fails_the_source_rather_than_seeing_nothing(self):
        p = PostgresRig(type(self).__name__)
        weak = p.server.create_role("runbookd_weak", password="weak-" + harness.unique_token(16))
        p.rig.config["postgres"]["dsn"] = p.server.dsn(user=weak.name, password=weak.password, db="app")
        with open(p.daemon.config_path, "w") as f:
            f.write(harness.to_yaml(p.rig.config) + "\n")
        p.start()
        try:
            failing = p.wait_source("postgres", "failing", error="cannot see other sessions")
            self.assertIn("GRANT pg_monitor TO runbookd_weak;", failing["error"])
            self.assertEqual(p.signals("db.unreachable"), [], "reachable, just not allowed to look")
        finally:
            p.close()


BILLING = "PBILL01"
STATS = "PSTAT01"
SERVICES = {
    "services": {
        harness.SERVICE_ID: {"postgres": {"applications": ["editor-*"]}},
        BILLING: {"name": "Billing", "postgres": {"applications": ["billing-*"], "users": ["billing"]}},
        STATS: {"name": "Stats", "postgres": {"applications": ["stats-*"]}},
    },
}


class PostgresServicesTests(unittest.TestCase):
    """Sessions named for their services (services.<id>.postgres), and online maintenance
    that blocks no one is not a migration."""

    @classmethod
    def setUpClass(cls):
        cls.p = PostgresRig(cls.__name__, extra=SERVICES).start()
        # Slow on purpose, one second a row: an index build and a table rewrite that last.
        cls.p.server.psql(
            "CREATE FUNCTION slow_key(v int) RETURNS int IMMUTABLE LANGUAGE plpgsql "
            "AS $$ BEGIN PERFORM pg_sleep(1); RETURN v; END $$;\n"
            "CREATE FUNCTION slow_default() RETURNS int VOLATILE LANGUAGE plpgsql "
            "AS $$ BEGIN PERFORM pg_sleep(1); RETURN 0; END $$;\n"
            "CREATE TABLE invoices (id int);\n"
            "INSERT INTO invoices SELECT g FROM generate_series(1, 8) AS g;\n"
            "CREATE TABLE ledger (id int);\n"
            "INSERT INTO ledger SELECT g FROM generate_series(1, 12) AS g;",
            user=pg.APP_ROLE)
        cls.p.wait_source("postgres", "healthy")

    @classmethod
    def tearDownClass(cls):
        cls.p.close_and_check()

    def session(self, name: str, sql: str, state: str = "active", **wait) -> pg.Session:
        s = self.p.keep(pg.Session(self.p.server, name=name + "-" + harness.unique_token(6)))
        s.send(sql)
        s.wait_state(state, **wait)
        return s

    def test_an_index_built_concurrently_that_blocks_no_one_is_not_a_migration(self):
        build = self.session("billing-indexer", "CREATE INDEX CONCURRENTLY invoices_key ON invoices (slow_key(id))")
        pid = str(build.pid)
        # Past the long-query threshold (2 s) it is a long query of Billing's, not a migration,
        # though the migration threshold (1 s) passed long before.
        sig = self.p.wait_signal("db.long_query", subject=pid)
        self.assertEqual(sig["ddl"], "online")
        self.assertEqual(sig["is_ddl"], "false")
        self.assertEqual(sig["services"], BILLING)
        self.assertGreaterEqual(sig["value"], 2)
        before = len(self.p.signals("db.connections"))
        wait_for(lambda: len(self.p.signals("db.connections")) >= before + 2, 10, "two more polls")
        self.assertEqual([s for s in self.p.signals("db.long_query", subject=pid) if s["is_ddl"] != "false"], [])
        build.close()

    def test_a_table_rewrite_others_wait_on_is_a_migration_of_both_services(self):
        migration = self.session("billing-migrate", "ALTER TABLE ledger ADD COLUMN due int DEFAULT slow_default()")
        reader = self.session("editor-web", "SELECT count(*) FROM ledger", wait_event_type="Lock")
        both = ",".join(sorted([BILLING, harness.SERVICE_ID]))
        wait = self.p.wait_signal("db.lock_wait", subject=str(reader.pid), where=lambda e: e["value"] >= 1)
        self.assertEqual(wait["blocked_by"], str(migration.pid))
        self.assertEqual(wait["services"], both)
        # The rewrite is a migration from its own threshold; once the editor waits on it, it
        # names the editor's service as well as its own, and never Stats.
        self.p.wait_signal("db.long_query", subject=str(migration.pid), services=both)
        for sig in self.p.signals("db.long_query", subject=str(migration.pid)):
            self.assertEqual(sig["is_ddl"], "true")
            self.assertEqual(sig["ddl"], "blocking")
            self.assertNotIn(STATS, sig["services"])
        reader.close()
        migration.close()


class PostgresEndToEndTests(unittest.TestCase):
    def test_a_page_during_a_blocked_migration_names_the_lock_holder(self):
        p = PostgresRig(type(self).__name__).start()
        try:
            p.wait_source("postgres", "healthy")
            holder, migration = pg.blocked_migration(p.server, table="events")
            p.keep(holder)
            p.keep(migration)
            p.wait_signal("db.lock_wait", subject=str(migration.pid))
            inc = p.rig.trigger(pagerduty.Incident(title="Queue delay above 5 minutes",
                                                   service_name=harness.SERVICE_NAME))
            text = p.wait_operations(inc, f"pg_cancel_backend({holder.pid})", "#operations with the holder's pid")
            self.assertIn("**1. A bad migration or manual DB query", text)
            self.assertIn(f"SELECT pg_terminate_backend({holder.pid});", text)
            self.assertIn(f"pid {migration.pid} has waited", text)
            self.assertIn("ALTER TABLE \"events\" ADD COLUMN", text)
            self.assertNotIn("postgres source is", text)  # checked, not "not checkable"
        finally:
            p.close()


if __name__ == "__main__":
    unittest.main()
