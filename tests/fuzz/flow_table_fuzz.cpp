// libFuzzer target for the flow table under pressure: reassembly/flow_table and how
// reassembly/reassembler.cpp holds, evicts, expires and flushes its flows (embryonic and active
// LRU lists, eviction of the oldest embryonic flow, session slots taken only at payload, emergency
// timeouts entered and left, untracked connections and drop_untracked_syn), and the next step of
// every frame (reassembly/frame_step.h: hold when the message observer asks).
//
// Two modes, chosen by bit 7 of byte 0:
//
// Table (bit 7 set): FlowTable itself against a model (a list per LRU). Byte 1: capacity 1..8 and
// a hash mask (so that keys share buckets); then records [op][key]: op % 5 insert (when the key is
// absent, as the reassembler does after find()), remove, touch, activate, find; key % 16. After
// each: find() of every key, sizes, both lists walked both ways in the model's order, insert
// refused exactly when full, a new entry zeroed and embryonic.
//
// Reassembler (bit 7 clear): a Reassembler with tiny limits, fed frames built from the input, and
// beside it a model of its flow table that predicts every table event (flow events and their
// reasons, flow-layer anomalies, counters, emergency state, sessions in use, drops). What the model
// cannot know from outside (whether a reset matched a stream's next byte, whether both streams of
// a flow ended at a FIN) it learns from the counters and events of that frame, and checks the
// rest. Configuration, bytes 0-3:
//   byte 0  bits 0-1 max_flows 2..5, bits 2-3 max_sessions 1..4, bit 4 drop_untracked_syn,
//           bit 5 the final flush is a shutdown (else end of input), bit 6 an aborted flush_all
//           (the stop deadline passed) comes first
//   byte 1  embryonic_timeout_s 1..4 (bits 0-1), idle_timeout_s 2..9 (bits 2-4),
//           closed_timeout_s 1..4 (bits 5-6)
//   byte 2  emergency_embryonic_timeout_s 1..4 (bits 0-1), emergency_idle_timeout_s 1..8 (bits 2-4)
//   byte 3  emergency_recovery_percent 10..99
// Then records [op][...]; op bit 7: the message observers ask for the frame that ends a message
// to be held (hold_end()) while the record runs; op & 7:
//   0  handshake on connection sel & 7: [sel]; sel bit 3 the client's SYN only, bit 4 SYN and
//      SYN-ACK only, bit 5 the server sends a bare SYN first (it becomes the "client"), bit 6 a
//      new connection on the same ports (fresh sequence numbers)
//   1  a client line: [sel][k], k-th of kClientLines
//   2  a server line: [sel][k], k-th of kServerLines
//   3  a segment: [sel][flags][len][seq/ack bytes][payload]; sel bits 0-2 connection, bit 3
//      server->client, bits 4-5 seq mode (next, next + byte, absolute 4 bytes, next - byte),
//      bit 6 ack + byte; op bit 3: len * 8; op bit 4: TCP options
//   4  a whole transaction on a connection: [sel] (bit 3: greeting and EHLO first), MAIL, RCPT,
//      DATA, 354, content, the end of data, 250
//   5  an end: [sel]: sel bits 3-4: the client's FIN, the server's FIN, a reset at the client's
//      next sequence number, a reset [byte] past it
//   6  time: [n]: n * 250 ms pass; op bit 3: then expire(); op bit 4: the clock goes back n ms
//      instead (frames out of time order)
//   7  a SYN flood: [n]: n % 16 + 1 SYNs to port 25 from new connections
//   Connections 0..7: 10.0.0.(k+1) (IPv6 for k 3 and 7) to port 25 (587 for 5, the implicit-TLS
//   port 465 for 6); flood connections from 10.0.0.66, one port each. Every record advances the
//   clock by 1 ms.
// At the end, flush_all() (after the aborted one if configured), then a second flush_all() and an
// expire() an hour later must emit nothing and leave no session and no emergency. Checked on the
// way: every event valid JSON (event_lines.h); flows in the table never more than max_flows;
// every flow that entered reported exactly once (flow event) by eviction, timeout, FIN/RST or the
// flush, with the reason, direction, packet and byte counts the model expects, `inspected` false
// exactly when its session was refused; flows_created, flows_evicted, flows_table_full,
// sessions_pool_full, syns_dropped, emergency_entered, emergency, sessions_active equal to the
// model's after every call; a session only for an SMTP flow that showed payload; emergency left
// only below emergency_recovery_percent; a SYN dropped only with drop_untracked_syn when no session
// or no entry could take it; the flow_table_full anomaly once a second; every frame's next step
// drop exactly when its SYN was dropped, hold exactly when this frame's own flow ended a message
// whose observer asked (that message), else forward; observers' messages begun and ended in
// pairs, numbered 0, 1, 2... per flow, one smtp event per ended message, none open after the
// flush; the aborted flush emits nothing and counts exactly the unreported flows and their open
// or unanswered messages.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "reassembly/flow_table.h"
#include "reassembly/packet_decode.h"
#include "reassembly/reassembler.h"
#include "tests/fuzz/event_lines.h"
#include "tests/fuzz/tcp_frames.h"

using namespace sluice::reassembly;
using namespace sluice::fuzz;
namespace rec = sluice::records;

