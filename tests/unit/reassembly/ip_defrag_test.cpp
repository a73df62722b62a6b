#include "reassembly/ip_defrag.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

using namespace sluice::reassembly;

namespace {

// An Ethernet/IPv4 fragment of datagram `id` from 10.0.0.`src`: payload bytes at `offset`.
std::vector<uint8_t> fragment(uint8_t src, uint16_t id, uint16_t offset, bool more, const std::string& payload) {
  std::vector<uint8_t> f(14 + 20 + payload.size(), 0);
  f[12] = 0x08;
  uint8_t* ip = &f[14];
  const std::size_t total = 20 + payload.size();
  ip[0] = 0x45;
  ip[2] = static_cast<uint8_t>(total >> 8);
  ip[3] = static_cast<uint8_t>(total);
  ip[4] = static_cast<uint8_t>(id >> 8);
  ip[5] = static_cast<uint8_t>(id);
  const uint16_t frag = static_cast<uint16_t>((more ? 0x2000 : 0) | (offset / 8));
  ip[6] = static_cast<uint8_t>(frag >> 8);
  ip[7] = static_cast<uint8_t>(frag);
  ip[8] = 64;
  ip[9] = 6;
  ip[12] = 10, ip[15] = src;
  ip[16] = 10, ip[17] = 0, ip[18] = 1, ip[19] = 1;
  std::copy(payload.begin(), payload.end(), f.begin() + 34);
  return f;
}

DefragResult add(IpDefrag& d, const std::vector<uint8_t>& f, int64_t now, std::string* whole = nullptr) {
  PacketInfo info;
  EXPECT_EQ(decode_packet(f.data(), f.size(), info), DecodeStatus::ok);
  EXPECT_TRUE(info.fragment);
  const uint8_t* out = nullptr;
  std::size_t len = 0;
  const DefragResult r = d.add(info, f.data(), now, out, len);
  if (r == DefragResult::complete && whole) whole->assign(reinterpret_cast<const char*>(out) + 20, len - 20);
  return r;
}

}  // namespace

// The measured attack: sets that never complete used to hold every slot for the timeout, so no new
// fragmented datagram reassembled. Now a new set evicts the oldest, and one source holds at most
// max_per_source sets.
TEST(IpDefrag, SetsThatNeverCompleteDoNotBlockNewDatagrams) {
  IpDefrag d(/*max_datagrams=*/4, /*timeout_s=*/30, /*max_per_source=*/2);
  int64_t now = 1000000;
  for (uint16_t id = 1; id <= 64; ++id)  // first halves only, from 10.0.0.66
    EXPECT_EQ(add(d, fragment(66, id, 0, true, std::string(16, 'x')), now += 10), DefragResult::need_more);
  EXPECT_EQ(d.stats().evicted, 62u);  // the source's two slots recycled
  // Another source's datagram finds free slots.
  std::string whole;
  EXPECT_EQ(add(d, fragment(7, 500, 0, true, "0123456789abcdef"), now += 10), DefragResult::need_more);
  EXPECT_EQ(add(d, fragment(7, 500, 16, false, "tail"), now += 10, &whole), DefragResult::complete);
  EXPECT_EQ(whole, "0123456789abcdeftail");
  // The flooding source itself still gets its real datagram through.
  EXPECT_EQ(add(d, fragment(66, 900, 0, true, "AAAAAAAABBBBBBBB"), now += 10), DefragResult::need_more);
  EXPECT_EQ(add(d, fragment(66, 900, 16, false, "end"), now += 10, &whole), DefragResult::complete);
  EXPECT_EQ(whole, "AAAAAAAABBBBBBBBend");
}

TEST(IpDefrag, AFullTableEvictsTheOldestSetOfAll) {
  IpDefrag d(3, 30, 3);
  int64_t now = 1000000;
  for (uint8_t src = 1; src <= 3; ++src) add(d, fragment(src, 1, 0, true, std::string(8, 'a')), now += 10);
  std::string whole;
  EXPECT_EQ(add(d, fragment(9, 1, 0, true, "12345678"), now += 10), DefragResult::need_more);
  EXPECT_EQ(d.stats().evicted, 1u);
  // 10.0.0.1's set (the oldest) went: its second half starts a new, incomplete set.
  EXPECT_EQ(add(d, fragment(1, 1, 8, false, "z"), now += 10), DefragResult::need_more);
  // 10.0.0.3's is still there.
  EXPECT_EQ(add(d, fragment(3, 1, 8, false, "z"), now += 10, &whole), DefragResult::complete);
  EXPECT_EQ(whole, "aaaaaaaaz");
}
