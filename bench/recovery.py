#!/usr/bin/env python3
"""Recovery time: a daemon restarted on a journal holding N open incidents.

runbookd (release build, console notifier to /dev/null, no storm, no open limit below N)
takes N signed pages over 8 kept-alive connections (each answered once its input is
fdatasync'd), then is killed with SIGKILL. The same binary is started again on the same
state directory; the figure is its own `state recovered` time (read the journal, replay
every input through the engine, rebuild the outbox) and the wall time from spawn to the
first 200 from /readyz. Reference, same run: the same daemon started on an empty directory.

    bench/recovery.py [--incidents 10000] [--runs 3]
"""
import argparse
import concurrent.futures
import json
import os
import signal
import statistics
import subprocess
import time

import common
import pagerduty

CONF = """
server:
  listen: "127.0.0.1:{port}"
pagerduty:
  webhook_secrets: ["${{RUNBOOKD_BENCH_SECRET}}"]
  dedupe_capacity: {n}
notify:
  kind: console
console:
  path: /dev/null
limits:
  storm_threshold: 0
  max_open_incidents: {limit}
store:
  dir: {state}
"""


def recovered_line(workdir: str) -> dict:
    with open(os.path.join(workdir, "runbookd.log")) as f:
        for line in f:
            if '"state recovered"' in line:
                return json.loads(line)
    raise RuntimeError("no 'state recovered' line")


def start(workdir: str, state: str, n: int) -> tuple[subprocess.Popen, int, float]:
    port = common.free_port()
    began = time.perf_counter()
    proc = common.start_runbookd(CONF.format(port=port, n=n, limit=2 * n, state=state), workdir, cpu=None)
    common.wait_http(f"http://127.0.0.1:{port}/readyz", timeout=600)
    return proc, port, time.perf_counter() - began


def page(port: int, n: int) -> None:
    def worker(count: int) -> None:
        sender = pagerduty.Sender("127.0.0.1", port, [common.SECRET], timeout=30)
        try:
            for _ in range(count):
                r = sender.send(pagerduty.triggered(pagerduty.Incident()))
                assert r.status == 202, r.status
        finally:
            sender.close()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, [n // 8 + (1 if i < n % 8 else 0) for i in range(8)]))


def one_run(n: int) -> dict:
    workdir = common.tempdir()
    state = os.path.join(workdir, "state")
    proc, port, _ = start(workdir, state, n)
    t = time.perf_counter()
    page(port, n)
    paging = time.perf_counter() - t
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    journal = os.path.getsize(os.path.join(state, "journal"))
    os.rename(os.path.join(workdir, "runbookd.log"), os.path.join(workdir, "first.log"))
    proc, _, wall = start(workdir, state, n)
    rec = recovered_line(workdir)
    common.stop(proc)
    empty_dir = os.path.join(workdir, "empty")
    proc, _, empty_wall = start(workdir, empty_dir, n)
    common.stop(proc)
    return {"paging_s": paging, "journal_bytes": journal, "recovered_s": rec["seconds"],
            "open": rec["open_incidents"], "inputs": rec["inputs"], "wall_s": wall, "empty_wall_s": empty_wall}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--incidents", type=int, default=10000)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    common.build()
    runs = [one_run(args.incidents) for _ in range(args.runs)]
    med = lambda k: statistics.median(r[k] for r in runs)
    print(f"machine: {common.machine()}")
    print(f"date: {time.strftime('%Y-%m-%d')}; {args.runs} runs x {args.incidents} open incidents")
    print(f"runs: {runs}")
    print("| measure | runbookd | reference | ratio |")
    print("|---|---|---|---|")
    print(f"| {args.incidents} pages over 8 connections, each fdatasync'd before its 202 | "
          f"{med('paging_s'):.2f} s ({args.incidents / med('paging_s'):.0f} pages/s) | | |")
    print(f"| journal size | {med('journal_bytes') / 2**20:.1f} MiB | | |")
    print(f"| recovery (read + replay + outbox), `state recovered` | {med('recovered_s') * 1000:.0f} ms "
          f"({med('open'):.0f} open) | | |")
    print(f"| spawn to /readyz on that journal | {med('wall_s') * 1000:.0f} ms | "
          f"{med('empty_wall_s') * 1000:.0f} ms (empty state directory) | "
          f"{med('wall_s') / med('empty_wall_s'):.1f} |")


if __name__ == "__main__":
    main()
