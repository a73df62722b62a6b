// Worker lcores (dataplane_impl.h): per RX lcore a pool of chunks and a ring to each worker, per
// worker a pool of results and a ring back to each RX lcore (worker_rings.h), and the workers'
// contexts. Nothing is created without worker lcores: each RX lcore then runs the worker itself.
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <algorithm>

#include "dataplane/dataplane_impl.h"

namespace sluice::dataplane {

bool Dataplane::Impl::setup_workers(std::string& error) {
  const Config& c = config;
  const unsigned n_workers = static_cast<unsigned>(c.lcores.workers.size());
  workers.n_rx = table.n_rx_lcores;
  workers.n_workers = n_workers;
  for (unsigned i = 0; i < table.n_rx_lcores; ++i) workers.rx_exited[i] = &lcores[i].exited;
  workers.abort = &abort_flush;
  workers.debug_stall_ms = config.workers.debug_stall_ms;
  if (n_workers == 0) return true;
  if (n_workers > kMaxWorkers) {
    error = "lcores.workers: at most " + std::to_string(kMaxWorkers) + " worker lcores";
    return false;
  }
  const int socket = static_cast<int>(rte_socket_id());
  const bool in_process = PoolMemory::wanted(c);
  auto fail = [&](const std::string& key, const std::string& what) {
    error = key + ": cannot create " + what + ": " + rte_strerror(rte_errno) + (in_process ? " (lower it)" : " (lower it or raise eal.memory_mb)");
    return false;
  };
  for (unsigned i = 0; i < table.n_rx_lcores; ++i) {
    const std::string name = "sluice_chunks_" + std::to_string(i);
    chunk_pools.push_back(ChunkPool::create(name, c.workers.chunk_pool, socket, error));
    if (!chunk_pools.back()) return false;
    workers.chunks[i] = chunk_pools.back().get();
    for (unsigned j = 0; j < n_workers; ++j) {
      const std::string rn = "sluice_chunk_" + std::to_string(i) + "_" + std::to_string(j);
      workers.chunk_ring[i][j] = rte_ring_create(rn.c_str(), c.workers.chunk_ring_size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
      if (!workers.chunk_ring[i][j]) return fail("workers.chunk_ring_size", "ring " + rn);
    }
  }
  worker_lcores = static_cast<WorkerLcoreContext*>(
      rte_zmalloc("sluice_workers", sizeof(WorkerLcoreContext) * n_workers, RTE_CACHE_LINE_SIZE));
  if (!worker_lcores) {
    error = "cannot allocate worker lcore contexts";
    return false;
  }
  for (unsigned j = 0; j < n_workers; ++j) {
    WorkerLcoreContext& w = *new (&worker_lcores[j]) WorkerLcoreContext;
    w.backoff.configure_paced(c.lcores.idle_sleep_us);
    const std::string name = "sluice_results_" + std::to_string(j);
    workers.results[j] = create_pool(name, c.workers.result_pool, sizeof(pipeline::WorkResult),
                                     std::min(64u, c.workers.result_pool / 8), socket,
                                     in_process ? &result_memory[j] : nullptr, true);
    if (!workers.results[j]) return fail("workers.result_pool", "a pool of " + std::to_string(c.workers.result_pool) + " results");
    for (unsigned i = 0; i < table.n_rx_lcores; ++i) {
      const std::string rn = "sluice_result_" + std::to_string(j) + "_" + std::to_string(i);
      workers.result_ring[j][i] = rte_ring_create(rn.c_str(), c.workers.result_ring_size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
      if (!workers.result_ring[j][i]) return fail("workers.result_ring_size", "ring " + rn);
    }
    pipeline::SampleBlocks* samples = nullptr;
    if (c.workers.sample_blocks) {
      auto pool = MempoolSampleBlocks::create("sluice_samples_" + std::to_string(j), c.workers.sample_blocks, socket,
                                              in_process, error);
      if (!pool) return false;
      samples = pool.get();
      sample_pools.push_back(std::move(pool));
    }
    attachment_workers.push_back(std::make_unique<pipeline::AttachmentWorker>(c.workers.limits, samples));
    w.lcore_id = c.lcores.workers[j];
    w.index = j;
    w.table = &workers;
    w.worker = attachment_workers.back().get();
    if (!rte_lcore_is_enabled(w.lcore_id)) {
      error = "lcores.workers: lcore " + std::to_string(w.lcore_id) + " is not enabled in the EAL";
      return false;
    }
  }
  return true;
}

}  // namespace sluice::dataplane
