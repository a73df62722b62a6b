#include "hw/rss_key.h"

#include <gtest/gtest.h>

#include <array>

using sluice::hw::symmetric_rss_key;
using sluice::hw::toeplitz_hash;

namespace {

// RSS input for IPv4/TCP: src addr, dst addr, src port, dst port (network order).
std::array<uint8_t, 12> tuple(std::array<uint8_t, 4> s, std::array<uint8_t, 4> d, uint16_t sp, uint16_t dp) {
  return {s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3],
          uint8_t(sp >> 8), uint8_t(sp), uint8_t(dp >> 8), uint8_t(dp)};
}

}  // namespace

TEST(RssKey, ToeplitzMatchesTheMicrosoftVerificationVector) {
  // The RSS verification suite's default key and its first IPv4/TCP example:
  // 66.9.149.187:2794 -> 161.142.100.80:1766 hashes to 0x51ccc178.
  const std::array<uint8_t, 40> key = {0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
                                       0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
                                       0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};
  const auto in = tuple({66, 9, 149, 187}, {161, 142, 100, 80}, 2794, 1766);
  EXPECT_EQ(toeplitz_hash(key, in), 0x51ccc178u);
}

TEST(RssKey, SymmetricKeyHashesBothDirectionsAlike) {
  const auto key = symmetric_rss_key(40);
  ASSERT_EQ(key.size(), 40u);
  EXPECT_EQ(key[0], 0x6d);
  EXPECT_EQ(key[1], 0x5a);
  for (uint16_t i = 0; i < 500; ++i) {
    const std::array<uint8_t, 4> a{10, uint8_t(i), uint8_t(i * 7), 1}, b{192, 0, 2, uint8_t(i * 3)};
    const uint16_t pa = uint16_t(1024 + i * 13), pb = 25;
    EXPECT_EQ(toeplitz_hash(key, tuple(a, b, pa, pb)), toeplitz_hash(key, tuple(b, a, pb, pa))) << i;
  }
}

TEST(RssKey, SymmetricKeyStillSpreadsFlows) {
  const auto key = symmetric_rss_key(52);
  std::array<int, 4> buckets{};
  for (uint16_t i = 0; i < 4000; ++i)
    buckets[toeplitz_hash(key, tuple({198, 51, 100, uint8_t(i)}, {192, 0, 2, 25}, uint16_t(30000 + i), 25)) % 4]++;
  for (int b : buckets) EXPECT_GT(b, 500);
}

TEST(RssKey, ShortKeyIsRejectedNotOverread) {
  const std::array<uint8_t, 8> key{};
  const std::array<uint8_t, 12> in{};
  EXPECT_EQ(toeplitz_hash(key, in), 0u);
}
