// ChunkPool (dataplane/chunk_pool.h): every chunk handed out once, last freed first taken, pages
// resident only once used, chunks given back from another thread while the owner takes them.
#include "dataplane/chunk_pool.h"

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <thread>
#include <vector>

namespace sluice::dataplane {
namespace {

// rte_stack needs the EAL's memory: an in-memory EAL without hugepages, once per test process.
bool eal_up() {
  static const bool up = [] {
    const char* args[] = {"chunk_pool_test", "--no-huge", "-m", "64", "--no-pci", "--no-shconf", "--no-telemetry",
                          "-l", "0", "--log-level=error"};
    return rte_eal_init(static_cast<int>(std::size(args)), const_cast<char**>(args)) >= 0;
  }();
  return up;
}

std::unique_ptr<ChunkPool> make(const char* name, unsigned n) {
  std::string error;
  auto p = ChunkPool::create(name, n, static_cast<int>(rte_socket_id()), error);
  EXPECT_TRUE(p) << error;
  return p;
}

// Pages of [p, p + len) in memory now.
unsigned resident(const void* p, std::size_t len) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> v((len + page - 1) / page);
  if (mincore(const_cast<void*>(p), len, v.data()) != 0) return ~0u;
  unsigned n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}

TEST(ChunkPool, EveryChunkOnceThenNone) {
  ASSERT_TRUE(eal_up());
  auto pool = make("t_once", 100);
  ASSERT_TRUE(pool);
  std::set<pipeline::WorkChunk*> got;
  for (int i = 0; i < 100; ++i) {
    pipeline::WorkChunk* c = pool->get();
    ASSERT_NE(c, nullptr) << i;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(c) % 4096, 0u) << "one chunk per page";
    EXPECT_TRUE(got.insert(c).second) << "handed out twice";
  }
  EXPECT_EQ(pool->get(), nullptr);
  EXPECT_EQ(pool->available(), 0u);
  std::vector<void*> back(got.begin(), got.end());
  pool->give_back(back.data(), static_cast<unsigned>(back.size()));
  EXPECT_EQ(pool->available(), 100u);
  EXPECT_EQ(pool->capacity(), 100u);
}

TEST(ChunkPool, TheLastFreedIsTakenFirst) {
  ASSERT_TRUE(eal_up());
  auto pool = make("t_lifo", 64);
  ASSERT_TRUE(pool);
  pipeline::WorkChunk* a = pool->get();
  pool->release(a);
  EXPECT_EQ(pool->get(), a) << "the owner's own, from its cache";
  EXPECT_EQ(a, pool->get() - 1) << "the lowest addresses first: the pool walks up from its start";
  pool->release(a + 1);
  std::vector<pipeline::WorkChunk*> all{a};
  while (pipeline::WorkChunk* c = pool->get()) all.push_back(c);
  ASSERT_EQ(all.size(), 64u);
  void* b = all[17];
  pool->give_back(&b, 1);  // from a worker, into the stack
  EXPECT_EQ(pool->get(), all[17]);
  // Given back in a burst of 40 (more than the owner takes at once): the last of them first.
  std::vector<void*> burst(all.begin(), all.begin() + 40);
  pool->give_back(burst.data(), 40);
  EXPECT_EQ(pool->get(), all[39]);
  EXPECT_EQ(pool->get(), all[38]);
  for (int i = 37; i >= 0; --i) EXPECT_EQ(pool->get(), all[i]);
  EXPECT_EQ(pool->get(), nullptr);
  // The owner's cache holds at most 32: releasing 64 spills the coldest half to the stack, and
  // all of them come back.
  for (auto* c : all) pool->release(c);
  EXPECT_EQ(pool->available(), 64u);
  std::set<pipeline::WorkChunk*> again;
  while (pipeline::WorkChunk* c = pool->get()) again.insert(c);
  EXPECT_EQ(again.size(), 64u);
}

// Reserved at start, resident once used: what start-up no longer pays for.
TEST(ChunkPool, OnlyUsedChunksAreResident) {
  ASSERT_TRUE(eal_up());
  auto pool = make("t_lazy", 4096);  // 16 MiB
  ASSERT_TRUE(pool);
  std::vector<pipeline::WorkChunk*> all;
  while (pipeline::WorkChunk* c = pool->get()) all.push_back(c);
  ASSERT_EQ(all.size(), 4096u);
  const pipeline::WorkChunk* base = *std::min_element(all.begin(), all.end());
  const std::size_t len = 4096u * sizeof(pipeline::WorkChunk);
  EXPECT_EQ(resident(base, len), 0u) << "taking a chunk writes nothing in it";
  for (int i = 0; i < 10; ++i) all[i * 7]->data[i * 100] = 1;
  EXPECT_EQ(resident(base, len), 10u);
}

TEST(ChunkPool, GivenBackFromAnotherThreadWhileTheOwnerTakes) {
  ASSERT_TRUE(eal_up());
  constexpr unsigned kChunks = 256;
  auto pool = make("t_mt", kChunks);
  ASSERT_TRUE(pool);
  // The owner passes chunks to a "worker" through a single-slot-per-entry queue; the worker gives
  // them back in bursts of up to 8.
  constexpr unsigned kQueue = 1024;
  std::vector<std::atomic<pipeline::WorkChunk*>> q(kQueue);
  std::atomic<unsigned> head{0};
  std::atomic<bool> done{false};
  std::atomic<unsigned> outstanding{0};
  std::thread worker([&] {
    unsigned tail = 0;
    void* burst[8];
    unsigned n = 0;
    for (;;) {
      pipeline::WorkChunk* c = q[tail % kQueue].exchange(nullptr, std::memory_order_acquire);
      if (c) {
        burst[n++] = c;
        ++tail;
      }
      if (n == 8 || (!c && n)) {
        outstanding.fetch_sub(n, std::memory_order_relaxed);
        pool->give_back(burst, n);
        n = 0;
      }
      if (!c && done.load(std::memory_order_acquire) && tail == head.load(std::memory_order_acquire)) break;
    }
  });
  unsigned sent = 0, refused = 0;
  while (sent < 20000) {
    pipeline::WorkChunk* c = pool->get();
    if (!c) {
      ++refused;
      continue;
    }
    c->data[0] = static_cast<uint8_t>(sent);
    if (sent % 7 == 0) {  // one not sent: back to the owner's cache
      pool->release(c);
      ++sent;
      continue;
    }
    outstanding.fetch_add(1, std::memory_order_relaxed);
    auto& slot = q[head.load(std::memory_order_relaxed) % kQueue];
    while (slot.load(std::memory_order_acquire) != nullptr) std::this_thread::yield();
    slot.store(c, std::memory_order_release);
    head.fetch_add(1, std::memory_order_release);
    ++sent;
  }
  done.store(true, std::memory_order_release);
  worker.join();
  EXPECT_EQ(outstanding.load(), 0u);
  EXPECT_EQ(pool->available(), kChunks) << "every chunk back, none twice (refused " << refused << " times)";
  std::set<pipeline::WorkChunk*> all;
  while (pipeline::WorkChunk* c = pool->get()) EXPECT_TRUE(all.insert(c).second);
  EXPECT_EQ(all.size(), kChunks);
}

}  // namespace
}  // namespace sluice::dataplane
