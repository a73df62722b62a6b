// Bounded text in a record: at most N bytes, cut on overflow as the producer decides (file names
// keep their end). Records carry no std::string: they are copied byte for byte between threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace sluice::records {

template <std::size_t N>
struct Text {
  uint16_t len = 0;
  char data[N];

  std::string_view view() const noexcept { return {data, len}; }
  // Keeps the first N bytes.
  void set(std::string_view s) noexcept {
    len = static_cast<uint16_t>(s.size() < N ? s.size() : N);
    if (len) std::memcpy(data, s.data(), len);  // an empty view may hold nullptr: memcpy's is nonnull
  }
  // Keeps the start and the end of an over-long value (N >= 128): the extension of a file name is
  // what matters most (a Suricata defect truncated "...exe" away). The middle becomes U+2026.
  void set_keep_end(std::string_view s) noexcept {
    static_assert(N >= 128);
    if (s.size() <= N) return set(s);
    static constexpr std::string_view kCut = "\xe2\x80\xa6";
    constexpr std::size_t tail = 64, head = N - tail - kCut.size();
    std::memcpy(data, s.data(), head);
    std::memcpy(data + head, kCut.data(), kCut.size());
    std::memcpy(data + head + kCut.size(), s.data() + s.size() - tail, tail);
    len = N;
  }
};

}  // namespace sluice::records
