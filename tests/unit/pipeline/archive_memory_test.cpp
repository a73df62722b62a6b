// pipeline/archive_memory: the decoder memory that headers declare, for streams and archives made
// here with liblzma and libarchive (then rewritten to declare more), and built byte by byte.
#include "pipeline/archive_memory.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/pipeline/archive_builders.h"

using namespace sluice::pipeline;
using namespace sluice::pipeline::test;

namespace {

const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kFourGiB = 4096 * kMiB;
constexpr uint64_t kLimit = 128 * kMiB;

const std::string kData = [] {
  std::string s;
  for (int i = 0; i < 2000; ++i) s += "line " + std::to_string(i) + " of the member\n";
  return s;
}();

// liblzma's LZ decoder takes the dictionary plus a few tens of KiB of state.
void expect_about(const DecoderMemory& m, uint64_t dict, const char* what) {
  EXPECT_EQ(m.unreadable, nullptr) << m.unreadable;
  EXPECT_GE(m.bytes, dict);
  EXPECT_LE(m.bytes, dict + kMiB);
  EXPECT_STREQ(m.what, what);
}

}  // namespace

TEST(ArchiveMemory, XzEveryBlockOfEveryStream) {
  const std::string small = xz_of(kData);
  expect_about(xz_memory(bytes(small), small.size()), kMiB, "xz dictionary");
  // Props 40: 4 GiB - 1; 38: 2 GiB.
  const std::string huge = with_xz_dictionary(small, 40);
  expect_about(xz_memory(bytes(huge), huge.size()), kFourGiB - 1, "xz dictionary");
  // A second stream after padding (LZMA_CONCATENATED, as libarchive decodes): the larger counts.
  const std::string two = small + std::string(8, '\0') + with_xz_dictionary(small, 38);
  expect_about(xz_memory(bytes(two), two.size()), 2048 * kMiB, "xz dictionary");
  // Cut short: the index is gone and the blocks cannot be found.
  const std::string cut = huge.substr(0, huge.size() - 20);
  EXPECT_NE(xz_memory(bytes(cut), cut.size()).unreadable, nullptr);
}

TEST(ArchiveMemory, LzmaAloneAndLzip) {
  const std::string lz = lzma_alone_of(kData, 8 * kMiB);
  expect_about(lzma_alone_memory(bytes(lz), lz.size()), 8 * kMiB, "lzma dictionary");
  const std::string big = lzma_alone_of(kData, 0xFFFFFFFFu);
  expect_about(lzma_alone_memory(bytes(big), big.size()), kFourGiB - 1, "lzma dictionary");
  EXPECT_NE(lzma_alone_memory(bytes(lz), 12).unreadable, nullptr);

  // lzip: 0x17 is 2^23 = 8 MiB; 0x1D with 7/16 off: 2^29 - 7 * 2^25 = 288 MiB; every member counts.
  std::string lzip = std::string("LZIP\x01\x17", 6) + std::string(40, 'x') + std::string("LZIP\x01\xFD", 6);
  expect_about(lzip_memory(bytes(lzip), lzip.size()), 288 * kMiB, "lzip dictionary");
  lzip.resize(46);
  expect_about(lzip_memory(bytes(lzip), lzip.size()), 8 * kMiB, "lzip dictionary");
}

TEST(ArchiveMemory, ZstdFramesWalkedBlockByBlock) {
  // Frame header: magic, FHD (no single segment, no checksum), window descriptor 2^(10 + e); one
  // last raw block of 3 bytes.
  auto frame = [](uint8_t exponent) {
    std::string f("\x28\xB5\x2F\xFD\x00", 5);
    f += static_cast<char>(exponent << 3);
    f += std::string("\x19\x00\x00", 3);  // last, raw, size 3
    f += "abc";
    return f;
  };
  const std::string skippable = std::string("\x50\x2A\x4D\x18\x02\x00\x00\x00zz", 10);
  std::string z = skippable + frame(10) + frame(17);
  DecoderMemory m = zstd_memory(bytes(z), z.size());
  EXPECT_EQ(m.bytes, 128 * kMiB);
  EXPECT_STREQ(m.what, "zstd window");
  // Over 2^27 libzstd refuses the frame before allocating: nothing is reserved for it.
  z = frame(18);
  EXPECT_EQ(zstd_memory(bytes(z), z.size()).bytes, 0u);
  // Single segment: the window is the content size (here 2 bytes: 0x1234 + 256).
  z = std::string("\x28\xB5\x2F\xFD\x60\x34\x12\x01\x00\x00", 10);
  EXPECT_EQ(zstd_memory(bytes(z), z.size()).bytes, 0x1234u + 256u);
}

