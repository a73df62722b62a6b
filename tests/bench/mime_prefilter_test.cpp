#include "tests/bench/mime_prefilter.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <utility>
#include <vector>

using namespace sluice::pipeline;

namespace {

struct Collect final : CandidateSink {
  std::vector<std::pair<LineKind, uint64_t>> got;
  void on_candidate(LineKind kind, uint64_t line_start) noexcept override { got.emplace_back(kind, line_start); }
};

const std::string kMessage =
    "From: a@example.org\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
    "MIME-Version: 1.0\r\n"
    "\r\n"
    "preamble\r\n"
    "--b1\r\n"
    "content-type: text/plain\r\n"
    "\r\n"
    "hello\n"
    "begin 644 file.bin\n"
    "#86)C\n"
    "`\n"
    "end\n"
    "- not a delimiter\r\n"
    "--b1\r\n"
    "Content-Disposition: attachment; filename=x.zip\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "UEsDBAoAAAAAAA==\r\n"
    "--b1--\r\n"
    "--";

std::vector<std::pair<LineKind, uint64_t>> expected() {
  std::vector<std::pair<LineKind, uint64_t>> e;
  auto at = [&](const char* s) { return static_cast<uint64_t>(kMessage.find(s)); };
  e.emplace_back(LineKind::content_header, at("Content-Type: multipart"));
  e.emplace_back(LineKind::delimiter, at("--b1\r\ncontent-type"));
  e.emplace_back(LineKind::content_header, at("content-type: text"));
  e.emplace_back(LineKind::uuencode_begin, at("begin 644"));
  e.emplace_back(LineKind::delimiter, at("--b1\r\nContent-Disposition"));
  e.emplace_back(LineKind::content_header, at("Content-Disposition"));
  e.emplace_back(LineKind::content_header, at("Content-Transfer-Encoding"));
  e.emplace_back(LineKind::delimiter, at("--b1--"));
  e.emplace_back(LineKind::delimiter, kMessage.size() - 2);
  return e;
}

std::vector<std::size_t> random_splits(std::mt19937& rng, std::size_t len) {
  std::vector<std::size_t> cuts{0};
  while (cuts.back() < len) cuts.push_back(std::min(len, cuts.back() + 1 + rng() % 23));
  return cuts;
}

}  // namespace

TEST(MimePrefilter, ScalarFindsTheCandidateLines) {
  ScalarPrefilter p;
  p.reset();
  Collect c;
  p.scan(reinterpret_cast<const uint8_t*>(kMessage.data()), kMessage.size(), c);
  p.finish(c);
  EXPECT_EQ(c.got, expected());
}

TEST(MimePrefilter, HyperscanFindsTheSameLines) {
  std::string error;
  auto hs = HyperscanPrefilter::compile(error);
  ASSERT_TRUE(hs) << error;
  auto scratch = hs->make_scratch();
  auto stream = hs->make_stream();
  for (int round = 0; round < 2; ++round) {  // the stream is reused across messages
    hs->reset(*stream, *scratch);
    Collect c;
    hs->scan(*stream, *scratch, reinterpret_cast<const uint8_t*>(kMessage.data()), kMessage.size(), c);
    EXPECT_EQ(c.got, expected());
  }
}

TEST(MimePrefilter, BothAgreeUnderAnySplit) {
  std::string error;
  auto hs = HyperscanPrefilter::compile(error);
  ASSERT_TRUE(hs) << error;
  auto scratch = hs->make_scratch();
  auto stream = hs->make_stream();
  std::mt19937 rng(11);
  const char* pieces[] = {"--", "-", "begin 644 a\n", "begin 9 x\n", "Content-Type: x\r\n", "content-disposition:",
                          "\r\n", "\n", "text ", "b", "c", "begin ", "CONTENT-TRANSFER-ENCODING:"};
  for (int t = 0; t < 200; ++t) {
    std::string msg;
    const int n = 1 + static_cast<int>(rng() % 60);
    for (int i = 0; i < n; ++i) msg += pieces[rng() % std::size(pieces)];
    const auto* d = reinterpret_cast<const uint8_t*>(msg.data());
    ScalarPrefilter whole;
    whole.reset();
    Collect ref;
    whole.scan(d, msg.size(), ref);
    whole.finish(ref);
    ScalarPrefilter sp;
    sp.reset();
    hs->reset(*stream, *scratch);
    Collect a, b;
    const auto cuts = random_splits(rng, msg.size());
    for (std::size_t k = 1; k < cuts.size(); ++k) {
      sp.scan(d + cuts[k - 1], cuts[k] - cuts[k - 1], a);
      hs->scan(*stream, *scratch, d + cuts[k - 1], cuts[k] - cuts[k - 1], b);
    }
    sp.finish(a);
    EXPECT_EQ(a.got, ref.got) << msg;
    EXPECT_EQ(b.got, ref.got) << msg;
  }
}
