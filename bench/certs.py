#!/usr/bin/env python3
"""Certificate checks against 200 TLS endpoints on loopback: one round of the certs
source's checker against a plain OpenSSL client doing the same handshakes, in one run.

nginx (Debian's nginx-light, one worker, pinned to CPU 0) listens on 127.0.0.1 on one port
per endpoint; each port has its own server block presenting its own leaf plus the
intermediate (never the root) of a test PKI made here with the ``openssl`` CLI, with the
session cache and session tickets off so every handshake is a full one. Two PKIs, one
after the other: ECDSA P-256 (root, intermediate and leaves) and RSA 2048 (likewise).
bench_certs (pinned to CPU 1) then measures, rounds alternating, after a warm-up of each:

- runbookd: ``checker::check_all`` over every endpoint in process, with the daemon's
  defaults (16 at a time, 10 s per target): the round's wall time, and the process CPU
  (getrusage: user + sys) per handshake;
- the reference: a plain OpenSSL client, blocking, one endpoint after the other (connect,
  SNI, SSL_set1_host, SSL_connect with the CA file, the earliest notAfter of
  SSL_get_peer_cert_chain, close): CPU per handshake, and its sequential wall time;
- the same OpenSSL client on non-blocking sockets, as many at a time as runbookd, driven
  by poll(): the same work with the same batching of wake-ups (a blocking client sleeps
  and wakes at every flight of the handshake, which costs CPU of its own on this VM).

Prints the medians over the rounds (min–max) and the ratios, against the targets: CPU per
handshake ≤ 1.2 × the reference, a round ≤ 2 s. Also the nginx worker's CPU per handshake
(every client, /proc, 10 ms ticks) and the load average, for context.

    bench/certs.py [--endpoints 200] [--rounds 5] [--keys ecdsa,rsa]
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

import common

BINARY = os.path.join(common.ROOT, "build", "bench", "bench_certs")
CPU_SERVER, CPU_CLIENT = "0", "1"
RATIO_TARGET = 1.2
ROUND_TARGET_MS = 2000.0

KEYS = {
    "ecdsa": ("ECDSA P-256", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "digitalSignature"),
    "rsa": ("RSA 2048", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            "digitalSignature,keyEncipherment"),
}

OPENSSL_CNF = """[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ v3_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,{usage}
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:$ENV::LEAF_HOST
"""

NGINX_HEAD = """worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir};
  proxy_temp_path {dir};
  fastcgi_temp_path {dir};
  uwsgi_temp_path {dir};
  scgi_temp_path {dir};
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache off;
  ssl_session_tickets off;
"""

NGINX_SERVER = """  server {{
    listen 127.0.0.1:{port} ssl;
    server_name {host};
    ssl_certificate {chain};
    ssl_certificate_key {key};
    location / {{ return 204; }}
  }}
"""


class BenchError(Exception):
    pass


def openssl(args: list, cwd: str, env=None) -> None:
    try:
        r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, **(env or {"LEAF_HOST": "unused.invalid"})))
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"openssl {args[0]} did not finish within 60 s") from e
    if r.returncode != 0:
        raise BenchError(f"openssl {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")


def make_pki(d: str, kind: str, hosts: list) -> tuple:
    """A root (the CA file), an intermediate under it, and one leaf per host under that.
    Returns (ca_file, [(chain_file, key_file)] in the order of hosts)."""
    _, keygen, usage = KEYS[kind]
    cnf = os.path.join(d, "openssl.cnf")
    with open(cnf, "w") as f:
        f.write(OPENSSL_CNF.format(usage=usage))

    def key(path: str) -> str:
        openssl(["genpkey", *keygen, "-out", path], d)
        return path

    def sign(name: str, cn: str, issuer: tuple, serial: int, ext: str, days: int, host: str = "") -> str:
        k, csr, pem = key(f"{name}.key"), f"{name}.csr", f"{name}.pem"
        openssl(["req", "-new", "-config", cnf, "-key", k, "-subj", f"/CN={cn}", "-out", csr], d)
        openssl(["x509", "-req", "-in", csr, "-CA", issuer[0], "-CAkey", issuer[1], "-set_serial", str(serial),
                 "-days", str(days), "-sha256", "-extfile", cnf, "-extensions", ext, "-out", pem], d,
                env={"LEAF_HOST": host or "unused.invalid"})  # the config reads it
        return pem

    key("root.key")
    openssl(["req", "-x509", "-new", "-config", cnf, "-extensions", "v3_ca", "-key", "root.key",
             "-subj", f"/CN=runbookd bench root CA ({kind})", "-days", "3650", "-sha256", "-out", "root.pem"], d)
    intermediate = sign("intermediate", f"runbookd bench intermediate CA ({kind})", ("root.pem", "root.key"),
                        2, "v3_ca", 1825)

    def leaf(i: int) -> tuple:
        name = f"leaf{i:03d}"
        pem = sign(name, hosts[i], (intermediate, "intermediate.key"), 1000 + i, "v3_leaf", 365, hosts[i])
        chain = os.path.join(d, f"{name}-chain.pem")
        with open(chain, "w") as out:
            for part in (pem, intermediate):
                with open(os.path.join(d, part)) as f:
                    out.write(f.read())
        return chain, os.path.join(d, f"{name}.key")

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        leaves = list(pool.map(leaf, range(len(hosts))))
    return os.path.join(d, "root.pem"), leaves


def distinct_ports(n: int) -> list:
    """n distinct free ports: all bound at once, then released."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def pinned(cpu: str) -> list:
    return ["taskset", "-c", cpu] if (os.cpu_count() or 1) >= 2 and shutil.which("taskset") else []


