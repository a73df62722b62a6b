// control/reputation_client: look-ups against real processes on loopback — sluice-cloud (its lab
// fault API makes it slow, fail, close connections, answer garbage) and the VirusTotal test double
// (tests/lib/vt_double.py) — over plain HTTP and TLS (test PKI made with the openssl CLI). Every
// test asserts the exact outcome: error kind, endpoint index, answers, events.
#include "control/reputation_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>

#include "tests/unit/control/endpoint_lab.h"

namespace sluice::control {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Hash = std::array<uint8_t, 32>;
using records::LookupError;
using records::Reputation;
using test::Cloud;
using test::VtDouble;
using testing::HasSubstr;

Hash hash_of(unsigned i) {
  Hash h{};
  for (unsigned k = 0; k < 32; ++k) h[k] = static_cast<uint8_t>(i * 37 + k * 11 + 1);
  h[0] = static_cast<uint8_t>(i);
  return h;
}

std::string hex(const Hash& h) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t b : h) s += {d[b >> 4], d[b & 15]};
  return s;
}

long long ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// Small timeouts, no retries, no breaker unless a test asks: each test sets what it exercises.
EndpointConfig sluice_endpoint(const std::string& name, const std::string& url) {
  EndpointConfig e;
  e.name = name;
  e.kind = "sluice";
  e.url = url;
  e.api_key = Cloud::kKey;
  e.connect_timeout_ms = 500;
  e.request_timeout_ms = 1000;
  e.retries = 0;
  e.retry_backoff_ms = 20;
  e.breaker_failures = 100;
  e.health_interval_ms = 0;
  return e;
}

EndpointConfig vt_endpoint(const std::string& name, const std::string& url) {
  EndpointConfig e = sluice_endpoint(name, url);
  e.kind = "virustotal";
  e.api_key = VtDouble::kKey;
  return e;
}

// One io_context run by the test thread, as sluiced's service loop runs it.
struct Harness {
  boost::asio::io_context io;
  std::vector<EndpointEvent> events;
  std::unique_ptr<ReputationClient> client;

  explicit Harness(std::vector<EndpointConfig> endpoints) {
    client = std::make_unique<ReputationClient>(io, std::move(endpoints),
                                                [this](const EndpointEvent& e) { events.push_back(e); });
  }

  bool run_until(const std::function<bool()>& done, Clock::duration limit) {
    auto end = Clock::now() + limit;
    while (!done() && Clock::now() < end) {
      if (io.stopped()) io.restart();
      io.run_one_for(10ms);
    }
    return done();
  }
  void run_for(Clock::duration d) {
    run_until([] { return false; }, d);
  }

  BatchOutcome lookup(std::vector<Hash> hashes, Clock::duration budget = 3s) {
    std::optional<BatchOutcome> out;
    int calls = 0;
    client->lookup(std::move(hashes), Clock::now() + budget, [&](BatchOutcome o) {
      ++calls;
      out = std::move(o);
    });
    EXPECT_EQ(calls, 0) << "done ran inside lookup()";
    EXPECT_TRUE(run_until([&] { return out.has_value(); }, budget + 5s)) << "done never called";
    run_for(5ms);  // a second call would show here
    EXPECT_EQ(calls, 1);
    return out.value_or(BatchOutcome{});
  }

  const ReputationClient::EndpointStatus status(int i) const { return client->status()[static_cast<std::size_t>(i)]; }
};

// --- sluice-cloud ---------------------------------------------------------------------------------

