"""File reputation end to end (issue 11): a real sluice-cloud on loopback, dispositions set through
its admin API, generated SMTP captures replayed through sluiced with `reputation.endpoints`
pointing at it, and the `file` and `verdict` events checked against what the test set:

- a clean file, a malicious file, a zip whose member is malicious (the archive and the message are
  malicious), an unknown file (counts as clean, `upload_wanted`), an encrypted zip (unscannable
  `encrypted`), with the configured actions;
- two sluiced replays against one sluice-cloud: intelligence set between them reaches the second;
- the verdict cache: kept in `state.dir` across runs (the second run answers from `cache` and asks
  nothing), TTL expiry, a corrupt cache file refused with one line and an alert;
- faults of the real service: stopped, slow past the timeout, 5xx, 429, connection closed
  mid-answer, malformed and oversized JSON, an untrusted certificate, a wrong pinned key: each gives
  the documented `lookup_error`, the verdict `unscannable` with that reason and its configured
  action, and sluiced exits cleanly;
- VirusTotal (tests/lib/vt_double.py: the real API's response shapes; the service itself is out
  of reach here) as the fail-over endpoint: threshold, threat label, 404 = unknown, quota;
- a replay faster than the answers: sluiced stops reading the capture while half its message
  records wait, so no file becomes `overload`.
"""
import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cloud  # noqa: E402
import sluiced  # noqa: E402
import tcpgen  # noqa: E402

SEVEN = shutil.which("7zz") or shutil.which("7z")


def sha(b):
    return hashlib.sha256(b).hexdigest()


def zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def encrypted_zip(tmp, name, data):
    src = os.path.join(tmp, name)
    with open(src, "wb") as f:
        f.write(data)
    out = os.path.join(tmp, "enc.zip")
    subprocess.run([SEVEN, "a", "-tzip", "-pinfected", out, src], check=True, capture_output=True)
    with open(out, "rb") as f:
        return f.read()


def frames_of(messages):
    """One SMTP session per (index, [(filename, bytes)]) message; client port 40000 + index."""
    frames = []
    for i, attachments in messages:
        frames += tcpgen.mail_with_attachments(i, attachments, message_id=f"<rep-{i}@example.org>", cport_base=40000)
    return frames


def config(c, extra="", endpoint_extra=""):
    ep = f"{{name: lab, kind: sluice, url: '{c.url}', api_key: test-key{endpoint_extra}}}"
    return f"reputation:\n  endpoints:\n    - {ep}\n{extra}"


