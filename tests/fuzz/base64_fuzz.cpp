// libFuzzer target: the base64 decoder's SIMD runs against its scalar ones (pipeline/base64_impl.h).
// The same input is decoded with each implementation, whole and in input-derived pieces, with and
// without an output limit; output bytes, produced(), invalid(), irregular() and status must be
// identical (aborts otherwise). On a CPU without AVX2 only the scalar decoder is run (split
// invariance still checked).
//
// Input: byte 0 flags (bit 0: map the data to mostly alphabet characters, below; bit 1: LF line
// ends instead of CRLF), byte 1 line length for wrapping the data (0: not wrapped), byte 2 output
// limit (0: none, else that many 64-byte units minus byte 3's low 6 bits), byte 3 the seed of the
// piece sizes, then the data. Mapped data: bytes below 0xe0 are alphabet characters (their low 6
// bits), the rest CR, LF, '=', SP, HT, noise, or CRLF, so that long runs with line breaks and
// padding in them, the SIMD path's business, are common.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "pipeline/base64.h"
#include "pipeline/base64_impl.h"

using namespace sluice::pipeline;

namespace {

struct Sink final : ByteSink {
  std::string data;
  void on_bytes(const uint8_t* d, std::size_t n) noexcept override {
    if (n == 0) std::abort();
    data.append(reinterpret_cast<const char*>(d), n);
  }
};

struct Outcome {
  std::string out;
  uint64_t produced, invalid, irregular;
  DecodeStatus fed, finished;
  bool operator==(const Outcome&) const = default;
};

Outcome decode(Base64Impl impl, const std::string& in, uint64_t limit, uint32_t seed) {
  if (!base64_set_impl(impl)) std::abort();
  Base64Decoder d;
  d.reset(limit);
  Sink sink;
  auto p = reinterpret_cast<const uint8_t*>(in.data());
  std::size_t at = 0;
  DecodeStatus fed = DecodeStatus::ok;
  if (seed == 0) {
    fed = d.feed(p, in.size(), sink);
  } else {
    uint32_t x = seed;
    while (at < in.size()) {
      x = x * 1103515245u + 12345u;
      const std::size_t piece = std::min<std::size_t>((x >> 16) % (seed % 7 == 0 ? 4 : 300), in.size() - at);
      fed = d.feed(p + at, piece, sink);
      at += piece;
    }
  }
  const DecodeStatus finished = d.finish(sink);
  return {std::move(sink.data), d.produced(), d.invalid(), d.irregular(), fed, finished};
}

std::string input(const uint8_t* data, std::size_t size, uint8_t flags, uint8_t line) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static constexpr const char* kOther[32] = {
      "\r", "\r", "\r", "\r", "\n", "\n", "\n", "\n", "=", "=", "=", "=", " ", "\t", "*", "-",
      "\x80", "\xff", "_", ".", "\0", ":", "@", "[", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\r\n", "\n\n", "\r\n\r\n"};
  std::string text;
  if (flags & 1) {
    for (std::size_t i = 0; i < size; ++i) {
      if (data[i] < 0xe0) {
        text += kAlphabet[data[i] & 63];
      } else {
        const char* s = kOther[data[i] - 0xe0];
        text.append(s, *s == '\0' ? 1 : std::char_traits<char>::length(s));
      }
    }
  } else {
    text.assign(reinterpret_cast<const char*>(data), size);
  }
  if (line == 0) return text;
  const char* eol = flags & 2 ? "\n" : "\r\n";
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += line) {
    out.append(text, i, line);
    out += eol;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const std::string in = input(data + 4, size - 4, data[0], data[1]);
  const uint64_t limit = data[2] == 0 ? 0 : uint64_t(data[2]) * 64 - (data[3] & 63);
  const uint32_t seed = data[3] | 1u << 8;
  const bool simd = base64_impl_available(Base64Impl::avx2);
  const Outcome scalar = decode(Base64Impl::scalar, in, limit, 0);
  if (decode(Base64Impl::scalar, in, limit, seed) != scalar) {
    std::fprintf(stderr, "scalar: the split changed the outcome\n");
    std::abort();
  }
  if (simd && decode(Base64Impl::avx2, in, limit, 0) != scalar) {
    std::fprintf(stderr, "avx2 differs from scalar (whole input)\n");
    std::abort();
  }
  if (simd && decode(Base64Impl::avx2, in, limit, seed) != scalar) {
    std::fprintf(stderr, "avx2 differs from scalar (in pieces)\n");
    std::abort();
  }
  return 0;
}
