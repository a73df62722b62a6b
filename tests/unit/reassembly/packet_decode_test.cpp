#include "reassembly/packet_decode.h"

#include <gtest/gtest.h>

#include <vector>

using namespace sluice::reassembly;

namespace {

struct Frame {
  std::vector<uint8_t> b;
  void u8(uint8_t v) { b.push_back(v); }
  void u16(uint16_t v) { b.push_back(uint8_t(v >> 8)); b.push_back(uint8_t(v)); }
  void bytes(std::initializer_list<uint8_t> v) { b.insert(b.end(), v); }
  void zeros(std::size_t n) { b.insert(b.end(), n, 0); }
};

Frame ether(std::initializer_list<uint16_t> tags, uint16_t type) {
  Frame f;
  f.zeros(12);  // MACs
  for (uint16_t tpid : tags) {
    f.u16(tpid);
    f.u16(100);  // TCI
  }
  f.u16(type);
  return f;
}

void ipv4(Frame& f, uint8_t proto, uint16_t frag = 0, uint8_t ihl = 5) {
  f.u8(uint8_t(0x40 | ihl));
  f.u8(0);
  f.u16(uint16_t(ihl * 4 + 20));  // header + a bare TCP header
  f.u16(1);
  f.u16(frag);
  f.u8(64);
  f.u8(proto);
  f.u16(0);
  f.bytes({198, 51, 100, 7});
  f.bytes({192, 0, 2, 25});
  f.zeros((ihl - 5) * 4u);
}

void tcp_ports(Frame& f, uint16_t sp, uint16_t dp) {
  f.u16(sp);
  f.u16(dp);
  f.zeros(8);   // seq, ack
  f.u8(0x50);   // data offset: 5 words
  f.zeros(7);
}

}  // namespace

TEST(PacketDecode, Ipv4Tcp) {
  Frame f = ether({}, 0x0800);
  ipv4(f, 6);
  tcp_ports(f, 40000, 25);
  PacketInfo info;
  ASSERT_EQ(decode_packet(f.b.data(), f.b.size(), info), DecodeStatus::ok);
  EXPECT_EQ(info.ip_version, 4);
  EXPECT_EQ(info.l4_proto, 6);
  EXPECT_EQ(info.src_port, 40000);
  EXPECT_EQ(info.dst_port, 25);
  EXPECT_EQ(info.l3_offset, 14);
  EXPECT_EQ(info.l4_offset, 34);
  EXPECT_EQ(info.src_addr[0], 198);
  EXPECT_FALSE(info.fragment);
}

TEST(PacketDecode, Ipv4OptionsAndQinQ) {
  Frame f = ether({0x88A8, 0x8100}, 0x0800);
  ipv4(f, 6, 0, 7);
  tcp_ports(f, 1025, 587);
  PacketInfo info;
  ASSERT_EQ(decode_packet(f.b.data(), f.b.size(), info), DecodeStatus::ok);
  EXPECT_EQ(info.vlan_depth, 2);
  EXPECT_EQ(info.l3_offset, 22);
  EXPECT_EQ(info.l4_offset, 22 + 28);
  EXPECT_EQ(info.dst_port, 587);
}

TEST(PacketDecode, TooManyTagsIsNotIp) {
  Frame f = ether({0x8100, 0x8100, 0x8100, 0x8100}, 0x0800);
  ipv4(f, 6);
  tcp_ports(f, 1, 2);
  PacketInfo info;
  EXPECT_EQ(decode_packet(f.b.data(), f.b.size(), info), DecodeStatus::not_ip);
}

TEST(PacketDecode, Ipv4FragmentsCarryNoPortsAfterTheFirst) {
  Frame first = ether({}, 0x0800);
  ipv4(first, 6, 0x2000);  // MF
  tcp_ports(first, 40000, 25);
  Frame later = ether({}, 0x0800);
  ipv4(later, 6, 185);  // offset 185*8, no MF
  later.zeros(20);
  PacketInfo a, b;
  ASSERT_EQ(decode_packet(first.b.data(), first.b.size(), a), DecodeStatus::ok);
  ASSERT_EQ(decode_packet(later.b.data(), later.b.size(), b), DecodeStatus::ok);
  EXPECT_TRUE(a.fragment);
  EXPECT_EQ(a.dst_port, 25);
  EXPECT_TRUE(b.fragment);
  EXPECT_EQ(b.l4_offset, 0);
  EXPECT_EQ(b.dst_port, 0);
  // ip_pair keeps every fragment with its connection.
  EXPECT_EQ(symmetric_flow_hash(a, FlowHashMode::ip_pair), symmetric_flow_hash(b, FlowHashMode::ip_pair));
}

