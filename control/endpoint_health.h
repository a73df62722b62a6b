// The health of one endpoint as its clients see it (internal to control/): the circuit breaker, the
// Retry-After window of a 429, the health probe while the circuit is open, and the counters that
// status() reports. Shared by the reputation client (reputation_client.h) and the analysis client
// (analysis_client.h), so that both follow the same rules (control/NOTES.md, "Reputation endpoints",
// circuit breaker): `breaker_failures` consecutive failed requests open the circuit; while open the
// endpoint is skipped, a probe runs every `probe_every` (when the kind has one), and once `open_for`
// has passed the next request may be one trial (half-open); any success closes it; a failed trial
// opens it for another `open_for`. A 429 proves the endpoint alive: it counts no failure, closes an
// open circuit like any answer, and sets the endpoint aside until Retry-After.
//
// It sends nothing itself: requests are the client's; the client reports each one's end here, and
// gives a `Probe` function that sends the kind's health request. Transitions (unreachable, reachable
// again) go to the `Transition` callback, called synchronously: the client queues them as events.
// Threads: the io_context's one thread. The probe timer holds the object weakly.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace sluice::control {

// The latency of an endpoint's requests (answers, failures, throttled answers and health probes
// alike: `count` equals EndpointHealth::requests()), in fixed buckets so that the management API's
// /metrics can render it as a Prometheus histogram. counts[i]: requests that took at most
// kBoundsMs[i] and more than the bound before it; counts.back(): longer than the last bound.
struct LatencyHistogram {
  static constexpr std::array<double, 13> kBoundsMs = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
  std::array<uint64_t, kBoundsMs.size() + 1> counts{};
  uint64_t count = 0;
  double sum_ms = 0;
  void observe(double ms) noexcept;
};

class EndpointHealth : public std::enable_shared_from_this<EndpointHealth> {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::string name;  // prefixes the details of transitions: "lab: circuit opened after ..."
    unsigned breaker_failures = 5;
    std::chrono::milliseconds open_for{30000};
    std::chrono::milliseconds probe_every{0};  // 0: no probes (a trial after open_for only)
  };
  // A probe's end: healthy or not, whether it timed out, its latency.
  using ProbeDone = std::function<void(bool ok, bool timed_out, double latency_ms)>;
  // Sends one probe; calls `done` once, or never when the client closed meanwhile. false: not sent.
  using Probe = std::function<bool(ProbeDone done)>;
  // reachable=false: the circuit opened; true: it closed again. `detail` names the endpoint.
  using Transition = std::function<void(bool reachable, std::string detail)>;

  static std::shared_ptr<EndpointHealth> create(boost::asio::io_context& io, Options options, Probe probe,
                                                Transition transition);

  enum class Admission {
    go,            // closed: send
    trial,         // open for open_for already: this request may be the trial (begin_trial() when sent)
    rate_limited,  // inside a Retry-After window (rate_limited_for() says how long)
    open,          // open, or half-open with its trial in flight: skip
  };
  Admission admit(Clock::time_point now) const;
  void begin_trial();                 // the trial is sent: half-open until it ends
  void trial_abandoned();             // the trial ended without an answer (its caller gave up): open again
  std::chrono::seconds rate_limited_for(Clock::time_point now) const;  // rounded up

  // The end of each request sent to the endpoint (trial: it was the half-open trial).
  void answered(double latency_ms);
  void failed(const std::string& detail, bool timed_out, bool trial, double latency_ms);
  void throttled(std::chrono::seconds retry_after, double latency_ms);

  void stop();  // no probe after this

  bool circuit_open() const noexcept { return breaker_ != Breaker::closed; }
  bool half_open() const noexcept { return breaker_ == Breaker::half_open; }
  uint64_t requests() const noexcept { return requests_; }
  uint64_t failures() const noexcept { return failures_; }
  uint64_t timeouts() const noexcept { return timeouts_; }
  uint64_t rate_limited() const noexcept { return rate_limited_; }
  double last_latency_ms() const noexcept { return last_latency_ms_; }
  const LatencyHistogram& latency() const noexcept { return latency_; }

 private:
  enum class Breaker { closed, open, half_open };
  EndpointHealth(boost::asio::io_context& io, Options options, Probe probe, Transition transition);
  void close(const char* how);
  void arm_probe();
  void probe_tick();

  boost::asio::io_context& io_;
  Options opt_;
  Probe probe_;
  Transition transition_;
  Breaker breaker_ = Breaker::closed;
  unsigned consecutive_failures_ = 0;
  Clock::time_point opened_at_, rate_limited_until_;
  std::unique_ptr<boost::asio::steady_timer> probe_timer_;
  bool probe_in_flight_ = false, stopped_ = false;
  uint64_t requests_ = 0, failures_ = 0, timeouts_ = 0, rate_limited_ = 0;
  double last_latency_ms_ = 0;
  LatencyHistogram latency_;
};

}  // namespace sluice::control
