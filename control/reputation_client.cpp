// control/reputation_client: see reputation_client.h and control/NOTES.md ("Reputation endpoints").
//
// A look-up moves through the endpoints in order. At each one it is one *attempt*: the hashes split
// into *parts* (max_batch per request for sluice, one per request for virustotal), all queued on the
// endpoint's pool at once (or none, when the queue has no room for them all). Every part must be
// answered by that endpoint; the first part that fails for good (after its retries), or a 429,
// abandons the attempt (its queued parts are dropped, answers in flight are ignored) and the look-up
// moves on to the next endpoint with all its hashes, so an outcome names exactly one endpoint.
// Handlers hold the client's state weakly: after the destructor nothing of theirs runs.
#include "control/deferred_calls.h"
#include "control/hex.h"
#include "control/reputation_client.h"

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <deque>
#include <set>
#include <span>
#include <stdexcept>
#include <unordered_set>

#include "control/endpoint_health.h"
#include "control/http_pool.h"
#include "control/reputation_adapters.h"

namespace sluice::control {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;
using records::LookupError;
using reputation::Parsed;

namespace {

// The sluice-cloud batch look-up takes up to 1000 hashes (control/cloud/API.md).
constexpr unsigned kMaxBatch = 1000;
// Keep-alive connections per endpoint: a look-up service, not a crawler.
constexpr unsigned kMaxConnections = 64;
// 64 MiB: far above any look-up answer (100 hashes take a few KiB), still a bound.
constexpr unsigned kMaxResponseKb = 64 * 1024;
// Retries per request: more only burn the message's budget on a failing endpoint.
constexpr unsigned kMaxRetries = 10;

long long ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

}  // namespace

std::string validate_endpoint(const EndpointConfig& e) {
  if (e.kind != "sluice" && e.kind != "virustotal")
    return "kind '" + e.kind + "' is not one of sluice, virustotal";
  if (std::string p = validate_endpoint_settings(e); !p.empty()) return p;
  if (e.kind == "virustotal" && e.api_key.empty()) return "api_key is required for kind virustotal";
  return "";
}

std::string validate_endpoint_settings(const EndpointConfig& e) {
  if (e.name.empty()) return "name is empty";
  for (unsigned char c : e.name)
    if (c < 0x20 || c == 0x7f) return "name contains a control character";
  http::Url url;
  if (std::string p = http::parse_url(e.url, url); !p.empty()) return "url '" + e.url + "': " + p;
  if (!url.tls && !http::is_loopback_host(url.host) && !e.insecure)
    return "url '" + e.url + "': plain http:// to a host other than loopback needs insecure: true (or https://)";
  if (!url.tls && (!e.ca_file.empty() || !e.client_cert.empty() || !e.client_key.empty() || !e.pin_sha256.empty()))
    return "ca_file, client_cert, client_key and pin_sha256 need an https:// url";
  for (unsigned char c : e.api_key)
    if (c < 0x20 || c == 0x7f) return "api_key contains a control character";
  if (!e.pin_sha256.empty() && !http::decode_pin(e.pin_sha256))
    return "pin_sha256 '" + e.pin_sha256 + "' is not the base64 SHA-256 of a public key (44 characters, as sha256//...)";
  if (e.connect_timeout_ms == 0) return "connect_timeout_ms must be at least 1";
  if (e.request_timeout_ms == 0) return "request_timeout_ms must be at least 1";
  if (e.retries > kMaxRetries) return "retries must be 0-" + std::to_string(kMaxRetries);
  if (e.max_connections == 0 || e.max_connections > kMaxConnections)
    return "max_connections must be 1-" + std::to_string(kMaxConnections);
  if (e.breaker_failures == 0) return "breaker_failures must be at least 1";
  if (e.max_batch == 0 || e.max_batch > kMaxBatch) return "max_batch must be 1-" + std::to_string(kMaxBatch);
  if (e.vt_malicious_threshold == 0) return "vt_malicious_threshold must be at least 1";
  if (e.max_response_kb == 0 || e.max_response_kb > kMaxResponseKb)
    return "max_response_kb must be 1-" + std::to_string(kMaxResponseKb);
  if (e.max_queued == 0) return "max_queued must be at least 1";
  if (url.tls) {
    net::ssl::context ctx(net::ssl::context::tls_client);
    if (std::string p = http::load_tls(ctx, e.ca_file, e.client_cert, e.client_key); !p.empty()) return p;
  }
  return "";
}

struct ReputationClient::Impl : std::enable_shared_from_this<Impl> {
  using Admission = EndpointHealth::Admission;

