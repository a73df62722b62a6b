"""End to end: a stop loses nothing (issue 10). sluiced runs in tap mode on a veth (net_af_packet);
the test writes SMTP frames into the other end (tests/lib/tcpgen.py), leaves one session in the
middle of DATA and another idle, and stops sluiced with SIGTERM. Every open flow is reported with
reason `shutdown`, the half-received message as `incomplete` (reason `shutdown`), and the exit
`stats` event says nothing was left. With a zero deadline (`dataplane.stop_timeout_ms: 0`) and
SIGINT, nothing is flushed and everything is counted instead, with a `stop_incomplete` alert.
And a replay stopped by SIGTERM in the middle of a 100 MB message, which used to end without a
single smtp or flow event (only the end of the input flushed the open flows)."""
import os
import signal
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import pcapfile  # noqa: E402
import tcpgen  # noqa: E402
from daemon import Daemon, TapTest, read_events, wait_for  # noqa: E402

HALF = b"From: a@example.org\r\nSubject: cut short\r\n\r\nthe first half of the body, and no end"


def up_to_data(client, cport):
    """A session from its handshake to the server's 354: the client's next bytes are content."""
    conv = tcpgen.smtp_open(tcpgen.Conversation(client=client, server="192.0.2.25", cport=cport))
    for command, reply in ((b"MAIL FROM:<a@example.org>", b"250 2.1.0 Ok"), (b"RCPT TO:<b@example.net>", b"250 2.1.5 Ok"),
                           (b"DATA", b"354 End data with <CR><LF>.<CR><LF>")):
        conv.send("c", command + b"\r\n")
        conv.send("s", reply + b"\r\n")
    return conv


def sessions():
    """The frames of two SMTP sessions left open: one in the middle of DATA, one idle after EHLO."""
    mid = up_to_data("198.51.100.1", 40001)
    mid.send("c", HALF)
    idle = tcpgen.smtp_open(tcpgen.Conversation(client="198.51.100.2", server="192.0.2.25", cport=40002))
    return mid.frames + idle.frames


class Shutdown(TapTest):
    veth_prefix = "sls"

    def start(self, extra="", lcores="{main: 0, rx: [1]}"):
        cfg = os.path.join(self.d, "sluiced.yaml")
        with open(cfg, "w") as f:
            f.write(self.tap_config(lcores) + f"""state: {{dir: {os.path.join(self.d, "state")}}}
events: {{path: {self.events}}}
stats: {{interval_s: 1}}
{extra}""")
        self.dmn = self.start_daemon(["--config", cfg])

    def send_sessions(self):
        """Writes the frames into the veth and waits until sluiced has inspected every one (the
        periodic stats event counts them)."""
        frames = sessions()
        self.send(frames)

        def inspected():
            stats = [e["stats"] for e in read_events(self.events) if e["event_type"] == "stats"]
            return stats and stats[-1]["lcores"][0]["reassembly"]["packets"] >= len(frames)
        self.assertTrue(wait_for(inspected, timeout=15), "sluiced did not see every frame")
        self.assertEqual([e for e in read_events(self.events) if e["event_type"] in ("smtp", "flow")], [],
                         "nothing is reported before the stop")

    def test_sigterm_mid_data_reports_every_open_flow_and_the_half_message(self):
        self.start()
        self.send_sessions()
        self.assertEqual(self.dmn.stop(signal.SIGTERM), 0, self.dmn.stderr())
        ev = read_events(self.events)

        smtp = [e for e in ev if e["event_type"] == "smtp"]
        self.assertEqual(len(smtp), 1, smtp)
        m = smtp[0]
        self.assertEqual(m["src_port"], 40001)
        self.assertEqual(m["smtp"]["status"], "incomplete")
        self.assertEqual(m["smtp"]["incomplete_reason"], "shutdown")
        self.assertEqual(m["smtp"]["rcpt_to"], ["b@example.net"])
        self.assertEqual(m["smtp"]["subject"], "cut short")
        self.assertEqual(m["smtp"]["message_size"], len(HALF))
        self.assertIsNone(m["smtp"]["server_reply"])

        flows = {e["src_port"]: e["flow"] for e in ev if e["event_type"] == "flow"}
        self.assertEqual(sorted(flows), [40001, 40002])
        for port, f in flows.items():
            self.assertEqual(f["reason"], "shutdown", port)
            self.assertTrue(f["inspected"], port)
        self.assertEqual(flows[40001]["messages"], 1)
        self.assertEqual(flows[40002]["messages"], 0)

        stats = ev[-1]
        self.assertEqual(stats["event_type"], "stats")
        self.assertEqual(stats["stats"]["reason"], "sigterm")
        sd = stats["stats"]["shutdown"]
        self.assertEqual((sd["timeout_ms"], sd["deadline_reached"]), (5000, False), sd)
        self.assertEqual((sd["flows_unflushed"], sd["messages_unflushed"], sd["events_dropped"]), (0, 0, 0), sd)
        self.assertLess(sd["ms"], 5000)
        r = stats["stats"]["lcores"][0]["reassembly"]
        self.assertEqual((r["messages"], r["messages_incomplete"], r["flows_unflushed"]), (1, 1, 0), r)
        self.assertEqual([e for e in ev if e["event_type"] == "alert"], [])

    def test_sigint_with_a_zero_deadline_counts_what_it_does_not_report(self):
        # With a worker lcore too: past the deadline it leaves what is queued unread, and exits.
        self.start("dataplane: {stop_timeout_ms: 0}\n", lcores="{main: 0, rx: [1], workers: [2]}")
        self.send_sessions()
        self.assertEqual(self.dmn.stop(signal.SIGINT), 0, self.dmn.stderr())
        ev = read_events(self.events)
        self.assertEqual([e for e in ev if e["event_type"] in ("smtp", "flow")], [])
        alerts = [e["alert"] for e in ev if e["event_type"] == "alert"]
        self.assertEqual([a["type"] for a in alerts], ["stop_incomplete"], alerts)
        self.assertIn("2 flows and 1 messages left unreported", alerts[0]["message"])
        self.assertIn("2 flows and 1 messages left unreported", self.dmn.stderr())
        stats = ev[-1]["stats"]
        self.assertEqual(stats["reason"], "sigint")
        sd = stats["shutdown"]
        self.assertEqual((sd["timeout_ms"], sd["deadline_reached"]), (0, True), sd)
        self.assertEqual((sd["flows_unflushed"], sd["messages_unflushed"]), (2, 1), sd)
        r = stats["lcores"][0]["reassembly"]
        self.assertEqual((r["flows_unflushed"], r["messages_unflushed"], r["messages"]), (2, 1, 0), r)


