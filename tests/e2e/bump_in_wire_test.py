"""End to end: a real SMTP client (swaks) and server (aiosmtpd) in two network namespaces, joined
only through sluiced running inline on two net_af_packet ports. Messages with attachments arrive
byte-identical; sluiced's counters see the traffic and stop cleanly on SIGTERM."""
import email
import email.policy
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from email.message import EmailMessage

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import netns  # noqa: E402
import sluiced  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def build_message(subject, attachments):
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "alice@example.org"
    msg["To"] = "bob@example.net"
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{hashlib.sha1(subject.encode()).hexdigest()}@example.org>"
    msg.set_content("See the attachments.\n")
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces")
class BumpInTheWire(unittest.TestCase):
    # One RX lcore polling one queue per port and doing the workers' job itself (the default,
    # `workers: auto`, adds a worker on 2 CPUs: BumpInTheWireWorker is that layout).
    DEVICE_ARGS = ""
    LCORES = "{main: 0, rx: [1], workers: []}"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        cls.mail_dir = os.path.join(d, "mail")
        os.mkdir(cls.mail_dir)
        cls.lab = netns.BumpInTheWire()
        cls.events = os.path.join(d, "events.json")
        cfg = os.path.join(d, "sluiced.yaml")
        with open(cfg, "w") as f:
            f.write(f"""mode: inline
ports:
  - name: client
    device: net_af_packet0,iface={cls.lab.client_out}{cls.DEVICE_ARGS}
  - name: server
    device: net_af_packet1,iface={cls.lab.server_out}{cls.DEVICE_ARGS}
pairs:
  - [client, server]
lcores: {cls.LCORES}
eal: {{memory_mb: 256}}
events: {{path: {cls.events}}}
state: {{dir: {os.path.join(d, "state")}}}
""")
        cls.sink = cls.lab.popen(cls.lab.ns_server,
                                 ["/usr/bin/python3", os.path.join(HERE, "smtp_sink.py"), "--listen",
                                  cls.lab.SERVER_IP, "--dir", cls.mail_dir],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if cls.sink.stdout.readline().strip() != "ready":
            cls.sink.kill()
            cls.lab.close()
            raise RuntimeError("SMTP sink did not start")

        # Nothing but the appliance joins the namespaces: without sluiced there is no path.
        probe = cls.lab.netns(cls.lab.ns_client, "/usr/bin/python3", "-c",
                              "import socket; socket.create_connection(('%s', 25), timeout=1)" % cls.lab.SERVER_IP,
                              check=False)
        cls.no_path_without_sluiced = probe.returncode != 0
        cls.daemon = subprocess.Popen([sluiced.SLUICED, "--config", cfg], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
        line = cls.daemon.stdout.readline()
        if "running in inline mode" not in line:
            cls.daemon.kill()
            cls.sink.kill()
            cls.lab.close()
            raise RuntimeError("sluiced did not start: " + line + cls.daemon.stderr.read())

    @classmethod
    def tearDownClass(cls):
        for p in (cls.sink, cls.daemon):
            if p.poll() is None:
                p.terminate()
            p.communicate(timeout=30)
        cls.lab.close()
        cls.tmp.cleanup()

    def send(self, raw):
        path = os.path.join(self.tmp.name, "out.eml")
        with open(path, "wb") as f:
            f.write(raw)
        before = len([n for n in os.listdir(self.mail_dir) if n.endswith(".eml")])
        r = self.lab.netns(self.lab.ns_client, "swaks", "--server", self.lab.SERVER_IP, "--port", "25",
                           "--from", "alice@example.org", "--to", "bob@example.net", "--helo", "client.example.org",
                           "--data", path, "--timeout", "30", check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("250 2.0.0 Ok: stored", r.stdout)
        stored = os.path.join(self.mail_dir, f"{before + 1}.eml")
        for _ in range(100):
            if os.path.exists(stored):
                break
            time.sleep(0.05)
        with open(stored, "rb") as f:
            return f.read()

    def test_0_namespaces_are_joined_only_through_sluiced(self):
        self.assertTrue(self.no_path_without_sluiced)

    def test_1_message_with_attachment_arrives_intact(self):
        rng = random.Random(1)
        attachment = rng.randbytes(300_000)
        raw = build_message("report", [("report.bin", attachment)])
        got = self.send(raw)
        # swaks always ends DATA with CRLF "." CRLF, so the CRLF ending the file is followed by one more.
        self.assertTrue(raw.endswith(b"\r\n"))
        self.assertEqual(got, raw + b"\r\n")
        parsed = email.message_from_bytes(got, policy=email.policy.default)
        parts = list(parsed.iter_attachments())
        self.assertEqual(len(parts), 1)
        self.assertEqual(parts[0].get_filename(), "report.bin")
        self.assertEqual(hashlib.sha256(parts[0].get_content()).hexdigest(), hashlib.sha256(attachment).hexdigest())

    def test_2_several_attachments_and_small_message(self):
        rng = random.Random(2)
        atts = [("a.zip", rng.randbytes(10)), ("b.pdf", rng.randbytes(70_000)), ("c.exe", rng.randbytes(1))]
        got = self.send(build_message("three", atts))
        parsed = email.message_from_bytes(got, policy=email.policy.default)
        self.assertEqual([(p.get_filename(), p.get_content()) for p in parsed.iter_attachments()], atts)

    def test_3_sigterm_stops_and_reports_counters(self):
        # swaks returns once it has read 221; the server's FIN may still be on its way through
        # sluiced. Each flow ends "fin" only if both FINs crossed before the stop.
        self.assertEqual(self.lab.wait_closed(25), [])
        self.daemon.send_signal(signal.SIGTERM)
        out, err = self.daemon.communicate(timeout=30)
        self.assertEqual(self.daemon.returncode, 0, err)
        self.assertIn("ran", out)
        events = sluiced.events(self.events)
        # sluiced saw every message the server stored, hashed as the server received it.
        stored = {}
        for name in sorted(os.listdir(self.mail_dir)):
            if name.endswith(".eml"):
                with open(os.path.join(self.mail_dir, name), "rb") as f:
                    data = f.read()
                stored[hashlib.sha256(data).hexdigest()] = data
        smtp = [e for e in events if e["event_type"] == "smtp"]
        self.assertEqual(sorted(e["smtp"]["message_sha256"] for e in smtp), sorted(stored))
        for e in smtp:
            m = e["smtp"]
            self.assertEqual((e["src_ip"], e["dest_ip"], e["dest_port"]), (self.lab.CLIENT_IP, self.lab.SERVER_IP, 25))
            self.assertEqual(m["helo"], "client.example.org")
            self.assertEqual(m["mail_from"], "alice@example.org")
            self.assertEqual(m["rcpt_to"], ["bob@example.net"])
            self.assertEqual(m["message_size"], len(stored[m["message_sha256"]]))
            self.assertEqual((m["server_reply"], m["status"]), (250, "complete"))
            self.assertIn(m["subject"], ("report", "three"))
        # Every attachment is a file event with the SHA-256 of its bytes (computed by a worker).
        files = {(e["file"]["filename"], e["file"].get("sha256")) for e in events if e["event_type"] == "file"}
        rng1, rng2 = random.Random(1), random.Random(2)
        sent = [("report.bin", rng1.randbytes(300_000))] + \
               list(zip(("a.zip", "b.pdf", "c.exe"), (rng2.randbytes(10), rng2.randbytes(70_000), rng2.randbytes(1))))
        for name, data in sent:
            self.assertIn((name, hashlib.sha256(data).hexdigest()), files)
        flows = [e for e in events if e["event_type"] == "flow" and e["flow"]["messages"] > 0]
        self.assertEqual(len(flows), len(smtp), flows)
        self.assertTrue(all(f["app_proto"] == "smtp" and f["flow"]["reason"] == "fin" for f in flows), flows)
        ev = events[-1]
        self.assertEqual(ev["event_type"], "stats")
        self.assertEqual(ev["stats"]["reason"], "sigterm")
        ports = {p["name"]: p for p in ev["stats"]["ports"]}
        # Over 370 kB went client -> server through the appliance, and every frame received was sent
        # on, but for the client's retransmissions of data held for its verdict, which enforcement
        # absorbs (the end of DATA waits for the worker's hashes, tens of microseconds on a veth
        # whose round trip is shorter: the client's stack may send it again meanwhile).
        self.assertGreater(ports["client"]["rx_bytes"], 370_000)
        absorbed = sum(l.get("enforce", {}).get("absorbed", 0) for l in ev["stats"]["lcores"])
        self.assertEqual(ports["client"]["rx_packets"], ports["server"]["tx_packets"] + absorbed, ev)
        self.assertEqual(ports["server"]["rx_packets"], ports["client"]["tx_packets"], ev)
        self.assertEqual(ports["client"]["dropped"] + ports["server"]["dropped"], 0)
        return ev


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces")
class BumpInTheWireTwoRxLcores(BumpInTheWire):
    """Two RX lcores, two queues per port, no RSS on af_packet: frames reach the lcore that owns
    their flow through the symmetric software hash and the dispatch rings, and still arrive intact
    and in order."""
    DEVICE_ARGS = ",qpairs=2"
    LCORES = "{main: 0, rx: [1, 2], workers: []}"

    def test_3_sigterm_stops_and_reports_counters(self):
        ev = super().test_3_sigterm_stops_and_reports_counters()
        self.assertTrue(all(p["software_dispatch"] for p in ev["stats"]["ports"]))
        self.assertEqual([l["lcore"] for l in ev["stats"]["lcores"]], [1, 2])


@unittest.skipUnless(os.geteuid() == 0, "needs root for network namespaces")
class BumpInTheWireWorker(BumpInTheWire):
    """One RX lcore and one worker lcore: attachments are hashed on the worker, and SIGTERM waits for
    the worker's results before the last events are written."""
    LCORES = "{main: 0, rx: [1], workers: [2]}"

    def test_3_sigterm_stops_and_reports_counters(self):
        ev = super().test_3_sigterm_stops_and_reports_counters()
        lcores = ev["stats"]["lcores"]
        self.assertEqual([l["role"] for l in lcores], ["rx", "worker"])
        self.assertEqual(lcores[1]["worker"]["attachments"], 4)
        self.assertEqual(lcores[0]["handoff"]["overload"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
