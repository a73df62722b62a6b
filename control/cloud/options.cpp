#include "control/cloud/options.h"

#include <boost/asio/ip/address.hpp>
#include <boost/program_options.hpp>

#include <charconv>
#include <sstream>

namespace sluice::cloud {

namespace po = boost::program_options;

namespace {

// Set by control/cloud/CMakeLists.txt: the build's copy of pipeline/signatures and
// control/cloud/signatures. An installed service names its own with --signatures.
#ifndef SLUICE_CLOUD_SIGNATURES_DIR
#define SLUICE_CLOUD_SIGNATURES_DIR ""
#endif

constexpr const char* kUsage =
    "Usage: sluice-cloud --listen HOST:PORT --data DIR [--api-key KEY]... [--admin-key KEY]\n"
    "                    [--tls-cert FILE --tls-key FILE] [--insecure-listen] [--quota-per-minute N]\n"
    "                    [other options below]\n"
    "\n"
    "sluice-cloud, the reference file reputation and analysis service of Sluice: file look-ups (single\n"
    "and batch), an admin API to set dispositions, a change feed for retrospective verdicts, sample\n"
    "submission and static analysis (libclamav with the project's signatures and a scoring table; a\n"
    "malicious score makes the file malicious), lab fault injection. HTTP/1.1 with keep-alive, TLS with\n"
    "--tls-cert/--tls-key, store in DIR/cloud.sqlite, samples being analysed in DIR/samples/.\n"
    "API: control/cloud/API.md. On start one line goes to standard output:\n"
    "  sluice-cloud: listening on http://HOST:PORT   (https:// with TLS)\n"
    "Stops on SIGTERM or SIGINT (exit 0); analyses in progress resume at the next start.\n"
    "Exit 1: start-up error (DIR, store, TLS files, address, signatures);\n"
    "exit 2: command-line error.\n";

struct Failure {
  std::string message;
};

[[noreturn]] void fail(std::string message) { throw Failure{std::move(message)}; }

// HOST:PORT, [IPv6]:PORT; HOST an IP address or "localhost".
void parse_listen(const std::string& s, Options& o) {
  std::string host, port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':')
      fail("--listen " + s + ": expected HOST:PORT or [IPv6]:PORT");
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || s.find(':') != colon) fail("--listen " + s + ": expected HOST:PORT or [IPv6]:PORT");
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p > 65535)
    fail("--listen " + s + ": the port must be a number from 0 to 65535");
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code aec;
  auto addr = boost::asio::ip::make_address(host, aec);
  if (aec) fail("--listen " + s + ": '" + host + "' is not an IP address (or localhost)");
  o.host = addr.to_string();
  o.port = static_cast<uint16_t>(p);
  o.loopback = addr.is_loopback();
}

// 30 days: a cache told to keep an answer longer would never learn of a change.
constexpr int64_t kMaxTtl = 30 * 86400;

void range(const char* name, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi)
    fail(std::string("--") + name + " " + std::to_string(v) + ": accepted " + std::to_string(lo) + " to " +
         std::to_string(hi));
}

}  // namespace

