// Builders of crafted archives and compressed streams for the archive tests: liblzma streams with
// the dictionary their headers declare rewritten, 7z archives written by libarchive with coder
// properties rewritten or their header LZMA-coded, zips with LZMA/xz/PPMd entries, gzip streams
// of long runs of zeros. The ground truth is always the bytes given to the builder.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <lzma.h>
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace sluice::pipeline::test {

inline void put_le(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}
inline void set_le(std::string& s, std::size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
inline uint64_t get_le(std::string_view s, std::size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(s[at + i])) << (8 * i);
  return v;
}
inline uint32_t crc_of(std::string_view s) {
  return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

// ---- xz, lzma ---------------------------------------------------------------------------------

// Runs an initialised liblzma encoder over all of `data`; the output, and the stream ended.
inline std::string lzma_encode_all(lzma_stream& s, std::string_view data) {
  std::string out(data.size() + data.size() / 2 + 4096, '\0');
  s.next_in = reinterpret_cast<const uint8_t*>(data.data());
  s.avail_in = data.size();
  s.next_out = reinterpret_cast<uint8_t*>(out.data());
  s.avail_out = out.size();
  EXPECT_EQ(lzma_code(&s, LZMA_FINISH), LZMA_STREAM_END);
  out.resize(out.size() - s.avail_out);
  lzma_end(&s);
  return out;
}

// An .xz stream of `data` (one block, LZMA2 preset 1: a 1 MiB dictionary).
inline std::string xz_of(std::string_view data) {
  std::string out(lzma_stream_buffer_bound(data.size()), '\0');
  std::size_t pos = 0;
  EXPECT_EQ(lzma_easy_buffer_encode(1, LZMA_CHECK_CRC64, nullptr, reinterpret_cast<const uint8_t*>(data.data()),
                                    data.size(), reinterpret_cast<uint8_t*>(out.data()), &pos, out.size()),
            LZMA_OK);
  out.resize(pos);
  return out;
}

// The LZMA2 dictionary byte of the first block header of a stream xz_of() made (xz file format
// 5.3.1: dictionary (2 | (p & 1)) << (p / 2 + 11), 40 = 4 GiB - 1), with the header's CRC32 redone.
inline std::string with_xz_dictionary(std::string xz, uint8_t props) {
  const std::size_t header = 12, size = (static_cast<uint8_t>(xz[header]) + 1u) * 4u;
  const std::size_t filter = xz.find("\x21\x01", header + 2);  // LZMA2 filter ID, one property byte
  EXPECT_LT(filter, header + size);
  xz[filter + 2] = static_cast<char>(props);
  set_le(xz, header + size - 4, crc_of(std::string_view(xz).substr(header, size - 4)), 4);
  return xz;
}

// An .lzma ("LZMA alone") stream of `data` declaring a dictionary of `dict` bytes (the data is
// coded with a 1 MiB one; a larger declared dictionary decodes it the same).
inline std::string lzma_alone_of(std::string_view data, uint32_t dict) {
  lzma_options_lzma opt;
  lzma_lzma_preset(&opt, 1);
  lzma_stream s = LZMA_STREAM_INIT;
  EXPECT_EQ(lzma_alone_encoder(&s, &opt), LZMA_OK);
  std::string out = lzma_encode_all(s, data);
  set_le(out, 1, dict, 4);
  return out;
}

// ---- gzip ---------------------------------------------------------------------------------------

// `data` deflated by zlib: `window_bits` -15 for raw deflate, 15 + 16 for a gzip member (RFC 1952,
// with an original name if given); Z_FINISH ends the stream, Z_FULL_FLUSH leaves it open at a byte
// boundary with no reference to earlier data.
inline std::string deflate_of(std::string_view data, int window_bits, int flush = Z_FINISH,
                              const char* name = nullptr) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 9, Z_DEFLATED, window_bits, 9, Z_DEFAULT_STRATEGY), Z_OK);
  std::string fname = name != nullptr ? name : "";
  gz_header h{};
  h.name = reinterpret_cast<Bytef*>(fname.data());
  if (name != nullptr) {
    EXPECT_EQ(deflateSetHeader(&z, &h), Z_OK);
  }
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, flush), flush == Z_FINISH ? Z_STREAM_END : Z_OK);
  out.resize(out.size() - z.avail_out);
  deflateEnd(&z);
  return out;
}

inline std::string gzip_of(std::string_view data, const char* name = nullptr) {
  return deflate_of(data, 15 + 16, Z_FINISH, name);
}

// A minimal PE: MZ, e_lfanew at 0x3C pointing at "PE\0\0" and an i386 COFF header, then code.
inline std::string tiny_pe() {
  std::string pe = "MZ";
  pe += std::string(58, '\x90');
  pe += std::string("\x80\0\0\0", 4);
  pe += std::string(64, '\0');
  pe += std::string("PE\0\0\x4c\x01", 6);
  for (int i = 0; i < 300; ++i) pe += static_cast<char>(i * 7 + 3);
  return pe;
}

