// A JSON object written into a fixed buffer: how the control side renders event records
// (control/event_render.h) without allocating per event. Strings from the wire are escaped; bytes that are not valid UTF-8 become U+FFFD, so
// the line is always valid JSON. When the buffer would overflow, the writer stops adding values
// and marks the line truncated: close() still produces a valid object with "truncated":true.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace sluice::control {

class JsonLine {
 public:
  JsonLine(char* buf, std::size_t cap) noexcept : buf_(buf), cap_(cap) {}

  void begin_object() noexcept { open('{'); }
  void end_object() noexcept { close_scope('}'); }
  void begin_array() noexcept { open('['); }
  void end_array() noexcept { close_scope(']'); }
  JsonLine& key(std::string_view k) noexcept {
    comma();
    string(k);
    put(':');
    after_key_ = true;
    return *this;
  }
  void str(std::string_view v) noexcept {
    comma();
    string(v);
  }
  void num(uint64_t v) noexcept {
    comma();
    char t[24];
    const int n = std::snprintf(t, sizeof(t), "%llu", static_cast<unsigned long long>(v));
    raw(t, static_cast<std::size_t>(n));
  }
  void boolean(bool v) noexcept {
    comma();
    v ? raw("true", 4) : raw("false", 5);
  }
  void null() noexcept {
    comma();
    raw("null", 4);
  }
  // A value already in JSON form (a nested object written by another JsonLine, a number string).
  void raw_value(std::string_view json) noexcept {
    comma();
    raw(json.data(), json.size());
  }

  // Members already rendered as JSON text (`"a":1,"b":[2]`), spliced into the open object.
  void raw_members(std::string_view members) noexcept {
    if (members.empty()) return;
    comma();
    raw(members.data(), members.size());
  }

  // Closes every open scope (adding "truncated":true to the outer object if text was lost) and
  // returns the line, without a newline.
  std::string_view finish() noexcept {
    if (truncated_) {
      // Back to the end of the last complete value (a string, key or escape may have been cut),
      // then, with the reserve kept for this, drop to the outer object and say so.
      len_ = checkpoint_len_;
      depth_ = checkpoint_depth_;
      while (depth_ > 1) close_scope(scopes_[depth_ - 1] == '{' ? '}' : ']', true);
      force(",\"truncated\":true");
    }
    while (depth_ > 0) close_scope(scopes_[depth_ - 1] == '{' ? '}' : ']', true);
    return {buf_, len_};
  }
  bool truncated() const noexcept { return truncated_; }

 private:
  static constexpr std::size_t kReserve = 64;  // kept free for closing brackets and the marker
  static constexpr int kMaxDepth = 16;

  void open(char c) noexcept {
    comma();
    if (depth_ == kMaxDepth) {
      truncated_ = true;
      return;
    }
    put(c);
    scopes_[depth_++] = c;
    first_ = true;
  }
  void close_scope(char c, bool forced = false) noexcept {
    if (depth_ == 0) return;
    --depth_;
    forced ? force(std::string_view(&c, 1)) : put(c);
    first_ = false;
  }
  void comma() noexcept {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!truncated_) {  // everything before this member or element is complete
      checkpoint_len_ = len_;
      checkpoint_depth_ = depth_;
    }
    if (!first_) put(',');
    first_ = false;
  }
  void put(char c) noexcept { raw(&c, 1); }
  void raw(const char* s, std::size_t n) noexcept {
    if (truncated_ || len_ + n + kReserve > cap_) {
      truncated_ = true;
      return;
    }
    if (n == 0) return;  // an empty view may carry a null pointer: memcpy must not see it
    std::memcpy(buf_ + len_, s, n);
    len_ += n;
  }
  void force(std::string_view s) noexcept {
    const std::size_t n = s.size() < cap_ - len_ ? s.size() : cap_ - len_;
    if (n == 0) return;
    std::memcpy(buf_ + len_, s.data(), n);
    len_ += n;
  }
  void string(std::string_view s) noexcept;

  char* buf_;
  std::size_t cap_;
  std::size_t len_ = 0;
  char scopes_[kMaxDepth];
  int depth_ = 0;
  std::size_t checkpoint_len_ = 0;
  int checkpoint_depth_ = 0;
  bool first_ = true;
  bool after_key_ = false;
  bool truncated_ = false;
};

inline void JsonLine::string(std::string_view s) noexcept {
  put('"');
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n && !truncated_) {
    const uint8_t c = p[i];
    if (c == '"' || c == '\\') {
      const char esc[2] = {'\\', static_cast<char>(c)};
      raw(esc, 2);
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof(esc), "\\u%04x", c);
      raw(esc, 6);
      ++i;
    } else if (c < 0x80) {
      put(static_cast<char>(c));
      ++i;
    } else {
      // Validate one UTF-8 sequence (RFC 3629): copy it whole, or write U+FFFD for the lead byte.
      std::size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
      bool ok = len != 0 && i + len <= n;
      for (std::size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xc0) == 0x80;
      if (ok && len == 3) ok = !(c == 0xe0 && p[i + 1] < 0xa0) && !(c == 0xed && p[i + 1] >= 0xa0);
      if (ok && len == 4) ok = !(c == 0xf0 && p[i + 1] < 0x90) && !(c == 0xf4 && p[i + 1] >= 0x90);
      if (ok) {
        raw(reinterpret_cast<const char*>(p + i), len);
        i += len;
      } else {
        raw("\xef\xbf\xbd", 3);
        ++i;
      }
    }
  }
  put('"');
}

}  // namespace sluice::control
