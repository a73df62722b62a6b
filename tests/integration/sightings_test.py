"""Sightings (issue 14): a replay with a state directory records every file and archive member that
passed with its message in STATE/sightings.sqlite, read back here with Python's own sqlite3: the
envelope, every recipient, the header's From/To/Cc, Subject and Message-ID, the appliance's name,
each file's SHA-256 and name, a member's path inside its archive. A second run on the same
directory adds to what the first wrote."""
import email.policy
import hashlib
import io
import os
import shutil
import sqlite3
import sys
import tempfile
import unittest
import zipfile
from email.message import EmailMessage

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import pcapfile  # noqa: E402
import sluiced  # noqa: E402
import tcpgen  # noqa: E402

T0 = 1_700_000_000.0
PDF = b"%PDF-1.7\n" + b"sighting test pdf\n" * 20
EXE = b"MZ" + b"\x90" * 200 + b"sighting test member"


def zipped(name, data):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        # A fixed time: the same bytes (and SHA-256) however often it is made.
        z.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 2, 3, 4, 6)), data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def capture(path, subject):
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Alice Example <alice@example.org>"
    msg["To"] = "bob@example.net, carol@example.net"
    msg["Cc"] = "dave@example.net"
    msg["Subject"] = subject
    msg["Message-ID"] = "<%s@example.org>" % subject.replace(" ", "-")
    msg.set_content("see attached\n")
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="invoice.pdf")
    msg.add_attachment(zipped("tools/setup.exe", EXE), maintype="application", subtype="zip", filename="tools.zip")
    conv = tcpgen.Conversation(client="198.51.100.7", server="192.0.2.25", cport=41000)
    frames = tcpgen.smtp_session(conv, [("alice@example.org", ["bob@example.net", "carol@example.net"],
                                         msg.as_bytes())]).frames
    pcapfile.write_pcap(path, [(T0 + i * 0.001, f) for i, f in enumerate(frames)])


class Sightings(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sluice-sightings-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.state = os.path.join(self.tmp, "state")
        self.cfg = os.path.join(self.tmp, "sluiced.yaml")
        with open(self.cfg, "w") as f:
            f.write(f"state: {{dir: {self.state}}}\nappliance: {{name: lab-gw-1}}\n")

    def replay(self, subject):
        pcap = os.path.join(self.tmp, subject.replace(" ", "_") + ".pcap")
        capture(pcap, subject)
        ev = os.path.join(self.tmp, subject.replace(" ", "_") + ".json")
        r = sluiced.run(["--config", self.cfg, "--replay", pcap, "--events", ev])
        self.assertEqual(r.returncode, 0, r.stderr)
        return sluiced.Events(sluiced.events(ev), r)

    def rows(self, sql, *args):
        db = sqlite3.connect(os.path.join(self.state, "sightings.sqlite"))
        try:
            return db.execute(sql, args).fetchall()
        finally:
            db.close()

    def test_every_file_and_member_is_recorded_with_its_message(self):
        ev = self.replay("quarterly report")
        self.assertEqual(ev.stats["sightings"], {"recorded": 1, "without_files": 0, "incomplete": 0, "pending": 0,
                                                 "queued": 0, "dropped": 0, "write_errors": 0})
        msgs = self.rows("SELECT id, appliance, mail_from, subject, message_id, header_from, header_to, header_cc, "
                         "disposition, action, client_ip, server_port FROM messages")
        self.assertEqual(len(msgs), 1)
        mid, appliance, mail_from, subject, message_id, hfrom, hto, hcc, disp, action, cip, sport = msgs[0]
        self.assertEqual((appliance, mail_from, subject, message_id), ("lab-gw-1", "alice@example.org",
                                                                     "quarterly report", "<quarterly-report@example.org>"))
        self.assertEqual((hfrom, hto, hcc), ("Alice Example <alice@example.org>", "bob@example.net, carol@example.net",
                                             "dave@example.net"))
        self.assertEqual((disp, action, cip, sport), ("clean", "pass", "198.51.100.7", 25))
        self.assertEqual(self.rows("SELECT addr FROM rcpts WHERE message = ? ORDER BY rowid", mid),
                         [("bob@example.net",), ("carol@example.net",)])
        files = set(self.rows("SELECT sha256, filename, archive_path FROM files WHERE message = ?", mid))
        zip_sha = hashlib.sha256(zipped("tools/setup.exe", EXE)).hexdigest()
        self.assertEqual(files, {(hashlib.sha256(PDF).hexdigest(), "invoice.pdf", ""),
                                 (zip_sha, "tools.zip", ""),
                                 (hashlib.sha256(EXE).hexdigest(), "tools.zip", "tools/setup.exe")})

    def test_a_second_run_adds_to_the_first(self):
        self.replay("first run")
        self.replay("second run")
        self.assertEqual(sorted(self.rows("SELECT subject FROM messages")), [("first run",), ("second run",)])
        # Where was this file seen: both messages.
        seen = self.rows("SELECT m.subject FROM messages m JOIN files f ON f.message = m.id WHERE f.sha256 = ? "
                         "ORDER BY m.id", hashlib.sha256(EXE).hexdigest())
        self.assertEqual(seen, [("first run",), ("second run",)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
