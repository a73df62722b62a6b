#include "pipeline/file_type.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace sluice::pipeline {

namespace {

using namespace std::literals;

constexpr std::array<std::string_view, kFileTypeCount> kNames = {
    "unknown", "text",  "pe",   "elf",  "macho", "class", "ole2", "doc",  "xls",  "ppt",
    "msi",     "msg",   "docx", "docm", "xlsx",  "xlsm",  "pptx", "pptm", "odt",  "ods",
    "odp",     "odg",   "pdf",  "rtf",  "zip",   "jar",   "apk",  "rar4", "rar5", "7z",
    "gzip",    "bzip2", "xz",   "zstd", "tar",   "cab",   "iso",  "cpio", "arj",  "lzh",
    "lnk",     "chm",   "one",  "tnef", "javascript", "vbscript", "powershell", "batch", "hta",
    "html",    "svg",   "png",  "jpeg", "gif",   "bmp",   "tiff", "webp", "ico",
};
static_assert(kNames.back() == "ico", "one name per FileType, in enum order");

uint16_t le16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) noexcept {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
uint16_t be16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) noexcept {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

uint8_t lower(uint8_t c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<uint8_t>(c + 32) : c; }

// `magic` (bytes, NULs included) at offset `at` of the first `n` bytes of `h`.
bool has(const uint8_t* h, std::size_t n, std::size_t at, std::string_view magic) noexcept {
  return at <= n && magic.size() <= n - at && std::memcmp(h + at, magic.data(), magic.size()) == 0;
}

bool is_ident(uint8_t c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$';
}
bool is_space(uint8_t c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f'; }

std::size_t find(const uint8_t* t, std::size_t n, std::string_view needle, std::size_t from = 0) noexcept {
  if (from >= n) return std::string_view::npos;
  const void* p = memmem(t + from, n - from, needle.data(), needle.size());
  return p == nullptr ? std::string_view::npos : static_cast<std::size_t>(static_cast<const uint8_t*>(p) - t);
}

// ---------------------------------------------------------------------------------------------
// Binary formats recognised at the start of the file (and tar, ISO at their fixed offsets).

// MZ whose e_lfanew points at a PE (or NE/LE/LX) signature inside the head.
bool pe_header(const uint8_t* h, std::size_t n) noexcept {
  if (n < 64) return false;
  const uint32_t lfanew = le32(h + 0x3c);
  if (lfanew < 4 || lfanew > n - 4) return false;  // clam-mew.exe has it at 0x0c, inside the DOS header
  const uint8_t* s = h + lfanew;
  return has(s, 4, 0, "PE\0\0"sv) || has(s, 2, 0, "NE"sv) || has(s, 2, 0, "LE"sv) || has(s, 2, 0, "LX"sv);
}

FileType macho_or_class(const uint8_t* h, std::size_t n) noexcept {
  if (n < 8) return FileType::unknown;
  const uint32_t magic = be32(h);
  if (magic == 0xFEEDFACE || magic == 0xCEFAEDFE || magic == 0xFEEDFACF || magic == 0xCFFAEDFE)
    return n >= 28 ? FileType::macho : FileType::unknown;  // mach_header is 28 bytes
  if (magic != 0xCAFEBABE && magic != 0xCAFEBABF) return FileType::unknown;
  // 0xCAFEBABE is also a Java class; the next word is the fat arch count (Apple's loaders never
  // see more than ~20) or the class file's minor << 16 | major (major >= 45), as file(1) splits it.
  const uint32_t narch = be32(h + 4);
  if (narch >= 1 && narch < 20) {
    const std::size_t entry = magic == 0xCAFEBABE ? 20 : 32;  // fat_arch, fat_arch_64
    for (uint32_t i = 0; i < narch && 8 + (i + 1) * entry <= n; ++i) {
      const uint8_t* a = h + 8 + i * entry;
      const uint64_t offset = entry == 20 ? be32(a + 8) : (uint64_t{be32(a + 8)} << 32 | be32(a + 12));
      const uint32_t align = be32(a + entry - (entry == 20 ? 4 : 8));
      if (offset < 8 + narch * entry || align > 31) return FileType::unknown;
    }
    return FileType::macho;
  }
  if (magic == 0xCAFEBABE && be16(h + 6) >= 45) return FileType::javaclass;
  return FileType::unknown;
}

// POSIX ustar / GNU magic at 257, or a pre-POSIX (V7) header whose checksum is right.
bool tar_header(const uint8_t* h, std::size_t n) noexcept {
  if (n < 512) return false;
  if (has(h, n, 257, "ustar\0"sv) || has(h, n, 257, "ustar  \0"sv)) return true;
  if (h[0] == 0) return false;  // V7: a name
  // The checksum field: octal digits, leading spaces, ended by NUL or space.
  std::size_t i = 148;
  while (i < 156 && h[i] == ' ') ++i;
  uint32_t stored = 0;
  std::size_t digits = 0;
  for (; i < 156 && h[i] >= '0' && h[i] <= '7'; ++i, ++digits) stored = stored * 8 + (h[i] - '0');
  if (digits == 0 || (i < 156 && h[i] != 0 && h[i] != ' ')) return false;
  // Mode, uid, gid, size, mtime: octal digits, spaces or NULs only.
  for (std::size_t k = 100; k < 148; ++k)
    if (!((h[k] >= '0' && h[k] <= '7') || h[k] == ' ' || h[k] == 0)) return false;
  uint32_t sum_unsigned = 8 * ' ';
  int32_t sum_signed = 8 * ' ';
  for (std::size_t k = 0; k < 512; ++k) {
    if (k >= 148 && k < 156) continue;
    sum_unsigned += h[k];
    sum_signed += static_cast<int8_t>(h[k]);  // some old tars summed signed chars
  }
  return stored == sum_unsigned || static_cast<int32_t>(stored) == sum_signed;
}

// ISO 9660 (ECMA-119 8.1: "CD001" at byte 1 of the descriptors from sector 16, 2048-byte
// sectors) or a UDF volume recognition sequence (ECMA-167 2/9: BEA01, NSR02/NSR03).
bool iso_image(const uint8_t* h, std::size_t n) noexcept {
  for (std::size_t k = 0; k < 4; ++k) {
    const std::size_t at = 32768 + 2048 * k;
    if (at + 7 > n) return false;
    if (h[at + 6] != 1) continue;  // descriptor version
    if (has(h, n, at + 1, "CD001"sv) || has(h, n, at + 1, "BEA01"sv) || has(h, n, at + 1, "NSR02"sv) ||
        has(h, n, at + 1, "NSR03"sv))
      return true;
  }
  return false;
}

bool all_digits(const uint8_t* p, std::size_t n, bool hex) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const uint8_t c = lower(p[i]);
    if (!((c >= '0' && c <= (hex ? '9' : '7')) || (hex && c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool cpio_header(const uint8_t* h, std::size_t n) noexcept {
  // Old binary format: 26-byte header, magic 070707 in the writer's byte order, name follows.
  if (n >= 26 && ((h[0] == 0xC7 && h[1] == 0x71) || (h[0] == 0x71 && h[1] == 0xC7))) {
    const bool little = h[0] == 0xC7;
    const uint16_t namesize = little ? le16(h + 20) : be16(h + 20);
    return namesize >= 1 && namesize <= 1024 && 26u + namesize <= n && h[26 + namesize - 1] == 0;
  }
  // Portable ASCII (odc, 76 bytes of octal fields) and new ASCII (newc/crc, 110 bytes of hex).
  if (has(h, n, 0, "070707"sv)) return n >= 76 && all_digits(h + 6, 70, false);
  if (has(h, n, 0, "070701"sv) || has(h, n, 0, "070702"sv)) return n >= 110 && all_digits(h + 6, 104, true);
  return false;
}

FileType image_type(const uint8_t* h, std::size_t n) noexcept {
  if (has(h, n, 0, "\x89PNG\r\n\x1a\n"sv)) return FileType::png;
  if (has(h, n, 0, "\xFF\xD8\xFF"sv)) return FileType::jpeg;
  if (has(h, n, 0, "GIF87a"sv) || has(h, n, 0, "GIF89a"sv)) return FileType::gif;
  if (has(h, n, 0, "II*\0"sv) || has(h, n, 0, "MM\0*"sv) || has(h, n, 0, "II+\0"sv) || has(h, n, 0, "MM\0+"sv))
    return FileType::tiff;
  if (has(h, n, 0, "RIFF"sv) && has(h, n, 8, "WEBP"sv)) return FileType::webp;
  if (has(h, n, 0, "BM"sv) && n >= 18) {
    // BITMAPFILEHEADER then a DIB header whose size names its version (core, info, v2-v5).
    switch (le32(h + 14)) {
      case 12: case 16: case 40: case 52: case 56: case 64: case 108: case 124: return FileType::bmp;
      default: break;
    }
  }
  if ((has(h, n, 0, "\0\0\1\0"sv) || has(h, n, 0, "\0\0\2\0"sv)) && n >= 22) {
    // ICONDIR (CUR: type 2) and its first ICONDIRENTRY: reserved byte 0, data after the directory.
    const uint16_t count = le16(h + 4);
    if (count >= 1 && h[6 + 3] == 0 && le32(h + 6 + 12) >= 6u + 16u * count) return FileType::ico;
  }
  return FileType::unknown;
}

FileType magic_at_start(const uint8_t* h, std::size_t n) noexcept {
  if (has(h, n, 0, "\x7F" "ELF"sv) && n >= 6 && (h[4] == 1 || h[4] == 2) && (h[5] == 1 || h[5] == 2))
    return FileType::elf;
  if (const FileType m = macho_or_class(h, n); m != FileType::unknown) return m;
  // Word opens anything starting with "{\rt" as RTF (it does not read "f1"); so do we.
  if (has(h, n, 0, "{\\rt"sv)) return FileType::rtf;
  if (has(h, n, 0, "%PDF-"sv)) return FileType::pdf;
  if (has(h, n, 0, "Rar!\x1A\x07\x01\x00"sv)) return FileType::rar5;
  if (has(h, n, 0, "Rar!\x1A\x07\x00"sv)) return FileType::rar4;
  if (has(h, n, 0, "7z\xBC\xAF\x27\x1C"sv)) return FileType::sevenzip;
  if (has(h, n, 0, "\x1F\x8B\x08"sv) && n >= 10 && (h[3] & 0xE0) == 0) return FileType::gzip;  // RFC 1952
  if (has(h, n, 0, "BZh"sv) && n >= 10 && h[3] >= '1' && h[3] <= '9' &&
      (has(h, n, 4, "\x31\x41\x59\x26\x53\x59"sv) || has(h, n, 4, "\x17\x72\x45\x38\x50\x90"sv)))
    return FileType::bzip2;  // block magic (pi) or end-of-stream magic (sqrt pi) of an empty stream
  if (has(h, n, 0, "\xFD" "7zXZ\0"sv)) return FileType::xz;
  if (has(h, n, 0, "\x28\xB5\x2F\xFD"sv)) return FileType::zstd;
  if (has(h, n, 0, "MSCF\0\0\0\0"sv)) return FileType::cab;
  if (has(h, n, 0, "L\0\0\0\x01\x14\x02\0\0\0\0\0\xC0\0\0\0\0\0\0\x46"sv))
    return FileType::lnk;  // [MS-SHLLINK] 2.1: HeaderSize 0x4C, CLSID 00021401-0000-0000-C000-000000000046
  if (has(h, n, 0, "ITSF"sv) && n >= 8 && (le32(h + 4) == 2 || le32(h + 4) == 3)) return FileType::chm;
  // ARJ: main header id, basic header size (at most 2600), file type 2 (main header).
  if (has(h, n, 0, "\x60\xEA"sv) && n >= 11 && le16(h + 2) != 0 && le16(h + 2) <= 2600 && h[10] == 2)
    return FileType::arj;
  if (cpio_header(h, n)) return FileType::cpio;
  // LHA/LZH: "-lh?-" or "-lz?-" method id at 2, header level 0-3 at 20.
  if (n >= 21 && h[2] == '-' && h[3] == 'l' && (h[4] == 'h' || h[4] == 'z') && h[6] == '-' && h[20] <= 3)
    return FileType::lzh;
  if (has(h, n, 0, "\x78\x9F\x3E\x22"sv)) return FileType::tnef;  // [MS-OXTNEF] 2.1.3.1 0x223E9F78
  // [MS-ONESTORE] 2.3.1: guidFileType {7B5C52E4-D88C-4DA7-AEB1-5378D02996D3} of a .one section.
  if (has(h, n, 0, "\xE4\x52\x5C\x7B\x8C\xD8\xA7\x4D\xAE\xB1\x53\x78\xD0\x29\x96\xD3"sv)) return FileType::onenote;
  return image_type(h, n);
}

// ---------------------------------------------------------------------------------------------
// Text.

// Control bytes text may hold: BEL, BS, HT, LF, VT, FF, CR, SUB (DOS end of file), ESC.
bool text_control(uint32_t c) noexcept { return (c >= 0x07 && c <= 0x0D) || c == 0x1A || c == 0x1B; }

// Valid UTF-8 (RFC 3629: no overlongs, surrogates or code points past U+10FFFF) without NULs or
// other control bytes. A sequence cut by the end of the head is fine when the file goes on.
bool utf8_text(const uint8_t* p, std::size_t n, bool truncated) noexcept {
  constexpr uint64_t kOnes = 0x0101010101010101, kHigh = 0x8080808080808080;
  std::size_t i = 0;
  while (i < n) {
    if (n - i >= 8) {
      // Eight printable ASCII bytes (0x20-0x7E) at once: no high bit, none below 0x20, no DEL.
      uint64_t x;
      std::memcpy(&x, p + i, 8);
      const uint64_t del = x ^ (kOnes * 0x7F);
      if (((x | ((x - kOnes * 0x20) & ~x) | ((del - kOnes) & ~del)) & kHigh) == 0) {
        i += 8;
        continue;
      }
    }
    const uint8_t c = p[i];
    if (c < 0x80) {
      if ((c < 0x20 && !text_control(c)) || c == 0x7F) return false;
      ++i;
      continue;
    }
    std::size_t len;
    uint8_t lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    for (std::size_t k = 1; k < len; ++k) {
      if (i + k >= n) return truncated;
      const uint8_t b = p[i + k];
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return false;
    }
    i += len;
  }
  return true;
}

// UTF-16 after its BOM, checked as utf8_text checks, and rewritten in place as one byte per code
// unit (ASCII kept, anything else 0x80) so that the markup and script rules read it as they read
// UTF-8. Writes never overtake reads (unit i goes to byte i/2 - 1). Returns the new length.
bool utf16_text(uint8_t* h, std::size_t n, bool little, bool truncated, std::size_t* out_len) noexcept {
  if (n % 2 != 0 && !truncated) return false;
  std::size_t j = 0;
  bool want_low = false;
  for (std::size_t i = 2; i + 1 < n; i += 2) {
    const uint32_t u = little ? le16(h + i) : be16(h + i);
    const bool high = u >= 0xD800 && u <= 0xDBFF, low = u >= 0xDC00 && u <= 0xDFFF;
    if (want_low != low) return false;
    want_low = high;
    if ((u < 0x20 && !text_control(u)) || u == 0x7F) return false;
    h[j++] = static_cast<uint8_t>(u < 0x80 ? u : 0x80);
  }
  if (want_low && !truncated) return false;
  *out_len = j;
  return true;
}

// Scripts and markup found anywhere in the head. Each rule is an indicator of one kind, counted
// once however often it occurs. A script language needs a score of 2: two indicators, or one
// strong one. One pass finds them all: the next four lower-cased bytes index a table of the
// indicators that start with them, and each candidate is compared, then its context checked.
enum Kind : uint8_t { kJs, kVbs, kPs, kBat, kHta, kHtmlTag, kKinds };

enum Where : uint8_t {
  kAnywhere,
  kWordStart,   // not preceded by a letter, digit, '_' or '$'
  kLineStart,   // preceded on its line only by spaces, tabs or '@'
  kJsDecl,      // word start, then an identifier, then '=' (not '=='): "var x =", "const y="
  kJsFunction,  // word start, optional name, "(...)", then '{': "function f(a) {", "function(){"
  kVbsDim,      // line start, then an identifier: "Dim x"
  kTagEnd,      // followed by white space, '>' or '/'
};

struct Indicator {
  std::string_view text;  // JavaScript's match case-sensitively, as written; others in any case
  Kind kind;
  uint8_t id;             // indicators sharing an id count once ("var "/"let "/"const ")
  uint8_t weight;
  Where where;
};

constexpr Indicator kIndicators[] = {
    // JavaScript (JScript under Windows Script Host, or browser code). ActiveXObject is the
    // WSH/IE dropper's tell.
    {"ActiveXObject(", kJs, 0, 2, kAnywhere},
    {"eval(", kJs, 1, 1, kWordStart},
    {"function", kJs, 2, 1, kJsFunction},
    {"var ", kJs, 3, 1, kJsDecl},
    {"let ", kJs, 3, 1, kJsDecl},
    {"const ", kJs, 3, 1, kJsDecl},
    {"document.write(", kJs, 4, 1, kAnywhere},
    {"String.fromCharCode(", kJs, 5, 1, kAnywhere},
    {"unescape(", kJs, 6, 1, kWordStart},
    {"atob(", kJs, 6, 1, kWordStart},
    {".charCodeAt(", kJs, 7, 1, kAnywhere},
    {"WScript.", kJs, 8, 1, kWordStart},
    {"window.location", kJs, 9, 1, kWordStart},

    // VBScript.
    {"on error resume next", kVbs, 0, 2, kWordStart},
    {"createobject(", kVbs, 1, 1, kAnywhere},
    {"getobject(", kVbs, 2, 1, kWordStart},
    {"dim ", kVbs, 3, 1, kVbsDim},
    {"end sub", kVbs, 4, 1, kLineStart},
    {"end function", kVbs, 4, 1, kLineStart},
    {"msgbox", kVbs, 5, 1, kWordStart},
    {"wscript.", kVbs, 6, 1, kWordStart},
    {"executeglobal", kVbs, 7, 1, kWordStart},
    {"& chr(", kVbs, 8, 1, kAnywhere},
    {"&chr(", kVbs, 8, 1, kAnywhere},

    // PowerShell.
    {"invoke-expression", kPs, 0, 1, kWordStart},
    {"iex(", kPs, 0, 1, kWordStart},
    {"-encodedcommand", kPs, 1, 1, kAnywhere},
    {"new-object ", kPs, 2, 1, kWordStart},
    {"net.webclient", kPs, 3, 1, kAnywhere},
    {"downloadstring(", kPs, 4, 1, kAnywhere},
    {"downloadfile(", kPs, 4, 1, kAnywhere},
    {"invoke-webrequest", kPs, 5, 1, kWordStart},
    {"start-process", kPs, 6, 1, kWordStart},
    {"-executionpolicy", kPs, 7, 1, kAnywhere},
    {"$env:", kPs, 8, 1, kAnywhere},
    {"[system.", kPs, 9, 1, kAnywhere},
    {"[convert]::", kPs, 10, 1, kAnywhere},
    {"write-host", kPs, 11, 1, kWordStart},
    {"param(", kPs, 12, 1, kLineStart},

    // Batch.
    {"@echo off", kBat, 0, 2, kLineStart},
    {"%~dp0", kBat, 1, 1, kAnywhere},
    {"set /a ", kBat, 2, 1, kLineStart},
    {"set /p ", kBat, 2, 1, kLineStart},
    {"goto ", kBat, 3, 1, kLineStart},
    {"if exist ", kBat, 4, 1, kLineStart},
    {"if not exist ", kBat, 4, 1, kLineStart},
    {"%errorlevel%", kBat, 5, 1, kAnywhere},
    {"cmd /c", kBat, 6, 1, kWordStart},
    {"cmd.exe /c", kBat, 6, 1, kWordStart},
    {"exit /b", kBat, 7, 1, kLineStart},
    {"%temp%", kBat, 8, 1, kAnywhere},
    {"%appdata%", kBat, 8, 1, kAnywhere},
    {"rem ", kBat, 9, 1, kLineStart},

    // HTA: the HTA:APPLICATION element (mshta runs any HTML; this one says it is meant to).
    {"<hta:application", kHta, 0, 1, kAnywhere},
    // HTML tags anywhere (HTML smuggling pages often open with text).
    {"<html", kHtmlTag, 0, 1, kTagEnd},
    {"<body", kHtmlTag, 0, 1, kTagEnd},
    {"<script", kHtmlTag, 0, 1, kTagEnd},
    {"<iframe", kHtmlTag, 0, 1, kTagEnd},
};
constexpr std::size_t kIndicatorCount = std::size(kIndicators);

constexpr std::array<uint8_t, 256> kLower = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) t[c] = static_cast<uint8_t>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return t;
}();

constexpr uint32_t key_of(uint8_t a, uint8_t b, uint8_t c, uint8_t d) noexcept {
  return uint32_t{kLower[a]} | uint32_t{kLower[b]} << 8 | uint32_t{kLower[c]} << 16 | uint32_t{kLower[d]} << 24;
}
constexpr uint32_t bucket_of(uint32_t key) noexcept { return (key * 2654435761u) >> 20; }  // 4096 buckets

struct IndicatorIndex {
  std::array<uint8_t, 4096> first{};               // 1 + index of the bucket's first indicator; 0: none
  std::array<uint8_t, kIndicatorCount> next{};     // 1 + index of the next one in the bucket
  std::array<uint32_t, kIndicatorCount> key{};     // the indicator's first four bytes, lower-cased
};

constexpr IndicatorIndex kIndex = [] {
  IndicatorIndex x{};
  for (std::size_t i = kIndicatorCount; i-- > 0;) {
    const std::string_view s = kIndicators[i].text;
    x.key[i] = key_of(s[0], s[1], s[2], s[3]);
    const uint32_t b = bucket_of(x.key[i]);
    x.next[i] = x.first[b];
    x.first[b] = static_cast<uint8_t>(i + 1);
  }
  return x;
}();
static_assert(kIndicatorCount < 255);
static_assert([] {
  for (const Indicator& ind : kIndicators)
    if (ind.text.size() < 4) return false;
  return true;
}(), "the index reads four bytes of every indicator");

bool word_start(const uint8_t* t, std::size_t at) noexcept { return at == 0 || !is_ident(t[at - 1]); }

bool line_start(const uint8_t* t, std::size_t at) noexcept {
  while (at > 0 && (t[at - 1] == ' ' || t[at - 1] == '\t' || t[at - 1] == '@')) --at;
  return at == 0 || t[at - 1] == '\n' || t[at - 1] == '\r';
}

std::size_t skip_spaces(const uint8_t* t, std::size_t n, std::size_t i) noexcept {
  while (i < n && is_space(t[i])) ++i;
  return i;
}
std::size_t skip_ident(const uint8_t* t, std::size_t n, std::size_t i) noexcept {
  while (i < n && is_ident(t[i])) ++i;
  return i;
}

bool tag_end(const uint8_t* t, std::size_t n, std::size_t at) noexcept {
  return at < n && (is_space(t[at]) || t[at] == '>' || t[at] == '/');
}

// `s` (lower case) at `at`, in any case.
bool has_ci(const uint8_t* t, std::size_t n, std::size_t at, std::string_view s) noexcept {
  if (at > n || s.size() > n - at) return false;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (kLower[t[at + i]] != static_cast<uint8_t>(s[i])) return false;
  return true;
}

bool context_ok(const uint8_t* t, std::size_t n, std::size_t at, const Indicator& ind) noexcept {
  const std::size_t end = at + ind.text.size();
  switch (ind.where) {
    case kAnywhere: return true;
    case kWordStart: return word_start(t, at);
    case kLineStart: return line_start(t, at);
    case kTagEnd: return tag_end(t, n, end);
    case kJsDecl: {
      if (!word_start(t, at)) return false;
      const std::size_t i = skip_spaces(t, n, end), e = skip_ident(t, n, i);
      if (e == i || (t[i] >= '0' && t[i] <= '9')) return false;
      const std::size_t eq = skip_spaces(t, n, e);
      return eq < n && t[eq] == '=' && (eq + 1 >= n || t[eq + 1] != '=');
    }
    case kJsFunction: {
      if (!word_start(t, at)) return false;
      std::size_t i = skip_spaces(t, n, skip_ident(t, n, skip_spaces(t, n, end)));
      if (i >= n || t[i] != '(') return false;
      const std::size_t limit = std::min(n, i + 256);  // a parameter list, not a paragraph
      while (i < limit && t[i] != ')') ++i;
      if (i >= limit) return false;
      i = skip_spaces(t, n, i + 1);
      return i < n && t[i] == '{';
    }
    case kVbsDim: {
      if (!line_start(t, at)) return false;
      const std::size_t i = skip_spaces(t, n, end);
      return i < n && is_ident(t[i]) && !(t[i] >= '0' && t[i] <= '9');
    }
  }
  return false;
}

struct Findings {
  uint32_t found[kKinds] = {};  // indicator ids found, per kind
  uint8_t score[kKinds] = {};
};

// One pass over the text. An indicator whose text matches but whose context does not is given
// up after kMaxTries such places (the context checks read ahead, at most 256 bytes).
Findings find_indicators(const uint8_t* t, std::size_t n) noexcept {
  constexpr uint8_t kMaxTries = 64;
  Findings f;
  if (n < 4) return f;
  uint8_t tries[kIndicatorCount] = {};
  uint32_t key = key_of(t[0], t[1], t[2], t[3]);  // bytes i..i+3, lower-cased, i lowest
  for (std::size_t i = 0;; ++i) {
    // Four positions a step while their buckets are empty (most of any text): twice as fast.
    while (i + 8 <= n) {
      const uint32_t k1 = key >> 8 | uint32_t{kLower[t[i + 4]]} << 24;
      const uint32_t k2 = k1 >> 8 | uint32_t{kLower[t[i + 5]]} << 24;
      const uint32_t k3 = k2 >> 8 | uint32_t{kLower[t[i + 6]]} << 24;
      if ((kIndex.first[bucket_of(key)] | kIndex.first[bucket_of(k1)] | kIndex.first[bucket_of(k2)] |
           kIndex.first[bucket_of(k3)]) != 0)
        break;
      key = k3 >> 8 | uint32_t{kLower[t[i + 7]]} << 24;
      i += 4;
    }
    for (uint8_t k = kIndex.first[bucket_of(key)]; k != 0; k = kIndex.next[k - 1]) {
      const std::size_t x = k - 1u;
      const Indicator& ind = kIndicators[x];
      if (kIndex.key[x] != key || (f.found[ind.kind] & (1u << ind.id)) || tries[x] == kMaxTries) continue;
      const std::string_view s = ind.text;
      if (s.size() > n - i) continue;
      const bool same = ind.kind == kJs ? std::memcmp(t + i, s.data(), s.size()) == 0 : has_ci(t, n, i, s);
      if (!same) continue;
      if (!context_ok(t, n, i, ind)) {
        ++tries[x];
        continue;
      }
      f.found[ind.kind] |= 1u << ind.id;
      f.score[ind.kind] = static_cast<uint8_t>(f.score[ind.kind] + ind.weight);
    }
    if (i + 4 >= n) break;
    key = key >> 8 | uint32_t{kLower[t[i + 4]]} << 24;
  }
  return f;
}

// Whether `<name` followed by a tag end is at `at`, in any case.
bool tag_at(const uint8_t* t, std::size_t n, std::size_t at, std::string_view name) noexcept {
  return at < n && t[at] == '<' && has_ci(t, n, at + 1, name) && tag_end(t, n, at + 1 + name.size());
}

enum class Markup : uint8_t { none, html, svg, wsf };

// The root element of a markup document: the XML declaration, processing instructions, comments
// and the doctype are skipped. "<!doctype html" or an HTML root element (the tags WHATWG MIME
// sniffing looks for at the start, and a few more) is html, "<svg" svg, "<job" or "<package" a
// Windows Script File (its scripts decide).
Markup markup_root(const uint8_t* t, std::size_t n) noexcept {
  static constexpr std::string_view kHtmlRoots[] = {
      "html", "head", "body", "script", "iframe", "h1", "div", "font", "table", "a", "style", "title",
      "b",    "br",   "p",    "meta",   "link",   "form", "img", "span", "center", "noscript", "base"};
  std::size_t i = 0;
  for (int parts = 0; parts < 64; ++parts) {
    i = skip_spaces(t, n, i);
    if (i >= n || t[i] != '<') return Markup::none;
    std::size_t close;
    if (has(t, n, i, "<?"sv)) {
      close = find(t, n, "?>"sv, i + 2);
      i = close == std::string_view::npos ? n : close + 2;
    } else if (has(t, n, i, "<!--"sv)) {
      close = find(t, n, "-->"sv, i + 4);
      i = close == std::string_view::npos ? n : close + 3;
    } else if (has_ci(t, n, i, "<!doctype"sv)) {
      const std::size_t name = skip_spaces(t, n, i + 9);
      if (has_ci(t, n, name, "html"sv) && (name + 4 == n || !is_ident(t[name + 4]))) return Markup::html;
      close = find(t, n, ">"sv, i);
      i = close == std::string_view::npos ? n : close + 1;
    } else {
      if (tag_at(t, n, i, "svg"sv) || tag_at(t, n, i, "svg:svg"sv)) return Markup::svg;
      if (tag_at(t, n, i, "job"sv) || tag_at(t, n, i, "package"sv)) return Markup::wsf;
      for (std::string_view root : kHtmlRoots)
        if (tag_at(t, n, i, root)) return Markup::html;
      return Markup::none;
    }
  }
  return Markup::none;
}

// ---------------------------------------------------------------------------------------------
// Containers.

enum OleFlag : uint8_t {
  kOleRootSeen = 1,
  kOleRootMsg = 2,  // root CLSID {00020D0B-...}: Outlook message
  kOleRootMsi = 4,  // root CLSID {000C1084-...} MSI database, {000C1086-...} MSP patch
  kOleMsgName = 8,  // "__substg1.0_*" or "__properties_version1.0" ([MS-OXMSG] 2.1)
  kOleMsiName = 16, // a stream name starting with U+4840: MSI's encoded table names
};

enum ZipFlag : uint8_t {
  kZipContentTypes = 1,  // [Content_Types].xml (ECMA-376 Part 2, OPC)
  kZipVba = 2,           // */vbaProject.bin
  kZipManifest = 4,      // META-INF/MANIFEST.MF
  kZipAndroid = 8,       // AndroidManifest.xml
  kZipContentTypesStored = 16,  // [Content_Types].xml not compressed (method 0 in its local header)
};

enum ZipPhase : uint8_t { kZipSearch, kZipHeader, kZipName, kZipSkip };

constexpr uint8_t kOle2Magic[] = {0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1};

bool ole_magic(const uint8_t* h, std::size_t n) noexcept {
  return n >= 8 && std::memcmp(h, kOle2Magic, 8) == 0;
}

bool zip_magic(const uint8_t* h, std::size_t n) noexcept {
  // Local header, empty archive (end of central directory), spanned and temporary spanned marker.
  return has(h, n, 0, "PK\3\4"sv) || has(h, n, 0, "PK\5\6"sv) || has(h, n, 0, "PK\7\x08"sv) ||
         has(h, n, 0, "PK00PK\3\4"sv);
}

// A UTF-16LE directory entry name (chars code units) against ASCII, ignoring ASCII case.
bool ole_name_is(const uint8_t* e, std::size_t chars, std::string_view s, bool prefix) noexcept {
  if (prefix ? chars < s.size() : chars != s.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (e[2 * i + 1] != 0 || lower(e[2 * i]) != lower(static_cast<uint8_t>(s[i]))) return false;
  return true;
}

bool name_is(const uint8_t* name, std::size_t n, std::string_view s) noexcept {
  if (n != s.size()) return false;
  for (std::size_t i = 0; i < n; ++i) {
    const uint8_t c = name[i] == '\\' ? '/' : lower(name[i]);  // some zippers write '\'
    if (c != static_cast<uint8_t>(s[i])) return false;
  }
  return true;
}
bool name_starts(const uint8_t* name, std::size_t n, std::string_view s) noexcept {
  return n >= s.size() && name_is(name, s.size(), s);
}
bool name_ends(const uint8_t* name, std::size_t n, std::string_view s) noexcept {
  return n >= s.size() && name_is(name + n - s.size(), s.size(), s);
}

}  // namespace

std::string_view file_type_name(FileType type) noexcept {
  const auto i = static_cast<std::size_t>(type);
  return i < kNames.size() ? kNames[i] : kNames[0];
}

bool is_archive(FileType type) noexcept {
  switch (type) {
    case FileType::zip: case FileType::jar: case FileType::apk: case FileType::rar4: case FileType::rar5:
    case FileType::sevenzip: case FileType::gzip: case FileType::bzip2: case FileType::xz: case FileType::zstd:
    case FileType::tar: case FileType::cab: case FileType::iso: case FileType::cpio: case FileType::lzh:
      return true;
    default:
      return false;
  }
}

bool is_executable(FileType type) noexcept {
  switch (type) {
    case FileType::pe: case FileType::elf: case FileType::macho: case FileType::msi: case FileType::lnk:
    case FileType::jar: case FileType::apk: case FileType::javascript: case FileType::vbscript:
    case FileType::powershell: case FileType::batch: case FileType::hta:
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// FileTypeDetector

FileTypeDetector::FileTypeDetector(std::size_t head_capacity)
    : head_(new uint8_t[std::max(head_capacity, kMinHead)]), cap_(std::max(head_capacity, kMinHead)) {}

void FileTypeDetector::reset() noexcept {
  head_len_ = 0;
  total_ = 0;
  container_ = Container::undecided;
  finished_ = false;
  result_ = FileType::unknown;
  ole_flags_ = 0;
  ole_root_ = FileType::unknown;
  ole_stream_ = FileType::unknown;
  zip_phase_ = kZipSearch;
  zip_sig_ = 0;
  zip_central_ = false;
  zip_hdr_len_ = 0;
  zip_name_len_ = 0;
  zip_name_seen_ = 0;
  zip_skip_ = 0;
  zip_flags_ = 0;
  zip_ooxml_ = FileType::unknown;
}

void FileTypeDetector::feed(const uint8_t* data, std::size_t len) noexcept {
  if (finished_ || len == 0) return;
  const uint64_t offset = total_;
  if (head_len_ < cap_) {
    const std::size_t take = std::min(len, cap_ - head_len_);
    std::memcpy(head_.get() + head_len_, data, take);
    head_len_ += take;
  }
  total_ += len;
  start_containers(data, len, offset);
}

// The container scanners start once the first 8 bytes are known; the zip scanner then reads the
// bytes of earlier feeds again from the head (fewer than 8, all there since cap_ >= kMinHead).
void FileTypeDetector::start_containers(const uint8_t* data, std::size_t len, uint64_t offset) noexcept {
  if (container_ == Container::undecided) {
    if (total_ < 8) return;
    const uint8_t* h = head_.get();
    container_ = ole_magic(h, head_len_) ? Container::ole : zip_magic(h, head_len_) ? Container::zip : Container::none;
    if (container_ == Container::zip && offset > 0) zip_scan(h, static_cast<std::size_t>(offset));
  }
  if (container_ == Container::ole) ole_scan(data, len, offset);
  else if (container_ == Container::zip) zip_scan(data, len);
}

// [MS-CFB] 2.6: directory entries are 128 bytes, in sectors of 512 or 4096 bytes after the
// 512-byte header, so every entry starts at a multiple of 128. Each such block is checked as an
// entry; the fields checked (name length even and <= 64, NUL-terminated name, object type,
// colour) make a block of stream data pass only by construction, and then it only adds a name.
void FileTypeDetector::ole_scan(const uint8_t* p, std::size_t n, uint64_t offset) noexcept {
  constexpr uint64_t kHeader = 512;
  if (offset < kHeader) {
    const std::size_t skip = static_cast<std::size_t>(std::min<uint64_t>(n, kHeader - offset));
    p += skip;
    n -= skip;
    offset += skip;
  }
  while (n != 0) {
    const std::size_t in = static_cast<std::size_t>(offset % 128);
    const std::size_t take = std::min(n, 128 - in);
    if (in < sizeof ole_block_) std::memcpy(ole_block_ + in, p, std::min(take, sizeof ole_block_ - in));
    p += take;
    n -= take;
    offset += take;
    if (offset % 128 == 0) ole_entry();
  }
}

void FileTypeDetector::ole_entry() noexcept {
  const uint8_t* e = ole_block_;
  const std::size_t name_bytes = le16(e + 64);
  const uint8_t type = e[66], colour = e[67];  // 1 storage, 2 stream, 5 root; 0 red, 1 black
  if ((type != 1 && type != 2 && type != 5) || colour > 1) return;
  if (name_bytes < 4 || name_bytes > 64 || name_bytes % 2 != 0) return;
  if (e[name_bytes - 2] != 0 || e[name_bytes - 1] != 0) return;
  const std::size_t chars = name_bytes / 2 - 1;
  if (type == 5) {
    // The first root entry met (the file's own; an embedded file's comes later in most files).
    if (ole_flags_ & kOleRootSeen) return;
    ole_flags_ |= kOleRootSeen;
    const uint8_t* clsid = e + 80;
    static constexpr uint8_t kComTail[12] = {0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x46};  // {x-0000-0000-C000-000000000046}
    static constexpr uint8_t kPptTail[12] = {0x9B, 0x4F, 0xCF, 0x11, 0x86, 0xEA, 0x00, 0xAA, 0x00, 0xB9, 0x29, 0xE8};
    const uint32_t d1 = le32(clsid);
    if (std::memcmp(clsid + 4, kComTail, 12) == 0) {
      switch (d1) {
        case 0x000C1084: case 0x000C1086: ole_flags_ |= kOleRootMsi; break;
        case 0x00020D0B: ole_flags_ |= kOleRootMsg; break;
        case 0x00020906: case 0x00020900: ole_root_ = FileType::doc; break;  // Word 97-2003, Word 6/95
        case 0x00020820: case 0x00020810: ole_root_ = FileType::xls; break;  // Excel 97-2003, Excel 5/95
        default: break;
      }
    } else if ((d1 == 0x64818D10 || d1 == 0x64818D11) && std::memcmp(clsid + 4, kPptTail, 12) == 0) {
      ole_root_ = FileType::ppt;
    }
    return;
  }
  if (le16(e) == 0x4840) ole_flags_ |= kOleMsiName;
  if (ole_name_is(e, chars, "__substg1.0_", true) || ole_name_is(e, chars, "__properties_version1.0", false))
    ole_flags_ |= kOleMsgName;
  if (type == 2 && ole_stream_ == FileType::unknown) {
    if (ole_name_is(e, chars, "WordDocument", false)) ole_stream_ = FileType::doc;
    else if (ole_name_is(e, chars, "Workbook", false) || ole_name_is(e, chars, "Book", false)) ole_stream_ = FileType::xls;
    else if (ole_name_is(e, chars, "PowerPoint Document", false)) ole_stream_ = FileType::ppt;
  }
}

// Zip headers in the stream (APPNOTE 4.3.7 local, 4.3.12 central). After a local header whose
// compressed size is known, the entry's data is skipped (entries stored inside, such as a docx in
// a zip, are not read as ours); otherwise (data descriptor, ZIP64) the scanner searches the next
// "PK\3\4" or "PK\1\2". The central directory repeats every name.
void FileTypeDetector::zip_scan(const uint8_t* p, std::size_t n) noexcept {
  std::size_t i = 0;
  while (i < n) {
    switch (zip_phase_) {
      case kZipSkip: {
        const std::size_t take = static_cast<std::size_t>(std::min<uint64_t>(zip_skip_, n - i));
        i += take;
        zip_skip_ -= take;
        if (zip_skip_ == 0) zip_phase_ = kZipSearch;
        break;
      }
      case kZipSearch: {
        if (zip_sig_ == 0) {
          const void* q = std::memchr(p + i, 'P', n - i);
          if (q == nullptr) return;
          i = static_cast<std::size_t>(static_cast<const uint8_t*>(q) - p) + 1;
          zip_sig_ = 1;
          break;
        }
        const uint8_t b = p[i++];
        const uint8_t restart = b == 'P' ? 1 : 0;
        switch (zip_sig_) {
          case 1: zip_sig_ = b == 'K' ? 2 : restart; break;
          case 2: zip_sig_ = b == 3 ? 3 : b == 1 ? 4 : restart; break;
          default:  // 3: "PK\3", 4: "PK\1"
            if (b == (zip_sig_ == 3 ? 4 : 2)) {
              zip_central_ = zip_sig_ == 4;
              zip_phase_ = kZipHeader;
              zip_hdr_len_ = 0;
              zip_sig_ = 0;
            } else {
              zip_sig_ = restart;
            }
            break;
        }
        break;
      }
      case kZipHeader: {
        const std::size_t size = zip_central_ ? 42 : 26;
        const std::size_t take = std::min(size - zip_hdr_len_, n - i);
        std::memcpy(zip_hdr_ + zip_hdr_len_, p + i, take);
        i += take;
        zip_hdr_len_ = static_cast<uint8_t>(zip_hdr_len_ + take);
        if (zip_hdr_len_ == size) {
          zip_name_len_ = le16(zip_hdr_ + (zip_central_ ? 24 : 22));
          zip_name_seen_ = 0;
          zip_phase_ = kZipName;
          if (zip_name_len_ == 0) zip_entry();
        }
        break;
      }
      case kZipName: {
        const std::size_t take = std::min<std::size_t>(zip_name_len_ - zip_name_seen_, n - i);
        if (zip_name_seen_ < kZipName)
          std::memcpy(zip_name_ + zip_name_seen_, p + i, std::min<std::size_t>(take, kZipName - zip_name_seen_));
        i += take;
        zip_name_seen_ = static_cast<uint16_t>(zip_name_seen_ + take);
        if (zip_name_seen_ == zip_name_len_) zip_entry();
        break;
      }
      default:
        return;
    }
  }
}

void FileTypeDetector::zip_entry() noexcept {
  const std::size_t n = std::min<std::size_t>(zip_name_len_, kZipName);
  const uint8_t* name = zip_name_;
  if (zip_name_len_ <= kZipName) {
    if (name_is(name, n, "[content_types].xml")) {
      zip_flags_ |= kZipContentTypes;
      if (!zip_central_ && le16(zip_hdr_ + 4) == 0) zip_flags_ |= kZipContentTypesStored;
    }
    if (name_ends(name, n, "/vbaproject.bin")) zip_flags_ |= kZipVba;
    if (name_is(name, n, "meta-inf/manifest.mf")) zip_flags_ |= kZipManifest;
    if (name_is(name, n, "androidmanifest.xml")) zip_flags_ |= kZipAndroid;
  }
  if (zip_ooxml_ == FileType::unknown) {
    if (name_starts(name, n, "word/")) zip_ooxml_ = FileType::docx;
    else if (name_starts(name, n, "xl/")) zip_ooxml_ = FileType::xlsx;
    else if (name_starts(name, n, "ppt/")) zip_ooxml_ = FileType::pptx;
  }
  uint64_t skip;
  if (zip_central_) {
    skip = uint64_t{le16(zip_hdr_ + 26)} + le16(zip_hdr_ + 28);  // extra field, comment
  } else {
    const uint16_t flags = le16(zip_hdr_ + 2);
    const uint32_t compressed = le32(zip_hdr_ + 14);
    skip = le16(zip_hdr_ + 24);  // extra field
    if ((flags & 8) == 0 && compressed != 0xFFFFFFFF) skip += compressed;
  }
  zip_skip_ = skip;
  zip_phase_ = skip != 0 ? kZipSkip : kZipSearch;
  zip_sig_ = 0;
}

FileType FileTypeDetector::finish() noexcept {
  if (!finished_) {
    finished_ = true;
    result_ = classify();
  }
  return result_;
}

FileType FileTypeDetector::classify() noexcept {
  const uint8_t* h = head_.get();
  const std::size_t n = head_len_;
  if (n == 0) return FileType::unknown;
  const bool mz = has(h, n, 0, "MZ"sv);
  if (mz && pe_header(h, n)) return FileType::pe;
  if (ole_magic(h, n)) return classify_ole();
  if (zip_magic(h, n)) return classify_zip();
  if (const FileType t = magic_at_start(h, n); t != FileType::unknown) return t;
  if (tar_header(h, n)) return FileType::tar;
  if (iso_image(h, n)) return FileType::iso;
  // Readers accept the PDF header anywhere in the first 1024 bytes (PDF 32000-1 annex H.3 #13).
  if (find(h, std::min<std::size_t>(n, 1024), "%PDF-"sv) != std::string_view::npos) return FileType::pdf;
  if (const FileType t = classify_text(); t != FileType::unknown) return t;
  // An MZ file without a PE header in the head: a DOS program, or a PE whose header lies past the
  // head. Windows runs both; called pe unless it reads as text.
  return mz ? FileType::pe : FileType::unknown;
}

// Outlook items embed documents (their attachments) and an MSI is its own kind; otherwise the
// root CLSID the application wrote, then the first main stream met (a Word file embeds Excel
// sheets as storages holding a "Workbook" stream, and the reverse).
FileType FileTypeDetector::classify_ole() const noexcept {
  if (ole_flags_ & (kOleRootMsg | kOleMsgName)) return FileType::msg;
  if (ole_flags_ & (kOleRootMsi | kOleMsiName)) return FileType::msi;
  if (ole_root_ != FileType::unknown) return ole_root_;
  if (ole_stream_ != FileType::unknown) return ole_stream_;
  return FileType::ole2;
}

FileType FileTypeDetector::classify_zip() const noexcept {
  const uint8_t* h = head_.get();
  const std::size_t n = head_len_;
  // ODF (OASIS ODF 1.2 part 3, 3.3): the first entry is "mimetype", stored, holding the type.
  if (n >= 30 + 8 && has(h, n, 0, "PK\3\4"sv) && le16(h + 8) == 0 && le16(h + 26) == 8 && has(h, n, 30, "mimetype"sv)) {
    const std::size_t data = 30 + 8 + std::size_t{le16(h + 28)};
    const std::size_t size = std::min<std::size_t>(le32(h + 18), 128);
    constexpr std::string_view kOdf = "application/vnd.oasis.opendocument."sv;
    if (data + size <= n && size > kOdf.size() && has(h, n, data, kOdf)) {
      const uint8_t* kind = h + data + kOdf.size();
      const std::size_t left = size - kOdf.size();
      auto is = [&](std::string_view k) { return left >= k.size() && std::memcmp(kind, k.data(), k.size()) == 0; };
      if (is("text")) return FileType::odt;
      if (is("spreadsheet")) return FileType::ods;
      if (is("presentation")) return FileType::odp;
      if (is("graphics")) return FileType::odg;
    }
  }
  if ((zip_flags_ & kZipContentTypes) && zip_ooxml_ != FileType::unknown) {
    // Macro-enabled: a VBA project part, or a macroEnabled content type in a stored
    // [Content_Types].xml inside the head (a deflated one is not inflated).
    bool macro = (zip_flags_ & kZipVba) != 0;
    if (!macro && (zip_flags_ & kZipContentTypesStored))
      macro = find(h, n, "macroEnabled"sv) != std::string_view::npos;
    switch (zip_ooxml_) {
      case FileType::docx: return macro ? FileType::docm : FileType::docx;
      case FileType::xlsx: return macro ? FileType::xlsm : FileType::xlsx;
      default: return macro ? FileType::pptm : FileType::pptx;
    }
  }
  if (zip_flags_ & kZipAndroid) return FileType::apk;
  if (zip_flags_ & kZipManifest) return FileType::jar;
  return FileType::zip;
}

FileType FileTypeDetector::classify_text() noexcept {
  uint8_t* h = head_.get();
  const std::size_t n = head_len_;
  const bool truncated = total_ > head_len_;
  uint8_t* t = h;
  std::size_t tn = n;
  if (n >= 2 && ((h[0] == 0xFF && h[1] == 0xFE) || (h[0] == 0xFE && h[1] == 0xFF))) {
    if (!utf16_text(h, n, h[0] == 0xFF, truncated, &tn)) return FileType::unknown;
  } else {
    if (has(h, n, 0, "\xEF\xBB\xBF"sv)) {
      t += 3;
      tn -= 3;
    }
    if (!utf8_text(t, tn, truncated)) return FileType::unknown;
  }

  const Findings f = find_indicators(t, tn);
  if (f.found[kHta]) return FileType::hta;
  const Markup root = markup_root(t, tn);
  if (root == Markup::html) return FileType::html;
  if (root == Markup::svg) return FileType::svg;
  // Script tags in a page are the page's: HTML tags anywhere win over the script indicators.
  if (root != Markup::wsf && f.found[kHtmlTag]) return FileType::html;
  std::size_t best = kJs;
  for (std::size_t k = kVbs; k <= kBat; ++k)
    if (f.score[k] > f.score[best]) best = k;  // ties: JavaScript, VBScript, PowerShell, batch
  if (f.score[best] >= 2) {
    static constexpr FileType kScriptTypes[] = {FileType::javascript, FileType::vbscript, FileType::powershell,
                                                FileType::batch};
    return kScriptTypes[best];
  }
  return FileType::text;
}

// ---------------------------------------------------------------------------------------------
// Mismatch with the file name and the declared content type.

namespace {

// Families of names and declared types per detected type (lower case, space-separated). A name or
// type listed nowhere is no evidence either way. rar5 shares rar4's family.
struct Family {
  FileType type;
  std::string_view extensions;
  std::string_view content_types;
};

constexpr Family kFamilies[] = {
    {FileType::text,
     "txt text csv tsv log md markdown rst xml json yaml yml ini cfg conf toml properties eml mht mhtml ics vcf "
     "vcs css sql srt nfo diff patch asc pem c h cpp py sh pl rb php java go rs tex lst",
     "message/rfc822 message/global application/json application/xml application/yaml application/x-yaml "
     "application/pgp-signature application/pgp-encrypted application/pgp-keys application/x-sh application/sql "
     "application/x-httpd-php application/x-python"},
    {FileType::html, "html htm xhtml xht shtml", "application/xhtml+xml"},
    {FileType::svg, "svg", "image/svg+xml"},
    {FileType::javascript, "js jse mjs cjs wsf", "application/javascript application/x-javascript application/ecmascript"},
    {FileType::vbscript, "vbs vbe wsf", "application/x-vbscript"},
    {FileType::powershell, "ps1 psm1 psd1", "application/x-powershell"},
    {FileType::batch, "bat cmd", "application/x-bat application/bat application/x-msdos-program"},
    {FileType::hta, "hta", "application/hta"},
    {FileType::pe, "exe dll sys scr cpl ocx com efi drv ax mui xll wll",
     "application/x-msdownload application/x-msdos-program application/x-dosexec application/x-ms-dos-executable "
     "application/vnd.microsoft.portable-executable application/exe application/x-exe application/x-winexe"},
    {FileType::elf, "elf so ko", "application/x-executable application/x-elf application/x-sharedlib application/x-pie-executable"},
    {FileType::macho, "dylib bundle", "application/x-mach-binary"},
    {FileType::javaclass, "class", "application/java-vm application/x-java-class application/java"},
    {FileType::ole2, "pub vsd vss vst mpp mpt",
     "application/x-ole-storage application/cdfv2 application/vnd.ms-office application/x-mspublisher "
     "application/vnd.visio application/vnd.ms-project"},
    {FileType::doc, "doc dot", "application/msword application/vnd.ms-word application/doc application/ms-doc application/x-msword"},
    {FileType::xls, "xls xlt xla",
     "application/vnd.ms-excel application/msexcel application/x-msexcel application/x-ms-excel application/x-excel "
     "application/excel application/xls application/x-xls"},
    {FileType::ppt, "ppt pps pot ppa",
     "application/vnd.ms-powerpoint application/mspowerpoint application/ms-powerpoint application/powerpoint "
     "application/x-mspowerpoint"},
    {FileType::msi, "msi msp",
     "application/x-msi application/x-ms-installer application/x-windows-installer application/msi application/x-msdownload"},
    {FileType::msg, "msg oft", "application/vnd.ms-outlook application/x-msg"},
    {FileType::docx, "docx dotx",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document "
     "application/vnd.openxmlformats-officedocument.wordprocessingml.template"},
    {FileType::docm, "docm dotm", "application/vnd.ms-word.document.macroenabled.12 application/vnd.ms-word.template.macroenabled.12"},
    {FileType::xlsx, "xlsx xltx xlsb",
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet "
     "application/vnd.openxmlformats-officedocument.spreadsheetml.template "
     "application/vnd.ms-excel.sheet.binary.macroenabled.12"},
    {FileType::xlsm, "xlsm xltm xlam xlsb",
     "application/vnd.ms-excel.sheet.macroenabled.12 application/vnd.ms-excel.template.macroenabled.12 "
     "application/vnd.ms-excel.addin.macroenabled.12 application/vnd.ms-excel.sheet.binary.macroenabled.12"},
    {FileType::pptx, "pptx potx ppsx sldx",
     "application/vnd.openxmlformats-officedocument.presentationml.presentation "
     "application/vnd.openxmlformats-officedocument.presentationml.template "
     "application/vnd.openxmlformats-officedocument.presentationml.slideshow "
     "application/vnd.openxmlformats-officedocument.presentationml.slide"},
    {FileType::pptm, "pptm potm ppsm ppam sldm",
     "application/vnd.ms-powerpoint.presentation.macroenabled.12 application/vnd.ms-powerpoint.template.macroenabled.12 "
     "application/vnd.ms-powerpoint.slideshow.macroenabled.12 application/vnd.ms-powerpoint.addin.macroenabled.12 "
     "application/vnd.ms-powerpoint.slide.macroenabled.12"},
    {FileType::odt, "odt ott", "application/vnd.oasis.opendocument.text application/vnd.oasis.opendocument.text-template"},
    {FileType::ods, "ods ots",
     "application/vnd.oasis.opendocument.spreadsheet application/vnd.oasis.opendocument.spreadsheet-template"},
    {FileType::odp, "odp otp",
     "application/vnd.oasis.opendocument.presentation application/vnd.oasis.opendocument.presentation-template"},
    {FileType::odg, "odg otg", "application/vnd.oasis.opendocument.graphics application/vnd.oasis.opendocument.graphics-template"},
    {FileType::pdf, "pdf", "application/pdf application/x-pdf application/acrobat application/vnd.pdf text/pdf text/x-pdf"},
    {FileType::rtf, "rtf", "application/rtf application/x-rtf text/rtf text/richtext"},
    {FileType::zip, "zip zipx epub xps oxps cbz kmz nupkg vsix appx msix whl",
     "application/zip application/x-zip-compressed application/x-zip application/zip-compressed multipart/x-zip"},
    {FileType::jar, "jar war ear", "application/java-archive application/x-java-archive application/x-jar"},
    {FileType::apk, "apk xapk", "application/vnd.android.package-archive"},
    {FileType::rar4, "rar cbr", "application/x-rar-compressed application/vnd.rar application/x-rar"},
    {FileType::sevenzip, "7z", "application/x-7z-compressed"},
    {FileType::gzip, "gz tgz gzip svgz",
     "application/gzip application/x-gzip application/x-gunzip application/gzip-compressed application/x-gzip-compressed "
     "application/x-compressed-tar application/x-tgz"},
    {FileType::bzip2, "bz2 tbz tbz2", "application/x-bzip2 application/x-bzip application/x-bzip-compressed-tar"},
    {FileType::xz, "xz txz", "application/x-xz application/x-xz-compressed-tar"},
    {FileType::zstd, "zst tzst", "application/zstd application/x-zstd"},
    {FileType::tar, "tar", "application/x-tar application/x-gtar application/x-ustar"},
    {FileType::cab, "cab", "application/vnd.ms-cab-compressed application/x-cab-compressed"},
    {FileType::iso, "iso img udf", "application/x-iso9660-image application/x-cd-image application/x-raw-disk-image"},
    {FileType::cpio, "cpio", "application/x-cpio"},
    {FileType::arj, "arj", "application/x-arj application/arj"},
    {FileType::lzh, "lzh lha", "application/x-lzh application/x-lha application/x-lzh-compressed"},
    {FileType::lnk, "lnk", "application/x-ms-shortcut"},
    {FileType::chm, "chm", "application/vnd.ms-htmlhelp application/x-chm"},
    {FileType::onenote, "one", "application/onenote application/msonenote"},
    {FileType::tnef, "tnef", "application/ms-tnef application/vnd.ms-tnef"},
    {FileType::png, "png apng", "image/png image/x-png image/apng"},
    {FileType::jpeg, "jpg jpeg jpe jfif pjpeg pjp", "image/jpeg image/pjpeg image/jpg"},
    {FileType::gif, "gif", "image/gif"},
    {FileType::bmp, "bmp dib", "image/bmp image/x-bmp image/x-ms-bmp image/x-windows-bmp"},
    {FileType::tiff, "tif tiff dng nef cr2 arw", "image/tiff image/x-tiff"},
    {FileType::webp, "webp", "image/webp"},
    {FileType::ico, "ico cur", "image/x-icon image/vnd.microsoft.icon image/ico image/icon"},
};

enum class Group : uint8_t { none, text, image, zip_document, ole_subtype };

Group group_of(FileType t) noexcept {
  switch (t) {
    case FileType::text: case FileType::html: case FileType::svg: case FileType::javascript: case FileType::vbscript:
    case FileType::powershell: case FileType::batch: case FileType::hta:
      return Group::text;
    case FileType::png: case FileType::jpeg: case FileType::gif: case FileType::bmp: case FileType::tiff:
    case FileType::webp: case FileType::ico:
      return Group::image;
    case FileType::docx: case FileType::docm: case FileType::xlsx: case FileType::xlsm: case FileType::pptx:
    case FileType::pptm: case FileType::odt: case FileType::ods: case FileType::odp: case FileType::odg:
    case FileType::jar: case FileType::apk:
      return Group::zip_document;
    case FileType::doc: case FileType::xls: case FileType::ppt: case FileType::msi: case FileType::msg:
      return Group::ole_subtype;
    default:
      return Group::none;
  }
}

// Whether a name (or, with `declared_type`, a content type) of `family` fits a `detected` file.
bool fits(FileType detected, FileType family, bool declared_type) noexcept {
  if (detected == FileType::rar5) detected = FileType::rar4;
  if (family == detected) return true;
  const Group gd = group_of(detected), gf = group_of(family);
  if (gd == gf && (gd == Group::text || gd == Group::image)) return true;
  if (gd == Group::zip_document && family == FileType::zip) return true;  // a docx is a zip
  if (detected == FileType::ole2 && gf == Group::ole_subtype) return true;
  if (gd == Group::ole_subtype && family == FileType::ole2 && declared_type) return true;  // "vnd.ms-office"
  return false;
}

bool in_list(std::string_view list, std::string_view word) noexcept {
  while (!list.empty()) {
    const std::size_t sp = list.find(' ');
    if (list.substr(0, sp) == word) return true;
    if (sp == std::string_view::npos) break;
    list.remove_prefix(sp + 1);
  }
  return false;
}

// Lower-cases `s` into `buf`; empty when it does not fit.
std::string_view lowered(std::string_view s, char* buf, std::size_t size) noexcept {
  if (s.size() > size) return {};
  for (std::size_t i = 0; i < s.size(); ++i) buf[i] = static_cast<char>(lower(static_cast<uint8_t>(s[i])));
  return {buf, s.size()};
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// 0: not claimed by any family; 1: claimed and fits; 2: claimed, does not fit.
int judge(FileType detected, std::string_view word, bool declared_type) noexcept {
  bool claimed = false;
  for (const Family& f : kFamilies) {
    if (!in_list(declared_type ? f.content_types : f.extensions, word)) continue;
    claimed = true;
    if (fits(detected, f.type, declared_type)) return 1;
  }
  if (!claimed && declared_type) {
    // Any text/* is a text type; any image/* a raster image.
    if (word.starts_with("text/")) return fits(detected, FileType::text, true) ? 1 : 2;
    if (word.starts_with("image/")) return fits(detected, FileType::png, true) ? 1 : 2;
  }
  return claimed ? 2 : 0;
}

}  // namespace

uint8_t type_mismatch(FileType detected, std::string_view filename, std::string_view content_type) noexcept {
  if (detected == FileType::unknown) return kMismatchNone;
  uint8_t result = kMismatchNone;

  // Extension: after the last path separator; Windows drops trailing dots and spaces.
  const std::size_t slash = filename.find_last_of("/\\");
  if (slash != std::string_view::npos) filename.remove_prefix(slash + 1);
  while (!filename.empty() && (filename.back() == '.' || filename.back() == ' ')) filename.remove_suffix(1);
  const std::size_t dot = filename.rfind('.');
  if (dot != std::string_view::npos && dot != 0) {
    char buf[16];
    const std::string_view ext = lowered(filename.substr(dot + 1), buf, sizeof buf);
    if (!ext.empty() && judge(detected, ext, false) == 2) result |= kMismatchExtension;
  }

  // Content type: "type/subtype; parameters".
  const std::string_view declared = trim(content_type.substr(0, content_type.find(';')));
  char buf[128];
  const std::string_view type = lowered(declared, buf, sizeof buf);
  if (!type.empty() && judge(detected, type, true) == 2) result |= kMismatchContentType;
  return result;
}

}  // namespace sluice::pipeline
