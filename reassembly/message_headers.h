// Streaming scan of a message's top-level header block for the fields an SMTP event reports
// (Subject, Message-ID, From, To, Cc: the first occurrence of each, its first kMaxValue octets). Bytes in, split anywhere; stops at the blank line that ends the header
// (RFC 5322 2.1) or after kMaxHeaderBytes. Folded fields are unfolded (RFC 5322 2.2.3: the line
// break is removed, the whitespace kept). Values are kept raw (RFC 2047 decoding belongs to MIME).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::reassembly {

class MessageHeaderScan {
 public:
  static constexpr std::size_t kMaxValue = 998;            // RFC 5322 2.1.1 line limit, per value
  static constexpr std::size_t kMaxHeaderBytes = 256 * 1024; // a header block beyond this is not read

  void reset() noexcept;
  void feed(const uint8_t* data, std::size_t len) noexcept;
  bool done() const noexcept { return state_ == State::done; }

  std::string_view subject() const noexcept { return value(Field::subject); }
  std::string_view message_id() const noexcept { return value(Field::message_id); }
  std::string_view from() const noexcept { return value(Field::from); }
  std::string_view to() const noexcept { return value(Field::to); }
  std::string_view cc() const noexcept { return value(Field::cc); }
  bool has_subject() const noexcept { return has_[static_cast<int>(Field::subject)]; }
  bool has_message_id() const noexcept { return has_[static_cast<int>(Field::message_id)]; }

 private:
  enum class State : uint8_t { line_start, name, value, skip_line, blank_cr, done };
  enum class Field : uint8_t { subject, message_id, from, to, cc, none };
  static constexpr int kFields = static_cast<int>(Field::none);
  std::string_view value(Field f) const noexcept {
    return {values_[static_cast<int>(f)], lens_[static_cast<int>(f)]};
  }
  void end_name() noexcept;
  void add_value(char c) noexcept;
  void end_field() noexcept;

  State state_ = State::line_start;
  Field field_ = Field::none;
  char name_[16];
  std::size_t name_len_ = 0;
  bool name_too_long_ = false;
  std::size_t seen_ = 0;
  char values_[kFields][kMaxValue];
  std::size_t lens_[kFields] = {};
  bool has_[kFields] = {};
  bool value_started_ = false;
};

}  // namespace sluice::reassembly
