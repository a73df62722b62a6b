// quoted-printable Content-Transfer-Encoding decoder (RFC 2045 6.7), behind the Decoder interface
// of pipeline/decoder.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pipeline/decoder.h"

namespace sluice::pipeline {

class OutputBlock;  // pipeline/output_block.h, internal

// quoted-printable (RFC 2045 6.7): "=XX" (either case) decodes; "=" + optional whitespace + line
// break is a soft line break; any other "=" sequence is kept literally and counted; line breaks
// are kept as they are.
//
// Details:
// - A line break is CRLF or a bare LF. A bare CR is content (kept, and it ends a whitespace run).
// - Trailing whitespace: RFC 2045 6.7 rule (3) says a decoder should delete the spaces and tabs
//   at the end of a line (transport may have added them), so a run of SP/HT right before a hard
//   line break, or at the end of the input, is deleted. A run longer than kMaxTrailingWhitespace
//   is content and kept (the limit keeps the pending state bounded; no sane line has one).
// - Soft line break: "=", then up to kMaxTrailingWhitespace SP/HT, then CRLF or LF. Also at the
//   end of the input: "=" (plus whitespace) there is a soft line break whose CRLF went to the MIME
//   delimiter that follows the body (RFC 2046 5.1.1), so it is neither kept nor counted.
// - Bad escapes ("=ZZ", "=4", "= x", "=\r" not followed by LF, "=" + an over-long run): the "="
//   is kept literally and counted as one invalid character, and decoding goes on right after it.
// - Other bytes that RFC 2045 would not allow (8-bit, controls, long lines) are kept, not counted.
//
// Speed: a memchr-like SSE2 scan (16 bytes a step) jumps to the next "=" or whitespace before a
// line break, across lines; spans of input that decode to themselves go to the sink without a copy
// when long; "=XX" and "=CRLF" are decoded inline; only unusual sequences go through the
// byte-at-a-time state machine.
class QuotedPrintableDecoder final : public Decoder {
 public:
  static constexpr std::size_t kMaxTrailingWhitespace = 998;  // RFC 5322 2.1.1: 998-octet lines

  void reset(uint64_t max_output = 0) noexcept override;
  DecodeStatus feed(const uint8_t* in, std::size_t len, ByteSink& out) noexcept override;
  DecodeStatus finish(ByteSink& out) noexcept override;
  uint64_t invalid() const noexcept override { return invalid_; }
  uint64_t produced() const noexcept override { return out_.produced(); }

 private:
  // What is pending after the bytes seen so far.
  enum class State : uint8_t {
    text,      // nothing
    ws,        // a whitespace run (in ws_, or already emitted when ws_long_)
    ws_cr,     // a whitespace run then CR
    eq,        // "="
    eq_hex,    // "=" and one hex digit (hex_)
    eq_ws,     // "=" then whitespace (in ws_)
    eq_ws_cr,  // "=", maybe whitespace, then CR
  };

  void step(uint8_t c, OutputBlock& out) noexcept;
  void push_ws(uint8_t c, OutputBlock& out) noexcept;
  void emit_ws(OutputBlock& out) noexcept;
  void drop_ws() noexcept;
  void bad_escape(OutputBlock& out) noexcept;

  OutputLimit out_;
  uint64_t invalid_ = 0;
  State state_ = State::text;
  uint8_t hex_ = 0;
  bool ws_long_ = false;  // the pending run outgrew ws_: it was emitted and its rest is emitted too
  uint16_t ws_len_ = 0;
  uint8_t ws_[kMaxTrailingWhitespace];
};

}  // namespace sluice::pipeline
