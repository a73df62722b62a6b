// Streaming MIME parser (RFC 2045, 2046, 2047, 2231, RFC 5322 header syntax): the message content
// of one SMTP transaction in, split anywhere; parts out, through callbacks (STYLE.md, "parsers
// behind callbacks"). It never buffers a whole message or part: header fields are kept one at a
// time up to a cap, bodies stream through the decoders. No exceptions, no allocation after
// construction; one parser per SMTP session, reset per message.
//
// What it reports
// - Every leaf part (a body that is not multipart/*, nor a message/rfc822 parsed recursively):
//   on_part_begin with its PartInfo, then, for parts that are attachments, the decoded content in
//   on_part_data calls, then on_part_end. Parts that are not attachments (text bodies) get no
//   on_part_data: they are scanned only for boundaries and uuencoded blocks.
// - Attachment rule: a leaf part with a file name (Content-Disposition filename or Content-Type
//   name, RFC 2231/2047 decoded to UTF-8), or Content-Disposition: attachment, or a type that is
//   not text/*; plus every uuencoded block ("begin NNN name" ... "end") inside a text body, which
//   is reported as its own part (PartInfo::uuencoded).
// - Part paths number leaf parts as IMAP does (RFC 3501 6.4.5): a non-multipart message's body is
//   "1"; the children of a multipart are 1, 2, ... and nest as "2.1"; a message/rfc822 part "3"
//   holds its own body as "3.1" (or, when that body is multipart, its children "3.1", "3.2", ...).
//   A uuencoded block inside part P gets P plus ".uN" (N = 1, 2, ... in that part).
// - Deviations from the RFCs are anomalies (on_anomaly and a per-message bit set): extraction goes
//   on best-effort, the way mail clients read such mail.
//
// Robustness rules (mail clients find files where a gateway must too)
// - Line ends: CRLF or bare LF, mixed. A delimiter line is "--" boundary followed by optional
//   "--" and optional whitespace (RFC 2046 5.1.1); the CRLF before it belongs to the delimiter.
// - Boundaries of enclosing multiparts are recognised inside nested parts (a missing inner close
//   delimiter does not swallow the rest of the message); a missing final delimiter ends the parts
//   at the end of the message.
// - Header fields: folded lines unfolded; names case-insensitive; duplicated fields: the first
//   wins for Content-Type/-Disposition/-Transfer-Encoding (anomaly); 8-bit bytes in headers kept
//   (decoded as UTF-8 when valid, else Latin-1).
// - Parameters: quoted strings with backslash escapes, RFC 2231 continuations (name*0, name*1*,
//   in any order) and charsets (name*=utf-8''...), RFC 2047 encoded words in (quoted) parameter
//   values as clients accept them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "pipeline/base64.h"
#include "pipeline/decoder.h"
#include "pipeline/encoded_words.h"
#include "pipeline/quoted_printable.h"
#include "pipeline/gzip64.h"
#include "pipeline/mime_body_scan.h"
#include "pipeline/mime_readings.h"
#include "pipeline/name_list.h"
#include "pipeline/uudecode.h"
#include "records/reserved_region.h"

