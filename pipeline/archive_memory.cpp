// Decoder memory declared by archive and stream headers (archive_memory.h has the contract).
// Formats: the .xz file format 1.0.4, the .lzma header of the LZMA SDK, lzip's member header
// (lzip manual, "File format"), RFC 8878 (zstd), 7-Zip's 7zFormat.txt, PKWARE APPNOTE 6.3.x with
// the WinZip methods 95 (xz) and 98 (PPMd). Sizes are those libarchive 3.6 hands to its decoders;
// liblzma says how much memory its decoders need for given options (lzma_raw_decoder_memusage).
#include "pipeline/archive_memory.h"

#include <lzma.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string_view>
#include <vector>

namespace sluice::pipeline {
namespace {

uint16_t le16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) noexcept { return le16(p) | static_cast<uint32_t>(le16(p + 2)) << 16; }
uint64_t le64(const uint8_t* p) noexcept { return le32(p) | static_cast<uint64_t>(le32(p + 4)) << 32; }
uint64_t add(uint64_t a, uint64_t b) noexcept { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }  // saturating

// Every offset of `magic` in [d, d + n).
template <class F>
void each_match(const uint8_t* d, std::size_t n, std::string_view magic, F&& f) {
  const uint8_t* p = d;
  while (static_cast<std::size_t>(d + n - p) >= magic.size()) {
    const void* hit = memmem(p, static_cast<std::size_t>(d + n - p), magic.data(), magic.size());
    if (hit == nullptr) return;
    const auto* h = static_cast<const uint8_t*>(hit);
    f(static_cast<std::size_t>(h - d));
    p = h + 1;
  }
}

void keep_larger(DecoderMemory& into, const DecoderMemory& m) noexcept {
  if (m.unreadable != nullptr && into.unreadable == nullptr) into.unreadable = m.unreadable;
  if (m.bytes > into.bytes) {
    into.bytes = m.bytes;
    into.what = m.what;
  }
}

// liblzma's own figure for a raw decoder of one LZMA1 or LZMA2 filter given by its properties;
// 0 when liblzma refuses the properties (the decoder would not be created either).
uint64_t lzma_filter_memory(lzma_vli id, const uint8_t* props, std::size_t size) noexcept {
  lzma_filter chain[2] = {{id, nullptr}, {LZMA_VLI_UNKNOWN, nullptr}};
  if (lzma_properties_decode(&chain[0], nullptr, props, size) != LZMA_OK) return 0;
  const uint64_t m = lzma_raw_decoder_memusage(chain);
  free(chain[0].options);  // allocated by liblzma's default allocator (malloc)
  return m == UINT64_MAX ? 0 : m;
}

// LZMA1 with lc=3 lp=0 pb=2 (lzip's fixed properties) and a dictionary of `dict` bytes.
uint64_t lzma1_dictionary_memory(uint32_t dict) noexcept {
  const uint8_t props[5] = {0x5D,  // (pb * 5 + lp) * 9 + lc
                            static_cast<uint8_t>(dict), static_cast<uint8_t>(dict >> 8),
                            static_cast<uint8_t>(dict >> 16), static_cast<uint8_t>(dict >> 24)};
  return lzma_filter_memory(LZMA_FILTER_LZMA1, props, sizeof props);
}

}  // namespace

// ---- xz ----------------------------------------------------------------------------------------