TEST(ReputationClientCloud, AnswersOnePerHashInTheOrderAsked) {
  Cloud cloud({"--ttl-clean", "14400", "--ttl-malicious", "3600", "--ttl-unknown", "600"});
  Hash bad = hash_of(1), good = hash_of(2), never_seen = hash_of(3);
  cloud.set(hex(bad), "malicious", "Eicar-Test-Signature");
  cloud.set(hex(good), "clean");
  Harness t({sluice_endpoint("lab", cloud.url())});
  BatchOutcome o = t.lookup({bad, good, never_seen, bad});
  ASSERT_EQ(o.error, LookupError::none) << o.detail;
  EXPECT_EQ(o.endpoint, 0);
  EXPECT_EQ(o.detail, "");
  ASSERT_EQ(o.answers.size(), 4u);
  EXPECT_EQ(o.answers[0].reputation, Reputation::malicious);
  EXPECT_EQ(o.answers[0].threat_name, "Eicar-Test-Signature");
  EXPECT_FALSE(o.answers[0].upload_wanted);
  EXPECT_EQ(o.answers[1].reputation, Reputation::clean);
  EXPECT_EQ(o.answers[1].threat_name, "");
  EXPECT_EQ(o.answers[2].reputation, Reputation::unknown);
  EXPECT_TRUE(o.answers[2].upload_wanted);  // unknown and never analysed
  EXPECT_EQ(o.answers[2].threat_score, -1);
  EXPECT_EQ(o.answers[3].reputation, Reputation::malicious);
  EXPECT_EQ(o.answers[0].ttl_seconds, 3600u);
  EXPECT_EQ(o.answers[1].ttl_seconds, 14400u);
  EXPECT_EQ(o.answers[2].ttl_seconds, 600u);
  EXPECT_EQ(t.status(0).requests, 1u);
  EXPECT_EQ(t.status(0).failures, 0u);
  EXPECT_TRUE(t.status(0).reachable);
  EXPECT_GT(t.status(0).last_latency_ms, 0.0);
}

TEST(ReputationClientCloud, SplitsIntoRequestsOfMaxBatch) {
  Cloud cloud;
  std::vector<Hash> hashes;
  for (unsigned i = 0; i < 5; ++i) hashes.push_back(hash_of(10 + i));
  cloud.set(hex(hashes[1]), "malicious", "one");
  cloud.set(hex(hashes[4]), "malicious", "four");
  auto e = sluice_endpoint("lab", cloud.url());
  e.max_batch = 2;
  Harness t({e});
  BatchOutcome o = t.lookup(hashes);
  ASSERT_EQ(o.error, LookupError::none) << o.detail;
  ASSERT_EQ(o.answers.size(), 5u);
  std::vector<std::string> names;
  for (const auto& a : o.answers) names.push_back(a.reputation == Reputation::malicious ? a.threat_name : "-");
  EXPECT_EQ(names, (std::vector<std::string>{"-", "one", "-", "-", "four"}));
  EXPECT_EQ(t.status(0).requests, 3u);  // 2 + 2 + 1
}

TEST(ReputationClientCloud, FailsOverToTheNextEndpoint) {
  Cloud cloud;
  cloud.set(hex(hash_of(1)), "malicious", "x");
  Harness t({sluice_endpoint("down", "http://127.0.0.1:" + std::to_string(test::closed_port())),
             sluice_endpoint("lab", cloud.url())});
  BatchOutcome o = t.lookup({hash_of(1)});
  ASSERT_EQ(o.error, LookupError::none) << o.detail;
  EXPECT_EQ(o.endpoint, 1);
  EXPECT_EQ(o.answers.at(0).reputation, Reputation::malicious);
  EXPECT_EQ(o.detail, "down: connect: Connection refused");
  EXPECT_EQ(t.status(0).failures, 1u);
  EXPECT_EQ(t.status(1).requests, 1u);
}

TEST(ReputationClientCloud, RetriesAFailedRequestAtTheSameEndpoint) {
  Cloud cloud;
  cloud.faults({{"status", 503}, {"count", 1}});
  auto e = sluice_endpoint("lab", cloud.url());
  e.retries = 1;
  Harness t({e});
  BatchOutcome o = t.lookup({hash_of(1)});
  ASSERT_EQ(o.error, LookupError::none) << o.detail;
  EXPECT_EQ(o.endpoint, 0);
  EXPECT_EQ(t.status(0).requests, 2u);
  EXPECT_EQ(t.status(0).failures, 1u);
}

