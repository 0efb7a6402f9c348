"""The Cloud SQL and status-feed sources against fakes of Google's APIs (api-facts §3):
tokens from a service-account key (a JWT the fake token endpoint verifies with the key's
public half) or from the metadata server; Cloud SQL CPU, memory and connections from Cloud
Monitoring (newest first, int64 as strings, no data as "no data"); the instance's state and
scheduled maintenance; status-feed incidents; errors, 429s, slow and dropped answers; a point
Cloud Monitoring makes visible late, read when it appears, once, at its own time; scheduled
maintenance and the maintenance window dated from the world; and end to end, sustained high
CPU and running maintenance each rank their cause first."""

from __future__ import annotations

import os
import unittest
from datetime import datetime, timedelta, timezone

import fake_google as fg
import harness
import pagerduty
from harness import wait_for

PROJECT = fg.DEFAULT_PROJECT
INSTANCE = "dark-west"
DATABASE_ID = f"{PROJECT}:{INSTANCE}"
MEMORY = "cloudsql.googleapis.com/database/memory/utilization"


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def minutes_ago(values: list[float]) -> list[tuple[datetime, float]]:
    """One point a minute on whole minutes, the last one ending two minutes ago (the source
    reads up to the last whole minute before now), oldest first."""
    t = now().replace(second=0) - timedelta(minutes=1)
    return [(t - timedelta(minutes=len(values) - i), v) for i, v in enumerate(values)]


class GoogleRig(harness.SourceRig):
    """The fakes and a daemon polling them every second."""

    def __init__(self, name: str, credentials: str = "key_file", extra: dict | None = None):
        self.tokens = fg.TokenBook()
        self.google = fg.FakeGoogle(tokens=self.tokens)
        self.metadata = fg.FakeMetadata(tokens=self.tokens)
        self.tmp = harness.make_tempdir("runbookd-it-gkey-")
        self.key = fg.make_service_account_key(self.tmp, token_uri=self.google.token_url)
        self.google.register_key(self.key)
        self.google.set_instance(PROJECT, INSTANCE, fg.sql_instance(INSTANCE, PROJECT))
        google = {
            "project": PROJECT,
            "monitoring_url": self.google.url,
            "sqladmin_url": self.google.url,
            "ca_file": self.google.ca_file,
            "request_timeout": "2s",
        }
        if credentials == "key_file":
            google.update({"credentials": "key_file", "key_file": self.key.path})
        else:
            google.update({"credentials": "metadata", "metadata_url": self.metadata.url})
        self.rig = harness.DaemonWithDiscord(harness.deep_merge({
            "log": {"level": "debug"},
            "operations": {"edit_interval": "0s"},
            "google": google,
            "cloudsql": {"instance": INSTANCE, "monitoring_interval": "1s", "instance_interval": "1s"},
            "gcp_status": {"enabled": True, "url": self.google.url + "/incidents.json", "interval": "1s",
                           "locations": ["us-central1"]},
        }, extra or {}), name=name)

    def start(self) -> "GoogleRig":
        self.rig.start()
        return self

    def close(self) -> None:
        try:
            self.rig.stop()
        finally:
            self.rig.close()
            self.google.close()
            self.metadata.close()

    def diagnostics(self) -> str:
        reqs = self.google.snapshot_requests()[-10:]
        lines = [f"{r.method} {r.path} -> {r.status} {r.fault or ''}" for r in reqs]
        return "--- fake Google requests (last 10) ---\n" + "\n".join(lines) + "\n" + self.rig.diagnostics()

    def monitoring_requests(self) -> list:
        return [r for r in self.google.snapshot_requests() if r.path.endswith("/timeSeries")]