DecoderMemory xz_memory(const uint8_t* d, std::size_t n) noexcept {
  // liblzma locates every block of every stream from the streams' footers and indexes (the
  // decoder libarchive runs is liblzma's stream decoder: it allocates each block's filters as it
  // reaches the block header). The index is held by this function only; 64 MiB is millions of blocks.
  static constexpr uint64_t kIndexMemory = 64ull << 20;
  DecoderMemory m;
  lzma_stream s = LZMA_STREAM_INIT;
  lzma_index* index = nullptr;
  if (lzma_file_info_decoder(&s, &index, kIndexMemory, n) != LZMA_OK) {
    m.unreadable = "xz: liblzma could not start reading the index";
    return m;
  }
  s.next_in = d;
  s.avail_in = n;
  lzma_ret r;
  for (;;) {
    r = lzma_code(&s, LZMA_FINISH);
    if (r != LZMA_SEEK_NEEDED) break;
    if (s.seek_pos > n) break;
    s.next_in = d + s.seek_pos;
    s.avail_in = n - static_cast<std::size_t>(s.seek_pos);
  }
  lzma_end(&s);
  if (r != LZMA_STREAM_END) {
    if (index != nullptr) lzma_index_end(index, nullptr);
    m.unreadable = r == LZMA_MEMLIMIT_ERROR ? "xz: index too large to check" : "xz: stream index not readable";
    return m;
  }
  lzma_index_iter it;
  lzma_index_iter_init(&it, index);
  while (!lzma_index_iter_next(&it, LZMA_INDEX_ITER_BLOCK)) {
    const uint64_t at = it.block.compressed_file_offset;
    if (at >= n) {
      m.unreadable = "xz: block outside the input";
      break;
    }
    lzma_filter filters[LZMA_FILTERS_MAX + 1];
    lzma_block block{};
    block.version = 1;
    block.check = it.stream.flags->check;
    block.filters = filters;
    block.header_size = lzma_block_header_size_decode(d[at]);
    if (d[at] == 0 || block.header_size > n - at || lzma_block_header_decode(&block, nullptr, d + at) != LZMA_OK) {
      m.unreadable = "xz: block header not readable";
      break;
    }
    const uint64_t need = lzma_raw_decoder_memusage(filters);
    lzma_filters_free(filters, nullptr);
    if (need == UINT64_MAX) {
      m.unreadable = "xz: filter chain not supported";
      break;
    }
    keep_larger(m, {need, "xz dictionary", nullptr});
  }
  lzma_index_end(index, nullptr);
  return m;
}

// ---- lzma alone, lzip ---------------------------------------------------------------------------

DecoderMemory lzma_alone_memory(const uint8_t* d, std::size_t n) noexcept {
  // Properties byte, dictionary size (32 bits LE), uncompressed size (64 bits LE).
  if (n < 13) return {0, "", "lzma: header cut short"};
  return {lzma_filter_memory(LZMA_FILTER_LZMA1, d, 5), "lzma dictionary", nullptr};
}

DecoderMemory lzip_memory(const uint8_t* d, std::size_t n) noexcept {
  // "LZIP", version 1, coded dictionary size: 2^(b & 31) minus (b >> 5) sixteenths of it, 4 KiB
  // to 512 MiB. Every member header anywhere counts: member boundaries are only known from the
  // trailers, and a header inside compressed data costs nothing but a refusal that cannot be cheap.
  DecoderMemory m;
  each_match(d, n, "LZIP\x01", [&](std::size_t at) {
    if (n - at < 6) return;
    const uint8_t b = d[at + 5];
    const unsigned log2 = b & 31;
    if (log2 < 12 || log2 > 29) return;  // libarchive refuses the member
    uint32_t dict = 1u << log2;
    if (log2 > 12) dict -= (dict / 16) * (b >> 5);
    keep_larger(m, {lzma1_dictionary_memory(dict), "lzip dictionary", nullptr});
  });
  return m;
}

// ---- zstd ---------------------------------------------------------------------------------------

DecoderMemory zstd_memory(const uint8_t* d, std::size_t n) noexcept {
  // RFC 8878 3.1.1: frames walked block by block (a block header gives its size), skippable
  // frames by their size. libzstd refuses a window over 2^27 before allocating it
  // (ZSTD_WINDOWLOG_LIMIT_DEFAULT), so such a frame reserves nothing.
  static constexpr uint64_t kLibzstdWindowMax = 1ull << 27;
  DecoderMemory m;
  std::size_t pos = 0;
  while (n - pos >= 4) {
    const uint32_t magic = le32(d + pos);
    if ((magic & 0xFFFFFFF0u) == 0x184D2A50u) {  // skippable frame
      if (n - pos < 8) break;
      const uint64_t size = le32(d + pos + 4);
      if (size > n - pos - 8) break;
      pos += 8 + static_cast<std::size_t>(size);
      continue;
    }
    if (magic != 0xFD2FB528u) break;
    std::size_t p = pos + 4;
    if (p >= n) break;
    const uint8_t fhd = d[p++];
    if ((fhd & 0x08) != 0) break;  // reserved bit: libzstd stops here
    const unsigned fcs_flag = fhd >> 6;
    const bool single = (fhd & 0x20) != 0;
    static constexpr unsigned kDictIdBytes[4] = {0, 1, 2, 4};
    uint64_t window = 0;
    if (!single) {
      if (p >= n) break;
      const uint8_t wd = d[p++];
      const uint64_t base = 1ull << (10 + (wd >> 3));
      window = base + (base / 8) * (wd & 7);
    }
    p += kDictIdBytes[fhd & 3];
    const unsigned fcs_bytes = fcs_flag == 0 ? (single ? 1 : 0) : 1u << fcs_flag;
    if (p > n || fcs_bytes > n - p) break;
    uint64_t fcs = 0;
    for (unsigned i = 0; i < fcs_bytes; ++i) fcs |= static_cast<uint64_t>(d[p + i]) << (8 * i);
    if (fcs_bytes == 2) fcs += 256;
    if (single) window = fcs;
    p += fcs_bytes;
    if (window <= kLibzstdWindowMax) keep_larger(m, {window, "zstd window", nullptr});
    bool last = false;
    while (!last) {
      if (n - p < 3) return m;
      const uint32_t bh = d[p] | d[p + 1] << 8 | d[p + 2] << 16;
      p += 3;
      last = (bh & 1) != 0;
      const unsigned type = (bh >> 1) & 3;
      if (type == 3) return m;  // reserved block type: the frame is corrupt
      const std::size_t size = type == 1 ? 1 : bh >> 3;  // an RLE block holds one byte
      if (size > n - p) return m;
      p += size;
    }
    if ((fhd & 0x04) != 0) p += 4;  // content checksum
    if (p > n) break;
    pos = p;
  }
  return m;
}

