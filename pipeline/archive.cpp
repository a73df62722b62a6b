// Recursive archive exploration over libarchive, from memory (archive.h has the contract).
//
// Every byte libarchive decompresses is asked for through archive_read_data_block() and counted
// here, block by block: the tails of cut members and the data of entries that are not members are
// read (and dropped) rather than left to archive_read_next_header(), whose internal skip would
// decompress them in one call the budgets could not stop.
//
// A level is either an archive read from memory (zip, 7z, rar, tar, ...: no decompression filter)
// or a compressed stream: one libarchive handle decompresses exactly one layer (the filter named
// by the magic, archive_read_append_filter: no bidding, so a layer inside it is not peeled before
// its own dictionary is checked) and hands its output, through a read callback, to a second handle
// that reads tar, cpio or ar, or takes the whole stream as one member (raw). The second handle's
// end of archive is not the end of the stream: the rest is read through the first handle, checked
// and counted.
#include "pipeline/archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cstdarg>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <new>

#include "pipeline/archive_memory.h"

namespace sluice::pipeline {
namespace {

using Clock = std::chrono::steady_clock;

// Longest member path reported. Paths past 1 KiB carry nothing a verdict needs and the bound keeps
// the copy (and the event the caller writes) small; zip allows 64 KiB names.
constexpr std::size_t kMaxPathBytes = 1024;
// Longest ArchiveResult::detail.
constexpr std::size_t kMaxDetailBytes = 240;
// Header reads in a row that give neither an entry nor the end (ARCHIVE_RETRY, ARCHIVE_FAILED)
// before an archive is given up: readers resynchronise past bad headers, a crafted archive must
// not keep them at it.
constexpr int kMaxHeaderFailures = 16;
// Data blocks in a row that bring nothing before a member is given up (a reader that makes no
// progress would otherwise spin until max_millis).
constexpr int kMaxEmptyBlocks = 4096;
// Bytes of a member path quoted in a detail.
constexpr std::size_t kDetailPathBytes = 80;
// Smallest growth of a member buffer, so that one read in small blocks grows a few times only.
constexpr std::size_t kMinGrowth = 64 * 1024;
// The name libarchive's raw reader gives a lone compressed stream.
constexpr std::string_view kRawName = "data";

// Which detail ArchiveResult keeps: the worst reason, and within limit_exceeded a limit that
// stopped the walk over one that cut a member or was not descended into.
enum class Cause : uint8_t { none, failed, cut, stopped, encrypted };

Cause cause_of(Unscannable r) noexcept {
  switch (r) {
    case Unscannable::none: return Cause::none;
    case Unscannable::extraction_failed: return Cause::failed;
    case Unscannable::limit_exceeded: return Cause::cut;
    case Unscannable::encrypted: return Cause::encrypted;
    case Unscannable::overload: return Cause::failed;  // not produced by the explorer
  }
  return Cause::none;
}

int severity(Unscannable r) noexcept {
  switch (r) {
    case Unscannable::none: return 0;
    case Unscannable::extraction_failed: return 1;
    case Unscannable::limit_exceeded: return 2;
    case Unscannable::encrypted: return 3;
    case Unscannable::overload: return 1;  // not produced by the explorer
  }
  return 0;
}

Unscannable worse(Unscannable a, Unscannable b) noexcept { return severity(b) > severity(a) ? b : a; }

struct ArchiveFree {
  void operator()(archive* a) const noexcept { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;

bool contains_nocase(const char* s, std::string_view word) noexcept {
  const std::size_t n = std::strlen(s);
  for (std::size_t i = 0; i + word.size() <= n; ++i) {
    std::size_t k = 0;
    while (k < word.size() && (s[i + k] | 0x20) == word[k]) ++k;
    if (k == word.size()) return true;
  }
  return false;
}

// libarchive has no error code for encryption: its readers say so in the message ("Passphrase
// required for this entry", "The archive header is encrypted, but currently not supported", "RAR
// encryption support unavailable", "Encrypted file is unsupported"...). `ask_format`: a format was
// chosen and no entry is seen yet, so the reader may be asked. Never after a failed open:
// libarchive 3.6's choose_format() then leaves a->format one past formats[], and
// archive_read_has_encrypted_entries() would call through whatever lies beyond the struct (an
// empty gzip/bzip2/xz/zstd stream got there: found by archive_fuzz).
Unscannable classify(archive* a, archive_entry* e, bool ask_format) noexcept {
  if (e != nullptr && archive_entry_is_encrypted(e)) return Unscannable::encrypted;
  const char* s = archive_error_string(a);
  if (s != nullptr && (contains_nocase(s, "encrypt") || contains_nocase(s, "passphrase")))
    return Unscannable::encrypted;
  // Before any entry (7z with encrypted headers, rar -hp), the reader may know only this.
  if (ask_format && archive_read_has_encrypted_entries(a) > 0) return Unscannable::encrypted;
  return Unscannable::extraction_failed;
}

const char* error_text(archive* a) noexcept {
  const char* s = archive_error_string(a);
  return s != nullptr ? s : "unknown libarchive error";
}

// Valid UTF-8 of at most `max` bytes into `out` (no allocation within its capacity): every byte
// that does not start a well-formed sequence (bad lead or continuation, overlong form, surrogate,
// past U+10FFFF, cut short) becomes U+FFFD; the text stops before the first character that would
// not fit.
void sanitise_utf8(std::string_view in, std::string& out, std::size_t max) noexcept {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  out.clear();
  std::size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<uint8_t>(in[i]);
    std::size_t n = 0;
    if (c < 0x80) n = 1;
    else if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) n = 3;
    else if (c >= 0xF0 && c <= 0xF4) n = 4;
    bool ok = n > 0 && i + n <= in.size();
    for (std::size_t k = 1; ok && k < n; ++k) ok = (static_cast<uint8_t>(in[i + k]) & 0xC0) == 0x80;
    if (ok && n > 2) {
      const auto c1 = static_cast<uint8_t>(in[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 > 0x9F) && !(c == 0xF0 && c1 < 0x90) &&
           !(c == 0xF4 && c1 > 0x8F);
    }
    const std::string_view piece = ok ? in.substr(i, n) : kReplacement;
    if (out.size() + piece.size() > max) break;
    out.append(piece);
    i += ok ? n : 1;
  }
}

// The length of the longest prefix of valid UTF-8 `s` of at most `max` bytes that ends on a
// character boundary (for quoting a sanitised path in a detail).
int utf8_prefix(std::string_view s, std::size_t max) noexcept {
  std::size_t n = std::min(s.size(), max);
  while (n > 0 && n < s.size() && (static_cast<uint8_t>(s[n]) & 0xC0) == 0x80) --n;
  return static_cast<int>(n);
}

// RFC 1952 2.3: ID1 ID2 CM FLG MTIME(4) XFL OS [FEXTRA: XLEN(2) data] [FNAME: zero-terminated].
std::string_view gzip_original_name(const uint8_t* d, std::size_t len) noexcept {
  if (len < 10 || d[0] != 0x1f || d[1] != 0x8b || d[2] != 8) return {};
  const uint8_t flags = d[3];
  std::size_t p = 10;
  if ((flags & 0x04) != 0) {
    if (len - p < 2) return {};
    p += 2 + (static_cast<std::size_t>(d[p]) | static_cast<std::size_t>(d[p + 1]) << 8);
  }
  if ((flags & 0x08) == 0 || p >= len) return {};
  const void* end = std::memchr(d + p, 0, len - p);
  if (end == nullptr) return {};
  return {reinterpret_cast<const char*>(d + p), static_cast<std::size_t>(static_cast<const uint8_t*>(end) - (d + p))};
}

// Readers of a level that is not a compressed stream. Only readers that work from the bytes
// given: never mtree (its entries name files on this host and reading one opens it), never
// filter_all (lrzip, lzop, grzip may run an external program), and no decompression filter:
// a compressed stream is a level of its own (walk_stream).
void register_archive_formats(archive* a) noexcept {
  archive_read_support_format_zip(a);  // seekable and streamable; the seekable one bids higher
  archive_read_support_format_7zip(a);
  archive_read_support_format_rar(a);
  archive_read_support_format_rar5(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_cpio(a);
  archive_read_support_format_cab(a);
  archive_read_support_format_iso9660(a);
  archive_read_support_format_ar(a);
  archive_read_support_format_lha(a);
}

// Readers of a decompressed stream, which cannot seek: the formats that are read front to back
// (tar.gz, cpio.gz and ar.gz stay one archive) and raw, which bids last and takes any other
// stream whole as one member (a zip or 7z in it is explored at the next level, from memory).
void register_stream_formats(archive* a) noexcept {
  archive_read_support_format_tar(a);
  archive_read_support_format_cpio(a);
  archive_read_support_format_ar(a);
  archive_read_support_format_raw(a);
}

bool starts_with(const uint8_t* d, std::size_t n, std::string_view magic) noexcept {
  return n >= magic.size() && std::memcmp(d, magic.data(), magic.size()) == 0;
}

// LZMA SDK ".lzma" has no magic: a properties byte under 225 ((pb * 5 + lp) * 9 + lc), a
// dictionary size that the LZMA SDK or xz writes (2^n or 2^n + 2^(n-1), or a multiple of 1 MiB
// when xz lowered it), and an uncompressed size that is unknown (all ones) or below 2^48.
bool looks_like_lzma_alone(const uint8_t* d, std::size_t n) noexcept {
  if (n < 13 || d[0] >= 225) return false;
  const uint32_t dict = static_cast<uint32_t>(d[1]) | static_cast<uint32_t>(d[2]) << 8 |
                        static_cast<uint32_t>(d[3]) << 16 | static_cast<uint32_t>(d[4]) << 24;
  uint64_t size = 0;
  for (int i = 0; i < 8; ++i) size |= static_cast<uint64_t>(d[5 + i]) << (8 * i);
  const uint32_t low = dict & (0u - dict);  // lowest set bit
  const bool sdk = dict >= 4096 && (dict == low || dict == low * 3);
  const bool lowered = dict >= (3u << 20) && dict % (1u << 20) == 0;
  return (sdk || lowered) && (size == UINT64_MAX || size < (1ull << 48));
}

// The compression of a level, by its magic (RFC 1952, bzip2, the .xz format, lzip, RFC 8878,
// compress, LZMA SDK); ARCHIVE_FILTER_NONE for anything else.
int filter_of(const uint8_t* d, std::size_t n) noexcept {
  using namespace std::string_view_literals;
  if (starts_with(d, n, "\x1F\x8B\x08"sv)) return ARCHIVE_FILTER_GZIP;  // ID1 ID2, CM 8 (deflate)
  if (starts_with(d, n, "BZh"sv) && n > 3 && d[3] >= '1' && d[3] <= '9') return ARCHIVE_FILTER_BZIP2;
  if (starts_with(d, n, "\xFD" "7zXZ\0"sv)) return ARCHIVE_FILTER_XZ;
  if (starts_with(d, n, "LZIP\x01"sv)) return ARCHIVE_FILTER_LZIP;
  if (starts_with(d, n, "\x28\xB5\x2F\xFD"sv)) return ARCHIVE_FILTER_ZSTD;
  if (starts_with(d, n, "\x1F\x9D"sv)) return ARCHIVE_FILTER_COMPRESS;
  if (looks_like_lzma_alone(d, n)) return ARCHIVE_FILTER_LZMA;
  return ARCHIVE_FILTER_NONE;
}

const char* filter_name(int filter) noexcept {
  switch (filter) {
    case ARCHIVE_FILTER_GZIP: return "gzip";
    case ARCHIVE_FILTER_BZIP2: return "bzip2";
    case ARCHIVE_FILTER_XZ: return "xz";
    case ARCHIVE_FILTER_LZIP: return "lzip";
    case ARCHIVE_FILTER_ZSTD: return "zstd";
    case ARCHIVE_FILTER_COMPRESS: return "compress";
    case ARCHIVE_FILTER_LZMA: return "lzma";
    default: return "stream";
  }
}

// Decoder memory the stream's headers declare; gzip, bzip2 and compress have fixed small windows.
DecoderMemory stream_memory(int filter, const uint8_t* d, std::size_t n) noexcept {
  switch (filter) {
    case ARCHIVE_FILTER_XZ: return xz_memory(d, n);
    case ARCHIVE_FILTER_LZMA: return lzma_alone_memory(d, n);
    case ARCHIVE_FILTER_LZIP: return lzip_memory(d, n);
    case ARCHIVE_FILTER_ZSTD: return zstd_memory(d, n);
    default: return {};
  }
}

const char* format_name(archive* a) noexcept {
  switch (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) {
    case ARCHIVE_FORMAT_TAR: return "tar";
    case ARCHIVE_FORMAT_CPIO: return "cpio";
    case ARCHIVE_FORMAT_AR: return "ar";
    case ARCHIVE_FORMAT_ZIP: return "zip";
    case ARCHIVE_FORMAT_7ZIP: return "7z";
    case ARCHIVE_FORMAT_RAR: return "rar";
    case ARCHIVE_FORMAT_RAR_V5: return "rar5";
    case ARCHIVE_FORMAT_CAB: return "cab";
    case ARCHIVE_FORMAT_ISO9660: return "iso9660";
    case ARCHIVE_FORMAT_LHA: return "lha";
    default: return "archive";
  }
}

// Whether the reader that `support` registers would take `d` (its bid, no header read).
bool bids(const uint8_t* d, std::size_t n, int (*support)(archive*)) {
  ArchivePtr probe(archive_read_new());
  if (probe == nullptr) throw std::bad_alloc();
  support(probe.get());
  return archive_read_open_memory(probe.get(), d, n) == ARCHIVE_OK;
}

// Formats read front to back whose end leaves only padding: what follows must be zero bytes.
bool is_stream_format(archive* a) noexcept {
  const int f = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
  return f == ARCHIVE_FORMAT_TAR || f == ARCHIVE_FORMAT_CPIO || f == ARCHIVE_FORMAT_AR;
}

// Offset of the first non-zero byte of [p, p + n), or n.
std::size_t first_nonzero(const uint8_t* p, std::size_t n) noexcept {
  std::size_t i = 0;
  while (i < n && p[i] == 0) ++i;
  return i;
}

uint16_t le16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) noexcept { return le16(p) | static_cast<uint32_t>(le16(p + 2)) << 16; }

// The entries a zip's end of central directory record declares (APPNOTE 4.3.16, ZIP64 4.3.14),
// for the record libarchive's seekable reader takes: the last one, in the final 64 KiB + 22
// bytes, whose central directory lies before it. -1 without one.
int64_t zip_declared_entries(const uint8_t* d, std::size_t n) noexcept {
  if (n < 22) return -1;
  const std::size_t lowest = n > 65535 + 22 ? n - 65535 - 22 : 0;
  for (std::size_t at = n - 22 + 1; at-- > lowest;) {
    const uint8_t* e = d + at;
    if (std::memcmp(e, "PK\5\6", 4) != 0) continue;
    if (le16(e + 4) != 0 || le16(e + 6) != 0 || le16(e + 8) != le16(e + 10)) continue;  // one disk
    if (static_cast<uint64_t>(le32(e + 12)) + le32(e + 16) > at) continue;
    const uint16_t entries = le16(e + 10);
    if (entries != 0xFFFF || at < 20 || std::memcmp(e - 20, "PK\6\7", 4) != 0) return entries;
    const uint64_t z64 = le32(e - 20 + 8) | static_cast<uint64_t>(le32(e - 20 + 12)) << 32;
    if (z64 > n - 56 || std::memcmp(d + z64, "PK\6\6", 4) != 0) return entries;
    return static_cast<int64_t>(le32(d + z64 + 32) | static_cast<uint64_t>(le32(d + z64 + 36)) << 32);
  }
  return -1;
}

// The exact bytes of an empty archive that has no trailing padding to check: a zip that is only
// its end record (and comment), a 7z that is only its signature header (next header size 0).
bool is_empty_form(archive* a, const uint8_t* d, std::size_t n) noexcept {
  switch (archive_format(a) & ARCHIVE_FORMAT_BASE_MASK) {
    case ARCHIVE_FORMAT_ZIP:
      return n >= 22 && std::memcmp(d, "PK\5\6", 4) == 0 && le16(d + 10) == 0 && n == 22u + le16(d + 20);
    case ARCHIVE_FORMAT_7ZIP:
      return n == 32;
    default:
      return false;
  }
}

// Regular files. A hard link is one only when it carries the data: cpio newc stores a linked
// file's data with its last link, pax may store it with a link.
bool is_member(archive_entry* e) noexcept {
  if (archive_entry_filetype(e) != AE_IFREG) return false;
  return archive_entry_hardlink(e) == nullptr || (archive_entry_size_is_set(e) && archive_entry_size(e) > 0);
}

}  // namespace

std::string_view unscannable_name(Unscannable reason) noexcept {
  switch (reason) {
    case Unscannable::none: return "";
    case Unscannable::encrypted: return "encrypted";
    case Unscannable::extraction_failed: return "extraction_failed";
    case Unscannable::limit_exceeded: return "limit_exceeded";
    case Unscannable::overload: return "overload";
  }
  return "";
}

// State of one explore() call, shared by every level of the tree.
struct ArchiveExplorer::Walk {
  ArchiveVisitor& visitor;
  const ArchiveLimits& limits;
  ArchiveResult result;
  uint64_t ratio_budget = 0;  // max_ratio * attachment size, saturated
  Clock::time_point deadline;
  bool stop = false;  // a global budget ran out: nothing more is read
  Cause cause = Cause::none;
  uint64_t reserved = 0;  // decoder memory declared by the levels open now

