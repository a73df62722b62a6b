// Notifications (notifier.h).
#include "control/notifier.h"

#include "control/smtp_send.h"
#include <openssl/evp.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>

#include "control/event_render.h"
#include "control/http_pool.h"
#include "control/reputation_client.h"

namespace sluice::control {
namespace net = boost::asio;

namespace {

constexpr std::size_t kMaxDatagram = 8192;
constexpr auto kNoteEvery = std::chrono::seconds(10);

int syslog_severity(Severity s) { return s == Severity::critical ? 2 : s == Severity::warning ? 4 : 6; }
int rank(Severity s) { return s == Severity::info ? 0 : s == Severity::warning ? 1 : 2; }

// RFC 5424 PRINTUSASCII (33..126), at most `max` characters; "-" when empty.
std::string header_field(const std::string& s, std::size_t max) {
  std::string out;
  for (unsigned char c : s)
    if (c >= 33 && c <= 126 && out.size() < max) out.push_back(static_cast<char>(c));
  return out.empty() ? "-" : out;
}

// SD-NAME: PRINTUSASCII but '=', ' ', ']' and '"', 1 to 32 characters.
std::string sd_name(const std::string& s) {
  std::string out;
  for (unsigned char c : s)
    if (c >= 33 && c <= 126 && c != '=' && c != ']' && c != '"' && out.size() < 32) out.push_back(static_cast<char>(c));
  return out.empty() ? "_" : out;
}

// PARAM-VALUE: '"', '\' and ']' escaped with '\'.
std::string sd_value(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\' || c == ']') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool ascii(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 127 || (c < 32 && c != '\t')) return false;
  return true;
}

// A header field "Name: value" folded to lines of 78 octets at most (RFC 5322 2.1.1, 2.2.3): ASCII
// at spaces; anything else as RFC 2047 encoded words of whole UTF-8 characters, one per line.
std::string folded_header(const std::string& name, const std::string& value) {
  std::string out = name + ":";
  std::size_t line = out.size();
  if (ascii(value)) {
    std::size_t i = 0;
    while (i < value.size()) {
      std::size_t j = value.find(' ', i + 1);
      if (j == std::string::npos) j = value.size();
      const std::string word = (i == 0 ? " " : "") + value.substr(i, j - i);
      if (line + word.size() > 78 && line > name.size() + 1) {
        out += "\r\n";
        line = 0;
      }
      out += word;
      line += word.size();
      i = j;
    }
    return out + "\r\n";
  }
  for (std::size_t i = 0; i < value.size();) {
    // 39 octets: 52 base64 characters, a word of 64, a line of 74 after "Subject: " (RFC 2047: 75).
    std::size_t j = std::min(value.size(), i + 39);
    while (j < value.size() && j > i + 1 && (static_cast<unsigned char>(value[j]) & 0xC0) == 0x80) --j;  // whole characters
    out += (i == 0 ? " " : "\r\n ") + std::string("=?UTF-8?B?") + base64(value.substr(i, j - i)) + "?=";
    i = j;
  }
  return out + "\r\n";
}

}  // namespace

bool split_host_port(const std::string& a, std::string& host, std::string& port) {
  if (!a.empty() && a[0] == '[') {
    const auto close = a.find(']');
    if (close == std::string::npos || close + 1 >= a.size() || a[close + 1] != ':') return false;
    host = a.substr(1, close - 1);
    port = a.substr(close + 2);
  } else {
    const auto colon = a.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    host = a.substr(0, colon);
    port = a.substr(colon + 1);
  }
  return !host.empty() && !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
}

namespace {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A channel's failure on standard error, at most once per kNoteEvery.
struct Noter {
  std::chrono::steady_clock::time_point next{};
  uint64_t quiet = 0;
  void note(const char* channel, const std::string& what) {
    const auto now = std::chrono::steady_clock::now();
    if (now < next) return void(++quiet);
    std::fprintf(stderr, "sluiced: notifications: %s: %s%s\n", channel, what.c_str(),
                 quiet ? (" (" + std::to_string(quiet) + " more since the last note)").c_str() : "");
    quiet = 0;
    next = now + kNoteEvery;
  }
};

}  // namespace

