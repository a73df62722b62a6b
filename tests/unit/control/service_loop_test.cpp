// control/service_loop: timers, signals, the bounded pool and its ordered queue.
#include "control/service_loop.h"

#include <gtest/gtest.h>

#include <csignal>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice::control {
namespace {

TEST(ServiceLoopTest, PeriodicRunsUntilFalseAndStopEndsRun) {
  ServiceLoop loop(1, 8);
  int a = 0, b = 0;
  loop.every(std::chrono::milliseconds(1), [&] { return ++a < 5; });
  loop.every(std::chrono::milliseconds(2), [&] {
    if (++b == 20) loop.stop();
    return true;
  });
  loop.run();
  EXPECT_EQ(a, 5);
  EXPECT_EQ(b, 20);
  EXPECT_TRUE(loop.stopped());
}

TEST(ServiceLoopTest, SignalReachesTheLoop) {
  ServiceLoop loop(1, 8);
  int got = 0;
  loop.on_signals({SIGUSR1}, [&](int sig) {
    got = sig;
    loop.stop();
  });
  loop.post([] { std::raise(SIGUSR1); });
  loop.run();
  EXPECT_EQ(got, SIGUSR1);
}

TEST(ServiceLoopTest, PoolIsBoundedAndOrderedJobsKeepTheirOrder) {
  ServiceLoop loop(2, 4);
  std::mutex m;
  std::vector<int> order;
  std::atomic<bool> release{false};
  // Four jobs fill the pool; the fifth is refused and counted.
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(loop.submit_ordered([&, i] {
      while (!release.load()) std::this_thread::yield();
      std::lock_guard<std::mutex> g(m);
      order.push_back(i);
    }));
  EXPECT_FALSE(loop.submit([] {}));
  EXPECT_EQ(loop.jobs_refused(), 1u);
  release = true;
  loop.drain_pool();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(loop.jobs_run(), 4u);
  EXPECT_TRUE(loop.submit([] {}));  // room again
  loop.drain_pool();
}

TEST(ServiceLoopTest, PostFromAnotherThreadRunsOnTheLoop) {
  ServiceLoop loop(1, 8);
  std::thread::id ran_on;
  std::thread t([&] { loop.post([&] { ran_on = std::this_thread::get_id(); loop.stop(); }); });
  loop.run();
  t.join();
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

}  // namespace
}  // namespace sluice::control
