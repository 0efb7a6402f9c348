#!/usr/bin/env python3
"""Ingest benchmark: signed PagerDuty webhooks with keep-alive at high concurrency.

wrk (one thread, pinned to CPU 1) drives runbookd (pinned to CPU 0) and, in the same run,
nginx answering 204 (one worker, pinned to CPU 0) as the ceiling. Two workloads: the same
event repeated (the de-duplication path) and a new incident per request (parse, engine,
post). Prints requests/s, p50/p99 latency, CPU per request, idle and peak RSS, and the
ratio to nginx; medians over --runs runs.

    bench/ingest.py [--runs 5] [--duration 5] [--connections 64]
"""
import argparse
import hashlib
import hmac
import json
import os
import re
import subprocess
import time

import common

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir};
  proxy_temp_path {dir};
  fastcgi_temp_path {dir};
  uwsgi_temp_path {dir};
  scgi_temp_path {dir};
  keepalive_requests 1000000;
  client_max_body_size 2m;
  server {{
    listen 127.0.0.1:{port};
    location / {{ return 204; }}
  }}
}}
"""

RUNBOOKD_CONF = """
server:
  listen: "127.0.0.1:{port}"
  max_connections: 4096
log:
  level: info
pagerduty:
  webhook_secrets: ["${{RUNBOOKD_BENCH_SECRET}}"]
notify:
  kind: console
  coalesce_window: 0s
console:
  path: /dev/null
services:
  PF9KMXH:
    name: Editor
    impact: "Saving and loading canvases in the editor may fail."
"""


def event(i: int) -> bytes:
    # Now: the intake refuses pages older than pagerduty.max_age (1 h) as stale.
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    doc = {"event": {
        "id": f"01BENCH{i:012d}", "event_type": "incident.triggered", "resource_type": "incident",
        "occurred_at": now,
        "agent": {"id": "PLH1HKV", "type": "user_reference", "summary": "Automation"},
        "client": {"name": "Datadog"},
        "data": {
            "id": f"QB{i:010d}", "type": "incident", "self": f"https://api.pagerduty.com/incidents/QB{i:010d}",
            "html_url": f"https://acme.pagerduty.com/incidents/QB{i:010d}", "number": i, "status": "triggered",
            "incident_key": f"bench-{i}", "created_at": now,
            "title": "Editor API: 5xx rate above 5% for 5 minutes", "urgency": "high",
            "service": {"id": "PF9KMXH", "type": "service_reference", "summary": "editor-api"},
            "assignees": [{"id": "PTUXL6G", "type": "user_reference", "summary": "On-call Engineer"}],
            "escalation_policy": {"id": "PUS0KTE", "type": "escalation_policy_reference", "summary": "Default"},
            "teams": [{"id": "PFCVPS0", "type": "team_reference", "summary": "Engineering"}],
            "priority": {"id": "PSO75BM", "type": "priority_reference", "summary": "P1"},
            "resolve_reason": None}}}
    return json.dumps(doc, separators=(",", ":")).encode()


def write_bodies(path: str, count: int) -> int:
    size = 0
    with open(path, "wb") as f:
        for i in range(count):
            body = event(i)
            size = len(body)
            sig = "v1=" + hmac.new(common.SECRET.encode(), body, hashlib.sha256).hexdigest()
            f.write(sig.encode() + b"\t" + body + b"\n")
    return size


def wrk(port: int, bodies: str, args) -> dict:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "5s",
         "-s", os.path.join(common.ROOT, "bench", "ingest.lua"), f"http://127.0.0.1:{port}/webhooks/pagerduty"],
        env=dict(os.environ, BODIES=bodies), capture_output=True, text=True, check=True,
        timeout=args.duration + 60).stdout
    m = re.search(r"RESULT (.*)", out)
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def run_nginx(workdir: str, bodies: str, args) -> dict:
    port = common.free_port()
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=workdir, port=port))
    proc = subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", conf, "-p", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        common.wait_http(f"http://127.0.0.1:{port}/")
        return wrk(port, bodies, args)
    finally:
        common.stop(proc)


def run_runbookd(workdir: str, bodies: str, args) -> dict:
    port = common.free_port()
    proc = common.start_runbookd(RUNBOOKD_CONF.format(port=port), workdir)
    try:
        common.wait_http(f"http://127.0.0.1:{port}/readyz")
        time.sleep(0.2)
        idle_rss = common.proc_status(proc.pid, "VmRSS")
        cpu0 = common.cpu_seconds(proc.pid)
        r = wrk(port, bodies, args)
        r["cpu_us_per_req"] = (common.cpu_seconds(proc.pid) - cpu0) / max(r["requests"], 1) * 1e6
        r["idle_rss_kib"] = idle_rss
        r["peak_rss_kib"] = common.proc_status(proc.pid, "VmHWM")
        return r
    finally:
        code = common.stop(proc, timeout=60)
        if code != 0:
            raise RuntimeError(f"runbookd exited with {code}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--unique", type=int, default=250000, help="distinct events for the new-incident workload")
    args = p.parse_args()
    common.build()
    workdir = common.tempdir()
    repeated = os.path.join(workdir, "repeated.tsv")
    unique = os.path.join(workdir, "unique.tsv")
    body_size = write_bodies(repeated, 1)
    write_bodies(unique, args.unique)

    results = {"nginx": [], "nginx_unique": [], "repeated": [], "unique": []}
    for _ in range(args.runs):
        # Interleaved so that drift of the machine affects all alike. nginx is measured with
        # both request sets, so each workload has a ceiling from the same load generator.
        results["nginx"].append(run_nginx(workdir, repeated, args))
        results["repeated"].append(run_runbookd(workdir, repeated, args))
        results["nginx_unique"].append(run_nginx(workdir, unique, args))
        results["unique"].append(run_runbookd(workdir, unique, args))

    def med(name, key):
        return common.median([r[key] for r in results[name]])

    ceilings = {"repeated": med("nginx", "rps"), "unique": med("nginx_unique", "rps")}
    print(f"machine: {common.machine()}")
    print(f"date: {time.strftime('%Y-%m-%d')}; runs: {args.runs} x {args.duration}s; wrk -t1 -c{args.connections} "
          f"(CPU 1), server on CPU 0; body {body_size} bytes")
    print("| workload | requests/s | x nginx | p50 | p99 | CPU/request | idle RSS | peak RSS | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, label, ceiling_name, ceiling_label in (
            ("repeated", "runbookd, same event (dedupe)", "nginx", "nginx `return 204`, same requests"),
            ("unique", "runbookd, new incident each", "nginx_unique", "nginx `return 204`, same requests")):
        ceiling = ceilings[name]
        print(f"| {ceiling_label} (ceiling) | {ceiling:,.0f} | 1.00 | {med(ceiling_name, 'p50_us') / 1000:.2f} ms | "
              f"{med(ceiling_name, 'p99_us') / 1000:.2f} ms | | | | "
              f"{sum(r['errors'] + r['non2xx'] for r in results[ceiling_name]):.0f} |")
        print(f"| {label} | {med(name, 'rps'):,.0f} | {med(name, 'rps') / ceiling:.2f} | "
              f"{med(name, 'p50_us') / 1000:.2f} ms | {med(name, 'p99_us') / 1000:.2f} ms | "
              f"{med(name, 'cpu_us_per_req'):.1f} µs | {med(name, 'idle_rss_kib') / 1024:.1f} MiB | "
              f"{med(name, 'peak_rss_kib') / 1024:.1f} MiB | "
              f"{sum(r['errors'] + r['non2xx'] for r in results[name]):.0f} |")


if __name__ == "__main__":
    main()
