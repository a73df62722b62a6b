// The HTTP API of sluice-cloud (API.md), without sockets: one request in, one answer out. Routing,
// methods, authentication, the quota, request bodies, the store calls and every answer body are
// here; the connection-level work (reading, limits, timeouts, keep-alive, TLS, fault injection)
// is the server's (http_server.h). Runs on the service's one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/cloud/analyses.h"
#include "control/cloud/faults.h"
#include "control/cloud/quota.h"
#include "control/cloud/store.h"

namespace sluice::cloud {

// Suggested cache times, per disposition (the `ttl_seconds` of the file object).
struct Ttls {
  unsigned clean = 14400;     // 4 h: a clean file rarely turns malicious within hours
  unsigned malicious = 3600;  // 1 h: a verdict may be withdrawn (false positive)
  unsigned unknown = 900;     // 15 min: an unknown file may be analysed soon
};

struct ApiConfig {
  std::vector<std::string> api_keys;  // empty: look-ups need no key
  std::optional<std::string> admin_key;  // none: admin endpoints answer 403
  Ttls ttl;
  unsigned quota_per_minute = 0;  // 0: no quota
  std::string version;
};

// What the API needs of a request (views valid during handle()).
struct ApiRequest {
  std::string_view method;  // "GET", "POST"...
  std::string_view target;  // path and query, as sent
  std::string_view body;
  std::optional<std::string_view> x_apikey;
  std::optional<std::string_view> authorization;
  std::optional<std::string_view> content_type;
  std::string_view client;  // the peer's address: the quota's name for requests without a key
};

struct ApiResponse {
  unsigned status = 200;
  std::string body;          // JSON
  unsigned retry_after = 0;  // 429: seconds (Retry-After)
  std::string allow;         // 405: the Allow header
};

// {"error":{"code":..,"message":..}} with its status.
ApiResponse api_error(unsigned status, std::string_view code, std::string_view message);

// True for the admin endpoints (/api/v1/admin/...): never affected by faults nor by the quota.
bool is_admin_target(std::string_view target) noexcept;

// "2026-12-02T10:11:12Z"
std::string rfc3339(int64_t unix_seconds);

class Api {
 public:
  using WallClock = std::function<int64_t()>;  // Unix seconds
  using SteadyClock = std::function<Quota::Clock::time_point()>;

  // `analyses` null: the sample endpoints do not exist (404), as in a reputation-only service.
  Api(ApiConfig config, Store& store, Faults& faults, WallClock wall = {}, SteadyClock steady = {},
      Analyses* analyses = nullptr);

  ApiResponse handle(const ApiRequest& req);

  // A request whose body may exceed the server's limit (--max-body-kb): a sample upload may be as
  // large as the largest sample plus its multipart framing. `refusal` answers a larger one (the
  // server sends it as soon as the header shows the size, or when the body passes the limit).
  struct BodyLimit {
    std::size_t bytes = 0;
    ApiResponse refusal;
  };
  std::optional<BodyLimit> body_limit(std::string_view method, std::string_view target) const;

  const ApiConfig& config() const noexcept { return config_; }

  // Store failures seen (answered 503 TransientError).
  uint64_t store_errors() const noexcept { return store_errors_; }

 private:
  enum class Role { none, user, admin };
  struct Auth {
    Role role = Role::none;
    std::optional<ApiResponse> refused;
    std::string quota_name;
  };
  Auth authenticate(const ApiRequest& req, bool admin_endpoint) const;
  Role role_of(std::string_view key) const;

  ApiResponse health();
  ApiResponse get_file(std::string_view hex);
  ApiResponse lookup(std::string_view body);
  ApiResponse put_file(std::string_view hex, std::string_view body);
  ApiResponse changes(std::string_view query);
  ApiResponse faults(std::string_view method, std::string_view body);
  ApiResponse post_sample(const ApiRequest& req, const std::string& client);
  ApiResponse list_samples(std::string_view query);
  ApiResponse get_sample(std::string_view id, std::string_view what);
  ApiResponse limits(const std::string& client);
  ApiResponse sample_too_large() const;

  ApiConfig config_;
  Store& store_;
  Faults& faults_;
  Quota quota_;
  Analyses* analyses_;
  WallClock wall_;
  SteadyClock steady_;
  std::vector<std::string> key_digests_;  // SHA-256 of each api key, compared in constant time
  std::string admin_digest_;
  uint64_t store_errors_ = 0;
};

}  // namespace sluice::cloud
