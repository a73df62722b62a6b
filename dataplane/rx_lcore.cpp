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

#include <ctime>

#include "dataplane/dataplane.h"
#include "dataplane/lcore_context.h"

namespace sluice::dataplane {
namespace {

void transmit(RxLcoreContext& ctx, uint16_t in_port, rte_mbuf** pkts, uint16_t n) {
  const PortTable& t = *ctx.table;
  const uint16_t out = t.peer[in_port];
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

int64_t wall_clock_us() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);  // vDSO: no system call
  return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

// Hands one frame to the reassembly stage when it is TCP on an SMTP port (or a fragment). The
// frame is read in place; a frame chained over several mbufs is copied to the lcore's scratch.
// Returns the frame's next step: forward unless the reassembly stage says otherwise.
reassembly::FrameStep inspect(RxLcoreContext& ctx, uint16_t in_port, rte_mbuf* m) noexcept {
  const PortTable& t = *ctx.table;
  const uint32_t len = rte_pktmbuf_pkt_len(m);
  const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
  if (m->nb_segs > 1) {
    if (len > kScratchBytes) return {};  // larger than any IP datagram: not ours to parse
    frame = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, len, ctx.scratch));
  }
  reassembly::PacketInfo info;
  if (reassembly::decode_packet(frame, len, info, t.link_type[in_port]) != reassembly::DecodeStatus::ok) return {};
  if (!ctx.reasm->wants(info)) return {};
  // net_pcap stores the capture time in microseconds since 1970; live ports use the time of the
  // burst (set by process()).
  if (t.timestamp_offset >= 0 && (m->ol_flags & t.timestamp_flag))
    ctx.now_us = static_cast<int64_t>(*RTE_MBUF_DYNFIELD(m, t.timestamp_offset, uint64_t*));
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
      const reassembly::FrameStep step = inspect(ctx, in_port, m);
      if (step.step == reassembly::NextStep::forward) [[likely]] {
        pkts[out++] = m;
        continue;
      }
      switch (ctx.hold->settle(step, m, ctx.now_us + ctx.max_hold_us)) {
        case Disposition::transmit:
          pkts[out++] = m;
          break;
        case Disposition::held:
          break;
        case Disposition::free:
          rte_pktmbuf_free(m);
          ++ctx.hold_dropped;
          break;
      }
    }
  }
  transmit(ctx, in_port, pkts, out);
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
  ctx.events->set_flushing(true, ctx.abort_flush);
  ctx.reasm->flush_all(ctx.table->replay ? ctx.now_us : wall_clock_us(), reason, ctx.abort_flush);
  // Every message's attachments are with the workers now: wait for their results and look-up
  // answers, answering the control channel meanwhile (a replay shorter than sluiced's start-up
  // ends here before the first snapshot arrives).
  if (ctx.handoff) {
    while (ctx.handoff->pending() && !ctx.abort_flush->load(std::memory_order_relaxed)) {
      ctx.handoff->poll();
      poll_control(ctx);
      rte_pause();
    }
    ctx.handoff->drain(*ctx.abort_flush);  // what is left when aborted
  }
  ctx.events->set_flushing(false, nullptr);
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

}  // namespace

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

  while (!ctx.quit->load(std::memory_order_relaxed)) {
    bool any_input_left = false;
    // A replay waits while half the message records hold ended messages (their results and
    // look-up answers come without more input): read on, and a capture faster than the answers
    // would turn files into `overload`.
    const bool paused = t.replay && ctx.handoff && ctx.handoff->saturated();
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
    }
    // Chunks staged in this iteration go to the workers; their results come back.
    if (ctx.handoff) ctx.handoff->poll();
    poll_control(ctx);
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
  }
  // Stopped (SIGTERM, SIGINT) on a live link or in the middle of a replay. The fence pairs with
  // the control thread's stores: abort_flush, when set before quit (a zero deadline), is seen.
  std::atomic_thread_fence(std::memory_order_acquire);
  if (!ctx.finished.load(std::memory_order_relaxed)) flush(ctx, records::FlowEndReason::shutdown);
  ctx.exited.store(true, std::memory_order_release);
  return 0;
}

}  // namespace sluice::dataplane
