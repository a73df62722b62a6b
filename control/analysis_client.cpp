// control/analysis_client: see analysis_client.h and control/NOTES.md ("Analysis endpoints").
//
// Every call is one *operation*: a request tried at one endpoint at a time. search, submit and
// limits walk the endpoints in order (fail-over); state and threat have one endpoint, the sample's.
// At each endpoint the operation is one *attempt*: the request with its retries. An attempt ends
// with an answer (the operation's outcome), or for good (failure after its retries, 429, the
// sample limit, too large): then the next endpoint is tried, and when none is left the operation
// ends with what they said together. Handlers hold the client's state weakly: after the
// destructor nothing of theirs runs.
#include "control/deferred_calls.h"
#include "control/hex.h"
#include "control/analysis_client.h"

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <deque>
#include <set>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <unordered_set>

#include "control/analysis_adapters.h"
#include "control/endpoint_health.h"
#include "control/http_pool.h"

namespace sluice::control {

namespace net = boost::asio;
using Clock = std::chrono::steady_clock;
using analysis::Parsed;
using PK = Parsed::Kind;

namespace {

static_assert(std::tuple_size_v<decltype(AnalysisClient::Stats::ended)> ==
              static_cast<std::size_t>(AnalysisError::not_ready) + 1);

// 4 GiB: far above what a sandbox takes (CAPE and Threat Grid document tens of MiB); still a bound.
constexpr unsigned kMaxSampleMb = 4096;

long long ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

}  // namespace

const char* to_string(AnalysisError e) noexcept {
  switch (e) {
    case AnalysisError::none: return "none";
    case AnalysisError::service_unavailable: return "service_unavailable";
    case AnalysisError::rate_limited: return "rate_limited";
    case AnalysisError::sample_limit: return "sample_limit";
    case AnalysisError::too_large: return "too_large";
    case AnalysisError::not_found: return "not_found";
    case AnalysisError::not_ready: return "not_ready";
  }
  return "?";
}

const char* to_string(Verdict v) noexcept {
  switch (v) {
    case Verdict::clean: return "clean";
    case Verdict::suspicious: return "suspicious";
    case Verdict::malicious: return "malicious";
    case Verdict::failed: return "failed";
  }
  return "?";
}

std::string validate_analysis_endpoint(const EndpointConfig& e) {
  if (e.kind != "sluice" && e.kind != "cape") return "kind '" + e.kind + "' is not one of sluice, cape";
  if (std::string p = validate_endpoint_settings(e); !p.empty()) return p;
  if (e.kind == "cape" && e.api_key.empty()) return "api_key is required for kind cape";
  if (e.max_sample_mb == 0 || e.max_sample_mb > kMaxSampleMb)
    return "max_sample_mb must be 1-" + std::to_string(kMaxSampleMb);
  if (e.upload_timeout_ms == 0) return "upload_timeout_ms must be at least 1";
  return "";
}

struct AnalysisClient::Impl : std::enable_shared_from_this<Impl> {
  using Admission = EndpointHealth::Admission;
  enum class Op { limits, search, submit, state, threat };

  struct Endpoint {
    int index = 0;
    EndpointConfig cfg;
    analysis::Kind kind = analysis::Kind::sluice;
    std::shared_ptr<http::Pool> pool;
    std::shared_ptr<EndpointHealth> health;
    bool removed = false;  // remove_endpoint(): skipped, unknown by name; its index stays taken
    uint64_t max_sample_bytes() const { return uint64_t{cfg.max_sample_mb} << 20; }
  };

  // What every operation ends with; the public calls turn it into their typed outcome.
  struct Result {
    AnalysisError error = AnalysisError::none;
    int endpoint = -1;
    std::string endpoint_name;  // of `endpoint`, "" when none
    std::string detail;
    std::chrono::seconds retry_after{0};
    Parsed parsed;
  };

  struct Attempt {
    int endpoint = -1;
    bool trial = false;
    unsigned sent = 0;
    std::shared_ptr<bool> abandoned = std::make_shared<bool>(false);
  };

