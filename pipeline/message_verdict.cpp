#include "pipeline/message_verdict.h"

#include <algorithm>
#include <cstring>

namespace sluice::pipeline {

using records::Action;
using records::Disposition;
using records::LookupError;
using records::Reputation;

VerdictBuilder::VerdictBuilder(records::VerdictRecord& out) noexcept : r_(out) {
  r_.disposition = Disposition::clean;
  r_.action = Action::pass;
  r_.unscannable_reasons = 0;
  r_.lookup_errors = 0;
  r_.reputation = false;
  r_.files = r_.malicious = r_.clean = r_.unknown = r_.pending = r_.deciding = 0;
  r_.final_verdict = false;
  r_.quarantine = records::QuarantineMark::none;
  r_.quarantine_id.set("");
  r_.listed = 0;
}

void VerdictBuilder::list(const VerdictInput& f) noexcept {
  ++r_.deciding;
  if (r_.listed >= records::kDecidingFiles) return;
  records::DecidingFile& d = r_.decided_by[r_.listed++];
  d.filename.set_keep_end(f.filename);
  d.hashed = f.hashed;
  if (f.hashed) std::memcpy(d.sha256, f.sha256, 32);
  d.member = f.member;
  d.unscannable = static_cast<uint8_t>(f.unscannable);
  d.reputation = f.verdict ? f.verdict->reputation : Reputation::none;
  d.error = f.verdict ? f.verdict->error : LookupError::none;
  d.analysis = f.verdict ? f.verdict->analysis : records::AnalysisStatus::none;
  if (f.verdict)
    d.threat_name = f.verdict->threat_name;
  else
    d.threat_name.len = 0;
}

void VerdictBuilder::add(const VerdictInput& f) noexcept {
  ++r_.files;
  const Reputation rep = f.verdict ? f.verdict->reputation : Reputation::none;
  const LookupError err = f.verdict ? f.verdict->error : LookupError::none;
  if (rep != Reputation::none || err != LookupError::none) r_.reputation = true;
  switch (rep) {
    case Reputation::malicious: ++r_.malicious; break;
    case Reputation::clean: ++r_.clean; break;
    case Reputation::unknown: ++r_.unknown; break;
    case Reputation::none: break;
  }
  if (f.unscannable != Unscannable::none) r_.unscannable_reasons |= 1u << static_cast<unsigned>(f.unscannable);
  if (err != LookupError::none) r_.lookup_errors |= 1u << static_cast<unsigned>(err);

  const bool pending = f.verdict && records::analysis_pending(f.verdict->analysis);
  if (pending) ++r_.pending;
  const Kind kind = rep == Reputation::malicious                                       ? Kind::malicious
                    : pending                                                          ? Kind::pending
                    : f.unscannable != Unscannable::none || err != LookupError::none ? Kind::unscannable
                                                                                       : Kind::none;
  if (kind == Kind::none || kind < listing_) return;
  if (kind > listing_) {  // a stronger kind decides: forget the weaker ones listed so far
    listing_ = kind;
    r_.listed = 0;
    r_.deciding = 0;
  }
  list(f);
}

void VerdictBuilder::finish(const VerdictPolicy& p) noexcept { decide_verdict(r_, p); }

void decide_verdict(records::VerdictRecord& r_, const VerdictPolicy& p) noexcept {
  if (r_.malicious) {
    r_.disposition = Disposition::malicious;
    r_.action = p.malicious;
    return;
  }
  if (r_.pending) {
    r_.disposition = Disposition::pending;
    r_.action = p.pending;
    return;
  }
  if (r_.unscannable_reasons || r_.lookup_errors) {
    r_.disposition = Disposition::unscannable;
    Action a = Action::pass;
    for (unsigned i = 1; i < kUnscannableReasons; ++i)
      if (r_.unscannable_reasons & (1u << i)) a = std::max(a, p.unscannable[i]);
    for (unsigned i = 1; i < records::kLookupErrors; ++i)
      if (r_.lookup_errors & (1u << i)) a = std::max(a, p.lookup_error[i]);
    r_.action = a;
    return;
  }
  r_.disposition = Disposition::clean;
  r_.action = p.clean;
}

}  // namespace sluice::pipeline
