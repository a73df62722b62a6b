// RX lcore main loop: receive bursts, send every frame to its owner lcore, then give each of its
// own frames its next step (reassembly/frame_step.h).
//
// Ownership of mbufs (STYLE.md). A frame received here has exactly one next step:
//  - dispatched: enqueued on the owning lcore's inbound ring; ownership moves only for the frames
//    the enqueue accepted, the rest are freed here and counted as dropped;
//  - forwarded: given to rte_eth_tx_burst on this lcore's TX queue of the peer port; what the
//    queue does not take after `tx_retries` attempts is freed here and counted as dropped;
//    tap mode, or replay without an output, consumes (frees) it instead;
//  - held: moved into the lcore's HoldQueue (the segment that ends a message, DESIGN.md section 5);
//    it comes back out exactly once (verdict, deadline, shutdown) and is forwarded or freed then;
//  - dropped: freed and counted (`hold_dropped`).
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_pause.h>

#include <cstring>
#include <ctime>
#include <memory>

#include "dataplane/dataplane.h"
#include "dataplane/lcore_context.h"

namespace sluice::dataplane {
namespace {

// Frames out of port `out` (an index) on this lcore's TX queue.
void transmit_on(RxLcoreContext& ctx, uint16_t out, rte_mbuf** pkts, uint16_t n) {
  const PortTable& t = *ctx.table;
  if (out == kNoPeer) {
    rte_pktmbuf_free_bulk(pkts, n);
    return;
  }
  uint64_t bytes = 0;
  for (uint16_t i = 0; i < n; ++i) bytes += rte_pktmbuf_pkt_len(pkts[i]);
  uint16_t sent = 0;
  for (unsigned attempt = 0; sent < n && attempt <= t.tx_retries; ++attempt)
    sent += rte_eth_tx_burst(t.port_id[out], static_cast<uint16_t>(ctx.index), pkts + sent, n - sent);
  PortCounters& c = ctx.counters[out];
  if (sent < n) {
    for (uint16_t i = sent; i < n; ++i) bytes -= rte_pktmbuf_pkt_len(pkts[i]);
    rte_pktmbuf_free_bulk(pkts + sent, n - sent);
    c.dropped += n - sent;
  }
  c.tx_packets += sent;
  c.tx_bytes += bytes;
}

// Frames that came in on `in_port` go out of its peer.
void transmit(RxLcoreContext& ctx, uint16_t in_port, rte_mbuf** pkts, uint16_t n) {
  transmit_on(ctx, ctx.table->peer[in_port], pkts, n);
}

int64_t wall_clock_us() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);  // vDSO: no system call
  return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

// Hands one frame to the reassembly stage when it is TCP on an SMTP port (or a fragment). The
// frame is read in place; a frame chained over several mbufs is copied to the lcore's scratch.
// Returns the frame's next step: forward unless the reassembly stage says otherwise. `info` is the
// decoded frame (`tcp` false when it was not inspected as a TCP segment); `taken` is set when the
// enforcer took the frame before the reassembler (a server frame of a gated connection).
reassembly::FrameStep inspect(RxLcoreContext& ctx, uint16_t in_port, rte_mbuf* m, reassembly::PacketInfo& info,
                              bool& taken) noexcept {
  const PortTable& t = *ctx.table;
  const uint32_t len = rte_pktmbuf_pkt_len(m);
  const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  info.tcp = false;
  if (m->nb_segs > 1) {
    if (len > kScratchBytes) return {};  // larger than any IP datagram: not ours to parse
    frame = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, ctx.scratch));
  }
  if (reassembly::decode_packet(frame, len, info, t.link_type[in_port]) != reassembly::DecodeStatus::ok) {
    info.tcp = false;
    return {};
  }
  if (!ctx.reasm->wants(info)) {
    info.tcp = false;
    return {};
  }
  // net_pcap stores the capture time in microseconds since 1970; live ports use the time of the
  // burst (set by process()).
  if (t.timestamp_offset >= 0 && (m->ol_flags & t.timestamp_flag))
    ctx.now_us = static_cast<int64_t>(*RTE_MBUF_DYNFIELD(m, t.timestamp_offset, uint64_t*));
  if (ctx.enforcer) {
    if (info.tcp && !info.fragment && info.payload_len &&
        ctx.enforcer->starttls_policy() != StartTlsPolicy::pass && ctx.enforcer->police_starttls(info, m, ctx.now_us)) {
      taken = true;
      return {};
    }
    if (info.tcp && !info.fragment && ctx.enforcer->active() && ctx.enforcer->before_inspect(info, m, ctx.now_us)) {
      taken = true;
      return {};
    }
    ctx.enforcer->begin_frame();
  }
  return ctx.reasm->on_packet(info, frame, ctx.now_us);
}

