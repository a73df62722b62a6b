// Quarantine writes per second with sync (control/quarantine_store): put() of 50 KiB and 1 MiB
// messages for SECONDS each into a fresh store under DIR (which must be on the disk to measure, not
// a tmpfs), with the latency of each put, then release() of every entry, a reopen (which reads and
// hashes every message; the files are still in the page cache), and expire() of everything; next
// to it, the disk's floor: one plain file of the same size written, fsynced, renamed and its
// directory fsynced, as often as possible for the same time. Also the submission store's add() and
// update(), one transaction each. Figures: docs/benchmarks.md.
//
//   bench_quarantine [DIR] [SECONDS]     (defaults: ./quarantine-bench, 5)
#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "control/quarantine_store.h"
#include "control/submission_store.h"

using namespace sluice::control;
using Clock = std::chrono::steady_clock;

namespace {

std::string sha256_hex(std::string_view data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += hex[d[i] >> 4];
    s += hex[d[i] & 15];
  }
  return s;
}

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

// The floor on this disk: one file of `size` bytes written, fsynced, renamed and its directory
// fsynced, as often as possible for `seconds`; files per second.
double baseline(const std::string& dir, std::size_t size, double seconds) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  const std::string data(size, 'x');
  std::size_t n = 0;
  const auto start = Clock::now();
  while (ms_since(start) < seconds * 1000) {
    const std::string name = dir + "/" + std::to_string(n), tmp = name + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0 || ::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size()) || fsync(fd) != 0) std::exit(1);
    ::close(fd);
    if (std::rename(tmp.c_str(), name.c_str()) != 0 || fsync(dfd) != 0) std::exit(1);
    ++n;
  }
  const double rate = static_cast<double>(n) / (ms_since(start) / 1000);
  ::close(dfd);
  std::filesystem::remove_all(dir);
  return rate;
}

void bench_size(const std::string& dir, std::size_t size, double seconds) {
  std::filesystem::remove_all(dir);
  QuarantineLimits limits;
  limits.max_mb = 1 << 20;
  limits.max_messages = 10'000'000;
  QuarantineOpen o = QuarantineStore::open(dir, limits);
  if (!o.store) {
    std::fprintf(stderr, "%s\n", o.error.c_str());
    std::exit(1);
  }
  // 16 different messages, reused: put() hashes each one anyway.
  std::mt19937 rng(static_cast<unsigned>(size));
  std::vector<std::string> msgs(16);
  std::vector<QuarantineEntry> entries(16);
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    msgs[i] = "From: bench@example.org\r\nSubject: bench\r\n\r\n";
    while (msgs[i].size() < size) msgs[i].push_back(static_cast<char>('A' + rng() % 26));
    QuarantineEntry& e = entries[i];
    e.message_sha256 = sha256_hex(msgs[i]);
    e.client_ip = "192.0.2.1";
    e.server_ip = "192.0.2.25";
    e.server_port = 25;
    e.mail_from = "bench@example.org";
    e.rcpt_to = {"a@example.net"};
    e.subject = "bench";
    e.files.push_back({"a.docm", std::string(64, 'a'), "unknown", "analysis_pending"});
    e.reasons = {"file_analysis"};
  }
  std::vector<double> lat;
  std::vector<std::string> ids;
  const auto start = Clock::now();
  int64_t now_ms = 1'800'000'000'000;
  while (ms_since(start) < seconds * 1000) {
    const std::size_t i = ids.size() % msgs.size();
    const auto t = Clock::now();
    const QuarantinePut r = o.store->put(entries[i], msgs[i], ++now_ms);
    lat.push_back(ms_since(t));
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.message.c_str());
      std::exit(1);
    }
    ids.push_back(r.id);
  }
  const double put_s = ms_since(start) / 1000;
  const auto rel = Clock::now();
  for (const auto& id : ids) o.store->release(id, "pass", "bench", "", now_ms);
  const double rel_s = ms_since(rel) / 1000;
  o.store.reset();
  const auto reopen = Clock::now();
  QuarantineOpen again = QuarantineStore::open(dir, limits);
  const double reopen_ms = ms_since(reopen);
  const auto exp = Clock::now();
  const auto gone = again.store->expire(now_ms + 400LL * 86'400'000);
  const double expire_ms = ms_since(exp);
  const double n = static_cast<double>(ids.size());
  const double floor = baseline(dir + "-baseline", size, seconds);
  std::printf("| %zu KiB | %zu | %.0f | %.0f | %.1f | %.1f / %.1f | %.0f | %.0f ms (%.0f MB) | %.0f ms |\n", size >> 10,
              ids.size(), n / put_s, floor, n * static_cast<double>(size) / put_s / 1e6, percentile(lat, 0.5),
              percentile(lat, 0.99), n / rel_s, reopen_ms, n * static_cast<double>(size) / 1e6, expire_ms);
  if (again.store->stats().loaded != ids.size() || gone.size() != ids.size()) {
    std::fprintf(stderr, "reopen loaded %zu of %zu, expire removed %zu\n", static_cast<std::size_t>(again.store->stats().loaded),
                 ids.size(), gone.size());
    std::exit(1);
  }
  std::filesystem::remove_all(dir);
}

void bench_submissions(const std::string& dir, double seconds) {
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto s = SubmissionStore::open(dir + "/submissions.sqlite").store;
  std::size_t adds = 0, updates = 0;
  auto start = Clock::now();
  while (ms_since(start) < seconds * 500) {
    char sha[65];
    std::snprintf(sha, sizeof sha, "%064zx", ++adds);
    Submission x;
    x.sha256 = sha;
    x.endpoint = "lab";
    x.sample_id = std::to_string(adds);
    x.quarantine_ids = {"20270115-000000-000-00000001"};
    if (!s->add(x).ok()) std::exit(1);
  }
  const double add_s = ms_since(start) / 1000;
  start = Clock::now();
  while (ms_since(start) < seconds * 500) {
    char sha[65];
    std::snprintf(sha, sizeof sha, "%064zx", updates % adds + 1);
    if (!s->update(sha, SampleState::run, 0, static_cast<int64_t>(++updates)).ok()) std::exit(1);
  }
  const double upd_s = ms_since(start) / 1000;
  std::printf("\nsubmission store: add %.0f/s, update %.0f/s (one transaction each, WAL, synchronous=FULL)\n",
              static_cast<double>(adds) / add_s, static_cast<double>(updates) / upd_s);
  s.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = argc > 1 ? argv[1] : "quarantine-bench";
  const double seconds = argc > 2 ? std::atof(argv[2]) : 5;
  std::printf("| message | puts | puts/s | one synced file/s (floor) | MB/s | put p50 / p99 ms | releases/s | "
              "reopen (verify all) | expire all |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  bench_size(dir + "/q50k", 50 << 10, seconds);
  bench_size(dir + "/q1m", 1 << 20, seconds);
  bench_submissions(dir + "/sub", seconds);
  std::filesystem::remove_all(dir);
  return 0;
}
