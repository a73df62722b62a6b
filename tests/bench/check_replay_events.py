#!/usr/bin/python3
"""Checks a replay's events against the manifest of tests/bench/make_smtp_pcap.py: for every SMTP
session of the manifest, one `smtp` event (status complete) whose message_sha256 is the manifest's,
and a `file` event of that flow whose sha256 is the attachment's and whose message_sha256 is the
message's. Anything missing, wrong or unscannable is listed (the first 10) and the exit code is 1.
Prints one JSON line: sessions, smtp and file events seen, files checked, problems.

Usage: check_replay_events.py EVENTS.json MANIFEST.json"""
import json
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("Usage: ")[-1])
    smtp, files = {}, {}
    n_smtp = n_file = 0
    with open(sys.argv[1]) as f:
        for line in f:
            e = json.loads(line)
            kind = e.get("event_type")
            if kind not in ("smtp", "file"):
                continue
            key = (e["src_ip"], e["src_port"], e["dest_port"])
            if kind == "smtp":
                n_smtp += 1
                smtp.setdefault(key, []).append(e["smtp"])
            else:
                n_file += 1
                files.setdefault(key, []).append(e["file"])
    problems = []
    sessions = checked = 0
    with open(sys.argv[2]) as f:
        for line in f:
            m = json.loads(line)
            if m["kind"] != "smtp":
                continue
            sessions += 1
            key = (m["client"], m["cport"], m["sport"])
            msgs = smtp.get(key, [])
            if len(msgs) != 1:
                problems.append(f"{key}: {len(msgs)} smtp events, 1 expected")
            elif msgs[0].get("message_sha256") != m["message_sha256"] or msgs[0].get("status") != "complete":
                problems.append(f"{key}: smtp message_sha256 {msgs[0].get('message_sha256')} status "
                                f"{msgs[0].get('status')}, expected {m['message_sha256']} complete")
            hits = [x for x in files.get(key, []) if x.get("sha256") == m["attachment_sha256"]]
            if not hits:
                got = [(x.get("sha256"), x.get("unscannable")) for x in files.get(key, [])]
                problems.append(f"{key}: no file event with sha256 {m['attachment_sha256']} (files: {got})")
                continue
            if hits[0].get("message_sha256") != m["message_sha256"]:
                problems.append(f"{key}: file's message_sha256 {hits[0].get('message_sha256')}, expected "
                                f"{m['message_sha256']}")
            checked += 1
    print(json.dumps({"sessions": sessions, "smtp_events": n_smtp, "file_events": n_file,
                      "files_checked": checked, "problems": len(problems)}))
    for p in problems[:10]:
        print("  " + p, file=sys.stderr)
    sys.exit(1 if problems or sessions == 0 else 0)


if __name__ == "__main__":
    main()
