"""Runs the sluiced binary built by CMake for tests."""
import json
import os
import subprocess

BUILD = os.environ.get("SLUICE_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SLUICED = os.path.abspath(os.path.join(BUILD, "control", "sluiced"))
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.environ.get("SLUICE_CORPUS", os.path.abspath(os.path.join(REPO, "..", "shared", "corpus")))


def run(args, timeout=120, **kw):
    return subprocess.run([SLUICED] + list(args), capture_output=True, text=True, timeout=timeout, **kw)


def events(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Events:
    """The events of one run, grouped by event_type."""

    def __init__(self, evs, result):
        self.all, self.result = evs, result
        self.by_type = {}
        for e in evs:
            self.by_type.setdefault(e["event_type"], []).append(e)

    def of(self, kind, client_port=None, client_ip=None):
        return [e for e in self.by_type.get(kind, [])
                if (client_port is None or e.get("src_port") == client_port)
                and (client_ip is None or e.get("src_ip") == client_ip)]

    @property
    def smtp(self):
        return self.of("smtp")

    @property
    def flow(self):
        return self.of("flow")

    @property
    def anomaly(self):
        return self.of("anomaly")

    @property
    def stats(self):
        s = self.of("stats")
        return s[-1]["stats"] if s else None


def replay_frames(frames, workdir, name="capture", args=(), timeout=120):
    """Writes `frames` (bytes or (ts, bytes)) to WORKDIR/NAME.pcap, replays it through sluiced and
    returns its Events. Raises AssertionError (with sluiced's stderr) if sluiced fails."""
    import pcapfile
    pcap = os.path.join(workdir, name + ".pcap")
    ev = os.path.join(workdir, name + ".events.json")
    if os.path.exists(ev):
        os.unlink(ev)
    pcapfile.write_pcap(pcap, frames)
    r = run(["--replay", pcap, "--events", ev] + list(args), timeout=timeout)
    if r.returncode != 0:
        raise AssertionError("sluiced exited %d on %s:\n%s" % (r.returncode, pcap, r.stderr[-4000:]))
    return Events(events(ev), r)