TEST(ReputationClientCloud, ServerErrorsEndServiceUnavailableAfterTheRetriesWithBackOff) {
  Cloud cloud;
  cloud.faults({{"status", 502}});
  auto e = sluice_endpoint("lab", cloud.url());
  e.retries = 2;
  e.retry_backoff_ms = 40;
  Harness t({e});
  auto start = Clock::now();
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.endpoint, 0);
  EXPECT_EQ(o.detail, "lab: HTTP 502 BadGatewayError");
  EXPECT_TRUE(o.answers.empty());
  EXPECT_EQ(t.status(0).requests, 3u);
  EXPECT_EQ(t.status(0).failures, 3u);
  EXPECT_GE(ms_since(start), 40 + 80);  // back-off doubled
}

TEST(ReputationClientCloud, ASlowAnswerIsATimeout) {
  Cloud cloud;
  cloud.faults({{"delay_ms", 1500}, {"count", 1}});
  auto e = sluice_endpoint("lab", cloud.url());
  e.request_timeout_ms = 200;
  Harness t({e});
  auto start = Clock::now();
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "lab: timeout after 200 ms");
  EXPECT_LT(ms_since(start), 1000);
  EXPECT_EQ(t.status(0).timeouts, 1u);
  // The connection was dropped; the next look-up gets a fresh one and its answer.
  EXPECT_EQ(t.lookup({hash_of(1)}).error, LookupError::none);
}

TEST(ReputationClientCloud, TheDeadlinePassingIsBudgetExhausted) {
  Cloud cloud;
  cloud.faults({{"delay_ms", 1500}, {"count", 1}});
  Harness t({sluice_endpoint("lab", cloud.url())});
  auto start = Clock::now();
  BatchOutcome o = t.lookup({hash_of(1)}, 300ms);
  EXPECT_EQ(o.error, LookupError::budget_exhausted);
  EXPECT_EQ(o.endpoint, 0);
  EXPECT_THAT(o.detail, HasSubstr("look-up budget exhausted after"));
  EXPECT_GE(ms_since(start), 300);
  EXPECT_LT(ms_since(start), 1000);
  // A deadline already past: no request at all.
  uint64_t before = t.status(0).requests;
  EXPECT_EQ(t.lookup({hash_of(1)}, 0ms).error, LookupError::budget_exhausted);
  EXPECT_EQ(t.status(0).requests, before);
}

TEST(ReputationClientCloud, AConnectionClosedMidAnswerFails) {
  Cloud cloud;
  cloud.faults({{"close", "mid_answer"}, {"count", 1}});
  Harness t({sluice_endpoint("lab", cloud.url())});
  BatchOutcome o = t.lookup({hash_of(1), hash_of(2)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "lab: connection closed mid-answer");
  EXPECT_EQ(t.lookup({hash_of(1)}).error, LookupError::none);  // reconnects
}

TEST(ReputationClientCloud, AConnectionClosedBeforeTheAnswerFails) {
  Cloud cloud;
  cloud.faults({{"close", "before_answer"}, {"count", 1}});
  Harness t({sluice_endpoint("lab", cloud.url())});
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "lab: connection closed before the answer");
}

TEST(ReputationClientCloud, MalformedJsonIsAnErrorNeverAGuess) {
  Cloud cloud;
  cloud.faults({{"malformed", true}, {"count", 1}});
  Harness t({sluice_endpoint("lab", cloud.url())});
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "lab: bad answer: not JSON");
  EXPECT_TRUE(o.answers.empty());
}

TEST(ReputationClientCloud, AnOversizedBodyIsRefusedAtTheLimit) {
  Cloud cloud;
  cloud.faults({{"oversized_mb", 2}, {"count", 1}});
  auto e = sluice_endpoint("lab", cloud.url());
  e.max_response_kb = 1024;
  Harness t({e});
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "lab: answer larger than 1024 KiB");
}

TEST(ReputationClientCloud, QuotaIsRateLimitedAndRetryAfterSkipsTheEndpoint) {
  Cloud cloud({"--quota-per-minute", "1"});
  Harness t({sluice_endpoint("lab", cloud.url())});
  EXPECT_EQ(t.lookup({hash_of(1)}).error, LookupError::none);
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::rate_limited);
  EXPECT_EQ(o.endpoint, 0);
  EXPECT_THAT(o.detail, HasSubstr("lab: HTTP 429 QuotaExceededError (retry after "));
  EXPECT_EQ(t.status(0).rate_limited, 1u);
  EXPECT_EQ(t.status(0).failures, 0u);
  EXPECT_TRUE(t.status(0).reachable);  // throttled is not down
  // Until Retry-After has passed the endpoint is not asked at all.
  o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::rate_limited);
  EXPECT_THAT(o.detail, HasSubstr("lab: rate limited for "));
  EXPECT_EQ(t.status(0).requests, 2u);
}

