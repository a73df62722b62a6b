// For the stores' crash tests: work done in a forked child that is killed -9 at a random moment.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <thread>

namespace sluice::control::testing {

// In a child: `open()` gives the step to run (after opening what the child writes to; an empty
// function: the child fails), then step(1), step(2), ... each reported to the parent once it
// returned true. The child is killed -9 after 30 to 130 ms; returns the last step reported (what
// the test may require to have survived).
inline uint32_t kill_midway(std::mt19937& rng, const std::function<std::function<bool(uint32_t)>()>& open) {
  int fds[2];
  if (pipe(fds) != 0) {
    ADD_FAILURE() << "pipe";
    return 0;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const auto step = open();
    if (!step) _exit(3);
    for (uint32_t i = 1;; ++i) {
      if (!step(i)) _exit(4);
      if (write(fds[1], &i, sizeof i) != sizeof i) _exit(5);
    }
  }
  close(fds[1]);
  std::this_thread::sleep_for(std::chrono::milliseconds(30 + rng() % 100));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status)) << "the child ended by itself: " << status;
  uint32_t acked = 0, n;
  while (read(fds[0], &n, sizeof n) == sizeof n) acked = n;
  close(fds[0]);
  return acked;
}

}  // namespace sluice::control::testing
