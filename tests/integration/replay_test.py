"""Replay in inline mode: the output pcap holds exactly the input's frames, byte for byte, in order.
Also checks the stats event and the human counters printed at exit."""
import glob
import os
import random
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import pcapfile  # noqa: E402
import sluiced  # noqa: E402


def eth(payload, ethertype, tags=()):
    hdr = bytes.fromhex("020000000002") + bytes.fromhex("020000000001")
    for tpid in tags:
        hdr += struct.pack("!HH", tpid, 100)
    return hdr + struct.pack("!H", ethertype) + payload


def ipv4_tcp(src_port, dst_port, payload, frag=0):
    tcp = struct.pack("!HHIIBBHHH", src_port, dst_port, 1, 0, 0x50, 0x18, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 7, frag, 64, 6, 0,
                     bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]))
    return ip + tcp


def synthetic_frames(rng):
    """A mix that a bump in the wire must pass untouched: SMTP-looking TCP, ARP, VLAN and QinQ,
    IPv6, fragments, minimum-size frames, jumbo frames, random garbage."""
    frames = []
    for i in range(3000):
        kind = i % 9
        if kind == 0:
            frames.append(eth(ipv4_tcp(40000 + i % 50, 25, b"MAIL FROM:<a@example.org>\r\n"), 0x0800))
        elif kind == 1:
            frames.append(eth(bytes(28), 0x0806))  # ARP, 42 bytes
        elif kind == 2:
            frames.append(eth(ipv4_tcp(25, 40000, b"250 OK\r\n"), 0x0800, tags=(0x8100,)))
        elif kind == 3:
            frames.append(eth(ipv4_tcp(1234, 587, rng.randbytes(1400)), 0x0800, tags=(0x88A8, 0x8100)))
        elif kind == 4:
            ip6 = struct.pack("!IHBB16s16s", 0x60000000, 20, 6, 64, bytes(15) + b"\x01", bytes(15) + b"\x02")
            frames.append(eth(ip6 + struct.pack("!HH", 5000, 25) + bytes(16), 0x86DD))
        elif kind == 5:
            frames.append(eth(ipv4_tcp(40000, 25, rng.randbytes(600), frag=0x2000), 0x0800))
        elif kind == 6:
            frames.append(rng.randbytes(60))
        elif kind == 7:
            frames.append(eth(ipv4_tcp(40001, 25, rng.randbytes(rng.randrange(0, 1460))), 0x0800))
        else:
            frames.append(eth(ipv4_tcp(40002, 25, rng.randbytes(rng.choice([3000, 9000]))), 0x0800))
    return frames


class ReplayInline(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def replay(self, pcap):
        out = os.path.join(self.dir, "out.pcap")
        ev = os.path.join(self.dir, "events.json")
        for f in (out, ev):
            if os.path.exists(f):
                os.unlink(f)
        # Every message passes (inline enforcement holds and releases each in place): the corpus
        # has bare-LF ends of data, which `actions.smuggling` would reject by default.
        cfg = os.path.join(self.dir, "pass.yaml")
        with open(cfg, "w") as f:
            f.write("actions: {smuggling: pass}\n")
        r = sluiced.run(["--config", cfg, "--replay", pcap, "--replay-out", out, "--events", ev])
        self.assertEqual(r.returncode, 0, r.stderr)
        return out, sluiced.events(ev), r

    def assert_same_frames(self, pcap, out):
        lt_in, fin = pcapfile.read_pcap(pcap)
        lt_out, fout = pcapfile.read_pcap(out)
        self.assertEqual(lt_in, lt_out, "link type")
        self.assertEqual(len(fin), len(fout), pcap)
        for i, ((_, a), (_, b)) in enumerate(zip(fin, fout)):
            self.assertEqual(a, b, f"{pcap}: frame {i} differs")
        return fin

    def test_synthetic_mix_is_forwarded_byte_for_byte(self):
        pcap = os.path.join(self.dir, "in.pcap")
        frames = synthetic_frames(random.Random(7))
        pcapfile.write_pcap(pcap, frames)
        out, events, run = self.replay(pcap)
        self.assert_same_frames(pcap, out)
        stats = [e for e in events if e["event_type"] == "stats"]
        self.assertEqual(len(stats), 1)
        ev = stats[0]
        self.assertEqual(list(ev)[:2], ["timestamp", "event_type"])
        port = ev["stats"]["ports"][0]
        total = sum(len(f) for f in frames)
        self.assertEqual(port["rx_packets"], len(frames))
        self.assertEqual(port["tx_packets"], len(frames))
        self.assertEqual(port["rx_bytes"], total)
        self.assertEqual(port["tx_bytes"], total)
        self.assertEqual(port["dropped"], 0)
        self.assertEqual(ev["stats"]["reason"], "end_of_replay")
        self.assertEqual(ev["stats"]["lcores"][0]["rx_packets"], len(frames))
        self.assertRegex(run.stdout, r"replay\s+%d\s+%d\s+%d\s+%d\s+0" % (len(frames), total, len(frames), total))

    def test_replay_without_output_consumes(self):
        pcap = os.path.join(self.dir, "in.pcap")
        pcapfile.write_pcap(pcap, synthetic_frames(random.Random(3))[:500])
        ev = os.path.join(self.dir, "e.json")
        r = sluiced.run(["--replay", pcap, "--events", ev])
        self.assertEqual(r.returncode, 0, r.stderr)
        port = sluiced.events(ev)[-1]["stats"]["ports"][0]
        self.assertEqual(port["rx_packets"], 500)
        self.assertEqual(port["tx_packets"], 0)
        self.assertEqual(port["dropped"], 0)

    def test_events_to_stdout(self):
        pcap = os.path.join(self.dir, "in.pcap")
        pcapfile.write_pcap(pcap, synthetic_frames(random.Random(5))[:10])
        r = sluiced.run(["--replay", pcap, "--events", "-"])
        self.assertEqual(r.returncode, 0, r.stderr)
        import json
        lines = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        self.assertEqual(len(lines), len(r.stdout.splitlines()), "stdout holds only events")
        self.assertEqual(lines[-1]["stats"]["ports"][0]["rx_packets"], 10)

    def test_corpus_captures_are_forwarded_byte_for_byte(self):
        pcaps = sorted(glob.glob(os.path.join(sluiced.CORPUS, "pcap", "*", "*.pcap")))
        if not pcaps:
            self.skipTest("no corpus at " + sluiced.CORPUS)
        for pcap in pcaps:
            with self.subTest(pcap=os.path.basename(pcap)):
                out, events, _ = self.replay(pcap)
                frames = self.assert_same_frames(pcap, out)
                self.assertEqual(events[-1]["stats"]["ports"][0]["tx_packets"], len(frames))


if __name__ == "__main__":
    unittest.main()
