// The management API's client side (issue 15): one HTTPS request to the appliance and its answer,
// for sluicectl. TLS only (an http:// URL is refused), TLS 1.2 at least.
//
// Which certificate is trusted (`choose_tls`, `TlsPolicy`):
//   --fingerprint SHA256   the certificate's SHA-256 must be this one (any host; chain and name are
//                          not checked: the pin says more than either)
//   --ca FILE              the chain must end at a certificate of FILE and name the URL's host
//   neither, loopback URL  (127.0.0.0/8, ::1, localhost) any certificate: the appliance's own
//                          self-signed one, made on first start; its SHA-256 is given back for the
//                          caller to show
//   neither, elsewhere     the system's CAs and the URL's host, as a browser would
// The certificate is checked before the request is written: a token never reaches a server that
// failed the check.
//
// Blocking: `perform` runs its own io_context until the answer or the failure. Times: resolving,
// connecting and the TLS handshake within `timeout`; then writing the request and reading the whole
// answer within `timeout` again. Bounds: a header of 64 KiB, a body of `max_body_bytes`.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "control/http_pool.h"

namespace sluice::control::api {

enum class Trust : uint8_t { any_on_loopback, fingerprint, ca_file, system };

struct TlsPolicy {
  Trust trust = Trust::system;
  std::string ca_file;      // Trust::ca_file
  std::string fingerprint;  // Trust::fingerprint, "AB:CD:..." (95 characters)
};

// A SHA-256 fingerprint as typed: 64 hex digits, colons optional (between every pair or nowhere),
// either case; "AB:CD:..." (upper case, colons), or "" when it is not one.
std::string normal_fingerprint(std::string_view text);
// "AB:CD:..." of 32 bytes.
std::string fingerprint_text(const uint8_t* sha256);

// The policy for a URL: "" and `out` set, or what is wrong with the options (the URL must be
// https://, --ca and --fingerprint are alternatives, the fingerprint must be one, the CA file must
// be readable).
std::string choose_tls(const http::Url& url, const std::string& ca_file, const std::string& fingerprint,
                       TlsPolicy& out);

struct ClientOptions {
  http::Url url;               // parsed by http::parse_url; tls must be true
  TlsPolicy tls;
  std::string connect_to;      // an IP address to connect to instead of resolving url.host (the
                               // certificate is still checked against url.host); "" to resolve
  std::string token;           // sent as Authorization: Bearer TOKEN when not empty
  std::string user_agent = "sluicectl";
  std::chrono::milliseconds timeout{10000};
  std::size_t max_body_bytes = std::size_t{1} << 30;  // a quarantined message, whole (the API's
                                                      // largest answer)
};

struct Request {
  std::string method = "GET";  // GET, POST, PUT, DELETE
  std::string target;          // appended to the URL's prefix: "/api/v1/status?x=y"
  std::string body;
  std::string content_type;    // with a body: "application/json", "application/yaml"
  std::string accept = "application/json";
};

struct Response {
  std::string failure;             // "" when an HTTP answer came; else what failed (connect, TLS, timeout...)
  unsigned status = 0;
  std::string content_type;
  std::string body;
  std::string peer_fingerprint;    // "AB:CD:..." of the certificate presented, once the handshake passed
};

Response perform(const ClientOptions& options, const Request& request);

// RFC 3986 percent-encoding of a path segment or query value (everything but unreserved characters).
std::string url_encode(std::string_view text);

}  // namespace sluice::control::api
