// Worker lcore main loop: chunks in from every RX lcore's ring, AttachmentWorker on each, chunks
// back to their pool, results out to the RX lcore that owns the attachment. The ownership rules
// of chunks and results are at the top of worker_rings.h.
#include <algorithm>

#include "dataplane/dataplane.h"
#include "dataplane/lcore_context.h"
#include "dataplane/worker_rings.h"

namespace sluice::dataplane {
namespace {

class RingResultOutput final : public pipeline::ResultOutput {
 public:
  explicit RingResultOutput(WorkerLcoreContext& ctx) : ctx_(ctx) {}
  void put(const pipeline::WorkResult& r) noexcept override {
    const WorkerTable& t = *ctx_.table;
    const unsigned rx = pipeline::attachment_rx(r.attachment);
    if (rx >= t.n_rx) return drop(r);  // not an id of this data plane: counted
    void* p = nullptr;
    // Wait for room while the RX lcore runs: it frees results in every loop iteration.
    while (rte_mempool_get(t.results[ctx_.index], &p) != 0) {
      if (t.rx_exited[rx]->load(std::memory_order_acquire)) return drop(r);
      rte_pause();
    }
    *static_cast<pipeline::WorkResult*>(p) = r;
    while (rte_ring_enqueue(t.result_ring[ctx_.index][rx], p) != 0) {
      if (t.rx_exited[rx]->load(std::memory_order_acquire)) {
        rte_mempool_put(t.results[ctx_.index], p);
        return drop(r);
      }
      rte_pause();
    }
  }

 private:
  void drop() noexcept { ++ctx_.counters.results_dropped; }
  void drop(const pipeline::WorkResult& r) noexcept {
    pipeline::release_sample(r.sample);  // the result carried the only pointer to it
    drop();
  }
  WorkerLcoreContext& ctx_;
};

bool all_rx_exited(const WorkerTable& t) {
  for (unsigned i = 0; i < t.n_rx; ++i)
    if (!t.rx_exited[i]->load(std::memory_order_acquire)) return false;
  return true;
}

}  // namespace

int worker_lcore_main(void* arg) {
  auto& ctx = *static_cast<WorkerLcoreContext*>(arg);
  const WorkerTable& t = *ctx.table;
  RingResultOutput out(ctx);
  void* got[kStage];
  bool stalled = false;
  if (ctx.backoff.max_sleep_us) tighten_timer_slack();
  for (;;) {
    // Read before polling: when every RX lcore had exited before this round and the round finds
    // nothing, nothing can come any more.
    const bool producers_gone = all_rx_exited(t);
    unsigned total = 0, most = 0;
    for (unsigned i = 0; i < t.n_rx; ++i) {
      const unsigned n = rte_ring_dequeue_burst(t.chunk_ring[i][ctx.index], got, kStage, nullptr);
      // Debug (workers.debug_stall_ms): with the first work taken, the worker stops answering
      // for that long before it touches it, as a stuck decoder would (the enforcement
      // watchdog's test). Decided on what was dequeued, not on a ring count read earlier: a
      // chunk that arrived in between must not be answered before the stall.
      if (n && t.debug_stall_ms && !stalled) {
        stalled = true;
        const uint64_t until = rte_rdtsc() + rte_get_tsc_hz() / 1000 * t.debug_stall_ms;
        while (rte_rdtsc() < until && !t.abort->load(std::memory_order_relaxed)) rte_pause();
      }
      // Past the stop deadline the RX lcores write their unfinished attachments as they are
      // (unscannable `overload`) and leave: what is still queued is not worth reading.
      const bool discard = t.abort->load(std::memory_order_relaxed);
      for (unsigned k = 0; k < n && !discard; ++k) ctx.worker->on_chunk(*static_cast<const pipeline::WorkChunk*>(got[k]), out);
      if (n) t.chunks[i]->give_back(got, n);
      total += n;
      most = std::max(most, n);
    }
    ctx.control->poll([&ctx](const Request& rq, Response& rs) noexcept { answer_control(rq, rs, *ctx.snapshot); }, 8);
    if (total == 0) {
      if (producers_gone) break;
      ctx.backoff.idle();
    } else {
      ctx.backoff.worked(most, kStage);
    }
  }
  ctx.exited.store(true, std::memory_order_release);
  return 0;
}

}  // namespace sluice::dataplane
