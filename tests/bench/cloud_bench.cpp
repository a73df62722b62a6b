// Load generator for sluice-cloud (scripts/bench-cloud): K keep-alive connections, each a thread
// with a synchronous Beast client sending requests back to back, for a fixed time after a warm-up.
// Mode `batch`: POST /api/v1/files/lookup with B random hashes of which a share is known (set
// malicious first through the admin API); mode `single`: GET /api/v1/files/{sha256}. Prints
// requests and look-ups per second and the latency of a request (p50, p99, max), and checks every
// answer (status 200, and the number of malicious files in each batch against what was sent).
//
// Mode `api` measures the same batches without sockets: a Store in --data DIR and the Api called
// in this process, one thread (what the server's loop spends per batch besides HTTP and TCP).
//
// Usage: cloud_bench --port P [--host 127.0.0.1] [--key K] [--admin-key A] [--mode batch|single]
//                    [--connections 4] [--batch 100] [--known 1000] [--known-share 0.1]
//                    [--seconds 5] [--warmup 1] [--server-pid PID]
//        cloud_bench --mode api --data DIR [--batch 100] [--seconds 5]
// With --server-pid, also the server's CPU time per request (from /proc/PID/stat), which the noise
// of a shared machine disturbs less than the rates.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/program_options.hpp>

#include "control/cloud/api.h"
#include "control/cloud/faults.h"
#include "control/cloud/store.h"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace po = boost::program_options;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

std::string random_hash(std::mt19937_64& rng) {
  static const char digits[] = "0123456789abcdef";
  std::string s(64, '0');
  for (int i = 0; i < 64; i += 16) {
    uint64_t v = rng();
    for (int k = 0; k < 16; ++k, v >>= 4) s[i + k] = digits[v & 15];
  }
  return s;
}

struct Client {
  asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;
  std::string host;

  Client(const std::string& h, const std::string& port) : host(h) {
    tcp::resolver r(io);
    stream.connect(r.resolve(h, port));
    stream.socket().set_option(tcp::no_delay(true));
  }

  http::response<http::string_body> send(http::verb method, const std::string& target, const std::string& key,
                                         std::string body) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, host);
    if (!key.empty()) req.set("x-apikey", key);
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = std::move(body);
      req.prepare_payload();
    }
    http::write(stream, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(stream, buffer, parser);
    return parser.release();
  }
};

struct Worker {
  std::vector<double> latencies_us;
  uint64_t requests = 0, lookups = 0, errors = 0;
};

// utime + stime of a process, in seconds (0 if unreadable).
double cpu_seconds(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!pid || !std::getline(f, line)) return 0;
  std::istringstream rest(line.substr(line.rfind(')') + 2));  // after "pid (comm) "
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

}  // namespace

