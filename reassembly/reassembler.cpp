// Reassembly stage of one RX lcore. See reassembler.h for the contract.
//
// Per packet: find or create the flow (symmetric key), decide the direction (client = the side
// that sent the SYN, or that talks to the SMTP port when the handshake was not seen), feed the
// segment to that direction's TcpStream and its ACK to the other; in-order bytes go to the
// SmtpSession, whose callbacks build the transaction; a message's content is hashed (SHA-256) and
// its header scanned (Subject, Message-ID) as it streams by; the `smtp` event is written when the
// server's reply to the end of data arrives, or when the flow ends without one.
#include "reassembly/reassembler.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <bitset>
#include <climits>
#include <cstring>
#include <cstdio>
#include <ctime>
#include <new>

#include "reassembly/flow_table.h"
#include "reassembly/ip_defrag.h"
#include "reassembly/message_headers.h"
#include "reassembly/smtp_detect.h"
#include "reassembly/smtp_session.h"
#include "records/reserved_region.h"

namespace sluice::reassembly {
namespace {

enum class AppProto : uint8_t { none, smtp, smtps };
enum : int { kToServer = 0, kToClient = 1 };

using records::kAddrBytes;
using records::kHeloBytes;
using records::kRcptBytes;
using records::Text;
constexpr std::size_t kPendingReplies = 2;      // messages awaiting their final reply (pipelining)
constexpr std::size_t kMaxAnomalies = records::kSmtpAnomalyKinds;

struct Transaction {
  Text<kAddrBytes> mail_from;
  char rcpts[kRcptBytes];
  uint16_t rcpt_bytes = 0;
  uint64_t rcpt_count = 0;   // all RCPT commands, also those not kept
  uint64_t rcpt_kept = 0;
  uint64_t index = 0;
  SmtpTransfer method = SmtpTransfer::data;
  SmtpMessageStatus status = SmtpMessageStatus::complete;
  records::IncompleteReason incomplete_reason = records::IncompleteReason::none;
  uint64_t size = 0;
  uint8_t sha256[32];
  uint64_t digest = 0;  // the observer hashes the content (off the RX lcore): sha256 comes with this ticket
  Text<MessageHeaderScan::kMaxValue> subject;
  Text<MessageHeaderScan::kMaxValue> message_id;
  Text<MessageHeaderScan::kMaxValue> header_from, header_to, header_cc;  // empty: absent
  bool has_subject = false, has_message_id = false;
  records::MessageSummary observer_summary;  // the pipeline's part of the smtp event

  void clear() noexcept {
    mail_from.len = 0;
    rcpt_bytes = 0;
    rcpt_count = rcpt_kept = 0;
    size = 0;
    status = SmtpMessageStatus::complete;
    incomplete_reason = records::IncompleteReason::none;
    digest = 0;
    has_subject = has_message_id = false;
    header_from.len = header_to.len = header_cc.len = 0;
    observer_summary = {};
  }
  void add_rcpt(std::string_view addr) noexcept {
    ++rcpt_count;
    if (rcpt_bytes + addr.size() + 1 > kRcptBytes) return;
    if (!addr.empty()) std::memcpy(rcpts + rcpt_bytes, addr.data(), addr.size());  // "RCPT" alone: nullptr
    rcpt_bytes = static_cast<uint16_t>(rcpt_bytes + addr.size());
    rcpts[rcpt_bytes++] = '\0';
    ++rcpt_kept;
  }
};

// The address of a MAIL FROM / RCPT TO argument: between '<' and '>' (RFC 5321 4.1.2), or the
// first word after the colon when a client omits the brackets.
std::string_view path_of(std::string_view arg) noexcept {
  const auto lt = arg.find('<');
  if (lt != std::string_view::npos) {
    const auto gt = arg.find('>', lt + 1);
    return arg.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1);
  }
  const auto colon = arg.find(':');
  std::string_view rest = colon == std::string_view::npos ? arg : arg.substr(colon + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  return rest.substr(0, rest.find(' '));
}


// RFC 7323 2.2: the window scale option (kind 3, length 3) among a SYN's options; -1 when absent.
int window_scale_of(const PacketInfo& info, const uint8_t* base) noexcept {
  const uint8_t* p = base + info.l4_offset + 20;
  const uint8_t* end = base + info.payload_offset;
  while (p < end) {
    if (*p == 0) break;  // end of options
    if (*p == 1) {       // no-operation
      ++p;
      continue;
    }
    if (end - p < 2 || p[1] < 2 || end - p < p[1]) break;
    if (p[0] == 3 && p[1] == 3) return std::min<int>(p[2], 14);  // larger shifts are taken as 14
    p += p[1];
  }
  return -1;
}

}  // namespace

struct SmtpFlow;

// A session slot's observer: constructed in the slot's reserved memory (only destroyed) or, from a
// factory that does not offer that, made on the heap (deleted).
struct ObserverDelete {
  bool heap = true;
  void operator()(MessageObserver* p) const noexcept {
    if (heap) delete p;
    else p->~MessageObserver();
  }
};
using ObserverPtr = std::unique_ptr<MessageObserver, ObserverDelete>;

struct Reassembler::Impl {
  Impl(const ReassemblyConfig& c, records::RecordSink& o, uint32_t lcore);
  ~Impl();

  ReassemblyConfig config;
  uint32_t lcore_index;
  records::RecordSink& out;
  uint64_t next_flow_id;
  FlowTable flows;
  SegmentPool pool;
  IpDefrag defrag;
  // Session slots: memory reserved for max_sessions at start (records::ReservedRegion: no page is
  // touched), each slot constructed on first use, then recycled through the free list. The
  // observers (the attachment pipeline's state, MessageObserverFactory::footprint() each) likewise,
  // one more for the reading observer. Digest contexts are made at start.
  records::ReservedRegion slot_memory, observer_memory;
  std::size_t observer_stride = 0;  // footprint() rounded up to whole pages; 0: observers from make()
  ObserverPtr make_observer(std::size_t slot) noexcept;
  SmtpFlow* session_slots = nullptr;
  std::size_t sessions_built = 0;
  std::vector<EVP_MD_CTX*> digests;
  SmtpFlow* free_sessions = nullptr;
  SmtpFlow* take_session() noexcept;
  std::bitset<65536> smtp_port, tls_port;
  // SMTP by content (smtp_detect.h): the first bytes of flows off the SMTP ports, per flow until
  // its verdict.
  ProbePool probes;
  bool probe(Flow* f, int& dir, const PacketInfo& info, const uint8_t* base) noexcept;
  void end_probe(Flow* f) noexcept;
  ReassemblyStats stats{};
  int64_t now = 0;
  FrameStep step;  // of the frame being processed (on_packet)
  // The flow of the frame being processed (on_tcp), nullptr outside: only the end of one of its
  // messages can hold the frame. Messages of other flows that end meanwhile (an emergency expiry
  // run for this frame) end at expiry, which holds nothing (message_observer.h).
  const Flow* frame_flow = nullptr;
  records::MessageRecord message_rec;  // filled per event, then copied by the sink
  records::FlowRecord flow_rec;

  // smtp events waiting for their message's hash from a worker (MessageObserver::hashes), in the
  // order they were due; while any waits, later ones queue behind it. Slots of raw storage taken
  // last-freed-first, so only as many pages are touched as ever waited at once.
  struct Waiting {
    MessageObserver* observer;
    uint64_t ticket;
    records::MessageRecord record;
  };
  Waiting* waiting_slots = nullptr;
  std::vector<uint32_t> waiting_free;   // free slot indexes (a stack)
  std::vector<uint32_t> waiting_order;  // a ring of slot indexes, oldest first
  std::size_t waiting_head = 0, waiting_n = 0;
  void emit_waiting(bool all) noexcept;

  // The other reading of an ambiguous DATA stream (smtp_reading.h): one at a time per lcore, in
  // an observer of its own (made the first time one is needed).
  ObserverPtr reading_observer;
  SmtpFlow* reading_owner = nullptr;
  MessageContext reading_ctx{};
  EVP_MD_CTX* reading_sha = nullptr;
  uint64_t reading_bytes = 0;
  void end_reading(bool complete) noexcept;

  int64_t untracked_reported_us = INT64_MIN / 2;  // last flow_table_full anomaly (one a second)
  bool shutting_down = false;  // flush_all(shutdown) runs: a message cut short is `shutdown`, not `aborted`

