#include "reassembly/message_headers.h"

#include <strings.h>

namespace sluice::reassembly {

void MessageHeaderScan::reset() noexcept {
  state_ = State::line_start;
  field_ = Field::none;
  name_len_ = 0;
  name_too_long_ = false;
  seen_ = 0;
  for (int f = 0; f < kFields; ++f) {
    lens_[f] = 0;
    has_[f] = false;
  }
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
  static constexpr struct {
    const char* name;
    Field field;
  } kNames[] = {{"subject", Field::subject}, {"message-id", Field::message_id}, {"from", Field::from},
                {"to", Field::to}, {"cc", Field::cc}};
  for (const auto& k : kNames)
    if (is(k.name)) {
      if (!has_[static_cast<int>(k.field)]) {
        field_ = k.field;
        has_[static_cast<int>(k.field)] = true;
      }
      return;
    }
}

void MessageHeaderScan::add_value(char c) noexcept {
  if (field_ == Field::none) return;
  if (!value_started_ && (c == ' ' || c == '\t')) return;
  value_started_ = true;
  const int f = static_cast<int>(field_);
  if (lens_[f] < kMaxValue) values_[f][lens_[f]++] = c;
}

void MessageHeaderScan::end_field() noexcept {
  // Trailing whitespace of a value is not part of it.
  if (field_ != Field::none) {
    const int f = static_cast<int>(field_);
    while (lens_[f] && (values_[f][lens_[f] - 1] == ' ' || values_[f][lens_[f] - 1] == '\t')) --lens_[f];
  }
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
