// An HTTP/1.1 client for one endpoint (one base URL): a pool of keep-alive connections over TCP or
// TLS (Boost.Beast on the service loop's io_context), a bounded queue of requests waiting for a
// connection, a deadline per request and a bound on every answer. Internal to control/: the
// reputation client (reputation_client.h) and the analysis client (analysis_client.h) use it.
//
// Threads: everything runs on the io_context's thread; nothing here blocks (host names are
// resolved by Asio's resolver; IP literals are not resolved at all).
// Uploads: a request may carry one file as multipart/form-data (RFC 7578); its bytes are shared
// with the caller (std::shared_ptr<const std::string>) and written from there, never copied.
// TLS: the server certificate is verified against `ca_file` (or the system's default paths) and the
// URL's host (ssl::host_name_verification: DNS names and IP addresses), SNI is sent for host names,
// an optional client certificate is presented, and an optional pin (SHA-256 of the server
// certificate's SubjectPublicKeyInfo) is checked after the handshake. Verification is never off.
// Limits: at most `max_connections` connections, `max_queued` requests waiting; an answer's body
// above `max_body_bytes` is an error and is never buffered beyond the limit (Beast's body_limit).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/error_code.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::control::http {

struct Url {
  bool tls = false;
  std::string host;    // IPv6 literals without brackets
  std::string port;    // decimal; 80 / 443 when the URL has none
  std::string prefix;  // path prefix without a trailing '/', "" for none
};
// http[s]://host[:port][/path-prefix] (no user info, query or fragment). "" when valid, else what
// is wrong.
std::string parse_url(std::string_view text, Url& out);
// 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(std::string_view host);

// Loads the TLS settings into `ctx` (verification on, TLS 1.2 at least). "" or the problem, naming
// the file ("ca_file '/x': no certificate in it").
std::string load_tls(boost::asio::ssl::context& ctx, const std::string& ca_file, const std::string& client_cert,
                     const std::string& client_key);
// `pin` as configured (base64 of 32 bytes, optionally prefixed "sha256//") to its bytes; nullopt when
// malformed.
std::optional<std::array<uint8_t, 32>> decode_pin(std::string_view pin);
std::string encode_pin(const std::array<uint8_t, 32>& digest);  // "sha256//BASE64"

struct PoolOptions {
  std::string name;  // the endpoint's name (not used in details: the caller prefixes them)
  Url url;
  std::chrono::milliseconds connect_timeout{2000};  // resolve + connect + TLS handshake
  unsigned max_connections = 4;
  std::size_t max_queued = 256;
  std::size_t max_body_bytes = 4096 * 1024;
  std::string ca_file, client_cert, client_key;  // TLS only
  std::optional<std::array<uint8_t, 32>> pin;     // TLS only
};

enum class Failure : uint8_t {
  none = 0,
  connect,    // resolve or TCP connect failed (refused, unreachable)
  tls,        // handshake failed (certificate not trusted, wrong host name...)
  pin,        // handshake passed, the public key is not the pinned one
  timeout,    // connect or answer past its time
  closed,     // the server closed the connection before the answer was complete
  too_large,  // the answer's body is above max_body_bytes
  protocol,   // not HTTP/1.1 as expected
};

// One file sent as the only part of a multipart/form-data body.
struct Upload {
  std::string field;     // the form field's name: "sample", "file"
  std::string filename;  // in the part's Content-Disposition; '"', '\\' and control characters become '_'
  std::shared_ptr<const std::string> bytes;  // shared with the caller, never copied
};

struct Request {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string target;  // appended to the URL's prefix: "/api/v1/health"
  std::string body;    // sent as application/json when not empty
  std::optional<Upload> upload;  // with it, the body is multipart/form-data holding this file (and `body` is ignored)
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{3000};          // from writing the request to the last byte of the answer
  std::chrono::steady_clock::time_point deadline;   // nothing of this request runs past it
  std::shared_ptr<const bool> abandoned;            // true when it leaves the queue: dropped, no callback
};

struct Response {
  Failure failure = Failure::none;
  std::string detail;  // with failure: "timeout after 3000 ms", "connection refused", "TLS: ..."
  unsigned status = 0;
  std::string retry_after;  // the Retry-After header, as sent
  std::string body;
  double latency_ms = 0;  // from taking a connection to the answer or the failure
  bool request_sent = false;  // the whole request was written: a non-idempotent one may have been acted on
};

class Pool : public std::enable_shared_from_this<Pool> {
 public:
  // Throws std::runtime_error when the TLS files cannot be loaded (validate first).
  static std::shared_ptr<Pool> create(boost::asio::io_context& io, PoolOptions options);
  ~Pool();

  // Queues the request; `done` is called once with the answer or the failure, from a completion
  // handler (never from inside send). false, and nothing done, when `max_queued` are waiting.
  bool send(Request request, std::function<void(Response)> done);
  // Places left in the queue (abandoned requests no longer count).
  std::size_t room();
  // Closes every connection and drops the queue; no callback runs after this.
  void close();

  unsigned connections_open() const noexcept;
  uint64_t connections_made() const noexcept { return connections_made_; }

  struct Conn;
  struct Job {
    Request request;
    std::function<void(Response)> done;
  };

 private:
  Pool(boost::asio::io_context& io, PoolOptions options);
  void dispatch();
  void start(const std::shared_ptr<Conn>& c, Job job);
  void connect(const std::shared_ptr<Conn>& c);
  void connected(const std::shared_ptr<Conn>& c);
  void write(const std::shared_ptr<Conn>& c, bool reused);
  void read(const std::shared_ptr<Conn>& c, bool reused);
  bool read_failed(const std::shared_ptr<Conn>& c, boost::system::error_code ec, bool reused);
  void answered(const std::shared_ptr<Conn>& c);
  void fail(const std::shared_ptr<Conn>& c, Failure f, std::string detail);
  void finish(const std::shared_ptr<Conn>& c, Response r);
  void drop(Conn& c);

  boost::asio::io_context& io_;
  PoolOptions opt_;
  std::optional<boost::asio::ssl::context> tls_;
  std::vector<std::shared_ptr<Conn>> conns_;
  std::deque<Job> queue_;
  bool closed_ = false;
  uint64_t connections_made_ = 0;
};

}  // namespace sluice::control::http
