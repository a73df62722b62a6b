"""End to end: per-message traces and the report's figures on a live tap-mode sluiced (a veth,
net_af_packet) with a real sluice-cloud as its reputation and analysis endpoint and a state
directory.

Three mails: one with a file the cloud calls malicious, one with a clean file, one with a macro
document the cloud does not know (uploaded, analysed in 2 s, the message held in the quarantine
until then). Then:
- the trace log is STATE/trace.log; GET /api/v1/trace finds the macro mail by Message-ID, by
  reference, by flow id and transaction and by message SHA-256, with every step in order: parsed,
  file, lookup (the endpoint that answered and its latency), upload, analysis (the submission),
  quarantine, verdict (pending), the polls and completion of its sample, the final verdict;
- the malicious mail's trace says which file decided it;
- `sluicectl trace` prints the steps (exit 0), and exits 3 for a message never seen; bad queries are
  400;
- GET /api/v1/report counts the messages per verdict and the files per reputation (the totals equal
  the events' verdicts and file reputations), names the malicious file in `top_malicious` with its
  message's subject, and gives the analysis counters.
"""
import hashlib
import http.client
import json
import os
import ssl
import subprocess
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cloud  # noqa: E402
import receivers  # noqa: E402
import sluiced  # noqa: E402
import tcpgen  # noqa: E402
from daemon import TapTest, make_tokens, read_events, wait_for  # noqa: E402

SLUICECTL = os.path.abspath(os.path.join(sluiced.BUILD, "control", "sluicectl"))
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "data", "preclass")


def sha(b):
    return hashlib.sha256(b).hexdigest()


