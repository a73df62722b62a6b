// pipeline/header_fields: parameters read from a structured field, and the quote rule of file
// names (a '"' of a value that is not a quoted string is dropped; header_fields.cpp).
#include "pipeline/header_fields.h"

#include <gtest/gtest.h>

#include <string>

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

TEST(HeaderFields, QuoteOfAnUnquotedBoundaryStays) {
  EXPECT_EQ(param("multipart/mixed; boundary=a\"b", "boundary", false), "a\"b");
  EXPECT_EQ(param("multipart/mixed; boundary=a\\\"b", "boundary", false), "a\"b");
}

}  // namespace
}  // namespace sluice::pipeline