  struct Endpoint {
    int index = 0;
    EndpointConfig cfg;
    reputation::Kind kind = reputation::Kind::sluice;
    std::shared_ptr<http::Pool> pool;
    std::shared_ptr<EndpointHealth> health;  // breaker, Retry-After, probes, counters
    bool removed = false;                    // remove_endpoint(): skipped; its index stays taken
  };

  struct Attempt {
    int endpoint = -1;
    std::vector<HashAnswer> answers;
    std::size_t parts_left = 0;
    bool trial = false;  // the half-open trial of an open circuit
    std::shared_ptr<bool> abandoned = std::make_shared<bool>(false);
  };

  struct Lookup {
    std::vector<std::string> hex;
    Clock::time_point deadline, started;
    std::function<void(BatchOutcome)> done;
    std::shared_ptr<net::steady_timer> timer;
    bool finished = false;
    std::size_t next = 0;          // the next endpoint to consider
    int last = -1;                 // the last endpoint tried
    unsigned rate_limits = 0;      // endpoints that answered 429 or were skipped for a Retry-After
    bool other_failure = false;    // anything else failed or was skipped
    std::vector<std::string> details;
    std::shared_ptr<Attempt> attempt;
  };

  struct Part {
    std::shared_ptr<Lookup> lookup;
    std::shared_ptr<Attempt> attempt;
    std::size_t first = 0, count = 0;
    unsigned sent = 0;
  };

  Impl(net::io_context& io_context, std::function<void(const EndpointEvent&)> event_fn)
      : io(io_context), on_event(std::move(event_fn)) {}

  net::io_context& io;
  std::function<void(const EndpointEvent&)> on_event;
  std::vector<std::unique_ptr<Endpoint>> endpoints;
  std::set<std::shared_ptr<Lookup>> active;
  DeferredCalls ready{io};  // completions and events, delivered from the loop (its owner: this Impl)
  bool stopped = false;

  // --- delivery ---------------------------------------------------------------------------------

  void emit(int endpoint, bool reachable, std::string detail) {
    if (stopped || !on_event) return;
    ready.push([this, ev = EndpointEvent{endpoint, reachable, std::move(detail)}] { on_event(ev); });
  }

  void finish(const std::shared_ptr<Lookup>& l, LookupError error, int endpoint, std::vector<HashAnswer> answers,
              std::string detail) {
    if (l->finished) return;
    l->finished = true;
    if (l->timer) l->timer->cancel();
    abandon(*l);
    active.erase(l);
    BatchOutcome o;
    o.error = error;
    o.endpoint = endpoint;
    o.answers = std::move(answers);
    o.detail = std::move(detail);
    ready.push([done = std::move(l->done), o = std::move(o)]() mutable { done(std::move(o)); });
  }

  void finish_budget(const std::shared_ptr<Lookup>& l) {
    std::string d = "look-up budget exhausted after " + std::to_string(ms_since(l->started)) + " ms";
    if (!l->details.empty()) d += " (" + join(l->details) + ")";
    finish(l, LookupError::budget_exhausted, l->last, {}, std::move(d));
  }

