// The reassembly stage of one RX lcore: flow table, TCP reassembly per direction, SMTP session
// parsing and message framing, producing `smtp`, `flow` and `anomaly` events.
//
// Input: decoded frames (PacketInfo + the frame's bytes up to info.ip_end) with their timestamp.
// Output: typed event records (records/event_records.h: message, flow, anomaly) to a RecordSink
// (the data plane moves them to the control plane over a ring; the control side renders them). Owned by exactly one lcore: no locks; all memory (flows, sessions, out-of-order blocks)
// is allocated at construction and bounded by ReassemblyConfig.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "reassembly/frame_step.h"
#include "reassembly/message_observer.h"
#include "reassembly/packet_decode.h"
#include "reassembly/tcp_stream.h"

namespace sluice::reassembly {

struct ReassemblyConfig {
  std::vector<uint16_t> smtp_ports;          // parsed as SMTP
  std::vector<uint16_t> implicit_tls_ports;  // SMTP over TLS from the first byte: logged only
  uint32_t max_flows;          // flow table entries per lcore
  uint32_t max_sessions;       // SMTP sessions inspected at once per lcore
  uint32_t memcap_mb;          // out-of-order buffer per lcore
  TcpStreamLimits stream;      // per direction
  uint32_t idle_timeout_s;     // an open flow with no packet for this long is closed
  uint32_t closed_timeout_s;   // a flow that saw FIN both ways or RST is forgotten after this
  uint32_t max_fragment_sets;  // IP datagrams being reassembled at once per lcore
  uint32_t max_fragment_sets_per_source = UINT32_MAX;  // of them, from one source address
  uint32_t fragment_timeout_s;
  // Under pressure (flows_under_pressure in reassembler.cpp): flows that showed no payload yet
  // hold no session, have their own timeout and are evicted first; when the table or the session
  // pool is full of active flows, emergency timeouts apply until usage falls below the recovery
  // share.
  uint32_t embryonic_timeout_s;
  uint32_t emergency_idle_timeout_s;
  uint32_t emergency_embryonic_timeout_s;
  uint32_t emergency_recovery_percent;  // leave emergency below this share of flows and sessions
  // A new SMTP connection that cannot be tracked or inspected (table or session pool full even in
  // emergency): false: its frames are forwarded uninspected; true: its SYN is dropped (inline), so
  // the client retries later. Counted either way.
  bool drop_untracked_syn;
  // The other reading of an ambiguous DATA stream (SMTP smuggling, smtp_reading.h) is parsed too,
  // as a message of its own for the observers (MessageContext::reading), one at a time per lcore
  // (another one meanwhile: readings_skipped), cut at this many content octets (ended incomplete:
  // readings_truncated). 0: no other reading. Needs observers.
  uint64_t reading_max_bytes = 32u << 20;
  // Inline enforcement: client content sent before DATA's reply is read as the message at once
  // (SmtpSession::set_eager_data), so the frame that carries its end is the one held.
  bool eager_data = false;
  // SMTP by content (smtp_detect.h, `smtp.detect: content`): TCP flows on other ports (not the
  // implicit-TLS ones) are judged by their first bytes, without a session slot until taken for
  // SMTP; then their session starts from the bytes seen. false: only `smtp_ports` are parsed.
  bool detect_content = false;
  // The two directions reach this lcore in step (inline: both pass through the appliance, so an
  // ACK can never precede the data it acknowledges): an ACK past a hole declares it at once. False
  // (tap, replay): a TAP or SPAN with a port per direction, or two RX queues, may deliver the ACK
  // first, so the hole is waited for (below) before it is declared.
  bool directions_in_step = true;
  // Out of step: how long an ACKed hole is waited for, counted since its stream last moved: packet
  // time, payload bytes and segments of the flow (both directions). The acknowledging direction's
  // segments are held meanwhile (in order, within the same bytes and segments), so the session sees
  // them after the data they answer. Past any limit (or at FIN, RST, flush, expiry) the hole is
  // declared a gap as in step. Any of them 0: declared at once.
  uint32_t ack_hole_wait_us = 1000000;
  uint32_t ack_hole_wait_bytes = 256 * 1024;
  uint32_t ack_hole_wait_segments = 128;
  // Receives each message's content (the attachment pipeline); nullptr: messages are only hashed.
  // Must outlive the Reassembler.
  MessageObserverFactory* observers = nullptr;
  // smtp events that may wait at once for their message's hash from a worker (an observer that
  // hashes(): one per ticket it can hand out; beyond, an event is written without the hash and
  // counted `smtp_digest_unwaited`). 0 with observers that never hash.
  uint32_t max_digest_waits = 0;
};

struct ReassemblyStats {
  uint64_t packets;            // TCP packets on SMTP / implicit-TLS ports (every TCP packet with detect_content)
  uint64_t flows_created;
  uint64_t flows_table_full;   // packets of new flows not tracked: the table was full
  uint64_t sessions_pool_full; // SMTP flows not inspected: no free session
  uint64_t messages;           // smtp events emitted
  uint64_t messages_incomplete;
  uint64_t overlap_conflicts;
  uint64_t gaps;
  uint64_t memcap_flushes;
  uint64_t fragments;          // IP fragments seen on SMTP traffic
  uint64_t fragments_reassembled;
  uint64_t fragments_dropped;  // fragment sets dropped: table full, timeout, overlap conflict
  uint64_t flows_evicted;      // embryonic flows ended to make room for a new flow
  uint64_t syns_dropped;       // SYNs of connections that could not be tracked (drop_untracked_syn)
  uint64_t emergency_entered;  // times emergency timeouts came into force
  uint64_t emergency;          // 1 while they are in force
  uint64_t sessions_active;    // session slots in use now
  uint64_t rst_ignored;        // resets the receiver would not accept (RFC 5961 3.2): ignored
  uint64_t out_of_window_segments;  // data beyond the receiver's window: not buffered
  uint64_t fragments_evicted;  // incomplete fragment sets dropped to make room for new ones
  // flush_all() stopped by its abort flag (the stop deadline): flows left unreported, and the
  // messages they had open or awaiting their final reply.
  uint64_t flows_unflushed;
  uint64_t messages_unflushed;
  uint64_t readings;            // other readings of ambiguous DATA streams parsed (their messages)
  uint64_t readings_skipped;    // not parsed: the lcore's reading observer was busy with another
  uint64_t readings_truncated;  // cut at reading_max_bytes
  // SMTP by content (detect_content): flows off the SMTP ports whose first bytes were judged, and
  // how: taken for SMTP, not SMTP, undecided (the probe's bounds, or the flow ended first: taken as
  // not SMTP), or evicted before a verdict (its flow entry or probe slot taken for a newer flow).
  uint64_t detect_probed;
  uint64_t detect_smtp;
  uint64_t detect_not_smtp;
  uint64_t detect_undecided;
  uint64_t detect_evicted;
  // Holes an ACK passed (the receiver had bytes this lcore had not seen yet): filled by data that
  // came later (directions out of step), or declared a gap (at once in step, else at a wait limit,
  // FIN, RST, flush or expiry).
  uint64_t acked_holes_filled;
  uint64_t acked_holes_declared;
  // smtp events that waited for their message's hash from a worker (emit_waiting), and those
  // written without it because no slot was free (max_digest_waits: not expected).
  uint64_t smtp_digest_waits;
  uint64_t smtp_digest_unwaited;
};

class Reassembler {
 public:
  // Start-up only: allocates everything. `lcore_index` goes into the high bits of flow ids.
  Reassembler(const ReassemblyConfig& config, records::RecordSink& out, uint32_t lcore_index);
  ~Reassembler();
  Reassembler(const Reassembler&) = delete;
  Reassembler& operator=(const Reassembler&) = delete;

