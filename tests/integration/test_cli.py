"""The command line: check-config (config and rules), version, test-rules and replay."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import unittest

import harness

EXAMPLE = os.path.join(harness.REPO, "config", "example.yaml")
DEMO = os.path.join(harness.REPO, "config", "demo.yaml")

PROBLEM_RE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<path>[^\s:]+): (?P<msg>.+)$")

EXAMPLE_ENV = {
    "PAGERDUTY_WEBHOOK_SECRET": "example-signing-secret-0123456789",
    "DISCORD_STATUS_WEBHOOK_URL":
        "https://discord.com/api/webhooks/123456789012345678/statusTOKENabcdefghijklmnopqrstuvwxyz0123456789",
    "DISCORD_OPERATIONS_WEBHOOK_URL":
        "https://discord.com/api/webhooks/223456789012345678/opsTOKENabcdefghijklmnopqrstuvwxyz0123456789",
}


def run(*args: str, env: dict | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items()
            if k not in EXAMPLE_ENV and k != "RUNBOOKD_DEMO_SECRET"}
    full.update(env or {})
    return subprocess.run([harness.require_binary(), *args], capture_output=True, text=True,
                          timeout=20, env=full, cwd=cwd)


def problems(stderr: str) -> list[dict]:
    return [m.groupdict() for m in map(PROBLEM_RE.match, stderr.splitlines()) if m]


class CliTests(unittest.TestCase):

    def setUp(self):
        self.tmp = harness.make_tempdir()
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_version(self):
        r = run("version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"\d+\.\d+\.\d+", f"no version number in {r.stdout!r}")

    def test_check_config_example_is_valid(self):
        r = run("check-config", EXAMPLE, env=EXAMPLE_ENV)
        self.assertEqual(r.returncode, 0, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        for v in EXAMPLE_ENV.values():
            token = v.rsplit("/", 1)[-1]
            self.assertNotIn(token, r.stdout + r.stderr, "a secret was printed")

    def test_check_config_demo_is_valid(self):
        r = run("check-config", DEMO, env={"RUNBOOKD_DEMO_SECRET": "demo-secret", "RUNBOOKD_DEMO_PROBE_PORT": "8081"})
        self.assertEqual(r.returncode, 0, f"stdout={r.stdout!r} stderr={r.stderr!r}")

    def test_check_config_reports_each_problem_with_position(self):
        path = self.write("bad.yaml", "\n".join([
            "server:",                          # 1
            '  listen: "127.0.0.1:0"',          # 2
            "  header_timeout: soon",           # 3  not a duration
            "  max_connections: -4",            # 4  negative
            "pagerduty:",                       # 5
            '  webhook_secrets: ["s3cr3t-value-do-not-print"]',  # 6
            "notify:",                          # 7
            "  kind: pigeon",                   # 8  unknown notifier
            "bogus_key: 1",                     # 9  unknown key
            "",
        ]))
        r = run("check-config", path)
        self.assertEqual(r.returncode, 1, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        found = problems(r.stderr)
        self.assertTrue(found, f"no 'file:line:col: key.path: message' lines on stderr: {r.stderr!r}")
        for p in found:
            self.assertTrue(p["file"] in (path, os.path.basename(path)) or
                            os.path.abspath(p["file"]) == path, p)
            self.assertGreaterEqual(int(p["line"]), 1, p)
            self.assertGreaterEqual(int(p["col"]), 1, p)
        by_line = {int(p["line"]): p for p in found}
        expected = {3: "server.header_timeout", 4: "server.max_connections",
                    8: "notify.kind", 9: "bogus_key"}
        for line, key in expected.items():
            self.assertIn(line, by_line, f"no problem reported on line {line} ({key}): {r.stderr!r}")
            self.assertEqual(by_line[line]["path"], key, by_line[line])
        self.assertEqual(by_line[9]["col"], "1", by_line[9])
        self.assertNotIn("s3cr3t-value-do-not-print", r.stdout + r.stderr)

    def test_check_config_syntax_error_has_position(self):
        path = self.write("syntax.yaml", "server:\n  listen: [unclosed\nlog:\n  level: info\n")
        r = run("check-config", path)
        self.assertEqual(r.returncode, 1, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        self.assertRegex(r.stderr, re.escape(os.path.basename(path)) + r":\d+:\d+: ")

    def test_check_config_missing_env_var(self):
        env = dict(EXAMPLE_ENV)
        del env["PAGERDUTY_WEBHOOK_SECRET"]
        r = run("check-config", EXAMPLE, env=env)
        self.assertEqual(r.returncode, 1, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        self.assertIn("pagerduty.webhook_secrets", r.stderr)
        self.assertTrue(problems(r.stderr), r.stderr)

    def test_check_config_bad_webhook_url_does_not_print_token(self):
        env = dict(EXAMPLE_ENV)
        env["DISCORD_STATUS_WEBHOOK_URL"] = "https://discord.com/api/webhooks/not-digits/sEcReTtOkEn0123456789"
        r = run("check-config", EXAMPLE, env=env)
        self.assertEqual(r.returncode, 1, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        self.assertIn("discord.status_webhook_url", r.stderr)
        self.assertNotIn("sEcReTtOkEn0123456789", r.stdout + r.stderr)

    def test_check_config_missing_file(self):
        r = run("check-config", os.path.join(self.tmp, "nope.yaml"))
        self.assertEqual(r.returncode, 1, f"stdout={r.stdout!r} stderr={r.stderr!r}")
        self.assertIn("nope.yaml", r.stderr)

    def test_unknown_command_fails(self):
        r = run("frobnicate")
        self.assertNotEqual(r.returncode, 0)


if __name__ == "__main__":
    unittest.main()


RULES = """rules:
  - id: deploy
    title: Bad deploy
    prior: 0.3
    when:
      signal: k8s.rollout
      where: {image_changed: "true"}
      related: service
    actions: ["kubectl rollout undo -n {namespace} deploy/{deployment}"]
