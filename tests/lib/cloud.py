"""sluice-cloud for tests: runs the binary built by CMake (SLUICE_BUILD, as sluiced.py finds sluiced) on
a free loopback port in a temporary data directory, and talks to it with the standard library only.

    with Cloud(api_keys=["k"], admin_key="adm") as c:
        c.set_disposition(sha, "malicious", threat_name="Eicar-Test-Signature")
        files = c.lookup([sha])          # [FILE, ...] in request order
        c.faults(status=503, count=1)    # the next non-admin request answers 503
        c.restart()                      # same DIR, same port

    with Cloud(analysis_seconds=1, daily_samples=5) as c:
        s = c.upload(b"bytes", "invoice.doc")   # SAMPLE (201 new, 200 already there)
        c.wait_for_state(s["id"], "succ")       # the states seen on the way
        c.threat(s["id"])                # {"score", "verdict", "threat_name", "report"}
        c.wait_for_completion(s["id"])   # the SAMPLE once in succ or fail
        sample, threat = c.analyse(b"more bytes", "notes.txt")   # upload, wait, threat

Every call that expects 200 raises CloudError (status, code, message, headers) on anything else;
request() returns the raw Response for tests that check errors themselves.
"""
import http.client
import json
import os
import re
import secrets
import select
import shutil
import signal
import ssl
import subprocess
import tempfile
import time

BUILD = os.environ.get("SLUICE_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SLUICE_CLOUD = os.path.abspath(os.path.join(BUILD, "control", "cloud", "sluice-cloud"))
LISTENING = re.compile(r"^sluice-cloud: listening on (https?)://(\[[^\]]+\]|[^:]+):(\d+)$")

_DEFAULT = object()


def make_cert(directory, name="sluice-cloud", hosts=("127.0.0.1", "localhost")):
    """A self-signed certificate (its own CA bundle) and its key, made with the openssl CLI, valid for
    `hosts` (IP addresses and DNS names). Returns (cert_path, key_path)."""
    cert, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    san = ",".join(("IP:" if re.fullmatch(r"[0-9.]+|.*:.*", h) else "DNS:") + h for h in hosts)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=" + name, "-addext", "subjectAltName=" + san,
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


class CloudError(Exception):
    def __init__(self, response):
        self.response = response
        self.status = response.status
        err = {}
        try:
            err = response.json().get("error", {})
        except (ValueError, AttributeError):
            pass
        self.code, self.message = err.get("code"), err.get("message")
        super().__init__("sluice-cloud answered %d %s: %s" % (self.status, self.code, self.message or response.body[:200]))


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)


