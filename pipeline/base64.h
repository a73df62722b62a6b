// base64 Content-Transfer-Encoding decoder (RFC 2045 6.8), behind the Decoder interface of
// pipeline/decoder.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pipeline/decoder.h"

namespace sluice::pipeline {

// base64 (RFC 2045 6.8), tolerant as mail clients are: whitespace and line lengths of any size;
// characters outside the alphabet skipped and counted; '=' ends the current quantum (emitting
// its 1 or 2 bytes) and decoding resumes with the next alphabet character, so split or misplaced
// padding ("NA=\r\n=Mg\r\n==") yields every quantum ("42"); a final partial quantum of 2 or 3
// characters yields its 1 or 2 bytes, a lone final character is counted invalid.
//
// Details: the alphabet is RFC 4648 section 4 ("+/"; the URL-safe "-_" are counted invalid).
// Whitespace is SP, HT, CR and LF; skipped, not counted. A '=' with no pending quantum is skipped
// and not counted; a '=' after a lone character counts that character invalid, as the end of input
// does. Missing padding is not an error. Unused low bits of a partial quantum are ignored.
//
// Speed: runs of alphabet characters decode 32 characters per step with AVX2 where the CPU has it
// (chosen once at start; pipeline/base64_impl.h), else 8 per step through four 256-entry tables of
// pre-shifted 32-bit values ORed together, a sentinel bit flagging any lane that is not in the
// alphabet. Both step over a line break between whole quanta that ends a line of data (MIME's
// 76-character lines decode without leaving the fast path); the characters around other line
// breaks, padding and noise go one at a time. Output and counters do not depend on the path.
class Base64Decoder final : public Decoder {
 public:
  void reset(uint64_t max_output = 0) noexcept override;
  DecodeStatus feed(const uint8_t* in, std::size_t len, ByteSink& out) noexcept override;
  DecodeStatus finish(ByteSink& out) noexcept override;
  uint64_t invalid() const noexcept override { return invalid_; }
  uint64_t produced() const noexcept override { return out_.produced(); }
  // Quanta split by a line break, alphabet characters after padding ('=' then more data) or after
  // an empty line that follows data:
  // valid to this decoder, read otherwise by line-oriented and strict ones (mime_readings.h).
  uint64_t irregular() const noexcept override { return irregular_; }

 private:
  OutputLimit out_;
  uint64_t invalid_ = 0;
  uint64_t irregular_ = 0;
  bool padded_ = false;  // a '=' ended the last quantum
  bool at_line_start_ = false;  // the last character was a line break
  bool gap_ = false;            // an empty line after data
  bool data_ = false;           // an alphabet character was read
  uint32_t acc_ = 0;   // the 6-bit values of the pending quantum, oldest highest
  uint8_t count_ = 0;  // characters in the pending quantum, 0-3
};

}  // namespace sluice::pipeline
