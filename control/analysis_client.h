// The appliance's analysis endpoint client (DESIGN.md sections 1 step 4 and 6; issue 12).
//
// Interface (everything a caller uses; the rest of this header is the types these return):
//
//   AnalysisClient(io_context&, std::vector<EndpointConfig>, on_event(const EndpointEvent&), Offload = {})
//   void limits(deadline, done(LimitsOutcome))                          max sample size, uploads left today
//   void search(const Sha256&, deadline, done(SearchOutcome))           already known? where, in what state
//   void submit(const Sha256&, std::shared_ptr<const std::string> bytes, std::string filename,
//               deadline, done(SubmitOutcome))                          upload; the sample's SampleRef
//   void state(const SampleRef&, deadline, done(StateOutcome))          wait, prep, run, proc, succ, fail
//   void threat(const SampleRef&, deadline, done(ThreatOutcome))        score 0-100, verdict, name, report
//   std::vector<EndpointStatus> status() const                          per endpoint: circuit, counters
//   Stats stats() const                                                 operations, outcomes, uploads, bound
//   void stop()
//   std::string validate_analysis_endpoint(const EndpointConfig&)       the configuration loader's check
//
// `done` is called exactly once, on the io_context's thread, never from inside the call; every
// operation ends by its `deadline` (steady clock) at the latest. `on_event` reports an endpoint
// becoming unreachable (its circuit opened) or reachable again. A SampleRef names the endpoint that
// holds the sample by its configured name, so it stays valid across a restart or a reordered list.
//
// What it does: asks the configured analysis services whether a file is already known, uploads
// it, follows its analysis and reads the result, asynchronously, on the control plane's service
// loop. It decides nothing: the analysis workflow (quarantine, polling, the verdict cache) calls it
// and acts on the outcomes. Adapters per `kind`:
//   sluice  sluice-cloud's analysis API (control/cloud/API.md): POST {url}/api/v1/samples (multipart
//           field `sample`), GET /api/v1/samples?sha256=, /api/v1/samples/{id}/state,
//           /api/v1/samples/{id}/threat, /api/v1/limits; health GET /api/v1/health; x-apikey
//   cape    CAPEv2's REST API v2: POST {url}/apiv2/tasks/create/file/ (multipart field `file`),
//           GET /apiv2/tasks/search/sha256/<h>/, /apiv2/tasks/status/<id>/,
//           /apiv2/tasks/get/report/<id>/ (malscore 0-10 -> score 0-100); `Authorization: Token
//           KEY`; errors that arrive with HTTP 200 and "error": true are errors, never answers; no
//           limits endpoint (the configured max_sample_mb is the limit); CAPE states map onto
//           sluice's
// control/NOTES.md ("Analysis endpoints") lists every field each adapter relies on.
// Endpoints use EndpointConfig (reputation_client.h) with the same TLS, timeout, retry, circuit
// breaker and health semantics as the reputation client (control/endpoint_health.h), plus
// max_sample_mb and upload_timeout_ms. search, submit and limits try the endpoints in order
// (fail-over); state and threat go to the endpoint that holds the sample. Every answer is validated
// strictly; anything off is service_unavailable with a detail, never a guess.
// Threads: every call, callback and completion runs on the io_context's one thread; nothing blocks.
// Answers above kParseOnLoopBytes (a CAPE report is megabytes) are parsed by the `offload` function
// given (sluiced: ServiceLoop::submit), which sees only copies of what it parses; the result comes
// back to the loop. Memory: sample bytes are shared, never copied, and released when the operation
// ends; at most max_queued requests wait per endpoint and Stats::max_pending operations are open at
// once (beyond, the call fails fast); answers are bounded by max_response_kb.
#pragma once

#include <boost/asio/io_context.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/reputation_client.h"
#include "control/sample_state.h"

namespace sluice::control {

// One line naming the problem, or "" when valid: validate_endpoint()'s checks with the kinds
// `sluice` and `cape`, plus max_sample_mb (1-4096) and upload_timeout_ms (at least 1); cape needs
// an api_key.
std::string validate_analysis_endpoint(const EndpointConfig&);

// A sample's analysis state, as Secure Malware Analytics and sluice-cloud name them.
inline const char* to_string(SampleState s) noexcept { return sample_state_name(s); }

enum class AnalysisError : uint8_t {
  none = 0,
  service_unavailable,  // no endpoint answered: refused, timeout, TLS, 5xx, 4xx, a bad answer, an error
                        // with HTTP 200 (cape), open circuits, full queues, the deadline passed, stopped
  rate_limited,         // every endpoint tried was throttled (429) or inside its Retry-After
  sample_limit,         // submit: the endpoint's daily sample limit is reached (not an endpoint failure)
  too_large,            // submit: the sample is above the endpoint's limit (max_sample_mb, or the service said so)
  not_found,            // state, threat: the endpoint does not know the sample (or the SampleRef names no endpoint)
  not_ready,            // threat: the analysis has not completed yet; ask state() again later
};
const char* to_string(AnalysisError) noexcept;

// A sample as the endpoint that holds it names it: sluice-cloud's sample id, or CAPE's task id in
// decimal. `endpoint` is the endpoint's configured name (stable across restarts, unlike its index).
struct SampleRef {
  std::string endpoint;
  std::string id;
  bool operator==(const SampleRef&) const = default;
};

// Common to every outcome.
struct AnalysisOutcome {
  AnalysisError error = AnalysisError::none;
  int endpoint = -1;                    // index (as in status()) of the endpoint that answered, or the last tried; -1: none
  std::string detail;                   // why, for logs: "lab: HTTP 503 TransientError; cape: connect: ..."
  std::chrono::seconds retry_after{0};  // rate_limited, sample_limit: the Retry-After, when given
};

struct LimitsOutcome : AnalysisOutcome {
  uint64_t max_sample_bytes = 0;                 // the service's limit, capped by max_sample_mb
  std::optional<uint64_t> submissions_available;  // uploads left today; none: no daily limit (or cape)
};

struct SearchOutcome : AnalysisOutcome {
  bool found = false;  // false: never submitted there
  SampleRef sample;
  SampleState state = SampleState::wait;
};

struct SubmitOutcome : AnalysisOutcome {
  SampleRef sample;
  SampleState state = SampleState::wait;
  bool already_known = false;  // the service had it already (sluice: 200 instead of 201)
};

struct StateOutcome : AnalysisOutcome {
  SampleState state = SampleState::wait;
};

enum class Verdict : uint8_t { clean, suspicious, malicious, failed };
const char* to_string(Verdict) noexcept;

struct ThreatOutcome : AnalysisOutcome {
  std::optional<int> score;  // 0-100; none when the analysis failed
  Verdict verdict = Verdict::failed;
  std::string threat_name;   // "" when none
  std::string report;        // the report as compact JSON, at most kMaxReportBytes (cape: a summary)
  bool report_truncated = false;  // the report was above the bound: `report` is a smaller summary
  static constexpr std::size_t kMaxReportBytes = 64 * 1024;  // an event or a store record, not an archive
};

class AnalysisClient {
 public:
  using Clock = std::chrono::steady_clock;
  using Sha256 = std::array<uint8_t, 32>;

