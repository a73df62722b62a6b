// The management API (issue 15): HTTPS on the management address (`management.listen`, never an
// inspected port), bearer tokens (tokens.h) with a read-only and an admin role, a rate limit per
// token, one access-log line per request (who, what, result; never a token). It serves the routes
// it is given (api.h; sluiced's are made by api_routes.h and listed in docs/api.md): it matches the
// method and path, checks the token's role against the route's access (401, 403), and hands the
// request to the route's handler, which answers now or later.
//
// TLS 1.2 at least. Without a configured certificate, one is made on first start (EC P-256,
// self-signed, valid ten years, for the listen address and "localhost") in
// STATE/management.crt and .key (0600) and used from then on; its SHA-256 fingerprint is in
// summary() (printed at start), for `sluicectl --fingerprint` and browsers.
//
// Threads: everything on the service loop's io_context; handlers are called there, and an answer
// given from another thread is posted back to it. Limits: 64 connections (beyond: closed at once), a
// request header of 16 KiB and a body of 64 KiB (beyond: 400 or 413 and closed), 10 s to complete
// the TLS handshake or a request, 60 s idle keep-alive.
#pragma once

#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>
#include <string>

#include "control/api.h"
#include "control/event_render.h"
#include "control/tokens.h"

namespace sluice::control {

struct ManagementConfig {
  std::string listen;                  // host:port; empty: no management API
  std::string token_file;              // required with `listen`
  std::string cert_file, key_file;     // PEM; empty: the generated pair in the state directory
  unsigned rate_per_s = 50;            // requests per token and second (bursts of twice that); 429 beyond
  unsigned max_connections = 64;       // open at once; a connection beyond is closed at once
  unsigned max_header_kb = 16;         // a request's header; beyond: 400
  unsigned max_body_kb = 64;           // a request's body; beyond: 413
  unsigned request_timeout_s = 10;     // the TLS handshake, then each request's reading and answer
  unsigned idle_timeout_s = 60;        // a kept-alive connection without a request is closed
  unsigned alerts_kept = 1000;         // GET /api/v1/alerts: the latest alerts kept in memory
};

class Management {
 public:
  Management(boost::asio::io_context& io, ManagementConfig config, std::string state_dir,
             std::vector<ApiRoute> routes);
  ~Management();
  Management(const Management&) = delete;
  Management& operator=(const Management&) = delete;

  // Loads the tokens and the certificate (making one if needed) and listens. "" or one line
  // saying what is wrong (sluiced does not start then).
  std::string start();
  // "management API on https://ADDR:PORT (certificate SHA-256 AB:CD:...)".
  const std::string& summary() const noexcept;
  // Closes the listener and every connection.
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Makes a self-signed certificate and key (PEM) for `hosts` (IP addresses and DNS names); "" or
// what failed. The key file is written 0600.
std::string make_self_signed(const std::string& cert_path, const std::string& key_path,
                             const std::vector<std::string>& hosts);
// "AB:CD:..." (SHA-256 of the DER certificate) of a PEM file; "" when unreadable.
std::string certificate_fingerprint(const std::string& cert_path);
// Whether the PEM certificate names `host` (an IP address, or a DNS name) in its subjectAltName.
bool certificate_names(const std::string& cert_path, const std::string& host);

}  // namespace sluice::control
