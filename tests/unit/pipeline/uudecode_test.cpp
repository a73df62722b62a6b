#include "pipeline/uudecode.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>

#include "tests/unit/pipeline/decode_harness.h"

using namespace sluice::pipeline;
using namespace sluice::pipeline::test;
using namespace std::literals;

namespace {

// Whole, byte by byte and cut once anywhere: all must agree, on done() too.
void check(std::string_view in, const Decoded& want, bool done) {
  UuDecoder d;
  EXPECT_EQ(decode(d, in), want) << '"' << in << '"';
  EXPECT_EQ(d.done(), done) << '"' << in << '"';
  EXPECT_EQ(decode_bytewise(d, in), want) << '"' << in << '"';
  EXPECT_EQ(d.done(), done);
  for (std::size_t cut = 1; cut < in.size(); ++cut) {
    EXPECT_EQ(decode_split(d, in, {cut}), want) << '"' << in << "\" cut at " << cut;
    EXPECT_EQ(d.done(), done);
  }
}

// A plain encoder for the tests (the historical algorithm, '`' for zero as POSIX allows).
std::string encode(std::string_view data, std::size_t per_line = 45, std::string_view eol = "\n") {
  auto ch = [](unsigned v) { return char(v == 0 ? '`' : 0x20 + v); };
  std::string out;
  for (std::size_t i = 0; i < data.size(); i += per_line) {
    const std::size_t n = std::min(per_line, data.size() - i);
    out += ch(unsigned(n));
    for (std::size_t g = 0; g < n; g += 3) {
      uint8_t b[3] = {};
      for (std::size_t k = 0; k < 3 && g + k < n; ++k) b[k] = uint8_t(data[i + g + k]);
      out += ch(b[0] >> 2);
      out += ch((b[0] & 3) << 4 | b[1] >> 4);
      out += ch((b[1] & 15) << 2 | b[2] >> 6);
      out += ch(b[2] & 63);
    }
    out += eol;
  }
  return out + "`" + std::string(eol) + "end" + std::string(eol);
}

}  // namespace

