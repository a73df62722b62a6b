#include "pipeline/quoted_printable.h"

#include <array>
#include <bit>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "pipeline/output_block.h"

namespace sluice::pipeline {

namespace {

constexpr bool is_ws(uint8_t c) { return c == ' ' || c == '\t'; }

constexpr std::array<uint8_t, 256> make_hex() {
  std::array<uint8_t, 256> h{};
  for (auto& x : h) x = 0xff;
  for (int i = 0; i < 10; ++i) h['0' + i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 6; ++i) {
    h['A' + i] = static_cast<uint8_t>(10 + i);
    h['a' + i] = static_cast<uint8_t>(10 + i);  // RFC 2045 6.7 (1): lower case should be accepted
  }
  return h;
}
constexpr std::array<uint8_t, 256> kHex = make_hex();

// The first byte at or after p that the fast path must look at, or end: an '=', or a SP/HT right
// before a CR or LF (the last of a possibly trailing whitespace run). Everything else, line breaks
// included, decodes to itself. SSE2 (x86-64 baseline) tests 16 positions a step; a byte loop
// elsewhere and for the last bytes.
inline bool stop_at(const uint8_t* p, const uint8_t* end) noexcept {
  return *p == '=' || (is_ws(*p) && p + 1 != end && (p[1] == '\r' || p[1] == '\n'));
}

inline const uint8_t* find_special(const uint8_t* p, const uint8_t* end) noexcept {
#if defined(__SSE2__)
  const __m128i eq = _mm_set1_epi8('=');
  const __m128i sp = _mm_set1_epi8(' ');
  const __m128i ht = _mm_set1_epi8('\t');
  const __m128i cr = _mm_set1_epi8('\r');
  const __m128i lf = _mm_set1_epi8('\n');
  while (end - p >= 17) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i next = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 1));
    const __m128i ws = _mm_or_si128(_mm_cmpeq_epi8(v, sp), _mm_cmpeq_epi8(v, ht));
    const __m128i brk = _mm_or_si128(_mm_cmpeq_epi8(next, cr), _mm_cmpeq_epi8(next, lf));
    const __m128i stop = _mm_or_si128(_mm_cmpeq_epi8(v, eq), _mm_and_si128(ws, brk));
    const unsigned hits = static_cast<unsigned>(_mm_movemask_epi8(stop));
    if (hits != 0) return p + std::countr_zero(hits);
    p += 16;
  }
#endif
  while (p != end && !stop_at(p, end)) ++p;
  return p;
}

}  // namespace

void QuotedPrintableDecoder::reset(uint64_t max_output) noexcept {
  out_.reset(max_output);
  invalid_ = 0;
  state_ = State::text;
  hex_ = 0;
  ws_long_ = false;
  ws_len_ = 0;
}

void QuotedPrintableDecoder::push_ws(uint8_t c, OutputBlock& out) noexcept {
  if (ws_long_) {
    out.put(c);
    return;
  }
  if (ws_len_ < kMaxTrailingWhitespace) {
    ws_[ws_len_++] = c;
    return;
  }
  // The run outgrew the limit: it is content. After "=", the "=" was a bad escape.
  if (state_ == State::eq_ws) {
    bad_escape(out);
    state_ = State::ws;
  }
  out.put(ws_, ws_len_);
  out.put(c);
  ws_len_ = 0;
  ws_long_ = true;
}

void QuotedPrintableDecoder::emit_ws(OutputBlock& out) noexcept {
  out.put(ws_, ws_len_);
  drop_ws();
}

void QuotedPrintableDecoder::drop_ws() noexcept {
  ws_len_ = 0;
  ws_long_ = false;
}

void QuotedPrintableDecoder::bad_escape(OutputBlock& out) noexcept {
  out.put('=');
  ++invalid_;
}

// The reference state machine, one byte at a time. The fast path in feed() only takes shortcuts
// that give the same result.
void QuotedPrintableDecoder::step(uint8_t c, OutputBlock& out) noexcept {
  for (;;) {  // a transition that ends a pending sequence hands `c` on to the text state
    switch (state_) {
      case State::text:
        if (is_ws(c)) {
          state_ = State::ws;
          push_ws(c, out);
        } else if (c == '=') {
          state_ = State::eq;
        } else {
          out.put(c);
        }
        return;
      case State::ws:
        if (is_ws(c)) {
          push_ws(c, out);
          return;
        }
        if (c == '\r') {
          state_ = State::ws_cr;
          return;
        }
        if (c == '\n') {  // trailing whitespace before a hard line break: deleted
          drop_ws();
          out.put(c);
          state_ = State::text;
          return;
        }
        emit_ws(out);
        state_ = State::text;
        continue;
      case State::ws_cr:
        if (c == '\n') {
          drop_ws();
          out.put('\r');
          out.put('\n');
          state_ = State::text;
          return;
        }
        emit_ws(out);  // a bare CR is content: the run before it was not trailing
        out.put('\r');
        state_ = State::text;
        continue;
      case State::eq:
        if (kHex[c] < 16) {
          hex_ = c;
          state_ = State::eq_hex;
          return;
        }
        if (is_ws(c)) {
          state_ = State::eq_ws;
          push_ws(c, out);
          return;
        }
        if (c == '\r') {
          state_ = State::eq_ws_cr;
          return;
        }
        if (c == '\n') {  // soft line break
          state_ = State::text;
          return;
        }
        bad_escape(out);
        state_ = State::text;
        continue;
      case State::eq_hex:
        if (kHex[c] < 16) {
          out.put(static_cast<uint8_t>(kHex[hex_] << 4 | kHex[c]));
          state_ = State::text;
          return;
        }
        bad_escape(out);
        out.put(hex_);
        state_ = State::text;
        continue;
      case State::eq_ws:
        if (is_ws(c)) {
          push_ws(c, out);
          return;
        }
        if (c == '\r') {
          state_ = State::eq_ws_cr;
          return;
        }
        if (c == '\n') {  // soft line break, with whitespace after the "="
          drop_ws();
          state_ = State::text;
          return;
        }
        bad_escape(out);
        state_ = State::ws;  // the whitespace is content, and `c` ends its run
        continue;
      case State::eq_ws_cr:
        if (c == '\n') {  // soft line break
          drop_ws();
          state_ = State::text;
          return;
        }
        bad_escape(out);
        state_ = State::ws_cr;  // whitespace and a bare CR, all content
        continue;
    }
  }
}

