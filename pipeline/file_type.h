// What a file is, from its bytes: content-based type detection of attachments, independent of
// the file name and of the declared MIME type, and the comparison of the detected type with both.
//
// FileTypeDetector reads a file as a stream of chunks split anywhere. It keeps the first
// `head_capacity` bytes (the only allocation, made at construction) and two small scanners that
// run over the whole stream: one over the 128-byte-aligned blocks of an OLE2 compound file
// (directory entries: stream names and the root CLSID, wherever the directory lies), one over the
// local and central headers of a zip (entry names, wherever they lie). finish() classifies. The
// rules, in the order they are tried, are in file_type.cpp and pipeline/NOTES.md; the result is
// the same however the stream was split. No allocation and no exceptions after construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace sluice::pipeline {

// Values are stable (events and counters index by them); new types go at the end.
enum class FileType : uint8_t {
  unknown = 0,
  text,        // UTF-8 / ASCII (or UTF-16 with a BOM) without NULs or stray control bytes
  pe,          // MZ + PE/NE/LE/LX header; also a binary MZ whose new header is missing
  elf,
  macho,       // thin 32/64-bit either endian, fat/universal (0xCAFEBABE with 1-19 archs)
  javaclass,   // 0xCAFEBABE with a class-file major version
  ole2,        // compound file not refined below
  doc,
  xls,
  ppt,
  msi,         // also MSP (patch)
  msg,         // Outlook item
  docx,
  docm,
  xlsx,        // also .xlsb without a VBA project
  xlsm,
  pptx,
  pptm,
  odt,
  ods,
  odp,
  odg,
  pdf,
  rtf,
  zip,
  jar,
  apk,
  rar4,
  rar5,
  sevenzip,
  gzip,
  bzip2,
  xz,
  zstd,
  tar,
  cab,
  iso,         // ISO 9660, and UDF volume recognition sequences
  cpio,
  arj,
  lzh,
  lnk,
  chm,
  onenote,
  tnef,        // winmail.dat
  javascript,
  vbscript,
  powershell,
  batch,
  hta,
  html,
  svg,
  png,
  jpeg,
  gif,
  bmp,
  tiff,
  webp,
  ico,         // also CUR
};
inline constexpr std::size_t kFileTypeCount = static_cast<std::size_t>(FileType::ico) + 1;

// Stable lower-case names used in JSON events ("7z" for sevenzip, "class" for javaclass, "one"
// for onenote); "unknown" for out-of-range values.
std::string_view file_type_name(FileType type) noexcept;
// Types the archive extractor unpacks (libarchive reads them): zip, jar, apk, rar4, rar5, 7z,
// gzip, bzip2, xz, zstd, tar, cab, iso, cpio, lzh. Not OOXML/ODF documents, not arj (libarchive
// has no ARJ reader).
bool is_archive(FileType type) noexcept;
// Runs when opened on some platform: pe, elf, macho, msi, lnk, jar, apk and the scripts
// (javascript, vbscript, powershell, batch, hta).
bool is_executable(FileType type) noexcept;

class FileTypeDetector {
 public:
  static constexpr std::size_t kDefaultHead = 64 * 1024;  // covers ISO 9660's descriptor at 32769
  static constexpr std::size_t kMinHead = 4 * 1024;       // smaller capacities are raised to this

  explicit FileTypeDetector(std::size_t head_capacity = kDefaultHead);  // the only allocation
  FileTypeDetector(const FileTypeDetector&) = delete;
  FileTypeDetector& operator=(const FileTypeDetector&) = delete;

  // Forgets the previous file.
  void reset() noexcept;
  // The next chunk of the file; any split. Ignored after finish() until reset().
  void feed(const uint8_t* data, std::size_t len) noexcept;
  // End of the file: its type. Calling it again returns the same type.
  FileType finish() noexcept;

 private:
  void start_containers(const uint8_t* data, std::size_t len, uint64_t offset) noexcept;
  void ole_scan(const uint8_t* p, std::size_t n, uint64_t offset) noexcept;
  void ole_entry() noexcept;
  void zip_scan(const uint8_t* p, std::size_t n) noexcept;
  void zip_entry() noexcept;
  FileType classify() noexcept;
  FileType classify_ole() const noexcept;
  FileType classify_zip() const noexcept;
  FileType classify_text() noexcept;

  std::unique_ptr<uint8_t[]> head_;
  std::size_t cap_;
  std::size_t head_len_ = 0;
  uint64_t total_ = 0;
  enum class Container : uint8_t { undecided, none, ole, zip };
  Container container_ = Container::undecided;
  bool finished_ = false;
  FileType result_ = FileType::unknown;

  // OLE2: bytes 0-95 of the current 128-byte block (name, name length, type, colour, siblings,
  // child, CLSID); what the directory entries seen so far said.
  uint8_t ole_block_[96];
  uint8_t ole_flags_ = 0;
  FileType ole_root_ = FileType::unknown;    // from the first root entry's CLSID
  FileType ole_stream_ = FileType::unknown;  // from the first main stream name met

  // ZIP: phase, signature bytes matched, the fixed header after the signature, the entry name
  // (first kZipName bytes), bytes to skip; what the entry names seen so far said.
  static constexpr std::size_t kZipName = 64;  // longest name compared is 30 bytes
  uint8_t zip_phase_ = 0;
  uint8_t zip_sig_ = 0;
  bool zip_central_ = false;
  uint8_t zip_hdr_len_ = 0;
  uint8_t zip_hdr_[42];
  uint16_t zip_name_len_ = 0;   // declared
  uint16_t zip_name_seen_ = 0;  // read so far
  uint8_t zip_name_[kZipName];
  uint64_t zip_skip_ = 0;
  uint8_t zip_flags_ = 0;
  FileType zip_ooxml_ = FileType::unknown;  // first of word/ xl/ ppt/ met
};

// Bits of type_mismatch().
enum TypeMismatch : uint8_t { kMismatchNone = 0, kMismatchExtension = 1, kMismatchContentType = 2 };

// Compares the detected type with the file name's extension (case-insensitive; the last dot after
// the last path separator, trailing dots and spaces dropped as Windows drops them) and with the
// declared MIME content type (parameters and case ignored). An unknown detected type, no
// extension, an extension or content type no type claims (.bin, .dat, application/octet-stream,
// empty) are never a mismatch. Related types are not mismatches of each other: the text types
// (text, html, svg, scripts), the raster images, a zip-based document and zip, an OLE2 subtype and
// generic OLE2 content types. Everything else is: a docx named .doc, an RTF named .doc, a PE named
// .pdf, a zip named .docx. The tables are in file_type.cpp.
uint8_t type_mismatch(FileType detected, std::string_view filename, std::string_view content_type) noexcept;

}  // namespace sluice::pipeline
