#!/usr/bin/python3
"""A test double of CAPEv2's REST API v2 (web/apiv2) for the appliance's `cape` analysis adapter. The
real sandbox is out of reach from the lab and CI; this serves the response SHAPES of the real API
(kevoreilly/CAPEv2 web/apiv2/views.py, lib/cuckoo/common/web_utils.py validate_task, scoring.py),
not its behaviour:

  POST /apiv2/tasks/create/file/   multipart/form-data, field "file"
       200 {"error": [], "data": {"task_ids": [N], "message": "Task ID N has been submitted"}, "errors": []}
       200 {"error": true, "error_value": "No file was submitted"}          (no "file" part)
  GET  /apiv2/tasks/search/sha256/<h>/
       200 {"error": [], "data": [TASK, ...]}                                (found)
       200 {"data": [], "error": false}                                      (never submitted)
  GET  /apiv2/tasks/status/<id>/
       200 {"error": false, "data": "pending|running|completed|reported|failed_analysis|..."}
       200 {"error": true, "error_value": "Task does not exist"}
  GET  /apiv2/tasks/get/report/<id>/                                         (the report.json itself)
       200 {"info": {...}, "target": {...}, "malscore": 8.5, "malstatus": "Malicious",
            "detections": [{"family": ..}], "signatures": [...], "behavior": {...}, ...}
       200 {"error": true, "error_value": "Task is still being analyzed" | "Task failed" | "Task does not exist"}
  throttled  429 {"detail": "Request was throttled. Expected available in N seconds."} + Retry-After: N
  no token   401 {"detail": "Authentication credentials were not provided."}
  bad token  401 {"detail": "Invalid token."}
  too large  413 (an HTML page, as nginx's client_max_body_size answers)

A task's status follows the clock: pending, then running, completed and reported (or
failed_analysis after running) one `step_ms` after another. Control (no token needed), under
/_double/:
  PUT  /_double/config        {"step_ms": N, "malscore": F, "malstatus": S|null, "family": S|null,
                               "outcome": "reported"|"failed_analysis", "max_upload_bytes": N,
                               "report_padding_kb": N}    defaults for new tasks (and the upload limit)
  PUT  /_double/samples/SHA   the same task keys, for that SHA-256 only
  POST /_double/tasks         {"sha256": SHA, "status": "reported", ...}: a task already there
                               (another appliance's upload); answers {"id": N}
  PUT  /_double/mode          {"mode": "normal"|"throttle"|"error200"|"server_error"|"bad_json"|
                               "drop"|"slow", "retry_after": "S", "error_value": "...", "count": N,
                               "delay_ms": N (slow: answer normally after that long),
                               "paths": ["create", "search", "status", "report"]}
                               (mode applies to the API paths listed, all by default; count: the
                               next N requests, then normal)
  GET  /_double/stats         {"requests": N, "by_path": {...}, "uploads": [{"sha256", "filename", "size"}]}
  DELETE /_double             back to the start state

Usage: cape_double.py [--listen 127.0.0.1:0] [--api-key K] [--tls-cert F --tls-key F]
Prints "cape-double: listening on http(s)://HOST:PORT" on standard output once it accepts connections."""
import argparse
import email.parser
import email.policy
import hashlib
import json
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
TASK_DEFAULTS = {"step_ms": 200, "malscore": 0.0, "malstatus": "Clean", "family": None, "outcome": "reported"}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.config = dict(TASK_DEFAULTS, max_upload_bytes=64 << 20, report_padding_kb=0)
        self.samples, self.tasks, self.next_id = {}, {}, 1
        self.mode, self.retry_after, self.error_value, self.count, self.paths = "normal", None, None, None, None
        self.delay_ms = 0
        self.requests, self.by_path, self.uploads = 0, {}, []

    def add_task(self, sha, filename, size, spec, status=None):
        tid = self.next_id
        self.next_id += 1
        task = dict(TASK_DEFAULTS)
        task.update({k: v for k, v in self.config.items() if k in TASK_DEFAULTS})
        task.update(self.samples.get(sha, {}))
        task.update(spec)
        task.update({"id": tid, "sha256": sha, "filename": filename, "size": size, "added": time.time(),
                     "fixed_status": status})
        self.tasks[tid] = task
        return tid


STATE = State()


def task_status(t):
    if t["fixed_status"]:
        return t["fixed_status"]
    steps = (time.time() - t["added"]) * 1000.0 / max(1, t["step_ms"])
    if steps < 1:
        return "pending"
    if steps < 2:
        return "running"
    if t["outcome"] != "reported":
        return t["outcome"]
    return "completed" if steps < 3 else "reported"


