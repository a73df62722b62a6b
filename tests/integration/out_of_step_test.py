"""Directions out of step (issue 17), end to end: a TAP or SPAN with one port per direction, or two
RX queues, can deliver the server's ACK before the client data it acknowledges. Captures generated
here (tests/lib/tcpgen.py, the server acknowledging the body as a real one does) have their frames
shuffled across directions (the client's frames arrive some frames late, each direction in its own
order: server replies and ACKs ahead of the data they acknowledge, SYN-ACKs ahead of SYNs), big
messages of several MB included. Replayed through sluiced, every message and every attachment is
rebuilt byte for byte (SHA-256), the holes counted filled; with `reassembly.ack_hole_wait_ms: 0`
(declared at once, as inline does) the same capture loses data, so the test can fail.

Run: SLUICE_BUILD=build /usr/bin/python3 tests/integration/out_of_step_test.py
"""
import email.policy
import hashlib
import os
import random
import shutil
import sys
import tempfile
import unittest
from email.message import EmailMessage

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import sluiced  # noqa: E402
import tcpgen  # noqa: E402
from tcpgen import ACK, Segment  # noqa: E402


def sha(b):
    return hashlib.sha256(b).hexdigest()


def session_frames(conv, mail_from, raw, ack_every=2):
    """One SMTP session carrying `raw`, as tcpgen.smtp_session writes it, except that the server
    acknowledges the body every `ack_every` client segments (pure ACKs), as a receiver does."""
    conv.handshake()
    conv.send("s", b"220 mx.example.net ESMTP\r\n")
    conv.send("c", b"EHLO client.example.org\r\n")
    conv.send("s", b"250-mx.example.net\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
    conv.send("c", b"MAIL FROM:<" + mail_from.encode() + b">\r\n")
    conv.send("s", b"250 2.1.0 Ok\r\n")
    conv.send("c", b"RCPT TO:<inbox@example.net>\r\n")
    conv.send("s", b"250 2.1.5 Ok\r\n")
    conv.send("c", b"DATA\r\n")
    conv.send("s", b"354 End data with <CR><LF>.<CR><LF>\r\n")
    segs = conv.data_segments("c", tcpgen.dot_stuff(raw))
    for i, g in enumerate(segs):
        conv.emit([g])
        if i % ack_every == ack_every - 1 or i == len(segs) - 1:
            conv.emit([Segment("s", conv.seq["s"], (g.seq + len(g.payload)) & 0xFFFFFFFF, ACK, b"")])
    conv.send("s", tcpgen.QUEUED)
    return tcpgen.smtp_quit(conv)


SPACING = 0.0001  # seconds between two frames of one session, as sent (a 100 Mbit/s exchange)
T0 = 1_700_000_000.0


def out_of_step(conv, lag, start):
    """The session's frames, timestamped, as a tap whose client port lags `lag` frames (lag x
    SPACING) behind its server port delivers them: each direction in its order, server frames ahead
    of the client data they acknowledge."""
    client_port = conv.cport.to_bytes(2, "big")
    out = []
    for i, f in enumerate(conv.frames):
        ip = tcpgen.split_frame(f)[2]
        from_client = ip[(ip[0] & 15) * 4:][0:2] == client_port
        out.append((start + (i + (lag if from_client else 0)) * SPACING, i, f))
    return out


class OutOfStepTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="sluice-out-of-step-")
        rng = random.Random(17)
        # (attachment KiB, client lag in frames): small and big messages, lags from two frames to
        # well past the server's own window of frames.
        plan = [(4, 2), (64, 2), (300, 3), (1024, 5), (3 * 1024, 8), (5 * 1024, 40), (200, 120), (2048, 16)]
        cls.expected = {}  # client port -> (message sha256, {filename: sha256}, mail_from)
        sessions = []
        for i, (kb, lag) in enumerate(plan):
            data = rng.randbytes(kb * 1024)
            name = f"att{i}.bin"
            m = EmailMessage(policy=email.policy.SMTP)
            m["From"], m["To"], m["Subject"] = f"s{i}@example.org", "inbox@example.net", f"out of step {i}"
            m.set_content("see attached\n")
            m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
            raw = m.as_bytes()
            port = 43000 + i
            conv = tcpgen.Conversation(client=f"198.51.100.{i + 1}", server="192.0.2.25", cport=port,
                                       isn_client=rng.randrange(2**32), isn_server=rng.randrange(2**32))
            session_frames(conv, f"s{i}@example.org", raw, ack_every=1 + i % 3)
            cls.expected[port] = (sha(raw), {name: sha(data)}, f"s{i}@example.org")
            # The sessions overlap: each starts 20 ms after the one before.
            sessions += [(t, port, i, f) for t, i, f in out_of_step(conv, lag, T0 + 0.02 * len(cls.expected))]
        cls.timed = [(t, f) for t, _, _, f in sorted(sessions)]
        cls.frames = [f for _, f in cls.timed]
        cls.ev = sluiced.replay_frames(cls.timed, cls.tmp, "out-of-step", timeout=600)
        cfg = os.path.join(cls.tmp, "at-once.yaml")
        with open(cfg, "w") as f:
            f.write("reassembly:\n  ack_hole_wait_ms: 0\n")
        cls.at_once = sluiced.replay_frames(cls.timed, cls.tmp, "at-once", args=["--config", cfg], timeout=600)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @staticmethod
    def reassembly(ev):
        """The RX lcores' reassembly counters, summed."""
        total = {}
        for lc in ev.stats["lcores"]:
            for k, v in lc.get("reassembly", {}).items():
                if isinstance(v, int) and not isinstance(v, bool):
                    total[k] = total.get(k, 0) + v
        return total

    def rebuilt(self, ev):
        """client port -> (message sha256 or None, {filename: sha256}, complete, mail_from)"""
        got = {}
        for e in ev.smtp:
            s = e["smtp"]
            got[e["src_port"]] = (s.get("message_sha256"), {}, s["status"] == "complete", s.get("mail_from"))
        for e in ev.of("file"):
            f = e["file"]
            if e["src_port"] in got and "sha256" in f and f.get("filename"):
                got[e["src_port"]][1][f["filename"]] = f["sha256"]
        return got

    def test_the_capture_is_out_of_step(self):
        # In every session, server frames acknowledge client bytes not yet delivered.
        seen, ahead = {}, {}
        for f in self.frames:
            ip = tcpgen.split_frame(f)[2]
            hl = (ip[0] & 15) * 4
            tcp = ip[hl:]
            sport, dport = int.from_bytes(tcp[0:2], "big"), int.from_bytes(tcp[2:4], "big")
            seq, ack = int.from_bytes(tcp[4:8], "big"), int.from_bytes(tcp[8:12], "big")
            flags, plen = tcp[13], len(ip) - hl - (tcp[12] >> 4) * 4
            if dport == 25:
                end = (seq + plen + (1 if flags & 0x03 else 0)) & 0xFFFFFFFF
                if sport not in seen or ((end - seen[sport]) & 0xFFFFFFFF) < 2**31:
                    seen[sport] = end
            elif flags & ACK and (dport not in seen or 0 < ((ack - seen[dport]) & 0xFFFFFFFF) < 2**31):
                ahead[dport] = ahead.get(dport, 0) + 1  # acknowledges what the client has not shown yet
        self.assertEqual(sorted(ahead), sorted(self.expected))

    def test_every_message_and_attachment_is_rebuilt_byte_for_byte(self):
        got = self.rebuilt(self.ev)
        for port, (msg_sha, files, mail_from) in self.expected.items():
            with self.subTest(port=port):
                self.assertIn(port, got)
                g_sha, g_files, complete, g_from = got[port]
                self.assertTrue(complete)
                self.assertEqual(g_from, mail_from)
                self.assertEqual(g_sha, msg_sha)
                for name, h in files.items():
                    self.assertEqual(g_files.get(name), h, name)
        self.assertEqual(len(self.ev.smtp), len(self.expected))
        self.assertEqual(sum(e["flow"]["tcp"]["toserver"]["gaps"] + e["flow"]["tcp"]["toclient"]["gaps"]
                             for e in self.ev.flow if "tcp" in e["flow"]), 0)

    def test_holes_are_counted_filled(self):
        r = self.reassembly(self.ev)
        self.assertGreater(r["acked_holes_filled"], len(self.expected))
        self.assertEqual(r["acked_holes_declared"], 0)
        self.assertEqual(r["gaps"], 0)

    def test_declared_at_once_the_same_capture_loses_data(self):
        r = self.reassembly(self.at_once)
        self.assertEqual(r["acked_holes_filled"], 0)
        self.assertGreater(r["acked_holes_declared"], 0)
        got = self.rebuilt(self.at_once)
        whole = [port for port, (msg_sha, files, _) in self.expected.items()
                 if port in got and got[port][0] == msg_sha and got[port][2]]
        self.assertLess(len(whole), len(self.expected))


if __name__ == "__main__":
    unittest.main()
