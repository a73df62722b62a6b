// A message's verdict from its files (DESIGN.md section 1, step 2): every attachment and every
// archive member contributes its reputation (looked up by SHA-256), its `unscannable` reason and
// its look-up error. Malicious when any of them is malicious (the archive and the message with
// it); else unscannable when any has a reason (an extraction problem or a failed look-up); else
// pending when a file is with the analysis service (the message waits in the File Analysis
// quarantine); else clean, unknown files included (they count as clean unless analysis takes them).
// The configured action of each part of the outcome is evaluated here; the most severe wins.
//
// Pure and allocation-free: runs on the RX lcore that owns the message.
#pragma once

#include <cstdint>
#include <string_view>

#include "pipeline/archive.h"
#include "records/event_records.h"

namespace sluice::pipeline {

inline constexpr unsigned kUnscannableReasons = 5;  // pipeline::Unscannable, none included

// The actions of `actions.*` in the configuration (control/config.cpp declares them).
struct VerdictPolicy {
  records::Action clean = records::Action::pass;
  records::Action malicious = records::Action::reject;
  records::Action pending = records::Action::defer;  // a file is with the analysis service
  records::Action smuggling = records::Action::reject;  // an ambiguous end of data (SMTP smuggling)
  records::Action unscannable[kUnscannableReasons] = {};   // by pipeline::Unscannable; [none] unused
  records::Action lookup_error[records::kLookupErrors] = {};  // by records::LookupError; [none] unused
};

// One file as the verdict sees it.
struct VerdictInput {
  std::string_view filename;  // attachment name or member path
  const uint8_t* sha256;      // valid when hashed
  bool hashed;
  bool member;
  Unscannable unscannable;
  const records::FileVerdict* verdict;  // its look-up (reputation none: not looked up)
};

// Fills a VerdictRecord's verdict fields from the files of one message, added in event order.
class VerdictBuilder {
 public:
  explicit VerdictBuilder(records::VerdictRecord& out) noexcept;
  void add(const VerdictInput& f) noexcept;
  // Sets disposition, action and the listed files (those of the deciding kind, first ones first).
  void finish(const VerdictPolicy& policy) noexcept;

 private:
  void list(const VerdictInput& f) noexcept;
  records::VerdictRecord& r_;
  // The files listed are those of the strongest kind met so far: malicious, then pending
  // analysis, then unscannable (a stronger kind restarts the list).
  enum class Kind : uint8_t { none, unscannable, pending, malicious };
  Kind listing_ = Kind::none;
};

// The disposition and action of a verdict from its counts and reasons (malicious, pending,
// unscannable, clean, in that order): what finish() does, also for a message re-evaluated once its
// analyses are in (control/analysis_service).
void decide_verdict(records::VerdictRecord& r, const VerdictPolicy& p) noexcept;

}  // namespace sluice::pipeline