"""

RULE_TESTS = """rule_files: [rules.yaml]
services:
  PAPI: {name: API, kubernetes: [prod/api]}
tests:
  - name: a rollout of the service's deployment
    service: PAPI
    signals:
      - {at: -3m, kind: k8s.rollout, labels: {namespace: prod, deployment: api, image_changed: "true"}}
    expect:
      top: deploy
      actions_include: ["kubectl rollout undo -n prod deploy/api"]
  - name: another service's rollout does not count
    service: PAPI
    signals:
      - {at: -3m, kind: k8s.rollout, labels: {namespace: prod, deployment: billing, image_changed: "true"}}
    expect:
      top: deploy
"""

SCENARIO = """name: cli
services:
  PAPI: {name: API, kubernetes: [prod/api]}
rule_files: [rules.yaml]
timeline:
  - at: -3m
    signal: {kind: k8s.rollout, labels: {namespace: prod, deployment: api, image_changed: "true"}}
  - at: 0s
    page: triggered
    incident: {id: PCLI1, title: "API 5xx", service: PAPI}
  - at: 10m
    page: resolved
expect:
  top: deploy
  operations_contains: ["kubectl rollout undo -n prod deploy/api"]
"""


class RuleToolTests(unittest.TestCase):
    """test-rules, replay, and check-config's validation of rule files."""

    setUp = CliTests.setUp
    write = CliTests.write

    def test_test_rules_passes_fails_with_a_diff_and_counts(self):
        self.write("rules.yaml", RULES)
        path = self.write("tests.yaml", RULE_TESTS)
        r = run("test-rules", path)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[-1], "1 passed, 1 failed")
        self.assertTrue(any(l.startswith("ok    ") and "a rollout of the service" in l for l in lines))
        self.assertIn("FAIL  " + path + ":12: another service's rollout does not count", r.stdout)
        self.assertIn("top: expected deploy, got none", r.stdout)
        self.assertIn("clear: deploy", r.stdout)

        self.write("tests.yaml", RULE_TESTS.split("  - name: another")[0])
        r = run("test-rules", path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines()[-1], "1 passed, 0 failed")

    def test_test_rules_reports_bad_files_with_positions(self):
        self.write("rules.yaml", RULES.replace("k8s.rollout", "k8s.rolout"))
        path = self.write("tests.yaml", RULE_TESTS)
        r = run("test-rules", path)
        self.assertEqual(r.returncode, 1)
        found = problems(r.stderr)
        self.assertTrue(found, r.stderr)
        self.assertTrue(found[0]["file"].endswith("rules.yaml"))
        self.assertEqual(found[0]["path"], "rules[0].when.signal")
        bad = self.write("bad.yaml", "tests:\n  - name: x\n    expect: {top: deploy}\n    signal: []\n")
        r = run("test-rules", bad)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown key 'signal'; did you mean 'signals'?", r.stderr)

    def test_replay_prints_posts_and_checks_expectations(self):
        self.write("rules.yaml", RULES)
        path = self.write("scenario.yaml", SCENARIO)
        r = run("replay", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("T+00:00:00  #status  notice  PCLI1/0/notice", r.stdout)
        self.assertIn("T+00:00:00  #operations  summary  PCLI1/0/summary/1", r.stdout)
        self.assertIn("T+00:10:00  #operations  timeline  PCLI1/0/timeline", r.stdout)
        self.assertIn("every expectation met", r.stderr)

        r = run("replay", "--format", "json", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        import json
        posts = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual([(p["channel"], p["kind"]) for p in posts],
                         [("status", "notice"), ("operations", "summary"), ("status", "resolved"),
                          ("operations", "timeline")])
        self.assertEqual(posts[0]["offset_seconds"], 0)
        self.assertEqual(posts[2]["at"], "2026-03-05T16:10:00.000Z")

        self.write("scenario.yaml", SCENARIO.replace("top: deploy", "top: none"))
        r = run("replay", path)
        self.assertEqual(r.returncode, 1)
        self.assertIn("top: expected none, got deploy", r.stderr)

        # An expected cause that is no rule of the pack is a mistake in the file, at its place.
        self.write("scenario.yaml", SCENARIO.replace("top: deploy", "top: something-else"))
        r = run("replay", path)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"scenario\.yaml:\d+:\d+: expect\.top: no rule 'something-else' in the rules")

        self.write("scenario.yaml", SCENARIO.replace("page: resolved", "page: resolvd"))
        r = run("replay", path)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(problems(r.stderr)[0]["path"], "timeline[2].page")

    def test_check_config_validates_the_rules_it_names(self):
        rules = self.write("rules.yaml", RULES.replace("{deployment}", "{deploymnt}"))
        cfg = self.write("c.yaml", "pagerduty:\n  webhook_secrets: [s]\nnotify:\n  kind: console\n"
                                   f"rules:\n  files: [{rules}]\n")
        r = run("check-config", cfg)
        self.assertEqual(r.returncode, 1)
        found = problems(r.stderr)
        self.assertEqual(found[0]["path"], "rules[0].actions[0]")
        self.assertIn("did you mean 'deployment'?", found[0]["msg"])
        self.write("rules.yaml", RULES)
        r = run("check-config", cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 rules from " + rules, r.stdout)
        r = run("check-config", DEMO, env={"RUNBOOKD_DEMO_SECRET": "x", "RUNBOOKD_DEMO_PROBE_PORT": "8081"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"{harness.embedded_rule_count()} rules from embedded runbook pack", r.stdout)