class CloudSqlTests(unittest.TestCase):
    """One daemon on a service-account key; each test sets what it needs."""

    @classmethod
    def setUpClass(cls):
        cls.g = GoogleRig(cls.__name__)
        cls.g.google.set_points(fg.CPU_UTILIZATION, DATABASE_ID, minutes_ago([0.41, 0.42, 0.43]))
        cls.g.google.set_points(MEMORY, DATABASE_ID, minutes_ago([0.61, 0.62]))
        cls.g.google.set_points(fg.NUM_BACKENDS, DATABASE_ID, minutes_ago([40, 42]))
        cls.g.start()
        cls.g.wait_source("cloudsql", "healthy")

    @classmethod
    def tearDownClass(cls):
        g = cls.g
        try:
            g.close()
        finally:
            g.daemon.assert_no_secret([*g.rig.tokens, *[t.value for t in g.tokens.snapshot()]])
            key_body = g.key.private_key.splitlines()[1]
            g.daemon.assert_no_secret([key_body])

    def test_the_token_comes_from_a_verified_jwt_grant(self):
        a = self.g.google.assertions[0]
        self.assertEqual(a.header["alg"], "RS256")
        self.assertEqual(a.header["kid"], self.g.key.private_key_id)
        self.assertEqual(a.claims["iss"], self.g.key.client_email)
        self.assertEqual(a.claims["aud"], self.g.google.token_url)
        self.assertEqual(a.claims["exp"] - a.claims["iat"], 3600)
        self.assertIn("https://www.googleapis.com/auth/cloud-platform", a.claims["scope"].split())
        # One token serves every request until it nears expiry (or is refused).
        grants, polls = len(self.g.google.assertions), len(self.g.monitoring_requests())
        wait_for(lambda: len(self.g.monitoring_requests()) >= polls + 6, 10, "two monitoring polls")
        self.assertEqual(len(self.g.google.assertions), grants)
        auths = {r.headers.get("authorization") for r in self.g.monitoring_requests()[polls + 1:]}
        self.assertEqual(auths, {"Bearer " + self.g.google.issued[-1].value})

    def test_each_point_is_a_signal_once_oldest_first(self):
        cpu = self.g.wait_signals("db.cpu", 3, subject=INSTANCE)
        self.assertEqual([s["value"] for s in cpu[:3]], [0.41, 0.42, 0.43])
        polls = len(self.g.monitoring_requests())
        wait_for(lambda: len(self.g.monitoring_requests()) >= polls + 6, 10, "more monitoring polls")
        values = [s["value"] for s in self.g.signals("db.cpu")]
        self.assertEqual(len(values), len(set(values)), "a point already seen is not handed over again")
        self.assertEqual([s["value"] for s in self.g.wait_signals("db.memory", 2)], [0.61, 0.62])
        self.assertEqual([s["value"] for s in self.g.wait_signals("db.connections", 2)], [40, 42])
        q = self.g.monitoring_requests()[0].query
        self.assertEqual(q["view"], "FULL")
        self.assertIn(f'resource.labels.database_id="{DATABASE_ID}"', q["filter"])

    def test_a_new_point_arrives_later(self):
        self.g.wait_signals("db.cpu", 3)
        # A point for the last whole minute, newer than every point handed over so far.
        self.g.google.set_points(fg.CPU_UTILIZATION, DATABASE_ID,
                                 [(now().replace(second=0) - timedelta(minutes=1), 0.77)])
        wait_for(lambda: any(s["value"] == 0.77 for s in self.g.signals("db.cpu")), 10, "the new point")

    def test_the_source_is_healthy_and_counted(self):
        self.assertEqual(self.g.metric("runbookd_source_up", source="cloudsql"), 1)
        self.assertGreater(self.g.metric("runbookd_source_polls_total", source="cloudsql", job="instance",
                                         outcome="ok"), 0)
        self.assertGreater(self.g.metric("runbookd_source_last_success_timestamp_seconds", source="cloudsql",
                                         job="monitoring"), 0)

    def test_a_429_fails_the_source_with_googles_words_then_it_recovers(self):
        seen = len(self.g.source_statuses("cloudsql"))
        self.g.google.fail_next("/v3/", 429, count=3)
        failing = self.g.wait_source("cloudsql", "failing", after=seen, error="429")
        self.assertIn("RESOURCE_EXHAUSTED", failing["error"])
        self.g.wait_source("cloudsql", "healthy", after=seen + 1)

    def test_a_revoked_token_is_replaced_after_a_401(self):
        grants = len(self.g.google.assertions)
        self.g.google.revoke_tokens()
        wait_for(lambda: len(self.g.google.assertions) > grants, 15, "a new JWT grant after the 401",
                 diagnostics=self.g.diagnostics)

    def test_a_slow_or_dropped_answer_fails_the_poll_not_the_daemon(self):
        seen = len(self.g.source_statuses("cloudsql"))
        self.g.google.delay("/v1/projects", 5, count=1)  # past request_timeout: 2s
        self.g.wait_source("cloudsql", "failing", after=seen, error="instance")
        self.g.wait_source("cloudsql", "healthy", after=seen + 1)
        seen = len(self.g.source_statuses("cloudsql"))
        # A dropped keep-alive connection is retried once on a fresh one: drop that too.
        self.g.google.drop_next("/v1/projects", count=2)
        self.g.wait_source("cloudsql", "failing", after=seen, error="instance")
        self.g.wait_source("cloudsql", "healthy", after=seen + 1)


