#include "control/events.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

namespace sluice::control {

EventWriter::~EventWriter() {
  if (owned_ && out_) std::fclose(out_);
}

bool EventWriter::open(const std::string& path, std::string& error) {
  if (path.empty()) return true;
  if (path == "-") {
    out_ = stdout;
    return true;
  }
  out_ = std::fopen(path.c_str(), "a");
  if (!out_) {
    error = "events.path: cannot open '" + path + "': " + std::strerror(errno);
    return false;
  }
  owned_ = true;
  return true;
}

void EventWriter::write(const std::string& type, Json body) {
  if (!out_) return;
  Json ev;
  ev["timestamp"] = rfc3339(now_unix_us());
  ev["event_type"] = type;
  ev[type] = std::move(body);
  const std::string line = ev.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fwrite(line.data(), 1, line.size(), out_);
  std::fflush(out_);
}

void EventWriter::write_line(std::string_view json) {
  if (!out_) return;
  std::fwrite(json.data(), 1, json.size(), out_);
  std::fputc('\n', out_);
}

int64_t now_unix_us() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

std::string rfc3339(int64_t unix_us) {
  const std::time_t secs = static_cast<std::time_t>(unix_us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%06lldZ", static_cast<long long>(unix_us % 1000000));
  return buf;
}

Json stats_json(const dataplane::StatsSnapshot& s) {
  Json ports = Json::array(), lcores = Json::array();
  for (const auto& p : s.ports)
    ports.push_back({{"name", p.name}, {"device", p.device},
                     {"rx_packets", p.rx_packets}, {"rx_bytes", p.rx_bytes},
                     {"tx_packets", p.tx_packets}, {"tx_bytes", p.tx_bytes},
                     {"dropped", p.dropped}, {"rx_missed", p.rx_missed}, {"rx_errors", p.rx_errors},
                     {"tx_errors", p.tx_errors}, {"rx_nombuf", p.rx_nombuf},
                     {"symmetric_rss", p.symmetric_rss}, {"software_dispatch", p.software_dispatch}});
  for (const auto& l : s.lcores) {
    const auto& w = l.worker;
    Json worker = {{"chunks", w.chunks}, {"bytes", w.bytes}, {"attachments", w.attachments},
                   {"archives", w.archives}, {"members", w.members}, {"in_flight_full", w.in_flight_full},
                   {"stray_chunks", w.stray_chunks}, {"results_dropped", l.results_dropped}};
    Json unscannable = Json::object();
    for (unsigned u = 1; u < std::size(w.unscannable); ++u) {
      const auto name = pipeline::unscannable_name(static_cast<pipeline::Unscannable>(u));
      if (!name.empty()) unscannable[std::string(name)] = w.unscannable[u];
    }
    worker["unscannable"] = unscannable;
    if (l.role == "worker") {
      lcores.push_back({{"lcore", l.lcore}, {"role", l.role}, {"worker", worker}});
      continue;
    }
    const auto& h = l.handoff;
    Json handoff = {{"files", h.files}, {"chunks", h.chunks}, {"bytes", h.bytes}, {"results", h.results},
                    {"overload", h.overload}, {"no_chunk", h.no_chunk}, {"ring_full", h.ring_full},
                    {"records_full", h.records_full}, {"members_unheld", h.members_unheld},
                    {"stale_results", h.stale_results}};
    const auto& r = l.reassembly;
    lcores.push_back({{"lcore", l.lcore}, {"role", l.role},
                      {"rx_packets", l.rx_packets}, {"rx_bytes", l.rx_bytes},
                      {"tx_packets", l.tx_packets}, {"tx_bytes", l.tx_bytes},
                      {"dropped", l.dropped}, {"dispatched_out", l.dispatched_out},
                      {"events", l.events}, {"events_dropped", l.events_dropped},
                      {"reassembly", {{"packets", r.packets}, {"flows", r.flows_created},
                                      {"flows_table_full", r.flows_table_full},
                                      {"sessions_pool_full", r.sessions_pool_full}, {"messages", r.messages},
                                      {"messages_incomplete", r.messages_incomplete},
                                      {"overlap_conflicts", r.overlap_conflicts}, {"gaps", r.gaps},
                                      {"memcap_flushes", r.memcap_flushes}, {"fragments", r.fragments},
                                      {"fragments_reassembled", r.fragments_reassembled},
                                      {"fragments_dropped", r.fragments_dropped}}},
                      {"handoff", handoff}});
    // Without worker lcores the RX lcore does the workers' job itself.
    if (l.runs_worker) lcores.back()["worker"] = worker;
  }
  return {{"ports", ports}, {"lcores", lcores}};
}

}  // namespace sluice::control
