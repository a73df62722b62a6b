// Samples and their analyses: submission (idempotent per SHA-256, the daily sample limit, the
// pending-analysis bound), the bytes on disk while they are analysed, the states advancing by one
// timer on the service loop (wait -> prep -> run -> proc -> succ or fail, in --analysis-seconds),
// the scan on the pool (scan_pool.h), and completion: the result stored and the file's record set
// from the score (Store::finish_sample): a malicious score makes the file malicious (the change feed
// says so), a lower one is recorded with the disposition left unknown.
//
// Runs on the service loop's thread, as the Api that calls it. Persistence: every state change is
// written to the store when it happens, so a restart finds each unfinished sample in the state it
// was; start() resumes it from there (that state's step starts again and the file is scanned
// again). Results of scans that arrive after stop() or after the object is gone are dropped.
//
// The bytes: DIR/samples/<sha256>, written whole (to a .tmp name, then renamed) before the sample
// is stored, removed when its analysis finishes; a file no unfinished sample names is removed at
// start. At most `max_pending` samples and `max_pending_bytes` bytes are being analysed at once
// (beyond: queue_full, a 503 for the client), which bounds the directory.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <string_view>

#include "control/cloud/analysis_engine.h"
#include "control/cloud/scan_pool.h"
#include "control/cloud/store.h"

namespace sluice::cloud {

struct AnalysisConfig {
  std::chrono::milliseconds duration{10000};  // --analysis-seconds: wait to succ, four equal steps
  int malicious_score = 70;                   // --malicious-score: a score at least this is malicious
  uint64_t max_sample_bytes = 32ull << 20;    // --max-sample-mb
  unsigned daily_samples = 0;                 // --daily-samples per client and UTC day; 0: no limit
  std::filesystem::path samples_dir;          // DIR/samples
  // Samples analysed at once. 256 files of typical attachments (well under 1 MiB) are little;
  // the byte bound keeps a flood of large ones to 2 GiB of disk.
  std::size_t max_pending = 256;
  uint64_t max_pending_bytes = 2ull << 30;
};

class Analyses {
 public:
  using WallClock = std::function<int64_t()>;  // Unix seconds

  enum class Outcome { created, existing, daily_limit, queue_full };
  struct Submitted {
    Outcome outcome = Outcome::created;
    Sample sample;             // created or existing
    unsigned retry_after = 0;  // daily_limit, queue_full: seconds
  };

  Analyses(boost::asio::io_context& io, Store& store, ScanPool& pool, AnalysisConfig config, WallClock wall = {});
  Analyses(const Analyses&) = delete;
  Analyses& operator=(const Analyses&) = delete;

  // Creates the samples directory, removes the files no unfinished sample names, and resumes the
  // unfinished analyses. Throws StoreError (the directory cannot be made, the store fails).
  void start();
  // Cancels the timer and drops the scans not started; results arriving later are ignored.
  void stop();

  // Submits the file `bytes` (already within max_sample_bytes), sent by `client` (the name the
  // daily limit counts under). An unfinished or succeeded sample of the same SHA-256 is returned
  // as it is (`existing`, not counted). Throws StoreError when the store or the disk fails.
  Submitted submit(std::string_view bytes, std::optional<std::string> filename, std::string_view client);

  // Samples `client` may still submit today; none when there is no daily limit.
  std::optional<unsigned> submissions_available(std::string_view client);

  const AnalysisConfig& config() const noexcept { return config_; }
  std::size_t pending() const noexcept { return live_.size(); }

 private:
  using Clock = std::chrono::steady_clock;
  struct Live {
    Sha256 sha256{};
    uint64_t size = 0;
    std::string filename;
    SampleState state = SampleState::wait;
    Clock::time_point deadline;  // when the current state's step ends
    std::optional<AnalysisResult> result;
  };

  void scan(const std::string& id, const Live& l);
  void on_scanned(const std::string& id, AnalysisResult result);
  void on_timer();
  // Moves `l` through the states whose steps have ended; true when it finished (to be erased).
  bool advance(const std::string& id, Live& l, Clock::time_point now);
  void finish(const std::string& id, Live& l);
  void reschedule();
  std::filesystem::path file_of(const Sha256& h) const;

  boost::asio::io_context& io_;
  Store& store_;
  ScanPool& pool_;
  AnalysisConfig config_;
  WallClock wall_;
  Clock::duration step_;
  std::map<std::string, Live> live_;  // unfinished samples by id
  uint64_t pending_bytes_ = 0;
  boost::asio::steady_timer timer_;
  bool stopped_ = false;
  // Scan results are posted to the loop by the pool: they reach this object only while it lives.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

// A sample's report is kept up to this size; a larger one loses its "metadata" member (and is
// marked "truncated": true).
constexpr std::size_t kMaxReportBytes = 256 * 1024;

}  // namespace sluice::cloud