  // Records `r` with the detail printf-formatted, unless a worse cause is already recorded.
  void note(Unscannable r, const char* fmt, ...) __attribute__((format(printf, 3, 4))) {
    va_list ap;
    va_start(ap, fmt);
    record(r, cause_of(r), fmt, ap);
    va_end(ap);
  }
  // A global budget ran out: the walk stops.
  void halt(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    stop = true;
    va_list ap;
    va_start(ap, fmt);
    record(Unscannable::limit_exceeded, Cause::stopped, fmt, ap);
    va_end(ap);
  }
  void record(Unscannable r, Cause c, const char* fmt, va_list ap) {
    if (c <= cause) return;
    cause = c;
    result.reason = worse(result.reason, r);
    char text[kMaxDetailBytes + 1];
    std::vsnprintf(text, sizeof text, fmt, ap);
    sanitise_utf8(text, result.detail, kMaxDetailBytes);  // libarchive's messages may quote names
  }

  bool out_of_time() {
    if (stop) return true;
    if (Clock::now() <= deadline) return false;
    halt("max_millis %u reached", limits.max_millis);
    return true;
  }

  // Counts `n` expanded bytes against the global budgets; returns how many fit (fewer: the walk
  // stops, the limit noted).
  uint64_t expand(uint64_t n, uint32_t depth) {
    const uint64_t expanded = result.expanded_bytes;
    const uint64_t total_room = limits.max_total_bytes - std::min(expanded, limits.max_total_bytes);
    const uint64_t ratio_room = ratio_budget - std::min(expanded, ratio_budget);
    const uint64_t counted = std::min({n, total_room, ratio_room});
    result.expanded_bytes += counted;
    if (counted < n) {
      if (total_room <= ratio_room)
        halt("max_total_bytes %llu reached (depth %u)", static_cast<unsigned long long>(limits.max_total_bytes), depth);
      else
        halt("max_ratio %u reached: %llu bytes expanded (depth %u)", limits.max_ratio,
             static_cast<unsigned long long>(result.expanded_bytes), depth);
    }
    return counted;
  }

