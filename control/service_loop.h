// The control plane's event loop (DESIGN.md section 3): one thread (sluiced's main thread) runs a
// Boost.Asio io_context that hosts timers, signals, the lcore channels and the event writer, and
// later the endpoint clients and the management server. Nothing that runs on it may block: disk
// writes and other slow work go to a bounded pool (`submit`), whose results come back to the loop
// with `post`.
//
// Bounds: the pool has `threads` threads and accepts at most `max_pending` jobs queued or running;
// beyond, submit() refuses the job (counted in `jobs_refused`): the caller decides what that
// means (an event counted as lost, a request answered "busy"), memory never grows without bound.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace sluice::control {

class ServiceLoop {
 public:
  explicit ServiceLoop(unsigned threads = 2, std::size_t max_pending = 1024);
  ~ServiceLoop();
  ServiceLoop(const ServiceLoop&) = delete;
  ServiceLoop& operator=(const ServiceLoop&) = delete;

  boost::asio::io_context& io() noexcept { return io_; }

  // Calls fn on the loop every `period` (the first call after one period) until it returns false
  // or the loop stops. The period may be changed later through the returned handle.
  struct Periodic {
    std::chrono::steady_clock::duration period;
  };
  std::shared_ptr<Periodic> every(std::chrono::steady_clock::duration period, std::function<bool()> fn);
  // Calls fn on the loop when one of `signals` arrives (SIGINT, SIGTERM, SIGHUP...), every time.
  void on_signals(std::initializer_list<int> signals, std::function<void(int)> fn);
  // Runs fn on the loop thread (from any thread).
  void post(std::function<void()> fn);
  // Runs job on the pool; false (and counted) when max_pending jobs are already there.
  bool submit(std::function<void()> job);
  // Same, but jobs submitted this way run one at a time in submission order (the event writer).
  bool submit_ordered(std::function<void()> job);
  // Waits until the pool has no job left (shutdown: the last writes are done).
  void drain_pool();

  // Runs until stop(); returns at once if stop() was called before.
  void run();
  void stop();
  bool stopped() const noexcept { return io_.stopped(); }

  uint64_t jobs_run() const noexcept { return jobs_run_.load(); }
  uint64_t jobs_refused() const noexcept { return jobs_refused_; }
  std::size_t jobs_pending() const noexcept { return pending_.load(); }

 private:
  struct Timer;
  void arm(const std::shared_ptr<Timer>& t);
  void wait_signal(boost::asio::signal_set* set, std::shared_ptr<std::function<void(int)>> fn);
  template <typename Executor>
  bool enqueue(Executor& ex, std::function<void()> job);

  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  boost::asio::thread_pool pool_;
  boost::asio::strand<boost::asio::thread_pool::executor_type> ordered_;
  const std::size_t max_pending_;
  std::atomic<std::size_t> pending_{0};
  std::atomic<uint64_t> jobs_run_{0};
  uint64_t jobs_refused_ = 0;
  std::vector<std::unique_ptr<boost::asio::signal_set>> signals_;
};

}  // namespace sluice::control
