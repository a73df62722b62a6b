// reassembly/segment_forge: the segments inline enforcement injects, forged from the held segment
// that ends a message. Checked field by field through the project's decoder, the checksums by an
// independent sum here, and, when tshark is installed, by tshark with checksum validation on.
#include "reassembly/segment_forge.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <unistd.h>
#include <string>
#include <vector>

#include "tests/fuzz/tcp_frames.h"

namespace sluice::reassembly {
namespace {

using fuzz::FlowState;

const std::string kEnd = "\r\n.\r\n";
const std::string kReply = "550 5.7.1 Message rejected: malicious attachment (ref 20261206-1)\r\n";

std::vector<uint8_t> held_frame(uint8_t version, bool vlan, bool options, uint8_t flags = kTcpAck | kTcpPsh) {
  FlowState f{version, 7, 40000, 25, {1000, 5000}};
  const auto l4 = fuzz::tcp_segment(f, true, 1000, 5000, flags, options,
                                    reinterpret_cast<const uint8_t*>(kEnd.data()), kEnd.size());
  return fuzz::ethernet(f, fuzz::ip_packet(f, true, l4.data(), l4.size()), vlan);
}

// An independent check of both checksums: summed with the checksum field in, the result is 0xffff.
void expect_checksums(const uint8_t* frame, const PacketInfo& p) {
  const uint8_t* ip = frame + p.l3_offset;
  const std::size_t tcp_len = p.ip_end - p.l4_offset;
  uint32_t sum = 0;
  if (p.ip_version == 4) {
    uint32_t h = 0;
    for (int i = 0; i < 20; i += 2) h += ip[i] << 8 | ip[i + 1];
    while (h >> 16) h = (h & 0xffff) + (h >> 16);
    EXPECT_EQ(h, 0xffffu) << "IPv4 header checksum";
    for (int i = 12; i < 20; i += 2) sum += ip[i] << 8 | ip[i + 1];
    sum += 6 + tcp_len;
  } else {
    for (int i = 8; i < 40; i += 2) sum += ip[i] << 8 | ip[i + 1];
    sum += 6 + tcp_len;
  }
  const uint8_t* t = frame + p.l4_offset;
  for (std::size_t i = 0; i + 1 < tcp_len; i += 2) sum += t[i] << 8 | t[i + 1];
  if (tcp_len & 1) sum += t[tcp_len - 1] << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  EXPECT_EQ(sum, 0xffffu) << "TCP checksum";
}

PacketInfo decoded(const ForgedFrame& f) {
  PacketInfo p{};
  EXPECT_EQ(decode_packet(f.bytes, f.len, p), DecodeStatus::ok);
  return p;
}

TEST(SegmentForge, TheReplyGoesToTheClientAsIfFromTheServerAndAcksTheHeldSegment) {
  for (uint8_t version : {4, 6})
    for (bool vlan : {false, true}) {
      SCOPED_TRACE(testing::Message() << "IPv" << int(version) << (vlan ? " VLAN" : ""));
      const auto held = held_frame(version, vlan, /*options=*/true);
      PacketInfo h{};
      ASSERT_EQ(decode_packet(held.data(), held.size(), h), DecodeStatus::ok);
      ForgedFrame out;
      ForgeSpec spec;
      spec.flags = kTcpPsh | kTcpAck;
      spec.payload = kReply;
      spec.window = 29200;
      ASSERT_EQ(forge_segment(held.data(), held.size(), LinkType::ethernet, spec, out), ForgeStatus::ok);
      const PacketInfo p = decoded(out);
      EXPECT_EQ(p.ip_version, version);
      EXPECT_EQ(p.vlan_depth, vlan ? 1 : 0);
      EXPECT_EQ(0, std::memcmp(p.src_addr, h.dst_addr, version == 4 ? 4 : 16));
      EXPECT_EQ(0, std::memcmp(p.dst_addr, h.src_addr, version == 4 ? 4 : 16));
      EXPECT_EQ(p.src_port, 25);
      EXPECT_EQ(p.dst_port, 40000);
      EXPECT_EQ(p.tcp_seq, 5000u);                // what the client expects from the server
      EXPECT_EQ(p.tcp_ack, 1000u + kEnd.size());  // the held segment, delivered
      EXPECT_EQ(p.tcp_flags, kTcpPsh | kTcpAck);
      EXPECT_EQ(p.tcp_window, 29200);
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(out.bytes + p.payload_offset), p.payload_len), kReply);
      EXPECT_EQ(0, std::memcmp(out.bytes, held.data() + 6, 6));  // Ethernet addresses swapped
      EXPECT_EQ(0, std::memcmp(out.bytes + 6, held.data(), 6));
      if (vlan) {
        EXPECT_EQ(0, std::memcmp(out.bytes + 12, held.data() + 12, 4));  // the tag as it was
      }
      expect_checksums(out.bytes, p);
    }
}