TEST(UuDecoder, CrossCheckWithPython) {
  // Lines from /usr/bin/python3 binascii.b2a_uu (45 bytes a line; with backtick=True for the
  // last), decoded with binascii.a2b_uu line by line.
  const std::pair<std::string_view, std::string_view> cases[] = {
{"#0V%T\n"sv, "Cat"sv},
{"M\"S!5>I_$Z0XS6'VBQ^P1-EN I<KO%#E>@ZC-\\A<\\88:KT/4:/V2)KM/X'4)G\n"sv,
    "\x0b" "0Uz\x9f\xc4\xe9\x0e" "3X}\xa2\xc7\xec\x11" "6[\x80\xa5\xca\xef\x14" "9^\x83\xa8\xcd\xf2\x17<a\x86\xab\xd0\xf5\x1a?d\x89\xae\xd3\xf8\x1d" "Bg"sv},
{"M\"S!5>I_$Z0XS6'VBQ^P1-EN I<KO%#E>@ZC-\\A<\\88:KT/4:/V2)KM/X'4)G\nMC+'6^R!%:H^TV?XC2&V2M]P!)DMPE;K?!\"E.<YB]X@<L47:;P.4*+U1YGL/H\n"
      "M#3)7?*'&ZQ U6G^DR>X3.%V\"I\\SQ%CM@A:K/]!D^8XBMTO<<06:+L-7Z'T1I\nMCK/8_2)';)&VVP E2F^4N=X#*$URE[SA!BM0=9J_Y DN4WB=PN<,,59[H,7J\n"
      "4#S19?J/([1(W7(&FR_ 5.E^$J<X \n"sv,
    "\x0b" "0Uz\x9f\xc4\xe9\x0e" "3X}\xa2\xc7\xec\x11" "6[\x80\xa5\xca\xef\x14" "9^\x83\xa8\xcd\xf2\x17<a\x86\xab\xd0\xf5\x1a?d\x89\xae\xd3\xf8\x1d" "Bg\x8c\xb1\xd6\xfb Ej\x8f\xb4\xd9\xfe#Hm\x92\xb7\xdc\x01&Kp\x95\xba\xdf\x04)Ns\x98\xbd\xe2\x07,Qv\x9b\xc0\xe5\n"
      "/Ty\x9e\xc3\xe8\r2W|\xa1\xc6\xeb\x10" "5Z\x7f\xa4\xc9\xee\x13" "8]\x82\xa7\xcc\xf1\x16;`\x85\xaa\xcf\xf4\x19>c\x88\xad\xd2\xf7\x1c" "Af\x8b\xb0\xd5\xfa\x1f" "Di\x8e\xb3\xd8\xfd\"Gl\x91\xb6\xdb\x00%Jo\x94\xb9\xde\x03(Mr\x97\xbc\xe1\x06+Pu\x9a\xbf\xe4\t.Sx\x9d\xc2\xe7\x0c" "1V{\xa0\xc5\xea\x0f" "4Y~\xa3\xc8\xed\x12" "7\\\x81\xa6\xcb\xf0\x15:_\x84\xa9\xce"sv},
{"#    \n"sv, "\x00\x00\x00"sv},
{"M\"S!5>I_$Z0XS6'VBQ^P1-EN`I<KO%#E>@ZC-\\A<\\88:KT/4:/V2)KM/X'4)G\nMC+'6^R!%:H^TV?XC2&V2M]P!)DMPE;K?!\"E.<YB]X@<L47:;P.4*+U1YGL/H\n"
      "M#3)7?*'&ZQ`U6G^DR>X3.%V\"I\\SQ%CM@A:K/]!D^8XBMTO<<06:+L-7Z'T1I\nMCK/8_2)';)&VVP`E2F^4N=X#*$URE[SA!BM0=9J_Y`DN4WB=PN<,,59[H,7J\n"
      "4#S19?J/([1(W7(&FR_`5.E^$J<X`\n"sv,
    "\x0b" "0Uz\x9f\xc4\xe9\x0e" "3X}\xa2\xc7\xec\x11" "6[\x80\xa5\xca\xef\x14" "9^\x83\xa8\xcd\xf2\x17<a\x86\xab\xd0\xf5\x1a?d\x89\xae\xd3\xf8\x1d" "Bg\x8c\xb1\xd6\xfb Ej\x8f\xb4\xd9\xfe#Hm\x92\xb7\xdc\x01&Kp\x95\xba\xdf\x04)Ns\x98\xbd\xe2\x07,Qv\x9b\xc0\xe5\n"
      "/Ty\x9e\xc3\xe8\r2W|\xa1\xc6\xeb\x10" "5Z\x7f\xa4\xc9\xee\x13" "8]\x82\xa7\xcc\xf1\x16;`\x85\xaa\xcf\xf4\x19>c\x88\xad\xd2\xf7\x1c" "Af\x8b\xb0\xd5\xfa\x1f" "Di\x8e\xb3\xd8\xfd\"Gl\x91\xb6\xdb\x00%Jo\x94\xb9\xde\x03(Mr\x97\xbc\xe1\x06+Pu\x9a\xbf\xe4\t.Sx\x9d\xc2\xe7\x0c" "1V{\xa0\xc5\xea\x0f" "4Y~\xa3\xc8\xed\x12" "7\\\x81\xa6\xcb\xf0\x15:_\x84\xa9\xce"sv},
  };
  for (auto [in, out] : cases) {
    check(std::string(in) + "`\nend\n", expect(std::string(out)), true);
    check(std::string(in) + " \nend\n", expect(std::string(out)), true);
  }
}

TEST(UuDecoder, ShortLinesReadAsPaddedWithSpaces) {
  // A mailer stripped the trailing spaces: "#    " became "#". Python's a2b_uu pads the same way:
  // a2b_uu(b"#\n") == b"\0\0\0", a2b_uu(b"#0V\n") == b"C`\0".
  check("#\nend\n", expect("\0\0\0"s), true);
  check("#0V\nend\n", expect("C`\0"s), true);
  // A checksum character after the groups is ignored.
  check("#0V%TM\nend\n", expect("Cat"), true);
}

