// The verdict cache as an RX lcore reads it (pipeline/verdict_cache.h): look-ups per second on one
// core, for hits and for misses, with a cache of 262,144 entries (the default) filled to 90%, in a
// random order (every look-up a different bucket, as real attachments are); then the same with a
// writer thread putting entries as fast as it can on the other core (the control plane at its
// worst), to show what the sequence locks cost readers under contention.
//
// Usage: bench_verdict_cache [ROUNDS=5]
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>
#include <atomic>

#include "pipeline/verdict_cache.h"

using namespace sluice;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::array<uint8_t, 32>> hashes(std::size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::array<uint8_t, 32>> v(n);
  for (auto& h : v)
    for (std::size_t i = 0; i < 32; i += 8) {
      const uint64_t x = rng();
      std::memcpy(h.data() + i, &x, 8);
    }
  return v;
}

double rate(const pipeline::VerdictCache& c, const std::vector<std::array<uint8_t, 32>>& keys, std::size_t n,
            uint64_t& found) {
  records::FileVerdict v;
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) found += c.lookup(keys[i % keys.size()].data(), 1, v);
  return n / std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  constexpr std::size_t kCapacity = 262144, kLookups = 20'000'000;
  pipeline::VerdictCache cache(kCapacity);
  const auto present = hashes(kCapacity * 9 / 10, 1), absent = hashes(1 << 20, 2);
  records::FileVerdict v;
  v.reputation = records::Reputation::clean;
  v.threat_name.set("Clean.Test");
  for (const auto& h : present) cache.put(h.data(), v, INT64_MAX, 0);
  std::printf("verdict cache: %zu slots, %zu entries, %lu evictions while filling\n", cache.capacity(), cache.size(),
              static_cast<unsigned long>(cache.evictions()));
  double best_hit = 0, best_miss = 0, best_contended = 0;
  uint64_t found = 0;
  for (int r = 0; r < rounds; ++r) {
    best_hit = std::max(best_hit, rate(cache, present, kLookups, found));
    best_miss = std::max(best_miss, rate(cache, absent, kLookups, found));
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      std::size_t i = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        cache.put(present[i % present.size()].data(), v, INT64_MAX, 0);
        ++i;
      }
    });
    best_contended = std::max(best_contended, rate(cache, present, kLookups, found));
    stop = true;
    writer.join();
  }
  std::printf("hits:   %.1f M look-ups/s per core\n", best_hit / 1e6);
  std::printf("misses: %.1f M look-ups/s per core\n", best_miss / 1e6);
  std::printf("hits, a writer rewriting entries on the other core: %.1f M look-ups/s\n", best_contended / 1e6);
  std::printf("(best of %d rounds of %zu look-ups; %lu found)\n", rounds, kLookups, static_cast<unsigned long>(found));
  return 0;
}
