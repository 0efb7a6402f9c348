"""Self-test of fake_kubernetes: lists and pages, watches, expiry, faults and auth,
with urllib/http.client/ssl only (no daemon)."""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import socket
import ssl
import time
import unittest
import urllib.error
import urllib.request
from typing import Optional

import fake_kubernetes as fk
import harness

TIMEOUT = 5.0  # every socket operation in this file


class Watcher:
    """One watch stream read line by line with http.client (chunked decoding included).

    Reads with ``read1``: it raises IncompleteRead when the stream is cut before the
    terminating chunk, where ``readline`` would return b"" as for a clean end."""

    def __init__(self, test: "FakeKubernetesTests", path: str, token: str = "tok"):
        self.conn = test.connection()
        self.conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        self.resp = self.conn.getresponse()
        self.buf = b""

    def next(self) -> Optional[dict]:
        """The next event, or None when the stream ended cleanly."""
        while b"\n" not in self.buf:
            data = self.resp.read1(65536)
            if not data:
                if self.buf:
                    raise AssertionError(f"stream ended inside a line: {self.buf[:200]!r}")
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def close(self) -> None:
        self.conn.close()


class FakeKubernetesTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = harness.test_pki()
        cls.tmp = harness.make_tempdir("runbookd-it-k8s-")
        cls.client_cert, cls.client_key = fk.issue_client_cert(cls.pki.ca_cert, cls.pki.ca_key, cls.tmp,
                                                               cn="system:serviceaccount:ops:runbookd")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.k8s = fk.FakeKubernetes(self.pki.server_cert, self.pki.server_key, tokens=("tok",),
                                     client_ca_file=self.pki.ca_cert).start()
        self.watchers: list[Watcher] = []

    def tearDown(self):
        for w in self.watchers:
            w.close()
        self.k8s.stop()
        self.assertEqual(self.k8s.errors, [], "exceptions inside the fake")

    # ---------------------------------------------------------------- helpers

    def context(self, client_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.pki.ca_cert)
        if client_cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx

    def connection(self, client_cert: bool = False) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.k8s.port, timeout=TIMEOUT,
                                           context=self.context(client_cert))

    def get(self, path: str, token: Optional[str] = "tok", client_cert: bool = False):
        """(status, headers, parsed JSON body) on a fresh connection."""
        conn = self.connection(client_cert)
        try:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            conn.request("GET", path, headers=headers)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), json.loads(r.read())
        finally:
            conn.close()

    def send(self, method: str, path: str, body: Optional[dict] = None, token: str = "tok"):
        """(status, parsed JSON body) of one request on a fresh connection."""
        conn = self.connection()
        try:
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            r = conn.getresponse()
            return r.status, json.loads(r.read())
        finally:
            conn.close()

    def watch(self, path: str, token: str = "tok") -> Watcher:
        w = Watcher(self, path, token)
        self.watchers.append(w)
        return w

    def apply_pod(self, ns: str, name: str, **kw) -> dict:
        return self.k8s.apply("pods", fk.pod(ns, name, "web", **kw))

    # ---------------------------------------------------------------- lists

    def test_list_pages_form_one_snapshot(self):
        for i in range(5):
            self.apply_pod("shop", f"web-abc123-p{i}")
        self.apply_pod("other", "web-abc123-q0")
        status, _, first = self.get("/api/v1/namespaces/shop/pods?limit=2")
        self.assertEqual(status, 200)
        self.assertEqual((first["kind"], first["apiVersion"]), ("PodList", "v1"))
        rv = first["metadata"]["resourceVersion"]
        self.assertEqual(rv, self.k8s.resource_version)
        self.assertEqual(first["metadata"]["remainingItemCount"], 3)
        for item in first["items"]:
            self.assertNotIn("kind", item)
            self.assertNotIn("apiVersion", item)
        # Changes between pages are not part of the snapshot.
        self.apply_pod("shop", "web-abc123-p9")
        self.k8s.delete("pods", "shop", "web-abc123-p4")
        names = [i["metadata"]["name"] for i in first["items"]]
        token = first["metadata"]["continue"]
        self.assertRegex(token, r"^[A-Za-z0-9_-]+$")  # opaque; unpadded base64url like the real one
        self.assertIn(b'"rv":', base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        while token:
            status, _, page = self.get(f"/api/v1/namespaces/shop/pods?limit=2&continue={token}")
            self.assertEqual(status, 200)
            self.assertEqual(page["metadata"]["resourceVersion"], rv)
            names += [i["metadata"]["name"] for i in page["items"]]
            token = page["metadata"].get("continue", "")
        self.assertEqual(names, [f"web-abc123-p{i}" for i in range(5)])
        # A fresh list sees the changes; the all-namespaces list sees both namespaces.
        _, _, now = self.get("/api/v1/namespaces/shop/pods")
        self.assertEqual(len(now["items"]), 5)
        self.assertNotIn("continue", now["metadata"])
        _, _, everywhere = self.get("/api/v1/pods?limit=500")
        self.assertEqual(len(everywhere["items"]), 6)

    def test_expired_continue_token_answers_410(self):
        for i in range(3):
            self.apply_pod("shop", f"web-abc123-p{i}")
        _, _, first = self.get("/api/v1/namespaces/shop/pods?limit=1")
        self.k8s.expire_continue_tokens()
        status, _, body = self.get(f"/api/v1/namespaces/shop/pods?limit=1&continue={first['metadata']['continue']}")
        self.assertEqual(status, 410)
        self.assertEqual((body["kind"], body["status"], body["reason"], body["code"]),
                         ("Status", "Failure", "Expired", 410))
        self.assertIn("continue parameter is too old", body["message"])
        status, _, _ = self.get("/api/v1/namespaces/shop/pods?limit=1&continue=%21%21")
        self.assertEqual(status, 400)

    def test_other_resources_version_and_selectors(self):
        self.k8s.apply("deployments", fk.deployment("shop", "web", "img:2", generation=3,
                                                    observed_generation=2, updated=1, revision="4"))
        self.k8s.apply("configmaps", fk.configmap("shop", "web-config", {"A": "1"}))
        self.k8s.apply("nodes", fk.node("gke-n1", "v1.29.4-gke.1043002", unschedulable=True))
        self.k8s.apply("events", fk.warning_event("shop", "web-abc123-p0.17c1a2b3c4d5e6f7", "BackOff",
                                                  "Back-off restarting failed container", count=5))
        self.k8s.apply("events", fk.warning_event("shop", "web.17c1a2b3c4d5e6f8", "ScalingReplicaSet",
                                                  "Scaled up", involved_kind="Deployment",
                                                  type="Normal", component="deployment-controller"))
        self.k8s.apply("events", fk.warning_event("shop", "web-abc123-p1.17c1a2b3c4d5e6f9",
                                                  "FailedScheduling", "0/3 nodes are available",
                                                  count=3, new_api=True, component="default-scheduler"))
        _, _, deps = self.get("/apis/apps/v1/namespaces/shop/deployments")
        self.assertEqual((deps["kind"], deps["apiVersion"]), ("DeploymentList", "apps/v1"))
        d = deps["items"][0]
        self.assertEqual(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "4")
        self.assertEqual((d["metadata"]["generation"], d["status"]["observedGeneration"]), (3, 2))
        self.assertEqual([c["type"] for c in d["status"]["conditions"]], ["Available", "Progressing"])
        _, _, alld = self.get("/apis/apps/v1/deployments")
        self.assertEqual(len(alld["items"]), 1)
        _, _, cms = self.get("/api/v1/namespaces/shop/configmaps")
        self.assertEqual(cms["kind"], "ConfigMapList")
        self.assertEqual(cms["items"][0]["metadata"]["managedFields"][-1]["manager"], "kubectl-edit")
        _, _, nodes = self.get("/api/v1/nodes")
        self.assertEqual(nodes["kind"], "NodeList")
        self.assertTrue(nodes["items"][0]["spec"]["unschedulable"])
        self.assertEqual(nodes["items"][0]["status"]["nodeInfo"]["kubeletVersion"], "v1.29.4-gke.1043002")
        _, _, warnings = self.get("/api/v1/namespaces/shop/events?fieldSelector=type%3DWarning")
        self.assertEqual(warnings["kind"], "EventList")
        self.assertEqual(sorted(e["reason"] for e in warnings["items"]), ["BackOff", "FailedScheduling"])
        new = next(e for e in warnings["items"] if e["reason"] == "FailedScheduling")
        self.assertIsNone(new["lastTimestamp"])
        self.assertEqual(new["series"]["count"], 3)
        status, _, _ = self.get("/api/v1/events?fieldSelector=involvedObject.fieldPath%3Dx&labelSelector=a%3Db")
        self.assertEqual(status, 200)
        status, _, body = self.get("/apis/apps/v1/namespaces/shop/deployments/web")
        self.assertEqual((status, body["kind"], body["apiVersion"]), (200, "Deployment", "apps/v1"))
        status, _, body = self.get("/api/v1/namespaces/shop/pods/nope")
        self.assertEqual((status, body["reason"]), (404, "NotFound"))
        status, _, body = self.get("/api/v1/namespaces/shop/widgets")
        self.assertEqual((status, body["kind"], body["reason"], body["code"]), (404, "Status", "NotFound", 404))
        status, _, version = self.get("/version")
        self.assertEqual(status, 200)
        self.assertEqual(version["gitVersion"], "v1.29.4-gke.1043002")
        self.assertEqual(set(version), {"major", "minor", "gitVersion", "gitCommit", "gitTreeState",
                                        "buildDate", "goVersion", "compiler", "platform"})
        self.k8s.set_version("v1.30.1-gke.1329003")
        _, _, version = self.get("/version")
        self.assertEqual((version["gitVersion"], version["minor"]), ("v1.30.1-gke.1329003", "30"))

    def test_keep_alive(self):
        conn = self.connection()
        try:
            for _ in range(3):
                conn.request("GET", "/version", headers={"Authorization": "Bearer tok"})
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                r.read()
        finally:
            conn.close()

    # ---------------------------------------------------------------- watches

    def test_watch_replays_from_a_resource_version_then_streams(self):
        first = self.apply_pod("shop", "web-abc123-a")
        start = first["metadata"]["resourceVersion"]
        self.apply_pod("shop", "web-abc123-b")
        self.apply_pod("shop", "web-abc123-a", containers=[fk.container_status("app", restarts=1)])
        self.apply_pod("other", "web-abc123-z")
        w = self.watch(f"/api/v1/namespaces/shop/pods?watch=1&resourceVersion={start}&timeoutSeconds=30")
        self.assertEqual(w.resp.status, 200)
        self.assertEqual(w.resp.getheader("Content-Type"), "application/json")
        self.assertEqual(w.resp.getheader("Transfer-Encoding"), "chunked")
        ev = w.next()
        self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("ADDED", "web-abc123-b"))
        self.assertEqual((ev["object"]["kind"], ev["object"]["apiVersion"]), ("Pod", "v1"))
        ev = w.next()
        self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("MODIFIED", "web-abc123-a"))
        self.assertEqual(ev["object"]["status"]["containerStatuses"][0]["restartCount"], 1)
        self.assertEqual(ev["object"]["metadata"]["uid"], first["metadata"]["uid"])
        # Live: another namespace is not seen; ADDED, MODIFIED, DELETED with the last state.
        self.apply_pod("other", "web-abc123-y")
        self.apply_pod("shop", "web-abc123-c")
        oom = dict(reason="OOMKilled", exitCode=137, message="", finishedAt="2024-05-01T10:00:00Z")
        self.apply_pod("shop", "web-abc123-c", containers=[
            fk.container_status("app", restarts=2, waiting="CrashLoopBackOff",
                                waiting_message="back-off 20s restarting failed container", last_terminated=oom)])
        gone = self.k8s.delete("pods", "shop", "web-abc123-c")
        seen = [w.next() for _ in range(3)]
        self.assertEqual([e["type"] for e in seen], ["ADDED", "MODIFIED", "DELETED"])
        self.assertEqual({e["object"]["metadata"]["name"] for e in seen}, {"web-abc123-c"})
        cs = seen[1]["object"]["status"]["containerStatuses"][0]
        self.assertEqual(cs["state"]["waiting"]["reason"], "CrashLoopBackOff")
        self.assertEqual(cs["lastState"]["terminated"]["exitCode"], 137)
        self.assertNotIn("message", cs["lastState"]["terminated"])
        self.assertEqual(seen[2]["object"]["metadata"]["resourceVersion"], gone["metadata"]["resourceVersion"])
        self.assertEqual(seen[2]["object"]["status"], seen[1]["object"]["status"])
        self.assertEqual(len(self.k8s.open_watches("pods")), 1)

    def test_watch_without_resource_version_starts_with_the_current_state(self):
        self.apply_pod("shop", "web-abc123-a")
        self.k8s.compact()
        w = self.watch("/api/v1/pods?watch=true")
        ev = w.next()
        self.assertEqual((ev["type"], ev["object"]["metadata"]["name"]), ("ADDED", "web-abc123-a"))

    def test_small_chunks_and_shared_chunks_keep_lines_whole(self):
        self.k8s.chunk_size = 7
        start = self.k8s.resource_version
        for i in range(4):
            self.apply_pod("shop", f"web-abc123-p{i}")
        w = self.watch(f"/api/v1/namespaces/shop/pods?watch=1&resourceVersion={start}")
        self.assertEqual([w.next()["object"]["metadata"]["name"] for _ in range(4)],
                         [f"web-abc123-p{i}" for i in range(4)])

    def test_bookmarks_only_when_allowed(self):
        self.apply_pod("shop", "web-abc123-a")
        rv = self.k8s.resource_version
        with_b = self.watch(f"/api/v1/namespaces/shop/pods?watch=1&resourceVersion={rv}&allowWatchBookmarks=true")
        without = self.watch(f"/api/v1/namespaces/shop/pods?watch=1&resourceVersion={rv}")
        self.assertEqual(self.k8s.send_bookmark("pods"), 1)
        ev = with_b.next()
        self.assertEqual(ev, {"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                                                              "metadata": {"resourceVersion": rv}}})
        self.apply_pod("shop", "web-abc123-b")
        self.assertEqual(without.next()["type"], "ADDED")  # no bookmark before it

    def test_timeout_seconds_ends_the_stream_cleanly(self):
        t0 = time.monotonic()
        w = self.watch(f"/api/v1/nodes?watch=1&resourceVersion={self.k8s.resource_version}&timeoutSeconds=1")
        self.assertIsNone(w.next())
        self.assertLess(time.monotonic() - t0, 4.0)
        self.assertEqual(self.k8s.watches[-1].end_reason, "timeout")

    def test_expired_resource_version_in_stream(self):
        old = self.apply_pod("shop", "web-abc123-a")["metadata"]["resourceVersion"]
        self.apply_pod("shop", "web-abc123-b")
        point = self.k8s.compact()
        w = self.watch(f"/api/v1/namespaces/shop/pods?watch=1&resourceVersion={old}")
        self.assertEqual(w.resp.status, 200)
        ev = w.next()
        self.assertEqual(ev, {"type": "ERROR", "object": {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f"too old resource version: {old} ({point})", "reason": "Expired", "code": 410}})
        self.assertIsNone(w.next())
        # From the compaction point on, the watch is fine.
        ok = self.watch(f"/api/v1/namespaces/shop/pods?watch=1&resourceVersion={point}")
        self.apply_pod("shop", "web-abc123-c")
        self.assertEqual(ok.next()["type"], "ADDED")

    def test_expired_resource_version_as_http_410(self):
        old = self.apply_pod("shop", "web-abc123-a")["metadata"]["resourceVersion"]
        self.apply_pod("shop", "web-abc123-b")
        self.k8s.compact()
        self.k8s.expiry_mode = "http"
        status, _, body = self.get(f"/api/v1/namespaces/shop/pods?watch=1&resourceVersion={old}")
        self.assertEqual((status, body["reason"], body["code"]), (410, "Expired", 410))
        self.assertTrue(body["message"].startswith(f"too old resource version: {old} ("))

    def test_expire_watches_sends_error_and_ends(self):
        w = self.watch(f"/api/v1/pods?watch=1&resourceVersion={self.k8s.resource_version}")
        self.assertEqual(self.k8s.expire_watches(), 1)
        ev = w.next()
        self.assertEqual((ev["type"], ev["object"]["reason"], ev["object"]["code"]), ("ERROR", "Expired", 410))
        self.assertIsNone(w.next())

    def test_drop_watches_cuts_the_stream(self):
        w = self.watch(f"/api/v1/pods?watch=1&resourceVersion={self.k8s.resource_version}")
        self.assertEqual(self.k8s.drop_watches(), 1)
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, ssl.SSLError)):
            w.next()
        self.k8s.wait_until(lambda: not self.k8s.open_watches(), TIMEOUT, "no open watches")
        self.assertEqual(self.k8s.watches[-1].end_reason, "dropped")

    def test_client_closing_a_watch_is_noticed(self):
        w = self.watch(f"/api/v1/pods?watch=1&resourceVersion={self.k8s.resource_version}")
        self.assertEqual(len(self.k8s.open_watches()), 1)
        w.close()
        self.k8s.wait_until(lambda: not self.k8s.open_watches(), TIMEOUT, "the watch to be noticed closed")

    # ---------------------------------------------------------------- auth and faults

    def test_wrong_token_answers_401_and_tokens_rotate(self):
        status, _, body = self.get("/api/v1/pods", token="wrong")
        self.assertEqual(status, 401)
        self.assertEqual(body, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        self.assertEqual(self.get("/api/v1/pods", token=None)[0], 401)
        self.k8s.tokens = {"rotated"}
        self.assertEqual(self.get("/api/v1/pods", token="tok")[0], 401)
        self.assertEqual(self.get("/api/v1/pods", token="rotated")[0], 200)
        rec = self.k8s.snapshot_requests()[0]
        self.assertEqual((rec.method, rec.path, rec.authorization, rec.client_cert, rec.status),
                         ("GET", "/api/v1/pods", "Bearer wrong", False, 401))

    def test_client_certificate_is_accepted_as_auth(self):
        status, _, body = self.get("/api/v1/pods", token=None, client_cert=True)
        self.assertEqual(status, 200, body)
        rec = self.k8s.snapshot_requests()[-1]
        self.assertTrue(rec.client_cert)
        self.assertEqual(rec.client_cn, "system:serviceaccount:ops:runbookd")
        # urllib with the same context works too.
        req = urllib.request.Request(f"{self.k8s.url}/version")
        with urllib.request.urlopen(req, timeout=TIMEOUT, context=self.context(client_cert=True)) as r:
            self.assertEqual(json.loads(r.read())["major"], "1")

    def test_fail_next(self):
        self.k8s.fail_next(503, count=2, path_contains="/pods")
        self.assertEqual(self.get("/version")[0], 200)
        status, _, body = self.get("/api/v1/pods")
        self.assertEqual((status, body["reason"], body["code"]), (503, "ServiceUnavailable", 503))
        self.assertEqual(self.get("/api/v1/pods")[0], 503)
        self.assertEqual(self.get("/api/v1/pods")[0], 200)
        self.k8s.fail_next(429)
        status, headers, body = self.get("/api/v1/nodes")
        self.assertEqual((status, body["reason"], headers.get("Retry-After")), (429, "TooManyRequests", "1"))
        with self.assertRaises(urllib.error.HTTPError) as cm:
            self.k8s.fail_next(500)
            req = urllib.request.Request(f"{self.k8s.url}/api/v1/pods", headers={"Authorization": "Bearer tok"})
            urllib.request.urlopen(req, timeout=TIMEOUT, context=self.context())
        self.assertEqual(cm.exception.code, 500)
        self.assertEqual(json.loads(cm.exception.read())["reason"], "InternalError")

    def test_forbidden(self):
        self.k8s.forbid("nodes")
        status, _, body = self.get("/api/v1/nodes")
        self.assertEqual((status, body["reason"]), (403, "Forbidden"))
        self.assertIn('cannot list resource "nodes"', body["message"])

    def test_certificates_list_watch_and_an_absent_crd(self):
        cert = fk.certificate("shop", "shop-tls", ["shop.example.com", "www.shop.example.com"],
                              not_after="2026-03-05T15:00:00Z", ready=False)
        self.k8s.apply("certificates", cert)
        status, _, body = self.get("/apis/cert-manager.io/v1/namespaces/shop/certificates?limit=500")
        self.assertEqual(status, 200)
        self.assertEqual((body["kind"], body["apiVersion"]), ("CertificateList", "cert-manager.io/v1"))
        item = body["items"][0]
        self.assertNotIn("kind", item)
        self.assertEqual(item["spec"]["dnsNames"], ["shop.example.com", "www.shop.example.com"])
        self.assertEqual(item["spec"]["secretName"], "shop-tls-tls")
        self.assertEqual(item["status"]["notAfter"], "2026-03-05T15:00:00Z")
        ready = next(c for c in item["status"]["conditions"] if c["type"] == "Ready")
        self.assertEqual((ready["status"], ready["reason"]), ("False", "Expired"))
        _, _, everywhere = self.get("/apis/cert-manager.io/v1/certificates")
        self.assertEqual(len(everywhere["items"]), 1)
        status, _, one = self.get("/apis/cert-manager.io/v1/namespaces/shop/certificates/shop-tls")
        self.assertEqual((status, one["kind"], one["apiVersion"]), (200, "Certificate", "cert-manager.io/v1"))
        status, _, missing = self.get("/apis/cert-manager.io/v1/namespaces/shop/certificates/nope")
        self.assertEqual((status, missing["details"]["group"]), (404, "cert-manager.io"))
        self.assertEqual(missing["message"], 'certificates.cert-manager.io "nope" not found')

        w = self.watch(f"/apis/cert-manager.io/v1/namespaces/shop/certificates?watch=1"
                       f"&resourceVersion={body['metadata']['resourceVersion']}")
        self.k8s.apply("certificates", fk.certificate("shop", "shop-tls", ["shop.example.com"]))
        ev = w.next()
        self.assertEqual((ev["type"], ev["object"]["kind"]), ("MODIFIED", "Certificate"))
        self.assertEqual(ev["object"]["status"]["conditions"][0]["status"], "True")

        # Without the CRD: the watch ends, and every path of the group is a NotFound Status.
        self.k8s.certificate_crd = False
        self.assertIsNone(w.next())
        for path in ("/apis/cert-manager.io/v1/namespaces/shop/certificates?limit=500",
                     "/apis/cert-manager.io/v1/certificates?watch=1&resourceVersion=1",
                     "/apis/cert-manager.io/v1/namespaces/shop/certificates/shop-tls"):
            status, _, body = self.get(path)
            self.assertEqual((status, body["kind"], body["status"], body["reason"], body["code"]),
                             (404, "Status", "Failure", "NotFound", 404), path)
            self.assertEqual(body["message"], "the server could not find the requested resource")
        self.assertEqual(self.get("/api/v1/namespaces/shop/pods")[0], 200)  # the rest is served
        self.k8s.certificate_crd = True
        _, _, back = self.get("/apis/cert-manager.io/v1/namespaces/shop/certificates")
        self.assertEqual(len(back["items"]), 1)

        # No Ready condition yet, and no status at all.
        issuing = fk.certificate("shop", "new", ready=None)
        self.assertNotIn("notAfter", issuing["status"])
        self.assertEqual([c["type"] for c in issuing["status"]["conditions"]], ["Issuing"])
        self.assertNotIn("status", fk.certificate("shop", "bare", status=False))

        self.k8s.forbid("certificates")
        status, _, body = self.get("/apis/cert-manager.io/v1/namespaces/shop/certificates")
        self.assertEqual((status, body["reason"]), (403, "Forbidden"))
        self.assertIn('certificates.cert-manager.io is forbidden', body["message"])
        self.assertIn('cannot list resource "certificates" in API group "cert-manager.io"', body["message"])

    def test_down_resets_connections_and_drops_watches(self):
        w = self.watch(f"/api/v1/pods?watch=1&resourceVersion={self.k8s.resource_version}")
        self.k8s.down = True
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, ssl.SSLError)):
            w.next()
        with self.assertRaises((ConnectionError, ssl.SSLError, socket.timeout, OSError)):
            self.get("/version")
        self.assertGreaterEqual(self.k8s.refused_connections, 1)
        self.k8s.down = False
        self.assertEqual(self.get("/version")[0], 200)

    def test_delay(self):
        self.k8s.delay = 0.3
        t0 = time.monotonic()
        self.assertEqual(self.get("/version")[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)


    # ---------------------------------------------------------------- leases

    LEASES = "/apis/coordination.k8s.io/v1/namespaces/ops/leases"

    def test_lease_create_get_and_conflicts(self):
        status, body = self.send("GET", self.LEASES + "/runbookd")
        self.assertEqual((status, body["reason"]), (404, "NotFound"))
        self.assertEqual(body["message"], 'leases.coordination.k8s.io "runbookd" not found')
        spec = fk.lease("ops", "runbookd", "runbookd-0")["spec"]
        new = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "runbookd", "namespace": "ops"}, "spec": spec}
        status, created = self.send("POST", self.LEASES, new)
        self.assertEqual(status, 201)
        self.assertEqual((created["kind"], created["apiVersion"]), ("Lease", "coordination.k8s.io/v1"))
        self.assertEqual(created["spec"], spec)
        self.assertRegex(spec["renewTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        rv = created["metadata"]["resourceVersion"]
        self.assertTrue(created["metadata"]["uid"])
        # A second create loses the race.
        status, body = self.send("POST", self.LEASES, new)
        self.assertEqual((status, body["reason"]), (409, "AlreadyExists"))
        # GET answers the stored object.
        status, got = self.send("GET", self.LEASES + "/runbookd")
        self.assertEqual((status, got["metadata"]["resourceVersion"]), (200, rv))
        # A renewal with the current resourceVersion: 200 and a new resourceVersion.
        renewed = dict(got, spec=dict(got["spec"], renewTime=fk.micro_time()))
        status, after = self.send("PUT", self.LEASES + "/runbookd", renewed)
        self.assertEqual(status, 200)
        self.assertGreater(int(after["metadata"]["resourceVersion"]), int(rv))
        self.assertEqual(after["metadata"]["uid"], created["metadata"]["uid"])
        # The same write again carries a stale resourceVersion: 409 Conflict, nothing changed.
        takeover = dict(got, spec=dict(got["spec"], holderIdentity="runbookd-1", leaseTransitions=1))
        status, body = self.send("PUT", self.LEASES + "/runbookd", takeover)
        self.assertEqual((status, body["reason"]), (409, "Conflict"))
        self.assertIn("the object has been modified", body["message"])
        self.assertEqual(self.k8s.lease("ops", "runbookd")["spec"]["holderIdentity"], "runbookd-0")
        # With the fresh one it goes through.
        takeover["metadata"] = after["metadata"]
        status, body = self.send("PUT", self.LEASES + "/runbookd", takeover)
        self.assertEqual((status, body["spec"]["leaseTransitions"]), (200, 1))
        self.assertEqual(len(self.k8s.lease_writes("ops", "runbookd")), 5)

    def test_lease_put_of_an_absent_lease_and_invalid_specs(self):
        lease = fk.lease("ops", "runbookd", "a")
        lease["metadata"]["resourceVersion"] = "1"
        status, body = self.send("PUT", self.LEASES + "/runbookd", lease)
        self.assertEqual((status, body["reason"]), (404, "NotFound"))
        bad = fk.lease("ops", "runbookd", "a", renew="2026-12-03 18:00:00", acquire=fk.micro_time())
        status, body = self.send("POST", self.LEASES, bad)
        self.assertEqual((status, body["reason"]), (422, "Invalid"))
        self.assertIn("spec.renewTime", body["message"])
        status, body = self.send("POST", self.LEASES, fk.lease("ops", "runbookd", "a", duration=0))
        self.assertEqual((status, body["reason"]), (422, "Invalid"))
        status, _ = self.send("POST", self.LEASES, fk.lease("other", "runbookd", "a"))
        self.assertEqual(status, 400)  # the namespace in the body is not the path's
        status, _ = self.send("PUT", self.LEASES, fk.lease("ops", "runbookd", "a"))
        self.assertEqual(status, 405)  # PUT to the collection
        self.assertIsNone(self.k8s.lease("ops", "runbookd"))

    def test_lease_forbidden_and_unauthorized(self):
        self.k8s.forbid("leases", "ops")
        status, body = self.send("POST", self.LEASES, fk.lease("ops", "runbookd", "a"))
        self.assertEqual(status, 403)
        self.assertIn('cannot create resource "leases" in API group "coordination.k8s.io"', body["message"])
        status, _ = self.send("GET", self.LEASES + "/runbookd", token="nope")
        self.assertEqual(status, 401)

    def test_partition_refuses_one_token_only(self):
        self.k8s.tokens.add("tok-b")
        self.k8s.apply("leases", fk.lease("ops", "runbookd", "a"))
        self.k8s.partition("tok", "503")
        status, body = self.send("GET", self.LEASES + "/runbookd")
        self.assertEqual((status, body["reason"]), (503, "ServiceUnavailable"))
        self.assertEqual(self.send("GET", self.LEASES + "/runbookd", token="tok-b")[0], 200)
        self.k8s.partition("tok")  # dropped unanswered
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionError, ssl.SSLError, OSError)):
            self.send("GET", self.LEASES + "/runbookd")
        self.assertEqual(self.send("GET", self.LEASES + "/runbookd", token="tok-b")[0], 200)
        self.k8s.heal("tok")
        self.assertEqual(self.send("GET", self.LEASES + "/runbookd")[0], 200)


if __name__ == "__main__":
    unittest.main()
