#!/usr/bin/env python3
"""Page -> first Discord post latency, and start-up time to /readyz.

Latency: a signed incident.triggered is sent to runbookd over loopback (its state journal on
disk, so the page is fdatasync'd before the 202; then again with store.kind memory); the clock stops when
the fake Discord (HTTPS, loopback, tests/integration/fake_discord.py) has read runbookd's
execute-webhook request. Incidents are spaced beyond notify.coalesce_window, so each notice
goes out at once. Reference, same run: the same client posting a message straight to the fake
Discord over a kept-alive TLS connection (the floor of this measuring set-up).

Start-up: from spawning the process to the first 200 from /readyz; reference: nginx from
spawn to its first 204, measured the same way.

    bench/latency.py [--incidents 20] [--runs 5]
"""
import argparse
import http.client
import json
import os
import ssl
import statistics
import subprocess
import time

import common
import harness
import ingest
import pagerduty

STARTUP_CONF = """
server:
  listen: "127.0.0.1:{port}"
pagerduty:
  webhook_secrets: ["${{RUNBOOKD_BENCH_SECRET}}"]
notify:
  kind: console
console:
  path: /dev/null
"""


def page_to_post(incidents: int, store: str = "file") -> tuple[list, list]:
    """`store`: "file", the journal on disk (each page fdatasync'd before its 202), or
    "memory" (nothing kept), measured side by side."""
    overrides = {"notify": {"coalesce_window": "100ms"}}
    if store == "memory":
        overrides["store"] = {"kind": "memory"}
    env = harness.DaemonWithDiscord(overrides=overrides).start()
    try:
        latencies, reference = [], []
        # Reference: a kept-alive TLS connection straight to the fake Discord.
        ctx = ssl.create_default_context(cafile=env.config["discord"]["ca_file"])
        direct = http.client.HTTPSConnection("127.0.0.1", env.discord.port, context=ctx, timeout=5)
        path = f"/api/v10/webhooks/{env.status_id}/{env.status_token}?wait=true"
        body = json.dumps({"content": "reference", "allowed_mentions": {"parse": []}})
        for i in range(incidents + 1):
            before = len(env.discord.snapshot_requests())
            start = time.monotonic()
            direct.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            direct.getresponse().read()
            reqs = env.discord.snapshot_requests()
            if i > 0:  # the first opens the connection
                reference.append(reqs[before].time - start)

        env.pd.send(pagerduty.ping())  # opens the client's keep-alive connection
        for i in range(incidents):
            inc = pagerduty.Incident()
            before = len(env.discord.execute_requests(env.status_id))
            payload = pagerduty.encode(pagerduty.triggered(inc))
            start = time.monotonic()
            env.pd.send(payload)
            reqs = harness.wait_for(
                lambda: (lambda r: r if len(r) > before else None)(env.discord.execute_requests(env.status_id)),
                10, "the notice")
            latencies.append(reqs[before].time - start)
            time.sleep(0.15)  # beyond coalesce_window: the next page finds the channel quiet
        return latencies, reference
    finally:
        env.stop()


def spawn_floor(runs: int) -> list:
    """What spawning any process costs from here: /bin/true, start to exit."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(["/bin/true"], check=True)
        out.append(time.perf_counter() - start)
    return out


def startup(runs: int) -> tuple[list, list]:
    ours, nginx = [], []
    workdir = common.tempdir()
    for _ in range(runs):
        port = common.free_port()
        start = time.perf_counter()
        proc = common.start_runbookd(STARTUP_CONF.format(port=port), workdir, cpu=None)
        common.wait_http(f"http://127.0.0.1:{port}/readyz")
        ours.append(time.perf_counter() - start)
        common.stop(proc)

        port = common.free_port()
        conf = os.path.join(workdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(ingest.NGINX_CONF.format(dir=workdir, port=port))
        start = time.perf_counter()
        proc = subprocess.Popen(["nginx", "-c", conf, "-p", workdir],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        common.wait_http(f"http://127.0.0.1:{port}/")
        nginx.append(time.perf_counter() - start)
        common.stop(proc)
    return ours, nginx


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--incidents", type=int, default=20)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    common.build()
    os.environ.setdefault("RUNBOOKD_BIN", common.BINARY)

    medians, maxima, refs, memory = [], [], [], []
    for _ in range(args.runs):
        lat, ref = page_to_post(args.incidents)
        medians.append(statistics.median(lat))
        maxima.append(max(lat))
        refs.append(statistics.median(ref))
        memory.append(statistics.median(page_to_post(args.incidents, "memory")[0]))
    ours, nginx = startup(max(args.runs, 10))
    floor = spawn_floor(max(args.runs, 10))

    ms = lambda s: f"{s * 1000:.2f} ms"
    print(f"machine: {common.machine()}")
    print(f"date: {time.strftime('%Y-%m-%d')}; {args.runs} runs x {args.incidents} incidents")
    print("| measure | runbookd | reference | ratio |")
    print("|---|---|---|---|")
    print(f"| page -> first Discord post, median (median of runs) | {ms(statistics.median(medians))} | "
          f"{ms(statistics.median(refs))} (client -> fake Discord directly) | "
          f"{statistics.median(medians) / statistics.median(refs):.1f} |")
    print(f"| page -> first Discord post, store.kind memory (nothing kept), median | "
          f"{ms(statistics.median(memory))} | {ms(statistics.median(medians))} (the journal, above) | "
          f"{statistics.median(memory) / statistics.median(medians):.2f} |")
    print(f"| page -> first Discord post, max (median of runs; worst run) | {ms(statistics.median(maxima))}; "
          f"{ms(max(maxima))} | | |")
    print(f"| start-up to /readyz, median of {len(ours)} | {ms(statistics.median(ours))} | "
          f"{ms(statistics.median(nginx))} (nginx to first 204) | "
          f"{statistics.median(ours) / statistics.median(nginx):.2f} |")
    print(f"| spawning /bin/true from the same harness (floor of the start-up figures) | "
          f"{ms(statistics.median(floor))} | | |")


if __name__ == "__main__":
    main()
