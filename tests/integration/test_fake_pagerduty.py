"""fake_pagerduty on its own: pagination with `more`, the offset bound's 400, status and
service filters, date_range, 401 and 429 with the ratelimit-* headers; the log entries its
changes leave (since/until, is_overview, include[]=incidents, pagination, errors) and the
incident's notes; the maintenance windows by filter, service and description."""

from __future__ import annotations

import json
import ssl
import unittest
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import fake_pagerduty
import harness
import pagerduty


class FakePagerDutyTest(unittest.TestCase):
    def setUp(self):
        self.fake = fake_pagerduty.FakePagerDuty(token="t").start()
        self.ctx = ssl.create_default_context(cafile=harness.test_pki().ca_cert)

    def tearDown(self):
        self.fake.stop()
        self.assertEqual(self.fake.errors, [])

    def get(self, target: str, token: str = "t"):
        req = urllib.request.Request(self.fake.url + target, headers={"Authorization": f"Token token={token}"})
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=5) as r:
                return r.status, dict(r.headers), json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.loads(e.read())

    def test_pagination_filters_and_bound(self):
        self.fake.add_many(250)
        old = pagerduty.Incident(id="POLD1")
        self.fake.add(old, created=datetime.now(timezone.utc) - timedelta(days=40))
        self.fake.set_status("PB00003", "resolved")
        q = "/incidents?statuses[]=triggered&statuses[]=acknowledged&limit=100"
        status, headers, body = self.get(q + "&date_range=all&offset=100")
        self.assertEqual(status, 200)
        self.assertEqual((len(body["incidents"]), body["more"]), (100, True))
        self.assertEqual(headers["ratelimit-remaining"], str(960 - 1))
        # 250 open: 250 made, 1 resolved, POLD1 added
        status, _, body = self.get(q + "&date_range=all&offset=200")
        self.assertEqual((len(body["incidents"]), body["more"]), (50, False))
        _, _, body = self.get(q + "&offset=200")  # no date_range: the 40-day-old one is gone
        self.assertEqual((len(body["incidents"]), body["more"]), (49, False))
        status, _, body = self.get(q + "&offset=9901")
        self.assertEqual(status, 400)
        self.assertIn("10000", body["error"]["message"])
        _, _, body = self.get("/incidents?statuses[]=resolved&limit=5")
        self.assertEqual([i["id"] for i in body["incidents"]], ["PB00003"])

    def test_maintenance_windows(self):
        now = datetime.now(timezone.utc)
        self.fake.add_maintenance_window("PWPAST", now - timedelta(hours=3), now - timedelta(hours=2), "old")
        self.fake.add_maintenance_window("PWNOW", now - timedelta(minutes=5), now + timedelta(hours=1),
                                         "Postgres 16 upgrade", services=(("PDB0001", "Postgres"), ("PAPI002", "API")))
        self.fake.add_maintenance_window("PWSOON", now + timedelta(minutes=30), now + timedelta(hours=2), "DNS move",
                                         services=(("PDNS003", "DNS"),))
        ids = lambda body: [w["id"] for w in body["maintenance_windows"]]
        for which, want in (("ongoing", ["PWNOW"]), ("future", ["PWSOON"]), ("past", ["PWPAST"]),
                            ("open", ["PWNOW", "PWSOON"]), ("all", ["PWPAST", "PWNOW", "PWSOON"])):
            with self.subTest(which=which):
                status, _, body = self.get(f"/maintenance_windows?filter={which}")
                self.assertEqual((status, ids(body)), (200, want))
        _, _, body = self.get("/maintenance_windows?filter=open&service_ids[]=PAPI002")
        self.assertEqual(ids(body), ["PWNOW"])
        w = body["maintenance_windows"][0]
        self.assertEqual([s["id"] for s in w["services"]], ["PDB0001", "PAPI002"])
        self.assertEqual(w["services"][0]["type"], "service_reference")
        self.assertEqual(datetime.fromisoformat(w["start_time"]), (now - timedelta(minutes=5)).replace(microsecond=0))
        _, _, body = self.get("/maintenance_windows?query=dns")
        self.assertEqual(ids(body), ["PWSOON"])
        _, _, body = self.get("/maintenance_windows?limit=1&offset=1")
        self.assertEqual((ids(body), body["more"]), (["PWNOW"], True))
        status, _, _ = self.get("/maintenance_windows?filter=soon")
        self.assertEqual(status, 400)

    def test_auth_and_rate_limit(self):
        status, _, body = self.get("/incidents", token="wrong")
        self.assertEqual((status, body["error"]["code"]), (401, 2006))
        self.fake.rate_limit = 1
        self.assertEqual(self.get("/incidents")[0], 200)
        status, headers, body = self.get("/incidents")
        self.assertEqual((status, body["error"]["code"]), (429, 2020))
        self.assertEqual(headers["ratelimit-remaining"], "0")
        self.assertGreaterEqual(int(headers["ratelimit-reset"]), 1)

    def test_log_entries_and_notes(self):
        now = datetime.now(timezone.utc).replace(microsecond=0)
        inc = pagerduty.Incident(id="PLOG1")
        self.fake.add(inc, created=now - timedelta(minutes=30))
        self.fake.set_status("PLOG1", "acknowledged", at=now - timedelta(minutes=20), acknowledger="Bo")
        self.fake.set_status("PLOG1", "triggered", at=now - timedelta(minutes=15))
        self.fake.annotate("PLOG1", "Rolled back v41", at=now - timedelta(minutes=10))
        self.fake.annotate("PLOG1", "Hidden text", at=now - timedelta(minutes=9), text_in_entry=False)
        self.fake.set_status("PLOG1", "resolved", at=now - timedelta(minutes=5))
        since = fake_pagerduty.iso(now - timedelta(minutes=20)).replace("Z", ".000Z")
        until = fake_pagerduty.iso(now - timedelta(minutes=5))
        status, _, body = self.get(f"/log_entries?since={since}&until={until}&is_overview=true"
                                   "&include[]=incidents&time_zone=UTC&limit=100&offset=0")
        self.assertEqual(status, 200)
        # since inclusive, until exclusive, newest first; trigger/notify are before `since`
        self.assertEqual([e["type"] for e in body["log_entries"]],
                         ["annotate_log_entry", "annotate_log_entry", "unacknowledge_log_entry",
                          "acknowledge_log_entry"])
        hidden, note, _, ack = body["log_entries"]
        self.assertEqual(hidden["channel"], {"type": "web_ui"})  # the text only in the notes
        self.assertEqual(note["channel"], {"type": "note", "summary": "Rolled back v41"})
        self.assertEqual(ack["agent"]["summary"], "Bo")
        self.assertEqual(ack["incident"]["incident_number"], inc.number)  # include[]=incidents
        # is_overview drops notifications; without include[], a reference
        _, _, body = self.get("/log_entries?limit=100")
        self.assertIn("notify_log_entry", [e["type"] for e in body["log_entries"]])
        self.assertEqual(body["log_entries"][0]["incident"], {"id": "PLOG1", "type": "incident_reference"})
        self.assertEqual(body["log_entries"][0]["type"], "resolve_log_entry")
        _, _, body = self.get("/log_entries?is_overview=true&limit=2&offset=2")
        self.assertEqual((len(body["log_entries"]), body["more"]), (2, True))
        self.assertEqual(self.get("/log_entries?since=yesterday")[0], 400)
        self.assertEqual(self.get("/log_entries?offset=9990")[0], 400)
        status, _, body = self.get("/incidents/PLOG1/notes")
        self.assertEqual([n["content"] for n in body["notes"]], ["Rolled back v41", "Hidden text"])
        self.assertEqual(self.get("/incidents/PNONE/notes")[0], 404)
        self.fake.rate_limit = 0
        self.assertEqual(self.get("/log_entries")[0], 429)


if __name__ == "__main__":
    unittest.main()