// Frames of one input port, all owned by this lcore: each is inspected and given its next step;
// the frames to forward stay in order at the front of `pkts` and leave in one TX burst.
void process(RxLcoreContext& ctx, uint16_t in_port, rte_mbuf** pkts, uint16_t n) {
  uint16_t out = n;
  if (ctx.reasm) {
    if (!ctx.table->replay) ctx.now_us = wall_clock_us();  // once per burst, not per frame
    out = 0;
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = pkts[i];
      reassembly::PacketInfo info;
      bool taken = false;
      const reassembly::FrameStep step = inspect(ctx, in_port, m, info, taken);
      if (taken) continue;
      Disposition d;
      if (step.step == reassembly::NextStep::forward) [[likely]] {
        pkts[out++] = m;
        continue;
      }
      if (ctx.enforcer && step.step == reassembly::NextStep::hold) {
        // A message ended: held until its verdict (one ended by a fragmented segment goes on).
        d = info.tcp && !info.fragment ? ctx.enforcer->after_inspect(step, info, m, ctx.now_us) : Disposition::transmit;
      } else {
        d = ctx.hold->settle(step, m, ctx.now_us + ctx.max_hold_us);
      }
      switch (d) {
        case Disposition::transmit:
          pkts[out++] = m;
          break;
        case Disposition::held:
          if (ctx.enforcer && ctx.table->replay && ctx.table->n_rx_lcores == 1 && ctx.enforcer->holding() &&
              i + 1 < n) {
            // Replay: what follows waits until this message is settled (see the main loop).
            ctx.stash_n = static_cast<uint16_t>(n - i - 1);
            ctx.stash_port = in_port;
            std::memcpy(ctx.stash, pkts + i + 1, ctx.stash_n * sizeof(rte_mbuf*));
            n = static_cast<uint16_t>(i + 1);
          }
          break;
        case Disposition::free:
          rte_pktmbuf_free(m);
          ++ctx.hold_dropped;
          break;
      }
    }
  }
  transmit(ctx, in_port, pkts, out);
  if (ctx.enforcer) ctx.enforcer->run(ctx.now_us);
}

// The frames a replay kept back behind a held message (process() stashed them): processed now,
// which may stash the rest again behind the next one.
void process_stash(RxLcoreContext& ctx) {
  const uint16_t n = ctx.stash_n;
  ctx.stash_n = 0;
  rte_mbuf* rest[kMaxBurst];
  std::memcpy(rest, ctx.stash, n * sizeof(rte_mbuf*));
  process(ctx, ctx.stash_port, rest, n);
}

// Index into the configuration's ports of a DPDK port id (mbuf->port).
uint16_t port_index(const PortTable& t, uint16_t port_id) noexcept {
  uint16_t idx = 0;
  while (idx < t.n_ports && t.port_id[idx] != port_id) ++idx;
  return idx;
}

// Frames that came back out of the hold queue: forwarded (grouped by the port they came in on,
// which mbuf->port still names) or freed, as `r.action` says.
void settle_released(RxLcoreContext& ctx, rte_mbuf** pkts, const Released& r) noexcept {
  if (r.action == HoldAction::drop) {
    rte_pktmbuf_free_bulk(pkts, static_cast<unsigned>(r.n));
    ctx.hold_dropped += r.n;
    return;
  }
  std::size_t start = 0;
  while (start < r.n) {
    const uint16_t port_id = pkts[start]->port;
    std::size_t end = start + 1;
    while (end < r.n && pkts[end]->port == port_id) ++end;
    transmit(ctx, port_index(*ctx.table, port_id), pkts + start, static_cast<uint16_t>(end - start));
    start = end;
  }
}