namespace sluice::pipeline {

enum class TransferEncoding : uint8_t { seven_bit, eight_bit, binary, base64, quoted_printable, uuencode, gzip64, unknown };
const char* transfer_encoding_name(TransferEncoding e) noexcept;  // "7bit", "base64", ...

struct PartInfo {
  std::string_view path;          // "1", "2.1", "3.1.u1"
  std::string_view content_type;  // declared type/subtype, lower case; "text/plain" when absent
  std::string_view filename;      // UTF-8; empty when none
  std::string_view alt_filename;  // the Content-Type name when it differs from the
                                  // Content-Disposition filename (clients disagree on which wins)
  // Every name a client could show for it (NUL-separated, distinct, `filename` first, then
  // `alt_filename`): each Content-Type / Content-Disposition field and duplicate parameter,
  // RFC 2231 sections in index order and as written, and across fields, the unquoted readings
  // that run on past a ';' or a fold, names without '"' and without directories (name_list.h).
  std::string_view filenames;
  std::string_view disposition;   // "attachment", "inline" or "" (lower case)
  TransferEncoding encoding;
  bool attachment;                // the attachment rule above
  bool uuencoded;                 // a uuencoded block found inside a text body
  MimeReading reading = MimeReading::primary;  // another reading of an ambiguous part (below)
};

enum class PartEnd : uint8_t {
  complete,   // its closing delimiter (or the end of the message) was reached
  truncated,  // the message ended early (incomplete SMTP transfer) or a limit cut the part
};

enum class MimeAnomaly : uint8_t {
  missing_mime_version,      // MIME structure without MIME-Version (RFC 2045 4)
  missing_boundary,          // multipart/* without a boundary parameter: sniffed, else the body is one text/plain part
  boundary_too_long,         // over 70 characters (RFC 2046 5.1.1); still used
  missing_close_delimiter,   // a multipart ended without its "--boundary--"
  invalid_transfer_encoding, // unknown Content-Transfer-Encoding value: body taken as is
  encoding_not_allowed,      // base64/quoted-printable on multipart or message (RFC 2045 6.4): decoded
  header_too_long,           // a header field over the field cap: truncated
  line_too_long,             // a line over 998 octets (RFC 5322 2.1.1)
  depth_exceeded,            // nesting over the depth limit: deeper bodies read as one leaf
  too_many_parts,            // over the part limit: the rest is not reported
  duplicate_header,          // a second Content-Type / -Disposition / -Transfer-Encoding
  bad_base64,                // invalid characters or lone final character in a base64 body
  bad_quoted_printable,      // invalid "=" sequences
  bad_uuencode,
  bad_encoded_word,          // an RFC 2047 word or RFC 2231 value that does not decode
  eight_bit_header,          // raw 8-bit bytes in a header (RFC 6532 allows UTF-8)
  bare_lf,                   // lines ended by LF alone
  nul_byte,
  reading_skipped,           // another reading of a part was not taken: MimeLimits::max_readings
                             // reached, or the part's start was no longer held (reading_retain_bytes)
  count_
};
const char* mime_anomaly_name(MimeAnomaly a) noexcept;  // lower_snake_case of the enumerator

struct MimeLimits {
  uint32_t max_depth = 32;          // multipart / message nesting
  uint32_t max_parts = 10000;       // leaf parts reported per message
  uint32_t max_field_bytes = 16384; // one unfolded header field
  bool parse_rfc822 = true;         // descend into message/rfc822 (and message/global) parts
  bool uuencode = true;             // look for uuencoded blocks in text bodies
  // Other readings of ambiguous attachment parts (mime_readings.h) per message; 0: none.
  uint32_t max_readings = 8;
  // The first bytes of each attachment body held, so that a reading found needed later (junk in
  // a base64 body, a CRLF in a raw one) can start from the beginning; past them: reading_skipped.
  uint32_t reading_retain_bytes = 16384;
};

class MimeCallbacks {
 public:
  virtual ~MimeCallbacks() = default;
  virtual void on_part_begin(const PartInfo& part) noexcept = 0;
  virtual void on_part_data(const uint8_t* data, std::size_t len) noexcept = 0;
  virtual void on_part_end(PartEnd how) noexcept = 0;
  virtual void on_anomaly(MimeAnomaly what) noexcept = 0;
  // Other readings of the open leaf part (mime_readings.h): slot < kMaxPartReadings, only between that part's
  // on_part_begin and on_part_end; each reading has its own PartInfo (`reading` set) and bytes.
  virtual void on_reading_begin(unsigned /*slot*/, const PartInfo& /*part*/) noexcept {}
  virtual void on_reading_data(unsigned /*slot*/, const uint8_t* /*data*/, std::size_t /*len*/) noexcept {}
  virtual void on_reading_end(unsigned /*slot*/, PartEnd /*how*/) noexcept {}
};

// Other readings: where an attachment part is ambiguous (its Content-Transfer-Encoding not the RFC
// spelling or given twice, junk in a base64 body, line ends of quoted-printable and raw parts),
// the part is also decoded the other ways clients read it (mime_readings.h), each reported through
// the on_reading_* callbacks, at most MimeLimits::max_readings per message.
//
// Callback order: on_part_begin, on_part_data*, on_part_end per leaf part. A uuencoded block is
// reported while its enclosing text part is open (begin/data/end nested inside that part's
// begin/end); on_part_data always belongs to the innermost open part. on_anomaly is called on the
// first occurrence of each kind in a message.
class MimeParser;

// Lends the parser that takes a message's header_lenient reading (mime_readings.h): usually one
// per lcore, shared by its sessions, so one message at a time; the others that would need it then
// get reading_skipped. Made with MimeLimits::max_readings 0 (its parse takes no readings itself).
class MimeParserPool {
 public:
  virtual ~MimeParserPool() = default;
  virtual MimeParser* acquire() noexcept = 0;  // nullptr while lent or when it could not be made
  virtual void release(MimeParser* parser) noexcept = 0;
};

// The usual pool: one parser with `limits` (max_readings 0), lent to one message at a time. Its
// memory (the parser, its child parsers and buffers) is reserved at construction and the parser
// built there on first use (on the lcore, without the general heap; issue 18).
class SingleParserPool final : public MimeParserPool {
 public:
  explicit SingleParserPool(const MimeLimits& limits) noexcept;
  ~SingleParserPool() override;
  MimeParser* acquire() noexcept override;
  void release(MimeParser* parser) noexcept override;

