// The appliance's metrics: one collection of samples (collect_metrics) rendered two ways, so that
// the two cannot drift: the Prometheus text exposition (version 0.0.4) of `GET /metrics` on the
// management API (management.h), and the answers of DPDK telemetry's `/sluice/...` commands
// (dataplane/telemetry.h; README "Metrics" lists the families and the commands).
//
// Names: `sluice_port_<counter>_total{port="NAME"}` per port and `sluice_lcore_<counter>_total{lcore=
// "N",role="rx"|"worker"}` per lcore are kept stable; sums across the RX lcores follow (messages
// and files by verdict, the lcores' verdict cache, drops by reason, the hold queue and hold times),
// then the control plane's (reputation service, endpoints with their latency, file analysis, the
// quarantine) from the same JSON sections as the `stats` event. Counters end in `_total`, units in
// the name (`_seconds`, `_bytes`), histograms have `_bucket{le=}` (cumulative), `_sum` and `_count`.
//
// MetricsFeed takes the collection on the service loop (where the data plane's snapshot and the
// control plane's stats are read) for callers on other threads: DPDK's telemetry thread.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "control/event_render.h"
#include "dataplane/dataplane.h"

namespace sluice::control {

struct MetricSample {
  std::string name;  // the family's name, or for a histogram the family's name + _bucket/_sum/_count
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;  // integers exact up to 2^53
};

struct MetricFamily {
  std::string name;
  std::string type;  // counter, gauge, histogram
  std::string help;
  std::vector<MetricSample> samples;
};

using Metrics = std::vector<MetricFamily>;

// `control`: an object with the `stats` event's sections that carry control-plane counters:
// `reputation` (FileReputation::stats()) and `analysis` (FileAnalysis::stats()); a missing or null
// section (the service is off) gives no families. A family without samples is left out.
Metrics collect_metrics(const dataplane::StatsSnapshot& s, const Json& control, double uptime_s);

// HELP and TYPE before each family's samples; label values escaped (\\, \", \n).
std::string prometheus_text(const Metrics& m);
std::string prometheus_text(const dataplane::StatsSnapshot& s, const Json& control, double uptime_s);

// DPDK telemetry's answers (dataplane/telemetry.h turns them into rte_tel_data):
// `/sluice/families`: {"NAME": "TYPE", ...}; `/sluice/metric,NAME`: the family's samples keyed by
// their index, each a flat object {"sample": NAME[_bucket|_sum|_count], LABEL: "VALUE"..., "value":
// N}, N an unsigned integer, or a string ("0.25") when it is not one; `/sluice/help,NAME`: {"name",
// "type", "help"}. An unknown family or command: null.
Json telemetry_answer(const Metrics& m, const std::string& command, const std::string& params);
// The commands and their help text, for registration.
const std::vector<std::pair<std::string, std::string>>& telemetry_commands();

class MetricsFeed {
 public:
  using Collect = std::function<Metrics()>;
  // `collect` runs on `io`'s thread only.
  MetricsFeed(boost::asio::io_context& io, Collect collect);
  ~MetricsFeed();  // no collection starts after this
  MetricsFeed(const MetricsFeed&) = delete;
  MetricsFeed& operator=(const MetricsFeed&) = delete;

  // On io's thread.
  Metrics collect();
  // From any other thread: the collection, made on io's thread; nullopt when it did not run within
  // `timeout` (the loop is busy or no longer runs) or the feed is gone.
  std::optional<Metrics> collect_from(std::chrono::milliseconds timeout);
  // telemetry_answer() on a collection from collect_from(500 ms); null when there is none.
  Json telemetry(const std::string& command, const std::string& params);

  struct Shared;

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace sluice::control
