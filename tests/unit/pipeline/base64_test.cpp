#include "pipeline/base64.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>

#include "pipeline/base64_impl.h"
#include "tests/unit/pipeline/decode_harness.h"

using namespace sluice::pipeline;
using namespace sluice::pipeline::test;
using namespace std::literals;

namespace {

// A plain encoder for the tests (RFC 4648 section 4, with padding).
std::string encode(std::string_view data) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t n = uint32_t(uint8_t(data[i])) << 16 | uint32_t(uint8_t(data[i + 1])) << 8 | uint8_t(data[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(n >> k) & 63];
  }
  if (data.size() - i == 1) {
    const uint32_t n = uint32_t(uint8_t(data[i])) << 16;
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (data.size() - i == 2) {
    const uint32_t n = uint32_t(uint8_t(data[i])) << 16 | uint32_t(uint8_t(data[i + 1])) << 8;
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string wrap(std::string_view b64, std::size_t line, std::string_view eol) {
  std::string out;
  for (std::size_t i = 0; i < b64.size(); i += line) {
    out += b64.substr(i, line);
    out += eol;
  }
  return out;
}

std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = char(rng());
  return s;
}

}  // namespace

namespace sluice::pipeline {
void PrintTo(Base64Impl impl, std::ostream* os) { *os << base64_impl_name(impl); }
}  // namespace sluice::pipeline

namespace {

// Every test of the decoder runs once per implementation of its runs (pipeline/base64_impl.h):
// scalar, and AVX2 where the CPU has it (skipped otherwise).
class Base64DecoderImpl : public ::testing::TestWithParam<Base64Impl> {
 protected:
  void SetUp() override {
    if (!base64_impl_available(GetParam())) GTEST_SKIP() << base64_impl_name(GetParam()) << " not on this CPU";
    ASSERT_TRUE(base64_set_impl(GetParam()));
  }
  void TearDown() override { base64_set_impl(saved_); }

 private:
  Base64Impl saved_ = base64_impl();
};

}  // namespace

INSTANTIATE_TEST_SUITE_P(base64, Base64DecoderImpl, ::testing::Values(Base64Impl::scalar, Base64Impl::avx2),
                         [](const ::testing::TestParamInfo<Base64Impl>& i) { return base64_impl_name(i.param); });

TEST_P(Base64DecoderImpl, Rfc4648Vectors) {
  Base64Decoder d;
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""}, {"Zg==", "f"}, {"Zm8=", "fo"}, {"Zm9v", "foo"},
      {"Zm9vYg==", "foob"}, {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"},
  };
  for (auto [in, out] : vectors) {
    EXPECT_EQ(decode(d, in), expect(std::string(out))) << in;
    EXPECT_EQ(decode_bytewise(d, in), expect(std::string(out))) << in;
  }
}

TEST_P(Base64DecoderImpl, PaddingEndsEachQuantum) {
  Base64Decoder d;
  // decoder.h: "=" ends the quantum and decoding resumes. Python's b64decode stops at the first
  // padding and returns "4"; RFC 2045 6.8 says "=" can only occur at the end, but mail clients
  // read on, and an attacker can hide content after a misplaced "=".
  EXPECT_EQ(decode(d, "NA=\r\n=Mg\r\n=="), expect("42"));
  EXPECT_EQ(decode_bytewise(d, "NA=\r\n=Mg\r\n=="), expect("42"));
  EXPECT_EQ(decode(d, "Zg==Zm8=Zm9v"), expect("ffofoo"));
  EXPECT_EQ(decode(d, "===="), expect(""));
  // "=" after a lone character: that character cannot make a byte.
  EXPECT_EQ(decode(d, "Zm9vY=Zg=="), expect("foof", 1, DecodeStatus::malformed));
}

