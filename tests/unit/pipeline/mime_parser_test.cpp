// pipeline/mime_parser: structure, paths, names (RFC 2047/2231), decoded contents, delimiters and
// line ends, limits, and the split-anywhere property (every message fed whole, byte by byte and
// in random splits gives the same callback log).
#include "pipeline/mime_body_scan.h"
#include "pipeline/mime_parser.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace sluice::pipeline {
namespace {

struct Part {
  std::string path, type, name, disp;
  std::vector<std::string> names;  // PartInfo::filenames
  MimeReading reading = MimeReading::primary;
  TransferEncoding enc{};
  bool attachment = false, uu = false;
  std::string data;
  bool ended = false;
  PartEnd how{};
};

class Recorder final : public MimeCallbacks {
 public:
  std::vector<Part> parts;
  std::vector<std::string> log;
  std::vector<MimeAnomaly> anomalies;

  void on_part_begin(const PartInfo& p) noexcept override {
    Part x;
    x.path = std::string(p.path);
    x.type = std::string(p.content_type);
    x.name = std::string(p.filename);
    x.disp = std::string(p.disposition);
    x.enc = p.encoding;
    x.attachment = p.attachment;
    x.uu = p.uuencoded;
    x.reading = p.reading;
    for_each_name(p.filenames, [&](std::string_view n) { x.names.emplace_back(n); });
    stack_.push_back(parts.size());
    parts.push_back(x);
    log.push_back("begin " + x.path + " " + x.type + " [" + x.name + "] " + x.disp + " " +
                  transfer_encoding_name(x.enc) + (x.attachment ? " att" : "") + (x.uu ? " uu" : ""));
  }
  void on_part_data(const uint8_t* d, std::size_t n) noexcept override {
    if (stack_.empty()) { log.push_back("DATA OUTSIDE A PART"); return; }
    parts[stack_.back()].data.append(reinterpret_cast<const char*>(d), n);
  }
  void on_part_end(PartEnd how) noexcept override {
    if (stack_.empty()) { log.push_back("END OUTSIDE A PART"); return; }
    Part& p = parts[stack_.back()];
    stack_.pop_back();
    p.ended = true;
    p.how = how;
    // The data joined: the log does not depend on how the decoders cut their output.
    log.push_back("end " + p.path + (how == PartEnd::complete ? " complete " : " truncated ") + p.data);
  }
  // Other readings: logged when they end (their start depends on where a trigger is seen).
  std::vector<Part> readings;
  void on_reading_begin(unsigned slot, const PartInfo& p) noexcept override {
    if (slot >= kMaxPartReadings || stack_.empty()) { log.push_back("READING OUTSIDE A PART"); return; }
    Part& x = open_readings_[slot];
    x = Part{};
    x.path = std::string(p.path);
    x.name = std::string(p.filename);
    x.enc = p.encoding;
    x.reading = p.reading;
    x.attachment = p.attachment;
  }
  void on_reading_data(unsigned slot, const uint8_t* d, std::size_t n) noexcept override {
    if (slot < 3) open_readings_[slot].data.append(reinterpret_cast<const char*>(d), n);
  }
  void on_reading_end(unsigned slot, PartEnd how) noexcept override {
    if (slot >= kMaxPartReadings) return;
    Part& x = open_readings_[slot];
    x.ended = true;
    x.how = how;
    readings.push_back(x);
    log.push_back("reading " + x.path + " " + mime_reading_name(x.reading) + " " + x.data);
  }
  const Part* reading(MimeReading k) const {
    for (const auto& p : readings)
      if (p.reading == k) return &p;
    return nullptr;
  }
  void on_anomaly(MimeAnomaly a) noexcept override {
    anomalies.push_back(a);
    log.push_back(std::string("anomaly ") + mime_anomaly_name(a));
  }
  bool has(MimeAnomaly a) const {
    for (auto x : anomalies)
      if (x == a) return true;
    return false;
  }
  const Part* find(const std::string& path) const {
    for (const auto& p : parts)
      if (p.path == path) return &p;
    return nullptr;
  }

 private:
  std::vector<std::size_t> stack_;
  Part open_readings_[kMaxPartReadings];
};

// Feeds `msg` cut at `cuts` (increasing offsets).
Recorder run_cuts(const std::string& msg, const std::vector<std::size_t>& cuts, const MimeLimits& lim = {},
                  bool complete = true) {
  SingleParserPool pool(lim);  // header_lenient: its parts go to `alt`, then into r
  Recorder alt;
  auto parser = std::make_unique<MimeParser>(lim);
  parser->set_alternate(&pool, &alt);
  Recorder r;
  parser->reset(&r);
  const auto* p = reinterpret_cast<const uint8_t*>(msg.data());
  std::size_t off = 0;
  for (std::size_t c : cuts) {
    if (c < off || c > msg.size()) continue;
    parser->feed(p + off, c - off);
    off = c;
  }
  parser->feed(p + off, msg.size() - off);
  parser->finish(complete);
  EXPECT_EQ(parser->attachments(), [&] {
    uint32_t n = 0;
    for (const auto& x : r.parts) n += x.attachment;
    return n;
  }());
  for (const Part& x : alt.parts) {
    EXPECT_EQ(x.reading, MimeReading::header_lenient);
    EXPECT_TRUE(x.ended);
    if (x.attachment) r.readings.push_back(x);
  }
  for (const std::string& line : alt.log) r.log.push_back("header_lenient: " + line);
  return r;
}

Recorder run(const std::string& msg, const MimeLimits& lim = {}, bool complete = true) {
  return run_cuts(msg, {}, lim, complete);
}

// The split-anywhere property: whole, byte by byte, random splits.
Recorder run_all_ways(const std::string& msg, const MimeLimits& lim = {}) {
  Recorder whole = run(msg, lim);
  std::vector<std::size_t> bytes;
  for (std::size_t i = 1; i < msg.size(); ++i) bytes.push_back(i);
  Recorder one = run_cuts(msg, bytes, lim);
  EXPECT_EQ(whole.log, one.log) << "byte by byte";
  std::mt19937 rng(12345);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::size_t> cuts;
    std::size_t off = 0;
    while (off < msg.size()) {
      off += 1 + rng() % (round < 10 ? 8 : 200);
      cuts.push_back(off);
    }
    Recorder r = run_cuts(msg, cuts, lim);
    EXPECT_EQ(whole.log, r.log) << "random split round " << round;
  }
  return whole;
}

std::string crlf(std::string s) {
  std::string o;
  for (char c : s) {
    if (c == '\n') o += '\r';
    o += c;
  }
  return o;
}

std::string b64(const std::string& in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string o;
  std::size_t i = 0, col = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = uint8_t(in[i]) << 16 | uint8_t(in[i + 1]) << 8 | uint8_t(in[i + 2]);
    o += a[v >> 18]; o += a[(v >> 12) & 63]; o += a[(v >> 6) & 63]; o += a[v & 63];
    if ((col += 4) == 76) { o += "\n"; col = 0; }
  }
  if (in.size() - i == 1) {
    uint32_t v = uint8_t(in[i]) << 16;
    o += a[v >> 18]; o += a[(v >> 12) & 63]; o += "==";
  } else if (in.size() - i == 2) {
    uint32_t v = uint8_t(in[i]) << 16 | uint8_t(in[i + 1]) << 8;
    o += a[v >> 18]; o += a[(v >> 12) & 63]; o += a[(v >> 6) & 63]; o += "=";
  }
  return o + "\n";
}

std::string uuencode(const std::string& in) {
  auto enc = [](uint32_t v) { return char(v ? v + 0x20 : '`'); };
  std::string o;
  for (std::size_t i = 0; i < in.size(); i += 45) {
    std::string line = in.substr(i, 45);
    o += enc(uint32_t(line.size()));
    for (std::size_t j = 0; j < line.size(); j += 3) {
      uint8_t b0 = uint8_t(line[j]), b1 = j + 1 < line.size() ? uint8_t(line[j + 1]) : 0,
              b2 = j + 2 < line.size() ? uint8_t(line[j + 2]) : 0;
      o += enc(b0 >> 2); o += enc(((b0 & 3) << 4) | (b1 >> 4));
      o += enc(((b1 & 15) << 2) | (b2 >> 6)); o += enc(b2 & 63);
    }
    o += "\n";
  }
  return o + "`\n";
}

std::string binary_blob(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = char(rng());
  return s;
}

