// The other readings' decoders (mime_readings.h). Scalar, one character at a time: they run only
// on parts found ambiguous, never on the common path.
#include "pipeline/mime_readings.h"

#include <cstring>

#include "pipeline/mime_chars.h"
#include "pipeline/output_block.h"

namespace sluice::pipeline {

namespace {

const char* const kNames[] = {"primary",       "cte_base64", "cte_quoted_printable", "cte_identity",
                              "base64_lines",  "base64_strict", "qp_lenient",        "qp_lf",
                              "raw_lf",        "header_junk_skipped", "header_junk_separator",
                              "header_lenient"};
static_assert(sizeof kNames / sizeof kNames[0] == std::size_t(MimeReading::count_));

bool space(uint8_t c) noexcept { return c == ' ' || c == '\t' || c == '\r'; }

// The 1 or 2 bytes of a partial quantum of 2 or 3 characters.
void put_partial(OutputBlock& block, uint32_t acc, uint8_t count) noexcept {
  if (count == 2) {
    block.put(static_cast<uint8_t>(acc >> 4));
  } else if (count == 3) {
    block.put(static_cast<uint8_t>(acc >> 10));
    block.put(static_cast<uint8_t>(acc >> 2));
  }
}

// One more 6-bit value into the pending quantum; a full quantum gives its 3 bytes.
void push(uint32_t& acc, uint8_t& count, int v, OutputBlock& block) noexcept {
  acc = (acc << 6) | uint32_t(v);
  if (++count < 4) return;
  block.put(static_cast<uint8_t>(acc >> 16));
  block.put(static_cast<uint8_t>(acc >> 8));
  block.put(static_cast<uint8_t>(acc));
  acc = 0;
  count = 0;
}

}  // namespace

const char* mime_reading_name(MimeReading r) noexcept {
  return unsigned(r) < unsigned(MimeReading::count_) ? kNames[unsigned(r)] : "unknown";
}

// ---- base64_lines ----

void Base64LinesDecoder::reset(uint64_t max_output) noexcept {
  out_.reset(max_output);
  invalid_ = 0;
  acc_ = 0;
  count_ = 0;
  stopped_ = padded_ = false;
}

DecodeStatus Base64LinesDecoder::feed(const uint8_t* in, std::size_t len, ByteSink& sink) noexcept {
  OutputBlock block(out_, sink);
  for (std::size_t i = 0; i < len; ++i) {
    const uint8_t c = in[i];
    if (c == '\n') {
      // The line's end: a padded partial quantum gives its bytes, any other is dropped.
      if (padded_) put_partial(block, acc_, count_);
      else if (count_) ++invalid_;
      acc_ = 0;
      count_ = 0;
      stopped_ = padded_ = false;
      continue;
    }
    if (stopped_ || space(c)) continue;
    const int v = base64_value(c);
    if (v < 0) {
      stopped_ = true;
      padded_ = c == '=';
      if (!padded_) ++invalid_;
      continue;
    }
    push(acc_, count_, v, block);
  }
  block.flush();
  return out_.status(invalid_);
}

DecodeStatus Base64LinesDecoder::finish(ByteSink& sink) noexcept {
  static const uint8_t nl = '\n';
  feed(&nl, 1, sink);
  return out_.status(invalid_);
}

// ---- base64_strict ----

void Base64StrictDecoder::reset(uint64_t max_output) noexcept {
  out_.reset(max_output);
  invalid_ = 0;
  acc_ = 0;
  count_ = 0;
  done_ = data_ = false;
  line_blank_ = true;
}

DecodeStatus Base64StrictDecoder::feed(const uint8_t* in, std::size_t len, ByteSink& sink) noexcept {
  OutputBlock block(out_, sink);
  for (std::size_t i = 0; i < len && !done_; ++i) {
    const uint8_t c = in[i];
    if (c == '\n') {
      if (line_blank_ && data_) done_ = true;  // an empty line after data ends it
      line_blank_ = true;
      continue;
    }
    if (space(c)) continue;
    line_blank_ = false;
    if (c == '=') {  // padding ends the data
      put_partial(block, acc_, count_);
      if (count_ == 1) ++invalid_;
      acc_ = 0;
      count_ = 0;
      done_ = true;
      continue;
    }
    const int v = base64_value(c);
    if (v < 0) {
      ++invalid_;
      continue;
    }
    data_ = true;
    push(acc_, count_, v, block);
  }
  block.flush();
  return out_.status(invalid_);
}

DecodeStatus Base64StrictDecoder::finish(ByteSink& sink) noexcept {
  OutputBlock block(out_, sink);
  if (!done_) {
    put_partial(block, acc_, count_);
    if (count_ == 1) ++invalid_;
  }
  acc_ = 0;
  count_ = 0;
  done_ = true;
  block.flush();
  return out_.status(invalid_);
}

// ---- qp_lenient, qp_lf ----

void QpReadingDecoder::reset(uint64_t max_output) noexcept {
  out_.reset(max_output);
  invalid_ = 0;
  len_ = 0;
}

void QpReadingDecoder::line(bool eol, ByteSink& sink) noexcept {
  OutputBlock block(out_, sink);
  std::size_t n = len_;
  const bool crlf = n && buf_[n - 1] == '\r' && eol;
  if (crlf) --n;
  // Trailing whitespace goes (RFC 2045 6.7 rule 3); a '=' left at the end is a soft break.
  if (eol)
    while (n && (buf_[n - 1] == ' ' || buf_[n - 1] == '\t')) --n;
  bool soft = false;
  if (eol && n && buf_[n - 1] == '=') {
    soft = true;
    --n;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const uint8_t c = buf_[i];
    if (c != '=') {
      block.put(c);
      continue;
    }
    const int h = i + 1 < n ? hex_value(buf_[i + 1]) : -1;
    const int l = i + 2 < n ? hex_value(buf_[i + 2]) : -1;
    if (h >= 0 && l >= 0) {
      block.put(static_cast<uint8_t>(h * 16 + l));
      i += 2;
      continue;
    }
    ++invalid_;
    if (!lenient_) {
      block.put(c);
      continue;
    }
    // Lenient: the '=' goes with the whitespace after it, or with one lone hex digit.
    if (h >= 0) {
      ++i;
      continue;
    }
    while (i + 1 < n && (buf_[i + 1] == ' ' || buf_[i + 1] == '\t')) ++i;
  }
  if (eol && !soft) {
    if (crlf && !lf_) block.put('\r');  // a hard break as it was written (CRLF or LF), or LF
    block.put('\n');
  }
  block.flush();
  len_ = 0;
}

DecodeStatus QpReadingDecoder::feed(const uint8_t* in, std::size_t len, ByteSink& sink) noexcept {
  for (std::size_t i = 0; i < len; ++i) {
    if (in[i] == '\n') {
      line(true, sink);
      continue;
    }
    if (len_ == kLine) {
      // A long line goes in pieces; keep a tail that may hold an escape cut in two.
      const std::size_t k = buf_[len_ - 1] == '=' ? 1 : buf_[len_ - 2] == '=' ? 2 : 0;
      uint8_t keep[2] = {};
      for (std::size_t t = 0; t < k; ++t) keep[t] = buf_[len_ - k + t];
      len_ -= k;
      line(false, sink);
      for (std::size_t t = 0; t < k; ++t) buf_[len_++] = keep[t];
    }
    buf_[len_++] = in[i];
  }
  return out_.status(invalid_);
}

DecodeStatus QpReadingDecoder::finish(ByteSink& sink) noexcept {
  if (len_) line(false, sink);
  return out_.status(invalid_);
}

// ---- raw_lf ----

void LfDecoder::reset(uint64_t max_output) noexcept {
  out_.reset(max_output);
  cr_ = false;
}

DecodeStatus LfDecoder::feed(const uint8_t* in, std::size_t len, ByteSink& sink) noexcept {
  OutputBlock block(out_, sink);
  for (std::size_t i = 0; i < len; ++i) {
    const uint8_t c = in[i];
    if (cr_) {
      cr_ = false;
      if (c != '\n') block.put('\r');
    }
    if (c == '\r') {
      cr_ = true;
      continue;
    }
    block.put(c);
  }
  block.flush();
  return out_.status(0);
}

DecodeStatus LfDecoder::finish(ByteSink& sink) noexcept {
  if (cr_) {
    static const uint8_t cr = '\r';
    out_.emit(&cr, 1, sink);
    cr_ = false;
  }
  return out_.status(0);
}

// ---- header_junk_skipped, header_junk_separator ----

void HeaderJunkDecoder::reset(uint64_t max_output) noexcept {
  max_ = max_output;
  found_ = identity;
  have_found_ = body_ = long_ = false;
  len_ = 0;
  inner_ = nullptr;
}

void HeaderJunkDecoder::start_body() noexcept {
  body_ = true;
  const Encoding e = have_found_ ? found_ : declared_;
  inner_ = e == base64 ? static_cast<Decoder*>(&b64_) : e == quoted_printable ? static_cast<Decoder*>(&qp_) : &id_;
  inner_->reset(max_);
}

// One line of the header block as these readers continue it (without its line end).
void HeaderJunkDecoder::header_line() noexcept {
  std::size_t n = len_;
  if (n && line_[n - 1] == '\r') --n;
  bool blank = true;
  for (std::size_t i = 0; i < n && blank; ++i) blank = line_[i] == ' ' || line_[i] == '\t';
  if (separator_ || blank) return start_body();
  // "Content-Transfer-Encoding:" (any case, whitespace around the name): what its value names.
  static constexpr char kName[] = "content-transfer-encoding";
  std::size_t i = 0;
  while (i < n && (line_[i] == ' ' || line_[i] == '\t')) ++i;
  std::size_t k = 0;
  while (k + 1 < sizeof kName && i < n && (line_[i] | 0x20) == kName[k]) ++i, ++k;
  if (k + 1 != sizeof kName) return;
  while (i < n && (line_[i] == ' ' || line_[i] == '\t')) ++i;
  if (i >= n || line_[i] != ':') return;
  const uint8_t words = cte_words(std::string_view(reinterpret_cast<const char*>(line_ + i), n - i));
  found_ = (words & cte_word_base64) ? base64 : (words & cte_word_quoted_printable) ? quoted_printable : identity;
  have_found_ = true;
}

DecodeStatus HeaderJunkDecoder::feed(const uint8_t* in, std::size_t len, ByteSink& sink) noexcept {
  std::size_t i = 0;
  while (!body_ && i < len) {
    const uint8_t c = in[i++];
    if (c == '\n') {
      if (!long_) header_line();
      else if (separator_) start_body();
      len_ = 0;
      long_ = false;
      continue;
    }
    if (len_ < kLine) line_[len_++] = c;
    else long_ = true;
  }
  if (body_ && i < len) return inner_->feed(in + i, len - i, sink);
  return body_ ? inner_->feed(in, 0, sink) : DecodeStatus::ok;
}

DecodeStatus HeaderJunkDecoder::finish(ByteSink& sink) noexcept {
  return body_ ? inner_->finish(sink) : DecodeStatus::ok;
}

}  // namespace sluice::pipeline
