// Per-lcore flow table: fixed capacity, allocated once, no locks (one RX lcore owns it).
// Keyed by the symmetric 5-tuple (endpoints sorted), so both directions find the same entry.
// Entries are kept in least-recently-used order for idle expiry, in two lists: embryonic flows
// (no payload seen yet in either direction: a SYN, a handshake, a half-open connection), which
// have their own short timeout and are evicted first under pressure, and active flows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "reassembly/packet_decode.h"

namespace sluice::reassembly {

struct FlowKey {
  uint8_t addr_lo[16];  // the lower (address, port) endpoint
  uint8_t addr_hi[16];
  uint16_t port_lo;
  uint16_t port_hi;
  uint8_t ip_version;
  uint8_t proto;
  uint8_t pad[2];

  bool operator==(const FlowKey& o) const noexcept { return std::memcmp(this, &o, sizeof(*this)) == 0; }
};

// Builds the canonical key of a decoded packet; `src_is_lo` tells which endpoint sent it.
FlowKey make_flow_key(const PacketInfo& info, bool& src_is_lo) noexcept;

struct SmtpFlow;   // inspection state, owned by the reassembler
struct SmtpProbe;  // SMTP by content: the first bytes of a flow off the SMTP ports (smtp_detect.h)

struct Flow {
  FlowKey key;
  uint64_t flow_id;
  int64_t first_seen_us;
  int64_t last_seen_us;
  uint64_t packets[2];  // [0] client->server, [1] server->client
  uint64_t bytes[2];
  SmtpFlow* smtp;       // nullptr: tracked, not inspected
  bool client_is_lo;    // which endpoint of the key is the SMTP client
  bool fin[2];
  bool rst;
  bool reported;        // its flow event was written
  bool embryonic;       // no payload seen yet (FlowTable's embryonic list)
  bool session_refused; // SMTP, but no session slot was free when it showed data
  uint8_t app;          // Reassembler's AppProto
  uint8_t detect;       // DetectState (smtp_detect.h): 0 on a configured port
  SmtpProbe* probe;     // while a flow off the SMTP ports is being judged
  // What the handshake said, kept until (and for) the session: the streams start from the ISNs,
  // the receiver's window is checked with its scale (RFC 7323: in effect only if both sent one).
  bool syn_seen[2];     // [0] client SYN, [1] server SYN-ACK
  uint8_t wscale[2];    // window scale option of each side's SYN (0 when absent)
  bool wscale_sent[2];
  uint32_t isn[2];
  // The client's ISN as the SYN-ACK acknowledged it (isn[0] = its ack - 1) before the client's SYN
  // was seen (a tap may deliver the SYN-ACK first, or lose the SYN): anchors the client stream.
  bool isn_from_syn_ack;
  uint32_t fin_seq[2];  // the first FIN of each side (fin[] set), for a session started after it
  // table links
  uint32_t hash;
  Flow* bucket_next;
  Flow* lru_prev;
  Flow* lru_next;
};

class FlowTable {
 public:
  explicit FlowTable(std::size_t capacity);  // start-up only: allocates entries and buckets
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  Flow* find(const FlowKey& key, uint32_t hash) noexcept;
  // A new zeroed entry for `key`, embryonic and most recently used; nullptr when the table is full.
  Flow* insert(const FlowKey& key, uint32_t hash) noexcept;
  void remove(Flow* f) noexcept;
  // Marks the flow most recently used in its list.
  void touch(Flow* f) noexcept;
  // The flow showed payload: it moves to the active list, most recently used.
  void activate(Flow* f) noexcept;
  // The least recently used flow of a list, or nullptr.
  Flow* oldest_embryonic() const noexcept { return lru_[kEmbryonic].head; }
  Flow* oldest_active() const noexcept { return lru_[kActive].head; }
  // The least recently used flow of either list, embryonic first (flush order does not matter).
  Flow* any() const noexcept { return lru_[kEmbryonic].head ? lru_[kEmbryonic].head : lru_[kActive].head; }
  std::size_t size() const noexcept { return size_; }
  std::size_t embryonic() const noexcept { return lru_[kEmbryonic].size; }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  static constexpr int kEmbryonic = 0, kActive = 1;
  struct Lru {
    Flow* head = nullptr;
    Flow* tail = nullptr;
    std::size_t size = 0;
  };
  void lru_unlink(Flow* f) noexcept;
  void lru_append(Flow* f) noexcept;

  Flow* entries_;
  Flow* free_list_;
  Flow** buckets_;
  std::size_t bucket_mask_;
  std::size_t capacity_;
  std::size_t size_ = 0;
  std::size_t untouched_ = 0;  // entries_[untouched_..] never used yet
  Lru lru_[2];
};

}  // namespace sluice::reassembly
