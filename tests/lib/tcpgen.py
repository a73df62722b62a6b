"""Builds TCP conversations as Ethernet frames with correct checksums, for captures with known
ground truth (no scapy: fast and exact). A Conversation tracks both directions' sequence numbers;
segments can be emitted in order or handed back for reordering, duplication and overlap."""
import ipaddress
import struct

ETH_CLIENT = bytes.fromhex("020000000001")
ETH_SERVER = bytes.fromhex("020000000002")


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def _vlan_tags(vlan):
    """vlan: None, one VLAN id (802.1Q), or a sequence of ids, outermost first (802.1ad outer tags)."""
    if vlan is None:
        return b""
    ids = [vlan] if isinstance(vlan, int) else list(vlan)
    tpids = [0x88A8] * (len(ids) - 1) + [0x8100]
    return b"".join(struct.pack("!HH", t, v) for t, v in zip(tpids, ids))


def tcp_frame(src, dst, sport, dport, seq, ack, flags, payload=b"", vlan=None, window=65535, ip_id=0):
    """One Ethernet/IPv4-or-IPv6/TCP frame. src/dst: address strings. vlan: None, an id or a list
    of ids (outermost first)."""
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    off_flags = (5 << 12) | flags
    tcp = struct.pack("!HHIIHHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, off_flags, window, 0, 0)
    if s.version == 4:
        pseudo = s.packed + d.packed + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    else:
        pseudo = s.packed + d.packed + struct.pack("!I3xB", len(tcp) + len(payload), 6)
    csum = checksum(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    if s.version == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), ip_id & 0xFFFF, 0x4000, 64, 6, 0,
                         s.packed, d.packed)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        ethertype = 0x0800
    else:
        ip = struct.pack("!IHBB16s16s", 0x60000000, len(tcp) + len(payload), 6, 64, s.packed, d.packed)
        ethertype = 0x86DD
    client_to_server = sport > dport
    macs = (ETH_SERVER + ETH_CLIENT) if client_to_server else (ETH_CLIENT + ETH_SERVER)
    return macs + _vlan_tags(vlan) + struct.pack("!H", ethertype) + ip + tcp + payload


def split_frame(frame):
    """(link header up to and including the ethertype, ethertype, IP packet) of an Ethernet frame
    with any number of VLAN tags."""
    off = 12
    while struct.unpack("!H", frame[off:off + 2])[0] in (0x8100, 0x88A8, 0x9100):
        off += 4
    return frame[:off + 2], struct.unpack("!H", frame[off:off + 2])[0], frame[off + 2:]


def ip_length(frame):
    """Bytes of the IP packet in an Ethernet frame (header included), by its own length field."""
    _, ethertype, ip = split_frame(frame)
    if ethertype == 0x0800:
        return struct.unpack("!H", ip[2:4])[0]
    return 40 + struct.unpack("!H", ip[4:6])[0]


