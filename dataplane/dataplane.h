// The data plane as the control plane sees it: start it on an initialised EAL, ask whether a
// replay has finished, read its counters, stop it. Everything behind this runs on RX lcores.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <string>
#include <vector>

#include "dataplane/dataplane_config.h"
#include "dataplane/enforcer.h"
#include "dataplane/hold_queue.h"
#include "dataplane/lcore_channel.h"
#include "pipeline/lookup_lane.h"

namespace sluice::dataplane {

struct PortStats {
  std::string name;
  std::string device;
  uint64_t rx_packets = 0, rx_bytes = 0;
  uint64_t tx_packets = 0, tx_bytes = 0;
  uint64_t dropped = 0;           // frames Sluice had to free: TX queue full, dispatch ring full
  uint64_t rx_missed = 0;         // device counters: frames the NIC/PMD could not deliver
  uint64_t rx_errors = 0, tx_errors = 0, rx_nombuf = 0;
  bool link_up = false;           // the device's link, when read (rte_eth_link_get_nowait)
  uint32_t link_speed_mbps = 0;
  bool symmetric_rss = false;     // RSS with the symmetric key is programmed
  bool software_dispatch = false; // frames are re-dispatched by the software flow hash
};

struct LcoreStats {
  unsigned lcore = 0;
  std::string role;  // "rx" or "worker"
  uint64_t rx_packets = 0, rx_bytes = 0;
  uint64_t tx_packets = 0, tx_bytes = 0;
  uint64_t dropped = 0;
  uint64_t dispatched_out = 0;  // frames handed to the lcore that owns their flow
  uint64_t events = 0, events_dropped = 0;  // event ring: written, lost because it was full
  uint64_t idle_sleeps = 0;     // sleeps between polls while idle (lcores.idle_sleep_us)
  reassembly::ReassemblyStats reassembly{};
  pipeline::HandoffStats handoff{};  // rx: attachments to workers, results back
  pipeline::WorkerStats worker{};    // worker (or rx without worker lcores): hashing, typing, archives
  HoldCounters hold{};               // rx: frames held until their message is decided
  uint64_t hold_dropped = 0;         // rx: frames freed by a drop step, fallback or deadline
  bool enforcing = false;            // rx: inline enforcement acts on verdicts
  EnforceCounters enforce{};         // rx: what it did
  uint64_t results_dropped = 0;      // worker: results for an RX lcore that had exited
  bool runs_worker = false;          // hashing, typing and archives happen on this lcore
};

struct StatsSnapshot {
  std::vector<PortStats> ports;
  std::vector<LcoreStats> lcores;
};

// What lcores read of the configuration at run time, replaced whole by a config_snapshot request
// (lcore_channel.h): immutable once sent. Later issues add the policy keys lcores apply.
struct LcoreSnapshot {
  uint64_t generation = 0;
  pipeline::VerdictPolicy policy;  // the actions of `actions.*` (RX lcores)
};

class Dataplane {
 public:
  // Creates the mbuf pool, configures and starts the ports, launches the RX lcores.
  // Requires eal_init() to have succeeded. Returns nullptr with a one-line reason on failure.
  static std::unique_ptr<Dataplane> start(const Config& config, std::string& error);
  ~Dataplane();

  // Replay mode: true once every RX lcore has read its input to the end, sent what it had and
  // reported every flow.
  bool finished() const noexcept;
  // Hands the event records the lcores wrote (records/event_records.h; `record` valid during the
  // call only) to `fn`. Control thread only.
  using RecordFn = std::function<void(const void* record, std::size_t size)>;
  std::size_t drain_events(const RecordFn& fn);
  // Tells the lcores to stop, keeps draining their events into `fn` while they report their
  // flows (reason `shutdown` for those still open), and waits for them. At `stop_timeout_ms` it
  // tells them to give up: what is left is counted (reassembly flows_unflushed,
  // messages_unflushed; events_dropped), not reported. Idempotent (a second call reports nothing).
  struct StopReport {
    bool deadline_reached = false;  // the lcores were told to give up
    double ms = 0;                  // from the call until every lcore had exited
  };
  StopReport stop(const RecordFn& fn = {}) noexcept;
  // The same stop in steps, so that the control plane keeps serving (look-ups answered, events
  // drained by its own loop) while the lcores report their flows: request_stop() tells them to
  // stop; stop_progress() (call it often) gives up at the deadline as stop() does and says
  // whether every RX lcore has exited; stop() then finishes (its report covers the whole stop).
  void request_stop() noexcept;
  bool stop_progress() noexcept;
  // The look-up lanes of the RX lcores (pipeline/lookup_lane.h), in RX lcore order; empty without
  // reputation look-ups. The control thread pops requests and pushes answers.
  std::vector<pipeline::LookupLane*> lookup_lanes() noexcept;
  // Requests to the lcores and their answers (lcore_channel.h), control thread only. Port k is RX
  // lcore k (k < lcores.rx.size()), then the worker lcores in order. Every lcore answers `ping`
  // and `config_snapshot` (an LcoreSnapshot) between bursts.
  LcoreChannels& channels() noexcept;
  // Per-lcore counters are plain integers summed here (STYLE.md): exact once stopped,
  // a consistent-enough view while running.
  StatsSnapshot stats() const;

  struct Impl;

 private:
  explicit Dataplane(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::dataplane