// Held frames whose deadline passed leave with `hold.on_deadline`.
void expire_held(RxLcoreContext& ctx) noexcept {
  const int64_t now = ctx.table->replay ? ctx.now_us : wall_clock_us();
  if (ctx.hold->next_deadline() > now) return;
  rte_mbuf* out[kMaxBurst];
  for (Released r; (r = ctx.hold->expire(now, out, kMaxBurst)).n;) settle_released(ctx, out, r);
}

// Fail-open watchdog (enforce.watchdog_ms): while files wait for worker results and none has
// come for the deadline, the workers are taken as stuck: the enforcer lets every held message
// through and holds nothing more until results flow again.
void watchdog(RxLcoreContext& ctx, uint64_t deadline_tsc) noexcept {
  if (!ctx.enforcer->holding() && !ctx.enforcer->failing_open()) return;
  const uint64_t now = rte_rdtsc();
  const uint64_t results = ctx.handoff->results_received();
  if (results != ctx.wd_results || ctx.handoff->files_in_work() == 0) {
    ctx.wd_results = results;
    ctx.wd_progress_tsc = now;
    if (ctx.enforcer->failing_open()) ctx.enforcer->resume();
    return;
  }
  if (!ctx.wd_progress_tsc) ctx.wd_progress_tsc = now;
  if (!ctx.enforcer->failing_open() && now - ctx.wd_progress_tsc > deadline_tsc)
    ctx.enforcer->fail_open(ctx.table->replay ? ctx.now_us : wall_clock_us());
}

// Requests from the control thread (DPDK ip_pipeline's model): a few per call.
void poll_control(RxLcoreContext& ctx) noexcept {
  ctx.control->poll(
      [&ctx](const Request& rq, Response& rs) noexcept {
        answer_control(rq, rs, *ctx.snapshot);
        // A new snapshot's actions apply to the messages decided from now on; the previous
        // snapshot is freed on the control thread only after this response reaches it.
        if (rq.type == RequestType::config_snapshot && rs.status == ResponseStatus::ok && ctx.handoff)
          ctx.handoff->set_policy(&(*ctx.snapshot)->policy);
      },
      8);
}

// End of input or shutdown: every flow is closed and reported, those still open with `reason`.
// Events wait for room in the ring (the control thread drains it until this lcore has exited)
// instead of being dropped, until the control thread sets abort_flush (the stop deadline): then
// the flows left are counted, not reported (flows_unflushed), a record that finds the ring full is
// lost and counted (events_dropped), and unfinished attachments are written as they are.
void flush(RxLcoreContext& ctx, records::FlowEndReason reason) noexcept {
  if (!ctx.reasm) return;
  // Frames a replay kept back behind a held message are processed first (each call takes at
  // least one of them).
  while (ctx.stash_n) process_stash(ctx);
  ctx.events->set_flushing(true, ctx.abort_flush);
  ctx.reasm->flush_all(ctx.table->replay ? ctx.now_us : wall_clock_us(), reason, ctx.abort_flush);
  // Every message's attachments are with the workers now: wait for their results and look-up
  // answers, answering the control channel meanwhile (a replay shorter than sluiced's start-up
  // ends here before the first snapshot arrives).
  if (ctx.handoff) {
    while (ctx.handoff->pending() && !ctx.abort_flush->load(std::memory_order_relaxed)) {
      ctx.handoff->poll();
      ctx.reasm->emit_waiting();
      poll_control(ctx);
      rte_pause();
    }
    ctx.handoff->drain(*ctx.abort_flush);  // what is left when aborted
  }
  // smtp events waiting for a message hash: every hash is in now, or given up.
  ctx.reasm->emit_waiting(/*all=*/true);
  // Messages decided meanwhile are settled; those still held take the deadline action.
  if (ctx.enforcer) ctx.enforcer->release_all(ctx.table->replay ? ctx.now_us : wall_clock_us());
  ctx.events->set_flushing(ctx.table->replay, ctx.table->replay ? ctx.abort_flush : nullptr);
  // Nothing decides a held frame any more: it leaves as at its deadline.
  rte_mbuf* out[kMaxBurst];
  for (Released r; (r = ctx.hold->release_all(ctx.hold->limits().on_deadline, out, kMaxBurst)).n;)
    settle_released(ctx, out, r);
}