  void on_tcp(const PacketInfo& info, const uint8_t* ip_base) noexcept;
  void close_if_done(Flow* f) noexcept;
  // Directions out of step (below on_tcp): an ACK past a hole waits for the data.
  struct Segment {
    uint32_t seq, ack;
    uint8_t flags;
    const uint8_t* payload;
    uint32_t len;
  };
  bool wait_for_holes = false;      // !directions_in_step and every limit above 0
  SmtpFlow* waiting = nullptr;      // sessions waiting for an ACKed hole (for the time limit at expiry)
  // Off the path of packets in step: kept out of on_tcp (their code there cost it registers).
  [[gnu::noinline, gnu::cold]] void past_hole(SmtpFlow* s, int dir, const Segment& g) noexcept;
  [[gnu::noinline, gnu::cold]] void in_step(SmtpFlow* s, int dir, const Segment& g) noexcept;
  [[gnu::noinline, gnu::cold]] void out_of_step(SmtpFlow* s, int dir, const Segment& g) noexcept;
  [[gnu::noinline, gnu::cold]] void acknowledge(SmtpFlow* s, int from, uint32_t ack) noexcept;
  [[gnu::noinline, gnu::cold]] void begin_wait(SmtpFlow* s, int w, uint32_t ack) noexcept;
  bool hold(SmtpFlow* s, const Segment& g) noexcept;
  void release_held(SmtpFlow* s) noexcept;
  void apply_held(SmtpFlow* s) noexcept;
  void check_wait(SmtpFlow* s) noexcept;
  [[gnu::noinline, gnu::cold]] void end_wait(SmtpFlow* s, bool filled) noexcept;
  Flow* lookup(const PacketInfo& info, bool& from_client) noexcept;
  void end_flow(Flow* f, records::FlowEndReason reason) noexcept;
  void expire() noexcept;
  void release_session(Flow* f, records::FlowEndReason reason) noexcept;
  // Flows under pressure (below lookup()).
  bool make_room() noexcept;
  void enter_emergency() noexcept;
  void start_session(Flow* f) noexcept;
  bool sessions_exhausted() const noexcept;
  bool reset_acceptable(const Flow* f, int dir, uint32_t seq) const noexcept;
  void untracked(const PacketInfo& info) noexcept;

  // Events, as typed records (records/event_records.h)
  void emit_flow(const Flow* f, records::FlowEndReason reason) noexcept;
  void emit_smtp(const SmtpFlow& s, const Transaction& t, int reply) noexcept;
  void emit_anomaly(const Flow* f, records::AnomalyLayer layer, uint8_t code, int direction) noexcept;

  // The identity of a message for the pipeline's events.
  MessageContext message_context(const Flow* f, uint64_t transaction) const noexcept;
};

// Inspection state of one SMTP flow: both TCP directions, the SMTP parser and the transaction
// being built. One slot of a fixed pool; reset on reuse.
struct SmtpFlow final : SmtpCallbacks {
  struct DirectionSink final : StreamSink {
    SmtpFlow* owner;
    int dir;
    void on_data(const uint8_t* d, std::size_t n) noexcept override {
      dir == kToServer ? owner->session.on_client_data(d, n) : owner->session.on_server_data(d, n);
    }
    void on_gap(uint32_t n) noexcept override {
      owner->gap_reason = owner->memcap_pending[dir] ? records::IncompleteReason::memcap : records::IncompleteReason::gap;
      owner->memcap_pending[dir] = false;
      dir == kToServer ? owner->session.on_client_gap(n) : owner->session.on_server_gap(n);
    }
    void on_end(StreamEnd) noexcept override { owner->ended[dir] = true; }
    void on_anomaly(StreamAnomaly a) noexcept override {
      if (a == StreamAnomaly::memcap) owner->memcap_pending[dir] = true;
      owner->stream_anomaly(a, dir);
    }
  };

  Reassembler::Impl* r = nullptr;
  Flow* flow = nullptr;
  ObserverPtr observer;  // the attachment pipeline's state for this slot
  SmtpFlow* next_free = nullptr;
  TcpStream stream[2];
  DirectionSink sink[2];
  SmtpSession session;
  EVP_MD_CTX* sha = nullptr;
  MessageHeaderScan headers;
  Text<kHeloBytes> helo;
  Transaction current;
  Transaction pending[kPendingReplies];
  std::size_t pending_head = 0, pending_count = 0;
  bool message_open = false;
  bool hash_here = true;  // the open message's content is hashed here (else by its observer)
  bool message_smuggling = false;  // the open message's DATA stream is ambiguous (MessageContext)
  bool encrypted = false;
  bool ended[2] = {false, false};
  bool memcap_pending[2] = {false, false};
  records::IncompleteReason gap_reason = records::IncompleteReason::none;  // why the open message lost bytes
  uint64_t transactions = 0;
  uint32_t caps = 0;
  uint64_t smtp_anomalies[kMaxAnomalies];
  uint32_t reported;  // bit per SmtpAnomaly / StreamAnomaly already sent as an event
  // Directions out of step: stream[wait_dir] lacks bytes the other side acknowledged (-1: none).
  // The other side's segments that come meanwhile are held (copied into pool blocks, one record
  // per segment: a HeldHeader, then its payload, continued in further blocks), in arrival order.
  int wait_dir = -1;
  uint32_t wait_ack = 0;       // the highest acknowledgement past the hole
  uint32_t wait_mark = 0;      // stream[wait_dir]'s next byte when it last moved
  int64_t wait_since_us = 0;   // when it last moved (or the wait began)
  uint32_t wait_bytes = 0, wait_segments = 0;  // payload bytes and segments of the flow since then
  bool deferred_ack_set = false;  // the waiting side's own acknowledgement of the held side
  uint32_t deferred_ack = 0;
  SegmentPool::Block* held_head = nullptr;
  SegmentPool::Block* held_tail = nullptr;
  uint32_t held_segments = 0, held_bytes = 0;
  SmtpFlow* wait_prev = nullptr;
  SmtpFlow* wait_next = nullptr;

  void start(Reassembler::Impl* impl, Flow* f, bool from_start) noexcept {
    r = impl;
    flow = f;
    for (int d = 0; d < 2; ++d) {
      stream[d].reset();
      sink[d].owner = this;
      sink[d].dir = d;
      ended[d] = memcap_pending[d] = false;
    }
    session.set_readings(impl->config.reading_max_bytes > 0 && impl->config.observers);
    session.set_eager_data(impl->config.eager_data);
    session.init(this, from_start);
    helo.len = 0;
    current.clear();
    pending_head = pending_count = 0;
    message_open = encrypted = false;
    gap_reason = records::IncompleteReason::none;
    transactions = caps = 0;
    std::memset(smtp_anomalies, 0, sizeof(smtp_anomalies));
    reported = 0;
    wait_dir = -1;  // (a session ends its wait in finish())
    deferred_ack_set = false;
    held_head = held_tail = nullptr;
    held_segments = held_bytes = 0;
  }

  void stream_anomaly(StreamAnomaly a, int dir) noexcept {
    if (a == StreamAnomaly::overlap_conflict) ++r->stats.overlap_conflicts;
    if (a == StreamAnomaly::gap) ++r->stats.gaps;
    if (a == StreamAnomaly::memcap) ++r->stats.memcap_flushes;
    if (a == StreamAnomaly::out_of_window) ++r->stats.out_of_window_segments;
    const uint32_t bit = 1u << (20 + static_cast<unsigned>(a));
    if (reported & bit) return;  // one event per kind and flow; the flow event has the counts
    reported |= bit;
    r->emit_anomaly(flow, records::AnomalyLayer::tcp, static_cast<uint8_t>(a), dir);
  }

