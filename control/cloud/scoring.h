// The scoring table of sluice-cloud's analysis engine: the facts of ClamAV pre-classification
// (pipeline/preclass.h: reasons, signature alerts, limits reached, the file's ClamAV type) in, a
// threat score 0-100, the rules that fired and a threat name out. Pure (no engine, no I/O), so the
// table is unit-tested fact by fact (tests/unit/control/cloud/scoring_test.cpp); API.md, section
// "How a sample is scored", documents it and changes with it.
//
// The score is the highest score among the rules that fire (no sums: a file's score is explained
// by one rule, and the rules for combinations — a macro that runs by itself AND starts programs —
// sit above the rules for each fact alone). No rule: 0.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "pipeline/preclass.h"

namespace sluice::cloud {

// Signatures whose match is a verdict by itself (score 100): sluice-cloud's own set names them so
// (control/cloud/signatures: Sluice.Test.Eicar).
inline constexpr const char* kVerdictSignaturePrefixes[] = {"Sluice.Test.", "Sluice.Malware."};

struct FiredRule {
  std::string rule;         // stable lower_snake_case name (API.md's table)
  int score = 0;
  std::string threat_name;  // what a malicious verdict by this rule is called
};

struct Scored {
  int score = 0;                           // 0-100
  std::optional<std::string> threat_name;  // the highest rule's (none when no rule fired)
  std::vector<FiredRule> rules;            // every rule that fired, highest score first
};

Scored score_facts(const pipeline::PreclassResult& facts);

}  // namespace sluice::cloud
