#!/usr/bin/python3
"""The management API under load (issue 15's benchmark; scripts/bench-api runs it).

1. A live tap-mode sluiced on a veth (net_af_packet, as tests/e2e/api_test.py), a real sluice-cloud
   as its reputation and analysis endpoint, a state directory on /dev/shm whose quarantine
   tests/bench/quarantine_fill.cpp filled before the start with COUNT held messages (a few KiB each,
   all waiting on one sample the cloud analyses for 10 minutes, so they stay held). Then
   tests/bench/api_load.cpp (THREADS keep-alive HTTPS connections, SECONDS each) on
   GET /api/v1/status, GET /api/v1/quarantine (a page of 100) and GET /api/v1/quarantine?limit=10000.
2. `sluiced --replay` of a generated SMTP capture (tests/bench/make_smtp_pcap.py, written COPIES
   times back to back so that one replay lasts a few seconds) with the management API on, ROUNDS
   times each with and without a client polling GET /metrics every second, alternating (off/on,
   then on/off); sluiced's own "ran N s" gives Gbit/s of capture.

Usage: api_bench.py [SECONDS=5] [ROUNDS=5] [COPIES=8] [THREADS=8] [COUNT=10000]"""
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import cloud  # noqa: E402
import netns  # noqa: E402
import pcapfile  # noqa: E402
import receivers  # noqa: E402
import sluiced  # noqa: E402
from daemon import Daemon, wait_for  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
TOOLS = os.path.join(sluiced.BUILD, "tests")
SLUICECTL = os.path.join(sluiced.BUILD, "control", "sluicectl")
MACRO_DOC = os.path.join(ROOT, "tests", "data", "preclass", "macro.docm")


