// The per-lcore hold queue (DESIGN.md section 5): frames held until their message's verdict. The
// segment that completes a message (end of DATA, BDAT LAST) is held, as are frames of that message
// the caller chooses to keep with it (IP fragments of the segment, its retransmissions); on the
// verdict the caller releases them all at once, with the action the verdict implies; past their
// deadline they leave with the configured default action.
//
// Ownership (STYLE.md: an mbuf has exactly one owner; every path ends in exactly one of TX, ring,
// held, freed):
//  - hold() returning `held` moves the mbuf into the queue: the caller must not touch it again.
//    Any other result leaves it with the caller, who applies the returned fallback (forward or
//    free) at once.
//  - release(), expire() and release_all() move mbufs back to the caller through the `out` array,
//    in arrival order per message, with the action to apply to all of them (forward: into the TX
//    burst; drop: free). Each mbuf comes out exactly once.
//  - The queue never dereferences, frees or transmits an mbuf (it stores opaque pointers), so it
//    runs without the EAL. Destroying a queue that still holds frames leaks them: call
//    release_all() at shutdown until it returns nothing.
//
// Memory: everything is allocated at construction (frame nodes, message records, the key table);
// hold/release/expire never allocate. One lcore only: no locks, no atomics, noexcept.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "reassembly/frame_step.h"

struct rte_mbuf;

namespace sluice::dataplane {

struct MessageKey {
  uint64_t flow_id;
  uint64_t transaction;
  bool operator==(const MessageKey&) const noexcept = default;
};

enum class HoldAction : uint8_t { forward, drop };
using HoldFallback = HoldAction;

// The configuration of one lcore's queue. No defaults here: they are declared once with the
// configuration keys in control/config.cpp (STYLE.md).
struct HoldLimits {
  uint32_t max_frames;               // frames held at once on this lcore (memory bound)
  uint32_t max_frames_per_message;   // one message cannot take the whole queue
  HoldFallback fallback;             // what the caller does with a frame refused by either cap
  HoldAction on_deadline;            // what happens to a frame whose deadline passed
};

enum class HoldStatus : uint8_t {
  held,          // the queue owns the mbuf
  queue_full,    // max_frames reached: apply `fallback`
  message_full,  // max_frames_per_message reached for this key: apply `fallback`
};

struct HoldResult {
  HoldStatus status;
  HoldAction fallback;  // when status != held
  bool held() const noexcept { return status == HoldStatus::held; }
};

// What release/expire/release_all handed back: out[0..n) all take `action`.
struct Released {
  std::size_t n;
  HoldAction action;
};

struct HoldCounters {
  uint64_t held = 0;         // frames accepted by hold()
  uint64_t released = 0;     // frames handed back by release() and release_all()
  uint64_t expired = 0;      // frames handed back by expire()
  uint64_t cap_reached = 0;  // frames refused by either cap (the caller applied the fallback)
  uint64_t in_queue = 0;     // frames held now
};

// What the RX loop does at once with a frame, once its step (reassembly/frame_step.h) met the queue.
enum class Disposition : uint8_t {
  transmit,  // into the TX burst (a forward step, or a refused hold whose fallback is forward)
  held,      // the queue owns it now
  free,      // a drop step, or a refused hold whose fallback is drop: free it and count it
};

class HoldQueue {
 public:
  // Throws std::invalid_argument if a cap is 0 or max_frames exceeds 2^30 (start-up only).
  explicit HoldQueue(const HoldLimits& limits);
  ~HoldQueue();
  HoldQueue(const HoldQueue&) = delete;
  HoldQueue& operator=(const HoldQueue&) = delete;

  // Holds `m` for message `key` until its release or `deadline_us` (the caller's clock, in
  // microseconds), whichever comes first.
  HoldResult hold(const MessageKey& key, rte_mbuf* m, int64_t deadline_us) noexcept;

  // Hands back up to `cap` frames of `key`, oldest first, with `action`. Frames that do not fit
  // stay held under the key (call again). An unknown key returns n == 0.
  Released release(const MessageKey& key, HoldAction action, rte_mbuf** out, std::size_t cap) noexcept;

  // Hands back up to `cap` frames whose deadline is <= now_us, earliest deadline first (ties in
  // arrival order), with the configured on_deadline action. The others stay held.
  Released expire(int64_t now_us, rte_mbuf** out, std::size_t cap) noexcept;

  // Shutdown: hands back up to `cap` frames of any message, earliest deadline first, with `action`.
  Released release_all(HoldAction action, rte_mbuf** out, std::size_t cap) noexcept;

  // Applies a frame's step: forward -> transmit; hold -> hold(step's message, m, deadline_us), and
  // on refusal the fallback (transmit or free); drop -> free.
  Disposition settle(const reassembly::FrameStep& step, rte_mbuf* m, int64_t deadline_us) noexcept;

  // The oldest frame held for `key`, still held (nullptr when none): release(key, .., 1) takes it.
  rte_mbuf* front(const MessageKey& key) const noexcept;
  // Frames held for `key` (0 when none).
  std::size_t frames(const MessageKey& key) const noexcept;
  // The earliest deadline held, or INT64_MAX when empty (when to call expire() next).
  int64_t next_deadline() const noexcept;

  const HoldLimits& limits() const noexcept { return limits_; }
  const HoldCounters& counters() const noexcept { return counters_; }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;

  struct Frame;    // one held mbuf: in its message's list and in the deadline-ordered list
  struct Message;  // one key with frames held: its list of frames
  struct Slot;     // key table entry: the key's message record, or empty

  uint32_t find_slot(const MessageKey& key) const noexcept;  // its slot, or kNone
  uint32_t insert_message(const MessageKey& key) noexcept;   // a new message record; there is room
  void erase_message(uint32_t msg) noexcept;
  void unlink_frame(uint32_t f) noexcept;  // from both lists; frees the node (and an empty message)
  std::size_t slot_of(const MessageKey& key) const noexcept;

  HoldLimits limits_;
  HoldCounters counters_;
  std::unique_ptr<Frame[]> frames_;
  std::unique_ptr<Message[]> messages_;
  std::unique_ptr<Slot[]> table_;
  uint32_t table_mask_ = 0;
  uint32_t free_frames_ = kNone;    // singly linked through Frame::next_in_order
  uint32_t free_messages_ = kNone;  // singly linked through Message::head
  uint32_t oldest_ = kNone;         // the deadline-ordered list of every held frame
  uint32_t newest_ = kNone;
};

}  // namespace sluice::dataplane