 private:
  MimeLimits limits_;
  records::ReservedRegion memory_;
  MimeParser* parser_ = nullptr;
  bool heap_ = false;  // parser_ came from the heap (no reserved memory)
  bool lent_ = false;
};

// The parser's own memory (its child parsers and buffers): from the heap, or carved from a slot's
// reserved memory (records::Carve), which is only destroyed, never deleted.
struct SlotDelete {
  bool heap = true;
  void operator()(MimeParser* p) const noexcept;
  void operator()(uint8_t* p) const noexcept {
    if (heap) delete[] p;
  }
};

class MimeParser {
 public:
  // With `carve`, the child parsers and buffers are constructed in its memory (at most
  // footprint(limits, false) bytes taken from it) instead of the heap; a piece that does not fit
  // is left out, as when the heap fails (no encoded containers, no reading buffer).
  explicit MimeParser(const MimeLimits& limits = {}, records::Carve* carve = nullptr) noexcept;
  // The bytes a parser made with these limits takes from a carve: its child parsers and buffers,
  // and with `alternate` the top-level header buffer set_alternate() adds (not the parser itself).
  static std::size_t footprint(const MimeLimits& limits, bool alternate) noexcept;
  ~MimeParser();
  MimeParser(const MimeParser&) = delete;
  MimeParser& operator=(const MimeParser&) = delete;
  // Starts a new message.
  void reset(MimeCallbacks* callbacks) noexcept;
  // Starts a message that continues `from`'s structure where `from` is now (the strict reading of
  // a DATA stream that `from` saw end early, reassembly/smtp_reading.h): inside `from`'s open
  // multiparts, skipping to their next delimiter. The part open in `from` is not continued (its
  // rest is skipped); a `from` inside a header block, or outside any multipart, gives a plain
  // new message (reset).
  void resume(MimeCallbacks* callbacks, const MimeParser& from) noexcept;
  void feed(const uint8_t* data, std::size_t len) noexcept;
  // Body skipping driven by Hyperscan (mime_body_scan.h) instead of the SSE2 line scan: `scan`
  // (compiled once) and `scratch` (one per lcore) outlive the parser; opens the parser's stream,
  // reset with each message. Set-up only (allocates); nullptr goes back to the SSE2 scan. False
  // when the stream cannot be opened (the SSE2 scan stays). Child parsers of encoded containers
  // always use the SSE2 scan (their input is decoded text, not the stream).
  bool use_body_scan(const MimeBodyScan* scan, MimeBodyScan::Scratch* scratch) noexcept;
  struct BodyScanState;  // internal (mime_parser.cpp)
  // The header_lenient reading (mime_readings.h): when a message's top-level header is ambiguous,
  // a parser from `pool` reads the whole message again (the feeds held until the header ends; a
  // header over MimeLimits::reading_retain_bytes: reading_skipped, however the input was split) and reports its
  // parts, each with `reading` header_lenient, to `callbacks` (not this parser's: its parts
  // interleave with this one's). It counts as one of the message's readings. Set-up only.
  void set_alternate(MimeParserPool* pool, MimeCallbacks* callbacks, records::Carve* carve = nullptr) noexcept;
  // End of the message content. `complete`: the SMTP transfer ended normally (else open parts end
  // `truncated`).
  void finish(bool complete) noexcept;
  // Anomalies of the current message, one bit per MimeAnomaly.
  uint32_t anomalies() const noexcept;
  uint64_t attachments() const noexcept;  // attachment parts reported so far

