// Configuration: every key declared once (name, type, range, default, help) in config.cpp,
// loaded from YAML, validated, and turned into one const struct. Errors name the file, the key
// and the accepted values, in one line.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "control/analysis_service.h"
#include "control/quarantine_store.h"
#include "control/reputation_client.h"
#include "control/reputation_service.h"
#include "control/management.h"
#include "control/report.h"
#include "control/trace.h"
#include "control/sightings_store.h"
#include "dataplane/dataplane_config.h"

namespace sluice::control {

// File reputation (DESIGN.md section 1, step 2): the endpoints and how the control plane asks
// them (control/reputation_service.h); the RX lcores' part is in dataplane.verdicts.
struct ReputationConfig {
  std::vector<EndpointConfig> endpoints;  // empty: no look-ups
  ReputationLimits limits;
  std::size_t cache_entries;
  std::string cache_path;                 // effective; empty: the cache is not kept across restarts
  unsigned cache_save_interval_s;         // 0: only at exit
};

// Sightings (control/sightings_store.h): where every file that passed was seen, for retrospective
// verdicts. Kept in STATE/sightings.sqlite whenever there is a state directory.
struct SightingsConfig {
  std::string appliance;     // this appliance's name in sightings and alerts (default: the host name)
  SightingsLimits limits;
  std::string path;          // effective: STATE_DIR/sightings.sqlite; empty: none
};

// Retrospective verdicts (control/retrospective.h): the heartbeat.
struct RetrospectiveConfig {
  unsigned interval_s = 300;         // retrospective.interval_s (kept stable), 1..86400
  unsigned recheck_budget = 1;       // virustotal endpoints: re-look-ups per heartbeat
  unsigned recheck_days = 7;         // ... of hashes seen within this many days
  unsigned max_changes = 100000;     // feed entries read per endpoint and heartbeat
  unsigned max_messages_listed = 100;  // messages named in one report (all are counted)
  unsigned replay_wait_s = 30;       // a replay waits this long at most for its start-up heartbeat
  unsigned failures_before_alert = 3;  // heartbeats an endpoint failed in a row before an alert
};

// Notifications (control/notifier.h): where alerts go besides the `alert` event.
struct NotifyConfig {
  std::string syslog_address;        // host:port; empty: none
  bool syslog_tcp = false;
  unsigned syslog_facility = 16;     // local0
  std::string syslog_min_severity = "info";
  unsigned syslog_max_queued = 1000;
  EndpointConfig webhook;            // url empty: none (api_key unused; `authorization` below)
  std::string webhook_authorization; // the Authorization header's value, when set
  std::string webhook_min_severity = "info";
  unsigned webhook_max_queued = 1000, webhook_max_attempts = 10;
  std::string email_relay;           // host:port; empty: none
  std::string email_from;
  std::vector<std::string> email_to;
  std::string email_starttls = "opportunistic";  // none | opportunistic | required
  std::string email_ca_file, email_username, email_password_file;
  std::string email_min_severity = "critical";
  unsigned email_max_queued = 100, email_timeout_ms = 30000;
};

// File analysis (DESIGN.md section 1, steps 3-4): the sandbox endpoints and the workflow's limits
// (control/analysis_service.h); the lcores' part is in dataplane.verdicts and dataplane.workers.
// Where a manual release hands a quarantined message (quarantine.relay*).
struct QuarantineRelayConfig {
  std::string address;                   // host:port; empty: none
  std::string starttls = "opportunistic";  // none | opportunistic | required
  std::string ca_file;
  unsigned timeout_ms = 30000;
};

struct AnalysisConfig {
  std::vector<EndpointConfig> endpoints;  // empty: no analysis
  AnalysisSettings settings;
  unsigned scan_threads = 1;              // the pre-classification pool
  std::size_t scan_queue = 256;
  std::string submissions_path;           // effective: STATE_DIR/submissions.sqlite; empty: none
  unsigned replay_wait_s = 0;             // replay.wait_analysis_s
  // The File Analysis quarantine (control/quarantine_store.h): STATE_DIR/quarantine; empty: none.
  std::string quarantine_dir;
  QuarantineLimits quarantine;
  QuarantineRelayConfig relay;
};

struct Config {
  dataplane::Config dataplane;
  ReputationConfig reputation;
  AnalysisConfig analysis;
  SightingsConfig sightings;
  RetrospectiveConfig retrospective;
  NotifyConfig notify;
  ManagementConfig management;
  TraceSettings trace;        // `trace.*`; path resolved: empty when there are no traces
  ReportSettings report;      // `report.*`
  std::string replay_input;   // replay mode: pcap read through net_pcap
  std::string replay_output;  // replay mode: pcap written with what inline mode would have sent
  std::string events_path;    // JSON lines; "-" is standard output; empty: no events
  unsigned stats_interval_s;  // periodic stats events; 0: only at exit
  std::string state_dir;      // effective `state.dir` (control/state_dir.h); empty: none, nothing persists
  // Every declared key -> its effective value (command line, else file, else default) as canonical
  // YAML text: the parsed value written back, mappings with every member. reload_config() compares
  // these key by key.
  std::map<std::string, std::string> effective;
};

// Command-line values that take precedence over the file (sluiced --replay ... --events ...).
struct Overrides {
  std::optional<std::string> replay_input;
  std::optional<std::string> replay_output;
  std::optional<std::string> events_path;
};

struct LoadResult {
  std::optional<Config> config;
  std::string error;  // one line, set when config is empty
};

// `path` empty: defaults only (plus overrides). Replay overrides switch the mode to replay.
LoadResult load_config(const std::string& path, const Overrides& overrides);
// Same, from YAML text; `origin` names it in errors.
LoadResult load_config_text(const std::string& yaml, const std::string& origin, const Overrides& overrides);

struct ReloadResult {
  std::optional<Config> config;       // the new configuration; empty: refused, nothing changes
  std::vector<std::string> changed;   // reloadable keys whose effective value changed, in declaration order
  std::string error;                  // one line, set when config is empty
};

// Reads `path` again exactly as at start (load_config, the same overrides) and compares each
// declared key's effective value with `running`'s. A key that is not reloadable and differs
// refuses the whole file: "config FILE: key 'reassembly.max_flows' cannot change at run time
// (restart sluiced to apply it)". An invalid file gives the start-up error. `running` must come from
// load_config() (its `effective` values).
ReloadResult reload_config(const Config& running, const std::string& path, const Overrides& overrides);

// reload_config()'s comparison, for a configuration loaded otherwise (the management API validates
// a posted one with load_config_text()); `origin` begins the refusal ("config FILE").
ReloadResult compare_config(const Config& running, LoadResult loaded, const std::string& origin);

// The keys reload_config() lets change, in declaration order: events.path, stats.interval_s.
const std::vector<std::string>& reloadable_keys();

// The configuration reference (Markdown), generated from the declarations: docs/configuration.md
// holds a copy and a test keeps them equal.
std::string config_reference_markdown();

}  // namespace sluice::control