TEST(SegmentForge, TheResetReachesTheServerExactlyInWindow) {
  for (uint8_t version : {4, 6}) {
    const auto held = held_frame(version, false, false);
    ForgedFrame out;
    ForgeSpec spec;
    spec.to_client = false;
    spec.flags = kTcpRst | kTcpAck;
    spec.window = 0;
    ASSERT_EQ(forge_segment(held.data(), held.size(), LinkType::ethernet, spec, out), ForgeStatus::ok);
    const PacketInfo p = decoded(out);
    EXPECT_EQ(p.src_port, 40000);
    EXPECT_EQ(p.dst_port, 25);
    EXPECT_EQ(p.tcp_seq, 1000u);  // the held segment never reached the server: its next byte
    EXPECT_EQ(p.tcp_ack, 5000u);
    EXPECT_EQ(p.tcp_flags, kTcpRst | kTcpAck);
    EXPECT_EQ(p.payload_len, 0);
    EXPECT_EQ(out.len, 60u + (version == 6 ? 14u : 0u));  // padded to the Ethernet minimum (IPv4)
    EXPECT_EQ(0, std::memcmp(out.bytes, held.data(), 12));  // same direction: same addresses
    expect_checksums(out.bytes, p);
  }
}

TEST(SegmentForge, OffsetsFollowWhatWasSentAndAFinIsAcknowledged) {
  const auto held = held_frame(4, false, false, kTcpAck | kTcpPsh | kTcpFin);
  ForgedFrame out;
  ForgeSpec spec;
  spec.seq_offset = static_cast<uint32_t>(kReply.size());  // a second segment after the reply
  spec.flags = kTcpFin | kTcpAck;
  ASSERT_EQ(forge_segment(held.data(), held.size(), LinkType::ethernet, spec, out), ForgeStatus::ok);
  const PacketInfo p = decoded(out);
  EXPECT_EQ(p.tcp_seq, 5000u + kReply.size());
  EXPECT_EQ(p.tcp_ack, 1000u + kEnd.size() + 1);  // the client's FIN counts one
}

TEST(SegmentForge, RefusesWhatItCannotForge) {
  ForgedFrame out;
  ForgeSpec spec;
  const std::vector<uint8_t> arp(60, 0);
  EXPECT_EQ(forge_segment(arp.data(), arp.size(), LinkType::ethernet, spec, out), ForgeStatus::not_tcp);
  const auto held = held_frame(4, false, false);
  const std::string big(kMaxForgedPayload + 1, 'x');
  spec.payload = big;
  EXPECT_EQ(forge_segment(held.data(), held.size(), LinkType::ethernet, spec, out), ForgeStatus::too_large);
}

// tshark, an independent decoder, validates both checksums and reads the fields back.
TEST(SegmentForge, TsharkAgrees) {
  if (std::system("command -v tshark >/dev/null 2>&1") != 0) GTEST_SKIP() << "tshark is not installed";
  char path[] = "/tmp/sluice-forge-XXXXXX.pcap";
  const int fd = mkstemps(path, 5);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream pcap(path, std::ios::binary);
    const uint32_t gh[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
    pcap.write(reinterpret_cast<const char*>(gh), 24);
    for (uint8_t version : {4, 6})
      for (bool to_client : {true, false}) {
        const auto held = held_frame(version, version == 6, true);
        ForgedFrame out;
        ForgeSpec spec;
        spec.to_client = to_client;
        spec.flags = to_client ? kTcpPsh | kTcpAck : kTcpRst | kTcpAck;
        if (to_client) spec.payload = kReply;
        ASSERT_EQ(forge_segment(held.data(), held.size(), LinkType::ethernet, spec, out), ForgeStatus::ok);
        const uint32_t rh[4] = {1, 0, out.len, out.len};
        pcap.write(reinterpret_cast<const char*>(rh), 16);
        pcap.write(reinterpret_cast<const char*>(out.bytes), out.len);
      }
  }
  const std::string cmd = std::string("tshark -r ") + path +
                          " -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE -o tcp.relative_sequence_numbers:FALSE"
                          " -T fields -E separator=, -e tcp.seq -e tcp.ack -e tcp.flags -e tcp.checksum.status"
                          " -e ip.checksum.status -e tcp.srcport -e tcp.len 2>/dev/null";
  std::FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::vector<std::string> lines;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) lines.emplace_back(buf);
  pclose(p);
  std::remove(path);
  const std::string n = std::to_string(kReply.size());
  ASSERT_EQ(lines.size(), 4u);
  // tcp.checksum.status / ip.checksum.status: 1 is "Good" (IPv6 has no header checksum: empty).
  EXPECT_EQ(lines[0], "5000,1005,0x0018,1,1,25," + n + "\n");
  EXPECT_EQ(lines[1], "1000,5000,0x0014,1,1,40000,0\n");
  EXPECT_EQ(lines[2], "5000,1005,0x0018,1,,25," + n + "\n");
  EXPECT_EQ(lines[3], "1000,5000,0x0014,1,,40000,0\n");
}

