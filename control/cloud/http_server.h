// sluice-cloud's HTTP/1.1 server (Boost.Beast on Asio, optionally TLS): accepts connections, reads
// requests within limits and timeouts, hands each one to the Api, writes the answers in request
// order (keep-alive and pipelining), and applies the lab faults (faults.h) to non-admin requests.
// Everything runs on the thread of the io_context it is given (NOTES.md, "Threads").
//
// Limits and what happens at each (NOTES.md): header 8 KiB and body --max-body-kb: 400
// BadRequestError, then the connection is closed; a request not complete within --read-timeout
// from its first byte, a TLS handshake likewise: closed; idle keep-alive past --idle-timeout:
// closed; connections beyond --max-connections: 503 TransientError and closed (64 such answers at
// once; past that, closed at once); a client that does not read its answer within 30 s: closed.
// Sample uploads have the API's own body limit (Api::body_limit: the refusal is the API's 400,
// sent as soon as the Content-Length shows it) and their own bound (ServerLimits::max_uploads).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "control/cloud/api.h"
#include "control/cloud/faults.h"

namespace sluice::cloud {

struct ServerLimits {
  std::size_t header_bytes = 8 * 1024;  // the request line and headers; ours are a few hundred bytes
  std::size_t body_bytes = 1 << 20;     // --max-body-kb
  unsigned max_connections = 256;       // --max-connections
  std::chrono::seconds idle_timeout{30};  // --idle-timeout
  std::chrono::seconds read_timeout{10};  // --read-timeout
  std::chrono::seconds write_timeout{30};  // a client must take its answer (up to 256 MiB with faults)
  // Sample uploads (Api::body_limit) read at once: each body is held in memory, up to
  // --max-sample-mb plus its framing, so 8 of 32 MiB are 256 MiB at most. Beyond: 503
  // TransientError with Retry-After 1, and the connection closed.
  unsigned max_uploads = 8;
  // An upload's body may take --read-timeout plus one second per this many bytes (32 MiB: 128 s
  // more), so that a large sample over a slow link is not cut off.
  std::size_t upload_bytes_per_second = 256 * 1024;
};

class HttpServer {
 public:
  // Binds `listen` (throws boost::system::system_error if it cannot). `tls` null: plain HTTP.
  HttpServer(boost::asio::io_context& io, const boost::asio::ip::tcp::endpoint& listen,
             boost::asio::ssl::context* tls, Api& api, Faults& faults, ServerLimits limits, std::string server_name);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  boost::asio::ip::tcp::endpoint local_endpoint() const;

  void start();
  // Graceful stop: no new connection; idle connections are closed, answers in progress are
  // finished and their connections closed. `done` runs on the loop once no connection is left.
  void stop(std::function<void()> done);

  std::size_t connections() const noexcept;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice::cloud
