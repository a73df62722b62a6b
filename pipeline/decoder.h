// Content-Transfer-Encoding decoders (RFC 2045 section 6): one small interface, one class per
// encoding, as Snort's DataDecode subclasses. Each decoder streams: the encoded input may be split
// anywhere between calls (inside a base64 quantum, inside "=\r\n", inside a uuencoded line) and the
// output is the same as for the whole input at once. No exceptions, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::pipeline {

enum class DecodeStatus : uint8_t {
  ok,
  exceeded,   // the output limit was reached: output stopped there, input is still consumed
  malformed,  // invalid input was met (skipped or kept literally, see each decoder); output goes on
};

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual void on_bytes(const uint8_t* data, std::size_t len) noexcept = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Forgets all state; `max_output` bytes at most will be produced (0: no limit).
  virtual void reset(uint64_t max_output = 0) noexcept = 0;
  // Decodes the next piece of input. Decoded bytes go to `out`, possibly in several calls.
  // Returns the worst status met so far (malformed stays malformed; exceeded wins over both).
  virtual DecodeStatus feed(const uint8_t* in, std::size_t len, ByteSink& out) noexcept = 0;
  // End of input: flushes what is pending (a partial base64 quantum, a partial line).
  virtual DecodeStatus finish(ByteSink& out) noexcept = 0;
  // Input characters that were invalid (skipped or kept literally) so far.
  virtual uint64_t invalid() const noexcept = 0;
  // Bytes produced so far.
  virtual uint64_t produced() const noexcept = 0;
  // Input that decodes, but that another decoder would read differently (base64: a quantum
  // running across a line break, data after padding). 0 unless the decoder tracks it.
  virtual uint64_t irregular() const noexcept { return 0; }
};

// What a decoder produces goes through an OutputLimit: it counts the bytes and stops them at the
// limit given to reset(). `exceeded` means at least one byte was dropped, so an output of exactly
// the limit is still `ok`. Decoders go on parsing input after the limit (invalid() keeps counting)
// so that every count is the same however the input was split; a caller may stop feeding instead.
class OutputLimit {
 public:
  void reset(uint64_t max_output) noexcept {
    max_ = max_output;
    produced_ = 0;
    exceeded_ = false;
  }
  void emit(const uint8_t* data, std::size_t len, ByteSink& out) noexcept {
    if (max_ != 0 && len > max_ - produced_) {
      len = static_cast<std::size_t>(max_ - produced_);
      exceeded_ = true;
    }
    if (len != 0) {
      out.on_bytes(data, len);
      produced_ += len;
    }
  }
  uint64_t produced() const noexcept { return produced_; }
  DecodeStatus status(uint64_t invalid) const noexcept {
    if (exceeded_) return DecodeStatus::exceeded;
    return invalid != 0 ? DecodeStatus::malformed : DecodeStatus::ok;
  }

 private:
  uint64_t max_ = 0;
  uint64_t produced_ = 0;
  bool exceeded_ = false;
};

// 7bit, 8bit, binary and unknown encodings: the bytes themselves, handed on without a copy.
class IdentityDecoder final : public Decoder {
 public:
  void reset(uint64_t max_output = 0) noexcept override { out_.reset(max_output); }
  DecodeStatus feed(const uint8_t* in, std::size_t len, ByteSink& out) noexcept override {
    out_.emit(in, len, out);
    return out_.status(0);
  }
  DecodeStatus finish(ByteSink&) noexcept override { return out_.status(0); }
  uint64_t invalid() const noexcept override { return 0; }
  uint64_t produced() const noexcept override { return out_.produced(); }

 private:
  OutputLimit out_;
};

// The other decoders, one header each: Base64Decoder (pipeline/base64.h), QuotedPrintableDecoder
// (pipeline/quoted_printable.h), UuDecoder (pipeline/uudecode.h).

}  // namespace sluice::pipeline
