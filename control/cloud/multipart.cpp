#include "control/cloud/multipart.h"

#include <cctype>

namespace sluice::cloud {

namespace {

// RFC 2046 5.1.1: a boundary is 1 to 70 characters.
constexpr std::size_t kMaxBoundary = 70;
// Part headers are short (Content-Disposition, Content-Type); a part whose header block is longer
// than this is not a form field we read.
constexpr std::size_t kMaxPartHeader = 16 * 1024;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Header parameters: `; name=value` or `; name="quoted \" value"`, after the first token. Calls
// `on(name, value)` for each; false for a malformed list.
template <class F>
bool parameters(std::string_view s, F&& on) {
  std::size_t i = s.find(';');
  if (i == std::string_view::npos) return true;
  while (i < s.size()) {
    if (s[i] != ';') return false;
    ++i;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i == s.size()) return true;  // a trailing ';'
    const std::size_t name_start = i;
    while (i < s.size() && s[i] != '=' && s[i] != ';' && s[i] != ' ' && s[i] != '\t') ++i;
    const std::string_view name = s.substr(name_start, i - name_start);
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (name.empty() || i == s.size() || s[i] != '=') return false;
    ++i;
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    std::string value;
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        char c = s[i++];
        if (c == '\\' && i < s.size()) {
          value += s[i++];
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          value += c;
        }
      }
      if (!closed) return false;
    } else {
      const std::size_t v = i;
      while (i < s.size() && s[i] != ';' && s[i] != ' ' && s[i] != '\t') ++i;
      value = std::string(s.substr(v, i - v));
    }
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    on(name, std::move(value));
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 8187 ext-value: charset'language'percent-encoded. Only UTF-8 (and its ASCII subset) is
// decoded; anything else is not used.
std::optional<std::string> ext_value(std::string_view v) {
  const std::size_t q1 = v.find('\'');
  if (q1 == std::string_view::npos) return std::nullopt;
  const std::size_t q2 = v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) return std::nullopt;
  const std::string_view charset = v.substr(0, q1);
  if (!iequals(charset, "utf-8") && !iequals(charset, "us-ascii")) return std::nullopt;
  std::string out;
  for (std::size_t i = q2 + 1; i < v.size(); ++i) {
    if (v[i] == '%') {
      if (i + 2 >= v.size()) return std::nullopt;
      const int hi = hex_value(v[i + 1]), lo = hex_value(v[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi << 4 | lo);
      i += 2;
    } else {
      out += v[i];
    }
  }
  return out;
}

struct PartHeaders {
  bool form_data = false;
  std::optional<std::string> name, filename, filename_ext;
};

// Parses a part's header block (CRLF-separated lines, no final empty line).
bool parse_part_headers(std::string_view block, PartHeaders& out, std::string& error) {
  while (!block.empty()) {
    std::size_t eol = block.find("\r\n");
    std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 2);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      error = "a multipart part has a malformed header line";
      return false;
    }
    if (!iequals(trim(line.substr(0, colon)), "content-disposition")) continue;
    const std::string_view value = trim(line.substr(colon + 1));
    const std::string_view type = trim(value.substr(0, value.find(';')));
    out.form_data = iequals(type, "form-data");
    const bool ok = parameters(value, [&](std::string_view name, std::string v) {
      if (iequals(name, "name")) out.name = std::move(v);
      else if (iequals(name, "filename")) out.filename = std::move(v);
      else if (iequals(name, "filename*")) out.filename_ext = std::move(v);
    });
    if (!ok) {
      error = "a multipart part has a malformed Content-Disposition header";
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<std::string> form_data_boundary(std::string_view content_type, std::string& error) {
  const std::string_view type = trim(content_type.substr(0, content_type.find(';')));
  if (!iequals(type, "multipart/form-data")) {
    error = "the request must be multipart/form-data (Content-Type is '" +
            std::string(content_type.substr(0, 80)) + "')";
    return std::nullopt;
  }
  std::optional<std::string> boundary;
  const bool ok = parameters(content_type, [&](std::string_view name, std::string v) {
    if (iequals(name, "boundary")) boundary = std::move(v);
  });
  if (!ok || !boundary || boundary->empty() || boundary->size() > kMaxBoundary) {
    error = "the multipart/form-data Content-Type has no valid boundary parameter";
    return std::nullopt;
  }
  return boundary;
}

FormFileResult find_form_file(std::string_view content_type, std::string_view body, std::string_view field) {
  FormFileResult res;
  const auto boundary = form_data_boundary(content_type, res.error);
  if (!boundary) return res;
  const std::string dash = "--" + *boundary;
  const std::string delimiter = "\r\n" + dash;

  // The first delimiter may open the body (no preamble) or follow a preamble's CRLF.
  std::size_t pos;
  if (body.starts_with(dash)) {
    pos = dash.size();
  } else {
    pos = body.find(delimiter);
    if (pos == std::string_view::npos) {
      res.error = "the multipart body has no boundary line";
      return res;
    }
    pos += delimiter.size();
  }
  for (;;) {
    // After a delimiter: "--" closes the body; else optional whitespace and CRLF open a part.
    if (body.substr(pos, 2) == "--") break;
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.substr(pos, 2) != "\r\n") {
      res.error = "the multipart body is malformed after a boundary line";
      return res;
    }
    pos += 2;
    // Headers end at the first empty line (a part without headers starts with it).
    std::size_t header_end;
    std::string_view header_block;
    if (body.substr(pos, 2) == "\r\n") {
      header_end = pos + 2;
    } else {
      const std::size_t blank = body.find("\r\n\r\n", pos);
      if (blank == std::string_view::npos || blank - pos > kMaxPartHeader) {
        res.error = "a multipart part has no end to its headers";
        return res;
      }
      header_block = body.substr(pos, blank - pos);
      header_end = blank + 4;
    }
    const std::size_t next = body.find(delimiter, header_end);
    if (next == std::string_view::npos) {
      res.error = "the multipart body has no closing boundary";
      return res;
    }
    PartHeaders h;
    if (!parse_part_headers(header_block, h, res.error)) return res;
    if (h.form_data && h.name == field) {
      if (res.file) {
        res.file.reset();
        res.error = "the multipart body has more than one '" + std::string(field) + "' part";
        return res;
      }
      FormFile f;
      f.content = body.substr(header_end, next - header_end);
      if (h.filename_ext) f.filename = ext_value(*h.filename_ext);
      if (!f.filename) f.filename = h.filename;
      res.file = std::move(f);
    }
    pos = next + delimiter.size();
  }
  if (!res.file) res.error = "the multipart body has no file field '" + std::string(field) + "'";
  return res;
}

}  // namespace sluice::cloud
