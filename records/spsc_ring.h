// A bounded single-producer/single-consumer ring of fixed-size slots: what carries plain records
// between two threads without locks (the control <-> lcore channels of dataplane/lcore_channel.h,
// the look-up lanes of pipeline/lookup_lane.h). One thread pushes, one pops; neither blocks,
// allocates or makes a system call.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>

namespace sluice::records {

inline constexpr std::size_t kCacheLine = 64;

// Capacity: the requested number of slots rounded up to a power of two (at least 2), allocated at
// construction. Positions are 64-bit counters (they do not wrap in practice); the slot is
// position & mask.

template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "slots are copied by value");

 public:
  explicit SpscRing(std::size_t min_slots) : mask_(round_up(min_slots) - 1), slots_(new T[mask_ + 1]) {}
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  std::size_t capacity() const noexcept { return mask_ + 1; }

  // Producer side. False when the ring is full (nothing is written).
  bool push(const T& v) noexcept {
    const uint64_t head = head_.load(std::memory_order_relaxed);
    if (head - tail_seen_ > mask_) {
      tail_seen_ = tail_.load(std::memory_order_acquire);
      if (head - tail_seen_ > mask_) return false;
    }
    slots_[head & mask_] = v;
    head_.store(head + 1, std::memory_order_release);
    return true;
  }

  // Consumer side. False when the ring is empty.
  bool pop(T& out) noexcept {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    if (tail == head_seen_) {
      head_seen_ = head_.load(std::memory_order_acquire);
      if (tail == head_seen_) return false;
    }
    out = slots_[tail & mask_];
    tail_.store(tail + 1, std::memory_order_release);
    return true;
  }

 private:
  static std::size_t round_up(std::size_t n) {
    std::size_t c = 2;
    while (c < n) c <<= 1;
    return c;
  }

  const uint64_t mask_;
  std::unique_ptr<T[]> slots_;
  alignas(kCacheLine) std::atomic<uint64_t> head_{0};  // next position to write: producer stores
  uint64_t tail_seen_ = 0;                             // producer's last view of tail_
  alignas(kCacheLine) std::atomic<uint64_t> tail_{0};  // next position to read: consumer stores
  uint64_t head_seen_ = 0;                             // consumer's last view of head_
};

}  // namespace sluice::records