  // SmtpCallbacks
  void on_command(const SmtpCommand& c) noexcept override {
    switch (c.verb) {
      case SmtpVerb::helo:
      case SmtpVerb::ehlo:
        helo.set(c.argument.substr(0, c.argument.find(' ')));
        break;
      case SmtpVerb::mail:
        current.clear();
        current.mail_from.set(path_of(c.argument));
        break;
      case SmtpVerb::rcpt:
        current.add_rcpt(path_of(c.argument));
        break;
      case SmtpVerb::rset:
        current.clear();
        break;
      default:
        break;
    }
  }
  void on_reply(const SmtpReply& reply) noexcept override {
    if (reply.answers != SmtpVerb::message_end || pending_count == 0) return;
    Transaction& t = pending[pending_head];
    pending_head = (pending_head + 1) % kPendingReplies;
    --pending_count;
    r->emit_smtp(*this, t, reply.code);
  }
  void on_capabilities(uint32_t c) noexcept override { caps = c; }
  void on_message_begin(SmtpTransfer how) noexcept override {
    message_open = true;
    message_smuggling = false;
    current.method = how;
    current.index = transactions++;
    current.size = 0;
    gap_reason = records::IncompleteReason::none;
    headers.reset();
    current.observer_summary = {};
    current.digest = 0;
    if (observer) observer->begin(r->message_context(flow, current.index));
    hash_here = !observer || !observer->hashes();
    if (hash_here) EVP_DigestInit_ex(sha, EVP_sha256(), nullptr);
  }
  void on_message_data(const uint8_t* d, std::size_t n) noexcept override {
    if (!message_open) return;
    if (hash_here) EVP_DigestUpdate(sha, d, n);
    current.size += n;
    if (!headers.done()) headers.feed(d, n);
    if (observer) observer->data(d, n);
  }
  void on_message_end(SmtpMessageStatus status) noexcept override {
    if (!message_open) return;
    message_open = false;
    unsigned int len = 0;
    if (hash_here) EVP_DigestFinal_ex(sha, current.sha256, &len);
    current.status = status;
    current.incomplete_reason = status == SmtpMessageStatus::complete ? records::IncompleteReason::none
                                : status == SmtpMessageStatus::aborted
                                    ? (r->shutting_down ? records::IncompleteReason::shutdown : records::IncompleteReason::aborted)
                                                                       : gap_reason != records::IncompleteReason::none ? gap_reason
                                                                       : records::IncompleteReason::gap;
    current.has_subject = headers.has_subject();
    current.has_message_id = headers.has_message_id();
    current.subject.set(headers.subject());
    current.message_id.set(headers.message_id());
    current.header_from.set(headers.from());
    current.header_to.set(headers.to());
    current.header_cc.set(headers.cc());
    if (observer) {
      MessageContext ctx = r->message_context(flow, current.index);
      ctx.smuggling = message_smuggling;
      observer->end(status == SmtpMessageStatus::complete, hash_here ? current.sha256 : nullptr, ctx);
      if (!hash_here) current.digest = observer->digest_ticket();
      observer->summary(current.observer_summary);
      if (observer->hold_end() && flow == r->frame_flow) {
        const bool more = r->step.step == NextStep::hold && r->step.flow_id == flow->flow_id;
        r->step = FrameStep{NextStep::hold, current.index, flow->flow_id, more ? r->step.ended + 1 : 1};
      }
    }
    if (status == SmtpMessageStatus::aborted) {  // no final reply will come
      r->emit_smtp(*this, current, 0);
      clear_envelope();
      return;
    }
    if (pending_count == kPendingReplies) {  // too deep a pipeline: report the oldest without reply
      r->emit_smtp(*this, pending[pending_head], 0);
      pending_head = (pending_head + 1) % kPendingReplies;
      --pending_count;
    }
    pending[(pending_head + pending_count) % kPendingReplies] = current;
    ++pending_count;
    clear_envelope();
  }
  // The transaction is over (RFC 5321 4.1.1.4: its buffers are cleared): a message that begins
  // without a MAIL (lost with a gap, or before a pick-up) has no envelope, never the last one's.
  void clear_envelope() noexcept {
    current.mail_from.len = 0;
    current.rcpt_bytes = 0;
    current.rcpt_count = current.rcpt_kept = 0;
  }
  // The other reading of the open message's DATA stream: to the lcore's reading observer when it
  // is free (else counted, readings_skipped), within config.reading_max_bytes.
  void reading_begin(SmtpReadingKind kind) noexcept override {
    if (!r->config.observers) return;
    if (r->reading_owner) {
      ++r->stats.readings_skipped;
      return;
    }
    if (!r->reading_observer) r->reading_observer = r->make_observer(r->config.max_sessions);
    if (!r->reading_observer) {
      ++r->stats.readings_skipped;
      return;
    }
    r->reading_owner = this;
    r->reading_bytes = 0;
    MessageContext ctx = r->message_context(flow, current.index);
    ctx.reading = kind == SmtpReadingKind::one_message ? records::Reading::one_message : records::Reading::split;
    ctx.smuggling = true;
    r->reading_ctx = ctx;
    EVP_DigestInit_ex(r->reading_sha, EVP_sha256(), nullptr);
    ++r->stats.readings;
    // one_message goes on from where the primary's MIME structure is now (its end comes next).
    r->reading_observer->begin_reading(ctx, kind == SmtpReadingKind::one_message ? observer.get() : nullptr);
  }
  void reading_data(const uint8_t* d, std::size_t n) noexcept override {
    if (r->reading_owner != this) return;
    if (r->reading_bytes + n > r->config.reading_max_bytes) {
      ++r->stats.readings_truncated;
      r->end_reading(false);
      return;
    }
    r->reading_bytes += n;
    EVP_DigestUpdate(r->reading_sha, d, n);
    r->reading_observer->data(d, n);
  }
  void reading_end(bool complete) noexcept override {
    if (r->reading_owner == this) r->end_reading(complete);
  }
  // Called from inside a stream's delivery: the streams are released by on_tcp afterwards.
  void on_tls() noexcept override { encrypted = true; }
  void on_anomaly(SmtpAnomaly a) noexcept override {
    if (message_open && (a == SmtpAnomaly::bare_lf_terminator || a == SmtpAnomaly::bare_cr_terminator))
      message_smuggling = true;
    const unsigned i = static_cast<unsigned>(a);
    if (i < kMaxAnomalies) ++smtp_anomalies[i];
    if (i < 20 && !(reported & (1u << i))) {
      reported |= 1u << i;
      r->emit_anomaly(flow, records::AnomalyLayer::smtp, static_cast<uint8_t>(a), -1);
    }
  }

