// File reputation in sluiced (DESIGN.md section 1, step 2), as the daemon sees it: the verdict
// cache (created here, loaded from disk before the data plane starts, read by the RX lcores), the
// endpoint client and the reputation service on the service loop, the cache written back to disk
// (periodically by the pool, and at exit), alerts when an endpoint becomes unreachable or recovers,
// and the `reputation` part of the `stats` event.
//
// Without endpoints nothing here runs: no cache, no look-ups; the RX lcores decide every message
// from extraction alone.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "control/alert.h"
#include "control/config.h"
#include "control/reputation_client.h"
#include "control/reputation_service.h"
#include "control/service_loop.h"

namespace sluice::control {

class FileReputation {
 public:
  // Creates the cache and loads `reputation.cache.path`. What the operator must know (a store that
  // was refused) is in alerts(), to be written once events can be.
  FileReputation(const Config& config, ServiceLoop& loop);
  ~FileReputation();

  bool enabled() const noexcept { return cache_ != nullptr; }
  // For dataplane.verdicts.cache: null when disabled.
  const pipeline::VerdictCache* cache() const noexcept { return cache_.get(); }
  // For the cache's other writer on the loop's thread (file analysis: completed analyses).
  pipeline::VerdictCache* writable_cache() noexcept { return cache_.get(); }
  // The alerts of start-up (a refused store), taken once.
  std::vector<Alert> take_alerts() { return std::move(startup_alerts_); }
  // One line for the human summary at start ("" when disabled).
  const std::string& summary() const noexcept { return summary_; }

  // Once the data plane runs: its look-up lanes; `alert` writes an alert event (on the loop).
  // `observer` (optional): every endpoint answer (ReputationService::set_observer).
  void start(std::vector<pipeline::LookupLane*> lanes, std::function<void(const Alert&)> alert,
             ReputationService::AnswerObserver observer = {});
  // On the loop, every millisecond.
  void poll();
  bool idle() const noexcept { return !service_ || service_->idle(); }
  // The `reputation` object of a `stats` event.
  Json stats() const;
  // Writes the cache to disk: in the pool (periodic) or now (exit, after the data plane stopped).
  void save_in_pool();
  void save_now();
  // Cancels what is in flight (at exit, after the data plane stopped).
  void stop();

  // The management API (api_routes.cpp), on the loop.
  // Endpoints: their state; at run time, add (at the end of the fail-over order: "" or why not),
  // remove, test (done gets {ok, status, latency_ms, detail}). Run-time changes last until sluiced
  // stops; the configuration file is what a start reads. endpoint_names(): by index, for events.
  Json endpoints_status() const;
  std::string add_endpoint(const EndpointConfig& e);
  bool remove_endpoint(const std::string& name);
  bool test_endpoint(const std::string& name, std::function<void(Json)> done);
  std::vector<std::string> endpoint_names() const;
  // The cache's entry for a file (`cached` false when none); nullopt without a cache or for a bad
  // SHA-256. drop(): removes one (not an override: false); flush(): every entry but overrides.
  std::optional<Json> cache_entry(const std::string& sha256_hex) const;
  bool drop(const std::string& sha256_hex);
  uint64_t flush();
  // Local overrides: a file allowed (clean) or blocked (malicious) whatever the endpoints say. In
  // the cache without expiry (never evicted, never replaced by an answer; events say
  // `verdict_source: override`), kept in STATE/overrides.json across restarts.
  Json overrides() const;
  std::string set_override(const std::string& sha256_hex, bool block, const std::string& comment,
                           const std::string& by);
  bool remove_override(const std::string& sha256_hex);

 private:
  const Config& config_;
  ServiceLoop& loop_;
  std::unique_ptr<pipeline::VerdictCache> cache_;
  std::unique_ptr<ReputationClient> client_;
  std::unique_ptr<ReputationService> service_;
  std::vector<Alert> startup_alerts_;
  std::string summary_;
  std::function<void(const Alert&)> alert_;
  std::vector<bool> reachable_;
  struct Registered {
    EndpointConfig config;
    bool added = false;    // at run time
    bool removed = false;  // at run time
  };
  std::vector<Registered> endpoints_;  // by the client's index
  struct Override {
    bool block = false;
    std::string comment, by;
    int64_t at_ms = 0;
  };
  std::map<std::string, Override> overrides_;  // by lower-case hex
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::string overrides_path() const;
  void apply_override(const std::string& sha256, const Override& o);
  void load_overrides();
  void save_overrides();
  void note_failure(const BatchOutcome& o);
  uint64_t saves_ = 0, save_failures_ = 0;
  uint64_t failed_since_note_ = 0;
  std::chrono::steady_clock::time_point next_note_{};
  bool stopped_ = false;
  ReputationStats final_stats_;
  std::vector<ReputationClient::EndpointStatus> final_status_;
  std::shared_ptr<bool> saving_ = std::make_shared<bool>(false);  // a pool save is queued or running
};

}  // namespace sluice::control