TEST(ReputationClientCloud, RateLimitedOnlyWhenEveryEndpointTriedSaid429) {
  Cloud limited({"--quota-per-minute", "1"}), failing;
  failing.faults({{"status", 503}});
  Harness t({sluice_endpoint("limited", limited.url()), sluice_endpoint("failing", failing.url())});
  EXPECT_EQ(t.lookup({hash_of(1)}).endpoint, 0);
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.endpoint, 1);
  EXPECT_THAT(o.detail, HasSubstr("limited: HTTP 429 QuotaExceededError"));
  EXPECT_THAT(o.detail, HasSubstr("; failing: HTTP 503 TransientError"));
  // The 429 endpoint is skipped, the other answers again.
  failing.clear_faults();
  o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::none);
  EXPECT_EQ(o.endpoint, 1);
}

TEST(ReputationClientCloud, AStoppedServiceOpensTheCircuitAndItClosesWhenTheServiceIsBack) {
  Cloud cloud;
  auto e = sluice_endpoint("lab", cloud.url());
  e.breaker_failures = 2;
  e.breaker_open_ms = 60000;  // only the health probe can close it here
  e.health_interval_ms = 100;
  Harness t({e});
  EXPECT_EQ(t.lookup({hash_of(1)}).error, LookupError::none);
  cloud.stop();
  for (int i = 0; i < 2; ++i) {
    BatchOutcome o = t.lookup({hash_of(1)});
    EXPECT_EQ(o.error, LookupError::service_unavailable);
    EXPECT_THAT(o.detail, HasSubstr("lab: "));  // refused, or the kept connection found closed
  }
  ASSERT_EQ(t.events.size(), 1u);
  EXPECT_EQ(t.events[0].endpoint, 0);
  EXPECT_FALSE(t.events[0].reachable);
  EXPECT_THAT(t.events[0].detail, HasSubstr("lab: circuit opened after 2 consecutive failures (last: lab: "));
  EXPECT_FALSE(t.status(0).reachable);
  EXPECT_TRUE(t.status(0).circuit_open);
  auto start = Clock::now();
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "lab: circuit open");
  EXPECT_LT(ms_since(start), 50);  // skipped, not tried
  t.run_for(250ms);                // failing health probes change nothing
  EXPECT_EQ(t.events.size(), 1u);
  cloud.restart();
  ASSERT_TRUE(t.run_until([&] { return t.events.size() == 2; }, 3s));
  EXPECT_TRUE(t.events[1].reachable);
  EXPECT_EQ(t.events[1].detail, "lab: reachable again (health check passed)");
  EXPECT_TRUE(t.status(0).reachable);
  o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::none);
  EXPECT_EQ(o.endpoint, 0);
}

TEST(ReputationClientCloud, AnOpenCircuitIsSkippedForTheNextEndpoint) {
  Cloud backup;
  auto down = sluice_endpoint("down", "http://127.0.0.1:" + std::to_string(test::closed_port()));
  down.breaker_failures = 1;
  down.breaker_open_ms = 60000;
  Harness t({down, sluice_endpoint("backup", backup.url())});
  EXPECT_EQ(t.lookup({hash_of(1)}).endpoint, 1);
  ASSERT_EQ(t.events.size(), 1u);
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::none);
  EXPECT_EQ(o.endpoint, 1);
  EXPECT_EQ(o.detail, "down: circuit open");
  EXPECT_EQ(t.status(0).requests, 1u);
}

// --- TLS ------------------------------------------------------------------------------------------

EndpointConfig tls_endpoint(const Cloud& cloud) {
  auto e = sluice_endpoint("lab", "https://127.0.0.1:" + std::to_string(cloud.port()));
  e.ca_file = test::tls_files().ca;
  return e;
}