TEST_P(Base64DecoderImpl, MissingPadding) {
  Base64Decoder d;
  // RFC 2045 6.8 requires the padding; Python refuses these ("Incorrect padding"); mail clients
  // decode them, as decoder.h asks.
  EXPECT_EQ(decode(d, "Zm9vYg"), expect("foob"));
  EXPECT_EQ(decode(d, "Zm9vYmE"), expect("fooba"));
  EXPECT_EQ(decode(d, "Zm9vYmE\r\n"), expect("fooba"));
  // A lone final character is invalid.
  EXPECT_EQ(decode(d, "Zm9vY"), expect("foo", 1, DecodeStatus::malformed));
  EXPECT_EQ(decode(d, "Z"), expect("", 1, DecodeStatus::malformed));
}

TEST_P(Base64DecoderImpl, InvalidCharactersSkippedAndCounted) {
  Base64Decoder d;
  EXPECT_EQ(decode(d, "Zm*9v"), expect("foo", 1, DecodeStatus::malformed));
  EXPECT_EQ(decode(d, "Z\x80m\xff" "9v!"), expect("foo", 3, DecodeStatus::malformed));
  // URL-safe characters are not in the MIME alphabet.
  EXPECT_EQ(decode(d, "-_Zm9v"), expect("foo", 2, DecodeStatus::malformed));
  // Whitespace anywhere is fine and not counted.
  EXPECT_EQ(decode(d, " Z m\t9\r\nv \r\n"), expect("foo"));
  EXPECT_EQ(decode(d, std::string("Zm9v\0Zm9v", 9)), expect("foofoo", 1, DecodeStatus::malformed));
}

TEST_P(Base64DecoderImpl, MimeLinesCrlfLfAndVeryLong) {
  std::mt19937_64 rng(1);
  Base64Decoder d;
  for (std::size_t size : {0u, 1u, 2u, 56u, 57u, 58u, 1000u, 100000u}) {
    const std::string data = random_bytes(rng, size);
    const std::string b64 = encode(data);
    EXPECT_EQ(decode(d, wrap(b64, 76, "\r\n")), expect(data)) << size;
    EXPECT_EQ(decode(d, wrap(b64, 76, "\n")), expect(data)) << size;
    EXPECT_EQ(decode(d, wrap(b64, 61, "\r\n")), expect(data)) << size;  // not a multiple of 4
    EXPECT_EQ(decode(d, b64), expect(data)) << size;                     // one line
  }
  // A 1 MiB single line, decoded in one call.
  const std::string data = random_bytes(rng, 3 << 20 >> 2);
  EXPECT_EQ(decode(d, encode(data)), expect(data));
}

