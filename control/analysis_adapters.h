// The analysis adapters (internal to control/): what each analysis endpoint kind asks and how its
// answers are read. Pure functions, no I/O: analysis_client.cpp sends the requests through
// http_pool and hands the answers here. Every answer is validated strictly (the hash asked, the id
// asked, known states and verdicts, typed fields); anything off is `failed` with a detail, never a
// guess. control/NOTES.md ("Analysis endpoints") explains each mapping.
#pragma once

#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "control/analysis_client.h"
#include "control/http_pool.h"

namespace sluice::control::analysis {

enum class Kind { sluice, cape };

struct Call {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string target;  // after the endpoint's URL prefix
  std::optional<http::Upload> upload;
};

// sluice-cloud (control/cloud/API.md).
Call sluice_limits();
Call sluice_search(const std::string& hex);
Call sluice_submit(std::shared_ptr<const std::string> bytes, std::string filename);
Call sluice_state(const std::string& id);
Call sluice_threat(const std::string& id);
Call sluice_health();
// CAPEv2 REST API v2.
Call cape_search(const std::string& hex);
Call cape_submit(std::shared_ptr<const std::string> bytes, std::string filename);
Call cape_status(const std::string& id);
Call cape_report(const std::string& id);

// Whether `id` is one this kind issues, and safe in a URL path: sluice 1-128 of [A-Za-z0-9._-]
// (not "." or ".."); cape a positive decimal task id below 2^63.
bool valid_sample_id(Kind kind, std::string_view id);

// A CAPE task status onto sluice's states: pending, recovered -> wait; distributed -> prep;
// running -> run; completed, distributed_completed -> proc; reported -> succ; failed_analysis,
// failed_processing, failed_reporting, banned -> fail; anything else: none (a bad answer).
std::optional<SampleState> cape_state(std::string_view status);

struct Parsed {
  enum class Kind { answered, rate_limited, sample_limit, too_large, not_found, not_ready, failed } kind = Kind::failed;
  std::string detail;                  // all but answered: "HTTP 503 TransientError", "bad answer: ...", "CAPE error: ..."
  std::chrono::seconds retry_after{0};  // rate_limited, sample_limit
  bool retryable = false;              // failed: worth another try at the same endpoint
  bool endpoint_failure = true;        // failed: counts against the circuit breaker (false: the endpoint
                                       // answered, it only refused this one request)
  // answered, per operation:
  bool found = false;                  // search
  std::string id;                      // search, submit, state: the sample (task) id
  SampleState state = SampleState::wait;
  bool already_known = false;          // submit
  uint64_t max_sample_bytes = 0;       // limits
  std::optional<uint64_t> submissions_available;
  std::optional<int> score;            // threat
  Verdict verdict = Verdict::failed;
  std::string threat_name, report;
  bool report_truncated = false;
};

Parsed parse_sluice_limits(unsigned status, std::string_view body, std::string_view retry_after);
Parsed parse_sluice_search(unsigned status, std::string_view body, std::string_view retry_after, const std::string& hex);
Parsed parse_sluice_submit(unsigned status, std::string_view body, std::string_view retry_after, const std::string& hex);
Parsed parse_sluice_state(unsigned status, std::string_view body, std::string_view retry_after, const std::string& id);
Parsed parse_sluice_threat(unsigned status, std::string_view body, std::string_view retry_after);
Parsed parse_sluice_health(unsigned status, std::string_view body);

Parsed parse_cape_search(unsigned status, std::string_view body, std::string_view retry_after, const std::string& hex);
Parsed parse_cape_submit(unsigned status, std::string_view body, std::string_view retry_after);
Parsed parse_cape_status(unsigned status, std::string_view body, std::string_view retry_after);
Parsed parse_cape_report(unsigned status, std::string_view body, std::string_view retry_after);

}  // namespace sluice::control::analysis
