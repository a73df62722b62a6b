#include "control/cloud/quota.h"

#include <gtest/gtest.h>

using sluice::cloud::Quota;
using namespace std::chrono_literals;

TEST(Quota, OffTakesEverything) {
  Quota q(0);
  EXPECT_FALSE(q.enabled());
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(q.take("a", Quota::Clock::time_point{}), 0u);
  EXPECT_EQ(q.clients(), 0u);
}

TEST(Quota, BurstThenOneEverySixtyOverNSeconds) {
  Quota q(3);
  const auto t0 = Quota::Clock::time_point{} + 1h;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(q.take("a", t0), 0u);
  EXPECT_EQ(q.take("a", t0), 20u);  // a token every 20 s
  EXPECT_EQ(q.take("a", t0 + 5s), 15u);
  EXPECT_EQ(q.take("a", t0 + 19500ms), 1u);  // never 0: rounded up
  EXPECT_EQ(q.take("a", t0 + 20s), 0u);
  EXPECT_EQ(q.take("a", t0 + 20s), 20u);
  // another client is not affected
  EXPECT_EQ(q.take("b", t0 + 20s), 0u);
  // a long pause refills to the burst, not beyond
  for (int i = 0; i < 3; ++i) EXPECT_EQ(q.take("a", t0 + 1h), 0u);
  EXPECT_GT(q.take("a", t0 + 1h), 0u);
}

TEST(Quota, ClientTableIsBounded) {
  Quota q(10, 4);
  const auto t0 = Quota::Clock::time_point{} + 1h;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(q.take("c" + std::to_string(i), t0), 0u);
  EXPECT_EQ(q.take("new", t0), 60u);  // no room: busy clients are kept
  EXPECT_EQ(q.clients(), 4u);
  // a minute later the four are idle (full again): dropped, room for the newcomer
  EXPECT_EQ(q.take("new", t0 + 2min), 0u);
  EXPECT_EQ(q.clients(), 1u);
}
