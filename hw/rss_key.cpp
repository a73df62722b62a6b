#include "hw/rss_key.h"

namespace sluice::hw {

std::vector<uint8_t> symmetric_rss_key(std::size_t len) {
  std::vector<uint8_t> key(len);
  for (std::size_t i = 0; i < len; ++i) key[i] = (i % 2 == 0) ? 0x6d : 0x5a;
  return key;
}

uint32_t toeplitz_hash(std::span<const uint8_t> key, std::span<const uint8_t> input) noexcept {
  if (key.size() < input.size() + 4) return 0;
  // The 32-bit window slides one bit along the key per input bit.
  uint32_t window = (uint32_t{key[0]} << 24) | (uint32_t{key[1]} << 16) | (uint32_t{key[2]} << 8) | key[3];
  uint32_t hash = 0;
  for (std::size_t i = 0; i < input.size(); ++i) {
    const uint8_t next = key[i + 4];
    for (int bit = 7; bit >= 0; --bit) {
      if (input[i] & (1u << bit)) hash ^= window;
      window = (window << 1) | ((next >> bit) & 1u);
    }
  }
  return hash;
}

}  // namespace sluice::hw
