#!/usr/bin/env python3
"""sluice-cloud as a real process on loopback (tests/lib/cloud.py): its command line, every error and
its exact body, authentication, look-ups, the admin API and the change feed, the quota, persistence
across a restart, TLS, each lab fault seen from a raw client, and robustness (keep-alive, pipelining,
limits, timeouts, garbage). The analysis side: sample uploads (new, idempotent, oversized, bad
multipart, the daily limit, the upload bound), the states in order, the threat before and after
completion, what an analysis does to the reputation look-up and the change feed, failed analyses,
persistence across restarts (also mid-analysis, also after SIGKILL), the limits, and the scores of
real files (EICAR, macros, executables in documents, PDFs, scripts)."""
import hashlib
import importlib.util
import json
import os
import re
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cloud  # noqa: E402
from cloud import Cloud, CloudError, multipart_form  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PRECLASS_DATA = os.path.join(HERE, "..", "data", "preclass")

E = hashlib.sha256(b"").hexdigest()           # e3b0c442...
A = hashlib.sha256(b"a").hexdigest()
B = hashlib.sha256(b"b").hexdigest()
C = hashlib.sha256(b"c").hexdigest()


def sha(i):
    return hashlib.sha256(b"file %d" % i).hexdigest()


def unknown(h, ttl=900):
    return {"sha256": h, "disposition": "unknown", "threat_name": None, "threat_score": None,
            "ttl_seconds": ttl, "upload_wanted": True, "last_changed": None}


def err(code, message):
    return {"error": {"code": code, "message": message}}


def run(args, timeout=30):
    return subprocess.run([cloud.SLUICE_CLOUD] + args, capture_output=True, text=True, timeout=timeout)