// ---- 7z -----------------------------------------------------------------------------------------

namespace {

// 7zFormat.txt property IDs.
enum : uint8_t {
  kEnd = 0x00, kHeader = 0x01, kArchiveProperties = 0x02, kMainStreamsInfo = 0x04, kFilesInfo = 0x05,
  kPackInfo = 0x06, kUnPackInfo = 0x07, kSubStreamsInfo = 0x08, kSize = 0x09, kCRC = 0x0A, kFolder = 0x0B,
  kCodersUnPackSize = 0x0C, kNumUnPackStream = 0x0D, kEncodedHeader = 0x17,
};
// Method IDs (7-Zip's Methods.txt).
constexpr uint64_t kCopy = 0, kLzma2 = 0x21, kLzma = 0x030101, kPpmd = 0x030401, kBcj2 = 0x0303011B,
                   kBzip2 = 0x040202, kAesFirst = 0x06F10000, kAesLast = 0x06F1FFFF;
// libarchive's bound on any count it reads from a 7z header (UMAX_ENTRY).
constexpr uint64_t kMaxCount = 100000000;
// bzip2's decoder at its largest block (900 kB, BZ2_bzDecompressInit without "small").
constexpr uint64_t kBzip2Memory = 4ull << 20;
// What libarchive 3.6 allocates per declared file (struct _7zip_entry and the per-file booleans),
// per substream (size, CRC, defined flag), per folder and per pack stream, rounded up.
constexpr uint64_t kPerFile = 96, kPerSubstream = 16, kPerFolder = 128, kPerPackStream = 32;

// A 7z header being read: bytes, with numbers in 7z's variable-length form.
struct Reader {
  const uint8_t* p;
  std::size_t n;
  std::size_t i = 0;
  bool bad = false;

  uint8_t byte() noexcept {
    if (i >= n) {
      bad = true;
      return 0;
    }
    return p[i++];
  }
  // The first byte's leading one bits say how many bytes follow; its remaining bits are the top.
  uint64_t number() noexcept {
    const uint8_t first = byte();
    uint8_t mask = 0x80;
    uint64_t v = 0;
    for (int k = 0; k < 8; ++k) {
      if ((first & mask) == 0) return v + (static_cast<uint64_t>(first & (mask - 1)) << (8 * k));
      v |= static_cast<uint64_t>(byte()) << (8 * k);
      mask >>= 1;
    }
    return v;
  }
  uint64_t count() noexcept {
    const uint64_t v = number();
    if (v > kMaxCount) bad = true;
    return bad ? 0 : v;
  }
  const uint8_t* take(uint64_t k) noexcept {
    if (k > n - i) {
      bad = true;
      i = n;
      return nullptr;
    }
    const uint8_t* q = p + i;
    i += static_cast<std::size_t>(k);
    return q;
  }
  void digests(uint64_t num) noexcept {
    uint64_t defined = num;
    if (byte() == 0) {  // not all defined: a bit per item
      const uint8_t* bits = take((num + 7) / 8);
      if (bits == nullptr) return;
      defined = 0;
      for (uint64_t j = 0; j < num; ++j) defined += (bits[j / 8] >> (7 - j % 8)) & 1;
    }
    take(4 * defined);
  }
};

struct Coder {
  uint64_t id = 0;
  const uint8_t* props = nullptr;
  std::size_t props_size = 0;
};

struct Folder {
  Coder coders[4];
  unsigned coder_count = 0;
  uint64_t out_streams = 0;
  std::vector<uint64_t> bound_outs;  // out indexes fed into another coder
  std::vector<uint64_t> unpack;      // size of each out stream
  bool digest = false;

