// Per-client request quota (--quota-per-minute N): a token bucket per client that holds N
// requests and refills at N per minute, so a client may burst N requests and then sustain N a
// minute. A request over the quota is answered 429 QuotaExceededError with Retry-After: the whole
// seconds until the bucket holds a request again.
//
// Clients are named by the caller (the API key, or the peer address when no key is required).
// Memory is bounded: at most `max_clients` buckets; full buckets (idle clients) are dropped when
// the bound is reached, at most once a second; a new client that still finds no room is refused
// for a minute rather than making the table grow.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sluice::cloud {

class Quota {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Quota(unsigned per_minute, std::size_t max_clients = 100000);

  bool enabled() const noexcept { return per_minute_ > 0; }
  // Takes one request for `client` at `now`: 0 when allowed, else the seconds to wait (>= 1).
  unsigned take(std::string_view client, Clock::time_point now);
  std::size_t clients() const noexcept { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens;
    Clock::time_point last;
  };
  void prune(Clock::time_point now);

  unsigned per_minute_;
  std::size_t max_clients_;
  std::unordered_map<std::string, Bucket> buckets_;
  Clock::time_point last_prune_{};
};

}  // namespace sluice::cloud
