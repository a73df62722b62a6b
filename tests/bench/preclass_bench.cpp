// ClamAV pre-classification cost (scripts/bench-preclass): per file and per MiB on the attachments
// of a directory (tests/bench/make_preclass_inputs.py writes typical ones), then files per second
// with 1..N threads sharing one engine, as the control plane's pool would run it.
//
// Usage: bench_preclass ROUNDS DIR [TEMP_DIR] [THREADS]
//   Every round classifies every file once, in turn (a noisy machine then disturbs all files
//   alike); the figures are the median over ROUNDS of the wall time and of the thread's CPU time
//   (libclamav scans on the calling thread: CPU time leaves out waits for the disk and for the
//   other tenants of the machine). TEMP_DIR is PreclassLimits::temp_dir ("" = the default).
//   THREADS (default 2): the set's throughput with 1..THREADS threads; 0 leaves it out.
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/preclass.h"

using namespace sluice::pipeline;

namespace {

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

struct Input {
  std::string name;
  std::string data;
  std::vector<double> wall, cpu;
  PreclassResult first;
};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s.empty() ? "-" : s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s ROUNDS DIR [TEMP_DIR] [THREADS]\n", argv[0]);
    return 2;
  }
  const int rounds = std::max(1, std::atoi(argv[1]));
  const std::filesystem::path dir = argv[2];
  PreclassLimits limits;
  if (argc > 3) limits.temp_dir = argv[3];
  const int max_threads = argc > 4 ? std::max(0, std::atoi(argv[4])) : 2;

  std::string error;
  const auto t0 = std::chrono::steady_clock::now();
  auto engine = Preclassifier::create(limits, default_signatures_dir(), error);
  if (!engine) {
    std::fprintf(stderr, "bench_preclass: %s\n", error.c_str());
    return 1;
  }
  const double create_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

  std::vector<Input> inputs;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    inputs.push_back({e.path().filename().string(), std::string(std::istreambuf_iterator<char>(in), {}), {}, {}, {}});
  }
  std::sort(inputs.begin(), inputs.end(), [](const Input& a, const Input& b) { return a.data.size() < b.data.size(); });

  auto run = [&](const Input& in) {
    return engine->classify(reinterpret_cast<const uint8_t*>(in.data.data()), in.data.size(), in.name);
  };
  for (Input& in : inputs) in.first = run(in);  // warm-up round: page cache, allocator, libclamav
  for (int r = 0; r < rounds; ++r) {
    for (Input& in : inputs) {
      const double c0 = thread_cpu_ms();
      const auto w0 = std::chrono::steady_clock::now();
      const PreclassResult res = run(in);
      in.wall.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count());
      in.cpu.push_back(thread_cpu_ms() - c0);
      if (!res.error.empty()) std::fprintf(stderr, "bench_preclass: %s: %s\n", in.name.c_str(), res.error.c_str());
    }
  }

  std::printf("engine: %u signatures, created in %.0f ms; temporary directory %s; %d rounds, medians\n",
              engine->signature_count(), create_ms, engine->limits().temp_dir.empty() ? "(libclamav default)"
                                                                                      : engine->limits().temp_dir.c_str(),
              rounds);
  std::printf("| file | ClamAV type | size | reasons | wall ms | CPU ms | MiB/s (wall) |\n");
  std::printf("| --- | --- | ---: | --- | ---: | ---: | ---: |\n");
  for (const Input& in : inputs) {
    const double w = median(in.wall), c = median(in.cpu);
    const double mib = static_cast<double>(in.data.size()) / (1 << 20);
    std::printf("| %s | %s | %.0f KiB | %s | %.2f | %.2f | %.1f |\n", in.name.c_str(), in.first.clam_type.c_str(),
                static_cast<double>(in.data.size()) / 1024, join(in.first.reasons).c_str(), w, c, mib / (w / 1e3));
  }

  // Per file and per MiB: a least-squares line CPU ms = a + b * MiB through the plain-text files
  // (one content type, sizes 4 KiB..8 MiB: a is what any scan costs, b what each MiB of plain
  // bytes adds), and the whole set's sums (its mix of types: what a typical file and MiB cost).
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, set_cpu = 0, set_wall = 0, set_mib = 0;
  for (const Input& in : inputs) {
    const double mib = static_cast<double>(in.data.size()) / (1 << 20), c = median(in.cpu);
    set_cpu += c;
    set_wall += median(in.wall);
    set_mib += mib;
    if (in.first.clam_type.rfind("CL_TYPE_TEXT", 0) != 0) continue;
    n += 1;
    sx += mib;
    sy += c;
    sxx += mib * mib;
    sxy += mib * c;
  }
  if (n >= 2 && n * sxx - sx * sx > 0) {
    const double b = (n * sxy - sx * sy) / (n * sxx - sx * sx), a = (sy - b * sx) / n;
    std::printf("plain text (%.0f files): %.3f ms CPU per file + %.2f ms CPU per MiB\n", n, a, b);
  }
  std::printf("the set (%zu files, %.2f MiB): %.2f ms CPU (%.2f ms wall) per file, %.2f ms CPU (%.2f ms wall) per MiB\n",
              inputs.size(), set_mib, set_cpu / static_cast<double>(inputs.size()),
              set_wall / static_cast<double>(inputs.size()), set_cpu / set_mib, set_wall / set_mib);

  // Throughput of the whole set with 1..max_threads threads, each classifying every file `rounds`
  // times (the 8 MiB text included): files and MiB per second of wall time.
  std::size_t set_bytes = 0;
  for (const Input& in : inputs) set_bytes += in.data.size();
  for (int threads = 1; threads <= max_threads; ++threads) {
    std::atomic<int> errors{0};
    const auto w0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&] {
        for (int r = 0; r < rounds; ++r)
          for (const Input& in : inputs)
            if (!run(in).error.empty()) ++errors;
      });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    const double files = static_cast<double>(threads) * rounds * static_cast<double>(inputs.size());
    std::printf("%d thread%s: %.1f files/s, %.1f MiB/s (the set of %zu files, %d times per thread, %.2f s%s)\n",
                threads, threads > 1 ? "s" : "", files / s,
                static_cast<double>(set_bytes) * threads * rounds / (1 << 20) / s, inputs.size(), rounds, s,
                errors ? ", with errors" : "");
  }
  return 0;
}