  // libarchive's folder_uncompressed_size(): the last out stream no coder takes in.
  uint64_t output_size() const noexcept {
    for (uint64_t k = unpack.size(); k-- > 0;)
      if (std::find(bound_outs.begin(), bound_outs.end(), k) == bound_outs.end()) return unpack[k];
    return 0;
  }
};

struct Streams {
  uint64_t pack_pos = 0;
  uint64_t pack_streams = 0;
  std::vector<uint64_t> pack_sizes;
  std::vector<Folder> folders;
  uint64_t substreams = 0;
};

bool read_folder(Reader& r, Folder& f) {
  const uint64_t coders = r.count();
  if (r.bad || coders == 0 || coders > 4) return false;  // libarchive reads at most 4 coders
  uint64_t in_total = 0, out_total = 0;
  for (uint64_t c = 0; c < coders; ++c) {
    const uint8_t flags = r.byte();
    if ((flags & 0x80) != 0) return false;
    const uint8_t* id = r.take(flags & 0x0F);
    if (id == nullptr) return false;
    Coder& k = f.coders[f.coder_count++];
    for (unsigned b = 0; b < (flags & 0x0Fu); ++b) k.id = k.id << 8 | id[b];
    uint64_t in = 1, out = 1;
    if ((flags & 0x10) != 0) {
      in = r.count();
      out = r.count();
    }
    if ((flags & 0x20) != 0) {
      const uint64_t size = r.count();
      k.props = r.take(size);
      k.props_size = static_cast<std::size_t>(size);
    }
    if (r.bad) return false;
    in_total += in;
    out_total += out;
  }
  if (out_total == 0 || in_total + 1 < out_total) return false;
  f.out_streams = out_total;
  for (uint64_t b = 0; b + 1 < out_total && !r.bad; ++b) {
    r.count();  // in index
    f.bound_outs.push_back(r.count());
  }
  const uint64_t packed = in_total - (out_total - 1);
  if (packed != 1)
    for (uint64_t k = 0; k < packed && !r.bad; ++k) r.count();
  return !r.bad;
}

// libarchive's read_StreamsInfo(), keeping what sizes the decoders.
bool read_streams(Reader& r, Streams& s) {
  uint8_t t = r.byte();
  if (t == kPackInfo) {
    s.pack_pos = r.number();
    s.pack_streams = r.count();
    if (r.bad || s.pack_streams == 0 || r.byte() != kSize) return false;
    for (uint64_t k = 0; k < s.pack_streams && !r.bad; ++k) s.pack_sizes.push_back(r.number());
    t = r.byte();
    if (t == kCRC) {
      r.digests(s.pack_streams);
      t = r.byte();
    }
    if (r.bad || t != kEnd) return false;
    t = r.byte();
  }
  if (t == kUnPackInfo) {
    if (r.byte() != kFolder) return false;
    const uint64_t folders = r.count();
    const uint8_t external = r.byte();  // 1: the folders are in another stream (libarchive: none may be)
    if (external == 1) r.count();
    if (r.bad || external > 1 || (external == 1 && folders != 0)) return false;
    for (uint64_t k = 0; k < folders && !r.bad; ++k) {
      s.folders.emplace_back();
      if (!read_folder(r, s.folders.back())) return false;
    }
    if (r.byte() != kCodersUnPackSize) return false;
    for (Folder& f : s.folders)
      for (uint64_t k = 0; k < f.out_streams && !r.bad; ++k) f.unpack.push_back(r.number());
    t = r.byte();
    if (t == kCRC) {
      const uint64_t num = s.folders.size();
      const bool all = r.byte() != 0;
      const uint8_t* bits = all ? nullptr : r.take((num + 7) / 8);
      for (uint64_t k = 0; k < num && !r.bad; ++k) {
        s.folders[k].digest = all || ((bits[k / 8] >> (7 - k % 8)) & 1) != 0;
        if (s.folders[k].digest) r.take(4);
      }
      t = r.byte();
    }
    if (r.bad || t != kEnd) return false;
    t = r.byte();
  }
  if (t == kSubStreamsInfo) {
    std::vector<uint64_t> per_folder(s.folders.size(), 1);
    t = r.byte();
    if (t == kNumUnPackStream) {
      for (uint64_t& c : per_folder) c = r.count();
      t = r.byte();
    }
    for (uint64_t c : per_folder) s.substreams = add(s.substreams, c);
    if (s.substreams > kMaxCount) return false;  // libarchive refuses before allocating
    if (t == kSize) {
      for (uint64_t c : per_folder)
        for (uint64_t k = 1; k < c && !r.bad; ++k) r.number();
      t = r.byte();
    }
    if (t == kCRC) {
      uint64_t num = 0;
      for (std::size_t k = 0; k < per_folder.size(); ++k)
        if (per_folder[k] != 1 || !s.folders[k].digest) num += per_folder[k];
      r.digests(num);
      t = r.byte();
    }
    if (r.bad || t != kEnd) return false;
    t = r.byte();
  } else {
    s.substreams = s.folders.size();
  }
  return !r.bad && t == kEnd;
}

bool is_aes(uint64_t id) noexcept { return id >= kAesFirst && id <= kAesLast; }

// What libarchive's decoders reserve for one folder: the largest coder (a folder's coders are set
// up one after the other: BCJ2's sub-streams are decoded in turn) plus, for BCJ2, the buffers that
// hold its decoded sub-streams whole (malloc'd at their declared sizes).
DecoderMemory folder_memory(const Folder& f) noexcept {
  DecoderMemory m;
  bool bcj2 = false;
  for (unsigned c = 0; c < f.coder_count; ++c) {
    const Coder& k = f.coders[c];
    if (k.id == kLzma) keep_larger(m, {lzma_filter_memory(LZMA_FILTER_LZMA1, k.props, k.props_size), "7z LZMA dictionary", nullptr});
    else if (k.id == kLzma2) keep_larger(m, {lzma_filter_memory(LZMA_FILTER_LZMA2, k.props, k.props_size), "7z LZMA2 dictionary", nullptr});
    else if (k.id == kPpmd && k.props_size >= 5) keep_larger(m, {le32(k.props + 1), "7z PPMd model", nullptr});
    else if (k.id == kBzip2) keep_larger(m, {kBzip2Memory, "7z bzip2", nullptr});
    else if (k.id == kBcj2) bcj2 = true;
  }
  if (bcj2) {
    uint64_t buffers = 0;
    for (uint64_t size : f.unpack) buffers = add(buffers, size);
    buffers -= std::min(buffers, f.output_size());
    if (buffers > m.bytes) m.what = "7z BCJ2 buffers";
    m.bytes = add(m.bytes, buffers);
  }
  return m;
}

// Decodes the packed header of an encoded 7z header (one LZMA, LZMA2 or copy coder, as 7-Zip
// writes them) into `out`. Null on success, else why not.
const char* decode_header(const uint8_t* base, std::size_t size, const Streams& s, uint64_t limit,
                          std::vector<uint8_t>& out, DecoderMemory& m) {
  const Folder& f = s.folders[0];
  if (f.coder_count != 1 || s.pack_sizes.empty()) return "7z: header coded with a chain this check does not decode";
  const uint64_t at = 32 + s.pack_pos, packed = s.pack_sizes[0];
  if (s.pack_pos > size || at > size || packed > size - at) return "7z: packed header outside the archive";
  const uint64_t unpacked = f.output_size();
  if (unpacked > limit) {
    keep_larger(m, {unpacked, "7z header", nullptr});
    return nullptr;  // over the limit already: not decoded
  }
  const Coder& k = f.coders[0];
  if (k.id == kCopy) {
    if (unpacked > packed) return "7z: stored header cut short";
    out.assign(base + at, base + at + unpacked);
    return nullptr;
  }
  if (k.id != kLzma && k.id != kLzma2) return "7z: header coded with a method this check does not decode";
  lzma_filter chain[2] = {{k.id == kLzma ? LZMA_FILTER_LZMA1 : LZMA_FILTER_LZMA2, nullptr}, {LZMA_VLI_UNKNOWN, nullptr}};
  if (lzma_properties_decode(&chain[0], nullptr, k.props, k.props_size) != LZMA_OK) return "7z: header coder properties not readable";
  const uint64_t need = lzma_raw_decoder_memusage(chain);
  if (need > limit) {  // the figure is already in `m` (folder_memory): not decoded
    free(chain[0].options);
    return nullptr;
  }
  try {
    out.resize(static_cast<std::size_t>(unpacked));
  } catch (const std::bad_alloc&) {
    free(chain[0].options);
    return "7z: no memory to decode the header";
  }
  lzma_stream z = LZMA_STREAM_INIT;
  lzma_ret r = lzma_raw_decoder(&z, chain);
  free(chain[0].options);
  if (r != LZMA_OK) return "7z: header decoder refused";
  z.next_in = base + at;
  z.avail_in = static_cast<std::size_t>(packed);
  z.next_out = out.data();
  z.avail_out = out.size();
  while (z.avail_out != 0) {
    const std::size_t before = z.avail_in + z.avail_out;
    r = lzma_code(&z, LZMA_RUN);
    if (r != LZMA_OK || z.avail_in + z.avail_out == before) break;
  }
  const bool whole = z.avail_out == 0;
  lzma_end(&z);
  return whole ? nullptr : "7z: coded header cut short or corrupt";
}

// One archive whose signature header is at `base` (32 bytes: signature, version, start header
// CRC, next header offset, size and CRC).
DecoderMemory one_sevenzip(const uint8_t* base, std::size_t size, uint64_t limit) {
  DecoderMemory m;
  const uint64_t offset = le64(base + 12), length = le64(base + 20);
  if (length == 0) return m;  // no entry
  if (offset > size || 32 + offset > size || length > size - 32 - offset) return {0, "", "7z: header outside the archive"};
  Reader r{base + 32 + offset, static_cast<std::size_t>(length)};
  std::vector<uint8_t> decoded;
  uint64_t header_bytes = 0;
  uint8_t t = r.byte();
  if (t == kEncodedHeader) {
    Streams hs;
    if (!read_streams(r, hs) || hs.folders.empty()) return {0, "", "7z: encoded header not readable"};
    for (unsigned c = 0; c < hs.folders[0].coder_count; ++c)
      if (is_aes(hs.folders[0].coders[c].id)) return m;  // encrypted: libarchive stops before any decoder
    DecoderMemory coder = folder_memory(hs.folders[0]);
    coder.what = "7z header dictionary";
    keep_larger(m, coder);
    const char* why = decode_header(base, size, hs, limit, decoded, m);
    if (why != nullptr) return {m.bytes, m.what, why};
    if (decoded.empty()) return m;  // over the limit: the figure is enough
    header_bytes = decoded.size();  // libarchive's names buffer may be as large as the header
    r = Reader{decoded.data(), decoded.size()};
    t = r.byte();
  }
  if (t != kHeader) return {m.bytes, m.what, "7z: no header"};
  Streams s;
  t = r.byte();
  if (t == kArchiveProperties) {
    for (;;) {
      if (r.byte() == kEnd || r.bad) break;
      r.take(r.number());
    }
    t = r.byte();
  }
  if (t == kMainStreamsInfo) {
    if (!read_streams(r, s)) return {m.bytes, m.what, "7z: streams info not readable"};
    t = r.byte();
  }
  uint64_t files = 0;
  if (t == kFilesInfo) files = r.count();
  DecoderMemory coders;
  for (const Folder& f : s.folders) keep_larger(coders, folder_memory(f));
  // Live together: the header tables, the names, and the header's decoder or a folder's.
  const uint64_t tables = add(add(files * kPerFile, s.substreams * kPerSubstream),
                             add(s.folders.size() * kPerFolder, s.pack_streams * kPerPackStream));
  const uint64_t decoder = std::max(m.bytes, coders.bytes);
  const char* what = coders.bytes >= m.bytes ? coders.what : m.what;
  if (tables > decoder) what = "7z header tables";
  return {add(add(tables, header_bytes), decoder), *what != '\0' ? what : "7z header tables", nullptr};
}

}  // namespace

