// Recursive archive exploration over libarchive, from memory (archive.h has the contract).
//
// Every byte libarchive decompresses is asked for through archive_read_data_block() and counted
// here, block by block: the tails of cut members and the data of entries that are not members are
// read (and dropped) rather than left to archive_read_next_header(), whose internal skip would
// decompress them in one call the budgets could not stop.
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

void register_readers(archive* a) noexcept {
  // Only readers that work from the bytes given: never mtree (its entries name files on this host
  // and reading one opens it), never filter_all (lrzip, lzop, grzip may run an external program).
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
  archive_read_support_format_raw(a);  // bids last: a compressed stream that holds no archive
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_lzma(a);
  archive_read_support_filter_lzip(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_compress(a);
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
    const uint64_t expanded = w.result.expanded_bytes;
    const uint64_t total_room = limits.max_total_bytes - std::min(expanded, limits.max_total_bytes);
    const uint64_t ratio_room = w.ratio_budget - std::min(expanded, w.ratio_budget);
    const uint64_t counted = std::min({n, total_room, ratio_room});
    w.result.expanded_bytes += counted;
    uint64_t kept = 0;
    if (keep != nullptr) {
      const uint64_t room = limits.max_member_bytes - std::min<uint64_t>(keep->size(), limits.max_member_bytes);
      kept = std::min(counted, room);
      if (kept != 0) append(p, static_cast<std::size_t>(kept));
    }
    if (counted < n) {
      reason = worse(reason, Unscannable::limit_exceeded);
      if (total_room <= ratio_room)
        w.halt("max_total_bytes %llu reached (depth %u)", static_cast<unsigned long long>(limits.max_total_bytes), depth);
      else
        w.halt("max_ratio %u reached: %llu bytes expanded (depth %u)", limits.max_ratio,
               static_cast<unsigned long long>(w.result.expanded_bytes), depth);
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

void ArchiveExplorer::walk(Walk& w, const uint8_t* data, std::size_t len, uint32_t depth, int32_t parent) {
  if (len == 0) {
    w.note(Unscannable::extraction_failed, "empty archive (depth %u)", depth);
    return;
  }
  ArchivePtr holder(archive_read_new());
  archive* a = holder.get();
  if (a == nullptr) throw std::bad_alloc();
  register_readers(a);
  // archive_read_open_memory gives libarchive a seek callback, which the seekable zip reader needs.
  if (archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
    w.note(classify(a, nullptr, false), "%s (depth %u)", error_text(a), depth);
    return;
  }
  std::vector<uint8_t>& buffer = buffers_[depth - 1];
  bool entry_seen = false;
  int failures = 0;
  while (!w.out_of_time()) {
    archive_entry* e = nullptr;
    const int r = archive_read_next_header(a, &e);
    if (r == ARCHIVE_EOF) break;
    if (r == ARCHIVE_FATAL) {
      w.note(classify(a, nullptr, !entry_seen), "%s (depth %u)", error_text(a), depth);
      break;
    }
    if (r == ARCHIVE_RETRY || r == ARCHIVE_FAILED) {
      // The entry is not usable (libarchive refuses its data in this state); the next may be.
      w.note(classify(a, e, !entry_seen), "%s (depth %u)", error_text(a), depth);
      if (++failures > kMaxHeaderFailures) break;
      continue;
    }
    failures = 0;  // ARCHIVE_OK or ARCHIVE_WARN (a name that the locale cannot show...): usable
    const bool raw = archive_format(a) == ARCHIVE_FORMAT_RAW;
    if (!entry_seen && raw && archive_filter_count(a) <= 1) {
      // The raw reader takes anything; only a decompressed stream is a member.
      w.note(Unscannable::extraction_failed, "Unrecognized archive format (depth %u)", depth);
      break;
    }
    entry_seen = true;

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
  }
}

}  // namespace sluice::pipeline