TEST(ArchiveMemory, SevenZipCoderPropertiesAsLibarchiveWritesThem) {
  // libarchive writes LZMA1 with an 8 MiB dictionary (props 5D 00 00 80 00), PPMd order 6 with
  // 16 MiB (06 00 00 00 01), LZMA2 with 8 MiB (props 0x16).
  const std::string lzma = sevenzip_of(nullptr, "a.txt", kData);
  expect_about(sevenzip_memory(bytes(lzma), lzma.size(), kLimit), 8 * kMiB, "7z LZMA dictionary");
  const std::string ppmd = sevenzip_of("7zip:compression=ppmd", "a.txt", kData);
  expect_about(sevenzip_memory(bytes(ppmd), ppmd.size(), kLimit), 16 * kMiB, "7z PPMd model");
  const std::string lzma2 = sevenzip_of("7zip:compression=lzma2", "a.txt", kData);
  expect_about(sevenzip_memory(bytes(lzma2), lzma2.size(), kLimit), 8 * kMiB, "7z LZMA2 dictionary");

  const std::string lzma_4g = sevenzip_patched(lzma, std::string("\x05\x5D\x00\x00\x80\x00", 6),
                                               std::string("\x05\x5D\xFF\xFF\xFF\xFF", 6));
  expect_about(sevenzip_memory(bytes(lzma_4g), lzma_4g.size(), kLimit), kFourGiB - 1, "7z LZMA dictionary");
  const std::string ppmd_4g = sevenzip_patched(ppmd, std::string("\x05\x06\x00\x00\x00\x01", 6),
                                               std::string("\x05\x06\xDB\xFF\xFF\xFF", 6));
  expect_about(sevenzip_memory(bytes(ppmd_4g), ppmd_4g.size(), kLimit), 0xFFFFFFDBu, "7z PPMd model");
  const std::string lzma2_4g = sevenzip_patched(lzma2, std::string("\x21\x01\x16", 3), std::string("\x21\x01\x28", 3));
  expect_about(sevenzip_memory(bytes(lzma2_4g), lzma2_4g.size(), kLimit), kFourGiB - 1, "7z LZMA2 dictionary");

  // Inside a self-extractor (libarchive looks for the signature in an executable's body).
  const std::string sfx = std::string("MZ") + std::string(4094, '\x90') + lzma_4g;
  expect_about(sevenzip_memory(bytes(sfx), sfx.size(), kLimit), kFourGiB - 1, "7z LZMA dictionary");
}

TEST(ArchiveMemory, SevenZipCodedHeader) {
  // The header LZMA-coded (as 7-Zip writes it): the coders inside are read after decoding it.
  const std::string plain = sevenzip_patched(sevenzip_of(nullptr, "a.txt", kData),
                                             std::string("\x05\x5D\x00\x00\x80\x00", 6),
                                             std::string("\x05\x5D\x00\x00\x00\xC0", 6));  // 3 GiB
  const std::string coded = sevenzip_encoded(plain, 1 << 16);
  DecoderMemory m = sevenzip_memory(bytes(coded), coded.size(), kLimit);
  EXPECT_EQ(m.unreadable, nullptr) << m.unreadable;
  EXPECT_GE(m.bytes, 3072 * kMiB);
  EXPECT_STREQ(m.what, "7z LZMA dictionary");
  // The header's own coder declaring 4 GiB: refused before this check decodes anything.
  const std::string header_4g = sevenzip_encoded(sevenzip_of(nullptr, "a.txt", kData), 0xFFFFFFFFu);
  m = sevenzip_memory(bytes(header_4g), header_4g.size(), kLimit);
  EXPECT_EQ(m.unreadable, nullptr) << m.unreadable;
  EXPECT_GE(m.bytes, kFourGiB - 1);
  EXPECT_STREQ(m.what, "7z header dictionary");
  // A coded header cut short.
  std::string cut = coded;
  cut.replace(sevenzip_header_at(cut) - 20, 20, std::string(20, '\0'));
  EXPECT_NE(sevenzip_memory(bytes(cut), cut.size(), kLimit).unreadable, nullptr);
}