  // Takes the decoder memory a level's headers declare from what max_decoder_bytes leaves the
  // levels open now; false (noted, counted) when it does not fit or could not be read.
  bool reserve(const DecoderMemory& m, uint32_t depth) {
    if (m.unreadable != nullptr) {
      note(Unscannable::extraction_failed, "%s: decoder memory not checked, not read (depth %u)", m.unreadable, depth);
      return false;
    }
    const uint64_t room = limits.max_decoder_bytes - std::min(reserved, limits.max_decoder_bytes);
    if (m.bytes > room) {
      ++result.memory_refused;
      note(Unscannable::limit_exceeded, "max_decoder_bytes %llu MiB: %s of %llu MiB%s, not read (depth %u)",
           static_cast<unsigned long long>(limits.max_decoder_bytes >> 20), m.what,
           static_cast<unsigned long long>((m.bytes + (1 << 20) - 1) >> 20),
           reserved != 0 ? " with the levels above" : "", depth);
      return false;
    }
    reserved += m.bytes;
    return true;
  }
};

// Gives back a level's decoder memory when the level ends.
struct Reservation {
  uint64_t& reserved;
  uint64_t before;
  explicit Reservation(uint64_t& r) : reserved(r), before(r) {}
  ~Reservation() { reserved = before; }
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;
};

ArchiveExplorer::ArchiveExplorer(const ArchiveLimits& limits)
    : limits_(limits), buffers_(limits.max_depth), utf8_(newlocale(LC_ALL_MASK, "C.UTF-8", nullptr)) {
  path_.reserve(kMaxPathBytes);
}

ArchiveExplorer::~ArchiveExplorer() {
  if (utf8_ != nullptr) freelocale(utf8_);
}

ArchiveResult ArchiveExplorer::explore(const uint8_t* data, std::size_t len, ArchiveVisitor& visitor) {
  // The thread's locale for the call (restored on every way out): libarchive's name conversions.
  struct LocaleScope {
    locale_t previous;
    explicit LocaleScope(locale_t l) : previous(l != nullptr ? uselocale(l) : nullptr) {}
    ~LocaleScope() {
      if (previous != nullptr) uselocale(previous);
    }
  } locale_scope(utf8_);
  Walk w{visitor, limits_, {}, 0, Clock::now() + std::chrono::milliseconds(limits_.max_millis)};
  const uint64_t ratio = limits_.max_ratio;
  w.ratio_budget = (ratio != 0 && len > std::numeric_limits<uint64_t>::max() / ratio)
                       ? std::numeric_limits<uint64_t>::max()
                       : ratio * len;
  if (limits_.max_depth == 0) {
    w.note(Unscannable::limit_exceeded, "max_depth 0: the attachment is not explored");
    return std::move(w.result);
  }
  try {
    walk(w, data, len, 1, -1);
  } catch (const std::bad_alloc&) {
    w.note(Unscannable::extraction_failed, "out of memory");
  }
  return std::move(w.result);
}

namespace {

// Reads the data of the current entry block by block, counting every byte against the global
// budgets; keeps up to max_member_bytes in `keep` (null: the entry is not a member, its data is
// only counted). Sets `reason` for the member; returns false when the archive cannot go on.
struct DataReader {
  const ArchiveLimits& limits;
  archive* a;
  archive_entry* e;
  std::vector<uint8_t>* keep;
  std::string_view path;
  uint32_t depth;
  Unscannable reason = Unscannable::none;

