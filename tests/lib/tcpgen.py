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


def tcp_frame(src, dst, sport, dport, seq, ack, flags, payload=b"", vlan=None, window=65535):
    """One Ethernet/IPv4-or-IPv6/TCP frame. src/dst: address strings."""
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
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0, s.packed, d.packed)
        ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
        ethertype = 0x0800
    else:
        ip = struct.pack("!IHBB16s16s", 0x60000000, len(tcp) + len(payload), 6, 64, s.packed, d.packed)
        ethertype = 0x86DD
    client_to_server = sport > dport
    macs = (ETH_SERVER + ETH_CLIENT) if client_to_server else (ETH_CLIENT + ETH_SERVER)
    tag = struct.pack("!HH", 0x8100, vlan) if vlan is not None else b""
    return macs + tag + struct.pack("!H", ethertype) + ip + tcp + payload


SYN, ACK, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04


class Conversation:
    def __init__(self, client="192.0.2.1", server="192.0.2.2", cport=40000, sport=25, mss=1460, vlan=None,
                 isn_client=1000, isn_server=5000):
        self.c, self.s, self.cport, self.sport, self.mss, self.vlan = client, server, cport, sport, mss, vlan
        self.seq = {"c": isn_client, "s": isn_server}
        self.frames = []

    def _frame(self, side, flags, payload=b"", seq=None):
        other = "s" if side == "c" else "c"
        src, dst = (self.c, self.s) if side == "c" else (self.s, self.c)
        sp, dp = (self.cport, self.sport) if side == "c" else (self.sport, self.cport)
        return tcp_frame(src, dst, sp, dp, self.seq[side] if seq is None else seq, self.seq[other], flags, payload,
                         self.vlan)

    def handshake(self):
        self.frames.append(self._frame("c", SYN))
        self.seq["c"] += 1
        self.frames.append(self._frame("s", SYN | ACK))
        self.seq["s"] += 1
        self.frames.append(self._frame("c", ACK))
        return self

    def segments(self, side, data):
        """The frames carrying data from one side, MSS-sized, advancing its sequence number."""
        out = []
        for i in range(0, len(data), self.mss):
            chunk = data[i:i + self.mss]
            out.append(self._frame(side, ACK | PSH, chunk))
            self.seq[side] += len(chunk)
        return out

    def send(self, side, data):
        self.frames.extend(self.segments(side, data))
        return self

    def close(self):
        self.frames.append(self._frame("c", FIN | ACK))
        self.seq["c"] += 1
        self.frames.append(self._frame("s", FIN | ACK))
        self.seq["s"] += 1
        self.frames.append(self._frame("c", ACK))
        return self


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
