#include "pipeline/base64.h"

#include <array>
#include <bit>
#include <cstdlib>
#include <cstring>

#include "pipeline/base64_impl.h"
#include "pipeline/output_block.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SLUICE_BASE64_AVX2 1
#include <immintrin.h>
#endif

namespace sluice::pipeline {

namespace {

constexpr int8_t kSpace = -1;    // SP, HT, CR, LF: skipped
constexpr int8_t kPad = -2;      // '=': ends the quantum
constexpr int8_t kInvalid = -3;  // anything else: skipped and counted

constexpr std::array<int8_t, 256> make_values() {
  std::array<int8_t, 256> v{};
  for (auto& x : v) x = kInvalid;
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; ++i) v[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
  v[' '] = v['\t'] = v['\r'] = v['\n'] = kSpace;
  v['='] = kPad;
  return v;
}
constexpr std::array<int8_t, 256> kValue = make_values();

// The four lane tables: entry [i][c] holds character c's 6 bits already placed where they land in
// the 3 output bytes of a quantum in which c is the i-th character, laid out in memory order so
// that one 4-byte store writes the 3 bytes (the 4th byte is overwritten by the next store). An
// invalid character sets a bit of that 4th byte, which no valid lane touches.
constexpr bool kLittleEndian = std::endian::native == std::endian::little;
static_assert(kLittleEndian || std::endian::native == std::endian::big);
constexpr uint32_t kInvalidLane = kLittleEndian ? 0x80000000u : 0x00000080u;

constexpr uint32_t place(uint32_t byte, int k) {
  return kLittleEndian ? byte << (8 * k) : byte << (24 - 8 * k);
}

using LaneTables = std::array<std::array<uint32_t, 256>, 4>;
constexpr LaneTables make_lanes() {
  LaneTables t{};
  for (int lane = 0; lane < 4; ++lane) {
    for (int c = 0; c < 256; ++c) {
      const int v = kValue[static_cast<std::size_t>(c)];
      if (v < 0) {
        t[lane][c] = kInvalidLane;
        continue;
      }
      const uint32_t n = static_cast<uint32_t>(v) << (18 - 6 * lane);  // big-endian 24-bit group
      t[lane][c] = place((n >> 16) & 0xff, 0) | place((n >> 8) & 0xff, 1) | place(n & 0xff, 2);
    }
  }
  return t;
}
alignas(64) constexpr LaneTables kLane = make_lanes();

inline uint32_t quantum(const uint8_t* p) noexcept {
  return kLane[0][p[0]] | kLane[1][p[1]] | kLane[2][p[2]] | kLane[3][p[3]];
}

// At a quantum boundary, not at the start of a line: the characters of a line break (CRLF or LF)
// followed by an alphabet character, else 0. The slow path would change no state for them but
// data_ (no quantum is split, no empty line; the alphabet character sets data_), so the fast paths
// step over them.
inline std::size_t line_break(const uint8_t* p, const uint8_t* end) noexcept {
  const std::size_t left = std::size_t(end - p);
  if (left >= 3 && p[0] == '\r' && p[1] == '\n' && kValue[p[2]] >= 0) return 2;
  if (left >= 2 && p[0] == '\n' && kValue[p[1]] >= 0) return 1;
  return 0;
}

// A run decoder decodes whole quanta of alphabet characters from p while at least its block of
// input is left and o is below olim, writing at most 32 bytes from any cursor below olim (the
// output block's slack). When `lines` is set, it steps over the line breaks that line_break()
// accepts. Otherwise it stops after the whole quanta before the first character outside the
// alphabet. Returns where input and output stopped.
struct Run {
  const uint8_t* p;
  uint8_t* o;
};
using RunDecoder = Run (*)(const uint8_t* p, const uint8_t* end, uint8_t* o, const uint8_t* olim, bool lines) noexcept;
static_assert(OutputBlock::kSlack >= 32);

#ifdef SLUICE_BASE64_AVX2
// 32 characters per step. Each character is classified and translated with in-lane byte shuffles
// indexed by its nibbles:
// - valid: a character is outside the alphabet when bad_low[low nibble] & bad_high[high nibble]
//   is not 0. bad_high gives each high nibble a class bit (0x01: 0x2_, 0x02: 0x3_, 0x04: 0x4_ and
//   0x6_, 0x08: 0x5_ and 0x7_, 0x10: the rest); bad_low[l] holds the classes in which low nibble l
//   is not a letter, digit, '+' or '/' (0x10 always).
// - value: the character plus shift[high nibble] ('A'-'Z' -65, 'a'-'z' -71, '0'-'9' +4, '+'
//   +19); '/', the other alphabet character of 0x2_, takes index 1 (+16), free since no alphabet
//   character has high nibble 1. What a character outside the alphabet becomes does not matter.
// Then the four 6-bit values of each 32-bit lane are multiplied and added into their 24 bits
// (pmaddubsw: v0 * 64 + v1 and v2 * 64 + v3; pmaddwd: first * 4096 + second), the three bytes of
// each lane are taken most significant first and packed to the low 12 bytes of each 128-bit half,
// and the two halves are joined (vpermd): 24 bytes, stored with a 32-byte store. A block that holds
// a line break after whole quanta (MIME's 76-character lines: the third block of each line) yields
// the quanta before it; the next block starts after it.
__attribute__((target("avx2"))) Run decode_run_avx2(const uint8_t* p, const uint8_t* end, uint8_t* o,
                                                    const uint8_t* olim, bool lines) noexcept {
  const __m256i bad_low = _mm256_setr_epi8(  //
      0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a,
      0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1a, 0x1b, 0x1b, 0x1b, 0x1a);
  const __m256i bad_high = _mm256_setr_epi8(  //
      0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
      0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10);
  const __m256i shift = _mm256_setr_epi8(  //
      0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0,
      0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i slash = _mm256_set1_epi8('/');
  const __m256i pairs = _mm256_set1_epi32(0x01400140);  // bytes 64, 1, 64, 1
  const __m256i quads = _mm256_set1_epi32(0x00011000);  // words 4096, 1
  const __m256i order = _mm256_setr_epi8(  //
      2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
      2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
  const __m256i join = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7);
  while (end - p >= 32 && o < olim) {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i high = _mm256_and_si256(_mm256_srli_epi16(c, 4), nibble);
    const __m256i bad = _mm256_and_si256(_mm256_shuffle_epi8(bad_low, _mm256_and_si256(c, nibble)),
                                         _mm256_shuffle_epi8(bad_high, high));
    const auto good = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(bad, _mm256_setzero_si256())));
    const __m256i index = _mm256_add_epi8(high, _mm256_cmpeq_epi8(c, slash));  // '/': 2 - 1
    const __m256i v = _mm256_add_epi8(c, _mm256_shuffle_epi8(shift, index));
    const __m256i n = _mm256_madd_epi16(_mm256_maddubs_epi16(v, pairs), quads);
    const __m256i out = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(n, order), join);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), out);
    if (good != 0xffffffffu) {
      // Only the whole quanta before the first character outside the alphabet count; the bytes
      // written past them are overwritten by what comes next (or never handed on).
      const unsigned run = static_cast<unsigned>(std::countr_one(good));
      const unsigned whole = run & ~3u;
      p += whole;
      o += whole / 4 * 3;
      const std::size_t step = lines && whole == run ? line_break(p, end) : 0;
      if (step == 0) break;
      p += step;
      continue;
    }
    p += 32;
    o += 24;
  }
  return {p, o};
}
#endif