DecoderMemory sevenzip_memory(const uint8_t* d, std::size_t n, uint64_t limit) noexcept {
  DecoderMemory m;
  bool any = false;
  try {
    each_match(d, n, "7z\xBC\xAF\x27\x1C", [&](std::size_t at) {
      if (n - at < 32 || lzma_crc32(d + at + 12, 20, 0) != le32(d + at + 8)) return;  // libarchive stops too
      any = true;
      keep_larger(m, one_sevenzip(d + at, n - at, limit));
    });
  } catch (const std::bad_alloc&) {
    m.unreadable = "7z: no memory to read the header";
  }
  if (!any && m.unreadable == nullptr) m.unreadable = "7z: no valid signature header";
  return m;
}

// ---- zip ----------------------------------------------------------------------------------------

namespace {

constexpr uint16_t kZipLzma = 14, kZipZstd = 93, kZipXz = 95, kZipPpmd = 98;

// The data of one entry at `data` (`avail` bytes to the end of the input, `packed` its declared
// compressed size or UINT64_MAX when unknown), read as `method` will be.
DecoderMemory zip_entry_memory(uint16_t method, const uint8_t* data, std::size_t avail, uint64_t packed) noexcept {
  switch (method) {
    case kZipLzma:  // APPNOTE 5.8.8: version (2), properties size (2), LZMA properties (5)
      if (avail < 9) return {};
      return {lzma_filter_memory(LZMA_FILTER_LZMA1, data + 4, 5), "zip LZMA dictionary", nullptr};
    case kZipPpmd: {  // PPMd var. I rev. 1: 16 bits, bits 4-11 are the model size in MiB minus 1
      if (avail < 2) return {};
      const uint16_t v = le16(data);
      return {static_cast<uint64_t>(((v >> 4) & 0xFF) + 1) << 20, "zip PPMd model", nullptr};
    }
    case kZipXz:
      if (packed > avail) return {0, "", "zip: xz member of unknown size"};
      return xz_memory(data, static_cast<std::size_t>(packed));
    case kZipZstd: {
      DecoderMemory m = zstd_memory(data, static_cast<std::size_t>(std::min<uint64_t>(packed, avail)));
      m.what = "zip zstd window";
      return m;
    }
    default:
      return {};
  }
}

// The ZIP64 extended information (APPNOTE 4.5.3) of a local header's extra field: its compressed
// size when the header says 0xFFFFFFFF.
uint64_t zip64_packed(const uint8_t* extra, std::size_t size, uint32_t usize32) noexcept {
  for (std::size_t p = 0; size - p >= 4;) {
    const uint16_t id = le16(extra + p), len = le16(extra + p + 2);
    if (len > size - p - 4) break;
    if (id == 0x0001) {
      const std::size_t csize_at = usize32 == 0xFFFFFFFFu ? 8 : 0;  // uncompressed size first if present
      if (len >= csize_at + 8) return le64(extra + p + 4 + csize_at);
      break;
    }
    p += 4 + len;
  }
  return UINT64_MAX;
}

}  // namespace

