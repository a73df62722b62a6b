// RFC 2047 encoded words and charset conversion to UTF-8 (see encoded_words.h).
#include "pipeline/encoded_words.h"
#include "pipeline/mime_chars.h"

#include <cerrno>
#include <cstring>

namespace sluice::pipeline {

void make_valid_utf8(char* s, std::size_t n) noexcept {
  auto* p = reinterpret_cast<unsigned char*>(s);
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    std::size_t len = c < 0x80 ? 1 : (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3 : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
    bool ok = len != 0 && i + len <= n;
    for (std::size_t k = 1; ok && k < len; ++k) ok = (p[i + k] & 0xc0) == 0x80;
    if (ok && len == 3) ok = !(c == 0xe0 && p[i + 1] < 0xa0) && !(c == 0xed && p[i + 1] >= 0xa0);
    if (ok && len == 4) ok = !(c == 0xf0 && p[i + 1] < 0x90) && !(c == 0xf4 && p[i + 1] >= 0x90);
    if (!ok) {
      p[i++] = '?';
      continue;
    }
    i += len;
  }
}


namespace {

// Windows-1252 0x80..0x9F (the C1 range of ISO-8859-1, where real mail means cp1252).
constexpr uint16_t kCp1252[32] = {0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                  0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
                                  0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                  0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

uint8_t lower(uint8_t c) noexcept { return (c >= 'A' && c <= 'Z') ? uint8_t(c + 32) : c; }

// Length of a valid UTF-8 sequence at p (1..4), 0 when invalid.
std::size_t utf8_seq(const uint8_t* p, std::size_t n) noexcept {
  uint8_t c = p[0];
  if (c < 0x80) return 1;
  std::size_t len;
  uint32_t min;
  if ((c & 0xE0) == 0xC0) { len = 2; min = 0x80; }
  else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; }
  else if ((c & 0xF8) == 0xF0) { len = 4; min = 0x10000; }
  else return 0;
  if (n < len) return 0;
  uint32_t cp = c & (0x7F >> len);
  for (std::size_t i = 1; i < len; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

enum class Cs { raw, utf8, ascii, latin1, cp1252, utf16, utf16le, utf16be, other };

Cs classify(std::string_view name) noexcept {
  char b[40];
  std::size_t n = 0;
  for (char c : name) {
    if (n + 1 >= sizeof b) return Cs::other;
    if (c == '-' || c == '_') continue;  // "utf-8", "utf8", "iso_8859-1", "windows-1252"
    b[n++] = char(lower(uint8_t(c)));
  }
  std::string_view s(b, n);
  if (s.empty()) return Cs::raw;
  if (s == "utf8") return Cs::utf8;
  if (s == "usascii" || s == "ascii" || s == "ansix3.41968" || s == "iso646us") return Cs::ascii;
  if (s == "iso88591" || s == "latin1" || s == "l1" || s == "iso885911987") return Cs::latin1;
  if (s == "windows1252" || s == "cp1252" || s == "xcp1252") return Cs::cp1252;
  if (s == "utf16") return Cs::utf16;
  if (s == "utf16le") return Cs::utf16le;
  if (s == "utf16be") return Cs::utf16be;
  return Cs::other;
}

void put_cp1252(uint8_t c, Utf8Out& out) noexcept {
  if (c < 0x80) out.put(c);
  else if (c < 0xA0) out.put_cp(kCp1252[c - 0x80]);
  else out.put_cp(c);
}

bool put_utf16(const uint8_t* p, std::size_t n, bool big, Utf8Out& out) noexcept {
  bool ok = (n % 2) == 0;
  for (std::size_t i = 0; i + 1 < n; i += 2) {
    uint32_t u = big ? (uint32_t(p[i]) << 8 | p[i + 1]) : (uint32_t(p[i + 1]) << 8 | p[i]);
    if (u >= 0xD800 && u <= 0xDBFF && i + 3 < n) {
      uint32_t v = big ? (uint32_t(p[i + 2]) << 8 | p[i + 3]) : (uint32_t(p[i + 3]) << 8 | p[i + 2]);
      if (v >= 0xDC00 && v <= 0xDFFF) {
        out.put_cp(0x10000 + ((u - 0xD800) << 10) + (v - 0xDC00));
        i += 2;
        continue;
      }
    }
    if (u >= 0xD800 && u <= 0xDFFF) { out.put_cp(0xFFFD); ok = false; continue; }
    out.put_cp(u);
  }
  return ok;
}

// Encoded word at p: "=?charset?enc?text?=". Returns its total length or 0.
struct Word {
  std::string_view charset;
  uint8_t enc;  // 'b' or 'q'
  const uint8_t* text;
  std::size_t text_len;
  std::size_t total;
};

bool parse_word(const uint8_t* p, std::size_t n, Word& w) noexcept {
  if (n < 8 || p[0] != '=' || p[1] != '?') return false;
  std::size_t i = 2;
  while (i < n && p[i] != '?' && p[i] > ' ' && p[i] < 0x7F) ++i;
  if (i >= n || p[i] != '?' || i == 2) return false;
  w.charset = std::string_view(reinterpret_cast<const char*>(p + 2), i - 2);
  if (i + 2 >= n || p[i + 2] != '?') return false;
  w.enc = lower(p[i + 1]);
  if (w.enc != 'b' && w.enc != 'q') return false;
  std::size_t t = i + 3;
  std::size_t j = t;
  // The text ends at "?="; clients accept spaces inside it (some mailers do not encode them).
  while (j + 1 < n && !(p[j] == '?' && p[j + 1] == '=')) {
    if (p[j] == '\r' || p[j] == '\n') return false;
    ++j;
  }
  if (j + 1 >= n) return false;
  w.text = p + t;
  w.text_len = j - t;
  w.total = j + 2;
  return true;
}

// Appends the decoded bytes of one word to buf; returns false if it held invalid input.
bool decode_word_bytes(const Word& w, uint8_t* buf, std::size_t cap, std::size_t& len) noexcept {
  bool ok = true;
  if (w.enc == 'q') {
    for (std::size_t i = 0; i < w.text_len; ++i) {
      uint8_t c = w.text[i];
      uint8_t o = c;
      if (c == '_') o = ' ';
      else if (c == '=') {
        int h = i + 1 < w.text_len ? hex_value(w.text[i + 1]) : -1;
        int l = i + 2 < w.text_len ? hex_value(w.text[i + 2]) : -1;
        if (h >= 0 && l >= 0) { o = uint8_t(h * 16 + l); i += 2; }
        else ok = false;
      }
      if (len < cap) buf[len++] = o;
    }
    return ok;
  }
  uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < w.text_len; ++i) {
    uint8_t c = w.text[i];
    if (c == '=') break;
    int v = base64_value(c);
    if (v < 0) { if (c != ' ' && c != '\t') ok = false; continue; }
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (len < cap) buf[len++] = uint8_t(acc >> bits);
    }
  }
  return ok;
}

}  // namespace

void Utf8Out::put(uint8_t byte) noexcept {
  tail_[tail_pos_ % kTail] = byte;
  ++tail_pos_;
  if (len_ < cap_) buf_[len_++] = char(byte);
  else overflow_ = true;
}

void Utf8Out::put_cp(uint32_t cp) noexcept {
  if (cp < 0x80) { put(uint8_t(cp)); return; }
  if (cp < 0x800) { put(uint8_t(0xC0 | (cp >> 6))); put(uint8_t(0x80 | (cp & 0x3F))); return; }
  if (cp < 0x10000) {
    put(uint8_t(0xE0 | (cp >> 12)));
    put(uint8_t(0x80 | ((cp >> 6) & 0x3F)));
    put(uint8_t(0x80 | (cp & 0x3F)));
    return;
  }
  put(uint8_t(0xF0 | (cp >> 18)));
  put(uint8_t(0x80 | ((cp >> 12) & 0x3F)));
  put(uint8_t(0x80 | ((cp >> 6) & 0x3F)));
  put(uint8_t(0x80 | (cp & 0x3F)));
}

void Utf8Out::put_bytes(const void* p, std::size_t n) noexcept {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  for (std::size_t i = 0; i < n; ++i) put(b[i]);
}

std::size_t Utf8Out::finish() noexcept {
  if (!overflow_ || cap_ < 2 * kTail) return len_;
  // Keep the head, then the last bytes ever written, each cut at a UTF-8 character start.
  std::size_t start = tail_pos_ - kTail;  // index of the oldest tail byte in the stream
  std::size_t skip = 0;
  while (skip < kTail && (tail_[(start + skip) % kTail] & 0xC0) == 0x80) ++skip;
  std::size_t keep = kTail - skip;
  std::size_t head = cap_ - keep;
  while (head > 0 && (uint8_t(buf_[head]) & 0xC0) == 0x80) --head;
  for (std::size_t i = 0; i < keep; ++i) buf_[head + i] = char(tail_[(start + skip + i) % kTail]);
  len_ = head + keep;
  return len_;
}

bool append_raw_text(const uint8_t* p, std::size_t n, Utf8Out& out) noexcept {
  bool ok = true;
  std::size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) { out.put(p[i]); ++i; continue; }
    std::size_t l = utf8_seq(p + i, n - i);
    if (l == 0) { put_cp1252(p[i], out); ok = false; ++i; continue; }
    out.put_bytes(p + i, l);
    i += l;
  }
  return ok;
}