  template <class Walk>
  bool run(Walk& w) {
    uint64_t pos = 0;  // offset in the entry of the next byte (sparse entries leave holes)
    int empty = 0;
    for (;;) {
      const void* block = nullptr;
      std::size_t n = 0;
      la_int64_t offset = 0;
      const int r = archive_read_data_block(a, &block, &n, &offset);
      if (r == ARCHIVE_EOF) {
        // A sparse entry's last hole comes with no block: the entry's size says where it ends.
        if (archive_entry_sparse_count(e) > 0 && archive_entry_size_is_set(e) && archive_entry_size(e) > 0 &&
            static_cast<uint64_t>(archive_entry_size(e)) > pos)
          take(w, nullptr, static_cast<uint64_t>(archive_entry_size(e)) - pos);
        return !w.stop;
      }
      if (r < ARCHIVE_WARN) {  // ARCHIVE_RETRY, ARCHIVE_FAILED, ARCHIVE_FATAL
        fail(w, classify(a, e, false));
        return r != ARCHIVE_FATAL;
      }
      if (r == ARCHIVE_WARN) {  // the block is good, something around it is not (bad CRC...)
        fail(w, Unscannable::extraction_failed);
        if (n == 0) return true;
      }
      if (offset > 0 && static_cast<uint64_t>(offset) > pos) {
        const uint64_t hole = static_cast<uint64_t>(offset) - pos;
        take(w, nullptr, hole);
        pos += hole;
      }
      if (!w.stop) take(w, static_cast<const uint8_t*>(block), n);
      pos += n;
      empty = n == 0 ? empty + 1 : 0;
      if (empty > kMaxEmptyBlocks) {
        reason = worse(reason, Unscannable::extraction_failed);
        w.note(Unscannable::extraction_failed, "no progress reading data (depth %u, \"%.*s\")", depth,
               utf8_prefix(path, kDetailPathBytes), path.data());
        return false;
      }
      if (w.out_of_time()) {
        reason = worse(reason, Unscannable::limit_exceeded);
        return false;
      }
    }
  }

