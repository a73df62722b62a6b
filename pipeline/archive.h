// Members of an archive attachment, recursively, within limits (zip bombs, deep nesting, time,
// decoder memory). The caller buffers the whole attachment and hands it to
// ArchiveExplorer::explore(); every regular-file member is read whole into a buffer the explorer
// owns and given to the visitor, which hashes and types it and answers whether that member is
// itself an archive to explore.
//
// Reading is libarchive's, from memory. Formats: zip, 7z, rar 4, rar5, tar (all variants), cpio,
// cab, iso9660, ar, lha. Compressed streams (gzip, bzip2, xz, lzma, lzip, zstd, compress) are told
// by their magic and one layer is decompressed per level: what it holds is read as a tar, cpio or
// ar archive (tar.gz is one archive), else it is one member named after the gzip header's original
// name, else "data", explored at the next level when the visitor asks (a zip or an xz inside a
// gzip). Zip is read through libarchive's seekable reader whenever the end of central directory
// record is found (the central directory decides which members exist, as for unzip and Windows;
// libarchive still takes names from the local headers); without it (truncated, streamed) the
// streaming reader walks the local headers. Not read: ARJ, ACE, zip implode and deflate64,
// encrypted data (reported as such).
//
// Nothing reads as scanned whole by accident: a container is believed only when it accounts for
// its bytes. A compressed stream whose content the tar/cpio/ar reader ends early is evaluated as
// its decompressed stream when that reader gave no entry (libarchive takes a stream that starts
// with zero bytes for an empty tar) and is extraction_failed when it gave entries; data after the
// end of a tar/cpio/ar archive or of a compressed stream that is not zero padding, an archive
// without an entry that is not an empty archive's exact form, and a zip whose central directory
// declares more entries than were read are extraction_failed. Decoder memory that an archive's
// headers declare (archive_memory.h: LZMA/LZMA2/xz dictionaries, PPMd models, zstd windows, 7z
// tables) is checked before libarchive reads past the headers; over max_decoder_bytes, counted
// over the levels open at once, the container is not read: limit_exceeded, counted in
// ArchiveResult::memory_refused.
//
// Budgets are for the whole tree of one explore() call: members, expanded bytes, expansion ratio
// against the attachment's size and wall time are shared by every level; a global budget that runs
// out stops the walk (the member being read is reported with what was read). max_member_bytes only
// cuts that member: its tail is still decompressed (counted against the global budgets, not kept)
// so that the next member can be reached, and the walk goes on. Every byte libarchive decompresses
// for a member, and the rest of a compressed stream after its archive ends, goes through the
// explorer's checks: no member data is skipped inside libarchive.
#pragma once

#include <locale.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

struct archive;

namespace sluice::pipeline {

// Every limit of one explore() call; each default is written here only.
struct ArchiveLimits {
  uint32_t max_depth = 5;                     // nesting levels below the attachment (its members are depth 1)
  uint32_t max_members = 1000;                // regular-file members in the whole tree
  uint64_t max_member_bytes = 64ull << 20;    // bytes kept of one member (also the largest buffer)
  uint64_t max_total_bytes = 256ull << 20;    // bytes expanded in the whole tree
  uint32_t max_ratio = 100;                   // expanded bytes / attachment size (bombs), checked per block
  uint32_t max_millis = 10000;                // wall time of the whole tree, checked per block and header
  uint64_t max_decoder_bytes = 128ull << 20;  // decoder memory the headers declare (dictionaries,
                                              // models), summed over the levels open at once: xz -9
                                              // and 7-Zip's ultra preset use 64 MiB, zstd --ultra 128
};

// Why a member or a tree was not read whole. Severity for ArchiveResult::reason, worst first:
// encrypted (nothing inside can ever be scanned, and password-protected archives are a classic way
// to carry malware past a gateway), limit_exceeded (a bomb or a tree too large: an unknown part was
// never read), extraction_failed (corrupt or unsupported data: often a benign truncation).
// `overload` is never produced here: the attachment hand-off uses it for a file that back-pressure
// or a full record pool kept from being scanned (pipeline/attachment_handoff.h).
enum class Unscannable : uint8_t { none, encrypted, extraction_failed, limit_exceeded, overload };
std::string_view unscannable_name(Unscannable reason) noexcept;  // "" for none

struct ArchiveMember {
  std::string_view path;  // as stored, UTF-8 (invalid sequences become U+FFFD), at most 1024 bytes
  uint32_t index;         // 0-based, unique in the tree, in visit order (depth first)
  int32_t parent;         // index of the member that contains it, -1 for a member of the attachment
  uint32_t depth;         // 1 for members of the attachment
  uint64_t size;          // bytes read (== the length passed with it)
  bool complete;          // false when cut by a limit or an error, or encrypted
  Unscannable reason;     // why not complete; none when complete
};

class ArchiveVisitor {
 public:
  virtual ~ArchiveVisitor() = default;
  // Called once per regular-file member with its bytes, valid only during the call (an encrypted
  // member comes with no bytes). Directories, symlinks, devices and hard links that carry no data
  // are not members.
  // Returns true when this member is itself an archive to explore (the caller types it).
  virtual bool on_member(const ArchiveMember& m, const uint8_t* data, std::size_t len) = 0;
};

struct ArchiveResult {
  Unscannable reason = Unscannable::none;  // worst reason met in the tree (order above)
  std::string detail;                      // first cause of that reason (a limit that stopped the walk
                                           // wins over one that cut a member): which limit, libarchive's error
  uint32_t members = 0;                    // members given to the visitor
  uint64_t expanded_bytes = 0;             // bytes decompressed from the tree (kept or cut tails)
  uint32_t memory_refused = 0;             // containers not read: their decoders would need more
                                           // than max_decoder_bytes
};

// One per worker thread: the member buffers (one per depth, grown up to max_member_bytes on first
// use, then reused) belong to it. Not thread-safe. During explore() the calling thread runs in the
// C.UTF-8 locale (uselocale, this thread only): libarchive converts names through the locale, and
// in the C locale it has no name to give for a non-ASCII one.
class ArchiveExplorer {
 public:
  explicit ArchiveExplorer(const ArchiveLimits& limits);
  ~ArchiveExplorer();
  ArchiveExplorer(const ArchiveExplorer&) = delete;
  ArchiveExplorer& operator=(const ArchiveExplorer&) = delete;
  // Explores `data`, a whole archive (or compressed stream). Never throws for bad input; an
  // allocation failure ends the walk with extraction_failed.
  ArchiveResult explore(const uint8_t* data, std::size_t len, ArchiveVisitor& visitor);

 private:
  struct Walk;
  struct Entries;
  struct Stream;
  void walk(Walk& w, const uint8_t* data, std::size_t len, uint32_t depth, int32_t parent);
  void walk_archive(Walk& w, const uint8_t* data, std::size_t len, uint32_t depth, int32_t parent);
  void walk_stream(Walk& w, const uint8_t* data, std::size_t len, uint32_t depth, int32_t parent, int filter,
                   bool as_member);
  Entries read_entries(Walk& w, archive* a, const uint8_t* data, std::size_t len, uint32_t depth, int32_t parent);

  ArchiveLimits limits_;
  std::vector<std::vector<uint8_t>> buffers_;  // buffers_[d - 1] holds the member at depth d
  std::string path_;                            // sanitised path of the member being visited
  locale_t utf8_ = nullptr;                     // C.UTF-8; null when the system has none
};

}  // namespace sluice::pipeline
