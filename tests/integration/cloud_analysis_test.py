#!/usr/bin/env python3
"""sluice-cloud's analysis side as a real process on loopback (tests/lib/cloud.py): sample uploads
(new, idempotent, oversized, bad multipart, the daily limit, the upload bound), the states in order,
the threat before and after completion, what an analysis does to the reputation look-up and the change
feed, failed analyses, persistence across restarts (also mid-analysis, also after SIGKILL), the
limits, and the scoring of real files (API.md, NOTES.md)."""
import hashlib
import json
import os
import re
import secrets
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cloud import Cloud, CloudError, multipart_form  # noqa: E402
from cloud_test import Raw, err, run  # noqa: E402

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


class Checks(unittest.TestCase):
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


class CommandLine(unittest.TestCase):
    def test_help_lists_the_analysis_options(self):
        r = run(["--help"])
        self.assertEqual(r.returncode, 0, r.stderr)
        for opt in ["--analysis-seconds", "--daily-samples", "--max-sample-mb", "--malicious-score", "samples/"]:
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
        ]:
            with self.subTest(args=args):
                r = run(base + args)
                self.assertEqual((r.returncode, r.stdout, r.stderr), (2, "", "sluice-cloud: %s (see --help)\n" % line))


class Uploads(Checks):
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
        limit = err("InvalidArgumentError", "the sample is larger than the maximum sample size, 1048576 bytes (1 MiB)")
        # exactly the limit is accepted
        data = os.urandom(MIB)
        self.assertEqual(c.upload_request(data).status, 201)
        # one byte more, in a body within the framing allowance: refused, the connection stays
        raw = Raw(c)
        body, ctype = multipart_form("sample", os.urandom(MIB + 1), "big.bin", boundary="b0undary")
        raw.send(upload_head(len(body)) + body)
        status, headers, answer = raw.read_response()
        self.assertEqual((status, json.loads(answer)), (400, limit))
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
            self.assertEqual((status, json.loads(answer), headers.get("connection")), (400, limit, "close"))
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
        self.assertEqual((status, json.loads(answer)), (400, limit))
        raw.close()
        # other endpoints keep --max-body-kb
        r = c.request("POST", "/api/v1/files/lookup", b"{" + b" " * (MIB + 10) + b"}")
        self.assertAnswer(r, 400, err("BadRequestError", "the request body exceeds 1048576 bytes (--max-body-kb)"))

    def test_upload_wanted_while_a_sample_exists(self):
        data = unique()
        h = sha256(data)
        self.assertTrue(self.c.file(h)["upload_wanted"])
        self.c.upload(data)
        self.assertEqual(self.c.file(h), {"sha256": h, "disposition": "unknown", "threat_name": None,
                                          "threat_score": None, "ttl_seconds": 900, "upload_wanted": False,
                                          "last_changed": None})
        self.assertFalse(self.c.lookup([h])[0]["upload_wanted"])

    def test_limits_without_a_daily_limit(self):
        self.assertEqual(self.c.limits(), {"max_sample_bytes": MIB, "daily_samples": None,
                                           "submissions_available": None})


class UploadBound(unittest.TestCase):
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


class Analysis(Checks):
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
        s_clean = self.c.upload(clean, "notes.txt")
        s_bad = self.c.upload(bad, "eicar.com")
        for s in (s_clean, s_bad):
            self.c.wait_for_state(s["id"], "succ")
        f = self.c.file(sha256(clean))
        self.assertEqual({k: f[k] for k in f if k != "last_changed"},
                         {"sha256": sha256(clean), "disposition": "clean", "threat_name": None,
                          "threat_score": self.c.threat(s_clean["id"])["score"], "ttl_seconds": 14400,
                          "upload_wanted": False})
        self.assertRegex(f["last_changed"], RFC3339)
        self.assertLess(f["threat_score"], 70)
        f = self.c.file(sha256(bad))
        self.assertEqual((f["disposition"], f["threat_score"], f["ttl_seconds"], f["upload_wanted"]),
                         ("malicious", 100, 3600, False))
        self.assertEqual(f["threat_name"], self.c.threat(s_bad["id"])["threat_name"])
        entries, meta2 = self.c.changes(since=meta["cursor"])
        got = {e["sha256"]: (e["old"], e["new"], e["threat_name"]) for e in entries}
        self.assertEqual(got, {sha256(clean): ("unknown", "clean", None),
                               sha256(bad): ("unknown", "malicious", f["threat_name"])})
        # the admin's word afterwards wins, and is fed as usual
        self.c.set_disposition(sha256(clean), "malicious", "Analyst.Said.So")
        self.assertEqual(self.c.file(sha256(clean))["disposition"], "malicious")
        entries, _ = self.c.changes(since=meta2["cursor"])
        self.assertEqual([(e["sha256"], e["old"], e["new"]) for e in entries], [(sha256(clean), "clean", "malicious")])

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
            self.assertEqual(c.file(sha256(data))["disposition"], "clean")


class Threshold(unittest.TestCase):
    def test_malicious_score(self):
        with Cloud(analysis_seconds=0, malicious_score=1) as c:
            data = unique()
            s = c.upload(data)
            c.wait_for_state(s["id"], "succ")
            t = c.threat(s["id"])
            self.assertEqual((t["verdict"], t["threat_name"]), ("malicious", None))
            f = c.file(sha256(data))
            self.assertEqual((f["disposition"], f["threat_name"], f["threat_score"]), ("malicious", None, t["score"]))


class DailyLimit(unittest.TestCase):
    def test_daily_limit_per_key(self):
        with Cloud(api_keys=["k1", "k2"], daily_samples=2, analysis_seconds=60) as c:
            self.assertEqual(c.limits(key="k1"), {"max_sample_bytes": 32 * MIB, "daily_samples": 2,
                                                  "submissions_available": 2})
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


class Persistence(Checks):
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
            self.assertEqual(c.file(sha256(data))["disposition"], "clean")
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
