#!/usr/bin/python3
"""Writes a benchmark capture: SESSIONS SMTP sessions, each one message with one ATTACH_KB KiB
attachment of random bytes (base64; every attachment different, so every SHA-256 is distinct), open
GROUP at a time with their frames interleaved round-robin (as on a real link: per-session state is
reused after the first group instead of being faulted in for every session of the capture).

With CANDIDATE_EVERY=N (N > 0), every Nth attachment is instead a macro document
(tests/data/preclass/macro.docm with one extra member that makes it distinct): a file-analysis
candidate (scripts/bench-analysis).

Usage: make_smtp_pcap.py OUT.pcap SESSIONS ATTACH_KB [GROUP=16] [CANDIDATE_EVERY=0]"""
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


def main():
    out, n, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    group = int(sys.argv[4]) if len(sys.argv) > 4 else 16
    every = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    rng = random.Random(3)
    frames = []
    for g in range(0, n, group):
        sessions = []
        for i in range(g, min(n, g + group)):
            msg = EmailMessage(policy=email.policy.SMTP)
            msg["From"], msg["To"], msg["Subject"] = f"s{i}@example.org", "r@example.net", f"bench {i}"
            msg.set_content("attached\n")
            if every and i % every == every - 1:
                msg.add_attachment(macro_document(i), maintype="application", subtype="octet-stream",
                                   filename=f"f{i}.docm")
            else:
                msg.add_attachment(rng.randbytes(kb * 1024), maintype="application", subtype="octet-stream",
                                   filename=f"f{i}.bin")
            conv = tcpgen.Conversation(client=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", server="192.0.2.25",
                                       cport=1024 + i % 60000)
            sessions.append(tcpgen.smtp_session(conv, [(f"s{i}@example.org", ["r@example.net"], msg.as_bytes())]).frames)
        while any(sessions):  # round-robin inside the group
            for s in sessions:
                if s:
                    frames.append(s.pop(0))
            sessions = [s for s in sessions if s]
    pcapfile.write_pcap(out, frames)


if __name__ == "__main__":
    main()
