// One message to an SMTP relay (libcurl's SMTP client): alert mails (notifier.h) and quarantined
// messages released to the relay (api_routes.h). Blocking: call it on the pool, never on the loop.
#pragma once

#include <atomic>
#include <string>
#include <vector>

namespace sluice::control {

struct SmtpRelay {
  std::string url;              // "smtp://host:port" (the relay)
  bool starttls_required = false, starttls = true;  // STARTTLS required / tried when offered
  std::string ca_file;          // PEM bundle the relay's certificate must chain to; empty: the system's
  std::string username, password;  // AUTH when a username is set
  unsigned timeout_ms = 30000;  // the whole transfer
  const std::atomic<bool>* stopping = nullptr;  // set: a transfer under way gives up
};

// "smtp://host:port" from "host:port" (an IPv6 address in brackets stays so).
std::string smtp_url(const std::string& host_port);

// Sends `message` (the whole RFC 5322 text, CRLF line ends; dot-stuffing is libcurl's) with
// MAIL FROM `from` (may be empty: the null sender) and one RCPT TO per `to`. "" or what failed.
std::string smtp_send(const SmtpRelay& relay, const std::string& from, const std::vector<std::string>& to,
                      const std::string& message);

}  // namespace sluice::control
