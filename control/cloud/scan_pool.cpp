#include "control/cloud/scan_pool.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace sluice::cloud {

namespace asio = boost::asio;

struct ScanPool::Entry {
  Job job;
  Done done;
  asio::executor_work_guard<asio::io_context::executor_type> guard;
};

std::optional<std::vector<uint8_t>> read_sample_file(const std::filesystem::path& file, uint64_t max_bytes,
                                                     std::string& error) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot open the sample's file " + file.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  std::optional<std::vector<uint8_t>> out;
  if (::fstat(fd, &st) != 0) {
    error = "cannot read the sample's file " + file.string() + ": " + std::strerror(errno);
  } else if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    error = "the sample's file " + file.string() + " is larger than " + std::to_string(max_bytes) + " bytes";
  } else {
    std::vector<uint8_t> data(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < data.size()) {
      const ssize_t n = ::read(fd, data.data() + got, data.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    if (got != data.size()) {
      error = "cannot read the sample's file " + file.string() + ": short read";
    } else {
      out = std::move(data);
    }
  }
  ::close(fd);
  return out;
}

ScanPool::ScanPool(asio::io_context& io, AnalysisEngine& engine, unsigned threads) : io_(io), engine_(engine) {
  if (threads == 0) threads = 1;
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

ScanPool::~ScanPool() {
  drop();
  join();
}

void ScanPool::submit(Job job, Done done) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(Entry{std::move(job), std::move(done), asio::make_work_guard(io_)});
  }
  cv_.notify_one();
}

void ScanPool::drop() {
  std::deque<Entry> dropped;
  {
    std::lock_guard lock(mutex_);
    dropped.swap(queue_);
  }
  // The work guards go here, outside the lock.
}

void ScanPool::join() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

std::size_t ScanPool::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void ScanPool::work() {
  for (;;) {
    std::optional<Entry> e;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      e.emplace(std::move(queue_.front()));
      queue_.pop_front();
    }
    const auto start = std::chrono::steady_clock::now();
    AnalysisResult result;
    std::string error;
    if (auto bytes = read_sample_file(e->job.file, e->job.max_bytes, error)) {
      try {
        result = engine_.analyse(*bytes, e->job.filename);
      } catch (const std::exception& ex) {
        result = AnalysisResult{};
        result.failed = true;
        result.error = std::string("the engine failed: ") + ex.what();
      }
    } else {
      result.failed = true;
      result.error = error;
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    if (result.report.is_object()) result.report["analysis_ms"] = ms.count();
    asio::post(io_, [done = std::move(e->done), r = std::move(result)]() mutable { done(std::move(r)); });
    // e's work guard ends here, after the post: the loop has the result's handler to run.
  }
}

}  // namespace sluice::cloud
