#!/usr/bin/python3
"""A test double of VirusTotal API v3's file look-up (GET /api/v3/files/{sha256}) for the appliance's
virustotal reputation adapter. The real service is out of reach from the lab and CI; this serves the
response SHAPES of the real API (docs.virustotal.com: files, reference/errors), not its data:

  found      200 {"data":{"type":"file","id":SHA256,"links":..,"attributes":{..,"last_analysis_stats":
             {harmless,type-unsupported,suspicious,confirmed-timeout,timeout,failure,malicious,undetected},
             "popular_threat_classification":{suggested_threat_label,popular_threat_category,
             popular_threat_name} (only when some engine detects it)}}}
  not found  404 {"error":{"code":"NotFoundError","message":"File \\"SHA256\\" not found"}}
  quota      429 {"error":{"code":"QuotaExceededError",...}}      (Retry-After only when configured)
  too_many   429 {"error":{"code":"TooManyRequestsError",...}}
  transient  503 {"error":{"code":"TransientError",...}}
  no key     401 {"error":{"code":"AuthenticationRequiredError","message":"X-Apikey header is missing"}}
  wrong key  401 {"error":{"code":"WrongCredentialsError","message":"Wrong API key"}}

A hash nobody configured is not found. Control (test side, no API key needed), under /_double/:
  PUT  /_double/files/SHA256  {"malicious":N,"harmless":N,"undetected":N,"label":"trojan.x/y"}
                              or {"answer":"quota"|"too_many"|"transient"|"not_found"|"bad_json"}
  PUT  /_double/mode          {"mode":"normal"|"quota"|"too_many"|"transient","delay_ms":N,
                               "retry_after":"S"}  (mode applies to every file look-up)
  GET  /_double/stats         {"requests":N,"lookups":{SHA256:N},"client_subjects":[...]}
  DELETE /_double             back to the start state (files, mode, counts)

Usage: vt_double.py [--listen 127.0.0.1:0] [--api-key K] [--tls-cert F --tls-key F [--client-ca F]]
Prints "vt-double: listening on http(s)://HOST:PORT" on standard output once it accepts connections.
With --client-ca the TLS handshake requires a client certificate signed by that CA."""
import argparse
import json
import re
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
ERRORS = {
    "not_found": (404, "NotFoundError", None),
    "quota": (429, "QuotaExceededError", "Quota exceeded"),
    "too_many": (429, "TooManyRequestsError", "Too many requests"),
    "transient": (503, "TransientError", "Transient server error. Retry might work."),
}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.files, self.mode, self.delay_ms, self.retry_after = {}, "normal", 0, None
        self.requests, self.lookups, self.client_subjects = 0, {}, []


STATE = State()


