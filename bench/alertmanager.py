#!/usr/bin/env python3
"""Alertmanager intake benchmark: version-4 webhook notifications with keep-alive.

The same method as bench/ingest.py (whose nginx ceiling and wrk pinning it reuses): wrk (one
thread, CPU 1) drives runbookd (CPU 0) and, in the same run, nginx answering 204 (one
worker, CPU 0). Two workloads: one group's state repeated (Alertmanager's repeat_interval:
authentication, parse, de-duplication) and a new alert group per request (parse, engine,
post). Prints requests/s, p50/p99, CPU per request, RSS and the ratio to nginx; medians over
--runs runs.

    bench/alertmanager.py [--runs 5] [--duration 5] [--connections 64]
"""
import argparse
import json
import os
import re
import subprocess
import time

import common
import ingest

TOKEN = "bench-alertmanager-token-0123456789abcdef"

RUNBOOKD_CONF = """
server:
  listen: "127.0.0.1:{port}"
  max_connections: 4096
log:
  level: warn
pagerduty:
  webhook_secrets: ["${{RUNBOOKD_BENCH_SECRET}}"]
alertmanager:
  bearer_tokens: ["{token}"]
notify:
  kind: console
  coalesce_window: 0s
console:
  path: /dev/null
services:
  PF9KMXH:
    name: Editor
    impact: "Saving and loading canvases in the editor may fail."
    alertmanager: ['service="editor"']
"""


def notification(i: int) -> bytes:
    """A realistic group of two firing alerts, about 1.7 KB like Alertmanager's."""
    labels = {"alertname": "EditorSaveErrors", "service": "editor", "severity": "critical",
              "job": "editor-api", "namespace": "darklang", "cluster": "prod-1"}
    alerts = []
    for n in range(2):
        alerts.append({
            "status": "firing",
            "labels": dict(labels, instance=f"10.0.{i % 250}.{n}:8080", pod=f"editor-api-{i}-{n}"),
            "annotations": {"summary": "Editor save errors above 5%",
                            "description": f"5xx ratio on /save is {5 + n}.2% on pod editor-api-{i}-{n}"},
            "startsAt": "2026-12-03T10:00:05.123456789Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.internal:9090/graph?g0.expr=rate%28http_errors%5B5m%5D%29&g0.tab=1",
            "fingerprint": f"{i:012x}{n:04x}"})
    doc = {"receiver": "runbookd", "status": "firing", "alerts": alerts,
           "groupLabels": {"alertname": "EditorSaveErrors", "cluster": f"prod-{i}"},
           "commonLabels": labels, "commonAnnotations": {"summary": "Editor save errors above 5%"},
           "externalURL": "http://alertmanager.internal:9093", "version": "4",
           "groupKey": '{}/{service="editor"}:{alertname="EditorSaveErrors", cluster="prod-' + str(i) + '"}',
           "truncatedAlerts": 0}
    return json.dumps(doc, separators=(",", ":")).encode()


def write_bodies(path: str, count: int) -> int:
    size = 0
    with open(path, "wb") as f:
        for i in range(count):
            body = notification(i)
            size = len(body)
            f.write(body + b"\n")
    return size


def wrk(port: int, bodies: str, args) -> dict:
    out = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "5s",
         "-s", os.path.join(common.ROOT, "bench", "alertmanager.lua"),
         f"http://127.0.0.1:{port}/webhooks/alertmanager"],
        env=dict(os.environ, BODIES=bodies, AUTH=TOKEN), capture_output=True, text=True, check=True,
        timeout=args.duration + 60).stdout
    m = re.search(r"RESULT (.*)", out)
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def run_nginx(workdir: str, bodies: str, args) -> dict:
    """The ceiling: ingest.py's nginx (one worker, CPU 0), the same requests through the same script."""
    port = common.free_port()
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(ingest.NGINX_CONF.format(dir=workdir, port=port))
    proc = subprocess.Popen(["taskset", "-c", "0", "nginx", "-c", conf, "-p", workdir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        common.wait_http(f"http://127.0.0.1:{port}/")
        return wrk(port, bodies, args)
    finally:
        common.stop(proc)


def run_runbookd(workdir: str, bodies: str, args) -> dict:
    port = common.free_port()
    proc = common.start_runbookd(RUNBOOKD_CONF.format(port=port, token=TOKEN), workdir)
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
    p.add_argument("--unique", type=int, default=100000, help="distinct groups for the new-group workload")
    args = p.parse_args()
    common.build()
    workdir = common.tempdir()
    repeated = os.path.join(workdir, "repeated.ndjson")
    unique = os.path.join(workdir, "unique.ndjson")
    body_size = write_bodies(repeated, 1)
    write_bodies(unique, args.unique)

    results = {"nginx": [], "nginx_unique": [], "repeated": [], "unique": []}
    for _ in range(args.runs):
        results["nginx"].append(run_nginx(workdir, repeated, args))
        results["repeated"].append(run_runbookd(workdir, repeated, args))
        results["nginx_unique"].append(run_nginx(workdir, unique, args))
        results["unique"].append(run_runbookd(workdir, unique, args))

    def med(name, key):
        return common.median([r[key] for r in results[name]])

    print(f"machine: {common.machine()}")
    print(f"date: {time.strftime('%Y-%m-%d')}; runs: {args.runs} x {args.duration}s; wrk -t1 -c{args.connections} "
          f"(CPU 1), server on CPU 0; body {body_size} bytes")
    print("| workload | requests/s | x nginx | p50 | p99 | CPU/request | idle RSS | peak RSS | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, label, ceiling_name in (
            ("repeated", "runbookd, same group state (repeat → duplicate)", "nginx"),
            ("unique", "runbookd, new alert group each (notice posted)", "nginx_unique")):
        ceiling = med(ceiling_name, "rps")
        print(f"| nginx `return 204`, same requests (ceiling) | {ceiling:,.0f} | 1.00 | "
              f"{med(ceiling_name, 'p50_us') / 1000:.2f} ms | {med(ceiling_name, 'p99_us') / 1000:.2f} ms | | | | "
              f"{sum(r['errors'] + r['non2xx'] for r in results[ceiling_name]):.0f} |")
        print(f"| {label} | {med(name, 'rps'):,.0f} | {med(name, 'rps') / ceiling:.2f} | "
              f"{med(name, 'p50_us') / 1000:.2f} ms | {med(name, 'p99_us') / 1000:.2f} ms | "
              f"{med(name, 'cpu_us_per_req'):.1f} µs | {med(name, 'idle_rss_kib') / 1024:.1f} MiB | "
              f"{med(name, 'peak_rss_kib') / 1024:.1f} MiB | "
              f"{sum(r['errors'] + r['non2xx'] for r in results[name]):.0f} |")


if __name__ == "__main__":
    main()