namespace {

// ---------------------------------------------------------------------------------------------
// Table mode: FlowTable against a model.

void table_mode(Input& in) {
  const uint8_t cfg = in.u8();
  const std::size_t capacity = 1 + (cfg & 7);
  const uint32_t mask = (cfg >> 3) & 15;  // hash = key & mask: 0 puts every key in one bucket
  FlowTable t(capacity);
  constexpr int kKeys = 16;
  FlowKey keys[kKeys];
  for (int k = 0; k < kKeys; ++k) {
    std::memset(&keys[k], 0, sizeof(FlowKey));
    keys[k].addr_lo[0] = static_cast<uint8_t>(k);
    keys[k].ip_version = 4;
    keys[k].proto = 6;
  }
  auto hash = [&](int k) { return static_cast<uint32_t>(k) & mask; };
  struct Entry {
    int key;
    bool embryonic;
  };
  std::vector<Entry> lru[2];  // [0] embryonic, [1] active, least recently used first
  uint64_t ids = 0;
  auto where = [&](int key) -> std::pair<int, std::size_t> {
    for (int l = 0; l < 2; ++l)
      for (std::size_t i = 0; i < lru[l].size(); ++i)
        if (lru[l][i].key == key) return {l, i};
    return {-1, 0};
  };
  auto check = [&] {
    if (t.size() != lru[0].size() + lru[1].size()) fail("FlowTable: size");
    if (t.size() > t.capacity()) fail("FlowTable: more flows than its capacity");
    if (t.embryonic() != lru[0].size()) fail("FlowTable: embryonic count");
    for (int k = 0; k < kKeys; ++k) {
      Flow* f = t.find(keys[k], hash(k));
      const auto [l, i] = where(k);
      if ((f != nullptr) != (l >= 0)) fail("FlowTable: find() disagrees with what was inserted");
      if (f && (f->flow_id != static_cast<uint64_t>(k) + 1 || f->embryonic != (l == 0))) fail("FlowTable: find() gave another entry");
    }
    Flow* heads[2] = {t.oldest_embryonic(), t.oldest_active()};
    for (int l = 0; l < 2; ++l) {
      const Flow* prev = nullptr;
      const Flow* f = heads[l];
      for (const Entry& e : lru[l]) {
        if (!f) fail("FlowTable: LRU list shorter than its flows");
        if (f->flow_id != static_cast<uint64_t>(e.key) + 1) fail("FlowTable: LRU order");
        if (f->lru_prev != prev) fail("FlowTable: LRU back link");
        if (f->embryonic != (l == 0)) fail("FlowTable: flow on the other list");
        prev = f;
        f = f->lru_next;
      }
      if (f) fail("FlowTable: LRU list longer than its flows");
    }
    const Flow* any = t.any();
    const Flow* want = heads[0] ? heads[0] : heads[1];
    if (any != want) fail("FlowTable: any() is not the oldest embryonic flow, else the oldest active one");
  };
  while (!in.done()) {
    const uint8_t op = in.u8();
    const int k = in.u8() % kKeys;
    const auto [l, i] = where(k);
    Flow* f = t.find(keys[k], hash(k));
    switch (op % 5) {
      case 0:  // insert
        if (l >= 0) break;
        f = t.insert(keys[k], hash(k));
        if (!f) {
          if (lru[0].size() + lru[1].size() < capacity) fail("FlowTable: insert refused below capacity");
          break;
        }
        if (lru[0].size() + lru[1].size() >= capacity) fail("FlowTable: insert past capacity");
        if (!f->embryonic || f->smtp || f->flow_id || f->reported || f->packets[0] || f->last_seen_us)
          fail("FlowTable: a new entry is not zeroed and embryonic");
        if (!(f->key == keys[k]) || f->hash != hash(k)) fail("FlowTable: a new entry has another key");
        f->flow_id = static_cast<uint64_t>(k) + 1;
        f->packets[0] = ++ids;  // dirt for the next user of the entry
        f->last_seen_us = 1;
        lru[0].push_back({k, true});
        break;
      case 1:  // remove
        if (l < 0) break;
        t.remove(f);
        lru[l].erase(lru[l].begin() + static_cast<std::ptrdiff_t>(i));
        break;
      case 2:  // touch
        if (l < 0) break;
        t.touch(f);
        lru[l].push_back(lru[l][i]);
        lru[l].erase(lru[l].begin() + static_cast<std::ptrdiff_t>(i));
        break;
      case 3:  // activate
        if (l < 0) break;
        t.activate(f);
        lru[1].push_back({k, false});
        lru[l].erase(lru[l].begin() + static_cast<std::ptrdiff_t>(i));
        break;
      default:  // find only
        break;
    }
    check();
  }
}

// ---------------------------------------------------------------------------------------------
// Reassembler mode.

constexpr const char* kClientLines[] = {
    "EHLO c\r\n",
    "MAIL FROM:<a@x>\r\n",
    "RCPT TO:<b@y>\r\n",
    "DATA\r\n",
    "Subject: s\r\n\r\nbody\r\n",
    ".\r\n",
    "x\r\n.\r\n",
    "BDAT 4 LAST\r\nabcd",
    "BDAT 3\r\nxyz",
    "RSET\r\n",
    "QUIT\r\n",
    "STARTTLS\r\n",
    "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n",
    "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 2 LAST\r\nhi",
};
constexpr const char* kServerLines[] = {
    "220 mx ESMTP\r\n",
    "250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 STARTTLS\r\n",
    "250 ok\r\n",
    "354 go\r\n",
    "250 queued\r\n",
    "221 bye\r\n",
    "220 ready\r\n",
    "550 no\r\n",
    "250 ok\r\n250 ok\r\n354 go\r\n",
};
constexpr int kConnections = 8;
constexpr uint32_t kSmtpPorts[] = {25, 587};
constexpr uint16_t kTlsPort = 465;
bool is_smtp_port(uint16_t p) { return p == 25 || p == 587; }
bool is_service_port(uint16_t p) { return is_smtp_port(p) || p == kTlsPort; }

enum class App : uint8_t { none, smtp, smtps };

// A record as emitted, kept for the checks after the call.
struct Emitted {
  rec::RecordType type;
  rec::FlowRecord flow;
  rec::AnomalyRecord anomaly;
  uint64_t msg_flow_id = 0, msg_transaction = 0;
};

class Events final : public RenderedEvents {
 public:
  std::vector<Emitted> log;