DecodeStatus QuotedPrintableDecoder::feed(const uint8_t* in, std::size_t len, ByteSink& sink) noexcept {
  OutputBlock out(out_, sink);
  const uint8_t* p = in;
  const uint8_t* const end = in + len;
  while (p != end) {
    if (state_ != State::text) {
      step(*p++, out);
      continue;
    }
    // Fast path: nothing pending. [span, p) decodes to itself so far.
    const uint8_t* span = p;
    const uint8_t* eq;  // the next '=', or end
    for (;;) {
      const uint8_t* q = find_special(p, end);
      if (q == end || *q == '=') {
        eq = q;
        break;
      }
      // q ends a whitespace run followed by CR or LF.
      const uint8_t* brk = q + 1;
      if (*brk == '\r') {
        if (brk + 1 == end) {  // CR LF or a bare CR? The next call tells: keep it all pending.
          eq = end;
          break;
        }
        if (brk[1] != '\n') {  // a bare CR is content, and so is the run before it
          p = brk + 1;
          continue;
        }
      }
      // Before a hard line break: delete the run.
      const uint8_t* w = q;
      while (w > span && is_ws(w[-1])) --w;
      if (static_cast<std::size_t>(brk - w) <= kMaxTrailingWhitespace) {
        out.put(span, static_cast<std::size_t>(w - span));
        span = brk;
      }
      p = brk;
    }
    if (eq == end) {
      // No '=' up to the end: a whitespace run (maybe then a CR) at the end may be trailing on
      // its line, so it stays pending.
      const uint8_t* t = end;
      const bool cr = t > span && t[-1] == '\r';
      if (cr) --t;
      const uint8_t* w = t;
      while (w > span && is_ws(w[-1])) --w;
      if (w == t) {
        out.put(span, static_cast<std::size_t>(end - span));  // a CR alone is content already
      } else if (static_cast<std::size_t>(t - w) <= kMaxTrailingWhitespace) {
        out.put(span, static_cast<std::size_t>(w - span));
        ws_len_ = static_cast<uint16_t>(t - w);
        std::memcpy(ws_, w, ws_len_);
        state_ = cr ? State::ws_cr : State::ws;
      } else {
        out.put(span, static_cast<std::size_t>(t - span));
        ws_long_ = true;
        state_ = cr ? State::ws_cr : State::ws;
      }
      break;
    }
    // An '=' before the next LF: the whitespace before it is content.
    out.put(span, static_cast<std::size_t>(eq - span));
    p = eq;
    // Inline the usual escapes, several in a row for binary-heavy bodies.
    while (end - p >= 3 && p[0] == '=') {
      const uint8_t hi = kHex[p[1]];
      const uint8_t lo = kHex[p[2]];
      if ((hi | lo) < 16) {
        out.put(static_cast<uint8_t>(hi << 4 | lo));
      } else if (p[1] != '\r' || p[2] != '\n') {
        break;
      }
      p += 3;
    }
    if (p != end && p[0] == '=') {
      if (end - p >= 2 && p[1] == '\n') {
        p += 2;
      } else {
        step(*p++, out);  // anything else, and sequences split by the end of input
      }
    }
  }
  out.flush();
  return out_.status(invalid_);
}

DecodeStatus QuotedPrintableDecoder::finish(ByteSink& sink) noexcept {
  OutputBlock out(out_, sink);
  switch (state_) {
    case State::text:
      break;
    case State::ws:  // trailing whitespace of the last line: deleted (unless long, emitted)
      drop_ws();
      break;
    case State::ws_cr:  // a bare CR at the end is content, and so is the run before it
      emit_ws(out);
      out.put('\r');
      break;
    case State::eq:  // "=" (+ whitespace) at the end: a soft line break, see the header
    case State::eq_ws:
      drop_ws();
      break;
    case State::eq_hex:
      bad_escape(out);
      out.put(hex_);
      break;
    case State::eq_ws_cr:  // "=\r" at the end: CR is not a line break, so a bad escape
      bad_escape(out);
      emit_ws(out);
      out.put('\r');
      break;
  }
  state_ = State::text;
  out.flush();
  return out_.status(invalid_);
}

}  // namespace sluice::pipeline
