// libFuzzer target for reassembly/reassembler: frames built from the input go through decode_packet,
// wants() and on_packet() as in dataplane/rx_lcore.cpp, into a Reassembler with small limits so the
// flow table, the session pool, the out-of-order pool and the fragment table all fill up. Every
// emitted event must be one valid JSON object with a timestamp and an event_type.
//
// Input layout
//   byte 0    configuration: bit 0 max_sessions 1 or 2, bit 1 stream_max_buffered 8 or 64 KiB,
//             bit 2 stream_max_segments 4 or 64 (the pool always has 16 blocks)
//   records   [op][...]; op & 7 chooses:
//     0..3  a TCP segment on one of 6 flows (4 to port 25 over IPv4/IPv6, one to 587, one to
//           the implicit-TLS port 465): [sel][flags][len][seq/ack bytes as sel says][payload]
//           sel bits 0-2 flow (mod 6), bit 3 server->client, bits 4-5 seq mode (next expected,
//           next + delta byte, absolute 4 bytes, next - delta byte), bit 6 ack = peer's next +
//           delta byte, bit 7 one VLAN tag; op bit 3: 12 bytes of TCP options; op bit 4: payload
//           length * 8; op bit 5: Ethernet padding after the IP datagram
//     4     the same segment with up to 4 bytes of the frame overwritten: [n][pos,val]*n
//     5     the same segment sent as IP fragments: [ctl] then the segment fields; ctl bits 0-1
//           pieces - 1, bit 2 reverse order, bit 3 one piece twice, bit 4 that copy altered
//           (conflicting overlap), bit 5 the last piece dropped, bit 6 odd cut (not 8-aligned)
//     6     a raw frame: [len][len bytes], decoded as Ethernet
//     7     time passes: [n], n * 250 ms, then expire()
//   Every record advances the clock by 1 ms. flush_all() at the end, then a second flush_all() and
//   an expire() that must emit nothing.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "reassembly/packet_decode.h"
#include "reassembly/reassembler.h"
#include "tests/fuzz/event_lines.h"
#include "tests/fuzz/tcp_frames.h"

using namespace sluice::reassembly;
using namespace sluice::fuzz;

namespace {

class Harness {
 public:
  Harness(uint8_t cfg_byte) {
    ReassemblyConfig c{};
    c.smtp_ports = {25, 587};
    c.implicit_tls_ports = {465};
    c.max_flows = 4;
    c.max_sessions = cfg_byte & 1 ? 2 : 1;
    // memcap_mb 0 is below the configuration minimum; the constructor keeps 16 blocks, which is
    // the point: the pool runs dry after a few out-of-order segments. (A 1 MiB pool would also cost
    // fresh pages on every run: a third of the speed.) With the larger per-stream limits the pool
    // runs dry first; with the smaller ones the stream limits are reached first.
    c.memcap_mb = 0;
    c.stream = {cfg_byte & 2 ? 65536u : 8192u, cfg_byte & 4 ? 64u : 4u};
    c.idle_timeout_s = 30;
    c.closed_timeout_s = 2;
    c.max_fragment_sets = 2;
    c.fragment_timeout_s = 5;
    c.embryonic_timeout_s = 10;
    c.emergency_idle_timeout_s = 10;
    c.emergency_embryonic_timeout_s = 2;
    c.drop_untracked_syn = (cfg_byte & 8) != 0;
    c.emergency_recovery_percent = 80;
    reasm_ = std::make_unique<Reassembler>(c, out_, 0);
    for (int k = 0; k < 6; ++k) {
      FlowState& f = flows_[k];
      f.ip_version = k % 3 == 2 ? 6 : 4;
      f.client_host = static_cast<uint8_t>(1 + k);
      f.client_port = static_cast<uint16_t>(40000 + k);
      f.server_port = k == 4 ? 587 : k == 5 ? 465 : 25;
      f.next[0] = 1000u * (k + 1);
      f.next[1] = 0xfffff000u + 100u * k;  // the server side wraps around 2^32 early
    }
  }

  void run(Input& in) {
    while (!in.done()) {
      now_ += 1000;
      const uint8_t op = in.u8();
      switch (op & 7) {
        case 0: case 1: case 2: case 3:
          segment(in, op, 0);
          break;
        case 4:
          segment(in, op, 1);
          break;
        case 5:
          segment(in, op, 2);
          break;
        case 6: {
          const uint8_t* bytes;
          const std::size_t len = in.take(in.u8(), bytes);
          feed(std::vector<uint8_t>(bytes, bytes + len));
          break;
        }
        case 7:
          now_ += int64_t{in.u8()} * 250000;
          reasm_->expire(now_);
          break;
      }
    }
    now_ += 1000000;
    reasm_->flush_all(now_);
    const uint64_t after_flush = out_.events;
    reasm_->flush_all(now_);
    reasm_->expire(now_ + 3600LL * 1000000);
    if (out_.events != after_flush) fail("events after flush_all with no new packet");
  }