 private:
  // RFC 2046 5.1.1 allows 70 characters; longer boundaries are still used up to this size.
  static constexpr std::size_t kMaxBoundary = 200;
  static constexpr int kMaxFrames = 40;            // hard cap behind MimeLimits::max_depth (32 by default)
  static constexpr std::size_t kFieldCap = 16384;  // hard cap behind max_field_bytes
  // A line start held across feeds while it may still be a delimiter / "begin" / "end" line:
  // "--" + boundary + "--" + some trailing whitespace fits; longer lines are ordinary.
  static constexpr std::size_t kCarryCap = 1024;
  static constexpr std::size_t kNameCap = 1024;    // file names (UTF-8); longer: head + tail kept
  static constexpr std::size_t kPathCap = 1024;

  enum class Phase : uint8_t { headers, body };
  enum class Mode : uint8_t {
    skip,     // preamble, epilogue, unreported part: delimiters only
    text,     // text body: delimiters and "begin NNN name" lines
    uu_text,  // inside a uuencoded block of a text body
    decode,   // attachment body through the active decoder
    uu_wait,  // Content-Transfer-Encoding: x-uuencode attachment, before its "begin" line
    uu_data,  // ... after it
    nested,   // an encoded multipart/message body: decoded and parsed by child_
    msg_sniff,  // an encoded message/*, before its first line tells whether it is encoded at all
    text_dec,   // base64/quoted-printable text body: decoded, the decoded lines scanned for uuencode
  };
  struct Frame {
    bool multipart;       // else a message/rfc822 frame (no boundary; paths only)
    bool closed;          // close delimiter seen: epilogue (a later delimiter resumes the parts)
    bool digest;          // multipart/digest: children default to message/rfc822
    uint16_t prefix_len;  // path_ prefix of the children ("" or "2.")
    uint32_t children;
    bool sniff;           // no preamble line seen yet (see "boundary sniffing" in the .cpp)
    uint16_t blen;
    uint16_t alen;
    char boundary[kMaxBoundary];
    char alt[kMaxBoundary];  // a boundary taken from the first body line when it differs
  };
  class DataSink final : public ByteSink {
   public:
    MimeParser* self = nullptr;
    void on_bytes(const uint8_t* data, std::size_t len) noexcept override;
  };
  // The decoded text of a text_dec body: its lines are scanned for "begin"/"end" (held in dline_).
  class TextSink final : public ByteSink {
   public:
    MimeParser* self = nullptr;
    void on_bytes(const uint8_t* data, std::size_t len) noexcept override;
  };
  class ChildForward final : public MimeCallbacks {
   public:
    MimeParser* self = nullptr;
    std::size_t prefix_len = 0;
    char path[kPathCap];
    void on_part_begin(const PartInfo& part) noexcept override;
    void on_part_data(const uint8_t* data, std::size_t len) noexcept override;
    void on_part_end(PartEnd how) noexcept override;
    void on_anomaly(MimeAnomaly what) noexcept override;
    void on_reading_begin(unsigned slot, const PartInfo& part) noexcept override;
    void on_reading_data(unsigned slot, const uint8_t* data, std::size_t len) noexcept override;
    void on_reading_end(unsigned slot, PartEnd how) noexcept override;
  };
  class ReadingSink final : public ByteSink {
   public:
    MimeParser* self = nullptr;
    unsigned slot = 0;
    void on_bytes(const uint8_t* data, std::size_t len) noexcept override;
  };

