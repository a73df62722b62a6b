#include "control/service_loop.h"

#include <boost/asio/post.hpp>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace sluice::control {

struct ServiceLoop::Timer {
  explicit Timer(boost::asio::io_context& io) : timer(io) {}
  boost::asio::steady_timer timer;
  std::shared_ptr<Periodic> periodic;
  std::function<bool()> fn;
};

ServiceLoop::ServiceLoop(unsigned threads, std::size_t max_pending)
    : work_(std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
          io_.get_executor())),
      pool_(threads ? threads : 1),
      ordered_(boost::asio::make_strand(pool_.get_executor())),
      max_pending_(max_pending ? max_pending : 1) {}

ServiceLoop::~ServiceLoop() {
  stop();
  pool_.join();
}

std::shared_ptr<ServiceLoop::Periodic> ServiceLoop::every(std::chrono::steady_clock::duration period,
                                                          std::function<bool()> fn) {
  auto t = std::make_shared<Timer>(io_);
  t->periodic = std::make_shared<Periodic>(Periodic{period});
  t->fn = std::move(fn);
  arm(t);
  return t->periodic;
}

void ServiceLoop::arm(const std::shared_ptr<Timer>& t) {
  t->timer.expires_after(t->periodic->period);
  t->timer.async_wait([this, t](const boost::system::error_code& ec) {
    if (ec || io_.stopped()) return;
    if (t->fn()) arm(t);
  });
}

void ServiceLoop::on_signals(std::initializer_list<int> signals, std::function<void(int)> fn) {
  auto set = std::make_unique<boost::asio::signal_set>(io_);
  for (int s : signals) set->add(s);
  wait_signal(set.get(), std::make_shared<std::function<void(int)>>(std::move(fn)));
  signals_.push_back(std::move(set));
}

void ServiceLoop::wait_signal(boost::asio::signal_set* set, std::shared_ptr<std::function<void(int)>> fn) {
  set->async_wait([this, set, fn](const boost::system::error_code& ec, int sig) {
    if (ec) return;  // cancelled: the loop stops
    (*fn)(sig);
    wait_signal(set, fn);
  });
}

void ServiceLoop::post(std::function<void()> fn) { boost::asio::post(io_, std::move(fn)); }

bool ServiceLoop::submit(std::function<void()> job) {
  auto ex = pool_.get_executor();
  return enqueue(ex, std::move(job));
}

bool ServiceLoop::submit_ordered(std::function<void()> job) { return enqueue(ordered_, std::move(job)); }

template <typename Executor>
bool ServiceLoop::enqueue(Executor& ex, std::function<void()> job) {
  if (pending_.load() >= max_pending_) {
    ++jobs_refused_;
    return false;
  }
  ++pending_;
  boost::asio::post(ex, [this, job = std::move(job)] {
    job();
    ++jobs_run_;
    --pending_;
  });
  return true;
}

void ServiceLoop::drain_pool() {
  while (pending_.load() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void ServiceLoop::run() {
  if (!io_.stopped()) io_.run();
}

void ServiceLoop::stop() {
  work_.reset();
  for (auto& s : signals_) {
    boost::system::error_code ec;
    s->cancel(ec);
  }
  io_.stop();
}

}  // namespace sluice::control
