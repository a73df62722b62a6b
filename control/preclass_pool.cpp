#include "control/preclass_pool.h"

#include <pthread.h>

#include <boost/asio/post.hpp>

#include <chrono>
#include <utility>

namespace sluice::control {

PreclassPool::PreclassPool(const pipeline::Preclassifier& engine, const PreclassPoolLimits& limits)
    : engine_(engine),
      limits_{limits.threads ? limits.threads : 1, limits.max_queued ? limits.max_queued : 1} {}

PreclassPool::~PreclassPool() { stop(); }

void PreclassPool::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (started_ || stopping_) return;
  started_ = true;
  threads_.reserve(limits_.threads);
  for (unsigned i = 0; i < limits_.threads; ++i) threads_.emplace_back([this, i] { run(i); });
}

bool PreclassPool::submit(Bytes bytes, std::string filename, Done done, boost::asio::io_context& io) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      ++stats_.rejected_stopped;
      return false;
    }
    if (queue_.size() >= limits_.max_queued) {
      ++stats_.rejected_full;
      return false;
    }
    ++stats_.submitted;
    queue_.push_back(Job{std::move(bytes), std::move(filename), std::move(done),
                         boost::asio::make_work_guard(io)});
  }
  wake_.notify_one();
  return true;
}

void PreclassPool::run(unsigned index) {
  // The name top -H and /proc show ("preclass-0"...; 15 characters at most).
  const std::string name = "preclass-" + std::to_string(index);
  pthread_setname_np(pthread_self(), name.c_str());
  for (;;) {
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;  // stop() has taken what was queued
    Job job = std::move(queue_.front());
    queue_.pop_front();
    ++stats_.running;
    lock.unlock();

    static const std::vector<uint8_t> kEmpty;
    const std::vector<uint8_t>& data = job.bytes ? *job.bytes : kEmpty;
    const auto t0 = std::chrono::steady_clock::now();
    pipeline::PreclassResult result = engine_.classify(data.data(), data.size(), job.filename);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const std::size_t size = data.size();
    job.bytes.reset();  // the bytes are not needed past the scan: let them go before the callback

    lock.lock();
    --stats_.running;
    ++(result.error.empty() ? stats_.done : stats_.failed);
    stats_.busy_ms += ms;
    stats_.bytes += size;
    lock.unlock();
    deliver(job, std::move(result));
  }
}

void PreclassPool::deliver(Job& job, pipeline::PreclassResult result) {
  boost::asio::post(job.work.get_executor(),
                    [done = std::move(job.done), result = std::move(result)]() mutable { done(std::move(result)); });
  job.work.reset();  // after the post: the io_context never sees a moment without the work
}

void PreclassPool::stop() {
  std::deque<Job> orphans;
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    orphans.swap(queue_);
    stats_.stopped += orphans.size();
    threads.swap(threads_);
  }
  wake_.notify_all();
  for (Job& job : orphans) {
    pipeline::PreclassResult result;
    result.error = kStopped;
    deliver(job, std::move(result));
  }
  for (std::thread& t : threads) t.join();
}

PreclassPoolStats PreclassPool::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  PreclassPoolStats s = stats_;
  s.queued = queue_.size();
  return s;
}

}  // namespace sluice::control
