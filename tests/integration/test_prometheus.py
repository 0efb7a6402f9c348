"""/metrics: exposition format, metric semantics, and a real Prometheus scraping it."""

from __future__ import annotations

import json
import os
import re
import shutil
import unittest

import harness
import pagerduty
import prometheus_rig
from harness import Daemon, wait_for

# Names from the daemon's contract (docs/metrics.md, when it exists, is the reference).
BUILD_INFO = "runbookd_build_info"
WEBHOOKS = "runbookd_webhooks_total"
OPEN_INCIDENTS = "runbookd_open_incidents"
POSTS = "runbookd_posts_total"
OUTBOX_DEPTH = "runbookd_outbox_depth"

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
_VALUE = r"(?:[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|[-+]?Inf|NaN)"
SAMPLE_RE = re.compile(rf"^(?P<name>{_NAME})(?:\{{(?P<labels>(?:{_LABEL})(?:,{_LABEL})*,?)?\}})? "
                       rf"(?P<value>{_VALUE})(?: -?\d+)?$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"')


def parse_exposition(text: str) -> dict[str, list[tuple[dict, float]]]:
    """Parses text format 0.0.4 strictly (api-facts section 7.1); raises AssertionError."""
    if not text.endswith("\n"):
        raise AssertionError("the exposition does not end with a newline")
    samples: dict[str, list[tuple[dict, float]]] = {}
    typed: dict[str, str] = {}
    seen_series: set = set()
    family_order: list[str] = []
    sample_family_seen: set = set()
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                name = parts[2]
                if name in typed:
                    raise AssertionError(f"line {n}: second TYPE for {name}")
                if name in sample_family_seen:
                    raise AssertionError(f"line {n}: TYPE for {name} after its samples")
                if len(parts) < 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                    raise AssertionError(f"line {n}: bad TYPE line {line!r}")
                typed[name] = parts[3]
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError(f"line {n}: not a valid sample line: {line!r}")
        name = m.group("name")
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[: -len(suffix)]
            if name.endswith(suffix) and typed.get(base) in ("histogram", "summary"):
                family = base
        if family_order and family_order[-1] != family and family in family_order:
            raise AssertionError(f"line {n}: samples of {family} are not contiguous")
        if not family_order or family_order[-1] != family:
            family_order.append(family)
        sample_family_seen.add(family)
        labels = dict(LABEL_RE.findall(m.group("labels") or ""))
        key = (name, tuple(sorted(labels.items())))
        if key in seen_series:
            raise AssertionError(f"line {n}: duplicate series {line!r}")
        seen_series.add(key)
        samples.setdefault(name, []).append((labels, float(m.group("value"))))
    return samples


def value(samples: dict, name: str, **labels) -> float | None:
    total = None
    for ls, v in samples.get(name, []):
        if all(ls.get(k) == val for k, val in labels.items()):
            total = (total or 0.0) + v
    return total


class MetricsTests(unittest.TestCase):
    """The daemon's own /metrics, with the console notifier writing to a file."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.make_tempdir()
        cls.secret = "pdsecret-" + harness.unique_token(24)
        cfg = harness.base_config([cls.secret])
        cfg["notify"]["kind"] = "console"
        cls.console_path = os.path.join(cls.tmp, "console.txt")
        cfg["console"] = {"path": cls.console_path}
        cls.daemon = Daemon(cfg, cls.tmp, "metrics")
        try:
            cls.daemon.start()
        except BaseException:
            cls.daemon.kill()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise
        cls.pd = cls.daemon.sender([cls.secret])

    @classmethod
    def tearDownClass(cls):
        try:
            cls.pd.close()
            cls.daemon.stop()
            cls.daemon.assert_logs_well_formed()
        finally:
            cls.daemon.kill()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def scrape(self) -> tuple[str, dict]:
        r = self.daemon.http("GET", "/metrics")
        self.assertEqual(r.status, 200)
        ctype = r.headers.get("content-type", "")
        self.assertTrue(ctype.startswith("text/plain"), ctype)
        self.assertIn("version=0.0.4", ctype, ctype)
        text = r.body.decode("utf-8")
        return text, parse_exposition(text)

    def test_exposition_format_and_build_info(self):
        _, samples = self.scrape()
        self.assertIn(BUILD_INFO, samples, sorted(samples))
        self.assertEqual(samples[BUILD_INFO][0][1], 1.0)

    def test_webhook_and_incident_metrics(self):
        _, before = self.scrape()
        inc = pagerduty.Incident()
        self.assertEqual(self.pd.send(pagerduty.triggered(inc)).status, 202)
        self.assertEqual(self.pd.send(pagerduty.triggered(inc), secrets=["wrong"]).status, 403)

        open_before = value(before, OPEN_INCIDENTS) or 0

        def opened():
            _, s = self.scrape()
            return s if (value(s, OPEN_INCIDENTS) or 0) == open_before + 1 else None
        after = wait_for(opened, 5, f"{OPEN_INCIDENTS} == {open_before + 1}")
        self.assertIn(WEBHOOKS, after, sorted(after))
        self.assertGreater(value(after, WEBHOOKS, source="pagerduty") or 0,
                           value(before, WEBHOOKS, source="pagerduty") or 0)
        grew = {ls.get("result") for ls, v in after[WEBHOOKS]
                if v > (value(before, WEBHOOKS, **ls) or 0)}
        self.assertGreaterEqual(len(grew), 2,
                                f"an accepted and a refused webhook should count under two result labels; grew: {grew}")

        posts_before = value(before, POSTS, channel="status") or 0
        wait_for(lambda: (value(self.scrape()[1], POSTS, channel="status") or 0) > posts_before, 10,
                 f"{POSTS}{{channel=\"status\"}} to grow")
        self.assertIn(OUTBOX_DEPTH, self.scrape()[1])

        self.assertEqual(self.pd.send(pagerduty.resolved(inc)).status, 202)
        wait_for(lambda: value(self.scrape()[1], OPEN_INCIDENTS) == open_before, 5,
                 f"{OPEN_INCIDENTS} back to {open_before} after resolve")

    def test_console_notifier_writes_posts(self):
        inc = pagerduty.Incident()
        self.assertEqual(self.pd.send(pagerduty.triggered(inc)).status, 202)

        def written():
            try:
                with open(self.console_path, encoding="utf-8") as f:
                    return inc.id in f.read() or None
            except FileNotFoundError:
                return None
        wait_for(written, 5, f"the notice for {inc.id} in console.path")


class PrometheusScrapeTests(unittest.TestCase):
    """A real Prometheus server (prometheus_rig) scrapes the daemon every second."""

    def setUp(self):
        prometheus_rig.require_prometheus(self)
        self.tmp = harness.make_tempdir()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        secret = "pdsecret-" + harness.unique_token(24)
        cfg = harness.base_config([secret])
        cfg["notify"]["kind"] = "console"
        cfg["console"] = {"path": os.path.join(self.tmp, "console.txt")}
        self.daemon = Daemon(cfg, self.tmp, "scraped")
        self.addCleanup(self.daemon.kill)
        self.daemon.start()
        self.prom = prometheus_rig.PrometheusRig(self.tmp)
        self.addCleanup(self.prom.kill)

    def query_value(self, promql: str) -> str | None:
        result = self.prom.query(promql)
        return result[0]["value"][1] if result else None

    def targets(self) -> str:
        doc = self.prom.api("/api/v1/targets") or {}
        return json.dumps(doc.get("data", {}).get("activeTargets", []), indent=1)[:2000]

    def test_prometheus_scrapes_runbookd(self):
        self.prom.start([f"127.0.0.1:{self.daemon.port}"], job="runbookd")

        diag = lambda: f"targets: {self.targets()}\n{self.prom.log_tail()}\n{self.daemon.tail()}"
        wait_for(lambda: self.query_value('up{job="runbookd"}') == "1", 30,
                 'up{job="runbookd"} == 1', interval=0.25, diagnostics=diag)
        wait_for(lambda: self.query_value(f'{BUILD_INFO}{{job="runbookd"}}') == "1", 30,
                 f"{BUILD_INFO} == 1", interval=0.25, diagnostics=diag)
        samples = self.query_value('scrape_samples_scraped{job="runbookd"}')
        self.assertIsNotNone(samples)
        self.assertGreater(float(samples), 1)

        self.prom.stop(timeout=15)  # asserts that it stops within 15 s of SIGTERM
        self.daemon.stop()


if __name__ == "__main__":
    unittest.main()
