// A sample's analysis state at an analysis service, as Secure Malware Analytics and sluice-cloud
// name them: the analysis client reads it, the submission store keeps it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice::control {

enum class SampleState : uint8_t { wait, prep, run, proc, succ, fail };

constexpr const char* sample_state_name(SampleState s) noexcept {
  switch (s) {
    case SampleState::wait: return "wait";
    case SampleState::prep: return "prep";
    case SampleState::run: return "run";
    case SampleState::proc: return "proc";
    case SampleState::succ: return "succ";
    case SampleState::fail: return "fail";
  }
  return "?";
}

constexpr std::optional<SampleState> parse_sample_state(std::string_view n) noexcept {
  for (SampleState s : {SampleState::wait, SampleState::prep, SampleState::run, SampleState::proc, SampleState::succ,
                        SampleState::fail})
    if (n == sample_state_name(s)) return s;
  return std::nullopt;
}

}  // namespace sluice::control
