"""TCP reassembly and SMTP message framing, end to end: captures generated here with known ground
truth (tests/lib/tcpgen.py) are replayed through sluiced, and the smtp / flow / anomaly events are
checked exactly against what the generator sent.

Each scenario builds its sessions from its own client address, so many scenarios share one capture
(one sluiced run, ~1-2 s of start-up each) while every test reads only its own events. Scenarios
that need capture-wide counters or are large (10 MB message, 1000 sessions, IP fragments) get a
capture of their own. Run: SLUICE_BUILD=build /usr/bin/python3 tests/integration/smtp_reassembly_test.py
"""
import base64
import datetime
import hashlib
import ipaddress
import os
import random
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import sluiced  # noqa: E402
import tcpgen  # noqa: E402
from tcpgen import ACK, FIN, PSH, RST, Conversation  # noqa: E402,F401

SERVER4 = "192.0.2.25"
SERVER6 = "2001:db8:25::25"
HELO = "client.example.org"
T0_US = 1_700_000_000 * 1_000_000  # capture time of the first frame; frames are 1 ms apart


# ---------------------------------------------------------------------------------------------
# Ground truth: messages and what was sent


_LETTERS = bytes(b"abcdefghijklmnopqrstuvwxyz     "[i % 31] for i in range(256))


class Msg:
    """A message's content as the client means it (before dot-stuffing), with its header fields."""

    def __init__(self, raw, subject=None, message_id=None):
        assert raw.endswith(b"\r\n")
        self.raw, self.subject, self.message_id = raw, subject, message_id
        self.sha = hashlib.sha256(raw).hexdigest()
        self.size = len(raw)


def make_message(tag, lines=30, rng=None, subject=True, message_id=True, body=None, width=70):
    """A plain-text message. Body lines never start with '.' or an SMTP verb unless `body` says so."""
    rng = rng or random.Random(tag)
    subj = "Report %s" % tag if subject else None
    mid = "<%s.%d@example.org>" % (tag, rng.randrange(10**9)) if message_id else None
    head = ["From: Sender %s <sender-%s@example.org>" % (tag, tag), "To: inbox@example.net",
            "Date: Tue, 14 Nov 2023 22:13:20 +0000"]
    if subj:
        head.append("Subject: " + subj)
    if mid:
        head.append("Message-ID: " + mid)
    head += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii"]
    if body is None:
        body = [b"Line %04d " % i + rng.randbytes(width - 10).translate(_LETTERS).strip() for i in range(lines)]
    raw = ("\r\n".join(head) + "\r\n\r\n").encode() + b"".join(
        (l if isinstance(l, bytes) else l.encode()) + b"\r\n" for l in body)
    return Msg(raw, subj, mid)


def stuffed_len_of_lines(raw, target):
    """The length of the longest prefix of `raw` ending with CRLF that is at most `target` bytes."""
    cut = raw.rfind(b"\r\n", 0, target)
    assert cut > 0
    return cut + 2


def client_server_totals(frames, client_ip):
    """(packets, IP bytes) per direction of one session's frames: {"c": [n, bytes], "s": [...]}.
    For a session ended by Conversation.close(), the flow is over (and reported) when both FINs
    are seen: the client's last ACK is not part of it, so it is left out here."""
    if tcpgen.split_frame(frames[-1])[2][-20:][13] == ACK and tcpgen.split_frame(frames[-2])[2][-20:][13] & FIN:
        frames = frames[:-1]
    c = ipaddress.ip_address(client_ip).packed
    out = {"c": [0, 0], "s": [0, 0]}
    for f in frames:
        _, ethertype, ip = tcpgen.split_frame(f)
        src = ip[12:16] if ethertype == 0x0800 else ip[8:24]
        side = "c" if src == c else "s"
        out[side][0] += 1
        out[side][1] += tcpgen.ip_length(f)
    return out


