// The metrics' collection and their two renderings (metrics.h).
#include "control/metrics.h"

#include <boost/asio/post.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <future>
#include <initializer_list>
#include <mutex>

#include "control/endpoint_health.h"
#include "records/verdict_records.h"

namespace sluice::control {
namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// A label value: '\', '"' and newline escaped.
std::string escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// Integers as integers; other values in their shortest exact form; infinities as Prometheus
// writes them.
std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 9.2e18) return std::to_string(static_cast<int64_t>(v));
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

class Collector {
 public:
  // A new family; samples go to it until the next.
  void family(std::string name, const char* type, std::string help) {
    m_.push_back({std::move(name), type, std::move(help), {}});
  }
  void sample(double v, Labels labels = {}) { m_.back().samples.push_back({m_.back().name, std::move(labels), v}); }
  // A counter family with one sample per value of one label.
  void by_label(std::string name, std::string help, const char* label,
                std::initializer_list<std::pair<const char*, uint64_t>> values) {
    family(std::move(name), "counter", std::move(help));
    for (const auto& [value, n] : values) sample(static_cast<double>(n), {{label, value}});
  }
  // One histogram series: `bounds` upper bounds in the family's unit, `counts` per bucket (not
  // cumulative) with one more for above the last bound.
  void histogram(const Labels& labels, const std::vector<double>& bounds, const std::vector<uint64_t>& counts,
                 double sum) {
    MetricFamily& f = m_.back();
    uint64_t seen = 0;
    for (std::size_t i = 0; i <= bounds.size(); ++i) {
      seen += i < counts.size() ? counts[i] : 0;
      Labels l = labels;
      l.emplace_back("le", i < bounds.size() ? number(bounds[i]) : "+Inf");
      f.samples.push_back({f.name + "_bucket", std::move(l), static_cast<double>(seen)});
    }
    f.samples.push_back({f.name + "_sum", labels, sum});
    f.samples.push_back({f.name + "_count", labels, static_cast<double>(seen)});
  }
  Metrics take() {
    Metrics out;
    for (auto& f : m_)
      if (!f.samples.empty()) out.push_back(std::move(f));
    return out;
  }

 private:
  Metrics m_;
};

double num(const Json& j, const char* key) {
  if (!j.is_object()) return 0;
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0;
}

bool has(const Json& j, const char* key) { return j.is_object() && j.contains(key) && !j[key].is_null(); }

