#include "pipeline/base64.h"

#include <array>
#include <bit>
#include <cstring>

#include "pipeline/output_block.h"

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

}  // namespace

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
  for (;;) {
    if (block.full()) block.flush();
    if (p == end) break;
    uint8_t* o = block.cursor();
    uint8_t* const olim = block.end();  // stores reach at most 7 bytes past a cursor below olim
    if (count_ == 0 && !padded_ && !gap_) {
      if (kValue[*p] >= 0) at_line_start_ = false, data_ = true;
      // Fast path: whole quanta of alphabet characters, two per step.
      for (;;) {
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
        // alphabet character: the slow path would change no state for it (no quantum is split,
        // no empty line), so it is stepped over here and the next line decodes on the fast path.
        const std::size_t left = std::size_t(end - p);
        if (at_line_start_) break;  // nothing of this line read yet (a feed that starts at its break)
        if (left >= 3 && p[0] == '\r' && p[1] == '\n' && kValue[p[2]] >= 0) {
          p += 2;
        } else if (left >= 2 && p[0] == '\n' && kValue[p[1]] >= 0) {
          p += 1;
        } else {
          break;
        }
      }
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
