#include "control/reputation_service.h"

#include <algorithm>
#include <cstring>

namespace sluice::control {
namespace {

int64_t system_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Requests taken from one lane per poll, at most: a lane that floods does not starve the others.
constexpr std::size_t kRequestsPerLane = 8192;

}  // namespace

std::size_t ReputationService::ShaHash::operator()(const Sha256& s) const noexcept {
  std::size_t v;
  std::memcpy(&v, s.data(), sizeof(v));
  return v;
}

ReputationService::ReputationService(pipeline::VerdictCache& cache, std::vector<pipeline::LookupLane*> lanes,
                                     LookupFn lookup, const ReputationLimits& limits, std::function<int64_t()> wall_ms)
    : cache_(cache),
      lanes_(std::move(lanes)),
      lookup_(std::move(lookup)),
      limits_(limits),
      wall_ms_(wall_ms ? std::move(wall_ms) : std::function<int64_t()>(system_ms)),
      outbox_(lanes_.size()),
      self_(std::make_shared<ReputationService*>(this)) {
  limits_.batch_size = std::max(1u, limits_.batch_size);
  limits_.max_in_flight = std::max(1u, limits_.max_in_flight);
}

ReputationService::~ReputationService() { *self_ = nullptr; }

bool ReputationService::idle() const noexcept {
  if (!pending_.empty()) return false;
  for (const auto& o : outbox_)
    if (!o.empty()) return false;
  return true;
}

void ReputationService::poll(Clock::time_point now) {
  flush_outboxes();
  take_requests(now);
  expire(now);
  send_batches(now);
  stats_.pending = pending_.size();
  stats_.outbox = 0;
  for (const auto& o : outbox_) stats_.outbox += o.size();
}

void ReputationService::answer(const Waiter& w, const Sha256& sha, const records::FileVerdict& v) {
  records::LookupAnswer a{};
  a.ticket = w.ticket;
  a.item = w.item;
  std::memcpy(a.sha256, sha.data(), 32);
  a.verdict = v;
  ++stats_.answered;
  ++stats_.errors[static_cast<unsigned>(v.error)];
  // In order per lane: behind what already waits.
  if (!outbox_[w.lane].empty() || !lanes_[w.lane]->push_answer(a)) outbox_[w.lane].push_back(a);
}

void ReputationService::flush_outboxes() {
  for (std::size_t l = 0; l < lanes_.size(); ++l) {
    auto& o = outbox_[l];
    while (!o.empty() && lanes_[l]->push_answer(o.front())) o.pop_front();
  }
}

void ReputationService::take_requests(Clock::time_point now) {
  const int64_t now_ms = wall_ms_();
  const auto deadline = now + std::chrono::milliseconds(limits_.budget_ms);
  for (unsigned l = 0; l < lanes_.size(); ++l) {
    records::LookupRequest rq;
    for (std::size_t n = 0; n < kRequestsPerLane && lanes_[l]->pop_request(rq); ++n) {
      ++stats_.requests;
      Sha256 sha;
      std::memcpy(sha.data(), rq.sha256, 32);
      const Waiter w{l, rq.ticket, rq.item, ++serial_};
      // An answer may have arrived since the lcore looked.
      records::FileVerdict v;
      if (cache_.lookup(sha.data(), now_ms, v)) {
        ++stats_.cache_hits;
        answer(w, sha, v);
        continue;
      }
      auto it = pending_.find(sha);
      if (it != pending_.end()) {
        ++stats_.coalesced;
        it->second.waiters.push_back(w);
        expiries_.push_back({deadline, sha, w.serial});
        continue;
      }
      if (pending_.size() >= limits_.max_pending) {
        records::FileVerdict full;
        full.error = records::LookupError::queue_full;
        answer(w, sha, full);
        continue;
      }
      Pending& p = pending_[sha];
      p.waiters.push_back(w);
      p.queued_at = now;
      p.deadline = deadline;
      queue_.push_back(sha);
      expiries_.push_back({deadline, sha, w.serial});
    }
  }
}

void ReputationService::expire(Clock::time_point now) {
  while (!expiries_.empty() && expiries_.front().deadline <= now) {
    const Expiry e = expiries_.front();
    expiries_.pop_front();
    auto it = pending_.find(e.sha);
    if (it == pending_.end()) continue;  // answered
    auto& ws = it->second.waiters;
    auto w = std::find_if(ws.begin(), ws.end(), [&](const Waiter& x) { return x.serial == e.serial; });
    if (w == ws.end()) continue;
    records::FileVerdict v;
    v.error = records::LookupError::budget_exhausted;
    answer(*w, e.sha, v);
    ws.erase(w);
    // Still queued and nobody waits: nothing to send. In flight: its answer still fills the cache.
    if (ws.empty() && !it->second.in_flight) pending_.erase(it);
  }
}

void ReputationService::send_batches(Clock::time_point now) {
  while (!queue_.empty() && stats_.in_flight < limits_.max_in_flight) {
    // Entries whose waiters all expired are gone from pending_: skip them.
    while (!queue_.empty() && !pending_.count(queue_.front())) queue_.pop_front();
    if (queue_.empty()) break;
    const Pending& oldest = pending_.at(queue_.front());
    const bool full = queue_.size() >= limits_.batch_size;
    if (!full && now - oldest.queued_at < std::chrono::milliseconds(limits_.batch_wait_ms)) break;
    std::vector<Sha256> batch;
    Clock::time_point deadline = Clock::time_point::max();
    while (!queue_.empty() && batch.size() < limits_.batch_size) {
      const Sha256 sha = queue_.front();
      queue_.pop_front();
      auto it = pending_.find(sha);
      if (it == pending_.end()) continue;
      it->second.in_flight = true;
      deadline = std::min(deadline, it->second.deadline);
      batch.push_back(sha);
    }
    if (batch.empty()) continue;
    ++stats_.batches;
    ++stats_.in_flight;
    stats_.hashes_sent += batch.size();
    std::weak_ptr<ReputationService*> self = self_;
    auto hashes = batch;
    lookup_(std::move(batch), deadline, [self, hashes = std::move(hashes), now](BatchOutcome outcome) mutable {
      if (auto s = self.lock(); s && *s) (*s)->on_batch(std::move(hashes), std::move(outcome), now);
    });
  }
}

void ReputationService::on_batch(std::vector<Sha256> hashes, BatchOutcome outcome, Clock::time_point sent) {
  --stats_.in_flight;
  const double latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
  const int64_t now_ms = wall_ms_();
  const bool ok = outcome.error == records::LookupError::none && outcome.answers.size() == hashes.size();
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    records::FileVerdict v;
    if (ok) {
      const HashAnswer& a = outcome.answers[i];
      v.reputation = a.reputation;
      v.threat_name.set(a.threat_name);
      v.threat_score = static_cast<int16_t>(a.threat_score >= 0 && a.threat_score <= 100 ? a.threat_score : -1);
      v.upload_wanted = a.upload_wanted;
      unsigned ttl = a.reputation == records::Reputation::clean       ? limits_.ttl_clean_s
                     : a.reputation == records::Reputation::malicious ? limits_.ttl_malicious_s
                                                                      : limits_.ttl_unknown_s;
      if (a.ttl_seconds > 0) ttl = std::min<unsigned>(ttl, a.ttl_seconds);
      if (ttl > 0 && a.reputation != records::Reputation::none) {
        switch (cache_.put(hashes[i].data(), v, now_ms + int64_t{ttl} * 1000, now_ms)) {
          case pipeline::VerdictCache::Put::inserted: ++stats_.cache_inserts; break;
          case pipeline::VerdictCache::Put::updated: ++stats_.cache_updates; break;
          case pipeline::VerdictCache::Put::evicted: ++stats_.cache_evictions; break;
          case pipeline::VerdictCache::Put::kept: ++stats_.cache_overridden; break;
        }
      }
      v.source = static_cast<uint8_t>(records::kSourceEndpoint0 + std::max(0, outcome.endpoint));
    } else {
      v.error = outcome.error == records::LookupError::none ? records::LookupError::service_unavailable : outcome.error;
    }
    if (observer_) observer_(hashes[i], outcome.endpoint, latency_ms, v, outcome.detail);
    auto it = pending_.find(hashes[i]);
    if (it == pending_.end()) continue;
    for (const Waiter& w : it->second.waiters) answer(w, hashes[i], v);
    pending_.erase(it);
  }
  stats_.pending = pending_.size();
}

}  // namespace sluice::control