TEST(MimeParser, SinglePartTextIsReportedWithoutData) {
  Recorder r = run_all_ways(crlf("From: a@b\nSubject: hi\n\nHello\nworld\n"));
  ASSERT_EQ(r.parts.size(), 1u);
  EXPECT_EQ(r.parts[0].path, "1");
  EXPECT_EQ(r.parts[0].type, "text/plain");
  EXPECT_FALSE(r.parts[0].attachment);
  EXPECT_EQ(r.parts[0].data, "");
  EXPECT_TRUE(r.parts[0].ended);
  EXPECT_EQ(r.parts[0].how, PartEnd::complete);
}

TEST(MimeParser, SinglePartBase64AttachmentDecodes) {
  std::string blob = binary_blob(1000, 1);
  Recorder r = run_all_ways(crlf("MIME-Version: 1.0\nContent-Type: application/pdf; name=\"report.pdf\"\n"
                                 "Content-Transfer-Encoding: base64\n\n" + b64(blob)));
  ASSERT_EQ(r.parts.size(), 1u);
  EXPECT_EQ(r.parts[0].path, "1");
  EXPECT_EQ(r.parts[0].name, "report.pdf");
  EXPECT_TRUE(r.parts[0].attachment);
  EXPECT_EQ(r.parts[0].data, blob);
  EXPECT_TRUE(r.anomalies.empty());
}

const std::string kMixed = crlf(
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"XYZ\"\n"
    "\n"
    "preamble\n"
    "--XYZ\n"
    "Content-Type: text/plain\n"
    "\n"
    "body text\n"
    "--XYZ\n"
    "Content-Type: application/octet-stream\n"
    "Content-Disposition: attachment; filename=\"data.bin\"\n"
    "Content-Transfer-Encoding: base64\n"
    "\n") + crlf(b64("0123456789abcdef\r\n-- not a boundary\r\n")) + crlf(
    "--XYZ\n"
    "Content-Type: application/x-raw; name=raw.dat\n"
    "\n"
    "line one\n"
    "line two\n"
    "--XYZ--\n"
    "epilogue\n");

TEST(MimeParser, MultipartMixedTextAndBase64Attachment) {
  Recorder r = run_all_ways(kMixed);
  ASSERT_EQ(r.parts.size(), 3u);
  EXPECT_EQ(r.parts[0].path, "1");
  EXPECT_FALSE(r.parts[0].attachment);
  EXPECT_EQ(r.parts[1].path, "2");
  EXPECT_EQ(r.parts[1].name, "data.bin");
  EXPECT_EQ(r.parts[1].disp, "attachment");
  EXPECT_EQ(r.parts[1].enc, TransferEncoding::base64);
  EXPECT_EQ(r.parts[1].data, "0123456789abcdef\r\n-- not a boundary\r\n");
  // RFC 2046 5.1.1: the CRLF before "--XYZ--" belongs to the delimiter, not to the content.
  EXPECT_EQ(r.parts[2].path, "3");
  EXPECT_EQ(r.parts[2].name, "raw.dat");
  EXPECT_EQ(r.parts[2].data, "line one\r\nline two");
  EXPECT_TRUE(r.anomalies.empty()) << r.log.back();
}

TEST(MimeParser, NestedAlternativeInsideMixed) {
  std::string blob = binary_blob(300, 2);
  std::string msg = crlf(
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=outer\n"
      "\n"
      "--outer\n"
      "Content-Type: multipart/alternative; boundary=\"inner\"\n"
      "\n"
      "--inner\n"
      "Content-Type: text/plain\n"
      "\n"
      "plain\n"
      "--inner\n"
      "Content-Type: text/html\n"
      "\n"
      "<p>html</p>\n"
      "--inner--\n"
      "\n"
      "--outer\n"
      "Content-Type: image/png\n"
      "Content-Transfer-Encoding: base64\n"
      "\n") + crlf(b64(blob)) + crlf("--outer--\n");
  Recorder r = run_all_ways(msg);
  ASSERT_EQ(r.parts.size(), 3u);
  EXPECT_EQ(r.parts[0].path, "1.1");
  EXPECT_EQ(r.parts[0].type, "text/plain");
  EXPECT_EQ(r.parts[1].path, "1.2");
  EXPECT_EQ(r.parts[1].type, "text/html");
  EXPECT_EQ(r.parts[2].path, "2");
  EXPECT_TRUE(r.parts[2].attachment);  // not text/*
  EXPECT_EQ(r.parts[2].data, blob);
}

// The strict reading of a DATA stream that the session's own reading ended early (SMTP
// smuggling): a parser resumed from where the first one stood goes on inside its open multiparts,
// skips the rest of the cut part and finds the parts that follow, numbered as they would be.
TEST(MimeParser, ResumeContinuesTheOpenMultiparts) {
  const std::string head = crlf(
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=outer\n"
      "\n"
      "--outer\n"
      "Content-Type: multipart/alternative; boundary=inner\n"
      "\n"
      "--inner\n"
      "Content-Type: text/plain\n"
      "\n"
      "plain, then cut\n");
  const std::string rest = crlf(
      "MAIL FROM:<ceo@example.net>\n"
      "--not-a-delimiter\n"
      "--inner\n"
      "Content-Type: application/octet-stream; name=a.bin\n"
      "\n"
      "AAA\n"
      "--inner--\n"
      "--outer\n"
      "Content-Type: application/pdf; name=b.pdf\n"
      "\n"
      "BBB\n"
      "--outer--\n");
  Recorder first, second;
  MimeParser p, q;
  p.reset(&first);
  p.feed(reinterpret_cast<const uint8_t*>(head.data()), head.size());
  q.resume(&second, p);
  p.finish(true);
  q.feed(reinterpret_cast<const uint8_t*>(rest.data()), rest.size());
  q.finish(true);
  ASSERT_EQ(first.parts.size(), 1u);
  EXPECT_EQ(first.parts[0].path, "1.1");
  ASSERT_EQ(second.parts.size(), 2u) << ::testing::PrintToString(second.log);
  EXPECT_EQ(second.parts[0].path, "1.2");
  EXPECT_EQ(second.parts[0].name, "a.bin");
  EXPECT_EQ(second.parts[0].data, "AAA");
  EXPECT_EQ(second.parts[1].path, "2");
  EXPECT_EQ(second.parts[1].name, "b.pdf");
  EXPECT_EQ(second.parts[1].data, "BBB");

  // Outside any multipart (or inside a header block) there is nothing to continue: a new message.
  MimeParser single, fresh;
  Recorder ignored, third;
  const std::string plain = crlf("Subject: x\n\nbody\n");
  single.reset(&ignored);
  single.feed(reinterpret_cast<const uint8_t*>(plain.data()), plain.size());
  fresh.resume(&third, single);
  const std::string next = crlf("Content-Type: application/zip; name=c.zip\n\nCCC\n");
  fresh.feed(reinterpret_cast<const uint8_t*>(next.data()), next.size());
  fresh.finish(true);
  ASSERT_EQ(third.parts.size(), 1u);
  EXPECT_EQ(third.parts[0].name, "c.zip");
}

TEST(MimeParser, MessageRfc822PartWithItsOwnAttachment) {
  std::string blob = binary_blob(200, 3);
  std::string msg = crlf(
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=b1\n"
      "\n"
      "--b1\n"
      "\n"
      "cover note\n"
      "--b1\n"
      "Content-Type: message/rfc822\n"
      "\n"
      "Subject: forwarded\n"
      "Content-Type: multipart/mixed; boundary=b2\n"
      "\n"
      "--b2\n"
      "Content-Type: text/plain\n"
      "\n"
      "inner text\n"
      "--b2\n"
      "Content-Type: application/zip; name=inner.zip\n"
      "Content-Transfer-Encoding: base64\n"
      "\n") + crlf(b64(blob)) + crlf(
      "--b2--\n"
      "--b1\n"
      "Content-Type: message/rfc822\n"
      "\n"
      "Subject: simple\n"
      "\n"
      "just text\n"
      "--b1--\n");
  Recorder r = run_all_ways(msg);
  ASSERT_EQ(r.parts.size(), 4u);
  EXPECT_EQ(r.parts[0].path, "1");
  EXPECT_EQ(r.parts[1].path, "2.1");
  EXPECT_EQ(r.parts[2].path, "2.2");
  EXPECT_EQ(r.parts[2].name, "inner.zip");
  EXPECT_EQ(r.parts[2].data, blob);
  EXPECT_EQ(r.parts[3].path, "3.1");
  EXPECT_FALSE(r.parts[3].attachment);
}