def token_file(d):
    """A read token and the token file naming it (0600)."""
    out = subprocess.run([SLUICECTL, "token", "new", "--role", "read"], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    path = os.path.join(d, "tokens")
    with open(path, "w") as f:
        f.write(out[1] + "\n")
    os.chmod(path, 0o600)
    return out[0], path


def get(port, path, token, timeout=30):
    ctx = ssl._create_unverified_context()
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Authorization": "Bearer " + token})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def load(port, path, token, threads, seconds):
    r = subprocess.run([os.path.join(TOOLS, "bench_api_load"), "127.0.0.1", str(port), path, str(threads),
                        str(seconds)], capture_output=True, text=True, env=dict(os.environ, SLUICE_TOKEN=token))
    if r.returncode != 0:
        sys.exit(f"bench_api_load {path}: {r.stdout}{r.stderr}")
    return dict(kv.split("=") for kv in r.stdout.split())


def control_cpu_seconds(pid):
    """CPU time of sluiced's threads but the lcores' (DPDK names them rte-worker-N or lcore-worker-N:
    the RX lcore spins, one CPU second per second, whatever the API does)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                name, fields = f.read().split("(", 1)[1].rsplit(")", 1)
        except OSError:
            continue
        if not name.startswith(("rte-worker", "lcore-worker")):
            fields = fields.split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def api_under_load(seconds, threads, count):
    d = tempfile.mkdtemp(prefix="bench-api-", dir="/dev/shm")
    veth, peer = netns.veth_pair("sba")
    c = cloud.Cloud(analysis_seconds=600)
    dmn = None
    try:
        token, tokens = token_file(d)
        doc = open(MACRO_DOC, "rb").read()
        sample = c.upload(doc, "invoice.docm")
        attachment = os.path.join(d, "invoice.docm")
        with open(attachment, "wb") as f:
            f.write(doc)
        state = os.path.join(d, "state")
        fill = subprocess.run([os.path.join(TOOLS, "bench_quarantine_fill"), state, str(count), attachment,
                               "sandbox", sample["id"]], capture_output=True, text=True)
        if fill.returncode != 0:
            sys.exit(fill.stderr)
        print("   " + fill.stdout.strip())
        port = receivers.free_port()
        cfg = os.path.join(d, "sluiced.yaml")
        with open(cfg, "w") as f:
            f.write(f"mode: tap\nports:\n  - name: tap0\n    device: net_af_packet0,iface={veth}\n"
                    f"lcores: {{main: 0, rx: [1]}}\neal: {{memory_mb: 256}}\n"
                    f"state: {{dir: {state}}}\nevents: {{path: {d}/events.json}}\n"
                    f"reputation:\n  endpoints:\n    - {{name: lab, kind: sluice, url: '{c.url}', api_key: test-key}}\n"
                    f"analysis:\n  endpoints:\n    - {{name: sandbox, kind: sluice, url: '{c.url}', api_key: test-key}}\n"
                    f"management: {{listen: '127.0.0.1:{port}', token_file: {tokens}, rate_per_s: 100000}}\n")
        t0 = time.monotonic()
        dmn = Daemon(d, "sluiced", ["--config", cfg])
        if not wait_for(lambda: "management API on" in dmn.stdout() or dmn.proc.poll() is not None, 60):
            sys.exit("sluiced did not start: " + dmn.stderr())
        if dmn.proc.poll() is not None:
            sys.exit("sluiced exited: " + dmn.stderr())
        started = time.monotonic() - t0
        status, body = get(port, "/api/v1/quarantine?state=held&limit=1", token)
        held = json.loads(body)["matching"] if status == 200 else None
        print(f"   sluiced up in {started:.2f} s with {held} held entries loaded from the quarantine")
        if held != count:
            sys.exit(f"expected {count} held entries, got {held} ({status} {body[:200]})")
        rows = []
        for path in ("/api/v1/status", "/api/v1/quarantine", "/api/v1/quarantine?limit=10000"):
            cpu0 = control_cpu_seconds(dmn.proc.pid)
            r = load(port, path, token, threads, seconds)
            r["cpu_ms"] = (control_cpu_seconds(dmn.proc.pid) - cpu0) * 1000 / max(1, int(r["requests"]))
            rows.append((path, r))
        status, body = get(port, "/api/v1/quarantine?state=held&limit=1", token)
        if json.loads(body)["matching"] != count:
            sys.exit("entries changed state during the run")
        print(f"\n   {threads} keep-alive HTTPS connections, {seconds} s per route, {count} entries in the quarantine:")
        print("   | route | requests/s | p50 | p99 | answer size | sluiced CPU per request (lcores excluded) | errors |")
        print("   | --- | --- | --- | --- | --- | --- | --- |")
        for path, r in rows:
            print(f"   | `GET {path}` | {float(r['rps']):,.0f} | {r['p50_ms']} ms | {r['p99_ms']} ms | "
                  f"{int(r['bytes_per_answer']):,} B | {r['cpu_ms']:.2f} ms | {r['errors']} |")
    finally:
        if dmn:
            dmn.stop()
        c.close()
        netns.sh("ip", "link", "del", veth, check=False)
        shutil.rmtree(d, ignore_errors=True)


def looped_capture(copies):
    """The capture scripts/bench-workers uses (400 sessions, 256 KiB attachment each), COPIES times
    one after the other (timestamps shifted past the previous copy's end: every copy's sessions
    start again as new flows)."""
    base = os.path.join(ROOT, "out", "bench", "smtp-400x256k-g16.pcap")
    if not os.path.exists(base):
        os.makedirs(os.path.dirname(base), exist_ok=True)
        subprocess.run([sys.executable, os.path.join(HERE, "make_smtp_pcap.py"), base, "400", "256", "16"], check=True)
    if copies == 1:
        return base
    out = base.replace(".pcap", f"-x{copies}.pcap")
    if not os.path.exists(out):
        link, frames = pcapfile.read_pcap(base)
        span = frames[-1][0] - frames[0][0] + 60

        def all_copies():
            for k in range(copies):
                for ts, fr in frames:
                    yield ts + k * span, fr
        pcapfile.write_pcap(out + ".tmp", all_copies(), link_type=link)
        os.rename(out + ".tmp", out)
    return out


def replay_with_polling(rounds, copies):
    pcap = looped_capture(copies)
    size = os.path.getsize(pcap)
    d = tempfile.mkdtemp(prefix="bench-api-replay-", dir="/dev/shm")
    try:
        token, tokens = token_file(d)
        port = receivers.free_port()
        cfg = os.path.join(d, "replay.yaml")
        with open(cfg, "w") as f:
            f.write(f"lcores: {{rx: [1]}}\nstate: {{dir: {d}/state}}\n"
                    f"management: {{listen: '127.0.0.1:{port}', token_file: {tokens}}}\n")

        def one(poll):
            proc = subprocess.Popen([sluiced.SLUICED, "--replay", pcap, "--config", cfg, "--events",
                                     os.path.join(d, "events.json")], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
            polls, stop = [], threading.Event()

            def poller():  # GET /metrics every second, one keep-alive connection, from the first answer on
                ctx = ssl._create_unverified_context()
                conn = None
                while not stop.is_set():
                    try:
                        if conn is None:
                            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
                        t = time.monotonic()
                        conn.request("GET", "/metrics", headers={"Authorization": "Bearer " + token})
                        r = conn.getresponse()
                        body = r.read()
                        if r.status == 200:
                            polls.append((time.monotonic() - t, len(body)))
                        stop.wait(1.0)
                    except (OSError, http.client.HTTPException):
                        conn = None
                        stop.wait(0.02)
            th = threading.Thread(target=poller) if poll else None
            if th:
                th.start()
            out = proc.communicate()[0]
            stop.set()
            if th:
                th.join()
            os.remove(os.path.join(d, "events.json"))
            m = re.search(r"^sluiced: ran ([0-9.]+) s$", out, re.M)
            if proc.returncode != 0 or not m:
                sys.exit("replay failed:\n" + out[-2000:])
            if "management API on" not in out:
                sys.exit("the management API did not start during the replay:\n" + out[-2000:])
            return float(m.group(1)), polls

        runs = {False: [], True: []}
        all_polls = []
        for r in range(rounds):
            for poll in ((False, True) if r % 2 == 0 else (True, False)):
                secs, polls = one(poll)
                runs[poll].append(secs)
                all_polls += polls
                if poll and not polls:
                    sys.exit("no /metrics answer during the replay")
        print(f"\n   sluiced --replay {os.path.relpath(pcap, ROOT)} ({size / 1048576:.0f} MiB, {copies} x 400 sessions "
              f"x 256 KiB), management API on, {rounds} rounds alternating:")
        print("   | /metrics polled every second | Gbit/s of capture per run | median |")
        print("   | --- | --- | --- |")
        for poll in (False, True):
            xs = runs[poll]
            gb = [size * 8 / s / 1e9 for s in xs]
            med = sorted(gb)[len(gb) // 2]
            print(f"   | {'on' if poll else 'off'} | {', '.join(f'{g:.2f}' for g in gb)} "
                  f"({', '.join(f'{s:.2f} s' for s in xs)}) | {med:.2f} |")
        lat = sorted(p[0] for p in all_polls)
        print(f"   {len(all_polls)} /metrics answers during the 'on' runs, {all_polls[0][1]:,} B each, "
              f"latency p50 {lat[len(lat) // 2] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    a = [int(x) for x in sys.argv[1:]]
    seconds, rounds, copies, threads, count = (a + [5, 5, 8, 8, 10000][len(a):])[:5]
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("1. management API requests per second (tap mode)")
    api_under_load(seconds, threads, count)
    print("\n2. replay throughput with and without /metrics polling")
    replay_with_polling(rounds, copies)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
