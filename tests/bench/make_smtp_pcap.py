#!/usr/bin/python3
"""Writes a benchmark capture: SESSIONS SMTP sessions, each one message with one ATTACH_KB KiB
attachment of random bytes (base64; every attachment different, so every SHA-256 is distinct), open
GROUP at a time with their frames interleaved round-robin (as on a real link: per-session state is
reused after the first group instead of being faulted in for every session of the capture).

With CANDIDATE_EVERY=N (N > 0), every Nth attachment is instead a macro document
(tests/data/preclass/macro.docm with one extra member that makes it distinct): a file-analysis
candidate (scripts/bench-analysis).

--ports P[,P...]: session i goes to server port P[i % count] (default 25); SMTP on ports outside
smtp.ports, for content detection (scripts/bench-detect, tests/integration/smtp_detect_test.py).
--http N: N HTTP/1.1 connections to port 80 as well (a GET, a reply of ATTACH_KB KiB whose body
holds SMTP-looking lines), interleaved with the sessions in groups the same way: TCP that is not
SMTP. --manifest FILE: a JSON line per session (client address and port, server port, the
message's and its attachment's SHA-256) and per HTTP connection.

Usage: make_smtp_pcap.py [--ports P,...] [--http N] [--manifest FILE] OUT.pcap SESSIONS ATTACH_KB [GROUP=16] [CANDIDATE_EVERY=0]"""
import argparse
import hashlib
import json
import email.policy
import io
import os
import random
import sys
import zipfile
from email.message import EmailMessage

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import pcapfile  # noqa: E402
import tcpgen  # noqa: E402


MACRO_DOC = os.path.join(os.path.dirname(__file__), "..", "data", "preclass", "macro.docm")


def macro_document(i):
    """The fixture's members plus docProps/custom-I.xml: same macros, a SHA-256 of its own."""
    out = io.BytesIO()
    with zipfile.ZipFile(MACRO_DOC) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item.filename))
        dst.writestr(f"docProps/custom-{i}.xml", f"<n>{i}</n>")
    return out.getvalue()


def http_connection(j, kb, rng):
    """One HTTP/1.1 exchange on port 80 from 172.16.x.y: a GET and a reply whose body (KB KiB)
    starts with lines an SMTP parser would take for a greeting and an EHLO."""
    conv = tcpgen.Conversation(client=f"172.16.{j >> 8 & 255}.{j & 255}", server="198.51.100.80",
                               cport=1024 + j % 60000, sport=80)
    conv.handshake()
    conv.send("c", f"GET /files/{j}.txt HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench\r\n\r\n".encode())
    body = b"220 mx.example.org ESMTP\r\nEHLO client.example.org\r\n" + rng.randbytes(max(0, kb * 1024 - 50))
    conv.send("s", b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
              % len(body) + body)
    conv.close()
    return conv


def main():
    ap = argparse.ArgumentParser(usage=__doc__.split("Usage: ")[-1])
    ap.add_argument("--ports", default="25")
    ap.add_argument("--http", type=int, default=0)
    ap.add_argument("--manifest")
    ap.add_argument("out")
    ap.add_argument("sessions", type=int)
    ap.add_argument("kb", type=int)
    ap.add_argument("group", type=int, nargs="?", default=16)
    ap.add_argument("every", type=int, nargs="?", default=0)
    a = ap.parse_args()
    out, n, kb, group, every = a.out, a.sessions, a.kb, a.group, a.every
    ports = [int(p) for p in a.ports.split(",")]
    rng = random.Random(3)
    http_rng = random.Random(4)
    manifest = []
    frames = []
    for g in range(0, max(n, a.http), group):
        sessions = []
        for i in range(g, min(n, g + group)):
            msg = EmailMessage(policy=email.policy.SMTP)
            msg["From"], msg["To"], msg["Subject"] = f"s{i}@example.org", "r@example.net", f"bench {i}"
            msg.set_content("attached\n")
            if every and i % every == every - 1:
                attachment = macro_document(i)
                msg.add_attachment(attachment, maintype="application", subtype="octet-stream",
                                   filename=f"f{i}.docm")
            else:
                attachment = rng.randbytes(kb * 1024)
                msg.add_attachment(attachment, maintype="application", subtype="octet-stream",
                                   filename=f"f{i}.bin")
            client = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
            conv = tcpgen.Conversation(client=client, server="192.0.2.25", cport=1024 + i % 60000,
                                       sport=ports[i % len(ports)])
            raw = msg.as_bytes()
            sessions.append(tcpgen.smtp_session(conv, [(f"s{i}@example.org", ["r@example.net"], raw)]).frames)
            manifest.append({"kind": "smtp", "client": client, "cport": conv.cport, "sport": conv.sport,
                             "message_sha256": hashlib.sha256(raw).hexdigest(),
                             "attachment_sha256": hashlib.sha256(attachment).hexdigest()})
        for j in range(g, min(a.http, g + group)):
            conv = http_connection(j, kb, http_rng)
            sessions.append(conv.frames)
            manifest.append({"kind": "http", "client": conv.c, "cport": conv.cport, "sport": conv.sport})
        while any(sessions):  # round-robin inside the group
            for s in sessions:
                if s:
                    frames.append(s.pop(0))
            sessions = [s for s in sessions if s]
    pcapfile.write_pcap(out, frames)
    if a.manifest:
        with open(a.manifest, "w") as f:
            for m in manifest:
                f.write(json.dumps(m) + "\n")


if __name__ == "__main__":
    main()