 protected:
  void on_record(const void* record, std::size_t size) noexcept override {
    Emitted e{};
    std::memcpy(&e.type, record, 1);
    switch (e.type) {
      case rec::RecordType::flow:
        if (size != sizeof(rec::FlowRecord)) fail("flow record of another size");
        std::memcpy(&e.flow, record, size);
        break;
      case rec::RecordType::anomaly:
        if (size != sizeof(rec::AnomalyRecord)) fail("anomaly record of another size");
        std::memcpy(&e.anomaly, record, size);
        break;
      case rec::RecordType::message: {
        if (size != sizeof(rec::MessageRecord)) fail("message record of another size");
        const auto* m = static_cast<const rec::MessageRecord*>(record);
        e.msg_flow_id = m->flow.flow_id;
        e.msg_transaction = m->transaction;
        break;
      }
      default:
        fail("the reassembler emitted a record other than message, flow or anomaly");
    }
    log.push_back(e);
  }
};

// What the message observers were told, in order.
struct ObserverCall {
  bool end;  // else begin
  uint64_t flow_id, transaction;
  bool asked_hold;
};

struct ObserverLog {
  std::vector<ObserverCall> calls;
  bool hold = false;  // what hold_end() answers now
};

class Observer final : public MessageObserver {
 public:
  explicit Observer(ObserverLog& log) : log_(log) {}
  void begin(const MessageContext& ctx) noexcept override {
    if (open_) fail("observer: begin() with a message open");
    open_ = true;
    ctx_ = ctx;
    log_.calls.push_back({false, ctx.flow.flow_id, ctx.transaction, false});
  }
  void data(const uint8_t*, std::size_t) noexcept override {
    if (!open_) fail("observer: data() outside a message");
  }
  void end(bool, const uint8_t*, const MessageContext& ctx) noexcept override {
    if (!open_) fail("observer: end() without begin()");
    if (ctx.flow.flow_id != ctx_.flow.flow_id || ctx.transaction != ctx_.transaction) fail("observer: end() of another message");
    open_ = false;
    log_.calls.push_back({true, ctx.flow.flow_id, ctx.transaction, log_.hold});
  }
  void summary(rec::MessageSummary&) const noexcept override {
    if (open_) fail("observer: summary() before end()");
  }
  bool hold_end() const noexcept override { return log_.hold; }

 private:
  ObserverLog& log_;
  bool open_ = false;
  MessageContext ctx_{};
};

class Observers final : public MessageObserverFactory {
 public:
  explicit Observers(ObserverLog& log) : log_(log) {}
  std::unique_ptr<MessageObserver> make(rec::RecordSink&, unsigned) override { return std::make_unique<Observer>(log_); }

 private:
  ObserverLog& log_;
};

// The model's view of one flow entry. Directions are the reassembler's (0 from its client).
struct ModelFlow {
  uint64_t id = 0;
  int conn = 0;  // the harness's connection
  bool swapped = false;  // the reassembler's client is the connection's server side
  App app = App::none;
  bool embryonic = true, reported = false, session = false, refused = false, rst = false;
  bool fin[2] = {}, syn_seen[2] = {};
  uint32_t isn[2] = {}, fin_seq[2] = {};
  uint64_t packets[2] = {}, bytes[2] = {};
  int64_t first_seen = 0, last_seen = 0;
  uint64_t stamp = 0;  // position in its LRU list
  bool done() const { return rst || (fin[0] && fin[1]); }
};

// A table event the model expects, in order: a flow event or a flow-layer anomaly.
struct TableEvent {
  bool flow;  // else anomaly
  uint64_t flow_id;
  uint8_t what;  // FlowEndReason or FlowAnomaly
  bool operator==(const TableEvent& o) const { return flow == o.flow && flow_id == o.flow_id && what == o.what; }
};

class Harness {
 public:
  explicit Harness(Input& in) : in_(in) {
    const uint8_t b0 = in.u8(), b1 = in.u8(), b2 = in.u8(), b3 = in.u8();
    c_.smtp_ports = {static_cast<uint16_t>(kSmtpPorts[0]), static_cast<uint16_t>(kSmtpPorts[1])};
    c_.implicit_tls_ports = {kTlsPort};
    c_.max_flows = 2 + (b0 & 3);
    c_.max_sessions = 1 + ((b0 >> 2) & 3);
    c_.drop_untracked_syn = (b0 & 0x10) != 0;
    shutdown_ = (b0 & 0x20) != 0;
    aborted_flush_ = (b0 & 0x40) != 0;
    c_.memcap_mb = 0;  // the 16-block minimum: streams are not what this target is about
    c_.stream = {8192, 8};
    c_.embryonic_timeout_s = 1 + (b1 & 3);
    c_.idle_timeout_s = 2 + ((b1 >> 2) & 7);
    c_.closed_timeout_s = 1 + ((b1 >> 5) & 3);
    c_.emergency_embryonic_timeout_s = 1 + (b2 & 3);
    c_.emergency_idle_timeout_s = 1 + ((b2 >> 2) & 7);
    c_.emergency_recovery_percent = 10 + b3 % 90;
    c_.max_fragment_sets = 1;  // no fragments here: one 64 KiB slot, allocated per input
    c_.fragment_timeout_s = 5;
    c_.observers = &observers_;
    reasm_ = std::make_unique<Reassembler>(c_, out_, 0);
    for (int k = 0; k < kConnections; ++k) {
      FlowState f{};
      f.ip_version = (k & 3) == 3 ? 6 : 4;
      f.client_host = static_cast<uint8_t>(1 + k);
      f.client_port = static_cast<uint16_t>(40000 + k);
      f.server_port = k == 5 ? 587 : k == 6 ? kTlsPort : 25;
      f.next[0] = 1000u * (k + 1);
      f.next[1] = 0xfffff000u + 100u * k;
      conns_.push_back(f);
    }
  }

