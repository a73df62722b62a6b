#include "dataplane/hold_queue.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

using namespace sluice::dataplane;

namespace {

// Fake mbufs: the queue never dereferences them.
rte_mbuf* fake(uintptr_t n) { return reinterpret_cast<rte_mbuf*>(n * 64); }

HoldLimits limits(uint32_t max_frames, uint32_t per_message, HoldFallback fallback = HoldFallback::forward,
                  HoldAction on_deadline = HoldAction::forward) {
  return HoldLimits{max_frames, per_message, fallback, on_deadline};
}

std::vector<rte_mbuf*> frames(rte_mbuf** out, std::size_t n) { return {out, out + n}; }

constexpr MessageKey kA{7, 1};
constexpr MessageKey kB{7, 2};  // same flow, next transaction
constexpr MessageKey kC{9, 1};

}  // namespace

TEST(HoldQueue, HoldThenReleaseForwardsInArrivalOrder) {
  HoldQueue q(limits(16, 4));
  EXPECT_TRUE(q.hold(kA, fake(1), 100).held());
  EXPECT_TRUE(q.hold(kA, fake(2), 100).held());
  EXPECT_TRUE(q.hold(kA, fake(3), 100).held());
  EXPECT_EQ(q.frames(kA), 3u);
  EXPECT_EQ(q.counters().in_queue, 3u);

  rte_mbuf* out[8];
  const Released r = q.release(kA, HoldAction::forward, out, 8);
  EXPECT_EQ(r.action, HoldAction::forward);
  EXPECT_EQ(frames(out, r.n), (std::vector<rte_mbuf*>{fake(1), fake(2), fake(3)}));
  EXPECT_EQ(q.frames(kA), 0u);
  EXPECT_EQ(q.counters().held, 3u);
  EXPECT_EQ(q.counters().released, 3u);
  EXPECT_EQ(q.counters().in_queue, 0u);
  EXPECT_EQ(q.release(kA, HoldAction::forward, out, 8).n, 0u);  // each frame comes out once
}

TEST(HoldQueue, ReleaseWithDrop) {
  HoldQueue q(limits(16, 4));
  q.hold(kA, fake(1), 100);
  rte_mbuf* out[4];
  const Released r = q.release(kA, HoldAction::drop, out, 4);
  EXPECT_EQ(r.action, HoldAction::drop);
  EXPECT_EQ(frames(out, r.n), (std::vector<rte_mbuf*>{fake(1)}));
}

TEST(HoldQueue, ReleaseHandsBackWhatFitsAndKeepsTheRest) {
  HoldQueue q(limits(16, 4));
  for (uintptr_t i = 1; i <= 3; ++i) q.hold(kA, fake(i), 100);
  rte_mbuf* out[2];
  EXPECT_EQ(frames(out, q.release(kA, HoldAction::forward, out, 2).n), (std::vector<rte_mbuf*>{fake(1), fake(2)}));
  EXPECT_EQ(q.frames(kA), 1u);
  EXPECT_EQ(frames(out, q.release(kA, HoldAction::forward, out, 2).n), (std::vector<rte_mbuf*>{fake(3)}));
  EXPECT_EQ(q.counters().in_queue, 0u);
}

TEST(HoldQueue, TwoMessagesInterleaved) {
  HoldQueue q(limits(16, 4));
  q.hold(kA, fake(1), 100);
  q.hold(kB, fake(2), 100);
  q.hold(kA, fake(3), 101);
  q.hold(kC, fake(4), 101);
  q.hold(kB, fake(5), 102);
  rte_mbuf* out[8];
  EXPECT_EQ(frames(out, q.release(kB, HoldAction::drop, out, 8).n), (std::vector<rte_mbuf*>{fake(2), fake(5)}));
  EXPECT_EQ(q.frames(kA), 2u);
  EXPECT_EQ(q.frames(kC), 1u);
  EXPECT_EQ(frames(out, q.release(kA, HoldAction::forward, out, 8).n), (std::vector<rte_mbuf*>{fake(1), fake(3)}));
  EXPECT_EQ(frames(out, q.release(kC, HoldAction::forward, out, 8).n), (std::vector<rte_mbuf*>{fake(4)}));
  EXPECT_EQ(q.counters().in_queue, 0u);
}

TEST(HoldQueue, ExpireReturnsExactlyTheOverdueWithTheDefaultAction) {
  HoldQueue q(limits(16, 4, HoldFallback::forward, HoldAction::drop));
  q.hold(kA, fake(1), 100);
  q.hold(kB, fake(2), 200);
  q.hold(kA, fake(3), 150);
  q.hold(kC, fake(4), 50);  // an earlier deadline after later ones: still expires first
  EXPECT_EQ(q.next_deadline(), 50);

  rte_mbuf* out[8];
  Released r = q.expire(49, out, 8);
  EXPECT_EQ(r.n, 0u);
  r = q.expire(150, out, 8);  // a deadline equal to now has passed
  EXPECT_EQ(r.action, HoldAction::drop);
  EXPECT_EQ(frames(out, r.n), (std::vector<rte_mbuf*>{fake(4), fake(1), fake(3)}));
  EXPECT_EQ(q.frames(kA), 0u);
  EXPECT_EQ(q.frames(kC), 0u);
  EXPECT_EQ(q.frames(kB), 1u);
  EXPECT_EQ(q.next_deadline(), 200);
  EXPECT_EQ(q.counters().expired, 3u);
  EXPECT_EQ(q.counters().released, 0u);
  EXPECT_EQ(q.counters().in_queue, 1u);

  r = q.expire(1000, out, 8);
  EXPECT_EQ(frames(out, r.n), (std::vector<rte_mbuf*>{fake(2)}));
  EXPECT_EQ(q.next_deadline(), INT64_MAX);
}