bool parse_severity(const std::string& text, Severity& out) {
  if (text == "info") out = Severity::info;
  else if (text == "warning") out = Severity::warning;
  else if (text == "critical") out = Severity::critical;
  else return false;
  return true;
}

std::string syslog_line(const Alert& a, unsigned facility, const std::string& host, int64_t time_us, int pid) {
  std::string sd = "[sluice@32473 severity=\"" + std::string(severity_name(a.severity)) + "\"";
  if (!a.endpoint.empty()) sd += " endpoint=\"" + sd_value(a.endpoint) + "\"";
  if (a.details.is_object())
    for (const auto& [k, v] : a.details.items()) {
      if (v.is_structured() || v.is_null()) continue;
      sd += " " + sd_name(k) + "=\"" + sd_value(v.is_string() ? v.get<std::string>() : v.dump()) + "\"";
    }
  sd += "]";
  // Microseconds at most (RFC 5424 6.2.3.1 TIME-SECFRAC is 1 to 6 digits): the event's format.
  return "<" + std::to_string(facility * 8 + static_cast<unsigned>(syslog_severity(a.severity))) + ">1 " +
         rfc3339(time_us) + " " + header_field(host, 255) + " sluiced " + std::to_string(pid) + " " +
         header_field(a.type, 32) + " " + sd + " \xEF\xBB\xBF" + a.message;
}

