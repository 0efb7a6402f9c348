#!/usr/bin/env python3
"""HTTP probes against 200 targets on loopback: the CPU the daemon's probes source spends
per probe, against curl making the same requests, over HTTPS and plain HTTP.

nginx (Debian's nginx-light, one worker, pinned to CPU 0) listens on 200 ports per scheme
(127.0.0.1 and ::1, as `localhost` resolves to both) and answers 204; HTTPS ports present
an ECDSA P-256 leaf for `localhost` plus its intermediate (bench/certs.py's PKI), with the
session cache and tickets off, so every handshake is a full one. Then, pinned to CPU 1:

- runbookd (the build/ binary, `run`), with a `probes:` section listing the 200 URLs,
  `interval: 1s`, the defaults otherwise (16 at a time, 10 s timeout): after a warm-up
  round, the process CPU (/proc: user + sys) over a window divided by the checks counted
  in `runbookd_probe_checks_total` over it (every one must be `ok`), per window;
- curl, the same 200 URLs in one invocation (`--parallel --parallel-max 16`, `--cacert`,
  `Connection: close`, no session reuse across ports), its CPU (rusage of the child, its
  start included) per request, per run.

Prints the medians (min–max) and the ratio runbookd / curl per scheme.

    bench/probes.py [--targets 200] [--windows 5] [--window-s 5] [--schemes https,http]
"""
import argparse
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

import certs
import common

CPU_SERVER, CPU_CLIENT = "0", "1"

NGINX_TLS = """  server {{
    listen 127.0.0.1:{port} ssl;
    listen [::1]:{port} ssl;
    server_name localhost;
    ssl_certificate {chain};
    ssl_certificate_key {key};
    location / {{ return 204; }}
  }}
"""
NGINX_PLAIN = """  server {{
    listen 127.0.0.1:{port};
    listen [::1]:{port};
    location / {{ return 204; }}
  }}
"""


class Nginx(certs.Nginx):
    """bench/certs.py's nginx, with the server blocks given."""

    def __init__(self, d: str, blocks: str, ports: list):
        self.dir, self.ports = d, ports
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(certs.NGINX_HEAD.format(dir=d) + blocks + "}\n")
        self.cmd = certs.pinned(CPU_SERVER) + ["nginx", "-c", conf, "-p", d, "-e", os.path.join(d, "nginx-error.log")]
        self.proc = None


