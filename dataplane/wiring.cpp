// The pipeline of each RX lcore (dataplane_impl.h): its event ring, its attachment hand-off (to the
// worker lcores, or to a worker running on the RX lcore itself), Hyperscan for the MIME body scan,
// the message inspectors, its reassembly stage, its hold queue; and the control channels of every lcore.
#include "dataplane/dataplane_impl.h"

#include <rte_lcore.h>

#include <exception>

namespace sluice::dataplane {

bool Dataplane::Impl::wire_pipeline(std::string& error) {
  const Config& c = config;
  std::vector<pipeline::AttachmentHandoff*> handoff_of;
  for (unsigned i = 0; i < table.n_rx_lcores; ++i) {
    rings.push_back(std::make_unique<EventRing>(c.event_ring_bytes));
    outputs.push_back(std::make_unique<RingEventOutput>(rings.back().get()));
    if (workers.n_workers) {
      channels.push_back(std::make_unique<RingChannel>(workers, i));
      pipeline::HandoffLimits limits = c.workers.handoff;
      // Message contents take at most half of each worker's in-flight slots, shared by the RX lcores.
      limits.max_open_digests = std::max<uint32_t>(
          1, workers.n_workers * c.workers.limits.max_in_flight / 2 / std::max(1u, table.n_rx_lcores));
      handoffs.push_back(std::make_unique<pipeline::AttachmentHandoff>(limits, *channels.back(), *outputs.back(), i));
    } else {
      pipeline::SampleBlocks* samples = nullptr;
      if (c.workers.sample_blocks) {
        auto pool = MempoolSampleBlocks::create("sluice_samples_rx" + std::to_string(i), c.workers.sample_blocks,
                                                static_cast<int>(rte_socket_id()),
                                                PoolMemory::wanted(c), error);
        if (!pool) return false;
        samples = pool.get();
        sample_pools.push_back(std::move(pool));
      }
      auto local = std::make_unique<pipeline::LocalChannel>(c.workers.limits, 64, samples);
      pipeline::HandoffLimits limits = c.workers.handoff;
      limits.digests = false;  // the reassembler hashes on this lcore without copying the bytes
      handoffs.push_back(std::make_unique<pipeline::AttachmentHandoff>(limits, *local, *outputs.back(), i));
      local->set_handler(handoffs.back().get());
      channels.push_back(std::move(local));
    }
    handoff_of.push_back(handoffs.back().get());
    pipeline::ReputationSetup rep;
    rep.cache = c.verdicts.cache;
    rep.deadline_us = c.verdicts.deadline_ms * 1000;
    if (c.verdicts.lookups) {
      // Answers: room for every request plus those the control plane answers from its own cache.
      lanes.push_back(std::make_unique<pipeline::LookupLane>(c.verdicts.lane_requests, 2 * c.verdicts.lane_requests,
                                                             c.verdicts.lane_analysis));
      rep.channel = lanes.back().get();
      rep.analysis = c.verdicts.analysis;
      rep.analysis_deadline_us = c.verdicts.analysis_deadline_ms * 1000;
      if (c.verdicts.analysis && c.verdicts.spool_blocks) {
        auto pool = MempoolSampleBlocks::create("sluice_spool_rx" + std::to_string(i), c.verdicts.spool_blocks,
                                                static_cast<int>(rte_socket_id()),
                                                PoolMemory::wanted(c), error);
        if (!pool) return false;
        rep.spool = pool.get();
        rep.spool_max_bytes = c.verdicts.spool_max_bytes;
        sample_pools.push_back(std::move(pool));
      }
    }
    handoffs.back()->set_reputation(rep);
  }
  std::vector<pipeline::MimeBodyScan::Scratch*> scratch_of;
  if (c.mime_hyperscan) {
    std::string why;
    body_scan = pipeline::MimeBodyScan::compile(why, /*exact_lines=*/false);
    if (!body_scan) {
      error = "mime.body_scan: " + why;
      return false;
    }
    for (unsigned i = 0; i < table.n_rx_lcores; ++i) {
      body_scratch.push_back(body_scan->make_scratch());
      if (!body_scratch.back()->s) {
        error = "mime.body_scan: cannot allocate Hyperscan scratch";
        return false;
      }
      scratch_of.push_back(body_scratch.back().get());
    }
  }
  inspectors = std::make_unique<pipeline::MessageInspectorFactory>(c.mime, handoff_of, body_scan.get(), scratch_of);
  // Enforcing, the segment that ends every message is held until its verdict (enforcer.h).
  inspectors->hold_every_message_end(c.hold.debug_hold_every_message || c.enforce.enabled);
  config.reassembly.observers = inspectors.get();
  // Enforcing, content a client sends before DATA's 354 is read at once, so that the segment
  // carrying its end is the one held (smtp_session.h, set_eager_data).
  config.reassembly.eager_data = c.enforce.enabled;
  // Only inline sees both directions in step (the frames pass through it); a tap or a replayed
  // capture may show an ACK before the data it acknowledges (reassembler.cpp, out of step).
  config.reassembly.directions_in_step = c.mode == Mode::inline_;
  for (unsigned i = 0; i < table.n_rx_lcores; ++i)
    if (!wire_rx_lcore(i, error)) return false;

  // Control requests: one port per lcore (64 requests, 64 responses each).
  control = std::make_unique<LcoreChannels>(table.n_rx_lcores + workers.n_workers, 64, 64);
  // The first snapshot carries the configuration's actions; the hand-offs read them from it.
  snapshots.resize(table.n_rx_lcores + workers.n_workers,
                   std::make_shared<const LcoreSnapshot>(LcoreSnapshot{0, c.verdicts.policy}));
  for (unsigned i = 0; i < table.n_rx_lcores; ++i) handoffs[i]->set_policy(&snapshots[i]->policy);
  for (unsigned i = 0; i < table.n_rx_lcores; ++i) {
    lcores[i].control = &control->port(i);
    lcores[i].snapshot = &snapshots[i];
  }
  for (unsigned j = 0; j < workers.n_workers; ++j) {
    worker_lcores[j].control = &control->port(table.n_rx_lcores + j);
    worker_lcores[j].snapshot = &snapshots[table.n_rx_lcores + j];
  }
  return true;
}

bool Dataplane::Impl::wire_rx_lcore(unsigned i, std::string& error) {
  RxLcoreContext& lc = lcores[i];
  try {
    holds.push_back(std::make_unique<HoldQueue>(config.hold.limits));
  } catch (const std::exception& e) {
    error = std::string("hold.max_frames: ") + e.what();
    return false;
  }
  lc.hold = holds.back().get();
  lc.max_hold_us = int64_t{config.hold.max_hold_ms} * 1000;
  lc.handoff = handoffs[i].get();
  reassembly::ReassemblyConfig reassembly = config.reassembly;
  // One waiting smtp event per ticket the hand-off can give out (MessageRecords: 4 per message record).
  if (workers.n_workers && config.workers.handoff.digests)
    reassembly.max_digest_waits = 4 * std::max<uint32_t>(1, config.workers.handoff.max_messages);
  reassemblers.push_back(std::make_unique<reassembly::Reassembler>(reassembly, *outputs[i], i));
  scratch.push_back(std::make_unique<uint8_t[]>(kScratchBytes));
  lc.event_ring = rings[i].get();
  lc.events = outputs[i].get();
  lc.reasm = reassemblers.back().get();
  lc.scratch = scratch.back().get();
  lc.abort_flush = &abort_flush;
  lc.enforcer = nullptr;
  if (config.enforce.enabled) {
    enforcer_ios.push_back(make_enforcer_io(lc));
    try {
      enforcers.push_back(std::make_unique<Enforcer>(config.enforce, *lc.hold, *enforcer_ios.back(),
                                                     table.link_type[0], outputs[i].get()));
    } catch (const std::exception& e) {
      error = std::string("enforce.max_connections: ") + e.what();
      return false;
    }
    lc.enforcer = enforcers.back().get();
    handoffs[i]->set_listener(lc.enforcer);
  }
  return true;
}

}  // namespace sluice::dataplane