std::string alert_email(const Alert& a, const std::string& from, const std::vector<std::string>& to,
                        const std::string& host, int64_t time_us) {
  std::string subject = "[Sluice " + host + "] " + severity_name(a.severity) + ": " + a.type;
  if (a.details.is_object() && a.details.contains("new") && a.details.contains("sha256"))
    subject += ": a file is now " + a.details.value("new", "") + " (" + a.details.value("sha256", "").substr(0, 16) + "...)";
  char date[64];
  const std::time_t t = static_cast<std::time_t>(time_us / 1'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  std::mt19937_64 rng(std::random_device{}());
  char id[40];
  std::snprintf(id, sizeof id, "%016llx", static_cast<unsigned long long>(rng()));
  std::string rcpts;
  for (const auto& r : to) rcpts += (rcpts.empty() ? "" : ", ") + r;
  std::string text = a.message + "\r\n";
  if (!a.details.is_null()) {
    text += "\r\n";
    for (char c : a.details.dump(2)) {
      if (c == '\n') text += '\r';
      text += c;
    }
    text += "\r\n";
  }
  std::string m = "Date: " + std::string(date) + "\r\nFrom: " + from + "\r\n" + folded_header("To", rcpts) +
                  folded_header("Subject", subject) + "Message-ID: <" + id + "@" + header_field(host, 40) +
                  ">\r\nMIME-Version: 1.0\r\n"
                  "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n"
                  "Auto-Submitted: auto-generated\r\n\r\n";
  const std::string b = base64(text);
  for (std::size_t i = 0; i < b.size(); i += 76) m += b.substr(i, 76) + "\r\n";
  return m;
}

// ---- channels ----

// One channel's queue, in order, one alert at a time: `current` is being sent (or waits for its
// retry), `waiting` queue behind it, bounded (the oldest waiting is dropped, never the one being
// sent). A failure that may pass is retried after a back-off (1 s doubling to 5 min) up to
// `max_attempts`; any other drops the alert (counted `failed`).
struct Channel {
  Channel(net::io_context& io, const char* name) : timer(io), name(name) {}
  virtual ~Channel() = default;
  net::steady_timer timer;
  const char* name;
  std::deque<std::string> waiting;
  std::optional<std::string> current;
  bool busy = false;  // an attempt or a back-off is under way
  unsigned attempts = 0, max_attempts = 10;
  std::size_t max_queued = 1000;
  ChannelStats stats;
  Noter noter;
  std::weak_ptr<bool> alive;
  bool closed = false;

  // One attempt at `current`; ends with done(), exactly once, possibly from inside.
  virtual void attempt(const std::string& message) = 0;

  void push(std::string m) {
    if (closed) return void(++stats.dropped);
    if (waiting.size() >= max_queued) {
      waiting.pop_front();
      ++stats.dropped;
    }
    waiting.push_back(std::move(m));
    next();
  }
  void next() {
    if (busy || closed) return;
    if (!current) {
      if (waiting.empty()) return;
      current = std::move(waiting.front());
      waiting.pop_front();
      attempts = 0;
    }
    busy = true;
    attempt(*current);
  }
  void done(bool ok, bool retryable, const std::string& what) {
    if (closed) return;  // a completion after close(): already counted as dropped
    busy = false;
    if (ok) {
      ++stats.sent;
      current.reset();
      return next();
    }
    if (!retryable || ++attempts >= max_attempts) {
      ++stats.failed;
      noter.note(name, what + (retryable ? ": gave up after " + std::to_string(max_attempts) + " attempts"
                                         : ": refused, not retried"));
      current.reset();
      return next();
    }
    ++stats.retries;
    noter.note(name, what + ": retrying");
    busy = true;
    timer.expires_after(std::chrono::seconds(std::min(1u << std::min(attempts - 1, 9u), 300u)));
    timer.async_wait([this, a = alive](boost::system::error_code ec) {
      if (ec || a.expired()) return;
      busy = false;
      next();
    });
  }
  bool idle() const noexcept { return !busy && !current && waiting.empty(); }
  std::size_t queued() const noexcept { return waiting.size() + (current ? 1 : 0); }
  virtual void close() {
    closed = true;
    busy = false;
    timer.cancel();
    stats.dropped += queued();
    waiting.clear();
    current.reset();
  }
};

// Syslog: UDP, one datagram per alert; or TCP, octet counting (RFC 6587 3.4.1), one connection
// kept, made again after a failure.
struct Notifier::Syslog : Channel {
  Syslog(net::io_context& io, bool tcp) : Channel(io, "syslog"), tcp(tcp), udp_socket(io), tcp_socket(io), guard(io) {}
  bool tcp;
  net::ip::udp::socket udp_socket;
  net::ip::tcp::socket tcp_socket;
  net::ip::udp::endpoint udp_to;
  net::ip::tcp::endpoint tcp_to;
  net::steady_timer guard;  // TCP: the connect timeout
  bool connected = false;

  void attempt(const std::string& line) override {
    if (!tcp) {
      std::size_t n = std::min(line.size(), kMaxDatagram);
      while (n < line.size() && n > 0 && (static_cast<unsigned char>(line[n]) & 0xC0) == 0x80) --n;  // whole characters
      auto d = std::make_shared<std::string>(line.substr(0, n));
      udp_socket.async_send_to(net::buffer(*d), udp_to, [this, d, a = alive](boost::system::error_code ec, std::size_t) {
        if (!a.expired()) done(!ec, true, ec ? "send: " + ec.message() : "");
      });
      return;
    }
    if (!connected) {
      guard.expires_after(std::chrono::seconds(5));
      guard.async_wait([this, a = alive](boost::system::error_code ec) {
        if (!ec && !a.expired() && !connected) tcp_socket.close(ec);
      });
      tcp_socket.async_connect(tcp_to, [this, line, a = alive](boost::system::error_code ec) {
        if (a.expired()) return;
        guard.cancel();
        if (ec) return failed("connect: " + ec.message());
        connected = true;
        watch();
        attempt(line);
      });
      return;
    }
    auto frame = std::make_shared<std::string>(std::to_string(line.size()) + " " + line);
    net::async_write(tcp_socket, net::buffer(*frame), [this, frame, a = alive](boost::system::error_code ec, std::size_t) {
      if (a.expired()) return;
      if (ec) return failed("write: " + ec.message());
      done(true, true, "");
    });
  }
  void failed(const std::string& what) {
    boost::system::error_code ignored;
    tcp_socket.close(ignored);
    connected = false;
    done(false, true, what);
  }
  // A collector sends nothing: a read that ends means it closed the connection (or it broke).
  // The next alert then connects again instead of being written into a dead socket.
  void watch() {
    tcp_socket.async_read_some(net::buffer(sink), [this, a = alive](boost::system::error_code ec, std::size_t) {
      if (a.expired() || closed) return;
      if (!ec) return watch();
      boost::system::error_code ignored;
      tcp_socket.close(ignored);
      connected = false;
    });
  }
  std::array<char, 256> sink{};
  void close() override {
    boost::system::error_code ignored;
    guard.cancel();
    udp_socket.close(ignored);
    tcp_socket.close(ignored);
    Channel::close();
  }
};

// The webhook: a POST of the alert's event line. Retried: failures, 5xx, 408, 429.
struct Notifier::Webhook : Channel {
  explicit Webhook(net::io_context& io) : Channel(io, "webhook") {}
  std::shared_ptr<http::Pool> pool;
  EndpointConfig cfg;
  std::string authorization, target;

  void attempt(const std::string& body) override {
    http::Request rq;
    rq.method = boost::beast::http::verb::post;
    rq.target = target;
    rq.body = body;
    if (!authorization.empty()) rq.headers.emplace_back("Authorization", authorization);
    rq.timeout = std::chrono::milliseconds(cfg.request_timeout_ms);
    rq.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg.connect_timeout_ms) + rq.timeout;
    const bool sent = pool->send(std::move(rq), [this, a = alive](http::Response r) {
      if (a.expired()) return;
      if (r.failure != http::Failure::none) return done(false, true, r.detail);
      const bool ok = r.status >= 200 && r.status < 300;
      done(ok, r.status >= 500 || r.status == 408 || r.status == 429, "HTTP " + std::to_string(r.status));
    });
    if (!sent) done(false, true, "queue full");
  }
  void close() override {
    if (pool) pool->close();
    Channel::close();
  }
};

