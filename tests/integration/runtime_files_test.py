"""Nothing left behind (issue 10): every sluiced run used to leave its DPDK runtime directory in
DPDK's run directory (`sluice-<pid>`, 6.3 MB each; 100 runs left 100 of them, 624 MB) and, on
hugepages, its hugepage files. Now a hundred short replays leave nothing, a killed instance's files
go at the next start, a live instance's are never touched, a named instance (`eal.file_prefix`)
cleans up after itself and can be reached by name with dpdk-telemetry, and a failed start leaves
nothing either."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import pcapfile  # noqa: E402
import sluiced  # noqa: E402
import tcpgen  # noqa: E402
from daemon import Daemon, wait_for  # noqa: E402

# DPDK's run directory for this user (dataplane/eal_files.h says how the EAL chooses it).
RUN_DIR = os.path.join(os.environ.get("RUNTIME_DIRECTORY") or
                       ("/var/run" if os.geteuid() == 0 else os.environ.get("XDG_RUNTIME_DIR", "/tmp")), "dpdk")


def hugetlbfs_mounts():
    with open("/proc/mounts") as f:
        return [line.split()[1] for line in f if line.split()[2:3] == ["hugetlbfs"]]


def left_by(prefix):
    """What an instance with this file prefix left: its runtime directory, its hugepage files."""
    left = [os.path.join(RUN_DIR, prefix)] if os.path.isdir(os.path.join(RUN_DIR, prefix)) else []
    for mount in hugetlbfs_mounts():
        left += [os.path.join(mount, n) for n in os.listdir(mount)
                 if n.startswith(prefix + "map_") and n[len(prefix) + 4:].isdigit()]
    return left


class RuntimeFiles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.d = cls.tmp.name
        conv = tcpgen.Conversation(client="198.51.100.9", server="192.0.2.25", cport=40009)
        tcpgen.smtp_session(conv, [("a@example.org", ["b@example.net"], b"Subject: short\r\n\r\nhello\r\n")])
        cls.pcap = os.path.join(cls.d, "short.pcap")
        pcapfile.write_pcap(cls.pcap, conv.frames)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def replay(self, extra=()):
        """One short replay; returns (pid, completed process)."""
        events = os.path.join(self.d, "events.json")
        p = subprocess.Popen([sluiced.SLUICED, "--replay", self.pcap, "--events", events] + list(extra),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 0, err)
        return p.pid, err

    def live(self, name, extra=""):
        """A tap-mode sluiced on a null device, running (its RX lcore spins on zero-filled frames:
        callers stop it with SIGSTOP while they wait)."""
        cfg = os.path.join(self.d, name + ".yaml")
        with open(cfg, "w") as f:
            f.write(f"mode: tap\nports:\n  - {{name: null0, device: net_null0}}\nlcores: {{main: 0, rx: [1]}}\n"
                    f"eal: {{memory_mb: 256{extra}}}\nstate: {{dir: {os.path.join(self.d, name + '-state')}}}\n")
        dmn = Daemon(self.d, name, ["--config", cfg])
        self.addCleanup(dmn.kill)
        self.assertTrue(wait_for(lambda: "running in tap mode" in dmn.stdout() or dmn.proc.poll() is not None),
                        dmn.stderr())
        self.assertIn("running in tap mode", dmn.stdout(), dmn.stderr())
        return dmn

    def test_a_hundred_runs_leave_nothing_and_a_live_instance_keeps_its_files(self):
        live = self.live("live")
        live.proc.send_signal(signal.SIGSTOP)  # alive, and quiet while the replays run
        live_prefix = "sluice-%d" % live.proc.pid
        self.assertTrue(left_by(live_prefix))

        pids = [self.replay()[0] for _ in range(100)]
        left = [f for pid in pids for f in left_by("sluice-%d" % pid)]
        self.assertEqual(left, [], "files left by the runs")
        self.assertIn(os.path.join(RUN_DIR, live_prefix), left_by(live_prefix), "a live instance's files were removed")

        live.proc.send_signal(signal.SIGCONT)
        self.assertEqual(live.stop(signal.SIGTERM), 0, live.stderr())
        self.assertEqual(left_by(live_prefix), [], "after SIGTERM")

    @unittest.skipIf(os.environ.get("SLUICE_SKIP_KILLED"), "run alone as integration.runtime_files_killed: "
                     "any sluiced starting beside it would remove the dead instance's files first")
    def test_a_killed_instance_is_cleaned_up_at_the_next_start(self):
        dead = self.live("killed")
        dead.proc.kill()
        dead.proc.wait()
        prefix = "sluice-%d" % dead.proc.pid
        self.assertTrue(left_by(prefix), "SIGKILL leaves the runtime directory")
        _, err = self.replay()
        self.assertEqual(left_by(prefix), [])
        self.assertIn("sluiced: removed the DPDK files left by dead sluiced instances:", err)

    def test_a_named_instance_is_reached_by_name_and_cleans_up(self):
        name = "sluice-test-%d" % os.getpid()
        live = self.live("named", extra=f", file_prefix: {name}")
        self.assertTrue(os.path.isdir(os.path.join(RUN_DIR, name)))
        telemetry = shutil.which("dpdk-telemetry.py")
        if telemetry:  # Debian's dpdk package
            r = subprocess.run([telemetry, "-f", name], input="/ethdev/list\n", capture_output=True, text=True, timeout=30)
            self.assertIn('{"/ethdev/list": [0]}', r.stdout, r.stderr)
        self.assertEqual(live.stop(signal.SIGTERM), 0, live.stderr())
        self.assertEqual(left_by(name), [])

    def test_a_failed_start_leaves_nothing(self):
        cfg = os.path.join(self.d, "bad.yaml")
        with open(cfg, "w") as f:
            f.write("mode: tap\nports:\n  - {name: gone, device: 'net_af_packet0,iface=sluice-none0'}\n"
                    f"lcores: {{main: 0, rx: [1]}}\neal: {{memory_mb: 256}}\nstate: {{dir: {os.path.join(self.d, 'bad-state')}}}\n")
        p = subprocess.Popen([sluiced.SLUICED, "--config", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, err = p.communicate(timeout=60)
        self.assertEqual(p.returncode, 1, err)
        self.assertEqual(left_by("sluice-%d" % p.pid), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
