#include "control/file_analysis.h"

#include <cstring>

#include "control/preclass_pool.h"
#include "control/quarantine_store.h"
#include "control/submission_store.h"
#include "pipeline/preclass.h"

namespace sluice::control {

FileAnalysis::FileAnalysis(const Config& config, ServiceLoop& loop) : config_(config), loop_(loop) {
  const AnalysisConfig& a = config.analysis;
  if (a.endpoints.empty()) return;
  std::string why;
  preclassifier_ = pipeline::Preclassifier::create(pipeline::PreclassLimits{}, pipeline::default_signatures_dir(), why);
  if (!preclassifier_) {
    error_ = "analysis: ClamAV pre-classification cannot start: " + why;
    return;
  }
  enabled_ = true;
  PreclassPoolLimits pl;
  pl.threads = a.scan_threads;
  pl.max_queued = a.scan_queue;
  pool_ = std::make_unique<PreclassPool>(*preclassifier_, pl);
  std::string names;
  for (const auto& e : a.endpoints) names += (names.empty() ? "" : ", ") + e.name + " (" + e.kind + ")";
  summary_ = "analysis endpoints " + names + "; " + std::to_string(preclassifier_->signature_count()) +
             " pre-classification signatures, " + std::to_string(a.scan_threads) + " scan thread(s)";
  if (a.submissions_path.empty()) {
    summary_ += "; submissions not kept across restarts and no quarantine (no state.dir)";
    return;
  }
  if (!a.quarantine_dir.empty()) {
    auto q = QuarantineStore::open(a.quarantine_dir, a.quarantine);
    if (!q.store) {
      error_ = "analysis: the quarantine in " + a.quarantine_dir + " cannot be used: " + q.error;
      enabled_ = false;
      return;
    }
    for (const auto& problem : q.problems)
      startup_alerts_.push_back({"quarantine_problem", Severity::warning, problem, std::nullopt, ""});
    quarantine_ = std::move(q.store);
    const auto& st = quarantine_->stats();
    summary_ += "; quarantine " + a.quarantine_dir + " (" + std::to_string(st.held) + " held, " +
                std::to_string(st.released) + " released)";
  }
  SubmissionLimits sl;
  sl.max_age_h = a.settings.max_age_h;
  auto opened = SubmissionStore::open(a.submissions_path, sl);
  if (!opened.error.empty())
    startup_alerts_.push_back({"submissions_corrupt", Severity::warning, opened.error, std::nullopt, ""});
  store_ = std::move(opened.store);
  if (store_)
    summary_ += "; " + std::to_string(store_->pending().size()) + " pending submission(s) in " + a.submissions_path;
}

FileAnalysis::~FileAnalysis() { stop(); }

void FileAnalysis::start(std::vector<pipeline::LookupLane*> lanes, pipeline::VerdictCache* cache, Outputs out) {
  if (!enabled_) return;
  alert_ = out.alert;
  const auto& endpoints = config_.analysis.endpoints;
  for (const auto& e : endpoints) endpoints_.push_back({e.name, e.url, false});
  client_ = std::make_unique<AnalysisClient>(
      loop_.io(), endpoints,
      [this](const EndpointEvent& e) {
        if (!alert_ || e.endpoint < 0 || static_cast<std::size_t>(e.endpoint) >= endpoints_.size()) return;
        const auto& name = endpoints_[e.endpoint].name;
        if (e.reachable)
          alert_({"analysis_endpoint_recovered", Severity::info,
                  "analysis endpoint " + name + " answers again (" + e.detail + ")", std::nullopt, name});
        else
          alert_({"analysis_endpoint_unreachable", Severity::warning,
                  "analysis endpoint " + name + " is unreachable (" + e.detail + "); candidate files are not sent "
                  "(not_sent: unreachable) and their messages go on",
                  std::nullopt, name});
      },
      [this](std::function<void()> job) { return loop_.submit(std::move(job)); });
  pool_->start();
  AnalysisHooks hooks;
  hooks.event = std::move(out.event);
  hooks.verdict = std::move(out.verdict);
  hooks.alert = out.alert;
  hooks.policy = std::move(out.policy);
  hooks.quarantined = std::move(out.quarantined);
  hooks.polled = std::move(out.polled);
  hooks.blocking = [this](std::function<void()> job) { loop_.submit_ordered(std::move(job)); };
  hooks.post = [this](std::function<void()> job) { loop_.post(std::move(job)); };
  hooks.classify = [this](std::shared_ptr<const std::string> bytes, std::string filename,
                          std::function<void(pipeline::PreclassResult)> done) {
    return pool_->submit(std::move(bytes), std::move(filename), std::move(done), loop_.io());
  };
  service_ = std::make_unique<AnalysisService>(config_.analysis.settings, *client_, store_.get(), cache,
                                               std::move(lanes), std::move(hooks), quarantine_.get());
  service_->start();
}

void FileAnalysis::poll() {
  if (service_) service_->poll();
}

void FileAnalysis::tick() {
  if (service_) service_->tick();
}

void FileAnalysis::on_record(const void* record, std::size_t size) {
  if (!service_ || size < sizeof(records::RecordType)) return;
  records::RecordType type;
  std::memcpy(&type, record, sizeof type);
  if (type == records::RecordType::verdict && size >= sizeof(records::VerdictRecord)) {
    records::VerdictRecord v;
    std::memcpy(static_cast<void*>(&v), record, sizeof v);
    if (v.disposition == records::Disposition::pending) service_->on_verdict(v);
  } else if (type == records::RecordType::message && size >= sizeof(records::MessageRecord) && quarantine_) {
    service_->on_message(*static_cast<const records::MessageRecord*>(record));
  }
}

Json FileAnalysis::stats() const {
  if (!enabled_) return Json();
  if (stopped_) return final_stats_;
  Json j = service_ ? service_->stats() : Json::object();
  const PreclassPoolStats p = pool_->stats();
  j["scans"] = {{"submitted", p.submitted}, {"rejected_full", p.rejected_full}, {"done", p.done},
                {"failed", p.failed}, {"busy_ms", p.busy_ms}, {"bytes", p.bytes}, {"queued", p.queued}};
  if (client_) j["endpoints"] = endpoints_json(client_->status());
  return j;
}

void FileAnalysis::stop() {
  if (stopped_ || !enabled_) return;
  final_stats_ = stats();
  stopped_ = true;
  if (service_) service_->stop();
  if (client_) client_->stop();
  if (pool_) pool_->stop();
  loop_.drain_pool();  // the stores' last writes
}

bool FileAnalysis::quarantine_job(std::function<void(QuarantineStore&)> job) {
  if (!quarantine_ || stopped_) return false;
  return loop_.submit_ordered([q = quarantine_.get(), job = std::move(job)] { job(*q); });
}

bool FileAnalysis::test_endpoint(const std::string& name, std::function<void(Json)> done) {
  if (!client_ || stopped_) return false;
  return client_->test_endpoint(name, [name, done = std::move(done)](AnalysisClient::TestResult t) {
    done({{"section", "analysis"}, {"name", name}, {"ok", t.ok}, {"status", t.status}, {"latency_ms", t.latency_ms},
          {"detail", t.detail}});
  });
}

Json FileAnalysis::endpoints_status() const {
  Json out = Json::array();
  if (!client_ || stopped_) return out;
  for (const auto& st : client_->status()) {
    std::string url;
    bool added = false;
    for (const auto& e : endpoints_)
      if (!e.removed && e.name == st.name) url = e.url, added = e.added;
    out.push_back({{"section", "analysis"}, {"name", st.name}, {"kind", st.kind}, {"url", url},
                   {"reachable", st.reachable}, {"circuit", st.circuit_open ? "open" : "closed"},
                   {"requests", st.requests}, {"failures", st.failures}, {"timeouts", st.timeouts},
                   {"rate_limited", st.rate_limited}, {"last_latency_ms", st.last_latency_ms},
                   {"added_at_run_time", added}});
  }
  return out;
}

std::string FileAnalysis::add_endpoint(const EndpointConfig& e) {
  if (!client_ || stopped_)
    return "file analysis is not running (it needs at least one analysis endpoint in the configuration at start)";
  std::string error;
  const int index = client_->add_endpoint(e, error);
  if (index < 0) return error;
  endpoints_.resize(static_cast<std::size_t>(index) + 1);
  endpoints_[index] = {e.name, e.url, true};
  return "";
}

bool FileAnalysis::remove_endpoint(const std::string& name) {
  if (!client_ || stopped_ || !client_->remove_endpoint(name)) return false;
  for (auto& e : endpoints_)
    if (!e.removed && e.name == name) e.removed = true;
  return true;
}

}  // namespace sluice::control