TEST(MimeParser, Base64EncodedMessageGlobalIsParsed) {
  std::string blob = binary_blob(120, 4);
  std::string inner = crlf("Content-Type: multipart/mixed; boundary=in\n\n--in\n\ntext\n--in\n"
                           "Content-Type: application/zip; name=x.zip\nContent-Transfer-Encoding: base64\n\n") +
                      crlf(b64(blob)) + crlf("--in--\n");
  std::string msg = crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=out\n\n--out\n"
                         "Content-Type: message/global\nContent-Transfer-Encoding: base64\n\n") +
                    crlf(b64(inner)) + crlf("--out--\n");
  Recorder r = run_all_ways(msg);
  ASSERT_EQ(r.parts.size(), 2u);
  EXPECT_EQ(r.parts[0].path, "1.1");
  EXPECT_EQ(r.parts[1].path, "1.2");
  EXPECT_EQ(r.parts[1].name, "x.zip");
  EXPECT_EQ(r.parts[1].data, blob);
}

TEST(MimeParser, MessageRfc822DeclaredBase64ButNotEncoded) {
  // Suricata issue 8649: the declared encoding is not applied; the inner message is read as is.
  std::string msg = crlf("MIME-Version: 1.0\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n"
                         "Content-Disposition: attachment; filename=\"innocent.txt\"\n\n"
                         "Subject: inner\nContent-Type: application/octet-stream\n"
                         "Content-Disposition: attachment; filename=\"malware.exe\"\n\nPAYLOAD\n");
  Recorder r = run_all_ways(msg);
  ASSERT_EQ(r.parts.size(), 1u);
  EXPECT_EQ(r.parts[0].path, "1.1");
  EXPECT_EQ(r.parts[0].name, "malware.exe");
  EXPECT_EQ(r.parts[0].data, "PAYLOAD\r\n");
  EXPECT_TRUE(r.has(MimeAnomaly::encoding_not_allowed));
  // Really encoded: decoded and parsed.
  std::string inner = crlf("Subject: inner\nContent-Type: application/zip; name=in.zip\n\nZIPDATA");
  Recorder e = run_all_ways(crlf("MIME-Version: 1.0\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n") +
                            crlf(b64(inner)));
  ASSERT_EQ(e.parts.size(), 1u);
  EXPECT_EQ(e.parts[0].path, "1.1");
  EXPECT_EQ(e.parts[0].name, "in.zip");
  EXPECT_EQ(e.parts[0].data, "ZIPDATA");
  // Encoded inside encoded (mime4j base64encoded-rfc822message-nested): both levels decoded and
  // parsed; the text body at the bottom is a text part, not an opaque message/rfc822 attachment.
  std::string deepest = crlf("Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\n"
                             "Text body\n--x\nContent-Type: application/zip; name=deep.zip\n"
                             "Content-Transfer-Encoding: base64\n\n") + crlf(b64("DEEPZIP")) + crlf("--x--\n");
  std::string middle = crlf("Subject: middle\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n") +
                       crlf(b64(deepest));
  Recorder d = run_all_ways(crlf("MIME-Version: 1.0\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n") +
                            crlf(b64(middle)));
  ASSERT_EQ(d.parts.size(), 2u);
  EXPECT_EQ(d.parts[0].path, "1.1.1");
  EXPECT_EQ(d.parts[0].type, "text/plain");
  EXPECT_FALSE(d.parts[0].attachment);
  EXPECT_EQ(d.parts[1].path, "1.1.2");
  EXPECT_EQ(d.parts[1].name, "deep.zip");
  EXPECT_EQ(d.parts[1].data, "DEEPZIP");
}

std::string one_attachment(const std::string& headers) {
  return crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\n" + headers +
              "\n\nQUJD\n--B--\n");
}

TEST(MimeParser, Rfc2231ContinuationsAndCharsets) {
  Recorder r = run_all_ways(one_attachment(
      "Content-Type: application/octet-stream\n"
      "Content-Disposition: attachment;\n filename*0*=utf-8''%E2%82%AC%20rate;\n filename*1*=s%20%C3%A9t%C3%A9.pdf"));
  ASSERT_EQ(r.parts.size(), 1u);
  EXPECT_EQ(r.parts[0].name, "\xE2\x82\xAC rates \xC3\xA9t\xC3\xA9.pdf");
  EXPECT_EQ(r.parts[0].data, "QUJD");  // no Content-Transfer-Encoding: as is

  r = run_all_ways(one_attachment(
      "Content-Type: application/octet-stream;\n name*2=\".exe\"; name*0=\"in\"; name*1=voice"));
  EXPECT_EQ(r.parts[0].name, "invoice.exe");

  r = run_all_ways(one_attachment("Content-Type: application/octet-stream; name*=iso-8859-1'fr'caf%E9.txt"));
  EXPECT_EQ(r.parts[0].name, "caf\xC3\xA9.txt");

  // The RFC 2231 form wins over a plain one, whichever comes first.
  r = run_all_ways(one_attachment("Content-Type: application/octet-stream; name=\"a.png\"; name*0=b.; name*1=zip"));
  EXPECT_EQ(r.parts[0].name, "b.zip");
}

TEST(MimeParser, Rfc2047EncodedWordFilenames) {
  Recorder r = run_all_ways(one_attachment(
      "Content-Type: application/pdf\nContent-Disposition: attachment; filename=\"=?UTF-8?B?w6l0w6kucGRm?=\""));
  EXPECT_EQ(r.parts[0].name, "\xC3\xA9t\xC3\xA9.pdf");
  r = run_all_ways(one_attachment(
      "Content-Type: application/pdf\nContent-Disposition: attachment;\n filename=\"=?iso-8859-1?Q?r=E9sum=E9_final?= =?iso-8859-1?Q?.doc?=\""));
  EXPECT_EQ(r.parts[0].name, "r\xC3\xA9sum\xC3\xA9 final.doc");
  r = run_all_ways(one_attachment("Content-Type: application/pdf; name==?utf-8?q?na=C3=AFve.txt?="));
  EXPECT_EQ(r.parts[0].name, "na\xC3\xAFve.txt");
  r = run_all_ways(one_attachment("Content-Type: application/pdf; name=\"=?iso-8859-1?B?Z3L832Uuemlw?=\""));
  EXPECT_EQ(r.parts[0].name, "gr\xC3\xBC\xC3\x9F" "e.zip");
}

TEST(MimeParser, NameParameterIsTheFallback) {
  Recorder r = run_all_ways(one_attachment("Content-Type: text/plain; name=\"notes.txt\""));
  EXPECT_EQ(r.parts[0].name, "notes.txt");
  EXPECT_TRUE(r.parts[0].attachment);  // a file name makes a text part an attachment
  EXPECT_EQ(r.parts[0].data, "QUJD");  // 7bit: as is
  r = run_all_ways(one_attachment("Content-Type: text/plain; name=a.txt\nContent-Disposition: attachment; filename=b.txt"));
  EXPECT_EQ(r.parts[0].name, "b.txt");
}

TEST(MimeParser, QuoteInAnUnquotedFileNameIsDropped) {
  // mime-is-broken "nEQx" / "nQx": a '"' cannot be part of a token (RFC 2045 5.1); Outlook removes
  // it from attachment names (MS-OXCMAIL 2.2.3.4.1.1), so the file is file.zip (header_fields.cpp).
  Recorder r = run_all_ways(one_attachment("Content-Type: application/octet-stream; name=file\\\".zip"));
  EXPECT_EQ(r.parts[0].name, "file.zip");
  r = run_all_ways(one_attachment("Content-Type: application/octet-stream\n"
                                  "Content-Disposition: attachment; filename=file\\\".zip"));
  EXPECT_EQ(r.parts[0].name, "file.zip");
  r = run_all_ways(one_attachment("Content-Type: application/octet-stream; name=file.exe\""));
  EXPECT_EQ(r.parts[0].name, "file.exe");  // the real extension, as Outlook saves it
  r = run_all_ways(one_attachment("Content-Type: application/octet-stream; name*0=fi\"le.; name*1*=z%69p\""));
  EXPECT_EQ(r.parts[0].name, "file.zip");
  // A quoted-pair inside a quoted string is a real '"' of the name (RFC 822), and so is an
  // RFC 2231 %22: both stay.
  r = run_all_ways(one_attachment("Content-Type: application/octet-stream; name=\"file\\\".zip\""));
  EXPECT_EQ(r.parts[0].name, "file\".zip");
  r = run_all_ways(one_attachment("Content-Type: application/octet-stream; name*=utf-8''file%22.zip"));
  EXPECT_EQ(r.parts[0].name, "file\".zip");
  // Not in a boundary: it is compared as written with the delimiter lines.
  Recorder b = run_all_ways(crlf("Content-Type: multipart/mixed; boundary=a\"b\n\n--a\"b\n"
                                 "Content-Type: application/octet-stream\n\nx\n--a\"b--\n"));
  ASSERT_EQ(b.parts.size(), 1u);
  EXPECT_EQ(b.parts[0].type, "application/octet-stream");
  EXPECT_FALSE(b.has(MimeAnomaly::missing_close_delimiter));
}

