"""The command line: check-config and version."""

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
        r = run("check-config", DEMO, env={"RUNBOOKD_DEMO_SECRET": "demo-secret"})
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
