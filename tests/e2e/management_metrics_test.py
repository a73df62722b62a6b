"""End to end: the metrics of a live tap-mode sluiced (issue 15, "Metrics"), from `GET /metrics` and
from DPDK telemetry, against the events of the same run.

sluiced runs in tap mode on a veth with a reputation endpoint (a real sluice-cloud that knows one
file as malicious) and a named EAL instance. Four mails go through: the malicious file looked up at
the endpoint, the same file again (the lcore's verdict cache answers), an unknown file (looked up),
and a mail without an attachment. Then:
- `/metrics`, parsed by Debian's prometheus_client: messages by verdict equal the verdict events,
  files by reputation equal the file events, the lcores' cache hits and misses, the reputation
  service's counters and the endpoint's requests and latency histogram equal the exit `stats`
  event's (nothing moves between the scrape and the stop: the traffic is over);
- `dpdk-telemetry.py -f PREFIX` reads `/sluice/families` and `/sluice/metric,NAME` for the same
  families, with the same values as `/metrics`.
"""
import collections
import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import unittest
import http.client

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cloud  # noqa: E402
import sluiced  # noqa: E402
import tcpgen  # noqa: E402
from daemon import TapTest, read_events, wait_for  # noqa: E402

SLUICECTL = os.path.abspath(os.path.join(sluiced.BUILD, "control", "sluicectl"))
TELEMETRY = shutil.which("dpdk-telemetry.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def key(labels):
    return tuple(sorted(labels.items()))


class ManagementMetrics(TapTest):
    veth_prefix = "slx"

    def setUp(self):
        super().setUp()
        self.cloud = cloud.Cloud()
        self.addCleanup(self.cloud.close)
        line = subprocess.run([SLUICECTL, "token", "new", "--role", "read"], capture_output=True, text=True,
                              check=True).stdout.splitlines()[1]
        self.token_file = os.path.join(self.d, "tokens")
        with open(self.token_file, "w") as f:
            f.write(line + "\n")
        os.chmod(self.token_file, 0o600)
        self.port = free_port()
        self.state = os.path.join(self.d, "state")
        self.prefix = f"sluice-metrics-{os.getpid()}"

    def metrics(self):
        ctx = ssl.create_default_context(cafile=os.path.join(self.state, "management.crt"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        try:
            conn.request("GET", "/metrics")
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            text = r.read().decode()
        finally:
            conn.close()
        samples, types = {}, {}
        for family in text_string_to_metric_families(text):
            types[family.name] = family.type
            for s in family.samples:
                samples[(s.name, key(s.labels))] = s.value
        return samples, types, text

    def telemetry(self, commands):
        r = subprocess.run([TELEMETRY, "-f", self.prefix], input="".join(c + "\n" for c in commands),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        replies = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
        self.assertEqual(len(replies), len(commands), r.stdout)
        return [reply[c.split(",")[0]] for reply, c in zip(replies, commands)]

    def test_metrics_and_telemetry_equal_the_events_of_the_run(self):
        bad = b"metrics malicious payload" * 20
        self.cloud.set_disposition(hashlib.sha256(bad).hexdigest(), "malicious", threat_name="Metrics.Test")
        cfg = os.path.join(self.d, "sluiced.yaml")
        with open(cfg, "w") as f:
            f.write(self.tap_config().replace("eal: {memory_mb: 256}", f"eal: {{memory_mb: 256, file_prefix: {self.prefix}}}")
                    + f"""state: {{dir: {self.state}}}
events: {{path: {self.events}}}
management: {{listen: '127.0.0.1:{self.port}', token_file: {self.token_file}}}
reputation:
  endpoints:
    - {{name: lab, kind: sluice, url: '{self.cloud.url}', api_key: test-key, retries: 0}}
  budget_ms: 3000
""")
        self.dmn = self.start_daemon(["--config", cfg])
        self.assertTrue(wait_for(lambda: "management API on" in self.dmn.stdout()), self.dmn.stderr())
        mails = [tcpgen.mail_with_attachments(0, [("a0.bin", bad)], subject="m0"),
                 tcpgen.mail_with_attachments(1, [("a1.bin", bad)], subject="m1"),
                 tcpgen.mail_with_attachments(2, [("a2.bin", b"metrics unknown file" * 10)], subject="m2"),
                 tcpgen.mail_with_attachments(3, [], subject="m3")]
        for i, frames in enumerate(mails):
            self.send(frames)
            # One at a time: the second mail's file is answered by the cache the first one filled.
            self.assertTrue(wait_for(lambda: sum(e["event_type"] == "verdict" for e in read_events(self.events)) > i,
                                     15), f"no verdict for mail {i}")

        samples, types, text = self.metrics()
        # Every family announced, each sample in one (the parser would refuse otherwise).
        self.assertIn("# TYPE sluice_endpoint_latency_seconds histogram", text)
        self.assertEqual(types["sluice_endpoint_latency_seconds"], "histogram")
        tel = None
        if TELEMETRY:
            tel = self.telemetry(["/sluice/families", "/sluice/metric,sluice_verdicts_total",
                                  "/sluice/metric,sluice_files_total", "/sluice/metric,sluice_verdict_cache_lookups_total",
                                  "/sluice/metric,sluice_endpoint_latency_seconds",
                                  "/sluice/metric,sluice_port_rx_packets_total", "/sluice/help,sluice_drops_total",
                                  "/sluice/metric,no_such_family"])
        self.assertEqual(self.dmn.stop(signal.SIGTERM), 0, self.dmn.stderr())
        events = read_events(self.events)

        # Messages by verdict: the verdict events.
        verdicts = collections.Counter(e["verdict"]["disposition"] for e in events if e["event_type"] == "verdict")
        self.assertEqual(verdicts, {"malicious": 2, "clean": 2})
        for d in ("clean", "malicious", "unscannable", "pending"):
            self.assertEqual(samples[("sluice_verdicts_total", (("disposition", d),))], verdicts[d], d)
        self.assertEqual(samples[("sluice_messages_total", ())], 4)
        # Files by reputation: the file events (none: not looked up).
        files = collections.Counter(e["file"].get("reputation", "none") for e in events if e["event_type"] == "file")
        self.assertEqual(files, {"malicious": 2, "unknown": 1})
        for r in ("none", "clean", "malicious", "unknown"):
            self.assertEqual(samples[("sluice_files_total", (("reputation", r),))], files[r], r)

        # The exit stats event's counters (the run was idle since the scrape).
        stats = [e["stats"] for e in events if e["event_type"] == "stats"][-1]
        lcore = stats["lcores"][0]
        self.assertEqual(lcore["verdicts"]["files"], {"none": 0, "clean": 0, "malicious": 2, "unknown": 1})
        self.assertEqual(samples[("sluice_verdict_cache_lookups_total", (("result", "hit"),))],
                         lcore["verdicts"]["cache_hits"])
        self.assertEqual(samples[("sluice_verdict_cache_lookups_total", (("result", "miss"),))],
                         lcore["verdicts"]["cache_misses"])
        self.assertEqual((lcore["verdicts"]["cache_hits"], lcore["verdicts"]["cache_misses"]), (1, 2))
        rep = stats["reputation"]
        for name in ("requests", "cache_hits", "coalesced", "hashes_sent", "answered"):
            self.assertEqual(samples[(f"sluice_reputation_{name}_total", ())], rep[name], name)
        self.assertEqual(rep["answered"], 2)
        self.assertEqual(samples[("sluice_verdict_cache_entries", ())], rep["cache"]["entries"])
        ep = rep["endpoints"][0]
        labels = (("endpoint", "lab"), ("kind", "sluice"), ("service", "reputation"))
        self.assertEqual(samples[("sluice_endpoint_requests_total", labels)], ep["requests"])
        self.assertEqual(samples[("sluice_endpoint_failures_total", labels)], ep["failures"])
        self.assertEqual(samples[("sluice_endpoint_up", labels)], 1)
        self.assertEqual(ep["requests"], 2)
        self.assertEqual(ep["latency"]["count"], 2)
        self.assertEqual(samples[("sluice_endpoint_latency_seconds_count", labels)], 2)
        self.assertAlmostEqual(samples[("sluice_endpoint_latency_seconds_sum", labels)],
                               ep["latency"]["sum_ms"] / 1000, places=9)
        # Buckets by their bound as a number (the text writes 0.001, 10, +Inf).
        buckets = {float(dict(k[1])["le"]): v for k, v in samples.items()
                   if k[0] == "sluice_endpoint_latency_seconds_bucket" and dict(k[1])["service"] == "reputation"}
        cumulative = 0
        for bound, n in zip(ep["latency"]["bounds_ms"] + [float("inf") * 1000], ep["latency"]["counts"]):
            cumulative += n
            self.assertEqual(buckets.pop(bound / 1000), cumulative, bound)
        self.assertEqual((cumulative, buckets), (2, {}))

        if not TELEMETRY:
            self.skipTest("dpdk-telemetry.py is not installed (Debian's dpdk package)")
        families, v, f, cache, lat, ports, help_, missing = tel
        self.assertEqual(families["sluice_port_rx_packets_total"], "counter")
        self.assertEqual(families["sluice_endpoint_latency_seconds"], "histogram")
        # The same families (prometheus_client names a counter without its _total).
        self.assertEqual({n[:-6] if t == "counter" and n.endswith("_total") else n for n, t in families.items()},
                         set(types))

        def by(reply, label):
            return {s[label]: s["value"] for s in reply.values()}
        self.assertEqual(by(v, "disposition"), {d: verdicts[d] for d in ("clean", "malicious", "unscannable", "pending")})
        self.assertEqual(by(f, "reputation"), {r: files[r] for r in ("none", "clean", "malicious", "unknown")})
        self.assertEqual(by(cache, "result"), {"hit": 1, "miss": 2})
        self.assertEqual(by(ports, "port"), {"tap0": samples[("sluice_port_rx_packets_total", (("port", "tap0"),))]})
        count = [s for s in lat.values() if s["sample"] == "sluice_endpoint_latency_seconds_count"]
        self.assertEqual([(s["endpoint"], s["service"], s["value"]) for s in count], [("lab", "reputation", 2)])
        buckets = [s for s in lat.values() if s["sample"] == "sluice_endpoint_latency_seconds_bucket"]
        prom = {float(dict(k[1])["le"]): v for k, v in samples.items()
                if k[0] == "sluice_endpoint_latency_seconds_bucket" and dict(k[1])["service"] == "reputation"}
        self.assertEqual({float(s["le"]): s["value"] for s in buckets}, prom)
        self.assertEqual(len(buckets), 14)
        self.assertEqual((help_["name"], help_["type"]), ("sluice_drops_total", "counter"))
        self.assertIsNone(missing)


if __name__ == "__main__":
    unittest.main(verbosity=2)
