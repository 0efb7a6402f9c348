"""An alert storm: 60 pages in 2 s with a threshold of 10 give ten notices, then one storm
post in #status (and one in #operations) edited as it grows, counted in /metrics; a storm
incident's resolution is folded into it; once the burst is over, the next incident gets its
own notice."""

from __future__ import annotations

import re
import time
import unittest

import pagerduty
import test_prometheus
from harness import DiscordTestCase, wait_for

STORM_TITLE = re.compile(r"(\d+) incidents? opened")


class StormTests(DiscordTestCase):
    overrides = {
        "limits": {"storm_threshold": 10, "storm_window": "4s", "storm_edit_interval": "500ms"},
        "operations": {"gather_deadline": "0s"},
    }

    def metric(self, name: str, **labels) -> float | None:
        r = self.rig.daemon.http("GET", "/metrics")
        return test_prometheus.value(test_prometheus.parse_exposition(r.body.decode()), name, **labels)

    def storm_messages(self, webhook_id: str):
        return [m for m in self.rig.discord.snapshot_messages(webhook_id)
                if any(STORM_TITLE.search(e.get("title") or "") for e in m.embeds)]

    def storm_text(self) -> str:
        """The #status storm post as it reads now (after its edits)."""
        (m,) = self.storm_messages(self.rig.status_id)
        e = m.embeds[0]
        return (e.get("title") or "") + "\n" + (e.get("description") or "")

    def notices(self) -> list[dict]:
        return [e for _, e in self.rig.status_embeds() if "we are investigating" in (e.get("title") or "")]

    def test_a_storm_is_one_post_edited_as_it_grows_then_notices_resume(self):
        incidents = [pagerduty.Incident(service_id="PF9KMXH" if i % 2 else "PCHKOUT",
                                        service_name="Editor API" if i % 2 else "Checkout API")
                     for i in range(60)]
        start = time.monotonic()
        for i, inc in enumerate(incidents):
            self.rig.trigger(inc)
            # 60 pages spread over 2 s.
            time.sleep(max(0.0, start + (i + 1) * 2 / 60 - time.monotonic()))

        wait_for(lambda: self.storm_messages(self.rig.status_id) and "60 incidents opened" in self.storm_text(),
                 10, "the storm post counting all 60 incidents", diagnostics=self.rig.diagnostics)
        # One storm post, edited in place as it grew, and the ten notices before it.
        (storm,) = self.storm_messages(self.rig.status_id)
        self.assertGreaterEqual(len(storm.edits), 1, "the storm post was never edited")
        self.assertEqual(len(self.notices()), 10)
        text = self.storm_text()
        self.assertIn("More than 10 incidents opened within 4s", text)
        self.assertIn("10 of them had a post of their own", text)
        self.assertIn("Editor: 30 incidents", text)
        self.assertIn("Checkout API: 30 incidents", text)
        # #operations: ten summaries, then one storm post for the other fifty.
        self.assertEqual(len(self.storm_messages(self.rig.ops_id)), 1)
        self.assertEqual(self.metric("runbookd_posts_merged_total", channel="status", kind="notice",
                                     reason="storm"), 50)
        self.assertEqual(self.metric("runbookd_posts_merged_total", channel="operations", kind="summary",
                                     reason="storm"), 50)

        # A storm incident's resolution posts nothing of its own: the storm post counts it.
        r = self.rig.pd.send(pagerduty.resolved(incidents[30]))
        self.assertEqual(r.status, 202)
        wait_for(lambda: "1 resolved, 59 still open" in self.storm_text(), 5, "the resolution in the storm post",
                 diagnostics=self.rig.diagnostics)
        self.assertFalse([e for _, e in self.rig.status_embeds() if "resolved" in (e.get("title") or "")
                          and incidents[30].id in str(e)])
        self.assertEqual(self.metric("runbookd_posts_merged_total", channel="status", kind="resolved",
                                     reason="storm"), 1)

        # Four seconds after the last page fewer than ten opened in the window: it is over...
        wait_for(lambda: "The burst ended" in self.storm_text(), 10, "the end of the storm",
                 diagnostics=self.rig.diagnostics)
        # ...and the next incident has its own notice again.
        after = self.rig.trigger()
        self.rig.wait_embeds(after, 1, timeout=10)
        self.assertEqual(len(self.notices()), 11)
        self.assertEqual(len(self.storm_messages(self.rig.status_id)), 1)
        self.assertNoViolations()


if __name__ == "__main__":
    unittest.main()
