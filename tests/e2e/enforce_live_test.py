"""End to end, inline enforcement with real mail software (issue 13): a real Postfix (delivering to
a Maildir this test reads) in one network namespace, swaks and Python's smtplib as clients in
another, joined only through sluiced inline on two net_af_packet ports, with sluice-cloud on
loopback as the reputation and analysis service.

- a clean message is delivered, byte for byte;
- a malicious one (a harmless file the cloud's admin API marks malicious): the client sees the
  550 with the reference of the `verdict` event, Postfix's log and Maildir show it never accepted
  the message, and sluiced answers the client's QUIT;
- an unknown document goes to analysis: the client sees 451; once the analysis completes, a retry
  is judged by the verdict cache: rejected when the analysis convicted it, delivered when not;
- one session with two messages, the first clean (delivered) and the second malicious (550);
- BDAT (CHUNKING, which Postfix offers): a clean message delivered, a malicious one rejected;
- two BDAT transactions pipelined into one segment (RFC 2920), one clean and one malicious, in
  either order: the segment is refused whole, Postfix sees neither, both verdicts say rejected.
"""
import base64
import email.policy
import hashlib
import os
import re
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest
from email.message import EmailMessage

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cloud  # noqa: E402
import netns  # noqa: E402
import postfix  # noqa: E402
import sluiced  # noqa: E402
from daemon import read_events, wait_for  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "data", "preclass")
MALICIOUS = b"harmless bytes the cloud calls malicious\n" * 40
TINY_MALICIOUS = b"a few harmless bytes the cloud calls malicious\n"


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def build(subject, attachments):
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["To"], msg["Subject"] = "alice@example.org", "bob@example.net", subject
    msg["Message-ID"] = "<%s@example.org>" % hashlib.sha1(subject.encode()).hexdigest()
    msg.set_content("See the attachment.\n")
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def small(subject, name, data):
    """A minimal MIME message with one base64 attachment (small enough for two in one segment)."""
    return (b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: " + subject.encode() +
            b"\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            b"Content-Disposition: attachment; filename=" + name.encode() +
            b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(data) + b"\r\n--b--\r\n")


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces (scripts/setup installs Postfix)")
class EnforceLive(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        os.chmod(d, 0o755)  # Postfix (user postfix, nobody) works below it
        cls.cloud = cloud.Cloud(analysis_seconds=1)
        cls.cloud.set_disposition(hashlib.sha256(MALICIOUS).hexdigest(), "malicious", threat_name="Test.Live")
        cls.cloud.set_disposition(hashlib.sha256(TINY_MALICIOUS).hexdigest(), "malicious", threat_name="Test.Tiny")
        cls.lab = netns.BumpInTheWire()
        pf_dir = os.path.join(d, "postfix")
        os.mkdir(pf_dir)
        cls.postfix = postfix.Postfix(pf_dir, cls.lab.SERVER_IP, netns=cls.lab.ns_server)
        cls.daemon = None
        try:
            cls.postfix.start()
            cls.events = os.path.join(d, "events.json")
            cfg = os.path.join(d, "sluiced.yaml")
            with open(cfg, "w") as f:
                f.write(cls.lab.sluiced_yaml(cls.events, f"""state: {{dir: {os.path.join(d, "state")}}}
reputation:
  endpoints:
    - {{name: lab, kind: sluice, url: '{cls.cloud.url}', api_key: test-key}}
analysis:
  endpoints:
    - {{name: sandbox, kind: sluice, url: '{cls.cloud.url}', api_key: test-key}}
  poll_interval_s: 1
"""))
            cls.daemon = cls.lab.start_sluiced(sluiced.SLUICED, cfg)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        netns.stop(cls.daemon, timeout=30)
        cls.postfix.stop()
        cls.lab.close()
        cls.cloud.close()
        cls.tmp.cleanup()

    # -- helpers --

    def swaks(self, raw, extra=()):
        path = os.path.join(self.tmp.name, "out.eml")
        with open(path, "wb") as f:
            f.write(raw)
        return self.lab.netns(self.lab.ns_client, "swaks", "--server", self.lab.SERVER_IP, "--port", "25",
                              "--from", "alice@example.org", "--to", "bob@example.net", "--helo",
                              "client.example.org", "--data", path, "--timeout", "40", *extra, check=False)

    def verdicts(self, message_id=None):
        return [e for e in read_events(self.events) if e["event_type"] == "verdict"]

    def verdict_for(self, raw, final=False, timeout=20):
        """The verdict event of the message whose bytes (as swaks sent them: the content plus the
        CRLF swaks adds) hash to what sluiced saw."""
        found = []

        def seen():
            found[:] = [e["verdict"] for e in read_events(self.events) if e["event_type"] == "verdict"
                        and e["verdict"].get("message_sha256") in (hashlib.sha256(raw).hexdigest(),
                                                                    hashlib.sha256(raw + b"\r\n").hexdigest())
                        and bool(e["verdict"].get("final")) == final]
            return found
        self.assertTrue(wait_for(seen, timeout=timeout), "no verdict event for the message")
        return found[-1]

    def delivered_with(self, subject):
        return [m for m in self.postfix.delivered() if ("Subject: " + subject + "\n").encode() in m]

    def assert_delivered(self, raw, subject):
        got = None
        for _ in range(100):
            got = self.delivered_with(subject)
            if got:
                break
            time.sleep(0.1)
        self.assertEqual(len(got), 1, self.postfix.log_text()[-3000:])
        # Postfix prepends its trace headers and stores lines with LF endings; the rest is exactly
        # what the client sent.
        self.assertTrue(got[0].endswith(raw.replace(b"\r\n", b"\n")), got[0][-400:])

    def assert_never_accepted(self, subject):
        time.sleep(0.5)  # what Postfix would have delivered by now
        self.assertEqual(self.delivered_with(subject), [])
        self.assertNotIn(subject, self.postfix.log_text())

    def client_socket(self):
        return self.lab.client_connect(25, timeout=40)

    # -- tests --

    def test_1_clean_message_is_delivered_byte_for_byte(self):
        raw = build("clean one", [("notes.bin", os.urandom(50_000))])
        r = self.swaks(raw)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"<-  250 2\.0\.0 Ok: queued as")
        self.assert_delivered(raw + b"\r\n", "clean one")
        v = self.verdict_for(raw)
        self.assertEqual((v["disposition"], v["action"], v["enforcement"]), ("clean", "pass", "released"))

    def test_2_malicious_message_is_rejected_and_never_accepted(self):
        raw = build("bad one", [("invoice.pdf", MALICIOUS)])
        before = self.postfix.log_text().count("status=sent")
        r = self.swaks(raw)
        self.assertNotEqual(r.returncode, 0)
        m = re.search(r"<\*\* 550 5\.7\.1 Message rejected: malicious content \(reference (\S+)\)", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        # swaks says QUIT after the error; sluiced answered it (Postfix had been reset).
        self.assertRegex(r.stdout, r"<-  221 2\.0\.0 Bye")
        v = self.verdict_for(raw)
        self.assertEqual((v["disposition"], v["action"], v["enforcement"]), ("malicious", "reject", "rejected"))
        self.assertEqual(v["reference"], m.group(1))
        self.assert_never_accepted("bad one")
        log = self.postfix.log_text()
        self.assertEqual(log.count("status=sent"), before)
        self.assertRegex(log, r"(lost connection|reset by peer|Connection reset).* after DATA")
        smtp = [e["smtp"] for e in read_events(self.events) if e["event_type"] == "smtp"
                and e["smtp"].get("subject") == "bad one"]
        self.assertEqual(smtp[0]["server_reply"], 550)

    def test_3_file_in_analysis_is_deferred_then_judged_on_retry(self):
        # sluice-cloud's engine scores a PE object inside a document 80 (malicious at the default
        # threshold of 70) and an auto-run macro 50 (clean).
        for subject, name, data, convicted in (("in analysis pe", "invoice.docx", fixture("pe_object.docx"), True),
                                               ("in analysis macro", "report.docm", fixture("macro.docm"), False)):
            with self.subTest(subject):
                raw = build(subject, [(name, data)])
                r = self.swaks(raw)
                self.assertNotEqual(r.returncode, 0)
                self.assertRegex(r.stdout, r"<\*\* 451 4\.7\.1 Message deferred: content under analysis, "
                                           r"try again later \(reference \S+\)")
                v = self.verdict_for(raw)
                self.assertEqual((v["disposition"], v["action"], v["enforcement"]), ("pending", "defer", "deferred"))
                self.assert_never_accepted(subject)
                final = self.verdict_for(raw, final=True, timeout=30)
                self.assertEqual(final["disposition"], "malicious" if convicted else "clean")
                # The sender retries: the verdict cache decides, nothing is analysed again.
                r = self.swaks(raw)
                if convicted:
                    self.assertRegex(r.stdout, r"<\*\* 550 5\.7\.1 Message rejected: malicious content")
                    self.assert_never_accepted(subject)
                else:
                    self.assertEqual(r.returncode, 0, r.stdout)
                    self.assert_delivered(raw + b"\r\n", subject)

    def test_4_one_session_two_messages_first_delivered_second_rejected(self):
        good = build("session good", [("a.bin", os.urandom(20_000))])
        bad = build("session bad", [("b.exe", MALICIOUS)])
        with self.client_socket() as s:
            client = smtplib.SMTP()
            client.sock, client.file = s, None
            client._host = self.lab.SERVER_IP
            code, _ = client.getreply()
            self.assertEqual(code, 220)
            client.ehlo("client.example.org")
            client.sendmail("alice@example.org", ["bob@example.net"], good)
            # The second by hand (sendmail() would send RSET after the error: sluiced answers any
            # command but QUIT with 421 and closes).
            self.assertEqual(client.mail("alice@example.org")[0], 250)
            self.assertEqual(client.rcpt("bob@example.net")[0], 250)
            code, text = client.data(bad)
            self.assertEqual(code, 550)
            self.assertIn(b"5.7.1 Message rejected: malicious content", text)
            code, text = client.docmd("QUIT")
            self.assertEqual((code, text), (221, b"2.0.0 Bye"))
        self.assert_delivered(good, "session good")
        self.assert_never_accepted("session bad")

    def bdat(self, raw):
        """One message sent with BDAT (RFC 3030) in two chunks; returns the final reply line."""
        with self.client_socket() as s:
            f = s.makefile("rb")

            def reply():
                return netns.smtp_reply(f)
            self.assertTrue(reply().startswith(b"220"))
            s.sendall(b"EHLO client.example.org\r\n")
            self.assertIn(b"CHUNKING", reply())
            s.sendall(b"MAIL FROM:<alice@example.org>\r\n")
            self.assertTrue(reply().startswith(b"250"))
            s.sendall(b"RCPT TO:<bob@example.net>\r\n")
            self.assertTrue(reply().startswith(b"250"))
            half = len(raw) // 2
            s.sendall(b"BDAT %d\r\n" % half + raw[:half])
            self.assertTrue(reply().startswith(b"250"))
            s.sendall(b"BDAT %d LAST\r\n" % (len(raw) - half) + raw[half:])
            final = reply()
            s.sendall(b"QUIT\r\n")
            bye = reply()
            return final, bye

    def test_5_bdat_clean_delivered_and_malicious_rejected(self):
        good = build("bdat good", [("c.bin", os.urandom(30_000))])
        final, bye = self.bdat(good)
        self.assertTrue(final.startswith(b"250 2.0.0 Ok"), final)
        self.assert_delivered(good, "bdat good")
        bad = build("bdat bad", [("d.bin", MALICIOUS)])
        final, bye = self.bdat(bad)
        self.assertTrue(final.startswith(b"550 5.7.1 Message rejected: malicious content"), final)
        self.assertEqual(bye, b"221 2.0.0 Bye\r\n")
        self.assert_never_accepted("bdat bad")

    def test_6_two_messages_pipelined_into_one_segment_are_refused_together(self):
        for order in ("good first", "bad first"):
            with self.subTest(order):
                good = small("piped good " + order, "ok.txt", b"fine\n")
                bad = small("piped bad " + order, "x.bin", TINY_MALICIOUS)
                first, second = (good, bad) if order == "good first" else (bad, good)
                batch = b"".join(b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\n"
                                 b"BDAT %d LAST\r\n" % len(m) + m for m in (first, second))
                self.assertLess(len(batch), 1400)  # one segment on the lab's 1500-byte links
                with self.client_socket() as s:
                    f = s.makefile("rb")

                    def reply():
                        return netns.smtp_reply(f)
                    self.assertTrue(reply().startswith(b"220"))
                    s.sendall(b"EHLO client.example.org\r\n")
                    caps = reply()
                    self.assertIn(b"PIPELINING", caps)
                    self.assertIn(b"CHUNKING", caps)
                    s.sendall(batch)  # both transactions without waiting
                    r = reply()
                    m = re.match(rb"550 5\.7\.1 Message rejected: malicious content \(reference (\S+)\)", r)
                    self.assertIsNotNone(m, r)
                    s.sendall(b"QUIT\r\n")
                    self.assertEqual(reply(), b"221 2.0.0 Bye\r\n")
                vg, vb = self.verdict_for(good), self.verdict_for(bad)
                self.assertEqual((vb["action"], vb["enforcement"]), ("reject", "rejected"))
                # The clean one shared the segment: it shares the reply the client got.
                self.assertEqual((vg["action"], vg["enforcement"]), ("pass", "rejected"))
                self.assertEqual(vg["reference"], m.group(1).decode())
                self.assertEqual(vb["reference"], m.group(1).decode())
                self.assert_never_accepted("piped good " + order)
                self.assert_never_accepted("piped bad " + order)
        v = self.verdict_for(bad)
        self.assertEqual(v["enforcement"], "rejected")


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces (scripts/setup installs Postfix)")
class StartTlsPolicies(unittest.TestCase):
    """Postfix offering STARTTLS (a test certificate); sluiced started once per policy."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        os.chmod(d, 0o755)
        cert, key = cloud.make_cert(d, name="mx", hosts=("mx.example.net",))
        os.chmod(key, 0o644)
        cls.lab = netns.BumpInTheWire()
        pf_dir = os.path.join(d, "postfix")
        os.mkdir(pf_dir)
        cls.postfix = postfix.Postfix(pf_dir, cls.lab.SERVER_IP, netns=cls.lab.ns_server, tls_cert=cert, tls_key=key)
        try:
            cls.postfix.start()
        except Exception:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.postfix.stop()
        cls.lab.close()
        cls.tmp.cleanup()

    def run_policy(self, policy, swaks_args, raw):
        d = tempfile.mkdtemp(dir=self.tmp.name)
        events = os.path.join(d, "events.json")
        cfg = os.path.join(d, "sluiced.yaml")
        with open(cfg, "w") as f:
            f.write(self.lab.sluiced_yaml(events, f"enforce: {{starttls: {policy}}}\n"))
        dmn = self.lab.start_sluiced(sluiced.SLUICED, cfg)
        try:
            path = os.path.join(d, "out.eml")
            with open(path, "wb") as f:
                f.write(raw)
            r = self.lab.netns(self.lab.ns_client, "swaks", "--server", self.lab.SERVER_IP, "--port", "25",
                               "--from", "alice@example.org", "--to", "bob@example.net", "--helo",
                               "client.example.org", "--data", path, "--timeout", "30", *swaks_args, check=False)
            self.assertEqual(self.lab.wait_closed(25), [])
        finally:
            netns.stop(dmn, timeout=30)
        return r, read_events(events)

    def delivered_with(self, subject):
        return [m for m in self.postfix.wait_delivered(1, timeout=5) if ("Subject: " + subject + "\n").encode() in m]

    def test_pass_lets_tls_start_and_logs_the_session_encrypted(self):
        raw = build("tls pass", [("e.bin", MALICIOUS)])
        r, events = self.run_policy("pass", ["--tls"], raw)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("<-  220 2.0.0 Ready to start TLS", r.stdout)
        self.assertEqual(len(self.delivered_with("tls pass")), 1)
        flows = [e["flow"] for e in events if e["event_type"] == "flow"]
        self.assertEqual([f["starttls"] for f in flows], [True])
        # Encrypted: nothing of the message was inspected.
        self.assertEqual([e for e in events if e["event_type"] in ("smtp", "file", "verdict")], [])

    def test_mask_keeps_the_client_in_clear_text_and_the_message_inspected(self):
        raw = build("tls mask", [("f.bin", b"masked and inspected\n" * 30)])
        r, events = self.run_policy("mask", ["--tls-optional"], raw)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("<-  250-X-NO-TLS", r.stdout)
        self.assertNotIn("STARTTLS", r.stdout.split("<-  250-X-NO-TLS")[1].split("MAIL FROM")[0])
        self.assertEqual(len(self.delivered_with("tls mask")), 1)
        anomalies = [e["anomaly"]["type"] for e in events if e["event_type"] == "anomaly"]
        self.assertEqual(anomalies, ["starttls_masked"])
        files = [e["file"] for e in events if e["event_type"] == "file"]
        self.assertEqual([(f["filename"], f["sha256"]) for f in files],
                         [("f.bin", hashlib.sha256(b"masked and inspected\n" * 30).hexdigest())])
        flows = [e["flow"] for e in events if e["event_type"] == "flow"]
        self.assertEqual([f["starttls"] for f in flows], [False])

    def test_block_refuses_starttls_and_the_message_never_goes_encrypted(self):
        raw = build("tls block", [("g.bin", b"x" * 100)])
        r, events = self.run_policy("block", ["--tls"], raw)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("<** 454 4.7.0 TLS not available due to local policy", r.stdout)
        time.sleep(0.5)
        self.assertEqual(self.delivered_with("tls block"), [])
        self.assertNotIn("tls block", self.postfix.log_text())
        self.assertNotIn("STARTTLS", self.postfix.log_text().split("starting the Postfix")[-1].split("tls block")[0]
                         .replace("starttls=", ""))
        anomalies = [e["anomaly"]["type"] for e in events if e["event_type"] == "anomaly"]
        self.assertIn("starttls_blocked", anomalies)
        stats = [e["stats"] for e in events if e["event_type"] == "stats"][-1]
        self.assertEqual(stats["lcores"][0]["enforce"]["starttls_blocked"], 1)


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces")
class Watchdog(unittest.TestCase):
    """A worker lcore stalled while a message is held (the debug key workers.debug_stall_ms): the
    fail-open watchdog lets the message through long before the stall or the hold deadline ends,
    counts it and raises the alert; aiosmtpd is the server here."""

    def test_a_stuck_worker_fails_open(self):
        with tempfile.TemporaryDirectory() as d:
            lab = netns.BumpInTheWire()
            mail = os.path.join(d, "mail")
            os.mkdir(mail)
            sink = lab.popen(lab.ns_server, ["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "smtp_sink.py"),
                                             "--listen", lab.SERVER_IP, "--dir", mail],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            dmn = None
            try:
                self.assertEqual(sink.stdout.readline().strip(), "ready")
                events = os.path.join(d, "events.json")
                cfg = os.path.join(d, "sluiced.yaml")
                with open(cfg, "w") as f:
                    f.write(lab.sluiced_yaml(events, "workers: {debug_stall_ms: 15000}\nenforce: {watchdog_ms: 1000}\n",
                                             lcores="{main: 0, rx: [1], workers: [2]}"))
                dmn = lab.start_sluiced(sluiced.SLUICED, cfg)
                raw = build("stuck worker", [("s.bin", os.urandom(20_000))])
                path = os.path.join(d, "m.eml")
                with open(path, "wb") as f:
                    f.write(raw)
                t0 = time.monotonic()
                r = lab.netns(lab.ns_client, "swaks", "--server", lab.SERVER_IP, "--from", "alice@example.org",
                              "--to", "bob@example.net", "--data", path, "--timeout", "60", check=False)
                elapsed = time.monotonic() - t0
                self.assertEqual(r.returncode, 0, r.stdout)
                self.assertIn("250 2.0.0 Ok: stored", r.stdout)
                # Released by the watchdog (1 s), not by the end of the stall (15 s) or the hold
                # deadline (60 s).
                self.assertLess(elapsed, 8, r.stdout)
                self.assertTrue(wait_for(lambda: any(e["event_type"] == "alert" and e["alert"]["type"] ==
                                                     "enforcement_fail_open" for e in read_events(events)),
                                         timeout=5),
                                [(e["event_type"], e.get("alert", {}).get("type"),
                                  [l.get("enforce") for l in e["stats"]["lcores"]] if "stats" in e else None)
                                 for e in read_events(events)])
                alert = [e["alert"] for e in read_events(events) if e["event_type"] == "alert"
                         and e["alert"]["type"] == "enforcement_fail_open"][0]
                self.assertEqual(alert["severity"], "critical")
            finally:
                netns.stop(dmn, timeout=60)
                netns.stop(sink, timeout=10)
                lab.close()
            stats = [e["stats"] for e in read_events(events) if e["event_type"] == "stats"][-1]
            e = stats["lcores"][0]["enforce"]
            self.assertEqual((e["watchdog_trips"], e["watchdog_released"]), (1, 1))
            # Once the worker answered again, the message's verdict came (late: nothing held).
            v = [x["verdict"] for x in read_events(events) if x["event_type"] == "verdict"]
            self.assertEqual([x["enforcement"] for x in v], ["not_held"])


if __name__ == "__main__":
    unittest.main(verbosity=2)


