// Reassembly + SMTP throughput of one lcore, from memory: loads a pcap into RAM, then times
// decode_packet + Reassembler::on_packet (flow table, TCP reassembly, SMTP parsing, message
// SHA-256 and header scan, event rendering) over all its frames, several rounds.
//
//   bench_reassembly CAPTURE.pcap [ROUNDS]
// Prints one JSON object: frames, bytes, seconds per round (best after a warm-up round), Gbit/s,
// nanoseconds per frame, messages and events per round. Environment: SLUICE_DETECT=content (SMTP
// by content, smtp.detect), SLUICE_SMTP_PORTS=P,P,... (instead of 25,587,2525),
// SLUICE_RETRANSMIT_CHECK_KB.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "reassembly/reassembler.h"

using namespace sluice::reassembly;

namespace {

struct Frame {
  std::size_t offset, len;
  int64_t ts_us;
};

struct CountingOutput final : sluice::records::RecordSink {
  uint64_t events = 0, bytes = 0;  // records and their bytes (rendering is the control side's)
  void emit(const void*, std::size_t size) noexcept override {
    ++events;
    bytes += size;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_reassembly CAPTURE.pcap [ROUNDS]\n");
    return 2;
  }
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (data.size() < 24) return 1;
  uint32_t magic, link;
  std::memcpy(&magic, data.data(), 4);
  std::memcpy(&link, data.data() + 20, 4);
  if (magic != 0xa1b2c3d4) {
    std::fprintf(stderr, "bench_reassembly: little-endian microsecond pcap expected\n");
    return 1;
  }
  std::vector<Frame> frames;
  uint64_t wire_bytes = 0;
  for (std::size_t off = 24; off + 16 <= data.size();) {
    uint32_t h[4];
    std::memcpy(h, data.data() + off, 16);
    if (off + 16 + h[2] > data.size()) break;
    frames.push_back({off + 16, h[2], int64_t{h[0]} * 1000000 + h[1]});
    wire_bytes += h[2];
    off += 16 + h[2];
  }
  ReassemblyConfig cfg{};
  cfg.smtp_ports = {25, 587, 2525};
  cfg.implicit_tls_ports = {465};
  cfg.max_flows = 1 << 16;
  cfg.max_sessions = 4096;
  cfg.memcap_mb = 64;
  // The configuration defaults (control/config.cpp); SLUICE_RETRANSMIT_CHECK_KB=0 measures without
  // the unacknowledged copy.
  const char* check_kb = std::getenv("SLUICE_RETRANSMIT_CHECK_KB");
  cfg.stream = {1 << 20, 1024, uint32_t(check_kb ? std::atoi(check_kb) : 64) * 1024, 1024 * 1024};
  cfg.idle_timeout_s = 600;
  cfg.closed_timeout_s = 10;
  cfg.max_fragment_sets = 64;
  cfg.fragment_timeout_s = 30;
  cfg.embryonic_timeout_s = 30;
  cfg.emergency_idle_timeout_s = 60;
  cfg.emergency_embryonic_timeout_s = 5;
  cfg.emergency_recovery_percent = 80;
  // scripts/bench-detect: SLUICE_DETECT=content judges flows off the SMTP ports by their first bytes
  // (smtp.detect); SLUICE_SMTP_PORTS=P,P,... replaces the SMTP ports.
  if (const char* d = std::getenv("SLUICE_DETECT")) cfg.detect_content = std::strcmp(d, "content") == 0;
  if (const char* ports = std::getenv("SLUICE_SMTP_PORTS")) {
    cfg.smtp_ports.clear();
    for (const char* p = ports; *p;) {
      char* end = nullptr;
      const long v = std::strtol(p, &end, 10);
      if (end == p) break;
      if (v > 0 && v < 65536) cfg.smtp_ports.push_back(static_cast<uint16_t>(v));
      p = *end ? end + 1 : end;
    }
  }
  // SLUICE_OUT_OF_STEP=1: as tap and replay run (an ACK past a hole waits for the data); else as inline.
  const char* out_of_step = std::getenv("SLUICE_OUT_OF_STEP");
  cfg.directions_in_step = !(out_of_step && std::atoi(out_of_step));
  const LinkType lt = link_type_from_dlt(link);

  double best = 1e9;
  uint64_t events = 0, messages = 0;
  // One Reassembler for all rounds, as on an lcore: its pools are faulted in during the first
  // (warm-up) round and reused after, so the best round measures the steady state.
  CountingOutput out;
  Reassembler reasm(cfg, out, 0);
  uint64_t messages_before = 0;
  for (int r = 0; r <= rounds; ++r) {
    out.events = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const Frame& f : frames) {
      PacketInfo info;
      const uint8_t* p = data.data() + f.offset;
      if (decode_packet(p, f.len, info, lt) != DecodeStatus::ok || !reasm.wants(info)) continue;
      reasm.on_packet(info, p, f.ts_us);
    }
    reasm.flush_all(frames.empty() ? 0 : frames.back().ts_us);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::min(best, secs);
    events = out.events;
    messages = reasm.stats().messages - messages_before;
    messages_before = reasm.stats().messages;
  }
  std::printf("{\"frames\": %zu, \"bytes\": %llu, \"seconds\": %.4f, \"gbit_per_s\": %.2f, \"ns_per_frame\": %.1f, "
              "\"messages\": %llu, \"events\": %llu}\n",
              frames.size(), static_cast<unsigned long long>(wire_bytes), best, wire_bytes * 8 / best / 1e9,
              frames.empty() ? 0.0 : best * 1e9 / static_cast<double>(frames.size()),
              static_cast<unsigned long long>(messages), static_cast<unsigned long long>(events));
  return 0;
}