unsigned owner_of(const RxLcoreContext& ctx, const rte_mbuf* m) {
  reassembly::PacketInfo info;
  const auto* data = rte_pktmbuf_mtod(m, const uint8_t*);
  if (reassembly::decode_packet(data, rte_pktmbuf_data_len(m), info) != reassembly::DecodeStatus::ok)
    return ctx.index;  // no flow: whoever received it forwards it
  return reassembly::symmetric_flow_hash(info, ctx.table->flow_hash) % ctx.table->n_rx_lcores;
}

// Keeps this lcore's frames in place (compacted to the front) and enqueues the others to their
// owners. Returns how many stay.
uint16_t dispatch(RxLcoreContext& ctx, uint16_t in_port, rte_mbuf** pkts, uint16_t n) {
  const PortTable& t = *ctx.table;
  rte_mbuf* out[kMaxRxLcores][kMaxBurst];
  uint16_t n_out[kMaxRxLcores] = {};
  uint16_t kept = 0;
  for (uint16_t i = 0; i < n; ++i) {
    const unsigned owner = owner_of(ctx, pkts[i]);
    if (owner == ctx.index)
      pkts[kept++] = pkts[i];
    else
      out[owner][n_out[owner]++] = pkts[i];
  }
  PortCounters& c = ctx.counters[in_port];
  for (unsigned o = 0; o < t.n_rx_lcores; ++o) {
    if (n_out[o] == 0) continue;
    const unsigned done = rte_ring_enqueue_burst(t.inbound[o], reinterpret_cast<void**>(out[o]), n_out[o], nullptr);
    c.dispatched_out += done;
    if (done < n_out[o]) {
      rte_pktmbuf_free_bulk(out[o] + done, n_out[o] - done);
      c.dropped += n_out[o] - done;
    }
  }
  return kept;
}


// Groups a run of frames by input port (mbuf->port holds the DPDK port id) and processes each run.
void process_inbound(RxLcoreContext& ctx, rte_mbuf** pkts, unsigned n) {
  const PortTable& t = *ctx.table;
  unsigned start = 0;
  while (start < n) {
    const uint16_t port_id = pkts[start]->port;
    unsigned end = start + 1;
    while (end < n && pkts[end]->port == port_id) ++end;
    process(ctx, port_index(t, port_id), pkts + start, static_cast<uint16_t>(end - start));
    start = end;
  }
}

// The enforcer's frames (enforcer.h): held mbufs read, forwarded or freed; forged frames sent;
// frames shown to the reassembler.
class RxEnforcerIo final : public EnforcerIo {
 public:
  explicit RxEnforcerIo(RxLcoreContext& ctx) : ctx_(ctx), scratch_(new uint8_t[kScratchBytes]) {}

