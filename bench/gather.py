#!/usr/bin/env python3
"""Page -> first #operations summary with every source configured against the fakes, with the
page-time gathering on (operations.gather_deadline 3s, the default) and off (0s).

Each source talks to what the integration tests use, over loopback: the fake Kubernetes API
server (a deployment, two pods, a ConfigMap, two nodes), the fake Google APIs (Cloud SQL
Admin, Cloud Monitoring, the OAuth token endpoint, the status feed), a real PostgreSQL
(postgres_rig), a TLS server for the certs source, an HTTP site for the probes source, a real
Prometheus scraping a loopback exporter (prometheus_rig), the fake PagerDuty REST API; the
fake Discord receives the posts. Polling intervals are long (a minute and more), as in
production, so what the summary holds at the page comes from the page-time refresh.

A signed incident.triggered is sent; the clock stops when the fake Discord has read the
#operations execute-webhook request. Pages are 2 s apart. The reference, in the same run: the
same daemon and sources with the gathering off (the summary goes out with the notice).

    bench/gather.py [--incidents 10] [--runs 5]
"""
import argparse
import os
import shutil
import statistics
import time

import common
import fake_google as fg
import fake_https
import fake_kubernetes as k8s
import fake_pagerduty
import harness
import pagerduty
import postgres_rig as pg
import prometheus_rig
from test_probes import yaml_text

NS, DEPLOY, HASH = "darklang", "bwdserver-deployment", "7d9f5c6b8"
PROJECT, INSTANCE = "acme-prod", "dark-west"
K8S_TOKEN = "sa-token-bench"
PD_TOKEN = "pd-api-token-bench"


