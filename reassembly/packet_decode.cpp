#include "reassembly/packet_decode.h"

#include <algorithm>
#include <cstring>

namespace sluice::reassembly {
namespace {

constexpr uint16_t kEtherIPv4 = 0x0800;
constexpr uint16_t kEtherIPv6 = 0x86DD;
constexpr uint16_t kEtherVlan = 0x8100;   // IEEE 802.1Q
constexpr uint16_t kEtherQinQ = 0x88A8;   // IEEE 802.1ad
constexpr uint16_t kEtherQinQOld = 0x9100;  // pre-standard QinQ, still seen on switches
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;

inline uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

inline uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

DecodeStatus read_ports(const uint8_t* frame, std::size_t len, PacketInfo& out) {
  if (out.fragment && out.l4_offset == 0) return DecodeStatus::ok;
  if (out.l4_proto != kProtoTcp && out.l4_proto != kProtoUdp) return DecodeStatus::ok;
  if (len < std::size_t{out.l4_offset} + 4) return DecodeStatus::truncated;
  out.src_port = be16(frame + out.l4_offset);
  out.dst_port = be16(frame + out.l4_offset + 2);
  if (out.l4_proto != kProtoTcp || out.fragment) return DecodeStatus::ok;
  // RFC 9293 3.1: data offset in 32-bit words, at least 5.
  const std::size_t l4 = out.l4_offset;
  if (len < l4 + 20 || out.ip_end < l4 + 20) return DecodeStatus::truncated;
  const std::size_t doff = static_cast<std::size_t>(frame[l4 + 12] >> 4) * 4;
  if (doff < 20) return DecodeStatus::malformed;
  if (out.ip_end < l4 + doff) return DecodeStatus::truncated;
  out.tcp = true;
  out.tcp_seq = be32(frame + l4 + 4);
  out.tcp_ack = be32(frame + l4 + 8);
  out.tcp_flags = frame[l4 + 13];
  out.tcp_window = be16(frame + l4 + 14);
  out.payload_offset = static_cast<uint16_t>(l4 + doff);
  out.payload_len = static_cast<uint16_t>(out.ip_end - out.payload_offset);
  return DecodeStatus::ok;
}

// The end of the datagram: its declared length, never past the captured bytes (a capture cut by
// snaplen keeps what it has; Ethernet padding after a short datagram is excluded).
uint16_t datagram_end(std::size_t off, std::size_t declared, std::size_t len) {
  const std::size_t end = off + declared;
  return static_cast<uint16_t>(end < len ? end : len);
}

DecodeStatus decode_ipv4(const uint8_t* frame, std::size_t len, PacketInfo& out) {
  const std::size_t off = out.l3_offset;
  if (len < off + 20) return DecodeStatus::truncated;
  const uint8_t* ip = frame + off;
  if ((ip[0] >> 4) != 4) return DecodeStatus::malformed;
  const std::size_t ihl = static_cast<std::size_t>(ip[0] & 0x0f) * 4;
  if (ihl < 20) return DecodeStatus::malformed;
  if (len < off + ihl) return DecodeStatus::truncated;
  out.ip_version = 4;
  out.l4_proto = ip[9];
  std::memcpy(out.src_addr, ip + 12, 4);
  std::memcpy(out.dst_addr, ip + 16, 4);
  const std::size_t total = be16(ip + 2);
  if (total < ihl) return DecodeStatus::malformed;
  out.ip_end = datagram_end(off, total, len);
  const uint16_t frag = be16(ip + 6);
  const uint16_t frag_offset = frag & 0x1fff;
  const bool more_fragments = (frag & 0x2000) != 0;
  out.fragment = more_fragments || frag_offset != 0;
  out.more_fragments = more_fragments;
  out.fragment_offset = static_cast<uint16_t>(frag_offset * 8);
  out.fragment_id = be16(ip + 4);
  out.fragment_payload = static_cast<uint16_t>(off + ihl);
  out.l4_offset = frag_offset == 0 ? static_cast<uint16_t>(off + ihl) : 0;
  return read_ports(frame, len, out);
}

DecodeStatus decode_ipv6(const uint8_t* frame, std::size_t len, PacketInfo& out) {
  std::size_t off = out.l3_offset;
  if (len < off + 40) return DecodeStatus::truncated;
  const uint8_t* ip = frame + off;
  if ((ip[0] >> 4) != 6) return DecodeStatus::malformed;
  out.ip_version = 6;
  std::memcpy(out.src_addr, ip + 8, 16);
  std::memcpy(out.dst_addr, ip + 24, 16);
  out.ip_end = datagram_end(off + 40, be16(ip + 4), len);
  uint8_t next = ip[6];
  off += 40;
  // RFC 8200 section 4.1: extension headers in any order; bounded by the datagram (its payload
  // length), not the frame: bytes after it are Ethernet padding or the capture's, never headers.
  for (unsigned hops = 0; hops < 8; ++hops) {
    if (next == 0 || next == 43 || next == 60) {  // hop-by-hop, routing, destination options
      if (out.ip_end < off + 8) return DecodeStatus::truncated;
      next = frame[off];
      off += (std::size_t{frame[off + 1]} + 1) * 8;
      continue;
    }
    if (next == 44) {  // fragment header
      if (out.ip_end < off + 8) return DecodeStatus::truncated;
      const uint16_t frag = be16(frame + off + 2);
      out.fragment = true;
      out.more_fragments = (frag & 1) != 0;
      out.fragment_offset = static_cast<uint16_t>(frag & 0xfff8);
      out.fragment_id = be32(frame + off + 4);
      next = frame[off];
      off += 8;
      out.fragment_payload = static_cast<uint16_t>(off);
      if (!out.more_fragments && out.fragment_offset == 0) out.fragment = false;  // atomic fragment (RFC 6946)
      if ((frag >> 3) != 0) {  // not the first fragment: no transport header here
        out.l4_proto = next;
        out.l4_offset = 0;
        return DecodeStatus::ok;
      }
      continue;
    }
    break;
  }
  if (off > out.ip_end) return DecodeStatus::truncated;  // the last extension header's length
  out.l4_proto = next;
  out.l4_offset = static_cast<uint16_t>(off);
  return read_ports(frame, len, out);
}

// 64-bit finaliser of MurmurHash3: cheap, and every input bit affects every output bit.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

LinkType link_type_from_dlt(uint32_t dlt) noexcept {
  switch (dlt) {
    case 0:
    case 108: return LinkType::null;
    case 12:
    case 14:
    case 101: return LinkType::raw;
    case 113: return LinkType::linux_sll;
    default: return LinkType::ethernet;
  }
}

DecodeStatus decode_ip(const uint8_t* ip, std::size_t len, PacketInfo& out) noexcept {
  std::memset(&out, 0, sizeof(out));
  if (len < 1) return DecodeStatus::truncated;
  const unsigned version = ip[0] >> 4;
  if (version == 4) return decode_ipv4(ip, len, out);
  if (version == 6) return decode_ipv6(ip, len, out);
  return DecodeStatus::not_ip;
}

DecodeStatus decode_packet(const uint8_t* frame, std::size_t len, PacketInfo& out, LinkType link) noexcept {
  std::memset(&out, 0, sizeof(out));
  if (link == LinkType::raw) return decode_ip(frame, len, out);
  if (link == LinkType::null) {
    // Address family in host order of the capturing machine: AF_INET is 2 everywhere; AF_INET6 is
    // 10 (Linux), 24, 28 or 30 (BSDs, macOS). Either byte order is accepted.
    if (len < 5) return DecodeStatus::truncated;
    uint32_t family;
    std::memcpy(&family, frame, 4);
    if (family > 0xffff) family = __builtin_bswap32(family);
    if (family != 2 && family != 10 && family != 24 && family != 28 && family != 30) return DecodeStatus::not_ip;
    out.l3_offset = 4;
    return (frame[4] >> 4) == 4 ? decode_ipv4(frame, len, out) : decode_ipv6(frame, len, out);
  }
  std::size_t off = link == LinkType::linux_sll ? 14 : 12;
  if (len < off + 2) return DecodeStatus::truncated;
  uint16_t ether_type = be16(frame + off);
  while (ether_type == kEtherVlan || ether_type == kEtherQinQ || ether_type == kEtherQinQOld) {
    if (out.vlan_depth == kMaxVlanTags) return DecodeStatus::not_ip;
    if (len < off + 6) return DecodeStatus::truncated;
    off += 4;
    ++out.vlan_depth;
    ether_type = be16(frame + off);
  }
  out.l3_offset = static_cast<uint16_t>(off + 2);
  if (ether_type == kEtherIPv4) return decode_ipv4(frame, len, out);
  if (ether_type == kEtherIPv6) return decode_ipv6(frame, len, out);
  return DecodeStatus::not_ip;
}

uint32_t symmetric_flow_hash(const PacketInfo& info, FlowHashMode mode) noexcept {
  // Order the two endpoints so that both directions feed the same bytes to the mix.
  uint8_t lo[18] = {}, hi[18] = {};
  const std::size_t alen = info.ip_version == 6 ? 16 : 4;
  std::memcpy(lo, info.src_addr, alen);
  std::memcpy(hi, info.dst_addr, alen);
  if (mode == FlowHashMode::five_tuple) {
    lo[16] = static_cast<uint8_t>(info.src_port >> 8);
    lo[17] = static_cast<uint8_t>(info.src_port);
    hi[16] = static_cast<uint8_t>(info.dst_port >> 8);
    hi[17] = static_cast<uint8_t>(info.dst_port);
  }
  if (std::memcmp(lo, hi, sizeof(lo)) > 0) std::swap(lo, hi);
  uint64_t h = mode == FlowHashMode::five_tuple ? info.l4_proto : 0;
  h = mix64(h ^ load64(lo));
  h = mix64(h ^ load64(lo + 8));
  h = mix64(h ^ load64(hi));
  h = mix64(h ^ load64(hi + 8));
  h = mix64(h ^ ((uint64_t{lo[16]} << 24) | (uint64_t{lo[17]} << 16) | (uint64_t{hi[16]} << 8) | hi[17]));
  return static_cast<uint32_t>(h ^ (h >> 32));
}

}  // namespace sluice::reassembly
