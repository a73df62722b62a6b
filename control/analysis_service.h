// File analysis in the control plane (DESIGN.md section 1, steps 3-4; issue 12): the upload
// candidates the RX lcores offer over their lanes (files the reputation cloud called `unknown` and
// asked for, with the bytes their worker kept) are decided here, one SHA-256 at a time, and each
// decision goes back to the lcore as an answer: what analysis did with the file.
//
// A candidate, in order (the first step that stops it names the criterion in its `file` event):
//   - analysed before (a result in memory or in the submission store): `analysed`, with the result;
//   - a submission of the same SHA-256 pending: `waiting` (the message waits on it too);
//   - larger than analysis.max_sample_mb or the service's published limit: not_sent `size`;
//   - analysis.upload_queue candidates already being decided: not_sent `queue_full`;
//   - ClamAV pre-classification (the `classify` hook: a bounded pool of non-EAL threads): no dynamic
//     content, not_sent `not_dynamic`; failed or its pool full, `preclass_error`;
//   - asked of the service: already there (another appliance sent it), `already_known`; else
//     uploaded: `submitted`; its daily sample limit, `rejected`; no endpoint answered, not_sent
//     `unreachable`.
// Submitted and already-known files are polled every analysis.poll_interval_s until their analysis
// completes (the score maps to a disposition: malicious at analysis.malicious_score or above) or
// ages out (analysis.max_age_h). Completion writes the verdict cache (so a rescan is decided by
// the cache and never uploads again), and every message waiting on the file gets its final
// `verdict` event once all its files are in. Each step writes an `analysis` event.
//
// Threads: everything here runs on the service loop's thread; the store's writes (fsync) run as
// ordered jobs of the loop's pool (the `blocking` hook), the scans on the classify hook's pool.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/alert.h"
#include "control/analysis_client.h"
#include "control/event_render.h"
#include "pipeline/message_verdict.h"
#include "pipeline/preclass.h"
#include "pipeline/verdict_seam.h"
#include "records/event_records.h"

namespace sluice::pipeline {
class LookupLane;
class VerdictCache;
}  // namespace sluice::pipeline

namespace sluice::control {

class QuarantineStore;
class SubmissionStore;

// The defaults are written here once; the configuration reads them from AnalysisSettings{}.
struct AnalysisSettings {
  unsigned poll_interval_s = 30;                 // 1..3600: between two state polls of a submission
  uint64_t max_sample_bytes = 32ull << 20;       // analysis.max_sample_mb: larger files are not uploaded
  std::size_t upload_queue = 64;                 // candidates being decided at once (scan, search, upload)
  int malicious_score = 70;                      // a completed analysis scoring this or more is malicious
  unsigned decision_ms = 10000;                  // a candidate's decision (scan, search, upload) ends by then
  unsigned max_age_h = 12;                       // a submission not complete this long after it was made ages out
  unsigned limits_refresh_s = 3600;              // how often the service's published limits are read again
  unsigned ttl_malicious_s = 3600, ttl_clean_s = 14400;  // verdict cache entries written by a completion
  records::Action expired_action = records::Action::pass;  // a message whose file aged out
  std::size_t max_results = 100000;              // completed results kept in memory (oldest dropped first)
  std::size_t max_waiting = 20000;               // messages waiting for analyses at once; beyond, a
                                                 // message is not held for one (not_sent queue_full)
};

struct AnalysisHooks {
  // Writes an event of `type` with `body` (and the flow's identity in its header when given).
  std::function<void(const std::string& type, Json body, const records::FlowIdentity* flow)> event;
  // The final `verdict` event of a message that waited for analysis.
  std::function<void(const records::VerdictRecord&)> verdict;
  std::function<void(const Alert&)> alert;
  // Runs `job` off the loop, in order with the other such jobs (store writes).
  std::function<void(std::function<void()> job)> blocking;
  // Pre-classifies `bytes` off the loop; `done` runs on the loop. False: not queued (pool full).
  std::function<bool(std::shared_ptr<const std::string> bytes, std::string filename,
                     std::function<void(pipeline::PreclassResult)> done)>
      classify;
  // The running policy: a message re-evaluated once its analyses are in is decided by it.
  std::function<const pipeline::VerdictPolicy&()> policy;
  // Runs `job` on the loop (from the `blocking` jobs, with their results).
  std::function<void(std::function<void()> job)> post;
  // Per-message traces (control/trace.h), optional: a waiting message's quarantine entry, stored as
  // `id` or not (`why`); each poll of a sample, its state or error and latency.
  std::function<void(const records::FlowIdentity& flow, uint64_t transaction, const std::string& id,
                     const std::string& why)>
      quarantined;
  std::function<void(const std::string& sha256, const std::string& endpoint, const std::string& state,
                     const std::string& error, double latency_ms)>
      polled;
};

struct AnalysisCounters {
  uint64_t candidates = 0;                       // offered by the lcores
  uint64_t submitted = 0, waiting = 0, already_known = 0, rejected = 0, analysed = 0;
  uint64_t not_sent[records::kUploadCriteria] = {};  // by records::UploadCriterion
  uint64_t polls = 0, poll_failures = 0;
  uint64_t completed = 0, malicious = 0, failed = 0, expired = 0;
  uint64_t final_verdicts = 0;                   // messages released with their final verdict
  uint64_t answers_deferred = 0;                 // answers that waited for room in a lane
  uint64_t quarantined = 0, not_stored = 0, released = 0;  // File Analysis quarantine
  uint64_t copies_unclaimed = 0;                 // message bytes for no waiting message (dropped)
  uint64_t resumed = 0;                          // held entries a previous run left, waiting again
  uint64_t verdicts_lost = 0;                    // waiting messages whose verdict record never came
  uint64_t waiting_full = 0;                     // messages not held: analysis.max_waiting reached
};

class AnalysisService {
 public:
  using Clock = std::chrono::steady_clock;
  // `store` may be null (no state directory: nothing is kept across a restart). `cache` may be null.
  // `quarantine` may be null (no state directory): messages are then not stored.
  AnalysisService(AnalysisSettings settings, AnalysisClient& client, SubmissionStore* store,
                  pipeline::VerdictCache* cache, std::vector<pipeline::LookupLane*> lanes, AnalysisHooks hooks,
                  QuarantineStore* quarantine = nullptr);
  ~AnalysisService();
  AnalysisService(const AnalysisService&) = delete;
  AnalysisService& operator=(const AnalysisService&) = delete;

