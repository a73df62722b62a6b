// The appliance's reputation endpoint client (DESIGN.md sections 1 step 2 and 6; issue 11): looks
// SHA-256s up at the configured endpoints, asynchronously, on the control plane's service loop
// (control/service_loop.h). Endpoints are tried in order (fail-over); each has keep-alive
// connections (HTTP/1.1 over TCP or TLS), retries with back-off, a circuit breaker and, for the
// sluice kind, a health probe while its circuit is open. Adapters per `kind`:
//   sluice      POST {url}/api/v1/files/lookup {"hashes":[...]} (max_batch per request), health
//               GET {url}/api/v1/health
//   virustotal  GET {url}/api/v3/files/{sha256}, one hash per request (VirusTotal API v3; never
//               uploads): 404 NotFoundError = unknown, malicious when last_analysis_stats.malicious
//               reaches vt_malicious_threshold
// Every answer is validated strictly; anything off is an error with a detail, never a guess.
// Threads: every call, callback and completion runs on the io_context's one thread; nothing blocks.
// Memory: at most max_queued requests wait per endpoint, answers are bounded by max_response_kb.
// control/NOTES.md ("Reputation endpoints") has the whole story.
#pragma once

#include <boost/asio/io_context.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/endpoint_health.h"
#include "control/http_pool.h"
#include "records/verdict_records.h"

namespace sluice::control {

struct EndpointConfig {
  std::string name;            // unique within the list
  std::string kind;            // reputation: "sluice" | "virustotal"; analysis (analysis_client.h): "sluice" | "cape"
  std::string url;             // http://host:port or https://host:port (a path prefix allowed)
  std::string api_key;         // sent as x-apikey (cape: Authorization: Token KEY)
  std::string ca_file;         // PEM bundle; empty: the system's default paths
  std::string client_cert, client_key;  // optional client certificate (PEM)
  std::string pin_sha256;      // optional: base64 SHA-256 of the server certificate's SubjectPublicKeyInfo (as curl's sha256//...)
  bool insecure = false;       // allows plain http:// to a non-loopback host (never turns off TLS verification)
  unsigned connect_timeout_ms = 2000, request_timeout_ms = 3000;
  unsigned retries = 1, retry_backoff_ms = 100;     // per request, within the caller's deadline; doubled each retry
  unsigned max_connections = 4;                      // keep-alive connections kept per endpoint
  unsigned breaker_failures = 5, breaker_open_ms = 30000;  // consecutive failures open the circuit; after open_ms one trial (half-open)
  unsigned health_interval_ms = 10000;               // health probe period while open/unhealthy (0: none)
  unsigned max_batch = 100;                          // hashes per request (sluice kind; virustotal is 1 per request)
  unsigned vt_malicious_threshold = 3;               // virustotal: malicious when last_analysis_stats.malicious >= this
  unsigned max_response_kb = 4096;                   // a bigger body is an error (service_unavailable), never buffered beyond
  unsigned max_queued = 256;                         // requests waiting for a connection; beyond, look-ups fail fast (service_unavailable)
  unsigned max_sample_mb = 32;                       // analysis: larger samples are not uploaded (cape's limit; caps sluice-cloud's own)
  unsigned upload_timeout_ms = 60000;                // analysis: an upload's time, from its first byte sent to the answer
};
// One line naming the problem, or "" when valid: unknown kind, bad URL, plain http to non-loopback without insecure, unreadable files, bad pin format...
std::string validate_endpoint(const EndpointConfig&);
// What validate_endpoint() and validate_analysis_endpoint() (analysis_client.h) both check: everything but the kind.
std::string validate_endpoint_settings(const EndpointConfig&);
// The HTTP pool's options for an endpoint that passed validation (URL, timeouts, bounds, TLS files, pin).
http::PoolOptions endpoint_pool_options(const EndpointConfig&);

struct HashAnswer { records::Reputation reputation = records::Reputation::none; std::string threat_name{}; int threat_score = -1; uint32_t ttl_seconds = 0; bool upload_wanted = false; };
struct BatchOutcome {
  records::LookupError error = records::LookupError::none;  // none: `answers` holds one per hash, in order
  int endpoint = -1;                 // index of the endpoint that answered (or the last tried)
  std::vector<HashAnswer> answers;
  std::string detail;                // why, for logs (e.g. "lab: HTTP 503 TransientError", "lab: timeout after 3000 ms", "lab: TLS: certificate verify failed")
};
struct EndpointEvent { int endpoint; bool reachable; std::string detail; };  // a transition: became unreachable (breaker opened / health failed) or reachable again

class ReputationClient {
 public:
  // Throws std::invalid_argument when an endpoint does not pass validate_endpoint() or two share a
  // name (the configuration loader checks both first). No endpoint at all is allowed: every look-up
  // then ends service_unavailable.
  ReputationClient(boost::asio::io_context& io, std::vector<EndpointConfig> endpoints, std::function<void(const EndpointEvent&)> on_event);
  ~ReputationClient();
  ReputationClient(const ReputationClient&) = delete;
  ReputationClient& operator=(const ReputationClient&) = delete;

  // Looks up `hashes` (any number; split into requests of max_batch per endpoint kind), trying endpoints in order (fail-over; skipping open circuits), each request with retries and back-off, everything before `deadline`. `done` is called exactly once, on the io_context's thread, never from inside lookup(). Errors: all tried endpoints answered 429 -> rate_limited (honour Retry-After: that endpoint is skipped until then); the deadline passed -> budget_exhausted; anything else -> service_unavailable.
  void lookup(std::vector<std::array<uint8_t, 32>> hashes, std::chrono::steady_clock::time_point deadline, std::function<void(BatchOutcome)> done);
  struct EndpointStatus {
    std::string name, kind;
    bool reachable;
    bool circuit_open;
    uint64_t requests, failures, timeouts, rate_limited;
    double last_latency_ms;
    LatencyHistogram latency;  // every request's (endpoint_health.h)
  };
  std::vector<EndpointStatus> status() const;  // the endpoints in use, in order

  // At run time (the management API). add_endpoint(): at the end of the fail-over order; its index
  // (as in BatchOutcome::endpoint and EndpointEvent), or -1 with `error` (validate_endpoint, a name
  // in use). remove_endpoint(): skipped from now on, its connections closed (a request there
  // fails over to the next endpoint); its index is never reused. false: no such endpoint.
  int add_endpoint(EndpointConfig cfg, std::string& error);
  bool remove_endpoint(const std::string& name);
  // Sends the endpoint's check now, whatever its circuit says (sluice: GET /api/v1/health;
  // virustotal: a look-up of the empty file's SHA-256, one request of its quota); `done` on the
  // loop. Counts in no statistic. false: no such endpoint (done is not called).
  struct TestResult { bool ok = false; unsigned status = 0; double latency_ms = 0; std::string detail; };
  bool test_endpoint(const std::string& name, std::function<void(TestResult)> done);
  void stop();  // cancels everything; pending done() get service_unavailable; no callback after the destructor

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::control
