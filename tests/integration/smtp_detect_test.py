"""SMTP on any port (issue 17, `smtp.detect`): captures made by the project's generator
(tests/bench/make_smtp_pcap.py --ports ... --http N) with SMTP sessions on port 25 and on ports
outside smtp.ports (2526, 80, 8025) next to HTTP connections on port 80 whose bodies carry
SMTP-looking lines, replayed through sluiced:

- `content` (the default): every message and every attachment is rebuilt (their SHA-256 as the
  generator wrote them), the off-port sessions' smtp and flow events say "detected": "content",
  and HTTP is never taken for SMTP (no event, counted detect_not_smtp);
- `ports`: the off-port sessions are not seen at all (the old behaviour);
- sessions whose handshake and greeting the capture missed are detected from the client's EHLO.

Run: SLUICE_BUILD=build /usr/bin/python3 tests/integration/smtp_detect_test.py"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import pcapfile  # noqa: E402
import sluiced  # noqa: E402
import tcpgen  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GENERATOR = os.path.join(HERE, "..", "bench", "make_smtp_pcap.py")
PORTS = [25, 2526, 80, 8025]
SESSIONS, HTTP, KB = 24, 12, 6


def replay(pcap, workdir, name, config=None):
    ev = os.path.join(workdir, name + ".events.json")
    args = ["--replay", pcap, "--events", ev]
    if config is not None:
        cfg = os.path.join(workdir, name + ".yaml")
        with open(cfg, "w") as f:
            f.write(config)
        args += ["--config", cfg]
    r = sluiced.run(args, timeout=300)
    if r.returncode != 0:
        raise AssertionError("sluiced exited %d:\n%s" % (r.returncode, r.stderr[-4000:]))
    return sluiced.Events(sluiced.events(ev), r)


class SmtpOnAnyPort(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sluice-detect-")
        cls.pcap = os.path.join(cls.tmp.name, "mixed.pcap")
        manifest = os.path.join(cls.tmp.name, "manifest.json")
        subprocess.run([sys.executable, GENERATOR, "--ports", ",".join(map(str, PORTS)), "--http", str(HTTP),
                        "--manifest", manifest, cls.pcap, str(SESSIONS), str(KB), "8"], check=True)
        with open(manifest) as f:
            entries = [json.loads(line) for line in f]
        cls.sessions = [e for e in entries if e["kind"] == "smtp"]
        cls.http = [e for e in entries if e["kind"] == "http"]
        assert len(cls.sessions) == SESSIONS and len(cls.http) == HTTP
        cls.content = replay(cls.pcap, cls.tmp.name, "content")  # the default
        cls.ports = replay(cls.pcap, cls.tmp.name, "ports", "smtp:\n  detect: ports\n")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_sessions(self, ev, expected):
        smtp = {(e["src_ip"], e["src_port"]): e for e in ev.smtp}
        flows = {(e["src_ip"], e["src_port"]): e for e in ev.flow}
        files = {}
        for e in ev.of("file"):
            files.setdefault((e["src_ip"], e["src_port"]), []).append(e["file"])
        self.assertEqual(sorted(smtp), sorted((s["client"], s["cport"]) for s in expected))
        for s in expected:
            key = (s["client"], s["cport"])
            m = smtp[key]
            self.assertEqual(m["dest_port"], s["sport"])
            self.assertEqual(m["smtp"]["status"], "complete", m)
            self.assertEqual(m["smtp"]["message_sha256"], s["message_sha256"])
            self.assertEqual([f.get("sha256") for f in files.get(key, [])], [s["attachment_sha256"]], key)
            off_port = s["sport"] != 25
            self.assertEqual(m["smtp"].get("detected"), "content" if off_port else None, m)
            f = flows[key]["flow"]
            self.assertEqual(f.get("detected"), "content" if off_port else None, f)
            self.assertEqual(flows[key]["app_proto"], "smtp")
            self.assertTrue(f["inspected"])
            self.assertEqual(f["messages"], 1)
            for d in ("toserver", "toclient"):
                self.assertEqual(f["tcp"][d]["gaps"], 0, f)
                self.assertEqual(f["tcp"][d]["retransmitted_bytes"], 0, f)

    def test_content_rebuilds_every_message_and_attachment(self):
        self.check_sessions(self.content, self.sessions)

    def test_content_never_takes_http_for_smtp(self):
        http_clients = {h["client"] for h in self.http}
        for e in self.content.all:
            self.assertNotIn(e.get("src_ip"), http_clients, e)
            self.assertNotIn(e.get("dest_ip"), http_clients, e)
        r = self.content.stats["lcores"][0]["reassembly"]
        off_port = sum(1 for s in self.sessions if s["sport"] != 25)
        self.assertEqual(r["detect_probed"], off_port + HTTP, r)
        self.assertEqual(r["detect_smtp"], off_port, r)
        self.assertEqual(r["detect_not_smtp"], HTTP, r)
        self.assertEqual(r["detect_undecided"], 0, r)
        self.assertEqual(r["detect_evicted"], 0, r)
        self.assertEqual(r["sessions_pool_full"], 0, r)

    def test_ports_sees_only_the_smtp_port(self):
        self.check_sessions(self.ports, [s for s in self.sessions if s["sport"] == 25])
        self.assertFalse([e for e in self.ports.all if e.get("dest_port") in (2526, 8025)])
        r = self.ports.stats["lcores"][0]["reassembly"]
        self.assertEqual(r["detect_probed"], 0, r)
        self.assertEqual(r["detect_smtp"], 0, r)

    def test_ehlo_when_the_capture_missed_the_start(self):
        # Two sessions on port 2526 whose handshake and greeting the capture does not hold (the
        # first frame is the client's EHLO, the second the server's reply); one more on port 25
        # for comparison. The off-port ones are found by the EHLO, each message whole.
        raw = (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: picked up\r\n\r\n"
               + b"line of text\r\n" * 40)
        frames = []
        for i, port in enumerate((2526, 2526, 25)):
            conv = tcpgen.Conversation(client="198.51.100.%d" % (10 + i), server="192.0.2.25", cport=45000 + i,
                                       sport=port)
            tcpgen.smtp_session(conv, [("a@example.org", ["b@example.net"], raw)])
            frames += conv.frames[4:]  # SYN, SYN-ACK, ACK and the greeting left out
        ev = sluiced.replay_frames([(1_700_000_000 + i * 0.001, f) for i, f in enumerate(frames)], self.tmp.name,
                                   "midstream")
        self.assertEqual(len(ev.smtp), 3, ev.all)
        for m in ev.smtp:
            self.assertEqual(m["smtp"]["message_sha256"], hashlib.sha256(raw).hexdigest(), m)
            self.assertEqual(m["smtp"]["helo"], "client.example.org")
            self.assertEqual(m["smtp"].get("detected"), "content" if m["dest_port"] == 2526 else None, m)
            self.assertTrue(m["src_ip"].startswith("198.51.100."), m)


if __name__ == "__main__":
    unittest.main()
