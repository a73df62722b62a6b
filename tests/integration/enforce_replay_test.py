"""Inline enforcement from a pcap (issue 13): sluiced in replay mode with `--replay-out` writes what
inline mode would have put on the wire. The segments it forges are decoded by an independent
decoder (tshark, with its IP and TCP checksum validation on) and checked field by field: the reply
to the client continues the server's sequence space exactly where the client expects it and
acknowledges the held segment; the reset towards the server sits exactly at the next byte the
server expects; IPv4, IPv6 and 802.1Q-tagged frames; the frames ahead of the held segment leave
unchanged and nothing after it reaches the server.

The verdict comes from the configured actions (`actions.clean: reject` makes every clean message a
reject), so no reputation service is needed here; the end-to-end tests use one."""
import base64
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import pcapfile  # noqa: E402
import sluiced  # noqa: E402
import tcpgen  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1_700_000_000.0
RAW = b"From: a@example.org\r\nTo: b@example.net\r\nSubject: enforce\r\n\r\nhello\r\n"

FIELDS = ["frame.number", "vlan.id", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "tcp.srcport", "tcp.dstport",
          "tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "tcp.payload", "ip.checksum.status", "tcp.checksum.status",
          "ip.ttl", "ipv6.hlim", "eth.src", "eth.dst"]