  // Whether a decoded frame belongs to this stage (TCP, or an IP fragment, to or from a
  // configured port; any TCP with detect_content). Cheap: a bitmap lookup.
  bool wants(const PacketInfo& info) const noexcept;
  // `frame` holds at least info.ip_end bytes. `now_us`: packet time (replay) or wall clock.
  // Returns the frame's next step: forward, or hold for the message this frame completed when its
  // observer asks for it (MessageObserver::hold_end). When one frame ends several messages
  // (pipelined BDAT), the last one that asked names the hold.
  FrameStep on_packet(const PacketInfo& info, const uint8_t* frame, int64_t now_us) noexcept;
  // Closes idle and closed flows whose timeout passed. Call about once a second.
  void expire(int64_t now_us) noexcept;
  // End of input or shutdown: every flow is closed now (its messages reported); a flow still open
  // ends with `open_reason` (end_of_input or shutdown; after a shutdown a message cut short is
  // `incomplete` with reason `shutdown`). Once `abort` reads true (checked between flows: the
  // stop deadline passed), the flows left are not reported but counted (flows_unflushed,
  // messages_unflushed) and stay in the table.
  void flush_all(int64_t now_us, records::FlowEndReason open_reason = records::FlowEndReason::end_of_input,
                 const std::atomic<bool>* abort = nullptr) noexcept;

  const ReassemblyStats& stats() const noexcept;
  // smtp events that wait for their message's hash from a worker (MessageObserver::hashes): writes
  // those whose hash is in, oldest first. Call between bursts, after the pipeline's poll. `all`
  // (after the pipeline's drain, every hash in or given up): writes every one, without the hash
  // where it is still missing.
  void emit_waiting(bool all = false) noexcept;
  std::size_t waiting() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::reassembly