TEST(UuDecoder, ZeroLinesEndAndCrlf) {
  check("#0V%T\r\n`\r\nend\r\n", expect("Cat"), true);
  check("#0V%T\n\nend\n", expect("Cat"), true);          // an empty zero line
  check("#0V%T\nend  \n", expect("Cat"), true);          // trailing spaces after "end"
  check("#0V%T\nend", expect("Cat"), true);              // "end" without a line end
  check("#0V%T\n`\n#0V%T\nend\n", expect("CatCat"), true);
  // What follows "end" is not read.
  check("#0V%T\nend\n#0V%T\ngarbage here\n", expect("Cat"), true);
}

TEST(UuDecoder, MissingEnd) {
  check("#0V%T\n`\n", expect("Cat"), false);
  check("#0V%T", expect("Cat"), false);
  check("", expect(""), false);
}

TEST(UuDecoder, GarbageLinesCountedAndSkipped) {
  const auto bad = DecodeStatus::malformed;
  check("#0V%T\nhello, world\n#0V%T\nend\n", expect("CatCat", 12, bad), true);
  check("#0V%T\r\n\x01\x02\r\nend\r\n", expect("Cat", 2, bad), true);
  check("#0V%t\nend\n", expect("", 5, bad), true);  // 't' is outside ' '..'`'
  check("Fin\n", expect("", 3, bad), false);
  const std::string long_line(UuDecoder::kMaxLine + 1, 'M');
  check("#0V%T\n" + long_line + "\r\nend\n", expect("Cat", long_line.size(), bad), true);
  const std::string max_line(UuDecoder::kMaxLine, '!');  // '!' = 1 byte, many ignored extras
  check(max_line + "\r\n", expect("\x04"), false);
  check(long_line, expect("", long_line.size(), bad), false);
}

TEST(UuDecoder, OutputLimit) {
  UuDecoder d;
  Decoded r = decode(d, "#0V%T\n#0V%T\nend\n", 4);
  EXPECT_EQ(r.out, "CatC");
  EXPECT_EQ(r.produced, 4u);
  EXPECT_EQ(r.status, DecodeStatus::exceeded);
  EXPECT_TRUE(d.done());  // input is still read after the limit
  EXPECT_EQ(decode(d, "#0V%T\n#0V%T\nend\n", 6), expect("CatCat"));
}

TEST(UuDecoder, RoundTripAndAnySplit) {
  std::mt19937_64 rng(6);
  UuDecoder d;
  static constexpr std::string_view kNoise[] = {"\n", "\r\n", "`\n", "hello\n", "\x7f", "a", " "};
  for (int round = 0; round < 300; ++round) {
    std::string data(rng() % 500, '\0');
    for (auto& c : data) c = char(rng());
    std::string in = encode(data, 1 + rng() % 63, rng() % 2 ? "\n" : "\r\n");
    if (round % 2 == 0) {
      EXPECT_EQ(decode(d, in), expect(data)) << round;
      EXPECT_TRUE(d.done());
    } else {
      for (int k = int(rng() % 6); k > 0; --k) in.insert(rng() % (in.size() + 1), kNoise[rng() % std::size(kNoise)]);
      if (rng() % 4 == 0) in.resize(rng() % (in.size() + 1));
    }
    const uint64_t limit = rng() % 3 == 0 ? rng() % (data.size() + 2) : 0;
    const Decoded whole = decode(d, in, limit);
    const bool done = d.done();
    EXPECT_EQ(decode_bytewise(d, in, limit), whole) << round;
    EXPECT_EQ(d.done(), done);
    for (int s = 0; s < 20; ++s) {
      EXPECT_EQ(decode_split(d, in, random_cuts(rng, in.size()), limit), whole) << round;
      EXPECT_EQ(d.done(), done);
    }
  }
}
