// Inline enforcement on one RX lcore (DESIGN.md section 5, issue 13): what happens on the wire to
// a message whose last segment is held, once its verdict (or its hold deadline) comes.
//
// A connection is "gated" from the moment a segment that ends a message is held until that
// message is settled:
//  - every later frame of the connection queues behind the held segment under the same hold-queue
//    key (both directions; the server's frames before the reassembler sees them, the client's
//    after), so that the peer receives them in order once released; retransmissions of data
//    already held are absorbed. Pipelined messages that end behind it are recorded and settled in
//    order (the frames before a later message's end leave when the earlier one passes).
//  - pass, monitor: the held frames go on (the server's fed to the reassembler as they leave);
//  - reject, defer: the held frames are discarded; the client receives a forged reply (550 5.7.1
//    or 451 4.7.1, configured text naming the reason and a reference id that the verdict event
//    carries) and the server an RST exactly in window, so that it never accepts the message.
//    The connection is then "blocked": sluiced answers the client itself (QUIT -> 221 and a FIN,
//    any other command -> 421 and a FIN, retransmissions -> the last reply again, a FIN -> an
//    ACK), drops everything the server still sends, and never forwards a frame of it again, until
//    the client's FIN or RST, a new SYN on the same addresses, or `aftermath_ms` of silence.
//  - past its hold deadline, a message takes the configured deadline action (counted `expired`).
//
// The forged replies towards the client go through the reassembler as if the server had sent
// them, so that the `smtp` events show the reply the client saw.
//
// Everything is allocated at construction; nothing blocks, locks or allocates per frame. Frames
// leave through EnforcerIo (mbufs are opaque here, as in the hold queue), so the state machine runs
// without the EAL in unit tests. One lcore only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/hold_queue.h"
#include "pipeline/verdict_seam.h"
#include "reassembly/frame_step.h"
#include "reassembly/packet_decode.h"

