"""End to end: every resource of the management API (docs/api.md) on a live tap-mode sluiced (a veth,
net_af_packet) with a real sluice-cloud as its reputation and analysis endpoint, a state directory,
and aiosmtpd as the quarantine relay.

Two mails carry a macro document the cloud does not know: it is uploaded and the analysis takes
long, so both messages stay held in the quarantine. Then, through the API:
- the endpoint registry: both endpoints with their health; a test of each; a reputation endpoint
  added at run time (listed, then used by nothing else), a duplicate refused, then removed;
- the verdict cache: the document's entry; a local override blocks a new file (its mail's file event
  says `verdict_source: override`), survives a flush, is removed;
- the quarantine: listed (filters, paging), shown, downloaded byte for byte, released to the relay
  (the relay gets exactly the stored bytes with the original envelope), released again (409),
  the other deleted (its .eml then 409);
- the sightings of the document, by file and by recipient;
- alerts (a refused reload raises one), the configuration (secrets redacted), validate and reload;
- a retrospective heartbeat on demand;
- roles (a read token on every admin route: 403), bad input (400 with the parameter named), and many
  clients at once.
"""
import concurrent.futures
import hashlib
import http.client
import json
import os
import ssl
import subprocess
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cloud  # noqa: E402
import receivers  # noqa: E402
import sluiced  # noqa: E402
import tcpgen  # noqa: E402
from daemon import TapTest, make_tokens, read_events, wait_for  # noqa: E402

SLUICECTL = os.path.abspath(os.path.join(sluiced.BUILD, "control", "sluicectl"))
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "data", "preclass")


def sha(b):
    return hashlib.sha256(b).hexdigest()


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


