// Retrospective verdicts (retrospective.h).
#include "control/retrospective.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>

#include "control/change_feed.h"
#include "control/event_render.h"
#include "control/hex.h"
#include "control/http_pool.h"
#include "control/reputation_adapters.h"
#include "control/reputation_client.h"
#include "pipeline/verdict_cache.h"

namespace sluice::control {
namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Feed entries per request (sluice-cloud allows 1000): a page's reports are built in one store job
// and held until delivered, each naming up to max_messages_listed messages, so pages stay small.
constexpr unsigned kPageSize = 200;
constexpr unsigned kScanMessages = 10000;  // messages read per changed file (all of them are counted up to this)
constexpr std::size_t kMaxQueuedSightings = 262144;

// "" and "unknown" are one thing here: no verdict.
std::string normal(const std::string& d) { return d.empty() ? "unknown" : d; }

bool valid_disposition(const std::string& d) { return d == "clean" || d == "malicious" || d == "unknown"; }

// Percent-encodes what is not an RFC 3986 unreserved character.
std::string query_value(const std::string& v) {
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

struct Change {
  std::string sha256, old_disposition, new_disposition, threat_name, changed_at, key;
};

// The report of one change: the messages (newest first) whose verdict then differs from the new one.
// Empty when the appliance never saw the file or every message already had the new verdict.
std::optional<ReportToRecord> build_report(const SightingsStore& store, const std::string& endpoint, const Change& c,
                                           unsigned max_listed, int64_t pending_since_ms) {
  const std::vector<SightedMessage> seen = store.where_seen(c.sha256, kScanMessages);
  Json messages = Json::array();
  std::set<std::pair<std::string, std::string>> names;  // (file name, archive path)
  uint64_t total = 0;
  for (const SightedMessage& m : seen) {
    // A message that waits for this appliance's own analysis (verdict pending, younger than
    // analysis.max_age_h) gets its final verdict from that analysis: not this report's to tell.
    if (m.disposition == "pending" && m.time_ms >= pending_since_ms) continue;
    const SightedFile* hit = nullptr;
    for (const SightedFile& f : m.files)
      if (f.sha256 == c.sha256 && normal(f.reputation) != c.new_disposition) {
        hit = &f;
        break;
      }
    if (!hit) continue;
    ++total;
    names.emplace(hit->filename, hit->archive_path);
    if (messages.size() >= max_listed) continue;
    Json j = {{"time", rfc3339(m.time_ms * 1000)},
              {"appliance", m.appliance},
              {"flow_id", m.flow_id},
              {"transaction", m.transaction},
              {"client_ip", m.client_ip},
              {"client_port", m.client_port},
              {"server_ip", m.server_ip},
              {"server_port", m.server_port},
              {"message_id", m.message_id},
              {"message_sha256", m.message_sha256},
              {"subject", m.subject},
              {"mail_from", m.mail_from},
              {"rcpt_to", m.rcpt_to},
              {"header_from", m.header_from},
              {"header_to", m.header_to},
              {"header_cc", m.header_cc},
              {"filename", hit->filename},
              {"reputation_then", normal(hit->reputation)},
              {"disposition_then", m.disposition},
              {"action_then", m.action}};
    if (!hit->archive_path.empty()) j["archive_path"] = hit->archive_path;
    if (!hit->reading.empty()) j["reading"] = hit->reading;
    messages.push_back(std::move(j));
  }
  if (total == 0) return std::nullopt;
  Json files = Json::array();
  for (const auto& [name, path] : names) {
    Json f = {{"filename", name}};
    if (!path.empty()) f["archive_path"] = path;
    files.push_back(std::move(f));
  }
  Json body = {{"sha256", c.sha256},
               {"old", c.old_disposition},
               {"new", c.new_disposition},
               {"threat_name", c.threat_name.empty() ? Json() : Json(c.threat_name)},
               {"changed_at", c.changed_at},
               {"source", endpoint},
               {"files", std::move(files)},
               {"messages_total", total},
               {"messages_listed", messages.size()},
               {"messages", std::move(messages)}};
  return ReportToRecord{c.key, c.sha256, body.dump(-1, ' ', false, Json::error_handler_t::replace)};
}

// The alert of a report: one sentence naming the file, the change, and each message listed.
Alert report_alert(const Json& r) {
  const std::string now = r.value("new", ""), was = r.value("old", "");
  std::string file;
  for (const Json& f : r["files"]) {
    if (!file.empty()) file += ", ";
    file += f.contains("archive_path") ? "'" + f.value("archive_path", "") + "' in '" + f.value("filename", "") + "'"
                                       : "'" + f.value("filename", "") + "'";
  }
  const std::string sha = r.value("sha256", "");
  std::string text = "retrospective verdict: file " + (file.empty() ? std::string("(no name)") : file) + " (SHA-256 " +
                     sha + ") is now " + now;
  if (r["threat_name"].is_string()) text += " (" + r["threat_name"].get<std::string>() + ")";
  text += ", was " + was + " (source " + r.value("source", "") + ", changed " + r.value("changed_at", "") + "); it " +
          "passed in " + std::to_string(r.value("messages_total", 0)) + " message(s):";
  unsigned n = 0;
  for (const Json& m : r["messages"]) {
    if (n++ == 10) {
      text += " ...";
      break;
    }
    std::string rcpts;
    for (const Json& a : m["rcpt_to"]) rcpts += (rcpts.empty() ? "" : ", ") + a.get<std::string>();
    text += (n > 1 ? ";" : "") + std::string(" '") + m.value("subject", "") + "' from " + m.value("mail_from", "") +
            " to " + rcpts + " at " + m.value("time", "") + " (Message-ID " + m.value("message_id", "") + ")";
  }
  text += now == "malicious" ? ". Find these messages in the recipients' mailboxes and remove them."
                             : ". Review what was done with these messages.";
  Alert a{"retrospective_verdict",
          now == "malicious"   ? Severity::critical
          : was == "malicious" ? Severity::warning
                               : Severity::info,
          std::move(text), std::nullopt, r.value("source", "")};
  a.details = {{"sha256", sha}, {"old", was}, {"new", now}, {"messages", r.value("messages_total", 0)}};
  return a;
}

std::set<std::string> shas(const std::vector<StoredReport>& reports) {
  std::set<std::string> out;
  for (const StoredReport& r : reports) out.insert(r.sha256);
  return out;
}

// A store job's part of recording changes: their reports built and written with the re-look-ups
// and the cursor, in one transaction.
struct Recorded {
  bool ok = false;
  std::string error;
  std::vector<StoredReport> inserted;
};
Recorded record_changes(SightingsStore& st, const std::string& endpoint, const std::vector<Change>& changes,
                        const std::vector<Recheck>& rechecks, const std::string* cursor, unsigned max_listed,
                        int64_t pending_since_ms) {
  std::vector<ReportToRecord> reports;
  for (const Change& c : changes)
    if (auto r = build_report(st, endpoint, c, max_listed, pending_since_ms)) reports.push_back(std::move(*r));
  Recorded out;
  out.ok = st.record(endpoint, reports, rechecks, cursor, wall_ms(), out.inserted, out.error);
  return out;
}

}  // namespace

struct Retrospective::Endpoint {
  EndpointConfig cfg;
  bool feed = false;  // sluice kind; else virustotal (re-look-ups)
  std::shared_ptr<http::Pool> pool;
  std::string cursor;    // as stored
  unsigned read = 0;     // feed entries read in this heartbeat
  bool reset = false;    // the cursor was refused in this heartbeat
  bool ready = true;     // added at run time: false until its stored cursor is read
  bool removed = false;  // removed at run time: never asked again
  unsigned failed = 0;   // heartbeats in a row whose part for this endpoint failed
  bool alerted = false;  // retrospective_endpoint_failing raised, not yet recovered
};

Retrospective::Retrospective(const Config& config, ServiceLoop& loop, pipeline::VerdictCache* cache, Output out)
    : config_(config), loop_(loop), cache_(cache), out_(std::move(out)), collector_(config.sightings.appliance) {
  if (!config.sightings.path.empty()) {
    SightingsOpen o = SightingsStore::open(config.sightings.path, config.sightings.limits);
    if (!o.error.empty()) startup_alerts_.push_back({"sightings_problem", Severity::warning, o.error, std::nullopt, ""});
    store_ = std::move(o.store);
    if (store_) store_->prune(wall_ms());
  }
  for (const EndpointConfig& c : config.reputation.endpoints) {
    auto e = std::make_unique<Endpoint>();
    e->cfg = c;
    e->feed = c.kind == "sluice";
    if (store_ && e->feed) e->cursor = store_->cursor(c.name);
    endpoints_.push_back(std::move(e));
  }
}

Retrospective::~Retrospective() {
  *alive_ = false;
  for (auto& e : endpoints_)
    if (e->pool) e->pool->close();
}

void Retrospective::on_record(const void* record, std::size_t size) {
  if (store_) collector_.on_record(record, size, wall_ms());
}

void Retrospective::learned(const std::string& sha256, const std::string& disposition) {
  if (!store_ || !valid_disposition(disposition)) return;
  collector_.learned(sha256, disposition);
  for (SightedMessage& m : sightings_) adopt_learned(m, sha256, disposition);
  store_job([sha256, disposition, since = pending_since()](SightingsStore& st) { st.adopt(sha256, disposition, since); });
}

int64_t Retrospective::pending_since() const {
  // A submission ages out after analysis.max_age_h; an hour more for the polls and the releases.
  return wall_ms() - (int64_t{config_.analysis.settings.max_age_h} + 1) * 3'600'000;
}

// ---- the store's serial queue ----

void Retrospective::store_job(StoreJob job) {
  // The sightings waiting go first: a job that reads them (a feed page's where_seen) must see every
  // message that came before it.
  queue_sightings();
  jobs_.push_back(std::move(job));
  run_next_job();
}

bool Retrospective::read_store(std::function<void(SightingsStore&)> job) {
  if (!store_ || stopping_) return false;
  store_job(std::move(job));
  return true;
}

void Retrospective::queue_sightings() {
  if (sightings_.empty() && !prune_due_) return;
  // Sightings go in one transaction, whatever came since the last one.
  auto batch = std::make_shared<std::vector<SightedMessage>>(std::move(sightings_));
  sightings_.clear();
  const bool prune = std::exchange(prune_due_, false);
  jobs_.push_back([this, &loop = loop_, batch, prune, now = wall_ms()](SightingsStore& st) {
    std::string error;
    if (!batch->empty() && !st.add(*batch, error)) {
      loop.post([this, alive = std::weak_ptr<bool>(alive_), error] {
        if (alive.expired()) return;
        if (sightings_failed_++ % 100 == 0) std::fprintf(stderr, "sluiced: %s\n", error.c_str());
      });
    }
    if (prune) st.prune(now);
  });
}

void Retrospective::run_next_job() {
  if (job_running_ || stopping_ || !store_) return;
  if (jobs_.empty()) queue_sightings();
  if (jobs_.empty()) return;
  StoreJob job = std::move(jobs_.front());
  jobs_.pop_front();
  job_running_ = true;
  auto shared = std::make_shared<StoreJob>(std::move(job));
  const bool queued = loop_.submit([this, &loop = loop_, shared, st = store_.get(), alive = std::weak_ptr<bool>(alive_)] {
    (*shared)(*st);
    loop.post([this, alive] {
      if (alive.expired()) return;
      job_running_ = false;
      run_next_job();
    });
  });
  if (!queued) {  // the pool is full: again on the next pump
    jobs_.push_front(std::move(*shared));
    job_running_ = false;
  }
}

void Retrospective::pump_sightings(bool prune) {
  if (!store_) return;
  prune_due_ |= prune;
  for (auto& m : collector_.take(wall_ms())) sightings_.push_back(std::move(m));
  if (sightings_.size() > kMaxQueuedSightings) {
    const std::size_t n = sightings_.size() - kMaxQueuedSightings;
    sightings_.erase(sightings_.begin(), sightings_.begin() + static_cast<std::ptrdiff_t>(n));
    sightings_dropped_ += n;
  }
  run_next_job();
}

// ---- the heartbeat ----

void Retrospective::start() {
  for (auto& e : endpoints_) {
    if (!e->feed && !store_) continue;  // a re-look-up needs the sightings
    try {
      e->pool = http::Pool::create(loop_.io(), endpoint_pool_options(e->cfg));
    } catch (const std::exception& x) {  // validated at load: not expected
      std::fprintf(stderr, "sluiced: retrospective: endpoint '%s': %s\n", e->cfg.name.c_str(), x.what());
    }
  }
  if (store_) {
    loop_.every(std::chrono::milliseconds(200), [this] {
      pump_sightings(false);
      return true;
    });
    loop_.every(std::chrono::hours(1), [this] {
      pump_sightings(true);
      return true;
    });
    // Reports a crash left undelivered.
    store_job([this, &loop = loop_, alive = std::weak_ptr<bool>(alive_)](SightingsStore& st) {
      std::vector<StoredReport> left;
      for (int64_t after = 0;;) {
        auto more = st.undelivered(1000, after);
        if (more.empty()) break;
        after = more.back().id;
        for (auto& r : more) left.push_back(std::move(r));
      }
      if (left.empty()) return;
      loop.post([this, alive, left = std::move(left)]() mutable {
        if (!alive.expired()) deliver(std::move(left));
      });
    });
  }
  loop_.every(std::chrono::seconds(config_.retrospective.interval_s), [this] {
    heartbeat_now();
    return true;
  });
  heartbeat_now();
}

void Retrospective::heartbeat_now() {
  if (running_) {
    again_ = true;
    return;
  }
  begin_heartbeat();
}

void Retrospective::begin_heartbeat() {
  running_ = true;
  again_ = false;
  ++stats_.heartbeats;
  began_ = std::chrono::steady_clock::now();
  open_ = 0;
  for (auto& e : endpoints_)
    if (asked(*e)) ++open_;
  if (open_ == 0) {
    running_ = false;
    startup_done_ = true;
    return;
  }
  // Sightings first: a message seen just now is in the store before its file's change is read.
  pump_sightings(false);
  for (auto& e : endpoints_) {
    if (!asked(*e)) continue;
    e->read = 0;
    e->reset = false;
    if (e->feed)
      fetch_feed(*e);
    else
      recheck(*e);
  }
}

bool Retrospective::asked(const Endpoint& e) const noexcept { return e.pool && e.ready && !e.removed; }

void Retrospective::add_endpoint(const EndpointConfig& c) {
  auto e = std::make_unique<Endpoint>();
  e->cfg = c;
  e->feed = c.kind == "sluice";
  if (!e->feed && !store_) return;  // a re-look-up needs the sightings
  try {
    e->pool = http::Pool::create(loop_.io(), endpoint_pool_options(c));
  } catch (const std::exception& x) {  // validated by the API: not expected
    std::fprintf(stderr, "sluiced: retrospective: endpoint '%s': %s\n", c.name.c_str(), x.what());
    return;
  }
  Endpoint* added = e.get();
  endpoints_.push_back(std::move(e));
  if (!store_ || !added->feed || stopping_) return;
  added->ready = false;  // its cursor first: a feed read from the beginning would report old changes again
  store_job([added, name = c.name, &loop = loop_, alive = std::weak_ptr<bool>(alive_)](SightingsStore& st) {
    std::string cursor = st.cursor(name);
    loop.post([added, cursor = std::move(cursor), alive] {
      if (alive.expired()) return;
      added->cursor = cursor;
      added->ready = true;
    });
  });
}

void Retrospective::remove_endpoint(const std::string& name) {
  for (auto& e : endpoints_)
    if (e->cfg.name == name && !e->removed) e->removed = true;  // its requests in flight end as they may
}

void Retrospective::endpoint_done(Endpoint& e, bool ok, const std::string& why) {
  if (!ok) ++stats_.endpoint_errors;
  if (ok) {
    if (e.alerted)
      out_.alert({"retrospective_endpoint_recovered", Severity::info,
                  "reputation endpoint '" + e.cfg.name + "' answers the heartbeat again (after " +
                      std::to_string(e.failed) + " failed in a row); the changes of meanwhile are read now",
                  std::nullopt, e.cfg.name});
    e.failed = 0;
    e.alerted = false;
  } else if (++e.failed >= config_.retrospective.failures_before_alert && !e.alerted) {
    e.alerted = true;
    out_.alert({"retrospective_endpoint_failing", Severity::warning,
                "reputation endpoint '" + e.cfg.name + "' failed " + std::to_string(e.failed) +
                    " heartbeats in a row" + (why.empty() ? "" : " (" + why + ")") +
                    ": verdicts that change meanwhile are not reported until it answers (nothing is lost: its "
                    "cursor stays); check the endpoint and the network to it",
                std::nullopt, e.cfg.name});
  }
  if (open_ > 0 && --open_ == 0) {
    ++stats_.completed;
    stats_.last_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - began_).count());
    running_ = false;
    startup_done_ = true;
    if (again_) begin_heartbeat();
  }
}

