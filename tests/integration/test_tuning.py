"""The configuration's rules.overrides and calendars (docs/rules.md, "Overrides"):
check-config reports each problem at its place in the configuration file; the daemon
applies them at start and again on SIGHUP, and a reload whose override no longer fits the
pack is refused with the old rules kept."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import unittest

import harness
import test_cli
from harness import DiscordTestCase

BASE = "pagerduty:\n  webhook_secrets: [s]\nnotify:\n  kind: console\n"

HASH_RE = re.compile(r'^runbookd_rules_hash\{sha256="([0-9a-f]+)"\} 1', re.M)


def embedded_pack_hash() -> str:
    """The embedded pack's hash: the SHA-256 of rules/runbook.yaml's text (docs/rules.md)."""
    with open(os.path.join(harness.REPO, "rules", "runbook.yaml"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class CheckConfigTests(unittest.TestCase):

    def setUp(self):
        self.tmp = harness.make_tempdir()
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, text: str) -> str:
        path = os.path.join(self.tmp, "c.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_each_problem_is_reported_where_the_configuration_says_it(self):
        cfg = self.write(BASE + "rules:\n"
                                "  overrides:\n"
                                "    db-troubel: {prior: 0.3}\n"
                                "    db-trouble.cpuu: {sustained: 10m}\n"
                                "calendars:\n"
                                "  maintenance: {from: \"13:00\"}\n")
        r = test_cli.run("check-config", cfg)
        self.assertEqual(r.returncode, 1, r.stdout)
        found = [(int(p["line"]), int(p["col"]), p["path"], p["msg"]) for p in test_cli.problems(r.stderr)]
        self.assertEqual(found, [
            (7, 5, "rules.overrides.db-troubel",
             "the rule pack has no rule or warning 'db-troubel'; did you mean 'db-trouble'?"),
            (8, 5, "rules.overrides.db-trouble.cpuu", "'db-trouble' has no leaf named 'cpuu'; did you mean 'cpu'?"),
            (10, 3, "calendars.maintenance",
             "calendar 'maintenance' would never hold (from must be before 24:00 and differ from to)"),
        ], r.stderr)
        self.assertTrue(all(line.startswith(cfg + ":") for line in r.stderr.splitlines()[:3]), r.stderr)
        self.assertIn("3 problems in the rules of " + cfg, r.stderr)

    def test_a_shape_problem_is_reported_with_the_configurations_own(self):
        cfg = self.write(BASE + "rules:\n  overrides:\n    db-trouble.cpu: {strength: high}\n"
                                "server:\n  listn: \"0.0.0.0:8080\"\n")
        r = test_cli.run("check-config", cfg)
        self.assertEqual(r.returncode, 1, r.stdout)
        paths = [p["path"] for p in test_cli.problems(r.stderr)]
        self.assertEqual(paths, ["rules.overrides.db-trouble.cpu.strength", "server.listn"], r.stderr)

    def test_valid_overrides_load_and_name_the_tuned_pack(self):
        cfg = self.write(BASE + "rules:\n"
                                "  overrides:\n"
                                "    db-maintenance: {prior: 0.3}\n"
                                "    db-trouble.cpu: {value: {above: 0.85}, sustained: 10m}\n"
                                "    bad-deploy.rollout: {window: {before: 3h}}\n"
                                "calendars:\n"
                                "  maintenance: {months: [jan, apr, jul, oct], weeks: [1, 2]}\n")
        r = test_cli.run("check-config", cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{harness.embedded_rule_count()} rules from embedded runbook pack, tuned by {cfg}", r.stdout)


class TuningReloadTests(DiscordTestCase):
    # Tuned from the start.
    overrides = {"rules": {"overrides": {"db-trouble.cpu": {"sustained": "10m"}}}}

    def rules_hash(self) -> str:
        body = self.rig.daemon.http("GET", "/metrics").body.decode()
        m = HASH_RE.search(body)
        self.assertIsNotNone(m, body[:2000])
        return m.group(1)

    def rewrite_config(self, extra: dict) -> None:
        cfg = harness.deep_merge(self.rig.config, {})
        cfg.pop("rules", None)
        cfg.pop("calendars", None)
        cfg = harness.deep_merge(cfg, extra)
        with open(self.rig.daemon.config_path, "w") as f:
            f.write(harness.to_yaml(cfg) + "\n")

    def test_overrides_apply_at_start_and_reload_and_a_bad_one_is_refused(self):
        pack = embedded_pack_hash()
        tuned_at_start = self.rules_hash()
        self.assertNotEqual(tuned_at_start, pack, "the overrides were not applied at start")

        # 1. Another override: the rules are swapped in, tuned by the configuration.
        self.rewrite_config({"rules": {"overrides": {"db-trouble.cpu": {"sustained": "15m"}}},
                             "calendars": {"maintenance": {"months": ["jan", "apr", "jul", "oct"]}}})
        line = self.rig.hup_and_wait("rules reloaded")
        self.assertEqual(line["origin"], "embedded runbook pack, tuned by " + self.rig.daemon.config_path)
        tuned = self.rules_hash()
        self.assertNotIn(tuned, (pack, tuned_at_start))

        # 2. An override the pack has no leaf for: refused at its place, the old rules stay.
        self.rewrite_config({"rules": {"overrides": {"db-trouble.cpuu": {"sustained": "15m"}}}})
        rejected = self.rig.hup_and_wait("rules reload rejected")
        self.assertRegex(rejected["problem"],
                         r"\.yaml:\d+:\d+: rules\.overrides\.db-trouble\.cpuu: 'db-trouble' has no leaf named "
                         r"'cpuu'; did you mean 'cpu'\?")
        self.assertTrue(self.rig.daemon.alive())
        self.assertEqual(self.rules_hash(), tuned)

        # 3. No overrides: the pack as written.
        self.rewrite_config({})
        self.rig.hup_and_wait("rules reloaded")
        self.assertEqual(self.rules_hash(), pack)


if __name__ == "__main__":
    unittest.main()
