// control/reputation_service: requests from the lanes are answered from the cache when they can
// be, coalesced by hash, batched (by size and by wait), answered with the endpoint's verdict (and
// cached with the right TTL), or with the batch's error; a look-up whose budget runs out is
// `budget_exhausted`; too many distinct hashes are `queue_full`; a full answer ring keeps answers in
// order. The endpoint client is replaced by a function that records batches and answers when the
// test says (the real client is tested against sluice-cloud in reputation_client_test.cpp and the
// whole path in tests/integration/reputation_test.py).
#include "control/reputation_service.h"

#include <gtest/gtest.h>

#include <cstring>

namespace sluice::control {
namespace {

using records::LookupError;
using records::Reputation;
using Clock = std::chrono::steady_clock;

Sha256 sha(uint8_t n) {
  Sha256 s{};
  s[0] = n;
  s[31] = 0xaa;
  return s;
}

struct Batch {
  std::vector<Sha256> hashes;
  Clock::time_point deadline;
  std::function<void(BatchOutcome)> done;
};

struct Rig {
  pipeline::VerdictCache cache{1024};
  pipeline::LookupLane lane0{64, 64}, lane1{64, 4};
  std::vector<Batch> batches;
  int64_t wall = 1'000'000;
  ReputationLimits limits;
  std::unique_ptr<ReputationService> service;
  Clock::time_point t0 = Clock::now();

  explicit Rig(ReputationLimits l = {}) : limits(l) {
    service = std::make_unique<ReputationService>(
        cache, std::vector<pipeline::LookupLane*>{&lane0, &lane1},
        [this](std::vector<Sha256> h, Clock::time_point d, std::function<void(BatchOutcome)> done) {
          batches.push_back({std::move(h), d, std::move(done)});
        },
        limits, [this] { return wall; });
  }
  void ask(pipeline::LookupLane& lane, uint64_t ticket, uint32_t item, const Sha256& s) {
    records::LookupRequest rq{};
    rq.ticket = ticket;
    rq.item = item;
    std::memcpy(rq.sha256, s.data(), 32);
    ASSERT_TRUE(lane.ask(rq));
  }
  void poll(int ms) { service->poll(t0 + std::chrono::milliseconds(ms)); }
  std::vector<records::LookupAnswer> answers(pipeline::LookupLane& lane) {
    struct Collect final : pipeline::AnswerHandler {
      std::vector<records::LookupAnswer> v;
      void on_answer(const records::LookupAnswer& a) noexcept override { v.push_back(a); }
    } c;
    lane.poll(c, 1000);
    return c.v;
  }
};

BatchOutcome ok(int endpoint, std::vector<HashAnswer> answers) {
  BatchOutcome o;
  o.endpoint = endpoint;
  o.answers = std::move(answers);
  return o;
}

TEST(ReputationService, BatchesByHashAcrossLanesAnswersEveryWaiterAndCaches) {
  ReputationLimits l;
  l.batch_size = 3;
  l.batch_wait_ms = 5;
  l.ttl_malicious_s = 3600;
  Rig r(l);
  r.ask(r.lane0, 1, 0, sha(1));
  r.ask(r.lane0, 1, 1, sha(2));
  r.ask(r.lane1, 9, 0, sha(1));  // the same hash from another lcore: coalesced
  r.poll(0);
  EXPECT_TRUE(r.batches.empty()) << "two distinct hashes: waits for the batch to fill or age";
  r.poll(6);
  ASSERT_EQ(r.batches.size(), 1u);
  EXPECT_EQ(r.batches[0].hashes, (std::vector<Sha256>{sha(1), sha(2)}));
  EXPECT_EQ(r.batches[0].deadline, r.t0 + std::chrono::milliseconds(l.budget_ms));
  EXPECT_EQ(r.service->stats().coalesced, 1u);
  r.batches[0].done(ok(1, {{Reputation::malicious, "Win.Test", 88, 600, false}, {Reputation::unknown, "", -1, 0, true}}));
  auto a0 = r.answers(r.lane0), a1 = r.answers(r.lane1);
  ASSERT_EQ(a0.size(), 2u);
  ASSERT_EQ(a1.size(), 1u);
  EXPECT_EQ(a0[0].ticket, 1u);
  EXPECT_EQ(a0[0].item, 0u);
  EXPECT_EQ(a0[0].verdict.reputation, Reputation::malicious);
  EXPECT_EQ(a0[0].verdict.threat_name.view(), "Win.Test");
  EXPECT_EQ(a0[0].verdict.threat_score, 88);
  EXPECT_EQ(a0[0].verdict.source, records::kSourceEndpoint0 + 1);
  EXPECT_EQ(a0[1].verdict.reputation, Reputation::unknown);
  EXPECT_TRUE(a0[1].verdict.upload_wanted);
  EXPECT_EQ(a1[0].ticket, 9u);
  EXPECT_EQ(a1[0].verdict.reputation, Reputation::malicious);
  // Cached with the shorter of the configured TTL and the endpoint's (600 s).
  records::FileVerdict v;
  ASSERT_TRUE(r.cache.lookup(sha(1).data(), r.wall + 599'000, v));
  EXPECT_FALSE(r.cache.lookup(sha(1).data(), r.wall + 600'000, v));
  ASSERT_TRUE(r.cache.lookup(sha(2).data(), r.wall + 1000, v));  // unknown: the configured 1 h
  EXPECT_TRUE(r.service->idle());
  // A later request for a cached hash is answered at once, from the cache.
  r.ask(r.lane0, 2, 0, sha(1));
  r.poll(10);
  auto again = r.answers(r.lane0);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].verdict.source, records::kSourceCache);
  EXPECT_EQ(r.batches.size(), 1u);
}

TEST(ReputationService, AFullBatchLeavesAtOnceAndInFlightIsBounded) {
  ReputationLimits l;
  l.batch_size = 2;
  l.batch_wait_ms = 1000;
  l.max_in_flight = 1;
  Rig r(l);
  for (uint8_t i = 0; i < 5; ++i) r.ask(r.lane0, 1, i, sha(i));
  r.poll(0);
  ASSERT_EQ(r.batches.size(), 1u) << "one in flight at most";
  EXPECT_EQ(r.batches[0].hashes.size(), 2u);
  r.batches[0].done(ok(0, {{Reputation::clean}, {Reputation::clean}}));
  r.poll(1);
  ASSERT_EQ(r.batches.size(), 2u);
  EXPECT_EQ(r.batches[1].hashes, (std::vector<Sha256>{sha(2), sha(3)}));
}

TEST(ReputationService, ErrorsAnswerEveryWaiterAndAreNotCached) {
  Rig r;
  r.ask(r.lane0, 1, 0, sha(1));
  r.ask(r.lane0, 2, 0, sha(1));
  r.poll(0);
  r.poll(10);
  ASSERT_EQ(r.batches.size(), 1u);
  BatchOutcome failed;
  failed.error = LookupError::rate_limited;
  r.batches[0].done(failed);
  auto a = r.answers(r.lane0);
  ASSERT_EQ(a.size(), 2u);
  for (const auto& x : a) {
    EXPECT_EQ(x.verdict.error, LookupError::rate_limited);
    EXPECT_EQ(x.verdict.reputation, Reputation::none);
  }
  records::FileVerdict v;
  EXPECT_FALSE(r.cache.lookup(sha(1).data(), r.wall, v));
  EXPECT_EQ(r.service->stats().errors[static_cast<unsigned>(LookupError::rate_limited)], 2u);
  // An answer of the wrong length is a service failure, never a guess.
  r.ask(r.lane0, 3, 0, sha(5));
  r.poll(20);
  r.poll(30);
  ASSERT_EQ(r.batches.size(), 2u);
  r.batches[1].done(ok(0, {}));
  a = r.answers(r.lane0);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].verdict.error, LookupError::service_unavailable);
}

TEST(ReputationService, TheBudgetExpiresWaitersAndALateAnswerStillFillsTheCache) {
  ReputationLimits l;
  l.budget_ms = 100;
  Rig r(l);
  r.ask(r.lane0, 1, 0, sha(1));
  r.poll(0);
  r.poll(10);
  ASSERT_EQ(r.batches.size(), 1u);
  r.poll(100);
  auto a = r.answers(r.lane0);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].verdict.error, LookupError::budget_exhausted);
  EXPECT_FALSE(r.service->idle()) << "the batch is still in flight";
  r.batches[0].done(ok(0, {{Reputation::malicious}}));
  EXPECT_TRUE(r.answers(r.lane0).empty()) << "nobody waits any more";
  records::FileVerdict v;
  EXPECT_TRUE(r.cache.lookup(sha(1).data(), r.wall, v));
  EXPECT_TRUE(r.service->idle());
  // A hash whose only waiter expires before its batch leaves is never sent.
  ReputationLimits slow;
  slow.budget_ms = 10;
  slow.batch_wait_ms = 50;
  Rig s(slow);
  s.ask(s.lane0, 1, 0, sha(7));
  s.poll(0);
  s.poll(20);
  s.poll(60);
  EXPECT_TRUE(s.batches.empty());
  EXPECT_EQ(s.answers(s.lane0).size(), 1u);
}