TEST(HoldQueue, ExpireStopsAtTheOutputCapacity) {
  HoldQueue q(limits(16, 8));
  for (uintptr_t i = 1; i <= 5; ++i) q.hold(kA, fake(i), 10);
  rte_mbuf* out[2];
  EXPECT_EQ(frames(out, q.expire(10, out, 2).n), (std::vector<rte_mbuf*>{fake(1), fake(2)}));
  EXPECT_EQ(frames(out, q.expire(10, out, 2).n), (std::vector<rte_mbuf*>{fake(3), fake(4)}));
  EXPECT_EQ(frames(out, q.expire(10, out, 2).n), (std::vector<rte_mbuf*>{fake(5)}));
}

TEST(HoldQueue, PerMessageCapReturnsTheFallbackAndCountsIt) {
  HoldQueue q(limits(16, 2, HoldFallback::drop));
  EXPECT_TRUE(q.hold(kA, fake(1), 100).held());
  EXPECT_TRUE(q.hold(kA, fake(2), 100).held());
  const HoldResult r = q.hold(kA, fake(3), 100);
  EXPECT_EQ(r.status, HoldStatus::message_full);
  EXPECT_EQ(r.fallback, HoldFallback::drop);
  EXPECT_EQ(q.counters().cap_reached, 1u);
  EXPECT_EQ(q.frames(kA), 2u);
  EXPECT_TRUE(q.hold(kB, fake(4), 100).held());  // another message still has room
  EXPECT_EQ(q.counters().held, 3u);
}

TEST(HoldQueue, TotalCapReturnsTheFallbackAndCountsIt) {
  HoldQueue q(limits(3, 2, HoldFallback::forward));
  EXPECT_TRUE(q.hold(kA, fake(1), 100).held());
  EXPECT_TRUE(q.hold(kB, fake(2), 100).held());
  EXPECT_TRUE(q.hold(kC, fake(3), 100).held());
  const HoldResult r = q.hold(kA, fake(4), 100);
  EXPECT_EQ(r.status, HoldStatus::queue_full);
  EXPECT_EQ(r.fallback, HoldFallback::forward);
  EXPECT_EQ(q.hold(MessageKey{11, 1}, fake(5), 100).status, HoldStatus::queue_full);
  EXPECT_EQ(q.counters().cap_reached, 2u);
  EXPECT_EQ(q.counters().in_queue, 3u);
  rte_mbuf* out[4];
  EXPECT_EQ(q.release(kB, HoldAction::forward, out, 4).n, 1u);
  EXPECT_TRUE(q.hold(kA, fake(4), 100).held());  // room again
}

TEST(HoldQueue, ReleaseOfAnUnknownKeyReturnsNothing) {
  HoldQueue q(limits(8, 2));
  q.hold(kA, fake(1), 100);
  rte_mbuf* out[4] = {};
  const Released r = q.release(kB, HoldAction::forward, out, 4);
  EXPECT_EQ(r.n, 0u);
  EXPECT_EQ(out[0], nullptr);
  EXPECT_EQ(q.release(MessageKey{8, 1}, HoldAction::drop, out, 4).n, 0u);
  EXPECT_EQ(q.counters().released, 0u);
  EXPECT_EQ(q.frames(kA), 1u);
}

TEST(HoldQueue, ReleaseAllAtShutdown) {
  HoldQueue q(limits(16, 4));
  q.hold(kA, fake(1), 300);
  q.hold(kB, fake(2), 100);
  q.hold(kA, fake(3), 300);
  q.hold(kC, fake(4), 200);
  rte_mbuf* out[3];
  std::vector<rte_mbuf*> all;
  for (;;) {
    const Released r = q.release_all(HoldAction::drop, out, 3);
    if (r.n == 0) break;
    EXPECT_EQ(r.action, HoldAction::drop);
    all.insert(all.end(), out, out + r.n);
  }
  EXPECT_EQ(all, (std::vector<rte_mbuf*>{fake(2), fake(4), fake(1), fake(3)}));
  EXPECT_EQ(q.counters().in_queue, 0u);
  EXPECT_EQ(q.counters().released, 4u);
  EXPECT_EQ(q.frames(kA), 0u);
  EXPECT_EQ(q.next_deadline(), INT64_MAX);
}

