"""The latency inline enforcement adds to a message: from the arrival of its final segment to its
release, as sluiced measures it (the `enforce.latency` histogram of its exit `stats` event), in
the bump-in-the-wire lab (DESIGN.md section 9: two namespaces joined only through sluiced on two
net_af_packet ports), an aiosmtpd server behind, sluice-cloud on loopback as the reputation
service, N messages with one attachment each sent by smtplib in one session:

- warm: every attachment is the same file, known to the cloud and in the verdict cache after the
  first message: the verdict is the cache's, on the RX lcore;
- cloud: every attachment is new: each message waits for a look-up round trip to sluice-cloud.

Usage (root): python3 tests/bench/enforce_bench.py [N=200]"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import cloud  # noqa: E402
import netns  # noqa: E402
import sluiced  # noqa: E402

SENDER = r"""
import email.policy, os, smtplib, sys
from email.message import EmailMessage
n, same = int(sys.argv[2]), sys.argv[3] == "same"
fixed = b"the same attachment every time\n" * 100
s = smtplib.SMTP(sys.argv[1], 25, timeout=60)
s.ehlo("bench.example.org")
for i in range(n):
    m = EmailMessage(policy=email.policy.SMTP)
    m["From"], m["To"], m["Subject"] = "a@example.org", "b@example.net", "bench %d" % i
    m.set_content("hello\n")
    m.add_attachment(fixed if same else os.urandom(3000), maintype="application", subtype="octet-stream",
                     filename="a.bin")
    s.sendmail("a@example.org", ["b@example.net"], m.as_bytes())
s.quit()
"""


def run(lab, tmp, cl, n, same):
    d = tempfile.mkdtemp(dir=tmp)
    events = os.path.join(d, "events.json")
    cfg = os.path.join(d, "sluiced.yaml")
    with open(cfg, "w") as f:
        f.write(lab.sluiced_yaml(events, f"reputation:\n  endpoints:\n    - {{name: lab, kind: sluice, url: '{cl.url}', "
                                         f"api_key: test-key}}\n"))
    dmn = lab.start_sluiced(sluiced.SLUICED, cfg)
    try:
        if same:  # warm the cache first
            lab.netns(lab.ns_client, "/usr/bin/python3", "-c", SENDER, lab.SERVER_IP, "1", "same")
        lab.netns(lab.ns_client, "/usr/bin/python3", "-c", SENDER, lab.SERVER_IP, str(n), "same" if same else "new")
        lab.wait_closed(25)
    finally:
        dmn.terminate()
        dmn.communicate(timeout=60)
    stats = [json.loads(l) for l in open(events) if '"stats"' in l][-1]["stats"]
    e = stats["lcores"][0]["enforce"]
    return e["latency"], e


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        lab = netns.BumpInTheWire()
        mail = os.path.join(tmp, "mail")
        os.mkdir(mail)
        sink = lab.popen(lab.ns_server, ["/usr/bin/python3", os.path.join(HERE, "..", "e2e", "smtp_sink.py"),
                                         "--listen", lab.SERVER_IP, "--dir", mail],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert sink.stdout.readline().strip() == "ready"
            with cloud.Cloud() as cl:
                print("%-6s %9s %9s %9s" % ("case", "messages", "p50_us", "p99_us"))
                for name, same in (("warm", True), ("cloud", False)):
                    lat, e = run(lab, tmp, cl, n, same)
                    print("%-6s %9d %9d %9d" % (name, lat["messages"], lat["p50_us"], lat["p99_us"]))
                    assert e["passed"] == lat["messages"] and e["not_held"] == 0, e
        finally:
            sink.terminate()
            sink.communicate(timeout=10)
            lab.close()


if __name__ == "__main__":
    main()