// The data plane: ports, lcores, then sums across RX lcores.
void dataplane_metrics(Collector& c, const dataplane::StatsSnapshot& s) {
  using P = dataplane::PortStats;
  const std::pair<const char*, uint64_t P::*> port_counters[] = {
      {"rx_packets", &P::rx_packets}, {"rx_bytes", &P::rx_bytes},   {"tx_packets", &P::tx_packets},
      {"tx_bytes", &P::tx_bytes},     {"dropped", &P::dropped},     {"rx_missed", &P::rx_missed},
      {"rx_errors", &P::rx_errors},   {"tx_errors", &P::tx_errors}, {"rx_nombuf", &P::rx_nombuf}};
  for (const auto& [name, member] : port_counters) {
    c.family(std::string("sluice_port_") + name + "_total", "counter",
             std::string("The port's ") + name + " (sluiced's own, or the device's).");
    for (const P& p : s.ports) c.sample(static_cast<double>(p.*member), {{"port", p.name}});
  }
  c.family("sluice_port_link_up", "gauge", "1 when the port's link is up.");
  for (const P& p : s.ports) c.sample(p.link_up ? 1 : 0, {{"port", p.name}});

  using L = dataplane::LcoreStats;
  const std::pair<const char*, uint64_t L::*> lcore_counters[] = {
      {"rx_packets", &L::rx_packets}, {"rx_bytes", &L::rx_bytes}, {"tx_packets", &L::tx_packets},
      {"tx_bytes", &L::tx_bytes},     {"dropped", &L::dropped},   {"events", &L::events},
      {"events_dropped", &L::events_dropped}, {"idle_sleeps", &L::idle_sleeps}};
  for (const auto& [name, member] : lcore_counters) {
    c.family(std::string("sluice_lcore_") + name + "_total", "counter", std::string("The lcore's ") + name + ".");
    for (const L& l : s.lcores) c.sample(static_cast<double>(l.*member), {{"lcore", std::to_string(l.lcore)}, {"role", l.role}});
  }

  // Sums across the RX lcores (the worker lcores' hand-off counters are unused).
  pipeline::HandoffStats h{};
  reassembly::ReassemblyStats r{};
  dataplane::HoldCounters hold{};
  dataplane::EnforceCounters e{};
  uint64_t hold_dropped = 0, events_dropped = 0, frames_dropped = 0, results_dropped = 0, in_flight_full = 0;
  bool enforcing = false;
  for (const L& l : s.lcores) {
    events_dropped += l.events_dropped;
    frames_dropped += l.dropped;
    results_dropped += l.results_dropped;
    in_flight_full += l.worker.in_flight_full;
    if (l.role != "rx") continue;
    const auto& lh = l.handoff;
    h.verdicts_clean += lh.verdicts_clean;
    h.verdicts_malicious += lh.verdicts_malicious;
    h.verdicts_unscannable += lh.verdicts_unscannable;
    h.verdicts_pending += lh.verdicts_pending;
    for (unsigned k = 0; k < std::size(h.files_by_reputation); ++k) h.files_by_reputation[k] += lh.files_by_reputation[k];
    h.cache_hits += lh.cache_hits;
    h.cache_misses += lh.cache_misses;
    h.overload += lh.overload;
    h.lookups_queue_full += lh.lookups_queue_full;
    h.lookups_expired += lh.lookups_expired;
    h.analysis_queue_full += lh.analysis_queue_full;
    h.analysis_expired += lh.analysis_expired;
    h.spool_queue_full += lh.spool_queue_full;
    h.spool_misses += lh.spool_misses;
    h.digests_lost += lh.digests_lost;
    const auto& lr = l.reassembly;
    r.messages += lr.messages;
    r.flows_created += lr.flows_created;
    r.flows_table_full += lr.flows_table_full;
    r.sessions_pool_full += lr.sessions_pool_full;
    r.fragments_dropped += lr.fragments_dropped;
    r.fragments_evicted += lr.fragments_evicted;
    r.syns_dropped += lr.syns_dropped;
    r.flows_evicted += lr.flows_evicted;
    r.detect_probed += lr.detect_probed;
    r.detect_smtp += lr.detect_smtp;
    r.detect_not_smtp += lr.detect_not_smtp;
    r.detect_undecided += lr.detect_undecided;
    r.detect_evicted += lr.detect_evicted;
    r.acked_holes_filled += lr.acked_holes_filled;
    r.acked_holes_declared += lr.acked_holes_declared;
    hold.held += l.hold.held;
    hold.expired += l.hold.expired;
    hold.in_queue += l.hold.in_queue;
    hold.cap_reached += l.hold.cap_reached;
    hold_dropped += l.hold_dropped;
    if (!l.enforcing) continue;
    enforcing = true;
    const auto& le = l.enforce;
    e.passed += le.passed;
    e.rejected += le.rejected;
    e.deferred += le.deferred;
    e.expired += le.expired;
    e.gated += le.gated;
    e.latency_sum_us += le.latency_sum_us;
    for (unsigned b = 0; b < dataplane::kLatencyBuckets; ++b) e.latency_us[b] += le.latency_us[b];
  }
  c.family("sluice_messages_total", "counter", "Messages rebuilt from the wire.");
  c.sample(static_cast<double>(r.messages));
  c.by_label("sluice_verdicts_total", "Message verdicts by disposition (the lcores' verdict events).", "disposition",
             {{"clean", h.verdicts_clean}, {"malicious", h.verdicts_malicious},
              {"unscannable", h.verdicts_unscannable}, {"pending", h.verdicts_pending}});
  c.family("sluice_files_total", "counter",
           "File events (attachments and archive members) by reputation; none: not looked up.");
  for (unsigned k = 0; k < std::size(h.files_by_reputation); ++k)
    c.sample(static_cast<double>(h.files_by_reputation[k]),
             {{"reputation", std::string(records::reputation_name(static_cast<records::Reputation>(k)))}});
  c.by_label("sluice_verdict_cache_lookups_total", "Hashes the RX lcores looked up in the verdict cache.", "result",
             {{"hit", h.cache_hits}, {"miss", h.cache_misses}});
  c.family("sluice_flows_total", "counter", "TCP flows tracked.");
  c.sample(static_cast<double>(r.flows_created));
  c.by_label("sluice_detect_flows_total",
             "Flows off the SMTP ports judged by their first bytes (smtp.detect: content), by result: smtp, "
             "not_smtp, undecided (the probe's bounds, or the flow ended first), evicted (before a verdict).",
             "result",
             {{"smtp", r.detect_smtp}, {"not_smtp", r.detect_not_smtp}, {"undecided", r.detect_undecided},
              {"evicted", r.detect_evicted}});
  c.family("sluice_detect_probed_total", "counter", "Flows off the SMTP ports whose first bytes were judged.");
  c.sample(static_cast<double>(r.detect_probed));
  c.by_label("sluice_acked_holes_total",
             "Holes in a TCP stream that the other side acknowledged before their data was seen, by outcome: "
             "filled (the data came later: a tap delivering the directions out of step) or declared (a gap).",
             "outcome", {{"filled", r.acked_holes_filled}, {"declared", r.acked_holes_declared}});
  c.by_label("sluice_drops_total",
             "What the data plane dropped or could not track, by reason (the stats event's counter of that name).",
             "reason", {
      {"frames_dropped", frames_dropped},          {"events_dropped", events_dropped},
      {"flows_table_full", r.flows_table_full},    {"sessions_pool_full", r.sessions_pool_full},
      {"flows_evicted", r.flows_evicted},          {"syns_dropped", r.syns_dropped},
      {"fragments_dropped", r.fragments_dropped},  {"fragments_evicted", r.fragments_evicted},
      {"hold_dropped", hold_dropped},              {"hold_cap_reached", hold.cap_reached},
      {"overload", h.overload},                    {"in_flight_full", in_flight_full},
      {"results_dropped", results_dropped},        {"lookups_queue_full", h.lookups_queue_full},
      {"lookups_expired", h.lookups_expired},      {"analysis_queue_full", h.analysis_queue_full},
      {"analysis_expired", h.analysis_expired},    {"spool_queue_full", h.spool_queue_full},
      {"spool_misses", h.spool_misses},            {"digests_lost", h.digests_lost}});
  c.family("sluice_hold_held_total", "counter", "Frames held for a verdict.");
  c.sample(static_cast<double>(hold.held));
  c.family("sluice_hold_expired_total", "counter", "Held frames released by their deadline.");
  c.sample(static_cast<double>(hold.expired));
  c.family("sluice_hold_queue_frames", "gauge", "Frames held now.");
  c.sample(static_cast<double>(hold.in_queue));
  if (!enforcing) return;
  c.family("sluice_hold_queue_messages", "gauge", "Connections holding a message for its verdict now (inline).");
  c.sample(static_cast<double>(e.gated));
  c.by_label("sluice_enforce_messages_total", "Held messages by what enforcement did with them (inline).", "action",
             {{"passed", e.passed}, {"rejected", e.rejected}, {"deferred", e.deferred}, {"expired", e.expired}});
  // The enforcer's buckets are 4 per power of two of microseconds; every fourth bound (a power of
  // two) keeps the histogram short and its counts exact.
  c.family("sluice_hold_time_seconds", "histogram", "The latency holding added to each settled message (inline).");
  std::vector<double> bounds;
  std::vector<uint64_t> counts(1, 0);
  for (unsigned b = 0; b < dataplane::kLatencyBuckets; ++b) {
    if (b >= 4 && b % 4 == 0) {
      bounds.push_back(static_cast<double>(dataplane::latency_bucket_low(b)) / 1e6);
      counts.push_back(0);
    }
    counts.back() += e.latency_us[b];
  }
  c.histogram({}, bounds, counts, static_cast<double>(e.latency_sum_us) / 1e6);
}