class World:
    """Every fake and server, started once and shared by both modes."""

    def __init__(self):
        self.tmp = harness.make_tempdir("runbookd-bench-gather-")
        self.pki = harness.test_pki()
        self.k8s = k8s.FakeKubernetes(self.pki.server_cert, self.pki.server_key, tokens=(K8S_TOKEN,)).start()
        self.k8s.apply("deployments", k8s.deployment(NS, DEPLOY, "gcr.io/dark/bwd:9c1e", revision="41"))
        for suffix in ("a1b2c", "d3e4f"):
            self.k8s.apply("pods", k8s.pod(NS, f"{DEPLOY}-{HASH}-{suffix}", DEPLOY, HASH,
                                           containers=[k8s.container_status("bwdserver-ctr")]))
        self.k8s.apply("configmaps", k8s.configmap(NS, "bwd-config", {"MODE": "a"}))
        for n in ("aaaa", "bbbb"):
            self.k8s.apply("nodes", k8s.node(f"gke-prod-pool-1-{n}", "v1.29.3-gke.100"))
        self.sa_dir = os.path.join(self.tmp, "serviceaccount")
        os.makedirs(self.sa_dir)
        with open(os.path.join(self.sa_dir, "token"), "w") as f:
            f.write(K8S_TOKEN)
        shutil.copy(self.pki.ca_cert, os.path.join(self.sa_dir, "ca.crt"))
        with open(os.path.join(self.sa_dir, "namespace"), "w") as f:
            f.write("runbookd\n")

        self.tokens = fg.TokenBook()
        self.google = fg.FakeGoogle(tokens=self.tokens)
        self.key = fg.make_service_account_key(self.tmp, token_uri=self.google.token_url)
        self.google.register_key(self.key)
        self.google.set_instance(PROJECT, INSTANCE, fg.sql_instance(INSTANCE, PROJECT))

        self.pg = pg.PostgresServer().start()
        pg.seed(self.pg)
        self.role = self.pg.create_monitor_role(password="mon-" + harness.unique_token(16))

        self.tls = fake_https.FakeHTTPS(fake_https.server_context(self.pki.server_cert, self.pki.server_key))
        self.tls._dispatch = lambda h, rec: self.tls._send(h, rec, 204, b"", "text/plain")
        self.tls.start()
        self.site = fake_https.FakeHTTPS(None)
        self.site._dispatch = lambda h, rec: self.site._send(h, rec, 200, b"ok\n", "text/plain")
        self.site.start()

        self.exporter = prometheus_rig.Exporter().start()
        self.exporter.set_rate("bwd_requests_total", {"ip": "198.51.100.7", "canvas": "ops"}, 5)
        os.makedirs(os.path.join(self.tmp, "prom"))
        self.prom = prometheus_rig.PrometheusRig(os.path.join(self.tmp, "prom"))
        self.prom.start([self.exporter.address])
        harness.wait_for(lambda: self.prom.query_value("sum(bwd_requests_total)"), 60, "a first scrape")

        self.pd = fake_pagerduty.FakePagerDuty(token=PD_TOKEN).start()

    def config(self, deadline: str) -> dict:
        return {
            "operations": {"edit_interval": "30s", "gather_deadline": deadline},
            "services": {harness.SERVICE_ID: {"name": harness.SERVICE_NAME, "impact": harness.SERVICE_IMPACT,
                                              "kubernetes": [f"{NS}/{DEPLOY}"]}},
            "kubernetes": {"enabled": True, "service_account_dir": self.sa_dir},
            "google": {"project": PROJECT, "monitoring_url": self.google.url, "sqladmin_url": self.google.url,
                       "ca_file": self.google.ca_file, "request_timeout": "2s", "credentials": "key_file",
                       "key_file": self.key.path},
            "cloudsql": {"instance": INSTANCE, "monitoring_interval": "60s", "instance_interval": "5m"},
            "gcp_status": {"enabled": True, "url": self.google.url + "/incidents.json", "interval": "5m",
                           "locations": ["us-central1"]},
            "postgres": {"dsn": self.pg.dsn(user=self.role.name, password=self.role.password, db="app"),
                         "instance": INSTANCE, "interval": "60s"},
            "certs": {"interval": "1h", "ca_file": self.pki.ca_cert,
                      "targets": [{"host": "127.0.0.1", "port": self.tls.port}]},
            "probes": {"interval": "5m", "targets": [{"name": "site", "url": f"{self.site.url}/"}]},
            "promql": {"url": self.prom.url, "interval": "15s", "lookback": "1m",
                       "queries": [{"name": "by_ip", "query": "sum by (ip) (irate(bwd_requests_total[30s]))",
                                    "signal": "top_talker", "by": "ip"}]},
            "pagerduty_api": {"token": "${PD_API_TOKEN}", "url": self.pd.url, "ca_file": self.pki.ca_cert,
                              "interval": "5m"},
        }

    def requests(self) -> dict:
        """Requests each HTTP fake has served so far (Postgres and Prometheus are real servers; the
        certs source only handshakes)."""
        return {"kubernetes": len(self.k8s.snapshot_requests()), "google": len(self.google.snapshot_requests()),
                "probes": len(self.site.snapshot_requests()),
                "pagerduty_api": len(self.pd.snapshot_requests())}

    def close(self):
        for stop in (self.k8s.stop, self.google.stop, self.pg.stop, self.tls.stop, self.site.stop, self.prom.stop,
                     self.exporter.stop, self.pd.stop):
            try:
                stop()
            except Exception:  # noqa: BLE001 - the others still stop
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def page_to_summary(world: World, deadline: str, incidents: int) -> list:
    env = harness.DaemonWithDiscord(world.config(deadline), name=f"gather-{deadline}")
    with open(env.daemon.config_path, "w") as f:
        f.write(yaml_text(env.config) + "\n")
    env.start(env={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(world.k8s.port),
                   "PD_API_TOKEN": PD_TOKEN})
    try:
        harness.wait_for(lambda: env.daemon.http("GET", "/readyz").status == 200, 30, "/readyz 200",
                         diagnostics=env.diagnostics)
        # Every source healthy, so that each one's refresh is a real look.
        harness.wait_for(lambda: "failing" not in env.daemon.http("GET", "/readyz?verbose").body.decode(), 60,
                         "every source healthy",
                         diagnostics=lambda: env.daemon.http("GET", "/readyz?verbose").body.decode())
        if deadline != "0s":
            print("  " + env.daemon.http("GET", "/readyz?verbose").body.decode().replace("\n", "\n  ").rstrip())
        env.pd.send(pagerduty.ping())  # opens the client's keep-alive connection
        before_requests = world.requests()
        latencies = []
        for _ in range(incidents):
            before = len(env.discord.execute_requests(env.ops_id))
            payload = pagerduty.encode(pagerduty.triggered(pagerduty.Incident()))
            start = time.monotonic()
            env.pd.send(payload)
            reqs = harness.wait_for(
                lambda: (lambda r: r if len(r) > before else None)(env.discord.execute_requests(env.ops_id)),
                10, "the first #operations summary", diagnostics=env.diagnostics)
            latencies.append(reqs[before].time - start)
            time.sleep(2)
        print(f"  ({deadline}) requests to the fakes during the pages: "
              f"{ {k: world.requests()[k] - before_requests[k] for k in before_requests} }")
        late = [e for e in env.daemon.snapshot_logs() if e.get("msg") == "evidence gathering past its deadline"]
        if late:
            print(f"  ({deadline}) {len(late)} gatherings past the deadline, waiting for "
                  f"{sorted({e.get('waiting_for') for e in late})}")
        return latencies
    finally:
        env.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--incidents", type=int, default=10)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    if "RUNBOOKD_BIN" not in os.environ:
        common.build()
        os.environ["RUNBOOKD_BIN"] = common.BINARY

    world = World()
    try:
        on, off, on_max = [], [], []
        for _ in range(args.runs):
            lat = page_to_summary(world, "3s", args.incidents)
            on.append(statistics.median(lat))
            on_max.append(max(lat))
            off.append(statistics.median(page_to_summary(world, "0s", args.incidents)))
    finally:
        world.close()

    ms = lambda s: f"{s * 1000:.1f} ms"
    print(f"machine: {common.machine()}")
    print(f"date: {time.strftime('%Y-%m-%d')}; {args.runs} runs x {args.incidents} incidents")
    print("| measure | gathering on (3 s deadline) | gathering off (reference) | ratio |")
    print("|---|---|---|---|")
    print(f"| page -> first #operations post, median (median of runs) | {ms(statistics.median(on))} | "
          f"{ms(statistics.median(off))} | {statistics.median(on) / statistics.median(off):.1f} |")
    print(f"| the same, run medians (min-max) | {ms(min(on))}-{ms(max(on))} | {ms(min(off))}-{ms(max(off))} | |")
    print(f"| page -> first #operations post, max (median of runs; worst) | {ms(statistics.median(on_max))}; "
          f"{ms(max(on_max))} | | |")


if __name__ == "__main__":
    main()
