"""SIGHUP: a valid configuration is applied without a restart; an invalid one is refused
and the running configuration stays."""

from __future__ import annotations

import unittest

import harness
import test_prometheus
from harness import DiscordTestCase, wait_for


class ReloadTests(DiscordTestCase):
    def metric(self, name: str) -> float | None:
        r = self.rig.daemon.http("GET", "/metrics")
        return test_prometheus.value(test_prometheus.parse_exposition(r.body.decode()), name)

    def rewrite_config(self, mutate) -> None:
        cfg = harness.deep_merge(self.rig.config, {})
        mutate(cfg)
        with open(self.rig.daemon.config_path, "w") as f:
            f.write(harness.to_yaml(cfg) + "\n")

    def test_valid_reload_applies_invalid_reload_keeps_the_old_config(self):
        self.assertEqual(self.metric("runbookd_config_last_reload_successful"), 1)

        # 1. A valid change: the service's display name and impact sentence.
        def rename(cfg):
            cfg["services"][harness.SERVICE_ID] = {"name": "Checkout", "impact": "Payments may fail."}
        self.rewrite_config(rename)
        self.rig.hup_and_wait("config reloaded")
        self.assertEqual(self.metric("runbookd_config_last_reload_successful"), 1)
        inc = self.rig.trigger()
        embed = self.rig.wait_embeds(inc)[0]
        self.assertIn("Checkout", embed["title"])
        self.assertIn("Payments may fail.", embed["description"])

        # 2. An invalid file: refused with file:line:col, the metric drops, the old config stays.
        with open(self.rig.daemon.config_path, "a") as f:
            f.write("status:\n  reminder_intervl: 5m\n")
        rejected = self.rig.hup_and_wait("config reload rejected")
        self.assertRegex(rejected["problem"], r"\.yaml:\d+:\d+: ")
        self.assertEqual(self.metric("runbookd_config_last_reload_successful"), 0)
        self.assertTrue(self.rig.daemon.alive())
        inc2 = self.rig.trigger()
        embed2 = self.rig.wait_embeds(inc2)[0]
        self.assertIn("Checkout", embed2["title"])
        self.assertNoViolations()


if __name__ == "__main__":
    unittest.main()