TEST_P(Base64DecoderImpl, CrossCheckWithPython) {
  // Inputs and outputs computed with /usr/bin/python3: base64.encodebytes (76-character lines, LF)
  // and base64.b64decode(validate=False) on the encoded text.
  const std::pair<std::string_view, std::string_view> cases[] = {
{"CzBVep/E6Q4zWH2ix+wRNluApcrvFDleg6jN8hc8YYar0PUaP2SJrtP4HUJnjLHW+yBFao+02f4j\nSG2St9wBJktwlbrfBClOc5i94gcsUXabwOUKL1R5nsPoDTJXfKHG6xA1Wn+kye4TOF2Cp8zxFjtg\n"
      "harP9Bk+Y4it0vccQWaLsNX6H0RpjrPY/SJHbJG22wAlSm+Uud4DKE1yl7zhBitQdZq/5AkuU3id\nwucMMVZ7oMXqDzRZfqPI7RI3XIGmy/AVOl+Eqc4=\n"sv,
    "\x0b" "0Uz\x9f\xc4\xe9\x0e" "3X}\xa2\xc7\xec\x11" "6[\x80\xa5\xca\xef\x14" "9^\x83\xa8\xcd\xf2\x17<a\x86\xab\xd0\xf5\x1a?d\x89\xae\xd3\xf8\x1d" "Bg\x8c\xb1\xd6\xfb Ej\x8f\xb4\xd9\xfe#Hm\x92\xb7\xdc\x01&Kp\x95\xba\xdf\x04)Ns\x98\xbd\xe2\x07,Qv\x9b\xc0\xe5\n"
      "/Ty\x9e\xc3\xe8\r2W|\xa1\xc6\xeb\x10" "5Z\x7f\xa4\xc9\xee\x13" "8]\x82\xa7\xcc\xf1\x16;`\x85\xaa\xcf\xf4\x19>c\x88\xad\xd2\xf7\x1c" "Af\x8b\xb0\xd5\xfa\x1f" "Di\x8e\xb3\xd8\xfd\"Gl\x91\xb6\xdb\x00%Jo\x94\xb9\xde\x03(Mr\x97\xbc\xe1\x06+Pu\x9a\xbf\xe4\t.Sx\x9d\xc2\xe7\x0c" "1V{\xa0\xc5\xea\x0f" "4Y~\xa3\xc8\xed\x12" "7\\\x81\xa6\xcb\xf0\x15:_\x84\xa9\xce"sv},
{"CzBVep/E6Q4zWH2ix+wRNluApcrvFDleg6jN8hc8YYar0PUaP2SJrtP4HUJnjLHW+yA="sv,
    "\x0b" "0Uz\x9f\xc4\xe9\x0e" "3X}\xa2\xc7\xec\x11" "6[\x80\xa5\xca\xef\x14" "9^\x83\xa8\xcd\xf2\x17<a\x86\xab\xd0\xf5\x1a?d\x89\xae\xd3\xf8\x1d" "Bg\x8c\xb1\xd6\xfb "sv},
{"aGVsbG8gd29ybGQKaGVsbG8gd29ybGQKaGVsbG8gd29ybGQKaGVsbG8gd29ybGQKaGVsbG8gd29y\r\nbGQKaGVsbG8gd29ybGQKaGVsbG8gd29ybGQKaGVsbG8gd29ybGQKaGVsbG8gd29ybGQKaGVsbG8g\r\n"
      "d29ybGQK\r\n"sv,
    "hello world\nhello world\nhello world\nhello world\nhello world\nhello world\nhello world\n"
      "hello world\nhello world\nhello world\n"sv},
  };
  Base64Decoder d;
  for (auto [in, out] : cases) {
    EXPECT_EQ(decode(d, in), expect(std::string(out)));
    EXPECT_EQ(decode_bytewise(d, in), expect(std::string(out)));
  }
}

TEST_P(Base64DecoderImpl, OutputLimit) {
  Base64Decoder d;
  Decoded r = decode(d, "Zm9vYmFy", 2);
  EXPECT_EQ(r.out, "fo");
  EXPECT_EQ(r.produced, 2u);
  EXPECT_EQ(r.status, DecodeStatus::exceeded);
  // Exactly the limit: nothing was dropped.
  EXPECT_EQ(decode(d, "Zm9vYmFy", 6), expect("foobar"));
  // Exceeded wins over malformed, and input is still parsed after the limit.
  r = decode(d, "Zm9v*YmFy!", 1);
  EXPECT_EQ(r.out, "f");
  EXPECT_EQ(r.invalid, 2u);
  EXPECT_EQ(r.status, DecodeStatus::exceeded);
  // A limit inside a large block.
  std::mt19937_64 rng(2);
  const std::string data = random_bytes(rng, 50000);
  r = decode(d, wrap(encode(data), 76, "\r\n"), 12345);
  EXPECT_EQ(r.out, data.substr(0, 12345));
  EXPECT_EQ(r.status, DecodeStatus::exceeded);
  // reset() forgets the previous limit and state.
  EXPECT_EQ(decode(d, "Zm9vYmFy"), expect("foobar"));
}

TEST_P(Base64DecoderImpl, OutputInBlocks) {
  Base64Decoder d;
  d.reset();
  StringSink sink;
  std::mt19937_64 rng(3);
  const std::string data = random_bytes(rng, 100000);
  const std::string in = wrap(encode(data), 76, "\r\n");
  d.feed(reinterpret_cast<const uint8_t*>(in.data()), in.size(), sink);
  d.finish(sink);
  EXPECT_EQ(sink.data, data);
  EXPECT_LE(sink.calls, data.size() / 4000 + 2);
}

