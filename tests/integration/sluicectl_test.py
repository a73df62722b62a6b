"""sluicectl (issue 15).

Without an appliance: `token new --role admin|read` prints a new token alone on its first line and
the token file line (`ROLE sha256:HEX`, HEX the SHA-256 of the token) on its second; `token hash`
gives that line for a token read from standard input; a bad command line exits 2 with the usage; a
token is never an option.

Against a stub HTTPS server of this test (most of the API's routes are not served by sluiced yet,
so this is the CLI's boundary: what it sends and what it makes of the answers): the exact method,
path, query, body and Content-Type of every command; the token from SLUICE_TOKEN and from
--token-file; the exit codes of 401/403/404/409/400/429/500 with the error object on standard
error; a quarantined message byte for byte; --json; tables that cope with fields they do not know;
the TLS policy: on loopback any certificate, its SHA-256 printed; --fingerprint pins (a wrong one
exits 1 before the token is sent); a non-loopback URL (named with --connect-to, the stub still on
127.0.0.1) is verified against --ca and its host name, or the system's CAs; nothing listening, or a
silent server, exits 1. The same against a live sluiced: tests/e2e/management_test.py.
"""
import hashlib
import http.server
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cloud  # noqa: E402
import sluiced  # noqa: E402

SLUICECTL = os.path.abspath(os.path.join(sluiced.BUILD, "control", "sluicectl"))
SHA = "0123456789abcdef" * 4
TOKEN = "sluice_test-token"


def ctl(*args, stdin=None, env=None, text=True):
    """Runs sluicectl; SLUICE_TOKEN only when `env` gives it."""
    base = {k: v for k, v in os.environ.items() if k != "SLUICE_TOKEN"}
    base.update(env or {})
    return subprocess.run([SLUICECTL, *args], input=stdin, capture_output=True, text=text, timeout=30, env=base)