  template <class Walk>
  void fail(Walk& w, Unscannable r) {
    reason = worse(reason, r);
    w.note(r, "%s (depth %u, \"%.*s\")", error_text(a), depth, utf8_prefix(path, kDetailPathBytes), path.data());
  }

  // Counts `n` expanded bytes (zeros when p is null); keeps what fits in the member.
  template <class Walk>
  void take(Walk& w, const uint8_t* p, uint64_t n) {
    const uint64_t counted = w.expand(n, depth);
    uint64_t kept = 0;
    if (keep != nullptr) {
      const uint64_t room = limits.max_member_bytes - std::min<uint64_t>(keep->size(), limits.max_member_bytes);
      kept = std::min(counted, room);
      if (kept != 0) append(p, static_cast<std::size_t>(kept));
    }
    if (counted < n) {
      reason = worse(reason, Unscannable::limit_exceeded);
    } else if (keep != nullptr && kept < counted && reason != Unscannable::limit_exceeded) {
      reason = worse(reason, Unscannable::limit_exceeded);
      w.note(Unscannable::limit_exceeded, "max_member_bytes %llu reached (depth %u, \"%.*s\")",
             static_cast<unsigned long long>(limits.max_member_bytes), depth, utf8_prefix(path, kDetailPathBytes),
             path.data());
    }
  }

