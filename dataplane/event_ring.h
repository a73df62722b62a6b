// Single-producer, single-consumer byte ring carrying event records (records/event_records.h)
// from one RX lcore to the control thread: [uint32 length][bytes] entries, one copy in, one copy
// out, no locks (acquire/release indexes). Fixed capacity allocated at start. When full, the producer's push fails (the caller
// counts the loss), except in a flush, when it waits for the consumer (end of input, shutdown).
#pragma once

#include <rte_pause.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <algorithm>
#include <vector>

namespace sluice::dataplane {

class EventRing {
 public:
  explicit EventRing(std::size_t bytes) : cap_(round_up(bytes)), mask_(cap_ - 1), buf_(new uint8_t[cap_]) {}

  // Producer side. False when there is no room (or the record is larger than the ring).
  bool push(const void* data, std::size_t size) noexcept {
    const uint64_t need = sizeof(uint32_t) + size;
    if (need > cap_) return false;
    const uint64_t head = head_.load(std::memory_order_relaxed);
    if (head + need - tail_.load(std::memory_order_acquire) > cap_) return false;
    const uint32_t len = static_cast<uint32_t>(size);
    copy_in(head, &len, sizeof(len));
    copy_in(head + sizeof(len), data, size);
    head_.store(head + need, std::memory_order_release);
    return true;
  }
  // Producer side: waits until the consumer makes room, or `give_up` becomes true.
  bool push_wait(const void* data, std::size_t size, const std::atomic<bool>& give_up) noexcept {
    while (!push(data, size)) {
      if (size + sizeof(uint32_t) > cap_ || give_up.load(std::memory_order_relaxed)) return false;
      rte_pause();
    }
    return true;
  }

  // Consumer side: calls fn(const void* data, std::size_t size) for every entry present, with the
  // entry copied to `scratch` (aligned for any record); returns how many.
  template <typename Fn>
  std::size_t drain(Fn&& fn, std::vector<std::max_align_t>& scratch) {
    std::size_t n = 0;
    uint64_t tail = tail_.load(std::memory_order_relaxed);
    const uint64_t head = head_.load(std::memory_order_acquire);
    while (tail != head) {
      uint32_t len;
      copy_out(tail, &len, sizeof(len));
      scratch.resize(len / sizeof(std::max_align_t) + 1);
      copy_out(tail + sizeof(len), scratch.data(), len);
      tail += sizeof(len) + len;
      tail_.store(tail, std::memory_order_release);
      fn(static_cast<const void*>(scratch.data()), static_cast<std::size_t>(len));
      ++n;
    }
    return n;
  }

 private:
  static std::size_t round_up(std::size_t n) {
    std::size_t c = 4096;
    while (c < n) c <<= 1;
    return c;
  }
  void copy_in(uint64_t pos, const void* src, std::size_t n) noexcept {
    const std::size_t off = pos & mask_, first = std::min(n, cap_ - off);
    std::memcpy(buf_.get() + off, src, first);
    std::memcpy(buf_.get(), static_cast<const uint8_t*>(src) + first, n - first);
  }
  void copy_out(uint64_t pos, void* dst, std::size_t n) const noexcept {
    const std::size_t off = pos & mask_, first = std::min(n, cap_ - off);
    std::memcpy(dst, buf_.get() + off, first);
    std::memcpy(static_cast<uint8_t*>(dst) + first, buf_.get(), n - first);
  }

  const std::size_t cap_;
  const std::size_t mask_;
  std::unique_ptr<uint8_t[]> buf_;
  alignas(64) std::atomic<uint64_t> head_{0};  // written by the producer
  alignas(64) std::atomic<uint64_t> tail_{0};  // written by the consumer
};

}  // namespace sluice::dataplane
