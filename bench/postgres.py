#!/usr/bin/env python3
"""One Postgres poll against a real PostgreSQL (Debian's, started here on loopback with
pg_stat_statements) holding 500 client sessions: mostly idle, a tenth running long
queries, some idle in a transaction, ten lock chains (a holder, an ALTER TABLE waiting,
an UPDATE queued behind it). Per run, bench_postgres (Google Benchmark) measures:

- the monitor's poll (its three statements in one read-only transaction, then the
  signals): wall time, the CPU of its backend and the server's execution time
  (pg_stat_statements) per poll;
- the reference, in the same run and on the same sessions: `SELECT * FROM pg_stat_activity`
  read whole by a plain libpq client (the obvious way to look);
- one Cloud Monitoring poll in process (three metrics, 15 points each) against
  nlohmann::json parsing the same bodies.

    bench/postgres.py [--sessions 500] [--runs 3]
"""
import argparse
import json
import os
import statistics
import subprocess

import common
import postgres_rig as pg


def one_run(server: pg.PostgresServer, role: pg.Role, sessions: int, chains: int) -> dict:
    binary = os.path.join(common.ROOT, "build", "bench", "bench_postgres")
    out = subprocess.run(
        [binary,
         f"--dsn={server.dsn(user='app', db='app')}",
         f"--admin-dsn={server.dsn(db='app')}",
         f"--monitor-dsn={server.dsn(user=role.name, password=role.password, db='app')}",
         f"--sessions={sessions}", f"--chains={chains}",
         "--benchmark_repetitions=5", "--benchmark_report_aggregates_only=true",
         "--benchmark_format=json", "--benchmark_min_time=1"],
        check=True, capture_output=True, text=True, timeout=900)
    medians = {}
    for b in json.loads(out.stdout)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            medians[b["run_name"]] = b
    return medians


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    subprocess.run([os.path.join(common.ROOT, "scripts", "build"), "build", "--", "bench_postgres"],
                   check=True, stdout=subprocess.DEVNULL)
    server = pg.PostgresServer(max_connections=args.sessions + 20, extra_conf={
        "shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all"}).start()
    try:
        server.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        server.psql("ALTER ROLE app CONNECTION LIMIT -1")
        role = server.create_monitor_role(password="bench-monitor-password")
        runs = [one_run(server, role, args.sessions, 10) for _ in range(args.runs)]
        quiet = [one_run(server, role, args.sessions, 0) for _ in range(args.runs)]
    finally:
        server.close()

    poll, ref = "postgres_poll", "postgres_reference_select_star"
    for title, rs in (("ten lock chains (20 sessions waiting)", runs), ("no lock waits", quiet)):
        table(args, title, rs, poll, ref)
    cm, cr = "cloud_monitoring_poll", "cloud_monitoring_reference"
    a, b = med(runs, cm, "cpu_time"), med(runs, cr, "cpu_time")
    print(f"Cloud Monitoring poll (3 metrics x 15 points), CPU: {a:.1f} µs; "
          f"nlohmann::json::parse of the same bodies: {b:.1f} µs; ratio {a / b:.2f}; "
          f"signals {med(runs, cm, 'signals'):.0f}")


def med(runs: list, name: str, field: str) -> float:
    return statistics.median(r[name][field] for r in runs)


def table(args, title: str, runs: list, poll: str, ref: str) -> None:
    print(f"Postgres, {args.sessions} client sessions, {title}; {args.runs} runs (medians of 5 repetitions each)")
    print(f"{'':34} {'runbookd poll':>16} {'SELECT * (ref)':>16} {'ratio':>7}")
    for label, field in (("wall time per poll (µs)", "real_time"), ("backend CPU per poll (µs)", "db_cpu_us"),
                         ("server execution per poll (µs)", "db_exec_us"), ("rows read", "rows")):
        a, b = med(runs, poll, field), med(runs, ref, field)
        print(f"{label:34} {a:16.1f} {b:16.1f} {a / b if b else float('nan'):7.2f}")
    walls = sorted(r[poll]["real_time"] for r in runs)
    print(f"spread of the poll's wall time over runs: {walls[0]:.0f}–{walls[-1]:.0f} µs")
    print(f"signals per poll: {med(runs, poll, 'signals'):.0f}")


if __name__ == "__main__":
    main()
