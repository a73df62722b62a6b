// The other reading of an ambiguous DATA stream (SMTP smuggling, RFC 5321 4.1.1.4 and 2.3.8).
//
// Servers disagree on what ends DATA when a bare LF or a bare CR stands next to the dot. The
// session's own (primary) reading ends DATA at the bare-LF forms (`<LF>.<LF>`, `<CR><LF>.<LF>`,
// `<LF>.<CR><LF>`) and reads on through `<CR>.<CR>`. A server that reads the other way sees other
// messages, so each such stream gets its other reading too, from the point where the two part:
//  - one_message (after a bare-LF terminator): the strict reading, lines end at CRLF only, the
//    content goes on until CRLF "." CRLF, dot-unstuffed at CRLF line starts. The content before
//    the terminator is the primary message's (the observer resumes from its MIME state).
//  - split (after `<CR>.<CR>`, or a "." line ended by a bare CR, inside content): the reading of a
//    server that ends lines at a bare CR too. What follows is commands; each DATA starts a message
//    whose content runs to a "." line (line ends CR, LF or CRLF, handed over as CRLF; dot-unstuffed).
//    It ends where the primary reading's DATA ends.
// Fixed-size state, no allocation; fed the client's octets in order (wire bytes).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::reassembly {

enum class SmtpReadingKind : uint8_t { none, one_message, split };
const char* smtp_reading_name(SmtpReadingKind k) noexcept;

class SmtpReadingOutput {
 public:
  virtual ~SmtpReadingOutput() = default;
  // A message of the reading begins (one_message: the continuation of the primary's message).
  virtual void reading_begin(SmtpReadingKind kind) noexcept = 0;
  virtual void reading_data(const uint8_t* data, std::size_t len) noexcept = 0;
  virtual void reading_end(bool complete) noexcept = 0;
};

class SmtpReading {
 public:
  // `at_line_start`: the octet before the terminator's dot ended a CRLF line.
  void start_one_message(bool at_line_start, SmtpReadingOutput& out) noexcept;
  // Right after the CR that ended the "." line (an LF next belongs to it).
  void start_split() noexcept;
  bool active() const noexcept { return kind_ != SmtpReadingKind::none; }
  SmtpReadingKind kind() const noexcept { return kind_; }
  void feed(const uint8_t* p, std::size_t n, SmtpReadingOutput& out) noexcept;
  // The primary's DATA ended (split), bytes were lost, or the connection ended: an open message of
  // the reading ends incomplete, and the reading is over.
  void stop(SmtpReadingOutput& out) noexcept;

 private:
  enum class Line : uint8_t { start, dot, dot_cr, in_line, cr };
  void feed_strict(const uint8_t* p, std::size_t n, SmtpReadingOutput& out) noexcept;
  void feed_split(const uint8_t* p, std::size_t n, SmtpReadingOutput& out) noexcept;
  void split_line_end(SmtpReadingOutput& out) noexcept;

  SmtpReadingKind kind_ = SmtpReadingKind::none;
  Line line_ = Line::start;
  // split: in a message's content (else commands); the current line (commands: its first octets;
  // content: whether it is "." so far); a CR just ended a line.
  bool content_ = false;
  bool last_cr_ = false;
  uint8_t cmd_[8];
  std::size_t cmd_len_ = 0;
  std::size_t line_len_ = 0;
  bool line_dot_only_ = false;
};

}  // namespace sluice::reassembly
