// Candidate lines for the MIME parser, found without looking at every byte in C++: lines that may
// be a boundary delimiter ("--..."), the start of a uuencoded block ("begin NNN ") or a header
// field that matters (Content-Type / -Disposition / -Transfer-Encoding). Two implementations of
// one job, measured against each other by scripts/bench-mime:
// - Hyperscan: a database compiled once (control plane, at start), one scratch per lcore, one
//   stream per session slot reset per message (hs_reset_stream: no allocation per message);
// - scalar: memchr over line ends, then a byte compare of each line's start.
// Offsets are from the start of the message; a candidate is reported once its first bytes are seen.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

struct hs_database;
struct hs_scratch;
struct hs_stream;

namespace sluice::pipeline {

enum class LineKind : uint8_t { delimiter, uuencode_begin, content_header };

// Receives candidates in increasing offset order within one scan call.
class CandidateSink {
 public:
  virtual ~CandidateSink() = default;
  // `line_start`: offset of the candidate line's first byte in the message.
  virtual void on_candidate(LineKind kind, uint64_t line_start) noexcept = 0;
};

class HyperscanPrefilter {
 public:
  // Control plane: compiles the database. nullptr with `error` set when Hyperscan refuses.
  static std::unique_ptr<HyperscanPrefilter> compile(std::string& error);
  ~HyperscanPrefilter();

  // One per lcore (hs_alloc_scratch); one stream per session slot, reused across messages.
  struct Scratch {
    hs_scratch* s = nullptr;
    ~Scratch();
  };
  struct Stream {
    hs_stream* s = nullptr;
    ~Stream();
  };
  std::unique_ptr<Scratch> make_scratch() const;
  std::unique_ptr<Stream> make_stream() const;

  // A new message on `stream` (the message starts at a line start).
  void reset(Stream& stream, Scratch& scratch) const noexcept;
  void scan(Stream& stream, Scratch& scratch, const uint8_t* data, std::size_t len, CandidateSink& sink) const noexcept;

 private:
  HyperscanPrefilter() = default;
  hs_database* db_ = nullptr;
};

// The same candidates by memchr; state is the offset and the last bytes of the previous call.
class ScalarPrefilter {
 public:
  void reset() noexcept;
  void scan(const uint8_t* data, std::size_t len, CandidateSink& sink) noexcept;
  // End of the message: classifies a last line shorter than kHead.
  void finish(CandidateSink& sink) noexcept;

 private:
  static constexpr std::size_t kHead = 32;  // enough of a line to classify it
  // Classifies a line from its first `n` bytes (the whole line when n < kHead).
  static void classify(const uint8_t* line, std::size_t n, uint64_t start, CandidateSink& sink) noexcept;
  uint64_t offset_ = 0;        // message offset of the next byte
  uint8_t head_[kHead];        // first bytes of a line that began in an earlier call
  std::size_t head_len_ = 0;
  uint64_t head_start_ = 0;
  bool collecting_ = true;     // a line start is pending (the message starts with one)
};

}  // namespace sluice::pipeline
