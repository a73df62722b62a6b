#!/usr/bin/python3
"""Splits a capture into K captures the way K RX queues of a NIC with symmetric RSS would receive
it: both directions of a connection in the same part, the connections spread over the parts. The
part of a frame is reassembly::symmetric_flow_hash (reassembly/packet_decode.cpp, `ip_pair`, the
default `dataplane.flow_hash`) modulo K, the owner RX lcore's index when sluiced dispatches in
software, so a port whose queue k reads part k dispatches nothing to another lcore: each RX lcore
gets the frames RSS would have given it, and only those (scripts/bench-scale). Frames that are not
IPv4/IPv6 go to part 0, as sluiced keeps them with the lcore that received them. Timestamps and
order within a part are those of the capture.

--restamp FILE...: rewrites the record timestamps of little-endian microsecond captures in place
to the current time, 1 us apart and ending now. For tap mode on a net_pcap port: sluiced then
takes each frame's time from the capture but expires flows by the wall clock, so a capture stamped
in the past has every open flow time out at the first expiry tick (found with scripts/bench-scale:
16 messages `incomplete`, flows `timeout`); stamped just before the run, both clocks agree.

Usage: split_pcap_by_flow.py IN.pcap K OUT_PREFIX   (writes OUT_PREFIX.0.pcap ... OUT_PREFIX.(K-1).pcap)
       split_pcap_by_flow.py --restamp FILE..."""
import mmap
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import pcapfile  # noqa: E402

M64 = (1 << 64) - 1


def mix64(x):
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & M64
    x ^= x >> 33
    return x


def ip_pair_hash(src, dst):
    """symmetric_flow_hash with FlowHashMode::ip_pair: the two addresses, zero-padded to 18 bytes,
    ordered, mixed 8 bytes at a time (little-endian loads, as on x86), ports left out."""
    lo, hi = src.ljust(18, b"\0"), dst.ljust(18, b"\0")
    if lo > hi:
        lo, hi = hi, lo
    h = 0
    for chunk in (lo[0:8], lo[8:16], hi[0:8], hi[8:16]):
        h = mix64(h ^ int.from_bytes(chunk, "little"))
    h = mix64(h ^ ((lo[16] << 24) | (lo[17] << 16) | (hi[16] << 8) | hi[17]))
    return (h ^ (h >> 32)) & 0xFFFFFFFF


def addresses(frame):
    """(src, dst) address bytes of an Ethernet frame (VLAN tags skipped), or None."""
    off = 12
    while off + 2 <= len(frame) and struct.unpack("!H", frame[off:off + 2])[0] in (0x8100, 0x88A8, 0x9100):
        off += 4
    if off + 2 > len(frame):
        return None
    etype, ip = struct.unpack("!H", frame[off:off + 2])[0], off + 2
    if etype == 0x0800 and len(frame) >= ip + 20:
        return frame[ip + 12:ip + 16], frame[ip + 16:ip + 20]
    if etype == 0x86DD and len(frame) >= ip + 40:
        return frame[ip + 8:ip + 24], frame[ip + 24:ip + 40]
    return None


def restamp(path):
    with open(path, "r+b") as f:
        if os.fstat(f.fileno()).st_size <= 24:
            return
        with mmap.mmap(f.fileno(), 0) as m:
            if m[:4] != b"\xd4\xc3\xb2\xa1":
                sys.exit(f"{path}: not a little-endian microsecond pcap")
            offsets, off = [], 24
            while off + 16 <= len(m):
                offsets.append(off)
                off += 16 + struct.unpack_from("<I", m, off + 8)[0]
            start = int(time.time() * 1e6) - len(offsets)
            for i, off in enumerate(offsets):
                us = start + i
                struct.pack_into("<II", m, off, us // 1000000, us % 1000000)


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--restamp":
        for path in sys.argv[2:]:
            restamp(path)
        return
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("Usage: ")[-1])
    link_type, frames = pcapfile.read_pcap(sys.argv[1])
    if link_type != 1:
        sys.exit("only Ethernet captures (link type 1)")
    k = int(sys.argv[2])
    parts = [[] for _ in range(k)]
    memo = {}
    for ts, frame in frames:
        a = addresses(frame)
        if a is None:
            parts[0].append((ts, frame))
            continue
        if a not in memo:
            memo[a] = ip_pair_hash(*a) % k
        parts[memo[a]].append((ts, frame))
    for i, part in enumerate(parts):
        pcapfile.write_pcap(f"{sys.argv[3]}.{i}.pcap", part)
    print(" ".join(str(len(p)) for p in parts))


if __name__ == "__main__":
    main()
