// Lab fault injection (POST /api/v1/admin/faults): the faults an operator or a test asks
// sluice-cloud to inject into the answers of non-admin requests (look-ups, the change feed,
// health), so that the appliance's clients can be tested against the real service. Meant for labs
// and tests only; admin requests are never affected, so faults can always be cleared.
//
// This unit holds the fault set and its JSON form; the HTTP server applies it (the delay, the
// closed connections and the answer bodies need the connection).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace sluice::cloud {

struct FaultSet {
  enum class Close : uint8_t { none, before_answer, mid_answer };

  unsigned delay_ms = 0;       // wait this long before answering (combines with one of the below)
  unsigned status = 0;         // 0, or 500 / 502 / 503: answer that status with an error body
  Close close = Close::none;   // close without an answer, or after the head and half the body
  bool malformed = false;      // 200 with a body that is not JSON
  unsigned oversized_mb = 0;   // 200 with a valid JSON body of this many MiB

  bool any() const noexcept {
    return delay_ms || status || close != Close::none || malformed || oversized_mb;
  }
};

// Limits of a fault set, each with its reason.
inline constexpr unsigned kMaxFaultDelayMs = 600000;  // 10 min: past any client's timeout
inline constexpr unsigned kMaxOversizedMb = 256;      // built in memory: bounded by the lab machine

class Faults {
 public:
  // Parses a POST body: an object with any of delay_ms, status, close, malformed, oversized_mb,
  // count. At most one of status / close / malformed / oversized_mb (an answer has one shape).
  // On error returns false with a one-line message in `error`.
  bool set(const nlohmann::json& body, std::string& error);
  void clear() noexcept;

  // The faults that apply to the next non-admin request (consuming one of `count`), if any.
  std::optional<FaultSet> take() noexcept;

  // {"delay_ms":N,"status":N|null,"close":".."|null,"malformed":bool,"oversized_mb":N,"count":N|null}
  // (count: how many requests are left; null: until cleared).
  nlohmann::ordered_json to_json() const;

 private:
  FaultSet set_;
  std::optional<uint64_t> remaining_;  // nullopt: until cleared
};

}  // namespace sluice::cloud
