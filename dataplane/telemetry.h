// DPDK telemetry commands answered by the control plane (README "Metrics"): registers commands
// with rte_telemetry (readable with `dpdk-telemetry.py -f FILE_PREFIX`) whose answers a handler
// gives as JSON, converted here to rte_tel_data.
//
// Threads: the handler runs on DPDK's telemetry thread (one per connected client), never on the
// service loop or an lcore; it must be thread-safe (control::MetricsFeed takes its numbers on the
// loop). DPDK cannot unregister a command: a command registered by an earlier Telemetry object (or
// whose object is gone) answers an error until a new object takes it. Register after eal_init().
//
// The JSON a handler returns: an object (a dictionary) whose values are numbers, strings,
// booleans, objects of those (one level of nesting: DPDK 22.11 allows no more) or arrays of
// numbers or strings; null is an error. Non-negative integers become u64, other integers int,
// other numbers strings; names keep letters, digits, '_' and '/' (anything else becomes '_'), at
// most 256 entries per dictionary (the rest are left out). DPDK sends at most 16 KiB per answer.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::dataplane {

class Telemetry {
 public:
  using Json = nlohmann::ordered_json;
  using Handler = std::function<Json(const std::string& command, const std::string& params)>;
  // `commands`: name ("/sluice/...") and help text each.
  Telemetry(const std::vector<std::pair<std::string, std::string>>& commands, Handler handler);
  ~Telemetry();  // the handler is not called after this returns
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;
  // "" or why a command could not be registered (telemetry still answers the others).
  const std::string& error() const noexcept { return error_; }

 private:
  std::string error_;
};

}  // namespace sluice::dataplane
