"""Hostile traffic through sluiced (issue 10), each test asserting the outcome, not only survival:
after the flood, the real mail is inspected whole."""
import hashlib
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import sluiced  # noqa: E402
import tcpgen  # noqa: E402
from tcpgen import ACK, SYN  # noqa: E402

T0 = 1_700_000_000.0
RAW = b"From: a@example.org\r\nSubject: after the flood\r\n\r\nthe real mail\r\n"


def real_mail(t):
    conv = tcpgen.Conversation(client="198.51.100.7", cport=33333)
    tcpgen.smtp_session(conv, [("a@example.org", ["b@example.net"], RAW)])
    return [(t + k * 0.0001, f) for k, f in enumerate(conv.frames)]


class Hostile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def assert_real_mail_inspected(self, ev):
        mails = [m for m in ev.smtp if m["src_ip"] == "198.51.100.7"]
        self.assertEqual(len(mails), 1, ev.smtp[:3])
        m = mails[0]["smtp"]
        self.assertEqual(m["status"], "complete")
        self.assertEqual(m["subject"], "after the flood")
        self.assertEqual(m["message_sha256"], hashlib.sha256(RAW).hexdigest())

    def test_100000_half_open_sessions_then_a_real_mail(self):
        # 100,000 handshakes completed by forged ACKs that never carry data, from 100,000 ports of
        # 2 hosts, in 10 s; then a real mail. Default limits: 65,536 flows, 2,048 sessions.
        frames = []
        for i in range(100_000):
            host, port = "203.0.113.%d" % (1 + i // 60000), 1024 + i % 60000
            isn = 1000 + i
            t = T0 + i * 0.0001
            frames.append((t, tcpgen.tcp_frame(host, "192.0.2.2", port, 25, isn, 0, SYN)))
            frames.append((t + 0.00001, tcpgen.tcp_frame(host, "192.0.2.2", port, 25, isn + 1, 5001, ACK)))
        frames += real_mail(T0 + 11)
        ev = sluiced.replay_frames(frames, self.tmp.name, "half-open", timeout=300)
        self.assert_real_mail_inspected(ev)
        r = ev.stats["lcores"][0]["reassembly"]
        self.assertEqual(r["sessions_pool_full"], 0, r)
        self.assertEqual(r["flows_table_full"], 0, r)
        self.assertEqual(r["flows_evicted"], 100_001 - 65_536, r)
        self.assertEqual(r["emergency_entered"], 0, r)
        evicted = [f for f in ev.flow if f["flow"]["reason"] == "evicted"]
        self.assertEqual(len(evicted), 100_001 - 65_536)

    def test_syn_flood_then_a_real_mail(self):
        # The measured attack: 2,100 bare SYNs used to take every session slot for 10 minutes.
        frames = [(T0 + i * 0.001, tcpgen.tcp_frame("203.0.113.9", "192.0.2.2", 2000 + i, 25, 77 + i, 0, SYN))
                  for i in range(2_100)]
        frames += real_mail(T0 + 5)
        ev = sluiced.replay_frames(frames, self.tmp.name, "synflood")
        self.assert_real_mail_inspected(ev)
        r = ev.stats["lcores"][0]["reassembly"]
        self.assertEqual(r["sessions_pool_full"], 0, r)
        self.assertEqual(r["sessions_active"], 0, r)


if __name__ == "__main__":
    unittest.main()
