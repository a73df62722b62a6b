// Streaming MIME parser (see mime_parser.h for the contract).
//
// How bytes move: header blocks are copied one unfolded field at a time into field_ (capped);
// bodies are scanned in place (64 bytes a step over plain lines, AVX2 or SSE2, memchr('\n') per
// line elsewhere: skip_plain_lines), and only lines that start with a character that
// could begin a special line ('-' for delimiters, 'b'/'e' for uuencode) are looked at. Everything
// between two such lines is handed to the decoder as one span. The line end in front of a line
// start is held back (eol_) until that line is known not to be a delimiter (RFC 2046 5.1.1: the
// CRLF before a delimiter belongs to it). A candidate line that is cut by the end of a feed is
// copied to carry_ (bounded) and completed from the next feed.
#include "pipeline/mime_parser.h"

#include <hs/hs.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>


#include "pipeline/header_fields.h"
#include "records/byte_block.h"
#include "pipeline/mime_chars.h"

namespace sluice::pipeline {

namespace {

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }

bool ieq(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool is_wsp(uint8_t c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (is_wsp(uint8_t(s.front())) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (is_wsp(uint8_t(s.back())) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// RFC 5322 2.1.1: 998 octets per line, without the CRLF.
constexpr uint64_t kMaxLine = 998;

// Fast path of MimeParser::body_span inside a line: skips whole lines that the per-line loop
// would pass over without any effect, 64 bytes a step (AVX2 or SSE2, below). From j (inside a
// line of which line_len raw bytes came before j) it goes to the start of the last line s such
// that every '\n' in [j, s) ends a line that is (a) CRLF-terminated (or bare_seen: bare_lf is
// already noted, so noting it again is a no-op), (b) not over kMaxLine (or long_seen), and (c)
// is followed by a byte that cannot start a candidate line ('-' or extra; for extra 'b', the text
// body's uuencode test, only a line starting "begin "). The length test counts
// the CR, so it stops early on a line of exactly 998 + CR: stopping early is always exact, as the
// per-line loop then takes over. to == j when no line could be skipped; retry is where the
// per-line loop should call again (the end of the step that stopped).
struct LineSkip {
  std::size_t to;
  std::size_t retry;
};

#if defined(__SSE2__)
using records::Sse2Block;
#endif
#if defined(SLUICE_LINE_SCAN_AVX2)
using records::Avx2Block;
#endif

template <class Block>
[[gnu::always_inline]] inline LineSkip skip_plain_lines_with(const uint8_t* p, std::size_t j, std::size_t n,
                                                            uint8_t extra, bool bare_seen, bool long_seen,
                                                            uint64_t line_len) noexcept {
  // The tests that do not apply are made never to stop: a bare LF once bare_lf is noted, a line
  // length once line_too_long is (cur stays below n: no overflow).
  const uint64_t bare_keep = bare_seen ? 0 : ~uint64_t{0};
  const uint64_t max_line = long_seen ? UINT64_MAX / 2 : kMaxLine;
  std::size_t to = j;
  uint64_t cur = line_len;   // raw bytes of the current line before b
  uint64_t nl_prev = 0;      // a '\n' at b - 1 (inside the scanned range)
  uint64_t cr_prev = 0;      // a '\r' at b - 1 (inside the scanned range)
  std::size_t b = j;
  for (; n - b >= 64; b += 64) {
    const Block x(p + b);
    const uint64_t nl = x.eq('\n');
    const uint64_t cr = x.eq('\r');
    const uint64_t cand = x.eq('-', char(extra));
    uint64_t starts = (nl << 1) | nl_prev;  // line starts in [b, b + 64)
    uint64_t hit = cand & starts;
    const uint64_t bare = nl & ~((cr << 1) | cr_prev) & bare_keep;
    if ((hit | bare) != 0) {  // rare: one test for both
      if (bare) break;
      // In a text body (extra 'b'), a line starting with 'b' is special only as "begin "
      // (uu_begin): ordinary words starting with 'b' are skipped too; the 6 bytes must be in view.
      if (extra != 'b') break;
      bool special = false;
      for (; hit && !special; hit &= hit - 1) {
        const std::size_t at = b + std::size_t(std::countr_zero(hit));
        special = p[at] == '-' || at + 6 > n || std::memcmp(p + at, "begin ", 6) == 0;
      }
      if (special) break;
    }
    // The line that began before b ends at the first '\n' (countr_zero(0) is 64: no '\n', it goes
    // on past the step); the others are shorter than 64.
    if (cur + uint64_t(std::countr_zero(nl)) > max_line) break;
    cur = nl ? uint64_t(std::countl_zero(nl)) : cur + 64;  // the bytes after the step's last '\n'
    if (starts) to = b + 63 - std::size_t(std::countl_zero(starts));
    nl_prev = nl >> 63;
    cr_prev = cr >> 63;
  }
  return {to, n - b >= 64 ? b + 64 : n};
}

using LineSkipFn = LineSkip (*)(const uint8_t* p, std::size_t j, std::size_t n, uint8_t extra, bool bare_seen,
                                bool long_seen, uint64_t line_len) noexcept;

#if defined(__SSE2__)
LineSkip skip_plain_lines_sse2(const uint8_t* p, std::size_t j, std::size_t n, uint8_t extra, bool bare_seen,
                               bool long_seen, uint64_t line_len) noexcept {
  return skip_plain_lines_with<Sse2Block>(p, j, n, extra, bare_seen, long_seen, line_len);
}
#else
LineSkip skip_plain_lines_none(const uint8_t*, std::size_t j, std::size_t n, uint8_t, bool, bool, uint64_t) noexcept {
  return {j, n};
}
#endif
#if defined(SLUICE_LINE_SCAN_AVX2)
__attribute__((target("avx2"))) LineSkip skip_plain_lines_avx2(const uint8_t* p, std::size_t j, std::size_t n,
                                                               uint8_t extra, bool bare_seen, bool long_seen,
                                                               uint64_t line_len) noexcept {
  return skip_plain_lines_with<Avx2Block>(p, j, n, extra, bare_seen, long_seen, line_len);
}
#endif

// Chosen once at start (records::avx2_line_scans(): AVX2 where the CPU has it, unless
// SLUICE_LINE_SCAN=sse2; the SMTP DATA scan follows the same choice).
LineSkipFn pick_skip_plain_lines() noexcept {
#if defined(SLUICE_LINE_SCAN_AVX2)
  if (records::avx2_line_scans()) return skip_plain_lines_avx2;
#endif
#if defined(__SSE2__)
  return skip_plain_lines_sse2;
#else
  return skip_plain_lines_none;
#endif
}

const LineSkipFn skip_plain_lines = pick_skip_plain_lines();

const char* const kAnomalyNames[] = {
    "missing_mime_version", "missing_boundary",       "boundary_too_long", "missing_close_delimiter",
    "invalid_transfer_encoding", "encoding_not_allowed", "header_too_long", "line_too_long",
    "depth_exceeded",       "too_many_parts",         "duplicate_header",  "bad_base64",
    "bad_quoted_printable", "bad_uuencode",           "bad_encoded_word",  "eight_bit_header",
    "bare_lf",              "nul_byte",               "reading_skipped"};
static_assert(sizeof kAnomalyNames / sizeof kAnomalyNames[0] == std::size_t(MimeAnomaly::count_));

TransferEncoding parse_cte(std::string_view v) noexcept {
  if (ieq(v, "7bit")) return TransferEncoding::seven_bit;
  if (ieq(v, "8bit")) return TransferEncoding::eight_bit;
  if (ieq(v, "binary")) return TransferEncoding::binary;
  if (ieq(v, "base64")) return TransferEncoding::base64;
  if (ieq(v, "quoted-printable")) return TransferEncoding::quoted_printable;
  if (ieq(v, "x-uuencode") || ieq(v, "uuencode") || ieq(v, "x-uue") || ieq(v, "uue") || ieq(v, "x-uu"))
    return TransferEncoding::uuencode;
  if (ieq(v, "x-gzip64") || ieq(v, "gzip64")) return TransferEncoding::gzip64;
  return TransferEncoding::unknown;
}

// The encodings a Content-Transfer-Encoding value names anywhere in it, as the clients that read
// "xx base64", ",base64", ": base64" or "base64,quoted-printable" do (mime_readings.h): a bit per
// TransferEncoding.
uint16_t cte_named(std::string_view v) noexcept {
  const uint8_t words = cte_words(v);
  uint16_t bits = 0;
  if (words & cte_word_base64) bits |= uint16_t(1u << unsigned(TransferEncoding::base64));
  if (words & cte_word_quoted_printable) bits |= uint16_t(1u << unsigned(TransferEncoding::quoted_printable));
  if (words & cte_word_identity) bits |= uint16_t(1u << unsigned(TransferEncoding::seven_bit));
  return bits;
}

// "begin" SP 3-4 octal digits SP name. Sets the name (trimmed; it may be empty: "begin 644 "
// with the name lost still opens a block that uudecode and clients decode).
bool uu_begin(const uint8_t* s, std::size_t n, std::string_view& name) noexcept {
  std::string_view l(reinterpret_cast<const char*>(s), n);
  if (l.size() < 10 || l.substr(0, 6) != "begin ") return false;
  std::size_t i = 6;
  while (i < l.size() && l[i] == ' ') ++i;
  std::size_t d = i;
  while (i < l.size() && l[i] >= '0' && l[i] <= '7') ++i;
  if (i - d < 3 || i - d > 4 || i >= l.size() || !is_wsp(uint8_t(l[i]))) return false;
  name = trim(l.substr(i));
  return true;
}

// "Name:" with a name of printable characters (RFC 5322 3.6.8; whitespace before the colon is
// the obsolete syntax of RFC 5322 4.5, still accepted).
bool is_header_line(const char* f, std::size_t n) noexcept {
  const void* c = std::memchr(f, ':', n);
  if (!c) return false;
  std::size_t e = std::size_t(static_cast<const char*>(c) - f);
  while (e > 0 && is_wsp(uint8_t(f[e - 1]))) --e;
  if (e == 0) return false;
  for (std::size_t i = 0; i < e; ++i)
    if (uint8_t(f[i]) <= 32 || uint8_t(f[i]) >= 127) return false;
  return true;
}

// A Content-Type value that readers disagree on: stray ':' in front ("Content-Type:: multipart/x"),
// or an RFC 2047 encoded word in the type ("=?UTF-8?B?bXVsdGlwYXJ0?=/mixed").
bool odd_type(std::string_view v) noexcept {
  v = trim(v);
  if (!v.empty() && v.front() == ':') return true;
  return v.substr(0, v.find(';')).find("=?") != std::string_view::npos;
}

// How many forms of parameter 0 a parsed field has (plain "boundary=", RFC 2231 "boundary*=",
// RFC 2231 sections): more than one is a choice readers make differently.
int boundary_forms(const ParsedField& f) noexcept {
  int plain = 0, ext = 0, sections = 0;
  for (int e = 0; e < f.count; ++e) {
    if (f.entries[e].which != 0) continue;
    if (f.entries[e].index == -1) ++plain;
    else if (f.entries[e].index == -2) ++ext;
    else sections = 1;
  }
  return plain + ext + sections;
}

const ParsedField::Entry* last_plain(const ParsedField& f, uint8_t which) noexcept {
  for (int e = f.count - 1; e >= 0; --e)
    if (f.entries[e].which == which && f.entries[e].index == -1) return &f.entries[e];
  return nullptr;
}

bool uu_end(const uint8_t* s, std::size_t n) noexcept {
  return trim(std::string_view(reinterpret_cast<const char*>(s), n)) == "end";
}

}  // namespace

const char* transfer_encoding_name(TransferEncoding e) noexcept {
  switch (e) {
    case TransferEncoding::seven_bit: return "7bit";
    case TransferEncoding::eight_bit: return "8bit";
    case TransferEncoding::binary: return "binary";
    case TransferEncoding::base64: return "base64";
    case TransferEncoding::quoted_printable: return "quoted-printable";
    case TransferEncoding::uuencode: return "x-uuencode";
    case TransferEncoding::gzip64: return "x-gzip64";
    case TransferEncoding::unknown: return "unknown";
  }
  return "unknown";
}

const char* mime_anomaly_name(MimeAnomaly a) noexcept {
  auto i = std::size_t(a);
  return i < std::size_t(MimeAnomaly::count_) ? kAnomalyNames[i] : "unknown";
}

// ---------------------------------------------------------------------------------------------
// Sinks

void MimeParser::DataSink::on_bytes(const uint8_t* data, std::size_t len) noexcept {
  if (self->mode_ == Mode::nested) {
    if (self->child_active_) self->child_->feed(data, len);
  } else if (self->cb_) {
    self->cb_->on_part_data(data, len);
  }
}

void MimeParser::ReadingSink::on_bytes(const uint8_t* data, std::size_t len) noexcept {
  if (self->cb_) self->cb_->on_reading_data(slot, data, len);
}

void MimeParser::TextSink::on_bytes(const uint8_t* data, std::size_t len) noexcept {
  self->text_dec_bytes(data, len);
}

void MimeParser::ChildForward::on_part_begin(const PartInfo& part) noexcept {
  std::size_t n = prefix_len;
  std::size_t add = part.path.size() < kPathCap - n ? part.path.size() : kPathCap - n;
  std::memcpy(path + n, part.path.data(), add);
  PartInfo p = part;
  p.path = std::string_view(path, n + add);
  if (self->lenient_) p.reading = MimeReading::header_lenient;
  self->parts_++;
  if (p.attachment) self->attachments_++;
  if (self->cb_) self->cb_->on_part_begin(p);
}
void MimeParser::ChildForward::on_part_data(const uint8_t* data, std::size_t len) noexcept {
  if (self->cb_) self->cb_->on_part_data(data, len);
}
void MimeParser::ChildForward::on_part_end(PartEnd how) noexcept {
  if (self->cb_) self->cb_->on_part_end(how);
}
void MimeParser::ChildForward::on_anomaly(MimeAnomaly what) noexcept { self->note(what); }
void MimeParser::ChildForward::on_reading_begin(unsigned slot, const PartInfo& part) noexcept {
  std::size_t n = prefix_len;
  std::size_t add = part.path.size() < kPathCap - n ? part.path.size() : kPathCap - n;
  std::memcpy(path + n, part.path.data(), add);
  PartInfo p = part;
  p.path = std::string_view(path, n + add);
  if (self->cb_) self->cb_->on_reading_begin(slot, p);
}
void MimeParser::ChildForward::on_reading_data(unsigned slot, const uint8_t* data, std::size_t len) noexcept {
  if (self->cb_) self->cb_->on_reading_data(slot, data, len);
}
void MimeParser::ChildForward::on_reading_end(unsigned slot, PartEnd how) noexcept {
  if (self->cb_) self->cb_->on_reading_end(slot, how);
}

// ---------------------------------------------------------------------------------------------
// Hyperscan body scanning (use_body_scan). feed() scans its input on the parser's stream, then
// parses it; the match callback only records (position in the input, event) pairs, so the events
// of a feed are consumed in the same feed() call and the body is never copied. When the list is
// full, the position of the first event left out ends what is known: from there to the end of the
// feed, body_span uses the SSE2 scan (the input is not cut: the parser's output must not depend on
// how a message is split, and a held line start longer than kCarryCap would).

struct MimeParser::BodyScanState {
  // 1460-byte feeds hold a few dozen events in ordinary mail; bounded per parser.
  static constexpr uint32_t kMaxEvents = 1024;
  const MimeBodyScan* scan = nullptr;
  hs_scratch* scratch = nullptr;
  hs_stream* stream = nullptr;
  const uint8_t* base = nullptr;  // the feed being parsed
  uint64_t stream_off = 0;        // stream offset of base
  uint64_t known = 0;             // events are complete in base[0, known)
  uint32_t seen = 0;              // anomaly bits when the feed was scanned: those events are not kept
  uint32_t n = 0, next = 0;
  uint64_t ev[kMaxEvents];        // position << 2 | MimeBodyScan::Event
  ~BodyScanState() {
    if (stream) hs_close_stream(stream, nullptr, nullptr, nullptr);
  }
};

namespace {

constexpr uint32_t bit(MimeAnomaly a) noexcept { return 1u << unsigned(a); }

int on_body_event(unsigned id, unsigned long long, unsigned long long to, unsigned, void* ctx) {
  auto* h = static_cast<MimeParser::BodyScanState*>(ctx);
  if (id == MimeBodyScan::bare_lf && (h->seen & bit(MimeAnomaly::bare_lf))) return 0;
  if (id == MimeBodyScan::long_line && (h->seen & bit(MimeAnomaly::line_too_long))) return 0;
  uint64_t pos = to - 1 - h->stream_off;
  if (id == MimeBodyScan::begin_start || id == MimeBodyScan::end_start) {
    // "\nbegin " / "\nend": back to the line start. One in an earlier feed was left to the
    // per-line loop there (hs_skip stops kLiteTail bytes before the end of a feed).
    const uint64_t back = id == MimeBodyScan::begin_start ? 5 : 2;
    if (pos < back) return 0;
    pos -= back;
    id = MimeBodyScan::line_start;
  }
  if (h->n < MimeParser::BodyScanState::kMaxEvents) h->ev[h->n++] = pos << 2 | id;
  else if (pos < h->known) h->known = pos;
  return 0;
}

}  // namespace

bool MimeParser::use_body_scan(const MimeBodyScan* scan, MimeBodyScan::Scratch* scratch) noexcept {
  hs_.reset();
  if (!scan || !scratch) return true;
  std::unique_ptr<BodyScanState> h(new (std::nothrow) BodyScanState());
  if (!h || hs_open_stream(scan->db(), 0, &h->stream) != HS_SUCCESS) return false;
  h->scan = scan;
  h->scratch = scratch->s;
  hs_ = std::move(h);
  return true;
}

// From j (inside a line of p[0..n), the current piece from p on), the start of the last line s
// before the first event that matters now such that the per-line loop would pass over [j, s)
// without any effect: every '\n' there ends a line that is CRLF-terminated (or bare_lf is noted),
// not over kMaxLine (or line_too_long is noted) and followed by a byte that cannot start a
// candidate line. Returns j when no line can be skipped; retry: where to call again.
std::size_t MimeParser::hs_skip(const uint8_t* p, std::size_t j, std::size_t n, uint8_t extra,
                                std::size_t& retry) noexcept {
  BodyScanState& h = *hs_;
  const std::size_t off = std::size_t(p - h.base);
  const std::size_t known = std::size_t(h.known) - off;  // > j (body_span checks)
  const bool exact = h.scan->exact_lines();
  const bool bare_seen = !exact || (anomalies_ & bit(MimeAnomaly::bare_lf));
  const bool long_seen = !exact || (anomalies_ & bit(MimeAnomaly::line_too_long));
  // The line holding j began in an earlier piece: its length so far is only in line_len_.
  if (!long_seen && line_len_ > 0) {
    const void* nlp = std::memchr(p + j, '\n', n - j);
    const std::size_t k = nlp ? std::size_t(static_cast<const uint8_t*>(nlp) - p) : n;
    if (line_len_ + (k - j) >= kMaxLine) {
      retry = k + 1;
      return j;
    }
  }
  // Without events: up to the line holding the first unknown byte (the line end at n - 1, if
  // any, is left to the per-line loop).
  // Without line checks, a line start in the last 5 bytes may be a "begin " whose match ends in
  // the next feed: those lines are left to the per-line loop too.
  const std::size_t tail = exact ? 1 : 6;
  std::size_t limit = known < n ? known - 1 : (n >= tail ? n - tail : 0);
  retry = known < n ? known : n;
  while (h.next < h.n) {
    const uint32_t e = h.ev[h.next];
    std::size_t pos = std::size_t(e >> 2);
    const unsigned kind = e & 3;
    // Behind j; a line start at j is the current line, already looked at.
    if (pos < off + j || (pos == off + j && kind == MimeBodyScan::line_start)) { ++h.next; continue; }
    pos -= off;
    if (kind == MimeBodyScan::line_start) {
      if (p[pos] != '-' && p[pos] != extra) { ++h.next; continue; }
      limit = pos - 1;  // the line ended by the '\n' in front is the last one to skip
    } else if (kind == MimeBodyScan::bare_lf) {
      if (bare_seen) { ++h.next; continue; }
      limit = pos;
    } else {
      if (long_seen) { ++h.next; continue; }
      retry = pos + 1;
      return pos >= 998 && pos - 998 > j ? pos - 998 : j;  // the line start is exact
    }
    retry = pos + 1;
    break;
  }
  if (limit <= j) return j;
  const void* nlp = memrchr(p + j, '\n', limit - j);
  return nlp ? std::size_t(static_cast<const uint8_t*>(nlp) - p) + 1 : j;
}

// ---------------------------------------------------------------------------------------------
// Set-up

MimeParser::MimeParser(const MimeLimits& limits, records::Carve* carve) noexcept : MimeParser(limits, 0, carve) {}

void SlotDelete::operator()(MimeParser* p) const noexcept {
  if (heap) delete p;
  else p->~MimeParser();
}

std::unique_ptr<uint8_t[], SlotDelete> MimeParser::buffer(std::size_t n, records::Carve* carve) noexcept {
  if (!carve) return {new (std::nothrow) uint8_t[n], SlotDelete{true}};
  return {static_cast<uint8_t*>(carve->take(n)), SlotDelete{false}};
}

// What the constructor below takes, level by level (kept in step with it).
std::size_t MimeParser::footprint(const MimeLimits& limits, int level) noexcept {
  std::size_t n = 0;
  if (limits.max_readings && limits.reading_retain_bytes) n += records::Carve::round(limits.reading_retain_bytes);
  if (level < kEncodedLevels) n += records::Carve::round(sizeof(MimeParser)) + footprint(limits, level + 1);
  return n;
}

std::size_t MimeParser::footprint(const MimeLimits& limits, bool alternate) noexcept {
  std::size_t n = footprint(limits, 0);
  if (alternate && limits.reading_retain_bytes) n += records::Carve::round(limits.reading_retain_bytes);
  return n;
}

MimeParser::MimeParser(const MimeLimits& limits, int level, records::Carve* carve) noexcept
    : limits_(limits), is_child_(level > 0) {
  if (limits_.max_depth > uint32_t(kMaxFrames)) limits_.max_depth = kMaxFrames;
  field_cap_ = limits_.max_field_bytes < kFieldCap - 2 ? limits_.max_field_bytes : kFieldCap - 2;
  if (field_cap_ < 64) field_cap_ = 64;
  sink_.self = this;
  tsink_.self = this;
  child_cb_.self = this;
  for (unsigned k = 0; k < kLeafReadings; ++k) {
    rsink_[k].self = this;
    rsink_[k].slot = k;
  }
  if (limits_.max_readings && limits_.reading_retain_bytes) retain_ = buffer(limits_.reading_retain_bytes, carve);
  if (level < kEncodedLevels) {
    if (!carve) child_ = {new (std::nothrow) MimeParser(limits_, level + 1, nullptr), SlotDelete{true}};
    else if (void* at = carve->take(sizeof(MimeParser)))
      child_ = {new (at) MimeParser(limits_, level + 1, carve), SlotDelete{false}};
  }
  reset(nullptr);
}

MimeParser::~MimeParser() = default;

SingleParserPool::SingleParserPool(const MimeLimits& limits) noexcept : limits_(limits) {
  limits_.max_readings = 0;
  try {
    memory_ = records::ReservedRegion(records::Carve::round(sizeof(MimeParser)) + MimeParser::footprint(limits_, false));
  } catch (const std::bad_alloc&) {  // the parser comes from the heap on first use instead
  }
}

SingleParserPool::~SingleParserPool() {
  if (!parser_) return;
  if (heap_) delete parser_;
  else parser_->~MimeParser();
}

MimeParser* SingleParserPool::acquire() noexcept {
  if (lent_) return nullptr;
  if (!parser_) {
    if (memory_.data()) {
      records::Carve carve(memory_.data(), memory_.size());
      parser_ = new (carve.take(sizeof(MimeParser))) MimeParser(limits_, &carve);
    } else {
      parser_ = new (std::nothrow) MimeParser(limits_);
      heap_ = true;
    }
  }
  lent_ = parser_ != nullptr;
  return parser_;
}

void SingleParserPool::release(MimeParser* parser) noexcept {
  if (parser == parser_) lent_ = false;
}

void MimeParser::reset(MimeCallbacks* callbacks) noexcept {
  cb_ = callbacks;
  if (hs_) {
    hs_reset_stream(hs_->stream, 0, hs_->scratch, nullptr, nullptr);
    hs_->stream_off = 0;
    hs_->n = hs_->next = 0;
    hs_->base = nullptr;
  }
  anomalies_ = attachments_ = parts_ = 0;
  readings_ = 0;
  nlr_ = 0;
  lazy_ = lazy_late_ = 0;
  finished_ = false;
  depth_ = 0;
  mode_ = Mode::skip;
  line_start_ = true;
  cr_pending_ = false;
  eol_len_ = 0;
  line_len_ = 0;
  carry_len_ = 0;
  leaf_reported_ = uu_open_ = child_active_ = false;
  active_ = nullptr;
  seen_version_ = false;
  if (alt_) end_alternate(false);
  lenient_ = false;
  watch_top_ = top_open_ = alt_pool_ && keep_ && limits_.max_readings > 0;
  top_want_ = keep_over_ = false;
  keep_len_ = 0;
  top_len_ = 0;
  start_entity(true, 0, 1, false);
}

void MimeParser::set_alternate(MimeParserPool* pool, MimeCallbacks* callbacks, records::Carve* carve) noexcept {
  alt_pool_ = is_child_ ? nullptr : pool;
  alt_cb_ = callbacks;
  if (alt_pool_ && !keep_ && limits_.reading_retain_bytes) keep_ = buffer(limits_.reading_retain_bytes, carve);
  reset(cb_);
}

// The message's feeds up to the end of its top-level header: held (header_lenient, if wanted,
// reads the message from its first byte); the feed that ends it starts that reading.
void MimeParser::top_header_fed(const uint8_t* data, std::size_t len) noexcept {
  if (top_open_) {
    if (!keep_over_ && len <= limits_.reading_retain_bytes - keep_len_) {
      std::memcpy(keep_.get() + keep_len_, data, len);
      keep_len_ += len;
    } else {
      keep_over_ = true;
    }
    return;
  }
  watch_top_ = false;
  if (!top_want_) return;
  if (keep_over_ || top_len_ > limits_.reading_retain_bytes || readings_ >= limits_.max_readings || !(alt_ = alt_pool_->acquire())) {
    note(MimeAnomaly::reading_skipped);
    return;
  }
  ++readings_;
  alt_->reset(alt_cb_);
  alt_->lenient_ = true;
  alt_->feed(keep_.get(), keep_len_);
  alt_->feed(data, len);
}

void MimeParser::end_alternate(bool complete) noexcept {
  alt_->finish(complete);
  alt_pool_->release(alt_);
  alt_ = nullptr;
}

void MimeParser::resume(MimeCallbacks* callbacks, const MimeParser& from) noexcept {
  reset(callbacks);
  if (from.phase_ != Phase::body || from.depth_ == 0 || from.is_child_) return;
  watch_top_ = top_open_ = false;
  depth_ = from.depth_;
  std::memcpy(frames_, from.frames_, sizeof(Frame) * static_cast<std::size_t>(depth_));
  std::memcpy(path_, from.path_, from.path_len_);
  path_len_ = leaf_len_ = from.path_len_;
  phase_ = Phase::body;
  mode_ = Mode::skip;
  line_start_ = true;
}

uint32_t MimeParser::anomalies() const noexcept { return anomalies_; }
uint64_t MimeParser::attachments() const noexcept { return attachments_; }

void MimeParser::note(MimeAnomaly a) noexcept {
  uint32_t bit = 1u << unsigned(a);
  if (anomalies_ & bit) return;
  anomalies_ |= bit;
  if (cb_) cb_->on_anomaly(a);
}

void MimeParser::path_append_num(uint32_t n) noexcept {
  char tmp[12];
  int k = 0;
  do { tmp[k++] = char('0' + n % 10); n /= 10; } while (n && k < 11);
  while (k > 0 && path_len_ < kPathCap) path_[path_len_++] = tmp[--k];
}

void MimeParser::start_entity(bool message_body, std::size_t prefix_len, uint32_t num, bool digest_child) noexcept {
  path_len_ = prefix_len;
  path_append_num(num);
  leaf_len_ = path_len_;
  ent_message_body_ = message_body;
  ent_prefix_len_ = prefix_len;
  ent_digest_child_ = digest_child;
  seen_ct_ = seen_cd_ = seen_cte_ = false;
  cte_ = TransferEncoding::seven_bit;
  ctype_len_ = cdisp_len_ = bnd_len_ = ct_name_len_ = cd_name_len_ = 0;
  cte_alts_ = 0;
  ent_junk_end_ = false;
  names_.reset();
  phase_ = Phase::headers;
  field_len_ = 0;
  have_field_ = field_trunc_ = false;
  hdr_line_start_ = true;
  hdr_cr_ = hdr_cont_ = false;
  hdr_line_off_ = 0;
  hdr_line_len_ = 0;
  mode_ = Mode::skip;
}

// ---------------------------------------------------------------------------------------------
// Feeding

void MimeParser::feed(const uint8_t* data, std::size_t len) noexcept {
  if (finished_) return;
  if (alt_) alt_->feed(data, len);
  const bool top = watch_top_;
  feed_bytes(data, len);
  if (top) top_header_fed(data, len);
}

void MimeParser::feed_bytes(const uint8_t* data, std::size_t len) noexcept {
  if (!hs_) {
    feed_piece(data, len);
    return;
  }
  BodyScanState& h = *hs_;
  h.base = data;
  h.n = h.next = 0;
  h.known = len;
  h.seen = anomalies_;
  // One call per feed (Hyperscan takes unsigned lengths: more calls for feeds over 1 GiB).
  for (std::size_t off = 0; off < len;) {
    const std::size_t m = len - off < (1u << 30) ? len - off : (1u << 30);
    hs_scan_stream(h.stream, reinterpret_cast<const char*>(data + off), unsigned(m), 0, h.scratch, on_body_event, &h);
    off += m;
  }
  feed_piece(data, len);
  h.stream_off += len;
  h.base = nullptr;
}

void MimeParser::feed_piece(const uint8_t* data, std::size_t len) noexcept {
  while (len > 0) {
    std::size_t used;
    if (phase_ == Phase::headers) {
      const bool top = top_open_;
      used = header_bytes(data, len);
      if (top) top_len_ += used;  // the top-level header's size, however it was split
    } else if (carry_len_ > 0) {
      // Complete the held line start: up to its '\n', or until it is too long to be special.
      const void* nl = std::memchr(data, '\n', len);
      std::size_t take = nl ? std::size_t(static_cast<const uint8_t*>(nl) - data) + 1 : len;
      bool full = false;
      if (carry_len_ + take >= kCarryCap) { take = kCarryCap - carry_len_; full = true; nl = nullptr; }
      std::memcpy(carry_ + carry_len_, data, take);
      carry_len_ += take;
      used = take;
      if (nl || full) {
        std::size_t n = carry_len_;
        carry_len_ = 0;
        body_span(carry_, n, full, false);
      }
    } else {
      hs_span_ = data;
      used = body_span(data, len, false, false);
      hs_span_ = nullptr;
    }
    data += used;
    len -= used;
  }
}

void MimeParser::finish(bool complete) noexcept {
  if (finished_) return;
  if (phase_ == Phase::body && carry_len_ > 0) {
    std::size_t n = carry_len_;
    carry_len_ = 0;
    body_span(carry_, n, false, true);
  }
  // A header block cut by the end: the entity has an empty body.
  while (phase_ == Phase::headers) {
    if (have_field_) {
      if (field_len_ > hdr_line_off_ && field_[field_len_ - 1] == '\r') --field_len_;
      process_field();
      have_field_ = false;
    }
    headers_done();
  }
  if (line_start_ && eol_len_) emit(eol_, eol_len_);
  eol_len_ = 0;
  if (cr_pending_) {
    static const uint8_t cr = '\r';
    emit(&cr, 1);
    cr_pending_ = false;
  }
  PartEnd how = complete ? PartEnd::complete : PartEnd::truncated;
  end_leaf(how);
  for (int k = depth_ - 1; k >= 0; --k)
    if (frames_[k].multipart && !frames_[k].closed && complete) note(MimeAnomaly::missing_close_delimiter);
  depth_ = 0;
  finished_ = true;
  watch_top_ = top_open_ = false;
  if (alt_) end_alternate(complete);
}

// ---------------------------------------------------------------------------------------------
// Header blocks

std::size_t MimeParser::header_bytes(const uint8_t* p, std::size_t n) noexcept {
  std::size_t i = 0;
  while (i < n) {
    if (hdr_line_start_) {
      uint8_t c = p[i];
      if (hdr_cr_) {
        hdr_cr_ = false;
        if (c == '\n') {
          ++i;
          if (have_field_) process_field();
          have_field_ = false;
          headers_done();
          return i;
        }
        // A lone CR at a line start: dropped.
      }
      if (c == '\n') {
        ++i;
        note(MimeAnomaly::bare_lf);
        if (have_field_) process_field();
        have_field_ = false;
        headers_done();
        return i;
      }
      if (c == '\r') { hdr_cr_ = true; ++i; continue; }
      hdr_line_start_ = false;
      hdr_line_len_ = 0;
      if (is_wsp(c) && have_field_) {
        // Folded: unfolding removes the line break only (RFC 5322 2.2.3). Where it was is marked
        // by a '\n' (header_fields.h: a token does not run on across a fold).
        hdr_cont_ = true;
        if (field_len_ < field_cap_) field_[field_len_++] = '\n';
      } else {
        if (have_field_) process_field();
        have_field_ = true;
        field_len_ = 0;
        field_trunc_ = false;
        hdr_cont_ = false;
      }
      hdr_line_off_ = field_len_;
    }
    const void* nlp = std::memchr(p + i, '\n', n - i);
    std::size_t end = nlp ? std::size_t(static_cast<const uint8_t*>(nlp) - p) : n;
    std::size_t take = end - i;
    if (field_len_ + take > field_cap_) {
      if (!field_trunc_) note(MimeAnomaly::header_too_long);
      field_trunc_ = true;
      take = field_cap_ - field_len_;
    }
    std::memcpy(field_ + field_len_, p + i, take);
    field_len_ += take;
    hdr_line_len_ += end - i;
    if (end > i) hdr_last_ = p[end - 1];
    if (!nlp) return n;
    // A complete line.
    bool line_crlf = hdr_last_ == '\r' && hdr_line_len_ > 0;
    if (line_crlf) {
      if (field_len_ > hdr_line_off_ && field_[field_len_ - 1] == '\r') --field_len_;
      --hdr_line_len_;
    } else {
      note(MimeAnomaly::bare_lf);
    }
    if (hdr_line_len_ > kMaxLine) note(MimeAnomaly::line_too_long);
    hdr_last_ = 0;
    i = end + 1;
    hdr_line_start_ = true;
    if (hdr_cont_) continue;
    // A delimiter line inside a header block ends the block (the part has no body).
    if (field_len_ >= 2 && field_[0] == '-' && field_[1] == '-') {
      int k;
      bool close;
      if (match_delimiter(reinterpret_cast<const uint8_t*>(field_), field_len_, k, close)) {
        have_field_ = false;
        field_len_ = 0;
        headers_done();
        delimiter(k, close);
        return i;
      }
    }
    // A line that is not a header field ("name:") ends the header block without the empty line
    // and is the first body line, as mail clients (and Python's email package) read it. An mbox
    // "From " line at the top is skipped.
    // (header_lenient: such a line does not end the block; without ':' it is no field.)
    if (!lenient_ && !is_header_line(field_, field_len_) &&
        !(depth_ == 0 && ent_message_body_ && field_len_ >= 5 && std::memcmp(field_, "From ", 5) == 0)) {
      std::size_t flen = field_len_;
      have_field_ = false;
      field_len_ = 0;
      ent_junk_end_ = true;
      headers_done();
      if (line_crlf) field_[flen++] = '\r';
      field_[flen++] = '\n';
      if (phase_ == Phase::body) {
        // field_ is not touched in the body phase; the line goes through the body scanner.
        body_span(reinterpret_cast<const uint8_t*>(field_), flen, false, false);
      } else {
        // The header block of a message/rfc822 entity begins with it.
        if (flen > kCarryCap) flen = kCarryCap;
        std::memcpy(carry_, field_, flen);
        header_bytes(carry_, flen);
      }
      return i;
    }
  }
  return n;
}

// A fold whose continuation line holds a Content-* field ("X-Foo: bar" CRLF " Content-Type: ..."):
// header_lenient reads that line as a field of its own (a reader that splits header lines before
// unfolding), and in the primary parse of a top-level header it asks for that reading. Returns
// true when the field was processed here.
bool MimeParser::lenient_fields() noexcept {
  for (std::size_t q = 0; q < field_len_; ++q) {
    if (field_[q] != '\n') continue;
    std::size_t r = q + 1;
    while (r < field_len_ && is_wsp(uint8_t(field_[r]))) ++r;
    if (field_len_ - r <= 8 || !ieq(std::string_view(field_ + r, 8), "content-") ||
        !is_header_line(field_ + r, field_len_ - r))
      continue;
    if (!lenient_) {
      top_want_ = true;
      return false;
    }
    const std::size_t total = field_len_;
    field_len_ = q;
    process_field();
    std::memmove(field_, field_ + r, total - r);
    field_len_ = total - r;
    process_field();
    return true;
  }
  return false;
}

void MimeParser::process_field() noexcept {
  if ((lenient_ || top_open_) && std::memchr(field_, '\n', field_len_) && lenient_fields()) return;
  // A lone CR inside a field followed by another "Name:" is a line break (old Mac line ends;
  // clients split there): the fields are processed one by one.
  for (std::size_t q = 0; q + 1 < field_len_; ++q) {
    if (field_[q] != '\r' || field_[q + 1] == '\n' || is_wsp(uint8_t(field_[q + 1]))) continue;
    if (!is_header_line(field_ + q + 1, field_len_ - q - 1)) continue;
    std::size_t total = field_len_;
    field_len_ = q;
    process_one_field();
    std::memmove(field_, field_ + q + 1, total - q - 1);
    field_len_ = total - q - 1;
    q = std::size_t(-1);
  }
  process_one_field();
}

void MimeParser::process_one_field() noexcept {
  std::size_t len = field_len_;
  bool eight = false, nul = false;
  for (std::size_t i = 0; i < len; ++i) {
    uint8_t c = uint8_t(field_[i]);
    eight |= c >= 0x80;
    nul |= c == 0;
  }
  if (eight) note(MimeAnomaly::eight_bit_header);
  if (nul) note(MimeAnomaly::nul_byte);
  const void* colon = std::memchr(field_, ':', len);
  if (!colon) return;
  std::size_t c = std::size_t(static_cast<const char*>(colon) - field_);
  std::string_view name = trim(std::string_view(field_, c));
  char* value = field_ + c + 1;
  std::size_t vlen = len - c - 1;
  const bool is_ct = ieq(name, "content-type"), is_cd = !is_ct && ieq(name, "content-disposition");
  if (is_ct || is_cd) {
    // The file name candidates of every Content-Type and Content-Disposition field, duplicates
    // included (PartInfo::filenames); the first of each field kind gives the type, the boundary
    // and the primary names.
    const bool first = is_ct ? !seen_ct_ : !seen_cd_;
    if (!first) note(MimeAnomaly::duplicate_header);
    if (is_ct && top_open_) top_want_ |= !first || odd_type(std::string_view(value, vlen));
    if (is_ct && lenient_) lenient_type(value, vlen);
    const std::size_t rlen = vlen < sizeof raw_field_ ? vlen : sizeof raw_field_;
    std::memcpy(raw_field_, value, rlen);
    const std::string_view raw(raw_field_, rlen);
    ParamRequest req;
    req.names[0] = is_ct ? "boundary" : "filename";
    req.names[1] = "name";
    req.names[2] = is_ct ? "filename" : "";
    req.n = is_ct ? 3 : 2;
    ParsedField pf;
    parse_field(value, vlen, req, pf);
    const uint8_t fname_which = is_ct ? 2 : 0;
    name_candidates(pf, 1, conv_, scratch_, sizeof scratch_, name_tmp_, sizeof name_tmp_, names_);
    name_candidates(pf, fname_which, conv_, scratch_, sizeof scratch_, name_tmp_, sizeof name_tmp_, names_);
    lenient_name_values(raw, "filename", conv_, scratch_, sizeof scratch_, name_tmp_, sizeof name_tmp_, names_);
    lenient_name_values(raw, "name", conv_, scratch_, sizeof scratch_, name_tmp_, sizeof name_tmp_, names_);
    names_.keep_sections(pf, fname_which, 1);
    if (is_ct && top_open_) top_want_ |= boundary_forms(pf) > 1;
    // header_lenient: the last Content-Type wins (GMime), else the first.
    if (!first && !(is_ct && lenient_)) return;
    bool bad = false;
    if (is_ct) {
      seen_ct_ = true;
      ctype_len_ = 0;
      for (char ch : pf.value)
        if (ctype_len_ < sizeof ctype_ - 1) ctype_[ctype_len_++] = lower(ch);
      {
        // The boundary: RFC 2231 forms decoded, no RFC 2047 (a boundary is compared as bytes).
        Utf8Out o(bnd_, sizeof bnd_);
        bnd_len_ = 0;
        const ParsedField::Entry* last = lenient_ ? last_plain(pf, 0) : nullptr;
        if (last) {
          o.put_bytes(last->value.data(), last->value.size());  // header_lenient: the last plain one
          bnd_len_ = o.size();
        } else if (assemble_param(pf, 0, conv_, scratch_, sizeof scratch_, o, bad, false)) {
          bnd_len_ = o.size();
        }
        // RFC 2046 5.1.1: a boundary does not end in a space; delimiter lines may add some. One
        // that is only spaces is kept as it is (GMime reads "-- " lines as its delimiters).
        std::size_t keep = bnd_len_;
        while (keep > 0 && is_wsp(uint8_t(bnd_[keep - 1]))) --keep;
        if (keep > 0) bnd_len_ = keep;
      }
      Utf8Out o(ct_name_, sizeof ct_name_);
      if (assemble_param(pf, 1, conv_, scratch_, sizeof scratch_, o, bad, true)) ct_name_len_ = o.finish();
    } else {
      seen_cd_ = true;
      cdisp_len_ = 0;
      for (char ch : pf.value)
        if (cdisp_len_ < sizeof cdisp_ - 1) cdisp_[cdisp_len_++] = lower(ch);
      // "name" is not RFC 2183, but clients read it when filename is absent.
      Utf8Out o(cd_name_, sizeof cd_name_);
      if (assemble_param(pf, 0, conv_, scratch_, sizeof scratch_, o, bad, true) ||
          assemble_param(pf, 1, conv_, scratch_, sizeof scratch_, o, bad, true))
        cd_name_len_ = o.finish();
    }
    if (bad) note(MimeAnomaly::bad_encoded_word);
  } else if (ieq(name, "content-transfer-encoding")) {
    cte_alts_ |= cte_named(std::string_view(value, vlen));
    if (seen_cte_) { note(MimeAnomaly::duplicate_header); return; }
    seen_cte_ = true;
    ParamRequest req;
    ParsedField pf;
    parse_field(value, vlen, req, pf);
    cte_ = parse_cte(pf.value);
    if (cte_ == TransferEncoding::unknown) note(MimeAnomaly::invalid_transfer_encoding);
  } else if (ieq(name, "mime-version")) {
    seen_version_ = true;
  }
}

// header_lenient: the Content-Type value read past stray leading ':' and with RFC 2047 words in
// its type decoded (in place; a decoding longer than the words is left as it is).
void MimeParser::lenient_type(char*& value, std::size_t& vlen) noexcept {
  while (vlen > 0 && (is_wsp(uint8_t(*value)) || *value == ':' || *value == '\n')) {
    ++value;
    --vlen;
  }
  const std::string_view v(value, vlen);
  const std::size_t tlen = v.substr(0, v.find(';')).size();
  if (std::string_view(value, tlen).find("=?") == std::string_view::npos) return;
  Utf8Out o(name_tmp_, sizeof name_tmp_);
  conv_.decode_words(reinterpret_cast<const uint8_t*>(value), tlen, o);
  if (o.overflowed() || o.size() > tlen) return;
  const std::size_t d = o.size();
  std::memcpy(value, name_tmp_, d);
  std::memmove(value + d, value + tlen, vlen - tlen);
  vlen -= tlen - d;
}

void MimeParser::headers_done() noexcept {
  if (top_open_) {
    // The end of the top-level header: a block ended by a stray line, or MIME without a
    // Content-Type, is read the header_lenient way too (top_header_fed starts it).
    top_open_ = false;
    top_want_ |= ent_junk_end_ || (seen_version_ && !seen_ct_);
  }
  if (lenient_ && depth_ == 0 && ent_message_body_ && !seen_ct_) {
    // header_lenient: a top-level body without a type is sniffed as a multipart (sniff_line).
    static constexpr std::string_view kMixed = "multipart/mixed";
    std::memcpy(ctype_, kMixed.data(), kMixed.size());
    ctype_len_ = kMixed.size();
    seen_ct_ = true;
  }
  std::string_view type(ctype_, ctype_len_);
  if (!seen_ct_ || type.empty()) {
    type = ent_digest_child_ ? "message/rfc822" : "text/plain";
    std::memcpy(ctype_, type.data(), type.size());
    ctype_len_ = type.size();
    type = std::string_view(ctype_, ctype_len_);
  }
  // RFC 2045 5.2: a syntactically invalid Content-Type means text/plain ("multipart" without a
  // subtype is still read as multipart/mixed, as clients do).
  if (type.find('/') == std::string_view::npos && type != "multipart") {
    type = "text/plain";
    std::memcpy(ctype_, type.data(), type.size());
    ctype_len_ = type.size();
    type = std::string_view(ctype_, ctype_len_);
  }
  bool multipart = type.substr(0, 9) == "multipart";
  bool message = type == "message/rfc822" || type == "message/global";
  bool encoded = cte_ == TransferEncoding::base64 || cte_ == TransferEncoding::quoted_printable ||
                 cte_ == TransferEncoding::uuencode;
  if (depth_ == 0 && ent_message_body_ && !seen_version_ && !is_child_ && (multipart || seen_cte_))
    note(MimeAnomaly::missing_mime_version);
  if ((multipart || message) && encoded && type != "message/global")
    note(MimeAnomaly::encoding_not_allowed);  // RFC 2045 6.4; RFC 6532 3.5 allows it for message/global

  if (multipart && bnd_len_ == 0) note(MimeAnomaly::missing_boundary);  // sniffed, see sniff_line
  if ((multipart || (message && limits_.parse_rfc822)) && uint32_t(depth_) >= limits_.max_depth) {
    note(MimeAnomaly::depth_exceeded);
    multipart = message = false;
  }
  if (multipart && bnd_len_ > 70) note(MimeAnomaly::boundary_too_long);

  // An encoded multipart that names a file or asks to be an attachment is taken as the file it
  // claims to be (decoded, one leaf): its body is often not a multipart at all. (An encoded
  // message/rfc822 is still parsed: a forwarded message keeps its own attachments.)
  bool names_file = ct_name_len_ || cd_name_len_ || std::string_view(cdisp_, cdisp_len_) == "attachment";
  if (encoded && names_file) multipart = false;
  if (message && limits_.parse_rfc822 && encoded && cte_ != TransferEncoding::uuencode) {
    // RFC 2045 6.4 forbids the encoding (RFC 6532 allows it for message/global) and both kinds
    // are seen: a body that is really encoded (mime4j decodes it) and one that is not, where a
    // reader that ignores the declared encoding finds the inner message (Python, Suricata issue
    // 8649). The first body line decides: a header field means not encoded.
    enter_body(Mode::msg_sniff);
    return;
  }
  if (multipart && encoded && cte_ != TransferEncoding::uuencode && child_) {
    begin_nested(true);
    return;
  }
  if (multipart && !encoded) {
    Frame& f = frames_[depth_++];
    f.multipart = true;
    f.closed = false;
    f.digest = type == "multipart/digest";
    f.children = 0;
    f.sniff = true;
    f.blen = uint16_t(bnd_len_);
    f.alen = 0;
    std::memcpy(f.boundary, bnd_, bnd_len_);
    if (ent_message_body_) {
      f.prefix_len = uint16_t(ent_prefix_len_);
    } else {
      path_len_ = leaf_len_;
      if (path_len_ < kPathCap) path_[path_len_++] = '.';
      f.prefix_len = uint16_t(path_len_);
    }
    enter_body(Mode::skip);
    return;
  }
  if (message && !encoded && limits_.parse_rfc822) {
    Frame& f = frames_[depth_++];
    f.multipart = false;
    f.closed = false;
    f.digest = false;
    f.children = 1;
    f.sniff = false;
    f.blen = f.alen = 0;
    path_len_ = leaf_len_;
    if (path_len_ < kPathCap) path_[path_len_++] = '.';
    f.prefix_len = uint16_t(path_len_);
    start_entity(true, path_len_, 1, false);
    return;
  }
  begin_leaf();
}

void MimeParser::enter_body(Mode m) noexcept {
  phase_ = Phase::body;
  mode_ = m;
  line_start_ = true;
  eol_len_ = 0;
  cr_pending_ = false;
  line_len_ = 0;
}

void MimeParser::begin_leaf() noexcept {
  path_len_ = leaf_len_;
  if (parts_ >= limits_.max_parts) {
    note(MimeAnomaly::too_many_parts);
    enter_body(Mode::skip);
    return;
  }
  std::string_view type(ctype_, ctype_len_);
  std::string_view disp(cdisp_, cdisp_len_);
  // RFC 2183: the Content-Disposition filename first, the Content-Type name as the fallback.
  make_valid_utf8(cd_name_, cd_name_len_);
  make_valid_utf8(ct_name_, ct_name_len_);
  const std::string_view cd_name(cd_name_, cd_name_len_), ct_name(ct_name_, ct_name_len_);
  std::string_view fname = cd_name_len_ ? cd_name : ct_name;
  PartInfo info;
  info.path = std::string_view(path_, leaf_len_);
  info.content_type = type;
  info.filename = fname;
  // Thunderbird and RFC 2183 show the disposition's name, some clients the type's: a policy must
  // see both when they differ ("file.png" declared, "file.zip" in the type).
  info.alt_filename = (cd_name_len_ && ct_name_len_ && cd_name != ct_name) ? ct_name : std::string_view();
  names_.merge(conv_, scratch_, sizeof scratch_, name_tmp_, sizeof name_tmp_);
  info.filenames = names_.build(fname, info.alt_filename, names_out_, sizeof names_out_);
  info.disposition = (disp == "attachment" || disp == "inline") ? disp : std::string_view();
  info.encoding = cte_;
  info.attachment = !fname.empty() || disp == "attachment" || type.substr(0, 5) != "text/";
  info.uuencoded = false;
  if (lenient_) info.reading = MimeReading::header_lenient;
  parts_++;
  leaf_reported_ = true;
  leaf_cte_ = cte_;
  uu_count_ = 0;
  if (cb_) cb_->on_part_begin(info);
  if (!info.attachment) {
    if (limits_.uuencode && (cte_ == TransferEncoding::base64 || cte_ == TransferEncoding::quoted_printable)) {
      // "begin NNN name" is only visible in the decoded text: decode it and scan that.
      active_ = cte_ == TransferEncoding::base64 ? static_cast<Decoder*>(&b64_) : static_cast<Decoder*>(&qp_);
      active_->reset(0);
      dl_start_ = true;
      dl_hold_ = false;
      dline_len_ = 0;
      enter_body(Mode::text_dec);
      return;
    }
    enter_body(limits_.uuencode ? Mode::text : Mode::skip);
    return;
  }
  attachments_++;
  switch (cte_) {
    case TransferEncoding::base64: active_ = &b64_; break;
    case TransferEncoding::quoted_printable: active_ = &qp_; break;
    case TransferEncoding::uuencode: active_ = &uu_; break;
    case TransferEncoding::gzip64: active_ = &gz_; break;
    default: active_ = &id_; break;
  }
  active_->reset(0);
  enter_body(cte_ == TransferEncoding::uuencode ? Mode::uu_wait : Mode::decode);
  // Other readings (mime_readings.h): what the CTE fields name besides the primary encoding from
  // the start; the lazy ones when their trigger shows up in the body.
  nlr_ = 0;
  lazy_ = lazy_late_ = 0;
  body_len_ = retain_len_ = 0;
  last_byte_ = 0;
  if (!limits_.max_readings || mode_ != Mode::decode) return;
  leaf_info_ = info;
  const auto named = [&](TransferEncoding e) { return (cte_alts_ >> unsigned(e)) & 1u; };
  const bool b64 = cte_ == TransferEncoding::base64, qp = cte_ == TransferEncoding::quoted_printable;
  if (named(TransferEncoding::base64) && !b64) start_reading(MimeReading::cte_base64, false);
  if (named(TransferEncoding::quoted_printable) && !qp) start_reading(MimeReading::cte_quoted_printable, false);
  if (named(TransferEncoding::seven_bit) && (b64 || qp)) start_reading(MimeReading::cte_identity, false);
  if (ent_junk_end_) {
    start_reading(MimeReading::header_junk_skipped, false);
    start_reading(MimeReading::header_junk_separator, false);
  }
  // Line ends of a raw body: not for `binary` (RFC 3030: no lines at all).
  lazy_ = b64  ? kLazyBase64
        : qp   ? uint8_t(kLazyQpInvalid | kLazyQpBreak)
        : active_ == &id_ && cte_ != TransferEncoding::binary ? kLazyRawCrlf
               : 0;
}

void MimeParser::start_reading(MimeReading kind, bool replay) noexcept {
  if (nlr_ >= kLeafReadings || readings_ >= limits_.max_readings || (replay && body_len_ > retain_len_)) {
    note(MimeAnomaly::reading_skipped);
    return;
  }
  Decoder* dec = nullptr;
  PartInfo info = leaf_info_;
  info.reading = kind;
  switch (kind) {
    case MimeReading::cte_base64: dec = &r_b64_; info.encoding = TransferEncoding::base64; break;
    case MimeReading::cte_quoted_printable: dec = &r_qp_; info.encoding = TransferEncoding::quoted_printable; break;
    case MimeReading::cte_identity: dec = &r_id_; info.encoding = TransferEncoding::seven_bit; break;
    case MimeReading::base64_lines: dec = &r_lines_; break;
    case MimeReading::base64_strict: dec = &r_strict_; break;
    case MimeReading::qp_lenient: dec = &r_qp_lenient_; break;
    case MimeReading::qp_lf: dec = &r_qp_lf_; break;
    case MimeReading::raw_lf: dec = &r_lf_; break;
    case MimeReading::header_junk_skipped:
    case MimeReading::header_junk_separator: {
      HeaderJunkDecoder& j = kind == MimeReading::header_junk_skipped ? r_junk_skipped_ : r_junk_separator_;
      j.set_encoding(leaf_cte_ == TransferEncoding::base64 ? HeaderJunkDecoder::base64
                     : leaf_cte_ == TransferEncoding::quoted_printable ? HeaderJunkDecoder::quoted_printable
                                                                        : HeaderJunkDecoder::identity);
      dec = &j;
      break;
    }
    case MimeReading::primary:
    case MimeReading::header_lenient:  // a parse of its own (set_alternate)
    case MimeReading::count_: return;
  }
  const unsigned slot = nlr_++;
  lr_[slot] = {kind, dec};
  ++readings_;
  dec->reset(0);
  if (cb_) cb_->on_reading_begin(slot, info);
  if (replay && body_len_) dec->feed(retain_.get(), body_len_, rsink_[slot]);
}

// The open attachment's body bytes `p` (already given to the primary decoder): held while they
// fit, given to the readings under way, and watched for the triggers of the lazy ones.
void MimeParser::leaf_readings(const uint8_t* p, std::size_t n) noexcept {
  if (retain_ && retain_len_ == body_len_ && retain_len_ < limits_.reading_retain_bytes) {
    const std::size_t take = std::min<std::size_t>(n, limits_.reading_retain_bytes - retain_len_);
    std::memcpy(retain_.get() + retain_len_, p, take);
    retain_len_ += take;
  }
  body_len_ += n;
  const unsigned before = nlr_;
  for (unsigned k = 0; k < before; ++k) lr_[k].dec->feed(p, n, rsink_[k]);
  if (!lazy_) return;
  // Past the bytes held (emit() cuts the input there), a trigger can start nothing: said once.
  const bool held = body_len_ <= retain_len_;
  if (!held && (lazy_ & (kLazyBase64 | kLazyQpInvalid))) {
    // The decoder's counters are cumulative: whether they trigger is as well known at the end.
    lazy_late_ |= uint8_t(lazy_ & (kLazyBase64 | kLazyQpInvalid));
    lazy_ &= uint8_t(~(kLazyBase64 | kLazyQpInvalid));
  }
  auto take = [&](uint8_t bit, MimeReading a, MimeReading b = MimeReading::primary) {
    lazy_ &= uint8_t(~bit);
    if (!held) return note(MimeAnomaly::reading_skipped);
    start_reading(a, true);
    if (b != MimeReading::primary) start_reading(b, true);
  };
  if ((lazy_ & kLazyBase64) && (active_->invalid() || active_->irregular())) {
    take(kLazyBase64, MimeReading::base64_lines, MimeReading::base64_strict);
    return;
  }
  if ((lazy_ & kLazyQpInvalid) && active_->invalid()) take(kLazyQpInvalid, MimeReading::qp_lenient);
  if (lazy_ & (kLazyQpBreak | kLazyRawCrlf)) {
    const bool qp = lazy_ & kLazyQpBreak;
    if (first_break(p, n, qp) < n)
      take(uint8_t(kLazyQpBreak | kLazyRawCrlf), qp ? MimeReading::qp_lf : MimeReading::raw_lf);
  }
  if (n) last_byte_ = p[n - 1];
}

// The first hard line break (a line end without '=' before it), or with `qp` false the first
// CRLF, in the open attachment's body bytes p[0, n) that follow last_byte_: the offset of its
// '\n', n when none.
std::size_t MimeParser::first_break(const uint8_t* p, std::size_t n, bool qp) const noexcept {
  for (const uint8_t* q = p; (q = static_cast<const uint8_t*>(std::memchr(q, '\n', std::size_t(p + n - q)))); ++q) {
    uint8_t b = q > p ? q[-1] : last_byte_;
    const uint8_t b2 = q - p > 1 ? q[-2] : q - p == 1 ? last_byte_ : 0;
    if (qp && b == '\r') b = b2;
    if (qp ? b != '=' : b == '\r') return std::size_t(q - p);
  }
  return n;
}

void MimeParser::end_readings(PartEnd how) noexcept {
  lazy_late_ = 0;
  for (unsigned k = 0; k < nlr_; ++k) {
    lr_[k].dec->finish(rsink_[k]);
    if (cb_) cb_->on_reading_end(k, how);
  }
  nlr_ = 0;
  lazy_ = 0;
}

void MimeParser::begin_nested(bool multipart) noexcept {
  // The child reads the decoded body as a message: its leaf "1" is our "<entity>.1" (or, for a
  // multipart entity that is a message body, its children are ours).
  std::size_t plen;
  if (multipart && ent_message_body_) {
    plen = ent_prefix_len_;
  } else {
    path_len_ = leaf_len_;
    if (path_len_ < kPathCap) path_[path_len_++] = '.';
    plen = path_len_;
  }
  std::memcpy(child_cb_.path, path_, plen);
  child_cb_.prefix_len = plen;
  MimeLimits cl = limits_;
  cl.max_depth = limits_.max_depth - uint32_t(depth_) - 1;
  cl.max_parts = limits_.max_parts > parts_ ? limits_.max_parts - parts_ : 0;
  child_->limits_.max_depth = cl.max_depth;
  child_->limits_.max_parts = cl.max_parts;
  child_->reset(&child_cb_);
  child_active_ = true;
  active_ = cte_ == TransferEncoding::base64 ? static_cast<Decoder*>(&b64_) : static_cast<Decoder*>(&qp_);
  leaf_cte_ = cte_;
  active_->reset(0);
  enter_body(Mode::nested);
  if (multipart) {
    // The decoded body is the multipart's body: give the child the header it belongs to.
    char hdr[kMaxBoundary * 2 + 200];
    std::size_t n = 0;
    auto put = [&](std::string_view s) {
      for (char ch : s)
        if (n < sizeof hdr) hdr[n++] = ch;
    };
    put("Content-Type: ");
    put(std::string_view(ctype_, ctype_len_));
    put("; boundary=\"");
    for (std::size_t i = 0; i < bnd_len_; ++i) {
      if (bnd_[i] == '"' || bnd_[i] == '\\') put("\\");
      put(std::string_view(bnd_ + i, 1));
    }
    put("\"\r\n\r\n");
    child_->feed(reinterpret_cast<const uint8_t*>(hdr), n);
  }
}

void MimeParser::end_leaf(PartEnd how) noexcept {
  if (mode_ == Mode::text_dec) text_dec_end(how);
  if (uu_open_) end_uu(how, false);
  if (mode_ == Mode::nested && child_active_) {
    active_->finish(sink_);
    if (active_->invalid()) note(leaf_cte_ == TransferEncoding::base64 ? MimeAnomaly::bad_base64 : MimeAnomaly::bad_quoted_printable);
    child_->finish(how == PartEnd::complete);
    child_active_ = false;
  }
  if (leaf_reported_) {
    // The triggers checked late (lazy_late_) see the decoder as the spans left it, as they would
    // have on the last span (finish() may count a lone final character).
    if (((lazy_late_ & kLazyBase64) && (active_->invalid() || active_->irregular())) ||
        ((lazy_late_ & kLazyQpInvalid) && active_->invalid()))
      note(MimeAnomaly::reading_skipped);
    if (mode_ == Mode::decode || mode_ == Mode::uu_wait || mode_ == Mode::uu_data) {
      if (mode_ != Mode::uu_wait) active_->finish(sink_);
      if (active_->invalid()) {
        if (leaf_cte_ == TransferEncoding::base64) note(MimeAnomaly::bad_base64);
        else if (leaf_cte_ == TransferEncoding::quoted_printable) note(MimeAnomaly::bad_quoted_printable);
        else if (leaf_cte_ == TransferEncoding::uuencode) note(MimeAnomaly::bad_uuencode);
      }
    }
    leaf_reported_ = false;
    end_readings(how);
    if (cb_) cb_->on_part_end(how);
  }
  mode_ = Mode::skip;
}

void MimeParser::begin_uu(const uint8_t* name, std::size_t len) noexcept {
  if (parts_ >= limits_.max_parts) {
    note(MimeAnomaly::too_many_parts);
    return;
  }
  ++uu_count_;
  path_len_ = leaf_len_;
  if (path_len_ + 2 < kPathCap) {
    path_[path_len_++] = '.';
    path_[path_len_++] = 'u';
  }
  path_append_num(uu_count_);
  Utf8Out o(uu_name_, sizeof uu_name_);
  append_raw_text(name, len, o);
  std::size_t nlen = o.finish();
  PartInfo info;
  info.path = std::string_view(path_, path_len_);
  info.content_type = "application/octet-stream";
  make_valid_utf8(uu_name_, nlen);
  info.filename = std::string_view(uu_name_, nlen);
  // The list is NUL-separated: a NUL in the name is handled as in a header's name (name_list.h).
  // names_out_ is free: a block is only looked for in a text body, which is no attachment.
  info.filenames = NameList::single(info.filename, names_out_, sizeof names_out_);
  info.disposition = {};
  info.encoding = TransferEncoding::uuencode;
  info.attachment = true;
  info.uuencoded = true;
  if (lenient_) info.reading = MimeReading::header_lenient;
  parts_++;
  attachments_++;
  uu_open_ = true;
  uu_.reset(0);
  if (cb_) cb_->on_part_begin(info);
  if (mode_ == Mode::text) mode_ = Mode::uu_text;
}

void MimeParser::end_uu(PartEnd how, bool saw_end) noexcept {
  uu_.finish(sink_);
  if (uu_.invalid() || !saw_end) note(MimeAnomaly::bad_uuencode);
  uu_open_ = false;
  if (mode_ == Mode::uu_text) mode_ = Mode::text;
  if (cb_) cb_->on_part_end(how);
}

// ---------------------------------------------------------------------------------------------
// Decoded text bodies (Mode::text_dec): the decoded bytes arrive in pieces that depend on how the
// input was split, so a line that may be special ('b' outside a uuencoded block, 'e' inside) is
// held in dline_ until its LF; a held line over kCarryCap is ordinary. Inside a block, ordinary
// lines (with their line ends) go to the uuencode decoder as they come.

void MimeParser::text_dec_bytes(const uint8_t* p, std::size_t n) noexcept {
  while (n > 0) {
    if (dl_start_) {
      dl_start_ = false;
      dl_hold_ = uu_open_ ? p[0] == 'e' : p[0] == 'b';
      dline_len_ = 0;
    }
    const void* nlp = std::memchr(p, '\n', n);
    std::size_t take = nlp ? std::size_t(static_cast<const uint8_t*>(nlp) - p) + 1 : n;
    if (dl_hold_) {
      if (take <= kCarryCap - dline_len_) {
        std::memcpy(dline_ + dline_len_, p, take);
        dline_len_ += take;
        p += take;
        n -= take;
        if (nlp) {
          text_dec_line();
          dl_start_ = true;
        }
        continue;
      }
      // Too long to be special: an ordinary line.
      if (uu_open_) uu_.feed(dline_, dline_len_, sink_);
      dl_hold_ = false;
      dline_len_ = 0;
    }
    if (uu_open_) uu_.feed(p, take, sink_);
    p += take;
    n -= take;
    if (nlp) dl_start_ = true;
  }
}

void MimeParser::text_dec_line() noexcept {
  std::size_t cl = dline_len_;
  if (cl > 0 && dline_[cl - 1] == '\n') --cl;
  if (cl > 0 && dline_[cl - 1] == '\r') --cl;
  dl_hold_ = false;
  if (!uu_open_) {
    std::string_view name;
    if (uu_begin(dline_, cl, name)) begin_uu(reinterpret_cast<const uint8_t*>(name.data()), name.size());
  } else if (uu_end(dline_, cl)) {
    end_uu(PartEnd::complete, true);
  } else {
    uu_.feed(dline_, dline_len_, sink_);
  }
  dline_len_ = 0;
}

void MimeParser::text_dec_end(PartEnd how) noexcept {
  active_->finish(tsink_);
  if (active_->invalid()) note(leaf_cte_ == TransferEncoding::base64 ? MimeAnomaly::bad_base64 : MimeAnomaly::bad_quoted_printable);
  if (!dl_start_ && dl_hold_) text_dec_line();  // the last line, without its line end
  if (uu_open_) end_uu(how, false);
  dl_start_ = true;
  dl_hold_ = false;
  dline_len_ = 0;
}

// ---------------------------------------------------------------------------------------------
// Bodies

bool MimeParser::match_delimiter(const uint8_t* s, std::size_t n, int& frame, bool& close) const noexcept {
  if (n < 2 || s[0] != '-' || s[1] != '-') return false;
  // Innermost first: the enclosing boundaries are recognised too (a missing inner close delimiter
  // does not swallow the rest of the message).
  for (int k = depth_ - 1; k >= 0; --k) {
    const Frame& f = frames_[k];
    if (!f.multipart) continue;
    for (int which = 0; which < 2; ++which) {
    const char* b = which ? f.alt : f.boundary;
    std::size_t blen = which ? f.alen : f.blen;
    if (blen == 0 || n - 2 < blen || std::memcmp(s + 2, b, blen) != 0) continue;
    std::size_t i = 2 + blen;
    bool c = false;
    // Whitespace before the "--" too: boundaries declared with a trailing space (which RFC 2046
    // forbids, and which is trimmed from f.boundary) show up as "--b --" in close delimiters.
    std::size_t w = i;
    while (w < n && is_wsp(s[w])) ++w;
    if (w + 1 < n && s[w] == '-' && s[w + 1] == '-') { c = true; i = w + 2; }
    while (i < n && (is_wsp(s[i]) || s[i] == '\r')) ++i;
    if (i != n) continue;
    frame = k;
    close = c;
    return true;
    }
  }
  return false;
}

// Boundary sniffing. A multipart without a usable boundary parameter (missing, hidden inside
// another parameter's quotes, misspelled) whose body starts with a "--X" line is read with X as
// its boundary, as several clients do; one whose declared boundary differs from such a first line
// gets X as a second boundary (the declared one still works). Only the first non-empty line of
// the preamble is looked at, so ordinary preambles are unaffected. A multipart without a boundary
// whose first line is not "--X" is read as one leaf. Returns true when the line was consumed.
bool MimeParser::sniff_line(const uint8_t* s, std::size_t n) noexcept {
  Frame& f = frames_[depth_ - 1];
  std::size_t e = n;
  while (e > 0 && (is_wsp(s[e - 1]) || s[e - 1] == '\r')) --e;
  if (e == 0) return false;  // empty lines: keep looking
  f.sniff = false;
  int k;
  bool close;
  if (match_delimiter(s, n, k, close)) return false;  // the normal path takes it
  if (e > 2 && s[0] == '-' && s[1] == '-' && e - 2 <= kMaxBoundary) {
    std::size_t b = 2;
    if (f.blen == 0) {
      std::memcpy(f.boundary, s + b, e - b);
      f.blen = uint16_t(e - b);
      // "--b X": its first word is a boundary too (the close delimiter "--b--" of such a body).
      const void* sp = std::memchr(s + b, ' ', e - b);
      if (sp) {
        f.alen = uint16_t(static_cast<const uint8_t*>(sp) - (s + b));
        std::memcpy(f.alt, s + b, f.alen);
      }
    } else {
      std::memcpy(f.alt, s + b, e - b);
      f.alen = uint16_t(e - b);
    }
    eol_len_ = 0;
    delimiter(depth_ - 1, false);
    return true;
  }
  if (f.blen == 0) {
    --depth_;
    // No boundary at all: the multipart cannot be split, and a leaf is never multipart/*
    // (mime_parser.h). RFC 2045 5.2 reads an unusable Content-Type as text/plain, as Python and
    // clients show such a body (as text; a file name or "attachment" still makes it one).
    static constexpr std::string_view kText = "text/plain";
    std::memcpy(ctype_, kText.data(), kText.size());
    ctype_len_ = kText.size();
    begin_leaf();  // the line is the first content line of that leaf
  }
  return false;
}

// The character besides '-' that may start a special line in the current mode: '-' when there
// is none, 0 when any line may be special.
uint8_t MimeParser::candidate_extra() const noexcept {
  if (mode_ == Mode::msg_sniff) return 0;
  if (mode_ == Mode::skip && depth_ > 0 && frames_[depth_ - 1].sniff) return 0;
  switch (mode_) {
    case Mode::text: return 'b';
    case Mode::uu_wait: return 0;  // until the first non-empty line
    case Mode::uu_text:
    case Mode::uu_data: return 'e';
    default: return '-';
  }
}

bool MimeParser::candidate(uint8_t c) const noexcept {
  uint8_t extra = candidate_extra();
  return c == '-' || extra == 0 || c == extra;
}

void MimeParser::delimiter(int k, bool close) noexcept {
  end_leaf(PartEnd::complete);
  while (depth_ > k + 1) {
    --depth_;
    if (frames_[depth_].multipart && !frames_[depth_].closed) note(MimeAnomaly::missing_close_delimiter);
  }
  Frame& f = frames_[k];
  if (close) {
    f.closed = true;
    enter_body(Mode::skip);
    return;
  }
  f.closed = false;  // a delimiter after the close delimiter: the parts go on, as clients show them
  ++f.children;
  start_entity(false, f.prefix_len, f.children, f.digest);
}

// A complete line (without its line end) at a line start. Returns true when it was consumed as
// a special line (a delimiter, a uuencode "begin"/"end").
bool MimeParser::special_line(const uint8_t* s, std::size_t n) noexcept {
  if (mode_ == Mode::skip && depth_ > 0 && frames_[depth_ - 1].sniff && sniff_line(s, n)) return true;
  int k;
  bool close;
  if (n >= 2 && s[0] == '-' && s[1] == '-' && match_delimiter(s, n, k, close)) {
    eol_len_ = 0;  // the line end in front belongs to the delimiter
    delimiter(k, close);
    return true;
  }
  if (mode_ == Mode::msg_sniff) {
    std::string_view line = trim(std::string_view(reinterpret_cast<const char*>(s), n));
    if (line.empty()) return true;  // blank lines before the content: dropped
    if (is_header_line(reinterpret_cast<const char*>(s), n)) {
      // Not encoded after all (or no child to decode it): the inner message starts here.
      Frame& f = frames_[depth_++];
      f.multipart = false;
      f.closed = f.digest = f.sniff = false;
      f.children = 1;
      f.blen = f.alen = 0;
      path_len_ = leaf_len_;
      if (path_len_ < kPathCap) path_[path_len_++] = '.';
      f.prefix_len = uint16_t(path_len_);
      start_entity(true, path_len_, 1, false);
      std::size_t len = n < kCarryCap - 2 ? n : kCarryCap - 2;
      std::memmove(carry_, s, len);
      carry_[len++] = '\r';
      carry_[len++] = '\n';
      header_bytes(carry_, len);
      return true;
    }
    // Encoded: decoded and parsed by the child, or (in the last child of the chain, kEncodedLevels) decoded
    // and reported as one leaf.
    if (child_) begin_nested(false);
    else begin_leaf();
    return false;  // the line is the first encoded line
  }
  switch (mode_) {
    case Mode::text:
    case Mode::uu_wait: {
      std::string_view name;
      if (!(n > 0 && s[0] == 'b' && uu_begin(s, n, name))) {
        // A uuencode body without its "begin" line: the lines are the data (as clients read it).
        if (mode_ == Mode::uu_wait && trim(std::string_view(reinterpret_cast<const char*>(s), n)).size() > 0)
          mode_ = Mode::uu_data;
        return false;
      }
      eol_len_ = 0;
      if (mode_ == Mode::text) begin_uu(reinterpret_cast<const uint8_t*>(name.data()), name.size());
      else mode_ = Mode::uu_data;
      return true;
    }
    case Mode::uu_text:
    case Mode::uu_data: {
      if (n == 0 || s[0] != 'e' || !uu_end(s, n)) return false;
      emit(eol_, eol_len_);
      eol_len_ = 0;
      if (mode_ == Mode::uu_text) {
        end_uu(PartEnd::complete, true);
      } else {
        // The "end" of an x-uuencode body: the rest of the part is not content.
        active_->finish(sink_);
        if (uu_.invalid()) note(MimeAnomaly::bad_uuencode);
        mode_ = Mode::skip;
      }
      return true;
    }
    default:
      return false;
  }
}

void MimeParser::emit(const uint8_t* p, std::size_t n) noexcept {
  if (n == 0) return;
  switch (mode_) {
    case Mode::decode:
      // quoted-printable's two triggers (an invalid escape, a hard line break), both awaited: the
      // span ends after its first hard line break, so that an escape before it (counted by the
      // end of its line) starts its reading first and one after it second, however the input is
      // split. A break past the bytes held starts nothing: no cut then.
      if ((lazy_ & kLazyQpInvalid) && (lazy_ & kLazyQpBreak) && body_len_ < limits_.reading_retain_bytes) {
        const std::size_t k = first_break(p, n, true) + 1;
        if (k < n && k <= limits_.reading_retain_bytes - body_len_) {
          active_->feed(p, k, sink_);
          leaf_readings(p, k);
          p += k;
          n -= k;
        }
      }
      if (lazy_ && body_len_ < limits_.reading_retain_bytes && n > limits_.reading_retain_bytes - body_len_) {
        // Up to the end of the bytes held first: a trigger in them starts its reading whatever
        // the split of the input (decoders give the same output however they are fed).
        const std::size_t k = std::size_t(limits_.reading_retain_bytes - body_len_);
        active_->feed(p, k, sink_);
        leaf_readings(p, k);
        p += k;
        n -= k;
      }
      active_->feed(p, n, sink_);
      if (lazy_ || nlr_) leaf_readings(p, n);
      break;
    case Mode::uu_data:
    case Mode::nested:
      active_->feed(p, n, sink_);
      break;
    case Mode::uu_text:
      uu_.feed(p, n, sink_);
      break;
    case Mode::text_dec:
      active_->feed(p, n, tsink_);
      break;
    default:
      break;
  }
}

std::size_t MimeParser::body_span(const uint8_t* p, std::size_t n, bool no_hold, bool at_end) noexcept {
  std::size_t i = 0;
  while (i < n) {
    if (cr_pending_) {
      cr_pending_ = false;
      if (p[i] == '\n') {
        // line_len_ counted the held CR (the no-'\n' path below): it is the line end's.
        if (line_len_ - 1 > kMaxLine) note(MimeAnomaly::line_too_long);
        eol_[0] = '\r';
        eol_[1] = '\n';
        eol_len_ = 2;
        line_start_ = true;
        line_len_ = 0;
        ++i;
        continue;
      }
      static const uint8_t cr = '\r';
      emit(&cr, 1);
    }
    if (line_start_) {
      if (candidate(p[i])) {
        const void* nlp = std::memchr(p + i, '\n', n - i);
        if (!nlp && !no_hold && !at_end && n - i < kCarryCap) {
          std::memcpy(carry_, p + i, n - i);  // complete it from the next feed
          carry_len_ = n - i;
          return n;
        }
        // A line of kCarryCap bytes or more (its LF included) is ordinary, as it is when a feed
        // ends inside it (held line start full, feed_piece): the same answer however it is split.
        if ((nlp || at_end) &&
            !(nlp && std::size_t(static_cast<const uint8_t*>(nlp) - p) + 1 - i >= kCarryCap)) {
          std::size_t end = nlp ? std::size_t(static_cast<const uint8_t*>(nlp) - p) : n;
          std::size_t cl = end - i;
          bool crlf = cl > 0 && p[end - 1] == '\r';
          if (crlf) --cl;
          if (special_line(p + i, cl)) {
            if (nlp && !crlf) note(MimeAnomaly::bare_lf);
            i = nlp ? end + 1 : n;
            line_start_ = true;
            line_len_ = 0;
            if (phase_ == Phase::headers) return i;
            continue;
          }
        }
      }
      // An ordinary line: the held line end was content.
      emit(eol_, eol_len_);
      eol_len_ = 0;
      line_start_ = false;
    }
    // Inside a line: run to the next line start that could be special. Runs of lines that
    // cannot matter are skipped 64 bytes a step (skip_plain_lines), the rest one memchr a line.
    std::size_t j = i;
    const uint8_t extra = candidate_extra();
    std::size_t retry = extra ? j : n;
    const bool use_hs = hs_ && p == hs_span_;
    for (;;) {
      if (use_hs && std::size_t(p - hs_->base) + j < hs_->known) {
        if (j >= retry) {
          const std::size_t to = hs_skip(p, j, n, extra, retry);
          if (to != j) {
            j = to;
            line_len_ = 0;
          }
        }
      } else if (j >= retry && n - j >= 64) {
        LineSkip s = skip_plain_lines(p, j, n, extra, anomalies_ & (1u << unsigned(MimeAnomaly::bare_lf)),
                                      anomalies_ & (1u << unsigned(MimeAnomaly::line_too_long)), line_len_);
        if (s.to != j) {
          j = s.to;
          line_len_ = 0;
        }
        retry = s.retry;
      }
      const void* nlp = std::memchr(p + j, '\n', n - j);
      if (!nlp) {
        std::size_t end = n;
        if (!at_end && end > i && p[end - 1] == '\r') { --end; cr_pending_ = true; }
        line_len_ += n - j;
        emit(p + i, end - i);
        return n;
      }
      std::size_t k = std::size_t(static_cast<const uint8_t*>(nlp) - p);
      bool crlf = k > j && p[k - 1] == '\r';
      if (!crlf) note(MimeAnomaly::bare_lf);
      line_len_ += k - j;
      if (crlf) --line_len_;
      if (line_len_ > kMaxLine) note(MimeAnomaly::line_too_long);
      line_len_ = 0;
      std::size_t next = k + 1;
      if (next < n && !candidate(p[next])) { j = next; continue; }
      std::size_t eol_start = crlf ? k - 1 : k;
      emit(p + i, eol_start - i);
      if (crlf) { eol_[0] = '\r'; eol_[1] = '\n'; eol_len_ = 2; }
      else { eol_[0] = '\n'; eol_len_ = 1; }
      line_start_ = true;
      i = next;
      break;
    }
  }
  return n;
}

}  // namespace sluice::pipeline