TEST_P(Base64DecoderImpl, AnySplitGivesTheSameResult) {
  std::mt19937_64 rng(4);
  Base64Decoder d;
  static constexpr std::string_view kNoise[] = {"=", "==", "\r\n", "\n", " ", "\t", "*", "\x80", "-", "A", "\r"};
  for (int round = 0; round < 300; ++round) {
    const std::string data = random_bytes(rng, rng() % 700);
    const std::size_t line = 1 + rng() % 100;
    std::string in = wrap(encode(data), line, rng() % 2 ? "\r\n" : "\n");
    const bool noisy = round % 2 == 1;
    if (noisy) {
      for (int k = int(rng() % 20); k > 0; --k) {
        in.insert(rng() % (in.size() + 1), kNoise[rng() % std::size(kNoise)]);
      }
    } else {
      EXPECT_EQ(decode(d, in), expect(data));
    }
    const uint64_t limit = rng() % 3 == 0 ? rng() % (data.size() + 2) : 0;
    const Decoded whole = decode(d, in, limit);
    EXPECT_EQ(decode_bytewise(d, in, limit), whole) << round;
    for (int s = 0; s < 20; ++s) {
      EXPECT_EQ(decode_split(d, in, random_cuts(rng, in.size()), limit), whole) << round;
    }
  }
}

// irregular() under every split. Found by base64_fuzz
// (tests/fuzz/regressions/base64_fuzz/line_break_before_the_first_data.bin): a line break before
// the first data, stepped over on the fast path when the input was whole, left the decoder
// believing it had no data yet, so a later empty line was not seen as following data.
TEST_P(Base64DecoderImpl, IrregularDoesNotDependOnTheSplit) {
  auto irregular = [](std::string_view in, const std::vector<std::size_t>& cuts) {
    Base64Decoder d;
    decode_split(d, in, cuts);
    return d.irregular();
  };
  auto bytewise = [](std::size_t n) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < n; ++i) cuts.push_back(i);
    return cuts;
  };
  // Data, an empty line, data: one irregularity, however it arrives.
  for (std::string_view in : {"\nZm9v\r\n\r\nZm9v"sv, "\r\nZm9v\r\n\r\nZm9v"sv, " \nZm9v\n\nZm9v"sv, "Zm9v\n\nZm9v"sv}) {
    EXPECT_EQ(irregular(in, {}), 1u) << in;
    EXPECT_EQ(irregular(in, bytewise(in.size())), 1u) << in;
  }
  std::mt19937_64 rng(9);
  static constexpr std::string_view kNoise[] = {"=", "\r\n", "\n", " ", "\t", "*", "\r", "\r\n\r\n", "\n\n"};
  for (int round = 0; round < 400; ++round) {
    std::string in = wrap(encode(random_bytes(rng, rng() % 300)), 4 * (1 + rng() % 20), rng() % 2 ? "\r\n" : "\n");
    for (int k = int(rng() % 8); k > 0; --k) in.insert(rng() % (in.size() + 1), kNoise[rng() % std::size(kNoise)]);
    const uint64_t whole = irregular(in, {});
    EXPECT_EQ(irregular(in, bytewise(in.size())), whole) << round;
    for (int s = 0; s < 5; ++s) EXPECT_EQ(irregular(in, random_cuts(rng, in.size())), whole) << round;
  }
}

// The SIMD runs against the scalar decoder on the same input, feed by feed: output, produced(),
// invalid(), irregular() and status must be identical.
namespace {

struct Outcome {
  Decoded decoded;
  uint64_t irregular = 0;
  bool operator==(const Outcome&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  return os << o.decoded << " irregular " << o.irregular;
}

Outcome decode_with(Base64Impl impl, std::string_view in, const std::vector<std::size_t>& cuts, uint64_t limit = 0) {
  EXPECT_TRUE(base64_set_impl(impl));
  Base64Decoder d;
  Outcome o;
  o.decoded = decode_split(d, in, cuts, limit);
  o.irregular = d.irregular();
  return o;
}

class Base64DecoderSimd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!base64_impl_available(Base64Impl::avx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  }
  void TearDown() override { base64_set_impl(saved_); }
  // Scalar, then SIMD; returns the scalar outcome.
  Outcome same(std::string_view in, const std::vector<std::size_t>& cuts = {}, uint64_t limit = 0) {
    const Outcome scalar = decode_with(Base64Impl::scalar, in, cuts, limit);
    EXPECT_EQ(decode_with(Base64Impl::avx2, in, cuts, limit), scalar) << in.size() << " bytes";
    return scalar;
  }