TEST(MimeParser, MissingFinalBoundaryEndsAtTheEnd) {
  std::string msg = crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
                         "Content-Type: application/octet-stream\n\nabc\n--B\n"
                         "Content-Type: application/octet-stream\n\nlast\n");
  Recorder r = run_all_ways(msg);
  ASSERT_EQ(r.parts.size(), 2u);
  EXPECT_EQ(r.parts[0].data, "abc");
  EXPECT_EQ(r.parts[1].data, "last\r\n");  // no delimiter follows: its line end is content
  EXPECT_EQ(r.parts[1].how, PartEnd::complete);
  EXPECT_TRUE(r.has(MimeAnomaly::missing_close_delimiter));
  // An incomplete transfer: the open part is truncated.
  Recorder t = run(msg, {}, false);
  EXPECT_EQ(t.parts[1].how, PartEnd::truncated);
}

TEST(MimeParser, MissingInnerCloseDelimiterDoesNotSwallowTheRest) {
  std::string msg = crlf("Content-Type: multipart/mixed; boundary=out\n\n--out\n"
                         "Content-Type: multipart/alternative; boundary=in\n\n--in\n\ntext\n"
                         "--out\nContent-Type: application/zip; name=z.zip\n\nZIP\n--out--\n");
  Recorder r = run_all_ways(msg);
  ASSERT_EQ(r.parts.size(), 2u);
  EXPECT_EQ(r.parts[0].path, "1.1");
  EXPECT_EQ(r.parts[1].path, "2");
  EXPECT_EQ(r.parts[1].data, "ZIP");
  EXPECT_TRUE(r.has(MimeAnomaly::missing_close_delimiter));
}

TEST(MimeParser, BoundarySplitAcrossFeedsAtEveryPosition) {
  Recorder whole = run(kMixed);
  for (std::size_t i = 1; i < kMixed.size(); ++i) {
    Recorder r = run_cuts(kMixed, {i});
    ASSERT_EQ(whole.log, r.log) << "cut at " << i;
  }
  for (std::size_t i = 1; i + 1 < kMixed.size(); i += 3) {
    Recorder r = run_cuts(kMixed, {i, i + 1});
    ASSERT_EQ(whole.log, r.log) << "cuts at " << i;
  }
}

TEST(MimeParser, BareLfLineEnds) {
  std::string msg =
      "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
      "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n" +
      b64("bare lf content") + "--B\nContent-Type: application/x-y; name=r.txt\n\nr1\nr2\n--B--\n";
  Recorder r = run_all_ways(msg);
  ASSERT_EQ(r.parts.size(), 2u);
  EXPECT_EQ(r.parts[0].data, "bare lf content");
  EXPECT_EQ(r.parts[1].data, "r1\nr2");
  EXPECT_TRUE(r.has(MimeAnomaly::bare_lf));
  // CRLF and LF mixed.
  Recorder m = run_all_ways("Content-Type: multipart/mixed; boundary=B\r\n\n--B\r\nContent-Type: a/b\n\r\nx\r\ny\n--B--\r\n");
  ASSERT_EQ(m.parts.size(), 1u);
  EXPECT_EQ(m.parts[0].data, "x\r\ny");
}

TEST(MimeParser, PreambleAndEpilogueWithBoundaryLikeLines) {
  std::string msg = crlf(
      "Content-Type: multipart/mixed; boundary=\"B\"\n\n"
      "This is a multi-part message.\n"
      "--Bx not ours\n"
      "-- B\n"
      "--B-\n"
      "--B\n"
      "Content-Type: application/octet-stream\n\n"
      "--Bfoo\n"
      " --B\n"
      "--B--x\n"
      "--B  \t\n"
      "Content-Type: application/octet-stream\n\n"
      "second\n"
      "--B-- \n"
      "--Bepilogue\n"
      "--B--\n");
  Recorder r = run_all_ways(msg);
  ASSERT_EQ(r.parts.size(), 2u);
  EXPECT_EQ(r.parts[0].data, "--Bfoo\r\n --B\r\n--B--x");
  EXPECT_EQ(r.parts[1].data, "second");
}

TEST(MimeParser, BoundarySniffedFromTheFirstBodyLine) {
  // No usable boundary parameter (hidden in another parameter's quotes): the first body line
  // "--X" gives it.
  Recorder r = run_all_ways(crlf("Content-Type: multipart/mixed; foo=\"bar;boundary=b1\"\n\n--b1\n"
                                 "Content-Type: application/zip; name=a.zip\n\nZIP\n--b1--\n"));
  ASSERT_EQ(r.parts.size(), 1u);
  EXPECT_EQ(r.parts[0].path, "1");
  EXPECT_EQ(r.parts[0].data, "ZIP");
  EXPECT_TRUE(r.has(MimeAnomaly::missing_boundary));
  // A declared boundary that differs from the first line: both work.
  Recorder d = run_all_ways(crlf("Content-Type: multipart/mixed; boundary=\"a b\"\n\n--ab\n"
                                 "Content-Type: application/zip; name=a.zip\n\nZIP\n--a b\n\ntext\n--ab--\n"));
  ASSERT_EQ(d.parts.size(), 2u);
  EXPECT_EQ(d.parts[0].data, "ZIP");
  // No boundary and no "--X" first line: the body is one leaf, read as text/plain (RFC 2045 5.2;
  // a leaf is never multipart/*), so not an attachment (cpython msg_25, msg_41), still scanned
  // for uuencoded blocks.
  Recorder l = run_all_ways(crlf("Content-Type: multipart/mixed\n\n\nhello\n--x\nbegin 644 a.bin\n") +
                            crlf(uuencode("abc")) + crlf("end\n"));
  ASSERT_EQ(l.parts.size(), 2u);
  EXPECT_EQ(l.parts[0].type, "text/plain");
  EXPECT_FALSE(l.parts[0].attachment);
  EXPECT_EQ(l.parts[0].data, "");
  EXPECT_EQ(l.parts[1].path, "1.u1");
  EXPECT_EQ(l.parts[1].data, "abc");
  // ... unless it names a file.
  Recorder n = run_all_ways(crlf("Content-Type: multipart/mixed; name=x.zip\n\nZIP\n"));
  ASSERT_EQ(n.parts.size(), 1u);
  EXPECT_TRUE(n.parts[0].attachment);
  EXPECT_EQ(n.parts[0].data, "ZIP\r\n");  // no delimiter: the last line end is content
}

TEST(MimeParser, UuencodedBlockInsideATextBody) {
  std::string blob = binary_blob(100, 5);
  std::string msg = crlf("Subject: old style\n\nHere is the file:\n\nbegin 644 hello.bin\n") +
                    crlf(uuencode(blob)) + crlf("end\nbye\nbegin 0755 two.exe\n") + crlf(uuencode("MZ")) +
                    crlf("end\n");
  Recorder r = run_all_ways(msg);
  ASSERT_EQ(r.parts.size(), 3u);
  EXPECT_EQ(r.parts[0].path, "1");
  EXPECT_FALSE(r.parts[0].attachment);
  EXPECT_EQ(r.parts[1].path, "1.u1");
  EXPECT_TRUE(r.parts[1].uu);
  EXPECT_TRUE(r.parts[1].attachment);
  EXPECT_EQ(r.parts[1].name, "hello.bin");
  EXPECT_EQ(r.parts[1].data, blob);
  EXPECT_EQ(r.parts[2].path, "1.u2");
  EXPECT_EQ(r.parts[2].name, "two.exe");
  EXPECT_EQ(r.parts[2].data, "MZ");
  // Nested inside the text part: begin 1, begin 1.u1, end 1.u1, ..., end 1.
  EXPECT_EQ(r.log.front().substr(0, 8), "begin 1 ");
  EXPECT_EQ(r.log.back().substr(0, 6), "end 1 ");
  // "begin" lines that are not uuencode headers.
  Recorder n = run_all_ways(crlf("\nbegin here\nbegin 64 x\nbegin 644\n"));
  EXPECT_EQ(n.parts.size(), 1u);
  // "begin 644 " with the name lost: still a block (mime4j sig-uu; uudecode decodes it).
  Recorder e = run_all_ways(crlf("\nbegin 644 \n") + crlf(uuencode("xyz")) + crlf("end\n"));
  ASSERT_EQ(e.parts.size(), 2u);
  EXPECT_EQ(e.parts[1].name, "");
  EXPECT_EQ(e.parts[1].data, "xyz");
}

