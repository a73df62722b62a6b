"""The captures of ../shared/corpus/pcap: every message the corpus expects is found, with the same
SHA-256 and size of its content, complete or not as expected, and no message that is not there.
The expectations (<name>.attachments.json) come from an independent reassembly; where it is known
to be wrong (replies misaligned by a server greeting without CRLF), the RFC reading wins and the
difference is listed in KNOWN below with the reason."""
import glob
import json
import os
import sys
import tempfile
import unittest
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import sluiced  # noqa: E402

# Fields where Sluice deliberately differs from the independent check, per capture.
KNOWN = {
    # The greeting lacks its CRLF, so the check pairs every reply with the previous command and
    # records 221 (QUIT's reply) as the final reply. Sluice pairs by reply semantics: 354 answers
    # DATA, and the message's final reply is the 250 after the "." line.
    "detect-email-received.pcap": {"final_reply": "250"},
}


def expected_messages(attachments):
    return [m for s in attachments["sessions"] for m in s.get("messages", [])]


class Corpus(unittest.TestCase):
    def test_every_expected_message(self):
        files = sorted(glob.glob(os.path.join(sluiced.CORPUS, "pcap", "*", "*.attachments.json")))
        if not files:
            self.skipTest("no corpus at " + sluiced.CORPUS)
        total = 0
        with tempfile.TemporaryDirectory() as tmp:
            for path in files:
                with open(path) as f:
                    att = json.load(f)
                pcap = os.path.join(os.path.dirname(path), att["pcap"])
                with self.subTest(pcap=att["pcap"]):
                    ev = os.path.join(tmp, att["pcap"] + ".json")
                    r = sluiced.run(["--replay", pcap, "--events", ev])
                    self.assertEqual(r.returncode, 0, r.stderr)
                    events = sluiced.events(ev)
                    smtp = [e["smtp"] for e in events if e["event_type"] == "smtp"]
                    want = Counter((m["sha256"], m["size"], m["complete"]) for m in expected_messages(att))
                    got = Counter((s["message_sha256"], s["message_size"], s["status"] == "complete") for s in smtp)
                    self.assertEqual(got, want)
                    total += sum(want.values())
                    # Final replies: the server's answer to the end of data, where the capture has it.
                    known = KNOWN.get(att["pcap"], {})
                    replies = Counter(str(s["server_reply"]) if s["server_reply"] is not None else None for s in smtp)
                    expect = Counter(known.get("final_reply", m["final_reply"]) for m in expected_messages(att))
                    self.assertEqual(replies, expect)
                    # Every flow is reported, and the stats event closes the file.
                    self.assertEqual(events[-1]["event_type"], "stats")
                    self.assertGreaterEqual(sum(1 for e in events if e["event_type"] == "flow"), len(att["sessions"]))
        self.assertGreater(total, 60)


if __name__ == "__main__":
    unittest.main()
