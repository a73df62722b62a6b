// The next step of one frame (STYLE.md, VPP-style): the reassembly stage says what the RX loop
// does with each frame it was given, and the RX loop assigns one to every frame of a burst before
// the burst ends (frames it does not inspect are forwarded):
//  - forward: into the TX burst of the peer port (what TX refuses is freed and counted; tap mode
//    and replay without an output consume the frame);
//  - hold: into the lcore's hold queue (dataplane/hold_queue.h) under the message (flow_id,
//    transaction) until that message's verdict or the hold deadline; a frame the queue refuses
//    takes the configured fallback at once;
//  - drop: freed and counted.
// A frame that software dispatch hands to another lcore's inbound ring leaves before a step is
// chosen: ownership moves with a successful enqueue, and the owner chooses. Nothing frees a frame
// outside this choice, so a frame is never freed twice or leaked, and the step taken is what the
// counters report.
#pragma once

#include <cstdint>

namespace sluice::reassembly {

enum class NextStep : uint8_t { forward, hold, drop };

struct FrameStep {
  NextStep step = NextStep::forward;
  uint64_t transaction = 0;  // hold: the message, within its flow
  uint64_t flow_id = 0;      // hold: the flow (its flow event's flow_id)
  // hold: messages that ended in the frame (pipelined into one segment): `transaction` and the
  // ended - 1 before it. Each has its verdict; the frame waits for all of them.
  uint32_t ended = 1;
  uint64_t first_transaction() const noexcept { return transaction + 1 - ended; }
};

}  // namespace sluice::reassembly
