"""End to end: the report page (issue 16) in a real browser, Debian's Chromium driven by Selenium,
against a live tap-mode sluiced on a veth with a real sluice-cloud as its reputation and analysis
endpoint and a state directory (the set-up of e2e.api).

Six mails go through: one with a file the cloud calls clean, one without a file, two with a file it
calls malicious (a hostile subject: markup that must stay text), two with a macro document the cloud
does not know (uploaded for a long analysis: both stay held in the quarantine). A refused reload
adds an alert. Then, in the browser:
- the page's own files: types, the strict Content-Security-Policy and the other headers, the bytes
  of control/www; signed out, the form and no data (no request to the API either);
- a wrong token: the 401 shown at the form, nothing kept; the admin token: the overview, whose
  totals of messages per verdict and files per reputation, top malicious file (SHA-256, messages),
  analysis numbers, endpoints, held count and chart bars equal what the API answers the test;
- the quarantine view lists exactly the held entries; Release (relay off, confirmed) makes the API
  say `released` by the admin token with the page's reason;
- the alerts view shows the API's alerts (each severity filter); the file search for the malicious
  SHA-256 shows both messages that carried it and the cache's verdict, an unknown one "not seen";
  a trace by Message-ID shows the API's steps (the verdict among them), the subject as text;
- sign-out forgets the token and every value; a read token's Release shows the API's 403;
- nothing the page asked for left the listener's origin, the token never reached a URL, and the
  console has no error but the 401 and 403 the test provoked.
Screenshots of every view go to $SLUICE_BUILD/test-artifacts/report/.
"""
import hashlib
import http.client
import json
import os
import ssl
import sys
import time
import unittest

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import cloud  # noqa: E402
import receivers  # noqa: E402
import sluiced  # noqa: E402
import tcpgen  # noqa: E402
from daemon import TapTest, make_tokens, read_events, wait_for  # noqa: E402

WWW = os.path.join(os.path.dirname(__file__), "..", "..", "control", "www")
FIXTURES = os.path.join(os.path.dirname(__file__), "..", "data", "preclass")
ARTIFACTS = os.path.join(sluiced.BUILD, "test-artifacts", "report")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HOSTILE = '<img src=x onerror="document.title=1"> payment <b>overdue</b>'


def sha(b):
    return hashlib.sha256(b).hexdigest()


def number(text):
    return int(text.replace(",", ""))