TEST(HoldQueue, SlotsReusedWithoutGrowth) {
  // Capacity 8: 10^5 hold/release rounds over changing keys only work if frame nodes, message
  // records and key-table slots all come back (there is no other memory to take them from).
  HoldQueue q(limits(8, 3));
  rte_mbuf* out[8];
  uint64_t expected_out = 0;
  for (uint32_t i = 0; i < 100000; ++i) {
    const MessageKey a{i, i % 5}, b{i + 1000000, 0};
    ASSERT_TRUE(q.hold(a, fake(3 * i + 1), i).held());
    ASSERT_TRUE(q.hold(b, fake(3 * i + 2), i).held());
    ASSERT_TRUE(q.hold(a, fake(3 * i + 3), i).held());
    const Released ra = q.release(a, HoldAction::forward, out, 8);
    ASSERT_EQ(frames(out, ra.n), (std::vector<rte_mbuf*>{fake(3 * i + 1), fake(3 * i + 3)}));
    // b stays held for a while so the table always has a few live keys around the probe runs.
    if (i % 3 == 2) {
      std::size_t n = 0;
      for (Released r; (r = q.expire(i, out, 8)).n != 0;) n += r.n;
      expected_out += n;
    }
    ASSERT_LE(q.counters().in_queue, 3u);
  }
  EXPECT_EQ(q.counters().held, 300000u);
  EXPECT_EQ(q.counters().released + q.counters().expired + q.counters().in_queue, 300000u);
  EXPECT_EQ(q.counters().expired, expected_out);
  EXPECT_EQ(q.counters().cap_reached, 0u);
}

TEST(HoldQueue, ManyKeysCollidingInTheTableStayReachable) {
  // Fill to capacity with one frame per key, release every other key, check the rest, refill.
  HoldQueue q(limits(64, 1));
  for (uint32_t i = 0; i < 64; ++i) ASSERT_TRUE(q.hold(MessageKey{i, 0}, fake(i + 1), 0).held());
  rte_mbuf* out[1];
  for (uint32_t i = 0; i < 64; i += 2) ASSERT_EQ(q.release(MessageKey{i, 0}, HoldAction::drop, out, 1).n, 1u);
  for (uint32_t i = 0; i < 64; ++i) ASSERT_EQ(q.frames(MessageKey{i, 0}), i % 2) << i;
  for (uint32_t i = 0; i < 64; i += 2) ASSERT_TRUE(q.hold(MessageKey{i + 64, 0}, fake(i + 100), 0).held());
  for (uint32_t i = 1; i < 64; i += 2) {
    ASSERT_EQ(q.release(MessageKey{i, 0}, HoldAction::drop, out, 1).n, 1u);
    ASSERT_EQ(out[0], fake(i + 1));
  }
  for (uint32_t i = 0; i < 64; i += 2) ASSERT_EQ(q.frames(MessageKey{i + 64, 0}), 1u);
  EXPECT_EQ(q.counters().in_queue, 32u);
}

TEST(HoldQueue, InvalidLimitsAreRefusedAtConstruction) {
  EXPECT_THROW(HoldQueue{limits(0, 1)}, std::invalid_argument);
  EXPECT_THROW(HoldQueue{limits(8, 0)}, std::invalid_argument);
}

// settle(): what the RX loop does with a frame once its step met the queue.
TEST(HoldQueue, SettleAppliesEachStep) {
  using sluice::reassembly::FrameStep;
  using sluice::reassembly::NextStep;
  HoldQueue q(limits(2, 1, HoldFallback::forward));
  EXPECT_EQ(q.settle(FrameStep{}, fake(1), 100), Disposition::transmit);
  EXPECT_EQ(q.settle(FrameStep{NextStep::drop, 0, 0}, fake(2), 100), Disposition::free);
  EXPECT_EQ(q.settle(FrameStep{NextStep::hold, kA.transaction, kA.flow_id}, fake(3), 100), Disposition::held);
  EXPECT_EQ(q.frames(kA), 1u);
  // Past the per-message cap the fallback applies: forward here.
  EXPECT_EQ(q.settle(FrameStep{NextStep::hold, kA.transaction, kA.flow_id}, fake(4), 100), Disposition::transmit);
  EXPECT_EQ(q.settle(FrameStep{NextStep::hold, kC.transaction, kC.flow_id}, fake(5), 100), Disposition::held);
  EXPECT_EQ(q.counters().held, 2u);
  EXPECT_EQ(q.counters().cap_reached, 1u);

  HoldQueue d(limits(1, 1, HoldFallback::drop));
  EXPECT_EQ(d.settle(FrameStep{NextStep::hold, kA.transaction, kA.flow_id}, fake(6), 100), Disposition::held);
  EXPECT_EQ(d.settle(FrameStep{NextStep::hold, kB.transaction, kB.flow_id}, fake(7), 100), Disposition::free);  // queue full
  rte_mbuf* out[4];
  EXPECT_EQ(frames(out, d.release(kA, HoldAction::forward, out, 4).n), (std::vector<rte_mbuf*>{fake(6)}));
}