  void append(const uint8_t* p, std::size_t n) {
    std::vector<uint8_t>& b = *keep;
    if (b.size() + n > b.capacity()) {
      // Geometric growth capped at the member limit: a few allocations on first use, none after.
      const std::size_t cap = static_cast<std::size_t>(limits.max_member_bytes);
      b.reserve(std::min(cap, std::max({b.size() + n, b.capacity() * 2, kMinGrowth})));
    }
    if (p != nullptr) b.insert(b.end(), p, p + n);
    else b.resize(b.size() + n, 0);
  }
};

}  // namespace

// What read_entries() saw of one archive.
struct ArchiveExplorer::Entries {
  uint32_t headers = 0;  // entries libarchive gave, members or not
  bool eof = false;      // the reader reached the archive's end without an error and the walk goes on
};

// A decompressed stream handed to a second libarchive handle (the archive reader) by its read
// callback, one block of the decompressing handle at a time. The block handed last stays valid
// until the next one is asked for, so what the reader took but did not use at its end of archive
// (it reads ahead) is usually still there to check.
struct ArchiveExplorer::Stream {
  Walk& w;
  archive* r;  // the decompressing handle: raw format, one filter
  uint32_t depth;
  const uint8_t* block = nullptr;
  std::size_t size = 0;    // bytes in `block`
  std::size_t given = 0;   // bytes of `block` handed to the reader
  uint64_t handed = 0;     // bytes handed to the reader in all
  bool failed = false;     // decompression failed or the time ran out (noted)

  static la_ssize_t read(archive*, void* self, const void** out) {
    Stream& s = *static_cast<Stream*>(self);
    if (s.given == s.size && !s.next()) return s.failed ? ARCHIVE_FATAL : 0;
    *out = s.block + s.given;
    const std::size_t n = s.size - s.given;
    s.given = s.size;
    s.handed += n;
    return static_cast<la_ssize_t>(n);
  }

  // The next non-empty block of the decompressed stream; false at its end or on failure.
  bool next() {
    for (int empty = 0; empty <= kMaxEmptyBlocks; ++empty) {
      if (w.out_of_time()) {
        failed = true;
        return false;
      }
      const void* b = nullptr;
      std::size_t n = 0;
      la_int64_t offset = 0;
      const int rc = archive_read_data_block(r, &b, &n, &offset);
      if (rc == ARCHIVE_EOF) return false;
      if (rc != ARCHIVE_OK) {
        failed = true;
        w.note(classify(r, nullptr, false), "%s (depth %u)", error_text(r), depth);
        return false;
      }
      block = static_cast<const uint8_t*>(b);
      size = n;
      given = 0;
      if (n != 0) return true;
    }
    failed = true;
    w.note(Unscannable::extraction_failed, "no progress decompressing (depth %u)", depth);
    return false;
  }

  // Reads the rest of the stream, from byte `from` of the current block (offset `at` in the
  // stream) to its end, counting what it decompresses; returns the offset of the first non-zero
  // byte, or UINT64_MAX when the rest is zeros (padding), failed or was stopped by a budget.
  uint64_t rest(std::size_t from, uint64_t at) {
    std::size_t z = first_nonzero(block + from, size - from);
    if (z != size - from) return at + z;
    at += size - from;
    while (next()) {
      if (w.expand(size, depth) < size) return UINT64_MAX;
      z = first_nonzero(block, size);
      if (z != size) return at + z;
      at += size;
    }
    return UINT64_MAX;
  }

  // Decompresses the first `n` bytes again without counting them (they were), leaving `given`
  // where they end; false when the stream is shorter or fails.
  bool skip(uint64_t n) {
    uint64_t skipped = 0;
    while (skipped < n) {
      if (!next()) return false;
      const uint64_t take = std::min<uint64_t>(size, n - skipped);
      given = static_cast<std::size_t>(take);
      skipped += take;
    }
    return true;
  }
};

void ArchiveExplorer::walk(Walk& w, const uint8_t* data, std::size_t len, uint32_t depth, int32_t parent) {
  if (len == 0) {
    w.note(Unscannable::extraction_failed, "empty archive (depth %u)", depth);
    return;
  }
  const int filter = filter_of(data, len);
  if (filter == ARCHIVE_FILTER_NONE) return walk_archive(w, data, len, depth, parent);
  Reservation held(w.reserved);
  if (!w.reserve(stream_memory(filter, data, len), depth)) return;
  walk_stream(w, data, len, depth, parent, filter, false);
}

void ArchiveExplorer::walk_archive(Walk& w, const uint8_t* data, std::size_t len, uint32_t depth, int32_t parent) {
  ArchivePtr holder(archive_read_new());
  archive* a = holder.get();
  if (a == nullptr) throw std::bad_alloc();
  register_archive_formats(a);
  // archive_read_open_memory gives libarchive a seek callback, which the seekable zip reader needs.
  if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
    w.note(classify(a, nullptr, false), "%s (depth %u)", error_text(a), depth);
    return;
  }
  // No header is read yet, and 7z and zip decoders are set up from the headers libarchive reads
  // next: their declared memory is checked now, whenever that reader would take the input (the
  // chosen format is only known after the first header).
  Reservation held(w.reserved);
  DecoderMemory need;
  if (bids(data, len, archive_read_support_format_7zip))
    need = sevenzip_memory(data, len, limits_.max_decoder_bytes - std::min(w.reserved, limits_.max_decoder_bytes));
  if (need.unreadable == nullptr && bids(data, len, archive_read_support_format_zip)) {
    const DecoderMemory zip = zip_memory(data, len);
    if (zip.unreadable != nullptr || zip.bytes > need.bytes) need = zip;
  }
  if (!w.reserve(need, depth)) return;

