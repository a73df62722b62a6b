#include "reassembly/segment_forge.h"

#include <netinet/in.h>

#include <cstring>

namespace sluice::reassembly {
namespace {

void put16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void put32(uint8_t* p, uint32_t v) noexcept {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

}  // namespace

uint32_t checksum_add(const uint8_t* p, std::size_t len, uint32_t sum) noexcept {
  for (; len > 1; p += 2, len -= 2) sum += static_cast<uint32_t>(p[0]) << 8 | p[1];
  if (len) sum += static_cast<uint32_t>(p[0]) << 8;
  return sum;
}

uint16_t checksum_fold(uint32_t sum) noexcept {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

ForgeStatus forge_segment(const uint8_t* held, std::size_t held_len, LinkType link, const ForgeSpec& spec,
                          ForgedFrame& out) noexcept {
  PacketInfo in{};
  if (decode_packet(held, held_len, in, link) != DecodeStatus::ok || !in.tcp || in.fragment)
    return ForgeStatus::not_tcp;
  const bool v4 = in.ip_version == 4;
  const std::size_t l2 = in.l3_offset, l3 = v4 ? 20 : 40, l4 = 20;
  if (spec.payload.size() > kMaxForgedPayload || l2 + l3 + l4 + spec.payload.size() > kMaxForgedFrame)
    return ForgeStatus::too_large;
  uint8_t* f = out.bytes;
  // Link header: as held; towards the client the Ethernet addresses swap places.
  std::memcpy(f, held, l2);
  if (link == LinkType::ethernet && spec.to_client) {
    std::memcpy(f, held + 6, 6);
    std::memcpy(f + 6, held, 6);
  }
  if (link == LinkType::ethernet || link == LinkType::linux_sll) put16(f + l2 - 2, v4 ? 0x0800 : 0x86dd);
  // Addresses and ports, in the segment's direction.
  const uint8_t* src = spec.to_client ? in.dst_addr : in.src_addr;
  const uint8_t* dst = spec.to_client ? in.src_addr : in.dst_addr;
  const uint16_t sport = spec.to_client ? in.dst_port : in.src_port;
  const uint16_t dport = spec.to_client ? in.src_port : in.dst_port;
  const uint32_t held_end = in.tcp_seq + in.payload_len + ((in.tcp_flags & kTcpFin) ? 1 : 0);
  const uint32_t seq = spec.absolute ? spec.seq_offset : (spec.to_client ? in.tcp_ack : in.tcp_seq) + spec.seq_offset;
  const uint32_t ack = spec.absolute ? spec.ack_offset : (spec.to_client ? held_end : in.tcp_ack) + spec.ack_offset;
  const std::size_t tcp_len = l4 + spec.payload.size();

  uint8_t* ip = f + l2;
  std::memset(ip, 0, l3);
  if (v4) {
    ip[0] = 0x45;
    put16(ip + 2, static_cast<uint16_t>(l3 + tcp_len));
    put16(ip + 4, spec.ip_id);
    put16(ip + 6, 0x4000);  // DF
    ip[8] = 64;
    ip[9] = IPPROTO_TCP;
    std::memcpy(ip + 12, src, 4);
    std::memcpy(ip + 16, dst, 4);
    put16(ip + 10, static_cast<uint16_t>(~checksum_fold(checksum_add(ip, 20))));
  } else {
    ip[0] = 0x60;
    put16(ip + 4, static_cast<uint16_t>(tcp_len));
    ip[6] = IPPROTO_TCP;
    ip[7] = 64;
    std::memcpy(ip + 8, src, 16);
    std::memcpy(ip + 24, dst, 16);
  }
  uint8_t* tcp = ip + l3;
  std::memset(tcp, 0, l4);
  put16(tcp, sport);
  put16(tcp + 2, dport);
  put32(tcp + 4, seq);
  put32(tcp + 8, spec.flags & kTcpAck ? ack : 0);
  tcp[12] = 5 << 4;
  tcp[13] = spec.flags;
  put16(tcp + 14, spec.window);
  if (!spec.payload.empty()) std::memcpy(tcp + l4, spec.payload.data(), spec.payload.size());
  // Pseudo-header (RFC 793 / RFC 8200 8.1), then the segment.
  uint8_t pseudo[40];
  std::size_t plen;
  if (v4) {
    std::memcpy(pseudo, src, 4);
    std::memcpy(pseudo + 4, dst, 4);
    pseudo[8] = 0;
    pseudo[9] = IPPROTO_TCP;
    put16(pseudo + 10, static_cast<uint16_t>(tcp_len));
    plen = 12;
  } else {
    std::memcpy(pseudo, src, 16);
    std::memcpy(pseudo + 16, dst, 16);
    put32(pseudo + 32, static_cast<uint32_t>(tcp_len));
    std::memset(pseudo + 36, 0, 3);
    pseudo[39] = IPPROTO_TCP;
    plen = 40;
  }
  const uint32_t sum = checksum_add(tcp, tcp_len, checksum_add(pseudo, plen));
  put16(tcp + 16, static_cast<uint16_t>(~checksum_fold(sum)));
  std::size_t len = l2 + l3 + tcp_len;
  if (link == LinkType::ethernet && len < 60) {  // the Ethernet minimum, padded with zeros
    std::memset(f + len, 0, 60 - len);
    len = 60;
  }
  out.len = static_cast<uint16_t>(len);
  return ForgeStatus::ok;
}

namespace {

bool ieq(const uint8_t* p, std::string_view word) noexcept {
  for (std::size_t i = 0; i < word.size(); ++i)
    if ((p[i] | 0x20) != (word[i] | 0x20)) return false;
  return true;
}

}  // namespace

unsigned mask_starttls(uint8_t* payload, std::size_t len) noexcept {
  constexpr std::string_view kWord = "STARTTLS", kFiller = "X-NO-TLS";
  unsigned masked = 0;
  for (std::size_t i = 0; i + 4 + kWord.size() <= len; ++i) {
    if (i && payload[i - 1] != '\n') continue;
    if (payload[i] != '2' || payload[i + 1] != '5' || payload[i + 2] != '0' || (payload[i + 3] != '-' && payload[i + 3] != ' '))
      continue;
    uint8_t* w = payload + i + 4;
    const std::size_t after = i + 4 + kWord.size();
    if (!ieq(w, kWord) || (after < len && payload[after] != '\r' && payload[after] != '\n' && payload[after] != ' '))
      continue;
    std::memcpy(w, kFiller.data(), kFiller.size());
    ++masked;
  }
  return masked;
}

bool is_starttls_command(const uint8_t* payload, std::size_t len) noexcept {
  return (len == 10 && ieq(payload, "STARTTLS") && payload[8] == '\r' && payload[9] == '\n') ||
         (len == 9 && ieq(payload, "STARTTLS") && payload[8] == '\n');
}

void refresh_tcp_checksum(uint8_t* frame, const PacketInfo& info) noexcept {
  uint8_t* tcp = frame + info.l4_offset;
  const std::size_t tcp_len = info.ip_end - info.l4_offset;
  const uint8_t* ip = frame + info.l3_offset;
  uint8_t pseudo[40];
  std::size_t plen;
  if (info.ip_version == 4) {
    std::memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = IPPROTO_TCP;
    put16(pseudo + 10, static_cast<uint16_t>(tcp_len));
    plen = 12;
  } else {
    std::memcpy(pseudo, info.src_addr, 16);
    std::memcpy(pseudo + 16, info.dst_addr, 16);
    put32(pseudo + 32, static_cast<uint32_t>(tcp_len));
    std::memset(pseudo + 36, 0, 3);
    pseudo[39] = IPPROTO_TCP;
    plen = 40;
  }
  tcp[16] = tcp[17] = 0;
  put16(tcp + 16, static_cast<uint16_t>(~checksum_fold(checksum_add(tcp, tcp_len, checksum_add(pseudo, plen)))));
}

}  // namespace sluice::reassembly
