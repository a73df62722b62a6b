// The control plane's half of file reputation (DESIGN.md section 1, step 2): takes the look-up
// requests the RX lcores could not answer from the verdict cache (pipeline/lookup_lane.h), answers
// from the cache what arrived meanwhile, gathers the rest into batches across messages and lcores
// (one request per distinct hash however many messages wait for it), hands each batch to the
// endpoint client, writes every answer into the verdict cache (the only writer) with its TTL, and
// answers every waiting lcore. A waiting look-up that has no answer when its message's budget runs
// out is answered `budget_exhausted`; one that finds the queue full, `queue_full`.
//
// Runs on the service loop's thread only (poll() from a timer, the client's callbacks on the same
// io_context): no locks. Memory is bounded by `max_pending` distinct hashes; answers an lcore's
// full answer ring cannot take wait in a per-lane queue (bounded by what that lane asked).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/reputation_client.h"
#include "pipeline/lookup_lane.h"
#include "pipeline/verdict_cache.h"

namespace sluice::control {

using Sha256 = std::array<uint8_t, 32>;

struct ReputationLimits {
  unsigned batch_size = 100;     // hashes per batch handed to the client
  unsigned batch_wait_ms = 5;    // a batch leaves when full or when its oldest hash waited this long
  unsigned budget_ms = 3000;     // a look-up's whole time, from the request's arrival
  unsigned max_in_flight = 8;    // batches at the client at once
  std::size_t max_pending = 65536;  // distinct hashes waiting or in flight; beyond, `queue_full`
  // Cache time per reputation (clean, malicious, unknown), shortened by an answer's ttl_seconds.
  unsigned ttl_clean_s = 14400, ttl_malicious_s = 3600, ttl_unknown_s = 3600;
};

struct ReputationStats {
  uint64_t requests = 0;        // look-up requests taken from the lanes
  uint64_t cache_hits = 0;      // answered from the cache on arrival (an answer that came meanwhile)
  uint64_t coalesced = 0;       // requests for a hash already waiting or in flight
  uint64_t batches = 0;         // batches handed to the client
  uint64_t hashes_sent = 0;     // hashes in them
  uint64_t answered = 0;        // answers pushed to the lanes
  uint64_t errors[records::kLookupErrors] = {};  // answers by look-up error
  uint64_t cache_inserts = 0, cache_updates = 0, cache_evictions = 0;
  uint64_t cache_overridden = 0;  // answers not cached: a local override holds the hash
  uint64_t pending = 0;         // now: distinct hashes waiting or in flight
  uint64_t in_flight = 0;       // now: batches at the client
  uint64_t outbox = 0;          // now: answers waiting for room in an answer ring
};

class ReputationService {
 public:
  // Hands `hashes` to the endpoint client; `done` must be called exactly once, later, on the loop.
  using LookupFn = std::function<void(std::vector<Sha256> hashes, std::chrono::steady_clock::time_point deadline,
                                      std::function<void(BatchOutcome)> done)>;
  using Clock = std::chrono::steady_clock;

  // `wall_ms`: the wall clock in milliseconds since 1970 (cache expiry); tests inject theirs.
  ReputationService(pipeline::VerdictCache& cache, std::vector<pipeline::LookupLane*> lanes, LookupFn lookup,
                    const ReputationLimits& limits, std::function<int64_t()> wall_ms = {});
  ~ReputationService();

  // On the loop, often (every millisecond): answers waiting answers, takes new requests, sends the
  // batches that are due, answers the look-ups whose budget ran out.
  void poll(Clock::time_point now);
  // Told of every hash an endpoint answered (or failed to): the endpoint's index (-1: none tried),
  // the batch's latency from sending to the answer, the verdict as cached, and the client's detail on
  // a failure (per-message traces, control/trace.h). On the loop.
  using AnswerObserver = std::function<void(const Sha256& sha, int endpoint, double latency_ms,
                                            const records::FileVerdict& verdict, const std::string& detail)>;
  void set_observer(AnswerObserver observer) { observer_ = std::move(observer); }

  // Nothing waiting, in flight or queued for a lane.
  bool idle() const noexcept;
  const ReputationStats& stats() const noexcept { return stats_; }

 private:
  struct Waiter {
    unsigned lane;
    uint64_t ticket;
    uint32_t item;
    uint64_t serial;
  };
  struct Pending {
    std::vector<Waiter> waiters;
    bool in_flight = false;
    Clock::time_point queued_at;
    Clock::time_point deadline;  // of its first waiter
  };
  struct ShaHash {
    std::size_t operator()(const Sha256& s) const noexcept;
  };
  struct Expiry {
    Clock::time_point deadline;
    Sha256 sha;
    uint64_t serial;
  };

  void take_requests(Clock::time_point now);
  void send_batches(Clock::time_point now);
  void expire(Clock::time_point now);
  void on_batch(std::vector<Sha256> hashes, BatchOutcome outcome, Clock::time_point sent);
  void answer(const Waiter& w, const Sha256& sha, const records::FileVerdict& v);
  void flush_outboxes();

  pipeline::VerdictCache& cache_;
  std::vector<pipeline::LookupLane*> lanes_;
  LookupFn lookup_;
  ReputationLimits limits_;
  std::function<int64_t()> wall_ms_;
  std::unordered_map<Sha256, Pending, ShaHash> pending_;
  std::deque<Sha256> queue_;        // waiting for a batch, oldest first (entries gone from pending_ are skipped)
  std::deque<Expiry> expiries_;     // in arrival order: deadlines are equal for all, so in deadline order too
  std::vector<std::deque<records::LookupAnswer>> outbox_;  // per lane
  uint64_t serial_ = 0;
  ReputationStats stats_;
  AnswerObserver observer_;
  // Callbacks of batches still at the client hold this; cleared at destruction, so a late
  // callback finds the service gone and does nothing.
  std::shared_ptr<ReputationService*> self_;
};

}  // namespace sluice::control
