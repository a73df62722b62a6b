// Structured header field parameters, RFC 2045 / 2183 / 2231 read as clients read them (see
// header_fields.h).
#include "pipeline/header_fields.h"

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

int hexval(uint8_t c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
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
      int h = hexval(uint8_t(v[i + 1])), l = hexval(uint8_t(v[i + 2]));
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
      std::size_t semi = i;
      while (semi < len && f[semi] != ';') ++semi;
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

bool assemble_param(const ParsedField& f, uint8_t which, CharsetConverter& conv, uint8_t* scratch,
                    std::size_t cap, Utf8Out& out, bool& bad, bool file_name) noexcept {
  const ParsedField::Entry* plain = nullptr;
  const ParsedField::Entry* ext = nullptr;
  const ParsedField::Entry* sec[ParsedField::kMaxEntries];
  int nsec = 0;
  for (int i = 0; i < f.count; ++i) {
    const auto& e = f.entries[i];
    if (e.which != which) continue;
    if (e.index == -1) { if (!plain) plain = &e; }
    else if (e.index == -2) { if (!ext) ext = &e; }
    else {
      // Insertion by index; a repeated index keeps its first occurrence.
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
  }
  std::size_t len = 0;
  if (ext) {
    std::string_view charset, rest;
    if (!split_charset(ext->value, charset, rest)) { rest = ext->value; bad = true; }
    pct_decode(rest, scratch, cap, len, bad, drop_quotes(*ext, file_name));
    if (!charset.empty()) bad |= !conv.convert(charset, scratch, len, out);
    else if (file_name) bad |= !conv.decode_words(scratch, len, out);
    else out.put_bytes(scratch, len);
    return true;
  }
  if (nsec > 0) {
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
    return true;
  }
  if (plain) {
    const auto* v = reinterpret_cast<const uint8_t*>(plain->value.data());
    std::size_t n = plain->value.size();
    if (drop_quotes(*plain, file_name) && plain->value.find('"') != std::string_view::npos) {
      for (std::size_t i = 0; i < n; ++i)
        if (v[i] != '"' && len < cap) scratch[len++] = v[i];
      v = scratch;
      n = len;
    }
    if (file_name) bad |= !conv.decode_words(v, n, out);
    else out.put_bytes(v, n);
    return true;
  }
  return false;
}

}  // namespace sluice::pipeline