  // Loads what the store holds (pending submissions are polled again, finished results known) and
  // reads the service's limits. Call once, on the loop, before poll().
  void start();
  // On the loop, often (every millisecond): takes the lcores' candidates, hands back answers.
  void poll();
  // On the loop, every second: polls due submissions, ages out old ones, refreshes the limits.
  void tick();
  // Every `verdict` record the lcores write (on the loop, as they are rendered): a message whose
  // disposition is `pending` waits here for its files' analyses.
  void on_verdict(const records::VerdictRecord& v);
  // Every `smtp` record: the envelope of a message that waits (for its quarantine entry).
  void on_message(const records::MessageRecord& m);
  // Work a replay's end waits for (replay.wait_analysis_s): pending submissions, and messages whose
  // analyses are all in but whose final verdict waits (for their quarantine entry, their record).
  std::size_t unfinished() const noexcept;
  // The `analysis` object of a `stats` event.
  Json stats() const;
  const AnalysisCounters& counters() const noexcept { return c_; }
  void stop();

 private:
  struct Ticket {  // an lcore's question, to be answered
    std::size_t lane;
    uint64_t ticket;
    uint32_t item;
    std::array<uint8_t, 32> sha;
    records::FlowIdentity flow;
    uint64_t transaction;
    std::string filename;
  };
  struct Deciding {  // one SHA-256 being decided; later candidates of it wait in `tickets`
    std::vector<Ticket> tickets;
    std::shared_ptr<const std::string> bytes;
    std::string filename;
    uint64_t size = 0;
    Clock::time_point deadline;
    std::vector<std::string> reasons;  // what pre-classification found dynamic
  };
  struct Result {
    records::Reputation reputation = records::Reputation::unknown;
    int score = -1;
    std::string threat_name;
    bool failed = false;
  };
  struct Sub {  // a pending submission
    SampleRef ref;
    int64_t submitted_ms = 0;
    int64_t next_poll_ms = 0;
    SampleState state = SampleState::wait;
    bool in_flight = false;
    std::set<std::string> waiters;  // message keys
  };
  struct Envelope {
    std::string helo, mail_from, subject, message_id;
    std::vector<std::string> rcpt_to;
  };
  enum class Put : uint8_t { none, running, stored, not_stored };
  struct Waiting {  // a message waiting for analyses
    std::set<std::string> shas;            // still pending
    std::optional<records::VerdictRecord> verdict;  // its first verdict, once rendered
    std::vector<std::pair<std::string, Result>> done;  // results that came in
    bool expired = false;
    // The quarantine: its bytes from the RX spool, its envelope from the `smtp` record, the entry.
    std::shared_ptr<const std::string> bytes;  // until the store has them (then let go)
    bool copied = false;                   // its bytes came from the spool
    std::string message_sha256;
    std::optional<Envelope> envelope;
    Clock::time_point ready_since{};       // bytes and verdict both in (the envelope waits up to 2 s)
    Put put = Put::none;
    std::string quarantine_id, not_stored_why;
    Clock::time_point since = Clock::now();  // created: a waiting message whose verdict record never
                                             // comes (its event was lost) is dropped after a while
  };