namespace sluice::dataplane {

// STARTTLS on an inspected SMTP port (DESIGN.md section 5).
enum class StartTlsPolicy : uint8_t {
  pass,   // TLS starts, inspection of the session ends (the flow event says starttls)
  mask,   // the capability is overwritten in the EHLO reply; a client sending STARTTLS anyway: block
  block,  // the client's STARTTLS gets 454 from sluiced, the server a reset, the session ends
};

// No defaults here: they are declared with the configuration keys in control/config.cpp.
struct EnforceConfig {
  bool enabled = false;              // inline mode, or replay writing an output
  int64_t max_hold_us = 0;           // a held message waits at most this long for its verdict
  records::Action on_deadline = records::Action::pass;  // then: pass, defer or reject
  // Reply lines (without CRLF) with `{reason}` and `{reference}` replaced; 5xx and 4xx.
  std::string reject_reply;
  std::string defer_reply;
  uint32_t max_flows = 0;            // connections gated or blocked at once on this lcore
  uint32_t aftermath_ms = 0;         // a blocked connection is forgotten after this long idle
  uint32_t instance = 0;             // the first part of reference ids (sluiced's start, seconds)
  uint32_t watchdog_ms = 0;          // no worker result for this long while messages wait: fail open (0: off)
  StartTlsPolicy starttls = StartTlsPolicy::pass;
  std::vector<uint16_t> smtp_ports;  // where STARTTLS is policed (reassembly.smtp_ports)
};

// The added latency of a held message: from its segment's arrival to its release (pass) or the
// reply replacing it (reject, defer), on the monotonic clock, in log-linear buckets (4 per power of
// two: within 19%). Bucket b holds [latency_bucket_low(b), latency_bucket_low(b + 1)) microseconds;
// the last holds everything from 2^24 us (16.8 s) on.
inline constexpr unsigned kLatencyBuckets = 96;
constexpr unsigned latency_bucket(uint64_t us) noexcept {
  if (us < 4) return static_cast<unsigned>(us);
  unsigned e = 63 - static_cast<unsigned>(__builtin_clzll(us));
  const unsigned b = (e - 1) * 4 + static_cast<unsigned>((us >> (e - 2)) & 3);
  return b < kLatencyBuckets ? b : kLatencyBuckets - 1;
}
constexpr uint64_t latency_bucket_low(unsigned b) noexcept {
  return b < 4 ? b : uint64_t{4 + (b & 3)} << (b / 4 - 1);
}

struct EnforceCounters {
  uint64_t messages_held = 0;     // message ends held
  uint64_t passed = 0;            // released on pass (or monitor)
  uint64_t rejected = 0;          // 550 injected, server reset
  uint64_t deferred = 0;          // 451 injected, server reset
  uint64_t expired = 0;           // messages that took the deadline action
  uint64_t not_held = 0;          // verdicts whose message had no held segment (cap, flush, expired)
  uint64_t queued_behind = 0;     // later frames that waited behind a held segment
  uint64_t behind_dropped = 0;    // later frames dropped because the message's frame cap was reached
  uint64_t absorbed = 0;          // retransmissions of held data, and frames of blocked connections
  uint64_t aftermath_replies = 0; // 221/421/repeated replies sent on blocked connections
  uint64_t injected = 0;          // forged frames sent
  uint64_t inject_failed = 0;     // a forged frame that could not be built or sent
  uint64_t table_full = 0;        // a connection that could not be gated (max_flows): its end went on
  uint64_t watchdog_trips = 0;     // the watchdog opened the gates (workers stuck)
  uint64_t watchdog_released = 0;  // held messages it let through
  uint64_t watchdog_bypassed = 0;  // message ends not held while failing open
  uint64_t fail_open = 0;          // now: 1 while failing open
  uint64_t starttls_masked = 0;   // EHLO replies whose STARTTLS capability was overwritten
  uint64_t starttls_blocked = 0;  // STARTTLS commands answered 454 (session ended)
  uint64_t pipelined_untracked = 0;  // messages ending in one held segment beyond 16: the segment is
                                     // deferred (451), whatever the others' verdicts
  uint64_t verdicts_unwithheld = 0;  // verdict events written before their head settled (no record free):
                                     // their `enforcement` is what their own action would do
  uint64_t latency_us[kLatencyBuckets] = {};  // messages settled, by added latency
  uint64_t latency_sum_us = 0;                 // their added latency, summed
  uint64_t gated = 0;             // now: connections holding a message
  uint64_t blocked = 0;           // now: connections answered by sluiced after a reject or defer
};

// Where the enforcer's frames go. Implemented by the RX loop (mbufs, TX bursts, the reassembler).
class EnforcerIo {
 public:
  virtual ~EnforcerIo() = default;
  // The frame's bytes in place, for rewriting (nullptr when they are not contiguous or shared).
  virtual uint8_t* writable(rte_mbuf* m, uint32_t& len) noexcept = 0;
  // The frame's bytes, contiguous (copied to scratch when chained; valid until the next call),
  // its length and the configuration's index of the port it came in on.
  virtual const uint8_t* bytes(rte_mbuf* m, uint32_t& len, uint16_t& in_port) noexcept = 0;
  // Frames that go on, in order (each to the peer of the port it came in on).
  virtual void forward(rte_mbuf** m, std::size_t n) noexcept = 0;
  // Frames that are discarded.
  virtual void discard(rte_mbuf** m, std::size_t n) noexcept = 0;
  // The port (an index) frames that came in on `port` leave by.
  virtual uint16_t peer(uint16_t port) noexcept = 0;
  // A forged frame, sent out of port `port` (an index). False: it could not be sent.
  virtual bool inject(uint16_t port, const uint8_t* frame, std::size_t len) noexcept = 0;
  // A frame the reassembler should see now as if it had just arrived (the server's frames held
  // before it, the forged replies towards the client).
  // Returns the frame's step (hold: it ended a message).
  virtual reassembly::FrameStep observe(const uint8_t* frame, std::size_t len, uint16_t in_port) noexcept = 0;
};

class Enforcer final : public pipeline::VerdictListener {
 public:
  // Throws std::invalid_argument on a zero max_flows (start-up only).
  // `events`: where the STARTTLS anomalies go (null: not reported).
  Enforcer(const EnforceConfig& config, HoldQueue& hold, EnforcerIo& io, reassembly::LinkType link,
           records::RecordSink* events = nullptr);
  ~Enforcer() override;
  Enforcer(const Enforcer&) = delete;
  Enforcer& operator=(const Enforcer&) = delete;

  // Connections gated or blocked now: when 0, frames need not be shown to the enforcer.
  bool active() const noexcept { return used_ != 0; }
  // Connections holding a message now.
  bool holding() const noexcept { return counters_.gated != 0; }

  // Before the reassembler, for every decoded TCP frame while active(): true when the enforcer
  // took the frame (a server frame of a gated or blocked connection): the caller forgets it.
  bool before_inspect(const reassembly::PacketInfo& info, rte_mbuf* m, int64_t now_us) noexcept;

  // The STARTTLS policy, before everything else, for a TCP frame with payload when the policy is
  // not `pass`: a server's EHLO reply is masked in place (and still transmitted); a client's
  // STARTTLS is blocked (true: the enforcer took the frame).
  bool police_starttls(const reassembly::PacketInfo& info, rte_mbuf* m, int64_t now_us) noexcept;
  StartTlsPolicy starttls_policy() const noexcept { return config_.starttls; }

  // Right before the reassembler sees a frame (a message decided as it ends is then known to be
  // about to be held).
  void begin_frame() noexcept { in_frame_ = true; }

  // After the reassembler: a frame whose step is hold, or any TCP frame while active(). Returns
  // what the caller does with the mbuf now (transmit it, nothing: held, or free it).
  Disposition after_inspect(const reassembly::FrameStep& step, const reassembly::PacketInfo& info, rte_mbuf* m,
                            int64_t now_us) noexcept;

