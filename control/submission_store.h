// Pending analysis submissions on disk (DESIGN.md section 1 step 4): one record per file SHA-256
// uploaded to (or found already known at) an analysis endpoint, so that polling resumes after a
// restart and every quarantined message waiting on the file is released when its analysis ends.
//
// A record: the endpoint's name, the service's sample id, when it was submitted, the last sample
// state seen (`wait` `prep` `run` `proc` `succ` `fail`, as Secure Malware Analytics names them),
// the next poll time, the quarantine ids of the messages waiting on it, and once finished the
// outcome. Life of a record: add() (pending) -> update() at each poll -> complete() (the score and
// disposition) or expire() (not complete `max_age_h` after submitted_ms) -> remove() by the caller
// once it has released every waiting message. A finished record stays until then, so a crash
// between the outcome and the releases loses nothing: at start the caller releases what finished()
// lists. Finished records nobody removes are dropped by expire() `max_age_h` after they finished.
//
// An SQLite file (STATE/submissions.sqlite) in WAL mode with synchronous=FULL: every call that
// changes something is one transaction, durable when it returns, and a kill -9 or a power cut
// leaves each transaction whole or absent. A file that is not a valid store (not SQLite, corrupt
// pages, another schema or version, a bad row) is refused with one line, moved aside as
// PATH.corrupt (with its -wal as PATH.corrupt-wal), and the store starts empty.
//
// Threads: none inside, no lock; not thread-safe. The caller makes every call one at a time, off the
// service loop (commits fsync): sluiced runs them as ServiceLoop::submit_ordered jobs. Times are
// wall-clock milliseconds since the epoch, given by the caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/sample_state.h"

namespace sluice::control {


enum class SubmissionEnd : uint8_t {
  pending,   // still polled
  complete,  // complete(): state succ (score, disposition) or fail
  expired,   // expire(): not complete max_age_h after it was submitted
};
const char* submission_end_name(SubmissionEnd e) noexcept;  // "pending", "complete", "expired"

// The default is written here once; the configuration reads it from SubmissionLimits{}.
struct SubmissionLimits {
  unsigned max_age_h = 12;  // 1..720: a submission still pending this long after submitted_ms ages out
};

struct Submission {
  std::string sha256;         // 64 hex digits (stored lower case): the key
  std::string endpoint;       // the analysis endpoint's configured name
  std::string sample_id;      // the service's id of the sample
  int64_t submitted_ms = 0;
  SampleState state = SampleState::wait;  // the last state seen
  int64_t next_poll_ms = 0;
  int64_t updated_ms = 0;     // when the state was last written (add, update, complete, expire)
  std::vector<std::string> quarantine_ids;  // messages waiting on it, in the order they joined
  // Outcome.
  SubmissionEnd end = SubmissionEnd::pending;
  int score = -1;             // 0..100 when complete with a score, else -1
  std::string disposition;    // the caller's verdict from the score ("clean", "malicious"...)
  int64_t finished_ms = 0;
};

enum class SubmissionError : uint8_t {
  none,
  invalid,      // malformed SHA-256, empty endpoint or sample id, score out of range...
  exists,       // add(): a record for this SHA-256 is already there
  not_found,    // no record for this SHA-256
  wrong_state,  // update() or complete() of a finished record
  io,           // SQLite failed (the message says what)
};
const char* submission_error_name(SubmissionError e) noexcept;

struct SubmissionResult {
  SubmissionError error = SubmissionError::none;
  std::string message;  // one line when error != none
  bool ok() const noexcept { return error == SubmissionError::none; }
};

struct SubmissionStats {
  uint64_t pending = 0, finished = 0;  // now
  uint64_t loaded = 0;                 // records found by open()
  bool corrupt = false;                // open() refused the file (moved aside)
  uint64_t added = 0, updates = 0, completed = 0, expired = 0, removed = 0;
  uint64_t finished_dropped = 0;       // finished records expire() dropped (never removed)
  uint64_t errors = 0;                 // calls that failed with io
};

class SubmissionStore;

struct SubmissionOpen {
  std::unique_ptr<SubmissionStore> store;  // empty only when no store can be created at all
  std::string error;                       // one line: why the file was refused (store still
                                           // given, empty) or why there is no store
};

class SubmissionStore {
 public:
  // Opens or creates the file (its directory must exist).
  static SubmissionOpen open(const std::string& path, const SubmissionLimits& limits = {});
  ~SubmissionStore();
  SubmissionStore(const SubmissionStore&) = delete;
  SubmissionStore& operator=(const SubmissionStore&) = delete;

  // A new pending record with its first waiters (outcome fields ignored), in one transaction.
  SubmissionResult add(const Submission& s);
  // Another message waits on a record (already there: no change). Also on a finished record: the
  // caller then releases it at once.
  SubmissionResult add_waiter(const std::string& sha256, const std::string& quarantine_id);
  SubmissionResult remove_waiter(const std::string& sha256, const std::string& quarantine_id);
  // The state seen at a poll and when to poll next (pending records only).
  SubmissionResult update(const std::string& sha256, SampleState state, int64_t next_poll_ms, int64_t now_ms);
  // The analysis ended: `state` succ (score 0..100, or -1 when the service gave none) or fail.
  SubmissionResult complete(const std::string& sha256, SampleState state, int score, const std::string& disposition,
                            int64_t now_ms);
  // Removes the record and its waiters (finished or not).
  SubmissionResult remove(const std::string& sha256);

  std::optional<Submission> find(const std::string& sha256) const;
  std::vector<Submission> pending() const;              // by next_poll_ms
  std::vector<Submission> due(int64_t now_ms) const;    // pending with next_poll_ms <= now_ms
  std::vector<Submission> finished() const;             // complete or expired, not yet removed
  std::vector<std::string> waiting_on(const std::string& quarantine_id) const;  // its SHA-256s
  // Marks every pending record with submitted_ms + max_age_h <= now_ms expired and returns them
  // (their waiters are for the caller to release, then remove()); drops finished records with
  // finished_ms + max_age_h <= now_ms.
  std::vector<Submission> expire(int64_t now_ms);

  const SubmissionStats& stats() const noexcept;
  const std::string& path() const noexcept;

 private:
  struct Impl;
  explicit SubmissionStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::control
