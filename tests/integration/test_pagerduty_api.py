"""The pagerduty_api source end to end, against fake_pagerduty (HTTPS, the test PKI):

* a daemon stopped, an incident triggered at PagerDuty meanwhile, the daemon started again:
  its #status notice goes out within the first reconciliation, marked "(posted late:
  triggered at HH:MM UTC)", and #operations shows the first alert's summary and a custom
  detail as the indicator; the webhook that comes after all makes no second notice;
* an incident resolved at PagerDuty whose webhook was lost gets its resolved post from the
  next reconciliation, marked late; the late webhook makes no second one;
* a note added and an incident resolved at PagerDuty while their webhooks are lost: the
  next reconciliation reads them from ``GET /log_entries`` (the note's text from
  ``/incidents/{id}/notes`` when the entry lacks it): the next #status update carries the
  note as the latest news, dated when it was written, and the resolved post goes out once,
  without a ``GET /incidents/{id}``; the note is asked for once, not at every reconciliation
  that reads it again;
* maintenance windows (``GET /maintenance_windows?filter=open``): an ongoing window and one
  starting within the hour become ``pagerduty.maintenance`` signals dated at their start, with
  the services, description and link; one starting later does not (yet); ``maintenance_windows:
  false`` reads none;
* a refused key (401), rate limiting (429 with ratelimit-reset), a 5xx, a malformed body
  and a slow API turn the source failing with a clear error (log line and
  ``runbookd_source_up{source="pagerduty_api"}`` 0), the daemon keeps running, and the source
  recovers; the API token never appears in the output.

The fake's own pagination, offset bound, 401 and 429 are checked in test_fake_pagerduty."""

from __future__ import annotations

import unittest
from datetime import datetime, timedelta, timezone
from typing import Optional

import fake_pagerduty
import harness
import pagerduty
from harness import stays

TOKEN = "u+PDAPI-" + harness.unique_token(20)


class Rig(harness.SourceRig):
    def __init__(self, interval: str, timeout: str = "2s", overrides: Optional[dict] = None,
                 api: Optional[dict] = None):
        self.fake = fake_pagerduty.FakePagerDuty(token=TOKEN).start()
        pki = harness.test_pki()
        self.rig = harness.DaemonWithDiscord({
            "log": {"level": "debug"},
            "pagerduty_api": {"token": "${PD_API_TOKEN}", "url": self.fake.url, "ca_file": pki.ca_cert,
                              "interval": interval, "timeout": timeout, **(api or {})},
            **(overrides or {}),
        }, name="pagerduty_api")
        self.env = {"PD_API_TOKEN": TOKEN}

    def start(self) -> "Rig":
        self.rig.start(env=self.env)
        return self

    def restart_daemon(self) -> None:
        """Starts the stopped daemon again (on a new port) and points the webhook sender at it."""
        self.daemon.start(env=self.env)
        self.rig.pd = self.daemon.sender([self.rig.secret])

    def close(self) -> None:
        try:
            self.rig.stop()
        finally:
            self.rig.close()
            self.fake.stop()
        self.daemon.assert_no_secret([TOKEN] + self.rig.tokens)
        self.daemon.assert_logs_well_formed()

    def diagnostics(self) -> str:
        reqs = self.fake.snapshot_requests()
        return ("--- fake PagerDuty (last 10) ---\n" +
                "\n".join(f"{r.method} {r.target} -> {r.status} {r.fault or ''}" for r in reqs[-10:]) +
                "\n" + self.rig.diagnostics())

    def listings(self) -> int:
        return len([r for r in self.fake.snapshot_requests() if r.path == "/incidents"])


