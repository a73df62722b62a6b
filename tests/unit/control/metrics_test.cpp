// control/metrics: the collection, its Prometheus text (checked line for line and by a strict
// parser of the text format), its telemetry answers, and MetricsFeed across threads.
#include "control/metrics.h"

#include "control/endpoint_health.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

namespace sluice::control {
namespace {

// A strict reading of the text format (0.0.4) as this exporter writes it: every sample's family
// announced by HELP then TYPE before its samples, each family once, names and labels well formed,
// counters and buckets not negative, a histogram's buckets cumulative (never decreasing) in
// increasing `le` ending at +Inf equal to its _count, with a _sum. Returns the samples by their
// line's name and labels ("name{a=\"b\"}"); fails the test at the first fault.
std::map<std::string, double> parse_strict(const std::string& text) {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;  // family -> type
  std::string help_for, current;
  std::set<std::string> seen;
  const std::regex help_re(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*)");
  const std::regex type_re(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
  const std::regex sample_re(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*)\})? (-?[0-9.e+-]+|\+Inf|NaN))");
  // Per histogram series (its labels without le): the last bucket's bound and count.
  std::map<std::string, std::pair<double, double>> buckets;
  std::istringstream in(text);
  std::string line;
  EXPECT_EQ(text.back(), '\n');
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, help_re)) {
      EXPECT_FALSE(seen.count(m[1])) << "family twice: " << line;
      help_for = m[1];
      continue;
    }
    if (std::regex_match(line, m, type_re)) {
      EXPECT_EQ(help_for, m[1]) << "TYPE without its HELP: " << line;
      current = m[1];
      seen.insert(current);
      types[current] = m[2];
      continue;
    }
    EXPECT_TRUE(std::regex_match(line, m, sample_re)) << "not a sample line: " << line;
    if (m.empty()) continue;
    std::string name = m[1], labels = m[3];
    const double v = std::stod(m[7] == "+Inf" ? "inf" : std::string(m[7]));
    const std::string& type = types[current];
    std::string family = name;
    if (type == "histogram")
      for (const char* suffix : {"_bucket", "_sum", "_count"})
        if (name.size() > current.size() && name == current + suffix) family = current;
    EXPECT_EQ(family, current) << "sample outside its family: " << line;
    if (type == "counter" || type == "histogram") {
      EXPECT_GE(v, 0) << line;
    }
    if (type == "counter") {
      EXPECT_TRUE(name.size() > 6 && name.substr(name.size() - 6) == "_total") << line;
    }
    EXPECT_FALSE(samples.count(m[1].str() + m[2].str())) << "sample twice: " << line;
    samples[m[1].str() + m[2].str()] = v;
    if (type != "histogram") continue;
    const std::regex le_re(R"((^|,)le="([^"]*)\")");
    std::smatch le;
    const bool has_le = std::regex_search(labels, le, le_re);
    std::string series = std::regex_replace(labels, le_re, "");
    if (name == current + "_bucket") {
      EXPECT_TRUE(has_le) << line;
      const double bound = le[2] == "+Inf" ? HUGE_VAL : std::stod(le[2]);
      auto it = buckets.find(series);
      if (it != buckets.end()) {
        EXPECT_GT(bound, it->second.first) << "bounds not increasing: " << line;
        EXPECT_GE(v, it->second.second) << "buckets not cumulative: " << line;
      }
      buckets[series] = {bound, v};
    } else {
      EXPECT_FALSE(has_le) << line;
      if (name == current + "_count") {
        EXPECT_EQ(buckets[series].first, HUGE_VAL) << "no +Inf bucket before " << line;
        EXPECT_EQ(buckets[series].second, v) << "+Inf bucket differs from _count: " << line;
      }
    }
  }
  for (const auto& [family, type] : types)
    if (type == "histogram") {
      bool sum = false, count = false;
      for (const auto& [k, v] : samples) {
        sum = sum || k.rfind(family + "_sum", 0) == 0;
        count = count || k.rfind(family + "_count", 0) == 0;
      }
      EXPECT_TRUE(sum && count) << family;
    }
  return samples;
}