  struct Operation {
    Op op = Op::limits;
    std::string hex;                            // search, submit
    std::shared_ptr<const std::string> bytes;   // submit
    std::string filename;                       // submit
    std::string id;                             // state, threat
    std::string endpoint_name;                  // state, threat: the SampleRef's
    std::vector<int> order;                     // the endpoints to try, in order
    std::size_t next = 0;
    int last = -1;
    Clock::time_point deadline, started;
    std::shared_ptr<net::steady_timer> timer;
    std::function<void(Result)> done;
    bool finished = false;
    // How the endpoints tried so far refused, for the outcome when none is left.
    unsigned rate_limits = 0, sample_limits = 0, too_large = 0;
    bool other_failure = false;
    std::chrono::seconds retry_after{0};
    std::vector<std::string> details;
    std::shared_ptr<Attempt> attempt;
  };

  Impl(net::io_context& io_context, std::function<void(const EndpointEvent&)> event_fn, Offload offload_fn)
      : io(io_context), on_event(std::move(event_fn)), offload(std::move(offload_fn)) {}

  net::io_context& io;
  std::function<void(const EndpointEvent&)> on_event;
  Offload offload;
  std::vector<std::unique_ptr<Endpoint>> endpoints;
  std::set<std::shared_ptr<Operation>> active;
  std::size_t max_pending = 0;
  Stats counters;  // all but pending and max_pending
  DeferredCalls ready{io};  // completions and events, delivered from the loop (its owner: this Impl)
  bool stopped = false;

  template <typename Outcome>
  static Outcome outcome_of(const Result& r) {
    Outcome o;
    o.error = r.error;
    o.endpoint = r.endpoint;
    o.detail = r.detail;
    o.retry_after = r.retry_after;
    return o;
  }

  // --- delivery ---------------------------------------------------------------------------------

  void emit(int endpoint, bool reachable, std::string detail) {
    if (stopped || !on_event) return;
    ready.push([this, ev = EndpointEvent{endpoint, reachable, std::move(detail)}] { on_event(ev); });
  }

  void finish(const std::shared_ptr<Operation>& o, AnalysisError error, int endpoint, std::string detail,
              Parsed parsed = {}) {
    if (o->finished) return;
    o->finished = true;
    ++counters.ended[static_cast<std::size_t>(error)];
    if (o->timer) o->timer->cancel();
    abandon(*o);
    active.erase(o);
    Result r;
    r.error = error;
    r.endpoint = endpoint;
    if (endpoint >= 0) r.endpoint_name = endpoints[static_cast<std::size_t>(endpoint)]->cfg.name;
    r.detail = std::move(detail);
    r.retry_after = error == AnalysisError::rate_limited || error == AnalysisError::sample_limit ? o->retry_after
                                                                                                  : std::chrono::seconds(0);
    r.parsed = std::move(parsed);
    o->bytes.reset();  // the sample's bytes are not kept past the operation
    ready.push([done = std::move(o->done), r = std::move(r)]() mutable { done(std::move(r)); });
  }

  void finish_deadline(const std::shared_ptr<Operation>& o) {
    std::string d = "deadline passed after " + std::to_string(ms_since(o->started)) + " ms";
    if (!o->details.empty()) d += " (" + join(o->details) + ")";
    finish(o, AnalysisError::service_unavailable, o->last, std::move(d));
  }

  void abandon(Operation& o) {
    if (!o.attempt) return;
    *o.attempt->abandoned = true;
    if (o.attempt->trial) endpoints[static_cast<std::size_t>(o.attempt->endpoint)]->health->trial_abandoned();
    o.attempt.reset();
  }

  // --- operations -------------------------------------------------------------------------------

