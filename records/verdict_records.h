// File reputation and message verdicts (DESIGN.md section 1, step 2) as the RX lcores and the
// control plane exchange them: what a look-up answers, why it failed, and the records that carry a
// look-up from an lcore to the control plane and its answer back. Same rules as event_records.h:
// plain, trivially copyable, below every other module. The `verdict` event's record is with the
// other records in event_records.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "records/text.h"

namespace sluice::records {

// What the reputation cloud says of a file's SHA-256. `none`: not looked up (no hash, or no
// reputation configured).
enum class Reputation : uint8_t { none = 0, clean, malicious, unknown };

// Why a look-up gave no answer. Not an extraction problem: the file's `unscannable` keeps its
// meaning; a look-up error is one of the message verdict's `reasons`, each with a configured action.
enum class LookupError : uint8_t {
  none = 0,
  service_unavailable,  // no endpoint answered (down, timed out, circuit open, bad answer)
  rate_limited,         // every endpoint that was tried answered 429
  budget_exhausted,     // the message's look-up budget ran out first
  queue_full,           // the lcore's look-up ring or the control plane's queue had no room
};
inline constexpr unsigned kLookupErrors = 5;

// What file analysis did with a file (DESIGN.md section 1, steps 3-4): the `analysis` field of its
// `file` event. Only files the reputation cloud called `unknown` and asked for are candidates.
enum class AnalysisStatus : uint8_t {
  none = 0,       // not a candidate (or no analysis endpoint configured)
  submitted,      // uploaded now: the message waits for the result (File Analysis quarantine)
  waiting,        // an upload of the same SHA-256 is pending: the message waits on it too
  already_known,  // the service had it (another appliance sent it): not uploaded again; waits on it
  not_sent,       // not uploaded: `upload_criterion` says why
  rejected,       // the service refused it (its sample limit)
  analysed,       // analysed through this appliance before: never uploaded twice
};
// Why a candidate was not uploaded.
enum class UploadCriterion : uint8_t {
  none = 0,
  type,            // its file type is in no selected analysis group
  size,            // over analysis.max_sample_mb or the service's own limit
  memory,          // its worker's sample memory was full
  unreadable,      // no content (encrypted, overload)
  not_dynamic,     // ClamAV pre-classification found no dynamic content
  preclass_error,  // pre-classification failed
  queue_full,      // the local upload queue was full
  unreachable,     // no analysis endpoint answered
  timeout,         // no decision within analysis.decision_ms
  not_wanted,      // not a candidate: the reputation answer was not `unknown` with `upload_wanted`
  reading,         // found in the other reading of an ambiguous DATA stream: looked up, never uploaded
};
inline constexpr unsigned kUploadCriteria = 12;

constexpr std::string_view analysis_status_name(AnalysisStatus s) noexcept {
  switch (s) {
    case AnalysisStatus::none: return "none";
    case AnalysisStatus::submitted: return "submitted";
    case AnalysisStatus::waiting: return "waiting";
    case AnalysisStatus::already_known: return "already_known";
    case AnalysisStatus::not_sent: return "not_sent";
    case AnalysisStatus::rejected: return "rejected";
    case AnalysisStatus::analysed: return "analysed";
  }
  return "none";
}

constexpr std::string_view upload_criterion_name(UploadCriterion c) noexcept {
  switch (c) {
    case UploadCriterion::none: return "none";
    case UploadCriterion::type: return "type";
    case UploadCriterion::size: return "size";
    case UploadCriterion::memory: return "memory";
    case UploadCriterion::unreadable: return "unreadable";
    case UploadCriterion::not_dynamic: return "not_dynamic";
    case UploadCriterion::preclass_error: return "preclass_error";
    case UploadCriterion::queue_full: return "queue_full";
    case UploadCriterion::unreachable: return "unreachable";
    case UploadCriterion::timeout: return "timeout";
    case UploadCriterion::not_wanted: return "not_wanted";
    case UploadCriterion::reading: return "reading";
  }
  return "none";
}

// A file whose analysis keeps its message waiting (quarantined until the result).
constexpr bool analysis_pending(AnalysisStatus s) noexcept {
  return s == AnalysisStatus::submitted || s == AnalysisStatus::waiting || s == AnalysisStatus::already_known;
}

// Where a file's reputation came from: 0 none, 1 the verdict cache, 2 + k the k-th endpoint of
// `reputation.endpoints` (its name is the control side's to render), 255 a local override.
inline constexpr uint8_t kSourceNone = 0;
inline constexpr uint8_t kSourceCache = 1;
inline constexpr uint8_t kSourceEndpoint0 = 2;
// A local override set by an operator (the management API): allow (clean) or block (malicious).
inline constexpr uint8_t kSourceOverride = 255;

constexpr std::string_view reputation_name(Reputation r) noexcept {
  switch (r) {
    case Reputation::none: return "none";
    case Reputation::clean: return "clean";
    case Reputation::malicious: return "malicious";
    case Reputation::unknown: return "unknown";
  }
  return "none";
}

constexpr std::string_view lookup_error_name(LookupError e) noexcept {
  switch (e) {
    case LookupError::none: return "none";
    case LookupError::service_unavailable: return "service_unavailable";
    case LookupError::rate_limited: return "rate_limited";
    case LookupError::budget_exhausted: return "budget_exhausted";
    case LookupError::queue_full: return "queue_full";
  }
  return "none";
}

// A message's verdict (DESIGN.md section 1): malicious when any file or archive member is; else
// unscannable when any file could not be scanned or looked up (the reasons say why); else clean
// (unknown files that do not go to analysis count as clean).
// pending: a file is with the analysis service; the message is in the File Analysis quarantine
// until its result (a later `verdict` event gives the final disposition).
enum class Disposition : uint8_t { clean, malicious, unscannable, pending };
// What the configuration says to do with it, in increasing severity (several reasons: the most
// severe action wins). The inline enforcement issue acts on it; here it is evaluated and reported.
enum class Action : uint8_t { pass, monitor, defer, reject };

constexpr std::string_view disposition_name(Disposition d) noexcept {
  switch (d) {
    case Disposition::clean: return "clean";
    case Disposition::malicious: return "malicious";
    case Disposition::unscannable: return "unscannable";
    case Disposition::pending: return "pending";
  }
  return "clean";
}

constexpr std::string_view action_name(Action a) noexcept {
  switch (a) {
    case Action::pass: return "pass";
    case Action::monitor: return "monitor";
    case Action::defer: return "defer";
    case Action::reject: return "reject";
  }
  return "pass";
}

inline constexpr std::size_t kThreatNameBytes = 64;

// What is known of one SHA-256: a cache entry's value, and a look-up answer's.
struct FileVerdict {
  Reputation reputation = Reputation::none;
  LookupError error = LookupError::none;
  uint8_t source = kSourceNone;
  bool upload_wanted = false;
  int16_t threat_score = -1;  // 0-100 when analysed, else -1
  Text<kThreatNameBytes> threat_name;
  AnalysisStatus analysis = AnalysisStatus::none;
  UploadCriterion criterion = UploadCriterion::none;
};

// An RX lcore asks the control plane for the reputation of one SHA-256 (a cache miss). `ticket`
// names the message on that lcore, `item` the file or member within it; both come back as sent.
struct LookupRequest {
  uint64_t ticket;
  uint32_t item;
  uint32_t reserved;
  uint8_t sha256[32];
};

// The answer, on the lcore's answer ring.
struct LookupAnswer {
  uint64_t ticket;
  uint32_t item;
  bool analysis;  // the answer to an analysis request (verdict.analysis, criterion), not a look-up
  uint8_t reserved[3];
  uint8_t sha256[32];
  FileVerdict verdict;
};

static_assert(std::is_trivially_copyable_v<LookupRequest> && std::is_trivially_copyable_v<LookupAnswer>);
static_assert(sizeof(LookupRequest) == 48);

}  // namespace sluice::records
