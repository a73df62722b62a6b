// uuencode decoder (POSIX uuencode, historical algorithm), behind the Decoder interface of
// pipeline/decoder.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pipeline/decoder.h"

namespace sluice::pipeline {

class OutputBlock;  // pipeline/output_block.h, internal

// uuencode (POSIX uuencode; the body after a "begin MODE NAME" line, up to the "end" line): each
// line's first character gives its decoded length; both ' ' and '`' encode zero; lines that do
// not fit are counted invalid and skipped. The "end" line (or "`"/empty line then "end") finishes.
//
// Details:
// - Lines end with LF or CRLF; the last line may lack its line end (finish() decodes it).
// - A line's first character c gives (c - 0x20) & 0x3f bytes; each 4 characters give 3 bytes,
//   (c - 0x20) & 0x3f each. A line shorter than its length needs is read as if padded with ' '
//   (mailers strip trailing spaces); characters after the needed ones are ignored (padding, the
//   checksum character some encoders add).
// - A line is garbage, counted invalid (all its characters) and skipped, when a character it uses
//   (or any it carries) is outside ' '..'`' (0x20-0x60), or when it is longer than kMaxLine.
// - An empty line is a zero-length line (its ' ' removed by a mailer): no output, not counted.
// - The line "end" (trailing spaces/tabs allowed) sets done(); what follows is not read at all.
//   Input that ends without it leaves done() false, the status is unaffected: the caller decides
//   (an attachment cut short).
class UuDecoder final : public Decoder {
 public:
  // 1 length character + 84 for the longest line (63 bytes) + a checksum and padding; POSIX
  // uuencode writes 61 characters.
  static constexpr std::size_t kMaxLine = 128;

  void reset(uint64_t max_output = 0) noexcept override;
  DecodeStatus feed(const uint8_t* in, std::size_t len, ByteSink& out) noexcept override;
  DecodeStatus finish(ByteSink& out) noexcept override;
  uint64_t invalid() const noexcept override { return invalid_; }
  uint64_t produced() const noexcept override { return out_.produced(); }
  // The "end" line was seen.
  bool done() const noexcept { return done_; }

 private:
  // A whole line without its line end; `len` may exceed kMaxLine (then only its length is used).
  void line(const uint8_t* s, std::size_t len, OutputBlock& out) noexcept;
  void append(const uint8_t* s, std::size_t len) noexcept;
  void end_partial_line(OutputBlock& out) noexcept;

  OutputLimit out_;
  uint64_t invalid_ = 0;
  uint64_t partial_len_ = 0;  // characters of the current line seen so far (line_ holds the first)
  bool done_ = false;
  uint8_t last_ = 0;  // the last character of the current line
  uint8_t line_[kMaxLine + 1];  // + the CR of a line of exactly kMaxLine
};

}  // namespace sluice::pipeline
