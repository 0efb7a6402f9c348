"""fake_pagerduty on its own: pagination with `more`, the offset bound's 400, status and
service filters, date_range, 401 and 429 with the ratelimit-* headers."""

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

    def test_auth_and_rate_limit(self):
        status, _, body = self.get("/incidents", token="wrong")
        self.assertEqual((status, body["error"]["code"]), (401, 2006))
        self.fake.rate_limit = 1
        self.assertEqual(self.get("/incidents")[0], 200)
        status, headers, body = self.get("/incidents")
        self.assertEqual((status, body["error"]["code"]), (429, 2020))
        self.assertEqual(headers["ratelimit-remaining"], "0")
        self.assertGreaterEqual(int(headers["ratelimit-reset"]), 1)


if __name__ == "__main__":
    unittest.main()
