"""#operations: the ranked summary at the page, edited in place when the ranking changes
(here: a SIGHUP that loads other rules), a new message when an edited message was deleted,
an invalid rules file refused on reload, and the timeline on resolve."""

from __future__ import annotations

import os
import unittest

import harness
import pagerduty
import test_prometheus
from harness import DiscordTestCase, wait_for

# One rule that always holds: a calendar window covering the whole week in UTC.
ALWAYS_RULES = """rules:
  - id: always
    title: {title}
    prior: 0.5
    when:
      calendar: {{from: "00:00", to: "24:00", tz: UTC}}
    actions: ["Check {{service}} by hand"]
"""


class OperationsTests(DiscordTestCase):
    overrides = {"operations": {"edit_interval": "0s"}}

    def metric(self, name: str) -> float | None:
        r = self.rig.daemon.http("GET", "/metrics")
        return test_prometheus.value(test_prometheus.parse_exposition(r.body.decode()), name)

    def ops_messages(self):
        return self.rig.discord.snapshot_messages(self.rig.ops_id)

    def summary_of(self, inc: pagerduty.Incident):
        """The newest #operations summary message of `inc`, or None."""
        for m in reversed(self.ops_messages()):
            for e in m.embeds:
                if inc.title in (e.get("description") or "") and "likely cause" in (e.get("title") or ""):
                    return m
        return None

    def patches_of(self, message_id: str):
        return [r for r in self.rig.discord.snapshot_requests()
                if r.method == "PATCH" and r.path.endswith("/messages/" + message_id) and r.status == 200]

    def write_rules(self, text: str) -> str:
        path = os.path.join(self.rig.tmp, "rules.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def use_rules(self, path: str | None) -> None:
        cfg = harness.deep_merge(self.rig.config, {})
        if path is not None:
            cfg["rules"] = {"files": [path]}
        with open(self.rig.daemon.config_path, "w") as f:
            f.write(harness.to_yaml(cfg) + "\n")

    def test_summary_edit_reload_and_timeline(self):
        self.assertEqual(self.metric("runbookd_rules_loaded"), harness.embedded_rule_count())
        inc = self.rig.trigger()
        # Within 5 s of the page: the ranking with what could not be checked (no source is
        # configured in this test) and what was checked (the maintenance calendar).
        summary = wait_for(lambda: self.summary_of(inc), 5, "#operations summary",
                           diagnostics=self.rig.diagnostics)
        text = summary.embeds[0]["description"]
        self.assertIn("**Not checkable**", text)
        self.assertIn("the kubernetes source is not configured", text)
        self.assertIn("Our quarterly DB maintenance", text)
        self.assertEqual(summary.body["allowed_mentions"], {"parse": []})

        # New rules on SIGHUP, with a top suspect where there was none: a new summary
        # message, so the channel tells the story.
        self.use_rules(self.write_rules(ALWAYS_RULES.format(title="Checked by hand")))
        self.rig.hup_and_wait("config reloaded")
        second = wait_for(lambda: (lambda m: m if m is not None and m.id != summary.id else None)(self.summary_of(inc)),
                          10, "a second summary", diagnostics=self.rig.diagnostics)
        self.assertIn("Checked by hand", second.embeds[0]["description"])
        self.assertIn("`Check Editor by hand`", second.embeds[0]["description"])
        self.assertEqual(self.metric("runbookd_rules_loaded"), 1)
        self.assertEqual(self.patches_of(summary.id), [])

        # The same top suspect with new words: the summary is edited in place.
        self.write_rules(ALWAYS_RULES.format(title="Checked twice"))
        self.rig.hup_and_wait("config reloaded")
        wait_for(lambda: self.patches_of(second.id), 10, "an edit of the summary",
                 diagnostics=self.rig.diagnostics)
        edited = wait_for(lambda: (lambda m: m if m is not None and "Checked twice" in m.embeds[0]["description"] else None)(self.summary_of(inc)),
                          5, "the edited summary")
        self.assertEqual(edited.id, second.id)
        self.assertEqual(self.patches_of(second.id)[0].body["allowed_mentions"], {"parse": []})

        # Someone deletes the summary; the next edit arrives as a new message.
        with self.rig.discord._lock:
            for m in self.rig.discord.messages:
                if m.id == second.id:
                    m.deleted = True
        self.write_rules(ALWAYS_RULES.format(title="Checked thrice"))
        self.rig.hup_and_wait("config reloaded")
        reposted = wait_for(lambda: (lambda m: m if m is not None and "Checked thrice" in m.embeds[0]["description"] else None)(self.summary_of(inc)),
                            10, "the summary posted anew", diagnostics=self.rig.diagnostics)
        self.assertNotIn(reposted.id, (summary.id, second.id))
        self.assertTrue(self.rig.daemon.alive())
        self.assertEqual(self.metric("runbookd_channel_disabled"), 0)

        # An invalid rules file is refused with file:line:col; the running rules stay.
        self.write_rules("rules:\n  - id: broken\n    title: x\n    when: {signal: k8s.rolout}\n")
        rejected = self.rig.hup_and_wait("rules reload rejected")
        self.assertRegex(rejected["problem"], r"rules\.yaml:4:\d+: rules\[0\]\.when\.signal: unknown signal kind")
        self.assertEqual(self.metric("runbookd_config_last_reload_successful"), 0)
        self.assertEqual(self.metric("runbookd_rules_loaded"), 1)

        # Resolve: the timeline goes to #operations.
        r = self.rig.pd.send(pagerduty.resolved(inc))
        self.assertEqual(r.status, 202)
        timeline = wait_for(
            lambda: next((e for _, e in self.rig.discord.embeds(self.rig.ops_id)
                          if "incident timeline" in (e.get("title") or "") and inc.title in (e.get("footer") or {}).get("text", "")), None),
            10, "the #operations timeline", diagnostics=self.rig.diagnostics)
        self.assertIn("triggered", timeline["description"])
        self.assertIn("resolved after", timeline["description"])
        self.assertNoViolations()


if __name__ == "__main__":
    unittest.main()
