// Inline enforcement: the gated-connection table and its state machine (enforcer.h).
//
// A table of connections keyed by their addresses (client and server, as the held segment names
// them): open addressing with linear probing over at most half the slots, backward-shift
// deletion. Entries are a fixed pool. Sequence numbers compare in serial arithmetic (RFC 1982).
#include "dataplane/enforcer.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "reassembly/segment_forge.h"
#include "reassembly/smtp_session.h"

namespace sluice::dataplane {
namespace {

constexpr uint32_t kNone = UINT32_MAX;
constexpr unsigned kMaxPipelined = 16;   // messages ending in one held segment, tracked (beyond: deferred)
constexpr int64_t kBackstopUs = 5000000;  // the hold queue's own deadline comes this much later
constexpr int64_t kClosingUs = 2000000;   // a blocked connection both sides closed: kept this long

int64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // vDSO: no system call
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

bool seq_le(uint32_t a, uint32_t b) noexcept { return static_cast<int32_t>(a - b) <= 0; }
bool seq_lt(uint32_t a, uint32_t b) noexcept { return static_cast<int32_t>(a - b) < 0; }

uint32_t seg_end(const reassembly::PacketInfo& i) noexcept {
  return i.tcp_seq + i.payload_len + ((i.tcp_flags & reassembly::kTcpSyn) ? 1 : 0) +
         ((i.tcp_flags & reassembly::kTcpFin) ? 1 : 0);
}

// Whether a client's bytes hold a QUIT command (at the start of a line).
bool has_quit(const uint8_t* p, std::size_t n) noexcept {
  for (std::size_t i = 0; i + 4 <= n; ++i) {
    if (i && p[i - 1] != '\n') continue;
    if ((p[i] | 0x20) == 'q' && (p[i + 1] | 0x20) == 'u' && (p[i + 2] | 0x20) == 'i' && (p[i + 3] | 0x20) == 't' &&
        (i + 4 == n || p[i + 4] == '\r' || p[i + 4] == '\n' || p[i + 4] == ' '))
      return true;
  }
  return false;
}

const char* reason_text(records::Disposition d) noexcept {
  switch (d) {
    case records::Disposition::malicious: return "malicious content";
    case records::Disposition::pending: return "content under analysis";
    case records::Disposition::unscannable: return "content that cannot be inspected";
    case records::Disposition::clean: break;
  }
  return "policy";
}

constexpr std::string_view kBye = "221 2.0.0 Bye\r\n";
constexpr std::string_view kClosing = "421 4.7.0 Connection closed by policy\r\n";

}  // namespace

struct Enforcer::Tuple {
  uint8_t ip_version;
  uint8_t client[16];
  uint8_t server[16];
  uint16_t client_port;
  uint16_t server_port;

