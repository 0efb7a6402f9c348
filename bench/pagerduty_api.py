#!/usr/bin/env python3
"""PagerDuty reconciliation of 1,000 open incidents: the whole daemon (``build/``,
RelWithDebInfo) against fake_pagerduty over loopback HTTPS, with a reference measured in
the same run: curl fetching the same pages on one kept-alive connection.

Each run starts a fresh fake holding 1,000 triggered incidents, each with one alert, and a
daemon with the console notifier (to a file) and ``pagerduty_api`` (interval 1h, so exactly
one reconciliation: the one at start). It measures, on the fake's clock:

- requests made, and the reconciliation's wall time: from the first listing request's
  arrival to the last answer (listing pages, then the first-alert lookups);
- the time from that first request to the daemon's 1,000th "post decided" notice line
  (the late notices through the engine), read from the log's ``ts``;
- the reference: ``curl`` fetching the same URLs (the listing pages, then the same alert
  URLs) on one kept-alive connection, measured the same way on the fake's clock (first
  arrival to last answer), and the whole curl process (start-up and handshake included).

Twice: with ``alerts: false`` (the listing alone: 10 pages) and with the defaults
(``lookups_per_poll: 50``: 10 pages + 50 alerts). Prints medians (min–max) over the runs.

    bench/pagerduty_api.py [--incidents 1000] [--runs 5] [--no-build]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime

import common

import fake_pagerduty  # noqa: E402  (tests/integration, put on sys.path by common)
import harness  # noqa: E402

TOKEN = "bench-pd-api-token"


def config_text(fake, workdir: str, alerts: bool) -> str:
    return f"""server:
  listen: 127.0.0.1:0
log:
  level: info
pagerduty:
  webhook_secrets: ["{common.SECRET}"]
notify:
  kind: console
console:
  path: {os.path.join(workdir, "posts.txt")}
pagerduty_api:
  token: {TOKEN}
  url: {fake.url}
  ca_file: {harness.test_pki().ca_cert}
  interval: 1h
  alerts: {"true" if alerts else "false"}
"""


def notices_done(log_path: str, n: int):
    """The wall time (epoch seconds) of the n-th "post decided" notice, or None."""
    count = 0
    with open(log_path) as f:
        for line in f:
            if '"post decided"' not in line or '"notice"' not in line:
                continue
            count += 1
            if count == n:
                ts = json.loads(line)["ts"]
                return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    return None


def populate(fake, n: int) -> None:
    """`n` triggered incidents, each with one alert."""
    for i, inc_id in enumerate(fake.add_many(n)):
        fake.alerts[inc_id] = [{"id": f"A{i}", "type": "alert", "summary": f"p99 latency high {i}",
                                "body": {"type": "alert_body", "details": {"pod": f"api-{i}"}}}]


def run_daemon(n: int, alerts: bool) -> dict:
    workdir = common.tempdir()
    fake = fake_pagerduty.FakePagerDuty(token=TOKEN).start()
    try:
        populate(fake, n)
        expected = (n + 99) // 100 + (50 if alerts else 0)
        offset = time.time() - time.monotonic()
        proc = common.start_runbookd(config_text(fake, workdir, alerts), workdir, cpu="1")
        try:
            log_path = os.path.join(workdir, "runbookd.log")
            deadline = time.monotonic() + 60
            done = None
            while time.monotonic() < deadline:
                reqs = fake.snapshot_requests()
                if len(reqs) >= expected and all(r.responded_at for r in reqs):
                    done = notices_done(log_path, n)
                    if done is not None:
                        break
                time.sleep(0.02)
            if done is None:
                raise SystemExit(f"no reconciliation within 60 s; log tail:\n{open(log_path).read()[-2000:]}")
            time.sleep(0.2)  # nothing more may come: the next reconciliation is an hour away
            reqs = fake.snapshot_requests()
            first = min(r.time for r in reqs)
            last = max(r.responded_at for r in reqs)
            return {"requests": len(reqs), "wall_ms": (last - first) * 1000,
                    "notices_ms": (done - (first + offset)) * 1000,
                    "urls": [fake.url + r.target for r in reqs]}
        finally:
            common.stop(proc)
    finally:
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run_curl(n: int, urls: list[str]) -> float:
    fake = fake_pagerduty.FakePagerDuty(token=TOKEN).start()
    try:
        populate(fake, n)
        base = urls[0].split("/incidents")[0]
        args = ["curl", "-s", "--fail", "--cacert", harness.test_pki().ca_cert,
                "-H", f"Authorization: Token token={TOKEN}",
                "-H", "Accept: application/vnd.pagerduty+json;version=2", "--globoff"]
        for u in urls:
            args += [fake.url + u[len(base):], "-o", "/dev/null"]
        start = time.perf_counter()
        subprocess.run(["taskset", "-c", "1"] + args, check=True)
        process_ms = (time.perf_counter() - start) * 1000
        reqs = fake.snapshot_requests()
        assert len(reqs) == len(urls), (len(reqs), len(urls))
        # The same span as runbookd's, on the fake's clock: first arrival to last answer.
        return (max(r.responded_at for r in reqs) - min(r.time for r in reqs)) * 1000, process_ms
    finally:
        fake.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        common.build()
    print(f"machine: {common.machine()}; {args.incidents} open incidents, {args.runs} runs")
    for alerts in (False, True):
        runs = [run_daemon(args.incidents, alerts) for _ in range(args.runs)]
        curl_runs = [run_curl(args.incidents, r["urls"]) for r in runs]
        curl = [c[0] for c in curl_runs]
        curl_process = [c[1] for c in curl_runs]
        med = lambda key: common.median([r[key] for r in runs])  # noqa: E731
        rng = lambda key: f"{min(r[key] for r in runs):.0f}–{max(r[key] for r in runs):.0f}"  # noqa: E731
        label = "listing + 50 alert lookups" if alerts else "listing only (alerts: false)"
        print(f"\n{label}:")
        print(f"  requests made: {runs[0]['requests']} (every run: {sorted({r['requests'] for r in runs})})")
        print(f"  runbookd reconciliation wall: {med('wall_ms'):.0f} ms ({rng('wall_ms')})")
        print(f"  first request -> {args.incidents}th notice decided: {med('notices_ms'):.0f} ms ({rng('notices_ms')})")
        print(f"  curl, same URLs, one connection: {common.median(curl):.0f} ms "
              f"({min(curl):.0f}–{max(curl):.0f}); the whole curl process {common.median(curl_process):.0f} ms")
        print(f"  ratio runbookd / curl: {med('wall_ms') / common.median(curl):.2f}")


if __name__ == "__main__":
    sys.exit(main())