TEST(PacketDecode, Ipv6WithExtensionHeaders) {
  Frame f = ether({0x8100}, 0x86DD);
  f.bytes({0x60, 0, 0, 0});
  f.u16(48);
  f.u8(0);  // next: hop-by-hop
  f.u8(64);
  f.zeros(15);
  f.u8(1);  // src ::1
  f.zeros(15);
  f.u8(2);  // dst ::2
  f.u8(60);  // hop-by-hop: next = destination options, len 0 (8 bytes)
  f.u8(0);
  f.zeros(6);
  f.u8(6);  // destination options: next = TCP
  f.u8(0);
  f.zeros(6);
  tcp_ports(f, 50000, 25);
  PacketInfo info;
  ASSERT_EQ(decode_packet(f.b.data(), f.b.size(), info), DecodeStatus::ok);
  EXPECT_EQ(info.ip_version, 6);
  EXPECT_EQ(info.l4_proto, 6);
  EXPECT_EQ(info.l4_offset, 18 + 40 + 16);
  EXPECT_EQ(info.src_port, 50000);
  EXPECT_EQ(info.src_addr[15], 1);
  EXPECT_EQ(info.dst_addr[15], 2);
}

// Found by tests/fuzz/packet_decode_fuzz: the extension-header walk was bounded by the frame, not
// by the IPv6 payload length, so headers read from the padding after the datagram gave `ok` with
// an l4_offset past ip_end (past the frame itself for a large header length).
TEST(PacketDecode, Ipv6ExtensionHeadersEndWithTheDatagram) {
  Frame f = ether({}, 0x86DD);
  f.bytes({0x60, 0, 0, 0});
  f.u16(0);  // payload length 0: the datagram is the bare header
  f.u8(0);   // next: hop-by-hop
  f.u8(64);
  f.zeros(32);
  f.u8(17);  // padding that looks like a hop-by-hop header (next UDP, len 0) then UDP ports
  f.u8(0);
  f.zeros(6);
  f.u16(53);
  f.u16(25);
  f.zeros(4);
  PacketInfo info;
  EXPECT_EQ(decode_packet(f.b.data(), f.b.size(), info), DecodeStatus::truncated);
  // A header length reaching past the frame (the fuzzer's input): 255 * 8 + 8 bytes from byte 54.
  f.b[14 + 5] = 8;   // payload length 8: the hop-by-hop header is inside the datagram
  f.b[14 + 41] = 255;
  f.b[14 + 40] = 156;  // and announces a protocol without ports
  EXPECT_EQ(decode_packet(f.b.data(), f.b.size(), info), DecodeStatus::truncated);
  f.b[14 + 41] = 0;   // now well formed: UDP header missing (payload ends at the extension header)
  f.b[14 + 40] = 59;  // no next header (RFC 8200 4.7)
  ASSERT_EQ(decode_packet(f.b.data(), f.b.size(), info), DecodeStatus::ok);
  EXPECT_EQ(info.l4_proto, 59);
  EXPECT_EQ(info.l4_offset, 14 + 48);
  EXPECT_EQ(info.ip_end, 14 + 48);
}

TEST(PacketDecode, TruncatedAndMalformedNeverOverread) {
  Frame f = ether({}, 0x0800);
  ipv4(f, 6);
  tcp_ports(f, 1, 2);
  PacketInfo info;
  // Every prefix of a valid frame decodes to a status, never past its length (ASan builds check).
  for (std::size_t n = 0; n < f.b.size(); ++n) {
    std::vector<uint8_t> cut(f.b.begin(), f.b.begin() + n);
    const DecodeStatus s = decode_packet(cut.data(), cut.size(), info);
    EXPECT_TRUE(s == DecodeStatus::truncated || s == DecodeStatus::ok) << n;
  }
  f.b[14] = 0x43;  // IHL 3
  EXPECT_EQ(decode_packet(f.b.data(), f.b.size(), info), DecodeStatus::malformed);
  Frame arp = ether({}, 0x0806);
  arp.zeros(28);
  EXPECT_EQ(decode_packet(arp.b.data(), arp.b.size(), info), DecodeStatus::not_ip);
}