def fragment(frame, size, ident):
    """Splits the IP packet of `frame` into fragments carrying at most `size` bytes of the original
    payload each (rounded down to a multiple of 8), in offset order. IPv4 (RFC 791): the header is
    copied, DF cleared, MF and offset set, checksum recomputed. IPv6 (RFC 8200 4.5): a Fragment
    header follows the fixed header (the packet must have no extension headers)."""
    link, ethertype, ip = split_frame(frame)
    size -= size % 8
    assert size >= 8
    out = []
    if ethertype == 0x0800:
        hl = (ip[0] & 0x0F) * 4
        header, payload = ip[:hl], ip[hl:struct.unpack("!H", ip[2:4])[0]]
        for off in range(0, len(payload), size):
            piece = payload[off:off + size]
            more = off + size < len(payload)
            h = bytearray(header)
            struct.pack_into("!HH", h, 2, hl + len(piece), ident & 0xFFFF)
            struct.pack_into("!H", h, 6, (0x2000 if more else 0) | (off // 8))
            struct.pack_into("!H", h, 10, 0)
            struct.pack_into("!H", h, 10, checksum(bytes(h)))
            out.append(link + bytes(h) + piece)
    else:
        fixed, payload = ip[:40], ip[40:40 + struct.unpack("!H", ip[4:6])[0]]
        next_header = fixed[6]
        assert next_header in (6, 17), "extension headers are not supported here"
        for off in range(0, len(payload), size):
            piece = payload[off:off + size]
            more = off + size < len(payload)
            h = bytearray(fixed)
            struct.pack_into("!H", h, 4, 8 + len(piece))
            h[6] = 44
            frag = struct.pack("!BBHI", next_header, 0, (off // 8) << 3 | (1 if more else 0), ident & 0xFFFFFFFF)
            out.append(link + bytes(h) + frag + piece)
    return out


SYN, ACK, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04


class Segment:
    """One TCP segment of a Conversation, not yet a frame: tests reorder, duplicate, drop or
    rewrite these, then render them with Conversation.frame_of."""
    __slots__ = ("side", "seq", "ack", "flags", "payload")

    def __init__(self, side, seq, ack, flags, payload):
        self.side, self.seq, self.ack, self.flags, self.payload = side, seq, ack, flags, payload

    def __repr__(self):
        return "Segment(%s seq=%d len=%d)" % (self.side, self.seq & 0xFFFFFFFF, len(self.payload))


class Conversation:
    """Both directions of one TCP connection. side "c" is the client, "s" the server. Every frame
    acknowledges everything the other side sent so far unless told otherwise. `stream[side]` is the
    exact byte stream each side sent (the ground truth of reassembly)."""

    def __init__(self, client="192.0.2.1", server="192.0.2.2", cport=40000, sport=25, mss=1460, vlan=None,
                 isn_client=1000, isn_server=5000):
        self.c, self.s, self.cport, self.sport, self.mss, self.vlan = client, server, cport, sport, mss, vlan
        self.seq = {"c": isn_client, "s": isn_server}
        self.stream = {"c": bytearray(), "s": bytearray()}
        self.frames = []

    def frame(self, side, flags, payload=b"", seq=None, ack=None):
        """A frame from `side` (not appended, sequence numbers unchanged)."""
        other = "s" if side == "c" else "c"
        src, dst = (self.c, self.s) if side == "c" else (self.s, self.c)
        sp, dp = (self.cport, self.sport) if side == "c" else (self.sport, self.cport)
        return tcp_frame(src, dst, sp, dp, self.seq[side] if seq is None else seq,
                         self.seq[other] if ack is None else ack, flags, payload, self.vlan)

    _frame = frame  # older name

    def frame_of(self, seg):
        return self.frame(seg.side, seg.flags, seg.payload, seg.seq, seg.ack)

    def handshake(self):
        self.frames.append(self._frame("c", SYN))
        self.seq["c"] += 1
        self.frames.append(self._frame("s", SYN | ACK))
        self.seq["s"] += 1
        self.frames.append(self._frame("c", ACK))
        return self

    def data_segments(self, side, data, mss=None):
        """The Segments carrying `data` from one side, at most `mss` (default self.mss) bytes
        each, advancing its sequence number; nothing is appended to frames."""
        mss = mss or self.mss
        other = "s" if side == "c" else "c"
        out = []
        for i in range(0, len(data), mss):
            chunk = bytes(data[i:i + mss])
            out.append(Segment(side, self.seq[side], self.seq[other], ACK | PSH, chunk))
            self.seq[side] += len(chunk)
        self.stream[side] += data
        return out

    def reserve(self, side, data):
        """Advances `side` past `data` without producing segments and returns the sequence number
        of data[0]; the test builds the segments itself (seg)."""
        base = self.seq[side]
        self.seq[side] += len(data)
        self.stream[side] += data
        return base

    def seg(self, side, seq, payload, flags=ACK | PSH, ack=None):
        other = "s" if side == "c" else "c"
        return Segment(side, seq, self.seq[other] if ack is None else ack, flags, bytes(payload))

    def segments(self, side, data):
        """The frames carrying data from one side, MSS-sized, advancing its sequence number."""
        return [self.frame_of(g) for g in self.data_segments(side, data)]

    def send(self, side, data, mss=None):
        self.frames.extend(self.frame_of(g) for g in self.data_segments(side, data, mss))
        return self

    def emit(self, segments):
        """Appends Segments (in the order given) as frames."""
        self.frames.extend(self.frame_of(g) for g in segments)
        return self

    def ack(self, side):
        """A pure ACK from `side` covering everything the other side sent."""
        self.frames.append(self.frame(side, ACK))
        return self

    def reset(self, side):
        self.frames.append(self.frame(side, RST | ACK))
        return self

    def close(self):
        self.frames.append(self._frame("c", FIN | ACK))
        self.seq["c"] += 1
        self.frames.append(self._frame("s", FIN | ACK))
        self.seq["s"] += 1
        self.frames.append(self._frame("c", ACK))
        return self


def dot_stuff(raw):
    """DATA transparency (RFC 5321 4.5.2) and the terminator: what a client sends after 354 for
    message content `raw` (which must end with CRLF)."""
    assert raw.endswith(b"\r\n")
    lines = raw[:-2].split(b"\r\n")
    return b"\r\n".join((b"." + l if l.startswith(b".") else l) for l in lines) + b"\r\n.\r\n"


def smtp_session(conv, messages, helo="client.example.org"):
    """A plain SMTP dialogue; messages: list of (mail_from, [rcpts], raw_message_bytes with CRLF)."""
    conv.handshake()
    conv.send("s", b"220 mx.example.net ESMTP\r\n")
    conv.send("c", b"EHLO " + helo.encode() + b"\r\n")
    conv.send("s", b"250-mx.example.net\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
    for mail_from, rcpts, raw in messages:
        conv.send("c", b"MAIL FROM:<" + mail_from.encode() + b">\r\n")
        conv.send("s", b"250 2.1.0 Ok\r\n")
        for r in rcpts:
            conv.send("c", b"RCPT TO:<" + r.encode() + b">\r\n")
            conv.send("s", b"250 2.1.5 Ok\r\n")
        conv.send("c", b"DATA\r\n")
        conv.send("s", b"354 End data with <CR><LF>.<CR><LF>\r\n")
        stuffed = b"\r\n".join((b"." + l if l.startswith(b".") else l) for l in raw.split(b"\r\n"))
        if not stuffed.endswith(b"\r\n"):
            stuffed += b"\r\n"
        conv.send("c", stuffed + b".\r\n")
        conv.send("s", b"250 2.0.0 Ok: queued\r\n")
    conv.send("c", b"QUIT\r\n")
    conv.send("s", b"221 2.0.0 Bye\r\n")
    conv.close()
    return conv


# Building blocks for SMTP dialogues whose parts a test varies (segmentation, loss, reordering).
QUEUED = b"250 2.0.0 Ok: queued\r\n"


def smtp_open(conv, helo="client.example.org", caps=(b"PIPELINING", b"8BITMIME"), handshake=True):
    """Handshake, greeting, EHLO and its multi-line reply offering `caps`."""
    if handshake:
        conv.handshake()
    conv.send("s", b"220 mx.example.net ESMTP\r\n")
    conv.send("c", b"EHLO " + helo.encode() + b"\r\n")
    lines = [b"mx.example.net"] + list(caps)
    conv.send("s", b"".join(b"250" + (b" " if i == len(lines) - 1 else b"-") + l + b"\r\n"
                            for i, l in enumerate(lines)))
    return conv


def smtp_data_transaction(conv, mail_from, rcpts, raw, transform=None, final_reply=QUEUED, server_ack=False):
    """MAIL, RCPT..., DATA (each answered), the dot-stuffed content of `raw` and the final reply.
    transform(conv, segments) -> segments to emit: reorders, duplicates, drops the content's
    segments. server_ack: a pure ACK from the server before its final reply."""
    conv.send("c", b"MAIL FROM:<" + mail_from.encode() + b">\r\n")
    conv.send("s", b"250 2.1.0 Ok\r\n")
    for r in rcpts:
        conv.send("c", b"RCPT TO:<" + r.encode() + b">\r\n")
        conv.send("s", b"250 2.1.5 Ok\r\n")
    conv.send("c", b"DATA\r\n")
    conv.send("s", b"354 End data with <CR><LF>.<CR><LF>\r\n")
    segs = conv.data_segments("c", dot_stuff(raw))
    conv.emit(transform(conv, segs) if transform else segs)
    if server_ack:
        conv.ack("s")
    if final_reply:
        conv.send("s", final_reply)
    return conv


def smtp_quit(conv):
    conv.send("c", b"QUIT\r\n")
    conv.send("s", b"221 2.0.0 Bye\r\n")
    return conv.close()


def interleave(frame_lists, rng):
    """Merges several frame lists into one, each list's order kept, choosing the next list at
    random (weighted by what it has left, so all end at about the same time)."""
    pos = [0] * len(frame_lists)
    left = [len(l) for l in frame_lists]
    tickets = [i for i, n in enumerate(left) for _ in range(n)]
    rng.shuffle(tickets)
    out = []
    for i in tickets:
        out.append(frame_lists[i][pos[i]])
        pos[i] += 1
    return out


def mail_with_attachments(i, attachments, subject=None, message_id=None, cport_base=41000):
    """The frames of SMTP session number `i`: one message from s<i>@example.org to
    inbox@example.net (client 198.51.100-103.x, port cport_base + i) carrying `attachments`, a list
    of (filename, bytes) as application/octet-stream; Subject `subject` (default "message <i>"),
    and Message-ID `message_id` when given."""
    import email.policy
    from email.message import EmailMessage
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["To"] = f"s{i}@example.org", "inbox@example.net"
    msg["Subject"] = subject if subject is not None else f"message {i}"
    if message_id:
        msg["Message-ID"] = message_id
    msg.set_content("see attached\n")
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    conv = Conversation(client=f"198.51.{100 + i // 250}.{i % 250 + 1}", server="192.0.2.25", cport=cport_base + i)
    return smtp_session(conv, [(f"s{i}@example.org", ["inbox@example.net"], msg.as_bytes())]).frames

