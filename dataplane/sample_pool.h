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

#include "pipeline/sample.h"

namespace sluice::dataplane {

class MempoolSampleBlocks final : public pipeline::SampleBlocks {
 public:
  static std::unique_ptr<MempoolSampleBlocks> create(const std::string& name, unsigned blocks, int socket,
                                                     std::string& error) {
    rte_mempool* mp = rte_mempool_create(name.c_str(), blocks, sizeof(pipeline::SampleBlock), 0, 0, nullptr, nullptr,
                                         nullptr, nullptr, socket, 0);
    if (!mp) {
      error = "analysis.sample_memory_mb: cannot create a pool of " + std::to_string(blocks) + " 64 KiB blocks: " +
              rte_strerror(rte_errno) + " (lower it or raise eal.memory_mb)";
      return nullptr;
    }
    return std::unique_ptr<MempoolSampleBlocks>(new MempoolSampleBlocks(mp));
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
  explicit MempoolSampleBlocks(rte_mempool* mp) : mp_(mp) {}
  rte_mempool* mp_;
};

}  // namespace sluice::dataplane
