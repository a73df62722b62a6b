#include "pipeline/base64.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>

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

TEST(Base64Decoder, Rfc4648Vectors) {
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

TEST(Base64Decoder, PaddingEndsEachQuantum) {
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

TEST(Base64Decoder, MissingPadding) {
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

TEST(Base64Decoder, InvalidCharactersSkippedAndCounted) {
  Base64Decoder d;
  EXPECT_EQ(decode(d, "Zm*9v"), expect("foo", 1, DecodeStatus::malformed));
  EXPECT_EQ(decode(d, "Z\x80m\xff" "9v!"), expect("foo", 3, DecodeStatus::malformed));
  // URL-safe characters are not in the MIME alphabet.
  EXPECT_EQ(decode(d, "-_Zm9v"), expect("foo", 2, DecodeStatus::malformed));
  // Whitespace anywhere is fine and not counted.
  EXPECT_EQ(decode(d, " Z m\t9\r\nv \r\n"), expect("foo"));
  EXPECT_EQ(decode(d, std::string("Zm9v\0Zm9v", 9)), expect("foofoo", 1, DecodeStatus::malformed));
}

TEST(Base64Decoder, MimeLinesCrlfLfAndVeryLong) {
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

TEST(Base64Decoder, CrossCheckWithPython) {
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

TEST(Base64Decoder, OutputLimit) {
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

TEST(Base64Decoder, OutputInBlocks) {
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

TEST(Base64Decoder, AnySplitGivesTheSameResult) {
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
