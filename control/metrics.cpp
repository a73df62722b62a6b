// Prometheus text (metrics.h).
#include "control/metrics.h"

#include <cstdint>
#include <cstdio>
#include <functional>

namespace sluice::control {
namespace {

// A label value: '\', '"' and newline escaped.
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

struct Writer {
  std::string out;
  void family(const std::string& name, const char* type, const char* help) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  void sample(const std::string& name, const std::string& labels, uint64_t v) {
    out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(v) + "\n";
  }
};

}  // namespace

std::string prometheus_text(const dataplane::StatsSnapshot& s, double uptime_s) {
  Writer w;
  using P = dataplane::PortStats;
  const std::pair<const char*, std::function<uint64_t(const P&)>> port_counters[] = {
      {"rx_packets", [](const P& p) { return p.rx_packets; }}, {"rx_bytes", [](const P& p) { return p.rx_bytes; }},
      {"tx_packets", [](const P& p) { return p.tx_packets; }}, {"tx_bytes", [](const P& p) { return p.tx_bytes; }},
      {"dropped", [](const P& p) { return p.dropped; }},       {"rx_missed", [](const P& p) { return p.rx_missed; }},
      {"rx_errors", [](const P& p) { return p.rx_errors; }},   {"tx_errors", [](const P& p) { return p.tx_errors; }},
      {"rx_nombuf", [](const P& p) { return p.rx_nombuf; }}};
  for (const auto& [name, get] : port_counters) {
    const std::string family = std::string("sluice_port_") + name + "_total";
    w.family(family, "counter", ("The port's " + std::string(name) + " (sluiced's own, or the device's).").c_str());
    for (const P& p : s.ports) w.sample(family, "port=\"" + label(p.name) + "\"", get(p));
  }
  w.family("sluice_port_link_up", "gauge", "1 when the port's link is up.");
  for (const P& p : s.ports) w.sample("sluice_port_link_up", "port=\"" + label(p.name) + "\"", p.link_up ? 1 : 0);

  using L = dataplane::LcoreStats;
  const std::pair<const char*, std::function<uint64_t(const L&)>> lcore_counters[] = {
      {"rx_packets", [](const L& l) { return l.rx_packets; }}, {"rx_bytes", [](const L& l) { return l.rx_bytes; }},
      {"tx_packets", [](const L& l) { return l.tx_packets; }}, {"tx_bytes", [](const L& l) { return l.tx_bytes; }},
      {"dropped", [](const L& l) { return l.dropped; }},       {"events", [](const L& l) { return l.events; }},
      {"events_dropped", [](const L& l) { return l.events_dropped; }}};
  for (const auto& [name, get] : lcore_counters) {
    const std::string family = std::string("sluice_lcore_") + name + "_total";
    w.family(family, "counter", ("The lcore's " + std::string(name) + ".").c_str());
    for (const L& l : s.lcores)
      w.sample(family, "lcore=\"" + std::to_string(l.lcore) + "\",role=\"" + label(l.role) + "\"", get(l));
  }

  uint64_t clean = 0, malicious = 0, unscannable = 0, pending = 0, messages = 0, flows = 0, held = 0, expired = 0,
           in_queue = 0;
  for (const L& l : s.lcores) {
    if (l.role != "rx") continue;
    clean += l.handoff.verdicts_clean;
    malicious += l.handoff.verdicts_malicious;
    unscannable += l.handoff.verdicts_unscannable;
    pending += l.handoff.verdicts_pending;
    messages += l.reassembly.messages;
    flows += l.reassembly.flows_created;
    held += l.hold.held;
    expired += l.hold.expired;
    in_queue += l.hold.in_queue;
  }
  w.family("sluice_messages_total", "counter", "Messages rebuilt from the wire.");
  w.sample("sluice_messages_total", "", messages);
  w.family("sluice_verdicts_total", "counter", "Message verdicts by disposition.");
  w.sample("sluice_verdicts_total", "disposition=\"clean\"", clean);
  w.sample("sluice_verdicts_total", "disposition=\"malicious\"", malicious);
  w.sample("sluice_verdicts_total", "disposition=\"unscannable\"", unscannable);
  w.sample("sluice_verdicts_total", "disposition=\"pending\"", pending);
  w.family("sluice_flows_total", "counter", "TCP flows tracked.");
  w.sample("sluice_flows_total", "", flows);
  w.family("sluice_hold_held_total", "counter", "Frames held for a verdict.");
  w.sample("sluice_hold_held_total", "", held);
  w.family("sluice_hold_expired_total", "counter", "Held frames released by their deadline.");
  w.sample("sluice_hold_expired_total", "", expired);
  w.family("sluice_hold_queue_frames", "gauge", "Frames held now.");
  w.sample("sluice_hold_queue_frames", "", in_queue);
  char up[64];
  std::snprintf(up, sizeof up, "%.3f", uptime_s);
  w.family("sluice_uptime_seconds", "gauge", "Seconds since the data plane started.");
  w.out += std::string("sluice_uptime_seconds ") + up + "\n";
  return w.out;
}

}  // namespace sluice::control
