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

// How a frame starts: the pcap link types DPDK's pcap PMD passes through unchanged. Physical and
// af_packet ports are always Ethernet.
enum class LinkType : uint8_t {
  ethernet,   // DLT_EN10MB (1)
  null,       // DLT_NULL (0) / DLT_LOOP (108): 4-byte address family, then IP
  raw,        // DLT_RAW (101, also 12 and 14 on some systems): IP at byte 0
  linux_sll,  // DLT_LINUX_SLL (113): 16-byte cooked header, EtherType at byte 14
};
// The link type for a pcap DLT number; ethernet for anything unknown.
LinkType link_type_from_dlt(uint32_t dlt) noexcept;

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
  uint16_t ip_end;       // offset just past the IP datagram (Ethernet padding excluded), <= len
  uint16_t fragment_offset;  // bytes, for fragments
  uint32_t fragment_id;      // IPv4 identification or IPv6 fragment identification
  uint16_t fragment_payload; // offset of the fragment's data (after IP header / fragment header)
  bool more_fragments;
  // TCP (l4_proto 6, not a fragment, header complete):
  bool tcp;
  uint8_t tcp_flags;
  uint32_t tcp_seq;
  uint32_t tcp_ack;
  uint16_t tcp_window;      // as sent (the receiver scales it: RFC 7323)
  uint16_t payload_offset;  // TCP payload: [payload_offset, ip_end)
  uint16_t payload_len;
};

// Walks Ethernet, up to `kMaxVlanTags` 802.1Q/802.1ad tags, IPv4 (options skipped) or IPv6
// (hop-by-hop, routing, destination-options and fragment extension headers skipped), and reads
// the TCP/UDP ports. `len` is the contiguous length available (the first mbuf segment).
DecodeStatus decode_packet(const uint8_t* frame, std::size_t len, PacketInfo& out,
                           LinkType link = LinkType::ethernet) noexcept;

// Decodes an IP datagram that starts at `ip` (a reassembled fragment set): same fields, offsets
// relative to `ip`.
DecodeStatus decode_ip(const uint8_t* ip, std::size_t len, PacketInfo& out) noexcept;

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