  void abandon(Lookup& l) {
    if (!l.attempt) return;
    *l.attempt->abandoned = true;
    Endpoint& ep = *endpoints[static_cast<std::size_t>(l.attempt->endpoint)];
    if (l.attempt->trial) ep.health->trial_abandoned();  // the next look-up may try again
    l.attempt.reset();
  }

  // --- look-ups ---------------------------------------------------------------------------------

  void lookup(std::vector<std::array<uint8_t, 32>> hashes, Clock::time_point deadline,
              std::function<void(BatchOutcome)> done) {
    auto l = std::make_shared<Lookup>();
    l->started = Clock::now();
    l->deadline = deadline;
    l->done = std::move(done);
    l->hex.reserve(hashes.size());
    for (const auto& h : hashes) l->hex.push_back(hex_string(h));
    if (stopped) return finish(l, LookupError::service_unavailable, -1, {}, "reputation client stopped");
    if (l->hex.empty()) return finish(l, LookupError::none, -1, {}, "");
    if (std::none_of(endpoints.begin(), endpoints.end(), [](const auto& e) { return !e->removed; }))
      return finish(l, LookupError::service_unavailable, -1, {}, "no reputation endpoint configured");
    if (deadline <= l->started) return finish(l, LookupError::budget_exhausted, -1, {}, "no time left for the look-up");
    l->timer = std::make_shared<net::steady_timer>(io, deadline);
    l->timer->async_wait([w = weak_from_this(), wl = std::weak_ptr<Lookup>(l)](boost::system::error_code ec) {
      auto self = w.lock();
      auto lk = wl.lock();
      if (ec || !self || !lk || self->stopped) return;
      self->finish_budget(lk);
    });
    active.insert(l);
    advance(l);
  }

  // Starts the look-up at the next endpoint that can take it, or ends it.
  void advance(const std::shared_ptr<Lookup>& l) {
    auto now = Clock::now();
    if (now >= l->deadline) return finish_budget(l);
    while (l->next < endpoints.size()) {
      Endpoint& ep = *endpoints[l->next++];
      if (ep.removed) continue;
      const std::string& name = ep.cfg.name;
      Admission admission = ep.health->admit(now);
      if (admission == Admission::rate_limited) {
        ++l->rate_limits;
        l->details.push_back(name + ": rate limited for " + std::to_string(ep.health->rate_limited_for(now).count()) +
                             " s more");
        continue;
      }
      if (admission == Admission::open) {
        l->other_failure = true;
        l->details.push_back(name + ": circuit open");
        continue;
      }
      bool trial = admission == Admission::trial;
      std::size_t per = ep.kind == reputation::Kind::sluice ? ep.cfg.max_batch : 1;
      std::size_t parts = (l->hex.size() + per - 1) / per;
      if (ep.pool->room() < parts) {
        l->other_failure = true;
        l->details.push_back(name + ": queue full (" + std::to_string(ep.cfg.max_queued) + " requests waiting)");
        continue;
      }
      if (trial) ep.health->begin_trial();
      auto a = std::make_shared<Attempt>();
      a->endpoint = ep.index;
      a->answers.resize(l->hex.size());
      a->parts_left = parts;
      a->trial = trial;
      l->attempt = a;
      l->last = ep.index;
      for (std::size_t first = 0; first < l->hex.size(); first += per) {
        auto p = std::make_shared<Part>();
        p->lookup = l;
        p->attempt = a;
        p->first = first;
        p->count = std::min(per, l->hex.size() - first);
        send(p);
      }
      return;
    }
    LookupError e = l->rate_limits > 0 && !l->other_failure ? LookupError::rate_limited : LookupError::service_unavailable;
    finish(l, e, l->last, {}, join(l->details));
  }