  void start(std::shared_ptr<Operation> o) {
    o->started = Clock::now();
    ++counters.operations;
    if (stopped) return finish(o, AnalysisError::service_unavailable, -1, "analysis client stopped");
    if (endpoints.empty()) return finish(o, AnalysisError::service_unavailable, -1, "no analysis endpoint configured");
    if (active.size() >= max_pending)
      return finish(o, AnalysisError::service_unavailable, -1,
                    "too many analysis operations pending (" + std::to_string(max_pending) + ")");
    if (o->deadline <= o->started)
      return finish(o, AnalysisError::service_unavailable, -1, "no time left for the operation");
    if (o->op == Op::submit && o->bytes->empty())  // a service would refuse it, and count it against the endpoint
      return finish(o, AnalysisError::service_unavailable, -1, "empty sample: nothing to upload");
    if (o->op == Op::state || o->op == Op::threat) {
      auto it = std::find_if(endpoints.begin(), endpoints.end(),
                             [&](const auto& ep) { return !ep->removed && ep->cfg.name == o->endpoint_name; });
      if (it == endpoints.end())
        return finish(o, AnalysisError::not_found, -1,
                      "no analysis endpoint named '" + o->endpoint_name.substr(0, 64) + "'");
      const Endpoint& ep = **it;
      int i = ep.index;
      o->order = {i};
      if (!analysis::valid_sample_id(ep.kind, o->id))
        return finish(o, AnalysisError::not_found, i,
                      ep.cfg.name + ": '" + o->id.substr(0, 32) + "' is not a sample id of kind " + ep.cfg.kind);
    } else {
      for (const auto& ep : endpoints)
        if (!ep->removed) o->order.push_back(ep->index);
    }
    o->timer = std::make_shared<net::steady_timer>(io, o->deadline);
    o->timer->async_wait([w = weak_from_this(), wo = std::weak_ptr<Operation>(o)](boost::system::error_code ec) {
      auto self = w.lock();
      auto op = wo.lock();
      if (ec || !self || !op || self->stopped) return;
      self->finish_deadline(op);
    });
    active.insert(o);
    advance(o);
  }

  void refused(Operation& o, PK kind, std::string detail, std::chrono::seconds retry_after) {
    switch (kind) {
      case PK::rate_limited: ++o.rate_limits; break;
      case PK::sample_limit: ++o.sample_limits; break;
      case PK::too_large: ++o.too_large; break;
      default: o.other_failure = true; break;
    }
    if ((kind == PK::rate_limited || kind == PK::sample_limit) && retry_after.count() > 0 &&
        (o.retry_after.count() == 0 || retry_after < o.retry_after))
      o.retry_after = retry_after;
    o.details.push_back(std::move(detail));
  }

  // Starts the operation at the next endpoint that can take it, or ends it.
  void advance(const std::shared_ptr<Operation>& o) {
    auto now = Clock::now();
    if (now >= o->deadline) return finish_deadline(o);
    while (o->next < o->order.size()) {
      Endpoint& ep = *endpoints[static_cast<std::size_t>(o->order[o->next++])];
      const std::string& name = ep.cfg.name;
      if (o->op == Op::submit && o->bytes->size() > ep.max_sample_bytes()) {
        refused(*o, PK::too_large,
                name + ": sample of " + std::to_string(o->bytes->size()) + " bytes is above max_sample_mb (" +
                    std::to_string(ep.cfg.max_sample_mb) + " MiB)",
                {});
        o->last = ep.index;
        continue;
      }
      Admission admission = ep.health->admit(now);
      if (admission == Admission::rate_limited) {
        auto left = ep.health->rate_limited_for(now);
        refused(*o, PK::rate_limited, name + ": rate limited for " + std::to_string(left.count()) + " s more", left);
        continue;
      }
      if (admission == Admission::open) {
        refused(*o, PK::failed, name + ": circuit open", {});
        continue;
      }
      o->last = ep.index;
      if (o->op == Op::limits && ep.kind == analysis::Kind::cape) {  // no limits endpoint: the configured one
        Parsed p;
        p.kind = PK::answered;
        p.max_sample_bytes = ep.max_sample_bytes();
        return finish(o, AnalysisError::none, ep.index, join(o->details), std::move(p));
      }
      if (ep.pool->room() == 0) {
        refused(*o, PK::failed, name + ": queue full (" + std::to_string(ep.cfg.max_queued) + " requests waiting)", {});
        continue;
      }
      auto a = std::make_shared<Attempt>();
      a->endpoint = ep.index;
      a->trial = admission == Admission::trial;
      if (a->trial) ep.health->begin_trial();
      o->attempt = a;
      return send(o, a);
    }
    AnalysisError e = AnalysisError::service_unavailable;
    if (!o->other_failure && o->rate_limits > 0)
      e = AnalysisError::rate_limited;
    else if (!o->other_failure && o->sample_limits > 0)
      e = AnalysisError::sample_limit;
    else if (!o->other_failure && o->too_large > 0)
      e = AnalysisError::too_large;
    finish(o, e, o->last, join(o->details));
  }

