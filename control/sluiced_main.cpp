// sluiced: the Sluice daemon. Loads and validates the configuration, starts the EAL and the data
// plane, writes events, stops on SIGINT/SIGTERM or at the end of a replay, prints its counters.
//
//   sluiced --replay IN.pcap [--replay-out OUT.pcap] [--events EVENTS.json] [--config FILE] [-- EAL args]
//   sluiced --config FILE [--events EVENTS.json] [-- EAL args]
#include <rte_eal.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "control/alert.h"
#include "control/config.h"
#include "control/events.h"
#include "control/pcap_file.h"
#include "control/service_loop.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"

namespace {

// Jobs queued on the control plane's pool at most (event batches, stats): control/service_loop.h.
constexpr std::size_t kMaxPendingJobs = 64;
constexpr std::size_t kBatchBytes = 4 << 20;  // event lines handed to the writer at once, at most

void print_stats(std::FILE* out, const sluice::dataplane::StatsSnapshot& s, double seconds) {
  std::fprintf(out, "sluiced: ran %.3f s\n", seconds);
  std::fprintf(out, "%-12s %14s %16s %14s %16s %10s %10s %10s\n", "port", "rx_packets", "rx_bytes", "tx_packets",
               "tx_bytes", "dropped", "rx_missed", "rx_nombuf");
  for (const auto& p : s.ports)
    std::fprintf(out, "%-12s %14lu %16lu %14lu %16lu %10lu %10lu %10lu\n", p.name.c_str(), p.rx_packets, p.rx_bytes,
                 p.tx_packets, p.tx_bytes, p.dropped, p.rx_missed, p.rx_nombuf);
  std::fprintf(out, "%-12s %14s %16s %14s %16s %10s %10s\n", "lcore", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
               "dropped", "dispatched");
  for (const auto& l : s.lcores) {
    const std::string name = std::to_string(l.lcore) + " (" + l.role + ")";
    std::fprintf(out, "%-12s %14lu %16lu %14lu %16lu %10lu %10lu\n", name.c_str(), l.rx_packets, l.rx_bytes,
                 l.tx_packets, l.tx_bytes, l.dropped, l.dispatched_out);
  }
}

}  // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  using namespace sluice;

  std::vector<std::string> own, passthrough;
  bool after = false;
  for (int i = 1; i < argc; ++i) {
    if (!after && std::string(argv[i]) == "--") {
      after = true;
      continue;
    }
    (after ? passthrough : own).push_back(argv[i]);
  }

  po::options_description opts("sluiced options (EAL arguments go after --)");
  opts.add_options()("help,h", "show this help")("version", "print the version")(
      "config,c", po::value<std::string>(), "YAML configuration file (docs/configuration.md)")(
      "replay", po::value<std::string>(), "replay mode: read this pcap through DPDK's pcap PMD, exit at its end")(
      "replay-out", po::value<std::string>(), "replay mode: write what inline mode would have forwarded to this pcap")(
      "events", po::value<std::string>(), "append JSON-lines events to this file ('-': standard output)")(
      "check-config", "validate the configuration and exit")(
      "config-reference", "print the configuration reference (Markdown) and exit");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(own).options(opts).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "sluiced: %s (see sluiced --help)\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::cout << "usage: sluiced --replay IN.pcap [--replay-out OUT.pcap] [--events FILE] [--config FILE] [-- EAL args]\n"
                 "       sluiced --config FILE [--events FILE] [-- EAL args]\n\n"
              << opts;
    return 0;
  }
  if (vm.count("version")) {
    std::cout << "sluiced " << SLUICE_VERSION << "\n";
    return 0;
  }
  if (vm.count("config-reference")) {
    std::cout << control::config_reference_markdown();
    return 0;
  }
  if (!vm.count("config") && !vm.count("replay")) {
    std::fprintf(stderr, "sluiced: nothing to do: give --config FILE or --replay FILE (see sluiced --help)\n");
    return 2;
  }

  control::Overrides ov;
  if (vm.count("replay")) ov.replay_input = vm["replay"].as<std::string>();
  if (vm.count("replay-out")) ov.replay_output = vm["replay-out"].as<std::string>();
  if (vm.count("events")) ov.events_path = vm["events"].as<std::string>();
  if (vm.count("replay-out") && !vm.count("replay")) {
    std::fprintf(stderr, "sluiced: --replay-out needs --replay\n");
    return 2;
  }
  const auto loaded = control::load_config(vm.count("config") ? vm["config"].as<std::string>() : "", ov);
  if (!loaded.config) {
    std::fprintf(stderr, "sluiced: %s\n", loaded.error.c_str());
    return 1;
  }
  const control::Config& cfg = *loaded.config;
  if (vm.count("check-config")) {
    std::printf("sluiced: configuration is valid (mode %s, %zu port(s))\n", dataplane::mode_name(cfg.dataplane.mode),
                cfg.dataplane.ports.size());
    return 0;
  }

  control::EventWriter events;
  std::string error;
  if (!events.open(cfg.events_path, error)) {
    std::fprintf(stderr, "sluiced: %s\n", error.c_str());
    return 1;
  }
  std::FILE* human = cfg.events_path == "-" ? stderr : stdout;

  // The control plane's loop (control/service_loop.h): signals, timers, the lcores' event rings;
  // event lines are written by the pool, in order, never on the loop.
  control::ServiceLoop loop(/*threads=*/2, kMaxPendingJobs);
  int stop_signal = 0;
  loop.on_signals({SIGINT, SIGTERM}, [&](int sig) {
    stop_signal = sig;
    loop.stop();
  });

  if (!dataplane::eal_init(cfg.dataplane, passthrough, error)) {
    std::fprintf(stderr, "sluiced: %s\n", error.c_str());
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto dp = dataplane::Dataplane::start(cfg.dataplane, error);
  if (!dp) {
    std::fprintf(stderr, "sluiced: %s\n", error.c_str());
    rte_eal_cleanup();
    return 1;
  }
  std::fprintf(human, "sluiced: running in %s mode on %zu port(s), %zu RX lcore(s)\n",
               dataplane::mode_name(cfg.dataplane.mode), cfg.dataplane.ports.size(), cfg.dataplane.lcores.rx.size());
  std::fflush(human);

  // Every lcore answers the control channel before the loop starts, and takes its first
  // configuration snapshot (generation 1). An lcore that does not answer in 2 s is an alert (a
  // replay may already have ended: its lcores have exited, which is not one).
  auto check_lcores = [&](dataplane::Request rq, const char* what) {
    const auto results = dp->channels().call_all(rq, std::chrono::steady_clock::now() + std::chrono::seconds(2));
    for (std::size_t k = 0; k < results.size(); ++k)
      if (results[k].status != dataplane::CallStatus::ok && !dp->finished()) {
        control::Alert a{"lcore_unresponsive", control::Severity::critical,
                         "lcore channel " + std::to_string(k) + " did not answer " + what + " within 2 s", std::nullopt, ""};
        events.write("alert", control::alert_body(a));
        std::fprintf(stderr, "sluiced: %s\n", a.message.c_str());
      }
  };
  check_lcores(dataplane::make_request(dataplane::RequestType::ping, dataplane::Ping{1}), "a ping");
  check_lcores(dataplane::snapshot_request(std::make_shared<const dataplane::LcoreSnapshot>(dataplane::LcoreSnapshot{1})),
               "its configuration snapshot");

  // Records are rendered on the loop into a batch; the batch is written by the ordered pool.
  control::EventRenderer renderer;
  std::string batch;
  uint64_t unrenderable = 0;
  auto render = [&](const void* record, std::size_t size) {
    const std::string_view line = renderer.render(record, size);
    if (line.empty()) return void(++unrenderable);
    batch.append(line).push_back('\n');
  };
  auto write_batch = [&] {
    if (batch.empty()) return;
    loop.submit_ordered([&events, lines = std::move(batch)] {
      events.write_block(lines);
      events.flush();
    });
    batch.clear();
  };
  // Every millisecond: move what the lcores wrote. While the writer is behind (disk slower than
  // the lcores), the rings are left to fill: the lcores count what they cannot push.
  loop.every(std::chrono::milliseconds(1), [&] {
    // Drain until the rings are empty (lcores may produce a burst: every message of a link
    // ending at once), a batch at most kBatchBytes.
    if (loop.jobs_pending() < kMaxPendingJobs / 2) {
      while (dp->drain_events(render) && batch.size() < kBatchBytes) {
      }
      write_batch();
    }
    if (dp->finished()) loop.stop();
    return true;
  });
  // Records lost to a full event ring are the operator's to act on: one alert per second at most.
  uint64_t lost_reported = 0;
  auto check_lost = [&] {
    uint64_t lost = 0;
    for (const auto& l : dp->stats().lcores) lost += l.events_dropped;
    if (lost > lost_reported) {
      control::Alert a{"events_lost", control::Severity::warning,
                       std::to_string(lost - lost_reported) + " event records lost (" + std::to_string(lost) +
                           " in all): an RX lcore's event ring was full; raise events.ring_kb or check that "
                           "events.path keeps up", std::nullopt, ""};
      loop.submit_ordered([&events, body = control::alert_body(a)] { events.write("alert", body); });
      lost_reported = lost;
    }
    return true;
  };
  loop.every(std::chrono::seconds(1), check_lost);
  auto next_stats = t0 + std::chrono::seconds(cfg.stats_interval_s);
  loop.every(std::chrono::milliseconds(100), [&] {
    if (cfg.stats_interval_s && std::chrono::steady_clock::now() >= next_stats) {
      auto body = control::stats_json(dp->stats());
      loop.submit_ordered([&events, body = std::move(body)] { events.write("stats", body); });
      next_stats += std::chrono::seconds(cfg.stats_interval_s);
    }
    return true;
  });
  loop.run();

  // The lcores report their open flows on the way out; the writer finishes before the last stats.
  dp->stop(render);
  write_batch();
  check_lost();
  loop.drain_pool();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto snapshot = dp->stats();
  auto body = control::stats_json(snapshot);
  body["reason"] = stop_signal == SIGINT ? "sigint" : stop_signal == SIGTERM ? "sigterm" : "end_of_replay";
  body["uptime_s"] = secs;
  events.write("stats", body);
  if (unrenderable) std::fprintf(stderr, "sluiced: %llu event records could not be rendered\n", (unsigned long long)unrenderable);
  print_stats(human, snapshot, secs);
  dp.reset();  // closes the ports: the output pcap is complete
  rte_eal_cleanup();
  if (!cfg.replay_output.empty()) {
    const auto link_type = control::pcap_link_type(cfg.replay_input);
    if (link_type && *link_type != 1 && !control::set_pcap_link_type(cfg.replay_output, *link_type))
      std::fprintf(stderr, "sluiced: could not set link type %u on %s\n", *link_type, cfg.replay_output.c_str());
  }
  return 0;
}