CharsetConverter::~CharsetConverter() {
  for (auto& s : slots_)
    if (s.used && s.cd != reinterpret_cast<iconv_t>(-1)) iconv_close(s.cd);
}

bool CharsetConverter::convert(std::string_view charset, const uint8_t* p, std::size_t n,
                               Utf8Out& out) noexcept {
  std::size_t star = charset.find('*');  // RFC 2231 section 5: charset*language
  if (star != std::string_view::npos) charset = charset.substr(0, star);
  switch (classify(charset)) {
    case Cs::raw:
      return append_raw_text(p, n, out);
    case Cs::utf8: {
      return append_raw_text(p, n, out);
    }
    case Cs::ascii: {
      // Mislabelled 8-bit text is common; read it as UTF-8 / cp1252 rather than dropping it.
      bool ok = true;
      for (std::size_t i = 0; i < n; ++i) ok &= p[i] < 0x80;
      append_raw_text(p, n, out);
      return ok;
    }
    case Cs::latin1:
    case Cs::cp1252:
      for (std::size_t i = 0; i < n; ++i) put_cp1252(p[i], out);
      return true;
    case Cs::utf16le:
      return put_utf16(p, n, false, out);
    case Cs::utf16be:
      return put_utf16(p, n, true, out);
    case Cs::utf16: {
      // A BOM decides; without one, RFC 2781 says big-endian, but mail in the wild is often
      // little-endian: for ASCII-range text the zero bytes tell which (mail clients guess too).
      if (n >= 2 && p[0] == 0xFE && p[1] == 0xFF) return put_utf16(p + 2, n - 2, true, out);
      if (n >= 2 && p[0] == 0xFF && p[1] == 0xFE) return put_utf16(p + 2, n - 2, false, out);
      std::size_t zero_even = 0, zero_odd = 0;
      for (std::size_t i = 0; i < n; ++i) (i % 2 ? zero_odd : zero_even) += p[i] == 0;
      return put_utf16(p, n, !(zero_odd > zero_even), out);
    }
    case Cs::other:
      return convert_iconv(charset, p, n, out);
  }
  return false;
}

