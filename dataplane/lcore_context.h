// Internal to dataplane/: the per-lcore state of an RX lcore, cache-aligned and owned by that lcore
// alone (STYLE.md, share-nothing). Other threads only read the plain counters, and only the
// control thread writes `quit`.
#pragma once

#include "dataplane/idle_backoff.h"

#include <rte_common.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <cstdint>

#include "dataplane/event_ring.h"
#include "dataplane/enforcer.h"
#include "dataplane/hold_queue.h"
#include "dataplane/lcore_channel.h"
#include "pipeline/attachment_handoff.h"
#include "reassembly/packet_decode.h"
#include "reassembly/reassembler.h"

namespace sluice::dataplane {

inline constexpr unsigned kMaxPorts = 16;      // ports in one configuration
inline constexpr unsigned kMaxRxLcores = 16;   // RX lcores in one configuration (dispatch staging is per-lcore x burst)
inline constexpr unsigned kMaxBurst = 256;
inline constexpr uint16_t kNoPeer = UINT16_MAX;
inline constexpr uint32_t kScratchBytes = 65536 + 256;  // an IP datagram plus its link headers

struct PortCounters {
  uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, dropped, dispatched_out;
};

struct RxQueueRef {
  uint16_t port_index;  // index into the configuration's ports
  uint16_t queue;
  bool dispatch;        // frames may belong to another lcore: hash and hand them over
};

// Shared, read-only once the lcores run.
struct PortTable {
  unsigned n_ports;
  uint16_t port_id[kMaxPorts];  // DPDK port id of each configured port
  uint16_t peer[kMaxPorts];     // index of the port frames received here leave by; kNoPeer: consume
  rte_mempool* pool;
  unsigned n_rx_lcores;
  uint64_t enforce_watchdog_tsc;  // enforce.watchdog_ms in TSC cycles (0: no watchdog)
  rte_ring* inbound[kMaxRxLcores];  // per RX lcore: frames other lcores dispatched to it (MP/SC)
  unsigned burst;
  unsigned tx_retries;
  bool replay;
  reassembly::FlowHashMode flow_hash;
  reassembly::LinkType link_type[kMaxPorts];
  int timestamp_offset;     // mbuf dynfield of RX timestamps (pcap PMD), or -1
  uint64_t timestamp_flag;  // ol_flags bit saying the field is set
};

// The lcore's event records (reassembly and attachments) go to the control thread over its
// EventRing.
class RingEventOutput final : public records::RecordSink {
 public:
  explicit RingEventOutput(EventRing* ring) : ring_(ring) {}
  void emit(const void* record, std::size_t size) noexcept override {
    const bool ok = flushing_ ? ring_->push_wait(record, size, *quit_abort_) : ring_->push(record, size);
    ok ? ++emitted : ++dropped;
  }
  // While flushing (end of input, shutdown), wait for room instead of dropping, until `abort`.
  void set_flushing(bool on, const std::atomic<bool>* abort) noexcept {
    flushing_ = on;
    quit_abort_ = abort;
  }
  uint64_t emitted = 0, dropped = 0;

 private:
  EventRing* ring_;
  const std::atomic<bool>* quit_abort_ = nullptr;
  bool flushing_ = false;
};

struct alignas(RTE_CACHE_LINE_SIZE) RxLcoreContext {
  unsigned lcore_id;
  unsigned index;  // 0..n_rx_lcores-1: its TX queue on every port, its inbound ring
  const PortTable* table;
  RxQueueRef queues[kMaxPorts];
  unsigned n_queues;
  PortCounters counters[kMaxPorts];
  std::atomic<bool>* quit;
  std::atomic<bool>* abort_flush;  // set when the control thread will no longer drain events
  std::atomic<bool> finished;  // replay: input exhausted and everything sent
  std::atomic<bool> exited;    // the loop returned
  reassembly::Reassembler* reasm;
  pipeline::AttachmentHandoff* handoff;  // attachments to workers, results back
  RingEventOutput* events;
  EventRing* event_ring;
  int64_t now_us;              // time of the last frame (packet time in replay)
  int64_t last_expire_us;
  uint8_t* scratch;            // linearised multi-segment frames (64 KiB + headroom)
  HoldQueue* hold;             // frames held until their message is decided (frame_step.h)
  Enforcer* enforcer;          // inline enforcement (null: tap, replay without an output, debug hold)
  // Replay with enforcement (one RX lcore): the rest of a burst after a held segment waits here
  // until that message is settled, as if its verdict had come at once on a live link.
  rte_mbuf* stash[kMaxBurst];
  uint16_t stash_n;
  uint16_t stash_port;
  uint64_t gated_since_tsc;    // replay: when the input stopped for a held message (0: it flows)
  uint64_t wd_results;         // watchdog: the hand-off's results when they last moved
  uint64_t wd_progress_tsc;    // watchdog: when they last moved (or nothing waited)
  int64_t max_hold_us;         // a held frame's deadline: now_us + this
  uint64_t hold_dropped;       // frames freed by a drop step, a drop fallback or a drop at their deadline
  LcorePort* control;          // requests from the control thread, polled between bursts
  IdleBackoff backoff;         // an iteration that received nothing: pause, then sleep (lcores.idle_*)
  std::shared_ptr<const struct LcoreSnapshot>* snapshot;  // this lcore's current one (owned by Dataplane)
};

// Answers a control request on any lcore (ping, config_snapshot); other types stay unknown_type.
void answer_control(const Request& rq, Response& rs, std::shared_ptr<const struct LcoreSnapshot>& snapshot) noexcept;

// The RX loop's side of inline enforcement: mbufs, TX bursts and the reassembler (rx_lcore.cpp).
std::unique_ptr<EnforcerIo> make_enforcer_io(RxLcoreContext& ctx);

// The RX lcore main loop, launched with rte_eal_remote_launch; arg is an RxLcoreContext*.
int rx_lcore_main(void* arg);

}  // namespace sluice::dataplane