void Retrospective::fetch_feed(Endpoint& e) {
  http::Request rq;
  rq.target = "/api/v1/dispositions/changes?limit=" + std::to_string(kPageSize) +
              (e.cursor.empty() ? "" : "&since=" + query_value(e.cursor));
  rq.headers = {{"x-apikey", e.cfg.api_key}, {"Accept", "application/json"}};
  rq.timeout = std::chrono::milliseconds(e.cfg.request_timeout_ms);
  rq.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(e.cfg.connect_timeout_ms) + rq.timeout;
  const bool sent = e.pool->send(std::move(rq), [this, &e, alive = std::weak_ptr<bool>(alive_)](http::Response r) {
    if (alive.expired()) return;
    if (r.failure != http::Failure::none) {
      std::fprintf(stderr, "sluiced: retrospective: %s: change feed: %s\n", e.cfg.name.c_str(), r.detail.c_str());
      return endpoint_done(e, false, r.detail);
    }
    feed_page(e, r.status, r.body);
  });
  if (!sent) endpoint_done(e, false, "its connections are closed");
}

void Retrospective::feed_page(Endpoint& e, unsigned status, const std::string& body) {
  FeedPage page = parse_change_page(status, body, kPageSize);
  if (page.cursor_refused && !e.cursor.empty() && !e.reset) {
    // A cursor of a store that is gone: read this feed again from its beginning.
    ++stats_.cursor_resets;
    Alert a{"retrospective_cursor_reset", Severity::warning,
            "reputation endpoint '" + e.cfg.name + "' refused the change feed cursor " + e.cursor +
                " (its store was recreated, or it is another service now): reading its feed from the beginning",
            std::nullopt, e.cfg.name};
    out_.alert(a);
    e.reset = true;
    e.cursor.clear();
    return fetch_feed(e);
  }
  if (!page.problem.empty()) {
    std::fprintf(stderr, "sluiced: retrospective: %s: change feed: %s\n", e.cfg.name.c_str(), page.problem.c_str());
    return endpoint_done(e, false, page.problem);
  }
  std::vector<Change> changes;
  for (FeedChange& f : page.changes) {
    Change c;
    c.key = "feed:" + f.changed_at + ":" + f.new_disposition;
    c.sha256 = std::move(f.sha256);
    c.old_disposition = std::move(f.old_disposition);
    c.new_disposition = std::move(f.new_disposition);
    c.threat_name = std::move(f.threat_name);
    c.changed_at = std::move(f.changed_at);
    changes.push_back(std::move(c));
  }
  const std::string cursor = page.cursor;
  const bool more = page.more;
  stats_.changes += changes.size();
  e.read += static_cast<unsigned>(changes.size());
  const bool again = more && !changes.empty() && e.read < config_.retrospective.max_changes;
  auto apply = [this, &e, changes, cursor, again](bool recorded, const std::set<std::string>& reported) {
    if (!recorded) return endpoint_done(e, false, "the sightings store could not record the changes");
    e.cursor = cursor;
    for (const Change& c : changes) update_cache(c.sha256, c.new_disposition, c.threat_name, reported.count(c.sha256));
    if (again) return fetch_feed(e);
    endpoint_done(e, true);
  };
  if (!store_) return apply(true, {});  // nothing seen is kept: cached verdicts alone are updated
  store_job([this, changes = std::move(changes), cursor, apply, alive = std::weak_ptr<bool>(alive_),
             max_listed = config_.retrospective.max_messages_listed, name = e.cfg.name,
             since = pending_since()](SightingsStore& st) {
    Recorded r = record_changes(st, name, changes, {}, &cursor, max_listed, since);
    loop_.post([this, alive, apply, r = std::move(r)]() mutable {
      if (alive.expired()) return;
      const std::set<std::string> reported = shas(r.inserted);
      recorded(r.ok, r.error, std::move(r.inserted));
      apply(r.ok, reported);
    });
  });
}

