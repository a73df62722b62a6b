// libFuzzer target: FileTypeDetector on arbitrary file content, fed whole and then in pieces whose
// sizes come from the input's first byte, with the default head (64 KiB) and the smallest (4 KiB).
// Aborts when the pieces give another type than the whole (split invariance), when finish() says
// something else the second time or after a feed that must be ignored, and on a file_type_name()
// that is empty or "unknown" for a known type. Then type_mismatch() for the detected type and for
// every other value, with a file name and a declared content type cut from the input (lengths in
// its bytes 1 and 2): a result outside the two bits, a mismatch for an unknown type, or a result
// that changes when the ASCII case of the name and type is swapped, a directory is put before the
// name or a parameter after the type (all three are ignored by contract) aborts too.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "pipeline/file_type.h"

using namespace sluice::pipeline;

namespace {

[[noreturn]] void violated(const char* what, FileType a, FileType b) {
  std::fprintf(stderr, "invariant violated: %s (%s / %s)\n", what, std::string(file_type_name(a)).c_str(),
               std::string(file_type_name(b)).c_str());
  std::abort();
}

FileType whole(FileTypeDetector& d, const uint8_t* data, std::size_t size) {
  d.reset();
  d.feed(data, size);
  const FileType t = d.finish();
  if (d.finish() != t) violated("finish() changed its answer", t, d.finish());
  d.feed(data, size);  // ignored after finish()
  if (d.finish() != t) violated("a feed after finish() changed the type", t, d.finish());
  return t;
}

// Pieces of 1..7, 1..97 or 1..4099 bytes, or two pieces, by `seed`; empty feeds in between.
FileType pieces(FileTypeDetector& d, const uint8_t* data, std::size_t size, unsigned seed) {
  d.reset();
  static constexpr std::size_t kMax[] = {7, 97, 4099};
  uint32_t x = seed * 2654435761u + 1;
  std::size_t off = 0;
  if ((seed & 3) == 3) {
    const std::size_t cut = size == 0 ? 0 : (seed >> 2) * 7919u % (size + 1);
    d.feed(data, cut);
    off = cut;
  }
  while (off < size) {
    x = x * 1103515245u + 12345u;
    if ((x >> 28) == 0) d.feed(data + off, 0);
    const std::size_t n = std::min<std::size_t>(size - off, 1 + (x >> 8) % kMax[(seed & 3) % 3]);
    d.feed(data + off, n);
    off += n;
  }
  return d.finish();
}

std::string swap_case(std::string_view s) {
  std::string r(s);
  for (char& c : r) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    else if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return r;
}

void check_mismatch(FileType t, std::string_view name, std::string_view type) {
  const uint8_t m = type_mismatch(t, name, type);
  if (m & ~(kMismatchExtension | kMismatchContentType)) violated("type_mismatch() bits outside the two", t, t);
  if (t == FileType::unknown && m != kMismatchNone) violated("mismatch for an unknown type", t, t);
  if (type_mismatch(t, swap_case(name), swap_case(type)) != m) violated("type_mismatch() depends on case", t, t);
  if (type_mismatch(t, "dir/" + std::string(name), type) != m)
    violated("type_mismatch() depends on the directory", t, t);
  if (type_mismatch(t, name, std::string(type) + "; name=\"x.exe\"") != m)
    violated("type_mismatch() depends on a parameter", t, t);
}

void check_name(FileType t) {
  const std::string_view n = file_type_name(t);
  if (n.empty()) violated("empty file_type_name()", t, t);
  const bool known = static_cast<std::size_t>(t) != 0 && static_cast<std::size_t>(t) < kFileTypeCount;
  if (known == (n == "unknown")) violated("file_type_name() \"unknown\" for a known type or the reverse", t, t);
  (void)is_archive(t);
  (void)is_executable(t);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static FileTypeDetector big;                  // kDefaultHead
  static FileTypeDetector small(0);             // raised to kMinHead
  const unsigned seed = size > 0 ? data[0] : 0;

  const FileType a = whole(big, data, size);
  const FileType b = pieces(big, data, size, seed);
  if (a != b) violated("split invariance broken (64 KiB head)", a, b);
  const FileType c = whole(small, data, size);
  const FileType d = pieces(small, data, size, seed ^ 0x5a);
  if (c != d) violated("split invariance broken (4 KiB head)", c, d);
  if (std::getenv("SLUICE_FUZZ_PRINT") != nullptr)
    std::fprintf(stderr, "type %s (4 KiB head: %s)\n", std::string(file_type_name(a)).c_str(),
                 std::string(file_type_name(c)).c_str());

  // A name and a declared type from the first bytes (they are part of the content too).
  const std::size_t name_len = size > 1 ? data[1] % 48 : 0, type_len = size > 2 ? data[2] % 160 : 0;
  const std::size_t name_at = std::min<std::size_t>(size, 3), type_at = std::min(size, name_at + name_len);
  const std::string_view name(reinterpret_cast<const char*>(data) + name_at, std::min(name_len, size - name_at));
  const std::string_view type(reinterpret_cast<const char*>(data) + type_at, std::min(type_len, size - type_at));
  check_name(a);
  check_name(c);
  check_mismatch(a, name, type);
  for (std::size_t t = 0; t <= kFileTypeCount; ++t) {  // every type, and one past the last
    check_name(static_cast<FileType>(t));
    check_mismatch(static_cast<FileType>(t), name, type);
  }
  return 0;
}