bool cpu_has(Base64Impl impl) noexcept {
  switch (impl) {
    case Base64Impl::scalar: return true;
    case Base64Impl::avx2:
#ifdef SLUICE_BASE64_AVX2
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2");
#else
      return false;
#endif
  }
  return false;
}

RunDecoder run_decoder_of(Base64Impl impl) noexcept {
#ifdef SLUICE_BASE64_AVX2
  if (impl == Base64Impl::avx2) return decode_run_avx2;
#endif
  (void)impl;
  return nullptr;  // scalar: the 8-per-step loop in feed()
}

Base64Impl initial_impl() noexcept {
  const char* env = std::getenv("SLUICE_BASE64");
  if (env != nullptr && std::strcmp(env, "scalar") == 0) return Base64Impl::scalar;
  return cpu_has(Base64Impl::avx2) ? Base64Impl::avx2 : Base64Impl::scalar;
}

// Chosen once at start (static initialisation); changed only by base64_set_impl() in tests.
Base64Impl g_impl = initial_impl();
RunDecoder g_run = run_decoder_of(g_impl);

}  // namespace

bool base64_impl_available(Base64Impl impl) noexcept { return cpu_has(impl); }

bool base64_set_impl(Base64Impl impl) noexcept {
  if (!cpu_has(impl)) return false;
  g_impl = impl;
  g_run = run_decoder_of(impl);
  return true;
}

Base64Impl base64_impl() noexcept { return g_impl; }

const char* base64_impl_name(Base64Impl impl) noexcept {
  switch (impl) {
    case Base64Impl::scalar: return "scalar";
    case Base64Impl::avx2: return "avx2";
  }
  return "?";
}

void Base64Decoder::reset(uint64_t max_output) noexcept {
  out_.reset(max_output);
  invalid_ = 0;
  irregular_ = 0;
  padded_ = false;
  at_line_start_ = gap_ = data_ = false;
  acc_ = 0;
  count_ = 0;
}

