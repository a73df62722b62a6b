// Internal to dataplane/: the pool a worker keeps sample chains in (pipeline/sample.h), one DPDK
// mempool per worker (or per RX lcore doing the work itself) of `analysis.sample_memory_mb`, so
// that the memory kept for analysis is bounded per worker and in all. Blocks are taken on the worker
// and given back wherever the chain ends (the worker, an RX lcore, the control thread): mempool
// operations are lock-free from any thread. No per-lcore cache, so that the count is exact.
#pragma once

#include <rte_errno.h>
#include <rte_mempool.h>

#include <memory>
#include <string>

#include "dataplane/pool_memory.h"
#include "pipeline/sample.h"

namespace sluice::dataplane {

class MempoolSampleBlocks final : public pipeline::SampleBlocks {
 public:
  // `in_process`: the blocks in process memory (PoolMemory::wanted(), pool_memory.h), 4 KiB pages.
  static std::unique_ptr<MempoolSampleBlocks> create(const std::string& name, unsigned blocks, int socket,
                                                     bool in_process, std::string& error) {
    std::unique_ptr<MempoolSampleBlocks> pool(new MempoolSampleBlocks);
    pool->mp_ = create_pool(name, blocks, sizeof(pipeline::SampleBlock), 0, socket,
                            in_process ? &pool->memory_ : nullptr, false);
    if (!pool->mp_) {
      error = "analysis.sample_memory_mb: cannot create a pool of " + std::to_string(blocks) + " 64 KiB blocks: " +
              rte_strerror(rte_errno) + (in_process ? " (lower it)" : " (lower it or raise eal.memory_mb)");
      return nullptr;
    }
    return pool;
  }
  ~MempoolSampleBlocks() override { rte_mempool_free(mp_); }
  pipeline::SampleBlock* get() noexcept override {
    void* p;
    if (rte_mempool_get(mp_, &p) != 0) return nullptr;
    auto* b = static_cast<pipeline::SampleBlock*>(p);
    b->next = nullptr;
    b->pool = this;
    b->len = 0;
    return b;
  }
  void put(pipeline::SampleBlock* b) noexcept override { rte_mempool_put(mp_, b); }
  unsigned available() const noexcept { return rte_mempool_avail_count(mp_); }

 private:
  MempoolSampleBlocks() = default;
  rte_mempool* mp_ = nullptr;
  PoolMemory memory_;  // after mp_: destroyed after the pool
};

}  // namespace sluice::dataplane