  void send(const std::shared_ptr<Part>& p) {
    Endpoint& ep = *endpoints[static_cast<std::size_t>(p->attempt->endpoint)];
    std::span<const std::string> hex(p->lookup->hex.data() + p->first, p->count);
    reputation::Call call =
        ep.kind == reputation::Kind::sluice ? reputation::sluice_lookup(hex) : reputation::vt_lookup(hex[0]);
    http::Request r = request(ep, std::move(call));
    r.deadline = p->lookup->deadline;
    r.abandoned = p->attempt->abandoned;
    ++p->sent;
    bool queued = ep.pool->send(std::move(r), [w = weak_from_this(), p](http::Response resp) {
      if (auto self = w.lock(); self && !self->stopped) self->answered(p, std::move(resp));
    });
    if (!queued) give_up(p, ep.cfg.name + ": queue full (" + std::to_string(ep.cfg.max_queued) + " requests waiting)");
  }

  http::Request request(const Endpoint& ep, reputation::Call call) const {
    http::Request r;
    r.method = call.method;
    r.target = std::move(call.target);
    r.body = std::move(call.body);
    if (!ep.cfg.api_key.empty()) r.headers.emplace_back("x-apikey", ep.cfg.api_key);
    r.timeout = std::chrono::milliseconds(ep.cfg.request_timeout_ms);
    return r;
  }

  // The attempt at this endpoint is over for good: on to the next one.
  void give_up(const std::shared_ptr<Part>& p, std::string detail) {
    auto& l = p->lookup;
    if (l->finished || *p->attempt->abandoned) return;
    l->other_failure = true;
    l->details.push_back(std::move(detail));
    abandon(*l);
    advance(l);
  }

  void answered(const std::shared_ptr<Part>& p, http::Response resp) {
    Endpoint& ep = *endpoints[static_cast<std::size_t>(p->attempt->endpoint)];
    Parsed parsed;
    bool timed_out = resp.failure == http::Failure::timeout;
    if (resp.failure != http::Failure::none) {
      parsed.kind = Parsed::Kind::failed;
      parsed.detail = std::move(resp.detail);
      parsed.retryable = true;
    } else if (ep.kind == reputation::Kind::sluice) {
      std::span<const std::string> hex(p->lookup->hex.data() + p->first, p->count);
      parsed = reputation::parse_sluice_lookup(resp.status, resp.body, resp.retry_after, hex);
    } else {
      parsed = reputation::parse_vt_lookup(resp.status, resp.body, resp.retry_after, p->lookup->hex[p->first],
                                           ep.cfg.vt_malicious_threshold);
    }
    const std::string& name = ep.cfg.name;
    switch (parsed.kind) {
      case Parsed::Kind::answered: ep.health->answered(resp.latency_ms); break;
      case Parsed::Kind::rate_limited: ep.health->throttled(parsed.retry_after, resp.latency_ms); break;
      case Parsed::Kind::failed:
        ep.health->failed(name + ": " + parsed.detail, timed_out, p->attempt->trial, resp.latency_ms);
        break;
    }
    auto& l = p->lookup;
    if (l->finished || *p->attempt->abandoned) return;  // a late answer of an abandoned attempt
    Attempt& a = *p->attempt;
    if (parsed.kind == Parsed::Kind::answered) {
      std::move(parsed.answers.begin(), parsed.answers.end(), a.answers.begin() + static_cast<std::ptrdiff_t>(p->first));
      if (--a.parts_left == 0) finish(l, LookupError::none, a.endpoint, std::move(a.answers), join(l->details));
      return;
    }
    if (parsed.kind == Parsed::Kind::rate_limited) {
      ++l->rate_limits;
      l->details.push_back(name + ": " + parsed.detail);
      abandon(*l);
      return advance(l);
    }
    auto now = Clock::now();
    if (now >= l->deadline) {
      l->details.push_back(name + ": " + parsed.detail);
      return finish_budget(l);
    }
    if (parsed.retryable && p->sent <= ep.cfg.retries && !ep.health->circuit_open()) {
      auto backoff = std::chrono::milliseconds(uint64_t{ep.cfg.retry_backoff_ms} << std::min(p->sent - 1, 20u));
      if (now + backoff < l->deadline) {
        auto t = std::make_shared<net::steady_timer>(io, backoff);
        t->async_wait([w = weak_from_this(), p, t](boost::system::error_code ec) {
          auto self = w.lock();
          if (ec || !self || self->stopped || p->lookup->finished || *p->attempt->abandoned) return;
          self->send(p);
        });
        return;
      }
    }
    give_up(p, name + ": " + parsed.detail);
  }

