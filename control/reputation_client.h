// PLACEHOLDER until branch `client` lands: the interface the reputation endpoint client implements
// (control/reputation_client.cpp comes with it). Only the types are used before then.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "records/verdict_records.h"

namespace sluice::control {

struct EndpointConfig {
  std::string name;
  std::string kind;
  std::string url;
  std::string api_key;
  std::string ca_file;
  std::string client_cert, client_key;
  std::string pin_sha256;
  bool insecure = false;
  unsigned connect_timeout_ms = 2000, request_timeout_ms = 3000;
  unsigned retries = 1, retry_backoff_ms = 100;
  unsigned max_connections = 4;
  unsigned breaker_failures = 5, breaker_open_ms = 30000;
  unsigned health_interval_ms = 10000;
  unsigned max_batch = 100;
  unsigned vt_malicious_threshold = 3;
  unsigned max_response_kb = 4096;
};

std::string validate_endpoint(const EndpointConfig&);

struct HashAnswer {
  records::Reputation reputation;
  std::string threat_name;
  int threat_score = -1;
  uint32_t ttl_seconds = 0;
  bool upload_wanted = false;
};

struct BatchOutcome {
  records::LookupError error = records::LookupError::none;
  int endpoint = -1;
  std::vector<HashAnswer> answers;
  std::string detail;
};

struct EndpointEvent {
  int endpoint;
  bool reachable;
  std::string detail;
};

class ReputationClient {
 public:
  ReputationClient(boost::asio::io_context& io, std::vector<EndpointConfig> endpoints,
                   std::function<void(const EndpointEvent&)> on_event);
  ~ReputationClient();
  void lookup(std::vector<std::array<uint8_t, 32>> hashes, std::chrono::steady_clock::time_point deadline,
              std::function<void(BatchOutcome)> done);
  struct EndpointStatus {
    std::string name, kind;
    bool reachable;
    bool circuit_open;
    uint64_t requests, failures, timeouts, rate_limited;
    double last_latency_ms;
  };
  std::vector<EndpointStatus> status() const;
  void stop();

 private:
  boost::asio::io_context& io_;
  std::vector<EndpointConfig> endpoints_;
};

}  // namespace sluice::control