  analysis::Call call(const Endpoint& ep, const Operation& o) const {
    bool cape = ep.kind == analysis::Kind::cape;
    switch (o.op) {
      case Op::limits: return analysis::sluice_limits();
      case Op::search: return cape ? analysis::cape_search(o.hex) : analysis::sluice_search(o.hex);
      case Op::submit:
        return cape ? analysis::cape_submit(o.bytes, o.filename) : analysis::sluice_submit(o.bytes, o.filename);
      case Op::state: return cape ? analysis::cape_status(o.id) : analysis::sluice_state(o.id);
      case Op::threat: return cape ? analysis::cape_report(o.id) : analysis::sluice_threat(o.id);
    }
    return {};
  }

  http::Request request(const Endpoint& ep, analysis::Call c) const {
    http::Request r;
    r.method = c.method;
    r.target = std::move(c.target);
    bool upload = c.upload.has_value();
    r.upload = std::move(c.upload);
    if (!ep.cfg.api_key.empty()) {
      if (ep.kind == analysis::Kind::cape)
        r.headers.emplace_back("Authorization", "Token " + ep.cfg.api_key);
      else
        r.headers.emplace_back("x-apikey", ep.cfg.api_key);
    }
    r.timeout = std::chrono::milliseconds(upload ? ep.cfg.upload_timeout_ms : ep.cfg.request_timeout_ms);
    return r;
  }

  void send(const std::shared_ptr<Operation>& o, const std::shared_ptr<Attempt>& a) {
    Endpoint& ep = *endpoints[static_cast<std::size_t>(a->endpoint)];
    http::Request r = request(ep, call(ep, *o));
    r.deadline = o->deadline;
    r.abandoned = a->abandoned;
    ++a->sent;
    if (r.upload) {
      ++counters.uploads;
      counters.upload_bytes += o->bytes->size();
    }
    bool queued = ep.pool->send(std::move(r), [w = weak_from_this(), o, a](http::Response resp) {
      if (auto self = w.lock(); self && !self->stopped) self->answered(o, a, std::move(resp));
    });
    if (!queued) give_up(o, a, PK::failed, ep.cfg.name + ": queue full (" + std::to_string(ep.cfg.max_queued) +
                                               " requests waiting)", {});
  }

  // What parsing an answer needs: copies, so that a parse on another thread shares nothing.
  struct ParseInput {
    analysis::Kind kind;
    Op op;
    std::string hex, id;
    unsigned status = 0;
    std::string retry_after;
  };

  static Parsed parse(const ParseInput& in, std::string_view body) {
    if (in.kind == analysis::Kind::cape) {
      switch (in.op) {
        case Op::search: return analysis::parse_cape_search(in.status, body, in.retry_after, in.hex);
        case Op::submit: return analysis::parse_cape_submit(in.status, body, in.retry_after);
        case Op::state: return analysis::parse_cape_status(in.status, body, in.retry_after);
        case Op::threat: return analysis::parse_cape_report(in.status, body, in.retry_after);
        case Op::limits: break;  // cape: never sent (see advance())
      }
      return {};
    }
    switch (in.op) {
      case Op::limits: return analysis::parse_sluice_limits(in.status, body, in.retry_after);
      case Op::search: return analysis::parse_sluice_search(in.status, body, in.retry_after, in.hex);
      case Op::submit: return analysis::parse_sluice_submit(in.status, body, in.retry_after, in.hex);
      case Op::state: return analysis::parse_sluice_state(in.status, body, in.retry_after, in.id);
      case Op::threat: return analysis::parse_sluice_threat(in.status, body, in.retry_after);
    }
    return {};
  }

