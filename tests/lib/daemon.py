"""A sluiced running in the background for live tests (tap mode on a veth): stdout and stderr go to
files the test reads while it runs; the events file is read as it grows."""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

import netns
import sluiced


def wait_for(predicate, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return False


def read_events(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def make_tokens(directory, header=""):
    """An admin and a read token made by `sluicectl token new`, their lines in DIRECTORY/tokens
    (0600, `header` first; admin on the first token line, read on the second). Returns
    ({"admin": TOKEN, "read": TOKEN}, path)."""
    tokens, lines = {}, []
    for role in ("admin", "read"):
        out = subprocess.run([os.path.join(sluiced.BUILD, "control", "sluicectl"), "token", "new", "--role", role],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        tokens[role] = out[0]
        lines.append(out[1])
    path = os.path.join(directory, "tokens")
    with open(path, "w") as f:
        f.write(header + "\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return tokens, path


class Daemon:
    """One sluiced; stdout and stderr go to files so that the test can read them while it runs."""

    def __init__(self, workdir, name, args):
        self.out_path = os.path.join(workdir, name + ".out")
        self.err_path = os.path.join(workdir, name + ".err")
        self.out, self.err = open(self.out_path, "w"), open(self.err_path, "w")
        self.proc = subprocess.Popen([sluiced.SLUICED] + args, stdout=self.out, stderr=self.err)

    def stdout(self):
        with open(self.out_path) as f:
            return f.read()

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30)
        self.out.close()
        self.err.close()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.out.close()
        self.err.close()


@unittest.skipUnless(os.geteuid() == 0, "needs root for a veth pair")
class TapTest(unittest.TestCase):
    """A live test of sluiced in tap mode on a veth pair (net_af_packet): a temporary directory
    `self.d`, the pair (`self.veth` sluiced reads, `self.peer` the test writes into), the events file
    `self.events`; every daemon started is killed at the end and the pair removed."""

    veth_prefix = "slt"

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.d = self.tmp.name
        self.veth, self.peer = netns.veth_pair(self.veth_prefix)
        self.events = os.path.join(self.d, "events.json")
        self.daemons = []

    def tearDown(self):
        for dmn in self.daemons:
            dmn.kill()
        netns.sh("ip", "link", "del", self.veth, check=False)
        self.tmp.cleanup()

    def tap_config(self, lcores="{main: 0, rx: [1]}"):
        """The first lines of a tap-mode configuration on the veth."""
        return (f"mode: tap\nports:\n  - name: tap0\n    device: net_af_packet0,iface={self.veth}\n"
                f"lcores: {lcores}\neal: {{memory_mb: 256}}\n")

    def start_daemon(self, args, name="sluiced"):
        """Starts sluiced and waits until it says it runs in tap mode."""
        dmn = Daemon(self.d, name, args)
        self.daemons.append(dmn)
        self.assertTrue(wait_for(lambda: "running in tap mode" in dmn.stdout() or dmn.proc.poll() is not None),
                        "sluiced did not start")
        self.assertIn("running in tap mode", dmn.stdout(), dmn.stderr())
        return dmn

    def send(self, frames):
        netns.send_frames(self.peer, frames)

