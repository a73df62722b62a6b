"""End to end: sluiced running in tap mode on a veth (net_af_packet) takes its state directory,
reloads its configuration on SIGHUP (reloadable keys applied, a bad file or a key that cannot
change at run time refused with the start-up error, the command line still winning), and lets go
of the state directory when it stops."""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import sluiced  # noqa: E402
from daemon import TapTest, read_events, wait_for  # noqa: E402


class Reload(TapTest):
    veth_prefix = "slr"

    def setUp(self):
        super().setUp()
        self.cfg = os.path.join(self.d, "sluiced.yaml")
        self.state = os.path.join(self.d, "state")

    def write_config(self, extra=""):
        with open(self.cfg, "w") as f:
            f.write(self.tap_config() + f"""state: {{dir: {self.state}}}
{extra}""")

    def start(self, name, args):
        return self.start_daemon(args, name)

    def hup_and_wait(self, dmn, stream, text):
        before = (dmn.stdout if stream == "out" else dmn.stderr)().count(text)
        dmn.proc.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: (dmn.stdout if stream == "out" else dmn.stderr)().count(text) > before),
                        f"no '{text}' after SIGHUP: {dmn.stdout()} {dmn.stderr()}")

    def test_reload_applies_refuses_and_state_dir_is_locked(self):
        ev1, ev2 = os.path.join(self.d, "ev1.json"), os.path.join(self.d, "ev2.json")
        self.write_config(f"events: {{path: {ev1}}}\n")
        dmn = self.start("first", ["--config", self.cfg])
        self.assertTrue(os.path.isdir(self.state))

        # A second sluiced on the same state directory stops at start, naming the first.
        second = sluiced.run(["--config", self.cfg], timeout=60)
        self.assertEqual(second.returncode, 1)
        self.assertIn(f"state.dir: '{self.state}' is in use by another sluiced (pid {dmn.proc.pid})", second.stderr)

        # Reloadable keys: the event output moves, periodic stats start.
        self.write_config(f"events: {{path: {ev2}}}\nstats: {{interval_s: 1}}\n")
        self.hup_and_wait(dmn, "out", "reloaded")
        self.assertIn(f"sluiced: reloaded {self.cfg}: changed events.path, stats.interval_s", dmn.stdout())
        self.assertTrue(wait_for(lambda: len([e for e in read_events(ev2) if e["event_type"] == "stats"]) >= 2),
                        "no periodic stats in the new event file")
        self.assertEqual([e for e in read_events(ev1) if e["event_type"] == "stats"], [])

        # Log rotation: the file renamed, SIGHUP with nothing changed opens events.path again.
        rotated = ev2 + ".1"
        os.rename(ev2, rotated)
        self.hup_and_wait(dmn, "out", f"reloaded {self.cfg}: no change")
        self.assertTrue(wait_for(lambda: os.path.exists(ev2) and
                                 any(e["event_type"] == "stats" for e in read_events(ev2))),
                        "the events file was not opened again after the rename")
        self.assertTrue(any(e["event_type"] == "stats" for e in read_events(rotated)))

        # A key that cannot change at run time: the whole file is refused, by name.
        self.write_config(f"events: {{path: {ev1}}}\nstats: {{interval_s: 1}}\nreassembly: {{max_flows: 2048}}\n")
        self.hup_and_wait(dmn, "err", "cannot change at run time")
        self.assertIn(f"sluiced: config {self.cfg}: key 'reassembly.max_flows' cannot change at run time "
                      "(restart sluiced to apply it)\n", dmn.stderr())

        # An invalid file: the same one-line error as at start.
        self.write_config(f"events: {{path: {ev1}}}\nstats: {{interval_s: 0}}\nreassembly: {{max_flows: 12}}\n")
        at_start = sluiced.run(["--check-config", "--config", self.cfg])
        self.assertEqual(at_start.returncode, 1)
        self.assertEqual(at_start.stderr.count("\n"), 1)
        self.hup_and_wait(dmn, "err", at_start.stderr)

        # Nothing of either refused file was applied: stats still every second, into ev2, and each
        # refusal is an alert there.
        n = len(read_events(ev2))
        self.assertTrue(wait_for(lambda: len(read_events(ev2)) > n + 1))
        alerts = [e["alert"] for e in read_events(ev2) if e["event_type"] == "alert"]
        self.assertEqual([a["type"] for a in alerts], ["config_reload_refused"] * 2)
        self.assertIn("reassembly.max_flows", alerts[0]["message"])
        self.assertTrue(alerts[1]["message"].startswith(at_start.stderr.strip()[len("sluiced: "):]), alerts[1])
        self.assertEqual(read_events(ev1), [])
        self.assertTrue(dmn.proc.poll() is None, "sluiced stopped")

        self.assertEqual(dmn.stop(), 0)
        self.assertEqual(read_events(ev2)[-1]["stats"]["reason"], "sigterm")

        # The lock went with the process: the next sluiced takes the directory.
        self.write_config(f"events: {{path: {ev1}}}\n")
        third = self.start("third", ["--config", self.cfg])
        self.assertEqual(third.stop(), 0)

    def test_command_line_still_wins_at_reload(self):
        cli, ev1, ev2 = (os.path.join(self.d, n) for n in ("cli.json", "ev1.json", "ev2.json"))
        self.write_config(f"events: {{path: {ev1}}}\n")
        dmn = self.start("cli", ["--config", self.cfg, "--events", cli])
        self.write_config(f"events: {{path: {ev2}}}\n")
        self.hup_and_wait(dmn, "out", "reloaded")
        self.assertIn(f"sluiced: reloaded {self.cfg}: no change", dmn.stdout())
        self.assertEqual(dmn.stop(), 0)
        self.assertEqual(read_events(cli)[-1]["event_type"], "stats")
        self.assertFalse(os.path.exists(ev1) or os.path.exists(ev2))


if __name__ == "__main__":
    unittest.main(verbosity=2)