dataplane::StatsSnapshot snapshot() {
  dataplane::StatsSnapshot s;
  dataplane::PortStats p;
  p.name = "out\"side\\1";
  p.rx_packets = 7;
  p.tx_bytes = 900;
  p.link_up = true;
  s.ports.push_back(p);
  dataplane::LcoreStats rx;
  rx.lcore = 1;
  rx.role = "rx";
  rx.rx_packets = 7;
  rx.events_dropped = 2;
  rx.handoff.verdicts_clean = 3;
  rx.handoff.verdicts_malicious = 1;
  rx.handoff.files_by_reputation[0] = 4;  // none
  rx.handoff.files_by_reputation[2] = 1;  // malicious
  rx.handoff.cache_hits = 5;
  rx.handoff.cache_misses = 6;
  rx.handoff.lookups_expired = 1;
  rx.reassembly.messages = 4;
  rx.reassembly.sessions_pool_full = 9;
  rx.reassembly.detect_probed = 7;
  rx.reassembly.detect_smtp = 2;
  rx.reassembly.detect_not_smtp = 3;
  rx.reassembly.detect_undecided = 1;
  rx.reassembly.detect_evicted = 1;
  rx.reassembly.acked_holes_filled = 5;
  rx.reassembly.acked_holes_declared = 1;
  rx.hold.in_queue = 2;
  rx.enforcing = true;
  rx.enforce.gated = 1;
  rx.enforce.passed = 3;
  rx.enforce.rejected = 1;
  rx.enforce.latency_us[dataplane::latency_bucket(3)] = 1;      // under 4 us
  rx.enforce.latency_us[dataplane::latency_bucket(1500)] = 2;   // 1024..2048 us
  rx.enforce.latency_us[dataplane::latency_bucket(1u << 30)] = 1;  // past the last bound
  rx.enforce.latency_sum_us = 3 + 3000 + (1u << 30);
  s.lcores.push_back(rx);
  dataplane::LcoreStats rx2 = rx;  // a second RX lcore: summed
  rx2.lcore = 3;
  rx2.enforcing = false;
  s.lcores.push_back(rx2);
  dataplane::LcoreStats worker;
  worker.lcore = 2;
  worker.role = "worker";
  worker.handoff.verdicts_clean = 100;  // not an RX lcore: not summed
  worker.results_dropped = 1;
  s.lcores.push_back(worker);
  return s;
}