TEST(ReputationClientTls, AnUntrustedSelfSignedCertificateFails) {
  const auto& f = test::tls_files();
  Cloud cloud({"--tls-cert", f.self_cert, "--tls-key", f.self_key});
  Harness t({tls_endpoint(cloud)});
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "lab: TLS: certificate verify failed (self-signed certificate)");
}

TEST(ReputationClientTls, TheRightCaFilePasses) {
  const auto& f = test::tls_files();
  Cloud cloud({"--tls-cert", f.server_cert, "--tls-key", f.server_key});
  Harness t({tls_endpoint(cloud)});
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::none) << o.detail;
  EXPECT_EQ(o.answers.size(), 1u);
}

TEST(ReputationClientTls, ACertificateForAnotherHostFails) {
  const auto& f = test::tls_files();
  Cloud cloud({"--tls-cert", f.other_cert, "--tls-key", f.other_key});
  Harness t({tls_endpoint(cloud)});
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "lab: TLS: certificate verify failed (hostname mismatch)");
}

TEST(ReputationClientTls, AWrongPinFailsAndTheRightPinPasses) {
  const auto& f = test::tls_files();
  Cloud cloud({"--tls-cert", f.server_cert, "--tls-key", f.server_key});
  auto wrong = tls_endpoint(cloud);
  wrong.pin_sha256 = "sha256//" + std::string(43, 'A') + "=";
  Harness t({wrong});
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "lab: TLS: public key does not match pin_sha256 sha256//" + std::string(43, 'A') +
                          "= (server's: " + f.server_pin + ")");
  auto right = tls_endpoint(cloud);
  right.pin_sha256 = f.server_pin;
  Harness t2({right});
  EXPECT_EQ(t2.lookup({hash_of(1)}).error, LookupError::none);
}

TEST(ReputationClientTls, TheClientCertificateIsPresented) {
  const auto& f = test::tls_files();
  VtDouble vt({"--tls-cert", f.server_cert, "--tls-key", f.server_key, "--client-ca", f.ca});
  auto e = vt_endpoint("vt", vt.url());
  e.ca_file = f.ca;
  Harness without({e});
  BatchOutcome o = without.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  // TLS 1.3: the server checks the certificate after the client's handshake ended, so the refusal
  // reaches the client as an alert or a reset on its first write or read.
  EXPECT_THAT(o.detail, testing::AnyOf(HasSubstr("vt: TLS: "), HasSubstr("vt: connection closed")));
  e.client_cert = f.client_cert;
  e.client_key = f.client_key;
  Harness with({e});
  o = with.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::none) << o.detail;
  EXPECT_EQ(o.answers.at(0).reputation, Reputation::unknown);
}

// --- VirusTotal (test double) --------------------------------------------------------------------

TEST(ReputationClientVirusTotal, VerdictsFromLastAnalysisStats) {
  VtDouble vt;
  Hash bad = hash_of(1), few = hash_of(2), nothing = hash_of(3), missing = hash_of(4);
  vt.file(hex(bad), {{"malicious", 5}, {"undetected", 60}, {"label", "trojan.emotet/generic"}});
  vt.file(hex(few), {{"malicious", 2}, {"undetected", 60}, {"label", "adware.x/y"}});
  vt.file(hex(nothing), {{"malicious", 0}});  // type-unsupported only
  Harness t({vt_endpoint("vt", vt.url())});
  BatchOutcome o = t.lookup({bad, few, nothing, missing});
  ASSERT_EQ(o.error, LookupError::none) << o.detail;
  EXPECT_EQ(o.endpoint, 0);
  ASSERT_EQ(o.answers.size(), 4u);
  EXPECT_EQ(o.answers[0].reputation, Reputation::malicious);
  EXPECT_EQ(o.answers[0].threat_name, "trojan.emotet/generic");
  EXPECT_EQ(o.answers[1].reputation, Reputation::clean);  // below the threshold of 3
  EXPECT_EQ(o.answers[1].threat_name, "");
  EXPECT_EQ(o.answers[2].reputation, Reputation::unknown);
  EXPECT_EQ(o.answers[3].reputation, Reputation::unknown);  // 404 NotFoundError
  for (const auto& a : o.answers) {
    EXPECT_FALSE(a.upload_wanted);
    EXPECT_EQ(a.ttl_seconds, 0u);
    EXPECT_EQ(a.threat_score, -1);
  }
  EXPECT_EQ(t.status(0).requests, 4u);  // one per hash
  EXPECT_EQ(vt.stats()["requests"], 4);
}

