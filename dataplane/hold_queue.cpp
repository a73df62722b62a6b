// The hold queue's storage: a pool of frame nodes (each in two intrusive doubly linked lists: its
// message's frames in arrival order, and every held frame in deadline order), a pool of message
// records, and an open-addressed key table (linear probing, at most half full, backward-shift
// deletion so that no tombstones accumulate). Indexes, not pointers: 32 bits, kNone for "none".
// The ownership rules are at the top of hold_queue.h.
#include "dataplane/hold_queue.h"

#include <stdexcept>

namespace sluice::dataplane {

struct HoldQueue::Frame {
  rte_mbuf* m;
  int64_t deadline_us;
  uint32_t msg;
  uint32_t prev_in_msg, next_in_msg;
  uint32_t prev_in_order, next_in_order;  // next_in_order also links the free list
};

struct HoldQueue::Message {
  MessageKey key;
  uint32_t head, tail;  // oldest and newest frame; head also links the free list
  uint32_t count;
};

struct HoldQueue::Slot {
  MessageKey key;
  uint32_t msg;  // kNone: empty
};

namespace {

uint64_t mix(const MessageKey& k) noexcept {
  // splitmix64's finalizer over both fields: flow ids may be sequential.
  uint64_t x = k.flow_id + 0x9E3779B97F4A7C15ull * (k.transaction + 1);
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

HoldQueue::HoldQueue(const HoldLimits& limits) : limits_(limits) {
  // 2^30 frames keeps the table (twice as many slots, a power of two) within 32-bit indexes.
  if (limits.max_frames == 0 || limits.max_frames > (1u << 30))
    throw std::invalid_argument("HoldQueue: max_frames must be in 1..2^30");
  if (limits.max_frames_per_message == 0) throw std::invalid_argument("HoldQueue: max_frames_per_message must be >= 1");
  const uint32_t n = limits.max_frames;
  frames_.reset(new Frame[n]);
  messages_.reset(new Message[n]);  // a message holds at least one frame
  uint32_t slots = 2;
  while (slots < 2 * n) slots <<= 1;
  table_.reset(new Slot[slots]);
  table_mask_ = slots - 1;
  for (uint32_t i = 0; i < slots; ++i) table_[i].msg = kNone;
  for (uint32_t i = 0; i < n; ++i) {
    frames_[i].next_in_order = i + 1 < n ? i + 1 : kNone;
    messages_[i].head = i + 1 < n ? i + 1 : kNone;
  }
  free_frames_ = 0;
  free_messages_ = 0;
}

HoldQueue::~HoldQueue() = default;

std::size_t HoldQueue::slot_of(const MessageKey& key) const noexcept { return mix(key) & table_mask_; }

uint32_t HoldQueue::find_slot(const MessageKey& key) const noexcept {
  for (std::size_t i = slot_of(key);; i = (i + 1) & table_mask_) {
    if (table_[i].msg == kNone) return kNone;
    if (table_[i].key == key) return static_cast<uint32_t>(i);
  }
}

uint32_t HoldQueue::insert_message(const MessageKey& key) noexcept {
  const uint32_t msg = free_messages_;
  free_messages_ = messages_[msg].head;
  messages_[msg] = Message{key, kNone, kNone, 0};
  std::size_t i = slot_of(key);
  while (table_[i].msg != kNone) i = (i + 1) & table_mask_;
  table_[i] = Slot{key, msg};
  return msg;
}

void HoldQueue::erase_message(uint32_t msg) noexcept {
  std::size_t hole = find_slot(messages_[msg].key);
  table_[hole].msg = kNone;
  // Backward shift: move later entries of the probe run into the hole when their home slot does
  // not lie cyclically in (hole, j], so every remaining key stays reachable from its home.
  for (std::size_t j = (hole + 1) & table_mask_; table_[j].msg != kNone; j = (j + 1) & table_mask_) {
    const std::size_t home = slot_of(table_[j].key);
    const bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    table_[hole] = table_[j];
    table_[j].msg = kNone;
    hole = j;
  }
  messages_[msg].head = free_messages_;
  free_messages_ = msg;
}

void HoldQueue::unlink_frame(uint32_t f) noexcept {
  Frame& fr = frames_[f];
  Message& msg = messages_[fr.msg];
  (fr.prev_in_msg == kNone ? msg.head : frames_[fr.prev_in_msg].next_in_msg) = fr.next_in_msg;
  (fr.next_in_msg == kNone ? msg.tail : frames_[fr.next_in_msg].prev_in_msg) = fr.prev_in_msg;
  if (--msg.count == 0) erase_message(fr.msg);
  (fr.prev_in_order == kNone ? oldest_ : frames_[fr.prev_in_order].next_in_order) = fr.next_in_order;
  (fr.next_in_order == kNone ? newest_ : frames_[fr.next_in_order].prev_in_order) = fr.prev_in_order;
  fr.m = nullptr;
  fr.next_in_order = free_frames_;
  free_frames_ = f;
  --counters_.in_queue;
}

HoldResult HoldQueue::hold(const MessageKey& key, rte_mbuf* m, int64_t deadline_us) noexcept {
  const uint32_t slot = find_slot(key);
  uint32_t msg = slot == kNone ? kNone : table_[slot].msg;
  HoldStatus refused = HoldStatus::held;
  if (msg != kNone && messages_[msg].count >= limits_.max_frames_per_message) {
    refused = HoldStatus::message_full;
  } else if (free_frames_ == kNone) {
    refused = HoldStatus::queue_full;
  }
  if (refused != HoldStatus::held) {
    ++counters_.cap_reached;
    return HoldResult{refused, limits_.fallback};
  }
  if (msg == kNone) msg = insert_message(key);

  const uint32_t f = free_frames_;
  free_frames_ = frames_[f].next_in_order;
  Frame& fr = frames_[f];
  fr.m = m;
  fr.deadline_us = deadline_us;
  fr.msg = msg;

  Message& ms = messages_[msg];
  fr.prev_in_msg = ms.tail;
  fr.next_in_msg = kNone;
  (ms.tail == kNone ? ms.head : frames_[ms.tail].next_in_msg) = f;
  ms.tail = f;
  ++ms.count;

  // Deadline order, ties after earlier arrivals. Deadlines are usually now + a constant hold
  // time, so the walk from the newest end stops at once.
  uint32_t after = newest_;
  while (after != kNone && frames_[after].deadline_us > deadline_us) after = frames_[after].prev_in_order;
  fr.prev_in_order = after;
  fr.next_in_order = after == kNone ? oldest_ : frames_[after].next_in_order;
  (fr.next_in_order == kNone ? newest_ : frames_[fr.next_in_order].prev_in_order) = f;
  (after == kNone ? oldest_ : frames_[after].next_in_order) = f;

  ++counters_.held;
  ++counters_.in_queue;
  return HoldResult{HoldStatus::held, limits_.fallback};
}

Released HoldQueue::release(const MessageKey& key, HoldAction action, rte_mbuf** out, std::size_t cap) noexcept {
  const uint32_t slot = find_slot(key);
  if (slot == kNone) return Released{0, action};
  const uint32_t msg = table_[slot].msg;
  std::size_t n = 0;
  while (n < cap) {
    const uint32_t f = messages_[msg].head;
    const bool last = messages_[msg].count == 1;
    out[n++] = frames_[f].m;
    unlink_frame(f);  // the last frame's unlink frees the message record
    if (last) break;
  }
  counters_.released += n;
  return Released{n, action};
}

Released HoldQueue::expire(int64_t now_us, rte_mbuf** out, std::size_t cap) noexcept {
  std::size_t n = 0;
  while (n < cap && oldest_ != kNone && frames_[oldest_].deadline_us <= now_us) {
    out[n++] = frames_[oldest_].m;
    unlink_frame(oldest_);
  }
  counters_.expired += n;
  return Released{n, limits_.on_deadline};
}

Released HoldQueue::release_all(HoldAction action, rte_mbuf** out, std::size_t cap) noexcept {
  std::size_t n = 0;
  while (n < cap && oldest_ != kNone) {
    out[n++] = frames_[oldest_].m;
    unlink_frame(oldest_);
  }
  counters_.released += n;
  return Released{n, action};
}

rte_mbuf* HoldQueue::front(const MessageKey& key) const noexcept {
  const uint32_t slot = find_slot(key);
  return slot == kNone ? nullptr : frames_[messages_[table_[slot].msg].head].m;
}

std::size_t HoldQueue::frames(const MessageKey& key) const noexcept {
  const uint32_t slot = find_slot(key);
  return slot == kNone ? 0 : messages_[table_[slot].msg].count;
}

int64_t HoldQueue::next_deadline() const noexcept { return oldest_ == kNone ? INT64_MAX : frames_[oldest_].deadline_us; }

Disposition HoldQueue::settle(const reassembly::FrameStep& step, rte_mbuf* m, int64_t deadline_us) noexcept {
  switch (step.step) {
    case reassembly::NextStep::forward:
      return Disposition::transmit;
    case reassembly::NextStep::hold: {
      const HoldResult r = hold(MessageKey{step.flow_id, step.transaction}, m, deadline_us);
      if (r.held()) return Disposition::held;
      return r.fallback == HoldAction::forward ? Disposition::transmit : Disposition::free;
    }
    case reassembly::NextStep::drop:
      break;
  }
  return Disposition::free;
}

}  // namespace sluice::dataplane
