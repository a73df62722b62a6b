#include "pipeline/quoted_printable.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>

#include "tests/unit/pipeline/decode_harness.h"

using namespace sluice::pipeline;
using namespace sluice::pipeline::test;
using namespace std::literals;

namespace {

// Whole, byte by byte and in a few fixed splits: all must agree.
void check(std::string_view in, const Decoded& want) {
  QuotedPrintableDecoder d;
  EXPECT_EQ(decode(d, in), want) << '"' << in << '"';
  EXPECT_EQ(decode_bytewise(d, in), want) << '"' << in << '"';
  for (std::size_t cut = 1; cut < in.size(); ++cut) {
    EXPECT_EQ(decode_split(d, in, {cut}), want) << '"' << in << "\" cut at " << cut;
  }
}

}  // namespace

TEST(QuotedPrintableDecoder, Escapes) {
  check("", expect(""));
  check("plain text", expect("plain text"));
  check("=41=42=43", expect("ABC"));
  check("caf=C3=A9 caf=c3=a9 =3D", expect("caf\xc3\xa9 caf\xc3\xa9 ="));  // RFC 2045 6.7 (1): lower case accepted
  check("=00=FF", expect("\x00\xff"s));
  check("=e9", expect("\xe9"));
}

TEST(QuotedPrintableDecoder, SoftLineBreaks) {
  check("abc=\r\ndef", expect("abcdef"));
  check("abc=\ndef", expect("abcdef"));
  check("abc= \t \r\ndef", expect("abcdef"));  // RFC 2045 6.7 (3): whitespace after "=" is transport padding
  check("abc=\t\ndef", expect("abcdef"));
  check("=\r\n=\n=\r\n", expect(""));
  // "=" at the end of the body: its CRLF belonged to the MIME delimiter (RFC 2046 5.1.1).
  check("abc=", expect("abc"));
  check("abc=  ", expect("abc"));
}

TEST(QuotedPrintableDecoder, HardLineBreaksAndTrailingWhitespace) {
  check("a\r\nb\nc\r\n", expect("a\r\nb\nc\r\n"));
  // RFC 2045 6.7 (3): trailing whitespace is deleted by the decoder (Python's a2b_qp keeps it).
  check("abc \t \r\ndef", expect("abc\r\ndef"));
  check("abc  \ndef", expect("abc\ndef"));
  check("abc  ", expect("abc"));  // the last line of the body
  check("  \r\n \n", expect("\r\n\n"));
  // Whitespace inside a line, before "=" and before a bare CR is content.
  check("a b\tc  =41 \r\n", expect("a b\tc  A\r\n"));
  check("a \rb", expect("a \rb"));
  check("a \r", expect("a \r"));
  check("a\rb\r", expect("a\rb\r"));
  check("=20\r\n", expect(" \r\n"));  // encoded whitespace is kept
}

TEST(QuotedPrintableDecoder, BadEscapesKeptAndCounted) {
  const auto bad = DecodeStatus::malformed;
  check("=ZZ", expect("=ZZ", 1, bad));
  check("x=4g", expect("x=4g", 1, bad));
  check("=4", expect("=4", 1, bad));
  check("==41", expect("=A", 1, bad));
  check("= x", expect("= x", 1, bad));
  check("=\rX", expect("=\rX", 1, bad));
  // "=\r" at the end: a CR alone is not a line break, so not a soft line break either. (Python's
  // a2b_qp drops it, and drops the next character after "=\r" too.)
  check("=\r", expect("=\r", 1, bad));
  check("ab= \r", expect("ab= \r", 1, bad));
  check("=4\r\n", expect("=4\r\n", 1, bad));
  check("=\x80=", expect("=\x80", 1, bad));
}

TEST(QuotedPrintableDecoder, LongWhitespaceRuns) {
  const std::size_t cap = QuotedPrintableDecoder::kMaxTrailingWhitespace;
  const std::string at_cap(cap, ' ');
  const std::string over(cap + 1, ' ');
  check("a" + at_cap + "\r\nb", expect("a\r\nb"));
  check("a" + over + "\r\nb", expect("a" + over + "\r\nb"));  // content, see the header
  check("a" + over, expect("a" + over));
  check("=" + at_cap + "\r\nb", expect("b"));
  check("=" + over + "\r\nb", expect("=" + over + "\r\nb", 1, DecodeStatus::malformed));
}

