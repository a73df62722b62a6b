// libFuzzer target: ArchiveExplorer::explore() on arbitrary bytes, twice: with small limits (a
// nested archive can be explored, members are whole) and with tiny ones (members cut, the walk
// stopped by the total, ratio and member budgets). The visitor asks to descend into every member
// that starts like a zip, gzip, 7z, tar, bzip2, xz, cab or rar. Aborts on a broken contract of
// archive.h: member indices not 0, 1, 2... in visit order; a parent that is not an earlier member
// the visitor asked to explore, or not on the depth-first path to the member before; a depth that
// is not the parent's + 1 (1 at the top) or past max_depth; size != len, len > max_member_bytes;
// complete and reason disagreeing; an encrypted member with bytes; a path that is not valid UTF-8
// or is longer than 1024 bytes; an ArchiveResult whose members is not the number of visits, whose
// expanded_bytes is over max_total_bytes, max_ratio * input size or below the bytes handed over,
// whose reason is better than a member's or is overload, or whose detail is empty exactly when
// reason is not none, or that refused a level for its decoder memory with a reason better than
// limit_exceeded; and an explore() that overran max_millis by more than kSlackMillis. Decoder
// memory is bounded at 64 MiB: scripts/fuzz makes any allocation over 300 MiB a finding.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/archive.h"

using namespace sluice::pipeline;

namespace {

// One libarchive call (one header or one block) may run past the deadline before the explorer
// looks at the clock again; more than this past max_millis is a hang, whoever's it is.
constexpr long kSlackMillis = 1000;

bool print() {
  static const bool on = std::getenv("SLUICE_FUZZ_PRINT") != nullptr;
  return on;
}

[[noreturn]] void violated(const char* what, uint32_t index) {
  std::fprintf(stderr, "invariant violated: %s (member %u)\n", what, index);
  std::abort();
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    if (c < 0x80) n = 1;
    else if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) n = 3;
    else if (c >= 0xF0 && c <= 0xF4) n = 4;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    if (n > 2) {  // overlong forms, surrogates, past U+10FFFF
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
        return false;
    }
    i += n;
  }
  return true;
}

int severity(Unscannable r) {
  switch (r) {
    case Unscannable::none: return 0;
    case Unscannable::extraction_failed: return 1;
    case Unscannable::limit_exceeded: return 2;
    case Unscannable::encrypted: return 3;
    case Unscannable::overload: return -1;  // the hand-off's, never the explorer's
  }
  return -1;
}

bool starts(const uint8_t* d, std::size_t n, std::size_t at, std::string_view magic) {
  return at <= n && magic.size() <= n - at && std::memcmp(d + at, magic.data(), magic.size()) == 0;
}

bool looks_like_archive(const uint8_t* d, std::size_t n) {
  using namespace std::literals;
  return starts(d, n, 0, "PK\3\4"sv) || starts(d, n, 0, "PK\5\6"sv) || starts(d, n, 0, "\x1F\x8B"sv) ||
         starts(d, n, 0, "7z\xBC\xAF\x27\x1C"sv) || starts(d, n, 257, "ustar"sv) || starts(d, n, 0, "BZh"sv) ||
         starts(d, n, 0, "\xFD" "7zXZ\0"sv) || starts(d, n, 0, "MSCF"sv) || starts(d, n, 0, "Rar!\x1A\x07"sv);
}

struct Checker final : ArchiveVisitor {
  const ArchiveLimits& limits;
  struct Seen {
    int32_t parent;
    uint32_t depth;
    bool descend;
  };
  std::vector<Seen> seen;
  uint64_t handed = 0;  // bytes given to the visitor
  int worst = 0;        // worst member reason

  explicit Checker(const ArchiveLimits& l) : limits(l) {}