def file_object(sha, spec):
    stats = {"harmless": spec.get("harmless", 0), "type-unsupported": spec.get("type_unsupported", 4),
             "suspicious": spec.get("suspicious", 0), "confirmed-timeout": 0, "timeout": 0, "failure": 0,
             "malicious": spec.get("malicious", 0), "undetected": spec.get("undetected", 0)}
    attributes = {
        "type_description": "Win32 EXE", "type_tag": "peexe", "magic": "PE32 executable (GUI) Intel 80386",
        "size": 73802, "sha256": sha, "sha1": "0" * 40, "md5": "0" * 32, "names": ["invoice.exe"],
        "first_submission_date": 1700000000, "last_submission_date": 1700086400,
        "last_analysis_date": 1700086400, "last_modification_date": 1700090000, "times_submitted": 3,
        "reputation": -12 if stats["malicious"] else 0, "total_votes": {"harmless": 0, "malicious": 0},
        "last_analysis_stats": stats,
        "last_analysis_results": {
            "EngineA": {"category": "malicious" if stats["malicious"] else "undetected", "engine_name": "EngineA",
                        "engine_version": "1.0", "engine_update": "20231115", "method": "blacklist",
                        "result": spec.get("label") if stats["malicious"] else None}},
    }
    if stats["malicious"] and spec.get("label"):
        family = spec["label"].split("/")[-1].split(".")[0]
        attributes["popular_threat_classification"] = {
            "suggested_threat_label": spec["label"],
            "popular_threat_category": [{"count": stats["malicious"], "value": spec["label"].split(".")[0]}],
            "popular_threat_name": [{"count": stats["malicious"], "value": family}]}
    return {"data": {"type": "file", "id": sha, "links": {"self": "https://www.virustotal.com/api/v3/files/" + sha},
                     "attributes": attributes}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real API

    def log_message(self, *args):
        pass

    def send_json(self, status, obj, extra=None, raw=None):
        body = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_error_json(self, status, code, message, extra=None):
        self.send_json(status, {"error": {"code": code, "message": message}}, extra)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self):
        if self.path == "/_double/stats":
            with STATE.lock:
                return self.send_json(200, {"requests": STATE.requests, "lookups": STATE.lookups,
                                            "client_subjects": STATE.client_subjects})
        m = re.match(r"^/api/v3/files/([^/?]+)$", self.path)
        if not m:
            return self.send_error_json(404, "NotFoundError", "Resource not found")
        sha = m.group(1).lower()
        with STATE.lock:
            STATE.requests += 1
            STATE.lookups[sha] = STATE.lookups.get(sha, 0) + 1
            cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
            if cert:
                STATE.client_subjects.append(dict(x[0] for x in cert["subject"]).get("commonName", ""))
            mode, delay_ms, retry_after = STATE.mode, STATE.delay_ms, STATE.retry_after
            spec = STATE.files.get(sha)
        if delay_ms:
            time.sleep(delay_ms / 1000.0)
        key = self.headers.get("x-apikey")
        if API_KEY is not None and not key:
            return self.send_error_json(401, "AuthenticationRequiredError", "X-Apikey header is missing")
        if API_KEY is not None and key != API_KEY:
            return self.send_error_json(401, "WrongCredentialsError", "Wrong API key")
        if not HEX64.match(sha):
            return self.send_error_json(400, "InvalidArgumentError", "Invalid file identifier")
        answer = mode if mode != "normal" else (spec or {}).get("answer") if spec is not None else "not_found"
        if answer == "bad_json":
            return self.send_json(200, None, raw=b'{"data": {"type": "file", "id": ')
        if answer in ERRORS:
            status, code, message = ERRORS[answer]
            extra = {"Retry-After": retry_after} if status == 429 and retry_after else None
            return self.send_error_json(status, code, message or 'File "%s" not found' % sha, extra)
        return self.send_json(200, file_object(sha, spec))

    def do_PUT(self):
        body = self.read_json()
        m = re.match(r"^/_double/files/([0-9a-fA-F]{64})$", self.path)
        with STATE.lock:
            if m:
                STATE.files[m.group(1).lower()] = body
            elif self.path == "/_double/mode":
                STATE.mode = body.get("mode", "normal")
                STATE.delay_ms = int(body.get("delay_ms", 0))
                STATE.retry_after = body.get("retry_after")
            else:
                return self.send_error_json(404, "NotFoundError", "Resource not found")
        self.send_json(200, {"ok": True})

    def do_DELETE(self):
        if self.path != "/_double":
            return self.send_error_json(404, "NotFoundError", "Resource not found")
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
    p = argparse.ArgumentParser(description="VirusTotal API v3 file look-up test double")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--api-key")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--client-ca")
    a = p.parse_args()
    API_KEY = a.api_key
    host, port = a.listen.rsplit(":", 1)
    server = Server((host, int(port)), Handler)
    scheme = "http"
    if a.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        if a.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(a.client_ca)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    print("vt-double: listening on %s://%s:%d" % (scheme, host, server.server_address[1]), flush=True)
    server.serve_forever()


API_KEY = None
if __name__ == "__main__":
    sys.exit(main())
