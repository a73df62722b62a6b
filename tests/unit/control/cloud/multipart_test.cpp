#include "control/cloud/multipart.h"

#include <gtest/gtest.h>

#include <string>

using namespace sluice::cloud;

namespace {

const std::string kType = "multipart/form-data; boundary=XyZ";

std::string part(const std::string& disposition, const std::string& content, const std::string& more = "") {
  return "--XyZ\r\nContent-Disposition: " + disposition + "\r\n" + more + "\r\n" + content + "\r\n";
}

FormFileResult find(const std::string& type, const std::string& body) { return find_form_file(type, body, "sample"); }

}  // namespace

TEST(Multipart, OneFileField) {
  const std::string body = part(R"(form-data; name="sample"; filename="a.doc")", "bytes\r\nwith CRLF") + "--XyZ--\r\n";
  const auto r = find(kType, body);
  ASSERT_TRUE(r.file) << r.error;
  EXPECT_EQ(r.file->content, "bytes\r\nwith CRLF");
  EXPECT_EQ(r.file->filename, "a.doc");
}

TEST(Multipart, OtherPartsPreambleEpilogueAndQuotedBoundary) {
  const std::string body = "preamble\r\n--q b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n"
                           "--q b\r\ncontent-type: text/plain\r\ncontent-disposition: FORM-DATA; NAME=sample\r\n\r\n"
                           "--q bx\r\n--q b--\r\nepilogue";
  const auto r = find(R"(Multipart/Form-Data ; charset=utf-8; boundary="q b")", body);
  ASSERT_TRUE(r.file) << r.error;
  EXPECT_EQ(r.file->content, "--q bx");  // a line that only starts like the boundary is content
  EXPECT_FALSE(r.file->filename);
}

TEST(Multipart, FileNameForms) {
  struct Case {
    std::string disposition;
    std::optional<std::string> filename;
  };
  for (const Case& c : std::vector<Case>{
           {R"(form-data; name="sample"; filename="a \"b\" \\c.txt")", "a \"b\" \\c.txt"},
           {R"(form-data; name="sample"; filename=plain.bin)", "plain.bin"},
           {R"(form-data; name="sample"; filename="x.bin"; filename*=UTF-8''na%C3%AFve%20file.bin)", "naïve file.bin"},
           {R"(form-data; name="sample"; filename*=utf-8'en'r%C3%A9sum%C3%A9.pdf; filename="resume.pdf")", "résumé.pdf"},
           {R"(form-data; name="sample"; filename="fallback.bin"; filename*=ISO-8859-1''caf%E9.txt)", "fallback.bin"},
           {R"(form-data; name="sample"; filename="fallback.bin"; filename*=UTF-8''bad%G1)", "fallback.bin"},
           {R"(form-data; name="sample"; filename="")", ""},
       }) {
    const auto r = find(kType, part(c.disposition, "x") + "--XyZ--");
    ASSERT_TRUE(r.file) << c.disposition << ": " << r.error;
    EXPECT_EQ(r.file->filename, c.filename) << c.disposition;
  }
}

TEST(Multipart, EmptyContentAndNoHeaders) {
  auto r = find(kType, part(R"(form-data; name="sample")", "") + "--XyZ--");
  ASSERT_TRUE(r.file) << r.error;
  EXPECT_EQ(r.file->content, "");
  // a part without headers is not the field, and does not stop the search
  r = find(kType, "--XyZ\r\n\r\nheaderless\r\n" + part(R"(form-data; name="sample")", "s") + "--XyZ--");
  ASSERT_TRUE(r.file) << r.error;
  EXPECT_EQ(r.file->content, "s");
}

TEST(Multipart, Refusals) {
  const std::string good = part(R"(form-data; name="sample"; filename="a")", "x") + "--XyZ--\r\n";
  struct Case {
    std::string type, body, error;
  };
  for (const Case& c : std::vector<Case>{
           {"", good, "the request must be multipart/form-data (Content-Type is '')"},
           {"multipart/mixed; boundary=XyZ", good,
            "the request must be multipart/form-data (Content-Type is 'multipart/mixed; boundary=XyZ')"},
           {"multipart/form-data", good, "the multipart/form-data Content-Type has no valid boundary parameter"},
           {"multipart/form-data; boundary=\"XyZ", good,
            "the multipart/form-data Content-Type has no valid boundary parameter"},
           {"multipart/form-data; boundary=" + std::string(71, 'b'), good,
            "the multipart/form-data Content-Type has no valid boundary parameter"},
           {kType, "", "the multipart body has no boundary line"},
           {kType, "--XyZ", "the multipart body is malformed after a boundary line"},
           {kType, "--XyZ--", "the multipart body has no file field 'sample'"},
           {kType, good.substr(0, good.size() - 9), "the multipart body has no closing boundary"},
           {kType, "--XyZ\r\nContent-Disposition: form-data; name=sample\r\n", "a multipart part has no end to its headers"},
           {kType, "--XyZ\r\nno colon here\r\n\r\nx\r\n--XyZ--", "a multipart part has a malformed header line"},
           {kType, "--XyZ\r\nContent-Disposition: form-data; name=\"sample\r\n\r\nx\r\n--XyZ--",
            "a multipart part has a malformed Content-Disposition header"},
           {kType, "--XyZ\r\nContent-Disposition: form-data; =x\r\n\r\nx\r\n--XyZ--",
            "a multipart part has a malformed Content-Disposition header"},
           {kType, part(R"(form-data; name="other"; filename="a")", "x") + "--XyZ--",
            "the multipart body has no file field 'sample'"},
           {kType, part(R"(attachment; name="sample")", "x") + "--XyZ--", "the multipart body has no file field 'sample'"},
           {kType, part(R"(form-data; name="sample")", "1") + part(R"(form-data; name="sample")", "2") + "--XyZ--",
            "the multipart body has more than one 'sample' part"},
           {kType, "--XyZ\nContent-Disposition: form-data; name=sample\n\nx\n--XyZ--",
            "the multipart body is malformed after a boundary line"},
       }) {
    const auto r = find(c.type, c.body);
    EXPECT_FALSE(r.file) << c.body;
    EXPECT_EQ(r.error, c.error) << c.type << " | " << c.body;
  }
}

TEST(Multipart, LargeBinaryContentIsAView) {
  std::string content(3 << 20, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 131 + (i >> 11));
  const std::string body = part(R"(form-data; name="sample"; filename="big.bin")", content) + "--XyZ--\r\n";
  const auto r = find(kType, body);
  ASSERT_TRUE(r.file) << r.error;
  EXPECT_EQ(r.file->content.size(), content.size());
  EXPECT_EQ(r.file->content.data(), body.data() + body.find("\r\n\r\n") + 4);
  EXPECT_TRUE(r.file->content == content);
}
