// PLACEHOLDER until branch `client` lands (control/reputation_client.cpp replaces this file).
#include "control/reputation_client.h"

#include <boost/asio/post.hpp>

namespace sluice::control {

std::string validate_endpoint(const EndpointConfig& e) {
  if (e.url.rfind("http://", 0) != 0 && e.url.rfind("https://", 0) != 0) return "url: expected http:// or https://";
  return "";
}

ReputationClient::ReputationClient(boost::asio::io_context& io, std::vector<EndpointConfig> endpoints,
                                   std::function<void(const EndpointEvent&)>)
    : io_(io), endpoints_(std::move(endpoints)) {}
ReputationClient::~ReputationClient() = default;
void ReputationClient::lookup(std::vector<std::array<uint8_t, 32>>, std::chrono::steady_clock::time_point,
                              std::function<void(BatchOutcome)> done) {
  boost::asio::post(io_, [done = std::move(done)] {
    BatchOutcome o;
    o.error = records::LookupError::service_unavailable;
    done(o);
  });
}
std::vector<ReputationClient::EndpointStatus> ReputationClient::status() const { return {}; }
void ReputationClient::stop() {}

}  // namespace sluice::control