  // The attempt at this endpoint is over: on to the next one (state and threat have none).
  void give_up(const std::shared_ptr<Operation>& o, const std::shared_ptr<Attempt>& a, PK kind, std::string detail,
               std::chrono::seconds retry_after) {
    if (o->finished || *a->abandoned) return;
    refused(*o, kind, std::move(detail), retry_after);
    abandon(*o);
    advance(o);
  }

  // How one request ended, apart from its body: what judge() needs for the endpoint's health.
  struct Reply {
    int endpoint = -1;
    bool trial = false, timed_out = false, request_sent = false;
    double latency_ms = 0;
  };

  // An answer arrived: parsed here, or, when large, by `offload` and back through the loop.
  void answered(const std::shared_ptr<Operation>& o, const std::shared_ptr<Attempt>& a, http::Response resp) {
    Endpoint& ep = *endpoints[static_cast<std::size_t>(a->endpoint)];
    Reply reply{a->endpoint, a->trial, resp.failure == http::Failure::timeout, resp.request_sent, resp.latency_ms};
    if (resp.failure != http::Failure::none) {
      Parsed parsed;
      parsed.kind = PK::failed;
      parsed.detail = std::move(resp.detail);
      parsed.retryable = true;
      return judge(o, a, reply, std::move(parsed));
    }
    ParseInput in{ep.kind, o->op, o->hex, o->id, resp.status, std::move(resp.retry_after)};
    if (!offload || resp.body.size() <= kParseOnLoopBytes || o->finished || *a->abandoned)
      return judge(o, a, reply, parse(in, resp.body));
    // The job holds copies and weak references only: nothing of the loop's is used or destroyed on
    // the other thread; its result is judged on the loop.
    std::size_t kib = resp.body.size() / 1024;
    auto job = [w = weak_from_this(), &io = io, wo = std::weak_ptr<Operation>(o), wa = std::weak_ptr<Attempt>(a),
                reply, in = std::move(in), body = std::move(resp.body)]() mutable {
      Parsed p = parse(in, body);
      std::string().swap(body);
      net::post(io, [w, wo, wa, reply, p = std::move(p)]() mutable {
        if (auto self = w.lock(); self && !self->stopped) self->judge(wo.lock(), wa.lock(), reply, std::move(p));
      });
    };
    if (offload(std::move(job))) {
      ++counters.offloaded;
      return;
    }
    Parsed parsed;
    parsed.kind = PK::failed;
    parsed.detail = "answer of " + std::to_string(kib) + " KiB not read: the control plane's pool is busy";
    parsed.retryable = true;
    judge(o, a, reply, std::move(parsed), /*ours=*/true);
  }

