// The reputation adapters (internal to control/): what each endpoint kind asks and how its answers
// are read. Pure functions, no I/O: reputation_client.cpp sends the requests through http_pool and
// hands the answers here. Every answer is validated strictly (count, order, hashes, known values);
// anything off is `failed` with a detail, never a guess.
#pragma once

#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "control/reputation_client.h"

namespace sluice::control::reputation {

enum class Kind { sluice, virustotal };

struct Call {
  boost::beast::http::verb method;
  std::string target;  // after the endpoint's URL prefix
  std::string body;
};

// sluice-cloud: POST /api/v1/files/lookup {"hashes":[lowercase hex...]}; GET /api/v1/health.
Call sluice_lookup(std::span<const std::string> hex);
Call sluice_health();
// VirusTotal v3: GET /api/v3/files/{sha256}.
Call vt_lookup(const std::string& hex);

struct Parsed {
  enum class Kind { answered, rate_limited, failed } kind = Kind::failed;
  std::vector<HashAnswer> answers;  // answered: one per hash asked, in order
  std::string detail;               // rate_limited / failed: "HTTP 503 TransientError", "bad answer: ..."
  std::chrono::seconds retry_after{0};
  bool retryable = false;           // failed: worth another try at the same endpoint
};

// What an answer may echo into a detail: enough to recognise it (80 bytes, quoted, anything but
// printable ASCII as '?'), never a whole body in a log line.
std::string echo(std::string_view s);

// Retry-After as delta-seconds; missing or an HTTP date: 60 s (VirusTotal's public quota is per
// minute); at most one hour, so one odd answer cannot shut an endpoint out for longer.
std::chrono::seconds retry_after_seconds(std::string_view header);

Parsed parse_sluice_lookup(unsigned status, std::string_view body, std::string_view retry_after,
                           std::span<const std::string> hex);
Parsed parse_vt_lookup(unsigned status, std::string_view body, std::string_view retry_after, const std::string& hex,
                       unsigned malicious_threshold);
// The health probe: 200 is healthy; anything else is a failure with its detail.
Parsed parse_health(unsigned status, std::string_view body);

}  // namespace sluice::control::reputation
