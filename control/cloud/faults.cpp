#include "control/cloud/faults.h"

#include <nlohmann/json.hpp>

namespace sluice::cloud {

namespace {

bool read_uint(const nlohmann::json& v, uint64_t max, uint64_t& out) {
  if (!v.is_number_integer()) return false;
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
  } else {
    int64_t s = v.get<int64_t>();
    if (s < 0) return false;
    out = static_cast<uint64_t>(s);
  }
  return out <= max;
}

}  // namespace

bool Faults::set(const nlohmann::json& body, std::string& error) {
  if (!body.is_object()) {
    error = "the body must be a JSON object";
    return false;
  }
  FaultSet f;
  std::optional<uint64_t> count;
  int shapes = 0;
  for (const auto& [key, v] : body.items()) {
    uint64_t n = 0;
    if (key == "delay_ms") {
      if (!read_uint(v, kMaxFaultDelayMs, n)) {
        error = "delay_ms must be an integer from 0 to " + std::to_string(kMaxFaultDelayMs);
        return false;
      }
      f.delay_ms = static_cast<unsigned>(n);
    } else if (key == "status") {
      if (!read_uint(v, 599, n) || (n != 500 && n != 502 && n != 503)) {
        error = "status must be 500, 502 or 503";
        return false;
      }
      f.status = static_cast<unsigned>(n);
      ++shapes;
    } else if (key == "close") {
      if (v == "before_answer") {
        f.close = FaultSet::Close::before_answer;
      } else if (v == "mid_answer") {
        f.close = FaultSet::Close::mid_answer;
      } else {
        error = "close must be \"before_answer\" or \"mid_answer\"";
        return false;
      }
      ++shapes;
    } else if (key == "malformed") {
      if (!v.is_boolean()) {
        error = "malformed must be true or false";
        return false;
      }
      f.malformed = v.get<bool>();
      shapes += f.malformed;
    } else if (key == "oversized_mb") {
      if (!read_uint(v, kMaxOversizedMb, n) || n == 0) {
        error = "oversized_mb must be an integer from 1 to " + std::to_string(kMaxOversizedMb);
        return false;
      }
      f.oversized_mb = static_cast<unsigned>(n);
      ++shapes;
    } else if (key == "count") {
      if (!read_uint(v, UINT32_MAX, n) || n == 0) {
        error = "count must be a positive integer (DELETE clears the faults)";
        return false;
      }
      count = n;
    } else {
      error = "unknown field '" + key + "' (accepted: delay_ms, status, close, malformed, oversized_mb, count)";
      return false;
    }
  }
  if (shapes > 1) {
    error = "give at most one of status, close, malformed and oversized_mb (delay_ms combines with any)";
    return false;
  }
  set_ = f;
  remaining_ = f.any() ? count : std::nullopt;
  return true;
}

void Faults::clear() noexcept {
  set_ = FaultSet{};
  remaining_.reset();
}

std::optional<FaultSet> Faults::take() noexcept {
  if (!set_.any()) return std::nullopt;
  FaultSet f = set_;
  if (remaining_ && --*remaining_ == 0) clear();
  return f;
}

nlohmann::ordered_json Faults::to_json() const {
  nlohmann::ordered_json j;
  j["delay_ms"] = set_.delay_ms;
  j["status"] = set_.status ? nlohmann::ordered_json(set_.status) : nlohmann::ordered_json(nullptr);
  switch (set_.close) {
    case FaultSet::Close::none: j["close"] = nullptr; break;
    case FaultSet::Close::before_answer: j["close"] = "before_answer"; break;
    case FaultSet::Close::mid_answer: j["close"] = "mid_answer"; break;
  }
  j["malformed"] = set_.malformed;
  j["oversized_mb"] = set_.oversized_mb;
  j["count"] = remaining_ ? nlohmann::ordered_json(*remaining_) : nlohmann::ordered_json(nullptr);
  return j;
}

}  // namespace sluice::cloud