DecodeStatus Base64Decoder::feed(const uint8_t* in, std::size_t len, ByteSink& sink) noexcept {
  OutputBlock block(out_, sink);
  const uint8_t* p = in;
  const uint8_t* const end = in + len;
  const RunDecoder run = g_run;
  for (;;) {
    if (block.full()) block.flush();
    if (p == end) break;
    uint8_t* o = block.cursor();
    uint8_t* const olim = block.end();  // stores reach at most 31 bytes past a cursor below olim
    if (count_ == 0 && !padded_ && !gap_) {
      if (kValue[*p] >= 0) at_line_start_ = false;
      const uint8_t* const from = p;
      // Fast path: whole quanta of alphabet characters, 32 per step (SIMD) or two per step.
      for (;;) {
        if (run != nullptr) {
          const Run r = run(p, end, o, olim, !at_line_start_);
          p = r.p;
          o = r.o;
          // Stopped at a character that is neither in the alphabet nor a line break it steps
          // over: the scalar steps below would stop there too.
          if (end - p >= 32 && o < olim) break;
        }
        // Scalar: all of it, or what the SIMD path left (fewer characters than its block).
        while (end - p >= 8 && o < olim) {
          const uint32_t a = quantum(p);
          const uint32_t b = quantum(p + 4);
          if ((a | b) & kInvalidLane) break;
          std::memcpy(o, &a, 4);
          std::memcpy(o + 3, &b, 4);
          o += 6;
          p += 8;
        }
        while (end - p >= 4 && o < olim) {
          const uint32_t a = quantum(p);
          if (a & kInvalidLane) break;
          std::memcpy(o, &a, 4);
          o += 3;
          p += 4;
        }
        // A line break between whole quanta that ends a line holding data, followed by an
        // alphabet character: stepped over, the next line decodes on the fast path.
        if (at_line_start_) break;  // nothing of this line read yet (a feed that starts at its break)
        const std::size_t step = line_break(p, end);
        if (step == 0) break;
        p += step;
      }
      // Whatever it took was alphabet characters and line breaks followed by one (a line break
      // before the first data too, at the start of the input): there is data now.
      if (p != from) data_ = true;
      if (o >= olim || p == end) {
        block.advance(o);
        continue;
      }
    }
    // Slow path, one character at a time: at least one, then on until a quantum boundary that is
    // followed by an alphabet character (where the fast path can take over again).
    do {
      const uint8_t c = *p++;
      const int v = kValue[c];
      if (v >= 0) {
        if (padded_ || gap_) {
          ++irregular_;
          padded_ = gap_ = false;
        }
        at_line_start_ = false;
        data_ = true;
        acc_ = (acc_ << 6) | static_cast<uint32_t>(v);
        if (++count_ == 4) {
          o[0] = static_cast<uint8_t>(acc_ >> 16);
          o[1] = static_cast<uint8_t>(acc_ >> 8);
          o[2] = static_cast<uint8_t>(acc_);
          o += 3;
          acc_ = 0;
          count_ = 0;
        }
      } else if (v == kPad) {
        if (count_ == 2) {
          *o++ = static_cast<uint8_t>(acc_ >> 4);
        } else if (count_ == 3) {
          o[0] = static_cast<uint8_t>(acc_ >> 10);
          o[1] = static_cast<uint8_t>(acc_ >> 2);
          o += 2;
        } else if (count_ == 1) {
          ++invalid_;  // a lone character cannot make a byte
        }
        padded_ = true;
        acc_ = 0;
        count_ = 0;
      } else if (v == kInvalid) {
        ++invalid_;
      } else if (c == '\n') {
        if (count_ != 0) ++irregular_;
        if (at_line_start_ && data_) gap_ = true;
        at_line_start_ = true;
      } else if (c != '\r') {
        at_line_start_ = false;
      }
    } while (p != end && o < olim && (count_ != 0 || kValue[*p] < 0));
    block.advance(o);
  }
  block.flush();
  return out_.status(invalid_);
}

DecodeStatus Base64Decoder::finish(ByteSink& sink) noexcept {
  uint8_t tail[2];
  std::size_t n = 0;
  if (count_ == 2) {
    tail[n++] = static_cast<uint8_t>(acc_ >> 4);
  } else if (count_ == 3) {
    tail[n++] = static_cast<uint8_t>(acc_ >> 10);
    tail[n++] = static_cast<uint8_t>(acc_ >> 2);
  } else if (count_ == 1) {
    ++invalid_;
  }
  acc_ = 0;
  count_ = 0;
  out_.emit(tail, n, sink);
  return out_.status(invalid_);
}

}  // namespace sluice::pipeline
