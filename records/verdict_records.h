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

// Where a file's reputation came from: 0 none, 1 the verdict cache, 2 + k the k-th endpoint of
// `reputation.endpoints` (its name is the control side's to render).
inline constexpr uint8_t kSourceNone = 0;
inline constexpr uint8_t kSourceCache = 1;
inline constexpr uint8_t kSourceEndpoint0 = 2;

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
enum class Disposition : uint8_t { clean, malicious, unscannable };
// What the configuration says to do with it, in increasing severity (several reasons: the most
// severe action wins). The inline enforcement issue acts on it; here it is evaluated and reported.
enum class Action : uint8_t { pass, monitor, defer, reject };

constexpr std::string_view disposition_name(Disposition d) noexcept {
  switch (d) {
    case Disposition::clean: return "clean";
    case Disposition::malicious: return "malicious";
    case Disposition::unscannable: return "unscannable";
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
  uint32_t reserved;
  uint8_t sha256[32];
  FileVerdict verdict;
};

static_assert(std::is_trivially_copyable_v<LookupRequest> && std::is_trivially_copyable_v<LookupAnswer>);
static_assert(sizeof(LookupRequest) == 48);

}  // namespace sluice::records
