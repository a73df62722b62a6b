// The Prometheus text exposition (version 0.0.4) of the data plane's counters, for `GET /metrics`
// on the management API (management.h). Names are kept stable: `sluice_port_<counter>_total{port=
// "NAME"}` per port, `sluice_lcore_<counter>_total{lcore="N",role="rx"|"worker"}` per lcore, then
// sums across the RX lcores (messages by verdict, flows, the hold queue). Counters end in `_total`;
// gauges do not.
#pragma once

#include <string>

#include "dataplane/dataplane.h"

namespace sluice::control {

std::string prometheus_text(const dataplane::StatsSnapshot& s, double uptime_s);

}  // namespace sluice::control