bool CharsetConverter::convert_iconv(std::string_view charset, const uint8_t* p, std::size_t n,
                                     Utf8Out& out) noexcept {
  if (charset.size() >= sizeof(Slot::name)) {
    append_raw_text(p, n, out);
    return false;
  }
  Slot* slot = nullptr;
  for (auto& s : slots_) {
    if (s.used && charset.size() == std::strlen(s.name)) {
      bool same = true;
      for (std::size_t i = 0; i < charset.size() && same; ++i)
        same = lower(uint8_t(charset[i])) == uint8_t(s.name[i]);
      if (same) { slot = &s; break; }
    }
  }
  if (!slot) {
    // Least recently used slot; opening a descriptor happens once per new charset name.
    slot = &slots_[0];
    for (auto& s : slots_) {
      if (!s.used) { slot = &s; break; }
      if (s.stamp < slot->stamp) slot = &s;
    }
    if (slot->used && slot->cd != reinterpret_cast<iconv_t>(-1)) iconv_close(slot->cd);
    std::size_t i = 0;
    for (; i < charset.size(); ++i) slot->name[i] = char(lower(uint8_t(charset[i])));
    slot->name[i] = 0;
    slot->cd = iconv_open("UTF-8", slot->name);
    slot->used = true;
  }
  slot->stamp = ++clock_;
  if (slot->cd == reinterpret_cast<iconv_t>(-1)) {
    append_raw_text(p, n, out);
    return false;
  }
  iconv(slot->cd, nullptr, nullptr, nullptr, nullptr);
  bool ok = true;
  char* in = const_cast<char*>(reinterpret_cast<const char*>(p));
  std::size_t in_left = n;
  char tmp[256];
  while (in_left > 0) {
    char* o = tmp;
    std::size_t o_left = sizeof tmp;
    std::size_t r = iconv(slot->cd, &in, &in_left, &o, &o_left);
    out.put_bytes(tmp, sizeof tmp - o_left);
    if (r == static_cast<std::size_t>(-1)) {
      if (errno == E2BIG) continue;
      // EILSEQ / EINVAL: one bad byte becomes U+FFFD, then go on.
      ok = false;
      out.put_cp(0xFFFD);
      ++in;
      --in_left;
      iconv(slot->cd, nullptr, nullptr, nullptr, nullptr);
    }
  }
  char* o = tmp;
  std::size_t o_left = sizeof tmp;
  iconv(slot->cd, nullptr, nullptr, &o, &o_left);
  out.put_bytes(tmp, sizeof tmp - o_left);
  return ok;
}

