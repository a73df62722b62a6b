"""Event output does not drift: every capture of ../shared/corpus/pcap replayed through sluiced
gives exactly the event lines recorded in tests/data/golden/corpus/ (all event types but `stats`,
whose counters grow with the product; compared as sorted lines, byte for byte, timestamps
included: in a replay they are the packets' times). The golden files were recorded with the
sluiced of commit 5f4d711, before events became typed records rendered on the control side
(issue 9), and are the README's event format as released; re-recorded on purpose in issue 11, when
every message got a `verdict` event (71 lines added, every other line unchanged), and in issue 13,
when a message ended by a bare-LF terminator became `reject` with reason `smtp_smuggling` (one
line changed) and then got the verdict of its strict one-message reading (one line added); in
issue 14 every `smtp` event got the header's `header_from`, `header_to`, `header_cc` (61 lines
changed, nothing else).

Recording (only when the output changes on purpose, with the reason in the commit):
    SLUICE_GOLDEN_RECORD=1 /usr/bin/python3 tests/integration/golden_events_test.py
Two configurations: the default (the RX lcore does the workers' job) and one RX lcore with one
worker lcore and the Hyperscan body scan (the same lines: the rings change nothing)."""
import glob
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import sluiced  # noqa: E402

GOLDEN = os.path.join(sluiced.REPO, "tests", "data", "golden", "corpus")
RECORD = os.environ.get("SLUICE_GOLDEN_RECORD") == "1"
CONFIGS = {
    "default": "",
    "worker": "lcores:\n  rx: [1]\n  workers: [2]\nmime:\n  body_scan: hyperscan\n",
}


def captures():
    return sorted(glob.glob(os.path.join(sluiced.CORPUS, "pcap", "*", "*.pcap")))


def event_lines(path):
    with open(path, encoding="utf-8") as f:
        return sorted(line.rstrip("\n") for line in f
                      if line.strip() and '"event_type":"stats"' not in line[:80])


class GoldenEvents(unittest.TestCase):
    def test_corpus_events_unchanged(self):
        pcaps = captures()
        if not pcaps:
            self.skipTest("no corpus at " + sluiced.CORPUS)
        os.makedirs(GOLDEN, exist_ok=True)
        compared = 0
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in CONFIGS.items():
                cfg = os.path.join(tmp, name + ".yaml")
                with open(cfg, "w") as f:
                    f.write(text)
                for pcap in pcaps:
                    base = os.path.basename(pcap)
                    golden = os.path.join(GOLDEN, base + ".events.jsonl")
                    with self.subTest(config=name, pcap=base):
                        ev = os.path.join(tmp, base + "." + name + ".json")
                        r = sluiced.run(["--replay", pcap, "--events", ev, "--config", cfg])
                        self.assertEqual(r.returncode, 0, r.stderr)
                        got = event_lines(ev)
                        if RECORD and name == "default":
                            with open(golden, "w", encoding="utf-8") as f:
                                f.write("".join(line + "\n" for line in got))
                        if not os.path.exists(golden):
                            self.fail("no golden file for %s (record with SLUICE_GOLDEN_RECORD=1)" % base)
                        want = event_lines(golden)
                        if got != want:
                            missing = [l for l in want if l not in got][:3]
                            extra = [l for l in got if l not in want][:3]
                            self.fail("%s: %d lines differ\nexpected, not produced:\n%s\nproduced, not expected:\n%s"
                                      % (base, len(set(want) ^ set(got)), "\n".join(missing), "\n".join(extra)))
                        compared += 1
        print("golden: %d replays compared line for line" % compared)


if __name__ == "__main__":
    unittest.main()