def hhmm(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%H:%M UTC")


class PagerDutyApiTest(unittest.TestCase):
    def test_restart_posts_a_late_notice_within_one_reconciliation(self):
        # One reconciliation at start, the next a minute on; no page-time refresh (which would
        # run one more as the incident opens), so that any second listing would be a retry.
        rig = Rig(interval="60s", overrides={"operations": {"gather_deadline": "0s"}}).start()
        try:
            rig.wait_source("pagerduty_api", "healthy")
            inc = pagerduty.Incident()
            created = datetime.now(timezone.utc) - timedelta(minutes=7)
            rig.rig.pd.close()
            rig.daemon.stop()
            mark = len(rig.fake.snapshot_requests())
            rig.fake.add(inc, created=created, alert_summary="p99 latency 2.3s on checkout",
                         details={"pod": "checkout-7f9c", "threshold": 1.5})
            rig.restart_daemon()
            embeds = rig.rig.wait_embeds(inc, 1, timeout=15)
            # Within the first reconciliation: no second listing was asked for.
            listings = [r for r in rig.fake.snapshot_requests()[mark:] if r.path == "/incidents"]
            self.assertEqual(len(listings), 1, rig.diagnostics())
            q = listings[0].query_list
            self.assertIn(("statuses[]", "triggered"), q)
            self.assertIn(("statuses[]", "acknowledged"), q)
            self.assertIn(("date_range", "all"), q)
            self.assertEqual(listings[0].headers.get("accept"), "application/vnd.pagerduty+json;version=2")
            notice = embeds[0]
            self.assertIn("we are investigating", notice["title"])
            self.assertIn(f"(posted late: triggered at {hhmm(created)})", notice["description"])
            ops = rig.wait_operations(inc, "Indicator")
            self.assertIn("**Indicator:** p99 latency 2.3s on checkout", ops)
            self.assertIn("pod: checkout-7f9c", ops)
            self.assertIn("P1 \u00b7 high urgency \u00b7 assigned to Ada Lovelace", ops)
            # The webhook that comes after all: already known, no second notice.
            r = rig.rig.pd.send(pagerduty.triggered(inc))
            self.assertEqual(r.status, 202)
            self.assertTrue(stays(lambda: len(rig.rig.embeds_for(inc)) == 1, 1.5), rig.diagnostics())
            self.assertGreaterEqual(rig.metric("runbookd_pagerduty_api_events_total", status="triggered"), 1)
            self.assertEqual(rig.metric("runbookd_source_up", source="pagerduty_api"), 1)
        finally:
            rig.close()

    def test_resolved_without_its_webhook_gets_a_late_resolved_post(self):
        rig = Rig(interval="2s").start()
        try:
            inc = pagerduty.Incident()
            created = datetime.now(timezone.utc) - timedelta(minutes=10)
            inc.created_at = created.strftime("%Y-%m-%dT%H:%M:%SZ")
            rig.fake.add(inc, created=created)
            r = rig.rig.pd.send(pagerduty.triggered(inc))
            self.assertEqual(r.status, 202)
            rig.rig.wait_embeds(inc, 1)
            resolved = datetime.now(timezone.utc) - timedelta(minutes=4)
            rig.fake.set_status(inc.id, "resolved", at=resolved)  # and the webhook is lost
            embeds = rig.rig.wait_embeds(inc, 2, timeout=15)
            self.assertIn("resolved", embeds[1]["title"])
            self.assertIn(f"(posted late: resolved at {hhmm(resolved)})", embeds[1]["description"])
            self.assertIn("It lasted 6m", embeds[1]["description"])
            confirms = [r for r in rig.fake.snapshot_requests() if r.path == f"/incidents/{inc.id}"]
            self.assertGreaterEqual(len(confirms), 1)  # confirmed by GET /incidents/{id}
            r = rig.rig.pd.send(pagerduty.resolved(inc))
            self.assertEqual(r.status, 202)
            self.assertTrue(stays(lambda: len(rig.rig.embeds_for(inc)) == 2, 2.5), rig.diagnostics())
        finally:
            rig.close()

    def test_a_note_and_a_resolution_whose_webhooks_were_lost_come_from_the_log(self):
        rig = Rig(interval="1s", overrides={"status": {"reminder_interval": "4s"}}).start()
        try:
            inc = pagerduty.Incident()
            created = datetime.now(timezone.utc) - timedelta(minutes=3)
            inc.created_at = created.strftime("%Y-%m-%dT%H:%M:%SZ")
            rig.fake.add(inc, created=created)
            self.assertEqual(rig.rig.pd.send(pagerduty.triggered(inc)).status, 202)
            rig.rig.wait_embeds(inc, 1)
            note = "Rolled back checkout to v41"
            rig.fake.annotate(inc.id, note, text_in_entry=False)  # its webhook is lost

            def with_note():
                return [e for e in rig.rig.embeds_for(inc) if note in e.get("description", "")]
            update = harness.wait_for(with_note, 12, "the note in a #status update",
                                      diagnostics=rig.diagnostics)[0]
            self.assertIn("still investigating", update["title"])
            self.assertRegex(update["description"], r"Latest \(\d+s ago\): Rolled back checkout to v41")
            asked = [r for r in rig.fake.snapshot_requests() if r.path == f"/incidents/{inc.id}/notes"]
            self.assertEqual(len(asked), 1, rig.diagnostics())
            logs = [r for r in rig.fake.snapshot_requests() if r.path == "/log_entries"]
            self.assertGreaterEqual(len(logs), 2)
            for q in (("is_overview", "true"), ("include[]", "incidents"), ("time_zone", "UTC")):
                self.assertIn(q, logs[-1].query_list)

            resolved = datetime.now(timezone.utc)
            rig.fake.set_status(inc.id, "resolved", at=resolved)  # and this webhook is lost too
            mark = len(rig.rig.embeds_for(inc))
            embeds = rig.rig.wait_embeds(inc, mark + 1, timeout=6)
            self.assertIn("resolved", embeds[mark]["title"])
            self.assertIn("It lasted 3m", embeds[mark]["description"])
            self.assertEqual([r for r in rig.fake.snapshot_requests() if r.path == f"/incidents/{inc.id}"], [])
            # Once: the late webhooks and the next reconciliations add nothing.
            self.assertEqual(rig.rig.pd.send(pagerduty.resolved(inc)).status, 202)
            self.assertTrue(stays(lambda: len(rig.rig.embeds_for(inc)) == mark + 1, 2.5), rig.diagnostics())
            asked = [r for r in rig.fake.snapshot_requests() if r.path == f"/incidents/{inc.id}/notes"]
            self.assertEqual(len(asked), 1, rig.diagnostics())
            self.assertEqual(rig.metric("runbookd_pagerduty_api_events_total", status="annotated"), 1)
        finally:
            rig.close()

    def test_maintenance_windows_are_signals_dated_at_their_start(self):
        rig = Rig(interval="1s")
        now = datetime.now(timezone.utc).replace(microsecond=0)
        began = now - timedelta(minutes=20)
        rig.fake.add_maintenance_window("PWNOW", began, now + timedelta(hours=1), "Postgres 16 upgrade",
                                        services=(("PDB0001", "Postgres"), ("PAPI002", "API")))
        soon = now + timedelta(minutes=30)
        rig.fake.add_maintenance_window("PWSOON", soon, soon + timedelta(hours=1), "DNS move",
                                        services=(("PDNS003", "DNS"),))
        rig.fake.add_maintenance_window("PWLATER", now + timedelta(hours=5), now + timedelta(hours=6), "later")
        rig.fake.add_maintenance_window("PWPAST", now - timedelta(hours=3), now - timedelta(hours=2), "done")
        rig.start()
        try:
            ongoing = rig.wait_signal("pagerduty.maintenance", subject="PWNOW")
            self.assertEqual(ongoing["source"], "pagerduty_api")
            self.assertEqual(datetime.fromisoformat(ongoing["at"]), began)
            self.assertEqual(ongoing["services"], "PDB0001,PAPI002")
            self.assertEqual(ongoing["service_names"], "Postgres, API")
            self.assertEqual(ongoing["description"], "Postgres 16 upgrade")
            self.assertEqual((ongoing["start"], ongoing["end"]),
                             (hhmm(began), hhmm(now + timedelta(hours=1))))
            self.assertEqual(ongoing["url"], "https://acme.pagerduty.com/maintenance_windows/PWNOW")
            upcoming = rig.wait_signal("pagerduty.maintenance", subject="PWSOON")
            self.assertEqual(datetime.fromisoformat(upcoming["at"]), soon)
            asked = lambda: [r for r in rig.fake.snapshot_requests() if r.path == "/maintenance_windows"]
            harness.wait_for(lambda: len(asked()) >= 3, 10, "three reads of the windows", diagnostics=rig.diagnostics)
            self.assertIn(("filter", "open"), asked()[0].query_list)
            self.assertEqual({s["subject"] for s in rig.signals("pagerduty.maintenance")}, {"PWNOW", "PWSOON"})
            self.assertGreaterEqual(rig.metric("runbookd_pagerduty_api_requests_total",
                                               endpoint="maintenance_windows", outcome="ok"), 3)
        finally:
            rig.close()

    def test_maintenance_windows_can_be_left_unread(self):
        rig = Rig(interval="1s", api={"maintenance_windows": False})
        rig.fake.add_maintenance_window("PWNOW", datetime.now(timezone.utc) - timedelta(minutes=5),
                                        datetime.now(timezone.utc) + timedelta(hours=1), "upgrade")
        rig.start()
        try:
            harness.wait_for(lambda: rig.listings() >= 3, 10, "three reconciliations", diagnostics=rig.diagnostics)
            self.assertEqual([r for r in rig.fake.snapshot_requests() if r.path == "/maintenance_windows"], [])
            self.assertEqual(rig.signals("pagerduty.maintenance"), [])
        finally:
            rig.close()

    def test_failures_are_reported_and_the_source_recovers(self):
        rig = Rig(interval="1s", timeout="1s").start()
        try:
            rig.wait_source("pagerduty_api", "healthy")

            def fails_then_recovers(error: str):
                after = len(rig.source_statuses("pagerduty_api"))
                rig.wait_source("pagerduty_api", "failing", after=after, error=error, timeout=15)
                self.assertEqual(rig.metric("runbookd_source_up", source="pagerduty_api"), 0)
                return after

            rig.fake.token = "another-key"
            after = fails_then_recovers("the API key was refused (401: Invalid API key)")
            rig.fake.token = TOKEN
            rig.wait_source("pagerduty_api", "healthy", after=after, timeout=15)

            rig.fake.rate_limit, rig.fake.rate_window = 0, 2.0
            after = fails_then_recovers("rate limited (429: Rate Limit Exceeded)")
            rig.fake.rate_limit = None
            rig.wait_source("pagerduty_api", "healthy", after=after, timeout=15)

            rig.fake.fault_answer(502, {"error": {"message": "Bad Gateway", "code": 0}}, prefix="/incidents",
                                  count=None)
            after = fails_then_recovers("listing incidents: 502: Bad Gateway")
            rig.fake.clear_faults()
            rig.wait_source("pagerduty_api", "healthy", after=after, timeout=15)

            rig.fake.fault_answer(200, "<html>maintenance</html>", prefix="/incidents", count=None)
            after = fails_then_recovers("the incident list is not a JSON object")
            rig.fake.clear_faults()
            rig.wait_source("pagerduty_api", "healthy", after=after, timeout=15)

            rig.fake.fault_delay(2.5, prefix="/incidents")  # past the 1 s timeout
            after = fails_then_recovers("listing incidents")
            rig.fake.fault_delay(0, prefix="/incidents")
            rig.wait_source("pagerduty_api", "healthy", after=after, timeout=20)
            self.assertTrue(rig.daemon.alive())
            self.assertEqual(rig.fake.errors, [])
        finally:
            rig.close()


if __name__ == "__main__":
    unittest.main()