  void run() {
    while (!in_.done()) {
      now_ += 1000;
      const uint8_t op = in_.u8();
      observer_log_.hold = (op & 0x80) != 0;
      switch (op & 7) {
        case 0: handshake(in_.u8()); break;
        case 1: {
          const uint8_t sel = in_.u8();
          line(sel & 7, true, kClientLines[in_.u8() % std::size(kClientLines)]);
          break;
        }
        case 2: {
          const uint8_t sel = in_.u8();
          line(sel & 7, false, kServerLines[in_.u8() % std::size(kServerLines)]);
          break;
        }
        case 3: segment(op); break;
        case 4: transaction(in_.u8()); break;
        case 5: end(in_.u8()); break;
        case 6: {
          const uint8_t n = in_.u8();
          if (op & 0x10) {
            now_ -= int64_t{n} * 1000;
          } else {
            now_ += int64_t{n} * 250000;
            if (op & 8) expire(now_);
          }
          break;
        }
        case 7: {
          const int n = in_.u8() % 16 + 1;
          for (int k = 0; k < n; ++k) {
            FlowState f{};
            f.ip_version = 4;
            f.client_host = 66;
            f.client_port = static_cast<uint16_t>(50000 + conns_.size());
            f.server_port = 25;
            f.next[0] = 7u * static_cast<uint32_t>(conns_.size());
            f.next[1] = 0;
            conns_.push_back(f);
            send(static_cast<int>(conns_.size()) - 1, true, tcp_flags::syn, {});
          }
          break;
        }
      }
    }
    observer_log_.hold = false;
    now_ += 1000000;
    if (aborted_flush_) aborted_flush();
    flush(shutdown_ ? rec::FlowEndReason::shutdown : rec::FlowEndReason::end_of_input);
    final_checks();
  }

 private:
  // --- Traffic -------------------------------------------------------------------------------

  void handshake(uint8_t sel) {
    const int c = sel & 7;
    FlowState& f = conns_[c];
    if (sel & 0x40) {  // a new connection on the same ports
      f.next[0] += 0x10000000u;
      f.next[1] += 0x20000000u;
    }
    if (sel & 0x20) {  // the server speaks first with a bare SYN
      send(c, false, tcp_flags::syn, {});
      send(c, true, tcp_flags::syn | tcp_flags::ack, {});
      return;
    }
    send(c, true, tcp_flags::syn, {});
    if (sel & 8) return;
    send(c, false, tcp_flags::syn | tcp_flags::ack, {});
    if (sel & 0x10) return;
    send(c, true, tcp_flags::ack, {});
  }

  void line(int c, bool to_server, const char* text) {
    send(c, to_server, tcp_flags::ack | tcp_flags::psh,
         std::vector<uint8_t>(text, text + std::strlen(text)));
  }

  void transaction(uint8_t sel) {
    const int c = sel & 7;
    if (sel & 8) {
      line(c, false, kServerLines[0]);
      line(c, true, kClientLines[0]);
      line(c, false, kServerLines[1]);
    }
    line(c, true, kClientLines[12]);
    line(c, false, kServerLines[8]);
    line(c, true, kClientLines[4]);
    line(c, true, kClientLines[5]);
    line(c, false, kServerLines[4]);
  }

  void end(uint8_t sel) {
    const int c = sel & 7;
    switch ((sel >> 3) & 3) {
      case 0: send(c, true, tcp_flags::fin | tcp_flags::ack, {}); break;
      case 1: send(c, false, tcp_flags::fin | tcp_flags::ack, {}); break;
      case 2: send(c, true, tcp_flags::rst, {}); break;
      default: send(c, true, tcp_flags::rst, {}, conns_[c].next[0] + 1 + in_.u8()); break;
    }
  }

  void segment(uint8_t op) {
    const uint8_t sel = in_.u8();
    const uint8_t flags = in_.u8();
    std::size_t want = in_.u8();
    if (op & 8) want *= 8;
    const int c = sel & 7;
    FlowState& f = conns_[c];
    const int dir = (sel >> 3) & 1;
    uint32_t seq = f.next[dir];
    switch ((sel >> 4) & 3) {
      case 1: seq += in_.u8(); break;
      case 2: seq = in_.u32(); break;
      case 3: seq -= in_.u8(); break;
      default: break;
    }
    std::optional<uint32_t> ack;
    if (sel & 0x40) ack = f.next[dir ^ 1] + in_.u8();
    const uint8_t* payload;
    const std::size_t len = in_.take(want, payload);
    send(c, dir == 0, flags, std::vector<uint8_t>(payload, payload + len), seq, ack, (op & 0x10) != 0);
  }

