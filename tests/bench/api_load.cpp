// Load generator for the management API (scripts/bench-api): THREADS threads, each one keep-alive
// HTTPS connection (Beast, synchronous) sending `GET PATH` with the bearer token in $SLUICE_TOKEN
// as fast as the answers come, for SECONDS. Every answer must be 200 (anything else is counted as
// an error and the connection made again). The certificate is not verified (a benchmark on
// loopback). Prints one line:
//
//   requests=N rps=R p50_ms=A p99_ms=B errors=E reconnects=C bytes_per_answer=S
//
//   bench_api_load HOST PORT PATH [THREADS=8] [SECONDS=5]
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

namespace {

struct Tally {
  std::vector<double> latencies_ms;
  uint64_t errors = 0, reconnects = 0, body_bytes = 0;
};

void run(const std::string& host, const std::string& port, const std::string& path, const std::string& token,
         Clock::time_point end, Tally& t) {
  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.set_verify_mode(asio::ssl::verify_none);
  asio::ip::tcp::resolver resolver(io);
  const auto addrs = resolver.resolve(host, port);
  http::request<http::empty_body> req{http::verb::get, path, 11};
  req.set(http::field::host, host);
  req.set(http::field::authorization, "Bearer " + token);
  req.keep_alive(true);
  while (Clock::now() < end) {
    beast::ssl_stream<beast::tcp_stream> s(io, ctx);
    try {
      beast::get_lowest_layer(s).connect(addrs);
      s.handshake(asio::ssl::stream_base::client);
      beast::flat_buffer buf;
      while (Clock::now() < end) {
        const auto t0 = Clock::now();
        http::write(s, req);
        http::response<http::string_body> res;
        http::read(s, buf, res);
        t.latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        t.body_bytes += res.body().size();
        if (res.result() != http::status::ok) {
          if (++t.errors <= 3) std::fprintf(stderr, "bench_api_load: %s answered %u: %.200s\n", path.c_str(),
                                            res.result_int(), res.body().c_str());
          break;
        }
        if (!res.keep_alive()) break;
      }
    } catch (const std::exception& e) {
      if (++t.errors <= 3) std::fprintf(stderr, "bench_api_load: %s\n", e.what());
    }
    beast::error_code ec;
    beast::get_lowest_layer(s).socket().close(ec);
    ++t.reconnects;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: SLUICE_TOKEN=T bench_api_load HOST PORT PATH [THREADS=8] [SECONDS=5]\n");
    return 2;
  }
  const char* token = std::getenv("SLUICE_TOKEN");
  if (!token) {
    std::fprintf(stderr, "bench_api_load: set SLUICE_TOKEN\n");
    return 2;
  }
  const int threads = argc > 4 ? std::atoi(argv[4]) : 8;
  const double seconds = argc > 5 ? std::atof(argv[5]) : 5;
  std::vector<Tally> tallies(static_cast<std::size_t>(threads));
  std::vector<std::thread> pool;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (int i = 0; i < threads; ++i)
    pool.emplace_back(run, argv[1], argv[2], argv[3], token, end, std::ref(tallies[static_cast<std::size_t>(i)]));
  for (auto& th : pool) th.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  uint64_t errors = 0, reconnects = 0, bytes = 0;
  for (const Tally& t : tallies) {
    all.insert(all.end(), t.latencies_ms.begin(), t.latencies_ms.end());
    errors += t.errors;
    reconnects += t.reconnects - 1;  // each thread's last close is not a reconnect
    bytes += t.body_bytes;
  }
  std::sort(all.begin(), all.end());
  const auto pct = [&](double p) {
    return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<std::size_t>(p * static_cast<double>(all.size())))];
  };
  std::printf("requests=%zu rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%llu reconnects=%llu bytes_per_answer=%.0f\n",
              all.size(), static_cast<double>(all.size()) / elapsed, pct(0.50), pct(0.99),
              static_cast<unsigned long long>(errors), static_cast<unsigned long long>(reconnects),
              all.empty() ? 0.0 : static_cast<double>(bytes) / static_cast<double>(all.size()));
  return errors ? 1 : 0;
}
