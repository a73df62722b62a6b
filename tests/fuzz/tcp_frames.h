// What the reassembly fuzz targets (reassembler_fuzz, flow_table_fuzz) share to turn fuzz input
// into frames: a cursor over the input and builders of Ethernet / IPv4 / IPv6 / TCP frames between
// a client and an SMTP server, with each side's next sequence number kept.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace sluice::fuzz {

// A cursor over the fuzz input: reads past the end return zeros.
struct Input {
  const uint8_t* p;
  std::size_t n;
  std::size_t i = 0;
  bool done() const { return i >= n; }
  uint8_t u8() { return i < n ? p[i++] : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) v = (v << 8) | u8();
    return v;
  }
  std::size_t take(std::size_t want, const uint8_t*& out) {
    const std::size_t got = std::min(want, n - std::min(i, n));
    out = p + std::min(i, n);
    i += got;
    return got;
  }
};

// One connection: client 10.0.0.<client_host> (IPv4) or fd00::<client_host> (IPv6) and its port,
// server 10.0.1.1 or fd01::1 and its port.
struct FlowState {
  uint8_t ip_version;
  uint8_t client_host;
  uint16_t client_port;
  uint16_t server_port;
  uint32_t next[2];   // next sequence number each direction sends (0 client, 1 server)
  uint16_t ip_id = 1;
};

inline void put16(std::vector<uint8_t>& v, std::size_t at, uint16_t x) {
  v[at] = static_cast<uint8_t>(x >> 8);
  v[at + 1] = static_cast<uint8_t>(x);
}
inline void put32(std::vector<uint8_t>& v, std::size_t at, uint32_t x) {
  put16(v, at, static_cast<uint16_t>(x >> 16));
  put16(v, at + 2, static_cast<uint16_t>(x));
}

inline void addresses(const FlowState& f, bool to_server, uint8_t* src, uint8_t* dst) {
  uint8_t client[16] = {}, server[16] = {};
  if (f.ip_version == 4) {
    const uint8_t c[4] = {10, 0, 0, f.client_host}, s[4] = {10, 0, 1, 1};
    std::memcpy(client, c, 4);
    std::memcpy(server, s, 4);
  } else {
    client[0] = 0xfd;
    client[15] = f.client_host;
    server[0] = 0xfd;
    server[1] = 1;
    server[15] = 1;
  }
  std::memcpy(src, to_server ? client : server, 16);
  std::memcpy(dst, to_server ? server : client, 16);
}

// A TCP header (20 bytes, or 32 with NOP, NOP and a timestamp option) and the payload, window 65535.
inline std::vector<uint8_t> tcp_segment(const FlowState& f, bool to_server, uint32_t seq, uint32_t ack, uint8_t flags,
                                        bool options, const uint8_t* payload, std::size_t len) {
  std::vector<uint8_t> l4(20 + (options ? 12 : 0) + len, 0);
  put16(l4, 0, to_server ? f.client_port : f.server_port);
  put16(l4, 2, to_server ? f.server_port : f.client_port);
  put32(l4, 4, seq);
  put32(l4, 8, ack);
  l4[12] = static_cast<uint8_t>(((options ? 8 : 5) << 4));
  l4[13] = flags;
  put16(l4, 14, 65535);
  if (options) {
    l4[20] = 1;  // NOP, NOP, timestamp
    l4[21] = 1;
    l4[22] = 8;
    l4[23] = 10;
  }
  if (len) std::memcpy(&l4[l4.size() - len], payload, len);
  return l4;
}

// The sender's next sequence number follows what it just sent (holes stay holes; a retransmission
// does not move it back).
inline void advance(FlowState& f, int dir, uint32_t seq, std::size_t len, uint8_t flags) {
  const uint32_t end = seq + static_cast<uint32_t>(len) + ((flags & 0x02) ? 1 : 0) + ((flags & 0x01) ? 1 : 0);
  if (static_cast<int32_t>(end - f.next[dir]) > 0) f.next[dir] = end;
}

// IPv4 header (20 bytes) or IPv6 header (40, plus an 8-byte fragment header when frag is set)
// around `l4`. frag_off in bytes.
inline std::vector<uint8_t> ip_packet(const FlowState& f, bool to_server, const uint8_t* l4, std::size_t l4_len,
                                      bool frag = false, uint16_t frag_off = 0, bool more = false, uint32_t id = 0) {
  uint8_t src[16], dst[16];
  addresses(f, to_server, src, dst);
  std::vector<uint8_t> ip;
  if (f.ip_version == 4) {
    ip.assign(20 + l4_len, 0);
    ip[0] = 0x45;
    put16(ip, 2, static_cast<uint16_t>(20 + l4_len));
    put16(ip, 4, static_cast<uint16_t>(id));
    uint16_t ff = frag ? static_cast<uint16_t>(((frag_off / 8) & 0x1fff) | (more ? 0x2000 : 0)) : 0x4000;
    put16(ip, 6, ff);
    ip[8] = 64;
    ip[9] = 6;
    std::memcpy(&ip[12], src, 4);
    std::memcpy(&ip[16], dst, 4);
    if (l4_len) std::memcpy(&ip[20], l4, l4_len);
  } else {
    const std::size_t ext = frag ? 8 : 0;
    ip.assign(40 + ext + l4_len, 0);
    ip[0] = 0x60;
    put16(ip, 4, static_cast<uint16_t>(ext + l4_len));
    ip[6] = frag ? 44 : 6;
    ip[7] = 64;
    std::memcpy(&ip[8], src, 16);
    std::memcpy(&ip[24], dst, 16);
    if (frag) {
      ip[40] = 6;
      put16(ip, 42, static_cast<uint16_t>((frag_off & 0xfff8) | (more ? 1 : 0)));
      put32(ip, 44, id);
    }
    if (l4_len) std::memcpy(&ip[40 + ext], l4, l4_len);
  }
  return ip;
}

// Ethernet around `ip`, one VLAN tag when asked, padded to the 60-byte minimum (the padding is not
// payload), then `padding` more bytes.
inline std::vector<uint8_t> ethernet(const FlowState& f, const std::vector<uint8_t>& ip, bool vlan = false,
                                     std::size_t padding = 0) {
  std::vector<uint8_t> fr(14 + (vlan ? 4 : 0), 0);
  fr[0] = 0x02;
  fr[6] = 0x02;
  fr[11] = 1;
  std::size_t at = 12;
  if (vlan) {
    put16(fr, at, 0x8100);
    put16(fr, at + 2, 7);
    at += 4;
  }
  put16(fr, at, f.ip_version == 4 ? 0x0800 : 0x86dd);
  fr.insert(fr.end(), ip.begin(), ip.end());
  if (fr.size() < 60) fr.resize(60, 0);
  fr.resize(fr.size() + padding, 0xee);
  return fr;
}

// A whole Ethernet frame of the flow: one TCP segment without options, `payload` in it.
inline std::vector<uint8_t> tcp_frame(const FlowState& f, bool to_server, uint32_t seq, uint32_t ack, uint8_t flags,
                                      const uint8_t* payload, std::size_t len) {
  const auto l4 = tcp_segment(f, to_server, seq, ack, flags, false, payload, len);
  return ethernet(f, ip_packet(f, to_server, l4.data(), l4.size()));
}

}  // namespace sluice::fuzz
