"""End to end, live: retrospective verdicts on a running sluiced (tap mode on a veth, net_af_packet)
with a real sluice-cloud, a heartbeat of 1 s:

1. two mails carry a file the cloud calls unknown; both pass and are recorded as sightings;
2. the admin API marks the file malicious: within one heartbeat a `retrospective` event names both
   messages and a `retrospective_verdict` alert goes to the webhook receiver;
3. the verdict cache learnt it: a third mail with the file is rejected from the cache, without a
   look-up;
4. sluiced is restarted with a heartbeat of an hour; once its start-up heartbeat has ended, the
   cloud marks a second file, seen before the restart, malicious, and SIGUSR1 asks for a heartbeat
   at once: it reports that file (the sightings and the cursor persisted), and only that one.
"""
import hashlib
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cloud  # noqa: E402
import receivers  # noqa: E402
import tcpgen  # noqa: E402
from daemon import TapTest, read_events, wait_for  # noqa: E402


def mail(i, attachments):
    return tcpgen.mail_with_attachments(i, attachments, subject=f"live {i}", message_id=f"<live-{i}@example.org>")


class RetrospectiveLive(TapTest):
    veth_prefix = "slq"

    def setUp(self):
        super().setUp()
        self.cloud = cloud.Cloud()
        self.addCleanup(self.cloud.close)
        self.hook = receivers.Webhook()
        self.addCleanup(self.hook.close)

    def of(self, kind):
        return [e[kind] for e in read_events(self.events) if e["event_type"] == kind]

    def start(self, cfg):
        self.dmn = self.start_daemon(["--config", cfg])

    def verdict_of(self, port):
        found = []

        def seen():
            found[:] = [e["verdict"] for e in read_events(self.events)
                        if e["event_type"] == "verdict" and e["src_port"] == port]
            return found
        self.assertTrue(wait_for(seen, timeout=15), f"no verdict for the mail from port {port}")
        return found[0]

    def test_a_change_is_reported_within_one_heartbeat_and_after_a_restart(self):
        state = os.path.join(self.d, "state")
        cfg = os.path.join(self.d, "sluiced.yaml")
        with open(cfg, "w") as f:
            f.write(self.tap_config() + f"""state: {{dir: {state}}}
events: {{path: {self.events}}}
appliance: {{name: live-gw}}
reputation:
  endpoints:
    - {{name: lab, kind: sluice, url: '{self.cloud.url}', api_key: test-key}}
retrospective: {{interval_s: 1}}
notifications:
  webhook: {{url: '{self.hook.url}'}}
""")
        first, second = b"first file, unknown today" * 20, b"second file, unknown today" * 20
        sha1, sha2 = hashlib.sha256(first).hexdigest(), hashlib.sha256(second).hexdigest()
        self.start(cfg)
        # 1. Two mails with the first file (the second mail also with the second file).
        self.send(mail(0, [("one.bin", first)]))
        self.send(mail(1, [("one-again.bin", first), ("two.bin", second)]))
        for port in (41000, 41001):
            self.assertEqual(self.verdict_of(port)["disposition"], "clean")
        # The sightings are written within 200 ms of the verdicts.
        self.assertTrue(wait_for(lambda: os.path.exists(os.path.join(state, "sightings.sqlite"))))

        # 2. The file turns malicious: within one heartbeat (1 s; 5 s allowed for a loaded machine).
        self.cloud.set_disposition(sha1, "malicious", threat_name="Live.Retro")
        self.assertTrue(wait_for(lambda: self.of("retrospective"), timeout=5), self.dmn.stderr())
        reports = self.of("retrospective")
        self.assertEqual(len(reports), 1)
        r = reports[0]
        self.assertEqual((r["sha256"], r["new"], r["threat_name"], r["messages_total"]), (sha1, "malicious", "Live.Retro", 2))
        self.assertEqual(sorted((m["subject"], m["mail_from"], m["filename"], m["message_id"]) for m in r["messages"]),
                         [("live 0", "s0@example.org", "one.bin", "<live-0@example.org>"),
                          ("live 1", "s1@example.org", "one-again.bin", "<live-1@example.org>")])
        self.assertTrue(all(m["appliance"] == "live-gw" and m["rcpt_to"] == ["inbox@example.net"] for m in r["messages"]))
        self.assertTrue(receivers.wait_until(lambda: self.hook.posts, timeout=5))
        self.assertEqual(self.hook.posts[0]["json"]["alert"]["details"]["sha256"], sha1)

        # 3. The cache learnt it: the next mail with the file is rejected without a look-up.
        self.send(mail(2, [("three.bin", first)]))
        v = self.verdict_of(41002)
        self.assertEqual((v["disposition"], v["action"]), ("malicious", "reject"))
        files = [e["file"] for e in read_events(self.events) if e["event_type"] == "file" and e["src_port"] == 41002]
        self.assertEqual(files[0]["verdict_source"], "cache")

        # 4. Restarted, with an hourly heartbeat: the start-up one, then one on demand (SIGUSR1).
        self.assertEqual(self.dmn.stop(signal.SIGTERM), 0, self.dmn.stderr())
        stats = [e["stats"] for e in read_events(self.events) if e["event_type"] == "stats"][-1]
        self.assertGreaterEqual(stats["retrospective"]["completed"], 2)
        self.assertEqual(stats["retrospective"]["reports"], 1)
        self.assertEqual(stats["sightings"]["recorded"], 3)
        with open(cfg) as f:
            text = f.read().replace("retrospective: {interval_s: 1}", "retrospective: {interval_s: 3600}\n"
                                    "stats: {interval_s: 1}")
        with open(cfg, "w") as f:
            f.write(text)
        os.rename(self.events, self.events + ".first")
        self.start(cfg)

        def started_up():
            s = [e["stats"] for e in read_events(self.events) if e["event_type"] == "stats"]
            return s and s[-1]["retrospective"]["completed"] >= 1
        self.assertTrue(wait_for(started_up, timeout=10), self.dmn.stderr())
        self.assertEqual(self.of("retrospective"), [])
        self.cloud.set_disposition(sha2, "malicious", threat_name="Live.Second")
        self.dmn.proc.send_signal(signal.SIGUSR1)
        self.assertTrue(wait_for(lambda: self.of("retrospective"), timeout=5), self.dmn.stderr())
        reports = self.of("retrospective")
        self.assertEqual(len(reports), 1)
        r = reports[0]
        self.assertEqual((r["sha256"], r["messages_total"], r["messages"][0]["subject"], r["messages"][0]["filename"]),
                         (sha2, 1, "live 1", "two.bin"))
        self.assertEqual(self.dmn.stop(signal.SIGTERM), 0, self.dmn.stderr())

    def test_a_feed_that_keeps_failing_raises_an_alert_and_its_recovery_another(self):
        cfg = os.path.join(self.d, "sluiced.yaml")
        with open(cfg, "w") as f:
            f.write(self.tap_config() + f"""state: {{dir: {os.path.join(self.d, "state")}}}
events: {{path: {self.events}}}
reputation:
  endpoints:
    - {{name: lab, kind: sluice, url: '{self.cloud.url}', api_key: test-key, request_timeout_ms: 500,
        connect_timeout_ms: 500}}
retrospective: {{interval_s: 3600, failures_before_alert: 2}}
stats: {{interval_s: 1}}
""")
        self.start(cfg)

        def completed(n):
            def check():
                s = [e["stats"] for e in read_events(self.events) if e["event_type"] == "stats"]
                return s and s[-1]["retrospective"]["completed"] >= n
            return check
        self.assertTrue(wait_for(completed(1), timeout=10), self.dmn.stderr())
        alerts = lambda: [a for a in self.of("alert") if a["type"].startswith("retrospective_endpoint")]  # noqa: E731
        self.cloud.stop()
        # One failed heartbeat: no alert yet; the second: retrospective_endpoint_failing, once.
        self.dmn.proc.send_signal(signal.SIGUSR1)
        self.assertTrue(wait_for(completed(2), timeout=10), self.dmn.stderr())
        self.assertEqual(alerts(), [])
        for n in (3, 4):
            self.dmn.proc.send_signal(signal.SIGUSR1)
            self.assertTrue(wait_for(completed(n), timeout=10), self.dmn.stderr())
        self.assertEqual([(a["type"], a["severity"], a["endpoint"]) for a in alerts()],
                         [("retrospective_endpoint_failing", "warning", "lab")])
        self.assertIn("failed 2 heartbeats in a row", alerts()[0]["message"])
        # Back: the next heartbeat succeeds and says so.
        self.cloud.start()
        self.dmn.proc.send_signal(signal.SIGUSR1)
        self.assertTrue(wait_for(lambda: len(alerts()) == 2, timeout=10), self.dmn.stderr())
        self.assertEqual([(a["type"], a["severity"]) for a in alerts()],
                         [("retrospective_endpoint_failing", "warning"), ("retrospective_endpoint_recovered", "info")])
        self.assertEqual(self.dmn.stop(signal.SIGTERM), 0, self.dmn.stderr())


if __name__ == "__main__":
    unittest.main(verbosity=2)