TEST(QuotedPrintableDecoder, CrossCheckWithPython) {
  // Inputs encoded and decoded with /usr/bin/python3: binascii.b2a_qp (text, then binary data,
  // then binary mode) and binascii.a2b_qp. These inputs have no trailing whitespace, where
  // Python and RFC 2045 6.7 (3) differ.
  const std::pair<std::string_view, std::string_view> cases[] = {
{"Caf=C3=A9 cr=C3=A8me =3D 3 =E2=82=AC; tab\there.\r\nSecond line, long enough to need a soft break because it goes on and on pas=\r\n"
      "t seventy-six characters.\r\n"sv,
    "Caf\xc3\xa9 cr\xc3\xa8me = 3 \xe2\x82\xac; tab\there.\r\nSecond line, long enough to need a soft break because it goes on and on past seventy-six characters.\r\n"sv},
{"=0B0Uz=9F=C4=E9=0E3X}=A2=C7=EC=116[=80=A5=CA=EF=149^=83=A8=CD=F2=17<a=86=AB=\n=D0=F5=1A?d=89=AE=D3=F8=1DBg=8C=B1=D6=FB Ej=8F=B4=D9=FE#Hm=92=B7=DC=01&Kp=\n"
      "=95=BA=DF=04)Ns=98=BD=E2=07,Qv=9B=C0=E5\n/Ty=9E=C3=E8\r2W|=A1=C6=EB=105Z=7F=A4=C9=EE=138]=82=A7=CC=F1=16;`=85=AA=CF=\n"
      "=F4=19>c=88=AD=D2=F7=1CAf=8B=B0=D5=FA=1FDi=8E=B3=D8=FD\"Gl=91=B6=DB=00%Jo=94=\n=B9=DE=03(Mr=97=BC=E1=06+Pu=9A=BF=E4\t.Sx=9D=C2=E7=0C1V{=A0=C5=EA=0F4Y~=A3=\n"
      "=C8=ED=127\\=81=A6=CB=F0=15:_=84=A9=CE"sv,
    "\x0b" "0Uz\x9f\xc4\xe9\x0e" "3X}\xa2\xc7\xec\x11" "6[\x80\xa5\xca\xef\x14" "9^\x83\xa8\xcd\xf2\x17<a\x86\xab\xd0\xf5\x1a?d\x89\xae\xd3\xf8\x1d" "Bg\x8c\xb1\xd6\xfb Ej\x8f\xb4\xd9\xfe#Hm\x92\xb7\xdc\x01&Kp\x95\xba\xdf\x04)Ns\x98\xbd\xe2\x07,Qv\x9b\xc0\xe5\n"
      "/Ty\x9e\xc3\xe8\r2W|\xa1\xc6\xeb\x10" "5Z\x7f\xa4\xc9\xee\x13" "8]\x82\xa7\xcc\xf1\x16;`\x85\xaa\xcf\xf4\x19>c\x88\xad\xd2\xf7\x1c" "Af\x8b\xb0\xd5\xfa\x1f" "Di\x8e\xb3\xd8\xfd\"Gl\x91\xb6\xdb\x00%Jo\x94\xb9\xde\x03(Mr\x97\xbc\xe1\x06+Pu\x9a\xbf\xe4\t.Sx\x9d\xc2\xe7\x0c" "1V{\xa0\xc5\xea\x0f" "4Y~\xa3\xc8\xed\x12" "7\\\x81\xa6\xcb\xf0\x15:_\x84\xa9\xce"sv},
{"Caf=C3=A9 cr=C3=A8me =3D 3 =E2=82=AC; tab\there.=0D=0ASecond line, long enou=\r\ngh to need a soft break because it goes on and on past seventy-six characte=\r\n"
      "rs.=0D=0A"sv,
    "Caf\xc3\xa9 cr\xc3\xa8me = 3 \xe2\x82\xac; tab\there.\r\nSecond line, long enough to need a soft break because it goes on and on past seventy-six characters.\r\n"sv},
{"lower =e9=c3=a9 upper =E9=C3=A9 =3D=\r\nnext"sv,
    "lower \xe9\xc3\xa9 upper \xe9\xc3\xa9 =next"sv},
  };
  for (auto [in, out] : cases) check(in, expect(std::string(out)));
}

TEST(QuotedPrintableDecoder, OutputLimit) {
  QuotedPrintableDecoder d;
  Decoded r = decode(d, "abc=41=42\r\nmore", 4);
  EXPECT_EQ(r.out, "abcA");
  EXPECT_EQ(r.produced, 4u);
  EXPECT_EQ(r.status, DecodeStatus::exceeded);
  EXPECT_EQ(decode(d, "abc=41", 4), expect("abcA"));
  r = decode(d, "abc=ZZ", 2);
  EXPECT_EQ(r.out, "ab");
  EXPECT_EQ(r.invalid, 1u);
  EXPECT_EQ(r.status, DecodeStatus::exceeded);
  // A long span that goes to the sink directly is cut too.
  const std::string text(10000, 'x');
  r = decode(d, text, 5000);
  EXPECT_EQ(r.out, text.substr(0, 5000));
  EXPECT_EQ(r.status, DecodeStatus::exceeded);
}

TEST(QuotedPrintableDecoder, AnySplitGivesTheSameResult) {
  std::mt19937_64 rng(5);
  QuotedPrintableDecoder d;
  // Pieces of QP bodies, valid and not.
  static constexpr std::string_view kPieces[] = {
      "a", "b", "text ", "x", " ", "\t", "  ", "\r\n", "\n", "\r", "=\r\n", "=\n", "= \r\n", "=41",
      "=e9", "=C3=A9", "=", "=Z", "=4", "\x80", "=3D", " \r\n", "\t\n", "= ", "==",
  };
  for (int round = 0; round < 400; ++round) {
    std::string in;
    const int n = int(rng() % 200);
    for (int i = 0; i < n; ++i) in += kPieces[rng() % std::size(kPieces)];
    if (round % 10 == 0) in += std::string(rng() % 1100, ' ');  // around kMaxTrailingWhitespace
    if (round % 10 == 1) in.insert(rng() % (in.size() + 1), "=" + std::string(990 + rng() % 20, '\t') + "\r\n");
    const uint64_t limit = rng() % 3 == 0 ? rng() % (in.size() + 2) : 0;
    const Decoded whole = decode(d, in, limit);
    EXPECT_EQ(decode_bytewise(d, in, limit), whole) << round;
    for (int s = 0; s < 20; ++s) {
      EXPECT_EQ(decode_split(d, in, random_cuts(rng, in.size()), limit), whole) << round;
    }
  }
}