bool CharsetConverter::decode_words(const uint8_t* in, std::size_t n, Utf8Out& out) noexcept {
  bool ok = true;
  std::size_t i = 0;
  std::size_t raw_start = 0;
  while (i < n) {
    Word w;
    if (in[i] != '=' || !parse_word(in + i, n - i, w)) { ++i; continue; }
    // Raw text before the word.
    ok &= append_raw_text(in + raw_start, i - raw_start, out) || true;
    // Join this word with the following ones in the same charset (only whitespace between).
    std::size_t len = 0;
    bool wok = decode_word_bytes(w, words_, kWordBytes, len);
    std::string_view cs = w.charset;
    std::size_t j = i + w.total;
    for (;;) {
      std::size_t k = j;
      while (k < n && (in[k] == ' ' || in[k] == '\t' || in[k] == '\r' || in[k] == '\n')) ++k;
      Word nw;
      if (k >= n || in[k] != '=' || !parse_word(in + k, n - k, nw)) break;
      if (nw.charset.size() == cs.size()) {
        bool same = true;
        for (std::size_t c = 0; c < cs.size() && same; ++c) same = lower(uint8_t(cs[c])) == lower(uint8_t(nw.charset[c]));
        if (same) {
          wok &= decode_word_bytes(nw, words_, kWordBytes, len);
          j = k + nw.total;
          continue;
        }
      }
      // A different charset: convert what we have; the whitespace between words still goes.
      wok &= convert(cs, words_, len, out);
      len = 0;
      cs = nw.charset;
      wok &= decode_word_bytes(nw, words_, kWordBytes, len);
      j = k + nw.total;
    }
    wok &= convert(cs, words_, len, out);
    ok &= wok;
    i = j;
    raw_start = j;
  }
  append_raw_text(in + raw_start, n - raw_start, out);
  return ok;
}

}  // namespace sluice::pipeline