  bool on_member(const ArchiveMember& m, const uint8_t* data, std::size_t len) override {
    const uint32_t i = m.index;
    if (i != seen.size()) violated("index is not the number of members before", i);
    if (i >= limits.max_members) violated("more than max_members", i);
    if (m.size != len) violated("size != len", i);
    if (len > limits.max_member_bytes) violated("len > max_member_bytes", i);
    if (len != 0 && data == nullptr) violated("bytes without data", i);
    if (m.complete != (m.reason == Unscannable::none)) violated("complete and reason disagree", i);
    if (severity(m.reason) < 0) violated("reason out of range or overload", i);
    if (m.reason == Unscannable::encrypted && len != 0) violated("encrypted member with bytes", i);
    if (m.path.size() > 1024) violated("path longer than 1024 bytes", i);
    if (!valid_utf8(m.path)) violated("path not valid UTF-8", i);
    if (m.depth < 1 || m.depth > limits.max_depth) violated("depth outside 1..max_depth", i);
    if (m.parent == -1) {
      if (m.depth != 1) violated("top-level member with depth != 1", i);
    } else {
      if (m.parent < 0 || static_cast<uint32_t>(m.parent) >= i) violated("parent not an earlier member", i);
      const Seen& p = seen[static_cast<std::size_t>(m.parent)];
      if (!p.descend) violated("parent is a member the visitor did not ask to explore", i);
      if (m.depth != p.depth + 1) violated("depth != parent's depth + 1", i);
    }
    // Depth first: the parent is the member before or one of its ancestors.
    if (i > 0 && m.parent != -1) {
      int32_t a = static_cast<int32_t>(i - 1);
      while (a != -1 && a != m.parent) a = seen[static_cast<std::size_t>(a)].parent;
      if (a != m.parent) violated("parent not on the path to the member before (not depth first)", i);
    }
    // Every byte handed over must be readable (ASan checks).
    unsigned sum = 0;
    for (std::size_t k = 0; k < len; ++k) sum += data[k];
    handed += len;
    worst = std::max(worst, severity(m.reason));
    const bool descend = looks_like_archive(data, len);
    seen.push_back({m.parent, m.depth, descend});
    if (print())
      std::fprintf(stderr, "member %u parent %d depth %u size %zu %s%s%s sum %u%s path \"%.*s\"\n", i, m.parent,
                   m.depth, len, m.complete ? "complete" : "incomplete", m.complete ? "" : " ",
                   std::string(unscannable_name(m.reason)).c_str(), sum, descend ? " descend" : "",
                   static_cast<int>(m.path.size()), m.path.data());
    return descend;
  }
};

void run(ArchiveExplorer& explorer, const ArchiveLimits& limits, const uint8_t* data, std::size_t size) {
  Checker c(limits);
  const auto t0 = std::chrono::steady_clock::now();
  const ArchiveResult r = explorer.explore(data, size, c);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  const auto n = static_cast<uint32_t>(c.seen.size());
  if (print())
    std::fprintf(stderr, "result: %s \"%s\" members %u expanded %llu in %lld ms\n",
                 std::string(unscannable_name(r.reason)).c_str(), r.detail.c_str(), r.members,
                 static_cast<unsigned long long>(r.expanded_bytes), static_cast<long long>(millis));
  if (r.members != n) violated("ArchiveResult::members != visits", n);
  if (r.expanded_bytes > limits.max_total_bytes) violated("expanded_bytes > max_total_bytes", n);
  if (r.expanded_bytes > uint64_t{limits.max_ratio} * size) violated("expanded_bytes > max_ratio * size", n);
  if (r.expanded_bytes < c.handed) violated("expanded_bytes below the bytes handed to the visitor", n);
  if (severity(r.reason) < 0) violated("result reason out of range or overload", n);
  if (severity(r.reason) < c.worst) violated("result reason better than a member's", n);
  if (r.detail.empty() != (r.reason == Unscannable::none)) violated("detail empty exactly when reason is not none", n);
  if (r.detail.size() > 240 || !valid_utf8(r.detail)) violated("detail over 240 bytes or not UTF-8", n);
  if (r.memory_refused != 0 && severity(r.reason) < severity(Unscannable::limit_exceeded))
    violated("a level refused for its decoder memory, result better than limit_exceeded", n);
  if (millis > static_cast<long>(limits.max_millis) + kSlackMillis) {
    std::fprintf(stderr, "explore() took %lld ms (max_millis %u)\n", static_cast<long long>(millis), limits.max_millis);
    violated("max_millis overrun", n);
  }
}

// Decoder memory the headers may declare: well under scripts/fuzz's -malloc_limit_mb=300, so a
// declared dictionary that got past the check shows as an out-of-memory finding.
constexpr uint64_t kDecoderBytes = 64ull << 20;

ArchiveLimits small_limits() {
  ArchiveLimits l;
  l.max_decoder_bytes = kDecoderBytes;
  l.max_depth = 3;
  l.max_members = 200;
  l.max_member_bytes = 1 << 20;
  l.max_total_bytes = 8 << 20;
  l.max_millis = 2000;
  return l;  // max_ratio: the default (100)
}

ArchiveLimits tiny_limits() {
  ArchiveLimits l;
  l.max_decoder_bytes = kDecoderBytes;
  l.max_depth = 2;
  l.max_members = 8;
  l.max_member_bytes = 512;
  l.max_total_bytes = 16 << 10;
  l.max_ratio = 4;
  l.max_millis = 2000;
  return l;
}

// SLUICE_FUZZ_LAST=FILE: every input is written to FILE before it runs, for a crash that takes the
// process down before libFuzzer can save the input (a smashed stack inside libarchive).
void save_last(const uint8_t* data, std::size_t size) {
  static const char* path = std::getenv("SLUICE_FUZZ_LAST");
  if (path == nullptr) return;
  if (std::FILE* f = std::fopen(path, "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  save_last(data, size);
  // One explorer per limits, kept across inputs as a worker keeps its own: buffers are reused.
  static const ArchiveLimits small = small_limits(), tiny = tiny_limits();
  static ArchiveExplorer small_explorer(small), tiny_explorer(tiny);
  run(small_explorer, small, data, size);
  run(tiny_explorer, tiny, data, size);
  return 0;
}