TEST(ReputationClientVirusTotal, SeveralRequestsInFlightUpToMaxConnections) {
  VtDouble vt;
  vt.mode({{"mode", "normal"}, {"delay_ms", 300}});
  auto e = vt_endpoint("vt", vt.url());
  e.max_connections = 4;
  Harness t({e});
  std::vector<Hash> hashes;
  for (unsigned i = 0; i < 8; ++i) hashes.push_back(hash_of(i));
  auto start = Clock::now();
  BatchOutcome o = t.lookup(hashes);
  ASSERT_EQ(o.error, LookupError::none) << o.detail;
  EXPECT_EQ(o.answers.size(), 8u);
  EXPECT_GE(ms_since(start), 600);   // two rounds of four
  EXPECT_LT(ms_since(start), 1500);  // one at a time would take 2400
}

TEST(ReputationClientVirusTotal, QuotaIsRateLimitedAndRetryAfterHonoured) {
  VtDouble vt;
  vt.mode({{"mode", "quota"}, {"retry_after", "30"}});
  Harness t({vt_endpoint("vt", vt.url())});
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::rate_limited);
  EXPECT_EQ(o.detail, "vt: HTTP 429 QuotaExceededError (retry after 30 s)");
  o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::rate_limited);
  EXPECT_EQ(o.detail, "vt: rate limited for 30 s more");
  EXPECT_EQ(vt.stats()["requests"], 1);
}

TEST(ReputationClientVirusTotal, TooManyRequestsIsRateLimitedToo) {
  VtDouble vt;
  vt.mode({{"mode", "too_many"}});
  Harness t({vt_endpoint("vt", vt.url())});
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::rate_limited);
  EXPECT_EQ(o.detail, "vt: HTTP 429 TooManyRequestsError (retry after 60 s)");  // no Retry-After: a minute
}

TEST(ReputationClientVirusTotal, TransientErrorIsAFailureRetried) {
  VtDouble vt;
  vt.mode({{"mode", "transient"}});
  auto e = vt_endpoint("vt", vt.url());
  e.retries = 1;
  Harness t({e});
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "vt: HTTP 503 TransientError");
  EXPECT_EQ(vt.stats()["requests"], 2);
}

TEST(ReputationClientVirusTotal, AWrongKeyIsNotRetried) {
  VtDouble vt;
  auto e = vt_endpoint("vt", vt.url());
  e.api_key = "wrong";
  e.retries = 2;
  Harness t({e});
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "vt: HTTP 401 WrongCredentialsError");
  EXPECT_EQ(vt.stats()["requests"], 1);
}

TEST(ReputationClientVirusTotal, BrokenJsonIsAnError) {
  VtDouble vt;
  vt.file(hex(hash_of(1)), {{"answer", "bad_json"}});
  Harness t({vt_endpoint("vt", vt.url())});
  BatchOutcome o = t.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "vt: bad answer: not JSON");
}

TEST(ReputationClientVirusTotal, HalfOpenTrialClosesTheCircuit) {
  VtDouble vt;
  vt.mode({{"mode", "transient"}});
  auto e = vt_endpoint("vt", vt.url());
  e.breaker_failures = 1;
  e.breaker_open_ms = 300;
  Harness t({e});
  EXPECT_EQ(t.lookup({hash_of(1)}).error, LookupError::service_unavailable);
  ASSERT_EQ(t.events.size(), 1u);
  EXPECT_FALSE(t.events[0].reachable);
  EXPECT_EQ(t.events[0].detail, "vt: circuit opened after 1 consecutive failures (last: vt: HTTP 503 TransientError)");
  EXPECT_EQ(t.lookup({hash_of(1)}).detail, "vt: circuit open");
  vt.mode({{"mode", "normal"}});
  t.run_for(350ms);
  BatchOutcome o = t.lookup({hash_of(1)});  // the trial
  EXPECT_EQ(o.error, LookupError::none) << o.detail;
  ASSERT_EQ(t.events.size(), 2u);
  EXPECT_TRUE(t.events[1].reachable);
  EXPECT_EQ(t.events[1].detail, "vt: reachable again (answered)");
  EXPECT_EQ(vt.stats()["requests"], 2);
}