 private:
  Base64Impl saved_ = base64_impl();
};

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string alphabet_run(std::mt19937_64& rng, std::size_t n) {
  std::string s(n, 'A');
  for (auto& c : s) c = kAlphabet[rng() % 64];
  return s;
}

}  // namespace

// Each byte value in place of each character of a 160-character run (5 blocks of 32, which the
// SIMD path takes whole or stops in): the classification of all 256 values in every lane.
TEST_F(Base64DecoderSimd, EveryByteAtEveryPosition) {
  std::mt19937_64 rng(5);
  const std::string base = alphabet_run(rng, 160);
  for (std::size_t pos = 0; pos < 100; ++pos) {
    for (int b = 0; b < 256; ++b) {
      std::string in = base;
      in[pos] = char(b);
      const Outcome o = same(in);
      if (kAlphabet.find(char(b)) != std::string_view::npos) {
        EXPECT_EQ(o.decoded.invalid, 0u);
        EXPECT_EQ(o.decoded.produced, 120u);
      }
    }
  }
  // The whole alphabet in every lane of a block.
  for (std::size_t shift = 0; shift < 64; ++shift) {
    std::string in;
    for (std::size_t i = 0; i < 128; ++i) in += kAlphabet[(i + shift) % 64];
    EXPECT_EQ(same(in).decoded.produced, 96u);
  }
}

// Mail-like and hostile inputs: lines of every length up to 100 with CRLF or LF (76 is MIME's,
// where the SIMD path stops 12 characters before each line break), noise anywhere, padding
// inside, output limits, fed whole, in random pieces and byte by byte.
TEST_F(Base64DecoderSimd, SameAsScalarUnderEverySplit) {
  std::mt19937_64 rng(6);
  static constexpr std::string_view kNoise[] = {"=", "==", "\r\n", "\n", " ", "\t", "*", "\x80", "-", "\r", "\r\n\r\n", "\xff"};
  for (int round = 0; round < 600; ++round) {
    const std::size_t line = round < 100 ? 1 + round : 1 + rng() % 100;
    const std::size_t size = rng() % 3 == 0 ? rng() % 6000 : rng() % 700;
    std::string in = wrap(alphabet_run(rng, size), line, rng() % 2 ? "\r\n" : "\n");
    if (round % 3 != 0) {
      for (int k = int(rng() % 12); k > 0; --k) {
        const std::size_t at = rng() % (in.size() + 1);
        if (rng() % 2 && at < in.size()) {
          in[at] = kNoise[rng() % std::size(kNoise)][0];
        } else {
          in.insert(at, kNoise[rng() % std::size(kNoise)]);
        }
      }
    }
    const uint64_t limit = rng() % 3 == 0 ? rng() % (size + 2) : 0;
    const Outcome whole = same(in, {}, limit);
    for (int s = 0; s < 6; ++s) EXPECT_EQ(same(in, random_cuts(rng, in.size()), limit), whole) << round;
    if (in.size() < 800) {
      std::vector<std::size_t> cuts;
      for (std::size_t i = 1; i < in.size(); ++i) cuts.push_back(i);
      EXPECT_EQ(same(in, cuts, limit), whole) << round;
    }
  }
}

// Output blocks (output_block.h) fill up mid-run: the 32-byte stores near the block's end, and
// output limits falling inside a SIMD step.
TEST_F(Base64DecoderSimd, BlockEndsAndLimitsInsideASimdStep) {
  std::mt19937_64 rng(7);
  const std::string one_line = alphabet_run(rng, 40000);
  const std::string lines = wrap(one_line, 76, "\r\n");
  for (uint64_t limit : {0ull, 1ull, 23ull, 24ull, 25ull, 4095ull, 4096ull, 4097ull, 4119ull, 12289ull, 29999ull}) {
    same(one_line, {}, limit);
    same(lines, {}, limit);
    same(one_line, {31, 32, 33, 4127, 5461, 5462}, limit);
  }
}
