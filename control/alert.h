// Alerts: the one channel for what an operator must act on (an `alert` event). Later issues add
// their types (endpoint down, verdict changed, quarantine full...); each names what it is about:
// a flow (the event then carries the flow identity in its header) or an endpoint.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "control/event_render.h"

namespace sluice::control {

enum class Severity { info, warning, critical };

struct Alert {
  std::string type;      // lower_snake_case, stable: what happened
  Severity severity = Severity::warning;
  std::string message;   // one sentence for a person: what happened and what to do
  std::optional<records::FlowIdentity> flow;
  std::string endpoint;  // the endpoint's configured name, when it is about one
  Json details{};        // what a program needs of it (an object), when there is more than the message
};

inline const char* severity_name(Severity s) {
  return s == Severity::info ? "info" : s == Severity::warning ? "warning" : "critical";
}

// The body of the `alert` event: {"type", "severity", "message"[, "endpoint"][, "details"]}.
inline Json alert_body(const Alert& a) {
  Json j = {{"type", a.type}, {"severity", severity_name(a.severity)}, {"message", a.message}};
  if (!a.endpoint.empty()) j["endpoint"] = a.endpoint;
  if (!a.details.is_null()) j["details"] = a.details;
  return j;
}

// The latest alerts as their `alert` events (for GET /api/v1/alerts), newest last, at most
// `capacity`: older ones are dropped (the events file keeps them all). The loop's thread only.
class AlertLog {
 public:
  explicit AlertLog(std::size_t capacity = 1000) : capacity_(capacity) {}
  // `event`: the alert's whole event line (timestamp, event_type, alert).
  void add(Severity severity, std::string event) {
    items_.push_back({++last_id_, severity, std::move(event)});
    if (items_.size() > capacity_) items_.pop_front();
  }
  // Newest first, at most `limit`, at least `min` severe: each as {"id" (1, 2, ... since start),
  // "timestamp", the alert's members (type, severity, message, ...), the flow's when it has one}.
  Json list(std::size_t limit, Severity min) const {
    Json out = Json::array();
    for (auto it = items_.rbegin(); it != items_.rend() && out.size() < limit; ++it) {
      if (it->severity < min) continue;
      const Json event = Json::parse(it->event, nullptr, false);
      if (!event.is_object()) continue;
      Json j = {{"id", it->id}};
      for (const auto& [k, v] : event.items()) {
        if (k == "alert" && v.is_object()) j.update(v);
        else if (k != "event_type") j[k] = v;
      }
      out.push_back(std::move(j));
    }
    return out;
  }
  uint64_t total() const noexcept { return last_id_; }

 private:
  struct Item {
    uint64_t id;
    Severity severity;
    std::string event;
  };
  std::size_t capacity_;
  std::deque<Item> items_;
  uint64_t last_id_ = 0;
};

}  // namespace sluice::control