// A gzip member (RFC 1952) of `mib` MiB of zeros followed by `tail`, without deflating them: one
// full-flushed 1 MiB chunk repeated (a full flush leaves no reference to earlier output), so that
// a 4 GiB stream costs 4 MiB and milliseconds to build.
inline std::string gzip_of_zeros(uint32_t mib, std::string_view tail = {}) {
  const std::string mb(1 << 20, '\0');
  const std::string chunk = deflate_of(mb, -15, Z_FULL_FLUSH), last = deflate_of(tail, -15);
  std::string gz("\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03", 10);
  uLong crc = 0;
  const uLong crc_mb = crc32(0, reinterpret_cast<const Bytef*>(mb.data()), static_cast<uInt>(mb.size()));
  for (uint32_t i = 0; i < mib; ++i) {
    gz += chunk;
    crc = crc32_combine(crc, crc_mb, 1 << 20);
  }
  gz += last;
  crc = crc32_combine(crc, crc_of(tail), static_cast<z_off_t>(tail.size()));
  put_le(gz, crc, 4);
  put_le(gz, ((static_cast<uint64_t>(mib) << 20) + tail.size()) & 0xffffffffu, 4);
  return gz;
}

// ---- 7z -----------------------------------------------------------------------------------------

inline la_ssize_t append_to_string(archive*, void* out, const void* b, std::size_t n) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(b), n);
  return static_cast<la_ssize_t>(n);
}

// One regular file, written to an open libarchive writer.
inline void write_member(archive* a, const char* name, std::string_view data) {
  archive_entry* e = archive_entry_new();
  if (name != nullptr) archive_entry_set_pathname(e, name);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, static_cast<la_int64_t>(data.size()));
  archive_write_header(a, e);
  archive_write_data(a, data.data(), data.size());
  archive_entry_free(e);
}

