"""Bad configuration or command line: sluiced exits non-zero with exactly one line of its own that
names the problem (the EAL may log before it, on its own lines)."""
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import sluiced  # noqa: E402


class BadConfig(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def fails(self, args, expect, code=1, yaml=None):
        if yaml is not None:
            path = os.path.join(self.tmp.name, "c.yaml")
            with open(path, "w") as f:
                f.write(yaml)
            args = ["--config", path] + args
        r = sluiced.run(args, timeout=60)
        self.assertEqual(r.returncode, code, r.stdout + r.stderr)
        own = [l for l in r.stderr.splitlines() if l.startswith("sluiced:")]
        self.assertEqual(len(own), 1, r.stderr)
        self.assertIn(expect, own[0])
        return own[0]

    def test_unknown_key(self):
        line = self.fails([], "key 'ports[0].iface': unknown key (line 4); accepted here: device, name,",
                          yaml="mode: tap\nports:\n  - name: a\n    iface: eth0\n")
        self.assertIn("c.yaml", line)

    def test_bad_value(self):
        self.fails([], "key 'mode': expected one of inline, tap, replay, got 'bridge'", yaml="mode: bridge\n")

    def test_bad_port_device_string(self):
        self.fails([], "key 'ports[0].device': expected a PCI address", yaml="mode: tap\nports:\n  - {name: a, device: eth0}\n")

    def test_port_that_does_not_exist(self):
        self.fails([], "ports[0] (a, 0000:99:00.0): no such DPDK port",
                   yaml="mode: tap\nports:\n  - {name: a, device: '0000:99:00.0'}\neal: {memory_mb: 128}\n")

    def test_vdev_the_pmd_rejects(self):
        # The EAL starts without a vdev whose probe failed; sluiced then names the port.
        self.fails([], "ports[0] (a, net_pcap0,rx_pcap=/nonexistent.pcap): no such DPDK port",
                   yaml="mode: tap\nports:\n  - {name: a, device: 'net_pcap0,rx_pcap=/nonexistent.pcap'}\neal: {memory_mb: 128}\n")
        self.fails([], "DPDK EAL initialisation failed (No such device); EAL arguments were: ",
                   yaml="mode: tap\nports:\n  - {name: a, device: net_bogus0}\neal: {memory_mb: 128}\n")

    def test_missing_pcap(self):
        self.fails(["--replay", "/nonexistent/in.pcap"], "key 'replay.input': cannot read '/nonexistent/in.pcap'")

    def test_unwritable_output(self):
        pcap = os.path.join(self.tmp.name, "in.pcap")
        open(pcap, "wb").close()
        self.fails(["--replay", pcap, "--replay-out", "/nonexistent/out.pcap"], "key 'replay.output': cannot write")

    def test_missing_config_file(self):
        self.fails(["--config", "/nonexistent.yaml"], "config /nonexistent.yaml: cannot open")

    def test_command_line(self):
        self.fails(["--bogus"], "unrecognised option '--bogus'", code=2)
        self.fails([], "nothing to do", code=2)

    def test_check_config_and_reference(self):
        path = os.path.join(self.tmp.name, "ok.yaml")
        with open(path, "w") as f:
            f.write("mode: tap\nports:\n  - {name: a, device: net_null0}\n")
        r = sluiced.run(["--config", path, "--check-config"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration is valid (mode tap, 1 port(s))", r.stdout)
        r = sluiced.run(["--config-reference"])
        with open(os.path.join(sluiced.REPO, "docs", "configuration-reference.md")) as f:
            self.assertEqual(f.read(), r.stdout, "docs/configuration-reference.md is stale: regenerate it with "
                                                  "build/control/sluiced --config-reference")

    def test_shipped_example_config_is_valid(self):
        r = sluiced.run(["--config", os.path.join(sluiced.REPO, "docs", "sluiced.example.yaml"), "--check-config"])
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
