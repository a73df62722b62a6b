// pipeline/header_fields: parameters read from a structured field, and the quote rule of file
// names (a '"' of a value that is not a quoted string is dropped; header_fields.cpp).
#include "pipeline/header_fields.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::pipeline {
namespace {

// Parameter `name` of `field`, assembled as a file name (`file_name`) or as raw bytes.
std::string param(std::string field, std::string_view name, bool file_name) {
  ParamRequest req;
  req.names[0] = name;
  req.n = 1;
  ParsedField pf;
  parse_field(field.data(), field.size(), req, pf);
  CharsetConverter conv;
  uint8_t scratch[256];
  char buf[256];
  Utf8Out out(buf, sizeof buf);
  bool bad = false;
  if (!assemble_param(pf, 0, conv, scratch, sizeof scratch, out, bad, file_name)) return "<none>";
  return std::string(buf, out.finish());
}

TEST(HeaderFields, QuotedFlagOfEntries) {
  std::string field = "attachment; filename=\"a\\\"b\"; filename*0=c\\\"d; filename*1*=e%22f";
  ParamRequest req;
  req.names[0] = "filename";
  req.n = 1;
  ParsedField pf;
  parse_field(field.data(), field.size(), req, pf);
  ASSERT_EQ(pf.count, 3);
  EXPECT_EQ(pf.entries[0].value, "a\"b");
  EXPECT_TRUE(pf.entries[0].quoted);
  EXPECT_EQ(pf.entries[1].value, "c\"d");  // backslash escapes of a token still apply
  EXPECT_FALSE(pf.entries[1].quoted);
  EXPECT_EQ(pf.entries[2].value, "e%22f");
  EXPECT_FALSE(pf.entries[2].quoted);
}

TEST(HeaderFields, QuoteOfAnUnquotedFileNameIsDropped) {
  EXPECT_EQ(param("attachment; filename=file\\\".zip", "filename", true), "file.zip");
  EXPECT_EQ(param("attachment; filename=file\".zip", "filename", true), "file.zip");
  EXPECT_EQ(param("attachment; filename='file\".zip'", "filename", true), "file.zip");
  EXPECT_EQ(param("x/y; name*=utf-8''file\".zip", "name", true), "file.zip");
  EXPECT_EQ(param("x/y; name*0=\"fi\\\"le.\"; name*1=z\"ip", "name", true), "fi\"le.zip");
  // Kept: a quoted-pair in a quoted string, an RFC 2231 %22, RFC 2047 words decoded around them.
  EXPECT_EQ(param("attachment; filename=\"file\\\".zip\"", "filename", true), "file\".zip");
  EXPECT_EQ(param("x/y; name*=utf-8''file%22.zip", "name", true), "file\".zip");
  EXPECT_EQ(param("x/y; name==?utf-8?q?file=22.zip?=", "name", true), "file\".zip");
}

// A fold is marked by '\n' where the line break was (MimeParser does so when it unfolds).
TEST(HeaderFields, AFoldEndsAnUnquotedValue) {
  // The continuation line looks like a header field of its own: it is not part of the name.
  EXPECT_EQ(param("attachment; filename=report.pdf\n X-Mailer: evil.exe", "filename", true), "report.pdf");
  EXPECT_EQ(param("attachment; filename=report.pdf\n\t; size=3", "filename", true), "report.pdf");
  // A value that begins on the next line, and one quoted across the fold, are whole.
  EXPECT_EQ(param("attachment; filename=\n report.pdf", "filename", true), "report.pdf");
  EXPECT_EQ(param("attachment; filename=\"long\n name.pdf\"", "filename", true), "long name.pdf");
  // Spaces inside one line stay (names with spaces are common).
  EXPECT_EQ(param("attachment; filename=my report.pdf", "filename", true), "my report.pdf");
}

TEST(HeaderFields, AnEscapedSemicolonDoesNotEndAnUnquotedValue) {
  EXPECT_EQ(param("application/zip; name=file\\;.zip", "name", true), "file;.zip");
  EXPECT_EQ(param("application/zip; name=file\\;.zip; x=1", "name", true), "file;.zip");
  EXPECT_EQ(param("application/zip; name=file;.zip", "name", true), "file");
}

class Names final : public NameSink {
 public:
  std::vector<std::string> all;
  void add(const char* s, std::size_t n) noexcept override { all.emplace_back(s, n); }
};

std::vector<std::string> candidates(std::string field, std::string_view name) {
  const std::string raw = field;
  ParamRequest req;
  req.names[0] = name;
  req.n = 1;
  ParsedField pf;
  parse_field(field.data(), field.size(), req, pf);
  CharsetConverter conv;
  uint8_t scratch[512];
  char tmp[512];
  Names out;
  name_candidates(pf, 0, conv, scratch, sizeof scratch, tmp, sizeof tmp, out);
  lenient_name_values(raw, name, conv, scratch, sizeof scratch, tmp, sizeof tmp, out);
  return out.all;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v)
    if (x == s) return true;
  return false;
}

TEST(HeaderFields, NameCandidates) {
  // Duplicate parameters: each one.
  auto c = candidates("attachment; filename=a.txt; filename=b.zip", "filename");
  EXPECT_TRUE(has(c, "a.txt") && has(c, "b.zip"));
  // RFC 2231 sections written out of order: by index, and as written (with the charset of the
  // first one written).
  c = candidates("attachment; filename*1*=''file.; filename*0*=zip", "filename");
  EXPECT_TRUE(has(c, "zip''file.")) << c.size();
  EXPECT_TRUE(has(c, "file.zip"));
  c = candidates("x/y; name*1=file.; name*0=zip; name=file.png", "name");
  EXPECT_TRUE(has(c, "zipfile.") && has(c, "file.zip") && has(c, "file.png"));
  // Unquoted values that run on: past a ';' that starts no parameter, across a fold.
  c = candidates("x/y; name=file;.zip", "name");
  EXPECT_TRUE(has(c, "file;.zip"));
  c = candidates("attachment; filename=report.pdf\n X-Mailer: evil.exe", "filename");
  EXPECT_TRUE(has(c, "report.pdf X-Mailer: evil.exe"));
  c = candidates("x/y; name=file\\;.zip; charset=x", "name");
  EXPECT_TRUE(has(c, "file")) << "the reading that stops at every ';'";
  EXPECT_TRUE(has(c, "file;.zip"));
  // Quoted values have no other end.
  EXPECT_EQ(candidates("attachment; filename=\"a;b.zip\"", "filename"), std::vector<std::string>{"a;b.zip"});
}

TEST(HeaderFields, QuoteOfAnUnquotedBoundaryStays) {
  EXPECT_EQ(param("multipart/mixed; boundary=a\"b", "boundary", false), "a\"b");
  EXPECT_EQ(param("multipart/mixed; boundary=a\\\"b", "boundary", false), "a\"b");
}

}  // namespace
}  // namespace sluice::pipeline