  // Encoded containers (a base64 message/rfc822 inside another, as mime4j's tests have) are
  // parsed by a chain of child parsers allocated at construction: this many levels.
  static constexpr int kEncodedLevels = 2;
  MimeParser(const MimeLimits& limits, int level, records::Carve* carve) noexcept;
  static std::size_t footprint(const MimeLimits& limits, int level) noexcept;
  static std::unique_ptr<uint8_t[], SlotDelete> buffer(std::size_t n, records::Carve* carve) noexcept;
  void feed_piece(const uint8_t* data, std::size_t len) noexcept;
  std::size_t hs_skip(const uint8_t* p, std::size_t j, std::size_t n, uint8_t extra, std::size_t& retry) noexcept;
  void note(MimeAnomaly a) noexcept;
  std::size_t header_bytes(const uint8_t* p, std::size_t n) noexcept;
  std::size_t body_span(const uint8_t* p, std::size_t n, bool no_hold, bool at_end) noexcept;
  bool candidate(uint8_t c) const noexcept;
  uint8_t candidate_extra() const noexcept;
  bool special_line(const uint8_t* s, std::size_t n) noexcept;
  bool sniff_line(const uint8_t* s, std::size_t n) noexcept;
  bool match_delimiter(const uint8_t* s, std::size_t n, int& frame, bool& close) const noexcept;
  void emit(const uint8_t* p, std::size_t n) noexcept;
  void process_field() noexcept;
  void process_one_field() noexcept;
  void start_entity(bool message_body, std::size_t prefix_len, uint32_t num, bool digest_child) noexcept;
  void headers_done() noexcept;
  void begin_leaf() noexcept;
  void begin_nested(bool multipart) noexcept;
  void end_leaf(PartEnd how) noexcept;
  void begin_uu(const uint8_t* name, std::size_t len) noexcept;
  void end_uu(PartEnd how, bool saw_end) noexcept;
  void delimiter(int frame, bool close) noexcept;
  void enter_body(Mode m) noexcept;
  void path_append_num(uint32_t n) noexcept;
  void text_dec_bytes(const uint8_t* p, std::size_t n) noexcept;
  void text_dec_line() noexcept;
  void text_dec_end(PartEnd how) noexcept;
  void start_reading(MimeReading kind, bool replay) noexcept;
  void leaf_readings(const uint8_t* p, std::size_t n) noexcept;
  std::size_t first_break(const uint8_t* p, std::size_t n, bool qp) const noexcept;
  void end_readings(PartEnd how) noexcept;
  void feed_bytes(const uint8_t* data, std::size_t len) noexcept;
  void top_header_fed(const uint8_t* data, std::size_t len) noexcept;
  bool lenient_fields() noexcept;
  void lenient_type(char*& value, std::size_t& vlen) noexcept;
  void end_alternate(bool complete) noexcept;

  MimeLimits limits_;
  bool is_child_;
  MimeCallbacks* cb_ = nullptr;
  uint32_t anomalies_ = 0;
  uint64_t attachments_ = 0;
  uint32_t parts_ = 0;
  bool finished_ = false;

  Phase phase_ = Phase::headers;
  Mode mode_ = Mode::skip;
  int depth_ = 0;
  Frame frames_[kMaxFrames];
  char path_[kPathCap];
  std::size_t path_len_ = 0;
  std::size_t leaf_len_ = 0;  // path_[0..leaf_len_) is the current entity's own path

  // The entity whose header block is being read.
  bool ent_message_body_ = true;
  bool ent_digest_child_ = false;
  std::size_t ent_prefix_len_ = 0;
  bool seen_ct_ = false, seen_cd_ = false, seen_cte_ = false, seen_version_ = false;
  TransferEncoding cte_ = TransferEncoding::seven_bit;
  char ctype_[128];
  std::size_t ctype_len_ = 0;
  char cdisp_[32];
  std::size_t cdisp_len_ = 0;
  char bnd_[kMaxBoundary];
  std::size_t bnd_len_ = 0;
  char ct_name_[kNameCap];
  std::size_t ct_name_len_ = 0;
  char cd_name_[kNameCap];
  std::size_t cd_name_len_ = 0;
  NameList names_;                        // the entity's file name candidates
  char raw_field_[4096];                  // a Content-Type / -Disposition body before parsing
  char name_tmp_[kNameCap];
  char names_out_[NameList::kBytes * 2];  // PartInfo::filenames of the part begun

  // Header block reading.
  char field_[kFieldCap];
  std::size_t field_len_ = 0;
  std::size_t field_cap_ = kFieldCap;
  std::size_t hdr_line_off_ = 0;
  uint64_t hdr_line_len_ = 0;
  bool have_field_ = false;
  bool field_trunc_ = false;
  bool hdr_line_start_ = true;
  bool hdr_cr_ = false;
  bool hdr_cont_ = false;
  uint8_t hdr_last_ = 0;

  // Body reading.
  bool line_start_ = true;
  bool cr_pending_ = false;
  uint8_t eol_[2] = {};
  uint8_t eol_len_ = 0;
  uint64_t line_len_ = 0;
  uint8_t carry_[kCarryCap];
  std::size_t carry_len_ = 0;