// Email: one transfer at a time on the loop's pool (libcurl blocks), its end posted back.
struct EmailSettings {
  SmtpRelay relay;
  std::string from;
  std::vector<std::string> to;
  std::atomic<bool> stopping{false};  // set by close(): a transfer under way gives up
};

struct Notifier::Email : Channel {
  Email(net::io_context& io, ServiceLoop& loop) : Channel(io, "email"), loop(loop) {}
  ServiceLoop& loop;
  // Shared with the transfer on the pool, which may outlive the Notifier by a moment.
  std::shared_ptr<EmailSettings> settings = std::make_shared<EmailSettings>();

  void attempt(const std::string& message) override {
    const bool queued = loop.submit([&sl = loop, this, message, settings = settings, a = alive] {
      std::string error = transfer(*settings, message);
      sl.post([this, a, error] {
        if (!a.expired()) done(error.empty(), true, "relay " + this->settings->relay.url + ": " + error);
      });
    });
    if (!queued) done(false, true, "the control plane's pool is full");
  }
  void close() override {
    settings->stopping = true;
    Channel::close();
  }

  // On the pool: one transfer; "" or what failed.
  static std::string transfer(const EmailSettings& e, const std::string& message) {
    return smtp_send(e.relay, e.from, e.to, message);
  }
};

Notifier::Notifier(ServiceLoop& loop, const NotifyConfig& config, std::string host)
    : loop_(loop), config_(config), host_(std::move(host)) {}

Notifier::~Notifier() {
  *alive_ = false;
  stop();
}

