// Per-message traces (control/trace.h), measured: what building the lines costs the service loop
// per message, writing them, and how long a search takes over a full set of trace files.
// Usage: bench_trace DIR [MIB_PER_FILE=64] [FILES=4]
// Fills DIR/trace.log and its rotations with messages of two attachments each (parsed, 2 x file +
// lookup, verdict: 6 lines) until every file kept is full, then searches for the newest and the
// oldest message kept by reference, Message-ID and flow id + transaction.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "control/trace.h"

using namespace sluice;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

records::FlowIdentity flow(uint64_t id) {
  records::FlowIdentity f;
  f.flow_id = id;
  const uint8_t c[4] = {198, 51, 100, 1}, s[4] = {192, 0, 2, 25};
  std::memcpy(f.client_ip, c, 4);
  std::memcpy(f.server_ip, s, 4);
  return f;
}

void message(control::TraceBuilder& t, uint64_t id, std::string& out) {
  const int64_t ts = 1700000000000000 + int64_t(id) * 1000;
  for (int k = 0; k < 2; ++k) {
    records::FileRecord f;
    f.timestamp_us = ts;
    f.flow = flow(id);
    f.filename.set(k ? "invoice.pdf" : "orders.zip");
    f.size = 262144;
    f.hashed = true;
    std::memset(f.sha256, static_cast<int>((id * 2 + k) & 0xff), 32);
    std::memcpy(f.sha256, &id, sizeof id);
    f.has_message_sha256 = true;
    std::memset(f.message_sha256, 0x5a, 32);
    std::memcpy(f.message_sha256, &id, sizeof id);
    f.mime_path.set(k ? "3" : "2");
    f.verdict.reputation = records::Reputation::clean;
    f.verdict.source = records::kSourceCache;
    t.on_record(&f, sizeof f, out);
  }
  records::VerdictRecord v;
  v.timestamp_us = ts;
  v.flow = flow(id);
  v.files = 2;
  v.clean = 2;
  v.reputation = true;
  t.on_record(&v, sizeof v, out);
  records::MessageRecord m;
  m.timestamp_us = ts;
  m.flow = flow(id);
  m.mail_from.set("sender@example.org");
  const char rcpt[] = "inbox@example.net";
  std::memcpy(m.rcpts, rcpt, sizeof rcpt);
  m.rcpt_bytes = sizeof rcpt;
  m.rcpt_kept = m.rcpt_count = 1;
  m.size = 530000;
  m.has_subject = m.has_message_id = true;
  m.subject.set("Invoice for the quarter");
  m.message_id.set(("<bench-" + std::to_string(id) + "@example.org>").c_str());
  m.summary.present = true;
  m.summary.attachments = 2;
  m.server_reply = 250;
  t.on_record(&m, sizeof m, out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_trace DIR [MIB_PER_FILE=64] [FILES=4]\n");
    return 2;
  }
  control::TraceSettings s;
  s.path = std::string(argv[1]) + "/trace.log";
  s.max_file_bytes = (argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 64) << 20;
  s.max_files = argc > 3 ? static_cast<unsigned>(std::strtoul(argv[3], nullptr, 10)) : 4;
  std::filesystem::create_directories(argv[1]);
  for (unsigned k = 0; k < s.max_files + 1; ++k) std::filesystem::remove(control::trace_file(s.path, k));

  control::TraceBuilder t(0x6757a1b2, 1024);
  control::TraceLog log;
  std::string error;
  if (!log.open(s, error)) {
    std::fprintf(stderr, "bench_trace: %s\n", error.c_str());
    return 1;
  }
  // Build and write in blocks as sluiced does (one batch a millisecond: here 100 messages a block).
  const uint64_t total_bytes = s.max_file_bytes * s.max_files;
  uint64_t id = 0, bytes = 0;
  double build_s = 0, write_s = 0;
  std::string block;
  while (bytes < total_bytes + s.max_file_bytes / 2) {
    block.clear();
    auto t0 = Clock::now();
    for (int i = 0; i < 100; ++i) message(t, ++id, block);
    build_s += seconds_since(t0);
    t0 = Clock::now();
    log.write_block(block);
    write_s += seconds_since(t0);
    bytes += block.size();
  }
  std::printf("built %llu messages (%llu lines, %.0f bytes a message) in %.3f s: %.2f us a message on the loop\n",
              static_cast<unsigned long long>(id), static_cast<unsigned long long>(log.lines()),
              double(bytes) / double(id), build_s, 1e6 * build_s / double(id));
  std::printf("wrote %.1f MiB in %.3f s (%.0f MiB/s, %llu rotations)\n", bytes / 1048576.0, write_s,
              bytes / 1048576.0 / write_s, static_cast<unsigned long long>(log.rotations()));

  auto search = [&](const char* what, control::TraceQuery q) {
    const auto t0 = Clock::now();
    const control::Json r = control::trace_search(s, q);
    const double secs = seconds_since(t0);
    std::printf("search %-28s %zu message(s), %zu steps, %.1f MiB read in %.3f s\n", what, r["messages"].size(),
                r["messages"].empty() ? std::size_t{0} : r["messages"][0]["steps"].size(),
                r.value("bytes_read", uint64_t{0}) / 1048576.0, secs);
    return !r["messages"].empty();
  };
  bool ok = true;
  control::TraceQuery by_ref;
  by_ref.ref = t.ref(id, 0);
  ok &= search("by reference (newest)", by_ref);
  control::TraceQuery by_id;
  by_id.message_id = "<bench-" + std::to_string(id) + "@example.org>";
  ok &= search("by Message-ID (newest)", by_id);
  control::TraceQuery by_flow;
  by_flow.flow_id = id;
  by_flow.transaction = 0;
  ok &= search("by flow id + transaction", by_flow);
  control::TraceQuery missing;
  missing.message_id = "<none@example.org>";
  ok &= !search("by Message-ID (none)", missing);
  return ok ? 0 : 1;
}