void Retrospective::recorded(bool ok, const std::string& error, std::vector<StoredReport> inserted) {
  if (!ok) {
    ++stats_.store_errors;
    std::fprintf(stderr, "sluiced: retrospective: %s\n", error.c_str());
  }
  if (!inserted.empty()) deliver(std::move(inserted));
}

void Retrospective::recheck(Endpoint& e) {
  const int64_t since = wall_ms() - int64_t{config_.retrospective.recheck_days} * 86'400'000;
  store_job([this, &e, since, budget = config_.retrospective.recheck_budget, name = e.cfg.name,
             alive = std::weak_ptr<bool>(alive_)](SightingsStore& st) {
    auto candidates = st.recheck_candidates(name, since, budget);
    loop_.post([this, &e, alive, candidates = std::move(candidates)] {
      if (alive.expired()) return;
      if (candidates.empty()) return endpoint_done(e, true);
      // At most max_connections look-ups at a time; a 429 ends the round (the rest wait for the next
      // heartbeat). Every answer is gathered, then the changes and the re-look-ups are recorded
      // together.
      struct Round {
        std::vector<std::pair<std::string, std::string>> asked;
        std::vector<std::optional<HashAnswer>> answers;
        std::size_t next = 0, in_flight = 0;
        bool failed = false, stop = false, finished = false;
        std::function<void()> pump;  // holds the round weakly (the callbacks hold it)
      };
      auto round = std::make_shared<Round>();
      round->asked = candidates;
      round->answers.resize(candidates.size());
      auto finish_round = [this, &e, weak = std::weak_ptr<Round>(round), alive] {
        auto round = weak.lock();
        if (!round || round->finished) return;
        round->finished = true;
        std::vector<Change> changes;
        std::vector<Recheck> rechecks;
        const int64_t now = wall_ms();
        for (std::size_t i = 0; i < round->asked.size(); ++i) {
          if (!round->answers[i]) continue;
          const HashAnswer& a = *round->answers[i];
          const std::string d(records::reputation_name(a.reputation));
          rechecks.push_back({round->asked[i].first, d, now});
          ++stats_.rechecks;
          if (d == normal(round->asked[i].second)) continue;
          Change c;
          c.sha256 = round->asked[i].first;
          c.old_disposition = normal(round->asked[i].second);
          c.new_disposition = d;
          c.threat_name = a.threat_name;
          c.changed_at = rfc3339(now * 1000);
          c.key = "recheck:" + c.changed_at + ":" + d;
          changes.push_back(std::move(c));
        }
        stats_.changes += changes.size();
        if (rechecks.empty()) return endpoint_done(e, false, "no re-look-up was answered");
        store_job([this, &e, changes, rechecks = std::move(rechecks), alive, failed = round->failed,
                   max_listed = config_.retrospective.max_messages_listed, name = e.cfg.name,
                   since = pending_since()](SightingsStore& st) {
          Recorded r = record_changes(st, name, changes, rechecks, nullptr, max_listed, since);
          loop_.post([this, &e, alive, failed, changes, r = std::move(r)]() mutable {
            if (alive.expired()) return;
            const std::set<std::string> reported = shas(r.inserted);
            if (r.ok)
              for (const Change& c : changes)
                update_cache(c.sha256, c.new_disposition, c.threat_name, reported.count(c.sha256));
            recorded(r.ok, r.error, std::move(r.inserted));
            endpoint_done(e, r.ok && !failed, r.ok ? "a re-look-up failed" : "the sightings store could not record");
          });
        });
      };
      round->pump = [this, &e, weak = std::weak_ptr<Round>(round), finish_round, alive] {
        auto round = weak.lock();
        if (!round) return;
        while (!round->stop && round->next < round->asked.size() && round->in_flight < e.cfg.max_connections) {
          const std::size_t i = round->next++;
          const auto call = reputation::vt_lookup(round->asked[i].first);
          http::Request rq;
          rq.method = call.method;
          rq.target = call.target;
          rq.headers = {{"x-apikey", e.cfg.api_key}, {"Accept", "application/json"}};
          rq.timeout = std::chrono::milliseconds(e.cfg.request_timeout_ms);
          rq.deadline =
              std::chrono::steady_clock::now() + std::chrono::milliseconds(e.cfg.connect_timeout_ms) + rq.timeout;
          ++round->in_flight;
          const bool sent = e.pool->send(std::move(rq), [this, &e, round, i, alive](http::Response r) {
            if (alive.expired()) return;
            --round->in_flight;
            std::string problem;
            if (r.failure != http::Failure::none) {
              problem = r.detail;
            } else {
              auto p = reputation::parse_vt_lookup(r.status, r.body, r.retry_after, round->asked[i].first,
                                                   e.cfg.vt_malicious_threshold);
              if (p.kind == reputation::Parsed::Kind::answered && p.answers.size() == 1)
                round->answers[i] = p.answers[0];
              else
                problem = p.detail;
              if (p.kind == reputation::Parsed::Kind::rate_limited) round->stop = true;
            }
            if (!problem.empty()) {
              round->failed = true;
              std::fprintf(stderr, "sluiced: retrospective: %s: re-look-up: %s\n", e.cfg.name.c_str(),
                           problem.c_str());
            }
            round->pump();
          });
          if (!sent) {
            --round->in_flight;
            round->failed = round->stop = true;
          }
        }
        if (round->in_flight == 0 && (round->stop || round->next >= round->asked.size())) finish_round();
      };
      round->pump();
    });
  });
}

