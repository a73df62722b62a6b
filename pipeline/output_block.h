// Internal to pipeline/ (not a public header): the on-stack block through which a decoder's feed()
// hands its output to the ByteSink, so the sink sees a few large calls rather than one per byte.
// Long runs of bytes that decode to themselves skip the block and go to the sink directly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "pipeline/decoder.h"

namespace sluice::pipeline {

class OutputBlock {
 public:
  static constexpr std::size_t kSize = 4096;
  // Bytes that may be written past kSize by word-sized stores (the base64 fast path: 32-byte SIMD
  // stores from a cursor below kSize).
  static constexpr std::size_t kSlack = 32;

  OutputBlock(OutputLimit& limit, ByteSink& sink) noexcept : limit_(limit), sink_(sink) {}
  OutputBlock(const OutputBlock&) = delete;
  OutputBlock& operator=(const OutputBlock&) = delete;

  void put(uint8_t b) noexcept {
    if (n_ >= kSize) flush();
    buf_[n_++] = b;
  }
  void put(const uint8_t* data, std::size_t len) noexcept {
    if (len >= kDirect) {
      flush();
      limit_.emit(data, len, sink_);
      return;
    }
    if (n_ + len > kSize) flush();
    if (len != 0) std::memcpy(buf_ + n_, data, len);
    n_ += len;
  }
  void flush() noexcept {
    if (n_ != 0) limit_.emit(buf_, n_, sink_);
    n_ = 0;
  }

  // Raw access for word-at-a-time writers: write from cursor() while it is below end()
  // (kSlack bytes beyond end() stay writable), then advance(to the new cursor).
  uint8_t* cursor() noexcept { return buf_ + n_; }
  uint8_t* end() noexcept { return buf_ + kSize; }
  void advance(uint8_t* to) noexcept { n_ = static_cast<std::size_t>(to - buf_); }
  bool full() const noexcept { return n_ >= kSize; }

 private:
  static constexpr std::size_t kDirect = 256;  // below this, copying beats one more sink call

  OutputLimit& limit_;
  ByteSink& sink_;
  std::size_t n_ = 0;
  alignas(64) uint8_t buf_[kSize + kSlack];
};

}  // namespace sluice::pipeline
