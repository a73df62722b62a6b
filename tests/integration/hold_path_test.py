"""The RX path's per-frame next step with the hold queue, end to end through sluiced in replay mode
with an output pcap: `hold.debug_hold_every_message` makes the frame that ends every message
(the one carrying CRLF.CRLF) a hold, so the hold path runs without a policy. Checked byte for byte
on the output: where held frames leave (deadline, end of replay), what a drop action removes, what
the caps and their fallback do, and the `hold` counters of the stats event."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import pcapfile  # noqa: E402
import sluiced  # noqa: E402
import tcpgen  # noqa: E402

SESSIONS = 6
T0 = 1_700_000_000.0


def capture():
    """SESSIONS SMTP sessions, one message each, one second apart; frames 1 ms apart within a
    session. Returns [(ts, frame)] and the indexes of the frames ending a message."""
    frames, ends = [], []
    for i in range(SESSIONS):
        conv = tcpgen.Conversation(client="192.0.2.%d" % (10 + i), cport=41000 + i)
        raw = b"From: a@example.org\r\nSubject: hold %d\r\n\r\nbody %d\r\n" % (i, i)
        tcpgen.smtp_session(conv, [("a@example.org", ["b@example.net"], raw)])
        for k, f in enumerate(conv.frames):
            if tcpgen.split_frame(f)[2].endswith(b"\r\n.\r\n"):
                ends.append(len(frames))
            frames.append((T0 + i + k * 0.001, f))
    assert len(ends) == SESSIONS
    return frames, ends


class HoldPath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.frames, cls.ends = capture()
        cls.pcap = os.path.join(cls.tmp.name, "in.pcap")
        pcapfile.write_pcap(cls.pcap, cls.frames)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_hold(self, name, hold):
        cfg = os.path.join(self.tmp.name, name + ".yaml")
        with open(cfg, "w") as f:
            f.write("hold: {debug_hold_every_message: true, %s}\n" % hold)
        out = os.path.join(self.tmp.name, name + ".out.pcap")
        ev = os.path.join(self.tmp.name, name + ".events.json")
        r = sluiced.run(["--config", cfg, "--replay", self.pcap, "--replay-out", out, "--events", ev])
        self.assertEqual(r.returncode, 0, r.stderr)
        events = sluiced.Events(sluiced.events(ev), r)
        # Holding a frame never changes what is inspected: every message is reported whole.
        self.assertEqual(len(events.smtp), SESSIONS)
        for m in events.smtp:
            self.assertEqual(m["smtp"]["status"], "complete", m)
        _, got = pcapfile.read_pcap(out)
        return [b for _, b in got], events.stats

    def frames_at(self, idx):
        return [self.frames[i][1] for i in idx]

    def others(self, excluded):
        return [f for i, (_, f) in enumerate(self.frames) if i not in set(excluded)]

    def assert_hold(self, stats, **want):
        hold = stats["lcores"][0]["hold"]
        self.assertEqual({k: hold[k] for k in want}, want, hold)
        self.assertEqual(hold["in_queue"], 0, hold)
        self.assertEqual(stats["ports"][0]["dropped"], 0)

    def test_held_until_the_end_of_the_replay_then_forwarded(self):
        out, stats = self.run_hold("end", "max_hold_ms: 60000")
        # Every other frame in its place, the held ones after them, in the order they were held.
        self.assertEqual(out, self.others(self.ends) + self.frames_at(self.ends))
        self.assert_hold(stats, held=SESSIONS, released=SESSIONS, expired=0, cap_reached=0, dropped=0)
        self.assertEqual(stats["ports"][0]["tx_packets"], len(self.frames))

    def test_held_until_the_deadline_then_forwarded(self):
        out, stats = self.run_hold("deadline", "max_hold_ms: 100")
        self.assertEqual(sorted(out), sorted(f for _, f in self.frames))
        # A session lasts about 20 ms: the next one's first frame (a second later) passes the
        # deadline of the message before it; the last message is still held at the end.
        self.assert_hold(stats, held=SESSIONS, released=1, expired=SESSIONS - 1, cap_reached=0, dropped=0)
        position = {f: i for i, f in enumerate(out)}
        for e in self.ends[:-1]:
            ts, held = self.frames[e]
            # Packet time decides in replay: the frame leaves after the burst holding the first
            # frame captured 100 ms after it (bursts of 32), not before and not at the end.
            after = next(f for t, f in self.frames if t >= ts + 0.1)
            self.assertGreater(position[held], position[after], e)
            self.assertLess(position[held], position[after] + 33, e)
        self.assertEqual(out[-1], self.frames[self.ends[-1]][1])

    def test_on_deadline_drop_removes_exactly_the_held_frames(self):
        out, stats = self.run_hold("drop", "max_hold_ms: 60000, on_deadline: drop")
        self.assertEqual(out, self.others(self.ends))
        self.assert_hold(stats, held=SESSIONS, released=SESSIONS, expired=0, dropped=SESSIONS)
        self.assertEqual(stats["ports"][0]["tx_packets"], len(self.frames) - SESSIONS)

    def test_queue_cap_with_forward_fallback_passes_the_rest_in_place(self):
        out, stats = self.run_hold("cap", "max_frames: 2, max_frames_per_message: 1, max_hold_ms: 60000")
        self.assertEqual(out, self.others(self.ends[:2]) + self.frames_at(self.ends[:2]))
        self.assert_hold(stats, held=2, released=2, cap_reached=SESSIONS - 2, dropped=0)

    def test_queue_cap_with_drop_fallback_drops_the_rest(self):
        out, stats = self.run_hold("capdrop", "max_frames: 2, max_frames_per_message: 1, max_hold_ms: 60000, "
                                              "fallback: drop")
        self.assertEqual(out, self.others(self.ends) + self.frames_at(self.ends[:2]))
        self.assert_hold(stats, held=2, released=2, cap_reached=SESSIONS - 2, dropped=SESSIONS - 2)


if __name__ == "__main__":
    unittest.main()