std::string Notifier::start() {
  std::string problems;
  auto problem = [&](const std::string& p) { problems += (problems.empty() ? "" : "; ") + p; };
  if (!config_.syslog_address.empty()) {
    std::string host, port;
    split_host_port(config_.syslog_address, host, port);  // checked at load
    auto s = std::make_unique<Syslog>(loop_.io(), config_.syslog_tcp);
    s->max_queued = config_.syslog_max_queued;
    s->alive = alive_;
    boost::system::error_code ec;
    if (s->tcp) {
      net::ip::tcp::resolver r(loop_.io());
      auto res = r.resolve(host, port, ec);
      if (!ec && !res.empty()) s->tcp_to = *res.begin();
    } else {
      net::ip::udp::resolver r(loop_.io());
      auto res = r.resolve(host, port, ec);
      if (!ec && !res.empty()) {
        s->udp_to = *res.begin();
        s->udp_socket.open(s->udp_to.protocol(), ec);
      }
    }
    if (ec)
      problem("notifications.syslog.address '" + config_.syslog_address + "': " + ec.message() + " (no syslog)");
    else
      syslog_ = std::move(s);
  }
  if (!config_.webhook.url.empty()) {
    auto w = std::make_unique<Webhook>(loop_.io());
    w->cfg = config_.webhook;
    w->authorization = config_.webhook_authorization;
    w->max_queued = config_.webhook_max_queued;
    w->max_attempts = config_.webhook_max_attempts;
    w->alive = alive_;
    try {
      auto o = endpoint_pool_options(config_.webhook);
      w->target = o.url.prefix.empty() ? "/" : "";
      w->pool = http::Pool::create(loop_.io(), std::move(o));
      webhook_ = std::move(w);
    } catch (const std::exception& x) {
      problem(std::string("notifications.webhook: ") + x.what() + " (no webhook)");
    }
  }
  if (!config_.email_relay.empty()) {
    auto e = std::make_unique<Email>(loop_.io(), loop_);
    e->alive = alive_;
    EmailSettings& m = *e->settings;
    m.relay.url = smtp_url(config_.email_relay);
    m.from = config_.email_from;
    m.to = config_.email_to;
    m.relay.starttls = config_.email_starttls != "none";
    m.relay.starttls_required = config_.email_starttls == "required";
    m.relay.ca_file = config_.email_ca_file;
    m.relay.username = config_.email_username;
    m.relay.timeout_ms = config_.email_timeout_ms;
    m.relay.stopping = &m.stopping;
    e->max_queued = config_.email_max_queued;
    if (!config_.email_password_file.empty()) {
      std::ifstream f(config_.email_password_file);
      std::getline(f, m.relay.password);
      if (!f && m.relay.password.empty())
        problem("notifications.email.password_file '" + config_.email_password_file + "': cannot read it");
    }
    email_ = std::move(e);
  }
  return problems;
}

void Notifier::send(const Alert& a, const std::string& event_line) {
  auto reaches = [&](const std::string& min) {
    Severity s = Severity::info;
    parse_severity(min, s);
    return rank(a.severity) >= rank(s);
  };
  const int64_t t = now_us();
  if (syslog_ && reaches(config_.syslog_min_severity))
    syslog_->push(syslog_line(a, config_.syslog_facility, host_, t, static_cast<int>(::getpid())));
  if (webhook_ && reaches(config_.webhook_min_severity)) webhook_->push(event_line);
  if (email_ && reaches(config_.email_min_severity))
    email_->push(alert_email(a, config_.email_from, config_.email_to, host_, t));
}

bool Notifier::idle() const noexcept {
  return (!syslog_ || syslog_->idle()) && (!webhook_ || webhook_->idle()) && (!email_ || email_->idle());
}

Json Notifier::stats() const {
  Json j = Json::object();
  auto one = [](const ChannelStats& s, std::size_t queued) {
    return Json{{"sent", s.sent}, {"failed", s.failed}, {"dropped", s.dropped}, {"retries", s.retries},
                {"queued", queued}};
  };
  if (syslog_) j["syslog"] = one(syslog_->stats, syslog_->queued());
  if (webhook_) j["webhook"] = one(webhook_->stats, webhook_->queued());
  if (email_) j["email"] = one(email_->stats, email_->queued());
  return j;
}

void Notifier::stop() {
  if (syslog_) syslog_->close();
  if (webhook_) webhook_->close();
  if (email_) email_->close();
}

}  // namespace sluice::control