void Retrospective::update_cache(const std::string& sha256, const std::string& disposition,
                                 const std::string& threat_name, bool seen) {
  std::array<uint8_t, 32> bin{};
  if (!cache_ || !parse_sha256_hex(sha256, bin)) return;
  const int64_t now = wall_ms();
  records::FileVerdict v;
  // A verdict the cache holds is replaced; a file this appliance saw is put in, so that its next
  // message is decided at once. Any other file is left to its look-up: a feed read from its
  // beginning would otherwise fill the cache with files nobody here sends.
  if (!seen && !cache_->lookup(bin.data(), now, v)) return;
  v = records::FileVerdict{};
  const auto& l = config_.reputation.limits;
  unsigned ttl = l.ttl_unknown_s;
  v.reputation = records::Reputation::unknown;
  if (disposition == "malicious") {
    v.reputation = records::Reputation::malicious;
    ttl = l.ttl_malicious_s;
  } else if (disposition == "clean") {
    v.reputation = records::Reputation::clean;
    ttl = l.ttl_clean_s;
  }
  v.threat_name.set(threat_name);
  v.source = records::kSourceCache;
  cache_->put(bin.data(), v, now + int64_t{ttl} * 1000, now);
  ++stats_.cache_updates;
}

void Retrospective::deliver(std::vector<StoredReport> reports) {
  std::vector<int64_t> ids;
  for (StoredReport& r : reports) {
    Json body = Json::parse(r.body, nullptr, false);
    ids.push_back(r.id);
    if (!body.is_object()) continue;  // written by us: not expected
    body["report_id"] = r.id;
    body["reported_at"] = rfc3339(r.created_ms * 1000);
    Alert a = report_alert(body);
    out_.event("retrospective", std::move(body));
    out_.alert(a);
    ++stats_.reports;
  }
  // Marked once the lines are on disk (a crash before that sends them again at the next start).
  out_.after_written([this, ids = std::move(ids), alive = std::weak_ptr<bool>(alive_)] {
    if (alive.expired()) return;
    store_job([ids, this, &loop = loop_, alive](SightingsStore& st) {
      std::string error;
      if (!st.mark_delivered(ids, error))
        loop.post([this, alive, error] {
          if (alive.expired()) return;
          ++stats_.store_errors;
          std::fprintf(stderr, "sluiced: retrospective: %s\n", error.c_str());
        });
    });
  });
}