def tshark(path):
    """Every frame of a pcap as decoded by tshark (checksums validated)."""
    cmd = ["tshark", "-r", path, "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
           "-o", "tcp.relative_sequence_numbers:FALSE", "-T", "fields", "-E", "separator=\t"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        r = dict(zip(FIELDS, line.split("\t")))
        r["src"] = r["ip.src"] or r["ipv6.src"]
        r["dst"] = r["ip.dst"] or r["ipv6.dst"]
        r["payload"] = bytes.fromhex(r["tcp.payload"].replace(":", "")) if r["tcp.payload"] else b""
        r["flags"] = int(r["tcp.flags"], 16)
        r["seq"], r["ack"] = int(r["tcp.seq_raw"]), int(r["tcp.ack_raw"])
        rows.append(r)
    return rows


def session(client="192.0.2.10", server="192.0.2.2", cport=41000, vlan=None, messages=((RAW,),)):
    """One SMTP session (as tcpgen.smtp_session) and the index of each frame ending a message."""
    conv = tcpgen.Conversation(client=client, server=server, cport=cport, vlan=vlan)
    tcpgen.smtp_session(conv, [("a@example.org", ["b@example.net"], m[0]) for m in messages])
    ends = [i for i, f in enumerate(conv.frames) if tcpgen.split_frame(f)[2].endswith(b"\r\n.\r\n")]
    return conv, ends


def encrypted_zip_message():
    with open(os.path.join(HERE, "..", "data", "archives", "enc_content.7z"), "rb") as f:
        data = base64.encodebytes(f.read()).replace(b"\n", b"\r\n")
    return (b"From: a@example.org\r\nTo: b@example.net\r\nSubject: locked\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n"
            b"see attached\r\n--b1\r\nContent-Type: application/x-7z-compressed\r\n"
            b"Content-Disposition: attachment; filename=\"locked.7z\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
            data + b"--b1--\r\n")


class EnforceReplay(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def replay(self, name, frames, config):
        d = self.tmp.name
        pcap = os.path.join(d, name + ".pcap")
        pcapfile.write_pcap(pcap, [(T0 + i * 0.001, f) for i, f in enumerate(frames)])
        cfg = os.path.join(d, name + ".yaml")
        with open(cfg, "w") as f:
            f.write(config)
        out = os.path.join(d, name + ".out.pcap")
        ev = os.path.join(d, name + ".events.json")
        r = sluiced.run(["--config", cfg, "--replay", pcap, "--replay-out", out, "--events", ev])
        self.assertEqual(r.returncode, 0, r.stderr)
        return pcap, out, sluiced.Events(sluiced.events(ev), r)

    def enforce_stats(self, events):
        return events.stats["lcores"][0]["enforce"]

    def check_blocked(self, conv, ends, out_rows, in_rows, code, text_re, verdict):
        """The output of a one-message session whose message was rejected or deferred."""
        held = in_rows[ends[0]]
        # Everything ahead of the held segment leaves unchanged, in order.
        self.assertEqual([(r["seq"], r["ack"], r["flags"], r["payload"]) for r in out_rows[:ends[0]]],
                         [(r["seq"], r["ack"], r["flags"], r["payload"]) for r in in_rows[:ends[0]]])
        rest = out_rows[ends[0]:]
        # The held segment never leaves, and no frame of the client reaches the server after it
        # (but the reset, first).
        self.assertFalse([r for r in rest[1:] if r["src"] == held["src"]],
                         "frames towards the server after the held segment: %r" % rest)
        # Exactly: an RST to the server, the reply to the client, then 221 + FIN for the QUIT,
        # then the ACK of the client's FIN.
        rst = rest[0]
        self.assertEqual((rst["src"], rst["dst"], rst["tcp.srcport"], rst["tcp.dstport"]),
                         (held["src"], held["dst"], held["tcp.srcport"], held["tcp.dstport"]))
        self.assertEqual(rst["flags"], 0x14)  # RST, ACK
        self.assertEqual((rst["seq"], rst["ack"]), (held["seq"], held["ack"]))
        reply = rest[1]
        self.assertEqual((reply["src"], reply["dst"], reply["tcp.srcport"], reply["tcp.dstport"]),
                         (held["dst"], held["src"], held["tcp.dstport"], held["tcp.srcport"]))
        self.assertEqual(reply["flags"], 0x18)  # PSH, ACK
        self.assertEqual(reply["seq"], held["ack"])
        self.assertEqual(reply["ack"], held["seq"] + len(held["payload"]))
        self.assertTrue(reply["payload"].startswith(code + b" "), reply["payload"])
        self.assertTrue(reply["payload"].endswith(b"\r\n"))
        m = re.fullmatch(text_re, reply["payload"][:-2].decode())
        self.assertIsNotNone(m, reply["payload"])
        self.assertEqual(m.group("ref"), verdict["verdict"]["reference"])
        bye = rest[2]
        self.assertEqual(bye["payload"], b"221 2.0.0 Bye\r\n")
        self.assertEqual(bye["flags"], 0x19)  # FIN, PSH, ACK
        self.assertEqual(bye["seq"], reply["seq"] + len(reply["payload"]))
        self.assertEqual(bye["ack"], reply["ack"] + len(b"QUIT\r\n"))
        last = rest[3]
        self.assertEqual(last["flags"], 0x10)
        self.assertEqual((last["seq"], last["ack"]), (bye["seq"] + len(bye["payload"]) + 1, bye["ack"] + 1))
        self.assertEqual(len(rest), 4, rest)
        for r in rest:
            self.assertEqual(r["tcp.checksum.status"], "1", r)  # 1: good
            if r["ip.src"]:
                self.assertEqual(r["ip.checksum.status"], "1", r)
                self.assertEqual(r["ip.ttl"], "64")
            else:
                self.assertEqual(r["ipv6.hlim"], "64")
            self.assertEqual(r["vlan.id"], held["vlan.id"])
        # Towards the client the Ethernet addresses are the server's frames' ones.
        srv = in_rows[ends[0] - 1]
        self.assertEqual((reply["eth.src"], reply["eth.dst"]), (srv["eth.src"], srv["eth.dst"]))
        self.assertEqual((rst["eth.src"], rst["eth.dst"]), (held["eth.src"], held["eth.dst"]))

    def run_blocked(self, name, action, code, text_re, **conv_args):
        conv, ends = session(**conv_args)
        pcap, out, ev = self.replay(name, conv.frames, "actions: {clean: %s}\n" % action)
        self.assertEqual(len(ev.of("verdict")), 1)
        verdict = ev.of("verdict")[0]
        self.assertEqual(verdict["verdict"]["action"], action)
        self.assertEqual(verdict["verdict"]["enforcement"], action + "ed" if action == "reject" else "deferred")
        self.check_blocked(conv, ends, tshark(out), tshark(pcap), code, text_re, verdict)
        # The smtp event shows the reply the client received; the flow closed cleanly.
        self.assertEqual(ev.smtp[0]["smtp"]["server_reply"], int(code))
        self.assertEqual(ev.flow[0]["flow"]["reason"], "fin")
        st = self.enforce_stats(ev)
        self.assertEqual((st["messages_held"], st[action + "ed" if action == "reject" else "deferred"]), (1, 1))
        self.assertEqual((st["injected"], st["inject_failed"], st["gated"], st["blocked"]), (4, 0, 0, 0))
        return ev

    def test_reject_ipv4(self):
        self.run_blocked("reject4", "reject", b"550",
                         r"550 5\.7\.1 Message rejected: policy \(reference (?P<ref>[0-9a-f]{8}-1-0)\)")

    def test_defer_ipv4(self):
        self.run_blocked("defer4", "defer", b"451",
                         r"451 4\.7\.1 Message deferred: policy, try again later \(reference (?P<ref>\S+)\)")

    def test_reject_ipv6(self):
        self.run_blocked("reject6", "reject", b"550", r"550 5\.7\.1 .*\(reference (?P<ref>\S+)\)",
                         client="2001:db8::10", server="2001:db8::2")

    def test_reject_vlan(self):
        self.run_blocked("rejectvlan", "reject", b"550", r"550 5\.7\.1 .*\(reference (?P<ref>\S+)\)", vlan=42)

    def test_reply_text_is_configured(self):
        conv, ends = session()
        _, out, ev = self.replay("custom", conv.frames,
                                 "actions: {clean: reject}\nenforce: {reject_reply: '554 5.7.0 No ({reference})'}\n")
        ref = ev.of("verdict")[0]["verdict"]["reference"]
        self.assertIn(("554 5.7.0 No (%s)\r\n" % ref).encode(), [r["payload"] for r in tshark(out)])

    def test_pass_and_monitor_leave_the_capture_unchanged(self):
        conv, ends = session()
        for action in ("pass", "monitor"):
            pcap, out, ev = self.replay("p_" + action, conv.frames, "actions: {clean: %s}\n" % action)
            self.assertEqual([f for _, f in pcapfile.read_pcap(out)[1]], conv.frames)
            self.assertEqual(ev.of("verdict")[0]["verdict"]["enforcement"], "released")
            self.assertEqual(ev.smtp[0]["smtp"]["server_reply"], 250)
            st = self.enforce_stats(ev)
            self.assertEqual((st["messages_held"], st["passed"], st["injected"]), (1, 1, 0))

    def test_second_message_of_a_session_rejected_first_delivered(self):
        # Message 1 is clean (passes), message 2 carries an encrypted archive (unscannable
        # `encrypted`, configured to reject).
        conv, ends = session(messages=((RAW,), (encrypted_zip_message(),)))
        pcap, out, ev = self.replay("two", conv.frames, "actions: {unscannable: {encrypted: reject}}\n")
        verdicts = sorted(ev.of("verdict"), key=lambda v: v["transaction"])
        self.assertEqual([(v["verdict"]["action"], v["verdict"]["enforcement"]) for v in verdicts],
                         [("pass", "released"), ("reject", "rejected")])
        in_rows, out_rows = tshark(pcap), tshark(out)
        # Up to the second message's end, everything left unchanged (the first message's end and
        # the server's 250 for it included).
        key = lambda r: (r["src"], r["seq"], r["ack"], r["flags"], r["payload"])  # noqa: E731
        self.assertEqual([key(r) for r in out_rows[:ends[1]]], [key(r) for r in in_rows[:ends[1]]])
        held = in_rows[ends[1]]
        rest = out_rows[ends[1]:]
        self.assertEqual([r["flags"] for r in rest], [0x14, 0x18, 0x19, 0x10])
        self.assertEqual(rest[1]["seq"], held["ack"])
        self.assertTrue(rest[1]["payload"].startswith(b"550 5.7.1 Message rejected: content that cannot be inspected"))
        smtp = sorted(ev.smtp, key=lambda e: e["transaction"])
        self.assertEqual([e["smtp"]["server_reply"] for e in smtp], [250, 550])

    def smuggling_session(self, terminator):
        """One DATA stream whose first message (a multipart) ends with `terminator` (an end of data
        some servers accept), followed in the same segment by a second message with an attachment,
        then by a last part of the first message with an attachment of its own (which only a
        server reading the stream as one message sees)."""
        conv = tcpgen.Conversation(client="192.0.2.30", cport=42000)
        tcpgen.smtp_open(conv)
        conv.send("c", b"MAIL FROM:<a@example.org>\r\n")
        conv.send("s", b"250 2.1.0 Ok\r\n")
        conv.send("c", b"RCPT TO:<b@example.net>\r\n")
        conv.send("s", b"250 2.1.5 Ok\r\n")
        conv.send("c", b"DATA\r\n")
        conv.send("s", b"354 go\r\n")
        smuggled = (b"MAIL FROM:<ceo@example.net>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
                    b"From: ceo@example.net\r\nSubject: smuggled\r\nMIME-Version: 1.0\r\n"
                    b"Content-Type: multipart/mixed; boundary=\"z\"\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\n"
                    b"pay now\r\n--z\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Disposition: attachment; filename=\"pay.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                    + base64.b64encode(b"smuggled payload") + b"\r\n--z--\r\n")
        tail = (b"--outer\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Disposition: attachment; filename=\"tail.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                + base64.b64encode(b"tail payload") + b"\r\n--outer--\r\n")
        conv.send("c", b"From: a@example.org\r\nSubject: first\r\nMIME-Version: 1.0\r\n"
                       b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\n"
                       b"Content-Type: text/plain\r\n\r\nhello" + terminator + smuggled + tail + b".\r\n")
        conv.send("s", b"250 2.0.0 Ok: queued\r\n")
        tcpgen.smtp_quit(conv)
        end = [i for i, f in enumerate(conv.frames) if b"hello" in f][0]
        return conv, end

    SMUGGLING = (("lf_lf", b"\n.\n"), ("crlf_lf", b"\r\n.\n"), ("lf_crlf", b"\n.\r\n"), ("cr_cr", b"\r.\r"),
                 ("crlf_cr", b"\r\n.\r"))

    def test_smtp_smuggling_is_rejected_and_both_readings_inspected(self):
        pay = ("pay.exe", hashlib.sha256(b"smuggled payload").hexdigest())
        tail = ("tail.bin", hashlib.sha256(b"tail payload").hexdigest())
        for name, terminator in self.SMUGGLING:
            with self.subTest(name):
                conv, end = self.smuggling_session(terminator)
                pcap, out, ev = self.replay("smuggle_" + name, conv.frames, "")
                verdicts = ev.of("verdict")
                primary = sorted((v for v in verdicts if "reading" not in v["verdict"]), key=lambda v: v["transaction"])
                first = primary[0]["verdict"]
                self.assertEqual((first["action"], first["enforcement"]), ("reject", "rejected"))
                self.assertIn("smtp_smuggling", first["reasons"])
                bare_lf = name in ("lf_lf", "crlf_lf", "lf_crlf")
                anomalies = {a["anomaly"]["type"] for a in ev.anomaly}
                self.assertIn("bare_lf_terminator" if bare_lf else "bare_cr_terminator", anomalies)
                files = {(f["file"]["filename"], f["file"].get("sha256"), f["transaction"],
                          f["file"].get("reading", "primary")) for f in ev.of("file")}
                if bare_lf:
                    # Sluice splits there: the smuggled message is a message of its own (transaction
                    # 1); the strict reading (one message to CRLF.CRLF) finds the first message's
                    # last part, which the split hides among the commands.
                    self.assertEqual(files, {pay + (1, "primary"), tail + (0, "one_message")})
                    # The smuggled message, sent before its DATA's 354, is read at once (enforcing:
                    # `data_before_reply`): it ended in the rejected segment and shares its fate.
                    self.assertEqual([(v["transaction"], v["verdict"]["enforcement"]) for v in primary],
                                     [(0, "rejected"), (1, "rejected")])
                    self.assertEqual(primary[1]["verdict"]["reference"], first["reference"])
                    self.assertIn("data_before_reply", anomalies)
                else:
                    # Sluice reads on: one message with the last part; a server that ends lines at
                    # a bare CR sees the smuggled message, read here as the split reading.
                    self.assertEqual(files, {tail + (0, "primary"), pay + (0, "split")})
                others = [v["verdict"] for v in verdicts if "reading" in v["verdict"]]
                self.assertEqual([v["reading"] for v in others], ["one_message" if bare_lf else "split"])
                self.assertIn("smtp_smuggling", others[0]["reasons"])
                self.assertNotIn("enforcement", others[0])  # nothing of a reading is held
                self.assertEqual(sum(lc["reassembly"]["readings"] for lc in ev.stats["lcores"]
                                     if "reassembly" in lc), 1)
                # Nothing of the DATA stream's end reaches the server: the client got the 550.
                in_rows, out_rows = tshark(pcap), tshark(out)
                held = in_rows[end]
                self.assertFalse([r for r in out_rows if r["src"] == held["src"] and r["payload"]
                                  and r["seq"] >= held["seq"]])
                self.assertTrue(any(r["payload"].startswith(b"550 5.7.1") for r in out_rows))

    def test_smuggling_action_is_configured(self):
        conv, end = self.smuggling_session(b"\n.\n")
        _, out, ev = self.replay("smuggle_pass", conv.frames, "actions: {smuggling: monitor}\n")
        first = sorted((v for v in ev.of("verdict") if "reading" not in v["verdict"]),
                       key=lambda v: v["transaction"])[0]["verdict"]
        self.assertEqual((first["action"], first["enforcement"]), ("monitor", "released"))
        self.assertEqual([f for _, f in pcapfile.read_pcap(out)[1]], conv.frames)

    def test_tap_mode_replay_without_output_reports_no_enforcement(self):
        conv, _ = session()
        d = self.tmp.name
        pcap = os.path.join(d, "tap.pcap")
        pcapfile.write_pcap(pcap, [(T0 + i * 0.001, f) for i, f in enumerate(conv.frames)])
        cfg = os.path.join(d, "tap.yaml")
        with open(cfg, "w") as f:
            f.write("actions: {clean: reject}\n")
        ev_path = os.path.join(d, "tap.events.json")
        r = sluiced.run(["--config", cfg, "--replay", pcap, "--events", ev_path])
        self.assertEqual(r.returncode, 0, r.stderr)
        ev = sluiced.Events(sluiced.events(ev_path), r)
        v = ev.of("verdict")[0]["verdict"]
        self.assertEqual(v["action"], "reject")  # evaluated and reported
        self.assertNotIn("enforcement", v)
        self.assertNotIn("enforce", ev.stats["lcores"][0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