  // One frame on connection `c`, at the sender's next sequence number unless given.
  void send(int c, bool to_server, uint8_t flags, const std::vector<uint8_t>& payload,
            std::optional<uint32_t> seq_at = std::nullopt, std::optional<uint32_t> ack_at = std::nullopt,
            bool options = false) {
    FlowState& f = conns_[c];
    const int dir = to_server ? 0 : 1;
    const uint32_t seq = seq_at ? *seq_at : f.next[dir];
    const uint32_t ack = ack_at ? *ack_at : f.next[dir ^ 1];
    const std::vector<uint8_t> l4 = tcp_segment(f, to_server, seq, ack, flags, options, payload.data(), payload.size());
    advance(f, dir, seq, payload.size(), flags);
    const std::vector<uint8_t> ip = ip_packet(f, to_server, l4.data(), l4.size());
    const std::vector<uint8_t> frame = ethernet(f, ip);
    // As dataplane/rx_lcore.cpp: decode, ask, hand over; an exact-size heap copy so that ASan sees
    // any read past the frame.
    std::unique_ptr<uint8_t[]> buf(new uint8_t[frame.size()]);
    std::memcpy(buf.get(), frame.data(), frame.size());
    PacketInfo info;
    if (decode_packet(buf.get(), frame.size(), info) != DecodeStatus::ok || !info.tcp) fail("harness: a built frame does not decode");
    if (!reasm_->wants(info)) fail("wants() refused a frame to an SMTP port");
    if (info.payload_len != payload.size()) fail("decode_packet: payload length");
    Packet p{c, to_server, flags, seq, static_cast<uint32_t>(payload.size()), ip.size()};
    before_call();
    const FrameStep step = reasm_->on_packet(info, buf.get(), now_);
    after_packet(p, step);
  }

  // --- The model ----------------------------------------------------------------------------

  struct Packet {
    int conn;
    bool to_server;  // the connection's client sent it
    uint8_t flags;
    uint32_t seq, payload_len;
    std::size_t ip_bytes;
  };

  struct Snapshot {
    ReassemblyStats stats;
    std::size_t events, observer_calls;
  };

  void before_call() {
    snap_ = {reasm_->stats(), out_.log.size(), observer_log_.calls.size()};
    expected_.clear();
  }

  std::size_t model_size() const { return table_.size(); }
  std::size_t model_embryonic() const {
    std::size_t n = 0;
    for (const auto& [c, f] : table_) n += f.embryonic;
    return n;
  }
  // The flows of one list, least recently used first.
  std::vector<int> lru(bool embryonic) const {
    std::vector<std::pair<uint64_t, int>> v;
    for (const auto& [c, f] : table_)
      if (f.embryonic == embryonic) v.emplace_back(f.stamp, c);
    std::sort(v.begin(), v.end());
    std::vector<int> out;
    for (const auto& p : v) out.push_back(p.second);
    return out;
  }

  void end_flow(int c, rec::FlowEndReason reason) {
    ModelFlow& f = table_.at(c);
    if (f.session) release(f, reason);
    else if (!f.reported) report(f, reason);
    table_.erase(c);
  }
  void report(ModelFlow& f, rec::FlowEndReason reason) {
    expected_.push_back({true, f.id, static_cast<uint8_t>(reason)});
    reported_flows_[f.id] = f;  // as it was reported, for the field checks
    f.reported = true;
  }
  void release(ModelFlow& f, rec::FlowEndReason reason) {
    report(f, reason);
    f.session = false;
    --sessions_;
  }

  // Reassembler::Impl::expire() as the model sees it.
  void model_expire() {
    const bool em = emergency_;
    const int64_t idle = int64_t{em ? std::min(c_.emergency_idle_timeout_s, c_.idle_timeout_s) : c_.idle_timeout_s} * 1000000;
    const int64_t emb = int64_t{em ? std::min(c_.emergency_embryonic_timeout_s, c_.embryonic_timeout_s) : c_.embryonic_timeout_s} * 1000000;
    const int64_t closed = int64_t{c_.closed_timeout_s} * 1000000;
    for (const bool embryonic : {true, false}) {
      const int64_t open = embryonic ? emb : idle;
      for (const int c : lru(embryonic)) {
        const ModelFlow& f = table_.at(c);
        if (f.last_seen + std::min(open, closed) > rnow_) break;
        if (f.last_seen + (f.done() ? closed : open) <= rnow_)
          end_flow(c, f.rst ? rec::FlowEndReason::rst : f.done() ? rec::FlowEndReason::fin : rec::FlowEndReason::timeout);
      }
    }
    if (em) {
      const uint64_t pct = c_.emergency_recovery_percent;
      if ((model_size() - model_embryonic()) * 100 < pct * c_.max_flows && sessions_ * 100 < pct * c_.max_sessions)
        emergency_ = false;
    }
  }
  void model_enter_emergency() {
    if (!emergency_) {
      emergency_ = true;
      ++emergency_entered_;
    }
    model_expire();
  }
  bool sessions_exhausted() const { return sessions_ == c_.max_sessions; }