  const Entries e = read_entries(w, a, data, len, depth, parent);
  if (!e.eof) return;
  // The archive must account for its bytes.
  const int format = archive_format(a) & ARCHIVE_FORMAT_BASE_MASK;
  if (is_stream_format(a)) {
    const auto used = static_cast<uint64_t>(std::max<la_int64_t>(0, archive_filter_bytes(a, 0)));
    if (used < len) {
      const std::size_t z = first_nonzero(data + used, len - static_cast<std::size_t>(used));
      if (z != len - used)
        w.note(Unscannable::extraction_failed, "%s archive ends at byte %llu of %zu%s, data at byte %llu not read (depth %u)",
               format_name(a), static_cast<unsigned long long>(used), len, e.headers == 0 ? " without an entry" : "",
               static_cast<unsigned long long>(used + z), depth);
    }
    return;
  }
  if (e.headers == 0 && !is_empty_form(a, data, len)) {
    w.note(Unscannable::extraction_failed, "no entry in %zu bytes of %s (depth %u)", len, format_name(a), depth);
    return;
  }
  if (format == ARCHIVE_FORMAT_ZIP) {
    const int64_t declared = zip_declared_entries(data, len);
    if (declared > static_cast<int64_t>(e.headers))
      w.note(Unscannable::extraction_failed, "the central directory declares %lld entries, %u read (depth %u)",
             static_cast<long long>(declared), e.headers, depth);
  }
}

void ArchiveExplorer::walk_stream(Walk& w, const uint8_t* data, std::size_t len, uint32_t depth, int32_t parent,
                                  int filter, bool as_member) {
  // The decompressing handle: exactly the filter the magic names. Two are bid for, alone,
  // instead: libarchive 3.6 cannot append zstd, and appending compress crashes it (its init reads
  // the header from a filter chain that does not exist yet: a NULL read found by archive_fuzz).
  // A stream of theirs inside them is peeled too; their memory is small (compress) or capped by
  // libzstd at 128 MiB.
  auto open_decompressor = [&](ArchivePtr& h) {
    h.reset(archive_read_new());
    archive* r = h.get();
    if (r == nullptr) throw std::bad_alloc();
    archive_read_support_format_raw(r);
    const int rc = filter == ARCHIVE_FILTER_ZSTD       ? archive_read_support_filter_zstd(r)
                   : filter == ARCHIVE_FILTER_COMPRESS ? archive_read_support_filter_compress(r)
                                                       : archive_read_append_filter(r, filter);
    archive_entry* e = nullptr;
    if (rc != ARCHIVE_OK || archive_read_open_memory(r, data, len) != ARCHIVE_OK ||
        archive_read_next_header(r, &e) != ARCHIVE_OK) {
      // Without bidding, a stream that fails at once (cut short in its first block, corrupt)
      // leaves libarchive's raw reader with nothing to bid on: its message says only that.
      w.note(classify(r, nullptr, false), "%s stream cut short or corrupt: %s (depth %u)", filter_name(filter),
             error_text(r), depth);
      return false;
    }
    if (archive_filter_count(r) < 2) {  // a bidder (zstd, compress) refused the stream's header
      w.note(Unscannable::extraction_failed, "%s stream with a header libarchive refuses (depth %u)",
             filter_name(filter), depth);
      return false;
    }
    return true;
  };
  ArchivePtr decompressor;
  if (!open_decompressor(decompressor)) return;
  Stream stream{w, decompressor.get(), depth};
  ArchivePtr holder(archive_read_new());
  archive* a = holder.get();
  if (a == nullptr) throw std::bad_alloc();
  if (as_member) archive_read_support_format_raw(a);
  else register_stream_formats(a);
  if (archive_read_open(a, &stream, nullptr, &Stream::read, nullptr) != ARCHIVE_OK) {
    if (!stream.failed) w.note(classify(a, nullptr, false), "%s (depth %u)", error_text(a), depth);
    return;
  }
  const Entries e = read_entries(w, a, data, len, depth, parent);
  if (!e.eof || stream.failed) return;

  // What the archive reader left of the stream must be padding. It reads ahead: the bytes it
  // took but did not use are the end of what it was handed, normally all in the current block.
  const auto used = static_cast<uint64_t>(std::max<la_int64_t>(0, archive_filter_bytes(a, 0)));
  const uint64_t unread = stream.handed - std::min(stream.handed, used);
  uint64_t at = UINT64_MAX;
  archive* finished = decompressor.get();  // the handle that reads to the end of the stream
  ArchivePtr again;
  if (unread <= stream.size) {
    at = stream.rest(stream.size - static_cast<std::size_t>(unread), used);
  } else {
    // They reach into an earlier block, which is gone: decompress again up to `used`.
    if (!open_decompressor(again)) return;
    finished = again.get();
    Stream second{w, finished, depth};
    if (second.skip(used)) at = second.rest(second.given, used);
    if (second.failed) return;
  }
  if (stream.failed || w.stop) return;
  if (at != UINT64_MAX) {
    if (e.headers == 0 && !as_member) {
      // libarchive took the stream for an empty archive (a tar's end blocks are zeros): the
      // stream is the member.
      walk_stream(w, data, len, depth, parent, filter, true);
      return;
    }
    w.note(Unscannable::extraction_failed, "%s archive in the %s stream ends at byte %llu, data at byte %llu not read (depth %u)",
           format_name(a), filter_name(filter), static_cast<unsigned long long>(used),
           static_cast<unsigned long long>(at), depth);
    return;
  }
  // And what the decompressor left of the input: data after the end of the compressed stream.
  const la_int64_t in = archive_filter_bytes(finished, -1);
  if (in >= 0 && static_cast<uint64_t>(in) < len) {
    const std::size_t z = first_nonzero(data + in, len - static_cast<std::size_t>(in));
    if (z != len - static_cast<std::size_t>(in))
      w.note(Unscannable::extraction_failed, "%s stream ends at byte %lld of %zu, data at byte %llu not read (depth %u)",
             filter_name(filter), static_cast<long long>(in), len, static_cast<unsigned long long>(in + z), depth);
  }
}

ArchiveExplorer::Entries ArchiveExplorer::read_entries(Walk& w, archive* a, const uint8_t* data, std::size_t len,
                                                        uint32_t depth, int32_t parent) {
  Entries seen;
  std::vector<uint8_t>& buffer = buffers_[depth - 1];
  int failures = 0;
  bool clean = true;  // no header failed
  while (!w.out_of_time()) {
    archive_entry* e = nullptr;
    const int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) {
      seen.eof = clean;
      break;
    }
    if (r == ARCHIVE_FATAL) {
      w.note(classify(a, nullptr, seen.headers == 0), "%s (depth %u)", error_text(a), depth);
      break;
    }
    if (r == ARCHIVE_RETRY || r == ARCHIVE_FAILED) {
      // The entry is not usable (libarchive refuses its data in this state); the next may be.
      w.note(classify(a, e, seen.headers == 0), "%s (depth %u)", error_text(a), depth);
      clean = false;
      if (++failures > kMaxHeaderFailures) break;
      continue;
    }
    failures = 0;  // ARCHIVE_OK or ARCHIVE_WARN (a name that the locale cannot show...): usable
    ++seen.headers;
    const bool raw = archive_format(a) == ARCHIVE_FORMAT_RAW;

    const char* p = archive_entry_pathname_utf8(e);
    if (p == nullptr) p = archive_entry_pathname(e);
    if (!is_member(e)) {
      // A directory that declares no data has none to read (RAR 5 refuses the attempt: "Can't
      // decompress an entry marked as a directory"); one that declares data is read like any
      // other non-member, so that its bytes still count against the budgets.
      if (archive_entry_filetype(e) == AE_IFDIR && (!archive_entry_size_is_set(e) || archive_entry_size(e) == 0))
        continue;
      sanitise_utf8(p != nullptr ? p : "", path_, kMaxPathBytes);
      DataReader skip{limits_, a, e, nullptr, path_, depth};
      if (!skip.run(w)) break;
      continue;
    }
    if (w.result.members >= limits_.max_members) {
      w.halt("max_members %u reached (depth %u)", limits_.max_members, depth);
      break;
    }
    const uint32_t index = w.result.members++;
    std::string_view name = p != nullptr ? p : "";
    if (raw) {
      name = gzip_original_name(data, len);
      if (name.empty()) name = kRawName;
    }
    sanitise_utf8(name, path_, kMaxPathBytes);

    buffer.clear();
    DataReader reader{limits_, a, e, &buffer, path_, depth};
    bool go_on = true;
    if (archive_entry_is_encrypted(e)) {
      // Not read: without a passphrase the data is noise, and the reader would fail on it anyway.
      reader.reason = Unscannable::encrypted;
      w.note(Unscannable::encrypted, "encrypted member (depth %u, \"%.*s\")", depth, utf8_prefix(path_, kDetailPathBytes),
             path_.data());
    } else {
      go_on = reader.run(w);
    }
    const ArchiveMember m{path_, index, parent, depth, buffer.size(), reader.reason == Unscannable::none,
                          reader.reason};
    const bool nested = w.visitor.on_member(m, buffer.data(), buffer.size());
    if (nested && !w.stop && reader.reason != Unscannable::encrypted) {
      if (depth >= limits_.max_depth)
        w.note(Unscannable::limit_exceeded, "max_depth %u reached: member %u not explored", limits_.max_depth, index);
      else
        walk(w, buffer.data(), buffer.size(), depth + 1, static_cast<int32_t>(index));
    }
    if (!go_on) break;
    if (reader.reason != Unscannable::none && reader.reason != Unscannable::encrypted) clean = false;
  }
  if (w.stop) seen.eof = false;
  return seen;
}

}  // namespace sluice::pipeline