  // What the answer means for the endpoint's health and for the operation (`o`, `a`: null when
  // they ended while the answer was parsed elsewhere: then only the health). `ours`: the failure is
  // the appliance's (its pool was busy), the endpoint answered.
  void judge(const std::shared_ptr<Operation>& o, const std::shared_ptr<Attempt>& a, const Reply& reply,
             Parsed parsed, bool ours = false) {
    Endpoint& ep = *endpoints[static_cast<std::size_t>(reply.endpoint)];
    const std::string& name = ep.cfg.name;
    switch (ours ? PK::answered : parsed.kind) {
      case PK::rate_limited: ep.health->throttled(parsed.retry_after, reply.latency_ms); break;
      case PK::failed:
        ep.health->failed(name + ": " + parsed.detail, reply.timed_out, reply.trial, reply.latency_ms);
        break;
      default: ep.health->answered(reply.latency_ms); break;  // answers and refusals of this request alone
    }
    if (!o || !a || o->finished || *a->abandoned) return;  // a late answer of an abandoned attempt
    switch (parsed.kind) {
      case PK::answered:
        if (o->op == Op::limits) parsed.max_sample_bytes = std::min(parsed.max_sample_bytes, ep.max_sample_bytes());
        return finish(o, AnalysisError::none, ep.index, join(o->details), std::move(parsed));
      case PK::not_found: return finish(o, AnalysisError::not_found, ep.index, name + ": " + parsed.detail);
      case PK::not_ready: return finish(o, AnalysisError::not_ready, ep.index, name + ": " + parsed.detail);
      case PK::rate_limited:
      case PK::sample_limit:
      case PK::too_large: return give_up(o, a, parsed.kind, name + ": " + parsed.detail, parsed.retry_after);
      case PK::failed: break;
    }
    auto now = Clock::now();
    if (now >= o->deadline) {
      o->details.push_back(name + ": " + parsed.detail);
      return finish_deadline(o);
    }
    // CAPE creates a task per upload: an upload that may have arrived is not sent again.
    bool may_repeat = !(o->op == Op::submit && ep.kind == analysis::Kind::cape && reply.request_sent);
    if (parsed.retryable && may_repeat && a->sent <= ep.cfg.retries && !ep.health->circuit_open()) {
      auto backoff = std::chrono::milliseconds(uint64_t{ep.cfg.retry_backoff_ms} << std::min(a->sent - 1, 20u));
      if (now + backoff < o->deadline) {
        auto t = std::make_shared<net::steady_timer>(io, backoff);
        t->async_wait([w = weak_from_this(), o, a, t](boost::system::error_code ec) {
          auto self = w.lock();
          if (ec || !self || self->stopped || o->finished || *a->abandoned) return;
          self->send(o, a);
        });
        return;
      }
    }
    give_up(o, a, PK::failed, name + ": " + parsed.detail, {});
  }

