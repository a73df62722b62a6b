// The segments inline enforcement puts on the wire (DESIGN.md section 5; issue 13), forged from the
// frame the reassembler holds: the client's segment that ends a message (the end of DATA, or BDAT
// LAST). Bytes in, bytes out: no mbufs, no state. From that one frame everything is known:
//   - towards the client, as if from the server: sequence number = the held segment's
//     acknowledgement (the next byte the client expects from the server), acknowledgement = the
//     end of the held segment (so the client takes its data as delivered and reads the reply);
//   - towards the server, as if from the client: sequence number = the held segment's own (the
//     next byte the server expects: the held segment never reached it), so that an RST is exactly
//     in window (RFC 5961 3.2) and accepted.
// Link headers are kept (Ethernet addresses swapped towards the client, VLAN tags as they were;
// the capture link types of replay copied); IPv4 (no options, DF, TTL 64, header checksum) or
// IPv6 (no extension headers, hop limit 64); TCP without options, checksum over the pseudo-header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "reassembly/packet_decode.h"

namespace sluice::reassembly {

// Replies are one line or a few (RFC 5321 4.2); a forged segment is one frame.
inline constexpr std::size_t kMaxForgedPayload = 1024;
inline constexpr std::size_t kMaxForgedFrame = 1600;

struct ForgedFrame {
  uint8_t bytes[kMaxForgedFrame];
  uint16_t len = 0;
};

inline constexpr uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08, kTcpAck = 0x10;

struct ForgeSpec {
  bool to_client = true;       // towards the client (from the server's address), else the server
  uint32_t seq_offset = 0;     // added to the sequence number derived above (bytes sent before)
  uint32_t ack_offset = 0;     // added to the acknowledgement derived above (a FIN seen: 1)
  bool absolute = false;       // seq_offset and ack_offset are the numbers themselves (a later
                               // segment of a connection whose state the caller tracks)
  uint8_t flags = kTcpAck;
  uint16_t window = 65535;     // as sent (unscaled field)
  uint16_t ip_id = 0;          // IPv4 identification
  std::string_view payload;    // at most kMaxForgedPayload bytes
};

enum class ForgeStatus : uint8_t {
  ok,
  not_tcp,      // the held frame does not decode to a TCP segment (or is a fragment)
  too_large,    // the payload or the frame would not fit
};

// Forges one segment of the held frame's connection.
ForgeStatus forge_segment(const uint8_t* held, std::size_t held_len, LinkType link, const ForgeSpec& spec,
                          ForgedFrame& out) noexcept;

// STARTTLS `mask` (DESIGN.md section 5): in a server's reply, every "250-STARTTLS" or "250 STARTTLS"
// line (any case) has its keyword overwritten, in place and with the same length, by "X-NO-TLS" (a
// valid, unknown EHLO keyword), so that the client stays in clear text and no sequence number
// changes. Returns how many were overwritten.
unsigned mask_starttls(uint8_t* payload, std::size_t len) noexcept;
// The client's segment is exactly a STARTTLS command (any case, CRLF or LF).
bool is_starttls_command(const uint8_t* payload, std::size_t len) noexcept;
// Recomputes the TCP checksum of a decoded frame whose payload was rewritten in place.
void refresh_tcp_checksum(uint8_t* frame, const PacketInfo& info) noexcept;

// The Internet checksum (RFC 1071) of `len` bytes, folded, not inverted; `sum` carries a partial sum.
uint32_t checksum_add(const uint8_t* p, std::size_t len, uint32_t sum = 0) noexcept;
uint16_t checksum_fold(uint32_t sum) noexcept;

}  // namespace sluice::reassembly