ParsedCommandLine parse_command_line(int argc, const char* const* argv, const std::string& version) {
  Options o;
  std::string listen, data;
  // Numbers are read signed so that a negative one is named as given, then range-checked.
  int64_t quota = 0, ttl_clean = o.ttl.clean, ttl_malicious = o.ttl.malicious, ttl_unknown = o.ttl.unknown;
  int64_t max_connections = o.max_connections, max_body_kb = 1024, idle = o.idle_timeout_s, read = o.read_timeout_s;
  int64_t analysis_seconds = o.analysis_seconds, daily_samples = 0, max_sample_mb = o.max_sample_mb,
          malicious_score = o.malicious_score, analysis_threads = o.analysis_threads,
          feed_retention_days = o.feed_retention_days;
  std::string signatures = SLUICE_CLOUD_SIGNATURES_DIR;
  po::options_description desc("Options", 100, 50);
  // clang-format off
  desc.add_options()
    ("help,h", "print this help and exit")
    ("version", "print the version and exit")
    ("listen", po::value(&listen)->value_name("HOST:PORT"),
     "required. Address and port to listen on: an IP address or localhost, [IPv6]:PORT; port 0 picks a free "
     "port (the listening line says which). Plain HTTP only on a loopback address unless --insecure-listen")
    ("data", po::value(&data)->value_name("DIR"),
     "required. Data directory, created if missing; holds the store cloud.sqlite, cloud.lock (one "
     "sluice-cloud per DIR) and samples/ (the files being analysed, each removed when its analysis ends)")
    ("api-key", po::value(&o.api_keys)->value_name("KEY")->composing(),
     "a key clients may use (x-apikey header or Authorization: Bearer); repeat for several. None given: "
     "look-ups and the change feed need no key")
    ("admin-key", po::value<std::string>()->value_name("KEY"),
     "the key of the admin endpoints (/api/v1/admin/...), also accepted everywhere else. None given: admin "
     "endpoints answer 403")
    ("tls-cert", po::value<std::string>()->value_name("FILE"), "serve HTTPS with this PEM certificate chain (needs --tls-key)")
    ("tls-key", po::value<std::string>()->value_name("FILE"), "the PEM private key of --tls-cert")
    ("insecure-listen", po::bool_switch(&o.insecure_listen),
     "allow plain HTTP on a non-loopback address (keys and verdicts then cross the network in clear)")
    ("quota-per-minute", po::value(&quota)->value_name("N")->default_value(0),
     "requests per minute per key (per client address when no key is required), bursts of N; over it: "
     "429 QuotaExceededError with Retry-After. Health and admin requests are not counted. 0: no quota")
    ("ttl-clean", po::value(&ttl_clean)->value_name("S")->default_value(ttl_clean),
     "ttl_seconds suggested for clean files")
    ("ttl-malicious", po::value(&ttl_malicious)->value_name("S")->default_value(ttl_malicious),
     "ttl_seconds suggested for malicious files")
    ("ttl-unknown", po::value(&ttl_unknown)->value_name("S")->default_value(ttl_unknown),
     "ttl_seconds suggested for unknown files")
    ("max-connections", po::value(&max_connections)->value_name("N")->default_value(max_connections),
     "connections served at once; beyond, a new connection is answered 503 TransientError and closed")
    ("max-body-kb", po::value(&max_body_kb)->value_name("KB")->default_value(max_body_kb),
     "largest request body in KiB (a batch of 1000 hashes is 67 KiB); larger: 400 BadRequestError")
    ("idle-timeout", po::value(&idle)->value_name("S")->default_value(idle),
     "seconds a keep-alive connection may stay idle between requests")
    ("read-timeout", po::value(&read)->value_name("S")->default_value(read),
     "seconds a client has to send a whole request once it has started (slow clients are closed); also "
     "the TLS handshake's limit. A sample upload has one more second per 256 KiB of its size")
    ("analysis-seconds", po::value(&analysis_seconds)->value_name("N")->default_value(analysis_seconds),
     "how long an analysis takes, from submission through the states wait, prep, run, proc to succ (four "
     "equal steps; longer if the scan is slower). 0: done as soon as the scan is")
    ("daily-samples", po::value(&daily_samples)->value_name("N"),
     "samples each API key (each client address when no key is required) may submit per UTC day; over it: "
     "429 QuotaExceededError with Retry-After (seconds until 00:00 UTC). Not given: no limit")
    ("max-sample-mb", po::value(&max_sample_mb)->value_name("MB")->default_value(max_sample_mb),
     "largest sample accepted, in MiB (GET /api/v1/limits says it); larger: 413 PayloadTooLargeError")
    ("malicious-score", po::value(&malicious_score)->value_name("N")->default_value(malicious_score),
     "an analysis scoring at least N (of 100) makes the file malicious (disposition, change feed); below N "
     "the score is recorded and the disposition stays as it was")
    ("feed-retention-days", po::value(&feed_retention_days)->value_name("N")->default_value(feed_retention_days),
     "change-feed entries older than N days are dropped (at start and every hour); a consumer's cursor stays "
     "valid, its next page starts after what was dropped")
    ("signatures", po::value(&signatures)->value_name("DIR")->default_value(signatures),
     "ClamAV signature files of the analysis engine (the project's pipeline/signatures and "
     "control/cloud/signatures, copied together by the build)")
    ("analysis-threads", po::value(&analysis_threads)->value_name("N")->default_value(analysis_threads),
     "threads that scan samples (never the HTTP thread); further samples wait their turn");
  // clang-format on

  ParsedCommandLine out;
  try {
    po::variables_map vm;
    // Arguments that are not options land in "stray" and are refused by name.
    po::options_description hidden;
    hidden.add_options()("stray", po::value<std::vector<std::string>>());
    po::options_description all;
    all.add(desc).add(hidden);
    po::positional_options_description positionals;
    positionals.add("stray", -1);
    po::store(po::command_line_parser(argc, argv).options(all).positional(positionals).run(), vm);
    po::notify(vm);
    if (vm.count("help")) {
      std::ostringstream s;
      s << kUsage << "\n" << desc;
      out.text = s.str();
      return out;
    }
    if (vm.count("version")) {
      out.text = "sluice-cloud " + version + "\n";
      return out;
    }
    if (vm.count("stray")) fail("unexpected argument '" + vm["stray"].as<std::vector<std::string>>().front() + "'");
    if (listen.empty()) fail("--listen HOST:PORT is required");
    if (data.empty()) fail("--data DIR is required");
    parse_listen(listen, o);
    o.data = data;
    for (const auto& k : o.api_keys)
      if (k.empty()) fail("--api-key: a key cannot be empty");
    if (vm.count("admin-key")) {
      o.admin_key = vm["admin-key"].as<std::string>();
      if (o.admin_key->empty()) fail("--admin-key: the key cannot be empty");
    }
    if (vm.count("tls-cert")) o.tls_cert = vm["tls-cert"].as<std::string>();
    if (vm.count("tls-key")) o.tls_key = vm["tls-key"].as<std::string>();
    if (o.tls_cert.has_value() != o.tls_key.has_value()) fail("--tls-cert and --tls-key go together");
    if (!o.tls_cert && !o.loopback && !o.insecure_listen)
      fail("--listen " + listen + ": plain HTTP is served only on a loopback address; give --tls-cert and "
           "--tls-key, or --insecure-listen to serve plain HTTP there anyway");
    range("quota-per-minute", quota, 0, 1000000);
    range("ttl-clean", ttl_clean, 0, kMaxTtl);
    range("ttl-malicious", ttl_malicious, 0, kMaxTtl);
    range("ttl-unknown", ttl_unknown, 0, kMaxTtl);
    range("max-connections", max_connections, 1, 100000);
    range("max-body-kb", max_body_kb, 1, 64 * 1024);  // 64 MiB: bodies are held in memory
    range("idle-timeout", idle, 1, 3600);
    range("read-timeout", read, 1, 3600);
    range("analysis-seconds", analysis_seconds, 0, 86400);
    if (vm.count("daily-samples")) range("daily-samples", daily_samples, 1, 1000000);
    range("max-sample-mb", max_sample_mb, 1, 128);  // uploads are held in memory (8 at once)
    range("malicious-score", malicious_score, 1, 100);
    range("feed-retention-days", feed_retention_days, 1, 36500);
    range("analysis-threads", analysis_threads, 1, 64);
    if (signatures.empty()) fail("--signatures DIR is required (this build has no default)");
    o.quota_per_minute = static_cast<unsigned>(quota);
    o.ttl = Ttls{static_cast<unsigned>(ttl_clean), static_cast<unsigned>(ttl_malicious), static_cast<unsigned>(ttl_unknown)};
    o.max_connections = static_cast<unsigned>(max_connections);
    o.max_body_bytes = static_cast<std::size_t>(max_body_kb) * 1024;
    o.idle_timeout_s = static_cast<unsigned>(idle);
    o.read_timeout_s = static_cast<unsigned>(read);
    o.analysis_seconds = static_cast<unsigned>(analysis_seconds);
    o.daily_samples = static_cast<unsigned>(daily_samples);
    o.max_sample_mb = static_cast<unsigned>(max_sample_mb);
    o.malicious_score = static_cast<int>(malicious_score);
    o.analysis_threads = static_cast<unsigned>(analysis_threads);
    o.feed_retention_days = static_cast<unsigned>(feed_retention_days);
    o.signatures = signatures;
    out.options = std::move(o);
  } catch (const Failure& f) {
    out.exit_code = 2;
    out.text = "sluice-cloud: " + f.message + " (see --help)";
  } catch (const po::error& e) {
    out.exit_code = 2;
    out.text = std::string("sluice-cloud: ") + e.what() + " (see --help)";
  }
  return out;
}

}  // namespace sluice::cloud
