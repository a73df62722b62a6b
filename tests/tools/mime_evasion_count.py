#!/usr/bin/python3
"""Runs sluice_mime_dump over the mime-is-broken evasion corpus and counts, per validity level,
the hide-content mails where the exact eicar.zip comes out (in any reading) and the hide-filename
mails where a part is named file.zip (its `filename`, `alt_filename` or one of its `filenames`).
With --python, the same counts for Python's email package (default policy: every part's decoded
payload, get_filename()) side by side.

usage: mime_evasion_count.py [--dump PATH] [--corpus DIR] [--split SEED] [--python] [-v]
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def python_finds(path, kind, payload_sha256):
    import email
    import email.policy
    import hashlib
    with open(path, "rb") as fh:
        msg = email.message_from_binary_file(fh, policy=email.policy.default)
    for part in msg.walk():
        if part.is_multipart():
            continue
        if kind == "hide-content":
            data = part.get_payload(decode=True) or b""
            if hashlib.sha256(data).hexdigest() == payload_sha256:
                return True
        elif part.get_filename() == "file.zip":
            return True
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", default=os.path.join(os.environ.get("SLUICE_BUILD", os.path.join(ROOT, "build")),
                                                   "tests", "sluice_mime_dump"))
    ap.add_argument("--corpus", default=os.path.join(os.environ.get("SLUICE_CORPUS", os.path.join(ROOT, "..", "shared", "corpus")),
                                                     "eml", "mime-is-broken"))
    ap.add_argument("--split", type=int)
    ap.add_argument("--python", action="store_true", help="also count what Python's email package finds")
    ap.add_argument("-v", "--verbose", action="store_true", help="list the misses")
    a = ap.parse_args()

    manifest = json.load(open(os.path.join(a.corpus, "MANIFEST.json")))
    payload = {}
    for e in manifest["entries"]:
        if "payload_sha256" in e["expected"]:
            payload = e["expected"]
            break
    files = sorted(os.path.join(a.corpus, kind, f) for kind in ("hide-content", "hide-filename")
                   for f in os.listdir(os.path.join(a.corpus, kind)) if f.endswith(".eml"))
    cmd = [a.dump] + (["--split", str(a.split)] if a.split is not None else []) + files
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout.decode()
    results = {}
    for line in out.splitlines():
        j = json.loads(line)
        results[j["file"]] = j

    py = collections.Counter()
    total = collections.Counter()
    found = collections.Counter()
    ext = collections.Counter()
    misses = []
    for f in files:
        kind = os.path.basename(os.path.dirname(f))
        with open(f, "rb") as fh:
            head = fh.read(4096).decode("latin-1")
        m = re.search(r"^X-Payload-Id: (\S+) \S*\((\d)\)", head, re.M)
        test_id, level = (m.group(1), int(m.group(2))) if m else ("?", -1)
        parts = results[f]["parts"]
        total[(kind, level)] += 1
        if kind == "hide-content":
            ok = any(p.get("sha256") == payload["payload_sha256"] for p in parts + results[f].get("readings", []))
            zipext = ok
        else:
            ok = any("file.zip" in [p["filename"], p.get("alt_filename")] + p.get("filenames", []) for p in parts)
            zipext = any(n.lower().endswith(".zip") for p in parts for n in [p["filename"]] + p.get("filenames", []))
        found[(kind, level)] += ok
        if a.python:
            py[(kind, level)] += python_finds(f, kind, payload["payload_sha256"])
        ext[(kind, level)] += zipext
        if not ok:
            misses.append((kind, level, test_id, os.path.basename(f),
                           [(p["path"], p["filename"], p.get("size")) for p in parts if p["attachment"]]))

    print("kind            level  found/total  pct   (filename: a name ending in .zip)" + ("  | Python email" if a.python else ""))
    for kind in ("hide-content", "hide-filename"):
        for level in (3, 2, 1, 0):
            t = total[(kind, level)]
            if not t:
                continue
            extra = f"  (.zip: {ext[(kind, level)]}/{t})" if kind == "hide-filename" else ""
            pys = f"  | {py[(kind, level)]}/{t} {100.0 * py[(kind, level)] / t:5.1f}%" if a.python else ""
            print(f"{kind:15} {level:5}  {found[(kind, level)]:5}/{t:<5}  {100.0 * found[(kind, level)] / t:5.1f}%{extra}{pys}")
    if a.verbose:
        for m in sorted(misses):
            print("MISS", *m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
