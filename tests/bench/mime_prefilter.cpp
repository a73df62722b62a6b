#include "tests/bench/mime_prefilter.h"

#include <hs/hs.h>
#include <strings.h>

#include <cstring>

#include "pipeline/hs_compile.h"

namespace sluice::pipeline {

// ---------------------------------------------------------------------------------------------
// Hyperscan

HyperscanPrefilter::Scratch::~Scratch() { hs_free_scratch(s); }
HyperscanPrefilter::Stream::~Stream() {
  if (s) hs_close_stream(s, nullptr, nullptr, nullptr);
}

namespace {

// Pattern ids are LineKind values. '^' with HS_FLAG_MULTILINE matches after every '\n', so bare-LF
// and CRLF lines alike. Matches are reported at their end: the length of the literal part gives
// the line start back (the uuencode pattern's end varies: its mode has 3 or 4 digits, see below).
constexpr unsigned kDelimiterLen = 2;      // "--"
constexpr unsigned kContentLen = 8;        // "content-"
const char* const kPatterns[] = {"^--", "^begin [0-7]{3,4} ", "^content-(type|disposition|transfer-encoding):"};
const unsigned kFlags[] = {HS_FLAG_MULTILINE, HS_FLAG_MULTILINE | HS_FLAG_SOM_LEFTMOST,
                           HS_FLAG_MULTILINE | HS_FLAG_CASELESS | HS_FLAG_SOM_LEFTMOST};
const unsigned kIds[] = {static_cast<unsigned>(LineKind::delimiter), static_cast<unsigned>(LineKind::uuencode_begin),
                         static_cast<unsigned>(LineKind::content_header)};

int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned, void* ctx) {
  auto* sink = static_cast<CandidateSink*>(ctx);
  const auto kind = static_cast<LineKind>(id);
  const uint64_t start = kind == LineKind::delimiter ? to - kDelimiterLen : from;
  sink->on_candidate(kind, start);
  return 0;
}

}  // namespace

std::unique_ptr<HyperscanPrefilter> HyperscanPrefilter::compile(std::string& error) {
  std::unique_ptr<HyperscanPrefilter> p(new HyperscanPrefilter());
  p->db_ = compile_stream_db(kPatterns, kFlags, kIds, 3, HS_MODE_STREAM | HS_MODE_SOM_HORIZON_LARGE, error);
  if (!p->db_) return nullptr;
  (void)kContentLen;
  return p;
}

HyperscanPrefilter::~HyperscanPrefilter() { hs_free_database(db_); }

std::unique_ptr<HyperscanPrefilter::Scratch> HyperscanPrefilter::make_scratch() const {
  auto s = std::make_unique<Scratch>();
  hs_alloc_scratch(db_, &s->s);
  return s;
}

std::unique_ptr<HyperscanPrefilter::Stream> HyperscanPrefilter::make_stream() const {
  auto s = std::make_unique<Stream>();
  hs_open_stream(db_, 0, &s->s);
  return s;
}

void HyperscanPrefilter::reset(Stream& stream, Scratch& scratch) const noexcept {
  hs_reset_stream(stream.s, 0, scratch.s, nullptr, nullptr);
}

void HyperscanPrefilter::scan(Stream& stream, Scratch& scratch, const uint8_t* data, std::size_t len,
                              CandidateSink& sink) const noexcept {
  hs_scan_stream(stream.s, reinterpret_cast<const char*>(data), static_cast<unsigned>(len), 0, scratch.s, on_match, &sink);
}

// ---------------------------------------------------------------------------------------------
// Scalar

void ScalarPrefilter::reset() noexcept {
  offset_ = 0;
  head_len_ = 0;
  head_start_ = 0;
  collecting_ = true;
}

// Same language as the Hyperscan patterns: "--"; "begin " 3-4 octal digits " "; "content-" then
// type|disposition|transfer-encoding and ':' in any case.
void ScalarPrefilter::classify(const uint8_t* line, std::size_t n, uint64_t start, CandidateSink& sink) noexcept {
  const char* l = reinterpret_cast<const char*>(line);
  if (n >= 2 && l[0] == '-' && l[1] == '-') {
    sink.on_candidate(LineKind::delimiter, start);
    return;
  }
  if (n >= 10 && std::memcmp(l, "begin ", 6) == 0) {
    std::size_t d = 6;
    while (d < n && d < 11 && l[d] >= '0' && l[d] <= '7') ++d;
    if ((d == 9 || d == 10) && d < n && l[d] == ' ') sink.on_candidate(LineKind::uuencode_begin, start);
    return;
  }
  if (n >= 13 && strncasecmp(l, "content-", 8) == 0) {
    for (const char* field : {"type:", "disposition:", "transfer-encoding:"}) {
      const std::size_t fl = std::strlen(field);
      if (n >= 8 + fl && strncasecmp(l + 8, field, fl) == 0) {
        sink.on_candidate(LineKind::content_header, start);
        return;
      }
    }
  }
}

void ScalarPrefilter::finish(CandidateSink& sink) noexcept {
  if (collecting_ && head_len_) classify(head_, head_len_, head_start_, sink);
  head_len_ = 0;
  collecting_ = false;
}

void ScalarPrefilter::scan(const uint8_t* data, std::size_t len, CandidateSink& sink) noexcept {
  std::size_t i = 0;
  for (;;) {
    if (collecting_) {
      // Gather the line's first kHead bytes, across calls if need be.
      if (head_len_ == 0) head_start_ = offset_ + i;
      while (head_len_ < kHead && i < len && data[i] != '\n') head_[head_len_++] = data[i++];
      if (head_len_ < kHead && i == len) break;  // the line goes on in the next call
      classify(head_, head_len_, head_start_, sink);
      head_len_ = 0;
      collecting_ = false;
    }
    const void* nl = std::memchr(data + i, '\n', len - i);
    if (!nl) break;
    i = static_cast<std::size_t>(static_cast<const uint8_t*>(nl) - data) + 1;
    // Fast path: the whole head of the next line is in this call.
    if (len - i >= kHead) {
      const void* end = std::memchr(data + i, '\n', kHead);
      const std::size_t n = end ? static_cast<std::size_t>(static_cast<const uint8_t*>(end) - (data + i)) : kHead;
      classify(data + i, n, offset_ + i, sink);
      continue;
    }
    collecting_ = true;
  }
  offset_ += len;
}

}  // namespace sluice::pipeline