  uint8_t* writable(rte_mbuf* m, uint32_t& len) noexcept override {
    if (m->nb_segs != 1 || rte_mbuf_refcnt_read(m) != 1 || RTE_MBUF_HAS_EXTBUF(m)) return nullptr;
    len = rte_pktmbuf_data_len(m);
    return rte_pktmbuf_mtod(m, uint8_t*);
  }
  const uint8_t* bytes(rte_mbuf* m, uint32_t& len, uint16_t& in_port) noexcept override {
    len = rte_pktmbuf_pkt_len(m);
    in_port = port_index(*ctx_.table, m->port);
    if (m->nb_segs == 1) return rte_pktmbuf_mtod(m, const uint8_t*);
    if (len > kScratchBytes) len = kScratchBytes;
    return static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, scratch_.get()));
  }
  void forward(rte_mbuf** m, std::size_t n) noexcept override {
    settle_released(ctx_, m, Released{n, HoldAction::forward});
  }
  void discard(rte_mbuf** m, std::size_t n) noexcept override {
    rte_pktmbuf_free_bulk(m, static_cast<unsigned>(n));
  }
  uint16_t peer(uint16_t port) noexcept override {
    const uint16_t p = ctx_.table->peer[port];
    return p == kNoPeer ? port : p;
  }
  bool inject(uint16_t port, const uint8_t* frame, std::size_t len) noexcept override {
    rte_mbuf* m = rte_pktmbuf_alloc(ctx_.table->pool);
    if (!m) return false;
    char* p = rte_pktmbuf_append(m, static_cast<uint16_t>(len));
    if (!p) {
      rte_pktmbuf_free(m);
      return false;
    }
    std::memcpy(p, frame, len);
    m->port = ctx_.table->port_id[port];
    const uint64_t dropped = ctx_.counters[port].dropped;
    transmit_on(ctx_, port, &m, 1);
    return ctx_.counters[port].dropped == dropped;
  }
  reassembly::FrameStep observe(const uint8_t* frame, std::size_t len, uint16_t in_port) noexcept override {
    reassembly::PacketInfo info;
    if (reassembly::decode_packet(frame, len, info, ctx_.table->link_type[in_port]) != reassembly::DecodeStatus::ok ||
        !ctx_.reasm->wants(info))
      return {};
    return ctx_.reasm->on_packet(info, frame, ctx_.now_us);
  }

 private:
  RxLcoreContext& ctx_;
  std::unique_ptr<uint8_t[]> scratch_;
};

}  // namespace

std::unique_ptr<EnforcerIo> make_enforcer_io(RxLcoreContext& ctx) { return std::make_unique<RxEnforcerIo>(ctx); }

void answer_control(const Request& rq, Response& rs, std::shared_ptr<const LcoreSnapshot>& snapshot) noexcept {
  switch (rq.type) {
    case RequestType::ping:
      rs.status = ResponseStatus::ok;  // the payload (its token) is echoed
      break;
    case RequestType::config_snapshot:
      take_snapshot(rq, rs, snapshot);  // the old one goes back to the control thread
      break;
    default:
      break;  // unknown_type: later issues add message verdicts and cache updates
  }
}

