// The one place where events become text (DESIGN.md section 7): typed records from the lcores
// (records/event_records.h) and the control plane's own event bodies are rendered here to JSON
// lines, each with the same header: `timestamp` (RFC 3339, UTC, microseconds) and `event_type`
// first, then, for events about a connection, `flow_id`, `src_ip`, `src_port` (the client),
// `dest_ip`, `dest_port`, `proto`. Field names and order are the README's.
//
// Control side only (it runs on the service loop's thread); no DPDK.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "control/hex.h"
#include "dataplane/dataplane.h"
#include "records/event_records.h"

namespace sluice::control {

// Keys keep the order they are written in: timestamp and event_type first, as a reader expects.
using Json = nlohmann::ordered_json;

// RFC 3339 with microseconds, UTC (2026-11-28T00:07:47.554996Z); `us` since 1970.
void format_rfc3339(int64_t us, char (&out)[40]) noexcept;
std::string rfc3339(int64_t us);
int64_t now_unix_us();


// Names of a message's incomplete reason (nullptr for none) and of an enforcement, as events write them.
const char* incomplete_reason_name(records::IncompleteReason r) noexcept;
const char* enforcement_name(records::Enforcement e) noexcept;

// The textual address of a flow end (inet_ntop).
std::string ip_text(const records::FlowIdentity& flow, bool client);

// The body of a `stats` event (the data plane's counters, read by the control thread).
Json stats_json(const dataplane::StatsSnapshot& s);

// The `endpoints` array of a `stats` section: one object per endpoint status (the reputation and
// the analysis clients' EndpointStatus have these members). `latency`: the request latency
// histogram (endpoint_health.h), `counts[i]` the requests within `bounds_ms[i]` (and above the bound
// before it), the last count those above every bound.
template <typename Status>
Json endpoints_json(const std::vector<Status>& all) {
  Json endpoints = Json::array();
  for (const auto& e : all)
    endpoints.push_back({{"name", e.name}, {"kind", e.kind}, {"reachable", e.reachable},
                         {"circuit_open", e.circuit_open}, {"requests", e.requests}, {"failures", e.failures},
                         {"timeouts", e.timeouts}, {"rate_limited", e.rate_limited},
                         {"last_latency_ms", e.last_latency_ms},
                         {"latency", {{"bounds_ms", e.latency.kBoundsMs}, {"counts", e.latency.counts},
                                      {"count", e.latency.count}, {"sum_ms", e.latency.sum_ms}}}});
  return endpoints;
}

class EventRenderer {
 public:
  // One lcore record (as drained from an event ring) to one JSON object without a newline; the
  // view is valid until the next call. Empty when `size` does not match the record's type.
  std::string_view render(const void* record, std::size_t size) noexcept;

  std::string_view message(const records::MessageRecord& r) noexcept;
  std::string_view file(const records::FileRecord& r) noexcept;
  std::string_view member(const records::MemberRecord& r) noexcept;
  std::string_view flow(const records::FlowRecord& r) noexcept;
  std::string_view anomaly(const records::AnomalyRecord& r) noexcept;
  std::string_view verdict(const records::VerdictRecord& r) noexcept;

  // The names of `reputation.endpoints`, in order: a file's `verdict_source` names the one that
  // answered.
  void set_endpoint_names(std::vector<std::string> names) { endpoints_ = std::move(names); }

  // An event built on the control side: {"timestamp":..,"event_type":type,[flow identity,] type: body}.
  std::string control_event(std::string_view type, const Json& body, int64_t timestamp_us,
                            const records::FlowIdentity* flow = nullptr);

 private:
  // Smtp, flow and anomaly events hold up to 2 KiB of recipients and two 998-byte header values,
  // each escaped up to 6 times; file events two 1 KiB names and 2 KiB of name candidates. Longer lines are cut and marked
  // "truncated":true (JsonLine).
  static constexpr std::size_t kSessionEventBytes = 16 * 1024;
  static constexpr std::size_t kFileEventBytes = 16 * 1024;
  char buf_[kSessionEventBytes];
  std::vector<std::string> endpoints_;
};

// A RecordSink that renders every record at once and hands the JSON line to `fn` (tests, fuzz
// targets, tools; the daemon renders on the control side instead).
template <typename Fn>
class RenderingSink final : public records::RecordSink {
 public:
  explicit RenderingSink(Fn fn) : fn_(std::move(fn)) {}
  void emit(const void* record, std::size_t size) noexcept override { fn_(renderer_.render(record, size)); }

 private:
  Fn fn_;
  EventRenderer renderer_;
};

}  // namespace sluice::control
