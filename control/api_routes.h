// sluiced's management API routes (docs/api.md): each wraps a function of the part that owns it
// (file reputation, file analysis and its quarantine, the sightings, the alerts, the
// configuration) and never reimplements one. The server is management.h.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "control/alert.h"
#include "control/api.h"
#include "control/config.h"
#include "control/service_loop.h"

namespace sluice::control {

class FileAnalysis;
class FileReputation;
class Retrospective;

struct ApiServices {
  ServiceLoop& loop;
  const Config& config;  // the running configuration (a reload replaces what it holds)
  FileReputation& reputation;
  FileAnalysis& analysis;
  Retrospective& retrospective;
  const AlertLog& alerts;
  std::function<Json()> status;              // GET /api/v1/status
  std::function<Json()> counters;            // GET /api/v1/counters: the `stats` event's body
  std::function<std::string()> metrics;      // GET /metrics
  // POST /api/v1/config/validate: {"valid", "error" | "changed"} for a YAML text.
  std::function<Json(const std::string& yaml)> validate;
  // POST /api/v1/config/reload: what SIGHUP does; {"reloaded", "error" | "changed"}.
  std::function<Json()> reload;
  std::function<void()> endpoints_changed;   // a reputation endpoint was added: event names
  std::function<void(const Alert&)> alert;   // an operator's release or delete of a held message
  std::function<Json(unsigned window_s)> report;  // GET /api/v1/report (control/report.h)
};

std::vector<ApiRoute> api_routes(ApiServices services);

// The running configuration as JSON: every key's effective value, secrets (`api_key`, passwords)
// shown as "<redacted>".
Json config_json(const Config& config);

}  // namespace sluice::control
