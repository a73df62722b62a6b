// PLACEHOLDER until branch `client` lands (control/reputation_client.cpp replaces this file).
#include "control/reputation_client.h"

namespace sluice::control {

std::string validate_endpoint(const EndpointConfig& e) {
  if (e.url.rfind("http://", 0) != 0 && e.url.rfind("https://", 0) != 0) return "url: expected http:// or https://";
  return "";
}

}  // namespace sluice::control
