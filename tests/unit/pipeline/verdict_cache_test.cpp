// pipeline/verdict_cache: hits and misses, expiry by wall-clock time, updates, eviction of the entry
// that expires first when a bucket is full, and readers on other threads that never see a torn
// entry while the writer rewrites it.
#include "pipeline/verdict_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

namespace sluice::pipeline {
namespace {

using records::FileVerdict;
using records::Reputation;

std::array<uint8_t, 32> sha_of(uint64_t n) {
  std::array<uint8_t, 32> s{};
  std::mt19937_64 rng(n);
  for (auto& b : s) b = static_cast<uint8_t>(rng());
  return s;
}

FileVerdict verdict(Reputation r, const char* threat = "", int16_t score = -1) {
  FileVerdict v;
  v.reputation = r;
  v.threat_name.set(threat);
  v.threat_score = score;
  v.upload_wanted = r == Reputation::unknown;
  return v;
}

TEST(VerdictCache, HitsMissesAndExpiry) {
  VerdictCache c(64);
  const auto a = sha_of(1), b = sha_of(2);
  FileVerdict out;
  EXPECT_FALSE(c.lookup(a.data(), 1000, out));
  EXPECT_EQ(c.put(a.data(), verdict(Reputation::malicious, "Win.Test", 90), 5000, 1000), VerdictCache::Put::inserted);
  ASSERT_TRUE(c.lookup(a.data(), 4999, out));
  EXPECT_EQ(out.reputation, Reputation::malicious);
  EXPECT_EQ(out.threat_name.view(), "Win.Test");
  EXPECT_EQ(out.threat_score, 90);
  EXPECT_EQ(out.source, records::kSourceCache);
  EXPECT_FALSE(c.lookup(a.data(), 5000, out)) << "expired at its expiry time";
  EXPECT_FALSE(c.lookup(b.data(), 1000, out));
  EXPECT_EQ(c.put(a.data(), verdict(Reputation::clean), 9000, 1000), VerdictCache::Put::updated);
  ASSERT_TRUE(c.lookup(a.data(), 6000, out));
  EXPECT_EQ(out.reputation, Reputation::clean);
  EXPECT_EQ(out.threat_name.len, 0);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_TRUE(c.erase(a.data()));
  EXPECT_FALSE(c.lookup(a.data(), 6000, out));
  EXPECT_EQ(c.size(), 0u);
}

TEST(VerdictCache, AFullCacheEvictsWhatExpiresFirstAndReusesExpiredSlots) {
  VerdictCache c(8);  // one bucket
  ASSERT_EQ(c.capacity(), 8u);
  for (uint64_t i = 0; i < 8; ++i)
    EXPECT_EQ(c.put(sha_of(i).data(), verdict(Reputation::clean), 10'000 + int64_t(i), 0), VerdictCache::Put::inserted);
  // The ninth takes the slot of the entry expiring first (i = 0).
  EXPECT_EQ(c.put(sha_of(100).data(), verdict(Reputation::unknown), 50'000, 0), VerdictCache::Put::evicted);
  EXPECT_EQ(c.evictions(), 1u);
  FileVerdict out;
  EXPECT_FALSE(c.lookup(sha_of(0).data(), 1, out));
  for (uint64_t i = 1; i < 8; ++i) EXPECT_TRUE(c.lookup(sha_of(i).data(), 1, out)) << i;
  EXPECT_TRUE(c.lookup(sha_of(100).data(), 1, out));
  // Once entries expired, their slots are free again: not an eviction.
  EXPECT_EQ(c.put(sha_of(200).data(), verdict(Reputation::clean), 90'000, 20'000), VerdictCache::Put::inserted);
  EXPECT_EQ(c.evictions(), 1u);
  std::size_t live = 0;
  c.for_each(20'000, [&](const uint8_t*, const FileVerdict&, int64_t) { ++live; });
  EXPECT_EQ(live, 2u);  // 100 and 200
}

// A local override (the management API's): read back as such, never replaced by an answer, never
// evicted; erase() removes it, and a full bucket of overrides takes nothing else.
TEST(VerdictCache, AnOverrideIsKeptUntilErased) {
  VerdictCache c(8);  // one bucket
  FileVerdict block = verdict(Reputation::malicious, "blocked by a local override");
  block.source = records::kSourceOverride;
  EXPECT_EQ(c.put(sha_of(1).data(), block, INT64_MAX, 0), VerdictCache::Put::inserted);
  FileVerdict out;
  ASSERT_TRUE(c.lookup(sha_of(1).data(), 1'000'000, out));
  EXPECT_EQ(out.source, records::kSourceOverride);
  EXPECT_EQ(out.reputation, Reputation::malicious);
  EXPECT_EQ(c.put(sha_of(1).data(), verdict(Reputation::clean), 10'000, 0), VerdictCache::Put::kept);
  ASSERT_TRUE(c.lookup(sha_of(1).data(), 1, out));
  EXPECT_EQ(out.source, records::kSourceOverride);
  EXPECT_EQ(out.reputation, Reputation::malicious);
  FileVerdict allow = verdict(Reputation::clean);
  allow.source = records::kSourceOverride;
  EXPECT_EQ(c.put(sha_of(1).data(), allow, INT64_MAX, 0), VerdictCache::Put::updated);  // an override replaces one
  ASSERT_TRUE(c.lookup(sha_of(1).data(), 1, out));
  EXPECT_EQ(out.reputation, Reputation::clean);
  // Seven ordinary entries fill the bucket; the next evicts one of them, never the override.
  for (uint64_t i = 2; i < 9; ++i) c.put(sha_of(i).data(), verdict(Reputation::clean), 10'000 + int64_t(i), 0);
  EXPECT_EQ(c.put(sha_of(100).data(), verdict(Reputation::unknown), 50'000, 0), VerdictCache::Put::evicted);
  EXPECT_TRUE(c.lookup(sha_of(1).data(), 1, out));
  EXPECT_FALSE(c.lookup(sha_of(2).data(), 1, out));
  EXPECT_TRUE(c.erase(sha_of(1).data()));
  EXPECT_FALSE(c.lookup(sha_of(1).data(), 1, out));
  // A bucket of overrides only: an ordinary entry is not cached.
  VerdictCache d(8);
  for (uint64_t i = 0; i < 8; ++i) EXPECT_EQ(d.put(sha_of(i).data(), block, INT64_MAX, 0), VerdictCache::Put::inserted);
  EXPECT_EQ(d.put(sha_of(100).data(), verdict(Reputation::clean), 10'000, 0), VerdictCache::Put::kept);
  EXPECT_FALSE(d.lookup(sha_of(100).data(), 1, out));
  for (uint64_t i = 0; i < 8; ++i) EXPECT_TRUE(d.lookup(sha_of(i).data(), 1, out)) << i;
}

TEST(VerdictCache, ReadersNeverSeeATornEntry) {
  // The writer keeps rewriting a few entries with verdicts whose fields agree with each other
  // (threat name "T<score>", score, reputation from the score); readers on two threads check that
  // every hit is one of them, never a mix.
  VerdictCache c(1024);
  constexpr int kKeys = 16;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> hits{0}, torn{0};
  auto reader = [&] {
    FileVerdict out;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int k = 0; k < kKeys; ++k) {
        if (!c.lookup(sha_of(k).data(), 0, out)) continue;
        hits.fetch_add(1, std::memory_order_relaxed);
        const std::string expect = "T" + std::to_string(out.threat_score);
        const Reputation rep = out.threat_score % 2 ? Reputation::malicious : Reputation::clean;
        if (out.threat_name.view() != expect || out.reputation != rep) torn.fetch_add(1);
      }
    }
  };
  std::thread r1(reader), r2(reader);
  for (int round = 0; round < 20000; ++round)
    for (int k = 0; k < kKeys; ++k) {
      const int16_t score = static_cast<int16_t>((round + k) % 100);
      c.put(sha_of(k).data(), verdict(score % 2 ? Reputation::malicious : Reputation::clean,
                                      ("T" + std::to_string(score)).c_str(), score),
            INT64_MAX, 0);
    }
  stop = true;
  r1.join();
  r2.join();
  EXPECT_GT(hits.load(), 0u);
  EXPECT_EQ(torn.load(), 0u);
}

}  // namespace
}  // namespace sluice::pipeline