class NoDataTests(unittest.TestCase):
    def test_no_series_is_no_data_not_zero_and_the_metadata_server_gives_the_token(self):
        g = GoogleRig(type(self).__name__, credentials="metadata").start()
        try:
            g.wait_source("cloudsql", "healthy")
            wait_for(lambda: len(g.monitoring_requests()) >= 6, 10, "two monitoring polls")
            self.assertEqual(g.signals("db.cpu"), [])
            self.assertEqual(g.signals("db.memory"), [])
            md = [r for r in g.metadata.snapshot_requests() if "service-accounts/default/token" in r.path]
            self.assertTrue(md)
            self.assertEqual(md[0].headers.get("metadata-flavor"), "Google")
            self.assertEqual(g.google.assertions, [])
        finally:
            g.close()


class LatePointTests(unittest.TestCase):
    def test_a_late_point_is_read_when_it_appears_once_at_its_own_time(self):
        g = GoogleRig(type(self).__name__)
        points = minutes_ago([0.41, 0.97, 0.43])
        late_at = points[1][0]
        g.google.set_points(fg.CPU_UTILIZATION, DATABASE_ID, points, late=[late_at])
        g.start()
        try:
            first = g.wait_signals("db.cpu", 2, subject=INSTANCE)
            self.assertEqual([s["value"] for s in first], [0.41, 0.43])
            polls = len(g.monitoring_requests())
            wait_for(lambda: len(g.monitoring_requests()) >= polls + 6, 10, "more monitoring polls")
            self.assertEqual(len(g.signals("db.cpu")), 2, "not visible yet, not read")
            self.assertEqual(g.google.publish_late(), 1)
            late = g.wait_signal("db.cpu", where=lambda s: s["value"] == 0.97)
            self.assertEqual(fg.parse_rfc3339(late["at"]), late_at, "dated at its own time")
            polls = len(g.monitoring_requests())
            wait_for(lambda: len(g.monitoring_requests()) >= polls + 6, 10, "more monitoring polls")
            self.assertEqual(sorted(s["value"] for s in g.signals("db.cpu")), [0.41, 0.43, 0.97],
                             "each point handed over once")
            # Later reads re-read a trailing window rather than start after the newest point.
            q = g.monitoring_requests()[-1].query
            span = fg.parse_rfc3339(q["interval.endTime"]) - fg.parse_rfc3339(q["interval.startTime"])
            self.assertGreaterEqual(span, timedelta(minutes=10))
        finally:
            g.close()


class MaintenanceTests(unittest.TestCase):
    def test_scheduled_maintenance_and_the_window_are_dated_from_the_world(self):
        g = GoogleRig(type(self).__name__)
        t = now()
        this_hour = t.replace(minute=0, second=0)
        scheduled = this_hour + timedelta(hours=2)
        deadline = scheduled + timedelta(days=3)
        g.google.set_instance(PROJECT, INSTANCE, fg.sql_instance(
            INSTANCE, PROJECT, window_day=t.isoweekday(), window_hour=t.hour, update_track="canary",
            scheduled_start=scheduled, can_reschedule=False, deadline=deadline))
        g.start()
        try:
            s = g.wait_signal("db.maintenance", which="scheduled")
            self.assertEqual(fg.parse_rfc3339(s["at"]), scheduled, "dated at the scheduled start")
            self.assertEqual((s["start"], s["end"]),
                             (scheduled.strftime("%H:%M UTC"), (scheduled + timedelta(hours=1)).strftime("%H:%M UTC")))
            self.assertEqual((s["can_reschedule"], s["deadline"], s["update_track"]),
                             ("false", deadline.strftime("%Y-%m-%dT%H:%M:%SZ"), "canary"))
            windows = g.wait_signals("db.maintenance", 2, which="window")
            self.assertEqual({fg.parse_rfc3339(w["at"]) for w in windows[:2]},
                             {this_hour, this_hour + timedelta(days=7)}, "this week's window and next week's")
            self.assertEqual(g.signals("db.unavailable"), [])
            self.assertEqual(g.signals("db.maintenance", which="running"), [])
        finally:
            g.close()


