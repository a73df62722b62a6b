#!/usr/bin/python3
"""The heartbeat's cost (issue 14): a state directory holding MESSAGES sightings (one file each,
every file seen in PER_FILE messages), a real sluice-cloud whose change feed holds CHANGES changes
of files this appliance saw, and sluiced started on it (a replay of a one-message capture): its
start-up heartbeat reads the whole feed, writes one report per change (each listing PER_FILE
messages), the events and alerts. Printed: the heartbeat's time as sluiced measures it
(`retrospective.last_ms`), the whole process, and a second start with nothing new (the cost of a
heartbeat on a quiet feed). Usage: retrospective_bench.py MESSAGES CHANGES PER_FILE"""
import hashlib
import json
import os
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import cloud  # noqa: E402
import sluiced  # noqa: E402
from retrospective_test import capture  # noqa: E402


def fill(path, messages, per_file):
    db = sqlite3.connect(path)
    now = int(time.time() * 1000)
    with db:
        for i in range(messages):
            cur = db.execute(
                "INSERT INTO messages (time_ms, appliance, flow_id, txn, client_ip, client_port, server_ip, server_port, "
                "message_sha256, message_id, subject, mail_from, header_from, header_to, header_cc, disposition, action) "
                "VALUES (?, 'bench', ?, 0, '198.51.100.7', 40000, '192.0.2.25', 25, ?, ?, ?, 'a@example.org', "
                "'a@example.org', 'b@example.net', '', 'clean', 'pass')",
                (now - messages + i, i, "%064x" % i, "<m%d@example.org>" % i, "message %d" % i))
            mid = cur.lastrowid
            db.execute("INSERT INTO rcpts (message, addr) VALUES (?, 'b@example.net')", (mid,))
            db.execute("INSERT INTO files (message, sha256, filename, archive_path, size, file_type, reputation, "
                       "threat_name, reading) VALUES (?, ?, 'f.bin', '', 100, 'unknown', 'unknown', '', '')",
                       (mid, file_sha(i // per_file)))
    db.close()


def file_sha(k):
    return hashlib.sha256(b"bench file %d" % k).hexdigest()


def main():
    messages, changes, per_file = (int(a) for a in sys.argv[1:4])
    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "state")
        c = cloud.Cloud()
        try:
            cfg = os.path.join(tmp, "s.yaml")
            with open(cfg, "w") as f:
                f.write(f"state: {{dir: {state}}}\nreputation:\n  endpoints:\n"
                        f"    - {{name: lab, kind: sluice, url: '{c.url}', api_key: test-key}}\n"
                        f"retrospective: {{replay_wait_s: 600, max_changes: {max(changes, 1000)}}}\n")
            pcap = os.path.join(tmp, "one.pcap")
            capture(pcap, "bench", "a@example.org", ["b@example.net"], 40000, attach=False)
            ev = os.path.join(tmp, "ev.json")

            def run():
                if os.path.exists(ev):
                    os.unlink(ev)
                t0 = time.monotonic()
                r = sluiced.run(["--config", cfg, "--replay", pcap, "--events", ev])
                wall = time.monotonic() - t0
                assert r.returncode == 0, r.stderr
                e = sluiced.Events(sluiced.events(ev), r)
                return wall, e.stats["retrospective"], len(e.of("retrospective"))

            run()  # creates the store and takes the (empty) feed's cursor
            t0 = time.monotonic()
            fill(os.path.join(state, "sightings.sqlite"), messages, per_file)
            print(f"filled {messages} sightings ({messages // per_file} files) in {time.monotonic() - t0:.1f} s",
                  flush=True)
            t0 = time.monotonic()
            conn = c.connection()
            for k in range(changes):
                conn.request("PUT", "/api/v1/admin/files/" + file_sha(k), json.dumps({"disposition": "malicious"}),
                             {"x-apikey": "test-admin", "Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                assert r.status == 200, r.status
            print(f"{changes} changes made in {time.monotonic() - t0:.1f} s", flush=True)
            size = os.path.getsize(os.path.join(state, "sightings.sqlite"))
            wall, stats, reports = run()
            print(f"heartbeat with {changes} changes over {messages} sightings ({size >> 20} MiB): "
                  f"{stats['last_ms']} ms in sluiced, {reports} reports ({stats['reports']} counted, {stats['changes']} changes read), process {wall:.2f} s")
            wall, stats, reports = run()
            print(f"heartbeat with nothing new: {stats['last_ms']} ms in sluiced, {reports} reports, "
                  f"process {wall:.2f} s")
        finally:
            c.close()


if __name__ == "__main__":
    main()