// --mode api: batches through Api::handle in this process, for `seconds`.
int run_api(const std::string& dir, unsigned batch, unsigned known, double known_share, double seconds) {
  using namespace sluice::cloud;
  Store store(dir);
  Faults faults;
  Api api(ApiConfig{}, store, faults);
  std::mt19937_64 rng(42);
  std::vector<std::string> known_hashes;
  for (unsigned i = 0; i < known; ++i) {
    known_hashes.push_back(random_hash(rng));
    Sha256 h;
    parse_sha256(known_hashes.back(), h);
    store.set(h, Disposition::malicious, "Bench.Known", std::nullopt, 0);
  }
  std::uniform_real_distribution<double> coin(0, 1);
  std::vector<std::string> bodies;
  for (int b = 0; b < 256; ++b) {  // made beforehand: only the Api is timed
    std::string body = "{\"hashes\":[";
    for (unsigned i = 0; i < batch; ++i)
      body += (i ? ",\"" : "\"") +
              (!known_hashes.empty() && coin(rng) < known_share ? known_hashes[rng() % known_hashes.size()]
                                                               : random_hash(rng)) +
              "\"";
    bodies.push_back(body + "]}");
  }
  uint64_t n = 0, errors = 0;
  auto thread_cpu = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  };
  const double cpu0 = thread_cpu();
  const auto start = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - start).count() < seconds) {
    ApiRequest r;
    r.method = "POST";
    r.target = "/api/v1/files/lookup";
    r.body = bodies[n % bodies.size()];
    errors += api.handle(r).status != 200;
    ++n;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = thread_cpu() - cpu0;
  // Per CPU second: what one core does when nothing else wants it (the machine may be shared).
  std::printf("api    x%-4u in process: %7.0f batches/s, %8.0f look-ups/s per CPU second, %.1f us CPU per batch "
              "(wall clock: %.0f batches/s), errors %llu\n",
              batch, n / cpu, n * batch / cpu, cpu / n * 1e6, n / elapsed, static_cast<unsigned long long>(errors));
  return errors ? 1 : 0;
}

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", port, key, admin_key, mode = "batch", data;
  unsigned connections = 4, batch = 100, known = 1000;
  int server_pid = 0;
  double known_share = 0.1, seconds = 5, warmup = 1;
  po::options_description desc("cloud_bench");
  desc.add_options()("help", "help")("host", po::value(&host))("port", po::value(&port))(
      "key", po::value(&key))("admin-key", po::value(&admin_key))("mode", po::value(&mode))(
      "connections", po::value(&connections))("batch", po::value(&batch))("known", po::value(&known))(
      "known-share", po::value(&known_share))("seconds", po::value(&seconds))("warmup", po::value(&warmup))(
      "server-pid", po::value(&server_pid))("data", po::value(&data));
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << desc;
      return 0;
    }
    po::notify(vm);
    if (mode == "api" ? data.empty() : port.empty()) throw std::runtime_error("--port P (or --mode api --data DIR)");
    if (mode != "batch" && mode != "single" && mode != "api") throw std::runtime_error("--mode batch|single|api");
    if (connections == 0 || batch == 0 || batch > 1000) throw std::runtime_error("bad --connections or --batch");
  } catch (const std::exception& e) {
    std::cerr << "cloud_bench: " << e.what() << "\n";
    return 2;
  }

  if (mode == "api") return run_api(data, batch, known, known_share, seconds);

  // The known hashes: malicious in the store (set once; setting them again changes nothing).
  std::mt19937_64 seed_rng(42);
  std::vector<std::string> known_hashes;
  for (unsigned i = 0; i < known; ++i) known_hashes.push_back(random_hash(seed_rng));
  if (!admin_key.empty()) {
    Client c(host, port);
    for (const auto& h : known_hashes) {
      auto r = c.send(http::verb::put, "/api/v1/admin/files/" + h, admin_key,
                      R"({"disposition":"malicious","threat_name":"Bench.Known"})");
      if (r.result_int() != 200) {
        std::cerr << "cloud_bench: seeding failed: " << r.result_int() << " " << r.body() << "\n";
        return 1;
      }
    }
  } else {
    known_hashes.clear();
  }

  std::atomic<bool> measuring{false}, done{false};
  std::vector<Worker> workers(connections);
  std::vector<std::thread> threads;
  for (unsigned w = 0; w < connections; ++w) {
    threads.emplace_back([&, w] {
      Worker& me = workers[w];
      std::mt19937_64 rng(1000 + w);
      std::uniform_real_distribution<double> coin(0, 1);
      try {
        Client c(host, port);
        while (!done.load(std::memory_order_relaxed)) {
          unsigned expect_malicious = 0;
          auto pick = [&] {
            if (!known_hashes.empty() && coin(rng) < known_share) {
              ++expect_malicious;
              return known_hashes[rng() % known_hashes.size()];
            }
            return random_hash(rng);
          };
          http::verb verb;
          std::string target, body;
          unsigned n;
          if (mode == "batch") {
            verb = http::verb::post;
            target = "/api/v1/files/lookup";
            body = "{\"hashes\":[";
            for (unsigned i = 0; i < batch; ++i) body += (i ? ",\"" : "\"") + pick() + "\"";
            body += "]}";
            n = batch;
          } else {
            verb = http::verb::get;
            target = "/api/v1/files/" + pick();
            n = 1;
          }
          const auto t0 = Clock::now();
          auto r = c.send(verb, target, key, std::move(body));
          const auto t1 = Clock::now();
          unsigned malicious = 0;
          for (std::size_t p = 0; (p = r.body().find("\"malicious\"", p)) != std::string::npos; ++p) ++malicious;
          const bool ok = r.result_int() == 200 && malicious == expect_malicious;
          if (measuring.load(std::memory_order_relaxed)) {
            ++me.requests;
            me.lookups += n;
            me.errors += !ok;
            me.latencies_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
          }
        }
      } catch (const std::exception& e) {
        std::cerr << "cloud_bench: connection " << w << ": " << e.what() << "\n";
        ++me.errors;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
  const double cpu0 = cpu_seconds(server_pid);
  measuring = true;
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  measuring = false;
  const double server_cpu = cpu_seconds(server_pid) - cpu0;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  done = true;
  for (auto& t : threads) t.join();

  uint64_t requests = 0, lookups = 0, errors = 0;
  std::vector<double> lat;
  for (auto& w : workers) {
    requests += w.requests;
    lookups += w.lookups;
    errors += w.errors;
    lat.insert(lat.end(), w.latencies_us.begin(), w.latencies_us.end());
  }
  const double p50 = percentile(lat, 0.50), p99 = percentile(lat, 0.99);
  const double mx = lat.empty() ? 0 : *std::max_element(lat.begin(), lat.end());
  std::printf("%-6s x%-4u %2u conn: %7.0f requests/s, %7.0f look-ups/s, latency p50 %.3f ms, p99 %.3f ms, "
              "max %.1f ms, errors %llu",
              mode.c_str(), mode == "batch" ? batch : 1, connections, requests / elapsed, lookups / elapsed, p50 / 1000,
              p99 / 1000, mx / 1000, static_cast<unsigned long long>(errors));
  if (server_pid && requests)
    std::printf(", server CPU %.1f us/request (%.0f%% of a core)", server_cpu / requests * 1e6,
                server_cpu / elapsed * 100);
  std::printf("\n");
  return errors ? 1 : 0;
}
