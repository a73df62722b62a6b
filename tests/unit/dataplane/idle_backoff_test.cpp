#include "dataplane/idle_backoff.h"

#include <gtest/gtest.h>

#include <vector>

namespace sluice::dataplane {
namespace {

std::vector<uint32_t> waits(IdleBackoff& b, int n) {
  std::vector<uint32_t> v;
  for (int i = 0; i < n; ++i) v.push_back(b.next());
  return v;
}

TEST(IdleBackoff, SpinsForIdlePollsThenSleepsDoublingUpToTheMaximum) {
  IdleBackoff b{};
  b.configure(3, 10);
  EXPECT_EQ(waits(b, 9), (std::vector<uint32_t>{0, 0, 0, 1, 2, 4, 8, 10, 10}));
  EXPECT_EQ(b.sleeps, 6u);
}

TEST(IdleBackoff, WorkStartsTheCountAgain) {
  IdleBackoff b{};
  b.configure(2, 100);
  EXPECT_EQ(waits(b, 4), (std::vector<uint32_t>{0, 0, 1, 2}));
  b.work();
  EXPECT_EQ(waits(b, 4), (std::vector<uint32_t>{0, 0, 1, 2}));
  EXPECT_EQ(b.sleeps, 4u);
}

TEST(IdleBackoff, ZeroSleepAlwaysSpins) {
  IdleBackoff b{};  // as in a zero-initialised context
  EXPECT_EQ(waits(b, 5), (std::vector<uint32_t>{0, 0, 0, 0, 0}));
  b.configure(1, 0);
  EXPECT_EQ(waits(b, 5), (std::vector<uint32_t>{0, 0, 0, 0, 0}));
  EXPECT_EQ(b.sleeps, 0u);
}

// A worker's pace: no spinning; the sleep doubles while it wakes to nothing and halves when it wakes
// to a whole burst, so that it settles on the gap between its bursts.
TEST(IdleBackoff, PacedSleepsAtOnceAndFollowsTheGap) {
  IdleBackoff b{};
  b.configure_paced(64);
  EXPECT_EQ(waits(b, 4), (std::vector<uint32_t>{1, 2, 4, 8}));  // woke to nothing: doubled
  b.worked(5, 32);                                              // a part of a burst: kept
  EXPECT_EQ(waits(b, 1), std::vector<uint32_t>{8});
  b.worked(32, 32);                                             // a whole one: it slept too long
  EXPECT_EQ(waits(b, 1), std::vector<uint32_t>{4});
  b.worked(1, 32);
  b.worked(32, 32);                                             // not after a sleep: kept
  EXPECT_EQ(waits(b, 3), (std::vector<uint32_t>{4, 8, 16}));
  EXPECT_EQ(waits(b, 4), (std::vector<uint32_t>{32, 64, 64, 64}));  // up to the maximum
  for (int i = 0; i < 10; ++i) {
    b.worked(32, 32);
    b.next();
  }
  b.worked(32, 32);
  EXPECT_EQ(waits(b, 1), std::vector<uint32_t>{1}) << "never below 1 us";
  EXPECT_EQ(b.sleeps, 24u);
  b.configure_paced(0);
  EXPECT_EQ(waits(b, 3), (std::vector<uint32_t>{0, 0, 0})) << "idle_sleep_us 0: spins";
}

}  // namespace
}  // namespace sluice::dataplane
