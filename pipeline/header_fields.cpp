// Structured header field parameters, RFC 2045 / 2183 / 2231 read as clients read them (see
// header_fields.h).
#include "pipeline/header_fields.h"
#include "pipeline/mime_chars.h"

namespace sluice::pipeline {

namespace {

bool is_ws(char c) noexcept { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }

// Skips a comment starting at f[i] == '(' (nested, with quoted pairs); returns the index after it.
std::size_t skip_comment(const char* f, std::size_t len, std::size_t i) noexcept {
  int depth = 0;
  while (i < len) {
    char c = f[i];
    if (c == '\\') { i += 2; continue; }
    if (c == '(') ++depth;
    else if (c == ')' && --depth == 0) return i + 1;
    ++i;
  }
  return len;
}

std::size_t skip_cfws(const char* f, std::size_t len, std::size_t i) noexcept {
  while (i < len) {
    if (is_ws(f[i])) ++i;
    else if (f[i] == '(') i = skip_comment(f, len, i);
    else break;
  }
  return i;
}

// A double quote written in a file name value that is not a quoted string: dropped.
//
// RFC 2045 5.1 allows '"' (a tspecial) in a parameter value only as a quoted-pair inside a quoted
// string, so 'name=file\".zip' or 'name=file".zip' has no standard meaning (mime-is-broken
// "nEQx", level 1 "unusual", and "nQx", level 0). What clients make of it:
// - Outlook / Exchange: MS-OXCMAIL 2.2.3.4.1.1 says a MIME reader SHOULD sanitize the attachment
//   file name by removing the characters not legal in it, '"' (U+0022) among them (MAY
//   replace them by '_'): the file is file.zip;
// - Thunderbird: reads the token raw, then DecodeParameter (nsMIMEHeaderParamImpl.cpp) strips a
//   backslash before '"', so it shows file".zip, and saving on Windows replaces '"' (one of
//   Gecko's FILE_ILLEGAL_CHARACTERS there) by '_': file_.zip;
// - Windows cannot store a '"' in a file name at all; Python's email package (default policy)
//   stops at the quote and reports "file", losing the extension.
// No client keeps the quote in the file it writes, and the one that removes it (Outlook) yields
// the name with the real extension: 'file.exe"' becomes file.exe, which a policy must see. The
// backslash escape of unquoted values is kept (Thunderbird strips '\' before '"' too).
// A '"' of a quoted string ('name="file\".zip"', RFC 822 quoted-pair) is a real character of the
// name and stays: file".zip, as Thunderbird shows and Python reads it.
bool drop_quotes(const ParsedField::Entry& e, bool file_name) noexcept {
  return file_name && !e.quoted;
}

// %XX decoding of an RFC 2231 extended value; a '%' not followed by two hex digits stays. With
// `no_quotes`, a raw '"' is dropped (an encoded %22 stays: it is no stray quote).
void pct_decode(std::string_view v, uint8_t* out, std::size_t cap, std::size_t& len, bool& bad,
                bool no_quotes) noexcept {
  for (std::size_t i = 0; i < v.size(); ++i) {
    uint8_t c = uint8_t(v[i]);
    if (c == '"' && no_quotes) continue;
    if (c == '%' && i + 2 < v.size()) {
      int h = hex_value(uint8_t(v[i + 1])), l = hex_value(uint8_t(v[i + 2]));
      if (h >= 0 && l >= 0) { c = uint8_t(h * 16 + l); i += 2; }
      else bad = true;
    } else if (c == '%') {
      bad = true;
    }
    if (len < cap) out[len++] = c;
  }
}

// "charset'language'rest" → charset and rest; false when the value has no two quotes.
bool split_charset(std::string_view v, std::string_view& charset, std::string_view& rest) noexcept {
  std::size_t q1 = v.find('\'');
  if (q1 == std::string_view::npos) return false;
  std::size_t q2 = v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return false;
  charset = v.substr(0, q1);
  rest = v.substr(q2 + 1);
  return true;
}

}  // namespace

void parse_field(char* f, std::size_t len, const ParamRequest& req, ParsedField& out) noexcept {
  out.count = 0;
  std::size_t i = 0, w = 0;
  // The main value: up to the first ';' outside quotes and comments, whitespace dropped.
  while (i < len && f[i] != ';') {
    char c = f[i];
    if (c == '(') { i = skip_comment(f, len, i); continue; }
    if (is_ws(c) || c == '"') { ++i; continue; }
    f[w++] = c;
    ++i;
  }
  out.value = std::string_view(f, w);
  while (i < len) {
    if (f[i] == ';') ++i;
    i = skip_cfws(f, len, i);
    if (i >= len) break;
    // Attribute name, up to '=' (comments and whitespace inside dropped), lower case.
    std::size_t ns = w;
    while (i < len && f[i] != '=' && f[i] != ';') {
      char c = f[i];
      if (c == '(') { i = skip_comment(f, len, i); continue; }
      if (is_ws(c) || c == '"') { ++i; continue; }
      f[w++] = lower(c);
      ++i;
    }
    std::string_view name(f + ns, w - ns);
    if (i >= len || f[i] == ';') continue;
    ++i;  // '='
    i = skip_cfws(f, len, i);
    // Split "name*N*" into base, index, extended.
    int16_t index = -1;
    bool extended = false;
    std::size_t star = name.find('*');
    std::string_view base = name;
    if (star != std::string_view::npos) {
      base = name.substr(0, star);
      std::string_view rest = name.substr(star + 1);
      if (!rest.empty() && rest.back() == '*') { extended = true; rest.remove_suffix(1); }
      if (rest.empty()) {
        index = -2;
        extended = true;
      } else {
        int v = 0;
        bool digits = true;
        for (char c : rest) {
          if (c < '0' || c > '9' || v > 999) { digits = false; break; }
          v = v * 10 + (c - '0');
        }
        if (!digits) { base = name; extended = false; index = -1; }  // an unrelated attribute
        else index = int16_t(v);
      }
    }
    // The value.
    std::size_t vs = w;
    bool quoted = false;
    if (i < len && f[i] == '"') {
      quoted = true;
      ++i;
      while (i < len && f[i] != '"') {
        if (f[i] == '\n') { ++i; continue; }  // a fold: the line break goes, its whitespace stays
        if (f[i] == '\\' && i + 1 < len) ++i;
        f[w++] = f[i++];
      }
      if (i < len) ++i;
      // Text after the closing quote ('name="file".zip"'): kept, as clients that read up to
      // the ';' show it (quotes and whitespace dropped).
      while (i < len && f[i] != ';') {
        if (f[i] != '"' && !is_ws(f[i])) f[w++] = f[i];
        ++i;
      }
    } else {
      // The end: the next ';' that no backslash escapes ('file\\;.zip' is one value, file;.zip).
      std::size_t semi = i;
      while (semi < len && f[semi] != ';') semi += (f[semi] == '\\' && semi + 1 < len) ? 2 : 1;
      if (semi > len) semi = len;
      std::size_t close = semi;
      if (i < len && f[i] == '\'' && !extended) {
        // Single quotes used as quotes (seen in the wild; several clients strip them).
        std::size_t e = semi;
        while (e > i + 1 && is_ws(f[e - 1])) --e;
        if (e > i + 1 && f[e - 1] == '\'') { ++i; close = e - 1; }
      }
      while (i < close) {
        if (f[i] == '(' && close == semi) {  // a comment (RFC 5322 CFWS), "file.zip(.gif)"
          i = skip_comment(f, close, i);
          continue;
        }
        // A fold ends a token that has begun: what a continuation line holds is not part of it
        // ("name=report.pdf" CRLF " X-Mailer: evil.exe" names report.pdf, as Python reads it;
        // the reading across the fold is one of the candidates, see name_candidates).
        if (f[i] == '\n') {
          if (w > vs && close == semi) break;
          ++i;
          continue;
        }
        if (f[i] == '\\' && i + 1 < close) ++i;
        f[w++] = f[i++];
      }
      if (close == semi) while (w > vs && is_ws(f[w - 1])) --w;
      i = semi;
    }
    std::string_view value(f + vs, w - vs);
    for (int r = 0; r < req.n; ++r) {
      if (base == req.names[r] && out.count < ParsedField::kMaxEntries) {
        out.entries[out.count++] = {value, index, extended, quoted, uint8_t(r)};
        break;
      }
    }
  }
}

namespace {

// The value of one extended parameter without sections ("name*=charset'lang'%XX").
void put_extended(const ParsedField::Entry& e, CharsetConverter& conv, uint8_t* scratch, std::size_t cap,
                  Utf8Out& out, bool& bad, bool file_name) noexcept {
  std::size_t len = 0;
  std::string_view charset, rest;
  if (!split_charset(e.value, charset, rest)) { rest = e.value; bad = true; }
  pct_decode(rest, scratch, cap, len, bad, drop_quotes(e, file_name));
  if (!charset.empty()) bad |= !conv.convert(charset, scratch, len, out);
  else if (file_name) bad |= !conv.decode_words(scratch, len, out);
  else out.put_bytes(scratch, len);
}

// RFC 2231 sections joined in the order given; the charset is the first section's.
void put_sections(const ParsedField::Entry* const* sec, int nsec, CharsetConverter& conv, uint8_t* scratch,
                  std::size_t cap, Utf8Out& out, bool& bad, bool file_name) noexcept {
  std::size_t len = 0;
  std::string_view charset;
  for (int k = 0; k < nsec; ++k) {
    std::string_view v = sec[k]->value;
    if (sec[k]->extended) {
      if (k == 0) {
        std::string_view rest;
        if (split_charset(v, charset, rest)) v = rest;
      }
      pct_decode(v, scratch, cap, len, bad, drop_quotes(*sec[k], file_name));
    } else {
      const bool no_quotes = drop_quotes(*sec[k], file_name);
      for (char c : v)
        if (len < cap && !(c == '"' && no_quotes)) scratch[len++] = uint8_t(c);
    }
  }
  if (!charset.empty()) bad |= !conv.convert(charset, scratch, len, out);
  else if (file_name) bad |= !conv.decode_words(scratch, len, out);
  else out.put_bytes(scratch, len);
}

void put_plain(const ParsedField::Entry& e, CharsetConverter& conv, uint8_t* scratch, std::size_t cap,
               Utf8Out& out, bool& bad, bool file_name) noexcept {
  std::size_t len = 0;
  const auto* v = reinterpret_cast<const uint8_t*>(e.value.data());
  std::size_t n = e.value.size();
  if (drop_quotes(e, file_name) && e.value.find('"') != std::string_view::npos) {
    for (std::size_t i = 0; i < n; ++i)
      if (v[i] != '"' && len < cap) scratch[len++] = v[i];
    v = scratch;
    n = len;
  }
  if (file_name) bad |= !conv.decode_words(v, n, out);
  else out.put_bytes(v, n);
}

// The sections of parameter `which` by index (a repeated index keeps its first occurrence).
int sections_by_index(const ParsedField& f, uint8_t which, const ParsedField::Entry** sec) noexcept {
  int nsec = 0;
  for (int i = 0; i < f.count; ++i) {
    const auto& e = f.entries[i];
    if (e.which != which || e.index < 0) continue;
    int pos = nsec;
    bool dup = false;
    for (int k = 0; k < nsec; ++k) {
      if (sec[k]->index == e.index) { dup = true; break; }
      if (sec[k]->index > e.index) { pos = k; break; }
    }
    if (dup) continue;
    for (int k = nsec; k > pos; --k) sec[k] = sec[k - 1];
    sec[pos] = &e;
    ++nsec;
  }
  return nsec;
}

}  // namespace

bool assemble_param(const ParsedField& f, uint8_t which, CharsetConverter& conv, uint8_t* scratch,
                    std::size_t cap, Utf8Out& out, bool& bad, bool file_name) noexcept {
  const ParsedField::Entry* plain = nullptr;
  const ParsedField::Entry* ext = nullptr;
  for (int i = 0; i < f.count; ++i) {
    const auto& e = f.entries[i];
    if (e.which != which) continue;
    if (e.index == -1 && !plain) plain = &e;
    else if (e.index == -2 && !ext) ext = &e;
  }
  if (ext) {
    put_extended(*ext, conv, scratch, cap, out, bad, file_name);
    return true;
  }
  const ParsedField::Entry* sec[ParsedField::kMaxEntries];
  if (const int nsec = sections_by_index(f, which, sec); nsec > 0) {
    put_sections(sec, nsec, conv, scratch, cap, out, bad, file_name);
    return true;
  }
  if (plain) {
    put_plain(*plain, conv, scratch, cap, out, bad, file_name);
    return true;
  }
  return false;
}

void name_candidates(const ParsedField& f, uint8_t which, CharsetConverter& conv, uint8_t* scratch,
                     std::size_t cap, char* tmp, std::size_t tmp_cap, NameSink& sink) noexcept {
  bool bad = false;
  auto put = [&](auto&& fill) {
    Utf8Out o(tmp, tmp_cap);
    fill(o);
    const std::size_t n = o.finish();
    if (n) sink.add(tmp, n);
  };
  // Every plain and extended occurrence on its own (duplicates: first and last, and any between).
  for (int i = 0; i < f.count; ++i) {
    const auto& e = f.entries[i];
    if (e.which != which) continue;
    if (e.index == -1) put([&](Utf8Out& o) { put_plain(e, conv, scratch, cap, o, bad, true); });
    else if (e.index == -2) put([&](Utf8Out& o) { put_extended(e, conv, scratch, cap, o, bad, true); });
  }
  // RFC 2231 sections by index (the standard reading), then as written (a reader that appends
  // them in the order it meets them: its charset is the first one written).
  const ParsedField::Entry* sec[ParsedField::kMaxEntries];
  const int nsec = sections_by_index(f, which, sec);
  if (nsec == 0) return;
  put([&](Utf8Out& o) { put_sections(sec, nsec, conv, scratch, cap, o, bad, true); });
  int nw = 0;
  for (int i = 0; i < f.count; ++i)
    if (f.entries[i].which == which && f.entries[i].index >= 0) sec[nw++] = &f.entries[i];
  put([&](Utf8Out& o) { put_sections(sec, nw, conv, scratch, cap, o, bad, true); });
}

namespace {

bool ieq_prefix(std::string_view s, std::size_t at, std::string_view word) noexcept {
  if (at + word.size() > s.size()) return false;
  for (std::size_t k = 0; k < word.size(); ++k)
    if (lower(s[at + k]) != word[k]) return false;
  return true;
}

// At s[i] (after a ';' and whitespace): "attr=" with a token name, the start of a parameter.
bool param_start(std::string_view s, std::size_t i) noexcept {
  std::size_t k = i;
  while (k < s.size() && s[k] != '=' && s[k] != ';' && !is_ws(s[k]) && s[k] != '"') ++k;
  while (k < s.size() && is_ws(s[k])) ++k;
  return k > i && k < s.size() && s[k] == '=';
}

}  // namespace

void lenient_name_values(std::string_view raw, std::string_view attr, CharsetConverter& conv, uint8_t* scratch,
                         std::size_t cap, char* tmp, std::size_t tmp_cap, NameSink& sink) noexcept {
  std::size_t i = raw.find(';');
  while (i != std::string_view::npos && i < raw.size()) {
    ++i;
    while (i < raw.size() && is_ws(raw[i])) ++i;
    std::size_t a = i;
    const bool hit = ieq_prefix(raw, a, attr);
    std::size_t k = a + attr.size();
    while (hit && k < raw.size() && is_ws(raw[k])) ++k;
    if (!hit || k >= raw.size() || raw[k] != '=') {
      i = raw.find(';', i);
      continue;
    }
    ++k;
    while (k < raw.size() && is_ws(raw[k])) ++k;
    if (k < raw.size() && raw[k] == '"') {  // quoted: no other reading of its end
      i = raw.find(';', k);
      continue;
    }
    // Three ends: the first ';' whatever precedes it (backslashes dropped: Thunderbird and
    // Python's email package read 'file\;.zip' as "file"), the first ';' across folds (the
    // line break removed: a continuation line read as part of the value), and the first ';' that
    // starts another parameter ('name=file;.zip' read as file;.zip).
    std::size_t first = raw.find(';', k);
    if (first == std::string_view::npos) first = raw.size();
    std::size_t next = first;
    while (next < raw.size()) {
      std::size_t j = next + 1;
      while (j < raw.size() && is_ws(raw[j])) ++j;
      if (param_start(raw, j)) break;
      const std::size_t semi = raw.find(';', next + 1);
      next = semi == std::string_view::npos ? raw.size() : semi;
    }
    for (int variant = 0; variant < 2; ++variant) {
      const std::size_t end = variant == 0 ? first : next;
      std::size_t len = 0;
      for (std::size_t j = k; j < end && len < cap; ++j) {
        const char c = raw[j];
        if (c == '\n' || c == '"' || (c == '\\' && variant == 0)) continue;
        if (c == '\\' && j + 1 < end) ++j;
        scratch[len++] = uint8_t(raw[j]);
      }
      while (len > 0 && is_ws(char(scratch[len - 1]))) --len;
      Utf8Out o(tmp, tmp_cap);
      conv.decode_words(scratch, len, o);
      if (const std::size_t n = o.finish()) sink.add(tmp, n);
    }
    i = next;
  }
}

}  // namespace sluice::pipeline