 private:
  // kind 0: plain, 1: corrupted, 2: fragmented
  void segment(Input& in, uint8_t op, int kind) {
    const uint8_t ctl = kind == 2 ? in.u8() : 0;
    const uint8_t sel = in.u8();
    const uint8_t flags = in.u8();
    std::size_t want = in.u8();
    if (op & 0x10) want *= 8;
    const int flow = (sel & 7) % 6;
    FlowState& f = flows_[flow];
    const int dir = (sel >> 3) & 1;
    const bool to_server = dir == 0;
    uint32_t seq = f.next[dir];
    switch ((sel >> 4) & 3) {
      case 1: seq += in.u8(); break;
      case 2: seq = in.u32(); break;
      case 3: seq -= in.u8(); break;
      default: break;
    }
    uint32_t ack = f.next[dir ^ 1];
    if (sel & 0x40) ack += in.u8();
    const uint8_t* payload;
    const std::size_t len = in.take(want, payload);
    const bool options = op & 8;

    const std::vector<uint8_t> l4 = tcp_segment(f, to_server, seq, ack, flags, options, payload, len);
    advance(f, dir, seq, len, flags);

    const bool vlan = sel & 0x80;
    const std::size_t padding = op & 0x20 ? 7 : 0;
    if (kind != 2) {
      std::vector<uint8_t> fr = ethernet(f, ip_packet(f, to_server, l4.data(), l4.size()), vlan, padding);
      if (kind == 1) {
        const unsigned n = in.u8() & 3;
        for (unsigned k = 0; k <= n; ++k) {
          const uint8_t pos = in.u8();
          const uint8_t val = in.u8();
          fr[pos % fr.size()] = val;
        }
      }
      feed(fr);
      return;
    }
    fragments(f, to_server, l4, ctl, vlan);
  }

  void fragments(FlowState& f, bool to_server, const std::vector<uint8_t>& l4, uint8_t ctl, bool vlan) {
    const std::size_t pieces = (ctl & 3) + 1;
    const uint32_t id = f.ip_id++;
    // Cut points at multiples of 8 (IP fragment offsets are in 8-byte units), one odd when asked.
    std::vector<std::size_t> cuts{0};
    for (std::size_t k = 1; k < pieces; ++k) {
      std::size_t c = (l4.size() * k / pieces) & ~std::size_t{7};
      if ((ctl & 0x40) && k == 1) c += 3;
      if (c <= cuts.back() || c >= l4.size()) continue;
      cuts.push_back(c);
    }
    cuts.push_back(l4.size());
    struct Piece {
      std::size_t off, len;
      bool more;
    };
    std::vector<Piece> ps;
    for (std::size_t k = 0; k + 1 < cuts.size(); ++k) ps.push_back({cuts[k], cuts[k + 1] - cuts[k], k + 2 < cuts.size()});
    if ((ctl & 0x20) && ps.size() > 1) ps.pop_back();
    if (ctl & 4) std::reverse(ps.begin(), ps.end());
    std::vector<uint8_t> altered = l4;
    for (auto& b : altered) b ^= 0x5a;
    for (std::size_t k = 0; k < ps.size(); ++k) {
      const Piece& p = ps[k];
      feed(ethernet(f, ip_packet(f, to_server, l4.data() + p.off, p.len, true, static_cast<uint16_t>(p.off), p.more, id), vlan, 0));
      if ((ctl & 8) && k == 0) {
        const uint8_t* src = (ctl & 0x10) ? altered.data() : l4.data();
        feed(ethernet(f, ip_packet(f, to_server, src + p.off, p.len, true, static_cast<uint16_t>(p.off), p.more, id), vlan, 0));
      }
    }
  }

  // As dataplane/rx_lcore.cpp: decode, ask, hand over. An exact-size heap copy so ASan sees any
  // read past the frame.
  void feed(const std::vector<uint8_t>& frame) {
    const std::size_t len = frame.size();
    std::unique_ptr<uint8_t[]> buf(new uint8_t[len ? len : 1]);
    if (len) std::memcpy(buf.get(), frame.data(), len);
    PacketInfo info;
    if (decode_packet(buf.get(), len, info) != DecodeStatus::ok) return;
    if (info.ip_end > len) fail("decode_packet: ip_end past the frame");
    if (!reasm_->wants(info)) return;
    reasm_->on_packet(info, buf.get(), now_);
  }

  RenderedEvents out_;
  std::unique_ptr<Reassembler> reasm_;
  FlowState flows_[6];
  int64_t now_ = 1700000000LL * 1000000;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  Input in{data, size, 1};
  Harness h(data[0]);
  h.run(in);
  return 0;
}