class Api(TapTest):
    veth_prefix = "sla"

    def setUp(self):
        super().setUp()
        self.cloud = cloud.Cloud(analysis_seconds=600)
        self.addCleanup(self.cloud.close)
        self.relay = receivers.Mailbox()
        self.addCleanup(self.relay.close)
        self.tokens, self.token_file = make_tokens(self.d)
        self.port = receivers.free_port()
        self.state = os.path.join(self.d, "state")
        self.cfg = os.path.join(self.d, "sluiced.yaml")

    def config_text(self, stats_interval=60):
        c = self.cloud
        return (self.tap_config() +
                f"state: {{dir: {self.state}}}\nevents: {{path: {self.events}}}\n"
                f"stats: {{interval_s: {stats_interval}}}\n"
                f"reputation:\n  endpoints:\n    - {{name: lab, kind: sluice, url: '{c.url}', api_key: test-key}}\n"
                f"analysis:\n  endpoints:\n    - {{name: sandbox, kind: sluice, url: '{c.url}', api_key: test-key}}\n"
                f"quarantine: {{relay: '{self.relay.address}', relay_starttls: none}}\n"
                f"management: {{listen: '127.0.0.1:{self.port}', token_file: {self.token_file}, rate_per_s: 1000}}\n")

    def start(self):
        with open(self.cfg, "w") as f:
            f.write(self.config_text())
        self.dmn = self.start_daemon(["--config", self.cfg])
        self.assertTrue(wait_for(lambda: "management API on" in self.dmn.stdout()), self.dmn.stderr())

    def call(self, method, path, body=None, role="admin", raw=False, content_type="application/json"):
        ctx = ssl.create_default_context(cafile=os.path.join(self.state, "management.crt"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=30)
        headers = {"Authorization": "Bearer " + self.tokens[role]} if role else {}
        if body is not None:
            headers["Content-Type"] = content_type
            if not isinstance(body, (str, bytes)):
                body = json.dumps(body)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            if raw:
                return r.status, dict(r.getheaders()), data
            return r.status, json.loads(data)
        finally:
            conn.close()

    def ok(self, method, path, body=None, status=200, **kw):
        got, j = self.call(method, path, body, **kw)
        self.assertEqual(got, status, (method, path, j))
        return j

    def error(self, method, path, status, code, body=None, role="admin"):
        got, j = self.call(method, path, body, role=role)
        self.assertEqual((got, j["error"]["code"]), (status, code), (method, path, j))
        return j["error"]["message"]

    def file_events(self):
        return [e for e in read_events(self.events) if e["event_type"] == "file"]

    def test_every_resource(self):
        self.start()
        doc = fixture("macro.docm")
        self.send(tcpgen.mail_with_attachments(0, [("q.docm", doc)], message_id="<api-0@example.org>"))
        self.send(tcpgen.mail_with_attachments(1, [("q.docm", doc)], message_id="<api-1@example.org>"))

        def held():
            status, j = self.call("GET", "/api/v1/quarantine?state=held")
            return status == 200 and j["matching"] == 2
        self.assertTrue(wait_for(held, 30), self.dmn.stderr())

        # --- status and counters ---
        st = self.ok("GET", "/api/v1/status", role="read")
        self.assertEqual(st["mode"], "tap")
        counters = self.ok("GET", "/api/v1/counters", role="read")
        rx = [l for l in counters["lcores"] if l["role"] == "rx"][0]
        self.assertEqual(rx["reassembly"]["messages"], 2)
        self.assertEqual(counters["analysis"]["quarantine"]["stored"], 2)

        # --- endpoints ---
        eps = self.ok("GET", "/api/v1/endpoints", role="read")
        self.assertEqual([(e["name"], e["kind"], e["url"], e["circuit"]) for e in eps["reputation"]],
                         [("lab", "sluice", self.cloud.url, "closed")])
        self.assertEqual([e["name"] for e in eps["analysis"]], ["sandbox"])
        self.assertGreaterEqual(eps["reputation"][0]["requests"], 1)
        for section, name in (("reputation", "lab"), ("analysis", "sandbox")):
            t = self.ok("POST", f"/api/v1/endpoints/{section}/{name}/test")
            self.assertEqual((t["ok"], t["status"]), (True, 200), t)
        self.error("POST", "/api/v1/endpoints/reputation/nothing/test", 404, "NotFoundError")
        added = self.ok("POST", "/api/v1/endpoints", {"section": "reputation", "name": "second", "kind": "sluice",
                                                       "url": self.cloud.url, "api_key": "test-key"}, status=201)
        self.assertEqual((added["name"], added["added_at_run_time"]), ("second", True))
        self.assertEqual([e["name"] for e in self.ok("GET", "/api/v1/endpoints")["reputation"]], ["lab", "second"])
        self.assertEqual(self.ok("POST", "/api/v1/endpoints/reputation/second/test")["ok"], True)
        # Its change feed is read from the next heartbeat on, as the configured one's.
        self.cloud.set_disposition("ab" * 32, "malicious", threat_name="Feed.Entry")
        before = self.ok("GET", "/api/v1/counters")["retrospective"]["completed"]
        self.ok("POST", "/api/v1/retrospective/heartbeat", status=202)

        def fed():
            r = self.ok("GET", "/api/v1/counters")["retrospective"]
            return r["completed"] > before and r["cursors"].get("second")
        self.assertTrue(wait_for(fed, 20), self.ok("GET", "/api/v1/counters")["retrospective"])
        cursors = self.ok("GET", "/api/v1/counters")["retrospective"]["cursors"]
        self.assertEqual(cursors["second"], cursors["lab"])
        self.error("POST", "/api/v1/endpoints", 409, "ConflictError",
                   {"section": "reputation", "name": "second", "url": self.cloud.url})
        self.assertIn("url", self.error("POST", "/api/v1/endpoints", 400, "BadRequestError",
                                        {"section": "reputation", "name": "third", "url": "ftp://x"}))
        self.error("POST", "/api/v1/endpoints", 400, "BadRequestError", {"section": "reputation", "name": "x",
                                                                          "url": self.cloud.url, "colour": "red"})
        self.ok("DELETE", "/api/v1/endpoints/reputation/second")
        self.assertEqual([e["name"] for e in self.ok("GET", "/api/v1/endpoints")["reputation"]], ["lab"])
        self.assertEqual(list(self.ok("GET", "/api/v1/counters")["retrospective"]["cursors"]), ["lab"])
        self.error("DELETE", "/api/v1/endpoints/reputation/second", 404, "NotFoundError")
        # An analysis endpoint too; a cape one needs its key (the configuration's check).
        sandbox2 = self.ok("POST", "/api/v1/endpoints", {"section": "analysis", "name": "sandbox2", "kind": "sluice",
                                                          "url": self.cloud.url, "api_key": "test-key"}, status=201)
        self.assertEqual((sandbox2["section"], sandbox2["added_at_run_time"]), ("analysis", True))
        self.assertEqual([e["name"] for e in self.ok("GET", "/api/v1/endpoints")["analysis"]], ["sandbox", "sandbox2"])
        self.assertEqual(self.ok("POST", "/api/v1/endpoints/analysis/sandbox2/test")["ok"], True)
        self.assertIn("api_key", self.error("POST", "/api/v1/endpoints", 400, "BadRequestError",
                                            {"section": "analysis", "name": "cape1", "kind": "cape", "url": self.cloud.url}))
        self.ok("DELETE", "/api/v1/endpoints/analysis/sandbox2")
        self.assertEqual([e["name"] for e in self.ok("GET", "/api/v1/endpoints")["analysis"]], ["sandbox"])
        self.error("POST", "/api/v1/endpoints", 400, "BadRequestError", {"section": "routing", "name": "x", "url": "y"})

        # --- the verdict cache and overrides ---
        entry = self.ok("GET", f"/api/v1/cache/{sha(doc).upper()}", role="read")
        self.assertEqual((entry["sha256"], entry["cached"], entry["reputation"], entry["source"]),
                         (sha(doc), True, "unknown", "cache"))
        self.assertIn("expires", entry)
        other = b"a file nobody knows yet\n" * 30
        self.assertEqual(self.ok("GET", f"/api/v1/cache/{sha(other)}")["cached"], False)
        self.error("GET", "/api/v1/cache/1234", 400, "BadRequestError")
        o = self.ok("PUT", f"/api/v1/overrides/{sha(other)}", {"verdict": "block", "comment": "phishing kit"})
        self.assertEqual((o["verdict"], o["comment"], o["by"]), ("block", "phishing kit", "admin token of line 1"))
        self.error("PUT", f"/api/v1/overrides/{sha(other)}", 400, "BadRequestError", {"verdict": "maybe"})
        self.assertEqual(self.ok("GET", "/api/v1/cache/" + sha(other))["source"], "override")
        self.assertGreaterEqual(self.ok("POST", "/api/v1/cache/flush")["dropped"], 1)
        self.assertEqual(self.ok("GET", "/api/v1/cache/" + sha(doc))["cached"], False)
        self.assertEqual(self.ok("GET", "/api/v1/cache/" + sha(other))["source"], "override")
        self.error("DELETE", "/api/v1/cache/" + sha(other), 409, "ConflictError")
        with open(os.path.join(self.state, "overrides.json")) as f:
            self.assertEqual([x["sha256"] for x in json.load(f)["overrides"]], [sha(other)])
        self.send(tcpgen.mail_with_attachments(2, [("kit.bin", other)]))
        self.assertTrue(wait_for(lambda: any(e["file"]["sha256"] == sha(other) for e in self.file_events()), 15))
        f = [e["file"] for e in self.file_events() if e["file"]["sha256"] == sha(other)][0]
        self.assertEqual((f["reputation"], f["verdict_source"]), ("malicious", "override"))
        self.assertEqual([x["sha256"] for x in self.ok("GET", "/api/v1/overrides", role="read")["overrides"]],
                         [sha(other)])
        self.ok("DELETE", "/api/v1/overrides/" + sha(other))
        self.assertEqual(self.ok("GET", "/api/v1/overrides")["overrides"], [])
        self.error("DELETE", "/api/v1/overrides/" + sha(other), 404, "NotFoundError")

        # --- the quarantine ---
        page = self.ok("GET", "/api/v1/quarantine?limit=1", role="read")
        self.assertEqual((len(page["entries"]), page["matching"]), (1, 2))
        page2 = self.ok("GET", "/api/v1/quarantine?limit=1&after=" + urllib.parse.quote(page["next"]))
        self.assertEqual((len(page2["entries"]), page2["next"]), (1, ""))
        newest, oldest = page["entries"][0], page2["entries"][0]
        self.assertGreater(newest["id"], oldest["id"])
        self.assertEqual(self.ok("GET", "/api/v1/quarantine?order=oldest")["entries"][0]["id"], oldest["id"])
        only = self.ok("GET", "/api/v1/quarantine?sender=S1%40example.org")["entries"]
        self.assertEqual([e["mail_from"] for e in only], ["s1@example.org"])
        self.assertEqual(self.ok("GET", f"/api/v1/quarantine?sha256={sha(doc)}")["matching"], 2)
        self.assertEqual(self.ok("GET", "/api/v1/quarantine?since=2999-01-01T00:00:00Z")["matching"], 0)
        self.error("GET", "/api/v1/quarantine?limit=0", 400, "BadRequestError")
        self.error("GET", "/api/v1/quarantine?state=lost", 400, "BadRequestError")
        self.error("GET", "/api/v1/quarantine?since=yesterday", 400, "BadRequestError")
        e0 = self.ok("GET", "/api/v1/quarantine/" + only[0]["id"])
        self.assertEqual((e0["state"], e0["rcpt_to"], e0["message_id"]), ("held", ["inbox@example.net"], "<api-1@example.org>"))
        self.assertEqual([(x["filename"], x["sha256"]) for x in e0["files"]], [("q.docm", sha(doc))])
        status, headers, eml = self.call("GET", f"/api/v1/quarantine/{e0['id']}/eml", role="read", raw=True)
        self.assertEqual((status, headers["Content-Type"]), (200, "message/rfc822"))
        self.assertEqual((sha(eml), len(eml)), (e0["message_sha256"], e0["size"]))
        self.error("GET", "/api/v1/quarantine/20000101-000000-000-00000000", 404, "NotFoundError")
        released = self.ok("POST", f"/api/v1/quarantine/{e0['id']}/release", {"relay": True, "why": "false positive"})
        self.assertEqual((released["state"], released["action"], released["by"], released["why"]),
                         ("released", "relayed", "admin token of line 1", "false positive"))
        self.assertEqual(len(self.relay.messages), 1)
        mail_from, rcpts, data = self.relay.messages[0]
        self.assertEqual((mail_from, rcpts), ("s1@example.org", ["inbox@example.net"]))
        self.assertEqual(data, eml)
        self.error("POST", f"/api/v1/quarantine/{e0['id']}/release", 409, "ConflictError", {})
        other_id = [e for e in (newest, oldest) if e["id"] != e0["id"]][0]["id"]
        deleted = self.ok("POST", f"/api/v1/quarantine/{other_id}/delete", {"why": "spam"})
        self.assertEqual((deleted["state"], deleted["why"]), ("deleted", "spam"))
        self.error("GET", f"/api/v1/quarantine/{other_id}/eml", 409, "ConflictError")
        self.assertEqual(self.ok("GET", "/api/v1/quarantine?state=held")["matching"], 0)

        # --- sightings ---
        self.assertTrue(wait_for(lambda: len(self.ok("GET", f"/api/v1/sightings/{sha(doc)}")["messages"]) == 2, 15))
        seen = self.ok("GET", f"/api/v1/sightings/{sha(doc)}", role="read")["messages"]
        self.assertEqual(sorted(m["message_id"] for m in seen), ["<api-0@example.org>", "<api-1@example.org>"])
        self.assertEqual(seen[0]["files"][0]["filename"], "q.docm")
        # The third mail's sighting reaches the store with the next batch.
        by_rcpt = []

        def three():
            by_rcpt[:] = self.ok("GET", "/api/v1/sightings?recipient=INBOX@example.net&from=0")["messages"]
            return len(by_rcpt) == 3
        self.assertTrue(wait_for(three, 15), by_rcpt)
        self.assertEqual(self.ok("GET", "/api/v1/sightings?recipient=nobody@example.net")["messages"], [])
        self.error("GET", "/api/v1/sightings?from=10&to=5", 400, "BadRequestError")
        hb = self.ok("POST", "/api/v1/retrospective/heartbeat", status=202)
        self.assertEqual(sorted(hb), ["queued", "started"])
        self.assertNotEqual(hb["started"], hb["queued"])  # started now, or queued after the one running

        # --- configuration ---
        keys = self.ok("GET", "/api/v1/config", role="read")["keys"]
        self.assertEqual(keys["reputation.endpoints"][0]["api_key"], "<redacted>")
        self.assertEqual(keys["reputation.endpoints"][0]["url"], self.cloud.url)
        self.assertEqual(keys["stats.interval_s"], 60)
        self.assertNotIn("test-key", json.dumps(keys))
        v = self.ok("POST", "/api/v1/config/validate", self.config_text(stats_interval=5), content_type="application/yaml")
        self.assertEqual(v, {"valid": True, "changed": ["stats.interval_s"]})
        v = self.ok("POST", "/api/v1/config/validate", self.config_text().replace("memory_mb: 256", "memory_mb: 512"))
        self.assertEqual(v["valid"], False)
        self.assertIn("eal.memory_mb", v["error"])
        v = self.ok("POST", "/api/v1/config/validate", "stats: [")
        self.assertEqual(v["valid"], False)
        with open(self.cfg, "w") as f:
            f.write(self.config_text().replace("memory_mb: 256", "memory_mb: 512"))
        r = self.ok("POST", "/api/v1/config/reload")
        self.assertEqual(r["reloaded"], False)
        with open(self.cfg, "w") as f:
            f.write(self.config_text(stats_interval=5))
        self.assertEqual(self.ok("POST", "/api/v1/config/reload"), {"reloaded": True, "changed": ["stats.interval_s"]})
        self.assertEqual(self.ok("GET", "/api/v1/config")["keys"]["stats.interval_s"], 5)

        # --- alerts: the refused reload is the newest ---
        alerts = self.ok("GET", "/api/v1/alerts?severity=warning", role="read")["alerts"]
        self.assertEqual((alerts[0]["type"], alerts[0]["severity"]), ("config_reload_refused", "warning"))
        self.assertIn("id", alerts[0])
        self.error("GET", "/api/v1/alerts?severity=loud", 400, "BadRequestError")
        # A test alert: in the list, in the events, with what the operator wrote.
        self.assertEqual(self.ok("POST", "/api/v1/alerts/test", {"severity": "critical", "text": "plumbing check"},
                                 status=202), {"raised": True, "type": "test", "severity": "critical"})
        newest = self.ok("GET", "/api/v1/alerts?limit=1", role="read")["alerts"][0]
        self.assertEqual((newest["type"], newest["severity"]), ("test", "critical"))
        self.assertIn("plumbing check", newest["message"])
        self.assertIn("admin token", newest["message"])
        self.assertTrue(wait_for(lambda: any(e["event_type"] == "alert" and e["alert"]["type"] == "test"
                                             for e in read_events(self.events))))
        self.error("POST", "/api/v1/alerts/test", 400, "BadRequestError", body={"severity": "loud"})
        self.error("POST", "/api/v1/alerts/test", 400, "BadRequestError", body={"colour": "red"})

        # --- roles: a read token on every admin route ---
        for method, path in (("POST", "/api/v1/endpoints"), ("DELETE", "/api/v1/endpoints/reputation/lab"),
                             ("POST", "/api/v1/endpoints/reputation/lab/test"),
                             ("DELETE", "/api/v1/cache/" + sha(doc)), ("POST", "/api/v1/cache/flush"),
                             ("PUT", "/api/v1/overrides/" + sha(doc)), ("DELETE", "/api/v1/overrides/" + sha(doc)),
                             ("POST", f"/api/v1/quarantine/{e0['id']}/release"),
                             ("POST", f"/api/v1/quarantine/{e0['id']}/delete"),
                             ("POST", "/api/v1/retrospective/heartbeat"), ("POST", "/api/v1/config/validate"),
                             ("POST", "/api/v1/alerts/test"),
                             ("POST", "/api/v1/config/reload")):
            self.error(method, path, 403, "ForbiddenError", body={}, role="read")
        self.error("GET", "/api/v1/quarantine", 401, "AuthenticationRequiredError", role=None)
        self.error("PUT", "/api/v1/overrides/" + sha(doc), 400, "BadRequestError", body="[1, 2]")

        # --- many clients at once ---
        def one(i):
            return self.call("GET", "/api/v1/quarantine" if i % 2 else "/api/v1/status", role="read")[0]
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            codes = list(pool.map(one, range(200)))
        self.assertEqual(codes, [200] * 200)

        self.assertEqual(self.dmn.stop(), 0, self.dmn.stderr())
        log = self.dmn.stderr()
        self.assertRegex(log, r"sluiced: api: 127\.0\.0\.1 admin token of line 1 POST /api/v1/quarantine/\S+/release 200 ")
        for token in self.tokens.values():
            self.assertNotIn(token, log)

    def ctl(self, *args, role="admin", code=0, json_out=False):
        env = dict(os.environ, SLUICE_TOKEN=self.tokens[role])
        argv = [SLUICECTL, "--url", f"https://127.0.0.1:{self.port}"] + (["--json"] if json_out else []) + list(args)
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(r.returncode, code, (args, r.stdout, r.stderr))
        return json.loads(r.stdout) if json_out and code == 0 else r.stdout

    def test_sluicectl_every_operation(self):
        self.start()
        doc = fixture("macro.docm")
        self.send(tcpgen.mail_with_attachments(0, [("q.docm", doc)], message_id="<ctl-0@example.org>"))
        self.send(tcpgen.mail_with_attachments(1, [("q.docm", doc)], message_id="<ctl-1@example.org>"))
        self.assertTrue(wait_for(lambda: self.call("GET", "/api/v1/quarantine?state=held")[1].get("matching") == 2, 30))

        self.assertIn("tap", self.ctl("status", role="read"))
        rx = [l for l in self.ctl("counters", json_out=True)["lcores"] if l["role"] == "rx"]
        self.assertEqual(rx[0]["reassembly"]["messages"], 2)
        out = self.ctl("endpoints", "list", role="read")
        self.assertRegex(out, r"reputation\s+lab\s+sluice\s+" + self.cloud.url)
        self.assertRegex(out, r"analysis\s+sandbox\s+sluice")
        self.assertTrue(self.ctl("endpoints", "test", "reputation", "lab", json_out=True)["ok"])
        self.assertTrue(self.ctl("endpoints", "test", "analysis", "sandbox", json_out=True)["ok"])
        key = os.path.join(self.d, "key")
        with open(key, "w") as f:
            f.write("test-key\n")
        self.ctl("endpoints", "add", "--section", "reputation", "--name", "second", "--kind", "sluice",
                 "--url", self.cloud.url, "--api-key-file", key)
        self.assertIn("second", self.ctl("endpoints", "list"))
        self.ctl("endpoints", "add", "--section", "reputation", "--name", "second", "--kind", "sluice",
                 "--url", self.cloud.url, code=1)
        self.ctl("endpoints", "remove", "reputation", "second")
        self.ctl("endpoints", "remove", "reputation", "second", code=3)
        self.ctl("endpoints", "remove", "reputation", "lab", role="read", code=4)

        self.assertEqual(self.ctl("cache", "show", sha(doc), json_out=True)["reputation"], "unknown")
        other = b"blocked by the operator\n" * 40
        self.ctl("override", "block", sha(other), "--comment", "kit")
        self.assertRegex(self.ctl("override", "list"), sha(other) + r"\s+block\s+kit")
        self.ctl("cache", "drop", sha(doc))
        self.ctl("cache", "drop", sha(doc), code=3)
        self.assertEqual(self.ctl("cache", "flush", json_out=True)["dropped"], 0)
        self.assertEqual(self.ctl("cache", "show", sha(other), json_out=True)["source"], "override")
        self.ctl("override", "remove", sha(other))
        self.ctl("override", "allow", sha(other))
        self.assertEqual(self.ctl("cache", "show", sha(other), json_out=True)["reputation"], "clean")
        self.ctl("cache", "show", "nothex", code=2)

        listed = self.ctl("quarantine", "list", "--state", "held", json_out=True)
        self.assertEqual(listed["matching"], 2)
        table = self.ctl("quarantine", "list", "--sender", "s0@example.org")
        ids = [e["id"] for e in listed["entries"]]
        self.assertEqual(sum(i in table for i in ids), 1)
        first = self.ctl("quarantine", "show", ids[0], json_out=True)
        eml = os.path.join(self.d, "m.eml")
        self.ctl("quarantine", "eml", ids[0], "--output", eml)
        with open(eml, "rb") as f:
            self.assertEqual(sha(f.read()), first["message_sha256"])
        self.ctl("quarantine", "release", ids[0], "--relay", "--why", "checked by hand")
        self.assertEqual(len(self.relay.messages), 1)
        self.ctl("quarantine", "release", ids[0], code=1)  # 409: not held
        self.ctl("quarantine", "delete", ids[1], "--why", "spam")
        self.assertEqual(self.ctl("quarantine", "show", ids[1], json_out=True)["state"], "deleted")
        self.ctl("quarantine", "show", "20000101-000000-000-00000000", code=3)

        self.assertTrue(wait_for(lambda: len(self.ctl("sightings", sha(doc), json_out=True)["messages"]) == 2, 15))
        seen = self.ctl("sightings", sha(doc), json_out=True)["messages"]
        self.assertEqual(sorted(m["message_id"] for m in seen), ["<ctl-0@example.org>", "<ctl-1@example.org>"])
        self.assertIn("<ctl-1@example.org>", self.ctl("sightings", "--recipient", "inbox@example.net"))
        self.ctl("heartbeat")
        with open(self.cfg, "w") as f:
            f.write(self.config_text().replace("memory_mb: 256", "memory_mb: 512"))
        self.ctl("config", "validate", self.cfg, code=1)
        self.ctl("config", "reload", code=1)
        self.assertIn("config_reload_refused", self.ctl("alerts", "--severity", "warning"))
        self.assertEqual(self.ctl("alerts", "test", "--severity", "info", "--text", "from the CLI", json_out=True),
                         {"raised": True, "type": "test", "severity": "info"})
        self.assertIn("from the CLI", self.ctl("alerts", "--limit", "1"))
        self.ctl("alerts", "test", "--severity", "loud", code=2)
        with open(self.cfg, "w") as f:
            f.write(self.config_text(stats_interval=7))
        self.ctl("config", "validate", self.cfg)
        self.ctl("config", "reload")
        self.assertRegex(self.ctl("config", "show"), r"stats\.interval_s: 7")
        self.assertNotIn("test-key", self.ctl("config", "show"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