TEST(MimeParser, CandidateLinesOfAKibibyteOrMoreAreOrdinaryHoweverSplit) {
  // kCarryCap (1024) bytes with the LF: a held line start that long is ordinary, so the same line
  // fed whole must be ordinary too. One byte shorter: a uuencoded block, whole or split.
  for (std::size_t total : {1022u, 1023u, 1024u, 1025u, 3000u}) {
    const std::string head = "begin 644 ";
    const std::string name(total - head.size() - 2, 'n');  // + CRLF
    const std::string msg = crlf("\n") + head + name + "\r\n" + crlf(uuencode("data")) + crlf("end\n");
    Recorder r = run_all_ways(msg);
    SCOPED_TRACE(total);
    EXPECT_EQ(r.parts.size(), total < 1024 ? 2u : 1u);
  }
}

TEST(MimeParser, UuencodedBlockInsideEncodedTextBodies) {
  // "begin NNN name" is only visible once the text body is decoded (base64 or quoted-printable).
  std::string blob = binary_blob(200, 7);
  std::string text = crlf("Here is the file:\nbegin 644 inside.bin\n") + crlf(uuencode(blob)) +
                     crlf("end\nbye\nbegin 600 last.exe\n") + crlf(uuencode("MZ\x90")) + "end";
  // Quoted-printable: '=' escaped, and a soft line break inside the first "begin" line.
  std::string qp;
  for (char c : text) {
    if (c == '=') qp += "=3D";
    else qp += c;
  }
  std::size_t at = qp.find("begin 644");
  qp.insert(at + 3, "=\r\n");
  std::string msg = crlf("From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"
                         "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n") +
                    crlf(b64(text)) +
                    crlf("--b\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n") + qp +
                    crlf("\n--b--\n");
  Recorder r = run_all_ways(msg);
  ASSERT_EQ(r.parts.size(), 6u);
  for (const char* part : {"1", "2"}) {
    std::string p = part;
    const Part* t = r.find(p);
    ASSERT_NE(t, nullptr) << p;
    EXPECT_FALSE(t->attachment);
    EXPECT_EQ(t->data, "");  // text parts get no data
    const Part* u1 = r.find(p + ".u1");
    ASSERT_NE(u1, nullptr) << p;
    EXPECT_TRUE(u1->uu);
    EXPECT_TRUE(u1->attachment);
    EXPECT_EQ(u1->name, "inside.bin");
    EXPECT_EQ(u1->data, blob);
    EXPECT_EQ(u1->how, PartEnd::complete);
    const Part* u2 = r.find(p + ".u2");
    ASSERT_NE(u2, nullptr) << p;
    EXPECT_EQ(u2->name, "last.exe");
    EXPECT_EQ(u2->data, "MZ\x90");
  }
  // Nested inside their text part.
  ASSERT_GE(r.log.size(), 12u);
  EXPECT_EQ(r.log[0].substr(0, 8), "begin 1 ");
  EXPECT_EQ(r.log[1].substr(0, 11), "begin 1.u1 ");
  EXPECT_EQ(r.log[5].substr(0, 6), "end 1 ");
  EXPECT_FALSE(r.has(MimeAnomaly::bad_uuencode));
  EXPECT_FALSE(r.has(MimeAnomaly::bad_quoted_printable));
  // A block cut by the end of the part: reported, the anomaly noted.
  std::string cut = crlf("Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n") +
                    crlf(b64("begin 644 cut.bin\n" + uuencode("abc").substr(0, 5)));
  Recorder c = run_all_ways(cut);
  ASSERT_EQ(c.parts.size(), 2u);
  EXPECT_EQ(c.parts[1].name, "cut.bin");
  EXPECT_EQ(c.parts[1].data, "abc");
  EXPECT_TRUE(c.has(MimeAnomaly::bad_uuencode));
  // Turned off: no blocks.
  MimeLimits off;
  off.uuencode = false;
  EXPECT_EQ(run_all_ways(msg, off).parts.size(), 2u);
}

TEST(MimeParser, DepthLimit) {
  MimeLimits lim;
  lim.max_depth = 2;
  std::string msg = crlf(
      "Content-Type: multipart/mixed; boundary=a\n\n--a\n"
      "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
      "Content-Type: multipart/mixed; boundary=c\n\n--c\n\ndeep\n--c--\n"
      "--b--\n--a--\n");
  Recorder r = run_all_ways(msg, lim);
  EXPECT_TRUE(r.has(MimeAnomaly::depth_exceeded));
  ASSERT_EQ(r.parts.size(), 1u);
  EXPECT_EQ(r.parts[0].path, "1.1");
  EXPECT_EQ(r.parts[0].type, "multipart/mixed");
  EXPECT_EQ(r.parts[0].data, "--c\r\n\r\ndeep\r\n--c--");
  Recorder ok = run_all_ways(msg);
  ASSERT_EQ(ok.parts.size(), 1u);
  EXPECT_EQ(ok.parts[0].path, "1.1.1");
}

TEST(MimeParser, PartLimit) {
  MimeLimits lim;
  lim.max_parts = 2;
  std::string msg = crlf("Content-Type: multipart/mixed; boundary=a\n\n--a\n\n1\n--a\n\n2\n--a\n\n3\n--a--\n");
  Recorder r = run_all_ways(msg, lim);
  EXPECT_EQ(r.parts.size(), 2u);
  EXPECT_TRUE(r.has(MimeAnomaly::too_many_parts));
}

TEST(MimeParser, LongFileNameKeepsItsExtension) {
  std::string name(276, 'a');
  name += ".exe";
  Recorder r = run_all_ways(one_attachment("Content-Type: application/octet-stream; name=\"" + name + "\""));
  EXPECT_EQ(r.parts[0].name, name);
  std::string huge(5000, 'b');
  huge += ".exe";
  r = run_all_ways(one_attachment("Content-Type: application/octet-stream; name=\"" + huge + "\""));
  ASSERT_GT(r.parts[0].name.size(), 100u);
  EXPECT_LT(r.parts[0].name.size(), huge.size());
  EXPECT_EQ(r.parts[0].name.substr(r.parts[0].name.size() - 4), ".exe");
}

TEST(MimeParser, QuotedPrintableAttachmentAndCrlfBeforeDelimiter) {
  std::string msg = crlf("Content-Type: multipart/mixed; boundary=q\n\n--q\n"
                         "Content-Type: application/octet-stream; name=q.bin\n"
                         "Content-Transfer-Encoding: quoted-printable\n\n"
                         "caf=C3=A9 =\nsoft\n\n--q--\n");
  Recorder r = run_all_ways(msg);
  ASSERT_EQ(r.parts.size(), 1u);
  EXPECT_EQ(r.parts[0].data, "caf\xC3\xA9 soft\r\n");  // the last CRLF before the delimiter is not content
}

TEST(MimeParser, HeaderQuirks) {
  // Folded parameters, comments, duplicate Content-Type (first wins), unusual boundary quoting.
  std::string msg = crlf("Content-Type: multipart/mixed (comment);\n\tboundary=\"=_x y\"\n"
                         "Content-Type: text/plain\n\n--=_x y\n"
                         "Content-Type: application/octet-stream; name=file.zip(.gif)\n\nZ\n--=_x y--\n");
  Recorder r = run_all_ways(msg);
  ASSERT_EQ(r.parts.size(), 1u);
  EXPECT_EQ(r.parts[0].name, "file.zip");
  EXPECT_TRUE(r.has(MimeAnomaly::duplicate_header));
  // Single quotes, backslash escapes in a token, trailing space in a quoted boundary.
  Recorder s = run_all_ways(crlf("Content-Type: multipart/mixed; boundary='b c'\n\n--b c\n\nx\n--b c--\n"));
  EXPECT_EQ(s.parts.size(), 1u);
  Recorder t = run_all_ways(crlf("Content-Type: multipart/mixed; foo=bla\\\";boundary=b_1\n\n--b_1\n\nx\n--b_1--\n"));
  EXPECT_EQ(t.parts.size(), 1u);
  Recorder u = run_all_ways(crlf("Content-Type: multipart/mixed; boundary=\"b_2 \"\n\n--b_2 \n\nx\n--b_2 --\n"));
  ASSERT_EQ(u.parts.size(), 1u);
  EXPECT_FALSE(u.has(MimeAnomaly::missing_close_delimiter));
  // A header block that ends without its empty line: the first non-header line starts the body.
  Recorder v = run_all_ways(crlf("Content-Type: multipart/mixed; boundary=B\n\n--B\n"
                                 "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
                                 "QUJD\n--B--\n"));
  ASSERT_EQ(v.parts.size(), 1u);
  EXPECT_EQ(v.parts[0].data, "ABC");
}

