#!/usr/bin/env python3
"""Storm benchmark: 100k signed PagerDuty pages (a new incident each) in about 15 s.

wrk (one thread, pinned to CPU 1) sends the pages, paced, to the release runbookd (pinned
to CPU 0) posting to a fake Discord (tests/integration/fake_discord.py). Reports peak RSS,
whether /healthz answered throughout (a fresh connection every 100 ms, 2 s timeout), the
storm's posts, and the time from the first page after the storm to its own #status notice.
The storm ends `limits.storm_window` after the pages stop; the bench shortens the window
(--window, default 10s) so that a run does not wait the default 5 minutes. Medians over
--runs runs.

Each run has a fresh state directory (store.kind file, the default; --store memory to
compare), and the config's other limits at their defaults (--max-open to vary
limits.max_open_incidents).

    bench/storm.py [--runs 3] [--pages 100000] [--seconds 15] [--connections 32] [--no-build]
"""
import argparse
import datetime
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request

import common

import fake_discord  # noqa: E402  (tests/integration, on the path through common)
import harness  # noqa: E402
import pagerduty  # noqa: E402

SERVICES = [f"PSVC{i:03d}" for i in range(20)]

CONFIG = """
server:
  listen: "127.0.0.1:{port}"
  max_connections: 4096
log:
  level: info
pagerduty:
  webhook_secrets: ["${{RUNBOOKD_BENCH_SECRET}}"]
notify:
  kind: discord
discord:
  ca_file: {ca}
  status_webhook_url: {status_url}
  operations_webhook_url: {ops_url}
limits:
  storm_window: {window}
  max_open_incidents: {max_open}
store:
  kind: {store}
  dir: {state}
services:
{services}
"""


def event(i: int, now: str) -> bytes:
    service = SERVICES[i % len(SERVICES)]
    doc = {"event": {
        "id": f"01STORM{i:012d}", "event_type": "incident.triggered", "resource_type": "incident",
        "occurred_at": now,
        "agent": {"id": "PLH1HKV", "type": "user_reference", "summary": "Automation"},
        "client": {"name": "Datadog"},
        "data": {
            "id": f"QS{i:010d}", "type": "incident", "self": f"https://api.pagerduty.com/incidents/QS{i:010d}",
            "html_url": f"https://acme.pagerduty.com/incidents/QS{i:010d}", "number": i, "status": "triggered",
            "incident_key": f"storm-{i}", "created_at": now,
            "title": f"Service {service}: 5xx rate above 5% for 5 minutes", "urgency": "high",
            "service": {"id": service, "type": "service_reference", "summary": service.lower()},
            "assignees": [{"id": "PTUXL6G", "type": "user_reference", "summary": "On-call Engineer"}],
            "escalation_policy": {"id": "PUS0KTE", "type": "escalation_policy_reference", "summary": "Default"},
            "priority": {"id": "PSO75BM", "type": "priority_reference", "summary": "P1"},
            "resolve_reason": None}}}
    return json.dumps(doc, separators=(",", ":")).encode()


def write_bodies(path: str, count: int) -> None:
    # occurred_at is now: the intake refuses pages older than pagerduty.max_age.
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with open(path, "wb") as f:
        for i in range(count):
            body = event(i, now)
            sig = "v1=" + hmac.new(common.SECRET.encode(), body, hashlib.sha256).hexdigest()
            f.write(sig.encode() + b"\t" + body + b"\n")


class Watch(threading.Thread):
    """Every 100 ms: /healthz on a fresh connection, and the daemon's RSS; every 4th time,
    the pages accepted so far (/metrics), to see when the last one was in."""

    def __init__(self, port: int, pid: int, pages: int):
        super().__init__(daemon=True)
        self.port = port
        self.url = f"http://127.0.0.1:{port}/healthz"
        self.pid = pid
        self.pages = pages
        self.stopping = threading.Event()
        self.probes = 0
        self.failures = 0
        self.slowest = 0.0
        self.max_rss_kib = 0
        self.accepted = 0.0
        self.all_in_at = None  # time.monotonic() when every page was accepted

    def run(self):
        n = 0
        while not self.stopping.is_set():
            start = time.monotonic()
            n += 1
            if self.all_in_at is None and n % 4 == 0:
                try:
                    self.accepted = metric(self.port, "runbookd_webhooks_total", source="pagerduty",
                                           result="accepted")
                    if self.accepted >= self.pages:
                        self.all_in_at = time.monotonic()
                except OSError:
                    pass
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    ok = r.status == 200
            except OSError:
                ok = False
            self.slowest = max(self.slowest, time.monotonic() - start)
            self.probes += 1
            self.failures += 0 if ok else 1
            try:
                self.max_rss_kib = max(self.max_rss_kib, common.proc_status(self.pid, "VmRSS"))
            except (OSError, KeyError):
                pass
            self.stopping.wait(max(0.0, 0.1 - (time.monotonic() - start)))