class ReportPage(TapTest):
    veth_prefix = "slw"

    def setUp(self):
        super().setUp()
        self.cloud = cloud.Cloud(analysis_seconds=600)
        self.addCleanup(self.cloud.close)
        self.tokens, self.token_file = make_tokens(self.d)
        self.port = receivers.free_port()
        self.origin = f"https://127.0.0.1:{self.port}"
        self.state = os.path.join(self.d, "state")
        self.cfg = os.path.join(self.d, "sluiced.yaml")
        os.makedirs(ARTIFACTS, exist_ok=True)

    def config_text(self, memory_mb=256):
        c = self.cloud
        return (self.tap_config().replace("memory_mb: 256", f"memory_mb: {memory_mb}") +
                f"state: {{dir: {self.state}}}\nevents: {{path: {self.events}}}\n"
                f"reputation:\n  endpoints:\n    - {{name: lab, kind: sluice, url: '{c.url}', api_key: test-key}}\n"
                f"analysis:\n  endpoints:\n    - {{name: sandbox, kind: sluice, url: '{c.url}', api_key: test-key}}\n"
                f"management: {{listen: '127.0.0.1:{self.port}', token_file: {self.token_file}, rate_per_s: 1000}}\n")

    # --- the API, as the test asks it ---

    def call(self, method, path, body=None, role="admin"):
        ctx = ssl.create_default_context(cafile=os.path.join(self.state, "management.crt"))
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=30)
        headers = {"Authorization": "Bearer " + self.tokens[role]} if role else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(body)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def ok(self, path, role="read"):
        status, _, body = self.call("GET", path, role=role)
        self.assertEqual(status, 200, (path, body))
        return json.loads(body)

    # --- the browser ---

    def browser(self):
        o = webdriver.ChromeOptions()
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
            o.add_argument(a)
        o.accept_insecure_certs = True  # the listener's self-signed certificate
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
        self.addCleanup(d.quit)
        return d

    def until(self, predicate, what, timeout=20):
        try:
            return WebDriverWait(self.web, timeout, poll_frequency=0.1).until(lambda _: predicate())
        except TimeoutException:
            self.fail(f"the page did not show {what} within {timeout} s")

    def js(self, script, *args):
        return self.web.execute_script(script, *args)

    def field(self, name, root=None):
        return (root or self.web).find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text

    def view(self, name):
        self.web.find_element(By.CSS_SELECTOR, f'#tabs [data-view="{name}"]').click()
        self.until(lambda: self.web.find_element(By.ID, name).is_displayed(), f"the {name} view")

    def shot(self, name):
        path = os.path.join(ARTIFACTS, name + ".png")
        self.web.save_screenshot(path)
        print("report page screenshot:", path)
        return path

    def shot_whole(self, name):
        """A screenshot of the whole page (the window made as tall as it), then the window as it was."""
        size = self.web.get_window_size()
        self.web.set_window_size(size["width"], self.js("return document.documentElement.scrollHeight") + 140)
        try:
            return self.shot(name)
        finally:
            self.web.set_window_size(size["width"], size["height"])

    def console(self):
        """The console entries since the last call, but Chrome's DEBUG recommendations."""
        return [e for e in self.web.get_log("browser") if e["level"] in ("WARNING", "SEVERE")]

    def assert_console_only(self, statuses):
        """The console has no entry but `Failed to load resource` for answers of these statuses."""
        for e in self.console():
            self.assertTrue(e["source"] == "network" and any(f"status of {s} " in e["message"] for s in statuses),
                            f"console: {e}")

    def rows(self, table):
        """The rows of a table of the page (not the "No entries." one)."""
        return self.web.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr:not(.empty)")

    def sign_in(self, token):
        box = self.web.find_element(By.ID, "token")
        box.clear()
        box.send_keys(token)
        self.web.find_element(By.ID, "signin-button").click()

    def confirm(self):
        self.until(lambda: EC.alert_is_present()(self.web), "the confirmation", 10)
        text = self.web.switch_to.alert.text
        self.web.switch_to.alert.accept()
        return text

    # --- the traffic ---

    def send_mails(self):
        self.clean = b"report page: a clean attachment\n" * 20
        self.bad = b"report page: a malicious attachment\n" * 20
        with open(os.path.join(FIXTURES, "macro.docm"), "rb") as f:
            self.doc = f.read()
        self.cloud.set_disposition(sha(self.clean), "clean")
        self.cloud.set_disposition(sha(self.bad), "malicious", threat_name="Report.Test")
        mails = [tcpgen.mail_with_attachments(0, [("notes.txt", self.clean)], message_id="<rp-0@example.org>"),
                 tcpgen.mail_with_attachments(1, [], message_id="<rp-1@example.org>"),
                 tcpgen.mail_with_attachments(2, [("invoice.bin", self.bad)], subject=HOSTILE,
                                              message_id="<rp-2@example.org>"),
                 tcpgen.mail_with_attachments(3, [("invoice.bin", self.bad)], subject=HOSTILE,
                                              message_id="<rp-3@example.org>"),
                 tcpgen.mail_with_attachments(4, [("q.docm", self.doc)], message_id="<rp-4@example.org>"),
                 tcpgen.mail_with_attachments(5, [("q.docm", self.doc)], message_id="<rp-5@example.org>")]
        for i, frames in enumerate(mails):
            self.send(frames)
            # One at a time: the second malicious mail is answered by the cache the first one filled.
            self.assertTrue(wait_for(lambda: sum(e["event_type"] == "verdict" for e in read_events(self.events)) > i,
                                     15), f"no verdict for mail {i}: {self.dmn.stderr()}")
        self.assertTrue(wait_for(lambda: self.ok("/api/v1/quarantine?state=held")["matching"] == 2, 30))
        self.assertTrue(wait_for(lambda: len(self.ok(f"/api/v1/sightings/{sha(self.bad)}")["messages"]) == 2, 15))
        # An alert: a reload that changes a key fixed at start is refused.
        with open(self.cfg, "w") as f:
            f.write(self.config_text(memory_mb=512))
        status, _, body = self.call("POST", "/api/v1/config/reload")
        self.assertEqual((status, json.loads(body)["reloaded"]), (200, False))
        with open(self.cfg, "w") as f:
            f.write(self.config_text())

    def test_the_report_page_in_a_browser(self):
        t0 = time.monotonic()
        with open(self.cfg, "w") as f:
            f.write(self.config_text())
        self.dmn = self.start_daemon(["--config", self.cfg])
        self.assertTrue(wait_for(lambda: "management API on" in self.dmn.stdout()), self.dmn.stderr())

        # --- the page's files: no token needed, the policy on each, the bytes of control/www ---
        for path, name, ctype in (("/", "index.html", "text/html; charset=utf-8"),
                                  ("/ui/app.js", "app.js", "text/javascript; charset=utf-8"),
                                  ("/ui/app.css", "app.css", "text/css; charset=utf-8")):
            status, headers, body = self.call("GET", path, role=None)
            self.assertEqual((status, headers["Content-Type"]), (200, ctype), path)
            self.assertEqual(headers["Content-Security-Policy"], CSP, path)
            self.assertEqual((headers["X-Content-Type-Options"], headers["Referrer-Policy"], headers["Cache-Control"]),
                             ("nosniff", "no-referrer", "no-cache"), path)
            with open(os.path.join(WWW, name), "rb") as f:
                self.assertEqual(body, f.read(), path)
        status, headers, _ = self.call("GET", "/ui/nothing.js", role=None)
        self.assertEqual((status, headers["X-Content-Type-Options"]), (404, "nosniff"))

        self.send_mails()
        d = self.web = self.browser()

        # --- signed out: the form, no data, no API request ---
        d.get(self.origin + "/")
        self.until(lambda: d.find_element(By.ID, "token").is_displayed(), "the sign-in form")
        self.assertFalse(d.find_element(By.ID, "tabs").is_displayed())
        for v in ("overview", "quarantine", "alerts", "files", "trace"):
            self.assertFalse(d.find_element(By.ID, v).is_displayed(), v)
        self.assertEqual(self.js("return document.querySelectorAll('main tbody tr, .chart svg').length"), 0)
        self.assertEqual([u for u in self.js("return performance.getEntriesByType('resource').map(e => e.name)")
                          if "/api/" in u], [])
        self.shot("signin")

        # --- a wrong token: 401 at the form, nothing kept ---
        self.sign_in("sluice_not-a-token-of-this-appliance")
        self.until(lambda: "401" in d.find_element(By.ID, "signin-message").text, "the 401")
        self.assertIn("WrongCredentialsError", d.find_element(By.ID, "signin-message").text)
        self.assertIsNone(self.js("return sessionStorage.getItem('sluice.token')"))
        self.assertFalse(d.find_element(By.ID, "overview").is_displayed())
        self.assert_console_only([401])

        # --- the admin token: the overview equals the API ---
        self.sign_in(self.tokens["admin"])
        self.until(lambda: d.find_element(By.ID, "overview").get_attribute("data-refreshed"), "the overview")
        self.assertEqual(self.js("return sessionStorage.getItem('sluice.token')"), self.tokens["admin"])
        self.assertEqual(self.js("return localStorage.length + document.cookie.length"), 0)
        report = self.ok("/api/v1/report?window=1h")
        # What was sent (the API's own answer checked too, not only the page against it).
        self.assertEqual(report["totals"]["messages"],
                         {"clean": 1, "malicious": 2, "unscannable": 0, "pending": 2, "no_files": 1})
        self.assertEqual(report["totals"]["files"], {"clean": 1, "malicious": 2, "unknown": 2, "not_looked_up": 0})
        self.assertEqual([(f["sha256"], f["messages"]) for f in report["top_malicious"]], [(sha(self.bad), 2)])

        def overview_matches():
            """The page's numbers against the API's answer now ([] when equal)."""
            rp = self.ok("/api/v1/report?window=1h")
            held = self.ok("/api/v1/quarantine?state=held&limit=1")["matching"]
            diff = []
            for part in ("messages", "files"):
                for k, v in rp["totals"][part].items():
                    got = number(self.field(f"totals.{part}.{k}"))
                    if got != v:
                        diff.append((part, k, got, v))
                bars = self.js("""return Array.from(document.querySelectorAll(arguments[0] + ' rect[data-value]'))
                                  .reduce((s, r) => { s[r.dataset.key] = (s[r.dataset.key] || 0) + Number(r.dataset.value);
                                                      return s; }, {})""", f"#chart-{part}")
                window = {k: sum(b[part][k] for b in rp["series"]) for k in rp["series"][0][part]}
                if bars != {k: v for k, v in window.items() if v}:
                    diff.append((part, "bars", bars, window))
            top = d.find_element(By.CSS_SELECTOR, '#top-malicious tr[data-rank="0"]')
            if (self.field("sha256", top), number(self.field("messages", top))) != \
                    (rp["top_malicious"][0]["sha256"], rp["top_malicious"][0]["messages"]):
                diff.append(("top", self.field("sha256", top), self.field("messages", top)))
            if number(self.field("quarantine.held")) != held:
                diff.append(("held", self.field("quarantine.held"), held))
            for k, v in (rp["analysis"] or {}).items():
                if number(self.field("analysis." + k)) != v:
                    diff.append(("analysis", k, self.field("analysis." + k), v))
            return diff

        # The traffic is over, yet a refresh may fall between the page's requests and the test's:
        # compared again after the next refresh (every 10 s) before failing.
        diff = overview_matches()
        for _ in range(2):
            if not diff:
                break
            seen = d.find_element(By.ID, "overview").get_attribute("data-refreshed")
            self.until(lambda: d.find_element(By.ID, "overview").get_attribute("data-refreshed") != seen,
                       "another refresh", 15)
            diff = overview_matches()
        self.assertEqual(diff, [], "the overview differs from the API")
        self.assertEqual(number(self.field("quarantine.held")), 2)
        self.assertGreaterEqual(len(self.web.find_elements(By.CSS_SELECTOR, "#chart-messages rect[data-value]")), 1)
        endpoints = {(r.get_attribute("data-section"), r.get_attribute("data-name")): self.field("reachable", r)
                     for r in self.rows("endpoints")}
        self.assertEqual(endpoints, {("reputation", "lab"): "yes", ("analysis", "sandbox"): "yes"})
        self.assertEqual(d.current_url, self.origin + "/")
        self.shot("overview")
        self.shot_whole("overview-whole")  # docs/images/report-overview.png
        # The 24-hour window: 1440 minutes drawn as 120 bars of 12, adding up to the API's series.
        Select(d.find_element(By.ID, "window")).select_by_value("24h")
        self.until(lambda: d.find_element(By.ID, "overview").get_attribute("data-window") == "24h", "the 24 h window")
        day = self.ok("/api/v1/report?window=24h")
        self.assertEqual(len(day["series"]), 1440)
        self.assertEqual(d.find_element(By.CSS_SELECTOR, "#chart-messages svg").get_attribute("data-bars"), "120")
        drawn = self.js("""return Array.from(document.querySelectorAll('#chart-messages rect[data-value]'))
                           .reduce((s, r) => s + Number(r.dataset.value), 0)""")
        self.assertEqual(drawn, sum(sum(b["messages"].values()) for b in day["series"]))
        self.assertEqual(drawn, 6)

        # --- the quarantine: the held entries; Release with the relay off ---
        self.view("quarantine")
        held = [e["id"] for e in self.ok("/api/v1/quarantine?state=held")["entries"]]
        self.until(lambda: len(self.rows("quarantine-table")) == 2, "two held entries")
        self.assertEqual([r.get_attribute("data-id") for r in self.rows("quarantine-table")], held)
        self.assertFalse(d.find_element(By.ID, "quarantine-relay").is_selected())
        self.shot("quarantine")
        d.find_element(By.CSS_SELECTOR, f'#quarantine-table tr[data-id="{held[0]}"] button.release').click()
        self.assertIn(held[0], self.confirm())
        self.until(lambda: "released" in d.find_element(By.ID, "quarantine-message").text, "the release")
        entry = self.ok("/api/v1/quarantine/" + held[0])
        self.assertEqual((entry["state"], entry["action"], entry["by"], entry["why"]),
                         ("released", "released", "admin token of line 1", "report page"))
        self.until(lambda: [r.get_attribute("data-id") for r in self.rows("quarantine-table")] == held[1:],
                   "the list without the released entry")

        # --- alerts: the API's, for each severity ---
        self.view("alerts")
        for severity in ("info", "warning", "critical"):
            Select(d.find_element(By.ID, "alerts-severity")).select_by_value(severity)
            want = [(a["type"], a["message"]) for a in self.ok(f"/api/v1/alerts?limit=200&severity={severity}")["alerts"]]
            self.until(lambda: [(self.field("type", r), self.field("message", r)) for r in self.rows("alerts-table")] == want,
                       f"the {severity} alerts {want}")
            if severity == "warning":
                self.assertIn("config_reload_refused", [t for t, _ in want])
                self.shot("alerts")

        # --- file search: the malicious file's sightings and cache entry; an unknown file ---
        self.view("files")
        box = d.find_element(By.ID, "files-sha256")
        box.send_keys(sha(self.bad) + "\n")
        self.until(lambda: len(self.rows("sightings-table")) == 2, "two sightings")
        want = sorted(m["message_id"] for m in self.ok(f"/api/v1/sightings/{sha(self.bad)}")["messages"])
        self.assertEqual(want, ["<rp-2@example.org>", "<rp-3@example.org>"])
        self.assertEqual(sorted(self.field("message_id", r) for r in self.rows("sightings-table")), want)
        self.assertEqual(self.field("cache.reputation"), "malicious")
        self.assertFalse(d.find_element(By.ID, "files-not-seen").is_displayed())
        self.shot("files")
        box.clear()
        box.send_keys("0" * 64 + "\n")
        self.until(lambda: d.find_element(By.ID, "files-not-seen").is_displayed(), "not seen")
        self.assertEqual(self.rows("sightings-table"), [])

        # --- message trace by Message-ID ---
        self.view("trace")
        d.find_element(By.ID, "trace-query").send_keys("<rp-2@example.org>\n")
        traced = self.ok("/api/v1/trace?message_id=" + "%3Crp-2%40example.org%3E")["messages"]
        steps = [s["step"] for s in traced[0]["steps"]]
        self.assertIn("verdict", steps)
        self.until(lambda: [r.get_attribute("data-step") for r in d.find_elements(By.CSS_SELECTOR, "#trace-result tr[data-step]")]
                   == steps, f"the steps {steps}")
        self.assertEqual([self.field("text", r) for r in d.find_elements(By.CSS_SELECTOR, "#trace-result tr[data-step]")],
                         [s["text"] for s in traced[0]["steps"]])
        # The hostile subject is text: no element made of it, no handler run.
        self.assertEqual(self.field("subject", d.find_element(By.ID, "trace-result")), HOSTILE)
        self.assertEqual(self.js("return document.querySelectorAll('main img, main b').length"), 0)
        self.assertNotEqual(d.title, "1")
        self.shot("trace")
        self.assert_console_only([])

        # --- sign-out forgets everything; a read token's Release is refused with the API's 403 ---
        d.find_element(By.ID, "sign-out").click()
        self.until(lambda: d.find_element(By.ID, "token").is_displayed(), "the form again")
        self.assertIsNone(self.js("return sessionStorage.getItem('sluice.token')"))
        self.assertEqual(self.js("return document.querySelectorAll('main tbody tr, .chart svg, #trace-result *').length"), 0)
        self.sign_in(self.tokens["read"])
        self.until(lambda: d.find_element(By.ID, "overview").get_attribute("data-refreshed"), "the overview")
        self.view("quarantine")
        self.until(lambda: len(self.rows("quarantine-table")) == 1, "one held entry")
        d.find_element(By.CSS_SELECTOR, "#quarantine-table button.release").click()
        self.confirm()
        self.until(lambda: "403" in d.find_element(By.ID, "quarantine-message").text, "the 403")
        status, _, body = self.call("POST", f"/api/v1/quarantine/{held[1]}/release", {"relay": False}, role="read")
        self.assertEqual(status, 403)
        self.assertEqual(d.find_element(By.ID, "quarantine-message").text,
                         f"{held[1]}: 403 ForbiddenError: {json.loads(body)['error']['message']}")
        self.assertEqual(self.ok("/api/v1/quarantine/" + held[1])["state"], "held")
        self.shot("quarantine-read-token")
        self.assert_console_only([403])

        # --- nothing left the appliance; the token never in a URL ---
        urls = self.js("return performance.getEntriesByType('resource').map(e => e.name)"
                       ".concat(performance.getEntriesByType('navigation').map(e => e.name))")
        self.assertGreater(len(urls), 10)
        self.assertEqual([u for u in urls if not u.startswith(self.origin + "/")], [])
        for token in self.tokens.values():
            self.assertEqual([u for u in urls if token in u], [])
        self.assertEqual(self.dmn.stop(), 0, self.dmn.stderr())
        print(f"report page test: {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    unittest.main(verbosity=2)