  // The verdict seam's listener: fills the verdict's `enforcement` and `reference`. The verdict of
  // a held message is taken (true) and written to `events` when its head frame is settled: a
  // message that ended in the same segment as a rejected or deferred one shares that fate (its
  // `enforcement` and `reference` are the block's). At most kWithheld records wait at once.
  static constexpr uint32_t kWithheld = 256;
  bool decided(const records::MessageContext& message, records::VerdictRecord& verdict) noexcept override;

  // Settles what became ready (decisions with their held frames). Call after each burst and after
  // the hand-off's poll; cheap when nothing is ready.
  void run(int64_t now_us) noexcept {
    in_frame_ = false;
    if (n_ready_ || n_early_) settle_ready(now_us);
  }
  // Deadlines: held messages past max_hold_us, blocked connections idle past aftermath_ms.
  void expire(int64_t now_us) noexcept;
  int64_t next_deadline() const noexcept { return next_deadline_; }
  // The watchdog (the RX loop's): workers are stuck, every held message passes now and message ends
  // go on unheld until resume() (results flow again). Counted, and alerted by the control plane.
  void fail_open(int64_t now_us) noexcept;
  void resume() noexcept { counters_.fail_open = 0; }
  bool failing_open() const noexcept { return counters_.fail_open != 0; }
  // Every held message takes the deadline action now (a replay that waited too long).
  void expire_holding(int64_t now_us) noexcept;
  // Shutdown: every held message takes the deadline action; blocked connections are forgotten.
  void release_all(int64_t now_us) noexcept;

  const EnforceCounters& counters() const noexcept { return counters_; }

  struct Entry;

 private:
  struct Tuple;
  Entry* find(const Tuple& t) noexcept;
  Entry* insert(const Tuple& t) noexcept;
  void erase(Entry* e) noexcept;
  void settle(Entry& e, int64_t now_us) noexcept;
  void settle_ready(int64_t now_us) noexcept;
  // Rejects or defers the head's message `transaction` (`reason` names why in the reply).
  void block(Entry& e, records::Action action, uint64_t transaction, const char* reason, int64_t now_us) noexcept;
  int64_t backstop(int64_t now_us) const noexcept;
  void aftermath(Entry& e, const reassembly::PacketInfo& info, const uint8_t* frame, std::size_t len, uint16_t port,
                 int64_t now_us) noexcept;
  bool send(Entry& e, const uint8_t* tmpl, std::size_t tmpl_len, uint16_t port, bool to_client, uint32_t seq,
            uint32_t ack, uint8_t flags, std::string_view payload) noexcept;
  void reference(uint64_t flow_id, uint64_t transaction, char* out, std::size_t cap) const noexcept;
  std::size_t render(std::string_view tmpl, const char* reason, const char* ref, char* out) const noexcept;
  void mark_ready(Entry& e) noexcept;
  void track_head(Entry& e, const reassembly::FrameStep& step) noexcept;
  // Writes the head's withheld verdicts: `how` (none: as decided) and `ref` (null: their own).
  void write_withheld(Entry& e, records::Enforcement how, const char* ref) noexcept;
  static records::Enforcement enforcement_of(records::Action a) noexcept {
    return a == records::Action::reject  ? records::Enforcement::rejected
           : a == records::Action::defer ? records::Enforcement::deferred
                                         : records::Enforcement::released;
  }
  void record_latency(const Entry& e) noexcept;
  void report(const reassembly::PacketInfo& info, bool from_client, uint8_t smtp_anomaly, int64_t now_us) noexcept;

  EnforceConfig config_;
  HoldQueue& hold_;
  EnforcerIo& io_;
  reassembly::LinkType link_;
  records::RecordSink* events_;
  std::unique_ptr<uint64_t[]> smtp_port_bits_;  // 65536 bits
  EnforceCounters counters_;
  std::unique_ptr<Entry[]> entries_;
  std::unique_ptr<uint32_t[]> table_;  // open addressing over entries_, linear probing
  uint32_t table_mask_ = 0;
  uint32_t free_ = 0;                  // free entries, linked through Entry::next_free
  uint32_t used_ = 0;
  std::unique_ptr<uint32_t[]> ready_;  // entries with something to settle
  std::unique_ptr<records::VerdictRecord[]> withheld_;  // verdicts waiting for their head (kWithheld)
  std::unique_ptr<uint32_t[]> withheld_free_;
  uint32_t n_withheld_free_ = 0;
  uint32_t n_ready_ = 0;
  static constexpr unsigned kMaxEarly = 16;
  uint32_t early_[kMaxEarly];          // entries made by a decision inside the current frame
  unsigned n_early_ = 0;
  bool in_frame_ = false;
  int64_t next_deadline_ = INT64_MAX;
  uint16_t ip_id_ = 0;
};

}  // namespace sluice::dataplane
