#include "control/file_reputation.h"

#include <chrono>
#include <cstdio>

#include "control/verdict_store.h"

namespace sluice::control {
namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

FileReputation::FileReputation(const Config& config, ServiceLoop& loop) : config_(config), loop_(loop) {
  const ReputationConfig& r = config.reputation;
  if (r.endpoints.empty()) return;
  cache_ = std::make_unique<pipeline::VerdictCache>(r.cache_entries);
  std::string names;
  for (const auto& e : r.endpoints) names += (names.empty() ? "" : ", ") + e.name + " (" + e.kind + ")";
  summary_ = "reputation endpoints " + names + "; verdict cache of " + std::to_string(cache_->capacity()) + " entries";
  if (r.cache_path.empty()) {
    summary_ += ", not kept across restarts";
    return;
  }
  // TTLs as configured now: an entry written under a longer one keeps no more than today's.
  const std::array<unsigned, 4> ttl = {0, r.limits.ttl_clean_s, r.limits.ttl_malicious_s, r.limits.ttl_unknown_s};
  const StoreLoad loaded = load_verdict_store(r.cache_path, *cache_, wall_ms(), ttl);
  summary_ += ", " + std::to_string(loaded.loaded) + " loaded from " + r.cache_path;
  if (loaded.expired) summary_ += " (" + std::to_string(loaded.expired) + " expired dropped)";
  if (!loaded.error.empty())
    startup_alerts_.push_back({loaded.corrupt ? "cache_corrupt" : "cache_unreadable", Severity::warning, loaded.error,
                               std::nullopt, ""});
}

FileReputation::~FileReputation() { stop(); }

void FileReputation::start(std::vector<pipeline::LookupLane*> lanes, std::function<void(const Alert&)> alert) {
  if (!cache_) return;
  alert_ = std::move(alert);
  const auto& endpoints = config_.reputation.endpoints;
  reachable_.assign(endpoints.size(), true);
  client_ = std::make_unique<ReputationClient>(loop_.io(), endpoints, [this](const EndpointEvent& e) {
    if (e.endpoint < 0 || static_cast<std::size_t>(e.endpoint) >= reachable_.size()) return;
    reachable_[e.endpoint] = e.reachable;
    const auto& name = config_.reputation.endpoints[e.endpoint].name;
    std::size_t up = 0;
    for (bool b : reachable_) up += b;
    if (!alert_) return;
    if (e.reachable) {
      alert_({"endpoint_recovered", Severity::info, "reputation endpoint " + name + " answers again (" + e.detail + ")",
              std::nullopt, name});
      return;
    }
    const std::string rest = up ? std::to_string(up) + " other endpoint(s) still answer"
                                : "no reputation endpoint answers: files get lookup_error service_unavailable "
                                  "(actions.lookup_error.service_unavailable applies)";
    alert_({"endpoint_unreachable", up ? Severity::warning : Severity::critical,
            "reputation endpoint " + name + " is unreachable (" + e.detail + "); " + rest, std::nullopt, name});
  });
  service_ = std::make_unique<ReputationService>(
      *cache_, std::move(lanes),
      [this](std::vector<Sha256> hashes, std::chrono::steady_clock::time_point deadline,
             std::function<void(BatchOutcome)> done) {
        client_->lookup(std::move(hashes), deadline, [this, done = std::move(done)](BatchOutcome o) {
          if (o.error != records::LookupError::none) note_failure(o);
          done(std::move(o));
        });
      },
      config_.reputation.limits);
}

// Why look-ups fail, for the operator: one line on standard error at most every 10 s (the
// counters say how many; endpoint_unreachable says when an endpoint's circuit opens).
void FileReputation::note_failure(const BatchOutcome& o) {
  ++failed_since_note_;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_note_) return;
  next_note_ = now + std::chrono::seconds(10);
  std::fprintf(stderr, "sluiced: reputation look-up failed (%s, %llu in the last period): %s\n",
               std::string(records::lookup_error_name(o.error)).c_str(),
               static_cast<unsigned long long>(failed_since_note_), o.detail.c_str());
  failed_since_note_ = 0;
}

void FileReputation::poll() {
  if (service_) service_->poll(std::chrono::steady_clock::now());
}

Json FileReputation::stats() const {
  if (!cache_) return Json();
  Json j;
  if (service_ || stopped_) {
    const ReputationStats& s = service_ ? service_->stats() : final_stats_;
    Json errors = Json::object();
    for (unsigned e = 1; e < records::kLookupErrors; ++e)
      errors[std::string(records::lookup_error_name(static_cast<records::LookupError>(e)))] = s.errors[e];
    j = {{"requests", s.requests}, {"cache_hits", s.cache_hits}, {"coalesced", s.coalesced},
         {"batches", s.batches}, {"hashes_sent", s.hashes_sent}, {"answered", s.answered},
         {"errors", errors}, {"pending", s.pending}, {"in_flight", s.in_flight}, {"outbox", s.outbox}};
  }
  j["cache"] = {{"entries", cache_->size()}, {"capacity", cache_->capacity()}, {"evictions", cache_->evictions()},
                {"saves", saves_}, {"save_failures", save_failures_}};
  j["endpoints"] = endpoints_json(client_ && !stopped_ ? client_->status() : final_status_);
  return j;
}

void FileReputation::save_in_pool() {
  if (!cache_ || config_.reputation.cache_path.empty() || *saving_) return;
  // The snapshot is taken here, on the writer's thread; the pool only writes the file.
  auto entries = std::make_shared<std::vector<StoredVerdict>>(snapshot_verdicts(*cache_, wall_ms()));
  *saving_ = true;
  auto saving = saving_;
  const bool queued = loop_.submit([this, entries, saving, path = config_.reputation.cache_path] {
    std::string error = save_verdict_store(path, *entries);
    loop_.post([this, saving, error = std::move(error)] {
      *saving = false;
      if (error.empty()) {
        ++saves_;
        return;
      }
      ++save_failures_;
      std::fprintf(stderr, "sluiced: %s\n", error.c_str());
      if (alert_) alert_({"cache_save_failed", Severity::warning, error + "; the cache stays in memory", std::nullopt, ""});
    });
  });
  if (!queued) *saving_ = false;
}

void FileReputation::save_now() {
  if (!cache_ || config_.reputation.cache_path.empty()) return;
  loop_.drain_pool();  // a periodic save in flight finishes first
  const std::string error = save_verdict_store(config_.reputation.cache_path, snapshot_verdicts(*cache_, wall_ms()));
  if (error.empty()) {
    ++saves_;
  } else {
    ++save_failures_;
    std::fprintf(stderr, "sluiced: %s\n", error.c_str());
  }
}

void FileReputation::stop() {
  if (stopped_ || !service_) return;
  // What the exit `stats` event reports.
  final_stats_ = service_->stats();
  final_status_ = client_->status();
  stopped_ = true;
  service_.reset();  // first: its callbacks at the client then find it gone
  client_->stop();
}

}  // namespace sluice::control