  static Tuple of(const reassembly::PacketInfo& info, bool src_is_client) noexcept {
    Tuple t{};
    t.ip_version = info.ip_version;
    const std::size_t n = info.ip_version == 6 ? 16 : 4;
    std::memcpy(t.client, src_is_client ? info.src_addr : info.dst_addr, n);
    std::memcpy(t.server, src_is_client ? info.dst_addr : info.src_addr, n);
    t.client_port = src_is_client ? info.src_port : info.dst_port;
    t.server_port = src_is_client ? info.dst_port : info.src_port;
    return t;
  }
  static Tuple of(const records::FlowIdentity& f) noexcept {
    Tuple t{};
    t.ip_version = f.ip_version;
    std::memcpy(t.client, f.client_ip, 16);
    std::memcpy(t.server, f.server_ip, 16);
    if (f.ip_version != 6) {
      std::memset(t.client + 4, 0, 12);
      std::memset(t.server + 4, 0, 12);
    }
    t.client_port = f.client_port;
    t.server_port = f.server_port;
    return t;
  }
  bool operator==(const Tuple& o) const noexcept {
    return ip_version == o.ip_version && client_port == o.client_port && server_port == o.server_port &&
           std::memcmp(client, o.client, 16) == 0 && std::memcmp(server, o.server, 16) == 0;
  }
  uint32_t hash() const noexcept {
    uint64_t h = 0xcbf29ce484222325ull;
    auto mix = [&h](const uint8_t* p, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
    };
    mix(client, 16);
    mix(server, 16);
    h ^= (uint64_t{client_port} << 16 | server_port) * 0x9E3779B97F4A7C15ull;
    return static_cast<uint32_t>(h ^ (h >> 32));
  }
  // Whether a frame travels from this connection's client.
  bool from_client(const reassembly::PacketInfo& info) const noexcept {
    const std::size_t n = ip_version == 6 ? 16 : 4;
    return info.src_port == client_port && std::memcmp(info.src_addr, client, n) == 0;
  }
};

struct Enforcer::Entry {
  enum class State : uint8_t { free, early, holding, blocked };
  // A message that ended in the held head frame (one, or several pipelined in one segment).
  struct Pending {
    uint64_t transaction;
    bool decided;
    bool timed_out;  // decided by the hold deadline
    bool smuggling;  // its end of data is ambiguous (the reason the reply names)
    records::Action action;
    records::Disposition disposition;
    uint32_t withheld;  // its verdict record, written once the head is settled (kNone: written)
  };
  Tuple tuple;
  uint32_t hash;
  uint32_t next_free;
  State state = State::free;
  bool ready = false;
  uint64_t flow_id = 0;
  MessageKey key{};            // holding: every frame of the connection is held under it
  Pending txns[kMaxPipelined];
  uint8_t n_txns = 0;
  bool untracked = false;      // more messages ended in the head than kMaxPipelined: it is deferred
  uint64_t head_txn = 0;       // holding: the last message the head frame ended
  bool settled_any = false;
  uint64_t settled_upto = 0;   // messages up to this one are settled (when settled_any)
  bool client_seen = false;    // holding: held_end is valid
  uint32_t held_end = 0;       // holding: the client's sequence number past the data held
  bool server_delivered = false;
  uint32_t server_next = 0;    // the server's sequence number past what reached the client
  int64_t deadline_us = 0;     // holding: the head's hold deadline; blocked: forgotten then
  int64_t held_at_ns = 0;      // holding: when the head was held (monotonic clock)
  // blocked: sluiced speaks for the server.
  uint32_t srv_seq = 0;        // next sequence number towards the client
  uint32_t cli_next = 0;       // next sequence number expected from the client
  bool fin_sent = false;
  uint32_t last_seq = 0;       // the last reply, sent again for a retransmission
  uint8_t last_flags = 0;
  uint16_t last_len = 0;
  char last[reassembly::kMaxForgedPayload];

