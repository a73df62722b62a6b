"""File analysis end to end (issue 12): a real sluice-cloud on loopback with its analysis side
(samples, an analysis engine on ClamAV and the project's signatures, `--analysis-seconds`),
generated SMTP captures replayed through sluiced with `reputation.endpoints` and
`analysis.endpoints` pointing at it, and the `file`, `analysis` and `verdict` events checked:

- one unknown macro document in three messages is uploaded once (`submitted`, then `waiting` for
  the other two), every message is `pending` (action `defer`), and once the analysis completes each
  gets its final `verdict`; the completion writes the verdict cache, so a rescan is decided by the
  cache and nothing is uploaded again;
- the score maps to a disposition by `analysis.malicious_score`: the same kind of sample comes out
  malicious or clean by the threshold alone;
- files that are not candidates: a plain document (`not_dynamic`), text (`type`), a file the
  cloud does not ask for;
- another appliance's upload: `already_known`, no second upload;
- the service's daily sample limit (`rejected`), a full upload queue (`queue_full`), the analysis
  endpoint down (`unreachable`), more messages waiting than `analysis.max_waiting_messages`;
- a submission and its message's quarantine entry survive sluiced's SIGKILL: the entry is intact,
  the next start resumes polling the submission and it completes; a submission older than
  `analysis.max_age_h` ages out (`expired`);
- a message larger than the RX spool is analysed but not stored (`quarantine: not_stored`);
- the File Analysis quarantine keeps each waiting message's exact bytes (their SHA-256 is the
  `smtp` event's `message_sha256`) with its envelope and files, and releases it with the final
  verdict's action.
"""
import glob
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cloud  # noqa: E402
import pcapfile  # noqa: E402
import sluiced  # noqa: E402
import tcpgen  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "data", "preclass")


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def frames_of(messages):
    """One SMTP session per (index, [(filename, bytes)]) message; client port 41000 + index."""
    frames = []
    for i, attachments in messages:
        frames += tcpgen.mail_with_attachments(i, attachments, message_id=f"<ana-{i}@example.org>")
    return frames


def quarantine_entries(state):
    """{id: (metadata, message bytes)} of STATE/quarantine."""
    out = {}
    for meta in glob.glob(os.path.join(state, "quarantine", "*.meta")):
        with open(meta, "rb") as f:
            header, body = f.read().split(b"\n", 1)
        m = json.loads(body)
        with open(meta[:-len(".meta")] + ".eml", "rb") as f:
            out[m["id"]] = (m, f.read())
    return out


def config(c, state=None, analysis="", url=None):
    text = (f"reputation:\n  endpoints:\n    - {{name: lab, kind: sluice, url: '{c.url}', api_key: test-key}}\n"
            f"analysis:\n  endpoints:\n    - {{name: sandbox, kind: sluice, url: '{url or c.url}', api_key: test-key}}\n"
            f"  poll_interval_s: 1\n")
    for line in analysis.splitlines():
        text += f"  {line}\n"
    if state:
        text += f"state: {{dir: {state}}}\n"
    return text