// The endpoints of one service (the `endpoints` array of its stats section).
void endpoint_metrics(Collector& c, const std::vector<std::pair<std::string, const Json*>>& services) {
  const std::pair<const char*, const char*> counters[] = {
      {"requests", "Requests sent to the endpoint (health probes included)."},
      {"failures", "Requests that failed (no answer, an error answer, a timeout)."},
      {"timeouts", "Requests that timed out."},
      {"rate_limited", "Requests answered 429."}};
  const auto each = [&](const std::function<void(const Json& e, const Labels& l)>& fn) {
    for (const auto& [service, endpoints] : services)
      for (const Json& e : *endpoints)
        fn(e, {{"service", service}, {"endpoint", e.value("name", "")}, {"kind", e.value("kind", "")}});
  };
  for (const auto& [name, help] : counters) {
    c.family(std::string("sluice_endpoint_") + name + "_total", "counter", help);
    each([&](const Json& e, const Labels& l) { c.sample(num(e, name), l); });
  }
  c.family("sluice_endpoint_up", "gauge", "1 while the endpoint's circuit is closed.");
  each([&](const Json& e, const Labels& l) { c.sample(e.value("reachable", false) ? 1 : 0, l); });
  c.family("sluice_endpoint_latency_seconds", "histogram", "Each request's time until its answer or failure.");
  each([&](const Json& e, const Labels& l) {
    const Json& lat = e.contains("latency") ? e["latency"] : Json::object();
    std::vector<double> bounds;
    for (const auto& b : lat.value("bounds_ms", Json::array())) bounds.push_back(b.get<double>() / 1000);
    std::vector<uint64_t> counts;
    for (const auto& n : lat.value("counts", Json::array())) counts.push_back(n.get<uint64_t>());
    c.histogram(l, bounds, counts, num(lat, "sum_ms") / 1000);
  });
}

