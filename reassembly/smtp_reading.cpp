#include "reassembly/smtp_reading.h"

#include <cstring>

namespace sluice::reassembly {

const char* smtp_reading_name(SmtpReadingKind k) noexcept {
  switch (k) {
    case SmtpReadingKind::none: return "primary";
    case SmtpReadingKind::one_message: return "one_message";
    case SmtpReadingKind::split: return "split";
  }
  return "primary";
}

void SmtpReading::start_one_message(bool at_line_start, SmtpReadingOutput& out) noexcept {
  kind_ = SmtpReadingKind::one_message;
  line_ = at_line_start ? Line::start : Line::in_line;
  out.reading_begin(kind_);
}

void SmtpReading::start_split() noexcept {
  kind_ = SmtpReadingKind::split;
  content_ = false;
  last_cr_ = true;
  cmd_len_ = line_len_ = 0;
  line_dot_only_ = false;
}

void SmtpReading::feed(const uint8_t* p, std::size_t n, SmtpReadingOutput& out) noexcept {
  if (kind_ == SmtpReadingKind::one_message) feed_strict(p, n, out);
  if (kind_ == SmtpReadingKind::split) feed_split(p, n, out);
}

void SmtpReading::stop(SmtpReadingOutput& out) noexcept {
  if (kind_ == SmtpReadingKind::one_message || (kind_ == SmtpReadingKind::split && content_)) out.reading_end(false);
  kind_ = SmtpReadingKind::none;
  content_ = false;
}

// RFC 5321 read strictly: a line ends at CRLF only; the content ends at CRLF "." CRLF; a leading
// dot of any other line is removed. The content is handed over in runs of the input.
void SmtpReading::feed_strict(const uint8_t* p, std::size_t n, SmtpReadingOutput& out) noexcept {
  std::size_t i = 0, run = 0;
  auto flush = [&](std::size_t end) {
    if (end > run) out.reading_data(p + run, end - run);
    run = end;
  };
  while (i < n) {
    switch (line_) {
      case Line::start:
        if (p[i] == '.') {
          flush(i);
          run = ++i;
          line_ = Line::dot;
        } else {
          line_ = Line::in_line;
        }
        break;
      case Line::dot:
        if (p[i] == '\r') {  // held back: ".\r\n" ends the content
          run = ++i;
          line_ = Line::dot_cr;
        } else {
          line_ = Line::in_line;  // a stuffed dot, removed
        }
        break;
      case Line::dot_cr:
        if (p[i] == '\n') {
          kind_ = SmtpReadingKind::none;
          out.reading_end(true);
          return;
        } else {
          static constexpr uint8_t kCr = '\r';
          out.reading_data(&kCr, 1);
          line_ = Line::cr;
        }
        break;
      case Line::in_line: {
        const auto* c = static_cast<const uint8_t*>(std::memchr(p + i, '\r', n - i));
        if (c == nullptr) {
          i = n;
        } else {
          i = static_cast<std::size_t>(c - p) + 1;
          line_ = Line::cr;
        }
        break;
      }
      case Line::cr:
        if (p[i] == '\n') {
          ++i;
          line_ = Line::start;
        } else if (p[i] == '\r') {
          ++i;
        } else {
          line_ = Line::in_line;
        }
        break;
    }
  }
  flush(n);
}

// A server that ends lines at CR, LF or CRLF: commands until DATA, then content lines until ".".
void SmtpReading::feed_split(const uint8_t* p, std::size_t n, SmtpReadingOutput& out) noexcept {
  std::size_t run = 0;  // content of the current line not yet handed over starts here
  auto flush = [&](std::size_t end) {
    if (content_ && end > run) out.reading_data(p + run, end - run);
    run = end;
  };
  for (std::size_t i = 0; i < n; ++i) {
    const uint8_t c = p[i];
    if (last_cr_ && c == '\n') {  // the LF of a CRLF: the line already ended
      last_cr_ = false;
      run = i + 1;
      continue;
    }
    last_cr_ = false;
    if (c == '\r' || c == '\n') {
      flush(i);
      run = i + 1;
      split_line_end(out);
      last_cr_ = c == '\r';
      continue;
    }
    if (!content_) {
      if (cmd_len_ < sizeof cmd_) cmd_[cmd_len_] = c;
      ++cmd_len_;
      run = i + 1;
      continue;
    }
    if (line_len_++ == 0 && c == '.') {  // held: a "." line ends the message, else it is stuffing
      line_dot_only_ = true;
      run = i + 1;
      continue;
    }
    line_dot_only_ = false;
  }
  flush(n);
}

void SmtpReading::split_line_end(SmtpReadingOutput& out) noexcept {
  if (!content_) {
    std::size_t k = cmd_len_ < sizeof cmd_ ? cmd_len_ : sizeof cmd_;
    while (k > 0 && (cmd_[k - 1] == ' ' || cmd_[k - 1] == '\t')) --k;
    const bool data = cmd_len_ <= sizeof cmd_ && k == 4 && (cmd_[0] | 0x20) == 'd' && (cmd_[1] | 0x20) == 'a' &&
                      (cmd_[2] | 0x20) == 't' && (cmd_[3] | 0x20) == 'a';
    cmd_len_ = 0;
    if (data) {
      content_ = true;
      line_len_ = 0;
      line_dot_only_ = false;
      out.reading_begin(SmtpReadingKind::split);
    }
    return;
  }
  if (line_dot_only_) {
    content_ = false;
    out.reading_end(true);
  } else {
    static constexpr uint8_t kCrLf[2] = {'\r', '\n'};
    out.reading_data(kCrLf, 2);
  }
  line_len_ = 0;
  line_dot_only_ = false;
}

}  // namespace sluice::reassembly
