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

}  // namespace
}  // namespace sluice::dataplane
