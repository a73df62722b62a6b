// control/metrics: the Prometheus text of a stats snapshot, line for line.
#include "control/metrics.h"

#include <gtest/gtest.h>

namespace sluice::control {
namespace {

TEST(Metrics, PortsLcoresAndSumsInThePrometheusTextFormat) {
  dataplane::StatsSnapshot s;
  dataplane::PortStats p;
  p.name = "out\"side\\1";
  p.rx_packets = 7;
  p.tx_bytes = 900;
  p.link_up = true;
  s.ports.push_back(p);
  dataplane::LcoreStats rx;
  rx.lcore = 1;
  rx.role = "rx";
  rx.rx_packets = 7;
  rx.handoff.verdicts_clean = 3;
  rx.handoff.verdicts_malicious = 1;
  rx.reassembly.messages = 4;
  s.lcores.push_back(rx);
  dataplane::LcoreStats worker;
  worker.lcore = 2;
  worker.role = "worker";
  worker.handoff.verdicts_clean = 100;  // not an RX lcore: not summed
  s.lcores.push_back(worker);
  const std::string t = prometheus_text(s, 12.5);
  for (const char* line : {"# TYPE sluice_port_rx_packets_total counter\n",
                           "sluice_port_rx_packets_total{port=\"out\\\"side\\\\1\"} 7\n",
                           "sluice_port_tx_bytes_total{port=\"out\\\"side\\\\1\"} 900\n",
                           "# TYPE sluice_port_link_up gauge\n", "sluice_port_link_up{port=\"out\\\"side\\\\1\"} 1\n",
                           "sluice_lcore_rx_packets_total{lcore=\"1\",role=\"rx\"} 7\n",
                           "sluice_lcore_rx_packets_total{lcore=\"2\",role=\"worker\"} 0\n",
                           "sluice_messages_total 4\n", "sluice_verdicts_total{disposition=\"clean\"} 3\n",
                           "sluice_verdicts_total{disposition=\"malicious\"} 1\n", "sluice_uptime_seconds 12.500\n"})
    EXPECT_NE(t.find(line), std::string::npos) << line << "\n" << t;
  EXPECT_EQ(t.back(), '\n');
}

}  // namespace
}  // namespace sluice::control