  // sluice-cloud's health check (GET /api/v1/health), sent while the circuit is open.
  EndpointHealth::Probe health_probe(const Endpoint& ep) {
    return [w = weak_from_this(), i = ep.index](EndpointHealth::ProbeDone done) {
      auto self = w.lock();
      if (!self || self->stopped) return false;
      Endpoint& e = *self->endpoints[static_cast<std::size_t>(i)];
      http::Request r = self->request(e, reputation::sluice_health());
      r.deadline = Clock::now() + std::chrono::milliseconds(e.cfg.connect_timeout_ms + e.cfg.request_timeout_ms);
      return e.pool->send(std::move(r), [done = std::move(done)](http::Response resp) {
        bool ok = resp.failure == http::Failure::none &&
                  reputation::parse_health(resp.status, resp.body).kind == Parsed::Kind::answered;
        done(ok, resp.failure == http::Failure::timeout, resp.latency_ms);
      });
    };
  }

  std::string add(EndpointConfig cfg);

  void stop() {
    if (!stopped) {
      for (auto& ep : endpoints) {
        ep->pool->close();
        ep->health->stop();
      }
      auto pending = active;
      for (const auto& l : pending)
        finish(l, LookupError::service_unavailable, l->last, {}, "reputation client stopped");
      stopped = true;
    }
    ready.run();
  }
};

http::PoolOptions endpoint_pool_options(const EndpointConfig& cfg) {
  http::PoolOptions o;
  o.name = cfg.name;
  http::parse_url(cfg.url, o.url);
  o.connect_timeout = std::chrono::milliseconds(cfg.connect_timeout_ms);
  o.max_connections = cfg.max_connections;
  o.max_queued = cfg.max_queued;
  o.max_body_bytes = std::size_t{cfg.max_response_kb} * 1024;
  o.ca_file = cfg.ca_file;
  o.client_cert = cfg.client_cert;
  o.client_key = cfg.client_key;
  if (!cfg.pin_sha256.empty()) o.pin = http::decode_pin(cfg.pin_sha256);
  return o;
}

// An endpoint at the end of the order; "" or why it cannot be added.
std::string ReputationClient::Impl::add(EndpointConfig cfg) {
  if (std::string p = validate_endpoint(cfg); !p.empty()) return "reputation endpoint '" + cfg.name + "': " + p;
  for (const auto& e : endpoints)
    if (!e->removed && e->cfg.name == cfg.name) return "reputation endpoint '" + cfg.name + "': name used twice";
  auto ep = std::make_unique<Endpoint>();
  ep->index = static_cast<int>(endpoints.size());
  ep->kind = cfg.kind == "sluice" ? reputation::Kind::sluice : reputation::Kind::virustotal;
  ep->pool = http::Pool::create(io, endpoint_pool_options(cfg));
  EndpointHealth::Probe probe;
  if (ep->kind == reputation::Kind::sluice) probe = health_probe(*ep);
  ep->health = EndpointHealth::create(
      io,
      {cfg.name, cfg.breaker_failures, std::chrono::milliseconds(cfg.breaker_open_ms),
       std::chrono::milliseconds(cfg.health_interval_ms)},
      std::move(probe),
      [this, i = ep->index](bool reachable, std::string detail) { emit(i, reachable, std::move(detail)); });
  ep->cfg = std::move(cfg);
  endpoints.push_back(std::move(ep));
  return "";
}

ReputationClient::ReputationClient(net::io_context& io, std::vector<EndpointConfig> endpoints,
                                   std::function<void(const EndpointEvent&)> on_event)
    : impl_(std::make_shared<Impl>(io, std::move(on_event))) {
  impl_->ready.set_owner(impl_);
  for (auto& cfg : endpoints)
    if (std::string e = impl_->add(std::move(cfg)); !e.empty()) throw std::invalid_argument(e);
}

int ReputationClient::add_endpoint(EndpointConfig cfg, std::string& error) {
  if (impl_->stopped) {
    error = "the reputation client is stopped";
    return -1;
  }
  error = impl_->add(std::move(cfg));
  return error.empty() ? static_cast<int>(impl_->endpoints.size()) - 1 : -1;
}

bool ReputationClient::remove_endpoint(const std::string& name) {
  for (auto& ep : impl_->endpoints) {
    if (ep->removed || ep->cfg.name != name) continue;
    ep->removed = true;
    ep->pool->close();  // its requests fail and their look-ups move on to the next endpoint
    ep->health->stop();
    return true;
  }
  return false;
}

bool ReputationClient::test_endpoint(const std::string& name, std::function<void(TestResult)> done) {
  Impl& m = *impl_;
  if (m.stopped) return false;
  for (auto& ep : m.endpoints) {
    if (ep->removed || ep->cfg.name != name) continue;
    // sluice: its health request; virustotal: a look-up of the empty file's SHA-256 (one request
    // of the quota; "unknown" is as good an answer as any).
    static const std::string kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const bool sluice = ep->kind == reputation::Kind::sluice;
    http::Request r = m.request(*ep, sluice ? reputation::sluice_health() : reputation::vt_lookup(kEmpty));
    r.deadline = Clock::now() + std::chrono::milliseconds(ep->cfg.connect_timeout_ms + ep->cfg.request_timeout_ms);
    const unsigned threshold = ep->cfg.vt_malicious_threshold;
    auto finish = std::make_shared<std::function<void(TestResult)>>(std::move(done));
    const bool sent = ep->pool->send(std::move(r), [finish, sluice, threshold](http::Response resp) {
      TestResult t;
      t.status = resp.status;
      t.latency_ms = resp.latency_ms;
      if (resp.failure != http::Failure::none) {
        t.detail = resp.detail.empty() ? "no answer" : resp.detail;
      } else {
        const auto parsed = sluice ? reputation::parse_health(resp.status, resp.body)
                                   : reputation::parse_vt_lookup(resp.status, resp.body, resp.retry_after, kEmpty, threshold);
        t.ok = parsed.kind == reputation::Parsed::Kind::answered;
        t.detail = t.ok ? "HTTP " + std::to_string(resp.status) : parsed.detail;
      }
      (*finish)(std::move(t));
    });
    if (!sent) (*finish)(TestResult{false, 0, 0, "the endpoint's request queue is full"});
    return true;
  }
  return false;
}

ReputationClient::~ReputationClient() {
  impl_->stop();
  impl_.reset();
}

void ReputationClient::lookup(std::vector<std::array<uint8_t, 32>> hashes, Clock::time_point deadline,
                              std::function<void(BatchOutcome)> done) {
  impl_->lookup(std::move(hashes), deadline, std::move(done));
}

std::vector<ReputationClient::EndpointStatus> ReputationClient::status() const {
  std::vector<EndpointStatus> out;
  for (const auto& ep : impl_->endpoints)
    if (!ep->removed)
      out.push_back(EndpointStatus{ep->cfg.name, ep->cfg.kind, !ep->health->circuit_open(), ep->health->circuit_open(),
                                 ep->health->requests(), ep->health->failures(), ep->health->timeouts(),
                                 ep->health->rate_limited(), ep->health->last_latency_ms(), ep->health->latency()});
  return out;
}

void ReputationClient::stop() { impl_->stop(); }

}  // namespace sluice::control
