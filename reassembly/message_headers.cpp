#include "reassembly/message_headers.h"

#include <strings.h>

namespace sluice::reassembly {

void MessageHeaderScan::reset() noexcept {
  state_ = State::line_start;
  field_ = Field::none;
  name_len_ = 0;
  name_too_long_ = false;
  seen_ = 0;
  subject_len_ = message_id_len_ = 0;
  has_subject_ = has_message_id_ = false;
  value_started_ = false;
}

void MessageHeaderScan::end_name() noexcept {
  field_ = Field::none;
  if (name_too_long_) return;
  const std::string_view name(name_, name_len_);
  auto is = [&](const char* want) {
    const std::size_t n = std::char_traits<char>::length(want);
    return name.size() == n && strncasecmp(name.data(), want, n) == 0;
  };
  // The first occurrence counts; a repeated field (RFC 5322 3.6 allows one) is ignored.
  if (is("subject") && !has_subject_) {
    field_ = Field::subject;
    has_subject_ = true;
  } else if (is("message-id") && !has_message_id_) {
    field_ = Field::message_id;
    has_message_id_ = true;
  }
}

void MessageHeaderScan::add_value(char c) noexcept {
  if (field_ == Field::none) return;
  if (!value_started_ && (c == ' ' || c == '\t')) return;
  value_started_ = true;
  char* buf = field_ == Field::subject ? subject_ : message_id_;
  std::size_t& len = field_ == Field::subject ? subject_len_ : message_id_len_;
  if (len < kMaxValue) buf[len++] = c;
}

void MessageHeaderScan::end_field() noexcept {
  // Trailing whitespace of a value is not part of it.
  if (field_ == Field::subject)
    while (subject_len_ && (subject_[subject_len_ - 1] == ' ' || subject_[subject_len_ - 1] == '\t')) --subject_len_;
  if (field_ == Field::message_id)
    while (message_id_len_ && (message_id_[message_id_len_ - 1] == ' ' || message_id_[message_id_len_ - 1] == '\t'))
      --message_id_len_;
  field_ = Field::none;
}

void MessageHeaderScan::feed(const uint8_t* data, std::size_t len) noexcept {
  for (std::size_t i = 0; i < len && state_ != State::done; ++i) {
    if (++seen_ > kMaxHeaderBytes) {
      end_field();
      state_ = State::done;
      break;
    }
    const char c = static_cast<char>(data[i]);
    switch (state_) {
      case State::line_start:
        if (c == ' ' || c == '\t') {  // folded continuation of the current field
          add_value(c);
          state_ = field_ == Field::none ? State::skip_line : State::value;
        } else if (c == '\n') {
          end_field();
          state_ = State::done;
        } else if (c == '\r') {
          state_ = State::blank_cr;
        } else {
          end_field();
          name_len_ = 0;
          name_too_long_ = false;
          name_[name_len_++] = c;
          state_ = State::name;
        }
        break;
      case State::blank_cr:  // CR at the start of a line: the blank line ending the header
        end_field();
        state_ = State::done;
        break;
      case State::name:
        if (c == ':') {
          end_name();
          value_started_ = false;
          state_ = State::value;
        } else if (c == '\n') {
          state_ = State::line_start;  // not a header field; RFC 5322 has no such line
        } else if (name_len_ < sizeof(name_)) {
          name_[name_len_++] = c;
        } else {
          name_too_long_ = true;
        }
        break;
      case State::value:
        if (c == '\n') {
          state_ = State::line_start;
        } else if (c != '\r') {
          add_value(c);
        }
        break;
      case State::skip_line:
        if (c == '\n') state_ = State::line_start;
        break;
      case State::done:
        break;
    }
  }
}

}  // namespace sluice::reassembly