def fingerprint(cert_path):
    with open(cert_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return ":".join("%02X" % b for b in hashlib.sha256(der).digest())


class Stub:
    """An HTTPS server on 127.0.0.1 that records every request (method, target, headers, body) and
    answers what `answer` says: (status, content_type, body bytes)."""

    def __init__(self, cert, key):
        self.requests = []
        self.answer = (200, "application/json", b'{"ok": true}')
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_any(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                stub.requests.append({"method": self.command, "target": self.path, "headers": dict(self.headers),
                                      "body": body})
                status, ctype, data = stub.answer
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = handle_any

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer_json(self, obj, status=200):
        self.answer = (status, "application/json", json.dumps(obj).encode())

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Sluicectl(unittest.TestCase):
    def test_token_new_prints_the_token_then_its_line(self):
        seen = set()
        for role in ("admin", "read", "admin"):
            r = ctl("token", "new", "--role", role)
            self.assertEqual(r.returncode, 0, r.stderr)
            token, line = r.stdout.splitlines()
            self.assertRegex(token, r"^sluice_[A-Za-z0-9_-]{43}$")
            self.assertEqual(line, f"{role} sha256:" + hashlib.sha256(token.encode()).hexdigest())
            seen.add(token)
        self.assertEqual(len(seen), 3)

    def test_token_hash_reads_the_token_from_standard_input(self):
        r = ctl("token", "hash", "--role", "read", stdin="my own token\n")
        self.assertEqual((r.returncode, r.stdout), (0, "read sha256:" + hashlib.sha256(b"my own token").hexdigest() + "\n"))
        self.assertEqual(ctl("token", "hash", "--role", "read", stdin="").returncode, 1)

    def test_a_bad_command_line_exits_2_with_the_usage(self):
        for args, says in ((["token", "new"], "needs --role"), (["token", "new", "--role", "root"], "is not admin or read"),
                           ([], "no command"), (["frobnicate"], "unknown command 'frobnicate'"),
                           (["token", "new", "--role", "admin", "--token", "x"], "unrecognised option"),
                           (["--token", "x", "status"], "unrecognised option '--token'"),
                           (["status", "--token=x"], "unrecognised option '--token=x'"),
                           (["--url", "http://127.0.0.1:8443", "status"], "HTTPS only"),
                           (["--url", "https://a b", "status"], "--url"),
                           (["--ca", "/nonexistent", "status"], "cannot be read"),
                           (["--ca", __file__, "status"], "holds no PEM certificate"),
                           (["--fingerprint", "AB:CD", "status"], "is not a SHA-256"),
                           (["--ca", __file__, "--fingerprint", "ab" * 32, "status"], "alternatives"),
                           (["--token-file", "/nonexistent", "status"], "cannot be read"),
                           (["--timeout", "0", "status"], "--timeout"),
                           (["status", "extra"], "too many arguments"),
                           (["cache", "show"], "too few arguments"),
                           (["cache", "show", "abc"], "'abc' is not a SHA-256"),
                           (["cache", "show", "g" * 64], "is not a SHA-256"),
                           (["override", "allow", SHA + "0"], "is not a SHA-256"),
                           (["quarantine", "list", "--sha256", "xyz"], "--sha256 'xyz' is not a SHA-256"),
                           (["quarantine", "list", "--state", "gone"], "is not held|released|deleted"),
                           (["quarantine", "list", "--limit", "0"], "--limit"),
                           (["quarantine", "list", "--limit", "10001"], "--limit"),
                           (["alerts", "--severity", "loud"], "is not info|warning|critical"),
                           (["sightings"], "needs a SHA256 or --recipient"),
                           (["sightings", SHA, "--recipient", "a@b"], "takes no --recipient"),
                           (["endpoints", "add", "--section", "reputation", "--name", "n", "--kind", "sluice"], "needs --url"),
                           (["endpoints", "add", "--section", "other", "--name", "n", "--kind", "k", "--url", "u"],
                            "is not reputation|analysis"),
                           (["endpoints", "remove", "cloud", "x"], "'cloud' is not reputation|analysis"),
                           (["config", "validate", "/nonexistent.yaml"], "cannot be read")):
            r = ctl(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(says, r.stderr, args)
            self.assertTrue(re.search(r"^usage: sluicectl \[--url URL\] \[--token-file FILE\] COMMAND", r.stderr, re.M))
        r = ctl("--help")
        self.assertEqual(r.returncode, 0)
        for words in ("status", "endpoints add", "quarantine eml", "config validate", "SLUICE_TOKEN", "Exit codes",
                      "3 not found", "4 not authorised"):
            self.assertIn(words, r.stdout)
        self.assertEqual(ctl("quarantine", "list", "--help").returncode, 0)


class AgainstAStub(unittest.TestCase):
    """The requests sluicectl sends and what it makes of the answers."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.d = cls.tmp.name
        cls.cert, cls.key = cloud.make_cert(cls.d, "appliance", ("127.0.0.1", "localhost"))
        cls.stub = Stub(cls.cert, cls.key)
        cls.url = f"https://127.0.0.1:{cls.stub.port}"

    @classmethod
    def tearDownClass(cls):
        cls.stub.close()
        cls.tmp.cleanup()

    def setUp(self):
        self.stub.requests.clear()
        self.stub.answer_json({"ok": True})

    def run_ctl(self, *args, token=TOKEN, **kw):
        return ctl("--url", self.url, *args, env={"SLUICE_TOKEN": token} if token else {}, **kw)

    def test_every_command_sends_its_route(self):
        key_file = os.path.join(self.d, "vt.key")
        with open(key_file, "w") as f:
            f.write("vt-secret-key\n")
        config = os.path.join(self.d, "new.yaml")
        config_text = "mode: tap\nstats: {interval_s: 5}\n# a comment, sent as it is\n"
        with open(config, "w") as f:
            f.write(config_text)
        qid = "20261128-101500-123-9f3a61c2"
        json_ = "application/json"
        cases = [
            (["status"], "GET", "/api/v1/status", None),
            (["counters"], "GET", "/api/v1/counters", None),
            (["endpoints", "list"], "GET", "/api/v1/endpoints", None),
            (["endpoints", "add", "--section", "reputation", "--name", "vt", "--kind", "virustotal", "--url",
              "https://www.virustotal.com", "--api-key-file", key_file, "--ca-file", "/etc/sluice/ca.pem", "--insecure"],
             "POST", "/api/v1/endpoints",
             {"section": "reputation", "name": "vt", "kind": "virustotal", "url": "https://www.virustotal.com",
              "api_key": "vt-secret-key", "ca_file": "/etc/sluice/ca.pem", "insecure": True}),
            (["endpoints", "add", "--section", "analysis", "--name", "lab", "--kind", "sluice", "--url",
              "https://lab.example:8444"], "POST", "/api/v1/endpoints",
             {"section": "analysis", "name": "lab", "kind": "sluice", "url": "https://lab.example:8444", "api_key": "",
              "ca_file": "", "insecure": False}),
            (["endpoints", "remove", "reputation", "my cloud"], "DELETE", "/api/v1/endpoints/reputation/my%20cloud", None),
            (["endpoints", "test", "analysis", "lab"], "POST", "/api/v1/endpoints/analysis/lab/test", None),
            (["cache", "show", SHA.upper()], "GET", "/api/v1/cache/" + SHA, None),
            (["cache", "drop", SHA], "DELETE", "/api/v1/cache/" + SHA, None),
            (["cache", "flush"], "POST", "/api/v1/cache/flush", None),
            (["override", "list"], "GET", "/api/v1/overrides", None),
            (["override", "allow", SHA, "--comment", "a known installer"], "PUT", "/api/v1/overrides/" + SHA,
             {"verdict": "allow", "comment": "a known installer"}),
            (["override", "block", SHA.upper()], "PUT", "/api/v1/overrides/" + SHA, {"verdict": "block", "comment": ""}),
            (["override", "remove", SHA], "DELETE", "/api/v1/overrides/" + SHA, None),
            (["quarantine", "list"], "GET", "/api/v1/quarantine", None),
            (["quarantine", "list", "--state", "held", "--sender", "a+b@x.example", "--sha256", SHA.upper(), "--since",
              "2026-11-28T00:00:00Z", "--limit", "50", "--after", "c/1=", "--oldest-first"], "GET",
             "/api/v1/quarantine?state=held&sender=a%2Bb%40x.example&sha256=" + SHA +
             "&since=2026-11-28T00%3A00%3A00Z&limit=50&after=c%2F1%3D&order=oldest", None),
            (["quarantine", "show", qid], "GET", "/api/v1/quarantine/" + qid, None),
            (["quarantine", "release", qid, "--relay", "--why", "checked by hand"], "POST",
             f"/api/v1/quarantine/{qid}/release", {"relay": True, "why": "checked by hand"}),
            (["quarantine", "release", qid], "POST", f"/api/v1/quarantine/{qid}/release", {"relay": False, "why": ""}),
            (["quarantine", "delete", qid, "--why", "phishing"], "POST", f"/api/v1/quarantine/{qid}/delete",
             {"why": "phishing"}),
            (["quarantine", "eml", qid], "GET", f"/api/v1/quarantine/{qid}/eml", None),
            (["sightings", SHA, "--limit", "5"], "GET", f"/api/v1/sightings/{SHA}?limit=5", None),
            (["sightings", "--recipient", "bob@x.example", "--from", "1764288000000", "--to", "2026-12-01T00:00:00Z",
              "--limit", "10"], "GET",
             "/api/v1/sightings?recipient=bob%40x.example&from=1764288000000&to=2026-12-01T00%3A00%3A00Z&limit=10", None),
            (["alerts"], "GET", "/api/v1/alerts", None),
            (["alerts", "--limit", "3", "--severity", "critical"], "GET", "/api/v1/alerts?limit=3&severity=critical",
             None),
            (["heartbeat"], "POST", "/api/v1/retrospective/heartbeat", None),
            (["alerts", "test"], "POST", "/api/v1/alerts/test", {}),
            (["alerts", "test", "--severity", "critical", "--text", "check"], "POST", "/api/v1/alerts/test",
             {"severity": "critical", "text": "check"}),
            # trace MESSAGE by its shape: a reference id, a SHA-256, FLOW:TRANSACTION, else a Message-ID.
            (["--json", "trace", "6757a1b2-3-0"], "GET", "/api/v1/trace?ref=6757a1b2-3-0", None),
            (["--json", "trace", SHA], "GET", f"/api/v1/trace?message_sha256={SHA}", None),
            (["--json", "trace", "3:0"], "GET", "/api/v1/trace?flow_id=3&transaction=0", None),
            (["--json", "trace", "<x-1@example.org>", "--limit", "2"], "GET",
             "/api/v1/trace?message_id=%3Cx-1%40example.org%3E&limit=2", None),
            (["--json", "trace", "6757a1b2-3"], "GET", "/api/v1/trace?message_id=6757a1b2-3", None),
            (["config", "show"], "GET", "/api/v1/config", None),
            (["config", "reload"], "POST", "/api/v1/config/reload", None),
            # Global options after the command.
            (["status", "--json", "--timeout", "5"], "GET", "/api/v1/status", None),
        ]
        for args, method, target, body in cases:
            with self.subTest(args=args):
                self.stub.requests.clear()
                if args[:2] == ["config", "reload"]:
                    self.stub.answer_json({"reloaded": True, "error": "", "changed": []})
                else:
                    self.stub.answer_json({"ok": True})
                r = self.run_ctl(*args)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(len(self.stub.requests), 1)
                rq = self.stub.requests[0]
                self.assertEqual((rq["method"], rq["target"]), (method, target))
                self.assertEqual(rq["headers"]["Authorization"], "Bearer " + TOKEN)
                if body is None:
                    self.assertEqual(rq["body"], b"")
                    self.assertNotIn("Content-Type", rq["headers"])
                else:
                    self.assertEqual(rq["headers"]["Content-Type"], json_)
                    self.assertEqual(json.loads(rq["body"]), body)
                    self.assertEqual(list(json.loads(rq["body"])), list(body))  # the keys in this order
        # config validate: the file's text as it is, as YAML.
        self.stub.requests.clear()
        self.stub.answer_json({"valid": True, "error": "", "changed": ["stats.interval_s"]})
        r = self.run_ctl("config", "validate", config)
        self.assertEqual(r.returncode, 0, r.stderr)
        rq = self.stub.requests[0]
        self.assertEqual((rq["method"], rq["target"], rq["headers"]["Content-Type"], rq["body"]),
                         ("POST", "/api/v1/config/validate", "application/yaml", config_text.encode()))
        self.assertEqual(r.stdout, "valid\nchanged: stats.interval_s\n")

    def test_the_token_comes_from_token_file_or_sluice_token_and_never_elsewhere(self):
        token_file = os.path.join(self.d, "token")
        with open(token_file, "w") as f:
            f.write("sluice_from-the-file\n")
        self.assertEqual(self.run_ctl("--token-file", token_file, "status", token="sluice_from-env").returncode, 0)
        self.assertEqual(self.run_ctl("status", token="sluice_from-env").returncode, 0)
        self.assertEqual(self.run_ctl("status", token=None).returncode, 0)
        got = [rq["headers"].get("Authorization") for rq in self.stub.requests]
        self.assertEqual(got, ["Bearer sluice_from-the-file", "Bearer sluice_from-env", None])
        # A token with a line break inside would forge a header: refused.
        self.assertEqual(self.run_ctl("status", token="a\r\nX-Evil: 1").returncode, 2)

    def test_exit_codes_follow_the_status_and_print_the_error_object(self):
        for status, code, expected in ((401, "WrongCredentialsError", 4), (403, "ForbiddenError", 4),
                                       (404, "NotFoundError", 3), (409, "ConflictError", 1),
                                       (400, "BadRequestError", 1), (429, "TooManyRequestsError", 1),
                                       (500, "InternalError", 1), (503, "UnavailableError", 1)):
            with self.subTest(status=status):
                self.stub.answer_json({"error": {"code": code, "message": "what to do " + str(status)}}, status)
                r = self.run_ctl("quarantine", "release", "q1", "--json")
                self.assertEqual(r.returncode, expected, r.stderr)
                self.assertIn(f"sluicectl: {status} {code}: what to do {status}", r.stderr)
                self.assertEqual(r.stdout, "")
        # Not an error object: the status and the start of the body.
        self.stub.answer = (502, "text/plain", b"bad gateway\n")
        r = self.run_ctl("status")
        self.assertEqual(r.returncode, 1)
        self.assertIn("HTTP 502 from the appliance: bad gateway", r.stderr)
        # No token at all: the 401 says where a token comes from.
        self.stub.answer_json({"error": {"code": "AuthenticationRequiredError", "message": "send a token"}}, 401)
        r = self.run_ctl("status", token=None)
        self.assertEqual(r.returncode, 4)
        self.assertIn("SLUICE_TOKEN", r.stderr)

    def test_config_validate_and_reload_exit_1_when_refused(self):
        config = os.path.join(self.d, "bad.yaml")
        with open(config, "w") as f:
            f.write("mode: nonsense\n")
        self.stub.answer_json({"valid": False, "error": "config bad.yaml: key 'mode' line 1: 'nonsense' is not ...",
                               "changed": []})
        r = self.run_ctl("config", "validate", config)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.splitlines()[:2], ["invalid", "error: config bad.yaml: key 'mode' line 1: 'nonsense' is not ..."])
        self.stub.answer_json({"reloaded": False, "error": "key 'eal.memory_mb' cannot change at run time", "changed": []})
        r = self.run_ctl("config", "reload", "--json")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(json.loads(r.stdout)["reloaded"], False)
        # An answer that does not say (a server of another shape): refused, never a crash.
        self.stub.answer_json({"valid": "yes"})
        r = self.run_ctl("config", "validate", config)
        self.assertEqual(r.returncode, 1)
        self.assertIn("the answer has no boolean 'valid'", r.stderr)
        self.stub.answer_json({"reloaded": True, "error": "", "changed": ["events.path", "stats.interval_s"]})
        r = self.run_ctl("config", "reload")
        self.assertEqual((r.returncode, r.stdout), (0, "reloaded\nchanged: events.path, stats.interval_s\n"))

    def test_a_quarantined_message_comes_byte_for_byte(self):
        eml = (b"From: a@x.example\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\nline\r\n\x00\xff\xfe bare\n.\r\n" +
               bytes(range(256)) * 64)
        self.stub.answer = (200, "message/rfc822", eml)
        r = self.run_ctl("quarantine", "eml", "q1", text=False)
        self.assertEqual((r.returncode, r.stdout), (0, eml))
        self.assertEqual(self.stub.requests[-1]["headers"]["Accept"], "message/rfc822")
        out = os.path.join(self.d, "q1.eml")
        r = self.run_ctl("quarantine", "eml", "q1", "--output", out, text=False)
        self.assertEqual((r.returncode, r.stdout), (0, b""))
        with open(out, "rb") as f:
            self.assertEqual(f.read(), eml)
        self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)
        # A 404 writes no file.
        self.stub.answer_json({"error": {"code": "NotFoundError", "message": "no quarantine entry q2"}}, 404)
        out2 = os.path.join(self.d, "q2.eml")
        self.assertEqual(self.run_ctl("quarantine", "eml", "q2", "--output", out2).returncode, 3)
        self.assertFalse(os.path.exists(out2))

    def test_json_and_tables(self):
        status = {"mode": "tap", "version": "0.1.0", "appliance": "gw1", "uptime_s": 12.5,
                  "lcores": [{"lcore": 1, "role": "rx"}],
                  "ports": [{"name": "tap0", "device": "net_af_packet0", "link_up": True, "link_speed_mbps": 10000,
                             "rx_packets": 7, "tx_packets": 0, "a_new_field": "x"}]}
        self.stub.answer_json(status)
        r = self.run_ctl("status", "--json")
        self.assertEqual((r.returncode, json.loads(r.stdout)), (0, status))
        r = self.run_ctl("status")
        self.assertEqual(r.returncode, 0)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[:4], ["mode: tap", "version: 0.1.0", "appliance: gw1", "uptime_s: 12.5"])
        self.assertIn("lcores:", lines)
        self.assertRegex(r.stdout, r"(?m)^name +device +link_up +link_speed_mbps +rx_packets +tx_packets$")
        self.assertRegex(r.stdout, r"(?m)^tap0 +net_af_packet0 +true +10000 +7 +0$")
        # A list whose rows are not flat and whose columns are not known: each row as key: value
        # lines; control characters never reach the terminal.
        self.stub.answer_json({"entries": [{"id": "q1", "state": "held", "mail_from": "a@x", "subject": "hi\x1b[31m",
                                            "files": [{"sha256": SHA}]},
                                           {"id": "q2", "state": "released", "mail_from": "b@x", "subject": "yo"}],
                               "next": "cursor-2", "matching": 7})
        r = self.run_ctl("quarantine", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^id +state +mail_from +subject$")
        self.assertRegex(r.stdout, r"(?m)^q1 +held +a@x +hi\?\[31m$")
        self.assertIn("matching: 7\nmore: --after cursor-2\n", r.stdout)
        self.assertNotIn("\x1b", r.stdout)
        self.stub.answer_json({"unexpected": {"shape": [{"deep": {"x": 1}}]}, "n": 1})
        r = self.run_ctl("counters")
        self.assertEqual(r.returncode, 0)
        self.assertIn("n: 1\n", r.stdout)
        self.assertIn("deep.x: 1", r.stdout)
        # config show: YAML by default.
        self.stub.answer_json({"mode": "tap", "management": {"listen": "127.0.0.1:8443", "token_file": "<redacted>"},
                               "lcores": {"rx": [1, 2]}})
        r = self.run_ctl("config", "show")
        self.assertEqual(r.returncode, 0)
        self.assertIn('mode: "tap"\nmanagement:\n  listen: "127.0.0.1:8443"\n', r.stdout)


class Tls(unittest.TestCase):
    """Which certificates sluicectl trusts, against real TLS servers on 127.0.0.1."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.cert, cls.key = cloud.make_cert(d, "appliance", ("appliance.test", "127.0.0.1"))
        cls.other_cert, _ = cloud.make_cert(d, "other", ("appliance.test",))
        cls.stub = Stub(cls.cert, cls.key)
        cls.port = cls.stub.port

    @classmethod
    def tearDownClass(cls):
        cls.stub.close()
        cls.tmp.cleanup()

    def status(self, *args):
        before = len(self.stub.requests)
        r = ctl(*args, "status", env={"SLUICE_TOKEN": TOKEN})
        return r, len(self.stub.requests) - before

    def test_loopback_accepts_the_certificate_and_prints_its_fingerprint(self):
        fp = fingerprint(self.cert)
        for host in ("127.0.0.1", "localhost"):
            r, sent = self.status("--url", f"https://{host}:{self.port}")
            self.assertEqual((r.returncode, sent), (0, 1), r.stderr)
            self.assertIn(f"sluicectl: appliance certificate SHA-256 {fp}\n", r.stderr)

    def test_a_pinned_fingerprint_must_match_and_nothing_is_sent_otherwise(self):
        fp = fingerprint(self.cert)
        for given in (fp, fp.replace(":", "").lower()):
            for url in (f"https://127.0.0.1:{self.port}", f"https://appliance.test:{self.port}"):
                r, sent = self.status("--url", url, "--connect-to", "127.0.0.1", "--fingerprint", given)
                self.assertEqual((r.returncode, sent), (0, 1), r.stderr)
                self.assertNotIn("appliance certificate SHA-256", r.stderr)  # pinned: nothing to show
        wrong = fingerprint(self.other_cert)
        r, sent = self.status("--url", f"https://127.0.0.1:{self.port}", "--fingerprint", wrong)
        self.assertEqual((r.returncode, sent), (1, 0))
        self.assertIn(f"the certificate's SHA-256 is {fp}, not the --fingerprint {wrong}", r.stderr)

    def test_elsewhere_the_certificate_is_verified(self):
        url = f"https://appliance.test:{self.port}"
        # --ca with the certificate: trusted, and it names appliance.test.
        r, sent = self.status("--url", url, "--connect-to", "127.0.0.1", "--ca", self.cert)
        self.assertEqual((r.returncode, sent), (0, 1), r.stderr)
        self.assertNotIn("appliance certificate SHA-256", r.stderr)
        # Another CA: refused before the request.
        r, sent = self.status("--url", url, "--connect-to", "127.0.0.1", "--ca", self.other_cert)
        self.assertEqual((r.returncode, sent), (1, 0))
        self.assertIn("the certificate is not trusted", r.stderr)
        # The right CA, another host name: refused.
        r, sent = self.status("--url", f"https://elsewhere.test:{self.port}", "--connect-to", "127.0.0.1", "--ca",
                              self.cert)
        self.assertEqual((r.returncode, sent), (1, 0))
        self.assertIn("the certificate is not trusted: it does not name elsewhere.test", r.stderr)
        # Neither --ca nor --fingerprint: the system's CAs, which do not know this certificate.
        r, sent = self.status("--url", url, "--connect-to", "127.0.0.1")
        self.assertEqual((r.returncode, sent), (1, 0))
        self.assertIn("(self-signed certificate; the system CAs)", r.stderr)
        # --ca on a loopback URL verifies too (the host 127.0.0.1 is in the certificate).
        r, sent = self.status("--url", f"https://127.0.0.1:{self.port}", "--ca", self.cert)
        self.assertEqual((r.returncode, sent), (0, 1), r.stderr)

    def test_nothing_listening_or_a_silent_server_exits_1(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        r, _ = self.status("--url", f"https://127.0.0.1:{port}")
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"cannot connect to 127.0.0.1:{port}", r.stderr)
        # Accepts the connection and never speaks: the handshake times out.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(4)
            t0 = time.monotonic()
            r, _ = self.status("--url", f"https://127.0.0.1:{s.getsockname()[1]}", "--timeout", "1")
            self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no handshake within 1000 ms", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
