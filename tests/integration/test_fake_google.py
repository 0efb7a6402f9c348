"""Self-test of fake_google: the metadata server, the JWT-bearer token exchange, Cloud
Monitoring timeSeries.list, Cloud SQL Admin instances.get, the status feed and the
faults, with http.client/ssl and the openssl CLI only (no daemon)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import ssl
import stat
import subprocess
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Optional

import fake_google as fg
import harness

TIMEOUT = 5.0  # every socket operation in this file
PROJECT = "darklang-prod"
DB = f"{PROJECT}:darklang-db"
T0 = datetime(2024, 1, 1, 0, 0, tzinfo=timezone.utc)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign(private_key_path: str, header: dict, claims: dict) -> str:
    """An RS256 JWT made here with ``openssl dgst -sha256 -sign`` (independent of the fake)."""
    signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode()))
    r = subprocess.run(["openssl", "dgst", "-sha256", "-sign", private_key_path],
                       input=signing_input.encode(), capture_output=True, timeout=30, check=True)
    return signing_input + "." + b64url(r.stdout)


def form(**fields) -> bytes:
    return urllib.parse.urlencode(fields).encode()


class Response:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


class FakeGoogleTests(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pki = harness.test_pki()
        cls.tmp = harness.make_tempdir("runbookd-it-google-")
        cls.key = fg.make_service_account_key(cls.tmp)
        cls.other = fg.make_service_account_key(os.path.join(cls.tmp, "other"))
        cls.ctx = ssl.create_default_context(cafile=cls.pki.ca_cert)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.book = fg.TokenBook()
        self.google = fg.FakeGoogle(tokens=self.book)
        self.md = fg.FakeMetadata(tokens=self.book, project_id=PROJECT)
        self.google.register_key(self.key)

    def tearDown(self):
        self.google.close()
        self.md.close()
        self.assertEqual(self.google.errors, [], "exceptions inside the fake")
        self.assertEqual(self.md.errors, [], "exceptions inside the fake")

    # ---------------------------------------------------------------- helpers

    def https(self, method: str, path: str, body: Optional[bytes] = None,
              headers: Optional[dict] = None) -> Response:
        conn = http.client.HTTPSConnection("127.0.0.1", self.google.port, timeout=TIMEOUT, context=self.ctx)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, r.headers, r.read())
        finally:
            conn.close()

    def http(self, path: str, headers: Optional[dict] = None) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.md.port, timeout=TIMEOUT)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            return Response(r.status, r.headers, r.read())
        finally:
            conn.close()

    def claims(self, **over) -> dict:
        now = int(time.time()) - 10  # golang/oauth2 back-dates iat by 10 s
        c = {"iss": self.key.client_email, "scope": fg.SCOPE_MONITORING_READ + " " + fg.SCOPE_SQL_ADMIN,
             "aud": self.google.token_url, "iat": now, "exp": now + 3600}
        c.update(over)
        return {k: v for k, v in c.items() if v is not None}

    def header(self, key: Optional[fg.ServiceAccountKey] = None) -> dict:
        return {"alg": "RS256", "typ": "JWT", "kid": (key or self.key).private_key_id}

    def exchange(self, assertion: str, grant_type: str = fg.JWT_BEARER) -> Response:
        return self.https("POST", "/token", form(grant_type=grant_type, assertion=assertion),
                          {"Content-Type": "application/x-www-form-urlencoded"})

    def sa_token(self) -> str:
        r = self.exchange(sign(self.key.private_key_path, self.header(), self.claims()))
        self.assertEqual(r.status, 200, r.body)
        return r.json()["access_token"]

    def assert_invalid_grant(self, assertion: str, description: Optional[str] = None,
                             error: str = "invalid_grant") -> None:
        r = self.exchange(assertion)
        self.assertEqual(r.status, 400, r.body)
        body = r.json()
        self.assertEqual(body["error"], error, body)
        self.assertTrue(body["error_description"], body)
        if description is not None:
            self.assertEqual(body["error_description"], description)
        self.assertEqual(self.google.assertions, [])

    def series_path(self, metric: str = fg.CPU_UTILIZATION, db: Optional[str] = DB,
                    start: datetime = T0, end: datetime = T0 + timedelta(minutes=10),
                    project: str = PROJECT, **extra) -> str:
        flt = f'metric.type="{metric}"' + (f' AND resource.labels.database_id="{db}"' if db else "")
        q = {"filter": flt, "interval.startTime": fg.rfc3339(start), "interval.endTime": fg.rfc3339(end),
             "aggregation.alignmentPeriod": "60s", "aggregation.perSeriesAligner": "ALIGN_MEAN",
             "view": "FULL"}
        q.update(extra)
        return f"/v3/projects/{project}/timeSeries?" + urllib.parse.urlencode({k: v for k, v in q.items()
                                                                               if v is not None})

    def monitoring(self, token: Optional[str], path: Optional[str] = None) -> Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.https("GET", path or self.series_path(), headers=headers)

    def assert_google_error(self, r: Response, code: int, status: str) -> dict:
        self.assertEqual(r.status, code, r.body)
        err = r.json()["error"]
        self.assertEqual((err["code"], err["status"]), (code, status), err)
        self.assertTrue(err["message"])
        return err

    def cut(self, call) -> None:
        """``call`` fails on the connection (reset or closed without an answer)."""
        with self.assertRaises((OSError, http.client.HTTPException)):
            call()

    # ---------------------------------------------------------------- key file

    def test_service_account_key_file(self):
        with open(self.key.path) as f:
            info = json.load(f)
        self.assertEqual(stat.S_IMODE(os.stat(self.key.path).st_mode), 0o600)
        for k in ("type", "project_id", "private_key_id", "private_key", "client_email", "client_id",
                  "auth_uri", "token_uri", "universe_domain"):
            self.assertIn(k, info)
        self.assertEqual(info["type"], "service_account")
        self.assertEqual(info["universe_domain"], "googleapis.com")
        self.assertEqual(info["token_uri"], fg.GOOGLE_TOKEN_URI)
        self.assertRegex(info["private_key_id"], r"^[0-9a-f]{40}$")
        self.assertTrue(info["private_key"].startswith("-----BEGIN PRIVATE KEY-----\n"))
        self.assertEqual(info["client_email"], self.key.client_email)
        with open(self.key.public_key_path) as f:
            self.assertIn("-----BEGIN PUBLIC KEY-----", f.read())
        r = subprocess.run(["openssl", "pkey", "-in", self.key.private_key_path, "-noout", "-text"],
                           capture_output=True, text=True, timeout=30)
        self.assertIn("2048 bit", r.stdout)
        custom = fg.make_service_account_key(os.path.join(self.tmp, "custom"),
                                             client_email="x@p2.iam.gserviceaccount.com",
                                             project_id="p2", token_uri=self.google.token_url)
        self.assertEqual((custom.info["project_id"], custom.info["token_uri"], custom.client_email),
                         ("p2", self.google.token_url, "x@p2.iam.gserviceaccount.com"))
        self.assertNotEqual(custom.private_key_id, self.key.private_key_id)

    # ---------------------------------------------------------------- /token

    def test_jwt_exchange_and_token_use(self):
        claims = self.claims()
        r = self.exchange(sign(self.key.private_key_path, self.header(), claims))
        self.assertEqual(r.status, 200, r.body)
        body = r.json()
        self.assertEqual(set(body), {"access_token", "expires_in", "token_type"})
        self.assertRegex(body["access_token"], r"^ya29\.sa-\d+$")
        self.assertEqual((body["expires_in"], body["token_type"]), (3599, "Bearer"))
        self.assertEqual(len(self.google.assertions), 1)
        a = self.google.assertions[0]
        self.assertEqual(a.header, self.header())
        self.assertEqual(a.claims, claims)
        self.assertEqual((a.key_id, a.token), (self.key.private_key_id, body["access_token"]))
        self.assertTrue(self.book.valid(body["access_token"]))
        self.assertEqual(self.monitoring(body["access_token"]).status, 200)
        # the module's own signer produces what the verifier accepts, too
        r2 = self.exchange(fg.sign_jwt(self.key, self.claims()))
        self.assertEqual(r2.status, 200, r2.body)
        self.assertNotEqual(r2.json()["access_token"], body["access_token"])

    def test_expires_in_is_configurable(self):
        self.google.expires_in = 120
        r = self.exchange(sign(self.key.private_key_path, self.header(), self.claims()))
        self.assertEqual(r.json()["expires_in"], 120)

    def test_signed_with_another_key_is_invalid_signature(self):
        self.assert_invalid_grant(sign(self.other.private_key_path, self.header(), self.claims()),
                                  fg.INVALID_SIGNATURE)

    def test_tampered_claims_are_invalid_signature(self):
        jwt = sign(self.key.private_key_path, self.header(), self.claims())
        h, _, s = jwt.split(".")
        forged = b64url(json.dumps(self.claims(scope=fg.SCOPE_CLOUD_PLATFORM)).encode())
        self.assert_invalid_grant(f"{h}.{forged}.{s}", fg.INVALID_SIGNATURE)

    def test_unknown_or_deleted_kid_is_invalid_signature(self):
        other_hdr = self.header(self.other)
        self.assert_invalid_grant(sign(self.key.private_key_path, other_hdr, self.claims()),
                                  fg.INVALID_SIGNATURE)
        self.google.delete_key(self.key)
        r = self.exchange(sign(self.key.private_key_path, self.header(), self.claims()))
        self.assertEqual(r.json()["error"], "invalid_grant")

    def test_lifetime_over_an_hour_is_invalid_grant(self):
        now = int(time.time())
        self.assert_invalid_grant(sign(self.key.private_key_path, self.header(),
                                       self.claims(iat=now, exp=now + 3601)), fg.BAD_TIMEFRAME)

    def test_bad_times_are_invalid_grant(self):
        now = int(time.time())
        for iat, exp in ((now - 600, now + 3000),  # iat 10 min in the past
                         (now + 600, now + 1200),  # iat 10 min in the future
                         (now, now),  # no lifetime
                         (now - 200, now - 100),  # already expired
                         (float(now), float(now + 3600)),  # not integers
                         (str(now), str(now + 3600))):
            with self.subTest(iat=iat, exp=exp):
                self.assert_invalid_grant(sign(self.key.private_key_path, self.header(),
                                               self.claims(iat=iat, exp=exp)), fg.BAD_TIMEFRAME)

    def test_wrong_audience_is_invalid_grant(self):
        r = self.exchange(sign(self.key.private_key_path, self.header(), self.claims(aud=fg.GOOGLE_TOKEN_URI)))
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_grant"))
        self.assertIn("audience", r.json()["error_description"])
        self.assert_invalid_grant(sign(self.key.private_key_path, self.header(), self.claims(aud=None)))

    def test_header_checks(self):
        for hdr in ({"alg": "HS256", "typ": "JWT", "kid": self.key.private_key_id},
                    {"alg": "RS256", "typ": "JWS", "kid": self.key.private_key_id},
                    {"alg": "RS256", "typ": "JWT"}):
            with self.subTest(header=hdr):
                self.assert_invalid_grant(sign(self.key.private_key_path, hdr, self.claims()))

    def test_encoding_checks(self):
        jwt = sign(self.key.private_key_path, self.header(), self.claims())
        h, c, s = jwt.split(".")
        padded = lambda p: p + "=" * (-len(p) % 4) if len(p) % 4 else p + "=="  # noqa: E731
        std = lambda p: p.replace("-", "+").replace("_", "/")  # noqa: E731
        for bad in (f"{h}.{c}", f"{h}.{c}.{s}.x", f"{padded(h)}.{c}.{s}", f"{h}.{c}.{padded(s)}",
                    f"{h}.{c}.", f"{h}.{c}.{std(s)}" if std(s) != s else f"{h}.{c}.{s}+"):
            with self.subTest(jwt=bad[-20:]):
                self.assert_invalid_grant(bad)

    def test_unknown_issuer_and_scope(self):
        self.assert_invalid_grant(sign(self.key.private_key_path, self.header(),
                                       self.claims(iss="someone@else.iam.gserviceaccount.com")),
                                  "Invalid grant: account not found")
        for scope in (None, "", f"{fg.SCOPE_MONITORING_READ},{fg.SCOPE_SQL_ADMIN}"):
            with self.subTest(scope=scope):
                self.assert_invalid_grant(sign(self.key.private_key_path, self.header(),
                                               self.claims(scope=scope)), error="invalid_scope")

    def test_grant_type_and_form(self):
        jwt = sign(self.key.private_key_path, self.header(), self.claims())
        r = self.exchange(jwt, grant_type="client_credentials")
        self.assertEqual((r.status, r.json()["error"]), (400, "unsupported_grant_type"))
        r = self.https("POST", "/token", json.dumps({"grant_type": fg.JWT_BEARER, "assertion": jwt}).encode(),
                       {"Content-Type": "application/json"})
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_request"))
        r = self.https("POST", "/token", form(grant_type=fg.JWT_BEARER),
                       {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((r.status, r.json()["error"]), (400, "invalid_request"))
        # the percent-encoded form of the spec, content type with a charset
        r = self.https("POST", "/token", f"grant_type={urllib.parse.quote(fg.JWT_BEARER, safe='')}"
                       f"&assertion={jwt}".encode(),
                       {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(self.google.snapshot_requests("/token")[-1].method, "POST")

    # ---------------------------------------------------------------- metadata

    def test_metadata_requires_the_header(self):
        r = self.http(fg.MD_TOKEN_PATH)
        self.assertEqual(r.status, 403)
        self.assertIn("Metadata-Flavor", r.body.decode())
        self.assertEqual(self.md.issued, [])
        r = self.http(fg.MD_TOKEN_PATH, {"Metadata-Flavor": "google"})  # exact value only
        self.assertEqual(r.status, 403)

    def test_metadata_token_works_on_the_apis(self):
        r = self.http(fg.MD_TOKEN_PATH, {"Metadata-Flavor": "Google"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.headers["Metadata-Flavor"], "Google")
        body = r.json()
        self.assertRegex(body["access_token"], r"^ya29\.md-\d+$")
        self.assertEqual((body["expires_in"], body["token_type"]), (3599, "Bearer"))
        self.assertEqual(self.monitoring(body["access_token"]).status, 200)
        self.google.set_instance(PROJECT, "darklang-db", fg.sql_instance("darklang-db"))
        r = self.https("GET", f"/v1/projects/{PROJECT}/instances/darklang-db",
                       headers={"Authorization": f"Bearer {body['access_token']}"})
        self.assertEqual(r.status, 200, r.body)
        second = self.http(fg.MD_TOKEN_PATH, {"Metadata-Flavor": "Google"}).json()["access_token"]
        self.assertNotEqual(second, body["access_token"])
        self.assertEqual(len(self.md.token_requests()), 2)

    def test_metadata_scopes_and_expiry(self):
        self.md.expires_in = 30
        scopes = f"{fg.SCOPE_SQL_ADMIN},https://www.googleapis.com/auth/userinfo.email"
        r = self.http(fg.MD_TOKEN_PATH + "?" + urllib.parse.urlencode({"scopes": scopes}),
                      {"Metadata-Flavor": "Google"})
        body = r.json()
        self.assertEqual(body["expires_in"], 30)
        self.assertEqual(self.md.issued[-1].scopes, tuple(scopes.split(",")))
        # a token without a monitoring scope: 403 insufficient scopes
        resp = self.monitoring(body["access_token"])
        err = self.assert_google_error(resp, 403, "PERMISSION_DENIED")
        self.assertEqual(err["details"][0]["reason"], "ACCESS_TOKEN_SCOPE_INSUFFICIENT")
        self.assertEqual(self.google.snapshot_requests("/v3/")[-1].auth, "scope")

    def test_metadata_other_paths(self):
        h = {"Metadata-Flavor": "Google"}
        r = self.http(fg.MD_PROJECT_PATH, h)
        self.assertEqual((r.status, r.body), (200, PROJECT.encode()))
        r = self.http(fg.MD_EMAIL_PATH, h)
        self.assertEqual((r.status, r.body.decode()), (200, f"runbookd@{PROJECT}.iam.gserviceaccount.com"))
        self.assertEqual(self.http("/computeMetadata/v1/instance/attributes/kube-env", h).status, 404)
        self.assertEqual(self.http("/elsewhere", h).status, 404)
        r = self.http("/")
        self.assertEqual((r.status, r.headers["Metadata-Flavor"]), (200, "Google"))
        self.assertTrue(self.md.url.startswith("http://127.0.0.1:"))
        recs = self.md.snapshot_requests()
        self.assertEqual([r.path for r in recs][:2], [fg.MD_PROJECT_PATH, fg.MD_EMAIL_PATH])
        self.assertEqual(recs[0].headers["metadata-flavor"], "Google")

    def test_metadata_faults(self):
        h = {"Metadata-Flavor": "Google"}
        self.md.fail_next(503, count=2)
        self.assertEqual(self.http(fg.MD_TOKEN_PATH, h).status, 503)
        self.assertEqual(self.http(fg.MD_TOKEN_PATH, h).status, 503)
        self.assertEqual(self.http(fg.MD_TOKEN_PATH, h).status, 200)
        self.md.drop_next()
        self.cut(lambda: self.http(fg.MD_TOKEN_PATH, h))
        self.assertEqual(self.md.snapshot_requests()[-1].fault, "drop")
        self.md.delay = 0.3
        t = time.monotonic()
        self.assertEqual(self.http(fg.MD_PROJECT_PATH, h).status, 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        self.md.delay = 0
        self.md.down = True
        self.cut(lambda: self.http(fg.MD_PROJECT_PATH, h))
        self.assertGreaterEqual(self.md.refused_connections, 1)
        self.md.down = False
        self.assertEqual(self.http(fg.MD_PROJECT_PATH, h).status, 200)

    # ---------------------------------------------------------------- monitoring

    def test_points_newest_first_within_the_interval(self):
        pts = [(T0 + timedelta(minutes=i), i / 10) for i in range(12)]  # 00:00 .. 00:11
        self.google.set_points(fg.CPU_UTILIZATION, DB, reversed(pts))
        r = self.monitoring(self.sa_token(), self.series_path(start=T0 + timedelta(minutes=2),
                                                              end=T0 + timedelta(minutes=10)))
        self.assertEqual(r.status, 200, r.body)
        body = r.json()
        self.assertNotIn("nextPageToken", body)
        self.assertEqual(len(body["timeSeries"]), 1)
        ts = body["timeSeries"][0]
        self.assertEqual(ts["metric"], {"type": fg.CPU_UTILIZATION, "labels": {}})
        self.assertEqual(ts["resource"], {"type": "cloudsql_database", "labels": {
            "project_id": PROJECT, "database_id": DB, "region": "us-central1"}})
        self.assertEqual((ts["metricKind"], ts["valueType"], ts["unit"]), ("GAUGE", "DOUBLE", "10^2.%"))
        ends = [p["interval"]["endTime"] for p in ts["points"]]
        self.assertEqual(ends, [f"2024-01-01T00:{m:02d}:00Z" for m in range(10, 1, -1)])  # inclusive, newest first
        self.assertEqual(ts["points"][0]["value"], {"doubleValue": 1.0})
        self.assertEqual(ts["points"][-1]["value"], {"doubleValue": 0.2})
        self.assertIn(b'"doubleValue": 1\n', r.body)  # integral doubles without a fraction
        rec = self.google.snapshot_requests("/v3/")[-1]
        self.assertEqual((rec.query["view"], rec.query["aggregation.perSeriesAligner"]), ("FULL", "ALIGN_MEAN"))
        self.assertEqual(rec.auth, "ok")

    def test_a_late_point_is_served_once_published(self):
        pts = [(T0 + timedelta(minutes=i), i / 10) for i in range(4)]
        self.google.set_points(fg.CPU_UTILIZATION, DB, pts, late=[T0 + timedelta(minutes=2)])
        tok = self.sa_token()
        path = self.series_path(start=T0, end=T0 + timedelta(minutes=3))
        ends = lambda: [p["interval"]["endTime"] for p in self.monitoring(tok, path).json()["timeSeries"][0]["points"]]
        self.assertEqual(ends(), ["2024-01-01T00:03:00Z", "2024-01-01T00:01:00Z", "2024-01-01T00:00:00Z"])
        self.assertEqual(self.google.publish_late(), 1)
        self.assertEqual(ends(), [f"2024-01-01T00:{m:02d}:00Z" for m in (3, 2, 1, 0)])
        self.assertEqual(self.google.publish_late(), 0)

    def test_int64_values_are_strings(self):
        self.google.set_points(fg.NUM_BACKENDS, DB, [(T0 + timedelta(minutes=1), 42), (T0 + timedelta(minutes=2), 7)])
        r = self.monitoring(self.sa_token(), self.series_path(fg.NUM_BACKENDS))
        ts = r.json()["timeSeries"][0]
        self.assertEqual(ts["valueType"], "INT64")
        self.assertEqual([p["value"] for p in ts["points"]], [{"int64Value": "7"}, {"int64Value": "42"}])

    def test_no_data_is_an_empty_object(self):
        tok = self.sa_token()
        self.google.set_points(fg.CPU_UTILIZATION, DB, [(T0 - timedelta(hours=1), 0.5)])
        for path in (self.series_path(), self.series_path(db=f"{PROJECT}:other"),
                     self.series_path("cloudsql.googleapis.com/database/memory/utilization"),
                     self.series_path(project="other-project")):
            with self.subTest(path=path):
                r = self.monitoring(tok, path)
                self.assertEqual((r.status, r.body.strip()), (200, b"{}"))

    def test_database_filter_and_series_order(self):
        other = f"{PROJECT}:replica"
        self.google.set_points(fg.CPU_UTILIZATION, DB, [(T0 + timedelta(minutes=1), 0.1)])
        self.google.set_points(fg.CPU_UTILIZATION, other, [(T0 + timedelta(minutes=1), 0.9)])
        tok = self.sa_token()
        only = self.monitoring(tok, self.series_path(db=other)).json()["timeSeries"]
        self.assertEqual([s["resource"]["labels"]["database_id"] for s in only], [other])
        both = self.monitoring(tok, self.series_path(db=None)).json()["timeSeries"]
        self.assertEqual(sorted(s["resource"]["labels"]["database_id"] for s in both), sorted([DB, other]))

    def test_paging_counts_points(self):
        self.google.set_points(fg.CPU_UTILIZATION, DB, [(T0 + timedelta(minutes=i), i / 100) for i in range(5)])
        self.google.set_points(fg.CPU_UTILIZATION, f"{PROJECT}:zz", [(T0 + timedelta(minutes=i), 1 + i / 100)
                                                                     for i in range(3)])
        tok = self.sa_token()
        seen: list[tuple[str, str]] = []
        page_sizes = []
        token = None
        for _ in range(10):
            r = self.monitoring(tok, self.series_path(db=None, pageSize="3", pageToken=token))
            self.assertEqual(r.status, 200, r.body)
            body = r.json()
            n = 0
            for s in body["timeSeries"]:
                for p in s["points"]:
                    seen.append((s["resource"]["labels"]["database_id"], p["interval"]["endTime"]))
                    n += 1
            page_sizes.append(n)
            token = body.get("nextPageToken")
            if not token:
                break
        self.assertEqual(page_sizes, [3, 3, 2])
        expected = [(DB, f"2024-01-01T00:0{m}:00Z") for m in (4, 3, 2, 1, 0)] + \
                   [(f"{PROJECT}:zz", f"2024-01-01T00:0{m}:00Z") for m in (2, 1, 0)]
        self.assertEqual(sorted(seen), sorted(expected))
        for db in (DB, f"{PROJECT}:zz"):  # newest first inside each series, across pages
            ends = [e for d, e in seen if d == db]
            self.assertEqual(ends, sorted(ends, reverse=True))
        # one page when pageSize covers it: no token
        body = self.monitoring(tok, self.series_path(db=None, pageSize="8")).json()
        self.assertNotIn("nextPageToken", body)
        # unknown token, and a token reused for another query
        r = self.monitoring(tok, self.series_path(pageToken="bm90LWEtdG9rZW4"))
        self.assert_google_error(r, 400, "INVALID_ARGUMENT")
        first = self.monitoring(tok, self.series_path(db=None, pageSize="3")).json()["nextPageToken"]
        self.assert_google_error(self.monitoring(tok, self.series_path(pageSize="3", pageToken=first)),
                                 400, "INVALID_ARGUMENT")

    def test_request_validation(self):
        tok = self.sa_token()
        two = (f'metric.type="{fg.CPU_UTILIZATION}" OR metric.type="{fg.NUM_BACKENDS}"')
        end = fg.rfc3339(T0)
        for name, path in (
                ("two metric types", self.series_path(filter=two)),
                ("two metric types AND", self.series_path(
                    filter=f'metric.type="{fg.CPU_UTILIZATION}" AND metric.type="{fg.NUM_BACKENDS}"')),
                ("no metric type", self.series_path(filter=f'resource.labels.database_id="{DB}"')),
                ("no filter", self.series_path(filter=None)),
                ("no end time", self.series_path(**{"interval.endTime": None})),
                ("bad end time", self.series_path(**{"interval.endTime": "2024-01-01 00:00:00"})),
                ("start after end", self.series_path(start=T0 + timedelta(hours=1), end=T0)),
                ("no view", self.series_path(view=None)),
                ("headers view", self.series_path(view="HEADERS")),
                ("bad aligner", self.series_path(**{"aggregation.perSeriesAligner": "ALIGN_AVERAGE"})),
                ("aligner without period", self.series_path(**{"aggregation.alignmentPeriod": None})),
                ("bad period", self.series_path(**{"aggregation.alignmentPeriod": "1m"})),
                ("bad page size", self.series_path(pageSize="many"))):
            with self.subTest(name):
                self.assert_google_error(self.monitoring(tok, path), 400, "INVALID_ARGUMENT")
        self.assertEqual(self.monitoring(tok, self.series_path(**{"interval.startTime": None,
                                                                  "interval.endTime": end})).status, 200)

    def test_authentication(self):
        expected = {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                              "status": "UNAUTHENTICATED"}}
        r = self.monitoring(None)
        self.assertEqual((r.status, r.json()), (401, expected))
        self.assertEqual(self.google.snapshot_requests()[-1].auth, "missing")
        self.assertEqual(self.monitoring("ya29.made-up").json(), expected)
        tok = self.sa_token()
        r = self.https("GET", self.series_path(), headers={"Authorization": f"Basic {tok}"})
        self.assertEqual(r.status, 401)
        self.assertEqual(self.monitoring(tok).status, 200)
        self.book.expire(tok)
        self.assertEqual(self.monitoring(tok).status, 401)
        self.assertEqual(self.google.snapshot_requests()[-1].auth, "expired")
        tok2 = self.sa_token()
        md_tok = self.http(fg.MD_TOKEN_PATH, {"Metadata-Flavor": "Google"}).json()["access_token"]
        self.assertEqual(self.google.revoke_tokens(), 3)
        for t in (tok2, md_tok):
            self.assertEqual(self.monitoring(t).status, 401)
        self.assertEqual(self.google.snapshot_requests()[-1].auth, "revoked")
        self.assertEqual(self.monitoring(self.sa_token()).status, 200)  # new tokens work

    # ---------------------------------------------------------------- Cloud SQL Admin

    def test_sql_instance(self):
        tok = self.sa_token()
        auth = {"Authorization": f"Bearer {tok}"}
        r = self.https("GET", f"/v1/projects/{PROJECT}/instances/darklang-db", headers=auth)
        err = self.assert_google_error(r, 404, "NOT_FOUND")
        self.assertEqual(err["message"], "The Cloud SQL instance does not exist.")
        start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=3)
        inst = fg.sql_instance("darklang-db", PROJECT, state="MAINTENANCE", activation_policy="NEVER",
                               window_day=1, window_hour=0, update_track="canary", scheduled_start=start)
        self.google.set_instance(PROJECT, "darklang-db", inst)
        r = self.https("GET", f"/v1/projects/{PROJECT}/instances/darklang-db", headers=auth)
        self.assertEqual(r.status, 200, r.body)
        body = r.json()
        self.assertEqual(body, inst)
        self.assertEqual((body["kind"], body["name"], body["project"], body["state"]),
                         ("sql#instance", "darklang-db", PROJECT, "MAINTENANCE"))
        self.assertEqual(body["settings"]["activationPolicy"], "NEVER")
        self.assertEqual(body["settings"]["maintenanceWindow"],
                         {"kind": "sql#maintenanceWindow", "hour": 0, "day": 1, "updateTrack": "canary"})
        self.assertEqual(fg.parse_rfc3339(body["scheduledMaintenance"]["startTime"]), start)
        self.assertTrue(body["scheduledMaintenance"]["canReschedule"])
        self.assertNotIn("scheduledMaintenance", fg.sql_instance("x"))
        self.assertEqual(fg.sql_instance("x")["settings"]["maintenanceWindow"]["day"], 7)
        self.assertEqual(self.https("GET", f"/v1/projects/{PROJECT}/instances/darklang-db").status, 401)
        md = self.http(fg.MD_TOKEN_PATH + "?scopes=" + fg.SCOPE_MONITORING_READ,
                       {"Metadata-Flavor": "Google"}).json()["access_token"]
        r = self.https("GET", f"/v1/projects/{PROJECT}/instances/darklang-db",
                       headers={"Authorization": f"Bearer {md}"})
        self.assert_google_error(r, 403, "PERMISSION_DENIED")
        self.google.set_instance(PROJECT, "darklang-db", None)
        self.assertEqual(self.https("GET", f"/v1/projects/{PROJECT}/instances/darklang-db", headers=auth).status, 404)

    # ---------------------------------------------------------------- status feed

    def test_incidents_feed(self):
        r = self.https("GET", "/incidents.json")
        self.assertEqual((r.status, r.json()), (200, []))
        begin = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
        open_ = fg.incident("abc123", "Cloud SQL connectivity issues", ["Cloud SQL"], ["us-central1"],
                            begin=begin, severity="high", status_impact="SERVICE_OUTAGE")
        closed = fg.incident("old1", "GKE slow", ["Google Kubernetes Engine"], ["europe-west1", "global"],
                             begin=begin - timedelta(days=2), end=begin - timedelta(days=1))
        self.google.set_incidents([open_, closed])
        r = self.https("GET", "/incidents.json")  # no Authorization needed
        self.assertEqual(r.status, 200)
        feed = r.json()
        self.assertIsInstance(feed, list)
        self.assertEqual(feed, [open_, closed])
        inc = feed[0]
        self.assertNotIn("end", inc)
        self.assertEqual((inc["id"], inc["uri"], inc["external_desc"], inc["severity"], inc["status_impact"]),
                         ("abc123", "incidents/abc123", "Cloud SQL connectivity issues", "high", "SERVICE_OUTAGE"))
        self.assertEqual(inc["begin"], "2024-05-01T10:00:00+00:00")
        self.assertRegex(inc["number"], r"^\d+$")
        self.assertEqual([p["title"] for p in inc["affected_products"]], ["Cloud SQL"])
        self.assertEqual(inc["service_name"], "Cloud SQL")
        self.assertEqual(inc["currently_affected_locations"], [{"title": "Iowa (us-central1)", "id": "us-central1"}])
        self.assertEqual(inc["previously_affected_locations"], [])
        self.assertEqual(inc["most_recent_update"], inc["updates"][0])
        self.assertEqual(inc["most_recent_update"]["status"], "SERVICE_OUTAGE")
        self.assertEqual(closed["end"], "2024-04-30T10:00:00+00:00")
        self.assertEqual(closed["currently_affected_locations"], [])
        self.assertEqual([loc["id"] for loc in closed["previously_affected_locations"]], ["europe-west1", "global"])
        self.assertEqual(closed["most_recent_update"]["status"], "AVAILABLE")
        self.assertEqual(len(closed["updates"]), 2)

    # ---------------------------------------------------------------- faults and records

    def test_429_and_other_fault_shapes(self):
        tok = self.sa_token()
        self.google.fail_next("/v3/", 429)
        err = self.assert_google_error(self.monitoring(tok), 429, "RESOURCE_EXHAUSTED")
        self.assertTrue(err["message"].startswith("Quota exceeded"))
        self.assertEqual(self.google.snapshot_requests()[-1].fault, "fail_next")
        self.assertEqual(self.monitoring(tok).status, 200)
        for status, name in ((503, "UNAVAILABLE"), (403, "PERMISSION_DENIED"), (500, "INTERNAL")):
            with self.subTest(status=status):
                self.google.fail_next("", status)
                self.assert_google_error(self.monitoring(tok), status, name)

    def test_faults_by_prefix_and_count(self):
        tok = self.sa_token()
        self.google.fail_next("/v1/", 503, count=2)
        self.assertEqual(self.monitoring(tok).status, 200)  # another prefix: untouched
        self.assertEqual(self.https("GET", "/incidents.json").status, 200)
        auth = {"Authorization": f"Bearer {tok}"}
        self.assertEqual(self.https("GET", f"/v1/projects/{PROJECT}/instances/x", headers=auth).status, 503)
        self.assertEqual(self.https("GET", f"/v1/projects/{PROJECT}/instances/x", headers=auth).status, 503)
        self.assertEqual(self.https("GET", f"/v1/projects/{PROJECT}/instances/x", headers=auth).status, 404)
        self.google.fail_next("/token", 400, body={"error": "invalid_grant", "error_description": "scripted"})
        r = self.exchange(sign(self.key.private_key_path, self.header(), self.claims()))
        self.assertEqual((r.status, r.json()["error_description"]), (400, "scripted"))

    def test_drop_next(self):
        tok = self.sa_token()
        self.google.drop_next("/v3/")
        self.cut(lambda: self.monitoring(tok))
        rec = self.google.snapshot_requests()[-1]
        self.assertEqual((rec.fault, rec.status), ("drop", None))
        self.assertEqual(self.monitoring(tok).status, 200)

    def test_delay(self):
        self.google.delay("/incidents.json", 0.3)
        t = time.monotonic()
        self.assertEqual(self.https("GET", "/incidents.json").status, 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        self.assertEqual(self.google.snapshot_requests()[-1].fault, "delay")
        t = time.monotonic()
        self.assertEqual(self.https("GET", "/incidents.json?again").status, 200)  # persistent
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        self.google.delay("/incidents.json", 0)
        self.https("GET", "/incidents.json")
        self.assertIsNone(self.google.snapshot_requests()[-1].fault)

    def test_down_resets_connections(self):
        # a keep-alive connection opened before the outage is cut too
        conn = http.client.HTTPSConnection("127.0.0.1", self.google.port, timeout=TIMEOUT, context=self.ctx)
        conn.request("GET", "/incidents.json")
        conn.getresponse().read()
        self.google.down = True
        try:
            def again():
                conn.request("GET", "/incidents.json")
                conn.getresponse().read()
            self.cut(again)
        finally:
            conn.close()
        self.cut(lambda: self.https("GET", "/incidents.json"))
        self.assertGreaterEqual(self.google.refused_connections, 1)
        self.google.down = False
        self.assertEqual(self.https("GET", "/incidents.json").status, 200)

    def test_requests_are_recorded(self):
        before = time.monotonic()
        tok = self.sa_token()
        self.monitoring(tok, self.series_path(pageSize="10"))
        reqs = self.google.snapshot_requests()
        self.assertEqual([(r.method, r.path) for r in reqs],
                         [("POST", "/token"), ("GET", f"/v3/projects/{PROJECT}/timeSeries")])
        token_req, ts_req = reqs
        self.assertIn(b"grant_type=urn%3Aietf", token_req.body)
        self.assertEqual(token_req.headers["content-type"], "application/x-www-form-urlencoded")
        self.assertEqual(token_req.status, 200)
        self.assertEqual(ts_req.query["pageSize"], "10")
        self.assertEqual(ts_req.authorization, f"Bearer {tok}")
        self.assertTrue(before <= token_req.time <= ts_req.time <= time.monotonic())
        self.assertEqual(ts_req.response_json(), {})
        self.assertEqual(self.google.url, f"https://127.0.0.1:{self.google.port}")
        self.assertEqual(self.google.token_url, self.google.url + "/token")
        self.assertEqual(self.google.ca_file, self.pki.ca_cert)

    def test_urllib_client(self):
        """The fake as a plain urllib client with the test CA sees it (no http.client tricks)."""
        req = urllib.request.Request(self.google.url + "/incidents.json")
        with urllib.request.urlopen(req, timeout=TIMEOUT, context=self.ctx) as resp:
            self.assertEqual(json.load(resp), [])
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(self.google.url + self.series_path(), timeout=TIMEOUT, context=self.ctx)
        self.assertEqual(cm.exception.code, 401)
        cm.exception.close()
        with self.assertRaises(urllib.error.URLError):  # the system CAs do not trust the test CA
            urllib.request.urlopen(self.google.url + "/incidents.json", timeout=TIMEOUT,
                                   context=ssl.create_default_context())


if __name__ == "__main__":
    unittest.main()