  // Runs `job` on another thread; false when it cannot (its queue is full). ServiceLoop::submit.
  using Offload = std::function<bool(std::function<void()> job)>;
  // Answers up to this size are parsed on the loop (about a millisecond at most); larger ones by
  // `offload`. Without `offload` every answer is parsed on the loop (tests, tools).
  static constexpr std::size_t kParseOnLoopBytes = 256 * 1024;

  // Throws std::invalid_argument when an endpoint does not pass validate_analysis_endpoint() or two
  // share a name. No endpoint at all is allowed: every operation then ends service_unavailable.
  // `offload`'s jobs post their result to `io`: the threads that run them must end before `io` does.
  AnalysisClient(boost::asio::io_context& io, std::vector<EndpointConfig> endpoints,
                 std::function<void(const EndpointEvent&)> on_event, Offload offload = {});
  ~AnalysisClient();
  AnalysisClient(const AnalysisClient&) = delete;
  AnalysisClient& operator=(const AnalysisClient&) = delete;

  // Each operation ends by `deadline` at the latest (service_unavailable, "deadline passed ...").
  // The outcomes' `endpoint` is an index into status(); SampleRef holds the endpoint's name.
  // The limits of the first endpoint that answers (cape: its max_sample_mb, no request).
  void limits(Clock::time_point deadline, std::function<void(LimitsOutcome)> done);
  // Whether the first endpoint that answers knows the file (not found there is an answer: the next
  // endpoint is not asked).
  void search(const Sha256& sha256, Clock::time_point deadline, std::function<void(SearchOutcome)> done);
  // Uploads the file to the first endpoint that takes it. `bytes` are shared until the upload ends.
  // A sample above an endpoint's max_sample_mb is not sent there (too_large, the next one is tried);
  // an empty one nowhere (service_unavailable). `sha256` is the bytes': answers must name it.
  void submit(const Sha256& sha256, std::shared_ptr<const std::string> bytes, std::string filename,
              Clock::time_point deadline, std::function<void(SubmitOutcome)> done);
  // At the endpoint that holds the sample, only (not_found when no endpoint has that name).
  void state(const SampleRef& sample, Clock::time_point deadline, std::function<void(StateOutcome)> done);
  void threat(const SampleRef& sample, Clock::time_point deadline, std::function<void(ThreatOutcome)> done);

  struct EndpointStatus {
    std::string name, kind;
    bool reachable, circuit_open;
    uint64_t requests, failures, timeouts, rate_limited;
    double last_latency_ms;
    uint64_t connections_made;  // TCP (and TLS) connections opened: keep-alive reuses them
    LatencyHistogram latency;   // every request's (endpoint_health.h)
  };
  std::vector<EndpointStatus> status() const;  // in the configured order
  // Sends the endpoint's check now, whatever its circuit says (sluice: GET /api/v1/health; cape: a
  // search for the empty file's SHA-256); `done` on the loop with {ok, status, latency_ms, detail}.
  // Counts in no statistic. false: no such endpoint (done is not called).
  struct TestResult { bool ok = false; unsigned status = 0; double latency_ms = 0; std::string detail; };
  // At run time (the management API): add_endpoint() at the end of the order (its index, or -1 with
  // `error`); remove_endpoint(): skipped from now on and unknown by name (an operation on a sample
  // it holds ends not_found: the workflow takes it as a failed analysis), its connections closed (requests there fail over); false: no such one.
  int add_endpoint(EndpointConfig cfg, std::string& error);
  bool remove_endpoint(const std::string& name);
  bool test_endpoint(const std::string& name, std::function<void(TestResult)> done);
  struct Stats {
    uint64_t operations = 0;                  // calls made
    std::array<uint64_t, 7> ended{};          // operations ended, per AnalysisError (index: its value; none: success)
    uint64_t uploads = 0, upload_bytes = 0;   // upload requests handed to a connection pool (each try at each endpoint), their file bytes
    uint64_t offloaded = 0;                   // answers parsed by `offload`
    std::size_t pending = 0, max_pending = 0; // operations open now; the bound (sum of max_queued + max_connections)
  };
  Stats stats() const;
  void stop();  // cancels everything; pending done() get service_unavailable; no callback after the destructor

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::control
