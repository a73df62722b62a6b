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

--pdf: each attachment is `%PDF-1.7` and a line break followed by random bytes (ATTACH_KB KiB in
all, still distinct; application/pdf, fNNN.pdf), so that file typing sees a PDF (the bulk capture of
issue 18, docs/benchmarks.md). --text KB: the message's text part is KB KiB of line-oriented ASCII
prose (7bit, lines of 20 to 76 characters, paragraphs, quoted lines, a few lines that need
dot-stuffing; the first line names the session, so every message differs) instead of "attached";
with a small ATTACH_KB this is the text-heavy capture (scripts/bench-replay).

Usage: make_smtp_pcap.py [--ports P,...] [--http N] [--pdf] [--text KB] [--manifest FILE] OUT.pcap SESSIONS ATTACH_KB [GROUP=16] [CANDIDATE_EVERY=0]"""
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


WORDS = ("the of and to in is that for it as with was on be by this are from at or an have not which "
         "message delivery mailbox server relay header invoice report quarter budget meeting agenda "
         "attached please review schedule customer order shipment account payment balance contract "
         "update policy network storage backup release version change request approved pending "
         "tomorrow morning afternoon regards thanks question answer team office project figures").split()


def text_lines(rng, count=4096):
    """A pool of lines to draw text bodies from: prose lines of 20 to 76 characters, some quoted
    ("> "), some empty (paragraph breaks), a few starting with '.' (dot-stuffed on the wire)."""
    pool = []
    for k in range(count):
        width = rng.randint(20, 76)
        line = rng.choice(WORDS).capitalize()
        while True:
            word = rng.choice(WORDS)
            if len(line) + 1 + len(word) > width:
                break
            line += " " + word
        line += "." if k % 3 == 0 else ","
        if k % 9 == 0:
            line = ""
        elif k % 13 == 0:
            line = "> " + line[:70]
        elif k % 97 == 0:
            line = "..." + line[:70]
        pool.append(line)
    return pool


def text_body(i, kb, pool, rng):
    """About KB KiB of text (CRLF-free: the email package writes the line ends), a first line of
    its own so that every message, and so its SHA-256, differs."""
    head = f"Session {i} report {rng.getrandbits(64):016x}\n\n"
    avg = sum(len(x) + 1 for x in pool) / len(pool)
    lines = rng.choices(pool, k=max(1, int((kb * 1024 - len(head)) / avg)))
    return head + "\n".join(lines) + "\n"


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
    ap.add_argument("--pdf", action="store_true")
    ap.add_argument("--text", type=int, default=0, metavar="KB")
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
    text_rng = random.Random(5)  # its own stream: the attachments stay those of the same run without --text
    pool = text_lines(text_rng) if a.text else None
    manifest = []
    frames = []
    for g in range(0, max(n, a.http), group):
        sessions = []
        for i in range(g, min(n, g + group)):
            msg = EmailMessage(policy=email.policy.SMTP)
            msg["From"], msg["To"], msg["Subject"] = f"s{i}@example.org", "r@example.net", f"bench {i}"
            if a.text:
                msg.set_content(text_body(i, a.text, pool, text_rng), cte="7bit")
            else:
                msg.set_content("attached\n")
            if every and i % every == every - 1:
                attachment = macro_document(i)
                msg.add_attachment(attachment, maintype="application", subtype="octet-stream",
                                   filename=f"f{i}.docm")
            elif a.pdf:
                head = b"%PDF-1.7\n"
                attachment = head + rng.randbytes(max(0, kb * 1024 - len(head)))
                msg.add_attachment(attachment, maintype="application", subtype="pdf", filename=f"f{i}.pdf")
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
