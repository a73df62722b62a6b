// Internal to dataplane/: what a running data plane owns, and the steps that build it. One
// factory, Dataplane::start() (dataplane.cpp), runs the steps in order; each lives in its own unit:
//  - ports.cpp:    the mbuf pool, the RX lcore contexts and their dispatch rings, every port
//                  (queues, RSS, offloads), the RX timestamp field;
//  - workers.cpp:  chunk and result pools and rings, the worker lcore contexts;
//  - wiring.cpp:   per RX lcore, the pipeline: event ring, attachment hand-off, Hyperscan scratch,
//                  message inspectors, reassembler, hold queue; the control channels of every lcore;
//  - stats.cpp:    Dataplane::stats(), the sum of the lcores' plain counters;
//  - dataplane.cpp: the factory, launching the lcores, finished/drain/stop, tear-down.
// Everything here is allocated at start, on the control thread, never on an lcore.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/chunk_pool.h"
#include "dataplane/dataplane.h"
#include "dataplane/hold_queue.h"
#include "dataplane/lcore_context.h"
#include "dataplane/pool_memory.h"
#include "dataplane/sample_pool.h"
#include "dataplane/worker_rings.h"
#include "pipeline/message_inspector.h"

namespace sluice::dataplane {

struct Dataplane::Impl {
  Config config;
  MbufPool mbuf_pool;  // table.pool: declared first, destroyed last (after the holds that give mbufs back)
  PoolMemory result_memory[kMaxWorkers];  // the result pools' objects in process memory (pool_memory.h): freed after them
  std::vector<std::unique_ptr<ChunkPool>> chunk_pools;  // per RX lcore, with worker lcores (workers.chunks)
  PortTable table{};
  RxLcoreContext* lcores = nullptr;  // n_rx_lcores contexts, cache-aligned array
  WorkerTable workers{};
  WorkerLcoreContext* worker_lcores = nullptr;  // workers.n_workers contexts
  std::vector<std::unique_ptr<pipeline::AttachmentWorker>> attachment_workers;
  std::vector<std::unique_ptr<MempoolSampleBlocks>> sample_pools;  // per worker (or RX lcore doing the work)
  std::vector<std::unique_ptr<pipeline::ChunkChannel>> channels;  // per RX lcore
  std::vector<std::unique_ptr<pipeline::AttachmentHandoff>> handoffs;  // per RX lcore
  std::unique_ptr<pipeline::MimeBodyScan> body_scan;  // mime.body_scan: hyperscan (compiled here, at start)
  std::vector<std::unique_ptr<pipeline::MimeBodyScan::Scratch>> body_scratch;  // one per RX lcore
  std::unique_ptr<pipeline::MessageInspectorFactory> inspectors;  // shared by the lcores' reassemblers
  std::vector<std::unique_ptr<reassembly::Reassembler>> reassemblers;
  std::vector<std::unique_ptr<HoldQueue>> holds;  // per RX lcore
  std::vector<std::unique_ptr<EnforcerIo>> enforcer_ios;  // per RX lcore, when enforcing
  std::vector<std::unique_ptr<Enforcer>> enforcers;
  std::vector<std::unique_ptr<pipeline::LookupLane>> lanes;  // per RX lcore, with reputation look-ups
  std::vector<std::unique_ptr<EventRing>> rings;
  std::vector<std::unique_ptr<RingEventOutput>> outputs;
  std::vector<std::unique_ptr<uint8_t[]>> scratch;
  std::vector<std::max_align_t> drain_scratch;
  std::unique_ptr<LcoreChannels> control;  // RX lcores, then workers
  std::vector<std::shared_ptr<const LcoreSnapshot>> snapshots;  // one slot per lcore, swapped by it
  std::atomic<bool> quit{false};
  std::atomic<bool> abort_flush{false};
  bool launched = false;
  bool stopped = false;
  bool stop_requested = false;
  std::chrono::steady_clock::time_point stop_t0, stop_deadline;
  bool stop_deadline_reached = false;
  bool port_started[kMaxPorts] = {};
  bool symmetric_rss[kMaxPorts] = {};
  bool software_dispatch[kMaxPorts] = {};

  ~Impl();

  // The steps of start(), in this order; each returns false with a one-line `error`.
  bool setup_ports(std::string& error);    // ports.cpp
  bool setup_workers(std::string& error);  // workers.cpp
  bool wire_pipeline(std::string& error);  // wiring.cpp
  bool launch(std::string& error);         // dataplane.cpp
  bool start(std::string& error);

 private:
  bool setup_rx_lcores(std::string& error);
  bool setup_port(unsigned idx, std::string& error);
  bool wire_rx_lcore(unsigned i, std::string& error);
};

}  // namespace sluice::dataplane
