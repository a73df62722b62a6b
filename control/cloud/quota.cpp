#include "control/cloud/quota.h"

#include <algorithm>
#include <cmath>

namespace sluice::cloud {

Quota::Quota(unsigned per_minute, std::size_t max_clients) : per_minute_(per_minute), max_clients_(max_clients) {}

void Quota::prune(Clock::time_point now) {
  if (now - last_prune_ < std::chrono::seconds(1)) return;
  last_prune_ = now;
  const double rate = per_minute_ / 60.0;
  std::erase_if(buckets_, [&](const auto& kv) {
    const double elapsed = std::chrono::duration<double>(now - kv.second.last).count();
    return kv.second.tokens + elapsed * rate >= per_minute_;
  });
}

unsigned Quota::take(std::string_view client, Clock::time_point now) {
  if (per_minute_ == 0) return 0;
  const double capacity = per_minute_;
  const double rate = capacity / 60.0;  // tokens per second
  auto it = buckets_.find(std::string(client));
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_clients_) prune(now);
    if (buckets_.size() >= max_clients_) return 60;
    it = buckets_.emplace(std::string(client), Bucket{capacity, now}).first;
  }
  Bucket& b = it->second;
  const double elapsed = std::max(0.0, std::chrono::duration<double>(now - b.last).count());
  b.tokens = std::min(capacity, b.tokens + elapsed * rate);
  b.last = now;
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  // Rounded up to whole seconds; the tolerance keeps 20.000000001 (floating point) at 20.
  return static_cast<unsigned>(std::max(1.0, std::ceil((1.0 - b.tokens) / rate - 1e-6)));
}

}  // namespace sluice::cloud
