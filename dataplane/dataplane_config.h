// The data plane's own view of the configuration: plain values, already validated by control/
// (control/config.cpp declares every key, its range and its default, once). The data plane never
// parses files and never sees YAML.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/enforcer.h"
#include "dataplane/hold_queue.h"
#include "reassembly/packet_decode.h"
#include "pipeline/attachment_handoff.h"
#include "pipeline/message_verdict.h"
#include "pipeline/mime_parser.h"
#include "reassembly/reassembler.h"

namespace sluice::dataplane {

enum class Mode : uint8_t { inline_, tap, replay };
enum class Hugepages : uint8_t { automatic, on, off };

struct PortConfig {
  std::string name;    // operator's name, used in stats and events
  std::string device;  // PCI address (0000:03:00.0) or a vdev spec (net_af_packet0,iface=eth1)
  uint16_t rx_desc;
  uint16_t tx_desc;
  bool promiscuous;
  reassembly::LinkType link_type;  // ethernet, except replays of other pcap link types
};

struct EalConfig {
  std::string file_prefix;  // empty: "sluice-<pid>", so two instances never collide
  Hugepages hugepages;
  unsigned memory_mb;       // with --no-huge
  std::vector<std::string> args;  // appended verbatim
};

struct LcoreConfig {
  unsigned main;
  std::vector<unsigned> rx;
  std::vector<unsigned> workers;
  uint32_t idle_polls = 2048;     // RX lcores: empty polls in a row before sleeping (idle_backoff.h; workers are paced)
  uint32_t idle_sleep_us = 100;   // the longest sleep between polls of an idle lcore; 0: always spin
};

// RX lcores hand attachments to worker lcores (DESIGN.md section 3); without worker lcores, each RX
// lcore runs the worker's code itself.
struct WorkerConfig {
  unsigned chunk_pool;        // 4 KiB chunks per RX lcore
  unsigned chunk_ring_size;   // per RX lcore -> worker ring (power of two)
  unsigned result_pool;       // result records per worker
  unsigned result_ring_size;  // per worker -> RX lcore ring (power of two)
  pipeline::WorkerLimits limits;    // per worker: in flight, typing head, archives
  pipeline::HandoffLimits handoff;  // per RX lcore: records waiting for results, back-pressure
  uint32_t debug_stall_ms = 0;      // debug: each worker lcore stops this long at its first chunk
  unsigned sample_blocks = 0;       // per worker: 64 KiB blocks kept for analysis samples (0: none;
                                    // set from analysis.sample_memory_mb when analysis is configured)
};

// Frames held until their message is decided (hold_queue.h, DESIGN.md section 5).
struct HoldConfig {
  HoldLimits limits;     // per RX lcore
  uint32_t max_hold_ms;  // a held frame's deadline: the time it was held plus this
  bool debug_hold_every_message;  // tests of the hold path: every message's last frame is held
};

// File reputation on the RX lcores (pipeline/verdict_seam.h): the verdict cache they read, their
// look-up lanes to the control plane, the actions of the first configuration snapshot.
struct VerdictConfig {
  const pipeline::VerdictCache* cache = nullptr;  // owned by the caller of Dataplane::start
  bool lookups = false;            // reputation endpoints are configured: misses go to the control plane
  uint32_t deadline_ms = 0;        // a message's look-ups wait at most this on the lcore
  uint32_t lane_requests = 4096;   // per RX lcore: look-up requests waiting for the control plane
  bool analysis = false;           // analysis endpoints are configured: upload candidates are offered
  uint32_t analysis_deadline_ms = 0;  // a message's analysis decisions wait at most this on the lcore
  uint32_t lane_analysis = 256;    // per RX lcore: candidates waiting for the control plane
  unsigned spool_blocks = 0;       // per RX lcore: 64 KiB blocks keeping messages until their verdict (0: none)
  uint64_t spool_max_bytes = 0;    // a larger message is not kept (not stored in the quarantine)
  pipeline::VerdictPolicy policy;  // the actions until the first reload
};

struct Config {
  Mode mode;
  EalConfig eal;
  std::vector<PortConfig> ports;
  std::vector<std::pair<std::size_t, std::size_t>> pairs;  // indexes into ports
  LcoreConfig lcores;
  unsigned burst;
  unsigned mbufs;
  unsigned mbuf_cache;
  unsigned tx_retries;
  unsigned dispatch_ring_size;
  unsigned stop_timeout_ms;  // SIGTERM/SIGINT: open flows are reported within this, the rest counted
  reassembly::FlowHashMode flow_hash;
  reassembly::ReassemblyConfig reassembly;  // `observers` is set by the data plane
  pipeline::MimeLimits mime;                // MIME parsing of every message (on the RX lcores)
  bool mime_hyperscan;                      // bodies skipped by Hyperscan instead of the SSE2 scan
  WorkerConfig workers;
  HoldConfig hold;
  EnforceConfig enforce;         // inline enforcement (set from the mode and the hold.* keys too)
  std::size_t event_ring_bytes;  // per RX lcore
  VerdictConfig verdicts;
};

const char* mode_name(Mode m) noexcept;

}  // namespace sluice::dataplane