class Raw:
    """A raw HTTP/1.1 client on one socket: send bytes, read answers exactly as they come."""

    def __init__(self, c, timeout=10):
        self.sock = socket.create_connection((c.host, c.port), timeout=timeout)
        if c.scheme == "https":
            self.sock = c.ssl_context().wrap_socket(self.sock, server_hostname=c.host)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        return status, headers

    def read_response(self):
        status, headers = self.read_head()
        n = int(headers.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def read_all(self):
        """Everything until the server closes (b'' if it closed at once)."""
        data = self.buf
        self.buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        return data

    def closed(self, timeout=5):
        """True if the server closes the connection (EOF or reset) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def request_bytes(method, path, body=b"", key="test-key", extra=""):
    if isinstance(body, str):
        body = body.encode()
    k = "x-apikey: %s\r\n" % key if key else ""
    return ("%s %s HTTP/1.1\r\nHost: x\r\n%s%sContent-Length: %d\r\n\r\n" % (method, path, k, extra, len(body))).encode() + body


class CommandLine(unittest.TestCase):
    def test_help_is_complete(self):
        r = run(["--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        for opt in ["--listen", "--data", "--api-key", "--admin-key", "--tls-cert", "--tls-key", "--insecure-listen",
                    "--quota-per-minute", "--ttl-clean", "--ttl-malicious", "--ttl-unknown", "--max-connections",
                    "--max-body-kb", "--idle-timeout", "--read-timeout", "--version", "--help"]:
            self.assertIn(opt, r.stdout)
        self.assertIn("sluice-cloud: listening on http://HOST:PORT", r.stdout)

    def test_version(self):
        r = run(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^sluice-cloud \d+\.\d+\.\d+\n$")

    def test_bad_arguments_exit_2_with_one_line(self):
        with tempfile.TemporaryDirectory() as d:
            cases = [
                (["--bogus"], "unrecognised option '--bogus'"),
                (["--data", d], "--listen HOST:PORT is required"),
                (["--listen", "127.0.0.1:0"], "--data DIR is required"),
                (["--listen", "127.0.0.1", "--data", d], "expected HOST:PORT"),
                (["--listen", "127.0.0.1:70000", "--data", d], "the port must be a number from 0 to 65535"),
                (["--listen", "nowhere.example:80", "--data", d], "is not an IP address"),
                (["--listen", "127.0.0.1:0", "--data", d, "--tls-cert", "x.pem"], "--tls-cert and --tls-key go together"),
                (["--listen", "127.0.0.1:0", "--data", d, "--quota-per-minute", "lots"], "quota-per-minute"),
                (["--listen", "127.0.0.1:0", "--data", d, "--max-connections", "0"], "--max-connections 0: accepted 1 to"),
                (["--listen", "127.0.0.1:0", "--data", d, "--api-key", ""], "a key cannot be empty"),
                (["--listen", "127.0.0.1:0", "--data", d, "stray"], "unexpected argument 'stray'"),
                (["--listen", "127.0.0.1:0", "--data", d, "--ttl-clean", "-5"], "--ttl-clean -5: accepted 0 to 2592000"),
            ]
            for args, what in cases:
                with self.subTest(args=args):
                    r = run(args)
                    self.assertEqual(r.returncode, 2, r.stderr)
                    self.assertEqual(r.stdout, "")
                    self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
                    self.assertTrue(r.stderr.startswith("sluice-cloud: "), r.stderr)
                    self.assertIn(what, r.stderr)

    def test_plain_http_off_loopback_needs_insecure_listen(self):
        with tempfile.TemporaryDirectory() as d:
            r = run(["--listen", "0.0.0.0:0", "--data", d])
            self.assertEqual(r.returncode, 2)
            self.assertEqual(r.stderr, "sluice-cloud: --listen 0.0.0.0:0: plain HTTP is served only on a loopback "
                             "address; give --tls-cert and --tls-key, or --insecure-listen to serve plain HTTP there "
                             "anyway (see --help)\n")
        with Cloud(host="0.0.0.0", args=["--insecure-listen"]) as c:
            self.assertRegex(c.listening_line, r"^sluice-cloud: listening on http://0\.0\.0\.0:\d+$")
            c.host = "127.0.0.1"
            self.assertEqual(c.health()["status"], "ok")

    def test_listening_line_and_signals(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with Cloud() as c:
                self.assertRegex(c.listening_line, r"^sluice-cloud: listening on http://127\.0\.0\.1:\d+$")
                self.assertNotEqual(c.port, 0)
                keep = c.connection()
                keep.request("GET", "/api/v1/health")
                keep.getresponse().read()  # an idle keep-alive connection does not hold the stop
                t = time.monotonic()
                self.assertEqual(c.stop(sig), 0)
                self.assertLess(time.monotonic() - t, 2.5)
                self.assertEqual(c.stderr(), "")
                keep.close()

    def test_unusable_data_dir_exits_1(self):
        with tempfile.TemporaryDirectory() as d:
            f = os.path.join(d, "file")
            open(f, "w").close()
            r = run(["--listen", "127.0.0.1:0", "--data", f])
            self.assertEqual(r.returncode, 1)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertIn("cannot create data directory " + f, r.stderr)

    def test_corrupt_store_exits_1(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "cloud.sqlite"), "wb") as f:
                f.write(b"this is not a database" * 400)
            r = run(["--listen", "127.0.0.1:0", "--data", d])
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stdout, "")
            self.assertEqual(r.stderr, "sluice-cloud: %s/cloud.sqlite is corrupt or not a SQLite database "
                             "(read: file is not a database)\n" % d)

    def test_foreign_sqlite_file_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(["sqlite3", os.path.join(d, "cloud.sqlite"), "CREATE TABLE t(x)"], check=True)
            r = run(["--listen", "127.0.0.1:0", "--data", d])
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr, "sluice-cloud: %s/cloud.sqlite is not a sluice-cloud store (another "
                             "program's SQLite database)\n" % d)

    def test_one_service_per_data_dir(self):
        with Cloud() as c:
            r = run(["--listen", "127.0.0.1:0", "--data", c.data_dir])
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr, "sluice-cloud: %s is in use by another sluice-cloud (%s/cloud.lock is locked)\n"
                             % (c.data_dir, c.data_dir))

    def test_port_in_use_exits_1(self):
        with Cloud() as c, tempfile.TemporaryDirectory() as d:
            r = run(["--listen", "127.0.0.1:%d" % c.port, "--data", d])
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr, "sluice-cloud: cannot listen on 127.0.0.1:%d: Address already in use\n" % c.port)

    def test_missing_tls_files_exit_1(self):
        with tempfile.TemporaryDirectory() as d:
            r = run(["--listen", "127.0.0.1:0", "--data", d, "--tls-cert", d + "/no.crt", "--tls-key", d + "/no.key"])
            self.assertEqual(r.returncode, 1)
            self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
            self.assertTrue(r.stderr.startswith("sluice-cloud: cannot load --tls-cert %s/no.crt: " % d), r.stderr)


class Service(unittest.TestCase):
    """One service for the request-level tests (keys test-key and other-key, admin test-admin)."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cloud(api_keys=["test-key", "other-key"])

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def setUp(self):
        self.c.clear_faults()

    def assertAnswer(self, r, status, body):
        self.assertEqual((r.status, r.json()), (status, body), r.body)
        self.assertEqual(r.header("content-type"), "application/json")

    # -- bad requests --

    def test_bad_json(self):
        for body in [b"{", b"", b"hashes", b"\xff\xfe", b'{"hashes": ["' + b"a" * 10]:
            with self.subTest(body=body):
                r = self.c.request("POST", "/api/v1/files/lookup", body)
                self.assertAnswer(r, 400, err("BadRequestError", "the request body is not valid JSON"))
        r = self.c.request("PUT", "/api/v1/admin/files/" + A, b"{nope")
        self.assertAnswer(r, 400, err("BadRequestError", "the request body is not valid JSON"))

    def test_bad_hash(self):
        r = self.c.request("GET", "/api/v1/files/xyz")
        self.assertAnswer(r, 400, err("InvalidArgumentError", "'xyz' is not a SHA-256 (64 hex digits)"))
        r = self.c.request("GET", "/api/v1/files/" + A[:-1] + "g")
        self.assertAnswer(r, 400, err("InvalidArgumentError", "'%s' is not a SHA-256 (64 hex digits)" % (A[:-1] + "g")))
        r = self.c.request("GET", "/api/v1/files/" + A + "0")
        self.assertEqual(r.status, 400)
        r = self.c.request("POST", "/api/v1/files/lookup", {"hashes": [A, "nope"]})
        self.assertAnswer(r, 400, err("InvalidArgumentError", "hashes[1] is not a SHA-256 (64 hex digits)"))
        r = self.c.request("POST", "/api/v1/files/lookup", {"hashes": [A, 7]})
        self.assertAnswer(r, 400, err("InvalidArgumentError", "hashes[1] is not a SHA-256 (64 hex digits)"))
        r = self.c.request("PUT", "/api/v1/admin/files/abc", {"disposition": "clean"})
        self.assertAnswer(r, 400, err("InvalidArgumentError", "'abc' is not a SHA-256 (64 hex digits)"))

    def test_batch_shape(self):
        r = self.c.request("POST", "/api/v1/files/lookup", {"hashes": [A] * 1001})
        self.assertAnswer(r, 400, err("InvalidArgumentError", "'hashes' must hold 1 to 1000 SHA-256s (1001 given)"))
        r = self.c.request("POST", "/api/v1/files/lookup", {"hashes": []})
        self.assertAnswer(r, 400, err("InvalidArgumentError", "'hashes' must hold 1 to 1000 SHA-256s (0 given)"))
        r = self.c.request("POST", "/api/v1/files/lookup", {"hashes": A})
        self.assertAnswer(r, 400, err("InvalidArgumentError", "'hashes' must be an array of SHA-256s"))
        r = self.c.request("POST", "/api/v1/files/lookup", [A])
        self.assertAnswer(r, 400, err("InvalidArgumentError", "the body must be a JSON object {\"hashes\": [...]}"))
        r = self.c.request("POST", "/api/v1/files/lookup", {"hashes": [A], "more": 1})
        self.assertAnswer(r, 400, err("InvalidArgumentError", "unknown field 'more' (accepted: hashes)"))
        self.assertEqual(len(self.c.lookup([A] * 1000)), 1000)

    def test_oversized_body(self):
        body = json.dumps({"hashes": [A] * 16000}).encode()  # 1.07 MB > 1 MiB
        self.assertGreater(len(body), 1 << 20)
        r = self.c.request("POST", "/api/v1/files/lookup", body)
        self.assertAnswer(r, 400, err("BadRequestError", "the request body exceeds 1048576 bytes (--max-body-kb)"))
        self.assertEqual(r.header("connection"), "close")
        # chunked, so that the limit is only found while reading
        raw = Raw(self.c)
        raw.send(b"POST /api/v1/files/lookup HTTP/1.1\r\nHost: x\r\nx-apikey: test-key\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
        status, _, data = raw.read_response()
        self.assertEqual((status, json.loads(data)["error"]["code"]), (400, "BadRequestError"))
        self.assertTrue(raw.closed())
        raw.close()

    def test_oversized_header(self):
        raw = Raw(self.c)
        raw.send("GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n" % ("a" * 9000))
        status, headers, body = raw.read_response()
        self.assertEqual((status, json.loads(body)),
                         (400, err("BadRequestError", "the request header exceeds 8192 bytes")))
        self.assertTrue(raw.closed())
        raw.close()

    def test_malformed_http(self):
        raw = Raw(self.c)
        raw.send(b"HELLO THERE\r\n\r\n")
        status, _, body = raw.read_response()
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body)["error"]["code"], "BadRequestError")
        self.assertTrue(json.loads(body)["error"]["message"].startswith("malformed HTTP request ("))
        self.assertTrue(raw.closed())
        raw.close()

    def test_unknown_path(self):
        for path in ["/", "/api/v1/files", "/api/v1/files/", "/api/v2/files/" + A, "/api/v1/files/%s/x" % A,
                     "/api/v1/admin/files/"]:
            with self.subTest(path=path):
                r = self.c.request("GET", path)
                self.assertAnswer(r, 404, err("NotFoundError", "no such endpoint: '%s'" % path))

    def test_wrong_method(self):
        cases = [("DELETE", "/api/v1/files/" + A, "GET"), ("GET", "/api/v1/files/lookup", "POST"),
                 ("POST", "/api/v1/health", "GET"), ("GET", "/api/v1/admin/files/" + A, "PUT"),
                 ("PUT", "/api/v1/admin/faults", "GET, POST, DELETE"), ("POST", "/api/v1/dispositions/changes", "GET")]
        for method, path, allow in cases:
            with self.subTest(method=method, path=path):
                r = self.c.request(method, path, b"{}")
                self.assertAnswer(r, 405, err("MethodNotAllowedError",
                                              "'%s' is not allowed here (allowed: %s)" % (method, allow)))
                self.assertEqual(r.header("allow"), allow)

    # -- auth --

    def test_auth(self):
        path = "/api/v1/files/" + A
        self.assertAnswer(self.c.request("GET", path, key=None), 401, err(
            "AuthenticationRequiredError", "an API key is required (x-apikey header or Authorization: Bearer)"))
        self.assertAnswer(self.c.request("GET", path, key="wrong"), 401,
                          err("WrongCredentialsError", "the API key given is not valid"))
        for key in ["test-key", "other-key", "test-admin"]:
            self.assertEqual(self.c.request("GET", path, key=key).status, 200)
        r = self.c.request("GET", path, key=None, headers={"Authorization": "Bearer other-key"})
        self.assertEqual(r.status, 200)
        r = self.c.request("GET", path, key=None, headers={"Authorization": "bearer   test-admin"})
        self.assertEqual(r.status, 200)
        r = self.c.request("GET", path, key=None, headers={"Authorization": "Basic dGVzdC1rZXk="})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json()["error"]["code"], "AuthenticationRequiredError")
        r = self.c.request("GET", path, key=None, headers={"Authorization": "Bearer wrong"})
        self.assertEqual(r.json()["error"]["code"], "WrongCredentialsError")
        # health needs no key
        self.assertEqual(self.c.request("GET", "/api/v1/health", key=None).status, 200)
        # the change feed needs a key like the look-ups
        self.assertEqual(self.c.request("GET", "/api/v1/dispositions/changes", key=None).status, 401)

    def test_admin_auth(self):
        path = "/api/v1/admin/files/" + A
        body = {"disposition": "clean"}
        self.assertAnswer(self.c.request("PUT", path, body, key="test-key"), 403,
                          err("ForbiddenError", "this endpoint needs the admin key; the key given is not it"))
        self.assertAnswer(self.c.request("PUT", path, body, key=None), 401, err(
            "AuthenticationRequiredError", "this endpoint needs the admin key (x-apikey header or Authorization: Bearer)"))
        self.assertAnswer(self.c.request("PUT", path, body, key="wrong"), 401,
                          err("WrongCredentialsError", "the API key given is not valid"))
        self.assertEqual(self.c.request("GET", "/api/v1/admin/faults", key="test-key").status, 403)
        r = self.c.request("PUT", path, body, key=None, headers={"Authorization": "Bearer test-admin"})
        self.assertEqual(r.status, 200)

    def test_no_keys_and_no_admin_key(self):
        with Cloud(api_keys=[], admin_key=None) as c:
            self.assertEqual(c.file(A, key=None), unknown(A))
            self.assertEqual(c.file(A, key="anything"), unknown(A))
            self.assertEqual(c.changes(key=None)[0], [])
            r = c.request("PUT", "/api/v1/admin/files/" + A, {"disposition": "clean"}, key="anything")
            self.assertEqual((r.status, r.json()), (403, err(
                "ForbiddenError", "admin endpoints are disabled: sluice-cloud was started without --admin-key")))

    # -- look-ups --

    def test_single_lookup(self):
        self.assertEqual(self.c.file(C), unknown(C))
        self.assertEqual(self.c.file(C.upper()), unknown(C))
        self.assertEqual(self.c.file(C, key="other-key"), unknown(C))

    def test_batch_order_duplicates_case(self):
        h = [sha(1000 + i) for i in range(5)]
        self.c.set_disposition(h[1], "malicious", "Trojan.Test", 90)
        self.c.set_disposition(h[3], "clean")
        got = self.c.lookup([h[3], h[1].upper(), h[0], h[1], h[3], h[4].upper()])
        self.assertEqual([g["sha256"] for g in got], [h[3], h[1], h[0], h[1], h[3], h[4]])
        self.assertEqual([g["disposition"] for g in got], ["clean", "malicious", "unknown", "malicious", "clean", "unknown"])
        self.assertEqual(got[0]["ttl_seconds"], 14400)
        self.assertEqual((got[0]["upload_wanted"], got[0]["threat_name"], got[0]["threat_score"]), (False, None, None))
        self.assertEqual(got[1]["ttl_seconds"], 3600)
        self.assertEqual((got[1]["threat_name"], got[1]["threat_score"], got[1]["upload_wanted"]), ("Trojan.Test", 90, False))
        self.assertEqual(got[2], unknown(h[0]))
        self.assertEqual(got[1], got[3])

    def test_keep_alive(self):
        conn = self.c.connection()
        for i in range(20):
            conn.request("GET", "/api/v1/files/" + sha(i), headers={"x-apikey": "test-key"})
            r = conn.getresponse()
            self.assertEqual((r.status, json.loads(r.read())["data"]), (200, unknown(sha(i))))
        conn.close()

    def test_pipelined_requests_answered_in_order(self):
        raw = Raw(self.c)
        reqs = b"".join([request_bytes("GET", "/api/v1/files/" + sha(i)) for i in range(5)]
                        + [request_bytes("POST", "/api/v1/files/lookup", json.dumps({"hashes": [sha(9), sha(8)]})),
                           request_bytes("GET", "/api/v1/files/bad"),
                           request_bytes("GET", "/api/v1/health", key=None)])
        raw.send(reqs)
        for i in range(5):
            status, _, body = raw.read_response()
            self.assertEqual((status, json.loads(body)["data"]), (200, unknown(sha(i))))
        status, _, body = raw.read_response()
        self.assertEqual([f["sha256"] for f in json.loads(body)["data"]], [sha(9), sha(8)])
        self.assertEqual(raw.read_response()[0], 400)
        status, _, body = raw.read_response()
        self.assertEqual(json.loads(body)["data"]["status"], "ok")
        raw.close()

    def test_expect_100_continue(self):
        raw = Raw(self.c)
        body = json.dumps({"hashes": [A, B]}).encode()
        raw.send(b"POST /api/v1/files/lookup HTTP/1.1\r\nHost: x\r\nx-apikey: test-key\r\nExpect: 100-continue\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body))
        self.assertEqual(raw.read_head()[0], 100)
        raw.send(body)
        status, _, data = raw.read_response()
        self.assertEqual([f["sha256"] for f in json.loads(data)["data"]], [A, B])
        raw.close()

    def test_http_1_0_and_connection_close(self):
        raw = Raw(self.c)
        raw.send(b"GET /api/v1/health HTTP/1.0\r\n\r\n")
        data = raw.read_all()
        self.assertTrue(data.startswith(b"HTTP/1.0 200 OK\r\n"), data)
        raw.close()
        raw = Raw(self.c)
        raw.send(request_bytes("GET", "/api/v1/health", extra="Connection: close\r\n"))
        self.assertEqual(raw.read_response()[0], 200)
        self.assertTrue(raw.closed())
        raw.close()

    def test_garbage_never_crashes(self):
        import random
        rng = random.Random(7)
        inputs = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))) for _ in range(30)]
        inputs += [b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                   b"POST /api/v1/files/lookup HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                   b"GET /api/v1/files/\x00\xff HTTP/1.1\r\n\r\n", b"\r\n" * 5000,
                   request_bytes("POST", "/api/v1/files/lookup", b"[" * 500000),
                   request_bytes("POST", "/api/v1/files/lookup", b'{"hashes":' + b"[" * 100000 + b"]" * 100000 + b"}"),
                   request_bytes("PUT", "/api/v1/admin/files/" + A, '{"disposition":"clean","threat_name":"\\ud800"}', key="test-admin")]
        for data in inputs:
            raw = Raw(self.c)
            try:
                raw.send(data)
                raw.sock.shutdown(socket.SHUT_WR)
                raw.read_all()
            except (ConnectionResetError, BrokenPipeError):
                pass
            raw.close()
        self.assertEqual(self.c.health()["status"], "ok")
        self.assertIsNone(self.c.proc.poll())

    # -- admin and the change feed --

    def test_set_disposition(self):
        h = sha(2000)
        t0 = time.time()
        f = self.c.set_disposition(h.upper(), "malicious", threat_name="Eicar-Test-Signature", threat_score=100)
        changed = f.pop("last_changed")
        self.assertEqual(f, {"sha256": h, "disposition": "malicious", "threat_name": "Eicar-Test-Signature",
                             "threat_score": 100, "ttl_seconds": 3600, "upload_wanted": False})
        self.assertRegex(changed, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertLessEqual(abs(time.mktime(time.strptime(changed, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone - t0), 2)
        self.assertEqual(self.c.file(h)["last_changed"], changed)
        # the whole record is replaced
        g = self.c.set_disposition(h, "malicious")
        self.assertEqual((g["threat_name"], g["threat_score"], g["last_changed"]), (None, None, changed))
        u = self.c.set_disposition(h, "unknown", threat_score=20)
        self.assertEqual((u["disposition"], u["upload_wanted"], u["ttl_seconds"]), ("unknown", False, 900))

    def test_bad_admin_bodies(self):
        path = "/api/v1/admin/files/" + A
        cases = [({"disposition": "evil"}, "disposition must be \"clean\", \"malicious\" or \"unknown\""),
                 ({"threat_name": "x"}, "disposition is required (\"clean\", \"malicious\" or \"unknown\")"),
                 ({"disposition": "clean", "threat_score": 101}, "threat_score must be an integer from 0 to 100, or null"),
                 ({"disposition": "clean", "threat_score": -1}, "threat_score must be an integer from 0 to 100, or null"),
                 ({"disposition": "clean", "threat_score": 5.5}, "threat_score must be an integer from 0 to 100, or null"),
                 ({"disposition": "clean", "threat_name": 5}, "threat_name must be a string of at most 256 bytes, or null"),
                 ({"disposition": "clean", "threat_name": "x" * 257}, "threat_name must be a string of at most 256 bytes, or null"),
                 ({"disposition": "clean", "score": 1}, "unknown field 'score' (accepted: disposition, threat_name, threat_score)"),
                 ([1], "the body must be a JSON object {\"disposition\": ...}")]
        for body, message in cases:
            with self.subTest(body=body):
                self.assertAnswer(self.c.request("PUT", path, body), 400, err("InvalidArgumentError", message))

    def test_change_feed_paging(self):
        with Cloud() as c:
            data, meta = c.changes()
            self.assertEqual(data, [])
            self.assertFalse(meta["more"])
            empty = meta["cursor"]
            self.assertEqual(c.changes(since=empty), ([], {"cursor": empty, "more": False}))
            c.set_disposition(A, "malicious", "Evil.A")
            c.set_disposition(A, "malicious", "Evil.A2")    # same disposition: no entry
            c.set_disposition(B, "unknown")                # unknown -> unknown: no entry
            c.set_disposition(B, "clean")
            c.set_disposition(A, "clean")
            c.set_disposition(C, "malicious", threat_name=None)
            page1, meta1 = c.changes(limit=2)
            self.assertEqual([(e["sha256"], e["old"], e["new"], e["threat_name"]) for e in page1],
                             [(A, "unknown", "malicious", "Evil.A"), (B, "unknown", "clean", None)])
            self.assertTrue(meta1["more"])
            for e in page1:
                self.assertEqual(sorted(e), ["changed_at", "new", "old", "sha256", "threat_name"])
                self.assertRegex(e["changed_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            page2, meta2 = c.changes(since=meta1["cursor"], limit=2)
            self.assertEqual([(e["sha256"], e["old"], e["new"], e["threat_name"]) for e in page2],
                             [(A, "malicious", "clean", None), (C, "unknown", "malicious", None)])
            self.assertFalse(meta2["more"])
            self.assertEqual(c.changes(since=meta2["cursor"]), ([], {"cursor": meta2["cursor"], "more": False}))
            self.assertEqual(c.changes()[0], page1 + page2)
            # more changes: the saved cursor picks them up
            c.set_disposition(C, "clean")
            page3, meta3 = c.changes(since=meta2["cursor"])
            self.assertEqual([(e["sha256"], e["old"], e["new"]) for e in page3], [(C, "malicious", "clean")])
            # the admin key reads the feed too
            self.assertEqual(c.changes(since=meta2["cursor"], key="test-admin")[0], page3)
            # bad cursors and limits
            store_id = empty.split("-")[0]
            bad = ["nope", empty + "0", store_id + "-99", "0123456789abcdef-1", store_id + "-", store_id + "--1",
                   store_id + "-1x"]
            for cur in bad:
                with self.subTest(cursor=cur):
                    r = c.request("GET", "/api/v1/dispositions/changes?since=" + cur)
                    self.assertEqual((r.status, r.json()), (400, err(
                        "InvalidArgumentError", "cursor '%s' is not a cursor of this store (start again without 'since' "
                        "to read the feed from the beginning)" % cur)))
            for lim in ["0", "1001", "x", "-1", ""]:
                with self.subTest(limit=lim):
                    r = c.request("GET", "/api/v1/dispositions/changes?limit=" + lim)
                    self.assertEqual((r.status, r.json()),
                                     (400, err("InvalidArgumentError", "limit must be an integer from 1 to 1000")))
            self.assertEqual(len(c.changes(limit=1000)[0]), 5)

    # -- faults, seen from a raw client --

    def lookup_raw(self, raw=None):
        raw = raw or Raw(self.c)
        raw.send(request_bytes("POST", "/api/v1/files/lookup", json.dumps({"hashes": [A, B]})))
        return raw

    def test_fault_status(self):
        for status, code in [(500, "InternalError"), (502, "BadGatewayError"), (503, "TransientError")]:
            with self.subTest(status=status):
                self.c.faults(status=status)
                for path in ["/api/v1/files/" + A, "/api/v1/health", "/api/v1/dispositions/changes"]:
                    r = self.c.request("GET", path)
                    self.assertAnswer(r, status, err(code, "injected fault (POST /api/v1/admin/faults)"))
                # admin requests are not affected
                self.assertEqual(self.c.set_disposition(sha(3000), "clean")["disposition"], "clean")
                self.c.clear_faults()
                self.assertEqual(self.c.file(A)["sha256"], A)

    def test_fault_count_and_show(self):
        shown = self.c.faults(status=503, count=2)
        self.assertEqual(shown, {"delay_ms": 0, "status": 503, "close": None, "malformed": False, "oversized_mb": 0,
                                 "count": 2})
        self.assertEqual(self.c.request("GET", "/api/v1/files/" + A).status, 503)
        self.assertEqual(self.c.request("GET", "/api/v1/admin/faults").json()["data"]["count"], 1)
        self.assertEqual(self.c.request("GET", "/api/v1/files/" + A).status, 503)
        self.assertEqual(self.c.request("GET", "/api/v1/files/" + A).status, 200)
        cleared = {"delay_ms": 0, "status": None, "close": None, "malformed": False, "oversized_mb": 0, "count": None}
        self.assertEqual(self.c.request("GET", "/api/v1/admin/faults").json()["data"], cleared)
        self.c.faults(delay_ms=10)
        self.assertEqual(self.c.clear_faults(), cleared)

    def test_fault_bad_bodies(self):
        cases = [({"status": 404}, "status must be 500, 502 or 503"),
                 ({"close": "sometimes"}, "close must be \"before_answer\" or \"mid_answer\""),
                 ({"delay_ms": -1}, "delay_ms must be an integer from 0 to 600000"),
                 ({"oversized_mb": 0}, "oversized_mb must be an integer from 1 to 256"),
                 ({"malformed": "yes"}, "malformed must be true or false"),
                 ({"count": 0}, "count must be a positive integer (DELETE clears the faults)"),
                 ({"status": 503, "malformed": True},
                  "give at most one of status, close, malformed and oversized_mb (delay_ms combines with any)"),
                 ({"explode": True}, "unknown field 'explode' (accepted: delay_ms, status, close, malformed, "
                                     "oversized_mb, count)")]
        for body, message in cases:
            with self.subTest(body=body):
                r = self.c.request("POST", "/api/v1/admin/faults", body)
                self.assertAnswer(r, 400, err("InvalidArgumentError", message))

    def test_fault_delay(self):
        self.c.faults(delay_ms=700, count=1)
        t = time.monotonic()
        self.assertEqual(self.c.file(A)["sha256"], A)
        self.assertGreaterEqual(time.monotonic() - t, 0.7)
        t = time.monotonic()
        self.c.file(A)
        self.assertLess(time.monotonic() - t, 0.5)
        # a client that gives up before the answer
        self.c.faults(delay_ms=3000, count=1)
        with self.assertRaises(socket.timeout):
            self.c.request("GET", "/api/v1/files/" + A, timeout=0.5)

    def test_fault_close_before_answer(self):
        self.c.faults(close="before_answer", count=1)
        raw = self.lookup_raw()
        self.assertEqual(raw.read_all(), b"")
        raw.close()
        self.assertEqual(self.c.file(A)["sha256"], A)

    def test_fault_close_mid_answer(self):
        self.c.faults(close="mid_answer")
        raw = self.lookup_raw()
        status, headers = raw.read_head()
        body = raw.read_all()
        raw.close()
        self.assertEqual(status, 200)
        full = int(headers["content-length"])
        self.assertEqual(len(body), full // 2)
        self.assertTrue(body.startswith(b'{"data":[{"sha256":"' + A.encode()))

    def test_fault_malformed(self):
        self.c.faults(malformed=True)
        raw = self.lookup_raw()
        status, headers, body = raw.read_response()
        self.assertEqual((status, headers["content-type"]), (200, "application/json"))
        self.assertEqual(body, b"this is not JSON: injected fault (POST /api/v1/admin/faults)")
        with self.assertRaises(ValueError):
            json.loads(body)
        raw.close()

    def test_fault_oversized(self):
        self.c.faults(oversized_mb=3)
        raw = self.lookup_raw()
        status, headers, body = raw.read_response()
        raw.close()
        self.assertEqual((status, len(body), int(headers["content-length"])), (200, 3 << 20, 3 << 20))
        j = json.loads(body)
        self.assertEqual([f["sha256"] for f in j["data"]], [A, B])
        self.assertEqual(set(j["padding"]), {"x"})


class Quota(unittest.TestCase):
    def test_quota(self):
        with Cloud(api_keys=["k1", "k2"], quota_per_minute=3) as c:
            for _ in range(3):
                self.assertEqual(c.request("GET", "/api/v1/files/" + A, key="k1").status, 200)
            r = c.request("GET", "/api/v1/files/" + A, key="k1")
            self.assertEqual(r.status, 429)
            self.assertEqual(r.json()["error"]["code"], "QuotaExceededError")
            retry = int(r.header("retry-after"))
            self.assertIn(retry, (19, 20))  # 3 a minute: one every 20 s
            self.assertEqual(r.json()["error"]["message"],
                             "quota of 3 requests per minute exceeded; retry in %d s" % retry)
            self.assertEqual(c.request("POST", "/api/v1/files/lookup", {"hashes": [A]}, key="k1").status, 429)
            # another key has its own quota; health and admin requests are not counted
            self.assertEqual(c.request("GET", "/api/v1/files/" + A, key="k2").status, 200)
            self.assertEqual(c.request("GET", "/api/v1/health").status, 200)
            for _ in range(5):
                c.set_disposition(A, "clean")
            # the admin key on a look-up counts as its own client
            for _ in range(3):
                self.assertEqual(c.request("GET", "/api/v1/files/" + A, key="test-admin").status, 200)
            self.assertEqual(c.request("GET", "/api/v1/files/" + A, key="test-admin").status, 429)
            # wrong keys are refused before the quota
            self.assertEqual(c.request("GET", "/api/v1/files/" + A, key="nope").status, 401)

    def test_no_quota_by_default(self):
        with Cloud() as c:
            for _ in range(200):
                self.assertEqual(c.request("GET", "/api/v1/health").status, 200)
            conn = c.connection()
            for _ in range(300):
                conn.request("GET", "/api/v1/files/" + A, headers={"x-apikey": "test-key"})
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200)
            conn.close()


class Persistence(unittest.TestCase):
    def test_restart_keeps_dispositions_and_feed(self):
        with Cloud() as c:
            port = c.port
            c.set_disposition(A, "malicious", "Evil.A", 88)
            c.set_disposition(B, "clean")
            before = c.lookup([A, B, C])
            _, meta = c.changes()
            c.restart()
            self.assertEqual(c.port, port)
            self.assertEqual(c.lookup([A, B, C]), before)
            self.assertEqual(c.changes(since=meta["cursor"]), ([], meta))
            c.set_disposition(B, "malicious")
            data, _ = c.changes(since=meta["cursor"])
            self.assertEqual([(e["sha256"], e["old"], e["new"]) for e in data], [(B, "clean", "malicious")])
            self.assertEqual(sorted(os.listdir(c.data_dir)), ["cloud.lock", "cloud.sqlite", "cloud.sqlite-shm",
                                                              "cloud.sqlite-wal", "samples"])
            self.assertEqual(c.stop(), 0)
            # a clean stop leaves the database whole (the WAL checkpointed into it)
            self.assertEqual(sorted(os.listdir(c.data_dir)), ["cloud.lock", "cloud.sqlite", "samples"])
            out = subprocess.run(["sqlite3", os.path.join(c.data_dir, "cloud.sqlite"),
                                  "PRAGMA integrity_check; PRAGMA journal_mode; SELECT count(*) FROM changes"],
                                 capture_output=True, text=True, check=True).stdout
            self.assertEqual(out, "ok\nwal\n3\n")

    def test_a_crash_loses_no_committed_change(self):
        with Cloud() as c:
            c.set_disposition(A, "malicious", "Evil.A")
            self.assertEqual(c.kill(), -signal.SIGKILL)
            self.assertIn("cloud.sqlite-wal", os.listdir(c.data_dir))  # not checkpointed
            c.restart()
            self.assertEqual(c.file(A)["threat_name"], "Evil.A")
            self.assertEqual(len(c.changes()[0]), 1)

    def test_ttl_options(self):
        with Cloud(args=["--ttl-clean", "60", "--ttl-malicious", "30", "--ttl-unknown", "10"]) as c:
            c.set_disposition(A, "clean")
            c.set_disposition(B, "malicious")
            self.assertEqual([f["ttl_seconds"] for f in c.lookup([A, B, C])], [60, 30, 10])


class Tls(unittest.TestCase):
    def test_https_with_ca_bundle(self):
        with Cloud(tls=True) as c:
            self.assertRegex(c.listening_line, r"^sluice-cloud: listening on https://127\.0\.0\.1:\d+$")
            self.assertEqual(c.scheme, "https")
            c.set_disposition(A, "malicious", "Evil")
            self.assertEqual(c.lookup([A])[0]["disposition"], "malicious")
            # the certificate verifies against its CA bundle, and only against it
            ctx = ssl.create_default_context()
            with socket.create_connection(("127.0.0.1", c.port)) as s:
                with self.assertRaises(ssl.SSLCertVerificationError):
                    ctx.wrap_socket(s, server_hostname="127.0.0.1")
            # keep-alive over TLS
            conn = c.connection()
            for _ in range(3):
                conn.request("GET", "/api/v1/files/" + A, headers={"x-apikey": "test-key"})
                r = conn.getresponse()
                self.assertEqual(json.loads(r.read())["data"]["threat_name"], "Evil")
            conn.close()
            # plain HTTP on the TLS port gets no answer; the service carries on
            with socket.create_connection(("127.0.0.1", c.port), timeout=5) as s:
                s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    data = s.recv(4096)
                except ConnectionResetError:
                    data = b""
                self.assertFalse(data.startswith(b"HTTP/"))
            self.assertEqual(c.health()["status"], "ok")
            # a faulted answer over TLS is seen the same way
            c.faults(close="mid_answer", count=1)
            raw = Raw(c)
            raw.send(request_bytes("GET", "/api/v1/files/" + A))
            status, headers = raw.read_head()
            self.assertLess(len(raw.read_all()), int(headers["content-length"]))
            raw.close()

    def test_tls_on_any_address_without_insecure_listen(self):
        with tempfile.TemporaryDirectory() as d:
            cert, key = cloud.make_cert(d)
            with Cloud(host="0.0.0.0", tls=(cert, key)) as c:
                self.assertRegex(c.listening_line, r"^sluice-cloud: listening on https://0\.0\.0\.0:\d+$")
                c.host = "127.0.0.1"
                self.assertEqual(c.health()["status"], "ok")


class Limits(unittest.TestCase):
    def test_slow_and_idle_clients_are_closed(self):
        with Cloud(args=["--read-timeout", "1", "--idle-timeout", "2"]) as c:
            slow = Raw(c)
            slow.send(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n")  # never finishes its header
            idle = Raw(c)
            idle.send(request_bytes("GET", "/api/v1/health", key=None))
            self.assertEqual(idle.read_response()[0], 200)
            t = time.monotonic()
            self.assertTrue(slow.closed(timeout=5))
            self.assertLess(time.monotonic() - t, 2.5)
            self.assertTrue(idle.closed(timeout=5))
            self.assertGreater(time.monotonic() - t, 1.2)
            slow.close()
            idle.close()
            self.assertEqual(c.health()["status"], "ok")

    def test_max_connections(self):
        with Cloud(args=["--max-connections", "2"]) as c:
            held = [Raw(c), Raw(c)]
            for h in held:
                h.send(request_bytes("GET", "/api/v1/health", key=None))
                self.assertEqual(h.read_response()[0], 200)
            extra = Raw(c)
            extra.send(request_bytes("GET", "/api/v1/health", key=None))
            status, headers, body = extra.read_response()
            self.assertEqual((status, json.loads(body)),
                             (503, err("TransientError", "too many connections (2); retry later")))
            self.assertTrue(extra.closed())
            extra.close()
            held[0].close()
            time.sleep(0.2)
            again = Raw(c)
            again.send(request_bytes("GET", "/api/v1/health", key=None))
            self.assertEqual(again.read_response()[0], 200)
            again.close()
            held[1].close()

    def test_max_body_kb(self):
        with Cloud(args=["--max-body-kb", "1"]) as c:
            r = c.request("POST", "/api/v1/files/lookup", {"hashes": [A] * 20})
            self.assertEqual((r.status, r.json()), (400, err(
                "BadRequestError", "the request body exceeds 1024 bytes (--max-body-kb)")))
            self.assertEqual(len(c.lookup([A] * 10)), 10)


# --- the analysis side: samples, their analyses, the daily limit (API.md "Samples") ---

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SAMPLE_FIELDS = ["id", "sha256", "filename", "size", "state", "submitted_at", "completed_at"]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MIB = 1 << 20


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def unique(label=b"plain"):
    """Bytes no other test uploads: a plain text file."""
    return b"%s text, nothing active in it: %s\n" % (label, secrets.token_hex(16).encode())


def upload_head(length, boundary="b0undary", key="test-key", extra=""):
    return ("POST /api/v1/samples HTTP/1.1\r\nHost: x\r\nx-apikey: %s\r\n"
            "Content-Type: multipart/form-data; boundary=%s\r\n%sContent-Length: %d\r\n\r\n"
            % (key, boundary, extra, length)).encode()


def seconds_to_utc_midnight():
    return 86400 - int(time.time()) % 86400


class SampleChecks(unittest.TestCase):
    def assertSample(self, s, data, filename, state):
        self.assertEqual(list(s), SAMPLE_FIELDS)
        self.assertRegex(s["id"], r"^[0-9a-f]{32}$")
        self.assertEqual((s["sha256"], s["filename"], s["size"], s["state"]), (sha256(data), filename, len(data), state))
        self.assertRegex(s["submitted_at"], RFC3339)
        if state in ("succ", "fail"):
            self.assertRegex(s["completed_at"], RFC3339)
        else:
            self.assertIsNone(s["completed_at"])

    def assertAnswer(self, r, status, body):
        self.assertEqual((r.status, r.json()), (status, body), r.body)
        self.assertEqual(r.header("content-type"), "application/json")


class AnalysisCommandLine(unittest.TestCase):
    def test_help_lists_the_analysis_options(self):
        r = run(["--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        for opt in ["--analysis-seconds", "--daily-samples", "--max-sample-mb", "--malicious-score", "--signatures",
                    "--analysis-threads", "samples/", "PayloadTooLargeError", "QuotaExceededError"]:
            self.assertIn(opt, r.stdout)

    def test_bad_values_exit_2_with_one_line(self):
        base = ["--listen", "127.0.0.1:0", "--data", "/nonexistent/never-created"]
        for args, line in [
            (["--analysis-seconds", "-1"], "--analysis-seconds -1: accepted 0 to 86400"),
            (["--analysis-seconds", "86401"], "--analysis-seconds 86401: accepted 0 to 86400"),
            (["--daily-samples", "0"], "--daily-samples 0: accepted 1 to 1000000"),
            (["--max-sample-mb", "0"], "--max-sample-mb 0: accepted 1 to 128"),
            (["--max-sample-mb", "129"], "--max-sample-mb 129: accepted 1 to 128"),
            (["--malicious-score", "0"], "--malicious-score 0: accepted 1 to 100"),
            (["--malicious-score", "101"], "--malicious-score 101: accepted 1 to 100"),
            (["--analysis-threads", "0"], "--analysis-threads 0: accepted 1 to 64"),
            (["--analysis-threads", "65"], "--analysis-threads 65: accepted 1 to 64"),
            (["--signatures", ""], "--signatures DIR is required (this build has no default)"),
        ]:
            with self.subTest(args=args):
                r = run(base + args)
                self.assertEqual((r.returncode, r.stdout, r.stderr), (2, "", "sluice-cloud: %s (see --help)\n" % line))


    def test_signatures_libclamav_refuses_exit_1(self):
        with tempfile.TemporaryDirectory() as d:
            r = run(["--listen", "127.0.0.1:0", "--data", os.path.join(d, "data"), "--signatures", "/nonexistent/sigs"])
            self.assertEqual((r.returncode, r.stdout), (1, ""))
            self.assertEqual(r.stderr, "sluice-cloud: the analysis engine: preclass: signature directory "
                                       "'/nonexistent/sigs': No such file or directory (--signatures)\n")
            empty = os.path.join(d, "empty")
            os.mkdir(empty)
            r = run(["--listen", "127.0.0.1:0", "--data", os.path.join(d, "data"), "--signatures", empty])
            self.assertEqual(r.returncode, 1)
            self.assertIn("no signature file", r.stderr)


class SampleUploads(SampleChecks):
    """One service whose analyses take a minute, so that samples stay in `wait` (keys test-key and
    other-key, 1 MiB samples)."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cloud(api_keys=["test-key", "other-key"], analysis_seconds=60, max_sample_mb=1)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def test_new_then_idempotent(self):
        data = unique()
        r = self.c.upload_request(data, "notes.txt")
        self.assertEqual(r.status, 201, r.body)
        s = r.json()["data"]
        self.assertSample(s, data, "notes.txt", "wait")
        # the same bytes again, from another key and under another name: the same sample, 200
        for key, name in [("test-key", "notes.txt"), ("other-key", "other.txt"), ("test-admin", None)]:
            r = self.c.upload_request(data, name, key=key)
            self.assertAnswer(r, 200, {"data": s})
        self.assertEqual(self.c.samples(sha256(data)), [s])
        self.assertEqual(self.c.sample(s["id"]), s)
        self.assertEqual(self.c.state(s["id"]), "wait")

    def test_file_names(self):
        for sent, kept in [("a/b\\c.doc", "c.doc"), (None, None), ("résumé.pdf", "résumé.pdf"), ("dir/", None),
                           ("é" * 200, "é" * 127)]:
            with self.subTest(sent=sent):
                data = unique()
                s = self.c.upload(data, sent)
                self.assertEqual(self.c.last_upload_status, 201)
                self.assertSample(s, data, kept, "wait")

    def test_queries_and_unknown_ids(self):
        self.assertEqual(self.c.samples(sha256(b"never sent")), [])
        self.assertEqual(self.c.samples(sha256(b"never sent").upper()), [])
        self.assertAnswer(self.c.request("GET", "/api/v1/samples"), 400, err(
            "InvalidArgumentError", "the sha256 parameter is required (GET /api/v1/samples?sha256=...)"))
        self.assertAnswer(self.c.request("GET", "/api/v1/samples?sha256=xyz"), 400, err(
            "InvalidArgumentError", "'xyz' is not a SHA-256 (64 hex digits)"))
        for path in ["/api/v1/samples/" + "f" * 32, "/api/v1/samples/%s/state" % ("0" * 32),
                     "/api/v1/samples/nope/threat", "/api/v1/samples/" + "F" * 32]:
            with self.subTest(path=path):
                sid = path.split("/")[4]
                self.assertAnswer(self.c.request("GET", path), 404, err("NotFoundError", "no such sample: '%s'" % sid))
        self.assertAnswer(self.c.request("GET", "/api/v1/samples/%s/report" % ("0" * 32)), 404, err(
            "NotFoundError", "no such endpoint: '/api/v1/samples/%s/report'" % ("0" * 32)))

    def test_threat_before_completion(self):
        s = self.c.upload(unique())
        self.assertAnswer(self.c.request("GET", "/api/v1/samples/%s/threat" % s["id"]), 400,
                          err("NotAvailableYet", "analysis not complete: state wait"))

    def test_methods_and_keys(self):
        r = self.c.request("DELETE", "/api/v1/samples")
        self.assertAnswer(r, 405, err("MethodNotAllowedError", "'DELETE' is not allowed here (allowed: GET, POST)"))
        self.assertEqual(r.header("allow"), "GET, POST")
        self.assertEqual(self.c.request("POST", "/api/v1/limits").status, 405)
        self.assertEqual(self.c.request("PUT", "/api/v1/samples/" + "0" * 32 + "/state").status, 405)
        self.assertAnswer(self.c.upload_request(b"x", key=None), 401, err(
            "AuthenticationRequiredError", "an API key is required (x-apikey header or Authorization: Bearer)"))
        self.assertAnswer(self.c.upload_request(b"x", key="nope"), 401, err(
            "WrongCredentialsError", "the API key given is not valid"))
        self.assertEqual(self.c.request("GET", "/api/v1/limits", key=None).status, 401)

    def test_bad_multipart(self):
        data = b"payload"
        good, ctype = multipart_form("sample", data, "a.bin", boundary="XyZ")
        cases = [
            (None, good, "the request must be multipart/form-data (Content-Type is '')"),
            ("application/json", good, "the request must be multipart/form-data (Content-Type is 'application/json')"),
            ("multipart/form-data", good, "the multipart/form-data Content-Type has no valid boundary parameter"),
            ("multipart/form-data; boundary=", good, "the multipart/form-data Content-Type has no valid boundary parameter"),
            (ctype, b"", "the multipart body has no boundary line"),
            (ctype, b"just some bytes", "the multipart body has no boundary line"),
            (ctype, good[:-12], "the multipart body has no closing boundary"),
            (ctype, good.replace(b"\r\n\r\n", b"\r\n", 1), "a multipart part has no end to its headers"),
            (ctype, good.replace(b"Content-Disposition:", b"Content-Disposition", 1),
             "a multipart part has a malformed header line"),
            (ctype, good.replace(b"--XyZ\r\n", b"--XyZ!!", 1), "the multipart body is malformed after a boundary line"),
            (ctype, multipart_form("file", data, "a.bin", boundary="XyZ")[0],
             "the multipart body has no file field 'sample'"),
            (ctype, b"--XyZ\r\nContent-Disposition: form-data; name=\"sample\"; filename=\"a\"\r\n\r\nA\r\n"
                    b"--XyZ\r\nContent-Disposition: form-data; name=\"sample\"; filename=\"b\"\r\n\r\nB\r\n--XyZ--\r\n",
             "the multipart body has more than one 'sample' part"),
        ]
        for content_type, body, message in cases:
            with self.subTest(message=message, content_type=content_type):
                headers = {"Content-Type": content_type} if content_type else {}
                r = self.c.request("POST", "/api/v1/samples", body, headers=headers)
                self.assertAnswer(r, 400, err("BadRequestError", message))
        body, ctype = multipart_form("sample", b"", "empty.bin")
        self.assertAnswer(self.c.request("POST", "/api/v1/samples", body, headers={"Content-Type": ctype}), 400,
                          err("InvalidArgumentError", "the sample is empty"))

    def test_multipart_variants(self):
        data = b"\r\n--not the boundary\r\n" + os.urandom(64) + b"\r\n"
        body = (b"preamble to ignore\r\n--q b\r\ncontent-disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
                b"--q b\r\nCONTENT-DISPOSITION: form-data; name=sample; filename=\"x.bin\"; "
                b"filename*=UTF-8''na%C3%AFve.bin\r\nContent-Type: application/octet-stream\r\n\r\n" + data +
                b"\r\n--q b--\r\nepilogue")
        r = self.c.request("POST", "/api/v1/samples", body, headers={"Content-Type": 'multipart/form-data; boundary="q b"'})
        self.assertEqual(r.status, 201, r.body)
        self.assertSample(r.json()["data"], data, "naïve.bin", "wait")

    def test_size_limit(self):
        c = self.c
        limit = err("PayloadTooLargeError", "the sample is larger than the maximum sample size, 1048576 bytes (1 MiB)")
        # exactly the limit is accepted
        data = os.urandom(MIB)
        self.assertEqual(c.upload_request(data).status, 201)
        # one byte more, in a body within the framing allowance: refused, the connection stays
        raw = Raw(c)
        body, ctype = multipart_form("sample", os.urandom(MIB + 1), "big.bin", boundary="b0undary")
        raw.send(upload_head(len(body)) + body)
        status, headers, answer = raw.read_response()
        self.assertEqual((status, json.loads(answer)), (413, limit))
        self.assertNotEqual(headers.get("connection"), "close")
        raw.send(b"GET /api/v1/limits HTTP/1.1\r\nHost: x\r\nx-apikey: test-key\r\n\r\n")
        self.assertEqual(raw.read_response()[0], 200)
        raw.close()
        # a Content-Length over the limit is refused at once, before any of the body, and the
        # connection closed (also with Expect: 100-continue, which is then never answered 100)
        for extra in ["", "Expect: 100-continue\r\n"]:
            raw = Raw(c)
            raw.send(upload_head(5 * MIB, extra=extra))
            status, headers, answer = raw.read_response()
            self.assertEqual((status, json.loads(answer), headers.get("connection")), (413, limit, "close"))
            self.assertTrue(raw.closed())
            raw.close()
        # chunked: refused when the body passes the limit
        raw = Raw(c)
        raw.send(b"POST /api/v1/samples HTTP/1.1\r\nHost: x\r\nx-apikey: test-key\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Type: multipart/form-data; boundary=b0undary\r\n\r\n")
        chunk = os.urandom(256 * 1024)
        try:
            for _ in range(8):
                raw.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, answer = raw.read_response()
        self.assertEqual((status, json.loads(answer)), (413, limit))
        raw.close()
        # other endpoints keep --max-body-kb
        r = c.request("POST", "/api/v1/files/lookup", b"{" + b" " * (MIB + 10) + b"}")
        self.assertAnswer(r, 400, err("BadRequestError", "the request body exceeds 1048576 bytes (--max-body-kb)"))

    def test_upload_wanted_until_a_sample_has_a_result(self):
        # Being analysed is no result yet: still wanted (an appliance then finds the sample by
        # searching and waits on it instead of uploading again).
        data = unique()
        h = sha256(data)
        self.assertTrue(self.c.file(h)["upload_wanted"])
        self.c.upload(data)
        self.assertEqual(self.c.file(h), {"sha256": h, "disposition": "unknown", "threat_name": None,
                                          "threat_score": None, "ttl_seconds": 900, "upload_wanted": True,
                                          "last_changed": None})
        self.assertTrue(self.c.lookup([h])[0]["upload_wanted"])
        self.assertEqual(len(self.c.samples(h)), 1)

    def test_limits_without_a_daily_limit(self):
        self.assertEqual(self.c.limits(), {"max_sample_bytes": MIB, "daily_samples": None,
                                           "submissions_available": None, "submissions-available": None})


class SampleUploadBound(unittest.TestCase):
    def test_eight_uploads_at_once(self):
        with Cloud(analysis_seconds=60, max_sample_mb=1) as c:
            held = []
            for _ in range(8):
                raw = Raw(c)
                raw.send(upload_head(500000) + b"--b0undary\r\n")
                held.append(raw)
            time.sleep(0.3)
            extra = Raw(c)
            extra.send(upload_head(1000))
            status, headers, body = extra.read_response()
            self.assertEqual((status, json.loads(body), headers.get("retry-after")),
                             (503, err("TransientError", "too many sample uploads in progress (8); retry later"), "1"))
            extra.close()
            held.pop().close()
            time.sleep(0.3)
            self.assertEqual(c.upload_request(unique()).status, 201)
            for raw in held:
                raw.close()


class Analysis(SampleChecks):
    """Analyses of one second: four steps of 250 ms."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cloud(analysis_seconds=1)

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def test_states_in_order_then_threat(self):
        with Cloud(analysis_seconds=1) as c:
            self._states_then_threat(c)

    def _states_then_threat(self, c):
        t = time.monotonic()
        s = c.upload(EICAR, "eicar.com")
        seen = c.wait_for_state(s["id"], "succ", interval=0.02)
        elapsed = time.monotonic() - t
        self.assertEqual(seen, ["wait", "prep", "run", "proc", "succ"])
        self.assertGreater(elapsed, 0.9)
        self.assertLess(elapsed, 5)
        done = c.sample(s["id"])
        self.assertSample(done, EICAR, "eicar.com", "succ")
        self.assertEqual({k: done[k] for k in ["id", "submitted_at"]}, {k: s[k] for k in ["id", "submitted_at"]})
        threat = c.threat(s["id"])
        self.assertEqual(list(threat), ["score", "verdict", "threat_name", "report"])
        self.assertEqual((threat["score"], threat["verdict"]), (100, "malicious"))
        self.assertIn("Eicar", threat["threat_name"])
        self.assertIsInstance(threat["report"], dict)
        # uploading it again gives the finished sample
        self.assertEqual(c.upload(EICAR), done)
        self.assertEqual(c.last_upload_status, 200)
        # its bytes are gone from the data directory
        self.assertEqual(os.listdir(os.path.join(c.data_dir, "samples")), [])

    def test_reputation_and_change_feed(self):
        _, meta = self.c.changes()
        clean = unique()
        bad = EICAR
        self.assertTrue(self.c.file(sha256(bad))["upload_wanted"])
        s_clean = self.c.upload(clean, "notes.txt")
        s_bad = self.c.upload(bad, "eicar.com")
        for s in (s_clean, s_bad):
            self.c.wait_for_completion(s["id"])
        # EICAR: malicious, named by the signature that found it, fed exactly as an admin PUT is
        threat = self.c.threat(s_bad["id"])
        self.assertEqual((threat["score"], threat["verdict"], threat["threat_name"]),
                         (100, "malicious", "Sluice.Test.Eicar"))
        f = self.c.file(sha256(bad))
        self.assertEqual({k: f[k] for k in f if k != "last_changed"},
                         {"sha256": sha256(bad), "disposition": "malicious", "threat_name": "Sluice.Test.Eicar",
                          "threat_score": 100, "ttl_seconds": 3600, "upload_wanted": False})
        self.assertRegex(f["last_changed"], RFC3339)
        self.assertEqual(self.c.lookup([sha256(bad)]), [f])
        entries, meta2 = self.c.changes(since=meta["cursor"])
        self.assertEqual([(e["sha256"], e["old"], e["new"], e["threat_name"]) for e in entries],
                         [(sha256(bad), "unknown", "malicious", "Sluice.Test.Eicar")])
        self.assertEqual(entries[0]["changed_at"], f["last_changed"])
        # plain text: a low score, recorded; the disposition stays unknown (nothing fed) and the
        # service no longer wants the file
        threat = self.c.threat(s_clean["id"])
        self.assertEqual((threat["score"], threat["verdict"], threat["threat_name"]), (0, "clean", None))
        f = self.c.file(sha256(clean))
        self.assertEqual({k: f[k] for k in f if k != "last_changed"},
                         {"sha256": sha256(clean), "disposition": "unknown", "threat_name": None,
                          "threat_score": 0, "ttl_seconds": 900, "upload_wanted": False})
        self.assertRegex(f["last_changed"], RFC3339)  # when the record was first stored
        self.assertEqual(self.c.lookup([sha256(clean), sha256(bad)])[0], f)
        # the admin's word afterwards wins, and is fed as usual
        self.c.set_disposition(sha256(clean), "malicious", "Analyst.Said.So")
        self.assertEqual(self.c.file(sha256(clean))["disposition"], "malicious")
        entries, _ = self.c.changes(since=meta2["cursor"])
        self.assertEqual([(e["sha256"], e["old"], e["new"]) for e in entries], [(sha256(clean), "unknown", "malicious")])

    def test_the_admin_disposition_before_an_analysis_stands(self):
        data = unique()
        h = sha256(data)
        admin = self.c.set_disposition(h, "malicious", "Known.Bad", 99)
        _, meta = self.c.changes()
        s = self.c.upload(data)
        self.c.wait_for_state(s["id"], "succ")
        self.assertEqual(self.c.threat(s["id"])["verdict"], "clean")
        self.assertEqual(self.c.file(h), admin)
        self.assertEqual(self.c.changes(since=meta["cursor"])[0], [])

    def test_a_failed_analysis_can_be_submitted_again(self):
        with Cloud(analysis_seconds=30) as c:
            data = unique()
            first = c.upload(data, "gone.txt")
            self.assertEqual(c.stop(), 0)
            path = os.path.join(c.data_dir, "samples", sha256(data))
            os.remove(path)
            c.extra_args[c.extra_args.index("--analysis-seconds") + 1] = "1"
            c.start()
            c.wait_for_state(first["id"], "fail")
            self.assertSample(c.sample(first["id"]), data, "gone.txt", "fail")
            self.assertEqual(c.threat(first["id"]), {
                "score": None, "verdict": "failed", "threat_name": None,
                "report": {"error": "cannot open the sample's file %s: No such file or directory" % path}})
            f = c.file(sha256(data))
            self.assertEqual((f["disposition"], f["threat_score"], f["upload_wanted"]), ("unknown", None, True))
            second = c.upload(data, "again.txt")
            self.assertEqual(c.last_upload_status, 201)
            self.assertNotEqual(second["id"], first["id"])
            self.assertEqual([s["id"] for s in c.samples(sha256(data))], [second["id"], first["id"]])
            c.wait_for_state(second["id"], "succ")
            f = c.file(sha256(data))
            self.assertEqual((f["disposition"], f["threat_score"], f["upload_wanted"]), ("unknown", 0, False))


def preclass_fixtures():
    """tests/data/preclass/make.py as a module: its builders make Office documents with macros."""
    spec = importlib.util.spec_from_file_location("preclass_make", os.path.join(PRECLASS_DATA, "make.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def macro_doc(source):
    """A Word 97 document whose VBA project holds one module with `source` (VBA lines)."""
    mk = preclass_fixtures()
    code = 'Attribute VB_Name = "Module1"\r\n' + "\r\n".join(source) + "\r\n"
    return mk.ft.cfb([("Macros", mk.vba_storage(code))] + mk.word_streams(), mk.WORD_CLSID)


def fixture(name):
    with open(os.path.join(PRECLASS_DATA, name), "rb") as f:
        return f.read()


class AnalysisScores(unittest.TestCase):
    """The static engine over real files, through the API (the table: API.md, "How a sample is
    scored"; each rule alone: tests/unit/control/cloud/scoring_test.cpp)."""

    def test_scores_of_real_files(self):
        autorun_shell = macro_doc(["Sub AutoOpen()", '    Shell "cmd.exe /c calc.exe", vbHide', "End Sub"])
        autorun = macro_doc(["Sub AutoOpen()", '    MsgBox "Opened"', "End Sub"])
        plain_macro = macro_doc(["Sub Totals()", '    MsgBox "Sum"', "End Sub"])
        cases = [
            # name, bytes, score, verdict, threat name, the rule that decided
            ("eicar.com", EICAR, 100, "malicious", "Sluice.Test.Eicar", "verdict_signature"),
            ("invoice.doc", autorun_shell, 90, "malicious", "Sluice.Heuristic.Macro.AutoRunSuspicious",
             "macro_autorun_suspicious_calls"),
            ("cradle.ps1", fixture("cradle.ps1"), 85, "malicious", "Sluice.Script.PowerShell.DownloadCradle",
             "powershell_download_or_encoded"),
            ("pe_object.docx", fixture("pe_object.docx"), 80, "malicious",
             "Sluice.Heuristic.Document.EmbeddedExecutable", "executable_in_document"),
            ("launch.pdf", fixture("launch.pdf"), 70, "malicious", "Sluice.Heuristic.Pdf.Launch", "pdf_launch"),
            ("js.pdf", fixture("js.pdf"), 65, "clean", None, "pdf_javascript_at_open"),
            ("report.doc", autorun, 50, "clean", None, "macro_autorun"),
            ("setup.exe", fixture("setup.exe"), 45, "clean", None, "executable"),
            ("totals.doc", plain_macro, 30, "clean", None, "vba_macro"),
            ("plain.doc", fixture("plain.doc"), 0, "clean", None, None),
            ("notes.txt", unique(), 0, "clean", None, None),
        ]
        with Cloud(analysis_seconds=0) as c:
            samples = [(case, c.upload(case[1], case[0])) for case in cases]
            for (name, data, score, verdict, threat_name, rule), s in samples:
                with self.subTest(name=name):
                    c.wait_for_completion(s["id"])
                    t = c.threat(s["id"])
                    self.assertEqual((t["score"], t["verdict"], t["threat_name"]), (score, verdict, threat_name),
                                     t["report"])
                    r = t["report"]
                    self.assertEqual(list(r), ["engine", "score", "rules", "file_type", "dynamic", "reasons", "alerts",
                                               "limits", "signatures", "scan_ms", "metadata", "analysis_ms"])
                    self.assertEqual((r["engine"], r["score"]), ("sluice-static/1", score))
                    self.assertEqual(r["rules"][0]["rule"] if r["rules"] else None, rule)
                    self.assertIsInstance(r["metadata"], dict)
                    f = c.file(sha256(data))
                    self.assertEqual((f["disposition"], f["threat_score"], f["threat_name"], f["upload_wanted"]),
                                     ("malicious" if verdict == "malicious" else "unknown", score, threat_name, False))
            # every malicious one fed once, in completion order
            fed = {e["sha256"]: (e["old"], e["new"], e["threat_name"]) for e in c.changes()[0]}
            self.assertEqual(fed, {sha256(case[1]): ("unknown", "malicious", case[4])
                                   for case in cases if case[3] == "malicious"})


class AnalysisThreshold(unittest.TestCase):
    def test_malicious_score(self):
        autorun = macro_doc(["Sub AutoOpen()", '    MsgBox "Opened"', "End Sub"])   # 50
        plain_macro = macro_doc(["Sub Totals()", '    MsgBox "Sum"', "End Sub"])     # 30
        with Cloud(analysis_seconds=0, malicious_score=50) as c:
            _, t = c.analyse(autorun, "a.doc")
            self.assertEqual((t["score"], t["verdict"], t["threat_name"]),
                             (50, "malicious", "Sluice.Heuristic.Macro.AutoRun"))
            f = c.file(sha256(autorun))
            self.assertEqual((f["disposition"], f["threat_name"], f["threat_score"]),
                             ("malicious", "Sluice.Heuristic.Macro.AutoRun", 50))
            _, t = c.analyse(plain_macro, "b.doc")
            self.assertEqual((t["score"], t["verdict"], t["threat_name"]), (30, "clean", None))
            self.assertEqual(c.file(sha256(plain_macro))["disposition"], "unknown")


class SampleDailyLimit(unittest.TestCase):
    def test_daily_limit_per_key(self):
        with Cloud(api_keys=["k1", "k2"], daily_samples=2, analysis_seconds=60) as c:
            self.assertEqual(c.limits(key="k1"), {"max_sample_bytes": 32 * MIB, "daily_samples": 2,
                                                  "submissions_available": 2, "submissions-available": 2})
            data = unique()
            first = c.upload(data, key="k1")
            c.upload(unique(), key="k1")
            self.assertEqual(c.limits(key="k1")["submissions_available"], 0)
            r = c.upload_request(unique(), key="k1")
            self.assertEqual((r.status, r.json()["error"]["code"]), (429, "QuotaExceededError"), r.body)
            retry = int(r.header("retry-after"))
            self.assertLessEqual(abs(retry - seconds_to_utc_midnight()), 2)
            self.assertEqual(r.json()["error"]["message"],
                             "daily sample limit of 2 reached for this API key; retry after 00:00 UTC (in %d s)" % retry)
            # a sample already there is still answered (and not counted)
            r = c.upload_request(data, key="k1")
            self.assertEqual((r.status, r.json()["data"]), (200, first))
            # another key has its own count; the admin key counts as its own client
            self.assertEqual(c.limits(key="k2")["submissions_available"], 2)
            c.upload(unique(), key="k2")
            self.assertEqual(c.limits(key="k2")["submissions_available"], 1)
            c.upload(unique(), key="test-admin")
            c.upload(unique(), key="test-admin")
            self.assertEqual(c.upload_request(unique(), key="test-admin").status, 429)
            # the counts survive a restart
            c.restart()
            self.assertEqual(c.upload_request(unique(), key="k1").status, 429)
            self.assertEqual(c.limits(key="k2")["submissions_available"], 1)


class AnalysisPersistence(SampleChecks):
    def test_results_survive_a_restart(self):
        with Cloud(analysis_seconds=0) as c:
            s = c.upload(EICAR, "eicar.com")
            c.wait_for_state(s["id"], "succ")
            before = (c.sample(s["id"]), c.threat(s["id"]), c.samples(sha256(EICAR)), c.file(sha256(EICAR)), c.changes())
            c.restart()
            self.assertEqual((c.sample(s["id"]), c.threat(s["id"]), c.samples(sha256(EICAR)), c.file(sha256(EICAR)),
                              c.changes()), before)
            self.assertEqual(c.stop(), 0)
            self.assertEqual(sorted(os.listdir(c.data_dir)), ["cloud.lock", "cloud.sqlite", "samples"])
            self.assertEqual(os.listdir(os.path.join(c.data_dir, "samples")), [])

    def _mid_analysis(self, stop):
        with Cloud(analysis_seconds=2) as c:
            data = unique()
            s = c.upload(data, "mid.txt")
            c.wait_for_state(s["id"], "prep", interval=0.02)
            stop(c)
            self.assertIn(sha256(data), os.listdir(os.path.join(c.data_dir, "samples")))
            c.start(port=c.port)
            self.assertIn(c.state(s["id"]), ("prep", "run"))  # the step it was in starts again
            seen = c.wait_for_state(s["id"], "succ", interval=0.02)
            self.assertEqual(seen[-3:], ["run", "proc", "succ"])
            self.assertSample(c.sample(s["id"]), data, "mid.txt", "succ")
            f = c.file(sha256(data))
            self.assertEqual((f["disposition"], f["threat_score"], f["upload_wanted"]), ("unknown", 0, False))
            self.assertEqual(os.listdir(os.path.join(c.data_dir, "samples")), [])

    def test_an_analysis_in_progress_resumes_after_a_restart(self):
        self._mid_analysis(lambda c: self.assertEqual(c.stop(), 0))

    def test_an_analysis_in_progress_resumes_after_sigkill(self):
        self._mid_analysis(lambda c: self.assertEqual(c.kill(), -signal.SIGKILL))

    def test_leftover_files_are_removed_at_start(self):
        with Cloud(analysis_seconds=0) as c:
            c.stop()
            samples = os.path.join(c.data_dir, "samples")
            for name in ["0" * 64, "0" * 64 + ".tmp", "stray"]:
                with open(os.path.join(samples, name), "wb") as f:
                    f.write(b"x")
            c.start()
            self.assertEqual(os.listdir(samples), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
