// Hex text of digests, one place for the control plane: events, stores and endpoint requests all
// write SHA-256s as 64 lower-case hex digits, and read them back.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::control {

// Lower-case hex of `n` bytes into `out` (2n characters, then a NUL).
inline void hex_lower(const uint8_t* p, std::size_t n, char* out) noexcept {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  out[2 * n] = '\0';
}

inline std::string hex_string(const uint8_t* p, std::size_t n) {
  std::string s(2 * n + 1, '\0');
  hex_lower(p, n, s.data());
  s.pop_back();
  return s;
}

inline std::string hex_string(const std::array<uint8_t, 32>& sha256) { return hex_string(sha256.data(), 32); }

// 64 hex digits (either case) into 32 bytes; false (and `out` unspecified) for anything else.
inline bool parse_sha256_hex(std::string_view hex, std::array<uint8_t, 32>& out) noexcept {
  if (hex.size() != 64) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < 32; ++i) {
    const int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

// 64 hex digits, lower-cased (how the stores keep a SHA-256); "" if `s` is not 64 hex digits.
inline std::string normal_sha256_hex(std::string_view s) {
  if (s.size() != 64) return "";
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return "";
  }
  return out;
}

}  // namespace sluice::control