void reputation_metrics(Collector& c, const Json& rep) {
  if (has(rep, "requests")) {
    const std::pair<const char*, const char*> counters[] = {
        {"requests", "Look-ups the RX lcores asked of the reputation service."},
        {"cache_hits", "Look-ups the service answered from the verdict cache."},
        {"coalesced", "Look-ups joined to one already in flight for the same hash."},
        {"hashes_sent", "Hashes sent to the endpoints."},
        {"answered", "Look-ups answered."}};
    for (const auto& [name, help] : counters) {
      c.family(std::string("sluice_reputation_") + name + "_total", "counter", help);
      c.sample(num(rep, name));
    }
    c.family("sluice_reputation_errors_total", "counter", "Look-ups that ended without an answer, by error.");
    const Json errors = rep.value("errors", Json::object());
    for (const auto& [error, n] : errors.items())
      c.sample(n.is_number() ? n.get<double>() : 0, {{"error", error}});
    c.family("sluice_reputation_queue", "gauge", "Look-ups waiting now, by stage.");
    for (const char* stage : {"pending", "in_flight", "outbox"}) c.sample(num(rep, stage), {{"stage", stage}});
  }
  if (has(rep, "cache")) {
    const Json& cache = rep["cache"];
    c.family("sluice_verdict_cache_entries", "gauge", "Verdicts in the cache now.");
    c.sample(num(cache, "entries"));
    c.family("sluice_verdict_cache_capacity", "gauge", "The verdict cache's capacity.");
    c.sample(num(cache, "capacity"));
    c.family("sluice_verdict_cache_evictions_total", "counter", "Verdicts evicted to make room.");
    c.sample(num(cache, "evictions"));
  }
}

void analysis_metrics(Collector& c, const Json& an) {
  if (has(an, "candidates")) {
    const std::pair<const char*, const char*> counters[] = {
        {"candidates", "Files offered for analysis."},
        {"submitted", "Files uploaded to an analysis service."},
        {"already_known", "Files the service knew already."},
        {"completed", "Analyses completed."},
        {"malicious", "Analyses that found the file malicious."},
        {"failed", "Analyses that failed."},
        {"expired", "Analyses given up at their deadline."},
        {"final_verdicts", "Final verdicts of messages that waited for analyses."}};
    for (const auto& [name, help] : counters) {
      c.family(std::string("sluice_analysis_") + name + "_total", "counter", help);
      c.sample(num(an, name));
    }
  }
  c.family("sluice_analysis_queue_depth", "gauge",
           "Analysis work waiting now: submissions followed, files being decided, messages waiting, scans queued.");
  if (has(an, "pending_submissions")) {
    c.sample(num(an, "pending_submissions"), {{"queue", "submissions"}});
    c.sample(num(an, "deciding"), {{"queue", "deciding"}});
    c.sample(num(an, "messages_waiting"), {{"queue", "messages_waiting"}});
  }
  if (has(an, "scans")) c.sample(num(an["scans"], "queued"), {{"queue", "scans"}});
  if (has(an, "quarantine")) {
    const Json& q = an["quarantine"];
    if (has(q, "held")) {
      c.family("sluice_quarantine_messages", "gauge", "Messages held in the quarantine now.");
      c.sample(num(q, "held"));
      c.family("sluice_quarantine_bytes", "gauge", "The quarantine's size on disk (message and metadata files).");
      c.sample(num(q, "bytes"));
    }
    c.family("sluice_quarantine_stored_total", "counter", "Messages stored in the quarantine.");
    c.sample(num(q, "stored"));
    c.family("sluice_quarantine_released_total", "counter", "Quarantine entries released by their analysis.");
    c.sample(num(q, "released"));
  }
}

}  // namespace