TEST(ArchiveMemory, SevenZipDeclaredCountsAndBcj2Buffers) {
  // A header that declares 50 million files and nothing else: libarchive allocates its entry
  // table from the count.
  std::string header("\x01\x05", 2);  // kHeader, kFilesInfo
  put_7z_number(header, 50000000);
  header += std::string("\x00\x00", 2);
  const std::string files = sevenzip_with_header(header);
  DecoderMemory m = sevenzip_memory(bytes(files), files.size(), kLimit);
  EXPECT_EQ(m.unreadable, nullptr) << m.unreadable;
  EXPECT_GE(m.bytes, 50000000ull * 80);
  EXPECT_STREQ(m.what, "7z header tables");

  // A BCJ2 folder (7-Zip's x86 executable form: LZMA, LZMA, LZMA, BCJ2 with 4 inputs) whose
  // sub-streams declare 2 GiB each: libarchive mallocs them at their declared sizes.
  std::string h("\x01\x04\x06", 3);  // kHeader, kMainStreamsInfo, kPackInfo
  put_7z_number(h, 0);
  put_7z_number(h, 4);
  h += '\x09';
  for (int i = 0; i < 4; ++i) put_7z_number(h, 0);
  h += std::string("\x00\x07\x0B", 3);
  put_7z_number(h, 1);
  h += '\x00';
  put_7z_number(h, 4);  // coders
  for (int i = 0; i < 3; ++i) {
    h += std::string("\x23\x03\x01\x01", 4);
    put_7z_number(h, 5);
    h += std::string("\x5D\x00\x00\x01\x00", 5);  // 64 KiB
  }
  h += std::string("\x14\x03\x03\x01\x1B", 5);  // complex, BCJ2
  put_7z_number(h, 4);
  put_7z_number(h, 1);
  for (int pair : {5, 0, 6, 1, 4, 2}) put_7z_number(h, pair);  // in -> out, as 7zr binds them
  for (int packed : {3, 2, 1, 0}) put_7z_number(h, packed);
  h += '\x0C';
  for (uint64_t size : {2048 * kMiB, 2048 * kMiB, uint64_t{1000}, uint64_t{3000}}) put_7z_number(h, size);
  h += std::string("\x00\x00\x00", 3);  // kEnd: unpack info, streams info, header
  const std::string bcj2 = sevenzip_with_header(h);
  m = sevenzip_memory(bytes(bcj2), bcj2.size(), kLimit);
  EXPECT_EQ(m.unreadable, nullptr) << m.unreadable;
  EXPECT_GE(m.bytes, 4096 * kMiB);
  EXPECT_STREQ(m.what, "7z BCJ2 buffers");

  // No signature with a valid start header CRC: nothing libarchive would read.
  std::string bad = files;
  bad[8] ^= 1;
  EXPECT_NE(sevenzip_memory(bytes(bad), bad.size(), kLimit).unreadable, nullptr);
}

TEST(ArchiveMemory, ZipLzmaXzPpmdEntries) {
  // LZMA (14): version 9.20, properties size 5, then the properties.
  const std::string lzma_props = std::string("\x09\x14\x05\x00\x5D", 5);
  std::string z = zip_entry_of(14, lzma_props + std::string("\x00\x00\x00\x01", 4) + "xxxx", 14);
  expect_about(zip_memory(bytes(z), z.size()), 16 * kMiB, "zip LZMA dictionary");
  z = zip_entry_of(14, lzma_props + std::string("\xFF\xFF\xFF\xFF", 4) + "xxxx", 14);
  expect_about(zip_memory(bytes(z), z.size()), kFourGiB - 1, "zip LZMA dictionary");
  // The central directory naming LZMA where the local header says deflate: both are read.
  z = zip_entry_of(8, lzma_props + std::string("\xFF\xFF\xFF\xFF", 4) + "xxxx", 14);
  expect_about(zip_memory(bytes(z), z.size()), kFourGiB - 1, "zip LZMA dictionary");
  // Encrypted (flag bit 0): never decoded.
  z[6] = 1;
  z[z.find("PK\1\2") + 8] = 1;
  EXPECT_EQ(zip_memory(bytes(z), z.size()).bytes, 0u);

  // PPMd (98): bits 4-11 hold the model size in MiB minus 1.
  z = zip_entry_of(98, std::string("\xF5\x0F", 2) + "xxxx", 98);
  DecoderMemory m = zip_memory(bytes(z), z.size());
  EXPECT_EQ(m.bytes, 256 * kMiB);
  EXPECT_STREQ(m.what, "zip PPMd model");

  // xz (95): the member's xz stream, blocks through its index.
  z = zip_entry_of(95, with_xz_dictionary(xz_of(kData), 40), 95);
  expect_about(zip_memory(bytes(z), z.size()), kFourGiB - 1, "xz dictionary");

  // Deflate and stored entries reserve nothing to speak of.
  z = zip_entry_of(8, "xxxx", 8);
  EXPECT_EQ(zip_memory(bytes(z), z.size()).bytes, 0u);
}
