// Content-Transfer-Encoding decoder throughput on one core, from memory: 1 MiB of MIME base64
// (76-character lines + CRLF), a text-heavy and a binary-heavy quoted-printable body (and a text
// body with hard line breaks only, the span-copy regime), each decoded
// whole and in 1460-byte pieces (one TCP segment each), best of N runs by thread CPU time. memcpy of
// the same 1 MiB runs alongside as the in-run reference (compare ratios, see ../shared/LIMITS.md).
// base64 runs once per implementation this CPU has (pipeline/base64_impl.h: scalar, avx2).
//
//   bench_decoders [RUNS]
// Prints one line per case: GB/s of encoded input (CRLF included).
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "pipeline/base64.h"
#include "pipeline/base64_impl.h"
#include "pipeline/quoted_printable.h"

using namespace sluice::pipeline;

namespace {

constexpr std::size_t kSize = 1 << 20;

struct CountingSink final : ByteSink {
  uint64_t bytes = 0;
  uint8_t x = 0;
  void on_bytes(const uint8_t* d, std::size_t n) noexcept override {
    bytes += n;
    x ^= d[n - 1];
  }
};

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

std::string base64_body(std::mt19937_64& rng) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  while (out.size() + 78 <= kSize) {
    for (int i = 0; i < 76; ++i) out += kAlphabet[rng() & 63];
    out += "\r\n";
  }
  return out;
}

// Quoted-printable as encoders write it: 76-character lines, "=XX" for what is not printable
// ASCII, "=\r\n" soft breaks, CRLF hard breaks.
std::string qp_body(std::mt19937_64& rng, bool binary, bool soft_breaks = true) {
  static constexpr const char* kWords[] = {"the", "attachment", "invoice", "please", "find", "of",
                                           "and", "to", "payment", "regards", "a", "message"};
  std::string out, line;
  auto put = [&](const std::string& tok) {
    if (line.size() + tok.size() > 75) {
      out += line + (soft_breaks ? "=\r\n" : "\r\n");
      line.clear();
    }
    line += tok;
  };
  while (out.size() < kSize) {
    if (binary) {
      const uint8_t b = uint8_t(rng());
      if (b >= 33 && b <= 126 && b != '=') {
        put(std::string(1, char(b)));
      } else {
        char esc[4];
        std::snprintf(esc, sizeof esc, "=%02X", b);
        put(esc);
      }
    } else {
      put(kWords[rng() % std::size(kWords)]);
      if (rng() % 40 == 0) put("=C3=A9");
      if (rng() % 12 == 0) {
        out += line + "\r\n";
        line.clear();
      } else {
        put(" ");
      }
    }
  }
  out.resize(kSize);
  return out;
}

template <class Fn>
double best_gbps(std::size_t bytes, int runs, Fn&& fn) {
  double best = 1e9;
  for (int r = 0; r < runs; ++r) {
    const double t0 = cpu_seconds();
    fn();
    best = std::min(best, cpu_seconds() - t0);
  }
  return double(bytes) / best / 1e9;
}

void run_decoder(const char* name, Decoder& d, const std::string& in, int runs) {
  CountingSink sink;
  auto p = reinterpret_cast<const uint8_t*>(in.data());
  const double whole = best_gbps(in.size(), runs, [&] {
    d.reset();
    d.feed(p, in.size(), sink);
    d.finish(sink);
  });
  const uint64_t out = d.produced();
  const uint64_t invalid = d.invalid();
  const double pieces = best_gbps(in.size(), runs, [&] {
    d.reset();
    for (std::size_t at = 0; at < in.size(); at += 1460) d.feed(p + at, std::min<std::size_t>(1460, in.size() - at), sink);
    d.finish(sink);
  });
  std::printf("%-23s in %8zu B  out %8llu B  invalid %llu  whole %6.2f GB/s  1460-B pieces %6.2f GB/s\n", name,
              in.size(), static_cast<unsigned long long>(out), static_cast<unsigned long long>(invalid), whole,
              pieces);
}

}  // namespace

int main(int argc, char** argv) {
  const int runs = argc > 1 ? std::max(1, std::atoi(argv[1])) : 50;
  std::mt19937_64 rng(42);
  const std::string b64 = base64_body(rng);
  const std::string qp_text = qp_body(rng, false);
  const std::string qp_binary = qp_body(rng, true);
  const std::string qp_hard = qp_body(rng, false, false);

  std::vector<char> dst(kSize);
  const double memcpy_gbps = best_gbps(kSize, runs, [&] {
    std::memcpy(dst.data(), b64.data(), b64.size());
    asm volatile("" : : "r"(dst.data()) : "memory");
  });
  std::printf("%-23s in %8zu B  %6.2f GB/s (reference)\n", "memcpy", b64.size(), memcpy_gbps);

  Base64Decoder b;
  QuotedPrintableDecoder q;
  const Base64Impl chosen = base64_impl();
  for (Base64Impl impl : {Base64Impl::scalar, Base64Impl::avx2}) {
    if (!base64_set_impl(impl)) continue;
    const std::string name = std::string("base64 (76+CRLF) ") + base64_impl_name(impl);
    run_decoder(name.c_str(), b, b64, runs);
  }
  base64_set_impl(chosen);
  run_decoder("quoted-printable text", q, qp_text, runs);
  run_decoder("quoted-printable binary", q, qp_binary, runs);
  run_decoder("qp text, hard breaks", q, qp_hard, runs);
  return 0;
}
