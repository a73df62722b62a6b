// IP fragment reassembly (IPv4 RFC 791, IPv6 RFC 8200 section 4.5) for the reassembly stage.
// Fragments are copied (the originals are forwarded untouched by the data plane). A fixed number
// of datagrams can be in reassembly at once, each in a preallocated 64 KiB buffer.
// Overlapping fragments: the first bytes received win (as for TCP); differing overlaps drop the
// datagram and are counted, since no single reading is safe (RFC 5722 makes IPv6 overlaps fatal).
// Under a flood of sets that never complete, new datagrams still reassemble: a source may hold at
// most `max_per_source` sets (its oldest goes for a new one), and a new set that finds every slot
// busy evicts the oldest set of all (counted `evicted`).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "reassembly/packet_decode.h"

namespace sluice::reassembly {

enum class DefragResult : uint8_t {
  need_more,  // kept; the datagram is not whole yet
  complete,   // `out` holds the whole datagram (IP header + payload), valid until the next call
  dropped,    // not kept: too many pieces, conflicting overlap, bad offsets
};

struct DefragStats {
  uint64_t completed, no_slot, conflicts, malformed, timeouts, evicted;
};

class IpDefrag {
 public:
  // Start-up only. max_per_source: sets one source address may hold (clamped to 1..max_datagrams).
  IpDefrag(std::size_t max_datagrams, uint32_t timeout_s, std::size_t max_per_source = SIZE_MAX);
  ~IpDefrag();
  IpDefrag(const IpDefrag&) = delete;
  IpDefrag& operator=(const IpDefrag&) = delete;

  // `frame` holds info.ip_end bytes; info describes one fragment (info.fragment).
  DefragResult add(const PacketInfo& info, const uint8_t* frame, int64_t now_us, const uint8_t*& out,
                   std::size_t& out_len) noexcept;
  // Drops datagrams older than the timeout.
  void expire(int64_t now_us) noexcept;
  const DefragStats& stats() const noexcept { return stats_; }

 private:
  static constexpr std::size_t kMaxPieces = 64;   // distinct ranges per datagram; more: dropped
  static constexpr std::size_t kHeadroom = 64;    // room for the rebuilt IP header
  static constexpr std::size_t kMaxPayload = 65535;
  struct Range {
    uint32_t begin, end;
  };
  struct Slot {
    bool used;
    uint8_t version;
    uint8_t proto;
    uint32_t id;
    uint8_t src[16], dst[16];
    int64_t started_us;
    uint32_t total;       // payload length, known once the last fragment arrived (else 0)
    bool have_last;
    bool have_first;
    uint8_t header_len;   // rebuilt header length, once the first fragment arrived
    Range ranges[kMaxPieces];  // sorted, disjoint
    uint32_t n_ranges;
    uint8_t* buf;         // kHeadroom + kMaxPayload
  };
  Slot* find_or_claim(const PacketInfo& info, int64_t now_us) noexcept;
  bool store(Slot& s, uint32_t begin, const uint8_t* data, uint32_t len) noexcept;

  std::vector<Slot> slots_;
  std::size_t max_per_source_;
  uint8_t* memory_;
  int64_t timeout_us_;
  DefragStats stats_{};
};

}  // namespace sluice::reassembly
