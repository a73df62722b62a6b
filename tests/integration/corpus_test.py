"""The captures of ../shared/corpus/pcap: every message the corpus expects is found, with the same
SHA-256 and size of its content, complete or not as expected, and no message that is not there;
every expected attachment is a `file` event with the SHA-256 computed by a worker lcore (the
replays run with one RX lcore and one worker lcore, and with the Hyperscan body scan,
mime.body_scan: hyperscan; the other replay tests use the default SSE2 scan).
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


# Attachments where the independent check (Python's email package) is wrong, by (capture, name):
# (size, sha256) that Sluice must report instead, with the reason.
KNOWN_FILES = {
    # base64 "NA=" "=Mg" "==": padding in the middle. Python stops at the first pad ("4"); Sluice,
    # like Suricata and mail clients, decodes every quantum (RFC 2045 6.8 asks decoders to ignore
    # what they cannot use, not to stop): "42".
    ("bug-6207-2.pcap",
     "smtptest-2021-02-25T13-54-22Z-aefb2fc1308d62f4b6c74769f69b13ddf80e995fd98ae442f3be499ea928c67f..zip"):
        (2, "73475cb40a568e8da8a045ced110137e159f890ac4da883b6b17dc651b3a8049"),
}


def expected_messages(attachments):
    return [m for s in attachments["sessions"] for m in s.get("messages", [])]


class Corpus(unittest.TestCase):
    def test_every_expected_message(self):
        files = sorted(glob.glob(os.path.join(sluiced.CORPUS, "pcap", "*", "*.attachments.json")))
        if not files:
            self.skipTest("no corpus at " + sluiced.CORPUS)
        total = total_files = 0
        with tempfile.TemporaryDirectory() as tmp:
            cfg = os.path.join(tmp, "workers.yaml")
            with open(cfg, "w") as f:
                f.write("lcores:\n  rx: [1]\n  workers: [2]\nmime:\n  body_scan: hyperscan\n")
            for path in files:
                with open(path) as f:
                    att = json.load(f)
                pcap = os.path.join(os.path.dirname(path), att["pcap"])
                with self.subTest(pcap=att["pcap"]):
                    ev = os.path.join(tmp, att["pcap"] + ".json")
                    r = sluiced.run(["--replay", pcap, "--events", ev, "--config", cfg])
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
                    # Attachments: each expected one is reported as a file event of its message, with
                    # the same name, size and SHA-256 (Sluice may report more: non-text parts
                    # without a name count as attachments for it).
                    files = [e for e in events if e["event_type"] == "file"]
                    for m in expected_messages(att):
                        got_files = [f["file"] for f in files if f["file"].get("message_sha256") == m["sha256"]]
                        for a in m.get("attachments", []) + m.get("uuencoded_attachments", []):
                            want_file = KNOWN_FILES.get((att["pcap"], a["filename"]), (a["size"], a["sha256"]))
                            match = [(f["size"], f["sha256"]) for f in got_files if f["filename"] == a["filename"]]
                            self.assertIn(want_file, match, f"{a['filename']} in {att['pcap']}: got {got_files}")
                            total_files += 1
                    # Every flow is reported, and the stats event closes the file.
                    self.assertEqual(events[-1]["event_type"], "stats")
                    roles = [l["role"] for l in events[-1]["stats"]["lcores"]]
                    self.assertEqual(roles, ["rx", "worker"])
                    self.assertEqual(sum(1 for f in files if "sha256" not in f["file"]), 0, "every file hashed")
                    self.assertGreaterEqual(sum(1 for e in events if e["event_type"] == "flow"), len(att["sessions"]))
        self.assertGreater(total, 60)
        self.assertGreaterEqual(total_files, 16)


if __name__ == "__main__":
    unittest.main()
