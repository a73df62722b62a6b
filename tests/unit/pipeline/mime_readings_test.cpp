// pipeline/mime_readings: the other readings' decoders. Exact outputs on the shapes they exist
// for, and the decoders' central property: every split of the input gives the same result.
#include "pipeline/mime_readings.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "tests/unit/pipeline/decode_harness.h"

namespace sluice::pipeline {
namespace {

using test::decode;
using test::decode_bytewise;
using test::decode_split;
using test::random_cuts;

// Whole, byte by byte and in random pieces: one result. Returns it.
test::Decoded all_splits(Decoder& d, const std::string& in) {
  const test::Decoded whole = decode(d, in);
  EXPECT_EQ(decode_bytewise(d, in), whole) << "byte by byte";
  std::mt19937_64 rng(7);
  for (int round = 0; round < 50; ++round) EXPECT_EQ(decode_split(d, in, random_cuts(rng, in.size())), whole);
  return whole;
}

TEST(MimeReadings, Names) {
  EXPECT_STREQ(mime_reading_name(MimeReading::primary), "primary");
  EXPECT_STREQ(mime_reading_name(MimeReading::cte_base64), "cte_base64");
  EXPECT_STREQ(mime_reading_name(MimeReading::raw_lf), "raw_lf");
}

TEST(MimeReadings, Base64LinesTakesWholeQuantaOfEachLine) {
  Base64LinesDecoder d;
  // "UEsD" = "PK\x03". An extra character per line, a junk line, junk after a quantum.
  EXPECT_EQ(all_splits(d, "UEsDX\r\nUEsDXY\r\nABC\r\n\r\nUEsD#junk\r\n").out, "PK\x03PK\x03PK\x03");
  // A padded last quantum gives its bytes; the same without '=' is dropped.
  EXPECT_EQ(all_splits(d, "UEs=\nUE\n").out, "PK");
  EXPECT_EQ(all_splits(d, "QUJD\nRA==").out, "ABCD");
}

TEST(MimeReadings, Base64StrictStopsAtPaddingAndAtAnEmptyLineAfterData) {
  Base64StrictDecoder d;
  EXPECT_EQ(all_splits(d, "\r\nQUJD\r\nREVG\r\n\r\nR0hJ\r\n").out, "ABCDEF");
  EXPECT_EQ(all_splits(d, "QUJDRA==QUJD").out, "ABCD");
  EXPECT_EQ(all_splits(d, "QU#JD").out, "ABC");
  EXPECT_EQ(all_splits(d, "QU#JD").invalid, 1u);
}

TEST(MimeReadings, QuotedPrintableLenientDropsBrokenEscapes) {
  QpReadingDecoder lenient(true, false), plain(false, false);
  const std::string in = "= =50=\r\n=  =4B=\r\n=0=03\r\nend \r\nx=4";
  EXPECT_EQ(all_splits(lenient, in).out, "PK\x03\r\nend\r\nx");
  EXPECT_EQ(all_splits(plain, in).out, "= P=  K=0\x03\r\nend\r\nx=4");
}

TEST(MimeReadings, QuotedPrintableLfWritesHardBreaksAsLf) {
  QpReadingDecoder lf(false, true);
  EXPECT_EQ(all_splits(lf, "a=3D1\r\nb\nc=\r\nd").out, "a=1\nb\ncd");
  // Long lines go in pieces without cutting an escape.
  std::string longline;
  for (int i = 0; i < 3000; ++i) longline += "=41";
  EXPECT_EQ(all_splits(lf, longline).out, std::string(3000, 'A'));
}

TEST(MimeReadings, LfDecoderTurnsCrlfIntoLf) {
  LfDecoder d;
  EXPECT_EQ(all_splits(d, "a\r\nb\rc\r\r\n\r").out, "a\nb\rc\r\n\r");
}

TEST(MimeReadings, RandomInputIsSplitIndependent) {
  std::mt19937_64 rng(11);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n #%-_\t";
  for (int round = 0; round < 40; ++round) {
    std::string in;
    const std::size_t n = rng() % 3000;
    for (std::size_t i = 0; i < n; ++i) in += alphabet[rng() % alphabet.size()];
    Base64LinesDecoder a;
    Base64StrictDecoder b;
    QpReadingDecoder c(true, false), e(false, true);
    LfDecoder f;
    all_splits(a, in);
    all_splits(b, in);
    all_splits(c, in);
    all_splits(e, in);
    all_splits(f, in);
  }
}

}  // namespace
}  // namespace sluice::pipeline
