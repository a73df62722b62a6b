// sluice-cloud: the reference reputation service (API.md, NOTES.md). Parses the command line,
// opens the store, binds the listening socket, prints the one listening line, and runs the
// service loop on this thread until SIGTERM or SIGINT.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <csignal>
#include <exception>
#include <iostream>
#include <optional>

#include "control/cloud/analyses.h"
#include "control/cloud/analysis_engine.h"
#include "control/cloud/api.h"
#include "control/cloud/faults.h"
#include "control/cloud/scan_pool.h"
#include "control/cloud/http_server.h"
#include "control/cloud/options.h"
#include "control/cloud/store.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.0.0"
#endif

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using namespace sluice::cloud;

namespace {

// A graceful stop waits this long for answers in progress, then the loop ends anyway.
constexpr std::chrono::seconds kStopTimeout{3};

int fail(const std::string& line) {
  std::cerr << "sluice-cloud: " << line << std::endl;
  return 1;
}

// Loads the certificate chain and key; "" on success, else why not.
std::string load_tls(ssl::context& ctx, const Options& o) {
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx.use_certificate_chain_file(o.tls_cert->string(), ec);
  if (ec) return "cannot load --tls-cert " + o.tls_cert->string() + ": " + ec.message();
  ctx.use_private_key_file(o.tls_key->string(), ssl::context::pem, ec);
  if (ec) return "cannot load --tls-key " + o.tls_key->string() + ": " + ec.message();
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  const ParsedCommandLine cl = parse_command_line(argc, argv, SLUICE_VERSION);
  if (!cl.options) {
    (cl.exit_code == 0 ? std::cout : std::cerr) << cl.text << (cl.exit_code == 0 ? "" : "\n") << std::flush;
    return cl.exit_code;
  }
  const Options& o = *cl.options;
  std::signal(SIGPIPE, SIG_IGN);

  try {
    asio::io_context io(1);
    std::optional<ssl::context> tls;
    if (o.tls_cert) {
      tls.emplace(ssl::context::tls_server);
      if (std::string why = load_tls(*tls, o); !why.empty()) return fail(why);
    }
    std::optional<Store> store;
    try {
      store.emplace(o.data);
    } catch (const StoreError& e) {
      return fail(e.what());
    }

    StaticEngineConfig engine_config;
    engine_config.signatures_dir = o.signatures.string();
    engine_config.max_sample_bytes = uint64_t(o.max_sample_mb) << 20;
    std::string engine_error;
    std::unique_ptr<AnalysisEngine> engine = make_static_engine(engine_config, engine_error);
    if (!engine) return fail("the analysis engine: " + engine_error + " (--signatures)");
    ScanPool pool(io, *engine, o.analysis_threads);
    AnalysisConfig analysis;
    analysis.duration = std::chrono::seconds(o.analysis_seconds);
    analysis.malicious_score = o.malicious_score;
    analysis.max_sample_bytes = uint64_t(o.max_sample_mb) << 20;
    analysis.daily_samples = o.daily_samples;
    analysis.samples_dir = o.data / "samples";
    Analyses analyses(io, *store, pool, analysis);
    try {
      analyses.start();
    } catch (const StoreError& e) {
      return fail(e.what());
    }

    Faults faults;
    ApiConfig config;
    config.api_keys = o.api_keys;
    config.admin_key = o.admin_key;
    config.ttl = o.ttl;
    config.quota_per_minute = o.quota_per_minute;
    config.version = SLUICE_VERSION;
    Api api(config, *store, faults, {}, {}, &analyses);

    ServerLimits limits;
    limits.body_bytes = o.max_body_bytes;
    limits.max_connections = o.max_connections;
    limits.idle_timeout = std::chrono::seconds(o.idle_timeout_s);
    limits.read_timeout = std::chrono::seconds(o.read_timeout_s);

    const asio::ip::tcp::endpoint listen(asio::ip::make_address(o.host), o.port);
    std::optional<HttpServer> server;
    try {
      server.emplace(io, listen, tls ? &*tls : nullptr, api, faults, limits,
                     std::string("sluice-cloud/") + SLUICE_VERSION);
    } catch (const boost::system::system_error& e) {
      return fail("cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " + e.code().message());
    }

    // The change feed's retention: at start and every hour.
    asio::steady_timer feed_timer(io);
    std::function<void()> prune_feed = [&] {
      try {
        const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch()).count();
        store->prune_changes(now - int64_t{o.feed_retention_days} * 86400);
      } catch (const std::exception& e) {
        std::cerr << "sluice-cloud: " << e.what() << std::endl;
      }
      feed_timer.expires_after(std::chrono::hours(1));
      feed_timer.async_wait([&](const boost::system::error_code& ec) {
        if (!ec) prune_feed();
      });
    };
    prune_feed();

    asio::signal_set signals(io, SIGINT, SIGTERM);
    asio::steady_timer guard(io);
    bool stopping = false;
    std::function<void(const boost::system::error_code&, int)> on_signal = [&](const boost::system::error_code& ec, int) {
      if (ec) return;
      if (stopping) return io.stop();  // a second signal: stop now
      stopping = true;
      signals.async_wait(on_signal);
      analyses.stop();  // scans in progress finish; their results wait for the next start
      guard.expires_after(kStopTimeout);
      guard.async_wait([&](const boost::system::error_code& e) {
        if (!e) io.stop();
      });
      feed_timer.cancel();
      server->stop([&] {
        guard.cancel();
        signals.cancel();
      });
    };
    signals.async_wait(on_signal);

    server->start();
    const auto ep = server->local_endpoint();
    const std::string host = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
    std::cout << "sluice-cloud: listening on " << (tls ? "https" : "http") << "://" << host << ":" << ep.port()
              << std::endl;

    io.run();
    pool.drop();
    pool.join();  // before the analyses and the engine go
    server.reset();
    store.reset();  // checkpoints the WAL and releases the directory lock
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  return 0;
}