def big_message_frames(megabytes):
    """A session whose DATA carries a `megabytes` MB body and ends, yielded as frames as they are
    made (the capture is written without holding it in memory)."""
    conv = up_to_data("198.51.100.3", 40003)
    conv.send("c", b"Subject: big\r\n\r\n")
    chunk = (b"x" * 76 + b"\r\n") * 13000  # about 1 MB
    for i in range(megabytes + 1):
        yield from conv.frames
        conv.frames.clear()
        conv.stream["c"].clear()
        if i < megabytes:
            conv.send("c", chunk)
    conv.send("c", b".\r\n")
    conv.send("s", tcpgen.QUEUED)
    yield from conv.frames


class ShutdownReplay(unittest.TestCase):
    def test_sigterm_in_the_middle_of_a_replay(self):
        with tempfile.TemporaryDirectory() as d:
            pcap, events = os.path.join(d, "big.pcap"), os.path.join(d, "events.json")
            pcapfile.write_pcap(pcap, big_message_frames(100))
            size = os.path.getsize(pcap)
            dmn = Daemon(d, "replay", ["--replay", pcap, "--events", events])
            try:
                # The replay reads about 500 MB/s: stopped as soon as it runs, sluiced takes the
                # SIGTERM with most of the capture still to read, whatever the machine's load.
                self.assertTrue(wait_for(lambda: "running in replay mode" in dmn.stdout() or dmn.proc.poll() is not None,
                                         step=0.002), dmn.stderr())
                dmn.proc.send_signal(signal.SIGSTOP)
                dmn.proc.send_signal(signal.SIGTERM)
                dmn.proc.send_signal(signal.SIGCONT)
                self.assertEqual(dmn.proc.wait(timeout=60), 0, dmn.stderr())
            finally:
                dmn.kill()
            ev = read_events(events)
            stats = ev[-1]["stats"]
            self.assertEqual(stats["reason"], "sigterm", "the replay ended before the signal: make the capture larger")
            self.assertLess(stats["ports"][0]["rx_bytes"], size)
            smtp = [e["smtp"] for e in ev if e["event_type"] == "smtp"]
            self.assertEqual(len(smtp), 1, ev[:3])
            self.assertEqual((smtp[0]["status"], smtp[0]["incomplete_reason"]), ("incomplete", "shutdown"))
            self.assertEqual(smtp[0]["subject"], "big")
            self.assertLess(smtp[0]["message_size"], 100 << 20)
            flows = [e["flow"] for e in ev if e["event_type"] == "flow"]
            self.assertEqual([f["reason"] for f in flows], ["shutdown"])
            sd = stats["shutdown"]
            self.assertEqual((sd["flows_unflushed"], sd["messages_unflushed"], sd["deadline_reached"]), (0, 0, False), sd)


if __name__ == "__main__":
    unittest.main(verbosity=2)
