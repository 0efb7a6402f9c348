#!/usr/bin/env python3
"""The whole daemon watching a big cluster: the fake API server of the integration tests
(HTTPS on loopback) with 10,000 pods and 2,000 deployments in 20 namespaces.

Per run, one daemon watches every namespace in-cluster, and we read from /proc:
- idle RSS: a daemon with the Kubernetes source off (the reference for memory);
- peak RSS while listing (VmHWM) and steady RSS once synced, and the time to sync;
- CPU per 1,000 watch events: utime+stime over a stream of Pod status updates (MODIFIED,
  no signal), in a burst (queued while the daemon is stopped, then read back to back, as
  in a rollout or after a reconnect) and one at a time (each its own wake-up);
- event -> signal latency: a pod restarts; from the fake's apply() to the daemon's
  "signal" log line read from its stdout. Reference, same events: a plain Python watch
  client on the same fake reading the event line (the floor of this set-up).

    bench/kubernetes.py [--pods 10000] [--deployments 2000] [--events 5000] [--runs 3] [--chunk-size 2048]
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import threading
import time
import urllib.request

import common
import harness
import fake_kubernetes as k8s

NAMESPACES = 20
TOKEN = "bench-token"


def proc_status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) / 1024.0  # MiB
    return out


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Runbookd:
    """runbookd run with its stdout lines time-stamped on arrival (time.monotonic())."""

    def __init__(self, workdir: str, config: dict, env: dict):
        self.path = os.path.join(workdir, "runbookd.yaml")
        with open(self.path, "w") as f:
            f.write(harness.to_yaml(config) + "\n")
        full = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        full.update(env)
        self.proc = subprocess.Popen([common.BINARY, "run", "--config", self.path], cwd=workdir, env=full,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines: list[tuple[float, dict]] = []
        self.port = None
        threading.Thread(target=self._read, daemon=True).start()
        self.wait(lambda e: e.get("msg") == "ready", 15)

    def _read(self):
        for raw in self.proc.stdout:
            now = time.monotonic()
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if entry.get("msg") == "listening":
                self.port = int(entry["port"])
            self.lines.append((now, entry))

    def wait(self, pred, timeout: float):
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            lines = self.lines
            for at, e in lines[seen:]:
                if pred(e):
                    return at, e
            seen = len(lines)
            time.sleep(0.002)
        raise TimeoutError("daemon log line not seen in time")

    def metric(self, name: str, **labels) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith(name + ("{" + want + "}" if want else " ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)


class WatchClient:
    """The reference: a Python client watching pods on the fake, lines time-stamped."""

    def __init__(self, fake: k8s.FakeKubernetes, ca_file: str):
        ctx = ssl.create_default_context(cafile=ca_file)
        self.conn = http.client.HTTPSConnection("127.0.0.1", fake.port, context=ctx, timeout=60)
        self.conn.request("GET", f"/api/v1/pods?watch=1&resourceVersion={fake.resource_version}",
                          headers={"Authorization": f"Bearer {TOKEN}"})
        self.resp = self.conn.getresponse()
        self.seen: dict[str, float] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        try:
            while True:
                chunk = self.resp.read1(65536)
                if not chunk:
                    return
                now = time.monotonic()
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    ev = json.loads(line)
                    name = ev["object"]["metadata"]["name"]
                    statuses = ev["object"].get("status", {}).get("containerStatuses", [])
                    if statuses and statuses[0].get("restartCount", 0) > 0:
                        self.seen.setdefault(f"{name}#{statuses[0]['restartCount']}", now)
        except (OSError, ValueError, http.client.HTTPException):
            return

    def close(self):
        self.conn.close()


def seed(fake: k8s.FakeKubernetes, pods: int, deployments: int) -> list[dict]:
    made = []
    for i in range(deployments):
        fake.apply("deployments", k8s.deployment(f"ns-{i % NAMESPACES}", f"svc-{i}", f"gcr.io/acme/svc-{i}:1"))
    for i in range(pods):
        d = i % deployments
        p = k8s.pod(f"ns-{d % NAMESPACES}", f"svc-{d}-abc123-{i}", f"svc-{d}",
                    containers=[k8s.container_status("app", image=f"gcr.io/acme/svc-{d}:1")])
        made.append(fake.apply("pods", p))
    fake.compact()  # drop the seeding history: a real server keeps about 5 minutes
    return made


def one_run(args, pki, workdir: str) -> dict:
    fake = k8s.FakeKubernetes(pki.server_cert, pki.server_key, tokens=(TOKEN,)).start()
    fake.chunk_size = args.chunk_size
    try:
        pods = seed(fake, args.pods, args.deployments)
        sa = os.path.join(workdir, "sa")
        os.makedirs(sa, exist_ok=True)
        with open(os.path.join(sa, "token"), "w") as f:
            f.write(TOKEN)
        shutil.copy(pki.ca_cert, os.path.join(sa, "ca.crt"))
        base = {"server": {"listen": "127.0.0.1:0"}, "log": {"level": "debug"},
                "pagerduty": {"webhook_secrets": [common.SECRET]}, "notify": {"kind": "console"},
                "console": {"path": os.path.join(workdir, "posts.log")}}

        idle = Runbookd(workdir, {**base, "kubernetes": {"enabled": False}}, {})
        time.sleep(1.0)
        idle_rss = proc_status(idle.proc.pid)["VmRSS"]
        idle.stop()

        config = {**base, "kubernetes": {"enabled": True, "namespaces": ["*"], "nodes": False,
                                         "service_account_dir": sa}}
        d = Runbookd(workdir, config, {"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                                       "KUBERNETES_SERVICE_PORT": str(fake.port)})
        try:
            start = time.monotonic()
            synced_at, _ = d.wait(lambda e: e.get("msg") == "source status" and e.get("state") == "healthy", 300)
            sync_s = synced_at - start
            time.sleep(2.0)
            mem = proc_status(d.proc.pid)
            held = d.metric("runbookd_kubernetes_objects", resource="pods")
            assert held == args.pods, f"{held} pods held, expected {args.pods}"

            # CPU: status-only updates (a new resourceVersion, a condition time): MODIFIED, no
            # signal. Completion is read off the fake (what it has written to the daemon's
            # watch), not off /metrics: scraping during the stream would cost the daemon CPU.
            watch = next(w for w in fake.open_watches("pods") if w.request.query.get("watch"))
            counter = dict(resource="pods", type="MODIFIED")

            def stream(burst: bool) -> float:
                """CPU ms per 1,000 events. Burst: the daemon is stopped (SIGSTOP) while the
                fake queues them, then reads them back to back; trickle: one at a time."""
                sent_before = len(watch.sent)
                seen_before = d.metric("runbookd_kubernetes_watch_events_total", **counter)
                if burst:
                    os.kill(d.proc.pid, signal.SIGSTOP)
                cpu0 = cpu_seconds(d.proc.pid)
                for i in range(args.events):
                    p = pods[i % len(pods)]
                    p["status"]["conditions"][0]["lastTransitionTime"] = k8s.rfc3339(time.time() + i)
                    fake.apply("pods", p)
                if burst:
                    os.kill(d.proc.pid, signal.SIGCONT)
                deadline = time.monotonic() + 300
                while len(watch.sent) < sent_before + args.events:
                    if time.monotonic() > deadline:
                        raise TimeoutError("events not all written")
                    time.sleep(0.05)
                time.sleep(0.5)  # the last lines in flight
                used = cpu_seconds(d.proc.pid) - cpu0
                seen = d.metric("runbookd_kubernetes_watch_events_total", **counter) - seen_before
                assert seen == args.events, f"daemon saw {seen} of {args.events}"
                return used * 1000.0 / args.events * 1000.0

            cpu_trickle = stream(False)
            cpu_burst = stream(True)

            # Latency: restarts, one at a time; daemon log line vs a plain client's read.
            ref = WatchClient(fake, pki.ca_cert)
            time.sleep(0.5)
            ours, theirs = [], []
            for i in range(args.latency_samples):
                p = pods[(i * 7919) % len(pods)]
                name = p["metadata"]["name"]
                status = p["status"]["containerStatuses"][0]
                status["restartCount"] = status.get("restartCount", 0) + 1
                status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error",
                                                      "finishedAt": k8s.rfc3339()}}
                key = f"{name}#{status['restartCount']}"
                t0 = time.monotonic()
                fake.apply("pods", p)
                at, _ = d.wait(lambda e, n=name: e.get("msg") == "signal" and e.get("subject") == n, 10)
                ours.append((at - t0) * 1000.0)
                deadline = time.monotonic() + 10
                while key not in ref.seen and time.monotonic() < deadline:
                    time.sleep(0.001)
                theirs.append((ref.seen[key] - t0) * 1000.0)
                time.sleep(0.02)
            ref.close()
            return {"idle_rss": idle_rss, "peak_rss": mem["VmHWM"], "steady_rss": mem["VmRSS"],
                    "sync_s": sync_s, "cpu_burst_ms_per_1000": cpu_burst, "cpu_trickle_ms_per_1000": cpu_trickle,
                    "latency_ms": statistics.median(ours), "ref_latency_ms": statistics.median(theirs)}
        finally:
            d.stop()
    finally:
        fake.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--deployments", type=int, default=2000)
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--latency-samples", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=2048,
                    help="largest chunk the fake writes (one TLS record each); 2048 splits a pod event in three")
    args = ap.parse_args()
    common.build()
    pki = harness.test_pki()
    results = []
    for run in range(args.runs):
        workdir = harness.make_tempdir("runbookd-bench-k8s-")
        try:
            r = one_run(args, pki, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        results.append(r)
        print(f"run {run + 1}: " + ", ".join(f"{k}={v:.2f}" for k, v in r.items()), flush=True)
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    print(f"\n{args.pods} pods, {args.deployments} deployments, {NAMESPACES} namespaces; medians of {args.runs} runs")
    print(f"idle RSS (source off, reference)  {med['idle_rss']:.1f} MiB")
    print(f"peak RSS while listing            {med['peak_rss']:.1f} MiB")
    print(f"steady RSS once synced            {med['steady_rss']:.1f} MiB "
          f"(+{med['steady_rss'] - med['idle_rss']:.1f} MiB over idle)")
    print(f"time to sync                      {med['sync_s']:.2f} s")
    print(f"CPU per 1,000 watch events, burst {med['cpu_burst_ms_per_1000']:.1f} ms "
          f"({med['cpu_burst_ms_per_1000'] / 10:.2f} ms per 100)")
    print(f"  ... one at a time (trickle)     {med['cpu_trickle_ms_per_1000']:.1f} ms "
          f"({med['cpu_trickle_ms_per_1000'] / 10:.2f} ms per 100)")
    print(f"event -> signal (daemon)          {med['latency_ms']:.2f} ms; "
          f"plain watch client, same events: {med['ref_latency_ms']:.2f} ms "
          f"(ratio {med['latency_ms'] / med['ref_latency_ms']:.2f})")


if __name__ == "__main__":
    main()
