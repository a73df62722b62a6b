// control/endpoint_health: the latency histogram every request's end feeds.
#include "control/endpoint_health.h"

#include <gtest/gtest.h>

namespace sluice::control {
namespace {

TEST(EndpointHealthLatency, BucketsHoldWhatIsAtMostTheirBound) {
  LatencyHistogram h;
  for (double ms : {0.0, 0.5, 1.0, 1.0001, 2.0, 9.9, 10000.0, 10000.5, 1e9, -3.0}) h.observe(ms);
  // <=1: 0, 0.5, 1, and -3 (taken as 0); <=2: 1.0001, 2; <=10: 9.9; <=10000: 10000; above: 2.
  const std::array<uint64_t, 14> want = {4, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2};
  EXPECT_EQ(h.counts, want);
  EXPECT_EQ(h.count, 10u);
  EXPECT_DOUBLE_EQ(h.sum_ms, 0.5 + 1 + 1.0001 + 2 + 9.9 + 10000 + 10000.5 + 1e9);
}

TEST(EndpointHealthLatency, AnswersFailuresThrottlesAndProbesAreCounted) {
  boost::asio::io_context io;
  int probes = 0;
  auto health = EndpointHealth::create(
      io, {"lab", 1, std::chrono::milliseconds(60000), std::chrono::milliseconds(1)},
      [&](EndpointHealth::ProbeDone done) {
        ++probes;
        done(true, false, 30);
        return true;
      },
      nullptr);
  health->answered(3);
  health->throttled(std::chrono::seconds(0), 700);
  health->failed("refused", false, false, 20000);  // opens the circuit: the probe closes it
  io.run_for(std::chrono::milliseconds(200));
  EXPECT_EQ(probes, 1);
  EXPECT_FALSE(health->circuit_open());
  const LatencyHistogram& h = health->latency();
  EXPECT_EQ(h.count, health->requests());
  EXPECT_EQ(h.count, 4u);
  EXPECT_EQ(h.counts[2], 1u);   // 3 ms: <= 5
  EXPECT_EQ(h.counts[5], 1u);   // 30 ms: <= 50
  EXPECT_EQ(h.counts[9], 1u);   // 700 ms: <= 1000
  EXPECT_EQ(h.counts[13], 1u);  // 20 s: above every bound
  EXPECT_DOUBLE_EQ(h.sum_ms, 3 + 700 + 20000 + 30);
}

}  // namespace
}  // namespace sluice::control