  // The current leaf.
  bool leaf_reported_ = false;  // on_part_begin was called for a MIME leaf still open
  bool uu_open_ = false;        // a uuencoded block of a text body is open
  uint32_t uu_count_ = 0;
  TransferEncoding leaf_cte_ = TransferEncoding::seven_bit;
  Decoder* active_ = nullptr;
  Base64Decoder b64_;
  QuotedPrintableDecoder qp_;
  UuDecoder uu_;
  Gzip64Decoder gz_;
  IdentityDecoder id_;
  DataSink sink_;
  TextSink tsink_;
  // Decoded text scanning (Mode::text_dec).
  bool dl_start_ = true;    // at the start of a decoded line
  bool dl_hold_ = false;    // the current line is held in dline_ (it may be "begin"/"end")
  std::size_t dline_len_ = 0;
  uint8_t dline_[kCarryCap];

  // Other readings of the open attachment (start_reading): at most kLeafReadings at once.
  static constexpr unsigned kLeafReadings = kMaxPartReadings;
  struct LeafReading {
    MimeReading kind;
    Decoder* dec;
  };
  enum : uint8_t { kLazyBase64 = 1, kLazyQpInvalid = 2, kLazyQpBreak = 4, kLazyRawCrlf = 8 };
  LeafReading lr_[kLeafReadings] = {};
  ReadingSink rsink_[kLeafReadings];
  unsigned nlr_ = 0;
  uint32_t readings_ = 0;        // started in this message
  uint16_t cte_alts_ = 0;        // a bit per TransferEncoding named by the entity's CTE fields
  uint8_t lazy_ = 0;             // kLazy* triggers still to watch for in the open attachment
  // The decoder-counted triggers (kLazyBase64, kLazyQpInvalid) past the bytes held: they can start
  // nothing any more, so they are checked once at the part's end (reading_skipped) instead of on
  // every span: the bulk of a large attachment runs without them.
  uint8_t lazy_late_ = 0;
  uint8_t last_byte_ = 0;        // its previous body byte
  uint64_t body_len_ = 0;        // its body bytes so far
  std::unique_ptr<uint8_t[], SlotDelete> retain_;  // its first reading_retain_bytes
  std::size_t retain_len_ = 0;
  PartInfo leaf_info_{};
  Base64Decoder r_b64_;
  QuotedPrintableDecoder r_qp_;
  IdentityDecoder r_id_;
  Base64LinesDecoder r_lines_;
  Base64StrictDecoder r_strict_;
  QpReadingDecoder r_qp_lenient_{true, false};
  QpReadingDecoder r_qp_lf_{false, true};
  LfDecoder r_lf_;
  HeaderJunkDecoder r_junk_skipped_{false};
  HeaderJunkDecoder r_junk_separator_{true};
  bool ent_junk_end_ = false;  // the entity's header block ended at a line that is not a field

  // Encoded multipart/message bodies (RFC 6532 message/global, mime4j-style base64 multiparts).
  std::unique_ptr<MimeParser, SlotDelete> child_;
  ChildForward child_cb_;
  bool child_active_ = false;

  // Hyperscan body scanning (use_body_scan): null when the SSE2 scan is used.
  std::unique_ptr<BodyScanState> hs_;
  const uint8_t* hs_span_ = nullptr;  // the body_span input the current events describe

  // header_lenient (set_alternate): this parser lends the reading to alt_; a lent parser has
  // lenient_ set for the message.
  MimeParserPool* alt_pool_ = nullptr;
  MimeCallbacks* alt_cb_ = nullptr;
  MimeParser* alt_ = nullptr;
  bool lenient_ = false;
  bool watch_top_ = false;    // the message's first feeds: its top-level header's bytes are held
  bool top_open_ = false;     // the top-level header block is being read
  bool top_want_ = false;     // it is ambiguous: header_lenient wanted
  bool keep_over_ = false;    // its bytes did not fit in keep_
  std::unique_ptr<uint8_t[], SlotDelete> keep_;  // MimeLimits::reading_retain_bytes
  std::size_t keep_len_ = 0;
  uint64_t top_len_ = 0;      // the top-level header's bytes: over reading_retain_bytes, no reading

  CharsetConverter conv_;
  uint8_t scratch_[8192];
  char uu_name_[kNameCap];
};

}  // namespace sluice::pipeline