class Analysis(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sluice-ana-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def cloud(self, **kw):
        kw.setdefault("analysis_seconds", 1)
        c = cloud.Cloud(**kw)
        self.addCleanup(c.close)
        return c

    def write_config(self, text, name):
        path = os.path.join(self.tmp, name + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def replay(self, frames, cfg_text, name="capture", wait=0, timeout=120):
        cfg = self.write_config(cfg_text + f"replay: {{wait_analysis_s: {wait}}}\n", name)
        return sluiced.replay_frames(frames, self.tmp, name=name, args=["--config", cfg], timeout=timeout)

    @staticmethod
    def analysis(ev, status=None):
        return [e["analysis"] for e in ev.of("analysis") if status is None or e["analysis"]["status"] == status]

    @staticmethod
    def verdicts(ev, final=False):
        return {e["src_port"] - 41000: e["verdict"] for e in ev.of("verdict")
                if bool(e["verdict"].get("final")) == final}

    # ---------------------------------------------------------------------------------------

    def test_one_upload_for_three_messages_then_final_verdicts_and_the_cache(self):
        doc = fixture("macro.docm")
        c = self.cloud()
        state = os.path.join(self.tmp, "state")
        cfg = config(c, state, "malicious_score: 1")
        ev = self.replay(frames_of([(0, [("q3.docm", doc)]), (1, [("q3.docm", doc)]), (2, [("copy.docm", doc)])]),
                         cfg, wait=60)
        submitted = self.analysis(ev, "submitted")
        self.assertEqual(len(submitted), 1, ev.of("analysis"))
        self.assertEqual(submitted[0]["sha256"], sha(doc))
        self.assertEqual(submitted[0]["endpoint"], "sandbox")
        self.assertIn("vba_macro", submitted[0]["dynamic"])
        self.assertEqual(len(self.analysis(ev, "waiting")), 2)
        files = [e["file"] for e in ev.of("file")]
        self.assertEqual(sorted(f["analysis"] for f in files), ["submitted", "waiting", "waiting"])
        self.assertTrue(all(f["upload"] for f in files))
        first = self.verdicts(ev)
        self.assertEqual(sorted(first), [0, 1, 2])
        for v in first.values():
            self.assertEqual(v["disposition"], "pending")
            self.assertEqual(v["action"], "defer")
            self.assertEqual(v["pending"], 1)
        complete = self.analysis(ev, "complete")
        self.assertEqual(len(complete), 1)
        self.assertGreaterEqual(complete[0]["score"], 1)
        self.assertEqual(complete[0]["disposition"], "malicious")
        self.assertEqual(complete[0]["messages"], 3)
        final = self.verdicts(ev, final=True)
        self.assertEqual(sorted(final), [0, 1, 2])
        for v in final.values():
            self.assertEqual(v["disposition"], "malicious")
            self.assertEqual(v["action"], "reject")
            self.assertEqual(v["files"][0]["sha256"], sha(doc))
            self.assertTrue(v["quarantine"]["released"])
        # The File Analysis quarantine kept each message's exact bytes (their SHA-256 is the smtp
        # event's message_sha256), with its envelope, and released it with the final action.
        entries = quarantine_entries(state)
        self.assertEqual(sorted(entries), sorted(v["quarantine"]["id"] for v in final.values()))
        smtp = {e["src_port"] - 41000: e["smtp"] for e in ev.smtp}
        for i, v in final.items():
            meta, eml = entries[v["quarantine"]["id"]]
            self.assertEqual(sha(eml), smtp[i]["message_sha256"])
            self.assertEqual(meta["message_sha256"], smtp[i]["message_sha256"])
            self.assertEqual((meta["mail_from"], meta["rcpt_to"], meta["subject"]),
                             (f"s{i}@example.org", ["inbox@example.net"], f"message {i}"))
            self.assertEqual((meta["state"], meta["action"], meta["by"]), ("released", "reject", "analysis"))
            self.assertEqual(meta["files"][0]["sha256"], sha(doc))
        st = ev.stats["analysis"]
        self.assertEqual((st["submitted"], st["waiting"], st["completed"], st["final_verdicts"]), (1, 2, 1, 3))
        # A rescan: the cache (kept in state.dir) decides; nothing is asked or uploaded.
        again = self.replay(frames_of([(5, [("again.docm", doc)])]), cfg, name="again")
        self.assertEqual(self.analysis(again), [])
        self.assertEqual(again.of("file")[0]["file"]["reputation"], "malicious")
        self.assertEqual(again.of("file")[0]["file"]["verdict_source"], "cache")
        self.assertEqual(self.verdicts(again)[5]["disposition"], "malicious")

    def test_a_clean_scoring_and_a_malicious_scoring_sample(self):
        # sluice-cloud's engine scores an auto-run macro 50 and a PE inside a document 80
        # (control/cloud/API.md); the default analysis.malicious_score is 70.
        macro, pe_doc = fixture("macro.docm"), fixture("pe_object.docx")
        c = self.cloud()
        ev = self.replay(frames_of([(0, [("report.docm", macro)]), (1, [("invoice.docx", pe_doc)])]), config(c),
                         wait=60)
        complete = {x["sha256"]: x for x in self.analysis(ev, "complete")}
        self.assertEqual(sorted(complete), sorted([sha(macro), sha(pe_doc)]))
        self.assertLess(complete[sha(macro)]["score"], 70)
        self.assertEqual(complete[sha(macro)]["disposition"], "clean")
        self.assertGreaterEqual(complete[sha(pe_doc)]["score"], 70)
        self.assertEqual(complete[sha(pe_doc)]["disposition"], "malicious")
        final = self.verdicts(ev, final=True)
        self.assertEqual((final[0]["disposition"], final[0]["action"]), ("clean", "pass"))
        self.assertEqual((final[1]["disposition"], final[1]["action"]), ("malicious", "reject"))
        self.assertEqual(final[1]["files"][0]["filename"], "invoice.docx")
        # The threshold alone decides: at 100 nothing is malicious.
        c2 = self.cloud()
        ev = self.replay(frames_of([(2, [("book.docx", pe_doc)])]), config(c2, None, "malicious_score: 100"),
                         name="strict", wait=60)
        self.assertEqual(self.analysis(ev, "complete")[0]["disposition"], "clean")
        self.assertEqual(self.verdicts(ev, final=True)[2]["disposition"], "clean")

    def test_what_is_not_a_candidate(self):
        c = self.cloud()
        known = fixture("macro.doc")
        c.set_disposition(sha(known), "clean")  # the cloud knows it: not asked for
        ev = self.replay(frames_of([(0, [("plain.docx", fixture("plain.docx"))]), (1, [("notes.txt", b"plain notes\n" * 40)]),
                                    (2, [("known.doc", known)])]), config(c))
        by_port = {e["src_port"] - 41000: e["file"] for e in ev.of("file")}
        self.assertEqual(by_port[0]["analysis"], "not_sent")
        self.assertEqual(by_port[0]["upload_criterion"], "not_dynamic")
        self.assertEqual(by_port[1]["upload_criterion"], "type")
        self.assertEqual((by_port[2]["analysis"], by_port[2]["upload_criterion"]), ("not_sent", "not_wanted"))
        self.assertEqual(self.analysis(ev, "submitted"), [])
        for v in self.verdicts(ev).values():
            self.assertEqual(v["disposition"], "clean")

    def test_another_appliance_uploaded_it_already(self):
        doc = fixture("macro.docm")
        c = self.cloud(analysis_seconds=8)  # still running when the second appliance asks, even on a busy machine
        a = self.replay(frames_of([(0, [("a.docm", doc)])]), config(c, os.path.join(self.tmp, "a")), name="a")
        self.assertEqual(len(self.analysis(a, "submitted")), 1)
        b = self.replay(frames_of([(1, [("b.docm", doc)])]), config(c, os.path.join(self.tmp, "b")), name="b", wait=60)
        self.assertEqual(self.analysis(b, "submitted"), [])
        self.assertEqual(len(self.analysis(b, "already_known")), 1)
        self.assertEqual(b.of("file")[0]["file"]["analysis"], "already_known")
        self.assertEqual(len(self.analysis(b, "complete")), 1)
        self.assertEqual(len(self.verdicts(b, final=True)), 1)

    def test_sample_limit_queue_and_endpoint_down(self):
        c = self.cloud(daily_samples=1)
        docs = [("a.docm", fixture("macro.docm")), ("b.xlsm", fixture("macro.xlsm"))]
        ev = self.replay(frames_of([(0, docs[:1]), (1, docs[1:])]), config(c))
        self.assertEqual(len(self.analysis(ev, "submitted")), 1)
        rejected = self.analysis(ev, "rejected")
        self.assertEqual(len(rejected), 1)
        self.assertTrue(rejected[0].get("detail"))
        port = [e["src_port"] - 41000 for e in ev.of("analysis") if e["analysis"]["status"] == "rejected"][0]
        self.assertEqual(self.verdicts(ev)[port]["disposition"], "clean")  # released: the message goes on
        # One candidate decided at a time: the second of one message finds the queue full.
        c2 = self.cloud()
        ev = self.replay(frames_of([(0, docs)]), config(c2, None, "upload_queue: 1"), name="queue")
        crit = sorted(f["file"].get("upload_criterion", f["file"]["analysis"]) for f in ev.of("file"))
        self.assertEqual(crit, ["queue_full", "submitted"])
        # No analysis endpoint answers: not sent, the message goes on.
        c3 = self.cloud()
        ev = self.replay(frames_of([(0, docs[:1])]), config(c3, None, "decision_ms: 2000", url="http://127.0.0.1:9"),
                         name="down")
        f = ev.of("file")[0]["file"]
        self.assertEqual((f["analysis"], f["upload_criterion"]), ("not_sent", "unreachable"))
        self.assertEqual(self.verdicts(ev)[0]["disposition"], "clean")

    def test_at_most_max_waiting_messages_wait(self):
        doc = fixture("macro.docm")
        c = self.cloud()
        ev = self.replay(frames_of([(i, [(f"m{i}.docm", doc)]) for i in range(3)]),
                         config(c, None, "max_waiting_messages: 1"), wait=60)
        files = sorted((e["src_port"] - 41000, e["file"]["analysis"], e["file"].get("upload_criterion"))
                       for e in ev.of("file"))
        held = [f for f in files if f[1] == "submitted"]
        self.assertEqual(len(held), 1)
        self.assertEqual([f[1:] for f in files if f[1] != "submitted"], [("not_sent", "queue_full")] * 2)
        final = self.verdicts(ev, final=True)
        self.assertEqual(sorted(final), [held[0][0]])  # only the held message waits for the result
        self.assertEqual(ev.stats["analysis"]["waiting_full"], 2)

    def test_a_message_larger_than_the_spool_is_analysed_but_not_stored(self):
        doc = fixture("macro.docm")
        big = os.urandom(1536 * 1024)  # with base64, the message passes the 1 MiB spool
        c = self.cloud()
        state = os.path.join(self.tmp, "state")
        ev = self.replay(frames_of([(0, [("q.docm", doc), ("data.bin", big)]), (1, [("small.docm", doc)])]),
                         config(c, state) + "quarantine: {spool_mb: 1}\n", wait=60)
        final = self.verdicts(ev, final=True)
        self.assertEqual(final[0]["quarantine"], "not_stored")
        self.assertTrue(final[1]["quarantine"]["released"])
        self.assertEqual(len(quarantine_entries(state)), 1)
        self.assertEqual(len(self.analysis(ev, "submitted")) + len(self.analysis(ev, "waiting")), 2)
        lcore = [x for x in ev.stats["lcores"] if x["role"] == "rx"][0]
        self.assertEqual(lcore["verdicts"]["spool_misses"], 1)

    def test_a_pending_submission_survives_sigkill_and_ages_out(self):
        doc = fixture("macro.docm")
        c = self.cloud(analysis_seconds=3)
        state = os.path.join(self.tmp, "state")
        pcap = os.path.join(self.tmp, "kill.pcap")
        pcapfile.write_pcap(pcap, frames_of([(0, [("k.docm", doc)])]))
        events = os.path.join(self.tmp, "kill.events.json")
        cfg = self.write_config(config(c, state) + "replay: {wait_analysis_s: 60}\n", "kill")
        p = subprocess.Popen([sluiced.SLUICED, "--replay", pcap, "--events", events, "--config", cfg],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while time.time() < deadline:  # killed once the submission is made, the message stored, its verdict written
            if glob.glob(os.path.join(state, "quarantine", "*.meta")) and os.path.exists(events):
                with open(events) as f:
                    text = f.read()
                if '"submitted"' in text and '"event_type":"verdict"' in text:
                    break
            time.sleep(0.05)
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stderr.close()
        with sqlite3.connect(os.path.join(state, "submissions.sqlite")) as db:
            (n,) = db.execute("SELECT count(*) FROM submissions").fetchone()
        self.assertEqual(n, 1)
        with open(events) as f:
            pending = [json.loads(x) for x in f if '"event_type":"verdict"' in x]
        held = quarantine_entries(state)
        self.assertEqual(len(held), 1)
        (meta, eml), = held.values()
        self.assertEqual(meta["state"], "held")
        self.assertEqual(sha(eml), pending[0]["verdict"]["message_sha256"])
        # The next start (nothing new in its capture) resumes the poll and the analysis completes.
        ev = self.replay(frames_of([(1, [("notes.txt", b"nothing to analyse\n" * 10)])]), config(c, state), name="resume",
                         wait=60)
        complete = self.analysis(ev, "complete")
        self.assertEqual([x["sha256"] for x in complete], [sha(doc)])
        # The message the killed run left held gets its final verdict, named by its first run's
        # flow identity, and its entry is released.
        final = [e for e in ev.of("verdict") if e["verdict"].get("final")]
        self.assertEqual(len(final), 1)
        self.assertEqual((final[0]["src_ip"], final[0]["src_port"]), ("198.51.100.1", 41000))
        self.assertEqual(final[0]["verdict"]["message_sha256"], sha(eml))
        self.assertEqual(final[0]["verdict"]["quarantine"], {"id": meta["id"], "released": True})
        self.assertEqual(quarantine_entries(state)[meta["id"]][0]["state"], "released")
        self.assertEqual(ev.stats["analysis"]["quarantine"]["resumed"], 1)
        # An old submission ages out at the next start.
        doc2 = fixture("macro.xlsm")
        a = self.replay(frames_of([(2, [("x.xlsm", doc2)])]), config(c, state), name="submit")
        self.assertEqual(len(self.analysis(a, "submitted")), 1)
        with sqlite3.connect(os.path.join(state, "submissions.sqlite")) as db:
            db.execute("UPDATE submissions SET submitted_ms = submitted_ms - 13 * 3600 * 1000 WHERE sha256 = ?",
                       (sha(doc2),))
        ev = self.replay(frames_of([(3, [("notes.txt", b"nothing\n" * 10)])]), config(c, state), name="aged")
        self.assertEqual([x["sha256"] for x in self.analysis(ev, "expired")], [sha(doc2)])


if __name__ == "__main__":
    unittest.main()