class Reputation(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sluice-rep-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def cloud(self, **kw):
        c = cloud.Cloud(**kw)
        self.addCleanup(c.close)
        return c

    def replay(self, frames, cfg_text, name="capture", timeout=120):
        cfg = os.path.join(self.tmp, name + ".yaml")
        with open(cfg, "w") as f:
            f.write(cfg_text)
        return sluiced.replay_frames(frames, self.tmp, name=name, args=["--config", cfg], timeout=timeout)

    def verdicts(self, ev):
        return {e["src_port"] - 40000: e["verdict"] for e in ev.of("verdict")}

    def files(self, ev, i):
        return [e["file"] for e in ev.of("file", client_port=40000 + i)]

    # ---------------------------------------------------------------------------------------

    def test_clean_malicious_member_unknown_and_encrypted(self):
        clean, bad, member, unknown = b"clean report\n" * 50, b"MZ malicious payload" * 30, b"evil member" * 40, b"never seen" * 20
        inner = zip_bytes([("docs/readme.txt", b"hello\n"), ("docs/payload.exe", member)])
        enc = encrypted_zip(self.tmp, "secret.exe", b"hidden" * 100)
        c = self.cloud()
        c.set_disposition(sha(clean), "clean")
        c.set_disposition(sha(bad), "malicious", threat_name="Win.Test.Bad", threat_score=97)
        c.set_disposition(sha(member), "malicious", threat_name="Win.Test.Member")
        frames = frames_of([(0, [("report.txt", clean)]), (1, [("invoice.exe", bad)]), (2, [("archive.zip", inner)]),
                            (3, [("new.bin", unknown)]), (4, [("locked.zip", enc)])])
        ev = self.replay(frames, config(c, "actions:\n  unscannable: {encrypted: defer}\n"))
        v = self.verdicts(ev)
        self.assertEqual(sorted(v), [0, 1, 2, 3, 4])

        f0 = self.files(ev, 0)[0]
        self.assertEqual((f0["reputation"], f0["verdict_source"], f0["upload_wanted"]), ("clean", "lab", False))
        self.assertEqual((v[0]["disposition"], v[0]["action"], v[0]["reasons"]), ("clean", "pass", []))

        f1 = self.files(ev, 1)[0]
        self.assertEqual((f1["reputation"], f1["threat_name"], f1["threat_score"]), ("malicious", "Win.Test.Bad", 97))
        self.assertEqual((v[1]["disposition"], v[1]["action"]), ("malicious", "reject"))
        self.assertEqual([(x["filename"], x["sha256"], x["reputation"]) for x in v[1]["files"]],
                         [("invoice.exe", sha(bad), "malicious")])

        files2 = {f["filename"]: f for f in self.files(ev, 2)}
        self.assertEqual(files2["archive.zip"]["reputation"], "unknown")
        self.assertEqual(files2["docs/readme.txt"]["reputation"], "unknown")
        self.assertEqual(files2["docs/payload.exe"]["reputation"], "malicious")
        self.assertEqual(v[2]["disposition"], "malicious")
        self.assertEqual(v[2]["files_evaluated"], 3)
        self.assertEqual([(x["filename"], x.get("member"), x["threat_name"]) for x in v[2]["files"]],
                         [("docs/payload.exe", True, "Win.Test.Member")])

        f3 = self.files(ev, 3)[0]
        self.assertEqual((f3["reputation"], f3["upload_wanted"]), ("unknown", True))
        self.assertEqual((v[3]["disposition"], v[3]["action"]), ("clean", "pass"))

        files4 = {f["filename"]: f for f in self.files(ev, 4)}
        self.assertEqual(files4["locked.zip"]["unscannable"], "encrypted")
        self.assertEqual((v[4]["disposition"], v[4]["action"], v[4]["reasons"]), ("unscannable", "defer", ["encrypted"]))

        # Every verdict carries the flow identity and transaction of its smtp event.
        for e in ev.of("verdict"):
            smtp = [s for s in ev.smtp if s["src_port"] == e["src_port"]][0]
            for k in ("flow_id", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "transaction"):
                self.assertEqual(e[k], smtp[k], k)
            self.assertEqual(e["verdict"]["message_sha256"], smtp["smtp"]["message_sha256"])
        rep = ev.stats["reputation"]
        self.assertEqual(rep["errors"], {"service_unavailable": 0, "rate_limited": 0, "budget_exhausted": 0,
                                         "queue_full": 0})
        self.assertGreaterEqual(rep["hashes_sent"], 7)

    def test_a_hidden_reading_of_a_part_is_looked_up_and_decides(self):
        """Issue 17: a Content-Transfer-Encoding off the RFC spelling ("xx base64"): the primary
        reading takes the body as it is, the other reading decodes it; the cloud knows the decoded
        file as malicious, so the message is, and the `file` event of that reading says which it is.
        A second message whose other reading gives the primary's bytes has it dropped."""
        bad = b"MZ hidden payload of the other reading" * 20
        b64 = base64.encodebytes(bad).replace(b"\n", b"\r\n")
        raw = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: hidden\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
               b"--b\r\nContent-Type: application/octet-stream; name=\"report.pdf\"\r\n"
               b"Content-Disposition: attachment; filename=report.pdf\r\n X-Mailer: evil.exe\r\n"
               b"Content-Transfer-Encoding: xx base64\r\n\r\n" + b64 + b"--b--\r\n")
        # Two CTE fields, quoted-printable and 7bit, on a body that reads the same either way.
        same = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: same\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
                b"Content-Type: application/octet-stream; name=notes.txt\r\nContent-Transfer-Encoding: quoted-printable\r\n"
                b"Content-Transfer-Encoding: 7bit\r\n\r\njust text, the same in both readings\r\n--b--\r\n")
        conv0 = tcpgen.Conversation(client="198.51.100.1", server="192.0.2.25", cport=40000)
        conv1 = tcpgen.Conversation(client="198.51.100.2", server="192.0.2.25", cport=40001)
        frames = (tcpgen.smtp_session(conv0, [("a@example.org", ["b@example.net"], raw)]).frames +
                  tcpgen.smtp_session(conv1, [("a@example.org", ["b@example.net"], same)]).frames)
        c = self.cloud()
        c.set_disposition(sha(bad), "malicious", threat_name="Win.Test.Hidden")
        ev = self.replay(frames, config(c))
        files = self.files(ev, 0)
        # The primary reading, the base64 one, and the raw body with LF line ends (raw_lf).
        self.assertEqual([f.get("reading") for f in files], [None, "cte_base64", "raw_lf"], files)
        primary, other, lf = files
        self.assertEqual(lf["size"], primary["size"] - b64.count(b"\r\n") + 1)  # the CRLF before "--b--" is the delimiter's
        self.assertNotIn("reading", primary)
        self.assertEqual(primary["encoding"], "unknown")
        self.assertEqual(primary["reputation"], "unknown")
        self.assertEqual(other["reading"], "cte_base64")
        self.assertEqual((other["sha256"], other["size"], other["encoding"]), (sha(bad), len(bad), "base64"))
        self.assertEqual((other["reputation"], other["threat_name"]), ("malicious", "Win.Test.Hidden"))
        self.assertEqual(other["mime_path"], primary["mime_path"])
        # The name: a fold ends it; the reading across the fold is among the candidates.
        self.assertEqual(primary["filename"], "report.pdf")
        self.assertEqual(primary["filenames"], ["report.pdf", "report.pdf X-Mailer: evil.exe"])
        v = self.verdicts(ev)
        self.assertEqual((v[0]["disposition"], v[0]["action"]), ("malicious", "reject"))
        self.assertEqual([(x["filename"], x["sha256"]) for x in v[0]["files"]], [("report.pdf", sha(bad))])
        # The second message: one file (its other reading was the same bytes), clean.
        self.assertEqual([f.get("reading") for f in self.files(ev, 1)], [None])
        self.assertEqual(v[1]["disposition"], "clean")
        handoff = ev.stats["lcores"][0]["handoff"]
        self.assertEqual((handoff["readings"], handoff["readings_same"]), (2, 1))

    def test_the_other_reading_of_a_top_level_header_is_looked_up_and_decides(self):
        """Issue 17: two Content-Type fields at the top (mime-is-broken "ct:text,ct:multi"): the
        primary reading takes the first (text/plain: no attachment), the header_lenient parse the
        last (GMime's reading), which finds the attachment; the cloud knows it as malicious, so the
        message is. The attachment of that parse is reported once, as header_lenient."""
        bad = b"MZ payload behind the second Content-Type" * 20
        b64 = base64.encodebytes(bad).replace(b"\n", b"\r\n")
        raw = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: two types\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: text/plain\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
               b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
               b"--b\r\nContent-Type: application/octet-stream; name=\"invoice.exe\"\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + b"--b--\r\n")
        conv = tcpgen.Conversation(client="198.51.100.3", server="192.0.2.25", cport=40002)
        frames = tcpgen.smtp_session(conv, [("a@example.org", ["b@example.net"], raw)]).frames
        c = self.cloud()
        c.set_disposition(sha(bad), "malicious", threat_name="Win.Test.SecondType")
        ev = self.replay(frames, config(c))
        files = self.files(ev, 2)
        self.assertEqual([f.get("reading") for f in files], ["header_lenient"], files)
        f = files[0]
        self.assertEqual((f["sha256"], f["size"], f["filename"], f["mime_path"]), (sha(bad), len(bad), "invoice.exe", "2"))
        self.assertEqual((f["reputation"], f["threat_name"]), ("malicious", "Win.Test.SecondType"))
        v = self.verdicts(ev)
        self.assertEqual((v[2]["disposition"], v[2]["action"]), ("malicious", "reject"))
        self.assertEqual(ev.stats["lcores"][0]["handoff"]["readings"], 1)

    def test_two_appliances_share_one_cloud(self):
        payload = b"spreading payload" * 30
        c = self.cloud()
        frames = frames_of([(0, [("new.doc", payload)])])
        first = self.replay(frames, config(c), name="first")
        self.assertEqual(self.files(first, 0)[0]["reputation"], "unknown")
        # Threat intelligence arrives between the two; the second appliance (no shared cache) sees it.
        c.set_disposition(sha(payload), "malicious", threat_name="Doc.Test.Spread")
        second = self.replay(frames, config(c), name="second")
        self.assertEqual(self.files(second, 0)[0]["reputation"], "malicious")
        self.assertEqual(self.verdicts(second)[0]["disposition"], "malicious")

    def test_the_cache_persists_across_runs_and_expires(self):
        payload = b"cached payload" * 30
        c = self.cloud()
        c.set_disposition(sha(payload), "malicious", threat_name="Test.Cached")
        state = os.path.join(self.tmp, "state")
        frames = frames_of([(0, [("a.bin", payload)])])
        cfg = config(c, f"state: {{dir: {state}}}\n")
        first = self.replay(frames, cfg, name="first")
        self.assertEqual(self.files(first, 0)[0]["verdict_source"], "lab")
        self.assertTrue(os.path.exists(os.path.join(state, "verdict-cache.sqlite")))
        c.stop()  # the cache alone must answer
        second = self.replay(frames, cfg, name="second")
        f = self.files(second, 0)[0]
        self.assertEqual((f["reputation"], f["verdict_source"], f["threat_name"]), ("malicious", "cache", "Test.Cached"))
        self.assertEqual(second.stats["reputation"]["requests"], 0)
        self.assertIn("1 loaded from", second.result.stdout)
        # With a TTL of 1 s the entry is gone after 2 s: the next run must ask (and, the cloud
        # being stopped, fails service_unavailable).
        cfg_ttl = config(c, f"state: {{dir: {state}}}\n", "")
        cfg_ttl = cfg_ttl.replace("reputation:\n", "reputation:\n  cache: {ttl_malicious_s: 1}\n")
        c.start()
        self.replay(frames, cfg_ttl, name="short")
        c.stop()
        import time
        time.sleep(2.2)
        third = self.replay(frames, cfg_ttl, name="third")
        self.assertEqual(self.files(third, 0)[0]["lookup_error"], "service_unavailable")

    def test_a_corrupt_cache_file_is_refused_and_set_aside(self):
        c = self.cloud()
        state = os.path.join(self.tmp, "state")
        os.makedirs(state)
        path = os.path.join(state, "verdict-cache.sqlite")
        with open(path, "wb") as f:
            f.write(os.urandom(4096))
        ev = self.replay(frames_of([(0, [("a.bin", b"x" * 100)])]), config(c, f"state: {{dir: {state}}}\n"))
        self.assertIn("is not a valid cache", ev.result.stderr)
        alerts = [a["alert"] for a in ev.of("alert")]
        self.assertIn("cache_corrupt", [a["type"] for a in alerts])
        self.assertTrue(os.path.exists(path + ".corrupt"))
        self.assertEqual(self.files(ev, 0)[0]["reputation"], "unknown")  # looked up as usual
        self.assertTrue(os.path.exists(path), "a valid cache is written at exit")

    # ---- faults of the real service ----

    def fault_run(self, c, expect, action="pass", extra="", endpoint_extra="", **fault):
        if fault:
            c.faults(**fault)
        payload = os.urandom(200)
        frames = frames_of([(0, [("f.bin", payload)])])
        knobs = "  budget_ms: 1500\n"
        ev = self.replay(frames, config(c, extra, ", request_timeout_ms: 300, connect_timeout_ms: 300, retries: 1,"
                                                   " retry_backoff_ms: 10" + endpoint_extra).replace(
            "reputation:\n", "reputation:\n" + knobs), name="fault")
        self.assertEqual(ev.result.returncode, 0)
        f = self.files(ev, 0)[0]
        self.assertNotIn("reputation", f)
        self.assertEqual(f["lookup_error"], expect)
        v = self.verdicts(ev)[0]
        self.assertEqual((v["disposition"], v["reasons"], v["action"]), ("unscannable", [expect], action))
        return ev

    def test_fault_stopped_service(self):
        c = self.cloud()
        c.stop()
        self.fault_run(c, "service_unavailable", "defer", "actions:\n  lookup_error: {service_unavailable: defer}\n")

    def test_fault_slow_past_the_timeout(self):
        self.fault_run(self.cloud(), "service_unavailable", delay_ms=1000)

    def test_fault_slow_past_the_budget(self):
        c = self.cloud()
        c.faults(delay_ms=3000)
        payload = os.urandom(200)
        ev = self.replay(frames_of([(0, [("f.bin", payload)])]),
                         config(c, "", ", request_timeout_ms: 10000").replace("reputation:\n", "reputation:\n  budget_ms: 500\n"),
                         name="budget")
        self.assertEqual(self.files(ev, 0)[0]["lookup_error"], "budget_exhausted")

    def test_fault_5xx(self):
        self.fault_run(self.cloud(), "service_unavailable", status=503)

    def test_fault_429(self):
        # sluice-cloud's own quota: one request a minute per key, spent before the replay.
        c = self.cloud(quota_per_minute=1)
        c.lookup([sha(b"spend the quota")])
        self.fault_run(c, "rate_limited", "reject", "actions:\n  lookup_error: {rate_limited: reject}\n")

    def test_fault_connection_closed_mid_answer(self):
        self.fault_run(self.cloud(), "service_unavailable", close="mid_answer")

    def test_fault_malformed_json(self):
        self.fault_run(self.cloud(), "service_unavailable", malformed=True)

    def test_fault_oversized_json(self):
        self.fault_run(self.cloud(), "service_unavailable", oversized_mb=8)

    def test_fault_untrusted_certificate(self):
        c = self.cloud(tls=True)
        # No ca_file: the system's CAs do not know it. One failure opens the circuit: the alert says why.
        ev = self.fault_run(c, "service_unavailable", endpoint_extra=", breaker_failures: 1")
        self.assertIn("certificate verify failed", ev.result.stderr)
        alerts = [a["alert"] for a in ev.of("alert")]
        self.assertEqual([(a["type"], a["endpoint"], a["severity"]) for a in alerts],
                         [("endpoint_unreachable", "lab", "critical")])
        self.assertIn("certificate", alerts[0]["message"])

    def test_tls_with_the_ca_file_and_the_right_pin_works_and_a_wrong_pin_fails(self):
        c = self.cloud(tls=True)
        spki = subprocess.run(f"openssl x509 -in {c.ca_file} -pubkey -noout | openssl pkey -pubin -outform der | "
                              "openssl dgst -sha256 -binary | base64", shell=True, check=True, capture_output=True,
                              text=True).stdout.strip()
        payload = os.urandom(100)
        c.set_disposition(sha(payload), "malicious")
        frames = frames_of([(0, [("f.bin", payload)])])
        good = self.replay(frames, config(c, "", f", ca_file: {c.ca_file}, pin_sha256: '{spki}'"), name="good")
        self.assertEqual(self.files(good, 0)[0]["reputation"], "malicious")
        wrong = base64.b64encode(b"\0" * 32).decode()
        self.fault_run(c, "service_unavailable", endpoint_extra=f", ca_file: {c.ca_file}, pin_sha256: '{wrong}'")


    def test_a_fast_replay_waits_for_slow_answers(self):
        c = self.cloud()
        c.faults(delay_ms=30)  # every batch takes 30 ms; the capture holds 300 messages
        frames = frames_of([(i, [(f"f{i}.bin", os.urandom(100))]) for i in range(300)])
        ev = self.replay(frames, config(c, "workers: {max_pending_messages: 8}\n").replace(
            "reputation:\n", "reputation:\n  batch_wait_ms: 1\n"), name="slow", timeout=300)
        files = ev.of("file")
        self.assertEqual(len(files), 300)
        self.assertEqual([f for f in files if f["file"].get("unscannable") or f["file"].get("lookup_error")], [])
        self.assertEqual({f["file"]["reputation"] for f in files}, {"unknown"})
        self.assertEqual(len(ev.of("verdict")), 300)
        self.assertEqual(ev.stats["lcores"][0]["handoff"]["overload"], 0)

    # ---- VirusTotal (a test double serving the real API's response shapes) and fail-over ----

    def vt_double(self):
        proc = subprocess.Popen(["/usr/bin/python3", os.path.join(sluiced.REPO, "tests", "lib", "vt_double.py"),
                                 "--listen", "127.0.0.1:0", "--api-key", "vt-key"], stdout=subprocess.PIPE, text=True)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.terminate)
        line = proc.stdout.readline().strip()
        self.assertTrue(line.startswith("vt-double: listening on "), line)
        return line.split()[-1]

    def vt_put(self, url, path, body):
        import urllib.request
        rq = urllib.request.Request(url + path, json.dumps(body).encode(), method="PUT")
        urllib.request.urlopen(rq).read()

    def test_virustotal_as_a_fail_over_endpoint(self):
        vt = self.vt_double()
        known, clean, unseen = b"vt knows this one" * 10, b"vt says harmless" * 10, b"vt never saw it" * 10
        self.vt_put(vt, "/_double/files/" + sha(known), {"malicious": 12, "undetected": 50, "label": "trojan.test/vt"})
        self.vt_put(vt, "/_double/files/" + sha(clean), {"malicious": 1, "harmless": 3, "undetected": 60})
        c = self.cloud()
        c.stop()  # the first endpoint is down: every look-up fails over to VirusTotal
        cfg = (f"reputation:\n  endpoints:\n"
               f"    - {{name: lab, kind: sluice, url: '{c.url}', api_key: test-key, retries: 0}}\n"
               f"    - {{name: vt, kind: virustotal, url: '{vt}', api_key: vt-key, vt_malicious_threshold: 3}}\n")
        ev = self.replay(frames_of([(0, [("k.exe", known)]), (1, [("c.txt", clean)]), (2, [("u.bin", unseen)])]), cfg)
        f0, f1, f2 = (self.files(ev, i)[0] for i in range(3))
        self.assertEqual((f0["reputation"], f0["threat_name"], f0["verdict_source"], f0["upload_wanted"]),
                         ("malicious", "trojan.test/vt", "vt", False))
        self.assertEqual((f1["reputation"], f1["verdict_source"]), ("clean", "vt"))  # 1 engine: under the threshold
        self.assertEqual((f2["reputation"], f2["upload_wanted"]), ("unknown", False))  # 404: never uploads
        self.assertEqual(self.verdicts(ev)[0]["disposition"], "malicious")
        # VirusTotal's quota answer: rate_limited when every endpoint tried said 429; with the first
        # endpoint down as well, the look-up failed for more than the quota: service_unavailable.
        self.vt_put(vt, "/_double/mode", {"mode": "quota"})
        ev = self.replay(frames_of([(0, [("q.bin", os.urandom(64))])]), cfg, name="quota_mixed")
        self.assertEqual(self.files(ev, 0)[0]["lookup_error"], "service_unavailable")
        vt_only = f"reputation:\n  endpoints:\n    - {{name: vt, kind: virustotal, url: '{vt}', api_key: vt-key}}\n"
        ev = self.replay(frames_of([(0, [("q.bin", os.urandom(64))])]), vt_only, name="quota")
        self.assertEqual(self.files(ev, 0)[0]["lookup_error"], "rate_limited")


if __name__ == "__main__":
    unittest.main(verbosity=2)