// One file `name` (none: a raw stream) of `data`, written by a libarchive writer that `setup`
// configured (format, filters, options), without padding the last block.
template <class Setup>
std::string written_by_libarchive(Setup&& setup, const char* name, std::string_view data) {
  std::string out;
  archive* a = archive_write_new();
  setup(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(a, &out, nullptr, append_to_string, nullptr);
  write_member(a, name, data);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// A stream of `data` written by libarchive's raw format with one filter (as bsdtar would).
inline std::string stream_of(int (*filter)(archive*), std::string_view data) {
  return written_by_libarchive(
      [&](archive* a) {
        archive_write_set_format_raw(a);
        filter(a);
      },
      nullptr, data);
}

// A 7z holding `name` with `data`, written by libarchive ("7zip:compression=lzma1|lzma2|ppmd|
// bzip2|deflate|store"): its header is not coded, so its coder properties can be rewritten.
inline std::string sevenzip_of(const char* option, const char* name, std::string_view data) {
  return written_by_libarchive(
      [&](archive* a) {
        archive_write_set_format_7zip(a);
        if (option != nullptr) {
          EXPECT_EQ(archive_write_set_options(a, option), ARCHIVE_OK) << archive_error_string(a);
        }
      },
      name, data);
}

// Offset and size of a 7z's next header (the signature header's fields, 7zFormat.txt).
inline std::size_t sevenzip_header_at(std::string_view z) { return 32 + static_cast<std::size_t>(get_le(z, 12, 8)); }
inline std::size_t sevenzip_header_size(std::string_view z) { return static_cast<std::size_t>(get_le(z, 20, 8)); }

// Recomputes the next header CRC and the start header CRC.
inline void sevenzip_fix_crcs(std::string& z) {
  set_le(z, 28, crc_of(std::string_view(z).substr(sevenzip_header_at(z), sevenzip_header_size(z))), 4);
  set_le(z, 8, crc_of(std::string_view(z).substr(12, 20)), 4);
}

// `z` with the first occurrence of `from` in its (plain) header replaced by `to`, CRCs redone.
inline std::string sevenzip_patched(std::string z, std::string_view from, std::string_view to) {
  const std::size_t at = z.find(from, sevenzip_header_at(z));
  EXPECT_NE(at, std::string::npos);
  EXPECT_EQ(from.size(), to.size());
  z.replace(at, from.size(), to);
  sevenzip_fix_crcs(z);
  return z;
}

// 7z's variable-length number, in its longest form (0xFF and 8 bytes), which readers accept.
inline void put_7z_number(std::string& s, uint64_t v) {
  s += '\xFF';
  put_le(s, v, 8);
}

// `z` (a plain-header 7z) with its header LZMA-coded as 7-Zip stores it: the packed header after
// the packed streams and a kEncodedHeader that describes it. `dict` is the dictionary its coder
// declares (the header is coded with a small one).
inline std::string sevenzip_encoded(const std::string& z, uint32_t dict) {
  const std::size_t at = sevenzip_header_at(z), size = sevenzip_header_size(z);
  const std::string header = z.substr(at, size);
  lzma_options_lzma opt;
  lzma_lzma_preset(&opt, 1);
  opt.dict_size = 1 << 16;
  lzma_filter filters[2] = {{LZMA_FILTER_LZMA1, &opt}, {LZMA_VLI_UNKNOWN, nullptr}};
  lzma_stream s = LZMA_STREAM_INIT;
  EXPECT_EQ(lzma_raw_encoder(&s, filters), LZMA_OK);
  const std::string packed = lzma_encode_all(s, header);
  std::string encoded("\x17\x06", 2);  // kEncodedHeader, kPackInfo
  put_7z_number(encoded, at - 32);     // the packed header where the plain one was
  put_7z_number(encoded, 1);
  encoded += '\x09';  // kSize
  put_7z_number(encoded, packed.size());
  encoded += std::string("\x00\x07\x0B", 3);  // kEnd, kUnPackInfo, kFolder
  put_7z_number(encoded, 1);                  // one folder
  encoded += '\x00';                          // not external
  put_7z_number(encoded, 1);                  // one coder
  encoded += std::string("\x23\x03\x01\x01", 4);  // id size 3 with properties: LZMA
  put_7z_number(encoded, 5);
  encoded += '\x5D';  // lc 3, lp 0, pb 2
  put_le(encoded, dict, 4);
  encoded += '\x0C';  // kCodersUnPackSize
  put_7z_number(encoded, header.size());
  encoded += std::string("\x00\x00", 2);  // kEnd (unpack info), kEnd (streams info)
  std::string out = z.substr(0, at) + packed + encoded;
  set_le(out, 12, at - 32 + packed.size(), 8);
  set_le(out, 20, encoded.size(), 8);
  sevenzip_fix_crcs(out);
  return out;
}

// A 7z whose (plain) header is `header`: no packed stream.
inline std::string sevenzip_with_header(std::string_view header) {
  std::string z("7z\xBC\xAF\x27\x1C\x00\x04", 8);
  z.append(24, '\0');
  z += header;
  set_le(z, 12, 0, 8);
  set_le(z, 20, header.size(), 8);
  sevenzip_fix_crcs(z);
  return z;
}

// ---- zip ----------------------------------------------------------------------------------------

// `data` as a zip LZMA entry's data (APPNOTE 5.8.8: version, properties size, properties, then
// raw LZMA1 with an end-of-stream marker), declaring a dictionary of `dict` bytes.
inline std::string zip_lzma_data(std::string_view data, uint32_t dict) {
  lzma_options_lzma opt;
  lzma_lzma_preset(&opt, 1);
  lzma_filter filters[2] = {{LZMA_FILTER_LZMA1, &opt}, {LZMA_VLI_UNKNOWN, nullptr}};
  lzma_stream s = LZMA_STREAM_INIT;
  EXPECT_EQ(lzma_raw_encoder(&s, filters), LZMA_OK);
  const std::string packed = lzma_encode_all(s, data);
  std::string out("\x09\x14\x05\x00\x5D", 5);  // LZMA SDK 9.20, 5 property bytes, lc 3 lp 0 pb 2
  put_le(out, dict, 4);
  return out + packed;
}

// A zip of one entry whose data is `packed` as `method` declares it (no real compression needed
// for the header checks), with a central directory; `cd_method` is what the central directory says.
inline std::string zip_entry_of(uint16_t method, std::string_view packed, uint16_t cd_method, uint32_t crc = 0,
                                uint32_t size = 0) {
  std::string z;
  put_le(z, 0x04034b50, 4);
  put_le(z, 63, 2), put_le(z, 2, 2), put_le(z, method, 2), put_le(z, 0, 2), put_le(z, 0x21, 2);
  put_le(z, crc, 4), put_le(z, packed.size(), 4), put_le(z, size, 4);
  put_le(z, 5, 2), put_le(z, 0, 2);
  z += "a.bin";
  z += packed;
  const std::size_t cd = z.size();
  put_le(z, 0x02014b50, 4);
  put_le(z, 63, 2), put_le(z, 63, 2), put_le(z, 2, 2), put_le(z, cd_method, 2), put_le(z, 0, 2), put_le(z, 0x21, 2);
  put_le(z, crc, 4), put_le(z, packed.size(), 4), put_le(z, size, 4);
  put_le(z, 5, 2), put_le(z, 0, 2), put_le(z, 0, 2), put_le(z, 0, 2), put_le(z, 0, 2), put_le(z, 0, 4), put_le(z, 0, 4);
  z += "a.bin";
  const std::size_t cd_size = z.size() - cd;
  put_le(z, 0x06054b50, 4);
  put_le(z, 0, 2), put_le(z, 0, 2), put_le(z, 1, 2), put_le(z, 1, 2);
  put_le(z, cd_size, 4), put_le(z, cd, 4), put_le(z, 0, 2);
  return z;
}

}  // namespace sluice::pipeline::test