TEST(MimeParser, AnomaliesAreReported) {
  std::string msg = crlf("Content-Type: multipart/mixed; boundary=B\nContent-Transfer-Encoding: x-foo\n\n--B\n"
                         "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
                         "QU!JD\n--B--\n");
  Recorder r = run_all_ways(msg);
  EXPECT_TRUE(r.has(MimeAnomaly::missing_mime_version));
  EXPECT_TRUE(r.has(MimeAnomaly::invalid_transfer_encoding));
  EXPECT_TRUE(r.has(MimeAnomaly::bad_base64));
  Recorder nb = run_all_ways(crlf("Content-Type: multipart/mixed\n\nbody\n"));
  EXPECT_TRUE(nb.has(MimeAnomaly::missing_boundary));
  ASSERT_EQ(nb.parts.size(), 1u);
  EXPECT_EQ(nb.parts[0].type, "text/plain");  // unsplittable: read as text (RFC 2045 5.2)
  EXPECT_FALSE(nb.parts[0].attachment);
  std::string long_line(1200, 'x');
  Recorder ll = run_all_ways(crlf("Subject: s\n\n" + long_line + "\n"));
  EXPECT_TRUE(ll.has(MimeAnomaly::line_too_long));
}

TEST(MimeParser, ResetBetweenMessages) {
  auto parser = std::make_unique<MimeParser>();
  Recorder a, b;
  parser->reset(&a);
  parser->feed(reinterpret_cast<const uint8_t*>(kMixed.data()), kMixed.size() / 2);
  parser->finish(false);
  parser->reset(&b);
  parser->feed(reinterpret_cast<const uint8_t*>(kMixed.data()), kMixed.size());
  parser->finish(true);
  Recorder whole = run(kMixed);
  EXPECT_EQ(b.log, whole.log);
  EXPECT_EQ(parser->attachments(), 2u);
}


// Hyperscan body scan (use_body_scan): with exact_lines, the same callback log as the SSE2 scan
// under any split, one parser and one stream reused across messages; without, the same parts
// (only bare_lf / line_too_long inside skipped lines may be missing).

std::string scan_test_message(std::mt19937& rng) {
  std::string m = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BB\"\r\n\r\npre\r\n";
  for (int part = 0, parts = 1 + int(rng() % 3); part < parts; ++part) {
    m += "--BB\r\n";
    m += rng() % 2 ? "Content-Type: text/plain\r\n\r\n" : "Content-Type: application/octet-stream; name=a.bin\r\n\r\n";
    for (int l = 0, lines = int(rng() % 300); l < lines; ++l) {
      const unsigned k = rng() % 100;
      std::string line;
      if (k < 3) line = std::string(996 + rng() % 6, 'x');
      else if (k < 8) line = "begin 644 f.bin";
      else if (k < 12) line = "end";
      else if (k < 16) line = "-x";
      else if (k < 20) line = "bz";
      else if (k < 24) line = "M" + std::string(60, '!');
      else line = std::string(rng() % 120, 'a');
      if (k < 3 && rng() % 3 == 0) line.back() = '\r';
      m += line;
      m += rng() % 50 == 0 ? "\n" : "\r\n";
    }
  }
  if (rng() % 2) m += "--BB--\r\n";
  return m;
}

TEST(MimeBodyScan, SameCallbacksAsTheSse2Scan) {
  std::string error;
  for (bool exact : {true, false}) {
    auto scan = MimeBodyScan::compile(error, exact);
    ASSERT_TRUE(scan) << error;
    auto scratch = scan->make_scratch();
    auto parser = std::make_unique<MimeParser>();
    ASSERT_TRUE(parser->use_body_scan(scan.get(), scratch.get()));
    std::mt19937 rng(7);
    for (int i = 0; i < 150; ++i) {
      const std::string msg = scan_test_message(rng);
      Recorder sse = run(msg);
      std::vector<std::size_t> cuts;
      for (std::size_t off = 0; i % 3 && off < msg.size();) cuts.push_back(off += 1 + rng() % (i % 2 ? 16 : 2000));
      Recorder sse_cut = run_cuts(msg, cuts);
      EXPECT_EQ(sse.log, sse_cut.log) << "SSE2 scan, whole and split, message " << i;
      Recorder r;
      parser->reset(&r);
      std::size_t off = 0;
      for (std::size_t c : cuts) {
        if (c > msg.size()) break;
        parser->feed(reinterpret_cast<const uint8_t*>(msg.data()) + off, c - off);
        off = c;
      }
      parser->feed(reinterpret_cast<const uint8_t*>(msg.data()) + off, msg.size() - off);
      parser->finish(true);
      if (exact) {
        EXPECT_EQ(sse_cut.log, r.log) << "message " << i;
      } else {
        auto strip = [](std::vector<std::string> v) {
          std::erase_if(v, [](const std::string& s) { return s.rfind("anomaly ", 0) == 0; });
          return v;
        };
        EXPECT_EQ(strip(sse.log), strip(r.log)) << "message " << i;
      }
    }
  }
}

// ---- file name candidates (PartInfo::filenames) and other readings (mime_readings.h) ----

// A message whose part "2" has `headers` and `body` (LF line ends, made CRLF here).
std::string one_part(const std::string& headers, const std::string& body) {
  return crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\n" +
              headers + "\n" + body + "\n--b--\n");
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v)
    if (x == s) return true;
  return false;
}

TEST(MimeParserNames, FoldedFieldLooksLikeAnotherHeaderNotInTheName) {
  Recorder r = run_all_ways(one_part(("Content-Type: application/pdf\nContent-Disposition: attachment; filename=report.pdf\n"
                                          " X-Mailer: evil.exe\n"), "x\n"));
  const Part* p = r.find("2");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name, "report.pdf");
  EXPECT_EQ(p->names.front(), "report.pdf");
  EXPECT_TRUE(has(p->names, "report.pdf X-Mailer: evil.exe")) << "the reading across the fold is listed";
}

TEST(MimeParserNames, EscapedSemicolonKeepsTheExtension) {
  Recorder r = run_all_ways(one_part(("Content-Type: application/zip; name=file\\;.zip\n"), "x\n"));
  const Part* p = r.find("2");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name, "file;.zip");
  EXPECT_TRUE(has(p->names, "file")) << "Thunderbird's and Python's reading";
}

TEST(MimeParserNames, EveryFieldAndSectionOrder) {
  // Two Content-Disposition fields, RFC 2231 sections split over two Content-Type fields, a
  // quote Outlook removes, a directory a client strips.
  Recorder r = run_all_ways(one_part(
      crlf("Content-Type: application/octet-stream; name*0=fi\nContent-Type: application/octet-stream; name*1=le.zip\n"
           "Content-Disposition: attachment; filename=file.png\nContent-Disposition: attachment; filename=\"a\\\"b.exe\"\n"
           "X-Other: 1\n"),
      "x\n"));
  const Part* p = r.find("2");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name, "file.png");
  EXPECT_TRUE(has(p->names, "a\"b.exe"));
  EXPECT_TRUE(has(p->names, "ab.exe"));
  EXPECT_TRUE(has(p->names, "file.zip")) << "sections joined across the two fields";
  EXPECT_TRUE(r.has(MimeAnomaly::duplicate_header));
  r = run_all_ways(one_part(("Content-Type: application/octet-stream; name=\"..\\\\..\\\\x\\\\run.exe\"\n"), "x\n"));
  ASSERT_NE(r.find("2"), nullptr);
  EXPECT_TRUE(has(r.find("2")->names, "run.exe"));
}

TEST(MimeParserNames, ANulInANameNeverSplitsTheList) {
  // Found by mime_parser_fuzz (regressions/mime_parser_fuzz/nul-in-file-name): the list is
  // NUL-separated.
  Recorder r = run_all_ways(one_part(std::string("Content-Type: application/octet-stream; name=\"run\0me.exe\"\n", 58), "x\n"));
  const Part* p = r.find("2");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->names, (std::vector<std::string>{"run", "runme.exe"}));
  r = run_all_ways(one_part(std::string("Content-Type: application/octet-stream; name=\"\0\"\n", 49), "x\n"));
  ASSERT_NE(r.find("2"), nullptr);
  EXPECT_TRUE(r.find("2")->names.empty());
}

