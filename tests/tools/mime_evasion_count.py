#!/usr/bin/python3
"""Runs sluice_mime_dump over the mime-is-broken evasion corpus and counts, per validity level,
the hide-content mails where the exact eicar.zip comes out and the hide-filename mails where a
part is named file.zip.

usage: mime_evasion_count.py [--dump PATH] [--corpus DIR] [--split SEED] [-v]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", default=os.path.join(os.environ.get("SLUICE_BUILD", os.path.join(ROOT, "build")),
                                                   "tests", "sluice_mime_dump"))
    ap.add_argument("--corpus", default=os.path.join(os.environ.get("SLUICE_CORPUS", os.path.join(ROOT, "..", "shared", "corpus")),
                                                     "eml", "mime-is-broken"))
    ap.add_argument("--split", type=int)
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
            ok = any(p.get("sha256") == payload["payload_sha256"] for p in parts)
            zipext = ok
        else:
            ok = any("file.zip" in (p["filename"], p.get("alt_filename")) for p in parts)
            zipext = any(p["filename"].lower().endswith(".zip") for p in parts)
        found[(kind, level)] += ok
        ext[(kind, level)] += zipext
        if not ok:
            misses.append((kind, level, test_id, os.path.basename(f),
                           [(p["path"], p["filename"], p.get("size")) for p in parts if p["attachment"]]))

    print("kind            level  found/total  pct   (filename: a name ending in .zip)")
    for kind in ("hide-content", "hide-filename"):
        for level in (3, 2, 1, 0):
            t = total[(kind, level)]
            if not t:
                continue
            extra = f"  (.zip: {ext[(kind, level)]}/{t})" if kind == "hide-filename" else ""
            print(f"{kind:15} {level:5}  {found[(kind, level)]:5}/{t:<5}  {100.0 * found[(kind, level)] / t:5.1f}%{extra}")
    if a.verbose:
        for m in sorted(misses):
            print("MISS", *m)
    return 0


if __name__ == "__main__":
    sys.exit(main())