  Pending* pending(uint64_t transaction) noexcept {
    for (unsigned i = 0; i < n_txns; ++i)
      if (txns[i].transaction == transaction) return &txns[i];
    if (n_txns == kMaxPipelined) return nullptr;
    txns[n_txns] = Pending{transaction, false, false, false, records::Action::pass, records::Disposition::clean, kNone};
    return &txns[n_txns++];
  }
};

Enforcer::Enforcer(const EnforceConfig& config, HoldQueue& hold, EnforcerIo& io, reassembly::LinkType link,
                   records::RecordSink* events)
    : config_(config), hold_(hold), io_(io), link_(link), events_(events), smtp_port_bits_(new uint64_t[1024]()) {
  for (uint16_t p : config.smtp_ports) smtp_port_bits_[p >> 6] |= uint64_t{1} << (p & 63);
  if (config.max_flows == 0 || config.max_flows > (1u << 24))
    throw std::invalid_argument("Enforcer: max_flows must be in 1..2^24");
  const uint32_t n = config.max_flows;
  entries_.reset(new Entry[n]);
  for (uint32_t i = 0; i < n; ++i) entries_[i].next_free = i + 1 < n ? i + 1 : kNone;
  uint32_t slots = 2;
  while (slots < 2 * n) slots <<= 1;
  table_.reset(new uint32_t[slots]);
  std::fill_n(table_.get(), slots, kNone);
  table_mask_ = slots - 1;
  ready_.reset(new uint32_t[n]);
  if (events_) {
    withheld_.reset(new records::VerdictRecord[kWithheld]);
    withheld_free_.reset(new uint32_t[kWithheld]);
    for (uint32_t i = 0; i < kWithheld; ++i) withheld_free_[i] = kWithheld - 1 - i;
    n_withheld_free_ = kWithheld;
  }
}

Enforcer::~Enforcer() = default;

Enforcer::Entry* Enforcer::find(const Tuple& t) noexcept {
  const uint32_t h = t.hash();
  for (uint32_t s = h & table_mask_;; s = (s + 1) & table_mask_) {
    const uint32_t i = table_[s];
    if (i == kNone) return nullptr;
    if (entries_[i].hash == h && entries_[i].tuple == t) return &entries_[i];
  }
}

Enforcer::Entry* Enforcer::insert(const Tuple& t) noexcept {
  if (free_ == kNone) {
    ++counters_.table_full;
    return nullptr;
  }
  const uint32_t i = free_;
  Entry& e = entries_[i];
  free_ = e.next_free;
  e = Entry{};
  e.tuple = t;
  e.hash = t.hash();
  uint32_t s = e.hash & table_mask_;
  while (table_[s] != kNone) s = (s + 1) & table_mask_;
  table_[s] = i;
  ++used_;
  return &e;
}

void Enforcer::erase(Entry* e) noexcept {
  // Verdicts still withheld: their segment was never held (or the entry is forgotten unsettled).
  write_withheld(*e, records::Enforcement::not_held, nullptr);
  const uint32_t i = static_cast<uint32_t>(e - entries_.get());
  if (e->state == Entry::State::holding) --counters_.gated;
  if (e->state == Entry::State::blocked) --counters_.blocked;
  uint32_t s = e->hash & table_mask_;
  while (table_[s] != i) s = (s + 1) & table_mask_;
  // Backward shift: later entries of the probe run move into the hole when their home allows.
  for (uint32_t next = (s + 1) & table_mask_; table_[next] != kNone; next = (next + 1) & table_mask_) {
    const uint32_t home = entries_[table_[next]].hash & table_mask_;
    if (((next - home) & table_mask_) >= ((next - s) & table_mask_)) {
      table_[s] = table_[next];
      s = next;
    }
  }
  table_[s] = kNone;
  e->state = Entry::State::free;
  e->ready = false;
  e->next_free = free_;
  free_ = i;
  --used_;
}

void Enforcer::reference(uint64_t flow_id, uint64_t transaction, char* out, std::size_t cap) const noexcept {
  std::snprintf(out, cap, "%08" PRIx32 "-%" PRIx64 "-%" PRIu64, config_.instance, flow_id, transaction);
}

// The configured reply line with {reason} and {reference} replaced, CRLF added; its length.
std::size_t Enforcer::render(std::string_view tmpl, const char* reason, const char* ref, char* out) const noexcept {
  constexpr std::size_t cap = reassembly::kMaxForgedPayload - 2;
  std::size_t n = 0;
  auto put = [&](std::string_view v) {
    const std::size_t k = std::min(v.size(), cap - n);
    std::memcpy(out + n, v.data(), k);
    n += k;
  };
  for (std::size_t i = 0; i < tmpl.size();) {
    if (tmpl.compare(i, 8, "{reason}") == 0) {
      put(reason);
      i += 8;
    } else if (tmpl.compare(i, 11, "{reference}") == 0) {
      put(ref);
      i += 11;
    } else {
      put(tmpl.substr(i, 1));
      ++i;
    }
  }
  out[n++] = '\r';
  out[n++] = '\n';
  return n;
}

void Enforcer::report(const reassembly::PacketInfo& info, bool from_client, uint8_t smtp_anomaly, int64_t now_us) noexcept {
  if (!events_) return;
  records::AnomalyRecord a;
  a.timestamp_us = now_us;
  const Tuple t = Tuple::of(info, from_client);
  a.flow.ip_version = t.ip_version;
  std::memcpy(a.flow.client_ip, t.client, 16);
  std::memcpy(a.flow.server_ip, t.server, 16);
  a.flow.client_port = t.client_port;
  a.flow.server_port = t.server_port;
  a.layer = records::AnomalyLayer::smtp;
  a.code = smtp_anomaly;
  a.direction = from_client ? 0 : 1;
  events_->put(a);
}

bool Enforcer::police_starttls(const reassembly::PacketInfo& info, rte_mbuf* m, int64_t now_us) noexcept {
  auto smtp_port = [this](uint16_t p) { return (smtp_port_bits_[p >> 6] >> (p & 63)) & 1; };
  if (smtp_port(info.src_port) && !smtp_port(info.dst_port)) {
    // The server's side: an EHLO reply offering STARTTLS is masked in place.
    if (config_.starttls != StartTlsPolicy::mask) return false;
    uint32_t len = 0;
    uint8_t* frame = io_.writable(m, len);
    if (!frame || info.payload_offset + info.payload_len > len) return false;
    if (reassembly::mask_starttls(frame + info.payload_offset, info.payload_len)) {
      reassembly::refresh_tcp_checksum(frame, info);
      ++counters_.starttls_masked;
      report(info, false, static_cast<uint8_t>(reassembly::SmtpAnomaly::starttls_masked), now_us);
    }
    return false;
  }
  if (!smtp_port(info.dst_port)) return false;
  uint32_t len = 0;
  uint16_t port = 0;
  const uint8_t* bytes = io_.bytes(m, len, port);
  if (info.payload_offset + info.payload_len > len ||
      !reassembly::is_starttls_command(bytes + info.payload_offset, info.payload_len))
    return false;
  // The client asks for TLS (under `mask`, against what it was told): refused by sluiced, the
  // server reset at this segment, the session ended as after a reject.
  Entry* e = find(Tuple::of(info, true));
  if (e && e->state != Entry::State::blocked) return false;  // a held message first (not expected)
  if (!e) {
    e = insert(Tuple::of(info, true));
    if (!e) return false;  // fail open, counted table_full
    e->state = Entry::State::blocked;
    ++counters_.blocked;
    e->deadline_us = now_us + int64_t{config_.aftermath_ms} * 1000;
    if (next_deadline_ > e->deadline_us) next_deadline_ = e->deadline_us;
    ++counters_.starttls_blocked;
    report(info, true, static_cast<uint8_t>(reassembly::SmtpAnomaly::starttls_blocked), now_us);
    (void)io_.observe(bytes, len, port);  // the reassembler sees the command, then the 454
    e->srv_seq = info.tcp_ack;
    e->cli_next = seg_end(info);
    static constexpr std::string_view kRefused = "454 4.7.0 TLS not available due to local policy\r\n";
    std::memcpy(e->last, kRefused.data(), kRefused.size());
    e->last_len = static_cast<uint16_t>(kRefused.size());
    e->last_seq = e->srv_seq;
    e->last_flags = reassembly::kTcpPsh | reassembly::kTcpAck;
    send(*e, bytes, len, io_.peer(port), false, info.tcp_seq, info.tcp_ack, reassembly::kTcpRst | reassembly::kTcpAck, {});
    send(*e, bytes, len, port, true, e->srv_seq, e->cli_next, e->last_flags, kRefused);
    e->srv_seq += static_cast<uint32_t>(kRefused.size());
  } else {
    aftermath(*e, info, bytes, len, port, now_us);
  }
  io_.discard(&m, 1);
  return true;
}

int64_t Enforcer::backstop(int64_t now_us) const noexcept {
  // Every frame behind the head may end a message that waits its own max_hold: the hold queue's
  // deadline is only a backstop against a defect here.
  return now_us + int64_t{hold_.limits().max_frames_per_message + 1} * config_.max_hold_us + kBackstopUs;
}

bool Enforcer::before_inspect(const reassembly::PacketInfo& info, rte_mbuf* m, int64_t now_us) noexcept {
  Entry* e = find(Tuple::of(info, true));  // the frame's source as the client
  const bool from_client = e != nullptr;
  if (!e) e = find(Tuple::of(info, false));
  if (!e || e->state == Entry::State::early) return false;
  const bool syn = (info.tcp_flags & (reassembly::kTcpSyn | reassembly::kTcpAck)) == reassembly::kTcpSyn;
  if (e->state == Entry::State::blocked) {
    if (from_client && syn) {  // a new connection on the same addresses starts afresh
      erase(e);
      return false;
    }
    if (!from_client) ++counters_.absorbed;  // the client's are counted by aftermath()
    if (from_client) {
      uint32_t len = 0;
      uint16_t port = 0;
      const uint8_t* bytes = io_.bytes(m, len, port);
      (void)io_.observe(bytes, len, port);  // the reassembler sees what the client said
      aftermath(*e, info, bytes, len, port, now_us);
    }
    io_.discard(&m, 1);
    return true;
  }
  // Holding: the frame waits behind the head, unseen by the reassembler until it leaves; data the
  // client sends again is absorbed.
  const bool data = info.payload_len || (info.tcp_flags & reassembly::kTcpFin);
  if (from_client && data && !(info.tcp_flags & reassembly::kTcpRst) && e->client_seen &&
      seq_le(seg_end(info), e->held_end)) {
    ++counters_.absorbed;
    io_.discard(&m, 1);
    return true;
  }
  if (!hold_.hold(e->key, m, backstop(now_us)).held()) {
    ++counters_.behind_dropped;
    io_.discard(&m, 1);
    return true;
  }
  ++counters_.queued_behind;
  if (from_client && data) {
    if (!e->client_seen || seq_lt(e->held_end, seg_end(info))) e->held_end = seg_end(info);
    e->client_seen = true;
  }
  return true;
}

Disposition Enforcer::after_inspect(const reassembly::FrameStep& step, const reassembly::PacketInfo& info,
                                    rte_mbuf* m, int64_t now_us) noexcept {
  if (step.step != reassembly::NextStep::hold) return Disposition::transmit;
  if (counters_.fail_open) return ++counters_.watchdog_bypassed, Disposition::transmit;
  // The segment that ends a message (or several: pipelined BDAT; the last names the step), on a
  // connection not gated yet (before_inspect takes every frame of a gated one).
  Entry* e = find(Tuple::of(info, true));
  if (e && e->state != Entry::State::early) return Disposition::transmit;  // not expected: fail open
  if (!e) {
    e = insert(Tuple::of(info, true));
    if (!e) return Disposition::transmit;  // fail open, counted table_full
    e->state = Entry::State::early;
  }
  e->flow_id = step.flow_id;
  e->key = MessageKey{step.flow_id, step.transaction};
  e->deadline_us = now_us + config_.max_hold_us;
  const HoldResult r = hold_.hold(e->key, m, backstop(now_us));
  if (!r.held()) {
    ++counters_.not_held;
    erase(e);
    return r.fallback == HoldAction::forward ? Disposition::transmit : Disposition::free;
  }
  e->state = Entry::State::holding;
  e->held_at_ns = monotonic_ns();
  ++counters_.gated;
  ++counters_.messages_held;
  e->head_txn = step.transaction;
  track_head(*e, step);
  if (next_deadline_ > e->deadline_us) next_deadline_ = e->deadline_us;
  e->held_end = seg_end(info);
  e->client_seen = true;
  mark_ready(*e);  // settles only when every message of the head is decided
  return Disposition::held;
}

bool Enforcer::decided(const records::MessageContext& message, records::VerdictRecord& verdict) noexcept {
  const Tuple t = Tuple::of(message.flow);
  char ref[40];
  reference(message.flow.flow_id, message.transaction, ref, sizeof ref);
  verdict.reference.set(ref);
  Entry* e = find(t);
  if (!e && in_frame_ && n_early_ < kMaxEarly) {
    // Decided as it ended, inside the reassembler: its segment is about to be held.
    e = insert(t);
    if (e) {
      e->state = Entry::State::early;
      e->flow_id = message.flow.flow_id;
      early_[n_early_++] = static_cast<uint32_t>(e - entries_.get());
    }
  }
  Entry::Pending* p = nullptr;
  // Ours when it ended in the head frame: after every message settled, and at or before the one
  // the head ended (or, as the head is being seen, any).
  if (e && e->flow_id == message.flow.flow_id &&
      (e->state == Entry::State::early || e->state == Entry::State::holding) &&
      (!e->settled_any || message.transaction > e->settled_upto) &&
      (in_frame_ || e->state == Entry::State::early || message.transaction <= e->head_txn))
    p = e->pending(message.transaction);
  if (!p) {
    ++counters_.not_held;
    verdict.enforcement = records::Enforcement::not_held;
    return false;
  }
  p->decided = true;
  p->action = verdict.action;
  p->disposition = verdict.disposition;
  p->smuggling = verdict.smuggling;
  // What its own action would do; final when the head is settled (write_withheld).
  verdict.enforcement = enforcement_of(verdict.action);
  bool taken = false;
  if (n_withheld_free_) {
    p->withheld = withheld_free_[--n_withheld_free_];
    withheld_[p->withheld] = verdict;
    taken = true;
  } else {
    ++counters_.verdicts_unwithheld;
  }
  if (e->state == Entry::State::holding) mark_ready(*e);
  return taken;
}

void Enforcer::write_withheld(Entry& e, records::Enforcement how, const char* ref) noexcept {
  for (unsigned i = 0; i < e.n_txns; ++i) {
    Entry::Pending& p = e.txns[i];
    if (p.withheld == kNone) continue;
    records::VerdictRecord& v = withheld_[p.withheld];
    if (how != records::Enforcement::none) v.enforcement = how;
    if (ref) v.reference.set(ref);
    events_->put(v);
    withheld_free_[n_withheld_free_++] = p.withheld;
    p.withheld = kNone;
  }
}

// Every message that ended in the head frame waits for its verdict (those decided as the frame
// was read are there already).
void Enforcer::track_head(Entry& e, const reassembly::FrameStep& step) noexcept {
  const uint64_t first = step.ended > step.transaction + 1 ? 0 : step.first_transaction();
  for (uint64_t t = first; t <= step.transaction; ++t)
    if (!e.pending(t)) {
      ++counters_.pipelined_untracked;
      e.untracked = true;
    }
}

void Enforcer::record_latency(const Entry& e) noexcept {
  const int64_t ns = monotonic_ns() - e.held_at_ns;
  const uint64_t us = ns > 0 ? static_cast<uint64_t>(ns) / 1000 : 0;
  ++counters_.latency_us[latency_bucket(us)];
  counters_.latency_sum_us += us;
}

void Enforcer::mark_ready(Entry& e) noexcept {
  if (e.ready) return;
  e.ready = true;
  ready_[n_ready_++] = static_cast<uint32_t>(&e - entries_.get());
}

void Enforcer::settle_ready(int64_t now_us) noexcept {
  while (n_ready_) {
    Entry& e = entries_[ready_[--n_ready_]];
    if (!e.ready) continue;
    e.ready = false;
    if (e.state == Entry::State::holding) settle(e, now_us);
  }
  // Entries made for a decision whose segment was then not held: nothing to wait for.
  for (unsigned i = 0; i < n_early_; ++i) {
    Entry& e = entries_[early_[i]];
    if (e.state == Entry::State::early) erase(&e);
  }
  n_early_ = 0;
}

// The head frame's messages are all decided: the most severe action wins. Passing, the head goes
// on and the frames behind it follow, each shown to the reassembler as it leaves, until one ends a
// message (it becomes the head and waits for that verdict) or none is left (the gate opens).
void Enforcer::settle(Entry& e, int64_t now_us) noexcept {
  for (;;) {
    const Entry::Pending* worst = nullptr;
    for (unsigned i = 0; i < e.n_txns; ++i) {
      if (!e.txns[i].decided) return;
      if (!worst || e.txns[i].action > worst->action) worst = &e.txns[i];
    }
    if (e.untracked && (!worst || worst->action < records::Action::defer)) {
      // Some message of the head has no verdict to wait for: it must not reach the server.
      block(e, records::Action::defer, e.head_txn, "too many messages in one segment", now_us);
      return;
    }
    if (worst && (worst->action == records::Action::reject || worst->action == records::Action::defer)) {
      block(e, worst->action, worst->transaction,
            worst->timed_out   ? "no verdict in time"
            : worst->smuggling && worst->disposition != records::Disposition::malicious
                ? "an ambiguous end of data (SMTP smuggling)"
                : reason_text(worst->disposition),
            now_us);
      return;
    }
    counters_.passed += e.n_txns;
    record_latency(e);
    write_withheld(e, records::Enforcement::released, nullptr);
    e.settled_any = true;
    e.settled_upto = e.head_txn;
    e.n_txns = 0;
    rte_mbuf* head[1];
    if (hold_.release(e.key, HoldAction::forward, head, 1).n) io_.forward(head, 1);  // seen already
    bool new_head = false;
    while (rte_mbuf* m = hold_.front(e.key)) {
      uint32_t len = 0;
      uint16_t port = 0;
      const uint8_t* bytes = io_.bytes(m, len, port);
      in_frame_ = true;
      const reassembly::FrameStep step = io_.observe(bytes, len, port);
      in_frame_ = false;
      if (step.step == reassembly::NextStep::hold) {
        // It ends a message: the new head.
        e.head_txn = step.transaction;
        track_head(e, step);
        e.held_at_ns = monotonic_ns();
        e.deadline_us = now_us + config_.max_hold_us;
        if (next_deadline_ > e.deadline_us) next_deadline_ = e.deadline_us;
        ++counters_.messages_held;
        new_head = true;
        break;
      }
      reassembly::PacketInfo info;
      if (reassembly::decode_packet(bytes, len, info, link_) == reassembly::DecodeStatus::ok && info.tcp &&
          !e.tuple.from_client(info)) {
        if (!e.server_delivered || seq_lt(e.server_next, seg_end(info))) e.server_next = seg_end(info);
        e.server_delivered = true;
      }
      rte_mbuf* one[1];
      hold_.release(e.key, HoldAction::forward, one, 1);
      io_.forward(one, 1);
    }
    if (!new_head) {
      erase(&e);
      return;
    }
  }
}

bool Enforcer::send(Entry&, const uint8_t* tmpl, std::size_t tmpl_len, uint16_t port, bool to_client, uint32_t seq,
                    uint32_t ack, uint8_t flags, std::string_view payload) noexcept {
  reassembly::ForgeSpec spec;
  spec.to_client = to_client;
  spec.absolute = true;
  spec.seq_offset = seq;
  spec.ack_offset = ack;
  spec.flags = flags;
  spec.ip_id = ++ip_id_;
  spec.payload = payload;
  reassembly::ForgedFrame f;
  if (reassembly::forge_segment(tmpl, tmpl_len, link_, spec, f) != reassembly::ForgeStatus::ok) {
    ++counters_.inject_failed;
    return false;
  }
  if (to_client) io_.observe(f.bytes, f.len, io_.peer(port));  // as if it came from the server's side
  if (!io_.inject(port, f.bytes, f.len)) {
    ++counters_.inject_failed;
    return false;
  }
  ++counters_.injected;
  return true;
}

// Reject or defer: every frame held for the connection is discarded, the client gets the reply,
// the server an RST, and sluiced answers the client from now on. The head frame is the segment
// that ended the message; the client's frames behind it are answered as if they came now.
void Enforcer::block(Entry& e, records::Action action, uint64_t transaction, const char* reason,
                     int64_t now_us) noexcept {
  const bool reject = action == records::Action::reject;
  record_latency(e);
  char ref[40];
  reference(e.flow_id, transaction, ref, sizeof ref);
  // Every message of the head shares the reply the client gets (and the server never saw any).
  write_withheld(e, enforcement_of(action), ref);
  --counters_.gated;
  e.state = Entry::State::blocked;
  ++counters_.blocked;
  e.n_txns = 0;
  e.deadline_us = now_us + int64_t{config_.aftermath_ms} * 1000;
  if (next_deadline_ > e.deadline_us) next_deadline_ = e.deadline_us;
  reject ? ++counters_.rejected : ++counters_.deferred;
  bool first = true;
  rte_mbuf* one[1];
  while (hold_.release(e.key, HoldAction::drop, one, 1).n) {
    uint32_t len = 0;
    uint16_t port = 0;
    const uint8_t* bytes = io_.bytes(one[0], len, port);
    reassembly::PacketInfo info;
    const bool tcp = reassembly::decode_packet(bytes, len, info, link_) == reassembly::DecodeStatus::ok && info.tcp;
    if (tcp && first) {
      first = false;
      // Towards the client, from where the server's delivered data ended.
      e.srv_seq = e.server_delivered && seq_lt(info.tcp_ack, e.server_next) ? e.server_next : info.tcp_ack;
      e.cli_next = seg_end(info);
      const std::size_t n = render(reject ? config_.reject_reply : config_.defer_reply, reason, ref, e.last);
      e.last_len = static_cast<uint16_t>(n);
      e.last_seq = e.srv_seq;
      e.last_flags = reassembly::kTcpPsh | reassembly::kTcpAck;
      // The server: reset exactly at the next byte it expects (the held segment never reached it).
      send(e, bytes, len, io_.peer(port), false, info.tcp_seq, info.tcp_ack, reassembly::kTcpRst | reassembly::kTcpAck, {});
      send(e, bytes, len, port, true, e.srv_seq, e.cli_next, e.last_flags, std::string_view(e.last, n));
      e.srv_seq += static_cast<uint32_t>(n);
    } else if (tcp && e.tuple.from_client(info) && e.state == Entry::State::blocked) {
      (void)io_.observe(bytes, len, port);
      aftermath(e, info, bytes, len, port, now_us);
    }
    io_.discard(one, 1);
  }
  if (first) ++counters_.inject_failed;  // nothing held any more (the backstop took it): no reply
}

// A client frame on a blocked connection: sluiced answers it in the server's place.
void Enforcer::aftermath(Entry& e, const reassembly::PacketInfo& info, const uint8_t* frame, std::size_t len,
                         uint16_t port, int64_t now_us) noexcept {
  ++counters_.absorbed;
  if (info.tcp_flags & reassembly::kTcpRst) {
    erase(&e);
    return;
  }
  const bool fin = info.tcp_flags & reassembly::kTcpFin;
  if (!info.payload_len && !fin) return;  // an acknowledgement
  const int64_t idle = now_us + int64_t{config_.aftermath_ms} * 1000;
  if (e.deadline_us < idle) e.deadline_us = idle;
  const uint32_t end = seg_end(info);
  if (seq_le(end, e.cli_next)) {
    // A retransmission: the reply to it was lost.
    ++counters_.aftermath_replies;
    send(e, frame, len, port, true, e.last_seq, e.cli_next, e.last_flags, std::string_view(e.last, e.last_len));
    return;
  }
  if (info.tcp_seq != e.cli_next) {  // a gap: ask for what is missing
    send(e, frame, len, port, true, e.srv_seq, e.cli_next, reassembly::kTcpAck, {});
    return;
  }
  e.cli_next = end;
  if (e.fin_sent) {
    send(e, frame, len, port, true, e.srv_seq, e.cli_next, reassembly::kTcpAck, {});
  } else {
    std::string_view reply;
    if (info.payload_len) reply = has_quit(frame + info.payload_offset, info.payload_len) ? kBye : kClosing;
    std::memcpy(e.last, reply.data(), reply.size());
    e.last_len = static_cast<uint16_t>(reply.size());
    e.last_seq = e.srv_seq;
    e.last_flags = reassembly::kTcpAck | reassembly::kTcpFin | (reply.empty() ? 0 : reassembly::kTcpPsh);
    ++counters_.aftermath_replies;
    send(e, frame, len, port, true, e.srv_seq, e.cli_next, e.last_flags, reply);
    e.srv_seq += static_cast<uint32_t>(reply.size()) + 1;
    e.fin_sent = true;
  }
  if (fin) {
    // Both sides closed: kept a little for retransmissions, then forgotten.
    e.deadline_us = std::min(e.deadline_us, now_us + kClosingUs);
    if (next_deadline_ > e.deadline_us) next_deadline_ = e.deadline_us;
  }
}

void Enforcer::expire(int64_t now_us) noexcept {
  if (now_us < next_deadline_) return;
  next_deadline_ = INT64_MAX;
  for (uint32_t i = 0; i < config_.max_flows; ++i) {
    Entry& e = entries_[i];
    if (e.state == Entry::State::free || e.state == Entry::State::early) continue;
    if (e.deadline_us > now_us) {
      next_deadline_ = std::min(next_deadline_, e.deadline_us);
      continue;
    }
    if (e.state == Entry::State::blocked) {
      erase(&e);
      continue;
    }
    // Held past the hold deadline: the messages not yet decided take the deadline action.
    for (unsigned k = 0; k < e.n_txns; ++k) {
      if (e.txns[k].decided) continue;
      e.txns[k].decided = true;
      e.txns[k].action = config_.on_deadline;
      e.txns[k].disposition = records::Disposition::clean;
      e.txns[k].timed_out = true;
      ++counters_.expired;
    }
    e.ready = false;
    settle(e, now_us);
    if (e.state != Entry::State::free) next_deadline_ = std::min(next_deadline_, e.deadline_us);
  }
}

void Enforcer::fail_open(int64_t now_us) noexcept {
  ++counters_.watchdog_trips;
  counters_.fail_open = 1;
  for (uint32_t i = 0; i < config_.max_flows; ++i) {
    Entry& e = entries_[i];
    if (e.state != Entry::State::holding) continue;
    for (unsigned k = 0; k < e.n_txns; ++k) {
      if (e.txns[k].decided) continue;
      e.txns[k].decided = true;
      e.txns[k].action = records::Action::pass;
      ++counters_.watchdog_released;
    }
    e.ready = false;
    settle(e, now_us);
  }
}

void Enforcer::expire_holding(int64_t now_us) noexcept {
  for (uint32_t i = 0; i < config_.max_flows; ++i)
    if (entries_[i].state == Entry::State::holding) entries_[i].deadline_us = now_us;
  next_deadline_ = now_us;
  expire(now_us);
}

void Enforcer::release_all(int64_t now_us) noexcept {
  run(now_us);
  expire_holding(now_us);
  for (uint32_t i = 0; i < config_.max_flows; ++i)
    if (entries_[i].state != Entry::State::free) erase(&entries_[i]);
}

}  // namespace sluice::dataplane