def metric(port: int, name: str, **labels) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def webhook_results(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return ", ".join(line for line in r.read().decode().splitlines()
                         if line.startswith("runbookd_webhooks_total{") and not line.endswith(" 0"))


def diagnose(workdir: str, incident_id: str, port: int) -> str:
    """What the daemon said of `incident_id`, and its posts' metrics, for a failed run."""
    with open(os.path.join(workdir, "runbookd.log")) as f:
        lines = [line.rstrip() for line in f]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        posts = [line for line in r.read().decode().splitlines()
                 if line.startswith(("runbookd_posts", "runbookd_outbox_depth", "runbookd_open_incidents"))]
    return "\n".join(lines[-15:] + [line for line in posts if not line.endswith(" 0")])


def storm_text(discord, webhook_id: str) -> str:
    for m in discord.snapshot_messages(webhook_id):
        for e in m.embeds:
            if re.search(r"\d+ incidents opened", e.get("title") or ""):
                return (e.get("title") or "") + "\n" + (e.get("description") or "")
    return ""


def run_once(workdir: str, bodies: str, args) -> dict:
    pki = harness.test_pki()
    discord = fake_discord.FakeDiscord(pki.server_cert, pki.server_key).start()
    status_id, status_token = harness.snowflake_id(), harness.unique_token()
    ops_id, ops_token = harness.snowflake_id(), harness.unique_token()
    discord.add_webhook(status_id, status_token)
    discord.add_webhook(ops_id, ops_token)
    port = common.free_port()
    services = "\n".join(f"  {s}:\n    name: Service {s[-3:]}" for s in SERVICES)
    # A fresh state directory each run: a run must not restore the incidents of the last.
    state = os.path.join(workdir, f"state-{time.monotonic_ns()}")
    config = CONFIG.format(port=port, ca=pki.ca_cert, status_url=discord.url(status_id, status_token),
                           ops_url=discord.url(ops_id, ops_token), window=args.window, services=services,
                           state=state, max_open=args.max_open, store=args.store)
    proc = common.start_runbookd(config, workdir)
    watch = None
    try:
        common.wait_http(f"http://127.0.0.1:{port}/readyz")
        time.sleep(0.2)
        idle_rss = common.proc_status(proc.pid, "VmRSS")
        cpu0 = common.cpu_seconds(proc.pid)
        watch = Watch(port, proc.pid, args.pages)
        watch.start()
        rate = args.pages / args.seconds
        started = time.monotonic()
        # wrk runs for its whole -d; the script stops sending once every page is answered.
        out = subprocess.run(
            ["taskset", "-c", "1", "wrk", "-t1", f"-c{args.connections}", f"-d{args.seconds + 5}s",
             "--timeout", "5s", "-s", os.path.join(common.ROOT, "bench", "storm.lua"),
             f"http://127.0.0.1:{port}/webhooks/pagerduty"],
            env=dict(os.environ, BODIES=bodies, RATE=str(rate)),
            capture_output=True, text=True, check=True, timeout=args.seconds + 60).stdout
        r = {k: float(v) for k, v in (kv.split("=") for kv in re.search(r"RESULT (.*)", out).group(1).split())}
        # wrk ran its whole -d; on a loaded machine not every page may have been sent by then.
        wrk_done = time.monotonic()
        time.sleep(1)
        accepted = metric(port, "runbookd_webhooks_total", source="pagerduty", result="accepted")
        duplicates = metric(port, "runbookd_webhooks_total", source="pagerduty", result="duplicate")
        last_page = watch.all_in_at or wrk_done
        sent_for = last_page - started

        # The storm is over once fewer than the threshold opened within the window.
        harness.wait_for(lambda: "The burst ended" in storm_text(discord, status_id), args.window_seconds + 60,
                         "the end of the storm")
        storm_over_after = time.monotonic() - last_page

        # The first page after the storm: its own notice.
        inc = pagerduty.Incident(service_id=SERVICES[0])
        sender = pagerduty.Sender("127.0.0.1", port, [common.SECRET])
        t0 = time.monotonic()
        answer = sender.send(pagerduty.triggered(inc))
        sender.close()
        if answer.status != 202:
            raise RuntimeError(f"the page after the storm answered {answer.status}")
        harness.wait_for(lambda: any(e.get("url") == inc.html_url for _, e in discord.embeds(status_id)), 60,
                         "the notice after the storm",
                         diagnostics=lambda: diagnose(workdir, inc.id, port))
        notice_after = time.monotonic() - t0

        watch.stopping.set()
        watch.join()
        text = storm_text(discord, status_id)
        result = {
            "sent_s": sent_for,
            "accepted": accepted,
            "duplicates": duplicates,
            "rps": accepted / sent_for,
            "errors": r["errors"] + r["non2xx"],
            "p99_ms": r["p99_us"] / 1000,
            "idle_rss_mib": idle_rss / 1024,
            "peak_rss_mib": common.proc_status(proc.pid, "VmHWM") / 1024,
            "end_rss_mib": common.proc_status(proc.pid, "VmRSS") / 1024,
            "cpu_s": common.cpu_seconds(proc.pid) - cpu0,
            "healthz_probes": watch.probes,
            "healthz_failures": watch.failures,
            "healthz_slowest_ms": watch.slowest * 1000,
            "storm_over_after_s": storm_over_after,
            "notice_after_s": notice_after,
            "storm_count": float(re.search(r"(\d+) incidents opened", text).group(1)),
            "status_messages": float(len(discord.snapshot_messages(status_id))),
            "ops_messages": float(len(discord.snapshot_messages(ops_id))),
            "merged_notices": metric(port, "runbookd_posts_merged_total", channel="status", kind="notice"),
            "untracked": metric(port, "runbookd_incidents_untracked_total"),
            "dropped": metric(port, "runbookd_posts_dropped_total"),
        }
        return result
    finally:
        if watch is not None:
            watch.stopping.set()
        code = common.stop(proc, timeout=60)
        discord.stop()
        if code != 0:
            raise RuntimeError(f"runbookd exited with {code}")


def parse_seconds(text: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m)", text)
    if not m:
        raise argparse.ArgumentTypeError("a duration such as 10s")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--pages", type=int, default=100000)
    p.add_argument("--seconds", type=int, default=15)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--window", default="10s", help="limits.storm_window for the run")
    p.add_argument("--max-open", type=int, default=5000, help="limits.max_open_incidents")
    p.add_argument("--store", default="file", choices=["file", "memory"], help="store.kind")
    p.add_argument("--no-build", action="store_true", help="use the binary as it is")
    args = p.parse_args()
    args.window_seconds = parse_seconds(args.window)
    if not args.no_build:
        common.build()
    workdir = common.tempdir()
    try:
        bodies = os.path.join(workdir, "pages.tsv")
        write_bodies(bodies, args.pages)
        runs = [run_once(workdir, bodies, args) for _ in range(args.runs)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def med(key):
        return common.median([r[key] for r in runs])

    print(f"machine: {common.machine()}; load average after the runs: {os.getloadavg()[0]:.1f}")
    print(f"date: {time.strftime('%Y-%m-%d')}; runs: {args.runs}; {args.pages} pages paced over {args.seconds}s, "
          f"wrk -t1 -c{args.connections} (CPU 1), runbookd on CPU 0; limits.storm_window {args.window}, "
          f"limits.max_open_incidents {args.max_open}, store.kind {args.store}")
    print("| measure | median | runs |")
    print("|---|---|---|")
    rows = [
        ("pages accepted", "accepted", "{:,.0f}"), ("answered as duplicates", "duplicates", "{:,.0f}"),
        ("last page accepted after", "sent_s", "{:.1f} s"), ("pages/s", "rps", "{:,.0f}"),
        ("errors and non-2xx", "errors", "{:.0f}"), ("p99 answer", "p99_ms", "{:.1f} ms"),
        ("idle RSS", "idle_rss_mib", "{:.1f} MiB"), ("peak RSS (VmHWM)", "peak_rss_mib", "{:.1f} MiB"),
        ("RSS at the end", "end_rss_mib", "{:.1f} MiB"), ("CPU", "cpu_s", "{:.1f} s"),
        ("/healthz probes", "healthz_probes", "{:.0f}"), ("/healthz failures", "healthz_failures", "{:.0f}"),
        ("/healthz slowest", "healthz_slowest_ms", "{:.0f} ms"),
        ("storm over after the last page", "storm_over_after_s", "{:.1f} s"),
        ("first page after the storm to its #status notice", "notice_after_s", "{:.2f} s"),
        ("incidents counted by the storm post", "storm_count", "{:,.0f}"),
        ("#status messages", "status_messages", "{:.0f}"), ("#operations messages", "ops_messages", "{:.0f}"),
        ("notices merged (metric)", "merged_notices", "{:,.0f}"), ("incidents untracked (metric)", "untracked", "{:,.0f}"),
        ("posts dropped (metric)", "dropped", "{:.0f}"),
    ]
    for label, key, fmt in rows:
        print(f"| {label} | {fmt.format(med(key))} | {', '.join(fmt.format(r[key]) for r in runs)} |")


if __name__ == "__main__":
    main()