Json control_stats() {
  Json latency = {{"bounds_ms", LatencyHistogram::kBoundsMs},
                  {"counts", {1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
                  {"count", 4},
                  {"sum_ms", 20010.5}};
  Json endpoint = {{"name", "lab"}, {"kind", "sluice"}, {"reachable", true}, {"circuit_open", false},
                   {"requests", 4}, {"failures", 1}, {"timeouts", 1}, {"rate_limited", 0}, {"latency", latency}};
  Json rep = {{"requests", 10}, {"cache_hits", 2}, {"coalesced", 1}, {"hashes_sent", 7}, {"answered", 8},
              {"errors", {{"service_unavailable", 2}}}, {"pending", 1}, {"in_flight", 0}, {"outbox", 0},
              {"cache", {{"entries", 11}, {"capacity", 1000}, {"evictions", 0}}},
              {"endpoints", Json::array({endpoint})}};
  Json cape = endpoint;
  cape["name"] = "cape";
  cape["kind"] = "cape";
  cape["reachable"] = false;
  Json an = {{"candidates", 3}, {"submitted", 2}, {"already_known", 1}, {"completed", 1}, {"malicious", 1},
             {"failed", 0}, {"expired", 0}, {"final_verdicts", 1}, {"pending_submissions", 1}, {"deciding", 0},
             {"messages_waiting", 1}, {"scans", {{"queued", 2}}},
             {"quarantine", {{"stored", 2}, {"released", 1}, {"held", 1}, {"bytes", 4096}}},
             {"endpoints", Json::array({cape})}};
  return {{"reputation", rep}, {"analysis", an}};
}

TEST(Metrics, PortsLcoresAndSumsInThePrometheusTextFormat) {
  const std::string t = prometheus_text(snapshot(), Json::object(), 12.5);
  for (const char* line : {"# TYPE sluice_port_rx_packets_total counter\n",
                           "sluice_port_rx_packets_total{port=\"out\\\"side\\\\1\"} 7\n",
                           "sluice_port_tx_bytes_total{port=\"out\\\"side\\\\1\"} 900\n",
                           "# TYPE sluice_port_link_up gauge\n", "sluice_port_link_up{port=\"out\\\"side\\\\1\"} 1\n",
                           "sluice_lcore_rx_packets_total{lcore=\"1\",role=\"rx\"} 7\n",
                           "sluice_lcore_rx_packets_total{lcore=\"2\",role=\"worker\"} 0\n",
                           "sluice_messages_total 8\n", "sluice_verdicts_total{disposition=\"clean\"} 6\n",
                           "sluice_verdicts_total{disposition=\"malicious\"} 2\n", "sluice_uptime_seconds 12.5\n"})
    EXPECT_NE(t.find(line), std::string::npos) << line << "\n" << t;
  // No control plane section: no control-plane family.
  EXPECT_EQ(t.find("sluice_reputation_"), std::string::npos);
  EXPECT_EQ(t.find("sluice_endpoint_"), std::string::npos);
  EXPECT_EQ(t.find("sluice_quarantine_"), std::string::npos);
  parse_strict(t);
}

TEST(Metrics, EveryFamilyPassesTheStrictParserWithExactValues) {
  const auto s = parse_strict(prometheus_text(snapshot(), control_stats(), 3.25));
  const std::map<std::string, double> want = {
      {R"(sluice_files_total{reputation="none"})", 8},
      {R"(sluice_files_total{reputation="malicious"})", 2},
      {R"(sluice_files_total{reputation="clean"})", 0},
      {R"(sluice_verdict_cache_lookups_total{result="hit"})", 10},
      {R"(sluice_acked_holes_total{outcome="filled"})", 10},
      {R"(sluice_acked_holes_total{outcome="declared"})", 2},
      {R"(sluice_verdict_cache_lookups_total{result="miss"})", 12},
      {R"(sluice_drops_total{reason="events_dropped"})", 4},
      {R"(sluice_drops_total{reason="sessions_pool_full"})", 18},
      {R"(sluice_drops_total{reason="lookups_expired"})", 2},
      {R"(sluice_drops_total{reason="results_dropped"})", 1},
      {R"(sluice_drops_total{reason="flows_table_full"})", 0},
      {"sluice_detect_probed_total", 14},  // two RX lcores
      {R"(sluice_detect_flows_total{result="smtp"})", 4},
      {R"(sluice_detect_flows_total{result="not_smtp"})", 6},
      {R"(sluice_detect_flows_total{result="undecided"})", 2},
      {R"(sluice_detect_flows_total{result="evicted"})", 2},
      {"sluice_hold_queue_frames", 4},
      {"sluice_hold_queue_messages", 1},  // the enforcing lcore's only
      {R"(sluice_enforce_messages_total{action="passed"})", 3},
      {R"(sluice_hold_time_seconds_bucket{le="4e-06"})", 1},
      {R"(sluice_hold_time_seconds_bucket{le="0.001024"})", 1},
      {R"(sluice_hold_time_seconds_bucket{le="0.002048"})", 3},
      {R"(sluice_hold_time_seconds_bucket{le="16.777216"})", 3},
      {R"(sluice_hold_time_seconds_bucket{le="+Inf"})", 4},
      {"sluice_hold_time_seconds_count", 4},
      {"sluice_hold_time_seconds_sum", (3 + 3000 + (1u << 30)) / 1e6},
      {"sluice_reputation_requests_total", 10},
      {"sluice_reputation_cache_hits_total", 2},
      {R"(sluice_reputation_errors_total{error="service_unavailable"})", 2},
      {R"(sluice_reputation_queue{stage="pending"})", 1},
      {"sluice_verdict_cache_entries", 11},
      {R"(sluice_endpoint_requests_total{service="reputation",endpoint="lab",kind="sluice"})", 4},
      {R"(sluice_endpoint_failures_total{service="reputation",endpoint="lab",kind="sluice"})", 1},
      {R"(sluice_endpoint_up{service="reputation",endpoint="lab",kind="sluice"})", 1},
      {R"(sluice_endpoint_up{service="analysis",endpoint="cape",kind="cape"})", 0},
      {R"(sluice_endpoint_latency_seconds_bucket{service="reputation",endpoint="lab",kind="sluice",le="0.001"})", 1},
      {R"(sluice_endpoint_latency_seconds_bucket{service="reputation",endpoint="lab",kind="sluice",le="0.002"})", 1},
      {R"(sluice_endpoint_latency_seconds_bucket{service="reputation",endpoint="lab",kind="sluice",le="0.005"})", 3},
      {R"(sluice_endpoint_latency_seconds_bucket{service="reputation",endpoint="lab",kind="sluice",le="10"})", 3},
      {R"(sluice_endpoint_latency_seconds_bucket{service="reputation",endpoint="lab",kind="sluice",le="+Inf"})", 4},
      {R"(sluice_endpoint_latency_seconds_count{service="analysis",endpoint="cape",kind="cape"})", 4},
      {R"(sluice_endpoint_latency_seconds_sum{service="analysis",endpoint="cape",kind="cape"})", 20.0105},
      {"sluice_analysis_submitted_total", 2},
      {R"(sluice_analysis_queue_depth{queue="submissions"})", 1},
      {R"(sluice_analysis_queue_depth{queue="scans"})", 2},
      {"sluice_quarantine_messages", 1},
      {"sluice_quarantine_bytes", 4096},
      {"sluice_quarantine_stored_total", 2},
      {"sluice_uptime_seconds", 3.25}};
  for (const auto& [k, v] : want) {
    ASSERT_TRUE(s.count(k)) << k;
    EXPECT_DOUBLE_EQ(s.at(k), v) << k;
  }
}

TEST(Metrics, TheStrictParserRefusesWhatIsNotTheFormat) {
  // The checks above can fail: each of these texts breaks one rule.
  for (const char* bad : {
           "sluice_x_total 1\n",                                                    // no HELP/TYPE
           "# HELP a_total h\n# TYPE a_total counter\na_total{l=\"x} 1\n",          // bad label
           "# HELP a h\n# TYPE a histogram\na_bucket{le=\"1\"} 2\na_bucket{le=\"+Inf\"} 1\na_sum 1\na_count 1\n",
           "# HELP a h\n# TYPE a histogram\na_bucket{le=\"1\"} 1\na_bucket{le=\"+Inf\"} 2\na_sum 1\na_count 3\n",
           "# HELP a_total h\n# TYPE a_total counter\na_total -1\n"}) {
    ::testing::TestPartResultArray failures;
    {
      ::testing::ScopedFakeTestPartResultReporter reporter(::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
      parse_strict(bad);
    }
    EXPECT_GT(failures.size(), 0) << bad;
  }
}

TEST(Metrics, TelemetryAnswersComeFromTheSameCollection) {
  const Metrics m = collect_metrics(snapshot(), control_stats(), 1);
  const Json families = telemetry_answer(m, "/sluice/families", "");
  EXPECT_EQ(families.size(), m.size());
  EXPECT_EQ(families["sluice_port_rx_packets_total"], "counter");
  EXPECT_EQ(families["sluice_endpoint_latency_seconds"], "histogram");
  const Json drops = telemetry_answer(m, "/sluice/metric", "sluice_drops_total");
  ASSERT_TRUE(drops.is_object());
  bool found = false;
  std::size_t index = 0;
  for (const auto& [k, v] : drops.items()) {
    EXPECT_EQ(k, std::to_string(index++));  // keys are the samples' indices
    if (v["reason"] == "sessions_pool_full") {
      found = true;
      EXPECT_EQ(v["sample"], "sluice_drops_total");
      EXPECT_EQ(v["value"], 18u);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(drops["0"]["reason"], "frames_dropped");
  const Json lat = telemetry_answer(m, "/sluice/metric", "sluice_hold_time_seconds");
  EXPECT_EQ(lat["0"]["le"], "4e-06");
  EXPECT_EQ(lat[std::to_string(lat.size() - 2)]["sample"], "sluice_hold_time_seconds_sum");
  EXPECT_TRUE(lat[std::to_string(lat.size() - 2)]["value"].is_string());  // not an integer
  EXPECT_EQ(lat[std::to_string(lat.size() - 1)]["value"], 4u);
  EXPECT_EQ(telemetry_answer(m, "/sluice/help", "sluice_flows_total")["type"], "counter");
  EXPECT_TRUE(telemetry_answer(m, "/sluice/metric", "nope").is_null());
  EXPECT_TRUE(telemetry_answer(m, "/sluice/other", "sluice_flows_total").is_null());
}

TEST(Metrics, TheFeedCollectsOnTheLoopForOtherThreads) {
  boost::asio::io_context io;
  std::thread::id collected_on;
  int calls = 0;
  auto feed = std::make_unique<MetricsFeed>(io, [&] {
    collected_on = std::this_thread::get_id();
    ++calls;
    return collect_metrics(snapshot(), Json::object(), calls);
  });
  // The loop does not run: nothing within the timeout.
  EXPECT_FALSE(feed->collect_from(std::chrono::milliseconds(20)));
  auto guard = boost::asio::make_work_guard(io);
  std::thread loop([&] { io.run(); });
  const auto m = feed->collect_from(std::chrono::milliseconds(2000));
  ASSERT_TRUE(m);
  EXPECT_EQ(collected_on, loop.get_id());
  const Json t = feed->telemetry("/sluice/metric", "sluice_messages_total");
  EXPECT_EQ(t["0"]["value"], 8u);
  // The feed gone: a handler still queued collects nothing.
  boost::asio::post(io, [&] { feed.reset(); });
  guard.reset();
  loop.join();
  EXPECT_EQ(calls, 3);  // the first one ran when the loop started, unanswered
}

}  // namespace
}  // namespace sluice::control
