"""Classic pcap reading and writing for tests, without scapy (fast, exact bytes)."""
import struct

MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}


def read_pcap(path):
    """Returns (link_type, [(ts_seconds_float, frame_bytes)]). Stops where libpcap stops: at the
    end of the file or at a record whose lengths are impossible (a damaged capture)."""
    with open(path, "rb") as f:
        data = f.read()
    endian, div = MAGICS[data[:4]]
    snaplen, link_type = struct.unpack(endian + "II", data[16:24])
    frames, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
        if incl > max(snaplen, 262144) or off + 16 + incl > len(data):
            break
        frames.append((sec + frac / div, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return link_type & 0x0FFFFFFF, frames


def write_pcap(path, frames, link_type=1, snaplen=262144):
    """frames: iterable of bytes or (ts, bytes)."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, link_type))
        for i, fr in enumerate(frames):
            ts, b = fr if isinstance(fr, tuple) else (1_700_000_000 + i * 0.001, fr)
            sec = int(ts)
            f.write(struct.pack("<IIII", sec, int(round((ts - sec) * 1e6)), len(b), len(b)))
            f.write(b)
