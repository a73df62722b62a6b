// Configuration: every key declared once (name, type, range, default, help) in config.cpp,
// loaded from YAML, validated, and turned into one const struct. Errors name the file, the key
// and the accepted values, in one line.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dataplane/dataplane_config.h"

namespace sluice::control {

struct Config {
  dataplane::Config dataplane;
  std::string replay_input;   // replay mode: pcap read through net_pcap
  std::string replay_output;  // replay mode: pcap written with what inline mode would have sent
  std::string events_path;    // JSON lines; "-" is standard output; empty: no events
  unsigned stats_interval_s;  // periodic stats events; 0: only at exit
  std::string state_dir;      // effective `state.dir` (control/state_dir.h); empty: none, nothing persists
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

// The configuration reference (Markdown), generated from the declarations: docs/configuration.md
// holds a copy and a test keeps them equal.
std::string config_reference_markdown();

}  // namespace sluice::control