TEST(MimeParserNames, ANulInAUuencodedBlocksNameNeverSplitsTheList) {
  // Found by mime_parser_fuzz (regressions/mime_parser_fuzz/nul-in-uuencode-name): the name of a
  // "begin" line went into the list as it was, NULs and all, so the list held fragments ("run",
  // "", "me.exe"). It follows the rule of a header's name.
  Recorder r = run_all_ways(std::string("\nbegin 644 run\0\0me.exe\n", 23) + uuencode("MZ") + "end\n");
  const Part* p = r.find("1.u1");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->name, std::string("run\0\0me.exe", 11));
  EXPECT_EQ(p->names, (std::vector<std::string>{"run", "runme.exe"}));
  EXPECT_EQ(p->data, "MZ");
  r = run_all_ways(std::string("\nbegin 644 \0\n", 13) + uuencode("MZ") + "end\n");
  ASSERT_NE(r.find("1.u1"), nullptr);
  EXPECT_TRUE(r.find("1.u1")->names.empty());
  r = run_all_ways("\nbegin 644 two.exe\n" + uuencode("MZ") + "end\n");  // no NUL: the name alone
  ASSERT_NE(r.find("1.u1"), nullptr);
  EXPECT_EQ(r.find("1.u1")->names, std::vector<std::string>{"two.exe"});
}

const std::string kPayload = std::string("PK\x03\x04 an attachment, the same bytes in every reading\x00\xff", 50);

TEST(MimeParserReadings, NoneWhenNothingIsAmbiguous) {
  Recorder r = run_all_ways(one_part(("Content-Type: application/zip; name=a.zip\nContent-Transfer-Encoding: base64\n"),
                                     b64(kPayload)));
  ASSERT_NE(r.find("2"), nullptr);
  EXPECT_EQ(r.find("2")->data, kPayload);
  EXPECT_TRUE(r.readings.empty());
  EXPECT_FALSE(r.has(MimeAnomaly::reading_skipped));
}

TEST(MimeParserReadings, TransferEncodingNamedOffTheRfcSpelling) {
  for (const char* cte : {"xx base64", ",base64", "xxbase64", "=?UTF-8?Q?base64", "base64,quoted-printable"}) {
    Recorder r = run_all_ways(one_part((std::string("Content-Type: application/zip; name=a.zip\n"
                                                        "Content-Transfer-Encoding: ") + cte + "\n"),
                                       b64(kPayload)));
    ASSERT_NE(r.find("2"), nullptr) << cte;
    EXPECT_NE(r.find("2")->data, kPayload) << cte << ": the primary reading takes it as it is";
    const Part* b = r.reading(MimeReading::cte_base64);
    ASSERT_NE(b, nullptr) << cte;
    EXPECT_EQ(b->data, kPayload) << cte;
    EXPECT_EQ(b->path, "2");
    EXPECT_EQ(b->name, "a.zip");
    EXPECT_EQ(b->enc, TransferEncoding::base64);
  }
  // Two fields: the first is the primary reading, the second another.
  Recorder r = run_all_ways(one_part(("Content-Type: application/zip\nContent-Transfer-Encoding: quoted-printable\n"
                                          "Content-Transfer-Encoding: base64\n"),
                                     b64(kPayload)));
  ASSERT_NE(r.reading(MimeReading::cte_base64), nullptr);
  EXPECT_EQ(r.reading(MimeReading::cte_base64)->data, kPayload);
  EXPECT_EQ(r.find("2")->enc, TransferEncoding::quoted_printable);
}

TEST(MimeParserReadings, Base64JunkReadLineByLineAndStrictly) {
  const std::string enc = b64(kPayload);  // lines of 76, then the rest and its padding
  // Junk before the data (mime-is-broken "junk-3j64+nlnl+real64"): three characters and an empty line.
  Recorder r = run_all_ways(one_part(("Content-Type: application/zip\nContent-Transfer-Encoding: base64\n"),
                                     "ABC\n\n" + enc));
  EXPECT_NE(r.find("2")->data, kPayload);
  ASSERT_NE(r.reading(MimeReading::base64_lines), nullptr);
  EXPECT_EQ(r.reading(MimeReading::base64_lines)->data, kPayload);
  // A junk character at the end of every line ("linelen-4X"): the line reader drops it.
  std::string odd;
  for (std::size_t i = 0; i + 4 <= enc.size(); i += 4) {
    const std::string q = enc.substr(i, 4);
    if (q.find('\n') != std::string::npos) break;
    odd += q + "X\n";
  }
  r = run_all_ways(one_part(("Content-Type: application/zip\nContent-Transfer-Encoding: base64\n"), odd));
  ASSERT_NE(r.reading(MimeReading::base64_lines), nullptr);
  EXPECT_EQ(r.reading(MimeReading::base64_lines)->data, kPayload);
  // Data, an empty line, then more (a second copy of junk): the strict reader stops there.
  r = run_all_ways(one_part(("Content-Type: application/zip\nContent-Transfer-Encoding: base64\n"),
                            enc + "\n" + "QUJD=EFG\n"));
  ASSERT_NE(r.reading(MimeReading::base64_strict), nullptr);
  EXPECT_EQ(r.reading(MimeReading::base64_strict)->data, kPayload);
}

TEST(MimeParserReadings, QuotedPrintableLenientAndLfLineEnds) {
  Recorder r = run_all_ways(one_part(("Content-Type: application/octet-stream\nContent-Transfer-Encoding: quoted-printable\n"),
                                     "= =50=\n=  =4B=\n=0=03\nline\nend"));
  const Part* lenient = r.reading(MimeReading::qp_lenient);
  ASSERT_NE(lenient, nullptr);
  EXPECT_EQ(lenient->data, "PK\x03\r\nline\r\nend");
  const Part* lf = r.reading(MimeReading::qp_lf);
  ASSERT_NE(lf, nullptr);
  EXPECT_EQ(lf->data.find('\r'), std::string::npos);
  EXPECT_NE(lf->data.find("line\nend"), std::string::npos);
}

TEST(MimeParserReadings, QuotedPrintableReadingsStartInTheOrderOfTheirTriggers) {
  // Found by mime_parser_fuzz (regressions/mime_parser_fuzz/qp-readings-order): a span holding a
  // hard line break and, on a later line, an invalid escape started qp_lenient first; the same
  // body cut between the two started qp_lf first, so the readings' order (their slots, the order
  // they end in) depended on the split. The first trigger in the body comes first, by line.
  const std::string head = "Content-Type: application/octet-stream\nContent-Transfer-Encoding: quoted-printable\n";
  for (const auto& [body, first] : {std::pair<std::string, MimeReading>{"one\n=ZZ two=\nthree", MimeReading::qp_lf},
                                    {"one=\n=ZZ two\nthree", MimeReading::qp_lenient},
                                    {"one =ZZ\ntwo\nthree", MimeReading::qp_lenient}}) {
    SCOPED_TRACE(body);
    Recorder r = run_all_ways(one_part(head, body));
    ASSERT_EQ(r.readings.size(), 2u);
    EXPECT_EQ(r.readings[0].reading, first);
  }
}

TEST(MimeParserReadings, RawPartWithLfLineEnds) {
  Recorder r = run_all_ways(one_part(("Content-Type: application/x-sh; name=run.sh\n"), "#!/bin/sh\necho hi\n"));
  EXPECT_EQ(r.find("2")->data, crlf("#!/bin/sh\necho hi\n"));
  ASSERT_NE(r.reading(MimeReading::raw_lf), nullptr);
  EXPECT_EQ(r.reading(MimeReading::raw_lf)->data, "#!/bin/sh\necho hi\n");
  EXPECT_EQ(r.reading(MimeReading::raw_lf)->name, "run.sh");
}

TEST(MimeParserReadings, Bounded) {
  const std::string msg = one_part(("Content-Type: application/zip\nContent-Transfer-Encoding: base64\n"),
                                   "ABC\n\n" + b64(kPayload));
  MimeLimits off;
  off.max_readings = 0;
  Recorder r = run_all_ways(msg, off);
  EXPECT_TRUE(r.readings.empty());
  MimeLimits one;
  one.max_readings = 1;
  r = run_all_ways(msg, one);
  EXPECT_EQ(r.readings.size(), 1u);
  EXPECT_TRUE(r.has(MimeAnomaly::reading_skipped));
  // Junk found past the bytes held: no reading, said so.
  MimeLimits small;
  small.reading_retain_bytes = 8;
  r = run(one_part(("Content-Type: application/zip\nContent-Transfer-Encoding: base64\n"),
                   b64(kPayload) + "\n" + "ABC\n"), small);
  EXPECT_TRUE(r.readings.empty());
  EXPECT_TRUE(r.has(MimeAnomaly::reading_skipped));
}

