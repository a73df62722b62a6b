// A small pool of threads that runs the analysis engine off sluice-cloud's HTTP thread. A job
// names a sample's file; a worker reads it (refusing one larger than the job's bound), runs the
// engine and posts the result to the io_context, where `done` runs. Outstanding jobs keep the
// io_context's run() going (a work guard each), so a result is never lost to an idle loop.
//
// The queue is bounded by its callers (analyses.h admits at most its pending-sample bound), so it
// holds names and callbacks, never file bytes: at most `threads` files are in memory at once.
#pragma once

#include <boost/asio/io_context.hpp>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control/cloud/analysis_engine.h"

namespace sluice::cloud {

class ScanPool {
 public:
  struct Job {
    std::filesystem::path file;
    std::string filename;  // the name it was submitted with ("" when none)
    uint64_t max_bytes = 0;
  };
  using Done = std::function<void(AnalysisResult)>;  // runs on the io_context's thread

  ScanPool(boost::asio::io_context& io, AnalysisEngine& engine, unsigned threads);
  ~ScanPool();  // drop() and join()
  ScanPool(const ScanPool&) = delete;
  ScanPool& operator=(const ScanPool&) = delete;

  void submit(Job job, Done done);
  // Forgets the jobs not started yet (their `done` never runs). Scans in progress finish and post.
  void drop();
  // Ends the threads once the queue is empty (call drop() first to end them after the scans in
  // progress).
  void join();

  std::size_t queued() const;

 private:
  struct Entry;
  void work();

  boost::asio::io_context& io_;
  AnalysisEngine& engine_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Entry> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Reads a whole file of at most `max_bytes` bytes; none (and `error` set) otherwise.
std::optional<std::vector<uint8_t>> read_sample_file(const std::filesystem::path& file, uint64_t max_bytes,
                                                     std::string& error);

}  // namespace sluice::cloud
