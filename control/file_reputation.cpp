#include "control/file_reputation.h"

#include <chrono>
#include <cstdio>

#include "control/hex.h"
#include "control/state_dir.h"
#include "control/verdict_store.h"

#include <cstring>

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
  load_overrides();  // first: the stored entries of those files are then kept out
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

FileReputation::~FileReputation() {
  *alive_ = false;
  stop();
}

void FileReputation::start(std::vector<pipeline::LookupLane*> lanes, std::function<void(const Alert&)> alert,
                           ReputationService::AnswerObserver observer) {
  if (!cache_) return;
  alert_ = std::move(alert);
  for (const auto& e : config_.reputation.endpoints) endpoints_.push_back({e, false, false});
  reachable_.assign(endpoints_.size(), true);
  client_ = std::make_unique<ReputationClient>(loop_.io(), config_.reputation.endpoints, [this](const EndpointEvent& e) {
    if (e.endpoint < 0 || static_cast<std::size_t>(e.endpoint) >= reachable_.size()) return;
    reachable_[e.endpoint] = e.reachable;
    const auto& name = endpoints_[e.endpoint].config.name;
    std::size_t up = 0;
    for (std::size_t i = 0; i < reachable_.size(); ++i) up += reachable_[i] && !endpoints_[i].removed;
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
  service_->set_observer(std::move(observer));
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

// --- the management API ---------------------------------------------------------------------------

std::vector<std::string> FileReputation::endpoint_names() const {
  std::vector<std::string> names;
  for (const auto& e : endpoints_) names.push_back(e.config.name);
  return names;
}

Json FileReputation::endpoints_status() const {
  Json out = Json::array();
  if (!client_) return out;
  for (const auto& st : stopped_ ? final_status_ : client_->status()) {
    const Registered* reg = nullptr;
    for (const auto& e : endpoints_)
      if (!e.removed && e.config.name == st.name) reg = &e;
    Json j = {{"section", "reputation"}, {"name", st.name}, {"kind", st.kind}, {"url", reg ? reg->config.url : ""},
              {"reachable", st.reachable}, {"circuit", st.circuit_open ? "open" : "closed"},
              {"requests", st.requests}, {"failures", st.failures}, {"timeouts", st.timeouts},
              {"rate_limited", st.rate_limited}, {"last_latency_ms", st.last_latency_ms},
              {"added_at_run_time", reg && reg->added}};
    out.push_back(std::move(j));
  }
  return out;
}

std::string FileReputation::add_endpoint(const EndpointConfig& e) {
  if (!client_ || stopped_)
    return "reputation is not running (it needs at least one reputation endpoint in the configuration at start)";
  std::string error;
  const int index = client_->add_endpoint(e, error);
  if (index < 0) return error;
  endpoints_.resize(static_cast<std::size_t>(index) + 1);
  endpoints_[index] = {e, true, false};
  reachable_.resize(endpoints_.size(), true);
  return "";
}

bool FileReputation::remove_endpoint(const std::string& name) {
  if (!client_ || stopped_ || !client_->remove_endpoint(name)) return false;
  for (auto& e : endpoints_)
    if (!e.removed && e.config.name == name) e.removed = true;
  return true;
}

bool FileReputation::test_endpoint(const std::string& name, std::function<void(Json)> done) {
  if (!client_ || stopped_) return false;
  return client_->test_endpoint(name, [name, done = std::move(done)](ReputationClient::TestResult t) {
    done({{"section", "reputation"}, {"name", name}, {"ok", t.ok}, {"status", t.status},
          {"latency_ms", t.latency_ms}, {"detail", t.detail}});
  });
}

namespace {

Json verdict_json(const records::FileVerdict& v) {
  Json j = {{"reputation", std::string(records::reputation_name(v.reputation))}};
  if (v.threat_name.len) j["threat_name"] = std::string(v.threat_name.view());
  if (v.threat_score >= 0) j["threat_score"] = v.threat_score;
  return j;
}

}  // namespace

std::optional<Json> FileReputation::cache_entry(const std::string& sha256_hex) const {
  std::array<uint8_t, 32> sha{};
  if (!cache_ || !parse_sha256_hex(sha256_hex, sha)) return std::nullopt;
  Json j = {{"sha256", normal_sha256_hex(sha256_hex)}};
  records::FileVerdict v;
  int64_t expires = 0;
  if (!cache_->entry(sha.data(), wall_ms(), v, expires)) {
    j["cached"] = false;
    return j;
  }
  j["cached"] = true;
  j.update(verdict_json(v));
  j["source"] = v.source == records::kSourceOverride ? "override" : "cache";
  if (v.source != records::kSourceOverride) j["expires"] = rfc3339(expires * 1000);
  return j;
}

bool FileReputation::drop(const std::string& sha256_hex) {
  std::array<uint8_t, 32> sha{};
  if (!cache_ || !parse_sha256_hex(sha256_hex, sha)) return false;
  if (overrides_.count(normal_sha256_hex(sha256_hex))) return false;  // remove_override() does that
  return cache_->erase(sha.data());
}

uint64_t FileReputation::flush() {
  if (!cache_) return 0;
  std::vector<std::array<uint8_t, 32>> drop;
  cache_->for_each(wall_ms(), [&](const uint8_t* sha, const records::FileVerdict& v, int64_t) {
    if (v.source == records::kSourceOverride) return;
    std::array<uint8_t, 32> a;
    std::memcpy(a.data(), sha, 32);
    drop.push_back(a);
  });
  for (const auto& a : drop) cache_->erase(a.data());
  return drop.size();
}

// Overrides: in memory (the map), in the cache (what the lcores read), and in STATE/overrides.json
// (written by the ordered pool, whole, through a temporary file).
std::string FileReputation::overrides_path() const {
  return config_.state_dir.empty() ? std::string() : config_.state_dir + "/overrides.json";
}

void FileReputation::apply_override(const std::string& sha256, const Override& o) {
  std::array<uint8_t, 32> sha{};
  parse_sha256_hex(sha256, sha);
  records::FileVerdict v;
  v.reputation = o.block ? records::Reputation::malicious : records::Reputation::clean;
  v.source = records::kSourceOverride;
  v.threat_name.set(o.block ? "blocked by a local override" : "");
  cache_->put(sha.data(), v, INT64_MAX, wall_ms());
}

void FileReputation::load_overrides() {
  const std::string path = overrides_path();
  if (path.empty() || !cache_) return;
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return;  // none yet
  std::string text;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  std::fclose(f);
  try {
    const Json j = Json::parse(text);
    for (const auto& o : j.at("overrides")) {
      std::array<uint8_t, 32> sha{};
      const std::string hex = o.at("sha256").get<std::string>();
      const std::string verdict = o.at("verdict").get<std::string>();
      if (!parse_sha256_hex(hex, sha) || (verdict != "allow" && verdict != "block")) throw std::runtime_error("bad entry");
      Override ov{verdict == "block", o.value("comment", ""), o.value("by", ""), o.value("at_ms", int64_t{0})};
      overrides_[normal_sha256_hex(hex)] = ov;
      apply_override(normal_sha256_hex(hex), ov);
    }
  } catch (const std::exception& x) {
    startup_alerts_.push_back({"overrides_unreadable", Severity::warning,
                               path + " is not a valid overrides file (" + x.what() +
                                   "): no local override applies; set them again (PUT /api/v1/overrides/SHA256)",
                               std::nullopt, ""});
  }
}

Json FileReputation::overrides() const {
  Json list = Json::array();
  for (const auto& [sha, o] : overrides_)
    list.push_back({{"sha256", sha}, {"verdict", o.block ? "block" : "allow"}, {"comment", o.comment},
                    {"by", o.by}, {"at", rfc3339(o.at_ms * 1000)}, {"at_ms", o.at_ms}});
  return list;
}

void FileReputation::save_overrides() {
  const std::string path = overrides_path();
  if (path.empty()) return;
  Json j = {{"format", 1}, {"overrides", overrides()}};
  loop_.submit_ordered([this, path, text = j.dump(1) + "\n", alive = alive_] {
    std::string error = write_file_atomically(path, text);
    if (error.empty()) return;
    loop_.post([this, alive, error] {
      if (!*alive) return;
      std::fprintf(stderr, "sluiced: %s\n", error.c_str());
      if (alert_) alert_({"overrides_not_saved", Severity::warning, error + "; the overrides apply until sluiced stops",
                          std::nullopt, ""});
    });
  });
}

std::string FileReputation::set_override(const std::string& sha256_hex, bool block, const std::string& comment,
                                         const std::string& by) {
  if (!cache_) return "no verdict cache: overrides need reputation endpoints in the configuration";
  std::array<uint8_t, 32> sha{};
  if (!parse_sha256_hex(sha256_hex, sha)) return "not a SHA-256";
  const std::string hex = normal_sha256_hex(sha256_hex);
  Override o{block, comment.substr(0, 500), by, wall_ms()};
  overrides_[hex] = o;
  apply_override(hex, o);
  save_overrides();
  return "";
}

bool FileReputation::remove_override(const std::string& sha256_hex) {
  const std::string hex = normal_sha256_hex(sha256_hex);
  if (!cache_ || !overrides_.erase(hex)) return false;
  std::array<uint8_t, 32> sha{};
  parse_sha256_hex(hex, sha);
  cache_->erase(sha.data());  // the next message with the file asks the endpoints
  save_overrides();
  return true;
}

}  // namespace sluice::control