class TraceReport(TapTest):
    veth_prefix = "slr"

    def setUp(self):
        super().setUp()
        self.cloud = cloud.Cloud(analysis_seconds=2)
        self.addCleanup(self.cloud.close)
        self.tokens, self.token_file = make_tokens(self.d)
        self.port = receivers.free_port()
        self.state = os.path.join(self.d, "state")
        cfg = os.path.join(self.d, "sluiced.yaml")
        c = self.cloud
        with open(cfg, "w") as f:
            f.write(self.tap_config() +
                    f"state: {{dir: {self.state}}}\nevents: {{path: {self.events}}}\n"
                    f"reputation:\n  endpoints:\n    - {{name: lab, kind: sluice, url: '{c.url}', api_key: test-key}}\n"
                    f"analysis:\n  poll_interval_s: 1\n  endpoints:\n"
                    f"    - {{name: sandbox, kind: sluice, url: '{c.url}', api_key: test-key}}\n"
                    f"management: {{listen: '127.0.0.1:{self.port}', token_file: {self.token_file}, rate_per_s: 1000}}\n")
        self.dmn = self.start_daemon(["--config", cfg])
        self.assertTrue(wait_for(lambda: "management API on" in self.dmn.stdout()), self.dmn.stderr())

    def call(self, path, role="read"):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=20,
                                           context=ssl._create_unverified_context())
        conn.request("GET", path, headers={"Authorization": "Bearer " + self.tokens[role]})
        r = conn.getresponse()
        body = r.read()
        conn.close()
        return r.status, json.loads(body) if body else None

    def ok(self, path):
        status, j = self.call(path)
        self.assertEqual(status, 200, j)
        return j

    def ctl(self, *args, code=0):
        env = dict(os.environ, SLUICE_TOKEN=self.tokens["read"])
        p = subprocess.run([SLUICECTL, "--url", f"https://127.0.0.1:{self.port}", *args], env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, code, p.stdout + p.stderr)
        return p.stdout

    def test_traces_and_report(self):
        bad = b"MZ" + b"trace-report malicious sample" * 20
        good = b"%PDF-1.7\n" + b"trace-report clean sample" * 20
        with open(os.path.join(FIXTURES, "macro.docm"), "rb") as f:
            doc = f.read()
        self.cloud.set_disposition(sha(bad), "malicious", threat_name="Test.Trace.Bad")
        self.cloud.set_disposition(sha(good), "clean")
        self.send(tcpgen.mail_with_attachments(0, [("bad.exe", bad)], message_id="<tr-bad@example.org>",
                                               subject="bad one"))
        self.send(tcpgen.mail_with_attachments(1, [("good.pdf", good)], message_id="<tr-good@example.org>"))
        self.send(tcpgen.mail_with_attachments(2, [("q.docm", doc)], message_id="<tr-doc@example.org>"))

        def final():
            return any(e["event_type"] == "verdict" and e["verdict"].get("final") for e in read_events(self.events))
        self.assertTrue(wait_for(final, 60), self.dmn.stderr())
        self.assertTrue(os.path.exists(os.path.join(self.state, "trace.log")))
        events = read_events(self.events)

        # --- the macro mail, every step in order, by each key ---
        smtp = {e["smtp"]["message_id"]: e for e in events if e["event_type"] == "smtp"}
        doc_msg = smtp["<tr-doc@example.org>"]

        def doc_trace():
            status, j = self.call("/api/v1/trace?message_id=" + urllib.parse.quote("<tr-doc@example.org>"))
            return j if status == 200 and any(s["step"] == "final_verdict" for s in j["messages"][0]["steps"]) else None
        self.assertTrue(wait_for(doc_trace, 10))
        t = doc_trace()
        self.assertEqual(len(t["messages"]), 1)
        m = t["messages"][0]
        self.assertEqual((m["flow_id"], m["transaction"], m["message_sha256"], m["message_id"]),
                         (doc_msg["flow_id"], 0, doc_msg["smtp"]["message_sha256"], "<tr-doc@example.org>"))
        steps = [s["step"] for s in m["steps"]]
        self.assertEqual(steps[0], "parsed")
        for earlier, later in (("file", "lookup"), ("lookup", "upload"), ("upload", "verdict"),
                               ("verdict", "poll"), ("poll", "complete"), ("complete", "final_verdict")):
            self.assertLess(steps.index(earlier), steps.index(later), steps)
        for needed in ("analysis", "quarantine"):
            self.assertIn(needed, steps)
        by = {s["step"]: s for s in m["steps"]}
        self.assertEqual(by["lookup"]["source"], "lab")
        self.assertGreater(by["lookup"]["latency_ms"], 0)
        self.assertEqual((by["lookup"]["reputation"], by["lookup"]["upload_wanted"]), ("unknown", True))
        self.assertEqual(by["upload"]["analysis"], "submitted")
        self.assertEqual(by["analysis"]["status"], "submitted")
        self.assertEqual(by["analysis"]["endpoint"], "sandbox")
        self.assertTrue(by["quarantine"]["text"].startswith("Stored in the File Analysis quarantine as "), by["quarantine"])
        self.assertEqual(by["verdict"]["disposition"], "pending")
        self.assertEqual(by["complete"]["sha256"], sha(doc))
        self.assertIn(by["final_verdict"]["disposition"], ("clean", "malicious"))
        for s in m["steps"]:
            self.assertTrue(s["text"].endswith("."), s)
        for q in (f"ref={m['ref']}", f"flow_id={m['flow_id']}&transaction=0",
                  f"message_sha256={m['message_sha256']}"):
            j = self.ok("/api/v1/trace?" + q)
            self.assertEqual([x["ref"] for x in j["messages"]], [m["ref"]], q)
            self.assertEqual([s["step"] for s in j["messages"][0]["steps"]], steps, q)

        # --- the malicious mail: which file decided it ---
        j = self.ok("/api/v1/trace?message_id=" + urllib.parse.quote("<tr-bad@example.org>"))
        v = [s for s in j["messages"][0]["steps"] if s["step"] == "verdict"][0]
        self.assertEqual(v["disposition"], "malicious")
        self.assertEqual(v["files"][0]["sha256"], sha(bad))
        self.assertIn('decided by "bad.exe" (Test.Trace.Bad)', v["text"])

        # --- sluicectl ---
        out = self.ctl("trace", "<tr-doc@example.org>")
        self.assertIn(f"message {m['ref']}", out)
        self.assertIn("final_verdict", out)
        self.assertIn(by["analysis"]["text"], out)
        self.assertEqual(self.ctl("trace", m["ref"]), out)
        self.assertEqual(self.ctl("trace", f"{m['flow_id']}:0"), out)
        self.assertEqual(self.ctl("trace", m["message_sha256"]), out)
        self.assertEqual(json.loads(self.ctl("--json", "trace", m["ref"]))["messages"][0]["ref"], m["ref"])
        self.ctl("trace", "<never@example.org>", code=3)
        for q in ("", "?ref=x&message_id=y", "?flow_id=1", "?message_sha256=abc", "?ref=x&limit=0"):
            status, j = self.call("/api/v1/trace" + q)
            self.assertEqual(status, 400, (q, j))

        # --- the report: the totals equal the events ---
        r = self.ok("/api/v1/report?window=1h")
        self.assertEqual((r["mode"], r["bucket_s"], len(r["series"])), ("tap", 60, 60))
        verdicts = [e["verdict"] for e in events if e["event_type"] == "verdict" and not e["verdict"].get("final")]
        expected = {k: sum(1 for v in verdicts if v["disposition"] == k) for k in ("clean", "malicious", "unscannable", "pending")}
        expected["no_files"] = 0
        self.assertEqual(r["totals"]["messages"], expected)
        self.assertEqual(expected, {"clean": 1, "malicious": 1, "unscannable": 0, "pending": 1, "no_files": 0})
        files = [e["file"] for e in events if e["event_type"] == "file"]
        self.assertEqual(r["totals"]["files"]["malicious"], sum(1 for f in files if f.get("reputation") == "malicious"))
        self.assertEqual(r["totals"]["files"]["clean"], sum(1 for f in files if f.get("reputation") == "clean"))
        self.assertEqual(r["totals"]["files"]["unknown"], sum(1 for f in files if f.get("reputation") == "unknown"))
        in_series = {k: sum(b["messages"][k] for b in r["series"]) for k in expected}
        self.assertEqual(in_series, expected)
        top = r["top_malicious"]
        self.assertEqual([(f["sha256"], f["threat_name"], f["messages"], f["filenames"]) for f in top],
                         [(sha(bad), "Test.Trace.Bad", 1, ["bad.exe"])])
        self.assertEqual(top[0]["recent"][0]["subject"], "bad one")
        self.assertEqual(top[0]["recent"][0]["message_id"], "<tr-bad@example.org>")
        self.assertEqual(r["analysis"]["submitted"], 1)
        self.assertEqual(r["analysis"]["completed"], 1)
        self.assertGreater(r["totals"]["rx_bytes"], 0)
        self.assertEqual(self.call("/api/v1/report?window=2h")[0], 400)


if __name__ == "__main__":
    unittest.main()