DecoderMemory zip_memory(const uint8_t* d, std::size_t n) noexcept {
  DecoderMemory m;
  // A local header (APPNOTE 4.3.7) read with `method`: its data follows its name and extra field.
  auto local = [&](std::size_t at, uint16_t method) {
    if (n - at < 30 || std::memcmp(d + at, "PK\3\4", 4) != 0) return;
    if ((le16(d + at + 6) & 1) != 0) return;  // encrypted: never decoded here
    const std::size_t names = static_cast<std::size_t>(le16(d + at + 26)) + le16(d + at + 28);
    if (names > n - at - 30) return;
    const uint32_t packed32 = le32(d + at + 18);
    uint64_t packed = packed32;
    if (packed32 == 0xFFFFFFFFu)
      packed = zip64_packed(d + at + 30 + le16(d + at + 26), le16(d + at + 28), le32(d + at + 22));
    else if ((le16(d + at + 6) & 8) != 0 && packed32 == 0)
      packed = UINT64_MAX;  // sizes in a data descriptor after the data
    const std::size_t data = at + 30 + names;
    keep_larger(m, zip_entry_memory(method, d + data, n - data, packed));
  };
  each_match(d, n, "PK\3\4", [&](std::size_t at) {
    if (n - at >= 30) local(at, le16(d + at + 8));
  });
  // A central directory record (APPNOTE 4.3.12) may name another method than its local header.
  each_match(d, n, "PK\1\2", [&](std::size_t at) {
    if (n - at < 46 || (le16(d + at + 8) & 1) != 0) return;
    const uint32_t offset = le32(d + at + 42);
    if (offset < n) local(offset, le16(d + at + 10));
  });
  return m;
}

}  // namespace sluice::pipeline
