#include "dataplane/chunk_pool.h"

#include <rte_errno.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace sluice::dataplane {

static_assert(sizeof(pipeline::WorkChunk) == 4096, "one chunk per page");

std::unique_ptr<ChunkPool> ChunkPool::create(const std::string& name, unsigned n, int socket, std::string& error) {
  std::unique_ptr<ChunkPool> p(new ChunkPool);
  p->n_ = n;
  p->free_ = rte_stack_create(name.c_str(), n, socket, RTE_STACK_F_LF);
  if (!p->free_) {
    error = "workers.chunk_pool: cannot create the stack of " + std::to_string(n) + " chunks: " + rte_strerror(rte_errno);
    return nullptr;
  }
  const std::size_t len = std::size_t{n} * sizeof(pipeline::WorkChunk);
  try {
    p->region_ = records::ReservedRegion(len);
  } catch (const std::bad_alloc&) {
    error = "workers.chunk_pool: cannot reserve " + std::to_string(len >> 20) + " MiB for " + std::to_string(n) +
            " chunks";
    return nullptr;
  }
  // A chunk's first use faults in one 4 KiB page on the RX lcore, not 2 MiB at once.
  madvise(p->region_.data(), p->region_.size(), MADV_NOHUGEPAGE);
  auto* chunks = static_cast<pipeline::WorkChunk*>(p->region_.data());
  void* batch[kCache];
  // Pushed from the last, so that the first pops give the lowest addresses.
  for (unsigned left = n; left > 0;) {
    const unsigned k = std::min(left, kCache);
    for (unsigned j = 0; j < k; ++j) batch[j] = &chunks[left - 1 - j];
    rte_stack_push(p->free_, batch, k);
    left -= k;
  }
  return p;
}

ChunkPool::~ChunkPool() { rte_stack_free(free_); }

bool ChunkPool::refill() noexcept {
  void** into = reinterpret_cast<void**>(cache_);
  // All or nothing: with fewer than kCache free, one at a time.
  cached_ = rte_stack_pop(free_, into, kCache);
  if (cached_ == 0) cached_ = rte_stack_pop(free_, into, 1);
  std::reverse(cache_, cache_ + cached_);  // get() takes from the end: the stack's top first
  return cached_ != 0;
}

void ChunkPool::spill() noexcept {
  constexpr unsigned half = kCache / 2;
  rte_stack_push(free_, reinterpret_cast<void* const*>(cache_), half);  // the coldest half
  std::memmove(cache_, cache_ + half, (cached_ - half) * sizeof cache_[0]);
  cached_ -= half;
}

void ChunkPool::give_back(void* const* chunks, unsigned n) noexcept {
  while (n) {
    const unsigned k = std::min(n, kCache);
    rte_stack_push(free_, chunks, k);
    chunks += k;
    n -= k;
  }
}

}  // namespace sluice::dataplane
