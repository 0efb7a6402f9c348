"""The promql source against a real Prometheus (prometheus_rig: Debian's prometheus 2.42 over
TLS with basic auth, a week and an hour of history backfilled with promtool, a loopback
exporter scraped every second for the present): the three traffic signals dated at their
data points (a canvas and an IP dominating, the total and the number of client IPs against
the same time a week earlier, a handler's latency against the previous hour), the known user
an IP belongs to, the metrics, and end to end a page ranked "a user going wild" with the
canvas first in its evidence. Then each way a query fails gives the source a clear status:
a bad query, an empty result, a timeout, Prometheus down, a URL that is not the API (404
text), a proxy answering HTML, too many series, a wrong password."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import unittest
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness
import pagerduty
import prometheus_rig
from harness import wait_for

BWD_ID, BWD_NAME = "PBWD001", "Builtwithdark"
SERVICES = {BWD_ID: {"name": BWD_NAME, "impact": "Sites on builtwithdark.com may fail to load."}}
USER, PASSWORD = "runbookd", "pw-" + harness.unique_token(16)
WRONG_PASSWORD = "wrong-" + harness.unique_token(16)

WEEK, HOUR = 7 * 86400, 3600
SAVE, HOME = "POST /a/save", "GET /"
# The present: one canvas (from one IP, ellen's CI runner) at 800 req/s on a handler that
# now takes 2.4 s; two ordinary canvases; 20 new IPs at 5 req/s each.
NOW_SERIES = (
    [({"canvas": "ellen-stachetest", "handler": SAVE, "ip": "198.51.100.23"}, 800.0, 2.4),
     ({"canvas": "paul-blog", "handler": HOME, "ip": "203.0.113.5"}, 100.0, 0.05),
     ({"canvas": "ian-docs", "handler": HOME, "ip": "203.0.113.6"}, 100.0, 0.05)]
    + [({"canvas": "paul-blog", "handler": HOME, "ip": f"192.0.2.{i}"}, 5.0, 0.05) for i in range(1, 21)]
)
# A week ago and an hour ago: 140 req/s from two IPs; the save handler took 0.2 s.
PAST_SERIES = [({"canvas": "paul-blog", "handler": SAVE, "ip": "203.0.113.5"}, 50.0, 0.2),
               ({"canvas": "ian-docs", "handler": HOME, "ip": "203.0.113.6"}, 90.0, 0.05)]
TOTAL_NOW = sum(r for _, r, _ in NOW_SERIES)  # 1100
IRATE = "irate({}[30s])"  # the last two samples: exact for linear counters, and ready after two scrapes


def q(metric: str) -> str:
    return IRATE.format(metric)


QUERIES = [
    {"name": "by_canvas", "query": f"sum by (canvas) ({q('bwd_requests_total')})", "signal": "top_talker",
     "by": "canvas"},
    {"name": "by_ip", "query": f"sum by (ip) ({q('bwd_requests_total')})", "signal": "top_talker", "by": "ip"},
    {"name": "total", "query": f"sum({q('bwd_requests_total')})", "signal": "spike",
     "target": "builtwithdark.com", "baseline": "week", "min_ratio": 3},
    {"name": "clients", "query": f"count(sum by (ip) ({q('bwd_requests_total')}) > 0)", "signal": "spike",
     "target": "client IPs", "measure": "clients", "min_ratio": 3},
    {"name": "latency", "signal": "slow_handler", "by": "handler", "baseline": "hour",
     "query": f"sum by (handler) ({q('bwd_request_seconds_total')}) / sum by (handler) ({q('bwd_requests_total')})"},
]


def history(now: float) -> str:
    """Counters around a week ago and an hour ago, a sample every 15 s."""
    requests, seconds = [], []
    for centre in (now - WEEK, now - HOUR):
        start, end = centre - 600, centre + 300
        requests += prometheus_rig.counter_history("bwd_requests", [(l, r) for l, r, _ in PAST_SERIES], start, end)
        seconds += prometheus_rig.counter_history(
            "bwd_request_seconds", [({"handler": l["handler"], "ip": l["ip"]}, r * d) for l, r, d in PAST_SERIES],
            start, end)
    # promtool wants each series' samples together and in time order.
    return prometheus_rig.openmetrics_text({"bwd_requests": sorted(requests, key=_series_then_time),
                                            "bwd_request_seconds": sorted(seconds, key=_series_then_time)})


def _series_then_time(line: str) -> tuple:
    name, value, ts = line.rsplit(" ", 2)
    return name, float(ts)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


class HtmlProxy:
    """A loopback HTTP server answering every request with a proxy's HTML error page."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                body = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
                self.send_response(502)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *args):
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class PromqlRig(harness.SourceRig):
    """A daemon whose promql section is `section`, with the rest of the config from the harness."""

    def __init__(self, name: str, section: dict):
        self.rig = harness.DaemonWithDiscord({
            "log": {"level": "debug"},  # "signal" lines
            "operations": {"edit_interval": "0s"},
            "services": SERVICES,
        }, name=name)
        # The harness' YAML has no lists of maps: the section goes in as JSON (YAML's flow style).
        with open(self.daemon.config_path, "w") as f:
            f.write(harness.to_yaml(self.rig.config) + "\npromql: " + json.dumps(section) + "\n")

    def start(self) -> "PromqlRig":
        self.rig.start()
        return self

    def close(self) -> None:
        try:
            self.rig.stop()
        finally:
            self.rig.close()


class PromqlTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = harness.make_tempdir("runbookd-it-promql-")
        cls.exporter = prometheus_rig.Exporter().start()
        cls.prom = prometheus_rig.PrometheusRig(cls.tmp)
        try:
            cls.pki = harness.test_pki()
            cls.password_file = os.path.join(cls.tmp, "prometheus-password")
            with open(cls.password_file, "w") as f:
                f.write(PASSWORD + "\n")
            for labels, rate, duration in NOW_SERIES:
                cls.exporter.set_rate("bwd_requests_total", labels, rate)
                cls.exporter.set_rate("bwd_request_seconds_total", {"handler": labels["handler"], "ip": labels["ip"]},
                                      rate * duration)
            cls.prom.backfill(history(time.time()))
            cls.prom.start([cls.exporter.address], tls=(cls.pki.server_cert, cls.pki.server_key),
                           ca_file=cls.pki.ca_cert, users={USER: PASSWORD})
            # Two scrapes of the present before any daemon asks (Prometheus' first scrape
            # comes about 5 s after it starts).
            wait_for(lambda: cls.prom.query_value(f"sum({q('bwd_requests_total')})"), 30,
                     "the exporter's rate in prometheus", diagnostics=cls.prom.log_tail)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.prom.stop()
        finally:
            cls.prom.kill()
            cls.exporter.stop()
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def section(self, **overrides) -> dict:
        s = {"url": self.prom.url, "username": USER, "password_file": self.password_file,
             "ca_file": self.pki.ca_cert, "interval": "2s", "timeout": "5s", "lookback": "1m",
             "known_clients": [{"key": "198.51.100.23", "user": "ellen's CI runner"}],
             "queries": QUERIES}
        s.update(overrides)
        return s

    def test_the_backfilled_history_is_what_the_baselines_read(self):
        now = time.time()
        self.assertEqual(self.prom.query_value(f"sum({q('bwd_requests_total')})", at=now - WEEK), 140.0)
        latency = {r["metric"]["handler"]: float(r["value"][1]) for r in self.prom.query(
            f"sum by (handler) ({q('bwd_request_seconds_total')}) / sum by (handler) ({q('bwd_requests_total')})",
            at=now - HOUR)}
        self.assertEqual(set(latency), {SAVE, HOME})
        self.assertAlmostEqual(latency[SAVE], 0.2, places=6)
        self.assertAlmostEqual(latency[HOME], 0.05, places=6)

    def test_traffic_signals_and_a_page_ranked_a_user_going_wild(self):
        c = PromqlRig("promql-e2e", self.section(known_clients=[])).start()
        try:
            started = datetime.now(timezone.utc)
            canvas = c.wait_signal("traffic.top_talker", key="ellen-stachetest")
            self.assertEqual(canvas["key_type"], "canvas")
            self.assertEqual(canvas["share"], "0.727")  # 800 of 1100
            self.assertAlmostEqual(canvas["value"], 800, delta=16)  # irate: the scrapes are not exactly 1 s apart
            self.assertEqual(canvas["owner"], "")
            self.assertEqual(canvas["query"], "by_canvas")
            # Dated at the data point: a whole number of steps (2 s), not after the daemon saw it.
            at = parse_time(canvas["at"])
            self.assertEqual(at.timestamp() % 2, 0, canvas["at"])
            self.assertLessEqual(at, datetime.now(timezone.utc))
            self.assertEqual(c.signals("traffic.top_talker", key="paul-blog"), [], "18% is no top talker")

            ip = c.wait_signal("traffic.top_talker", key="198.51.100.23")
            self.assertEqual((ip["key_type"], ip["owner"], ip["share"]), ("ip", "", "0.727"))

            total = c.wait_signal("traffic.spike", target="builtwithdark.com")
            self.assertAlmostEqual(total["value"], TOTAL_NOW / 140, delta=0.15)
            self.assertEqual((total["baseline"], total["counts"], total["compared_to"]),
                             ("140", "requests", "a week earlier"))
            clients = c.wait_signal("traffic.spike", target="client IPs")
            self.assertEqual((clients["value"], clients["baseline"], clients["counts"]), (11.5, "2", "clients"))

            slow = c.wait_signal("traffic.slow_handler", handler=SAVE)
            self.assertAlmostEqual(slow["value"], 12, delta=0.05)
            self.assertEqual((slow["current"], slow["baseline"], slow["measure"], slow["compared_to"]),
                             ("2.4", "0.2", "latency", "the previous hour"))
            self.assertEqual(c.signals("traffic.slow_handler", handler=HOME), [], "as fast as an hour ago")

            c.wait_source("promql", "healthy")
            self.assertEqual(c.metric("runbookd_source_up", source="promql"), 1)
            self.assertGreaterEqual(c.metric("runbookd_promql_requests_total", query="total", outcome="ok"), 2,
                                    "the query and its baseline")
            self.assertEqual(c.metric("runbookd_promql_series", query="by_ip"), 23)
            self.assertGreaterEqual(c.metric("runbookd_promql_signals_total", query="latency"), 1)
            self.assertEqual(c.metric("runbookd_promql_requests_total", query="by_canvas", outcome="query_error"), 0)

            inc = c.rig.trigger(pagerduty.Incident(title="BwdServer p99 latency above 5s", service_id=BWD_ID,
                                                   service_name=BWD_NAME))
            text = c.wait_operations(inc, "ellen-stachetest", "#operations ranking the canvas going wild")
            text = text.replace("\\", "")  # markdown escapes
            self.assertIn("**1. A user, canvas or handler is going wild", text)
            top = next(b for b in text.split("\n\n") if b.startswith("**1. "))
            evidence = [line for line in top.split("\n")[1:] if line.startswith("• ")]
            # The new evidence first: the top suspect's three lines are the canvas, the slow
            # handler and the spike, the closest to the page first (the page-time refresh may
            # have read a data point at the page itself).
            promql_lines = [
                r"^• canvas ellen-stachetest sent 73% of requests \(\d+/s\) (?:\d+s before the alert|at the alert)$",
                r"^• handler POST /a/save latency at 12x the previous hour \(2\.4 against 0\.2\) (?:\d+s before the alert|at the alert)$",
                r"^• traffic to builtwithdark\.com at 8x its baseline (?:\d+s before the alert|at the alert)$",
            ]
            self.assertEqual(len(evidence), 3, top)
            for p in promql_lines:
                self.assertEqual(sum(bool(re.match(p, line)) for line in evidence), 1, f"{p} in\n{top}")
            self.assertIn("Find the canvas ellen-stachetest in honeycomb", top)
            # An IP of no known user and many new client IPs: an attack, ranked below.
            second = next(b for b in text.split("\n\n") if b.startswith("**2. "))
            self.assertTrue(second.startswith("**2. A denial-of-service attack"), second)
            self.assertIn("ip 198.51.100.23 sent 73% of requests", second)
            self.assertIn("12x as many client IPs as a week earlier (2)", second)
            self.assertIn("Block 198.51.100.23 with AppArmor rules", second)
            self.assertNotIn("promql source is", text)  # checked, not "not checkable"
            self.assertLess((datetime.now(timezone.utc) - started).total_seconds(), 40)
        finally:
            c.close()
            c.daemon.assert_no_secret([PASSWORD] + c.rig.tokens)

    def test_an_ip_of_a_known_user_is_that_user(self):
        section = self.section(queries=[q for q in QUERIES if q["name"] == "by_ip"])
        c = PromqlRig("promql-known", section).start()
        try:
            ip = c.wait_signal("traffic.top_talker", key="198.51.100.23")
            self.assertEqual((ip["key_type"], ip["owner"], ip["query"]), ("ip", "ellen's CI runner", "by_ip"))
            inc = c.rig.trigger(pagerduty.Incident(title="BwdServer p99 latency above 5s", service_id=BWD_ID,
                                                   service_name=BWD_NAME))
            text = c.wait_operations(inc, "198.51.100.23", "#operations naming the known user's IP").replace("\\", "")
            top = next(b for b in text.split("\n\n") if b.startswith("**1. "))
            self.assertIn("A user, canvas or handler is going wild", top)
            self.assertIn("ip 198.51.100.23 (ellen's CI runner) sent 73% of requests", top)
            self.assertNotIn("**2. A denial-of-service attack", text, "a known user's IP is no attack")
        finally:
            c.close()
            c.daemon.assert_no_secret([PASSWORD] + c.rig.tokens)

    def test_each_failure_gives_a_clear_source_status(self):
        proxy = HtmlProxy()
        self.addCleanup(proxy.stop)
        one = lambda **kw: [dict({"name": "by_ip", "query": f"sum by (ip) ({q('bwd_requests_total')})",
                                  "signal": "top_talker", "by": "ip"}, **kw)]
        cases = [
            ("a bad query", {"queries": one(query="sum(rate(bwd_requests_total[1m])")},
             "query by_ip: 400 bad_data: 1:33: parse error: unclosed left parenthesis", "query_error"),
            ("an empty result", {"queries": one(query=f"sum by (ip) ({q('no_such_metric_total')})")},
             "query by_ip: empty result (no series", "empty"),
            ("a timeout", {"timeout": "1ms"}, "timed out", None),
            ("prometheus down", {"url": f"https://127.0.0.1:{harness.free_port()}"},
             "query by_ip: prometheus unreachable: https://127.0.0.1:", "unreachable"),
            ("not the API", {"url": self.prom.url + "/prometheus"},
             "query by_ip: HTTP 404: not a Prometheus API answer: \"404 page not found\"", "bad_response"),
            ("a proxy answering HTML", {"url": proxy.url, "ca_file": "", "username": None},
             "query by_ip: HTTP 502: not a Prometheus API answer: \"<html><head><title>502 Bad Gateway", "bad_response"),
            ("too many series", {"max_series": 5}, "query by_ip: 23 series, more than max_series (5)", "too_large"),
            ("a wrong password", {"password_file": None, "password": WRONG_PASSWORD},
             "query by_ip: HTTP 401: not a Prometheus API answer: \"Unauthorized\"", "bad_response"),
        ]
        for what, overrides, error, outcome in cases:
            with self.subTest(what):
                section = self.section(queries=one())
                section.update(overrides)
                for k in [k for k, v in section.items() if v is None or v == ""]:
                    del section[k]
                if "username" not in section:
                    section.pop("password_file", None)
                c = PromqlRig("promql-" + re.sub(r"\W+", "-", what), section).start()
                try:
                    status = c.wait_source("promql", "failing", error=error, timeout=10)
                    self.assertTrue(status["error"].startswith("query by_ip"), status)
                    self.assertEqual(c.metric("runbookd_source_up", source="promql"), 0)
                    if outcome:
                        self.assertGreaterEqual(
                            c.metric("runbookd_promql_requests_total", query="by_ip", outcome=outcome) or 0, 1)
                    self.assertTrue(c.daemon.alive(), "the daemon keeps running")
                    self.assertEqual(c.signals("traffic.top_talker"), [])
                finally:
                    c.close()
                    c.daemon.assert_no_secret([PASSWORD, WRONG_PASSWORD] + c.rig.tokens)


if __name__ == "__main__":
    unittest.main()