TEST(PacketDecode, TcpHeaderAndPayloadExcludeEthernetPadding) {
  Frame f = ether({}, 0x0800);
  ipv4(f, 6);
  f.u16(40000);
  f.u16(25);
  f.bytes({0, 0, 0, 7});      // seq 7
  f.bytes({0, 0, 1, 0});      // ack 256
  f.u8(0x50);                 // data offset 5
  f.u8(0x18);                 // PSH ACK
  f.zeros(6);
  f.zeros(6);                 // padding to 60 bytes: not payload
  PacketInfo info;
  ASSERT_EQ(decode_packet(f.b.data(), f.b.size(), info), DecodeStatus::ok);
  EXPECT_TRUE(info.tcp);
  EXPECT_EQ(info.tcp_seq, 7u);
  EXPECT_EQ(info.tcp_ack, 256u);
  EXPECT_EQ(info.tcp_flags, 0x18);
  EXPECT_EQ(info.payload_offset, 54);
  EXPECT_EQ(info.payload_len, 0);
  EXPECT_EQ(info.ip_end, 54);
}

TEST(PacketDecode, OtherLinkTypes) {
  Frame ip;
  ipv4(ip, 6);
  tcp_ports(ip, 40000, 25);
  PacketInfo info;
  ASSERT_EQ(decode_packet(ip.b.data(), ip.b.size(), info, LinkType::raw), DecodeStatus::ok);
  EXPECT_EQ(info.dst_port, 25);
  Frame null;
  null.bytes({2, 0, 0, 0});  // AF_INET, little-endian capture
  null.b.insert(null.b.end(), ip.b.begin(), ip.b.end());
  ASSERT_EQ(decode_packet(null.b.data(), null.b.size(), info, LinkType::null), DecodeStatus::ok);
  EXPECT_EQ(info.l3_offset, 4);
  EXPECT_EQ(info.dst_port, 25);
  Frame sll;
  sll.zeros(14);
  sll.u16(0x0800);
  sll.b.insert(sll.b.end(), ip.b.begin(), ip.b.end());
  ASSERT_EQ(decode_packet(sll.b.data(), sll.b.size(), info, LinkType::linux_sll), DecodeStatus::ok);
  EXPECT_EQ(info.l3_offset, 16);
  EXPECT_EQ(link_type_from_dlt(0), LinkType::null);
  EXPECT_EQ(link_type_from_dlt(1), LinkType::ethernet);
  EXPECT_EQ(link_type_from_dlt(101), LinkType::raw);
}

TEST(PacketDecode, FlowHashIsSymmetricInBothModes) {
  for (int i = 0; i < 300; ++i) {
    PacketInfo a{};
    a.ip_version = 4;
    a.l4_proto = 6;
    a.src_addr[0] = 10, a.src_addr[3] = uint8_t(i);
    a.dst_addr[0] = 192, a.dst_addr[3] = uint8_t(i * 5);
    a.src_port = uint16_t(1024 + i);
    a.dst_port = 25;
    PacketInfo b = a;
    std::swap(b.src_port, b.dst_port);
    std::swap(b.src_addr, b.dst_addr);
    EXPECT_EQ(symmetric_flow_hash(a, FlowHashMode::five_tuple), symmetric_flow_hash(b, FlowHashMode::five_tuple));
    EXPECT_EQ(symmetric_flow_hash(a, FlowHashMode::ip_pair), symmetric_flow_hash(b, FlowHashMode::ip_pair));
  }
}

TEST(PacketDecode, FiveTupleHashSpreadsConnectionsOfOneHostPair) {
  int buckets[2] = {};
  PacketInfo a{};
  a.ip_version = 4;
  a.l4_proto = 6;
  a.src_addr[0] = 10;
  a.dst_addr[0] = 192;
  a.dst_port = 25;
  for (int i = 0; i < 1000; ++i) {
    a.src_port = uint16_t(30000 + i);
    buckets[symmetric_flow_hash(a, FlowHashMode::five_tuple) % 2]++;
  }
  EXPECT_GT(buckets[0], 400);
  EXPECT_GT(buckets[1], 400);
}