  // sluice-cloud's health check (GET /api/v1/health), sent while the circuit is open.
  EndpointHealth::Probe health_probe(int index) {
    return [w = weak_from_this(), index](EndpointHealth::ProbeDone done) {
      auto self = w.lock();
      if (!self || self->stopped) return false;
      Endpoint& e = *self->endpoints[static_cast<std::size_t>(index)];
      http::Request r = self->request(e, analysis::sluice_health());
      r.deadline = Clock::now() + std::chrono::milliseconds(e.cfg.connect_timeout_ms + e.cfg.request_timeout_ms);
      return e.pool->send(std::move(r), [done = std::move(done)](http::Response resp) {
        bool ok = resp.failure == http::Failure::none &&
                  analysis::parse_sluice_health(resp.status, resp.body).kind == PK::answered;
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
      for (const auto& o : pending) finish(o, AnalysisError::service_unavailable, o->last, "analysis client stopped");
      stopped = true;
    }
    ready.run();
  }
};

// An endpoint at the end of the order; "" or why it cannot be added.
std::string AnalysisClient::Impl::add(EndpointConfig cfg) {
  if (std::string p = validate_analysis_endpoint(cfg); !p.empty()) return "analysis endpoint '" + cfg.name + "': " + p;
  for (const auto& e : endpoints)
    if (!e->removed && e->cfg.name == cfg.name) return "analysis endpoint '" + cfg.name + "': name used twice";
  auto ep = std::make_unique<Endpoint>();
  ep->index = static_cast<int>(endpoints.size());
  ep->kind = cfg.kind == "cape" ? analysis::Kind::cape : analysis::Kind::sluice;
  ep->pool = http::Pool::create(io, endpoint_pool_options(cfg));
  EndpointHealth::Probe probe;  // cape has no health endpoint: a trial after breaker_open_ms
  if (ep->kind == analysis::Kind::sluice) probe = health_probe(ep->index);
  ep->health = EndpointHealth::create(
      io,
      {cfg.name, cfg.breaker_failures, std::chrono::milliseconds(cfg.breaker_open_ms),
       std::chrono::milliseconds(cfg.health_interval_ms)},
      std::move(probe), [this, i = ep->index](bool reachable, std::string detail) { emit(i, reachable, std::move(detail)); });
  max_pending += cfg.max_queued + cfg.max_connections;
  ep->cfg = std::move(cfg);
  endpoints.push_back(std::move(ep));
  return "";
}

AnalysisClient::AnalysisClient(net::io_context& io, std::vector<EndpointConfig> endpoints,
                               std::function<void(const EndpointEvent&)> on_event, Offload offload)
    : impl_(std::make_shared<Impl>(io, std::move(on_event), std::move(offload))) {
  impl_->ready.set_owner(impl_);
  for (auto& cfg : endpoints)
    if (std::string e = impl_->add(std::move(cfg)); !e.empty()) throw std::invalid_argument(e);
}

int AnalysisClient::add_endpoint(EndpointConfig cfg, std::string& error) {
  if (impl_->stopped) {
    error = "the analysis client is stopped";
    return -1;
  }
  error = impl_->add(std::move(cfg));
  return error.empty() ? static_cast<int>(impl_->endpoints.size()) - 1 : -1;
}

bool AnalysisClient::remove_endpoint(const std::string& name) {
  for (auto& ep : impl_->endpoints) {
    if (ep->removed || ep->cfg.name != name) continue;
    ep->removed = true;
    ep->pool->close();  // its requests fail; operations move on to the next endpoint
    ep->health->stop();
    impl_->max_pending -= std::min<std::size_t>(impl_->max_pending, ep->cfg.max_queued + ep->cfg.max_connections);
    return true;
  }
  return false;
}

AnalysisClient::~AnalysisClient() {
  impl_->stop();
  impl_.reset();
}

void AnalysisClient::limits(Clock::time_point deadline, std::function<void(LimitsOutcome)> done) {
  auto o = std::make_shared<Impl::Operation>();
  o->op = Impl::Op::limits;
  o->deadline = deadline;
  o->done = [done = std::move(done)](Impl::Result r) {
    auto out = Impl::outcome_of<LimitsOutcome>(r);
    if (r.error == AnalysisError::none) {
      out.max_sample_bytes = r.parsed.max_sample_bytes;
      out.submissions_available = r.parsed.submissions_available;
    }
    done(std::move(out));
  };
  impl_->start(std::move(o));
}

void AnalysisClient::search(const Sha256& sha256, Clock::time_point deadline, std::function<void(SearchOutcome)> done) {
  auto o = std::make_shared<Impl::Operation>();
  o->op = Impl::Op::search;
  o->hex = hex_string(sha256);
  o->deadline = deadline;
  o->done = [done = std::move(done)](Impl::Result r) {
    auto out = Impl::outcome_of<SearchOutcome>(r);
    if (r.error == AnalysisError::none && r.parsed.found) {
      out.found = true;
      out.sample = SampleRef{r.endpoint_name, r.parsed.id};
      out.state = r.parsed.state;
    }
    done(std::move(out));
  };
  impl_->start(std::move(o));
}

void AnalysisClient::submit(const Sha256& sha256, std::shared_ptr<const std::string> bytes, std::string filename,
                            Clock::time_point deadline, std::function<void(SubmitOutcome)> done) {
  auto o = std::make_shared<Impl::Operation>();
  o->op = Impl::Op::submit;
  o->hex = hex_string(sha256);
  o->bytes = bytes ? std::move(bytes) : std::make_shared<const std::string>();
  o->filename = std::move(filename);
  o->deadline = deadline;
  o->done = [done = std::move(done)](Impl::Result r) {
    auto out = Impl::outcome_of<SubmitOutcome>(r);
    if (r.error == AnalysisError::none) {
      out.sample = SampleRef{r.endpoint_name, r.parsed.id};
      out.state = r.parsed.state;
      out.already_known = r.parsed.already_known;
    }
    done(std::move(out));
  };
  impl_->start(std::move(o));
}

void AnalysisClient::state(const SampleRef& sample, Clock::time_point deadline, std::function<void(StateOutcome)> done) {
  auto o = std::make_shared<Impl::Operation>();
  o->op = Impl::Op::state;
  o->id = sample.id;
  o->endpoint_name = sample.endpoint;
  o->deadline = deadline;
  o->done = [done = std::move(done)](Impl::Result r) {
    auto out = Impl::outcome_of<StateOutcome>(r);
    if (r.error == AnalysisError::none) out.state = r.parsed.state;
    done(std::move(out));
  };
  impl_->start(std::move(o));
}

void AnalysisClient::threat(const SampleRef& sample, Clock::time_point deadline, std::function<void(ThreatOutcome)> done) {
  auto o = std::make_shared<Impl::Operation>();
  o->op = Impl::Op::threat;
  o->id = sample.id;
  o->endpoint_name = sample.endpoint;
  o->deadline = deadline;
  o->done = [done = std::move(done)](Impl::Result r) {
    auto out = Impl::outcome_of<ThreatOutcome>(r);
    if (r.error == AnalysisError::none) {
      out.score = r.parsed.score;
      out.verdict = r.parsed.verdict;
      out.threat_name = std::move(r.parsed.threat_name);
      out.report = std::move(r.parsed.report);
      out.report_truncated = r.parsed.report_truncated;
    }
    done(std::move(out));
  };
  impl_->start(std::move(o));
}

bool AnalysisClient::test_endpoint(const std::string& name, std::function<void(TestResult)> done) {
  Impl& m = *impl_;
  if (m.stopped) return false;
  for (auto& ep : m.endpoints) {
    if (ep->removed || ep->cfg.name != name) continue;
    static const std::string kEmpty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const bool sluice = ep->kind == analysis::Kind::sluice;
    http::Request r = m.request(*ep, sluice ? analysis::sluice_health() : analysis::cape_search(kEmpty));
    r.deadline = Clock::now() + std::chrono::milliseconds(ep->cfg.connect_timeout_ms + ep->cfg.request_timeout_ms);
    auto finish = std::make_shared<std::function<void(TestResult)>>(std::move(done));
    const bool sent = ep->pool->send(std::move(r), [finish, sluice](http::Response resp) {
      TestResult t;
      t.status = resp.status;
      t.latency_ms = resp.latency_ms;
      if (resp.failure != http::Failure::none) {
        t.detail = resp.detail.empty() ? "no answer" : resp.detail;
      } else if (sluice) {
        const auto parsed = analysis::parse_sluice_health(resp.status, resp.body);
        t.ok = parsed.kind == PK::answered;
        t.detail = t.ok ? "HTTP " + std::to_string(resp.status) : parsed.detail;
      } else {
        t.ok = resp.status == 200;
        t.detail = "HTTP " + std::to_string(resp.status);
      }
      (*finish)(std::move(t));
    });
    if (!sent) (*finish)(TestResult{false, 0, 0, "the endpoint's request queue is full"});
    return true;
  }
  return false;
}

std::vector<AnalysisClient::EndpointStatus> AnalysisClient::status() const {
  std::vector<EndpointStatus> out;
  for (const auto& ep : impl_->endpoints)
    if (!ep->removed) out.push_back(EndpointStatus{ep->cfg.name, ep->cfg.kind, !ep->health->circuit_open(), ep->health->circuit_open(),
                                 ep->health->requests(), ep->health->failures(), ep->health->timeouts(),
                                 ep->health->rate_limited(), ep->health->last_latency_ms(),
                                 ep->pool->connections_made(), ep->health->latency()});
  return out;
}

AnalysisClient::Stats AnalysisClient::stats() const {
  Stats s = impl_->counters;
  s.pending = impl_->active.size();
  s.max_pending = impl_->max_pending;
  return s;
}

void AnalysisClient::stop() { impl_->stop(); }

}  // namespace sluice::control
