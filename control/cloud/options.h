// sluice-cloud's command line (kept stable: tools and tests rely on it), parsed and validated into
// one const Options. Each option is declared once in options.cpp with its default and help.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "control/cloud/api.h"

namespace sluice::cloud {

struct Options {
  std::string host;  // an IP address literal (IPv6 without brackets)
  uint16_t port = 0;  // 0: the system picks a free port
  bool loopback = false;
  std::filesystem::path data;
  std::vector<std::string> api_keys;
  std::optional<std::string> admin_key;
  std::optional<std::filesystem::path> tls_cert, tls_key;
  bool insecure_listen = false;
  unsigned quota_per_minute = 0;
  Ttls ttl;
  unsigned max_connections = 256;
  std::size_t max_body_bytes = 1 << 20;
  unsigned idle_timeout_s = 30;
  unsigned read_timeout_s = 10;
  unsigned analysis_seconds = 10;
  unsigned daily_samples = 0;  // 0: no daily sample limit
  unsigned max_sample_mb = 32;
  int malicious_score = 70;
  std::filesystem::path signatures;  // --signatures (default: the build's cloud-signatures)
  unsigned analysis_threads = 2;     // --analysis-threads
  unsigned feed_retention_days = 90;  // --feed-retention-days: change-feed entries older are dropped
};

// What main() does with the command line: run with `options`, or print `text` (to stdout for
// --help and --version, exit 0; one line to stderr otherwise, exit 2).
struct ParsedCommandLine {
  std::optional<Options> options;
  int exit_code = 0;
  std::string text;
};

ParsedCommandLine parse_command_line(int argc, const char* const* argv, const std::string& version);

}  // namespace sluice::cloud
