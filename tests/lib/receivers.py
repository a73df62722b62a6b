"""Where an appliance's notifications land, for tests: an HTTPS webhook receiver, syslog listeners
(UDP and TCP with octet counting, RFC 6587) and an administrator's mailbox (aiosmtpd, a real SMTP
server). Each runs in this process on a loopback port and keeps what it received."""
import json
import re
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=15.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


class Webhook:
    """HTTPS (with `cert`/`key`) or HTTP receiver: every POST's path, headers and JSON body. The
    next `fail` POSTs are answered `fail_status`."""

    def __init__(self, cert=None, key=None):
        self.posts, self.fail, self.fail_status, self.lock = [], 0, 503, threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with owner.lock:
                    failing = owner.fail > 0
                    if failing:
                        owner.fail -= 1
                    else:
                        owner.posts.append({"path": self.path, "headers": dict(self.headers),
                                            "json": json.loads(body)})
                status = owner.fail_status if failing else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = "%s://127.0.0.1:%d/hooks/sluice" % ("https" if cert else "http", self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Syslog:
    """A collector on UDP or TCP (octet counting): each message as a dict of its RFC 5424 fields."""

    LINE = re.compile(r"^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\]) (?:\ufeff)?(.*)$", re.S)

    def __init__(self, tcp=False):
        self.tcp, self.raw, self.lock, self.stopping = tcp, [], threading.Lock(), False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        if tcp:
            self.sock.listen(4)
        self.sock.settimeout(0.2)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stopping:
            try:
                if not self.tcp:
                    data, _ = self.sock.recvfrom(65536)
                    with self.lock:
                        self.raw.append(data)
                    continue
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._stream, args=(conn,), daemon=True).start()

    def _stream(self, conn):
        buf = b""
        conn.settimeout(0.2)
        with conn:
            while not self.stopping:
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while b" " in buf:  # "LEN SP MSG"
                    length, rest = buf.split(b" ", 1)
                    n = int(length)
                    if len(rest) < n:
                        break
                    with self.lock:
                        self.raw.append(rest[:n])
                    buf = rest[n:]

    def messages(self):
        with self.lock:
            raw = list(self.raw)
        out = []
        for data in raw:
            m = self.LINE.match(data.decode("utf-8"))
            assert m, "not RFC 5424: %r" % data[:200]
            pri, ts, host, app, procid, msgid, sd, msg = m.groups()
            out.append({"facility": int(pri) // 8, "severity": int(pri) % 8, "timestamp": ts, "host": host,
                        "app": app, "procid": procid, "msgid": msgid, "sd": sd, "msg": msg, "bom": "\ufeff" in
                        data.decode("utf-8")[:400]})
        return out

    def close(self):
        self.stopping = True
        self.sock.close()


class Mailbox:
    """aiosmtpd on a loopback port; `messages` holds (mail_from, rcpt_tos, bytes) as received."""

    def __init__(self):
        self.messages = []
        owner = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                owner.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.address = "127.0.0.1:%d" % self.port

    def close(self):
        self.controller.stop()
