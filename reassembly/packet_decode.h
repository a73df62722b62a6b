// Header decoding of one frame, from Ethernet to the transport ports: enough to find the flow a
// frame belongs to. Knows nothing of mbufs, lcores or policy: bytes in, a PacketInfo out.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::reassembly {

enum class DecodeStatus : uint8_t {
  ok,         // IPv4 or IPv6 decoded; ports are set when l4_proto is TCP or UDP and not a fragment
  not_ip,     // ARP, LLDP and other non-IP frames: forwarded untouched, no flow
  truncated,  // the frame ends inside a header it announces
  malformed,  // a header field is impossible (IHL < 5, bad version)
};

struct PacketInfo {
  uint8_t src_addr[16];  // IPv4 uses the first 4 bytes
  uint8_t dst_addr[16];
  uint16_t src_port;     // host byte order; 0 when not TCP/UDP or when a non-first fragment
  uint16_t dst_port;
  uint16_t l3_offset;    // from the start of the frame
  uint16_t l4_offset;    // 0 when the transport header is absent (non-first fragment)
  uint8_t ip_version;    // 4 or 6
  uint8_t l4_proto;      // IPPROTO_TCP, IPPROTO_UDP, ...
  uint8_t vlan_depth;    // 802.1Q / 802.1ad tags passed
  bool fragment;         // IPv4 MF set or offset != 0, or an IPv6 fragment header
};

// Walks Ethernet, up to `kMaxVlanTags` 802.1Q/802.1ad tags, IPv4 (options skipped) or IPv6
// (hop-by-hop, routing, destination-options and fragment extension headers skipped), and reads
// the TCP/UDP ports. `len` is the contiguous length available (the first mbuf segment).
DecodeStatus decode_packet(const uint8_t* frame, std::size_t len, PacketInfo& out) noexcept;

// Deeper tag stacks are treated as not IP: no real network stacks more than a QinQ pair plus one.
inline constexpr unsigned kMaxVlanTags = 3;

enum class FlowHashMode : uint8_t {
  ip_pair,     // addresses only: every fragment of a datagram lands with its flow
  five_tuple,  // addresses, ports, protocol: better spread, fragments may land elsewhere
};

// A hash that is the same for both directions of a conversation (endpoints sorted first), used
// to pick the lcore that owns a flow when the NIC cannot do symmetric RSS itself.
uint32_t symmetric_flow_hash(const PacketInfo& info, FlowHashMode mode) noexcept;

}  // namespace sluice::reassembly
