// Internal to dataplane/: RX lcore i's attachment chunks (pipeline::WorkChunk, 4 KiB each), the
// pool `workers.chunk_pool` sizes (issue 18). A DPDK mempool writes every object's header when it
// is populated, so its 8,191 default chunks (33 MiB) were all resident from the start and cost a
// start with a worker lcore 10-150 ms of page zeroing on the lab VM (more when the host must back
// the pages first). Here the chunks are one anonymous mapping, reserved at start and faulted in the
// first time each is used (the way session slots are, records/reserved_region.h), one per 4 KiB
// page; the free ones are a lock-free stack of their addresses (rte_stack, multi-producer and
// multi-consumer), whose 128 KiB are the only memory written at start. Last in, first out: the
// chunk freed last, still warm in a cache, is taken next, and a light load keeps touching the same
// few pages instead of walking the whole pool.
//
// Who calls what: the owning RX lcore get()s and release()s through a cache of its own (32 at a
// time from or to the stack, so the shared head is touched once per 32 chunks); a worker lcore
// give_back()s the chunks it has read, in bursts. Chunks are never DMA'd: process memory is right
// with hugepages and physical ports too.
#pragma once

#include <rte_stack.h>

#include <cstddef>
#include <memory>
#include <string>

#include "pipeline/handoff.h"
#include "records/reserved_region.h"

namespace sluice::dataplane {

class ChunkPool {
 public:
  // `n` chunks; nullptr with `error` set (the key, what failed) when the stack or the mapping
  // cannot be made.
  static std::unique_ptr<ChunkPool> create(const std::string& name, unsigned n, int socket, std::string& error);
  ~ChunkPool();
  ChunkPool(const ChunkPool&) = delete;
  ChunkPool& operator=(const ChunkPool&) = delete;

  // The owning RX lcore: a free chunk, or nullptr when every chunk is in use.
  pipeline::WorkChunk* get() noexcept {
    if (cached_ == 0 && !refill()) return nullptr;
    return cache_[--cached_];
  }
  // The owning RX lcore: a chunk it took and did not send.
  void release(pipeline::WorkChunk* c) noexcept {
    if (cached_ == kCache) spill();
    cache_[cached_++] = c;
  }
  // A worker lcore: chunks it has read (any number; from any thread but the owner).
  void give_back(void* const* chunks, unsigned n) noexcept;

  // Free chunks: in the stack and in the owner's cache (read by the owner, or once the lcores stopped).
  unsigned available() const noexcept { return rte_stack_count(free_) + cached_; }
  unsigned capacity() const noexcept { return n_; }

 private:
  static constexpr unsigned kCache = 32;
  ChunkPool() = default;
  bool refill() noexcept;
  void spill() noexcept;

  rte_stack* free_ = nullptr;  // read by every lcore, written by none
  records::ReservedRegion region_;  // the chunks
  unsigned n_ = 0;
  alignas(64) unsigned cached_ = 0;  // the owner's alone, on lines of their own
  pipeline::WorkChunk* cache_[kCache] = {};
};

}  // namespace sluice::dataplane
