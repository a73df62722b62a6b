// What decoding an archive or a compressed stream would make libarchive reserve, read from the
// input's own headers before anything is decoded (internal to pipeline/: ArchiveExplorer checks it
// against ArchiveLimits::max_decoder_bytes, `archives.max_dictionary_mb`).
//
// libarchive (and liblzma and its PPMd code under it) allocates what the input declares: an
// LZMA/LZMA2 dictionary, a PPMd model, a 7z BCJ2 sub-stream buffer, 7z header tables sized by
// declared counts. A 230-byte 7z can ask for 4 GiB; neither library lets a caller set a limit
// (libarchive gives liblzma a memory limit of UINT64_MAX). These functions find those sizes the way
// the decoders will: every xz block header through liblzma's own index and block-header decoders,
// the 7z coder properties (decoding an LZMA-coded 7z header, within `limit`), every zip local and
// central directory record that names LZMA, xz or PPMd, every lzip member header, every zstd frame.
//
// Not checked: gzip, bzip2, compress and deflate (fixed, at most about 4 MiB), cab (LZX: 2 MiB),
// lha (64 KiB); rar 4 and rar 5, whose window and PPMd sizes sit in file headers and inside the
// compressed data that this unit does not parse; zstd windows over 128 MiB, which libzstd itself
// refuses ("Frame requires too much memory for decoding", measured with libzstd 1.5.4).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::pipeline {

struct DecoderMemory {
  uint64_t bytes = 0;                  // the most the decoder of this input reserves at one time
  const char* what = "";               // what declares it: "xz dictionary", "7z PPMd model", ...
  const char* unreadable = nullptr;    // set: the headers could not be read far enough to tell why
                                       // (the decoder would fail there too: a damaged input)
};

// .xz: every block of every concatenated stream, found through the streams' indexes.
DecoderMemory xz_memory(const uint8_t* d, std::size_t n) noexcept;
// .lzma ("LZMA alone"): the 13-byte header.
DecoderMemory lzma_alone_memory(const uint8_t* d, std::size_t n) noexcept;
// .lz: every member header ("LZIP" then version 1) anywhere in the input.
DecoderMemory lzip_memory(const uint8_t* d, std::size_t n) noexcept;
// .zst: the window of every frame, frames walked from the start (RFC 8878).
DecoderMemory zstd_memory(const uint8_t* d, std::size_t n) noexcept;
// 7z: the archive at every signature header in the input (libarchive also reads one inside a
// self-extractor). `limit` bounds what this function allocates itself to decode a coded header.
DecoderMemory sevenzip_memory(const uint8_t* d, std::size_t n, uint64_t limit) noexcept;
// zip: every local header and central directory record whose method is LZMA (14), xz (95) or
// PPMd (98), wherever it lies (the seekable reader follows the central directory, the streaming
// one the local headers).
DecoderMemory zip_memory(const uint8_t* d, std::size_t n) noexcept;

}  // namespace sluice::pipeline
