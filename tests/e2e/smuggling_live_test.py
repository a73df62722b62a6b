"""End to end, SMTP smuggling (issue 13): the known end-of-data variants that let a second message
hide inside the first (`<LF>.<LF>`, `<CR><LF>.<LF>`, `<LF>.<CR><LF>`, `<CR>.<CR>`), sent by a raw
client through sluiced inline to a real Postfix (port 25) and a real aiosmtpd (port 2525), both in
the server namespace. With the default `actions.smuggling: reject` the client receives the 550,
neither server delivers the first message or the smuggled one, and the `verdict` event names
`smtp_smuggling`."""
import base64
import hashlib
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import netns  # noqa: E402
import postfix  # noqa: E402
import sluiced  # noqa: E402
from daemon import read_events  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {"lf_lf": b"\n.\n", "crlf_lf": b"\r\n.\n", "lf_crlf": b"\n.\r\n", "cr_cr": b"\r.\r",
            "crlf_cr": b"\r\n.\r"}


def payload(tag):
    return b"smuggled attachment " + tag.encode()


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces (scripts/setup installs Postfix)")
class SmugglingLive(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        os.chmod(d, 0o755)
        cls.lab = netns.BumpInTheWire()
        pf_dir = os.path.join(d, "postfix")
        os.mkdir(pf_dir)
        cls.postfix = postfix.Postfix(pf_dir, cls.lab.SERVER_IP, netns=cls.lab.ns_server)
        cls.sink_dir = os.path.join(d, "sink")
        os.mkdir(cls.sink_dir)
        cls.sink = cls.daemon = None
        try:
            cls.postfix.start()
            cls.sink = cls.lab.popen(cls.lab.ns_server, ["/usr/bin/python3", os.path.join(HERE, "smtp_sink.py"),
                                                         "--listen", cls.lab.SERVER_IP, "--port", "2525",
                                                         "--dir", cls.sink_dir],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if cls.sink.stdout.readline().strip() != "ready":
                raise RuntimeError("aiosmtpd did not start")
            cls.events = os.path.join(d, "events.json")
            cfg = os.path.join(d, "sluiced.yaml")
            with open(cfg, "w") as f:
                f.write(cls.lab.sluiced_yaml(cls.events))
            cls.daemon = cls.lab.start_sluiced(sluiced.SLUICED, cfg)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        netns.stop(cls.daemon, timeout=30)
        netns.stop(cls.sink, timeout=10)
        cls.postfix.stop()
        cls.lab.close()
        cls.tmp.cleanup()

    def connect(self, port):
        return self.lab.client_connect(port)

    def smuggle(self, port, name, terminator):
        """The whole DATA stream in one write, as the published attacks send it. Returns the reply
        to the end of data (b"" when the connection closed instead)."""
        with self.connect(port) as s:
            f = s.makefile("rb")

            def reply():
                return netns.smtp_reply(f)
            self.assertTrue(reply().startswith(b"220"))
            for cmd, code in ((b"EHLO client.example.org", b"250"), (b"MAIL FROM:<alice@example.org>", b"250"),
                              (b"RCPT TO:<bob@example.net>", b"250"), (b"DATA", b"354")):
                s.sendall(cmd + b"\r\n")
                self.assertTrue(reply().startswith(code), cmd)
            s.sendall(b"From: alice@example.org\r\nSubject: first " + name.encode() + b"\r\n\r\nhello" + terminator +
                      b"MAIL FROM:<ceo@example.net>\r\nRCPT TO:<bob@example.net>\r\nDATA\r\n"
                      b"From: ceo@example.net\r\nSubject: smuggled " + name.encode() + b"\r\nMIME-Version: 1.0\r\n"
                      b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\r\npay now\r\n--b\r\n"
                      b"Content-Disposition: attachment; filename=\"invoice.exe\"\r\n"
                      b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(payload(name)) +
                      b"\r\n--b--\r\n.\r\n")
            return reply()

    def delivered(self):
        out = b"".join(self.postfix.delivered())
        for n in os.listdir(self.sink_dir):
            if n.endswith(".eml"):
                with open(os.path.join(self.sink_dir, n), "rb") as fh:
                    out += fh.read()
        return out

    def test_every_variant_is_refused_before_either_server_accepts_anything(self):
        for port, server in ((25, "postfix"), (2525, "aiosmtpd")):
            for name, term in VARIANTS.items():
                with self.subTest(server=server, variant=name):
                    tag = f"{server}-{name}"
                    r = self.smuggle(port, tag, term)
                    self.assertTrue(r.startswith(b"550 5.7.1 Message rejected: an ambiguous end of data"), r)
        time.sleep(1)
        got = self.delivered()
        for port, server in ((25, "postfix"), (2525, "aiosmtpd")):
            for name in VARIANTS:
                self.assertNotIn(f"first {server}-{name}".encode(), got)
                self.assertNotIn(f"smuggled {server}-{name}".encode(), got)
        self.assertNotIn("status=sent", self.postfix.log_text())
        verdicts = [e["verdict"] for e in read_events(self.events) if e["event_type"] == "verdict"
                    and "smtp_smuggling" in e["verdict"]["reasons"]]
        # One per variant and server: the first message of each stream (the smuggled one, when the
        # stream splits at a bare LF, ended in the same segment and shares the reject, but its own
        # end of data is not ambiguous).
        self.assertEqual(len([v for v in verdicts if v.get("enforcement") == "rejected"]), 2 * len(VARIANTS))
        # Whichever way a server reads the stream, the smuggled attachment was inspected: a message
        # of its own where Sluice ends at the bare LF, the split reading where it reads on. (The
        # smuggled DATA of a bare-LF stream waited for a 354 that never came: its message ends with
        # the connection, reported at the latest when sluiced stops.)
        netns.stop(self.daemon, timeout=30)
        # (The strict one_message reading of a bare-LF stream goes on with the smuggled commands and
        # header, read from the top since the first message has no multipart to resume: its
        # header_lenient reading skips the command lines and finds the same attachment again, as
        # `one_message/header_lenient`.)
        files = {}
        for f in read_events(self.events):
            if f["event_type"] == "file":
                files.setdefault(f["file"].get("sha256"), set()).add(f["file"].get("reading", "primary"))
        for port, server in ((25, "postfix"), (2525, "aiosmtpd")):
            for name in VARIANTS:
                sha = hashlib.sha256(payload(f"{server}-{name}")).hexdigest()
                self.assertIn("split" if name.endswith("_cr") else "primary", files.get(sha, set()), (server, name))


if __name__ == "__main__":
    unittest.main(verbosity=2)
