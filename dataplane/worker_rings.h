// Internal to dataplane/: the rings and pools between RX lcores and worker lcores, and the worker
// lcore's state (DESIGN.md section 3).
//
// Ownership (STYLE.md):
//  - a chunk (pipeline::WorkChunk, one of RX lcore i's pool `chunks[i]`, chunk_pool.h) belongs to
//    RX lcore i from ChunkPool::get until rte_ring_enqueue accepts it on ring chunk[i][j]
//    (single-producer i, single-consumer j); staged chunks are still RX lcore i's. Worker j reads
//    it during AttachmentWorker::on_chunk and gives it back to `chunks[i]` (give_back). Nothing
//    else frees it.
//  - a result (pipeline::WorkResult, one element of worker j's pool `results[j]`) belongs to worker
//    j until enqueued on ring result[j][i]; RX lcore i hands it to its AttachmentHandoff during
//    the call and puts it back into `results[j]`.
//  - a worker never drops a result while its RX lcore runs: it waits for pool or ring room (the RX
//    lcore polls results in every loop iteration, also while it waits itself, so both progress);
//    once that RX lcore has exited, results for it are counted and dropped.
#pragma once

#include "dataplane/chunk_pool.h"
#include "dataplane/idle_backoff.h"
#include "dataplane/lcore_channel.h"

#include <rte_common.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include <atomic>
#include <cstdint>

#include "pipeline/attachment_worker.h"
#include "pipeline/handoff.h"

namespace sluice::dataplane {

inline constexpr unsigned kMaxWorkers = 16;
inline constexpr unsigned kMaxRxForWorkers = 16;  // == kMaxRxLcores
inline constexpr unsigned kStage = 32;             // chunks staged per worker before a burst enqueue

// Shared, read-only once the lcores run.
struct WorkerTable {
  unsigned n_rx = 0, n_workers = 0;
  ChunkPool* chunks[kMaxRxForWorkers] = {};                         // per RX lcore
  rte_mempool* results[kMaxWorkers] = {};                           // per worker
  rte_ring* chunk_ring[kMaxRxForWorkers][kMaxWorkers] = {};          // RX i -> worker j
  rte_ring* result_ring[kMaxWorkers][kMaxRxForWorkers] = {};         // worker j -> RX i
  const std::atomic<bool>* rx_exited[kMaxRxForWorkers] = {};
  const std::atomic<bool>* abort = nullptr;  // the stop deadline passed: chunks left go back unread
  uint32_t debug_stall_ms = 0;  // tests of the enforcement watchdog: each worker stalls once (workers.debug_stall_ms)
};

// RX lcore i's ChunkChannel over the rings. Lives on that lcore only.
class RingChannel final : public pipeline::ChunkChannel {
 public:
  RingChannel(const WorkerTable& t, unsigned rx) : t_(t), rx_(rx) {}
  unsigned workers() const noexcept override { return t_.n_workers; }
  pipeline::WorkChunk* alloc() noexcept override { return t_.chunks[rx_]->get(); }
  void release(pipeline::WorkChunk* c) noexcept override { t_.chunks[rx_]->release(c); }
  bool send(unsigned w, pipeline::WorkChunk* c) noexcept override {
    if (n_[w] == kStage && !push(w)) return false;
    stage_[w][n_[w]++] = c;
    if (n_[w] == kStage) push(w);
    return true;
  }
  bool flush() noexcept override {
    bool all = true;
    for (unsigned w = 0; w < t_.n_workers; ++w)
      if (n_[w]) all &= push(w);
    return all;
  }
  std::size_t poll(pipeline::ResultHandler& h) noexcept override {
    std::size_t total = 0;
    void* got[kStage];
    for (unsigned w = 0; w < t_.n_workers; ++w) {
      const unsigned n = rte_ring_dequeue_burst(t_.result_ring[w][rx_], got, kStage, nullptr);
      for (unsigned k = 0; k < n; ++k) h.on_result(*static_cast<const pipeline::WorkResult*>(got[k]));
      if (n) rte_mempool_put_bulk(t_.results[w], got, n);
      total += n;
    }
    return total;
  }

 private:
  // Enqueues what is staged for `w`, in order; keeps the rest. True when nothing is left.
  bool push(unsigned w) noexcept {
    const unsigned done = rte_ring_enqueue_burst(t_.chunk_ring[rx_][w], reinterpret_cast<void**>(stage_[w]), n_[w], nullptr);
    if (done && done < n_[w])
      for (unsigned k = done; k < n_[w]; ++k) stage_[w][k - done] = stage_[w][k];
    n_[w] -= done;
    return n_[w] == 0;
  }
  const WorkerTable& t_;
  unsigned rx_;
  pipeline::WorkChunk* stage_[kMaxWorkers][kStage] = {};
  unsigned n_[kMaxWorkers] = {};
};

// The worker lcore's own counters; chunks and bytes are its AttachmentWorker's (WorkerStats), idle
// sleeps its IdleBackoff's.
struct WorkerCounters {
  uint64_t results_dropped = 0;
};

struct alignas(RTE_CACHE_LINE_SIZE) WorkerLcoreContext {
  unsigned lcore_id = 0;
  unsigned index = 0;
  const WorkerTable* table = nullptr;
  pipeline::AttachmentWorker* worker = nullptr;
  WorkerCounters counters;
  IdleBackoff backoff{};
  std::atomic<bool> exited{false};
  LcorePort* control = nullptr;  // requests from the control thread, polled between rounds
  std::shared_ptr<const struct LcoreSnapshot>* snapshot = nullptr;
};

// The worker lcore main loop, launched with rte_eal_remote_launch; arg is a WorkerLcoreContext*.
int worker_lcore_main(void* arg);

}  // namespace sluice::dataplane
