// Character classes shared by the MIME decoders and header readers of pipeline/ (internal): one
// definition of the base64 alphabet (RFC 4648 section 4), of hex digits (RFC 2045 6.7, RFC 2231
// and RFC 2047 escapes) and of the case-insensitive word search the readings use. Scalar: the hot
// paths have their own tables (base64.cpp, quoted_printable.cpp).
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::pipeline {

// The value of a base64 alphabet character, or -1.
constexpr int base64_value(uint8_t c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// The value of a hex digit (either case), or -1.
constexpr int hex_value(uint8_t c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// `word` (lower case ASCII) anywhere in `s`, in any case.
constexpr bool contains_word(std::string_view s, std::string_view word) noexcept {
  for (std::size_t i = 0; i + word.size() <= s.size(); ++i) {
    std::size_t m = 0;
    while (m < word.size() && (s[i + m] | 0x20) == word[m]) ++m;
    if (m == word.size()) return true;
  }
  return false;
}

// The transfer encodings a Content-Transfer-Encoding value names anywhere in it, as the readers of
// mime_readings.h find them ("xx base64", "=?UTF-8?Q?base64", "base64,quoted-printable").
enum CteWord : uint8_t { cte_word_base64 = 1, cte_word_quoted_printable = 2, cte_word_identity = 4 };
constexpr uint8_t cte_words(std::string_view v) noexcept {
  uint8_t bits = 0;
  if (contains_word(v, "base64")) bits |= cte_word_base64;
  if (contains_word(v, "quoted-printable")) bits |= cte_word_quoted_printable;
  if (contains_word(v, "7bit") || contains_word(v, "8bit") || contains_word(v, "binary")) bits |= cte_word_identity;
  return bits;
}

}  // namespace sluice::pipeline