bool Retrospective::idle() const noexcept { return !running_ && !job_running_ && jobs_.empty(); }

Json Retrospective::sightings_stats() const {
  const auto& c = collector_.stats();
  return {{"recorded", c.ready},         {"without_files", c.without_files}, {"incomplete", c.incomplete},
          {"pending", c.pending},        {"queued", sightings_.size()},     {"dropped", sightings_dropped_},
          {"write_errors", sightings_failed_}};
}

Json Retrospective::stats() const {
  Json cursors = Json::object();
  for (const auto& e : endpoints_)
    if (e->feed && !e->removed) cursors[e->cfg.name] = e->cursor;
  return {{"heartbeats", stats_.heartbeats},       {"completed", stats_.completed},
          {"last_ms", stats_.last_ms},
          {"changes", stats_.changes},
          {"rechecks", stats_.rechecks},           {"reports", stats_.reports},
          {"cache_updates", stats_.cache_updates}, {"endpoint_errors", stats_.endpoint_errors},
          {"cursor_resets", stats_.cursor_resets}, {"store_errors", stats_.store_errors},
          {"cursors", std::move(cursors)}};
}

void Retrospective::finish() {
  for (auto& e : endpoints_)
    if (e->pool) e->pool->close();
  if (!store_) return;
  // The jobs the loop did not get to (the pool is idle now): a page recorded here has its reports
  // kept undelivered, for the next start; a batch of sightings is written.
  stopping_ = true;
  queue_sightings();
  while (!jobs_.empty()) {
    StoreJob job = std::move(jobs_.front());
    jobs_.pop_front();
    job(*store_);
  }
  for (auto& m : collector_.flush_all()) sightings_.push_back(std::move(m));  // every message seen
  if (sightings_.empty()) return;
  std::string error;
  if (!store_->add(sightings_, error)) {
    ++sightings_failed_;
    std::fprintf(stderr, "sluiced: %s\n", error.c_str());
  }
  sightings_.clear();
}

}  // namespace sluice::control