TEST(ReputationClientVirusTotal, AFailedTrialKeepsTheCircuitOpen) {
  VtDouble vt;
  vt.mode({{"mode", "transient"}});
  auto e = vt_endpoint("vt", vt.url());
  e.breaker_failures = 1;
  e.breaker_open_ms = 200;
  Harness t({e});
  t.lookup({hash_of(1)});
  t.run_for(250ms);
  EXPECT_EQ(t.lookup({hash_of(1)}).detail, "vt: HTTP 503 TransientError");  // the trial, failed
  EXPECT_EQ(t.lookup({hash_of(1)}).detail, "vt: circuit open");              // another open period
  EXPECT_EQ(t.events.size(), 1u);
  EXPECT_EQ(vt.stats()["requests"], 2);
}

// --- bounds and life cycle ------------------------------------------------------------------------

TEST(ReputationClient, TheQueueIsBoundedAndFailsFast) {
  VtDouble vt;
  auto e = vt_endpoint("vt", vt.url());
  e.max_connections = 1;
  e.max_queued = 2;
  Harness t({e});
  auto start = Clock::now();
  BatchOutcome o = t.lookup({hash_of(1), hash_of(2), hash_of(3)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "vt: queue full (2 requests waiting)");
  EXPECT_LT(ms_since(start), 50);
  EXPECT_EQ(vt.stats()["requests"], 0);
  EXPECT_EQ(t.lookup({hash_of(1), hash_of(2)}).error, LookupError::none);
  // A look-up that ended while its requests waited (behind another one's) gives their places back.
  vt.mode({{"mode", "normal"}, {"delay_ms", 300}});
  std::optional<BatchOutcome> first;
  t.client->lookup({hash_of(5)}, Clock::now() + 3s, [&](BatchOutcome r) { first = std::move(r); });
  t.run_for(20ms);  // in flight
  EXPECT_EQ(t.lookup({hash_of(1), hash_of(2)}, 100ms).error, LookupError::budget_exhausted);  // both waited
  o = t.lookup({hash_of(3), hash_of(4)});
  EXPECT_EQ(o.error, LookupError::none) << o.detail;
  ASSERT_TRUE(first);
  EXPECT_EQ(first->error, LookupError::none);
  EXPECT_EQ(vt.stats()["requests"], 5);  // 2 earlier, then 5, 3, 4: the abandoned 1 and 2 were never sent
}

TEST(ReputationClient, StopAnswersPendingLookupsAndNothingRunsAfterTheDestructor) {
  Cloud cloud;
  cloud.faults({{"delay_ms", 2000}});
  Harness t({sluice_endpoint("lab", cloud.url())});
  std::vector<BatchOutcome> got;
  t.client->lookup({hash_of(1)}, Clock::now() + 5s, [&](BatchOutcome o) { got.push_back(std::move(o)); });
  t.run_for(100ms);  // the request is in flight
  EXPECT_TRUE(got.empty());
  t.client->stop();
  ASSERT_EQ(got.size(), 1u);  // answered inside stop()
  EXPECT_EQ(got[0].error, LookupError::service_unavailable);
  EXPECT_EQ(got[0].detail, "reputation client stopped");
  t.client->lookup({hash_of(2)}, Clock::now() + 5s, [&](BatchOutcome o) { got.push_back(std::move(o)); });
  EXPECT_EQ(got.size(), 1u);  // never inside lookup()
  t.client.reset();           // the destructor delivers what is pending
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].error, LookupError::service_unavailable);
  t.run_for(100ms);
  EXPECT_EQ(got.size(), 2u);
}

TEST(ReputationClient, EmptyAndEndpointlessLookups) {
  Harness none({});
  BatchOutcome o = none.lookup({hash_of(1)});
  EXPECT_EQ(o.error, LookupError::service_unavailable);
  EXPECT_EQ(o.detail, "no reputation endpoint configured");
  EXPECT_EQ(o.endpoint, -1);
  o = none.lookup({});
  EXPECT_EQ(o.error, LookupError::none);
  EXPECT_TRUE(o.answers.empty());
}

