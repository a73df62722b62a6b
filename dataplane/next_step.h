// The next step of one frame in a burst (STYLE.md, VPP-style): every frame the RX loop takes is
// assigned exactly one of these before the burst ends, and that step ends its path through this
// lcore: `forward` goes into the TX burst of the peer port (what TX refuses is freed and counted),
// `hold` moves the mbuf into the lcore's HoldQueue (dataplane/hold_queue.h) until its message's
// verdict or deadline, `drop` frees it and counts why. (A frame software dispatch hands to another
// lcore's inbound ring leaves before a step is chosen: ownership moves with a successful enqueue,
// and the owner chooses.) Nothing frees a frame outside this choice, so a frame is never freed
// twice or leaked, and the step taken is what the counters report.
#pragma once

#include <cstdint>

namespace sluice::dataplane {

enum class NextStep : uint8_t { forward, hold, drop };

}  // namespace sluice::dataplane
