// sluiced: the Sluice daemon. Loads and validates the configuration, takes the state directory,
// starts the EAL and the data plane, writes events, reloads the configuration on SIGHUP, stops on
// SIGINT/SIGTERM or at the end of a replay, prints its counters.
//
//   sluiced --replay IN.pcap [--replay-out OUT.pcap] [--events EVENTS.json] [--config FILE] [-- EAL args]
//   sluiced --config FILE [--events EVENTS.json] [-- EAL args]
#include <boost/program_options.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>

#include "control/alert.h"
#include "control/api_routes.h"
#include "control/config.h"
#include "control/events.h"
#include "control/file_analysis.h"
#include "control/file_reputation.h"
#include "control/management.h"
#include "control/metrics.h"
#include "control/pcap_file.h"
#include "control/service_loop.h"
#include "control/notifier.h"
#include "control/retrospective.h"
#include "control/state_dir.h"
#include "dataplane/dataplane.h"
#include "dataplane/eal.h"
#include "dataplane/telemetry.h"

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
  const std::string config_path = vm.count("config") ? vm["config"].as<std::string>() : "";
  auto loaded = control::load_config(config_path, ov);
  if (!loaded.config) {
    std::fprintf(stderr, "sluiced: %s\n", loaded.error.c_str());
    return 1;
  }
  // The running configuration: replaced as a whole by a reload (SIGHUP); only the reloadable keys
  // (control::reloadable_keys()) can differ between the two.
  control::Config cfg = std::move(*loaded.config);
  if (vm.count("check-config")) {
    std::printf("sluiced: configuration is valid (mode %s, %zu port(s))\n", dataplane::mode_name(cfg.dataplane.mode),
                cfg.dataplane.ports.size());
    return 0;
  }

  // Taken before anything else starts, held until exit: a second sluiced on the same directory
  // stops here.
  std::optional<control::StateDir> state;
  if (!cfg.state_dir.empty()) {
    auto opened = control::StateDir::open(cfg.state_dir);
    if (!opened.dir) {
      std::fprintf(stderr, "sluiced: %s\n", opened.error.c_str());
      return 1;
    }
    state = std::move(opened.dir);
  }

  // Used by one thread at a time: the main thread before the loop runs and after the pool has
  // drained, the ordered pool in between (a reload swaps it there, between two batches).
  auto events = std::make_unique<control::EventWriter>();
  std::string error;
  if (!events->open(cfg.events_path, error)) {
    std::fprintf(stderr, "sluiced: %s\n", error.c_str());
    return 1;
  }
  std::FILE* human = cfg.events_path == "-" ? stderr : stdout;
  // Per-message traces (control/trace.h): written by the ordered pool with the event batches.
  control::TraceLog trace_log;
  if (!trace_log.open(cfg.trace, error)) {
    std::fprintf(stderr, "sluiced: %s\n", error.c_str());
    return 1;
  }

  // The control plane's loop (control/service_loop.h): signals, timers, the lcores' event rings;
  // event lines are written by the pool, in order, never on the loop.
  control::ServiceLoop loop(/*threads=*/2, kMaxPendingJobs);
  int stop_signal = 0;
  // A signal starts the stop; the loop keeps running (events drained, look-ups answered) until
  // the lcores have reported their flows or the stop deadline passed (the 1 ms timer below).
  std::function<void()> begin_stop = [&] { loop.stop(); };
  loop.on_signals({SIGINT, SIGTERM}, [&](int sig) {
    if (stop_signal) return;
    stop_signal = sig;
    begin_stop();
  });
  // Taken from here on (the default action would end sluiced); acted on once the loop runs.
  std::function<void()> reload;
  loop.on_signals({SIGHUP}, [&](int) { if (reload) reload(); });

  // File reputation: the verdict cache (loaded from disk) exists before the lcores that read it.
  control::FileReputation reputation(cfg, loop);
  cfg.dataplane.verdicts.cache = reputation.cache();
  // File analysis: the pre-classifier and the submission store, before the lcores offer candidates.
  control::FileAnalysis analysis(cfg, loop);
  if (!analysis.error().empty()) {
    std::fprintf(stderr, "sluiced: %s\n", analysis.error().c_str());
    return 1;
  }

  std::vector<std::string> notes;
  const bool eal_up = dataplane::eal_init(cfg.dataplane, passthrough, error, notes);
  for (const auto& note : notes) std::fprintf(stderr, "sluiced: %s\n", note.c_str());
  if (!eal_up) {
    std::fprintf(stderr, "sluiced: %s\n", error.c_str());
    return 1;
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto dp = dataplane::Dataplane::start(cfg.dataplane, error);
  if (!dp) {
    std::fprintf(stderr, "sluiced: %s\n", error.c_str());
    dataplane::eal_cleanup();
    return 1;
  }
  std::fprintf(human, "sluiced: running in %s mode on %zu port(s), %zu RX lcore(s), %zu worker lcore(s)\n",
               dataplane::mode_name(cfg.dataplane.mode), cfg.dataplane.ports.size(), cfg.dataplane.lcores.rx.size(),
               cfg.dataplane.lcores.workers.size());
  if (reputation.enabled()) std::fprintf(human, "sluiced: %s\n", reputation.summary().c_str());
  if (analysis.enabled()) std::fprintf(human, "sluiced: %s\n", analysis.summary().c_str());
  std::fflush(human);
  // Records lost while the lcores report their flows are counted in the exit event (`shutdown`).
  const auto events_dropped = [&dp] {
    uint64_t n = 0;
    for (const auto& l : dp->stats().lcores) n += l.events_dropped;
    return n;
  };
  uint64_t dropped_before_stop = 0;
  begin_stop = [&] {
    dropped_before_stop = events_dropped();
    dp->request_stop();
  };
  // Every event line goes into `batch` (on the loop's thread, or the main thread before the loop
  // runs and after it stopped), which the 1 ms timer hands to the ordered writer: one job per
  // millisecond, however many lines, so a burst (thousands of retrospective reports) is never
  // refused by the pool's bound and lines stay in order.
  std::string batch;
  // Callbacks to run once the lines before them are written (Retrospective marks its reports): those
  // not yet handed to the writer, and those whose lines it wrote (run by the loop, or at exit).
  std::vector<std::function<void()>> after_batch;
  std::mutex written_mutex;
  std::vector<std::function<void()>> written;
  auto run_written = [&] {
    std::vector<std::function<void()>> fns;
    {
      std::lock_guard<std::mutex> lock(written_mutex);
      fns.swap(written);
    }
    for (auto& fn : fns) fn();
  };
  control::EventRenderer control_renderer;  // events made by the control plane
  // The trace lines of the same records and steps, batched as the events are (`trace_batch`), and
  // the report page's figures (control/report.h).
  const uint32_t instance = cfg.dataplane.enforce.instance;
  control::TraceBuilder tracer(instance, cfg.reputation.limits.max_pending);
  std::string trace_batch;
  const bool tracing = trace_log.enabled();
  control::ReportCollector report(cfg.report, instance);
  const auto now_us = [] {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  auto emit = [&](const std::string& type, const control::Json& body, const records::FlowIdentity* flow = nullptr) {
    batch.append(control_renderer.control_event(type, body, now_us(), flow)).push_back('\n');
    if (tracing) tracer.on_event(type, body, flow, trace_batch);
  };
  // Alerts (control/alert.h): one `alert` event each, in order with the other events, and the
  // notifications (control/notifier.h) whose minimum severity they reach.
  control::Notifier notifier(loop, cfg.notify, cfg.sightings.appliance);
  const std::string notify_problem = notifier.start();
  control::AlertLog alert_log(cfg.management.alerts_kept);  // the latest, for the management API
  auto raise_alert = [&](const control::Alert& a) {
    std::string line = control_renderer.control_event("alert", control::alert_body(a), now_us());
    notifier.send(a, line);
    batch.append(line).push_back('\n');
    alert_log.add(a.severity, std::move(line));
  };
  // ... and a line on standard error, for those an operator starting sluiced must see at once.
  auto raise_loud = [&](const control::Alert& a) {
    raise_alert(a);
    std::fprintf(stderr, "sluiced: %s\n", a.message.c_str());
  };
  if (!notify_problem.empty())
    raise_loud({"notifications_problem", control::Severity::warning,
                notify_problem + ": alerts still go to the events; fix notifications.* and restart", std::nullopt, ""});
  for (const auto& a : reputation.take_alerts()) raise_loud(a);
  reputation.start(dp->lookup_lanes(), raise_loud,
                   [&](const control::Sha256& sha, int endpoint, double ms, const records::FileVerdict&,
                       const std::string& detail) {
                     if (tracing) tracer.on_lookup(sha, endpoint, ms, detail);
                   });
  for (const auto& a : analysis.take_alerts()) raise_loud(a);

  // Retrospective verdicts (control/retrospective.h): the sightings, built from the records on the
  // loop and written by the pool; the heartbeat; reports as `retrospective` events and alerts.
  control::Retrospective retro(cfg, loop, reputation.writable_cache(),
                               {[&](const std::string& type, control::Json body) { emit(type, body); }, raise_alert,
                                [&](std::function<void()> fn) { after_batch.push_back(std::move(fn)); }});
  for (const auto& a : retro.take_alerts()) raise_loud(a);

  // The management API (control/management.h, routes in control/api_routes.h), on the loop.
  int exit_code = 0;
  const auto uptime_s = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  // Metrics (control/metrics.h): one collection, taken on the loop, for GET /metrics and for DPDK
  // telemetry's /sluice/... commands (asked on DPDK's telemetry thread).
  control::MetricsFeed metrics(loop.io(), [&] {
    return control::collect_metrics(dp->stats(), {{"reputation", reputation.stats()}, {"analysis", analysis.stats()}},
                                    uptime_s());
  });
  dataplane::Telemetry telemetry(control::telemetry_commands(),
                                 [&](const std::string& cmd, const std::string& params) { return metrics.telemetry(cmd, params); });
  if (!telemetry.error().empty()) std::fprintf(stderr, "sluiced: %s\n", telemetry.error().c_str());
  // Set once the pieces they use exist (below).
  std::function<control::Json()> counters;
  std::function<control::Json()> reload_now;
  std::function<void()> endpoints_changed;
  control::Management management(
      loop.io(), cfg.management, cfg.state_dir,
      control::api_routes(
          {loop, cfg, reputation, analysis, retro, alert_log,
           [&] {
             const auto snap = dp->stats();
             control::Json lcores = control::Json::array(), ports = control::Json::array();
             for (const auto& l : snap.lcores) lcores.push_back({{"lcore", l.lcore}, {"role", l.role}});
             for (const auto& p : snap.ports)
               ports.push_back({{"name", p.name}, {"device", p.device}, {"link_up", p.link_up},
                                {"link_speed_mbps", p.link_speed_mbps}, {"rx_packets", p.rx_packets},
                                {"tx_packets", p.tx_packets}});
             return control::Json{{"mode", dataplane::mode_name(cfg.dataplane.mode)}, {"version", SLUICE_VERSION},
                                  {"appliance", cfg.sightings.appliance}, {"uptime_s", uptime_s()},
                                  {"lcores", std::move(lcores)}, {"ports", std::move(ports)}};
           },
           [&] { return counters(); },
           [&] { return control::prometheus_text(metrics.collect()); },
           [&](const std::string& yaml) {
             auto r = control::compare_config(cfg, control::load_config_text(yaml, "posted configuration", ov),
                                              "posted configuration");
             if (!r.config) return control::Json{{"valid", false}, {"error", r.error}};
             return control::Json{{"valid", true}, {"changed", r.changed}};
           },
           [&] { return reload_now(); },
           [&] { if (endpoints_changed) endpoints_changed(); },
           raise_alert,
           [&](unsigned window_s) {
             control::Json r{{"generated_at", control::rfc3339(now_us())}, {"uptime_s", uptime_s()},
                             {"mode", dataplane::mode_name(cfg.dataplane.mode)}};
             r.update(report.report(now_us() / 1000, window_s));
             r["analysis"] = control::ReportCollector::analysis_summary(analysis.stats());
             return r;
           }}));
  if (const std::string e = management.start(); !e.empty()) {
    // Stopped as after a signal: the parts already running end in order.
    std::fprintf(stderr, "sluiced: %s\n", e.c_str());
    exit_code = 1;
    stop_signal = SIGTERM;
    begin_stop();
  } else if (!management.summary().empty()) {
    std::fprintf(human, "sluiced: %s\n", management.summary().c_str());
    std::fflush(human);
  }
  loop.on_signals({SIGUSR1}, [&](int) { retro.heartbeat_now(); });

  // Records are rendered on the loop into a batch; the batch is written by the ordered pool.
  control::EventRenderer renderer;
  renderer.set_endpoint_names(reputation.endpoint_names());
  tracer.set_endpoint_names(reputation.endpoint_names());
  endpoints_changed = [&] {
    renderer.set_endpoint_names(reputation.endpoint_names());
    tracer.set_endpoint_names(reputation.endpoint_names());
  };
  uint64_t unrenderable = 0;
  auto render = [&](const void* record, std::size_t size) {
    const std::string_view line = renderer.render(record, size);
    if (line.empty()) return void(++unrenderable);
    batch.append(line).push_back('\n');
    if (tracing) tracer.on_record(record, size, trace_batch);
    report.on_record(record, size, now_us() / 1000);
    analysis.on_record(record, size);  // may render a final verdict: after this line is taken
    retro.on_record(record, size);
  };
  auto write_batch = [&] {
    if (batch.empty() && after_batch.empty() && trace_batch.empty()) return;
    auto lines = std::make_shared<std::string>(std::move(batch));
    auto after = std::make_shared<std::vector<std::function<void()>>>(std::move(after_batch));
    auto traces = std::make_shared<std::string>(std::move(trace_batch));
    batch.clear();
    after_batch.clear();
    trace_batch.clear();
    if (!loop.submit_ordered([&events, &trace_log, &loop, &written_mutex, &written, &run_written, lines, after, traces] {
          if (!lines->empty()) {
            events->write_block(*lines);
            events->flush();
          }
          trace_log.write_block(*traces);
          if (after->empty()) return;
          {
            std::lock_guard<std::mutex> lock(written_mutex);
            for (auto& fn : *after) written.push_back(std::move(fn));
          }
          loop.post(run_written);  // or, once the loop has stopped, at exit
        })) {  // the pool is full: the next millisecond
      batch = std::move(*lines);
      after_batch = std::move(*after);
      trace_batch = std::move(*traces);
    }
  };
  analysis.start(dp->lookup_lanes(), reputation.writable_cache(),
                 {[&](const std::string& type, control::Json body, const records::FlowIdentity* flow) {
                    emit(type, body, flow);
                    if (type == "analysis" && body.value("status", "") == "complete" && !body.contains("failed"))
                      retro.learned(body.value("sha256", ""), body.value("disposition", ""));
                  },
                  [&](const records::VerdictRecord& v) {
                    // Through the batch, so that it follows the lines already rendered.
                    const std::string_view line = renderer.render(&v, sizeof v);
                    if (!line.empty()) batch.append(line).push_back('\n');
                    if (tracing) tracer.on_record(&v, sizeof v, trace_batch);
                  },
                  raise_loud,
                  [&]() -> const pipeline::VerdictPolicy& { return cfg.dataplane.verdicts.policy; },
                  [&](const records::FlowIdentity& flow, uint64_t transaction, const std::string& id,
                      const std::string& why) {
                    if (tracing) tracer.on_quarantine(flow, transaction, id, why, trace_batch);
                  },
                  [&](const std::string& sha, const std::string& endpoint, const std::string& state,
                      const std::string& err, double ms) {
                    if (tracing) tracer.on_poll(sha, endpoint, state, err, ms, trace_batch);
                  }});
  std::chrono::steady_clock::time_point replay_end{};
  // Every millisecond: move what the lcores wrote. While the writer is behind (disk slower than
  // the lcores), the rings are left to fill: the lcores count what they cannot push.
  loop.every(std::chrono::milliseconds(1), [&] {
    // Look-ups first: answers reach the lcores a millisecond sooner.
    reputation.poll();
    analysis.poll();
    // Drain until the rings are empty (lcores may produce a burst: every message of a link
    // ending at once), a batch at most kBatchBytes.
    if (loop.jobs_pending() < kMaxPendingJobs / 2) {
      while (dp->drain_events(render) && batch.size() < kBatchBytes) {
      }
      write_batch();
    }
    if (stop_signal && dp->stop_progress()) loop.stop();
    if (dp->finished()) {
      // A replay may wait for the analyses it started (replay.wait_analysis_s).
      const auto now = std::chrono::steady_clock::now();
      if (replay_end == std::chrono::steady_clock::time_point{}) replay_end = now;
      // ... and for its start-up heartbeat and the notifications it raised
      // (retrospective.replay_wait_s).
      const bool analysed = !analysis.unfinished() || now - replay_end >= std::chrono::seconds(cfg.analysis.replay_wait_s);
      const bool heard = (retro.startup_done() && retro.idle() && notifier.idle()) ||
                         now - replay_end >= std::chrono::seconds(cfg.retrospective.replay_wait_s);
      if (stop_signal || (analysed && heard)) loop.stop();
    }
    return true;
  });
  retro.start();
  if (reputation.enabled() && cfg.reputation.cache_save_interval_s)
    loop.every(std::chrono::seconds(cfg.reputation.cache_save_interval_s), [&] {
      reputation.save_in_pool();
      return true;
    });
  // Records lost to a full event ring are the operator's to act on: one alert per second at most.
  uint64_t lost_reported = 0;
  std::vector<uint64_t> emergency_seen;  // per lcore: emergency_entered already alerted, and whether in force
  std::vector<bool> emergency_on;
  std::vector<uint64_t> watchdog_seen;  // per lcore: enforce.watchdog_trips already alerted
  std::vector<bool> fail_open_on;
  auto check_lost = [&] {
    uint64_t lost = 0;
    const auto snapshot = dp->stats();
    emergency_seen.resize(snapshot.lcores.size(), 0);
    emergency_on.resize(snapshot.lcores.size(), false);
    watchdog_seen.resize(snapshot.lcores.size(), 0);
    fail_open_on.resize(snapshot.lcores.size(), false);
    for (std::size_t i = 0; i < snapshot.lcores.size(); ++i) {
      const auto& l = snapshot.lcores[i];
      lost += l.events_dropped;
      if (l.role != "rx") continue;
      if (l.enforcing && (l.enforce.watchdog_trips > watchdog_seen[i] || (l.enforce.fail_open != 0) != fail_open_on[i])) {
        const bool on = l.enforce.fail_open != 0;
        const std::string lc = "RX lcore " + std::to_string(l.lcore);
        control::Alert a = l.enforce.watchdog_trips > watchdog_seen[i]
            ? control::Alert{"enforcement_fail_open", control::Severity::critical,
                             lc + ": no worker result for enforce.watchdog_ms while files waited: every held message "
                                  "was let through (" + std::to_string(l.enforce.watchdog_released) +
                                  " so far) and messages pass unheld until the workers answer again; check the "
                                  "worker lcores",
                             std::nullopt, ""}
            : control::Alert{"enforcement_resumed", control::Severity::info,
                             lc + ": worker results flow again; messages are held for their verdicts again",
                             std::nullopt, ""};
        raise_alert(a);
        watchdog_seen[i] = l.enforce.watchdog_trips;
        fail_open_on[i] = on;
      }
      const auto& r = l.reassembly;
      const bool on = r.emergency != 0;
      if (r.emergency_entered > emergency_seen[i] || on != emergency_on[i]) {
        const std::string lc = "RX lcore " + std::to_string(l.lcore);
        control::Alert a = on || r.emergency_entered > emergency_seen[i]
            ? control::Alert{"flow_emergency", control::Severity::warning,
                             lc + ": the flow table or the session pool is full of active flows (" +
                                 std::to_string(r.sessions_active) + " sessions in use); emergency timeouts "
                                 "(reassembly.emergency_*) are in force; new connections may go uninspected "
                                 "(sessions_pool_full, flows_table_full): raise reassembly.max_flows or max_sessions",
                             std::nullopt, ""}
            : control::Alert{"flow_emergency_over", control::Severity::info,
                             lc + ": flow table and session pool back below reassembly.emergency_recovery_percent; "
                                  "normal timeouts again",
                             std::nullopt, ""};
        raise_alert(a);
        emergency_seen[i] = r.emergency_entered;
        emergency_on[i] = on;
      }
    }
    if (lost > lost_reported) {
      control::Alert a{"events_lost", control::Severity::warning,
                       std::to_string(lost - lost_reported) + " event records lost (" + std::to_string(lost) +
                           " in all): an RX lcore's event ring was full; raise events.ring_kb or check that "
                           "events.path keeps up", std::nullopt, ""};
      raise_alert(a);
      lost_reported = lost;
    }
    return true;
  };
  loop.every(std::chrono::seconds(1), check_lost);
  loop.every(std::chrono::seconds(1), [&] {
    {
      uint64_t rx_bytes = 0, rx_packets = 0;
      for (const auto& p : dp->stats().ports) {
        rx_bytes += p.rx_bytes;
        rx_packets += p.rx_packets;
      }
      report.sample_ports(rx_bytes, rx_packets, now_us() / 1000);
    }
    analysis.tick();
    return true;
  });
  auto next_stats = t0 + std::chrono::seconds(cfg.stats_interval_s);
  // The `stats` event: the data plane's counters, and reputation's when it runs.
  auto stats_body = [&](const dataplane::StatsSnapshot& snapshot) {
    auto body = control::stats_json(snapshot);
    if (reputation.enabled()) body["reputation"] = reputation.stats();
    if (analysis.enabled()) body["analysis"] = analysis.stats();
    if (retro.recording()) body["sightings"] = retro.sightings_stats();
    body["retrospective"] = retro.stats();
    if (const auto n = notifier.stats(); !n.empty()) body["notifications"] = n;
    if (tracing)
      body["trace"] = {{"lines", trace_log.lines()}, {"rotations", trace_log.rotations()},
                       {"write_errors", trace_log.write_errors()}};
    return body;
  };
  counters = [&] { return stats_body(dp->stats()); };
  // A configuration snapshot not yet acknowledged by every lcore: generation 1 at start (every
  // lcore proves it answers its control channel), then one per reload. The loop never waits for
  // the answers: the 100 ms timer below collects them, and an lcore silent for 2 s is an alert (a
  // replay may already have ended: its lcores have exited, which is not one).
  uint64_t generation = 0;
  std::vector<bool> snapshot_answered;
  std::chrono::steady_clock::time_point snapshot_deadline{};
  auto send_snapshot = [&] {
    ++generation;
    // The actions (actions.*) travel in the snapshot.
    auto rq = dataplane::snapshot_request(std::make_shared<const dataplane::LcoreSnapshot>(
        dataplane::LcoreSnapshot{generation, cfg.dataplane.verdicts.policy}));
    dp->channels().broadcast(rq);
    snapshot_answered.assign(dp->channels().lcores(), false);
    snapshot_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  };
  send_snapshot();
  loop.every(std::chrono::milliseconds(100), [&] {
    const auto now = std::chrono::steady_clock::now();
    if (cfg.stats_interval_s && now >= next_stats) {
      auto body = stats_body(dp->stats());
      emit("stats", body);
      next_stats += std::chrono::seconds(cfg.stats_interval_s);
    }
    dp->channels().poll([&](unsigned lcore, const dataplane::Response& rs) {
      if (rs.type == dataplane::RequestType::config_snapshot && lcore < snapshot_answered.size())
        snapshot_answered[lcore] = true;
    });
    if (!snapshot_answered.empty() &&
        (now >= snapshot_deadline || std::all_of(snapshot_answered.begin(), snapshot_answered.end(), [](bool b) { return b; }))) {
      for (std::size_t k = 0; k < snapshot_answered.size(); ++k)
        if (!snapshot_answered[k] && !dp->finished()) {
          control::Alert a{"lcore_unresponsive", control::Severity::critical,
                           "lcore channel " + std::to_string(k) + " did not take configuration snapshot " +
                               std::to_string(generation) + " within 2 s", std::nullopt, ""};
          raise_loud(a);
        }
      snapshot_answered.clear();
    }
    return true;
  });

  // SIGHUP: the file is read again as at start, with the same command-line overrides. A file
  // that is invalid, or that changes a key that cannot change at run time, is refused with its
  // one-line error and changes nothing; otherwise the new configuration replaces the running one,
  // the reloadable keys that changed are applied, and every lcore gets the next snapshot.
  reload_now = [&]() -> control::Json {
    auto r = control::reload_config(cfg, config_path, ov);
    if (!r.config) {
      std::fprintf(stderr, "sluiced: %s\n", r.error.c_str());
      control::Alert a{"config_reload_refused", control::Severity::warning,
                       r.error + "; the running configuration stays", std::nullopt, ""};
      raise_alert(a);
      return {{"reloaded", false}, {"error", r.error}};
    }
    cfg = std::move(*r.config);
    std::string list;
    for (const auto& key : r.changed) {
      list += (list.empty() ? "" : ", ") + key;
      if (key == "stats.interval_s") next_stats = std::chrono::steady_clock::now() + std::chrono::seconds(cfg.stats_interval_s);
    }
    // The events file is opened again at every reload, changed or not: log rotation renames it and
    // sends SIGHUP. Opened by the pool, in order: every line written before the reload goes to the
    // old output, every later one to the new. If it cannot be opened the old one stays.
    if (cfg.events_path != "-" || std::find(r.changed.begin(), r.changed.end(), "events.path") != r.changed.end())
      loop.submit_ordered([&events, path = cfg.events_path] {
        auto next = std::make_unique<control::EventWriter>();
        std::string why;
        if (!next->open(path, why)) {
          std::fprintf(stderr, "sluiced: reload: %s; events stay where they were\n", why.c_str());
          return;
        }
        events->flush();
        events = std::move(next);
      });
    send_snapshot();
    human = cfg.events_path == "-" ? stderr : stdout;
    std::fprintf(human, "sluiced: reloaded %s: %s\n", config_path.empty() ? "(no file)" : config_path.c_str(),
                 list.empty() ? "no change" : ("changed " + list).c_str());
    std::fflush(human);
    return {{"reloaded", true}, {"changed", r.changed}};
  };
  reload = [&] { reload_now(); };
  loop.run();
  // The loop no longer runs: what the channels still hold is dropped (counted), a mail under way
  // gives up; alerts from here on go to the events only.
  notifier.stop();

  // The lcores report their open flows on the way out (reason `shutdown`), within
  // dataplane.stop_timeout_ms; what they could not report is counted. The loop no longer runs,
  // but the pool does: full batches go to the writer on the way. The writer finishes before the
  // last stats.
  if (!stop_signal) dropped_before_stop = events_dropped();  // end of replay: the stop starts here
  const auto stopped = dp->stop([&](const void* record, std::size_t size) {
    render(record, size);
    if (batch.size() >= kBatchBytes && loop.jobs_pending() < kMaxPendingJobs) write_batch();
  });
  write_batch();
  check_lost();
  // The run ends here; writing the verdict cache to disk (a sync) is not part of it.
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  analysis.stop();
  reputation.stop();
  reputation.save_now();
  management.stop();
  retro.stop_jobs();  // its store jobs from here on run in finish(), on this thread
  loop.drain_pool();
  if (!batch.empty()) {  // lines the pool refused at the end, or raised since (the pool is idle)
    events->write_block(batch);
    events->flush();
    batch.clear();
  }
  trace_log.write_block(trace_batch);
  trace_batch.clear();
  run_written();
  for (auto& fn : after_batch) fn();  // their lines are written just above
  after_batch.clear();
  retro.finish();  // the last store jobs and sightings, here
  const auto snapshot = dp->stats();
  auto body = stats_body(snapshot);
  body["reason"] = stop_signal == SIGINT ? "sigint" : stop_signal == SIGTERM ? "sigterm" : "end_of_replay";
  body["uptime_s"] = secs;
  if (stop_signal) {
    uint64_t flows = 0, messages = 0;
    for (const auto& l : snapshot.lcores) {
      flows += l.reassembly.flows_unflushed;
      messages += l.reassembly.messages_unflushed;
    }
    const uint64_t lost = events_dropped() - dropped_before_stop;
    body["shutdown"] = {{"timeout_ms", cfg.dataplane.stop_timeout_ms}, {"ms", stopped.ms},
                        {"deadline_reached", stopped.deadline_reached}, {"flows_unflushed", flows},
                        {"messages_unflushed", messages}, {"events_dropped", lost}};
    if (flows || messages || lost) {
      control::Alert a{"stop_incomplete", control::Severity::warning,
                       "the stop did not report everything within dataplane.stop_timeout_ms (" +
                           std::to_string(cfg.dataplane.stop_timeout_ms) + " ms): " + std::to_string(flows) +
                           " flows and " + std::to_string(messages) + " messages left unreported, " +
                           std::to_string(lost) + " event records lost; raise dataplane.stop_timeout_ms (or events.ring_kb)",
                       std::nullopt, ""};
      events->write("alert", control::alert_body(a));
      std::fprintf(stderr, "sluiced: %s\n", a.message.c_str());
    }
  }
  events->write("stats", body);
  if (unrenderable) std::fprintf(stderr, "sluiced: %llu event records could not be rendered\n", (unsigned long long)unrenderable);
  print_stats(human, snapshot, secs);
  dp.reset();  // closes the ports: the output pcap is complete
  dataplane::eal_cleanup();  // and DPDK's runtime directory and hugepage files go
  if (!cfg.replay_output.empty()) {
    const auto link_type = control::pcap_link_type(cfg.replay_input);
    if (link_type && *link_type != 1 && !control::set_pcap_link_type(cfg.replay_output, *link_type))
      std::fprintf(stderr, "sluiced: could not set link type %u on %s\n", *link_type, cfg.replay_output.c_str());
  }
  return exit_code;
}