TEST(MimeParserReadings, HeaderBlockEndedByAStrayLine) {
  // Junk lines, then the empty line: the reader that skips them finds the base64 after it.
  Recorder r = run_all_ways(one_part("Content-Type: application/zip; name=a.zip\nContent-Transfer-Encoding: base64\nABCD\nABCD\n",
                                     b64(kPayload)));
  EXPECT_NE(r.find("2")->data, kPayload);
  ASSERT_NE(r.reading(MimeReading::header_junk_skipped), nullptr);
  EXPECT_EQ(r.reading(MimeReading::header_junk_skipped)->data, kPayload);
  // A field after the junk line (8-bit junk, then the encoding): applied by that reader.
  r = run_all_ways(one_part("Content-Type: application/zip; name=a.zip\n\x01\x02\x03\nContent-Transfer-Encoding: base64\n",
                            b64(kPayload)));
  ASSERT_NE(r.reading(MimeReading::header_junk_skipped), nullptr);
  EXPECT_EQ(r.reading(MimeReading::header_junk_skipped)->data, kPayload);
  // No empty line at all: the reader that takes the stray line for it.
  const std::string msg = crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
                               "Content-Type: application/zip\nContent-Transfer-Encoding: base64\nABCD\n" +
                               b64(kPayload) + "\n--b--\n");
  r = run_all_ways(msg);
  ASSERT_NE(r.reading(MimeReading::header_junk_separator), nullptr);
  EXPECT_EQ(r.reading(MimeReading::header_junk_separator)->data, kPayload);
}

TEST(MimeParserReadings, Base64DataAfterAnEmptyLineIsIrregular) {
  const std::string payload = kPayload + "x";  // 51 bytes: no padding
  Recorder r = run_all_ways(one_part("Content-Type: application/zip\nContent-Transfer-Encoding: base64\n",
                                     b64(payload) + "\n" + "QUJD\n"));
  ASSERT_NE(r.reading(MimeReading::base64_strict), nullptr);
  EXPECT_EQ(r.reading(MimeReading::base64_strict)->data, payload);
  EXPECT_EQ(r.find("2")->data, payload + "ABC");
}

// header_lenient: the whole message read again where its top-level header is ambiguous.
std::string two_parts(const std::string& top_header, const std::string& boundary) {
  return crlf(top_header + "\n--" + boundary + "\nContent-Type: text/plain\n\nhello\n--" + boundary +
              "\nContent-Type: application/zip; name=a.zip\nContent-Transfer-Encoding: base64\n\n" + b64(kPayload) +
              "\n--" + boundary + "--\n");
}

const Part* lenient_file(const Recorder& r) {
  const Part* p = r.reading(MimeReading::header_lenient);
  return p && p->data == kPayload && p->name == "a.zip" ? p : nullptr;
}

TEST(MimeParserHeaderLenient, NotTakenWhenTheTopHeaderIsClear) {
  Recorder r = run_all_ways(two_parts("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n", "b"));
  EXPECT_EQ(r.find("2")->data, kPayload);
  EXPECT_TRUE(r.readings.empty());
}

TEST(MimeParserHeaderLenient, TheLastContentTypeWins) {
  Recorder r = run_all_ways(two_parts("MIME-Version: 1.0\nContent-Type: text/plain\n"
                                      "Content-Type: multipart/mixed; boundary=b\n", "b"));
  ASSERT_NE(r.find("1"), nullptr);
  EXPECT_EQ(r.find("1")->type, "text/plain");  // the primary reading: the first
  EXPECT_EQ(r.find("2"), nullptr);
  ASSERT_NE(lenient_file(r), nullptr);
  EXPECT_EQ(lenient_file(r)->path, "2");
}

TEST(MimeParserHeaderLenient, TheLastPlainBoundaryWins) {
  const std::string msg = crlf("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary*=''a; boundary=b\n\n"
                               "--a\nContent-Type: text/plain\n\n") + two_parts("", "b").substr(2);
  Recorder r = run_all_ways(msg);
  EXPECT_EQ(r.find("2"), nullptr);  // the primary reading: boundary a, one text part
  ASSERT_NE(lenient_file(r), nullptr);
}

TEST(MimeParserHeaderLenient, StrayColonsAndEncodedWordsInTheType) {
  for (const char* ct : {"Content-Type:: multipart/mixed; boundary=b", "Content-Type: =?UTF-8?B?bXVsdGlwYXJ0?=/mixed; boundary=b"}) {
    Recorder r = run_all_ways(two_parts(std::string("MIME-Version: 1.0\n") + ct + "\n", "b"));
    EXPECT_EQ(r.find("2"), nullptr) << ct;
    ASSERT_NE(lenient_file(r), nullptr) << ct;
  }
}

TEST(MimeParserHeaderLenient, AFoldedContentFieldAndAStrayLine) {
  for (const char* h : {"X-Foo: bar\n Content-Type: multipart/mixed; boundary=b\n",
                        "X-Foo-bar\n Content-Type: multipart/mixed; boundary=b\n",
                        "X-Foo Bar:bar\n Content-Type: multipart/mixed; boundary=b\n"}) {
    Recorder r = run_all_ways(two_parts(std::string("MIME-Version: 1.0\n") + h, "b"));
    EXPECT_EQ(r.find("2"), nullptr) << h;
    ASSERT_NE(lenient_file(r), nullptr) << h;
  }
}

TEST(MimeParserHeaderLenient, AMultipartSniffedWithoutContentType) {
  // "--b X" lines and a "--b--" close (mime-is-broken "miss:anydef").
  const std::string msg = crlf("MIME-Version: 1.0\nSubject: s\n\n--b X\nContent-Type: text/plain\n\nhello\n--b X\n"
                               "Content-Type: application/zip; name=a.zip\nContent-Transfer-Encoding: base64\n\n" +
                               b64(kPayload) + "\n--b--\n");
  Recorder r = run_all_ways(msg);
  ASSERT_NE(r.find("1"), nullptr);
  EXPECT_EQ(r.find("1")->type, "text/plain");
  ASSERT_NE(lenient_file(r), nullptr);
}

TEST(MimeParserHeaderLenient, ABoundaryOfSpacesIsUsed) {
  // The primary reading (GMime's): "-- " lines are its delimiters.
  Recorder r = run_all_ways(two_parts("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\" \"\n", " "));
  ASSERT_NE(r.find("2"), nullptr);
  EXPECT_EQ(r.find("2")->data, kPayload);
}

TEST(MimeParserHeaderLenient, BoundedAndSharedWithOtherMessages) {
  const std::string msg = two_parts("MIME-Version: 1.0\nContent-Type: text/plain\nContent-Type: multipart/mixed; boundary=b\n", "b");
  MimeLimits off;
  off.max_readings = 0;
  EXPECT_TRUE(run(msg, off).readings.empty());
  // A top-level header larger than the bytes held: no reading, said so.
  MimeLimits small;
  small.reading_retain_bytes = 64;
  Recorder r = run_all_ways(msg, small);
  EXPECT_TRUE(r.readings.empty());
  EXPECT_TRUE(r.has(MimeAnomaly::reading_skipped));
  // Two messages at once with one parser to lend: the second goes without, and gets it back after.
  SingleParserPool pool{MimeLimits{}};
  Recorder alt, r1, r2;
  MimeParser a, b;
  a.set_alternate(&pool, &alt);
  b.set_alternate(&pool, &alt);
  a.reset(&r1);
  b.reset(&r2);
  const auto* p = reinterpret_cast<const uint8_t*>(msg.data());
  a.feed(p, msg.size() / 2);
  b.feed(p, msg.size() / 2);
  EXPECT_TRUE(r2.has(MimeAnomaly::reading_skipped));
  a.feed(p + msg.size() / 2, msg.size() - msg.size() / 2);
  a.finish(true);
  b.finish(true);
  ASSERT_EQ(alt.parts.size(), 2u);
  EXPECT_EQ(alt.parts[1].data, kPayload);
  Recorder r3;
  b.reset(&r3);
  b.feed(p, msg.size());
  b.finish(true);
  EXPECT_FALSE(r3.has(MimeAnomaly::reading_skipped));
  EXPECT_EQ(alt.parts.size(), 4u);
}

}  // namespace
}  // namespace sluice::pipeline