class StatusFeedTests(unittest.TestCase):
    def test_incidents_for_our_products_and_regions_only(self):
        g = GoogleRig(type(self).__name__)
        g.google.set_incidents([
            fg.incident("inc-sql", "Cloud SQL connectivity issues in us-central1", products=["Cloud SQL"],
                        locations=["us-central1"]),
            fg.incident("inc-bq", "BigQuery slow queries", products=["BigQuery"], locations=["us-central1"]),
            fg.incident("inc-eu", "Cloud SQL issues in europe-west1", products=["Cloud SQL"],
                        locations=["europe-west1"]),
            fg.incident("inc-old", "Resolved GKE issue", products=["Google Kubernetes Engine"],
                        locations=["us-central1"], end=now() - timedelta(hours=1)),
        ])
        g.start()
        try:
            g.wait_signals("gcp.incident", subject="inc-sql")
            g.wait_source("gcp_status", "healthy")
            g.wait_source("cloudsql", "healthy")
            wait_for(lambda: len([r for r in g.google.snapshot_requests() if r.path == "/incidents.json"]) >= 3,
                     10, "three feed polls")
            self.assertEqual({s["subject"] for s in g.signals("gcp.incident")}, {"inc-sql"})
            inc = g.rig.trigger(pagerduty.Incident(title="Editor cannot reach the DB",
                                                   service_name=harness.SERVICE_NAME))
            text = g.wait_operations(inc, "Google Cloud is having an outage", "#operations with the incident")
            self.assertIn("Cloud SQL connectivity issues in us-central1", text)
            self.assertIn("status.cloud.google.com/incidents/inc-sql", text)
        finally:
            g.close()


class EndToEndTests(unittest.TestCase):
    def test_sustained_high_cpu_ranks_db_trouble_first(self):
        g = GoogleRig(type(self).__name__)
        g.google.set_points(fg.CPU_UTILIZATION, DATABASE_ID,
                            minutes_ago([0.45, 0.93, 0.95, 0.96, 0.97, 0.97, 0.98, 0.98]))
        g.start()
        try:
            g.wait_signals("db.cpu", 8)
            g.wait_source("cloudsql", "healthy")  # both jobs have run: every kind is checkable
            inc = g.rig.trigger(pagerduty.Incident(title="API latency above 2s", service_name=harness.SERVICE_NAME))
            text = g.wait_operations(inc, "Something is going wrong with the DB", "#operations with the CPU")
            self.assertIn("**1. Something is going wrong with the DB", text)
            self.assertIn(f"Cloud SQL {INSTANCE} CPU at 98%", text)
            self.assertIn("Open the CPU graph of dark-west", text)
            self.assertNotIn("cloudsql source is", text)
        finally:
            g.close()

    def test_running_maintenance_ranks_the_maintenance_first(self):
        g = GoogleRig(type(self).__name__)
        start = now() - timedelta(minutes=5)
        g.google.set_instance(PROJECT, INSTANCE, fg.sql_instance(INSTANCE, PROJECT, state="MAINTENANCE",
                                                                 scheduled_start=start))
        g.start()
        try:
            running = g.wait_signal("db.maintenance", which="running")
            self.assertEqual(fg.parse_rfc3339(running["at"]), start, "dated at the scheduled start")
            down = g.wait_signal("db.unavailable")
            self.assertEqual(down["state"], "MAINTENANCE")
            g.wait_source("cloudsql", "healthy")
            inc = g.rig.trigger(pagerduty.Incident(title="Editor returns 500s", service_name=harness.SERVICE_NAME))
            text = g.wait_operations(inc, f"Cloud SQL maintenance of {INSTANCE}", "#operations with the maintenance")
            self.assertIn("**1. Our quarterly DB maintenance", text)
            self.assertIn(f"Cloud SQL {INSTANCE} is down for maintenance", text)
        finally:
            g.close()


if __name__ == "__main__":
    unittest.main()