  // The frame as Reassembler::on_packet handles it; returns the step expected unless a hold.
  void after_packet(const Packet& p, const FrameStep& step) {
    const std::vector<Emitted> emitted(out_.log.begin() + static_cast<std::ptrdiff_t>(snap_.events), out_.log.end());
    const ReassemblyStats& st = reasm_->stats();
    rnow_ = std::max(rnow_, now_);
    const FlowState& conn = conns_[p.conn];
    const uint16_t dst_port = p.to_server ? conn.server_port : conn.client_port;
    const bool syn_only = (p.flags & (tcp_flags::syn | tcp_flags::ack)) == tcp_flags::syn;
    const bool syn_ack = (p.flags & (tcp_flags::syn | tcp_flags::ack)) == (tcp_flags::syn | tcp_flags::ack);
    bool dropped = false;
    uint64_t flow_id = 0;  // of the flow that took the frame, 0 when none did

    auto it = table_.find(p.conn);
    bool tracked = it != table_.end();
    if (!tracked && !(p.flags & tcp_flags::rst)) {
      tracked = true;
      if (syn_only && c_.drop_untracked_syn && is_smtp_port(dst_port) && sessions_exhausted()) {
        model_enter_emergency();
        if (sessions_exhausted()) {
          ++syns_dropped_;
          dropped = true;
          tracked = false;
        }
      }
      if (tracked && model_size() == c_.max_flows) {
        const std::vector<int> embryonic = lru(true);
        if (!embryonic.empty()) {
          ++evicted_;
          end_flow(embryonic.front(), rec::FlowEndReason::evicted);
        } else {
          model_enter_emergency();
          if (model_size() == c_.max_flows) {
            ++table_full_;
            tracked = false;
            if (rnow_ - untracked_reported_ >= 1000000) {
              untracked_reported_ = rnow_;
              expected_.push_back({false, 0, static_cast<uint8_t>(rec::FlowAnomaly::flow_table_full)});
            }
            if (syn_only && c_.drop_untracked_syn && is_smtp_port(dst_port)) {
              ++syns_dropped_;
              dropped = true;
            }
          }
        }
      }
      if (tracked) {
        ModelFlow f;
        f.id = ++created_;
        f.conn = p.conn;
        f.first_seen = rnow_;
        const bool from_client = syn_only || (!syn_ack && is_service_port(dst_port));
        f.swapped = from_client != p.to_server;
        const uint16_t server_port = f.swapped ? conn.client_port : conn.server_port;
        f.app = is_smtp_port(server_port) ? App::smtp : server_port == kTlsPort ? App::smtps : App::none;
        f.stamp = ++stamp_;
        it = table_.emplace(p.conn, f).first;
      }
    }
    if (tracked) on_tcp(it->second, p, st);
    if (tracked) flow_id = it->second.id;
    if (model_size() > c_.max_flows) fail("more flows in the table than max_flows");

    compare(emitted, "a frame");
    // The next step: drop exactly when the SYN was dropped; hold exactly when this frame's own flow
    // ended a message whose observer asked (the last such message); else forward.
    std::optional<std::pair<uint64_t, uint64_t>> hold;
    for (std::size_t i = snap_.observer_calls; i < observer_log_.calls.size(); ++i) {
      const ObserverCall& oc = observer_log_.calls[i];
      if (oc.end && oc.asked_hold && flow_id && oc.flow_id == flow_id) hold = {{oc.flow_id, oc.transaction}};
    }
    if (dropped) {
      if (step.step != NextStep::drop) fail("a SYN counted as dropped is not given the drop step");
      if (!c_.drop_untracked_syn) fail("a SYN dropped without drop_untracked_syn");
    } else if (hold) {
      ++holds_;
      if (step.step != NextStep::hold) fail("the frame that ended a message whose observer asked is not held");
      if (step.flow_id != hold->first || step.transaction != hold->second) fail("the frame is held for another message");
    } else {
      if (step.step == NextStep::drop) fail("a frame dropped that is not a SYN refused for want of room");
      if (step.step == NextStep::hold) fail("a frame held that ended no message of its flow whose observer asked");
      if (step.step != NextStep::forward) fail("a next step outside forward, hold, drop");
    }
  }

  // Reassembler::Impl::on_tcp as far as the table is concerned; learns what depends on the streams.
  void on_tcp(ModelFlow& f, const Packet& p, const ReassemblyStats& st) {
    const int dir = (p.to_server != f.swapped) ? 0 : 1;
    ++f.packets[dir];
    f.bytes[dir] += p.ip_bytes;
    f.last_seen = rnow_;
    if (p.flags & tcp_flags::rst) {
      const uint64_t ignored = st.rst_ignored - snap_.stats.rst_ignored;
      if (ignored > 1) fail("one reset counted twice as ignored");
      if (!f.session) {  // without a session the model knows what the receiver accepts
        const bool acceptable = !f.syn_seen[dir] || !f.embryonic || p.seq == f.isn[dir] + 1 ||
                                (f.fin[dir] && p.seq == f.fin_seq[dir] + 1);
        if (acceptable == (ignored == 1)) fail("a reset without a session accepted or ignored against the rule");
      }
      if (ignored) {
        f.stamp = ++stamp_;
        return;
      }
    } else if (st.rst_ignored != snap_.stats.rst_ignored) {
      fail("rst_ignored counted for a frame without RST");
    }
    if ((p.flags & tcp_flags::fin) && !f.fin[dir]) {
      f.fin[dir] = true;
      f.fin_seq[dir] = p.seq + p.payload_len;
    }
    if (p.flags & tcp_flags::rst) f.rst = true;
    if ((p.flags & tcp_flags::syn) && !f.syn_seen[dir]) {
      f.syn_seen[dir] = true;
      f.isn[dir] = p.seq;
    }
    f.stamp = ++stamp_;
    if (p.payload_len && f.embryonic) {
      f.embryonic = false;
      if (f.app == App::smtp && !f.session && !f.reported) {
        if (sessions_exhausted()) model_enter_emergency();
        if (sessions_exhausted()) {
          f.refused = true;
          ++pool_full_;
          expected_.push_back({false, f.id, static_cast<uint8_t>(rec::FlowAnomaly::session_pool_full)});
        } else {
          f.session = true;
          ever_session_.insert(f.id);
          ++sessions_;
        }
      }
    }
    if (!f.session) return;
    if (f.rst) {
      release(f, rec::FlowEndReason::rst);
    } else if (f.fin[0] && f.fin[1]) {
      // Released when both streams ended (or the session is encrypted): the model learns which.
      for (std::size_t i = snap_.events; i < out_.log.size(); ++i) {
        const Emitted& e = out_.log[i];
        if (e.type == rec::RecordType::flow && e.flow.flow.flow_id == f.id) {
          if (e.flow.reason != rec::FlowEndReason::fin) fail("a flow ended at its FIN with another reason");
          release(f, rec::FlowEndReason::fin);
          break;
        }
      }
    }
  }