def metrics(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(r'^runbookd_probe_checks_total\{outcome="(\w+)"\} ([0-9.e+]+)$', text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


def daemon_port(log: str, deadline: float) -> int:
    while time.monotonic() < deadline:
        try:
            with open(log) as f:
                for line in f:
                    if '"listening"' in line:
                        m = re.search(r'"port":(\d+)', line)
                        if m:
                            return int(m.group(1))
        except OSError:
            pass
        time.sleep(0.05)
    raise certs.BenchError("runbookd did not start listening within 20 s")


def bench_runbookd(urls: list, ca: str, args) -> list:
    d = common.tempdir()
    targets = "".join(f'    - name: t{i:03d}\n      url: "{u}"\n' for i, u in enumerate(urls))
    config = ('server:\n  listen: "127.0.0.1:0"\nlog:\n  level: info\n'
              'pagerduty:\n  webhook_secrets: ["${RUNBOOKD_BENCH_SECRET}"]\n'
              'notify:\n  kind: console\nconsole:\n  path: "-"\nkubernetes:\n  enabled: false\n'
              f'probes:\n  interval: 1s\n  ca_file: {ca}\n  targets:\n{targets}')
    proc = common.start_runbookd(config, d, cpu=CPU_CLIENT)
    try:
        port = daemon_port(os.path.join(d, "runbookd.log"), time.monotonic() + 20)
        deadline = time.monotonic() + 60
        while sum(metrics(port).values()) < 2 * len(urls):  # warm-up: two rounds
            if time.monotonic() > deadline or proc.poll() is not None:
                raise certs.BenchError(f"runbookd: no two rounds of probes within 60 s ({metrics(port)})")
            time.sleep(0.2)
        per_probe = []
        for _ in range(args.windows):
            c0, m0 = common.cpu_seconds(proc.pid), metrics(port)
            time.sleep(args.window_s)
            c1, m1 = common.cpu_seconds(proc.pid), metrics(port)
            total = sum(m1.values()) - sum(m0.values())
            ok = m1.get("ok", 0) - m0.get("ok", 0)
            if total <= 0 or ok != total:
                raise certs.BenchError(f"runbookd: {total} checks, {ok} ok in a window ({m1})")
            per_probe.append((c1 - c0) / total * 1e6)
        return per_probe
    finally:
        common.stop(proc)
        shutil.rmtree(d, ignore_errors=True)


def bench_curl(urls: list, ca: str, args) -> list:
    d = common.tempdir()
    try:
        cfg = os.path.join(d, "urls.cfg")
        with open(cfg, "w") as f:
            for u in urls:
                f.write(f'url = "{u}"\noutput = "/dev/null"\n')
        cmd = certs.pinned(CPU_CLIENT) + ["curl", "--silent", "--show-error", "--fail", "--parallel",
                                          "--parallel-max", "16", "--cacert", ca, "--no-sessionid",
                                          "-H", "Connection: close", "-H", "User-Agent: runbookd-probe",
                                          "--max-time", "10", "-K", cfg]
        per_probe = []
        for i in range(args.windows + 1):  # the first is a warm-up
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if r.returncode != 0:
                raise certs.BenchError(f"curl failed ({r.returncode}): {r.stderr.strip()[:500]}")
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            if i > 0:
                per_probe.append(cpu / len(urls) * 1e6)
        return per_probe
    finally:
        shutil.rmtree(d, ignore_errors=True)


def spread(values: list) -> str:
    return f"{statistics.median(values):.0f} µs ({min(values):.0f}–{max(values):.0f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--window-s", type=float, default=5.0)
    ap.add_argument("--schemes", default="https,http")
    args = ap.parse_args()
    for tool in ("nginx", "openssl", "curl"):
        if shutil.which(tool) is None:
            raise certs.BenchError(f"{tool} not found (scripts/install-deps installs it)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if not os.environ.get("RUNBOOKD_BIN"):
        print("building runbookd (scripts/build build -- runbookd; waits for any other build) ...", file=sys.stderr)
        common.build()
    d = common.tempdir()
    try:
        ca, [(chain, key)] = certs.make_pki(d, "ecdsa", ["localhost"])
        ports = certs.distinct_ports(2 * args.targets)
        tls_ports, plain_ports = ports[:args.targets], ports[args.targets:]
        blocks = "".join(NGINX_TLS.format(port=p, chain=chain, key=key) for p in tls_ports)
        blocks += "".join(NGINX_PLAIN.format(port=p) for p in plain_ports)
        curl_version = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        print(f"{common.machine()}; nginx 1 worker on CPU {CPU_SERVER}; clients on CPU {CPU_CLIENT}; "
              f"{curl_version.split(' (')[0]}; {args.targets} targets, ECDSA P-256, no session reuse")
        with Nginx(d, blocks, ports):
            for scheme in [s.strip() for s in args.schemes.split(",") if s.strip()]:
                urls = [f"{scheme}://localhost:{p}/" for p in (tls_ports if scheme == "https" else plain_ports)]
                ours = bench_runbookd(urls, ca, args)
                theirs = bench_curl(urls, ca, args)
                ratio = statistics.median(ours) / statistics.median(theirs)
                print(f"{scheme}: CPU per probe: runbookd {spread(ours)}, curl {spread(theirs)}; "
                      f"ratio {ratio:.2f}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except certs.BenchError as e:
        print(f"bench/probes.py: {e}", file=sys.stderr)
        sys.exit(1)
