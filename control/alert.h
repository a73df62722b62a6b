// Alerts: the one channel for what an operator must act on (an `alert` event). Later issues add
// their types (endpoint down, verdict changed, quarantine full...); each names what it is about:
// a flow (the event then carries the flow identity in its header) or an endpoint.
#pragma once

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

}  // namespace sluice::control
