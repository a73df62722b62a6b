// The bounded pool that runs ClamAV pre-classification (issue 12: "Scans run on a bounded pool of
// non-EAL threads, never on lcores"). A scan blocks for milliseconds to seconds
// (pipeline/preclass.h, docs/benchmarks.md), so neither an lcore nor the service loop may run one:
// the control plane hands a file's bytes to submit(), one of the pool's own threads classifies it
// on the shared engine, and the result comes back as a call of `done` on the io_context the caller
// named (the service loop's), where the rest of the decision runs without locks.
//
// Threads: `threads` std::threads (not EAL threads: created with std::thread, they have no lcore
// id and never touch a DPDK structure) run Preclassifier::classify(), which is thread-safe on one
// engine. They inherit the CPU affinity of the thread that calls start(): in sluiced, the main
// thread, i.e. the control plane's CPUs, never an RX or worker lcore's. `done` always runs on a
// thread running `io.run()`, never on a pool thread and never inside submit() or stop().
//
// Contract: submit() returning true means `done` is called exactly once, with the scan's result,
// or with `error` "stopped" when stop() came before a thread took the job; false means it is
// never called (the queue was full, or the pool is stopped), and the refusal is counted. Each
// accepted job holds work on its io_context until its `done` has been posted, so io.run() does
// not return while a result is owed. The io_context must outlive the pool, and must run (again,
// if it was stopped) for results posted to it to be delivered: Asio destroys handlers it never ran.
//
// Bounds: at most `max_queued` jobs wait for a thread; the jobs being scanned (at most `threads`)
// are not counted in it. The bytes of a job are shared, not copied: what the pool keeps alive is
// at most max_queued + threads files, each at most PreclassLimits::max_file_bytes to be scanned.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/preclass.h"

namespace sluice::control {

struct PreclassPoolLimits {
  // Scan threads. One by default: a scan is single-threaded CPU work, and on an appliance every
  // other core belongs to an lcore; each added thread takes a core from the control plane. 0 is
  // read as 1.
  unsigned threads = 1;
  // Jobs waiting for a thread, beyond those being scanned. A typical attachment costs 12-16 ms of
  // CPU (docs/benchmarks.md, issue 12), so 32 waiting is about 0.5 s of backlog on one thread:
  // past that a file is better refused (not uploaded, counted) than kept waiting with its bytes.
  // 0 is read as 1.
  std::size_t max_queued = 32;
};

// Counters since construction. Invariant: submitted = done + failed + stopped + queued + running.
struct PreclassPoolStats {
  uint64_t submitted = 0;         // accepted by submit()
  uint64_t rejected_full = 0;     // refused: max_queued jobs were waiting
  uint64_t rejected_stopped = 0;  // refused: submit() after stop()
  uint64_t done = 0;              // scanned, result without `error`
  uint64_t failed = 0;            // scanned, result with `error` (libclamav failed, file too large...)
  uint64_t stopped = 0;           // never scanned: delivered with `error` "stopped"
  double busy_ms = 0;             // wall time the threads spent in classify(), all threads together
  uint64_t bytes = 0;             // bytes of the files scanned (done + failed)
  std::size_t queued = 0;         // now: waiting for a thread
  std::size_t running = 0;        // now: being scanned
};

class PreclassPool {
 public:
  using Bytes = std::shared_ptr<const std::vector<uint8_t>>;
  using Done = std::function<void(pipeline::PreclassResult)>;

  // The error of a result delivered because stop() came first.
  static constexpr const char* kStopped = "stopped";

  // `engine` must outlive the pool. No thread runs before start(): jobs submitted before it wait
  // in the queue (within max_queued).
  PreclassPool(const pipeline::Preclassifier& engine, const PreclassPoolLimits& limits);
  ~PreclassPool();  // stop()
  PreclassPool(const PreclassPool&) = delete;
  PreclassPool& operator=(const PreclassPool&) = delete;

  // Starts the threads (once; later calls, and calls after stop(), do nothing).
  void start();

  // Queues a scan of `bytes` (nullptr is an empty file) named `filename` (may be empty; it names
  // the file in the metadata and lets the rules see a script's extension). From any thread; never
  // blocks on a scan. True: `done(result)` will be posted to `io` exactly once. False: the queue
  // is full or the pool stopped; `done` is dropped uncalled.
  bool submit(Bytes bytes, std::string filename, Done done, boost::asio::io_context& io);

  // Refuses new jobs, delivers every queued job at once with `error` "stopped", lets the scans
  // under way finish (bounded by PreclassLimits::max_scan_ms, and a little more) and deliver their
  // real result, then joins the threads. Idempotent. Never call it from a pool thread (it cannot
  // be: `done` never runs on one).
  void stop();

  PreclassPoolStats stats() const;
  const PreclassPoolLimits& limits() const noexcept { return limits_; }

 private:
  struct Job {
    Bytes bytes;
    std::string filename;
    Done done;
    // Keeps the caller's io_context from running out of work while the result is owed; its
    // executor is where `done` is posted.
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work;
  };
  void run(unsigned index);
  static void deliver(Job& job, pipeline::PreclassResult result);

  const pipeline::Preclassifier& engine_;
  const PreclassPoolLimits limits_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;  // guarded by mutex_, as are stats_, started_, stopping_
  PreclassPoolStats stats_;
  bool started_ = false;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sluice::control