  void expire(int64_t now) {
    before_call();
    reasm_->expire(now);
    rnow_ = std::max(rnow_, now);
    model_expire();
    compare({out_.log.begin() + static_cast<std::ptrdiff_t>(snap_.events), out_.log.end()}, "expire()");
  }

  void aborted_flush() {
    before_call();
    const std::atomic<bool> abort{true};
    reasm_->flush_all(now_, rec::FlowEndReason::shutdown, &abort);
    rnow_ = std::max(rnow_, now_);
    if (out_.log.size() != snap_.events) fail("an aborted flush_all emitted events");
    uint64_t flows = 0, messages = 0;
    for (const auto& [c, f] : table_) {
      if (f.reported) continue;
      ++flows;
      if (f.session) messages += messages_left(f.id);
    }
    const ReassemblyStats& st = reasm_->stats();
    if (st.flows_unflushed - snap_.stats.flows_unflushed != flows) fail("flows_unflushed is not the flows left unreported");
    if (st.messages_unflushed - snap_.stats.messages_unflushed != messages)
      fail("messages_unflushed is not the messages left open or unanswered");
    compare({}, "an aborted flush_all()");
  }

  void flush(rec::FlowEndReason reason) {
    before_call();
    reasm_->flush_all(now_, reason);
    rnow_ = std::max(rnow_, now_);
    for (const bool embryonic : {true, false})
      for (const int c : lru(embryonic)) {
        const ModelFlow& f = table_.at(c);
        end_flow(c, f.rst ? rec::FlowEndReason::rst : (f.fin[0] && f.fin[1]) ? rec::FlowEndReason::fin : reason);
      }
    compare({out_.log.begin() + static_cast<std::ptrdiff_t>(snap_.events), out_.log.end()}, "flush_all()");
  }

  void final_checks() {
    const ReassemblyStats& st = reasm_->stats();
    if (std::getenv("SLUICE_FUZZ_PRINT"))
      std::fprintf(stderr,
                   "stats: flows_created %llu flows_evicted %llu flows_table_full %llu sessions_pool_full %llu "
                   "syns_dropped %llu emergency_entered %llu rst_ignored %llu flows_unflushed %llu "
                   "messages_unflushed %llu holds %llu\n",
                   (unsigned long long)st.flows_created, (unsigned long long)st.flows_evicted,
                   (unsigned long long)st.flows_table_full, (unsigned long long)st.sessions_pool_full,
                   (unsigned long long)st.syns_dropped, (unsigned long long)st.emergency_entered,
                   (unsigned long long)st.rst_ignored, (unsigned long long)st.flows_unflushed,
                   (unsigned long long)st.messages_unflushed, (unsigned long long)holds_);
    if (st.sessions_active != 0) fail("session slots still in use after flush_all");
    const std::size_t events = out_.events;
    reasm_->flush_all(now_ + 1000);
    reasm_->expire(now_ + 3600LL * 1000000);
    if (out_.events != events) fail("events after flush_all with no new packet");
    if (reasm_->stats().emergency != 0) fail("emergency in force with an empty table");
    for (uint64_t id = 1; id <= created_; ++id)
      if (!reported_flows_.count(id)) fail("a flow that entered the table was never reported");
    for (const auto& [key, state] : messages_)
      if (state != MessageState::reported) fail("a message begun was not reported by an smtp event");
  }

  // Messages of a flow begun and not yet reported (open, or ended and awaiting the server's reply).
  uint64_t messages_left(uint64_t flow_id) const {
    uint64_t n = 0;
    for (auto it = messages_.lower_bound({flow_id, 0}); it != messages_.end() && it->first.first == flow_id; ++it)
      n += it->second != MessageState::reported;
    return n;
  }

