// Notifications (issue 14): every alert is an `alert` event; the Notifier also sends it, by
// severity, to the places an administrator reads:
//   - syslog (RFC 5424) over UDP (one datagram per alert, at most 8 KiB) or TCP (octet-counting
//     framing, RFC 6587 3.4.1), to a local or remote collector;
//   - a JSON webhook: an HTTPS POST of the alert event's JSON line, retried with exponential
//     back-off (1 s doubling to 5 min) on failures, 5xx, 408 and 429;
//   - an email to the administrators through an SMTP relay (libcurl: STARTTLS, optional login),
//     one message per alert, sent one at a time on the service loop's pool (libcurl blocks).
// Each channel sends in order, one alert at a time, retrying a failure that may pass with the same
// back-off up to its `max_attempts` (the webhook's is configured; syslog and email make 10), and
// has a bounded queue: beyond it the oldest alert waiting is dropped and counted.
// A channel's failures are counted and written to standard error (at most once per 10 s), never
// as alerts of their own (a failing channel would feed itself).
//
// Threads: send(), stats() and idle() on the service loop; sockets and the webhook's pool on its
// io_context; the email transfer on the loop's pool (one job at a time), its result posted back.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "control/alert.h"
#include "control/config.h"
#include "control/service_loop.h"

namespace sluice::control {

// The RFC 5424 line of an alert (no framing): PRI, version 1, the time, `host`, APP-NAME sluiced,
// PROCID, MSGID the alert's type, structured data [sluice@32473 ...] (severity, endpoint and the
// details' scalar members; 32473 is the enterprise number RFC 5612 reserves for documentation:
// a site with its own number may ask for it) and the message, UTF-8 after a BOM.
std::string syslog_line(const Alert& a, unsigned facility, const std::string& host, int64_t time_us, int pid);
// The email of an alert (RFC 5322, UTF-8 text in base64, the subject as an RFC 2047 encoded word
// when it is not ASCII).
std::string alert_email(const Alert& a, const std::string& from, const std::vector<std::string>& to,
                        const std::string& host, int64_t time_us);

struct ChannelStats {
  uint64_t sent = 0, failed = 0, dropped = 0, retries = 0;
  std::size_t queued = 0;
};

class Notifier {
 public:
  // Checks nothing (the configuration loader did); start() opens what is configured.
  Notifier(ServiceLoop& loop, const NotifyConfig& config, std::string host);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // One line per problem at start (an unresolvable syslog host...): "" when all is well.
  std::string start();
  // Queues the alert (rendered as its event line `event_line`) on every channel whose minimum
  // severity it reaches.
  void send(const Alert& a, const std::string& event_line);
  // Nothing waits or is being sent.
  bool idle() const noexcept;
  Json stats() const;
  // Closes sockets and pools; what waits is dropped (counted).
  void stop();

 private:
  struct Syslog;
  struct Webhook;
  struct Email;
  std::unique_ptr<Syslog> syslog_;
  std::unique_ptr<Webhook> webhook_;
  std::unique_ptr<Email> email_;
  ServiceLoop& loop_;
  const NotifyConfig config_;
  std::string host_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// host:port or [v6]:port (a decimal port); false for anything else.
bool split_host_port(const std::string& address, std::string& host, std::string& port);
// "info" | "warning" | "critical" to a severity; false for anything else.
bool parse_severity(const std::string& text, Severity& out);

}  // namespace sluice::control
