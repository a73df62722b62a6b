// The management API's route helpers (api.h).
#include "control/api.h"

#include <charconv>
#include <cstdio>
#include <ctime>

namespace sluice::control {

std::string ApiRequest::arg(const std::string& name, const std::string& fallback) const {
  const auto it = query.find(name);
  return it == query.end() ? fallback : it->second;
}

ApiResponse api_json(unsigned status, const Json& body) {
  ApiResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  return r;
}

ApiResponse api_error(unsigned status, const std::string& code, const std::string& message) {
  return api_json(status, {{"error", {{"code", code}, {"message", message}}}});
}
ApiResponse api_bad_request(const std::string& message) { return api_error(400, "BadRequestError", message); }
ApiResponse api_not_found(const std::string& message) { return api_error(404, "NotFoundError", message); }
ApiResponse api_conflict(const std::string& message) { return api_error(409, "ConflictError", message); }
ApiResponse api_unavailable(const std::string& message) { return api_error(503, "UnavailableError", message); }

bool api_decode(std::string_view in, std::string& out, bool query) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '%') {
      unsigned v = 0;
      if (i + 2 >= in.size()) return false;
      const auto r = std::from_chars(in.data() + i + 1, in.data() + i + 3, v, 16);
      if (r.ec != std::errc() || r.ptr != in.data() + i + 3) return false;
      out.push_back(static_cast<char>(v));
      i += 2;
    } else {
      out.push_back(query && c == '+' ? ' ' : c);
    }
  }
  return true;
}

bool api_parse_query(std::string_view q, std::map<std::string, std::string>& out) {
  while (!q.empty()) {
    const std::size_t amp = q.find('&');
    const std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    std::string name, value;
    if (!api_decode(pair.substr(0, eq), name, true)) return false;
    if (eq != std::string_view::npos && !api_decode(pair.substr(eq + 1), value, true)) return false;
    out[name] = value;
  }
  return true;
}

bool api_match(const std::string& pattern, const std::string& path, std::vector<std::string>& params) {
  params.clear();
  std::size_t p = 0, s = 0;
  while (p < pattern.size() && s < path.size()) {
    if (pattern[p] != '/' || path[s] != '/') return false;
    ++p, ++s;
    const std::size_t pe = std::min(pattern.find('/', p), pattern.size());
    const std::size_t se = std::min(path.find('/', s), path.size());
    const std::string_view ps(pattern.data() + p, pe - p), ss(path.data() + s, se - s);
    if (ps.size() > 2 && ps.front() == '{' && ps.back() == '}') {
      std::string value;
      if (ss.empty() || !api_decode(ss, value, false)) return false;
      params.push_back(std::move(value));
    } else if (ps != ss) {
      return false;
    }
    p = pe, s = se;
  }
  return p == pattern.size() && s == path.size();
}

bool api_parse_uint(const std::string& text, uint64_t lo, uint64_t hi, uint64_t& out) {
  uint64_t v = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || r.ec != std::errc() || r.ptr != text.data() + text.size() || v < lo || v > hi) return false;
  out = v;
  return true;
}

bool api_parse_sha256(const std::string& text, std::string& out) {
  if (text.size() != 64) return false;
  out.resize(64);
  for (std::size_t i = 0; i < 64; ++i) {
    const char c = text[i];
    if (c >= '0' && c <= '9') out[i] = c;
    else if (c >= 'a' && c <= 'f') out[i] = c;
    else if (c >= 'A' && c <= 'F') out[i] = static_cast<char>(c - 'A' + 'a');
    else return false;
  }
  return true;
}

bool api_parse_time(const std::string& text, int64_t& ms) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
    uint64_t v = 0;
    if (!api_parse_uint(text, 0, uint64_t{1} << 53, v)) return false;
    ms = static_cast<int64_t>(v);
    return true;
  }
  // YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM|-HH:MM]
  int y, mo, d, h, mi, s, n = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &n) != 6 || n != 19)
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return false;
  std::size_t i = 19;
  int64_t frac_ms = 0;
  if (i < text.size() && text[i] == '.') {
    int64_t scale = 100;
    ++i;
    const std::size_t start = i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      frac_ms += (text[i] - '0') * scale;
      scale /= 10;
    }
    if (i == start) return false;
  }
  int64_t offset_s = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i + 6 == text.size() && (text[i] == '+' || text[i] == '-') && text[i + 3] == ':') {
    int oh, om;
    if (std::sscanf(text.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2 || oh > 23 || om > 59) return false;
    offset_s = (oh * 3600 + om * 60) * (text[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return false;
  }
  if (i != text.size()) return false;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  const time_t t = timegm(&tm);
  ms = (static_cast<int64_t>(t) - offset_s) * 1000 + frac_ms;
  return true;
}

}  // namespace sluice::control