def task_dict(t):
    added = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t["added"]))
    return {"id": t["id"], "target": t["filename"], "category": "file", "cape": None, "timeout": 0, "priority": 1,
            "custom": "", "machine": "", "package": "", "route": None, "tags_tasks": None, "options": "",
            "platform": "", "memory": False, "enforce_timeout": False, "clock": added, "added_on": added,
            "started_on": None, "completed_on": None, "status": task_status(t), "dropped_files": None,
            "running_processes": None, "api_calls": None, "domains": None, "signatures_total": None,
            "signatures_alert": None, "files_written": None, "registry_keys_modified": None, "crash_issues": None,
            "anti_issues": None, "timedout": False, "sample_id": t["id"], "machine_id": None, "parent_id": None,
            "tlp": None, "user_id": 0, "username": False,
            "sample": {"id": t["id"], "file_size": t["size"], "file_type": "data", "md5": "0" * 32,
                       "crc32": "00000000", "sha1": "0" * 40, "sha256": t["sha256"], "sha512": "0" * 128,
                       "ssdeep": None, "parent": None, "source_url": None}}


def report(t, padding_kb):
    score = float(t["malscore"])
    family = t.get("family")
    sigs = []
    if score > 0:
        sigs = [{"name": "sig_%d" % i, "description": "Behaviour %d" % i, "severity": 3, "confidence": 80,
                 "weight": 1, "categories": ["generic"], "families": [family] if family else [],
                 "data": [{"call": {"api": "NtWriteFile", "arguments": ["x" * 40] * 4}}] * 20,
                 "alert": False, "references": [], "new_data": []} for i in range(60)]
    r = {"info": {"version": "2.4-CAPE", "started": "2026-12-02 10:11:12", "ended": "2026-12-02 10:13:12",
                  "duration": 120, "id": t["id"], "category": "file", "custom": "", "machine": {"name": "win10"},
                  "package": "exe", "timeout": False, "shrike_url": None},
         "target": {"category": "file", "file": {"name": t["filename"], "path": "/tmp/x", "size": t["size"],
                                                  "md5": "0" * 32, "sha256": t["sha256"], "type": "data",
                                                  "strings": ["s" * 30] * 200, "pe": {}}},
         "behavior": {"processes": [], "processtree": [], "summary": {"files": ["C:\\x"] * 50}},
         "network": {"hosts": [], "domains": [], "http": []},
         "signatures": sigs, "malscore": score, "malstatus": t.get("malstatus"),
         "detections": [{"family": family, "details": [{"Yara": "x"}]}] if family else [],
         "statistics": {"processing": [], "signatures": [], "reporting": []}}
    if padding_kb:
        r["behavior"]["padding"] = "p" * (padding_kb * 1024)
    return r


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as gunicorn/nginx in front of CAPE

    def log_message(self, *args):
        pass

    def send_json(self, status, obj, extra=None, raw=None, content_type="application/json"):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # --- the API ---------------------------------------------------------------------------------

    def api(self, method):
        routes = [("POST", r"^/apiv2/tasks/create/file/$", "create"),
                  ("GET", r"^/apiv2/tasks/search/sha256/([^/]+)/$", "search"),
                  ("GET", r"^/apiv2/tasks/status/([^/]+)/$", "status"),
                  ("GET", r"^/apiv2/tasks/get/report/([^/]+)/$", "report")]
        for m, pattern, name in routes:
            match = re.match(pattern, self.path)
            if match and m == method:
                return name, match
        return None, None

    def fault(self, name):
        """The mode's answer for this request, or None to serve it normally."""
        with STATE.lock:
            mode = STATE.mode
            if mode == "normal" or (STATE.paths and name not in STATE.paths):
                return None
            if STATE.count is not None:
                if STATE.count <= 0:
                    return None
                STATE.count -= 1
            retry_after, error_value, delay_ms = STATE.retry_after, STATE.error_value, STATE.delay_ms
        if mode == "slow":
            time.sleep(delay_ms / 1000.0)
            return None
        if mode == "throttle":
            extra = {"Retry-After": retry_after} if retry_after else None
            wait = retry_after or "60"
            return lambda: self.send_json(429, {"detail": "Request was throttled. Expected available in %s seconds."
                                                % wait}, extra)
        if mode == "error200":
            return lambda: self.send_json(200, {"error": True, "error_value": error_value or
                                                "Error adding task to database"})
        if mode == "server_error":
            return lambda: self.send_json(500, None, raw=b"<h1>Server Error (500)</h1>", content_type="text/html")
        if mode == "bad_json":
            return lambda: self.send_json(200, None, raw=b'{"error": false, "data": [{"id": ')
        if mode == "drop":
            def drop():
                self.close_connection = True
            return drop
        return None

    def authorized(self):
        if API_KEY is None:
            return True
        auth = self.headers.get("Authorization")
        if not auth:
            self.send_json(401, {"detail": "Authentication credentials were not provided."},
                           {"WWW-Authenticate": "Token"})
            return False
        if auth != "Token " + API_KEY:
            self.send_json(401, {"detail": "Invalid token."}, {"WWW-Authenticate": "Token"})
            return False
        return True

    def serve_api(self, method):
        name, match = self.api(method)
        body = self.read_body() if method == "POST" else b""
        if name is None:
            return self.send_json(404, None, raw=b"<h1>Not Found</h1>", content_type="text/html")
        with STATE.lock:
            STATE.requests += 1
            STATE.by_path[name] = STATE.by_path.get(name, 0) + 1
        if not self.authorized():
            return
        answer = self.fault(name)
        if answer:
            return answer()
        return getattr(self, "api_" + name)(match, body)

    def api_create(self, match, body):
        with STATE.lock:
            limit = STATE.config["max_upload_bytes"]
        if len(body) > limit:
            return self.send_json(413, None, raw=b"<html><head><title>413 Request Entity Too Large</title></head>"
                                  b"<body><center><h1>413 Request Entity Too Large</h1></center></body></html>",
                                  content_type="text/html")
        ctype = self.headers.get("Content-Type", "")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
        files = []
        if msg.is_multipart():
            for part in msg.iter_parts():
                if part.get_param("name", header="content-disposition") == "file" and part.get_filename() is not None:
                    files.append((part.get_filename(), part.get_payload(decode=True) or b""))
        if not files:
            return self.send_json(200, {"error": True, "error_value": "No file was submitted"})
        filename, data = files[0]
        sha = hashlib.sha256(data).hexdigest()
        with STATE.lock:
            STATE.uploads.append({"sha256": sha, "filename": filename, "size": len(data)})
            tid = STATE.add_task(sha, filename, len(data), {})
        self.send_json(200, {"error": [], "data": {"task_ids": [tid], "message": "Task ID %d has been submitted" % tid},
                             "errors": []})

    def api_search(self, match, body):
        sha = match.group(1).lower()
        with STATE.lock:
            tasks = [task_dict(t) for t in STATE.tasks.values() if t["sha256"] == sha]
        if not tasks:
            return self.send_json(200, {"data": [], "error": False})
        self.send_json(200, {"error": [], "data": tasks})

    def task(self, match):
        try:
            return STATE.tasks.get(int(match.group(1)))
        except ValueError:
            return None

    def api_status(self, match, body):
        with STATE.lock:
            t = self.task(match)
            status = task_status(t) if t else None
        if not t:
            return self.send_json(200, {"error": True, "error_value": "Task does not exist"})
        self.send_json(200, {"error": False, "data": status})

    def api_report(self, match, body):
        with STATE.lock:
            t = self.task(match)
            status = task_status(t) if t else None
            padding = STATE.config["report_padding_kb"]
        if not t:
            return self.send_json(200, {"error": True, "error_value": "Task does not exist"})
        if status in ("failed_analysis", "failed_processing", "failed_reporting"):
            return self.send_json(200, {"error": True, "error_value": "Task failed"})
        if status != "reported":
            return self.send_json(200, {"error": True, "error_value": "Task is still being analyzed"})
        self.send_json(200, report(t, padding), {"Content-Disposition": "attachment; filename=%d_report.json" % t["id"]},
                       content_type="application/json; charset=UTF-8")

    # --- control ---------------------------------------------------------------------------------

    def do_GET(self):
        if self.path == "/_double/stats":
            with STATE.lock:
                return self.send_json(200, {"requests": STATE.requests, "by_path": STATE.by_path,
                                            "uploads": STATE.uploads})
        self.serve_api("GET")

    def do_POST(self):
        if self.path == "/_double/tasks":
            spec = json.loads(self.read_body() or b"{}")
            sha = spec.pop("sha256").lower()
            status = spec.pop("status", None)
            with STATE.lock:
                tid = STATE.add_task(sha, spec.pop("filename", "sample.bin"), spec.pop("size", 1), spec, status)
            return self.send_json(200, {"id": tid})
        self.serve_api("POST")

    def do_PUT(self):
        spec = json.loads(self.read_body() or b"{}")
        m = re.match(r"^/_double/samples/([0-9a-fA-F]{64})$", self.path)
        with STATE.lock:
            if m:
                STATE.samples[m.group(1).lower()] = spec
            elif self.path == "/_double/config":
                STATE.config.update(spec)
            elif self.path == "/_double/mode":
                STATE.mode = spec.get("mode", "normal")
                STATE.retry_after = spec.get("retry_after")
                STATE.error_value = spec.get("error_value")
                STATE.count = spec.get("count")
                STATE.paths = spec.get("paths")
                STATE.delay_ms = int(spec.get("delay_ms", 0))
            else:
                return self.send_json(404, {"detail": "Not found."})
        self.send_json(200, {"ok": True})

    def do_DELETE(self):
        if self.path != "/_double":
            return self.send_json(404, {"detail": "Not found."})
        with STATE.lock:
            STATE.reset()
        self.send_json(200, {"ok": True})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client that failed the TLS handshake or went away is the test's business


def main():
    global API_KEY
    p = argparse.ArgumentParser(description="CAPEv2 REST API v2 test double")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--api-key")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    a = p.parse_args()
    API_KEY = a.api_key
    host, port = a.listen.rsplit(":", 1)
    server = Server((host, int(port)), Handler)
    scheme = "http"
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    print("cape-double: listening on %s://%s:%d" % (scheme, host, server.server_address[1]), flush=True)
    server.serve_forever()


API_KEY = None
if __name__ == "__main__":
    sys.exit(main())
