"""End to end, live: file reputation on a running sluiced (tap mode on a veth, net_af_packet) against
a real sluice-cloud that goes away and comes back, as an appliance meets it:

1. the cloud answers: a mail's attachment is looked up (`verdict_source` the endpoint), a second mail
   with the same attachment is answered by the verdict cache;
2. the cloud stops: the next mail's look-up fails `service_unavailable`, the verdict is
   `unscannable` with the configured action (`defer`), the circuit opens and an `endpoint_unreachable`
   alert (critical: the only endpoint) names the endpoint;
3. the cloud comes back on the same port: the health probe closes the circuit (`endpoint_recovered`)
   and the next mail is looked up again;
4. SIGTERM: the verdict cache is written to `state.dir`, the exit `stats` event counts it all.
"""
import hashlib
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cloud  # noqa: E402
import tcpgen  # noqa: E402
from daemon import TapTest, read_events, wait_for  # noqa: E402


def mail(i, attachment):
    return tcpgen.mail_with_attachments(i, [(f"a{i}.bin", attachment)], subject=f"live {i}")


class ReputationLive(TapTest):
    veth_prefix = "slr"

    def setUp(self):
        super().setUp()
        self.cloud = cloud.Cloud()
        self.addCleanup(self.cloud.close)

    def verdict_of(self, port, timeout=15):
        found = []

        def seen():
            found[:] = [e for e in read_events(self.events) if e["event_type"] == "verdict" and e["src_port"] == port]
            return found
        self.assertTrue(wait_for(seen, timeout=timeout), f"no verdict for the mail from port {port}")
        files = [e["file"] for e in read_events(self.events) if e["event_type"] == "file" and e["src_port"] == port]
        return found[0]["verdict"], files[0]

    def alerts(self):
        return [e["alert"] for e in read_events(self.events) if e["event_type"] == "alert"]

    def test_the_circuit_opens_when_the_cloud_goes_and_closes_when_it_returns(self):
        state = os.path.join(self.d, "state")
        cfg = os.path.join(self.d, "sluiced.yaml")
        with open(cfg, "w") as f:
            f.write(self.tap_config() + f"""state: {{dir: {state}}}
events: {{path: {self.events}}}
reputation:
  endpoints:
    - {{name: lab, kind: sluice, url: '{self.cloud.url}', api_key: test-key, breaker_failures: 1,
       health_interval_ms: 200, retries: 0, connect_timeout_ms: 500, request_timeout_ms: 500}}
  budget_ms: 2000
actions:
  lookup_error: {{service_unavailable: defer}}
""")
        bad = b"live malicious payload" * 20
        self.cloud.set_disposition(hashlib.sha256(bad).hexdigest(), "malicious", threat_name="Live.Test")
        self.dmn = self.start_daemon(["--config", cfg])

        # 1. Answered by the endpoint, then by the cache.
        self.send(mail(0, bad))
        v, f = self.verdict_of(41000)
        self.assertEqual((v["disposition"], v["action"], f["verdict_source"]), ("malicious", "reject", "lab"))
        self.send(mail(1, bad))
        v, f = self.verdict_of(41001)
        self.assertEqual((v["disposition"], f["verdict_source"]), ("malicious", "cache"))

        # 2. The cloud goes away.
        self.cloud.stop()
        self.send(mail(2, b"unknown while down" * 10))
        v, f = self.verdict_of(41002)
        self.assertEqual(f["lookup_error"], "service_unavailable")
        self.assertEqual((v["disposition"], v["reasons"], v["action"]), ("unscannable", ["service_unavailable"], "defer"))
        self.assertTrue(wait_for(lambda: any(a["type"] == "endpoint_unreachable" for a in self.alerts())))
        down = [a for a in self.alerts() if a["type"] == "endpoint_unreachable"][0]
        self.assertEqual((down["endpoint"], down["severity"]), ("lab", "critical"))

        # 3. It comes back on the same port: the health probe closes the circuit.
        self.cloud.start()
        self.assertTrue(wait_for(lambda: any(a["type"] == "endpoint_recovered" for a in self.alerts()), timeout=10),
                        self.alerts())
        self.send(mail(3, b"unknown once back" * 10))
        v, f = self.verdict_of(41003)
        self.assertEqual((f["reputation"], f["verdict_source"], v["disposition"]), ("unknown", "lab", "clean"))

        # 4. The stop writes the cache and counts everything.
        self.assertEqual(self.dmn.stop(signal.SIGTERM), 0, self.dmn.stderr())
        self.assertTrue(os.path.exists(os.path.join(state, "verdict-cache.sqlite")))
        stats = [e["stats"] for e in read_events(self.events) if e["event_type"] == "stats"][-1]
        rep = stats["reputation"]
        self.assertEqual(rep["cache"]["saves"], 1)
        self.assertEqual(rep["errors"]["service_unavailable"], 1)
        verdicts = stats["lcores"][0]["verdicts"]
        self.assertEqual((verdicts["malicious"], verdicts["unscannable"], verdicts["clean"]), (2, 1, 1))
        self.assertEqual(verdicts["cache_hits"], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