TEST(StartTls, MaskOverwritesOnlyTheCapabilityLinesOfAReply) {
  std::string r = "250-mx.example.net\r\n250-PIPELINING\r\n250-starttls\r\n250-XSTARTTLS\r\n"
                  "250-STARTTLSX\r\n250 STARTTLS\r\n";
  const std::size_t before = r.size();
  EXPECT_EQ(mask_starttls(reinterpret_cast<uint8_t*>(r.data()), r.size()), 2u);
  EXPECT_EQ(r, "250-mx.example.net\r\n250-PIPELINING\r\n250-X-NO-TLS\r\n250-XSTARTTLS\r\n"
               "250-STARTTLSX\r\n250 X-NO-TLS\r\n");
  EXPECT_EQ(r.size(), before);
  std::string body = "220 mx ESMTP STARTTLS\r\n";  // not a 250 capability line
  EXPECT_EQ(mask_starttls(reinterpret_cast<uint8_t*>(body.data()), body.size()), 0u);
  std::string cut = "250-STARTT";  // the keyword split over two segments is not seen
  EXPECT_EQ(mask_starttls(reinterpret_cast<uint8_t*>(cut.data()), cut.size()), 0u);
}

TEST(StartTls, TheCommandAloneInItsSegment) {
  auto is = [](std::string s) { return is_starttls_command(reinterpret_cast<const uint8_t*>(s.data()), s.size()); };
  EXPECT_TRUE(is("STARTTLS\r\n"));
  EXPECT_TRUE(is("starttls\r\n"));
  EXPECT_TRUE(is("StartTLS\n"));
  EXPECT_FALSE(is("STARTTLS x\r\n"));
  EXPECT_FALSE(is("NOOP\r\nSTARTTLS\r\n"));
  EXPECT_FALSE(is("STARTTLS"));
}

TEST(StartTls, ChecksumRefreshedAfterARewrite) {
  for (uint8_t version : {4, 6}) {
    FlowState f{version, 7, 40000, 25, {1000, 5000}};
    const std::string reply = "250-mx\r\n250 STARTTLS\r\n";
    const auto l4 = fuzz::tcp_segment(f, false, 5000, 1000, kTcpAck | kTcpPsh, false,
                                      reinterpret_cast<const uint8_t*>(reply.data()), reply.size());
    auto frame = fuzz::ethernet(f, fuzz::ip_packet(f, false, l4.data(), l4.size()), version == 6);
    PacketInfo p{};
    ASSERT_EQ(decode_packet(frame.data(), frame.size(), p), DecodeStatus::ok);
    if (version == 4) {  // the generator leaves the IPv4 header checksum 0 too
      uint8_t* ip = frame.data() + p.l3_offset;
      const uint16_t c = static_cast<uint16_t>(~checksum_fold(checksum_add(ip, 20)));
      ip[10] = static_cast<uint8_t>(c >> 8);
      ip[11] = static_cast<uint8_t>(c);
    }
    // The generator leaves the checksum 0: refreshed, it sums right; rewritten and refreshed too.
    refresh_tcp_checksum(frame.data(), p);
    expect_checksums(frame.data(), p);
    ASSERT_EQ(mask_starttls(frame.data() + p.payload_offset, p.payload_len), 1u);
    refresh_tcp_checksum(frame.data(), p);
    expect_checksums(frame.data(), p);
  }
}

}  // namespace
}  // namespace sluice::reassembly
