#include "pipeline/uudecode.h"

#include <cstring>

#include "pipeline/output_block.h"

namespace sluice::pipeline {

namespace {

constexpr bool legal(uint8_t c) { return c >= 0x20 && c <= 0x60; }
constexpr uint8_t value(uint8_t c) { return static_cast<uint8_t>((c - 0x20) & 0x3f); }

bool is_end_line(const uint8_t* s, std::size_t len) noexcept {
  while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) --len;
  return len == 3 && s[0] == 'e' && s[1] == 'n' && s[2] == 'd';
}

}  // namespace

void UuDecoder::reset(uint64_t max_output) noexcept {
  out_.reset(max_output);
  invalid_ = 0;
  partial_len_ = 0;
  done_ = false;
}

void UuDecoder::line(const uint8_t* s, std::size_t len, OutputBlock& out) noexcept {
  if (len == 0) return;
  if (len > kMaxLine) {
    invalid_ += len;
    return;
  }
  if (is_end_line(s, len)) {
    done_ = true;
    return;
  }
  for (std::size_t i = 0; i < len; ++i) {
    if (!legal(s[i])) {
      invalid_ += len;
      return;
    }
  }
  const std::size_t n = value(s[0]);
  // The characters the groups need, padded with ' ' (value 0) where the line is short.
  uint8_t chars[84];
  const std::size_t need = (n + 2) / 3 * 4;
  const std::size_t have = len - 1 < need ? len - 1 : need;
  for (std::size_t i = 0; i < have; ++i) chars[i] = value(s[1 + i]);
  std::memset(chars + have, 0, need - have);
  uint8_t bytes[63 + 2];
  for (std::size_t g = 0, o = 0; g < need; g += 4, o += 3) {
    bytes[o] = static_cast<uint8_t>(chars[g] << 2 | chars[g + 1] >> 4);
    bytes[o + 1] = static_cast<uint8_t>(chars[g + 1] << 4 | chars[g + 2] >> 2);
    bytes[o + 2] = static_cast<uint8_t>(chars[g + 2] << 6 | chars[g + 3]);
  }
  out.put(bytes, n);
}

void UuDecoder::append(const uint8_t* s, std::size_t len) noexcept {
  if (partial_len_ < sizeof(line_)) {
    const std::size_t room = sizeof(line_) - static_cast<std::size_t>(partial_len_);
    std::memcpy(line_ + partial_len_, s, len < room ? len : room);
  }
  partial_len_ += len;
  if (len != 0) last_ = s[len - 1];
}

// A line held in line_ is complete. A line too long for line_ is garbage whatever it holds: only its
// length counts, without the CR of CRLF, as for a line decoded in place.
void UuDecoder::end_partial_line(OutputBlock& out) noexcept {
  std::size_t n = static_cast<std::size_t>(partial_len_);
  partial_len_ = 0;
  if (last_ == '\r') --n;
  line(line_, n, out);
}

DecodeStatus UuDecoder::feed(const uint8_t* in, std::size_t len, ByteSink& sink) noexcept {
  OutputBlock out(out_, sink);
  const uint8_t* p = in;
  const uint8_t* const end = in + len;
  while (p != end && !done_) {
    const void* f = std::memchr(p, '\n', static_cast<std::size_t>(end - p));
    if (f == nullptr) {
      append(p, static_cast<std::size_t>(end - p));
      break;
    }
    const uint8_t* lf = static_cast<const uint8_t*>(f);
    if (partial_len_ == 0) {
      std::size_t n = static_cast<std::size_t>(lf - p);
      if (n > 0 && p[n - 1] == '\r') --n;  // the CR of CRLF
      line(p, n, out);
    } else {  // the line began in an earlier call
      append(p, static_cast<std::size_t>(lf - p));
      end_partial_line(out);
    }
    p = lf + 1;
  }
  out.flush();
  return out_.status(invalid_);
}

DecodeStatus UuDecoder::finish(ByteSink& sink) noexcept {
  OutputBlock out(out_, sink);
  if (partial_len_ != 0 && !done_) end_partial_line(out);  // the last line, without its line end
  partial_len_ = 0;
  out.flush();
  return out_.status(invalid_);
}

}  // namespace sluice::pipeline