Metrics collect_metrics(const dataplane::StatsSnapshot& s, const Json& control, double uptime_s) {
  Collector c;
  dataplane_metrics(c, s);
  const Json none;
  const Json& rep = has(control, "reputation") ? control["reputation"] : none;
  const Json& an = has(control, "analysis") ? control["analysis"] : none;
  reputation_metrics(c, rep);
  std::vector<std::pair<std::string, const Json*>> services;
  if (has(rep, "endpoints") && rep["endpoints"].is_array()) services.emplace_back("reputation", &rep["endpoints"]);
  if (has(an, "endpoints") && an["endpoints"].is_array()) services.emplace_back("analysis", &an["endpoints"]);
  endpoint_metrics(c, services);
  analysis_metrics(c, an);
  c.family("sluice_uptime_seconds", "gauge", "Seconds since the data plane started.");
  c.sample(std::round(uptime_s * 1000) / 1000);
  return c.take();
}

std::string prometheus_text(const Metrics& m) {
  std::string out;
  for (const MetricFamily& f : m) {
    out += "# HELP " + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.type + "\n";
    for (const MetricSample& s : f.samples) {
      out += s.name;
      if (!s.labels.empty()) {
        out += '{';
        for (std::size_t i = 0; i < s.labels.size(); ++i)
          out += (i ? ",": "") + s.labels[i].first + "=\"" + escape(s.labels[i].second) + "\"";
        out += '}';
      }
      out += " " + number(s.value) + "\n";
    }
  }
  return out;
}

std::string prometheus_text(const dataplane::StatsSnapshot& s, const Json& control, double uptime_s) {
  return prometheus_text(collect_metrics(s, control, uptime_s));
}

const std::vector<std::pair<std::string, std::string>>& telemetry_commands() {
  static const std::vector<std::pair<std::string, std::string>> commands = {
      {"/sluice/families", "Sluice's metric families and their types. Takes no parameters."},
      {"/sluice/metric", "One Sluice metric family's samples. Parameters: the family's name."},
      {"/sluice/help", "One Sluice metric family's type and help. Parameters: the family's name."}};
  return commands;
}

Json telemetry_answer(const Metrics& m, const std::string& command, const std::string& params) {
  if (command == "/sluice/families") {
    Json out = Json::object();
    for (const MetricFamily& f : m) out[f.name] = f.type;
    return out;
  }
  const MetricFamily* family = nullptr;
  for (const MetricFamily& f : m)
    if (f.name == params) family = &f;
  if (!family) return nullptr;
  if (command == "/sluice/help") return {{"name", family->name}, {"type", family->type}, {"help", family->help}};
  if (command != "/sluice/metric") return nullptr;
  // DPDK 22.11's telemetry nests one level of dictionaries (no dictionaries in arrays), and its
  // names take letters, digits, '_' and '/': the samples are keyed by their index.
  Json out = Json::object();
  for (const MetricSample& s : family->samples) {
    Json one = {{"sample", s.name}};
    for (const auto& [k, v] : s.labels) one[k] = v;
    if (s.value >= 0 && s.value == std::floor(s.value) && s.value < 1.8e19)
      one["value"] = static_cast<uint64_t>(s.value);
    else
      one["value"] = number(s.value);
    out[std::to_string(out.size())] = std::move(one);
  }
  return out;
}

struct MetricsFeed::Shared {
  std::mutex mutex;
  Collect collect;  // empty once the feed is gone
};

MetricsFeed::MetricsFeed(boost::asio::io_context& io, Collect collect) : io_(io), shared_(std::make_shared<Shared>()) {
  shared_->collect = std::move(collect);
}

MetricsFeed::~MetricsFeed() {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  shared_->collect = nullptr;
}

Metrics MetricsFeed::collect() {
  std::lock_guard<std::mutex> lock(shared_->mutex);
  return shared_->collect ? shared_->collect() : Metrics{};
}

std::optional<Metrics> MetricsFeed::collect_from(std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<std::optional<Metrics>>>();
  auto future = promise->get_future();
  // A handler that never runs (the loop stopped) breaks the promise when the io_context drops it.
  boost::asio::post(io_, [shared = shared_, promise] {
    std::lock_guard<std::mutex> lock(shared->mutex);
    std::optional<Metrics> m;
    try {
      if (shared->collect) m = shared->collect();
    } catch (const std::exception& e) {  // never out of the loop's run(): this caller gets nothing
      std::fprintf(stderr, "sluiced: metrics: %s\n", e.what());
    }
    promise->set_value(std::move(m));
  });
  if (future.wait_for(timeout) != std::future_status::ready) return std::nullopt;
  try {
    return future.get();
  } catch (const std::future_error&) {
    return std::nullopt;
  }
}

Json MetricsFeed::telemetry(const std::string& command, const std::string& params) {
  const auto m = collect_from(std::chrono::milliseconds(500));
  if (!m) return nullptr;
  return telemetry_answer(*m, command, params);
}

}  // namespace sluice::control
