// libFuzzer target for reassembly/packet_decode: decode_packet on the raw input for every LinkType
// and decode_ip on it, each on an exact-size heap copy (ASan catches any read past `len`). When a
// decode succeeds, its offsets must lie inside the bytes given, and symmetric_flow_hash must not
// depend on the direction.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "reassembly/packet_decode.h"

using namespace sluice::reassembly;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "packet_decode_fuzz: invariant violated: %s\n", what);
  std::abort();
}

void check(DecodeStatus st, const PacketInfo& info, std::size_t len) {
  if (st != DecodeStatus::ok && st != DecodeStatus::not_ip && st != DecodeStatus::truncated &&
      st != DecodeStatus::malformed)
    fail("unknown DecodeStatus");
  if (st != DecodeStatus::ok) return;
  if (info.ip_version != 4 && info.ip_version != 6) fail("ok with an IP version other than 4 or 6");
  if (info.ip_end > len) fail("ip_end past the bytes given");
  if (info.l3_offset >= info.ip_end) fail("l3_offset not before ip_end");
  if (info.vlan_depth > kMaxVlanTags) fail("more VLAN tags than kMaxVlanTags");
  if (info.l4_offset != 0 && (info.l4_offset < info.l3_offset || info.l4_offset > info.ip_end))
    fail("l4_offset outside the datagram");
  if (info.fragment && info.fragment_payload > info.ip_end) fail("fragment_payload past ip_end");
  if (info.tcp) {
    if (info.l4_proto != 6) fail("tcp set for another protocol");
    if (info.fragment) fail("tcp set on a fragment");
    if (info.payload_offset < info.l4_offset + 20) fail("TCP payload inside the TCP header");
    if (info.payload_offset + std::size_t{info.payload_len} != info.ip_end) fail("TCP payload does not end at ip_end");
  }
  for (FlowHashMode mode : {FlowHashMode::ip_pair, FlowHashMode::five_tuple}) {
    PacketInfo rev = info;
    std::memcpy(rev.src_addr, info.dst_addr, 16);
    std::memcpy(rev.dst_addr, info.src_addr, 16);
    rev.src_port = info.dst_port;
    rev.dst_port = info.src_port;
    if (symmetric_flow_hash(info, mode) != symmetric_flow_hash(rev, mode)) fail("flow hash depends on direction");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  // PacketInfo offsets are 16-bit: frames are at most 64 KiB (a first mbuf segment is far less).
  if (size > 65535) return 0;
  std::unique_ptr<uint8_t[]> buf(new uint8_t[size ? size : 1]);
  if (size) std::memcpy(buf.get(), data, size);
  for (LinkType lt : {LinkType::ethernet, LinkType::null, LinkType::raw, LinkType::linux_sll}) {
    PacketInfo info;
    std::memset(&info, 0xa5, sizeof(info));  // fields left unset must not matter
    check(decode_packet(buf.get(), size, info, lt), info, size);
  }
  PacketInfo info;
  std::memset(&info, 0xa5, sizeof(info));
  check(decode_ip(buf.get(), size, info), info, size);
  if (size >= 4) {
    uint32_t dlt;
    std::memcpy(&dlt, data, 4);
    (void)link_type_from_dlt(dlt);
  }
  return 0;
}
