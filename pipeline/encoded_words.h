// Text of header parameters to UTF-8: RFC 2047 encoded words, RFC 2231 charsets, raw 8-bit bytes.
// Internal to pipeline/ (used by header_fields and mime_parser). No exceptions, no allocation on
// the hot path: UTF-8, US-ASCII, ISO-8859-1, Windows-1252 and UTF-16 are converted natively; any
// other charset goes through iconv(3), whose descriptors are opened on first use and cached (a few
// per converter, so a message naming many exotic charsets costs one iconv_open per new name).
#pragma once

#include <iconv.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::pipeline {

// A bounded UTF-8 output. When the buffer is full, later bytes are dropped but the last kTail
// bytes written are remembered and put back at the end by finish(), so a long file name keeps
// its extension ("aaaa…aaa.exe").
class Utf8Out {
 public:
  Utf8Out(char* buf, std::size_t cap) noexcept : buf_(buf), cap_(cap) {}
  void put(uint8_t byte) noexcept;
  void put_cp(uint32_t cp) noexcept;        // one code point, encoded
  void put_bytes(const void* p, std::size_t n) noexcept;
  // Ends the output (restores the tail when it overflowed); returns the length.
  std::size_t finish() noexcept;
  std::size_t size() const noexcept { return len_; }
  bool overflowed() const noexcept { return overflow_; }

 private:
  static constexpr std::size_t kTail = 64;
  char* buf_;
  std::size_t cap_;
  std::size_t len_ = 0;
  bool overflow_ = false;
  uint8_t tail_[kTail] = {};
  std::size_t tail_pos_ = 0;   // total bytes ever put (ring index)
};

// Replaces, in place, every byte that does not belong to a valid UTF-8 sequence (RFC 3629) by '?',
// so that a name cut at a fixed size (or built from broken input) is always valid UTF-8.
void make_valid_utf8(char* s, std::size_t n) noexcept;

// Raw header bytes: UTF-8 sequences kept when valid, any other byte read as Windows-1252.
// Returns true when all bytes were ASCII or valid UTF-8.
bool append_raw_text(const uint8_t* p, std::size_t n, Utf8Out& out) noexcept;

class CharsetConverter {
 public:
  CharsetConverter() noexcept = default;
  ~CharsetConverter();
  CharsetConverter(const CharsetConverter&) = delete;
  CharsetConverter& operator=(const CharsetConverter&) = delete;

  // Appends `p[0..n)` decoded from `charset` (any case, RFC 2231 "*lang" suffix ignored; empty:
  // raw text rules). Returns false when the charset is unknown or the bytes are invalid in it
  // (the bytes then go through the raw text rules / U+FFFD).
  bool convert(std::string_view charset, const uint8_t* p, std::size_t n, Utf8Out& out) noexcept;

  // Decodes RFC 2047 encoded words found anywhere in `in` (inside quoted strings and words too, as
  // mail clients accept); whitespace between two adjacent encoded words is dropped, and adjacent
  // words in the same charset are joined before conversion (a character may be split across
  // them). Everything else goes through the raw text rules. Returns false when a word did not
  // decode (it is then kept literally).
  bool decode_words(const uint8_t* in, std::size_t n, Utf8Out& out) noexcept;

 private:
  bool convert_iconv(std::string_view charset, const uint8_t* p, std::size_t n, Utf8Out& out) noexcept;

  struct Slot {
    char name[40] = {};
    iconv_t cd = reinterpret_cast<iconv_t>(-1);
    bool used = false;
    uint32_t stamp = 0;
  };
  static constexpr int kSlots = 4;
  Slot slots_[kSlots];
  uint32_t clock_ = 0;
  // Bytes of consecutive encoded words, joined before conversion.
  static constexpr std::size_t kWordBytes = 8192;
  uint8_t words_[kWordBytes];
};

}  // namespace sluice::pipeline