TEST(ReputationService, TooManyPendingHashesAreQueueFull) {
  ReputationLimits l;
  l.max_pending = 2;
  l.batch_wait_ms = 1000;
  l.batch_size = 100;
  Rig r(l);
  for (uint8_t i = 0; i < 3; ++i) r.ask(r.lane0, 1, i, sha(i));
  r.poll(0);
  auto a = r.answers(r.lane0);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].item, 2u);
  EXPECT_EQ(a[0].verdict.error, LookupError::queue_full);
}

TEST(ReputationService, AFullAnswerRingKeepsAnswersInOrder) {
  ReputationLimits l;
  l.batch_wait_ms = 0;
  Rig r(l);  // lane1's answer ring holds 4
  for (uint8_t i = 0; i < 6; ++i) r.ask(r.lane1, 1, i, sha(i));
  r.poll(0);
  ASSERT_EQ(r.batches.size(), 1u);
  r.batches[0].done(ok(0, std::vector<HashAnswer>(6, HashAnswer{Reputation::clean})));
  EXPECT_EQ(r.service->stats().answered, 6u);
  auto first = r.answers(r.lane1);
  ASSERT_EQ(first.size(), 4u);
  r.poll(1);
  auto rest = r.answers(r.lane1);
  ASSERT_EQ(rest.size(), 2u);
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(first[i].item, i);
  EXPECT_EQ(rest[0].item, 4u);
  EXPECT_EQ(rest[1].item, 5u);
  EXPECT_TRUE(r.service->idle());
}

TEST(ReputationService, ACallbackAfterTheServiceIsGoneDoesNothing) {
  Rig r;
  r.ask(r.lane0, 1, 0, sha(1));
  r.poll(0);
  r.poll(10);
  ASSERT_EQ(r.batches.size(), 1u);
  auto done = r.batches[0].done;
  r.service.reset();
  done(ok(0, {{Reputation::clean}}));  // must not touch the freed service
  EXPECT_TRUE(r.answers(r.lane0).empty());
}

}  // namespace
}  // namespace sluice::control