  // The call's events against the model's table events; then the counters; then the messages.
  void compare(const std::vector<Emitted>& emitted, const char* during) {
    // Which call the failure followed, before the invariant's own line.
    auto fail = [during](const char* what) {
      std::fprintf(stderr, "flow_table_fuzz: after %s\n", during);
      sluice::fuzz::fail(what);
    };
    std::vector<TableEvent> got;
    for (const Emitted& e : emitted) {
      if (e.type == rec::RecordType::flow) {
        got.push_back({true, e.flow.flow.flow_id, static_cast<uint8_t>(e.flow.reason)});
        check_flow_record(e.flow);
      } else if (e.type == rec::RecordType::anomaly && e.anomaly.layer == rec::AnomalyLayer::flow) {
        got.push_back({false, e.anomaly.flow.flow_id, e.anomaly.code});
        if (e.anomaly.code == static_cast<uint8_t>(rec::FlowAnomaly::flow_table_full) &&
            (e.anomaly.flow.client_port < 40000 || !is_service_port(e.anomaly.flow.server_port)))
          fail("flow_table_full anomaly with the client and server the other way round");
      } else if (e.type == rec::RecordType::anomaly) {
        if (!ever_session_.count(e.anomaly.flow.flow_id)) fail("a stream or SMTP anomaly for a flow that never had a session");
      }
    }
    if (got != expected_) {
      if (std::getenv("SLUICE_FUZZ_PRINT")) {
        for (const auto& t : expected_) std::fprintf(stderr, "expected %s %llu %u\n", t.flow ? "flow" : "anomaly", (unsigned long long)t.flow_id, t.what);
        for (const auto& t : got) std::fprintf(stderr, "got      %s %llu %u\n", t.flow ? "flow" : "anomaly", (unsigned long long)t.flow_id, t.what);
      }
      fail("flow events or flow anomalies other than the model's (which flows end, why, in which order)");
    }
    const ReassemblyStats& st = reasm_->stats();
    if (st.flows_created != created_) fail("flows_created");
    if (st.flows_evicted != evicted_) fail("flows_evicted");
    if (st.flows_table_full != table_full_) fail("flows_table_full");
    if (st.sessions_pool_full != pool_full_) fail("sessions_pool_full");
    if (st.syns_dropped != syns_dropped_) fail("syns_dropped");
    if (st.emergency_entered != emergency_entered_) fail("emergency_entered");
    if (st.emergency != (emergency_ ? 1u : 0u)) fail("emergency state");
    if (st.sessions_active != sessions_) fail("sessions_active");
    if (sessions_ > c_.max_sessions) fail("more sessions than max_sessions");
    // Messages: begun and ended in pairs, numbered per flow; one smtp event per ended message.
    for (std::size_t i = snap_.observer_calls; i < observer_log_.calls.size(); ++i) {
      const ObserverCall& oc = observer_log_.calls[i];
      const std::pair<uint64_t, uint64_t> key{oc.flow_id, oc.transaction};
      if (!oc.end) {
        if (!ever_session_.count(oc.flow_id)) fail("a message begun on a flow without a session");
        if (messages_.count(key)) fail("a message begun twice");
        if (oc.transaction != 0 && !messages_.count({oc.flow_id, oc.transaction - 1})) fail("transactions not numbered 0, 1, 2...");
        messages_[key] = MessageState::open;
      } else {
        auto m = messages_.find(key);
        if (m == messages_.end() || m->second != MessageState::open) fail("a message ended that was not open");
        m->second = MessageState::ended;
      }
    }
    for (const Emitted& e : emitted) {
      if (e.type != rec::RecordType::message) continue;
      auto m = messages_.find({e.msg_flow_id, e.msg_transaction});
      if (m == messages_.end() || m->second != MessageState::ended) fail("an smtp event for a message not ended, or twice");
      m->second = MessageState::reported;
    }
  }

  void check_flow_record(const rec::FlowRecord& r) {
    auto it = reported_flows_.find(r.flow.flow_id);
    if (it == reported_flows_.end()) return;  // the sequence check reports it
    const ModelFlow& f = it->second;
    const FlowState& conn = conns_[f.conn];
    const uint16_t client = f.swapped ? conn.server_port : conn.client_port;
    const uint16_t server = f.swapped ? conn.client_port : conn.server_port;
    if (r.flow.client_port != client || r.flow.server_port != server) fail("flow event: client and server");
    if (r.packets[0] != f.packets[0] || r.packets[1] != f.packets[1]) fail("flow event: packets each way");
    if (r.bytes[0] != f.bytes[0] || r.bytes[1] != f.bytes[1]) fail("flow event: bytes each way");
    if (r.start_us != f.first_seen || r.end_us != f.last_seen) fail("flow event: start and end");
    const rec::AppProto app = f.app == App::smtp ? rec::AppProto::smtp : f.app == App::smtps ? rec::AppProto::smtps : rec::AppProto::none;
    if (r.app != app) fail("flow event: app");
    const bool inspected = f.session || (f.app == App::smtp && !f.refused);
    if (r.inspected != inspected) fail("flow event: inspected (false exactly when a session was refused)");
  }

  enum class MessageState : uint8_t { open, ended, reported };

  Input& in_;
  ReassemblyConfig c_{};
  bool shutdown_ = false, aborted_flush_ = false;
  ObserverLog observer_log_;
  Observers observers_{observer_log_};
  Events out_;
  std::unique_ptr<Reassembler> reasm_;
  std::vector<FlowState> conns_;
  int64_t now_ = 1700000000LL * 1000000;
  int64_t rnow_ = 0;  // the reassembler's clock: it never goes back

  // The model
  std::map<int, ModelFlow> table_;  // by connection
  std::map<uint64_t, ModelFlow> reported_flows_;
  std::set<uint64_t> ever_session_;
  std::map<std::pair<uint64_t, uint64_t>, MessageState> messages_;  // (flow id, transaction)
  std::vector<TableEvent> expected_;
  Snapshot snap_{};
  uint64_t stamp_ = 0, created_ = 0, evicted_ = 0, table_full_ = 0, pool_full_ = 0, syns_dropped_ = 0, emergency_entered_ = 0;
  uint64_t sessions_ = 0;
  bool emergency_ = false;
  uint64_t holds_ = 0;  // frames held (SLUICE_FUZZ_PRINT's summary)
  int64_t untracked_reported_ = INT64_MIN / 2;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  Input in{data, size, 1};
  if (data[0] & 0x80) {
    table_mode(in);
    return 0;
  }
  in.i = 0;
  Harness h(in);
  h.run();
  return 0;
}