class Cloud:
    """One sluice-cloud process. api_keys: keys for look-ups (none: look-ups need no key); admin_key:
    the admin endpoints' key (None: they answer 403); tls: True to serve HTTPS with a certificate made
    by make_cert (ca_file is then its CA bundle), or a (cert, key) pair; quota_per_minute: None for no
    quota; analysis_seconds, daily_samples, max_sample_mb, malicious_score: the analysis options (None:
    the service's default); args: further command-line arguments; data_dir: None for a temporary
    directory removed at close()."""

    def __init__(self, api_keys=("test-key",), admin_key="test-admin", tls=False, quota_per_minute=None,
                 args=(), data_dir=None, host="127.0.0.1", start=True, analysis_seconds=None, daily_samples=None,
                 max_sample_mb=None, malicious_score=None):
        self.api_keys, self.admin_key = list(api_keys), admin_key
        self.quota_per_minute, self.extra_args, self.host = quota_per_minute, list(args), host
        for option, value in (("--analysis-seconds", analysis_seconds), ("--daily-samples", daily_samples),
                              ("--max-sample-mb", max_sample_mb), ("--malicious-score", malicious_score)):
            if value is not None:
                self.extra_args += [option, str(value)]
        self._tmp = tempfile.mkdtemp(prefix="sluice-cloud-test-")
        self.data_dir = data_dir or os.path.join(self._tmp, "data")
        self.cert = self.key = self.ca_file = None
        if tls is True:
            self.cert, self.key = make_cert(self._tmp)
        elif tls:
            self.cert, self.key = tls
        self.ca_file = self.cert
        self.proc = None
        self.last_upload_status = None
        self.port = 0
        self.scheme = "https" if self.cert else "http"
        self.listening_line = None
        self.stderr_path = os.path.join(self._tmp, "stderr")
        if start:
            self.start()

    # -- process --

    def command(self, port=0):
        args = [SLUICE_CLOUD, "--listen", "%s:%d" % (self.host, port), "--data", self.data_dir]
        for k in self.api_keys:
            args += ["--api-key", k]
        if self.admin_key is not None:
            args += ["--admin-key", self.admin_key]
        if self.cert:
            args += ["--tls-cert", self.cert, "--tls-key", self.key]
        if self.quota_per_minute is not None:
            args += ["--quota-per-minute", str(self.quota_per_minute)]
        return args + self.extra_args

    def start(self, port=None, timeout=10):
        """Starts the process (on `port`, or the port it had, or a free one) and waits for its
        listening line."""
        port = self.port if port is None else port
        self._err = open(self.stderr_path, "a")
        self.proc = subprocess.Popen(self.command(port), stdout=subprocess.PIPE, stderr=self._err)
        line = self._read_line(timeout)
        m = LISTENING.match(line or "")
        if not m:
            rc = self.proc.poll()
            if rc is None:
                self.proc.kill()
                self.proc.wait()
            raise RuntimeError("sluice-cloud did not start (exit %s, stdout %r): %s" % (rc, line, self.stderr()))
        self.listening_line = line
        self.scheme, self.port = m.group(1), int(m.group(3))
        return self

    def _read_line(self, timeout):
        end, data = time.monotonic() + timeout, b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in data and time.monotonic() < end:
            ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                break
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace").split("\n")[0] if data else None

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops the process with `sig` and returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            self.proc.stdout.close()
            self._err.close()
        self.proc = None
        return rc

    def kill(self):
        """SIGKILL: the service disappears at once (as in a crash); returns the exit status."""
        return self.stop(sig=signal.SIGKILL)

    def restart(self):
        """Stops (SIGTERM) if running, and starts again with the same data directory and port."""
        if self.proc is not None:
            rc = self.stop()
            if rc != 0:
                raise RuntimeError("sluice-cloud exited %s on SIGTERM: %s" % (rc, self.stderr()))
        return self.start(port=self.port)

    def close(self):
        if self.proc is not None:
            self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- HTTP --

    @property
    def url(self):
        return "%s://%s:%d" % (self.scheme, self.host, self.port)

    def ssl_context(self):
        return ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None

    def connection(self, timeout=10):
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ssl_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, key=_DEFAULT, headers=None, timeout=10):
        """One request on a new connection. `key`: sent as x-apikey (default: the first api key, or
        the admin key for /api/v1/admin/ paths; None: no key). `body`: bytes, str, or an object sent
        as JSON. Returns a Response (any status)."""
        if key is _DEFAULT:
            key = self.admin_key if path.startswith("/api/v1/admin/") else (self.api_keys[0] if self.api_keys else None)
        h = dict(headers or {})
        if key is not None:
            h["x-apikey"] = key
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            conn.close()

    def _ok(self, r):
        if r.status != 200:
            raise CloudError(r)
        return r.json()

    def health(self):
        return self._ok(self.request("GET", "/api/v1/health", key=None))["data"]

    def file(self, sha, key=_DEFAULT):
        """GET /api/v1/files/{sha}: the FILE object."""
        return self._ok(self.request("GET", "/api/v1/files/" + sha, key=key))["data"]

    def lookup(self, hashes, key=_DEFAULT):
        """POST /api/v1/files/lookup: the FILE objects, in request order."""
        return self._ok(self.request("POST", "/api/v1/files/lookup", {"hashes": list(hashes)}, key=key))["data"]

    def set_disposition(self, sha, disposition, threat_name=None, threat_score=None):
        """PUT /api/v1/admin/files/{sha}: the FILE object as stored."""
        body = {"disposition": disposition}
        if threat_name is not None:
            body["threat_name"] = threat_name
        if threat_score is not None:
            body["threat_score"] = threat_score
        return self._ok(self.request("PUT", "/api/v1/admin/files/" + sha, body))["data"]

    def changes(self, since=None, limit=None, key=_DEFAULT):
        """GET /api/v1/dispositions/changes: (entries, meta) where meta has cursor and more."""
        q = []
        if since is not None:
            q.append("since=" + since)
        if limit is not None:
            q.append("limit=%d" % limit)
        j = self._ok(self.request("GET", "/api/v1/dispositions/changes" + ("?" + "&".join(q) if q else ""), key=key))
        return j["data"], j["meta"]

    def faults(self, **kw):
        """POST /api/v1/admin/faults with kw (delay_ms, status, close, malformed, oversized_mb, count):
        the faults now set."""
        return self._ok(self.request("POST", "/api/v1/admin/faults", kw))["data"]

    def clear_faults(self):
        return self._ok(self.request("DELETE", "/api/v1/admin/faults"))["data"]

    # -- samples (analysis) --

    def upload_request(self, data, filename="sample.bin", key=_DEFAULT, field="sample"):
        """POST /api/v1/samples with `data` as the multipart file field `field` (filename None: the
        part has no filename parameter). Returns the raw Response."""
        body, content_type = multipart_form(field, data, filename)
        return self.request("POST", "/api/v1/samples", body, key=key, headers={"Content-Type": content_type})

    def upload(self, data, filename="sample.bin", key=_DEFAULT):
        """Submits `data` for analysis: the SAMPLE (201 for a new sample, 200 for one already there;
        `last_upload_status` says which). Raises CloudError on anything else."""
        r = self.upload_request(data, filename, key=key)
        if r.status not in (200, 201):
            raise CloudError(r)
        self.last_upload_status = r.status
        return r.json()["data"]

    def samples(self, sha, key=_DEFAULT):
        """GET /api/v1/samples?sha256=: the SAMPLEs of that SHA-256, newest first ([] when never
        submitted)."""
        return self._ok(self.request("GET", "/api/v1/samples?sha256=" + sha, key=key))["data"]

    def sample(self, sample_id, key=_DEFAULT):
        return self._ok(self.request("GET", "/api/v1/samples/" + sample_id, key=key))["data"]

    def state(self, sample_id, key=_DEFAULT):
        """The sample's state: wait, prep, run, proc, succ or fail."""
        return self._ok(self.request("GET", "/api/v1/samples/%s/state" % sample_id, key=key))["data"]["state"]

    def threat(self, sample_id, key=_DEFAULT):
        """GET /api/v1/samples/{id}/threat once finished: {"score", "verdict", "threat_name", "report"}."""
        return self._ok(self.request("GET", "/api/v1/samples/%s/threat" % sample_id, key=key))["data"]

    def limits(self, key=_DEFAULT):
        """GET /api/v1/limits: {"max_sample_bytes", "daily_samples", "submissions_available",
        "submissions-available"} (the last two the same number, null without a daily limit)."""
        return self._ok(self.request("GET", "/api/v1/limits", key=key))["data"]

    def wait_for_state(self, sample_id, state, timeout=10, interval=0.05):
        """Polls until the sample is in `state` and returns the states seen, in order (each once).
        Raises AssertionError when the time runs out or the sample finished in another state."""
        seen, end = [], time.monotonic() + timeout
        while True:
            s = self.state(sample_id)
            if not seen or seen[-1] != s:
                seen.append(s)
            if s == state:
                return seen
            if s in ("succ", "fail"):
                raise AssertionError("sample %s finished in %s, not %s (states %s)" % (sample_id, s, state, seen))
            if time.monotonic() > end:
                raise AssertionError("sample %s not in %s after %s s (states %s)" % (sample_id, state, timeout, seen))
            time.sleep(interval)

    def wait_for_completion(self, sample_id, timeout=10, interval=0.05):
        """Polls until the analysis ends (succ or fail) and returns the finished SAMPLE. Raises
        AssertionError when the time runs out."""
        end = time.monotonic() + timeout
        while True:
            s = self.sample(sample_id)
            if s["state"] in ("succ", "fail"):
                return s
            if time.monotonic() > end:
                raise AssertionError("sample %s still in %s after %s s" % (sample_id, s["state"], timeout))
            time.sleep(interval)

    def analyse(self, data, filename="sample.bin", key=_DEFAULT, timeout=10):
        """Uploads `data`, waits for its analysis to end and returns (SAMPLE, THREAT): the threat is
        {"score", "verdict", "threat_name", "report"} (score None and verdict "failed" when the
        analysis failed)."""
        s = self.upload(data, filename, key=key)
        done = self.wait_for_completion(s["id"], timeout=timeout)
        return done, self.threat(done["id"], key=key)


def multipart_form(field, data, filename="sample.bin", boundary=None):
    """A multipart/form-data body with one file field: (body bytes, Content-Type value)."""
    boundary = boundary or "sluice-" + secrets.token_hex(12)
    disposition = 'form-data; name="%s"' % field
    if filename is not None:
        disposition += '; filename="%s"' % filename.replace("\\", "\\\\").replace('"', '\\"')
    body = ("--%s\r\nContent-Disposition: %s\r\nContent-Type: application/octet-stream\r\n\r\n"
            % (boundary, disposition)).encode() + bytes(data) + ("\r\n--%s--\r\n" % boundary).encode()
    return body, "multipart/form-data; boundary=" + boundary