  // The flow is over: flush what the streams hold, close the parser, report what is left.
  void finish() noexcept {
    // A hole waited for is declared, what was held goes on (ending one wait may start another the
    // other way: the slot must leave the waiting list).
    while (wait_dir >= 0) r->end_wait(this, false);
    if (!encrypted) {
      for (int d = 0; d < 2; ++d) stream[d].flush(sink[d]);
      session.on_close();
    }
    while (pending_count) {
      r->emit_smtp(*this, pending[pending_head], 0);
      pending_head = (pending_head + 1) % kPendingReplies;
      --pending_count;
    }
  }
};

Reassembler::Impl::Impl(const ReassemblyConfig& c, records::RecordSink& o, uint32_t lcore)
    : config(c),
      lcore_index(lcore),
      out(o),
      next_flow_id(static_cast<uint64_t>(lcore) << 48),
      flows(c.max_flows),
      pool(std::max<std::size_t>(16, std::size_t{c.memcap_mb} * 1024 * 1024 / sizeof(SegmentPool::Block))),
      defrag(c.max_fragment_sets, c.fragment_timeout_s, c.max_fragment_sets_per_source),
      probes(c.detect_content ? c.max_sessions : 0) {
  for (uint16_t p : c.smtp_ports) smtp_port.set(p);
  for (uint16_t p : c.implicit_tls_ports) tls_port.set(p);
  slot_memory = records::ReservedRegion(sizeof(SmtpFlow) * std::max<uint32_t>(1, c.max_sessions));
  session_slots = static_cast<SmtpFlow*>(slot_memory.data());
  if (c.observers && c.observers->footprint()) {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    observer_stride = (c.observers->footprint() + page - 1) / page * page;
    observer_memory = records::ReservedRegion(observer_stride * (std::size_t{c.max_sessions} + 1));
  }
  digests.reserve(c.max_sessions);
  for (uint32_t i = 0; i < c.max_sessions; ++i) digests.push_back(EVP_MD_CTX_new());
  reading_sha = EVP_MD_CTX_new();
  if (c.max_digest_waits) {
    waiting_slots = static_cast<Waiting*>(::operator new(sizeof(Waiting) * c.max_digest_waits));
    waiting_free.reserve(c.max_digest_waits);
    for (uint32_t i = c.max_digest_waits; i-- > 0;) waiting_free.push_back(i);
    waiting_order.assign(c.max_digest_waits, 0);
  }
  wait_for_holes = !c.directions_in_step && c.ack_hole_wait_us && c.ack_hole_wait_bytes && c.ack_hole_wait_segments;
}

SmtpFlow* Reassembler::Impl::take_session() noexcept {
  if (SmtpFlow* s = free_sessions) {
    free_sessions = s->next_free;
    ++stats.sessions_active;
    return s;
  }
  if (sessions_built == config.max_sessions) return nullptr;
  ++stats.sessions_active;
  SmtpFlow* s = new (&session_slots[sessions_built]) SmtpFlow;
  s->sha = digests[sessions_built++];
  // Once per slot in the process's life, not per packet: the pipeline's per-session state, in the
  // slot's reserved memory (its pages are faulted in from here on, as they are used).
  s->observer = make_observer(sessions_built - 1);
  for (auto& st : s->stream) st.init(&config.stream, &pool);
  return s;
}

Reassembler::Impl::~Impl() {
  for (std::size_t i = 0; i < sessions_built; ++i) {
    for (auto& st : session_slots[i].stream) st.reset();
    session_slots[i].~SmtpFlow();
  }
  ::operator delete(waiting_slots);  // what still waits is lost (the data plane writes it at its end)
  for (EVP_MD_CTX* d : digests) EVP_MD_CTX_free(d);
  EVP_MD_CTX_free(reading_sha);
}

ObserverPtr Reassembler::Impl::make_observer(std::size_t slot) noexcept {
  if (!config.observers) return nullptr;
  if (observer_stride) {
    void* at = static_cast<char*>(observer_memory.data()) + slot * observer_stride;
    if (MessageObserver* o = config.observers->make_at(at, out, lcore_index)) return ObserverPtr(o, ObserverDelete{false});
  }
  try {
    return ObserverPtr(config.observers->make(out, lcore_index).release(), ObserverDelete{true});
  } catch (...) {  // std::bad_alloc: the slot goes without inspection, as a failed make() always did
    return nullptr;
  }
}

void Reassembler::Impl::end_reading(bool complete) noexcept {
  uint8_t sha[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(reading_sha, sha, &len);
  reading_ctx.now_us = now;
  reading_owner = nullptr;
  reading_observer->end(complete, sha, reading_ctx);
}

// Flows under pressure. A flow takes no session slot until it shows payload (a greeting, client
// data, or the first data of a connection picked up mid-stream): a SYN, a handshake or a half-open
// connection costs a flow entry only, on the embryonic list, with its own short timeout. A new flow
// that finds the table full evicts the oldest embryonic flow (flow event, reason `evicted`), so a
// SYN flood cannot keep real connections out. When the table is full of active flows, or the
// session pool is empty when a flow shows payload, emergency timeouts come into force (counted,
// `reassembly.emergency` in the stats, an alert on the control side) until usage falls below the
// recovery share. A connection that still cannot be tracked is counted and, once a second, reported
// (`flow_table_full` anomaly without a flow id); with drop_untracked_syn its SYN is dropped.
Flow* Reassembler::Impl::lookup(const PacketInfo& info, bool& from_client) noexcept {
  bool src_is_lo;
  const FlowKey key = make_flow_key(info, src_is_lo);
  const uint32_t hash = symmetric_flow_hash(info, FlowHashMode::five_tuple);
  Flow* f = flows.find(key, hash);
  if (f) {
    from_client = src_is_lo == f->client_is_lo;
    return f;
  }
  if (info.tcp_flags & tcp_flags::rst) return nullptr;  // nothing to learn from a lone reset
  const bool syn_only = (info.tcp_flags & (tcp_flags::syn | tcp_flags::ack)) == tcp_flags::syn;
  const bool syn_ack = (info.tcp_flags & (tcp_flags::syn | tcp_flags::ack)) == (tcp_flags::syn | tcp_flags::ack);
  const bool to_service = smtp_port.test(info.dst_port) || tls_port.test(info.dst_port);
  // A new SMTP connection that no session could inspect, even in emergency: refused if so configured.
  if (syn_only && config.drop_untracked_syn && smtp_port.test(info.dst_port) && sessions_exhausted()) {
    enter_emergency();
    if (sessions_exhausted()) {
      ++stats.syns_dropped;
      step = FrameStep{NextStep::drop, 0, 0};
      return nullptr;
    }
  }
  if (flows.size() == flows.capacity() && !make_room()) {
    ++stats.flows_table_full;
    untracked(info);
    if (syn_only && config.drop_untracked_syn && smtp_port.test(info.dst_port)) {
      ++stats.syns_dropped;
      step = FrameStep{NextStep::drop, 0, 0};
    }
    return nullptr;
  }
  f = flows.insert(key, hash);
  ++stats.flows_created;
  f->flow_id = ++next_flow_id;
  f->first_seen_us = now;
  // The client sent the SYN; without one, the client is the side talking to the service port.
  from_client = syn_only || (!syn_ack && to_service);
  f->client_is_lo = from_client ? src_is_lo : !src_is_lo;
  const uint16_t server_port = from_client ? info.dst_port : info.src_port;
  f->app = static_cast<uint8_t>(smtp_port.test(server_port) ? AppProto::smtp
                                : tls_port.test(server_port) ? AppProto::smtps
                                                             : AppProto::none);
  if (config.detect_content && f->app == static_cast<uint8_t>(AppProto::none))
    f->detect = static_cast<uint8_t>(DetectState::pending);
  return f;
}

// Room for one more flow: the oldest embryonic flow goes; without one, emergency timeouts.
bool Reassembler::Impl::make_room() noexcept {
  if (Flow* e = flows.oldest_embryonic()) {
    if (e->detect == static_cast<uint8_t>(DetectState::port)) ++stats.flows_evicted;  // (off-port: detect_evicted)
    end_flow(e, records::FlowEndReason::evicted);
    return true;
  }
  enter_emergency();
  return flows.size() < flows.capacity();
}

// Emergency timeouts from now on, and an expiry run with them at once.
void Reassembler::Impl::enter_emergency() noexcept {
  if (!stats.emergency) {
    stats.emergency = 1;
    ++stats.emergency_entered;
  }
  expire();
}

// Whether the receiver of a reset sent in direction `dir` would accept it: exactly its next
// expected sequence number (the stream's; before any data, the one after the SYN or the FIN that
// side sent). Without a SYN seen, once encrypted (the streams are no longer fed), or for a flow
// without a session past its first payload, any.
bool Reassembler::Impl::reset_acceptable(const Flow* f, int dir, uint32_t seq) const noexcept {
  if (const SmtpFlow* s = f->smtp) return s->encrypted || s->stream[dir].accepts_reset(seq);
  // Without a session, sequence numbers are followed only until the first payload (an implicit-TLS
  // or refused flow after it: any reset).
  if (!f->syn_seen[dir] || !f->embryonic || f->probe) return true;
  return seq == f->isn[dir] + 1 || (f->fin[dir] && seq == f->fin_seq[dir] + 1);
}

bool Reassembler::Impl::sessions_exhausted() const noexcept {
  return free_sessions == nullptr && sessions_built == config.max_sessions;
}

// The flow showed payload: it gets a session, whose streams start from the handshake it saw.
void Reassembler::Impl::start_session(Flow* f) noexcept {
  if (sessions_exhausted()) enter_emergency();
  SmtpFlow* s = take_session();
  if (!s) {
    f->session_refused = true;
    ++stats.sessions_pool_full;
    emit_anomaly(f, records::AnomalyLayer::flow, static_cast<uint8_t>(records::FlowAnomaly::session_pool_full), -1);
    return;
  }
  f->smtp = s;
  // Anchored from either side of the handshake: the client's SYN, or the SYN-ACK that answered it
  // (seen first on a tap whose directions are out of step, or alone when the capture lost the SYN).
  const bool client_anchored = f->syn_seen[kToServer] || f->isn_from_syn_ack;
  s->start(this, f, client_anchored);
  if (client_anchored) s->stream[kToServer].on_segment(f->isn[kToServer], tcp_flags::syn, nullptr, 0, s->sink[kToServer]);
  if (f->syn_seen[kToClient])
    s->stream[kToClient].on_segment(f->isn[kToClient], tcp_flags::syn | tcp_flags::ack, nullptr, 0, s->sink[kToClient]);
  // SMTP by content: the bytes its probe saw before the segment that decided, the server's first.
  if (const SmtpProbe* p = f->probe)
    for (int d : {kToClient, kToServer})
      if (p->replay_len(d))
        s->stream[d].on_segment(p->seq[d], tcp_flags::ack | tcp_flags::psh, p->data[d], p->replay_len(d), s->sink[d]);
  // A side that closed before the other showed data (a server's FIN after the handshake).
  for (int d = 0; d < 2; ++d)
    if (f->fin[d] && f->syn_seen[d]) s->stream[d].on_segment(f->fin_seq[d], tcp_flags::fin, nullptr, 0, s->sink[d]);
}

// A connection the table has no room for: counted by the caller; reported once a second at most.
void Reassembler::Impl::untracked(const PacketInfo& info) noexcept {
  if (now - untracked_reported_us < 1000000) return;
  untracked_reported_us = now;
  records::AnomalyRecord a;
  a.timestamp_us = now;
  a.flow.flow_id = 0;
  a.flow.ip_version = info.ip_version;
  const std::size_t n = info.ip_version == 6 ? 16 : 4;
  const bool to_service = smtp_port.test(info.dst_port) || tls_port.test(info.dst_port);
  std::memcpy(a.flow.client_ip, to_service ? info.src_addr : info.dst_addr, n);
  std::memcpy(a.flow.server_ip, to_service ? info.dst_addr : info.src_addr, n);
  a.flow.client_port = to_service ? info.src_port : info.dst_port;
  a.flow.server_port = to_service ? info.dst_port : info.src_port;
  a.layer = records::AnomalyLayer::flow;
  a.code = static_cast<uint8_t>(records::FlowAnomaly::flow_table_full);
  out.put(a);
}

void Reassembler::Impl::on_tcp(const PacketInfo& info, const uint8_t* base) noexcept {
  bool from_client = true;
  Flow* f = lookup(info, from_client);
  if (!f) return;
  if (f->detect == static_cast<uint8_t>(DetectState::bypassed)) {  // not SMTP: one lookup
    flows.touch(f);
    return;
  }
  frame_flow = f;
  int dir = from_client ? kToServer : kToClient;
  ++f->packets[dir];
  f->bytes[dir] += info.ip_end - info.l3_offset;
  f->last_seen_us = now;
  // A reset the receiver would not take (RFC 5961 3.2) ends nothing: Linux answers it with a
  // challenge ACK and keeps the connection. Counted, reported, otherwise ignored.
  if ((info.tcp_flags & tcp_flags::rst) && !reset_acceptable(f, dir, info.tcp_seq)) {
    ++stats.rst_ignored;
    flows.touch(f);
    if (f->smtp) f->smtp->stream_anomaly(StreamAnomaly::rst_ignored, dir);
    return;
  }
  if ((info.tcp_flags & tcp_flags::fin) && !f->fin[dir]) {
    f->fin[dir] = true;
    f->fin_seq[dir] = info.tcp_seq + info.payload_len;
  }
  if (info.tcp_flags & tcp_flags::rst) f->rst = true;
  if ((info.tcp_flags & tcp_flags::syn) && dir == kToClient && (info.tcp_flags & tcp_flags::ack) &&
      !f->syn_seen[kToServer] && !f->isn_from_syn_ack) {
    f->isn_from_syn_ack = true;  // the SYN-ACK says where the client's stream starts
    f->isn[kToServer] = info.tcp_ack - 1;
  }
  if ((info.tcp_flags & tcp_flags::syn) && !f->syn_seen[dir]) {
    f->syn_seen[dir] = true;
    f->isn[dir] = info.tcp_seq;
    const int scale = window_scale_of(info, base);
    f->wscale_sent[dir] = scale >= 0;
    f->wscale[dir] = static_cast<uint8_t>(scale < 0 ? 0 : scale);
  }
  if (info.payload_len && f->embryonic) {
    if (f->detect == static_cast<uint8_t>(DetectState::pending) && !probe(f, dir, info, base)) {
      flows.touch(f);  // still judged, or not SMTP
      return;
    }
    flows.activate(f);
    if (f->app == static_cast<uint8_t>(AppProto::smtp) && !f->smtp && !f->reported) start_session(f);
    if (f->probe) end_probe(f);  // (its bytes are in the session's streams now)
  } else {
    flows.touch(f);
  }

  SmtpFlow* s = f->smtp;
  if (s && !s->encrypted) {
    // The window this side offers bounds what the other may send. Known only with the handshake
    // (the scale is in the SYNs; a SYN's own window is never scaled); a pick-up keeps the stream's
    // bound for unknown windows. Taken at arrival, also for a segment held below.
    if ((info.tcp_flags & tcp_flags::ack) && f->syn_seen[kToServer] && f->syn_seen[kToClient]) {
      const bool scaled = f->wscale_sent[0] && f->wscale_sent[1] && !(info.tcp_flags & tcp_flags::syn);
      s->stream[dir ^ 1].set_window(info.tcp_ack, uint32_t{info.tcp_window} << (scaled ? f->wscale[dir] : 0));
    }
    if (s->wait_dir >= 0 || ((info.tcp_flags & tcp_flags::ack) && s->stream[dir ^ 1].acked_hole(info.tcp_ack))) {
      past_hole(s, dir, Segment{info.tcp_seq, info.tcp_ack, info.tcp_flags, base + info.payload_offset, info.payload_len});
    } else {  // in_step(), written out: the path of nearly every packet
      if (info.tcp_flags & tcp_flags::ack) s->stream[dir ^ 1].on_ack(info.tcp_ack, s->sink[dir ^ 1]);
      if (!s->encrypted)  // (a gap the ACK declared may have turned the session to TLS)
        s->stream[dir].on_segment(info.tcp_seq, info.tcp_flags, base + info.payload_offset, info.payload_len, s->sink[dir]);
    }
    // After STARTTLS the streams are no longer fed; their counters stay for the flow event.
  }
  // close_if_done(), written out for the same reason.
  if (s && (f->rst || (f->fin[0] && f->fin[1] && (s->encrypted || (s->ended[0] && s->ended[1])))))
    release_session(f, f->rst ? records::FlowEndReason::rst : records::FlowEndReason::fin);
}

// Both sides done (FIN each way, or a reset): report now; the entry stays until the closed
// timeout so that late retransmissions do not start a new flow.
void Reassembler::Impl::close_if_done(Flow* f) noexcept {
  const SmtpFlow* s = f->smtp;
  if (s && (f->rst || (f->fin[0] && f->fin[1] && (s->encrypted || (s->ended[0] && s->ended[1])))))
    release_session(f, f->rst ? records::FlowEndReason::rst : records::FlowEndReason::fin);
}

// A segment while a wait runs, or whose ACK passes a hole in the other direction. In step, the
// hole is a gap that comes before this segment's data (a server's reply that acknowledges client
// bytes the capture lost must find the client's command stream caught up). Out of step, the data
// may come yet.
void Reassembler::Impl::past_hole(SmtpFlow* s, int dir, const Segment& g) noexcept {
  if (s->wait_dir >= 0) return out_of_step(s, dir, g);
  if (wait_for_holes && !(g.flags & tcp_flags::rst)) {
    begin_wait(s, dir ^ 1, g.ack);
    return out_of_step(s, dir, g);
  }
  ++stats.acked_holes_declared;
  in_step(s, dir, g);
}

// One segment as the two directions come in step: its ACK first (the sender had received all
// that before it sent this segment: a hole it covers is declared), then its data.
void Reassembler::Impl::in_step(SmtpFlow* s, int dir, const Segment& g) noexcept {
  if (g.flags & tcp_flags::ack) s->stream[dir ^ 1].on_ack(g.ack, s->sink[dir ^ 1]);
  if (!s->encrypted) s->stream[dir].on_segment(g.seq, g.flags, g.payload, g.len, s->sink[dir]);
}

// Directions out of step (issue 17). A TAP or SPAN with a port per direction, or two RX queues,
// can deliver the server's ACK before the client data it acknowledges. Declaring the hole then
// loses data that is still on its way, so (tap, replay: directions_in_step false) stream W waits:
// - the acknowledging side's segments that carry anything (data, FIN) are held, in arrival order,
//   each until W has reached its acknowledgement, so the session sees a reply after the command it
//   answers, as the exchange went; its pure ACKs only raise the acknowledgement waited for;
// - W's own segments are fed at once; their acknowledgements of the held side are kept and applied
//   when the wait ends (the held side is behind until then);
// - the hole is filled when W reaches the highest acknowledgement with nothing held
//   (acked_holes_filled); it is declared (acked_holes_declared), as in step, when since W last
//   moved more than ack_hole_wait_us of packet time passed (also checked at expiry), or more than
//   ack_hole_wait_bytes / _segments arrived, when the held side's records would pass those limits
//   or the pool is out of blocks, at W's FIN, at a reset, and when the session ends (flush).
// One wait per session at a time: an acknowledgement that passes a hole the other way while one
// runs is applied when it ends. Inline keeps declaring at once: both directions pass through the
// appliance, so an ACK cannot precede data that was forwarded.
namespace {
struct HeldHeader {
  uint32_t seq, ack, len;
  uint8_t flags;
};
constexpr uint32_t kHeldHeader = 16;
static_assert(sizeof(HeldHeader) <= kHeldHeader);
bool seq_before(uint32_t a, uint32_t b) { return int32_t(a - b) < 0; }
}  // namespace

void Reassembler::Impl::begin_wait(SmtpFlow* s, int w, uint32_t ack) noexcept {
  s->wait_dir = w;
  s->wait_ack = ack;
  s->wait_mark = s->stream[w].next_seq();
  s->wait_since_us = now;
  s->wait_bytes = s->wait_segments = 0;
  s->deferred_ack_set = false;
  s->wait_prev = nullptr;
  s->wait_next = waiting;
  if (waiting) waiting->wait_prev = s;
  waiting = s;
}

void Reassembler::Impl::out_of_step(SmtpFlow* s, int dir, const Segment& g) noexcept {
  const int w = s->wait_dir;
  s->wait_bytes += g.len;
  ++s->wait_segments;
  if (g.flags & tcp_flags::rst) {  // the connection is gone: declared, then the reset as in step
    end_wait(s, false);
    in_step(s, dir, g);
    return;
  }
  if (dir != w) {  // the acknowledging side
    const bool ack = g.flags & tcp_flags::ack;
    if (ack && seq_before(s->wait_ack, g.ack)) s->wait_ack = g.ack;
    if (g.len == 0 && !(g.flags & (tcp_flags::fin | tcp_flags::syn))) {
      // a pure ACK: its acknowledgement is waited for
    } else if (s->held_head || (ack && s->stream[w].acked_hole(g.ack))) {
      if (!hold(s, g)) {  // past the limits: declared, then this segment in step
        end_wait(s, false);
        in_step(s, dir, g);
        return;
      }
    } else {
      in_step(s, dir, g);  // its acknowledgement is reached: nothing to wait for
    }
  } else {  // the waiting side's own data
    if ((g.flags & tcp_flags::ack) && (!s->deferred_ack_set || seq_before(s->deferred_ack, g.ack))) {
      s->deferred_ack_set = true;
      s->deferred_ack = g.ack;
    }
    s->stream[w].on_segment(g.seq, g.flags, g.payload, g.len, s->sink[w]);
    release_held(s);
    if (s->wait_dir != w) return;  // over (or, once over, another began the other way)
    if (g.flags & tcp_flags::fin) {  // it sent all it had before its FIN: what is missing is lost
      end_wait(s, false);
      return;
    }
  }
  if (s->wait_dir >= 0) check_wait(s);
}

// The limits, counted since the waiting stream last moved.
void Reassembler::Impl::check_wait(SmtpFlow* s) noexcept {
  const uint32_t next = s->stream[s->wait_dir].next_seq();
  if (next != s->wait_mark) {
    s->wait_mark = next;
    s->wait_since_us = now;
    s->wait_bytes = s->wait_segments = 0;
  }
  if (now - s->wait_since_us > int64_t{config.ack_hole_wait_us} || s->wait_bytes > config.ack_hole_wait_bytes ||
      s->wait_segments > config.ack_hole_wait_segments)
    end_wait(s, false);
}

// Copies a segment of the acknowledging side to the end of the held records; false when the
// limits or the pool have no room for it (nothing is held then).
bool Reassembler::Impl::hold(SmtpFlow* s, const Segment& g) noexcept {
  if (s->held_segments + 1 > config.ack_hole_wait_segments || s->held_bytes + g.len > config.ack_hole_wait_bytes)
    return false;
  using Block = SegmentPool::Block;
  Block* first = nullptr;
  Block* last = nullptr;
  uint32_t at = 0;  // payload bytes copied
  do {
    Block* b = pool.alloc();
    if (!b) {
      while (first) {
        Block* n = first->next;
        pool.free(first);
        first = n;
      }
      return false;
    }
    b->next = nullptr;
    b->seq = 0;
    uint32_t off = 0;
    if (!first) {
      const HeldHeader h{g.seq, g.ack, g.len, g.flags};
      std::memcpy(b->data, &h, sizeof(h));
      off = kHeldHeader;
      first = b;
    } else {
      last->next = b;
    }
    last = b;
    const uint32_t n = std::min<uint32_t>(g.len - at, SegmentPool::kBlockSize - off);
    if (n) std::memcpy(b->data + off, g.payload + at, n);
    b->len = static_cast<uint16_t>(off + n);
    at += n;
  } while (at < g.len);
  (s->held_tail ? s->held_tail->next : s->held_head) = first;
  s->held_tail = last;
  ++s->held_segments;
  s->held_bytes += g.len;
  return true;
}

// The oldest held record, applied in step (its ACK, then its data, block by block) and freed.
void Reassembler::Impl::apply_held(SmtpFlow* s) noexcept {
  using Block = SegmentPool::Block;
  const int held_dir = s->wait_dir ^ 1;  // (called only while the wait runs)
  Block* b = s->held_head;
  HeldHeader h;
  std::memcpy(&h, b->data, sizeof(h));
  if ((h.flags & tcp_flags::ack) && !s->encrypted) s->stream[held_dir ^ 1].on_ack(h.ack, s->sink[held_dir ^ 1]);
  uint32_t seq = h.seq, left = h.len;
  uint32_t off = kHeldHeader;
  uint8_t flags = h.flags & ~tcp_flags::ack;
  do {
    Block* next = b->next;
    const uint32_t n = b->len - off;
    left -= n;
    if (!s->encrypted) {
      // SYN only with the first piece (its data starts one further), FIN only with the last.
      const uint8_t f = left ? static_cast<uint8_t>(flags & ~tcp_flags::fin) : flags;
      s->stream[held_dir].on_segment(seq, f, n ? b->data + off : nullptr, n, s->sink[held_dir]);
      seq += n + ((flags & tcp_flags::syn) ? 1 : 0);
      flags = static_cast<uint8_t>(flags & ~tcp_flags::syn);
    }
    pool.free(b);
    b = next;
    off = 0;
  } while (left && b);
  s->held_head = b;
  if (!b) s->held_tail = nullptr;
  --s->held_segments;
  s->held_bytes -= h.len;
}

// The held records whose acknowledgement the waiting stream has reached, in order; the wait ends
// (filled) when it has reached the highest and nothing is held.
void Reassembler::Impl::release_held(SmtpFlow* s) noexcept {
  const int w = s->wait_dir;
  while (s->held_head && !s->encrypted) {
    HeldHeader h;
    std::memcpy(&h, s->held_head->data, sizeof(h));
    if ((h.flags & tcp_flags::ack) && s->stream[w].acked_hole(h.ack)) return;
    apply_held(s);
  }
  if (s->encrypted || !s->stream[w].acked_hole(s->wait_ack)) end_wait(s, !s->encrypted);
}

// The wait is over: filled, or declared (the held records applied in step, each ACK declaring
// what is still missing before it). Then the waiting side's own acknowledgement, which may start
// a wait the other way.
void Reassembler::Impl::end_wait(SmtpFlow* s, bool filled) noexcept {
  const int w = s->wait_dir;
  if (w < 0) return;
  ++(filled ? stats.acked_holes_filled : stats.acked_holes_declared);
  while (s->held_head) apply_held(s);  // (freed only, once encrypted)
  s->wait_dir = -1;
  (s->wait_prev ? s->wait_prev->wait_next : waiting) = s->wait_next;
  if (s->wait_next) s->wait_next->wait_prev = s->wait_prev;
  s->wait_prev = s->wait_next = nullptr;
  if (s->encrypted) return;
  s->stream[w].on_ack(s->wait_ack, s->sink[w]);
  if (s->deferred_ack_set) {
    s->deferred_ack_set = false;
    acknowledge(s, w, s->deferred_ack);
  }
}

// An acknowledgement from side `from` of the other side's stream, outside a segment.
void Reassembler::Impl::acknowledge(SmtpFlow* s, int from, uint32_t ack) noexcept {
  const int other = from ^ 1;
  if (!s->stream[other].acked_hole(ack)) return s->stream[other].on_ack(ack, s->sink[other]);
  if (wait_for_holes) return begin_wait(s, other, ack);
  ++stats.acked_holes_declared;
  s->stream[other].on_ack(ack, s->sink[other]);
}

void Reassembler::Impl::release_session(Flow* f, records::FlowEndReason reason) noexcept {
  SmtpFlow* s = f->smtp;
  --stats.sessions_active;
  s->finish();           // flushes the streams: last smtp events first
  if (reading_owner == s) end_reading(false);  // (a session that turned to TLS ends it already)
  emit_flow(f, reason);  // then the flow, with the session's counters
  for (auto& st : s->stream) st.reset();  // blocks back to the pool
  f->reported = true;
  f->smtp = nullptr;
  s->next_free = free_sessions;
  free_sessions = s;
}

void Reassembler::Impl::end_flow(Flow* f, records::FlowEndReason reason) noexcept {
  if (f->probe) {  // ended before a verdict
    ++(reason == records::FlowEndReason::evicted ? stats.detect_evicted : stats.detect_undecided);
    end_probe(f);
  }
  const bool off_port = f->detect == static_cast<uint8_t>(DetectState::pending) ||
                        f->detect == static_cast<uint8_t>(DetectState::bypassed);
  if (f->smtp)
    release_session(f, reason);
  else if (!f->reported && !off_port)  // flows off the SMTP ports are reported once taken for SMTP
    emit_flow(f, reason);
  flows.remove(f);
}

// SMTP by content (smtp_detect.h). A payload segment of a flow off the SMTP ports, judged with
// what its probe holds (a probe slot is taken at its first payload; when all are busy the oldest
// probe's flow gives way, counted detect_evicted). Not SMTP, or undecided at the probe's bounds:
// the flow is bypassed (later packets cost one lookup). SMTP: the flow's directions are set by
// what was seen (the greeting's sender is the server) and true is returned: the caller starts the
// session, which replays the probe's bytes, so that it is the one the flow would have had on an
// SMTP port.
bool Reassembler::Impl::probe(Flow* f, int& dir, const PacketInfo& info, const uint8_t* base) noexcept {
  if (!f->probe) {
    if (probes.in_use() == probes.capacity() && probes.oldest()) {
      Flow* old = probes.oldest()->owner;
      ++stats.detect_evicted;
      end_probe(old);
      old->detect = static_cast<uint8_t>(DetectState::bypassed);
    }
    if (!(f->probe = probes.take(f))) {  // no slot at all (max_sessions 0)
      f->detect = static_cast<uint8_t>(DetectState::bypassed);
      return false;
    }
    ++stats.detect_probed;
  }
  const bool roles_known = f->syn_seen[kToServer] || f->syn_seen[kToClient];
  const ProbeVerdict verdict = f->probe->add(dir, info.tcp_seq, base + info.payload_offset, info.payload_len, roles_known);
  switch (verdict) {
    case ProbeVerdict::pending:
      return false;
    case ProbeVerdict::smtp:
      break;
    case ProbeVerdict::not_smtp:
    case ProbeVerdict::gave_up:
      ++(verdict == ProbeVerdict::not_smtp ? stats.detect_not_smtp : stats.detect_undecided);
      end_probe(f);
      f->detect = static_cast<uint8_t>(DetectState::bypassed);
      return false;
  }
  ++stats.detect_smtp;
  if (f->probe->server_dir == kToServer) {  // the side taken for the client greeted: it is the server
    swap_directions(*f);
    dir ^= 1;
  }
  f->app = static_cast<uint8_t>(AppProto::smtp);
  f->detect = static_cast<uint8_t>(DetectState::detected);
  return true;
}

void Reassembler::Impl::end_probe(Flow* f) noexcept {
  probes.release(f->probe);
  f->probe = nullptr;
}

namespace {

records::FlowIdentity identity_of(const Flow* f) noexcept {
  records::FlowIdentity id;
  id.flow_id = f->flow_id;
  id.ip_version = f->key.ip_version;
  const std::size_t n = f->key.ip_version == 6 ? 16 : 4;
  std::memcpy(id.client_ip, f->client_is_lo ? f->key.addr_lo : f->key.addr_hi, n);
  std::memcpy(id.server_ip, f->client_is_lo ? f->key.addr_hi : f->key.addr_lo, n);
  id.client_port = f->client_is_lo ? f->key.port_lo : f->key.port_hi;
  id.server_port = f->client_is_lo ? f->key.port_hi : f->key.port_lo;
  return id;
}

}  // namespace

void Reassembler::Impl::emit_smtp(const SmtpFlow& s, const Transaction& t, int reply) noexcept {
  records::MessageRecord& m = message_rec;
  m.timestamp_us = now;
  m.flow = identity_of(s.flow);
  m.transaction = t.index;
  m.helo.set(s.helo.view());
  m.mail_from.set(t.mail_from.view());
  if (t.rcpt_bytes) std::memcpy(m.rcpts, t.rcpts, t.rcpt_bytes);
  m.rcpt_bytes = t.rcpt_bytes;
  m.rcpt_kept = t.rcpt_kept;
  m.rcpt_count = t.rcpt_count;
  m.bdat = t.method == SmtpTransfer::bdat;
  m.starttls = s.encrypted;
  m.has_sha256 = true;
  std::memcpy(m.sha256, t.sha256, 32);
  m.size = t.size;
  m.has_subject = t.has_subject;
  m.has_message_id = t.has_message_id;
  m.subject.set(t.has_subject ? t.subject.view() : std::string_view());
  m.message_id.set(t.has_message_id ? t.message_id.view() : std::string_view());
  m.header_from.set(t.header_from.view());
  m.header_to.set(t.header_to.view());
  m.header_cc.set(t.header_cc.view());
  m.summary = t.observer_summary;
  m.server_reply = reply > 0 ? static_cast<uint16_t>(reply) : 0;
  m.complete = t.status == SmtpMessageStatus::complete;
  m.incomplete_reason = t.incomplete_reason;
  m.detected = s.flow->detect == static_cast<uint8_t>(DetectState::detected);
  ++stats.messages;
  if (t.status != SmtpMessageStatus::complete) ++stats.messages_incomplete;
  if (t.digest) {
    // The hash is a worker's: the event waits for it (behind any that already wait, so that a
    // flow's events keep their order), in one of as many slots as the pipeline has tickets.
    if (!waiting_n) {
      bool known = false;
      if (s.observer->take_digest(t.digest, m.sha256, known)) {
        m.has_sha256 = known;
        return out.put(m);
      }
    }
    if (waiting_free.empty()) {  // more than the pipeline can have: cannot happen
      ++stats.smtp_digest_unwaited;
      m.has_sha256 = false;
      return out.put(m);
    }
    const uint32_t w = waiting_free.back();
    waiting_free.pop_back();
    new (&waiting_slots[w]) Waiting{s.observer.get(), t.digest, m};
    waiting_order[(waiting_head + waiting_n++) % waiting_order.size()] = w;
    ++stats.smtp_digest_waits;
    return;
  }
  out.put(m);
}

// Writes the waiting smtp events whose hash is in, oldest first (stopping at the first that still
// waits); `all`: the pipeline has given every hash up or in (after its drain), nothing waits.
void Reassembler::Impl::emit_waiting(bool all) noexcept {
  while (waiting_n) {
    const uint32_t w = waiting_order[waiting_head];
    Waiting& x = waiting_slots[w];
    bool known = false;
    if (!x.observer->take_digest(x.ticket, x.record.sha256, known)) {
      if (!all) return;
      known = false;
    }
    x.record.has_sha256 = known;
    out.put(x.record);
    x.~Waiting();
    waiting_free.push_back(w);
    waiting_head = (waiting_head + 1) % waiting_order.size();
    --waiting_n;
  }
}

void Reassembler::Impl::emit_flow(const Flow* f, records::FlowEndReason reason) noexcept {
  records::FlowRecord& r = flow_rec;
  r = records::FlowRecord{};
  r.timestamp_us = now;
  r.flow = identity_of(f);
  const AppProto app = static_cast<AppProto>(f->app);
  r.app = app == AppProto::smtp ? records::AppProto::smtp : app == AppProto::smtps ? records::AppProto::smtps : records::AppProto::none;
  for (int d = 0; d < 2; ++d) {
    r.packets[d] = f->packets[d];
    r.bytes[d] = f->bytes[d];
  }
  r.start_us = f->first_seen_us;
  r.end_us = f->last_seen_us;
  r.reason = reason;
  // An SMTP flow that showed no payload had nothing to inspect, and was not refused.
  r.inspected = f->smtp != nullptr || (app == AppProto::smtp && !f->session_refused);
  r.detected = f->detect == static_cast<uint8_t>(DetectState::detected);
  if (const SmtpFlow* s = f->smtp) {
    r.starttls = s->encrypted;
    r.messages = s->transactions;
    for (int d = 0; d < 2; ++d) {
      const TcpStreamStats& st = s->stream[d].stats();
      r.tcp[d] = {st.delivered_bytes, st.retransmitted_bytes, st.out_of_order_segments, st.overlap_conflicts,
                  st.gaps,           st.gap_bytes,           st.memcap_flushes};
    }
    std::memcpy(r.smtp_anomalies, s->smtp_anomalies, sizeof(r.smtp_anomalies));
  }
  out.put(r);
}

void Reassembler::Impl::emit_anomaly(const Flow* f, records::AnomalyLayer layer, uint8_t code, int direction) noexcept {
  records::AnomalyRecord a;
  a.timestamp_us = now;
  a.flow = identity_of(f);
  a.layer = layer;
  a.code = code;
  a.direction = static_cast<int8_t>(direction);
  out.put(a);
}

MessageContext Reassembler::Impl::message_context(const Flow* f, uint64_t transaction) const noexcept {
  MessageContext c;
  c.flow = identity_of(f);
  c.transaction = transaction;
  c.now_us = now;
  return c;
}

Reassembler::Reassembler(const ReassemblyConfig& config, records::RecordSink& out, uint32_t lcore_index)
    : impl_(std::make_unique<Impl>(config, out, lcore_index)) {}

Reassembler::~Reassembler() = default;

bool Reassembler::wants(const PacketInfo& info) const noexcept {
  if (info.l4_proto != 6) return false;
  if (info.fragment || impl_->config.detect_content) return true;  // ports are known only once the datagram is whole
  return impl_->smtp_port.test(info.dst_port) || impl_->smtp_port.test(info.src_port) ||
         impl_->tls_port.test(info.dst_port) || impl_->tls_port.test(info.src_port);
}

FrameStep Reassembler::on_packet(const PacketInfo& info, const uint8_t* frame, int64_t now_us) noexcept {
  Impl& d = *impl_;
  if (now_us > d.now) d.now = now_us;
  d.step = FrameStep{};
  if (info.fragment) {
    ++d.stats.fragments;
    const uint8_t* whole = nullptr;
    std::size_t whole_len = 0;
    const DefragResult r = d.defrag.add(info, frame, d.now, whole, whole_len);
    if (r == DefragResult::dropped) ++d.stats.fragments_dropped;
    d.stats.fragments_evicted = d.defrag.stats().evicted;
    if (r != DefragResult::complete) return d.step;
    ++d.stats.fragments_reassembled;
    PacketInfo inner;
    if (decode_ip(whole, whole_len, inner) == DecodeStatus::ok && inner.tcp && !inner.fragment && wants(inner)) {
      ++d.stats.packets;
      d.on_tcp(inner, whole);
      d.frame_flow = nullptr;
    }
    return d.step;
  }
  if (!info.tcp) return d.step;
  ++d.stats.packets;
  d.on_tcp(info, frame);
  d.frame_flow = nullptr;
  return d.step;
}

// Idle, closed and embryonic flows whose timeout passed, least recently used first in each list
// (emergency timeouts while in force); at most kExpireBudget flows per list and call, so one call
// never stalls the lcore (the rest go at the next).
void Reassembler::Impl::expire() noexcept {
  constexpr unsigned kExpireBudget = 4096;
  defrag.expire(now);
  const bool em = stats.emergency != 0;
  const int64_t idle = int64_t{em ? std::min(config.emergency_idle_timeout_s, config.idle_timeout_s) : config.idle_timeout_s} * 1000000;
  const int64_t embryonic = int64_t{em ? std::min(config.emergency_embryonic_timeout_s, config.embryonic_timeout_s)
                                       : config.embryonic_timeout_s} * 1000000;
  const int64_t closed = int64_t{config.closed_timeout_s} * 1000000;
  auto sweep = [&](Flow* (FlowTable::*oldest)() const noexcept, int64_t open_timeout) {
    const int64_t shortest = std::min(open_timeout, closed);
    unsigned budget = kExpireBudget;
    for (Flow* f = (flows.*oldest)(); f && budget; --budget) {
      Flow* next = f->lru_next;
      if (f->last_seen_us + shortest > now) break;  // every flow after it is more recent
      const bool done = f->rst || (f->fin[0] && f->fin[1]);
      if (f->last_seen_us + (done ? closed : open_timeout) <= now)
        end_flow(f, f->rst ? records::FlowEndReason::rst : done ? records::FlowEndReason::fin : records::FlowEndReason::timeout);
      f = next;
    }
  };
  // ACKed holes waited for past their time (each flow's own packets check it too). Ending one may
  // start another (the other way, from now) and change the list: start over after each.
  for (SmtpFlow* s = waiting; s;) {
    if (now - s->wait_since_us <= int64_t{config.ack_hole_wait_us}) {
      s = s->wait_next;
      continue;
    }
    end_wait(s, false);
    close_if_done(s->flow);
    s = waiting;
  }
  sweep(&FlowTable::oldest_embryonic, embryonic);
  sweep(&FlowTable::oldest_active, idle);
  if (em) {
    const uint64_t pct = config.emergency_recovery_percent;
    if ((flows.size() - flows.embryonic()) * 100 < pct * flows.capacity() &&
        stats.sessions_active * 100 < pct * config.max_sessions)
      stats.emergency = 0;
  }
}

void Reassembler::expire(int64_t now_us) noexcept {
  if (now_us > impl_->now) impl_->now = now_us;
  impl_->expire();
}

void Reassembler::flush_all(int64_t now_us, records::FlowEndReason open_reason, const std::atomic<bool>* abort) noexcept {
  Impl& d = *impl_;
  if (now_us > d.now) d.now = now_us;
  d.shutting_down = open_reason == records::FlowEndReason::shutdown;
  while (Flow* f = d.flows.any()) {
    if (abort && abort->load(std::memory_order_relaxed)) {
      // Out of time: what is left is counted, not reported. (A flow that was already reported
      // only waits for its closed timeout: nothing of it is lost.)
      for (const Flow* left : {d.flows.oldest_embryonic(), d.flows.oldest_active()})
        for (; left; left = left->lru_next) {
          if (left->reported) continue;
          ++d.stats.flows_unflushed;
          if (const SmtpFlow* s = left->smtp) d.stats.messages_unflushed += s->pending_count + (s->message_open ? 1 : 0);
        }
      break;
    }
    d.end_flow(f, f->rst                       ? records::FlowEndReason::rst
                  : (f->fin[0] && f->fin[1]) ? records::FlowEndReason::fin
                                             : open_reason);
  }
  d.shutting_down = false;
}

const ReassemblyStats& Reassembler::stats() const noexcept { return impl_->stats; }

void Reassembler::emit_waiting(bool all) noexcept {
  if (impl_->waiting_n) impl_->emit_waiting(all);
}

std::size_t Reassembler::waiting() const noexcept { return impl_->waiting_n; }

}  // namespace sluice::reassembly