  void take(std::size_t lane, pipeline::AnalysisRequest& rq);
  void decide(const std::string& sha);
  void searched(const std::string& sha, SearchOutcome o);
  void submitted(const std::string& sha, SubmitOutcome o);
  // Ends a decision: every ticket answered with `status` (and `criterion`), the message keys noted.
  void finish(const std::string& sha, records::AnalysisStatus status, records::UploadCriterion criterion,
              const std::string& detail = {});
  void answer(const Ticket& t, records::AnalysisStatus status, records::UploadCriterion criterion,
              const Result* result = nullptr);
  void add_sub(const std::string& sha, const SampleRef& ref, SampleState state);
  void poll_sub(const std::string& sha);
  void complete(const std::string& sha, const Result& r, SampleState state);
  void expire(const std::string& sha);
  void release_waiter(const std::string& key, const std::string& sha, const Result* r, bool expired);
  void maybe_final(const std::string& key);
  void take_copy(pipeline::MessageCopy& c);
  void extra_full_event(const std::string& sha, const Ticket& t);
  void resume_quarantine();
  // Stores the message when its bytes and verdict are in, and its envelope (or `now` says go).
  void try_quarantine(const std::string& key, bool now);
  void event(const std::string& status, const std::string& sha, Json extra, const Ticket* t = nullptr);
  void store_job(std::function<void(SubmissionStore&)> job);
  void remember(const std::string& sha, const Result& r);
  uint64_t max_bytes() const noexcept;

  AnalysisSettings s_;
  AnalysisClient& client_;
  SubmissionStore* store_;
  QuarantineStore* quarantine_;
  pipeline::VerdictCache* cache_;
  std::vector<pipeline::LookupLane*> lanes_;
  AnalysisHooks hooks_;
  std::vector<std::deque<records::LookupAnswer>> outbox_;  // per lane: answers without room yet
  std::unordered_map<std::string, Deciding> deciding_;
  std::map<std::string, Sub> subs_;
  std::unordered_map<std::string, Result> results_;
  std::deque<std::string> results_order_;
  std::unordered_map<std::string, Waiting> waiting_;  // by message key
  // The envelopes of recent messages with attachments: a message's `smtp` record (written at the
  // server's reply) usually comes before its analysis is decided. At most kEnvelopes, oldest dropped.
  static constexpr std::size_t kEnvelopes = 4096;
  std::unordered_map<std::string, Envelope> envelopes_;
  std::deque<std::string> envelope_order_;
  uint64_t service_max_bytes_ = 0;   // 0: not known (yet)
  std::optional<uint64_t> submissions_available_;
  Clock::time_point next_limits_{};
  Clock::time_point next_retention_{};
  Clock::time_point next_store_expiry_{};
  bool limits_in_flight_ = false;
  bool stopped_ = false;
  AnalysisCounters c_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  // Submission store writes that failed (io), counted on the pool's thread.
  std::shared_ptr<std::atomic<uint64_t>> store_errors_ = std::make_shared<std::atomic<uint64_t>>(0);
  // The quarantine's size (entries held, their bytes), read by the pool's job after each change
  // (the store is the pool's alone while it runs) and by stats() on the loop.
  struct QuarantineSize {
    std::atomic<uint64_t> held{0}, bytes{0};
    void read(const QuarantineStore& q) noexcept;
  };
  std::shared_ptr<QuarantineSize> quarantine_size_ = std::make_shared<QuarantineSize>();
};

// A message's key among those waiting for analysis: "FLOW_ID:TRANSACTION".
std::string analysis_message_key(uint64_t flow_id, uint64_t transaction);

}  // namespace sluice::control