def rfc3339(us):
    t = datetime.datetime.fromtimestamp(us // 1_000_000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % (us % 1_000_000)


def ooo_count(segs, base):
    """How many of `segs` (non-overlapping, arrival order) arrive ahead of the next expected byte:
    the out_of_order_segments a receiver that starts at `base` counts."""
    nxt, held, n = 0, {}, 0
    for g in segs:
        off = (g.seq - base) & 0xFFFFFFFF
        if off != nxt:
            n += 1
            held[off] = len(g.payload)
            continue
        nxt += len(g.payload)
        while nxt in held:
            nxt += held.pop(nxt)
    return n


def shuffle_windows(rng, sizes):
    """A transform: shuffles the segments within consecutive windows of random sizes."""
    def transform(conv, segs):
        out, i = [], 0
        while i < len(segs):
            w = rng.choice(sizes)
            win = segs[i:i + w]
            rng.shuffle(win)
            out += win
            i += w
        return out
    return transform


# ---------------------------------------------------------------------------------------------
# Captures: scenarios registered per capture, built and replayed once, on first use

SCENARIOS = {}   # capture name -> {scenario name: builder}
_RESULTS = {}    # capture name -> (Events, {scenario: truth})
_WORKDIR = None


def scenario(capture="main"):
    def register(fn):
        SCENARIOS.setdefault(capture, {})[fn.__name__] = fn
        return fn
    return register


class Truth(dict):
    """What a scenario sent: frames (list), client (address string), anything else it wants."""
    __getattr__ = dict.__getitem__


def capture(name):
    """Builds every scenario of capture `name` (each from its own client address), replays the
    frames, and returns (Events, {scenario: Truth})."""
    if name in _RESULTS:
        return _RESULTS[name]
    truths, frames, t = {}, [], T0_US
    for i, (sname, builder) in enumerate(sorted(SCENARIOS[name].items())):
        client4 = "198.51.%d.%d" % (100 + i // 200, 1 + i % 200)
        truth = builder(client4)
        truth.setdefault("client", client4)
        truth["client"] = ipaddress.ip_address(truth["client"]).compressed
        truth["first_us"] = t
        for f in truth.frames:
            frames.append((t / 1e6, f))
            t += 1000
        truth["last_us"] = t - 1000
        truths[sname] = truth
    ev = sluiced.replay_frames(frames, _WORKDIR, name)
    _RESULTS[name] = (ev, truths)
    return _RESULTS[name]


class ScenarioEvents:
    def __init__(self, events, client):
        self.smtp = events.of("smtp", client_ip=client)
        self.flow = events.of("flow", client_ip=client)
        self.anomaly = events.of("anomaly", client_ip=client)

    def port(self, cport):
        """The events of one session of the scenario."""
        s = ScenarioEvents.__new__(ScenarioEvents)
        s.smtp = [e for e in self.smtp if e["src_port"] == cport]
        s.flow = [e for e in self.flow if e["src_port"] == cport]
        s.anomaly = [e for e in self.anomaly if e["src_port"] == cport]
        return s


def setUpModule():
    global _WORKDIR
    _WORKDIR = tempfile.mkdtemp(prefix="smtp_reassembly_")
    if not os.access(sluiced.SLUICED, os.X_OK):
        raise unittest.SkipTest("sluiced not built: " + sluiced.SLUICED)


def tearDownModule():
    if _WORKDIR and not os.environ.get("KEEP_CAPTURES"):
        shutil.rmtree(_WORKDIR, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Scenarios of the main capture. Each returns a Truth; `conv.stream` is the exact byte stream.


def plain_session(client, cport, messages, server=SERVER4, **conv_kw):
    """One session, one DATA transaction per (msg, mail_from, rcpts) in `messages`."""
    conv = Conversation(client=client, server=server, cport=cport, **conv_kw)
    tcpgen.smtp_open(conv, HELO)
    for msg, mail_from, rcpts in messages:
        tcpgen.smtp_data_transaction(conv, mail_from, rcpts, msg.raw)
    tcpgen.smtp_quit(conv)
    return conv


@scenario()
def in_order(client):
    msg = make_message("in-order", lines=80)
    conv = plain_session(client, 41000, [(msg, "alice@example.org", ["bob@example.net"])])
    return Truth(frames=conv.frames, conv=conv, msg=msg)


@scenario()
def several_messages(client):
    m0 = make_message("multi-0", lines=20)
    m1 = make_message("multi-1", lines=40)
    m2 = make_message("multi-2", lines=5, subject=False, message_id=False)
    conv = Conversation(client=client, server=SERVER4, cport=41001)
    tcpgen.smtp_open(conv, HELO)
    tcpgen.smtp_data_transaction(conv, "alice@example.org", ["bob@example.net", "carol@example.net"], m0.raw)
    tcpgen.smtp_data_transaction(conv, "dave@example.org", ["erin@example.net"], m1.raw,
                                 final_reply=b"550 5.7.1 Message rejected as spam\r\n")
    conv.send("c", b"RSET\r\n").send("s", b"250 2.0.0 Ok\r\n")
    tcpgen.smtp_data_transaction(conv, "", ["frank@example.net"], m2.raw)  # a bounce: null reverse-path
    tcpgen.smtp_quit(conv)
    return Truth(frames=conv.frames, msgs=[m0, m1, m2])


@scenario()
def reordered(client):
    sessions = {}
    frames = []
    for seed in range(1, 6):
        rng = random.Random(seed)
        msg = make_message("reorder-%d" % seed, lines=300, rng=rng)
        conv = Conversation(client=client, server=SERVER4, cport=42000 + seed, mss=536)
        tcpgen.smtp_open(conv, HELO)
        sizes = [[2, 3], [4, 8], [5, 13], [16], [2, 30]][seed - 1]
        shuffle = shuffle_windows(rng, sizes)
        sent = []

        def transform(conv, segs, shuffle=shuffle, sent=sent):
            sent.append(segs[0].seq)
            out = shuffle(conv, segs)
            sent.extend(out)
            return out
        tcpgen.smtp_data_transaction(conv, "reorder@example.org", ["inbox@example.net"], msg.raw, transform=transform)
        tcpgen.smtp_quit(conv)
        sessions[42000 + seed] = (msg, ooo_count(sent[1:], sent[0]))
        frames += conv.frames
    return Truth(frames=frames, sessions=sessions)


@scenario()
def duplicated(client):
    msg = make_message("dups", lines=120)
    conv = Conversation(client=client, server=SERVER4, cport=42100, mss=700)
    tcpgen.smtp_open(conv, HELO)
    dup = {"c": 0, "s": len(conv.stream["s"]) - conv.stream["s"].rfind(b"250-mx")}
    conv.frames.append(conv.frames[-1])  # the EHLO reply twice
    conv.send("c", b"MAIL FROM:<dups@example.org>\r\n").send("s", b"250 2.1.0 Ok\r\n")
    conv.send("c", b"RCPT TO:<bob@example.net>\r\n")
    conv.frames.append(conv.frames[-1])  # the RCPT command twice
    dup["c"] += len(b"RCPT TO:<bob@example.net>\r\n")
    conv.send("s", b"250 2.1.5 Ok\r\n")
    conv.frames.append(conv.frames[-1])  # its reply twice
    dup["s"] += len(b"250 2.1.5 Ok\r\n")
    conv.send("c", b"RCPT TO:<carol@example.net>\r\n").send("s", b"250 2.1.5 Ok\r\n")
    conv.send("c", b"DATA\r\n").send("s", b"354 Go ahead\r\n")
    segs = conv.data_segments("c", tcpgen.dot_stuff(msg.raw))
    out, later = [], []
    for i, g in enumerate(segs):
        if i == 5:  # 6 then 5 then 6 again (a copy of buffered data) then 7
            continue
        if i == 6:
            out += [g, segs[5], g]
            dup["c"] += len(g.payload)
        else:
            out.append(g)
        if i % 3 == 0:  # an immediate copy
            out.append(g)
            dup["c"] += len(g.payload)
        if i % 4 == 1:  # a late copy, two segments on
            later.append((i + 2, g))
        for when, old in [x for x in later if x[0] == i]:
            out.append(old)
            dup["c"] += len(old.payload)
    conv.emit(out)
    conv.send("s", tcpgen.QUEUED)
    tcpgen.smtp_quit(conv)
    return Truth(frames=conv.frames, conv=conv, msg=msg, dup=dup)


@scenario()
def consistent_overlap(client):
    rng = random.Random(7)
    sessions, frames = {}, []
    # 43001: every other 1000-byte piece first (holes between), then the whole range again with other
    # boundaries, shuffled. 43002: in order, each segment re-sending the last 300 bytes of the previous.
    for cport in (43001, 43002):
        msg = make_message("overlap-ok-%d" % cport, lines=200, rng=rng)
        conv = Conversation(client=client, server=SERVER4, cport=cport)
        tcpgen.smtp_open(conv, HELO)
        resent = []

        def transform(conv, segs, cport=cport, resent=resent):
            base = segs[0].seq
            data = b"".join(g.payload for g in segs)
            out = []
            if cport == 43001:
                for off in range(0, len(data), 2000):
                    out.append(conv.seg("c", base + off, data[off:off + 1000]))
                rng.shuffle(out)
                second, off = [], 0
                while off < len(data):
                    n = 500 if off == 0 else rng.randrange(900, 1400)
                    second.append(conv.seg("c", base + off, data[off:off + n]))
                    off += n
                rng.shuffle(second)
                out += second
            else:
                off = 0
                while off < len(data):
                    start = max(0, off - 300)
                    out.append(conv.seg("c", base + start, data[start:off + 1000]))
                    off += 1000
            resent.append(sum(len(g.payload) for g in out) - len(data))
            return out
        tcpgen.smtp_data_transaction(conv, "overlap@example.org", ["inbox@example.net"], msg.raw, transform=transform)
        tcpgen.smtp_quit(conv)
        sessions[cport] = (msg, resent[0])
        frames += conv.frames
    return Truth(frames=frames, sessions=sessions)


def first_seen(base_data, segs, base):
    """Per byte, the first value any of `segs` carried (arrival order): what a receiver that keeps
    the first data seen ends up with."""
    out = bytearray(len(base_data))
    seen = bytearray(len(base_data))
    for g in segs:
        off = (g.seq - base) & 0xFFFFFFFF
        for i, b in enumerate(g.payload):
            if not seen[off + i]:
                out[off + i], seen[off + i] = b, 1
    assert all(seen)
    return bytes(out)


@scenario()
def conflicting_overlap(client):
    """Three sessions whose content segments S0..Sn (1000 bytes) arrive with a hole at S1:
    44001: S0, S2, E, S1, S3...  (E rewrites bytes 2500..3000 of S2, after S2: S2's bytes win)
    44002: S0, E, S2, S1, S3...  (E before S2: E's bytes win)
    44003: S0, S2, S1+ , S3...   (S1+ is S1 extended over 2000..2500 with other bytes, arriving in
           order over buffered S2: S2's bytes win)."""
    sessions, frames = {}, []
    for cport in (44001, 44002, 44003):
        msg = make_message("conflict-%d" % cport, lines=100)
        conv = Conversation(client=client, server=SERVER4, cport=cport, mss=1000)
        tcpgen.smtp_open(conv, HELO)
        got = {}

        def transform(conv, segs, cport=cport, got=got):
            base = segs[0].seq
            data = b"".join(g.payload for g in segs)
            assert len(segs) > 5
            S = segs
            if cport == 44001:
                evil = conv.seg("c", base + 2500, b"#" * 500)
                order = [S[0], S[2], evil, S[1]] + S[3:]
            elif cport == 44002:
                evil = conv.seg("c", base + 2500, b"#" * 500)
                order = [S[0], evil, S[2], S[1]] + S[3:]
            else:
                ext = conv.seg("c", base + 1000, data[1000:2000] + b"#" * 500)
                order = [S[0], S[2], ext] + S[3:]
            stream = first_seen(data, order, base)
            assert stream.endswith(b"\r\n.\r\n")
            got["content"] = stream[:-3]
            return order
        tcpgen.smtp_data_transaction(conv, "conflict@example.org", ["inbox@example.net"], msg.raw, transform=transform)
        tcpgen.smtp_quit(conv)
        sessions[cport] = Msg(got["content"], msg.subject, msg.message_id)
        frames += conv.frames
    return Truth(frames=frames, sessions=sessions)


@scenario()
def lossy(client):
    """Two messages per session; the 3rd of 6 content segments of the first one is not in the
    capture. 45001: the server ACKs all content with a pure ACK, then replies. 45002: the ACK
    covering the hole comes only with the server's reply."""
    sessions, frames = {}, []
    for cport in (45001, 45002):
        m0 = make_message("lossy-0-%d" % cport, lines=80)
        m1 = make_message("lossy-1-%d" % cport, lines=20)
        conv = Conversation(client=client, server=SERVER4, cport=cport, mss=1000)
        tcpgen.smtp_open(conv, HELO)
        lost = []

        def drop(conv, segs, lost=lost):
            assert len(segs) >= 6
            lost.append(len(segs[2].payload))
            return segs[:2] + segs[3:]
        tcpgen.smtp_data_transaction(conv, "lossy@example.org", ["inbox@example.net"], m0.raw, transform=drop,
                                     server_ack=cport == 45001)
        tcpgen.smtp_data_transaction(conv, "lossy@example.org", ["other@example.net"], m1.raw)
        tcpgen.smtp_quit(conv)
        sessions[cport] = (m0, m1, lost[0])
        frames += conv.frames
    return Truth(frames=frames, sessions=sessions)


@scenario()
def pipelining(client):
    m0 = make_message("pipe-0", lines=40)
    m1 = make_message("pipe-1", lines=10)
    conv = Conversation(client=client, server=SERVER4, cport=46001)
    tcpgen.smtp_open(conv, HELO, caps=(b"PIPELINING", b"SIZE 10240000", b"8BITMIME"))
    conv.send("c", b"MAIL FROM:<pipe@example.org> SIZE=%d\r\nRCPT TO:<bob@example.net>\r\n"
                   b"RCPT TO:<carol@example.net>\r\nDATA\r\n" % m0.size)
    conv.send("s", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n")
    # The end of the first message and the next command group in the same segment(s).
    conv.send("c", tcpgen.dot_stuff(m0.raw) + b"MAIL FROM:<pipe2@example.org>\r\nRCPT TO:<dave@example.net>\r\nDATA\r\n")
    conv.send("s", b"250 2.0.0 Ok: queued as 4Sx1\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 Go ahead\r\n")
    conv.send("c", tcpgen.dot_stuff(m1.raw) + b"QUIT\r\n")
    conv.send("s", b"552 5.3.4 Message size exceeds fixed limit\r\n221 2.0.0 Bye\r\n")
    conv.close()
    return Truth(frames=conv.frames, msgs=[m0, m1])


@scenario()
def bdat(client):
    rng = random.Random(11)
    tricky = [b".leading dot, not stuffed in BDAT", b".", b"", b"..", b"MAIL FROM:<not-a-command@example.org>"]
    m0 = make_message("bdat-0", lines=10, body=["text before"] + tricky + ["text after"])
    m1 = make_message("bdat-1", lines=120, rng=rng)
    m2 = make_message("bdat-2", lines=3, body=["only", ".", "three"])
    m3 = make_message("bdat-3", lines=5, rng=rng)
    conv = Conversation(client=client, server=SERVER4, cport=47001, mss=1000)
    tcpgen.smtp_open(conv, HELO, caps=(b"PIPELINING", b"CHUNKING", b"8BITMIME"))
    ok_mail, ok_rcpt = b"250 2.1.0 Ok\r\n", b"250 2.1.5 Ok\r\n"
    # 0: one chunk, LAST, in the same segment as its command.
    conv.send("c", b"MAIL FROM:<bdat@example.org>\r\n").send("s", ok_mail)
    conv.send("c", b"RCPT TO:<bob@example.net>\r\n").send("s", ok_rcpt)
    assert len(m0.raw) + 20 < 1000
    conv.send("c", b"BDAT %d LAST\r\n" % m0.size + m0.raw).send("s", b"250 2.0.0 Message accepted\r\n")
    # 1: two chunks; the first command alone, its data over several segments; the second command
    # and the start of its data in one segment. The chunk boundary falls inside a line.
    conv.send("c", b"MAIL FROM:<bdat@example.org>\r\n").send("s", ok_mail)
    conv.send("c", b"RCPT TO:<carol@example.net>\r\n").send("s", ok_rcpt)
    cut = 4001
    conv.send("c", b"BDAT %d\r\n" % cut)
    conv.send("c", m1.raw[:cut]).send("s", b"250 2.0.0 %d octets received\r\n" % cut)
    conv.send("c", b"BDAT %d LAST\r\n" % (m1.size - cut) + m1.raw[cut:])
    conv.send("s", b"250 2.0.0 Message accepted\r\n")
    # 2: a chunk then BDAT 0 LAST.
    conv.send("c", b"MAIL FROM:<bdat@example.org>\r\n").send("s", ok_mail)
    conv.send("c", b"RCPT TO:<dave@example.net>\r\n").send("s", ok_rcpt)
    conv.send("c", b"BDAT %d\r\n" % m2.size + m2.raw).send("s", b"250 2.0.0 %d octets received\r\n" % m2.size)
    conv.send("c", b"BDAT 0 LAST\r\n").send("s", b"250 2.0.0 Message accepted\r\n")
    # 3: MAIL, RCPT and BDAT LAST with its data pipelined in one segment, replies in one.
    assert len(m3.raw) + 80 < 1000
    conv.send("c", b"MAIL FROM:<bdat@example.org>\r\nRCPT TO:<erin@example.net>\r\nBDAT %d LAST\r\n" % m3.size + m3.raw)
    conv.send("s", ok_mail + ok_rcpt + b"250 2.0.0 Message accepted\r\n")
    tcpgen.smtp_quit(conv)
    return Truth(frames=conv.frames, msgs=[m0, m1, m2, m3],
                 rcpts=[["bob@example.net"], ["carol@example.net"], ["dave@example.net"], ["erin@example.net"]])


def tls_bytes(rng, record_type, n, inside=b""):
    """TLS-looking records: a record header and random bytes (with `inside` somewhere in them)."""
    body = rng.randbytes(n // 2) + inside + rng.randbytes(n - n // 2)
    return bytes([record_type, 3, 3]) + len(body).to_bytes(2, "big") + body


@scenario()
def starttls(client):
    """48001: a message, then STARTTLS; 48002: STARTTLS at once; 48003: port 465 (implicit TLS).
    After the handshake both sides send TLS-looking bytes that contain a cleartext-looking
    SMTP dialogue, which must not be parsed. 48004: STARTTLS accepted, then the session goes on in
    plain text (a capture decrypted by a TLS-terminating proxy): its message is rebuilt."""
    rng = random.Random(5)
    hidden_c = b"\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<x@example.net>\r\nDATA\r\nSubject: hidden\r\n\r\nhidden\r\n.\r\n"
    hidden_s = b"\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 Go\r\n250 2.0.0 queued\r\n"
    msg = make_message("before-tls", lines=30)
    frames = []
    for cport in (48001, 48002, 48003):
        conv = Conversation(client=client, server=SERVER4, cport=cport, sport=465 if cport == 48003 else 25)
        if cport == 48003:
            conv.handshake()
        else:
            tcpgen.smtp_open(conv, HELO, caps=(b"PIPELINING", b"STARTTLS", b"8BITMIME"))
            if cport == 48001:
                tcpgen.smtp_data_transaction(conv, "early@example.org", ["bob@example.net"], msg.raw)
            conv.send("c", b"STARTTLS\r\n").send("s", b"220 2.0.0 Ready to start TLS\r\n")
        conv.send("c", tls_bytes(rng, 0x16, 512))
        conv.send("s", tls_bytes(rng, 0x16, 2900))
        conv.send("c", tls_bytes(rng, 0x14, 1) + tls_bytes(rng, 0x16, 40))
        conv.send("s", b"220 mx.example.net ESMTP\r\n" + tls_bytes(rng, 0x17, 64, hidden_s))
        conv.send("c", b"EHLO inner.example.org\r\n" + tls_bytes(rng, 0x17, 3000, hidden_c))
        conv.send("s", tls_bytes(rng, 0x17, 100, hidden_s))
        conv.close()
        frames += conv.frames
    conv = Conversation(client=client, server=SERVER4, cport=48004)
    tcpgen.smtp_open(conv, HELO, caps=(b"PIPELINING", b"STARTTLS", b"8BITMIME"))
    conv.send("c", b"STARTTLS\r\n").send("s", b"220 2.0.0 Ready to start TLS\r\n")
    conv.send("c", b"EHLO inner.example.org\r\n").send("s", b"250-mx.example.net\r\n250 8BITMIME\r\n")
    tcpgen.smtp_data_transaction(conv, "decrypted@example.org", ["bob@example.net"], msg.raw)
    conv.close()
    frames += conv.frames
    return Truth(frames=frames, msg=msg)


@scenario()
def ipv6(client):
    m0 = make_message("v6-0", lines=50)
    m1 = make_message("v6-1", lines=500)
    c6 = "2001:db8:1::100"
    conv = plain_session(c6, 41006, [(m0, "six@example.org", ["bob@example.net"]),
                                     (m1, "six@example.org", ["carol@example.net"])], server=SERVER6)
    return Truth(frames=conv.frames, client=c6, msgs=[m0, m1])


@scenario()
def vlan(client):
    sessions, frames = {}, []
    for cport, tags in ((49001, 100), (49002, [200, 300])):
        msg = make_message("vlan-%d" % cport, lines=60)
        conv = plain_session(client, cport, [(msg, "vlan@example.org", ["bob@example.net"])], vlan=tags)
        sessions[cport] = msg
        frames += conv.frames
    return Truth(frames=frames, sessions=sessions)


@scenario()
def tiny_mss(client):
    msg = make_message("tiny-mss", lines=25)
    conv = plain_session(client, 50001, [(msg, "tiny@example.org", ["bob@example.net", "carol@example.net"])], mss=7)
    return Truth(frames=conv.frames, msg=msg)


@scenario()
def wraparound(client):
    """51001: the client's sequence numbers wrap inside the message content, whose segments arrive
    shuffled (out-of-order data on both sides of 2^32); the server's wrap during the EHLO reply.
    51002: both SYNs at 2^32 - 1, so data starts at sequence number 0."""
    sessions, frames = {}, []
    rng = random.Random(3)
    for cport, isn_c, isn_s in ((51001, 2**32 - 1500, 2**32 - 40), (51002, 2**32 - 1, 2**32 - 1)):
        msg = make_message("wrap-%d" % cport, lines=100, rng=rng)
        conv = Conversation(client=client, server=SERVER4, cport=cport, mss=500, isn_client=isn_c, isn_server=isn_s)
        tcpgen.smtp_open(conv, HELO)
        tcpgen.smtp_data_transaction(conv, "wrap@example.org", ["bob@example.net"], msg.raw,
                                     transform=shuffle_windows(rng, [3, 6]) if cport == 51001 else None)
        tcpgen.smtp_quit(conv)
        sessions[cport] = msg
        frames += conv.frames
    return Truth(frames=frames, sessions=sessions)


@scenario()
def mid_session(client):
    """The capture starts inside the first message's content (handshake, greeting, EHLO, MAIL,
    RCPT, DATA and the first content segments missing, mid-line)."""
    m0 = make_message("mid-0", lines=80, width=50)
    m1 = make_message("mid-1", lines=30)
    conv = Conversation(client=client, server=SERVER4, cport=52001, mss=777)
    tcpgen.smtp_open(conv, HELO)
    start = []

    def mark(conv, segs):
        start.append(len(conv.frames) + 2)  # the 3rd content segment is the first one captured
        return segs
    tcpgen.smtp_data_transaction(conv, "first@example.org", ["bob@example.net"], m0.raw, transform=mark)
    tcpgen.smtp_data_transaction(conv, "second@example.org", ["carol@example.net", "dave@example.net"], m1.raw)
    tcpgen.smtp_quit(conv)
    return Truth(frames=conv.frames[start[0]:], msg=m1)


@scenario()
def data_rejected(client):
    """53001: DATA answered 554 (no content follows), RSET, then a message that is accepted.
    53002: DATA answered 554, then QUIT."""
    msg = make_message("after-554", lines=20)
    frames = []
    for cport in (53001, 53002):
        conv = Conversation(client=client, server=SERVER4, cport=cport)
        tcpgen.smtp_open(conv, HELO)
        conv.send("c", b"MAIL FROM:<rejected@example.org>\r\n").send("s", b"250 2.1.0 Ok\r\n")
        conv.send("c", b"RCPT TO:<bob@example.net>\r\n").send("s", b"250 2.1.5 Ok\r\n")
        conv.send("c", b"DATA\r\n").send("s", b"554 5.5.1 Error: no valid recipients\r\n")
        if cport == 53001:
            conv.send("c", b"RSET\r\n").send("s", b"250 2.0.0 Ok\r\n")
            tcpgen.smtp_data_transaction(conv, "accepted@example.org", ["carol@example.net"], msg.raw)
        tcpgen.smtp_quit(conv)
        frames += conv.frames
    return Truth(frames=frames, msg=msg)


@scenario()
def rst_in_data(client):
    """The connection is reset after about 2500 bytes of content (at a line end): 54001 by the
    client, 54002 by the server."""
    msg = make_message("rst", lines=100)
    stuffed = tcpgen.dot_stuff(msg.raw)
    cut = stuffed_len_of_lines(stuffed, 2500)
    assert b"\r\n." not in stuffed[:cut]
    frames = []
    for cport, who in ((54001, "c"), (54002, "s")):
        conv = Conversation(client=client, server=SERVER4, cport=cport, mss=1000)
        tcpgen.smtp_open(conv, HELO)
        conv.send("c", b"MAIL FROM:<rst@example.org>\r\n").send("s", b"250 2.1.0 Ok\r\n")
        conv.send("c", b"RCPT TO:<bob@example.net>\r\n").send("s", b"250 2.1.5 Ok\r\n")
        conv.send("c", b"DATA\r\n").send("s", b"354 Go ahead\r\n")
        conv.send("c", stuffed[:cut])
        conv.reset(who)
        frames += conv.frames
    return Truth(frames=frames, partial=Msg(stuffed[:cut]))


@scenario()
def dot_stuffing(client):
    """Content lines starting with '.', and a line that is only '.'. 55001: normal segments;
    55002: a segment boundary at every dot (between CRLF and '.', and between the two dots)."""
    body = ["first", ".hidden line", "..two dots", ".", "..", ". space", ".\ttab", "a.b", "", ".",
            "end of text.", "...", ".last line"]
    msg = make_message("dots", body=body)
    frames = []
    for cport in (55001, 55002):
        conv = Conversation(client=client, server=SERVER4, cport=cport)
        tcpgen.smtp_open(conv, HELO)

        def cut_at_dots(conv, segs, cport=cport):
            if cport == 55001:
                return segs
            base = segs[0].seq
            data = b"".join(g.payload for g in segs)
            cuts = sorted({0, len(data)} | {i for i, b in enumerate(data) if b == ord(".")})
            return [conv.seg("c", base + a, data[a:b]) for a, b in zip(cuts, cuts[1:])]
        tcpgen.smtp_data_transaction(conv, "dots@example.org", ["bob@example.net"], msg.raw, transform=cut_at_dots)
        tcpgen.smtp_quit(conv)
        frames += conv.frames
    return Truth(frames=frames, msg=msg)


# ---------------------------------------------------------------------------------------------
# Scenarios with a capture of their own


@scenario("large")
def large_message(client):
    rng = random.Random(10)
    head = make_message("large", body=["This message carries 10 MiB of base64 text.", ""])
    total = 10 * 1024 * 1024
    left = total - len(head.raw)
    b64 = base64.b64encode(rng.randbytes(left * 3 // 4 + 3))
    lines, pos = [], 0
    while left > 0:
        n = 76 if left >= 80 else left - 2  # 76-character lines, the last one shorter
        lines.append(b64[pos:pos + n] + b"\r\n")
        pos += n
        left -= n + 2
    raw = head.raw + b"".join(lines)
    assert len(raw) == total, len(raw)
    msg = Msg(raw, head.subject, head.message_id)
    conv = plain_session(client, 56001, [(msg, "large@example.org", ["bob@example.net"])])
    return Truth(frames=conv.frames, msg=msg, conv=conv)


@scenario("many")
def thousand_sessions(client):
    rng = random.Random(1000)
    lists, sessions = [], {}
    for i in range(1000):
        ip = "10.%d.%d.%d" % (1 + i // 250, (i * 7) % 250, 1 + i % 250)
        cport = 1024 + rng.randrange(60000)
        msg = make_message("many-%d" % i, lines=rng.randrange(3, 60), rng=rng)
        rcpts = ["user%d@example.net" % (i % 17)] + (["copy%d@example.net" % i] if i % 3 == 0 else [])
        conv = plain_session(ip, cport, [(msg, "s%d@example.org" % i, rcpts)],
                             mss=rng.choice([536, 1000, 1460]))
        sessions[(ip, cport)] = (msg, "s%d@example.org" % i, rcpts)
        lists.append(conv.frames)
    return Truth(frames=tcpgen.interleave(lists, rng), sessions=sessions)


@scenario("fragments")
def fragmented(client):
    """A content segment of 1460 bytes sent as IP fragments: 57001 IPv4 in order, 57002 IPv4 out
    of order (last, first, middle...), 57003 IPv6 out of order. The MAIL command is fragmented too."""
    sessions, frames, nfrag, ndgram = {}, [], 0, 0
    ident = 0x1234
    for cport in (57001, 57002, 57003):
        v6 = cport == 57003
        c, s = ("2001:db8:2::7", SERVER6) if v6 else (client, SERVER4)
        msg = make_message("frag-%d" % cport, lines=100)
        conv = Conversation(client=c, server=s, cport=cport)
        tcpgen.smtp_open(conv, HELO)

        def frag(frame, size):
            nonlocal ident, nfrag, ndgram
            ident += 1
            parts = tcpgen.fragment(frame, size, ident)
            if cport != 57001:
                parts = [parts[-1], parts[0]] + parts[1:-1][::-1]
            nfrag += len(parts)
            ndgram += 1
            return parts
        mail = conv.data_segments("c", b"MAIL FROM:<frag@example.org>\r\n")
        conv.frames += frag(conv.frame_of(mail[0]), 24)
        conv.send("s", b"250 2.1.0 Ok\r\n")
        conv.send("c", b"RCPT TO:<bob@example.net>\r\n").send("s", b"250 2.1.5 Ok\r\n")
        conv.send("c", b"DATA\r\n").send("s", b"354 Go ahead\r\n")
        for i, g in enumerate(conv.data_segments("c", tcpgen.dot_stuff(msg.raw))):
            if i in (1, 3):
                conv.frames += frag(conv.frame_of(g), 512 if i == 1 else 200)
            else:
                conv.emit([g])
        conv.send("s", tcpgen.QUEUED)
        tcpgen.smtp_quit(conv)
        sessions[cport] = (c, msg)
        frames += conv.frames
    return Truth(frames=frames, sessions=sessions, fragments=nfrag, datagrams=ndgram)


# ---------------------------------------------------------------------------------------------
# Tests


class Base(unittest.TestCase):
    maxDiff = None

    def events(self, name, capture_name="main"):
        ev, truths = capture(capture_name)
        t = truths[name]
        return ScenarioEvents(ev, t.client), t

    def expect_message(self, ev, msg, mail_from, rcpts, helo=HELO, reply=250, method="DATA", transaction=None,
                       starttls=False):
        s = ev["smtp"]
        want = {"helo": helo, "mail_from": mail_from, "rcpt_to": rcpts, "method": method, "starttls": starttls,
                "message_sha256": msg.sha, "message_size": msg.size, "subject": msg.subject,
                "message_id": msg.message_id, "server_reply": reply, "status": "complete", "incomplete_reason": None}
        got = {k: s.get(k) for k in want}
        self.assertEqual(got, want, "smtp event of %s:%s" % (ev["src_ip"], ev["src_port"]))
        self.assertEqual(ev["proto"], "TCP")
        if transaction is not None:
            self.assertEqual(ev["transaction"], transaction)

    def one_flow(self, ev, **want):
        self.assertEqual(len(ev.flow), 1, ev.flow)
        f = ev.flow[0]
        flow = f["flow"]
        got = {k: (f[k] if k in ("app_proto", "dest_port", "src_ip", "dest_ip") else flow.get(k)) for k in want}
        self.assertEqual(got, want)
        return f

    def no_anomalies(self, ev):
        self.assertEqual(ev.anomaly, [])
        for f in ev.flow:
            self.assertEqual(f["flow"].get("smtp_anomalies"), {}, f)


class SmtpReassembly(Base):
    def test_in_order(self):
        ev, t = self.events("in_order")
        self.assertEqual(len(ev.smtp), 1, ev.smtp)
        self.expect_message(ev.smtp[0], t.msg, "alice@example.org", ["bob@example.net"], transaction=0)
        self.assertEqual((ev.smtp[0]["dest_ip"], ev.smtp[0]["dest_port"]), (SERVER4, 25))
        totals = client_server_totals(t.frames, t.client)
        self.one_flow(ev, app_proto="smtp", reason="fin", inspected=True, starttls=False, messages=1,
                      pkts_toserver=totals["c"][0], pkts_toclient=totals["s"][0],
                      bytes_toserver=totals["c"][1], bytes_toclient=totals["s"][1],
                      start=rfc3339(t.first_us), end=rfc3339(t.last_us - 1000))  # the last ACK follows the flow's end
        self.no_anomalies(ev)

    def test_several_messages_per_session(self):
        ev, t = self.events("several_messages")
        self.assertEqual(len(ev.smtp), 3, ev.smtp)
        m0, m1, m2 = t.msgs
        self.expect_message(ev.smtp[0], m0, "alice@example.org", ["bob@example.net", "carol@example.net"],
                            transaction=0)
        self.expect_message(ev.smtp[1], m1, "dave@example.org", ["erin@example.net"], reply=550, transaction=1)
        self.expect_message(ev.smtp[2], m2, "", ["frank@example.net"], transaction=2)
        self.assertNotIn("subject", ev.smtp[2]["smtp"])
        self.assertNotIn("message_id", ev.smtp[2]["smtp"])
        self.one_flow(ev, reason="fin", inspected=True, messages=3)
        self.no_anomalies(ev)

    def test_reordered_segments(self):
        ev, t = self.events("reordered")
        for cport, (msg, ooo) in sorted(t.sessions.items()):
            with self.subTest(seed=cport - 42000):
                s = ev.port(cport)
                self.assertEqual(len(s.smtp), 1, s.smtp)
                self.expect_message(s.smtp[0], msg, "reorder@example.org", ["inbox@example.net"])
                self.assertGreater(ooo, 0)
                self.one_flow(s, reason="fin", messages=1)
                self.no_anomalies(s)

    def test_duplicated_segments(self):
        ev, t = self.events("duplicated")
        self.assertEqual(len(ev.smtp), 1, ev.smtp)
        self.expect_message(ev.smtp[0], t.msg, "dups@example.org", ["bob@example.net", "carol@example.net"])
        self.one_flow(ev, reason="fin", messages=1)
        self.no_anomalies(ev)

    def test_consistent_overlaps(self):
        ev, t = self.events("consistent_overlap")
        for cport, (msg, resent) in sorted(t.sessions.items()):
            with self.subTest(session=cport):
                s = ev.port(cport)
                self.assertEqual(len(s.smtp), 1, s.smtp)
                self.expect_message(s.smtp[0], msg, "overlap@example.org", ["inbox@example.net"])
                self.one_flow(s, reason="fin", messages=1)
                self.no_anomalies(s)

    def check_conflict(self, cport):
        ev, t = self.events("conflicting_overlap")
        s = ev.port(cport)
        self.assertEqual(len(s.smtp), 1, s.smtp)
        self.expect_message(s.smtp[0], t.sessions[cport], "conflict@example.org", ["inbox@example.net"])
        self.assertEqual([(a["anomaly"]["layer"], a["anomaly"]["type"], a["anomaly"].get("direction"))
                          for a in s.anomaly], [("tcp", "overlap_conflict", "toserver")])
        self.one_flow(s, reason="fin", messages=1)

    def test_conflicting_overlap_original_first(self):
        self.check_conflict(44001)

    def test_conflicting_overlap_rewrite_first(self):
        self.check_conflict(44002)

    def test_conflicting_overlap_in_order_segment_over_buffered(self):
        self.check_conflict(44003)

    def check_lossy(self, cport):
        ev, t = self.events("lossy")
        s = ev.port(cport)
        m0, m1, lost = t.sessions[cport]
        self.assertEqual(len(s.smtp), 2, s.smtp)
        first = s.smtp[0]["smtp"]
        self.assertEqual((first["status"], first.get("incomplete_reason"), first["mail_from"], first["rcpt_to"],
                          first["server_reply"], s.smtp[0]["transaction"]),
                         ("incomplete", "gap", "lossy@example.org", ["inbox@example.net"], 250, 0))
        self.assertLess(first["message_size"], m0.size)
        self.expect_message(s.smtp[1], m1, "lossy@example.org", ["other@example.net"], transaction=1)
        self.assertEqual([(a["anomaly"]["layer"], a["anomaly"]["type"], a["anomaly"].get("direction"))
                          for a in s.anomaly], [("tcp", "gap", "toserver")])
        self.one_flow(s, reason="fin", messages=2)

    def test_lossy_capture_acked_hole(self):
        self.check_lossy(45001)

    # The server's "250" carries the ACK that declares the client's hole: the ACK must be applied
    # before the reply is parsed, or the reply stream shifts and the next message is lost.
    def test_lossy_capture_hole_acked_by_reply(self):
        self.check_lossy(45002)

    def test_pipelining(self):
        ev, t = self.events("pipelining")
        self.assertEqual(len(ev.smtp), 2, ev.smtp)
        m0, m1 = t.msgs
        self.expect_message(ev.smtp[0], m0, "pipe@example.org", ["bob@example.net", "carol@example.net"],
                            transaction=0)
        self.expect_message(ev.smtp[1], m1, "pipe2@example.org", ["dave@example.net"], reply=552, transaction=1)
        self.one_flow(ev, reason="fin", messages=2)
        self.no_anomalies(ev)

    def test_bdat(self):
        ev, t = self.events("bdat")
        self.assertEqual(len(ev.smtp), 4, ev.smtp)
        for i, (msg, rcpts) in enumerate(zip(t.msgs, t.rcpts)):
            with self.subTest(message=i):
                self.expect_message(ev.smtp[i], msg, "bdat@example.org", rcpts, method="BDAT", transaction=i)
        self.one_flow(ev, reason="fin", messages=4)
        self.no_anomalies(ev)

    def test_starttls(self):
        ev, t = self.events("starttls")
        with self.subTest("message, then STARTTLS"):
            s = ev.port(48001)
            self.assertEqual(len(s.smtp), 1, s.smtp)
            self.expect_message(s.smtp[0], t.msg, "early@example.org", ["bob@example.net"], transaction=0)
            self.one_flow(s, app_proto="smtp", reason="fin", inspected=True, starttls=True, messages=1)
            self.no_anomalies(s)
        with self.subTest("STARTTLS at once"):
            s = ev.port(48002)
            self.assertEqual(s.smtp, [])
            self.one_flow(s, app_proto="smtp", reason="fin", inspected=True, starttls=True, messages=0)
            self.no_anomalies(s)
        with self.subTest("STARTTLS, then plain text"):
            s = ev.port(48004)
            self.assertEqual(len(s.smtp), 1, s.smtp)
            self.expect_message(s.smtp[0], t.msg, "decrypted@example.org", ["bob@example.net"], transaction=0,
                                helo="inner.example.org")
            self.one_flow(s, app_proto="smtp", reason="fin", inspected=True, starttls=False, messages=1)
            self.assertEqual(s.flow[0]["flow"]["smtp_anomalies"], {"starttls_plaintext": 1})
            self.assertEqual([(a["anomaly"]["layer"], a["anomaly"]["type"]) for a in s.anomaly],
                             [("smtp", "starttls_plaintext")])
        with self.subTest("implicit TLS, port 465"):
            s = ev.port(48003)
            self.assertEqual(s.smtp, [])
            self.one_flow(s, app_proto="smtps", dest_port=465, reason="fin", inspected=False, encrypted=True)
            self.assertEqual(s.anomaly, [])

    def test_ipv6(self):
        ev, t = self.events("ipv6")
        self.assertEqual(len(ev.smtp), 2, ev.smtp)
        for i, msg in enumerate(t.msgs):
            self.expect_message(ev.smtp[i], msg, "six@example.org", [["bob@example.net"], ["carol@example.net"]][i],
                                transaction=i)
            self.assertEqual((ev.smtp[i]["src_ip"], ev.smtp[i]["dest_ip"]), ("2001:db8:1::100", SERVER6))
        totals = client_server_totals(t.frames, t.client)
        self.one_flow(ev, reason="fin", messages=2, dest_ip=SERVER6, bytes_toserver=totals["c"][1],
                      bytes_toclient=totals["s"][1])
        self.no_anomalies(ev)

    def test_vlan(self):
        ev, t = self.events("vlan")
        for cport, msg in sorted(t.sessions.items()):
            with self.subTest(tags="802.1Q" if cport == 49001 else "802.1ad+802.1Q"):
                s = ev.port(cport)
                self.assertEqual(len(s.smtp), 1, s.smtp)
                self.expect_message(s.smtp[0], msg, "vlan@example.org", ["bob@example.net"])
                self.one_flow(s, reason="fin", messages=1)
                self.no_anomalies(s)

    def test_tiny_mss(self):
        ev, t = self.events("tiny_mss")
        self.assertEqual(len(ev.smtp), 1, ev.smtp)
        self.expect_message(ev.smtp[0], t.msg, "tiny@example.org", ["bob@example.net", "carol@example.net"])
        self.one_flow(ev, reason="fin", messages=1)
        self.no_anomalies(ev)

    def test_sequence_number_wraparound(self):
        ev, t = self.events("wraparound")
        for cport, msg in sorted(t.sessions.items()):
            with self.subTest(session=cport):
                s = ev.port(cport)
                self.assertEqual(len(s.smtp), 1, s.smtp)
                self.expect_message(s.smtp[0], msg, "wrap@example.org", ["bob@example.net"])
                self.one_flow(s, reason="fin", messages=1)
                self.no_anomalies(s)

    def test_capture_starts_mid_session(self):
        ev, t = self.events("mid_session")
        self.assertEqual(len(ev.smtp), 1, ev.smtp)
        # EHLO was not captured: no helo.
        self.expect_message(ev.smtp[0], t.msg, "second@example.org", ["carol@example.net", "dave@example.net"],
                            helo="")
        self.one_flow(ev, reason="fin", inspected=True)

    def test_data_rejected_554(self):
        ev, t = self.events("data_rejected")
        s = ev.port(53001)
        self.assertEqual(len(s.smtp), 1, s.smtp)
        self.expect_message(s.smtp[0], t.msg, "accepted@example.org", ["carol@example.net"], transaction=0)
        self.one_flow(s, reason="fin", messages=1)
        s = ev.port(53002)
        self.assertEqual(s.smtp, [])
        self.one_flow(s, reason="fin", messages=0)

    def test_rst_in_data(self):
        ev, t = self.events("rst_in_data")
        for cport in (54001, 54002):
            with self.subTest(reset_by="client" if cport == 54001 else "server"):
                s = ev.port(cport)
                self.assertEqual(len(s.smtp), 1, s.smtp)
                got = s.smtp[0]["smtp"]
                self.assertEqual({k: got.get(k) for k in ("mail_from", "rcpt_to", "status", "incomplete_reason",
                                                            "server_reply", "message_size", "message_sha256")},
                                 {"mail_from": "rst@example.org", "rcpt_to": ["bob@example.net"],
                                  "status": "incomplete", "incomplete_reason": "aborted", "server_reply": None,
                                  "message_size": t.partial.size, "message_sha256": t.partial.sha})
                self.one_flow(s, reason="rst", messages=1)

    def test_dot_stuffing(self):
        ev, t = self.events("dot_stuffing")
        for cport in (55001, 55002):
            with self.subTest(cut_at_every_dot=cport == 55002):
                s = ev.port(cport)
                self.assertEqual(len(s.smtp), 1, s.smtp)
                self.expect_message(s.smtp[0], t.msg, "dots@example.org", ["bob@example.net"])
                self.no_anomalies(s)

    def test_large_message(self):
        ev, t = self.events("large_message", "large")
        self.assertEqual(len(ev.smtp), 1, ev.smtp)
        self.assertEqual(t.msg.size, 10 * 1024 * 1024)
        self.expect_message(ev.smtp[0], t.msg, "large@example.org", ["bob@example.net"])
        totals = client_server_totals(t.frames, t.client)
        self.one_flow(ev, reason="fin", messages=1, pkts_toserver=totals["c"][0], bytes_toserver=totals["c"][1])
        self.no_anomalies(ev)

    def test_thousand_concurrent_sessions(self):
        ev, truths = capture("many")
        t = truths["thousand_sessions"]
        got = {}
        for e in ev.smtp:
            got.setdefault((e["src_ip"], e["src_port"]), []).append(e)
        self.assertEqual(len(ev.smtp), 1000)
        self.assertEqual(set(got), set(t.sessions))
        bad = []
        for key, (msg, mail_from, rcpts) in sorted(t.sessions.items()):
            s = got[key][0]["smtp"]
            if (len(got[key]), s["message_sha256"], s["message_size"], s["mail_from"], s["rcpt_to"], s.get("subject"),
                    s.get("message_id"), s["server_reply"], s["status"]) != \
                    (1, msg.sha, msg.size, mail_from, rcpts, msg.subject, msg.message_id, 250, "complete"):
                bad.append((key, got[key]))
        self.assertEqual(bad[:3], [], "%d sessions wrong" % len(bad))
        flows = ev.flow
        self.assertEqual(len(flows), 1000)
        self.assertEqual(sorted({f["flow"]["reason"] for f in flows}), ["fin"])
        self.assertEqual(ev.anomaly, [])
        lc = ev.stats["lcores"]
        self.assertEqual(sum(l.get("events_dropped", 0) for l in lc), 0)
        self.assertEqual(sum(l["reassembly"]["messages"] for l in lc if "reassembly" in l), 1000)

    def check_fragments(self, cport):
        ev, truths = capture("fragments")
        t = truths["fragmented"]
        ip, msg = t.sessions[cport]
        s = ScenarioEvents(ev, ipaddress.ip_address(ip).compressed).port(cport)
        self.assertEqual(len(s.smtp), 1, s.smtp)
        self.expect_message(s.smtp[0], msg, "frag@example.org", ["bob@example.net"])
        self.one_flow(s, reason="fin", messages=1)
        self.no_anomalies(s)

    def test_ipv4_fragments(self):
        self.check_fragments(57001)

    def test_ipv4_fragments_out_of_order(self):
        self.check_fragments(57002)

    def test_ipv6_fragments_out_of_order(self):
        self.check_fragments(57003)

    def test_fragment_counters(self):
        ev, truths = capture("fragments")
        t = truths["fragmented"]
        r = [l["reassembly"] for l in ev.stats["lcores"] if "reassembly" in l]
        self.assertEqual({k: sum(x[k] for x in r) for k in ("fragments", "fragments_reassembled", "fragments_dropped")},
                         {"fragments": t.fragments, "fragments_reassembled": t.datagrams, "fragments_dropped": 0})




class FlowTcpCounters(Base):
    """The flow event's tcp counters, on the captures above."""

    def tcp(self, ev):
        self.assertEqual(len(ev.flow), 1, ev.flow)
        return ev.flow[0]["flow"]["tcp"]

    def test_in_order_bytes(self):
        ev, t = self.events("in_order")
        zero = {"retransmitted_bytes": 0, "out_of_order_segments": 0, "overlap_conflicts": 0, "gaps": 0,
                "gap_bytes": 0, "memcap_flushes": 0}
        self.assertEqual(self.tcp(ev), {"toserver": dict(zero, bytes=len(t.conv.stream["c"])),
                                        "toclient": dict(zero, bytes=len(t.conv.stream["s"]))})

    def test_reordered_out_of_order_segments(self):
        ev, t = self.events("reordered")
        for cport, (msg, ooo) in sorted(t.sessions.items()):
            with self.subTest(seed=cport - 42000):
                c = self.tcp(ev.port(cport))["toserver"]
                self.assertEqual((c["out_of_order_segments"], c["retransmitted_bytes"], c["overlap_conflicts"],
                                  c["gaps"]), (ooo, 0, 0, 0))

    def test_duplicates_retransmitted_bytes(self):
        ev, t = self.events("duplicated")
        tcp = self.tcp(ev)
        self.assertEqual((tcp["toserver"]["retransmitted_bytes"], tcp["toclient"]["retransmitted_bytes"]),
                         (t.dup["c"], t.dup["s"]))
        self.assertEqual((tcp["toserver"]["bytes"], tcp["toserver"]["overlap_conflicts"], tcp["toserver"]["gaps"]),
                         (len(t.conv.stream["c"]), 0, 0))

    def test_consistent_overlap_retransmitted_bytes(self):
        ev, t = self.events("consistent_overlap")
        for cport, (msg, resent) in sorted(t.sessions.items()):
            with self.subTest(session=cport):
                c = self.tcp(ev.port(cport))["toserver"]
                self.assertEqual((c["retransmitted_bytes"], c["overlap_conflicts"], c["gaps"]), (resent, 0, 0))

    def test_conflicting_overlap_counter(self):
        ev, t = self.events("conflicting_overlap")
        for cport in sorted(t.sessions):
            with self.subTest(session=cport):
                c = self.tcp(ev.port(cport))["toserver"]
                self.assertEqual((c["overlap_conflicts"], c["gaps"]), (1, 0))

    def test_lossy_gap_counters(self):
        ev, t = self.events("lossy")
        for cport, (m0, m1, lost) in sorted(t.sessions.items()):
            with self.subTest(session=cport):
                c = self.tcp(ev.port(cport))["toserver"]
                self.assertEqual((c["gaps"], c["gap_bytes"], c["memcap_flushes"]), (1, lost, 0))


if __name__ == "__main__":
    unittest.main(verbosity=2)