int rx_lcore_main(void* arg) {
  auto& ctx = *static_cast<RxLcoreContext*>(arg);
  const PortTable& t = *ctx.table;
  rte_mbuf* pkts[kMaxBurst];
  const uint16_t burst = static_cast<uint16_t>(t.burst);
  bool input_left[kMaxPorts];
  for (unsigned q = 0; q < ctx.n_queues; ++q) input_left[q] = true;

  const uint64_t tsc_hz = rte_get_tsc_hz();
  uint64_t last_tick = rte_rdtsc();
  if (!t.replay) ctx.now_us = wall_clock_us();
  // A replay has no wire to keep up with: when the event ring is full it waits for the control
  // thread (until the stop deadline) instead of losing a record.
  if (t.replay && ctx.events) ctx.events->set_flushing(true, ctx.abort_flush);
  if (ctx.backoff.max_sleep_us) tighten_timer_slack();

  while (!ctx.quit->load(std::memory_order_relaxed)) {
    bool any_input_left = false;
    unsigned received = 0;  // frames from the ports and the other RX lcores this iteration
    // A replay waits while half the message records hold ended messages (their results and
    // look-up answers come without more input): read on, and a capture faster than the answers
    // would turn files into `overload`.
    // A replay that enforces reads on only once every held message is settled: the output is then
    // what a live link would carry with verdicts that came at once (a flow's later frames in order
    // behind its held segment, none lost to the hold caps). Verdicts come within the look-up and
    // analysis budgets, on the wall clock; past hold.max_hold_ms of it, the deadline action.
    const bool gated = t.replay && ctx.enforcer && t.n_rx_lcores == 1 && ctx.enforcer->holding();
    if (gated) {
      if (!ctx.gated_since_tsc) ctx.gated_since_tsc = rte_rdtsc();
      if (rte_rdtsc() - ctx.gated_since_tsc > static_cast<uint64_t>(ctx.max_hold_us) * tsc_hz / 1000000)
        ctx.enforcer->expire_holding(ctx.now_us);
    } else {
      ctx.gated_since_tsc = 0;
      if (ctx.stash_n) process_stash(ctx);
    }
    const bool paused = (t.replay && ctx.handoff && ctx.handoff->saturated()) || gated || ctx.stash_n;
    if (paused) any_input_left = true;
    for (unsigned q = 0; q < ctx.n_queues && !paused; ++q) {
      const RxQueueRef& ref = ctx.queues[q];
      const uint16_t n = rte_eth_rx_burst(t.port_id[ref.port_index], ref.queue, pkts, burst);
      if (n == 0) {
        // net_pcap returns nothing only at the end of its file, or when the pool is empty.
        if (t.replay && rte_mempool_avail_count(t.pool) >= burst) input_left[q] = false;
      } else {
        input_left[q] = true;
      }
      any_input_left |= input_left[q];
      if (n == 0) continue;
      received += n;
      PortCounters& c = ctx.counters[ref.port_index];
      c.rx_packets += n;
      for (uint16_t i = 0; i < n; ++i) c.rx_bytes += rte_pktmbuf_pkt_len(pkts[i]);
      const uint16_t mine = ref.dispatch ? dispatch(ctx, ref.port_index, pkts, n) : n;
      if (mine) process(ctx, ref.port_index, pkts, mine);
    }
    if (t.n_rx_lcores > 1) {
      const unsigned n = rte_ring_dequeue_burst(t.inbound[ctx.index], reinterpret_cast<void**>(pkts), burst, nullptr);
      if (n) process_inbound(ctx, pkts, n);
      any_input_left |= n != 0;
      received += n;
    }
    // Chunks staged in this iteration go to the workers; their results come back (message
    // hashes among them: the smtp events that waited for one go out).
    if (ctx.handoff) ctx.handoff->poll();
    if (ctx.reasm) ctx.reasm->emit_waiting();
    poll_control(ctx);
    if (ctx.enforcer && ctx.handoff && t.enforce_watchdog_tsc) watchdog(ctx, t.enforce_watchdog_tsc);
    if (ctx.enforcer && ctx.enforcer->active()) {  // nothing gated: nothing to settle or expire
      const int64_t now = t.replay ? ctx.now_us : wall_clock_us();
      ctx.enforcer->run(now);  // verdicts that came with the poll
      ctx.enforcer->expire(now);
    }
    if (ctx.hold->counters().in_queue) expire_held(ctx);
    // About once a second: expire idle and closed flows (packet time in replay).
    if (ctx.reasm && (t.replay ? ctx.now_us - ctx.last_expire_us >= 1000000 : rte_rdtsc() - last_tick > tsc_hz)) {
      last_tick = rte_rdtsc();
      if (!t.replay) ctx.now_us = wall_clock_us();
      ctx.reasm->expire(ctx.now_us);
      ctx.last_expire_us = ctx.now_us;
    }
    if (t.replay && !any_input_left) {
      flush(ctx, records::FlowEndReason::end_of_input);
      ctx.finished.store(true, std::memory_order_release);
      // Until the control thread sees `finished` and says quit (within a millisecond), requests
      // are still answered: a ping sent as a short replay ended used to wait out its 2 s deadline.
      while (!ctx.quit->load(std::memory_order_relaxed)) {
        poll_control(ctx);
        rte_pause();
      }
      break;
    }
    if (received)
      ctx.backoff.work();
    else
      ctx.backoff.idle();
  }
  // Stopped (SIGTERM, SIGINT) on a live link or in the middle of a replay. The fence pairs with
  // the control thread's stores: abort_flush, when set before quit (a zero deadline), is seen.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (!ctx.finished.load(std::memory_order_relaxed)) flush(ctx, records::FlowEndReason::shutdown);
  ctx.exited.store(true, std::memory_order_release);
  return 0;
}

}  // namespace sluice::dataplane