class Nginx:
    """nginx with one TLS server block per endpoint; a context manager that always stops it."""

    def __init__(self, d: str, hosts: list, ports: list, leaves: list):
        self.dir, self.ports = d, ports
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_HEAD.format(dir=d))
            for host, port, (chain, key) in zip(hosts, ports, leaves):
                f.write(NGINX_SERVER.format(port=port, host=host, chain=chain, key=key))
            f.write("}\n")
        self.cmd = pinned(CPU_SERVER) + ["nginx", "-c", conf, "-p", d, "-e", os.path.join(d, "nginx-error.log")]
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        waiting = list(self.ports)
        while waiting:
            if self.proc.poll() is not None:
                raise BenchError(f"nginx exited with {self.proc.returncode}: {self.proc.stderr.read().strip()} "
                                 f"{self.error_log()}")
            if time.monotonic() > deadline:
                raise BenchError(f"nginx: {len(waiting)} of {len(self.ports)} ports not listening after 20 s; "
                                 f"{self.error_log()}")
            try:
                with socket.create_connection(("127.0.0.1", waiting[0]), timeout=1):
                    waiting.pop(0)
            except OSError:
                time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            common.stop(self.proc, timeout=10)

    def error_log(self) -> str:
        try:
            with open(os.path.join(self.dir, "nginx-error.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def worker_cpu(self) -> float:
        """CPU seconds of nginx's workers (children of the master)."""
        total = 0.0
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            for pid in f.read().split():
                total += common.cpu_seconds(int(pid))
        return total


def run_bench(ca: str, targets: str, args) -> list:
    cmd = pinned(CPU_CLIENT) + [BINARY, f"--ca={ca}", f"--targets={targets}", f"--rounds={args.rounds}",
                                f"--concurrency={args.concurrency}", f"--timeout-ms={args.timeout_ms}"]
    # Worst case every handshake times out: bound by that, plus a margin.
    limit = 60 + 2 * (args.rounds + 1) * args.endpoints * args.timeout_ms / 1000 / max(args.concurrency, 1)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=min(limit, 1800))
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"bench_certs did not finish within {min(limit, 1800):.0f} s") from e
    if r.returncode != 0:
        raise BenchError(f"bench_certs failed ({r.returncode}): {r.stderr.strip()}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def one_kind(kind: str, args) -> dict:
    d = common.tempdir()
    try:
        hosts = [f"ep{i:03d}.bench.test" for i in range(args.endpoints)]
        t0 = time.monotonic()
        ca, leaves = make_pki(d, kind, hosts)
        print(f"{KEYS[kind][0]}: PKI of {len(leaves)} leaves made in {time.monotonic() - t0:.1f} s",
              file=sys.stderr)
        ports = distinct_ports(args.endpoints)
        targets = os.path.join(d, "targets.txt")
        with open(targets, "w") as f:
            for host, port in zip(hosts, ports):
                f.write(f"{host} {port}\n")
        with Nginx(d, hosts, ports, leaves) as nginx:
            load0 = os.getloadavg()[0]
            cpu0 = nginx.worker_cpu()
            t0 = time.monotonic()
            rows = run_bench(ca, targets, args)
            server_cpu = nginx.worker_cpu() - cpu0
            load1 = os.getloadavg()[0]
        print(f"{KEYS[kind][0]}: bench_certs ran for {time.monotonic() - t0:.1f} s", file=sys.stderr)
        handshakes = sum(r["handshakes"] for r in rows)
        return {"rows": rows, "server_cpu_us": server_cpu * 1e6 / max(handshakes, 1), "load": (load0, load1)}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def spread(values: list, fmt: str) -> str:
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def report(kind: str, result: dict, args) -> None:
    rows = result["rows"]
    clients = {c: [r for r in rows if r["client"] == c and r["round"] >= 0]  # round -1: the warm-up
               for c in ("runbookd", "reference", "reference-concurrent")}
    ours = clients["runbookd"]

    def per(rs: list, field: str) -> list:
        return [r[field] / r["handshakes"] for r in rs]

    def ratio(ref: str) -> str:
        """Ratio of the medians, and the range of the ratios round by round."""
        by_round = {r["round"]: r["cpu_us"] / r["handshakes"] for r in clients[ref]}
        each = [o["cpu_us"] / o["handshakes"] / by_round[o["round"]] for o in ours]
        m = statistics.median(per(ours, "cpu_us")) / statistics.median(per(clients[ref], "cpu_us"))
        return f"**{m:.2f}** ({min(each):.2f}–{max(each):.2f})"

    name = KEYS[kind][0]
    seq, conc = "reference", "reference-concurrent"
    print(f"\n{name}: {args.endpoints} endpoints, {len(ours)} rounds each after a warm-up; medians (min–max); "
          f"load average before/after {result['load'][0]:.2f}/{result['load'][1]:.2f}")
    print(f"| {name} | runbookd `check_all` ({args.concurrency} at a time) | reference: OpenSSL, blocking, "
          f"one at a time | reference: OpenSSL, non-blocking, {args.concurrency} at a time (poll) |")
    print("|---|---|---|---|")
    print(f"| CPU per handshake (user + sys) | **{spread(per(ours, 'cpu_us'), '.0f')} µs** | "
          f"{spread(per(clients[seq], 'cpu_us'), '.0f')} µs | {spread(per(clients[conc], 'cpu_us'), '.0f')} µs |")
    print("| of which user / sys | " + " | ".join(
        f"{statistics.median(per(clients[c], 'user_us')):.0f} / {statistics.median(per(clients[c], 'sys_us')):.0f} µs"
        for c in ("runbookd", seq, conc)) + " |")
    print(f"| runbookd's CPU ÷ the reference's | | {ratio(seq)} | {ratio(conc)} |")
    print("| wall time of a round | " + " | ".join(
        f"{'**' if c == 'runbookd' else ''}{spread([r['wall_ms'] for r in clients[c]], '.0f')} ms"
        f"{'**' if c == 'runbookd' else ''}" for c in ("runbookd", seq, conc)) + " |")
    print(f"nginx worker CPU per handshake (every client, 10 ms ticks): {result['server_cpu_us']:.0f} µs")
    print(f"RSS of the bench process halfway through a runbookd round: "
          f"{statistics.median(r['rss_kib'] for r in ours) / 1024:.1f} MiB (median; "
          f"{min(r['rss_kib'] for r in ours) / 1024:.1f}–{max(r['rss_kib'] for r in ours) / 1024:.1f})")
    m_seq = statistics.median(per(ours, "cpu_us")) / statistics.median(per(clients[seq], "cpu_us"))
    m_conc = statistics.median(per(ours, "cpu_us")) / statistics.median(per(clients[conc], "cpu_us"))
    wall = statistics.median(r["wall_ms"] for r in ours)
    print(f"targets: CPU per handshake ≤ {RATIO_TARGET} × the reference: "
          f"{'met' if m_seq <= RATIO_TARGET else 'MISSED'} ({m_seq:.2f} × the sequential one; "
          f"{m_conc:.2f} × the concurrent one: {'met' if m_conc <= RATIO_TARGET else 'missed'}); "
          f"round ≤ {ROUND_TARGET_MS / 1000:.0f} s: {'met' if wall <= ROUND_TARGET_MS else 'MISSED'} ({wall:.0f} ms)")


def build() -> None:
    print("building bench_certs (scripts/build build -- bench_certs; waits for any other build) ...",
          file=sys.stderr)
    t0 = time.monotonic()
    try:
        r = subprocess.run([os.path.join(common.ROOT, "scripts", "build"), "build", "--", "bench_certs"],
                           capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired as e:
        raise BenchError("the build did not finish within an hour") from e
    if r.returncode != 0:
        tail = "\n".join((r.stdout + r.stderr).splitlines()[-30:])
        raise BenchError(f"scripts/build build -- bench_certs failed ({r.returncode}):\n{tail}")
    print(f"built in {time.monotonic() - t0:.0f} s", file=sys.stderr)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoints", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--keys", default="ecdsa,rsa", help="comma-separated: ecdsa, rsa")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--timeout-ms", type=int, default=10000)
    args = ap.parse_args()
    kinds = [k.strip() for k in args.keys.split(",") if k.strip()]
    for tool in ("nginx", "openssl"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} not found (scripts/install-deps installs it)")
    if any(k not in KEYS for k in kinds):
        raise BenchError(f"--keys: choose among {', '.join(KEYS)}")
    # SIGTERM ends the run through the same clean-up as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    build()
    nginx_version = subprocess.run(["nginx", "-v"], capture_output=True, text=True, timeout=10).stderr.strip()
    print(f"{common.machine()}; {nginx_version}, 1 worker on CPU {CPU_SERVER}; client on CPU {CPU_CLIENT}; "
          "TLS 1.3 offered by both, session cache and tickets off")
    for kind in kinds:
        report(kind, one_kind(kind, args), args)  # a missed target is a finding, not a failure
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench/certs.py: {e}", file=sys.stderr)
        sys.exit(1)
