// control/endpoint_health: see endpoint_health.h.
#include "control/endpoint_health.h"

#include <algorithm>

namespace sluice::control {

void LatencyHistogram::observe(double ms) noexcept {
  if (!(ms >= 0)) ms = 0;  // a clock step back (or NaN) counts in the first bucket
  const auto it = std::lower_bound(kBoundsMs.begin(), kBoundsMs.end(), ms);  // the first bound >= ms
  ++counts[static_cast<std::size_t>(it - kBoundsMs.begin())];
  ++count;
  sum_ms += ms;
}

std::shared_ptr<EndpointHealth> EndpointHealth::create(boost::asio::io_context& io, Options options, Probe probe,
                                                       Transition transition) {
  return std::shared_ptr<EndpointHealth>(
      new EndpointHealth(io, std::move(options), std::move(probe), std::move(transition)));
}

EndpointHealth::EndpointHealth(boost::asio::io_context& io, Options options, Probe probe, Transition transition)
    : io_(io), opt_(std::move(options)), probe_(std::move(probe)), transition_(std::move(transition)) {}

EndpointHealth::Admission EndpointHealth::admit(Clock::time_point now) const {
  if (rate_limited_until_ > now) return Admission::rate_limited;
  if (breaker_ == Breaker::closed) return Admission::go;
  if (breaker_ == Breaker::open && now >= opened_at_ + opt_.open_for) return Admission::trial;
  return Admission::open;
}

void EndpointHealth::begin_trial() {
  if (breaker_ == Breaker::open) breaker_ = Breaker::half_open;
}

void EndpointHealth::trial_abandoned() {
  if (breaker_ == Breaker::half_open) breaker_ = Breaker::open;  // the next request may try again
}

std::chrono::seconds EndpointHealth::rate_limited_for(Clock::time_point now) const {
  if (rate_limited_until_ <= now) return std::chrono::seconds(0);
  return std::chrono::duration_cast<std::chrono::seconds>(rate_limited_until_ - now + std::chrono::milliseconds(999));
}

void EndpointHealth::answered(double latency_ms) {
  ++requests_;
  last_latency_ms_ = latency_ms;
  latency_.observe(latency_ms);
  close("answered");
}

void EndpointHealth::throttled(std::chrono::seconds retry_after, double latency_ms) {
  ++requests_;
  ++rate_limited_;
  last_latency_ms_ = latency_ms;
  latency_.observe(latency_ms);
  rate_limited_until_ = std::max(rate_limited_until_, Clock::now() + retry_after);
  close("answered");  // throttled, but alive
}

void EndpointHealth::failed(const std::string& detail, bool timed_out, bool trial, double latency_ms) {
  ++requests_;
  ++failures_;
  if (timed_out) ++timeouts_;
  last_latency_ms_ = latency_ms;
  latency_.observe(latency_ms);
  ++consecutive_failures_;
  if (breaker_ == Breaker::closed && consecutive_failures_ >= opt_.breaker_failures) {
    breaker_ = Breaker::open;
    opened_at_ = Clock::now();
    if (!stopped_ && transition_)
      transition_(false, opt_.name + ": circuit opened after " + std::to_string(consecutive_failures_) +
                             " consecutive failures (last: " + detail + ")");
    arm_probe();
  } else if (breaker_ == Breaker::half_open && trial) {
    breaker_ = Breaker::open;  // the trial failed: another open_for
    opened_at_ = Clock::now();
  }
}

void EndpointHealth::close(const char* how) {
  consecutive_failures_ = 0;
  if (breaker_ == Breaker::closed) return;
  breaker_ = Breaker::closed;
  if (probe_timer_) probe_timer_->cancel();
  if (!stopped_ && transition_) transition_(true, opt_.name + ": reachable again (" + how + ")");
}

void EndpointHealth::arm_probe() {
  if (!probe_ || opt_.probe_every.count() == 0 || stopped_) return;
  if (!probe_timer_) probe_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
  probe_timer_->expires_after(opt_.probe_every);
  probe_timer_->async_wait([w = weak_from_this()](boost::system::error_code ec) {
    auto self = w.lock();
    if (ec || !self || self->stopped_) return;
    self->probe_tick();
  });
}

void EndpointHealth::probe_tick() {
  if (breaker_ == Breaker::closed) return;
  if (!probe_in_flight_) {
    probe_in_flight_ = probe_([w = weak_from_this()](bool ok, bool timed_out, double latency_ms) {
      auto self = w.lock();
      if (!self || self->stopped_) return;
      self->probe_in_flight_ = false;
      ++self->requests_;
      self->last_latency_ms_ = latency_ms;
      self->latency_.observe(latency_ms);
      if (ok) return self->close("health check passed");
      ++self->failures_;
      if (timed_out) ++self->timeouts_;
    });
  }
  arm_probe();
}

void EndpointHealth::stop() {
  stopped_ = true;
  if (probe_timer_) probe_timer_->cancel();
}

}  // namespace sluice::control
