#include "pipeline/mime_body_scan.h"

#include <hs/hs.h>

#include "pipeline/hs_compile.h"

namespace sluice::pipeline {

namespace {

// '^' with HS_FLAG_MULTILINE matches after every '\n': "^[^\n]{999}" ends exactly once per line
// of 999 bytes or more, on its 999th byte (RFC 5322 2.1.1: 998 octets plus CRLF; the CR of a
// 998-octet line is counted, so such a line is one false alarm the parser resolves exactly).
const char* const kPatterns[] = {"\\n[-be]", "[^\\r]\\n", "^[^\\n]{999}"};
const unsigned kFlags[] = {0, 0, HS_FLAG_MULTILINE};
const unsigned kIds[] = {MimeBodyScan::line_start, MimeBodyScan::bare_lf, MimeBodyScan::long_line};
// Without line accounting: the line starts that can be special, spelled out (fewer matches).
const char* const kLitePatterns[] = {"\\n-", "\\nbegin ", "\\nend"};
const unsigned kLiteFlags[] = {0, 0, 0};
const unsigned kLiteIds[] = {MimeBodyScan::line_start, MimeBodyScan::begin_start, MimeBodyScan::end_start};

}  // namespace

MimeBodyScan::Scratch::~Scratch() { hs_free_scratch(s); }

std::unique_ptr<MimeBodyScan> MimeBodyScan::compile(std::string& error, bool exact_lines) {
  std::unique_ptr<MimeBodyScan> p(new MimeBodyScan());
  p->exact_ = exact_lines;
  p->db_ = compile_stream_db(exact_lines ? kPatterns : kLitePatterns, exact_lines ? kFlags : kLiteFlags,
                             exact_lines ? kIds : kLiteIds, 3, HS_MODE_STREAM, error);
  if (!p->db_) return nullptr;
  return p;
}

MimeBodyScan::~MimeBodyScan() { hs_free_database(db_); }

std::unique_ptr<MimeBodyScan::Scratch> MimeBodyScan::make_scratch() const {
  auto s = std::make_unique<Scratch>();
  hs_alloc_scratch(db_, &s->s);
  return s;
}

}  // namespace sluice::pipeline
