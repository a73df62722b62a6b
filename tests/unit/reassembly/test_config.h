// A small reassembler configuration for unit tests: port 25, four session slots, 1 MiB of memcap,
// the production timeouts. Tests change what they exercise on the copy.
#pragma once

#include "reassembly/reassembler.h"

#include <cstdint>

namespace sluice::reassembly::test {

inline ReassemblyConfig small_config(uint32_t max_flows = 16) {
  ReassemblyConfig c{};
  c.smtp_ports = {25};
  c.max_flows = max_flows;
  c.max_sessions = 4;
  c.memcap_mb = 1;
  c.stream = {65536, 64};
  c.idle_timeout_s = 60;
  c.closed_timeout_s = 5;
  c.max_fragment_sets = 4;
  c.fragment_timeout_s = 5;
  c.embryonic_timeout_s = 30;
  c.emergency_idle_timeout_s = 60;
  c.emergency_embryonic_timeout_s = 5;
  c.emergency_recovery_percent = 80;
  return c;
}

}  // namespace sluice::reassembly::test