// --- configuration --------------------------------------------------------------------------------

TEST(ValidateEndpoint, NamesTheProblem) {
  const auto& f = test::tls_files();
  auto base = [] {
    EndpointConfig e;
    e.name = "lab";
    e.kind = "sluice";
    e.url = "http://127.0.0.1:8440";
    return e;
  };
  EXPECT_EQ(validate_endpoint(base()), "");
  struct Case {
    std::function<void(EndpointConfig&)> change;
    std::string problem;
  };
  std::vector<Case> cases = {
      {[](auto& e) { e.name = ""; }, "name is empty"},
      {[](auto& e) { e.kind = "cape"; }, "kind 'cape' is not one of sluice, virustotal"},
      {[](auto& e) { e.url = "ftp://x"; }, "url 'ftp://x': must start with http:// or https://"},
      {[](auto& e) { e.url = "http://127.0.0.1:99999"; }, "url 'http://127.0.0.1:99999': bad port '99999'"},
      {[](auto& e) { e.url = "http://u:p@127.0.0.1"; }, "url 'http://u:p@127.0.0.1': no user name or password allowed in the URL"},
      {[](auto& e) { e.url = "http://10.0.0.1:8440"; },
       "url 'http://10.0.0.1:8440': plain http:// to a host other than loopback needs insecure: true (or https://)"},
      {[](auto& e) { e.ca_file = "/x"; }, "ca_file, client_cert, client_key and pin_sha256 need an https:// url"},
      {[](auto& e) { e.url = "https://cloud.example"; e.ca_file = "/nonexistent/ca.pem"; },
       "ca_file '/nonexistent/ca.pem': No such file or directory"},
      {[&](auto& e) { e.url = "https://cloud.example"; e.ca_file = f.dir + "/server.ext"; },
       "ca_file '" + f.dir + "/server.ext': no PEM certificate in it"},
      {[&](auto& e) { e.url = "https://cloud.example"; e.client_cert = f.client_cert; },
       "client_cert and client_key go together"},
      {[&](auto& e) { e.url = "https://cloud.example"; e.client_cert = f.client_cert; e.client_key = f.server_key; },
       "client_key '" + f.server_key + "' does not match client_cert '" + f.client_cert + "'"},
      {[](auto& e) { e.url = "https://cloud.example"; e.pin_sha256 = "sha256//abc"; },
       "pin_sha256 'sha256//abc' is not the base64 SHA-256 of a public key (44 characters, as sha256//...)"},
      {[](auto& e) { e.kind = "virustotal"; }, "api_key is required for kind virustotal"},
      {[](auto& e) { e.api_key = "a\r\nb"; }, "api_key contains a control character"},
      {[](auto& e) { e.max_batch = 1001; }, "max_batch must be 1-1000"},
      {[](auto& e) { e.max_connections = 0; }, "max_connections must be 1-64"},
      {[](auto& e) { e.request_timeout_ms = 0; }, "request_timeout_ms must be at least 1"},
      {[](auto& e) { e.breaker_failures = 0; }, "breaker_failures must be at least 1"},
  };
  for (const auto& c : cases) {
    EndpointConfig e = base();
    c.change(e);
    std::string got = validate_endpoint(e);
    EXPECT_EQ(got.substr(0, c.problem.size()), c.problem) << got;
  }
  EndpointConfig ok = base();
  ok.url = "http://10.0.0.1:8440/prefix/";
  ok.insecure = true;
  EXPECT_EQ(validate_endpoint(ok), "");
  ok = base();
  ok.url = "https://localhost:8443";
  ok.ca_file = f.ca;
  ok.client_cert = f.client_cert;
  ok.client_key = f.client_key;
  ok.pin_sha256 = f.server_pin;
  EXPECT_EQ(validate_endpoint(ok), "");
  boost::asio::io_context io;
  EXPECT_THROW(ReputationClient(io, {base(), base()}, {}), std::invalid_argument);
}

}  // namespace
}  // namespace sluice::control
