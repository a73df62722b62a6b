// control/reputation_adapters: see reputation_adapters.h.
#include "control/reputation_adapters.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace sluice::control::reputation {

using nlohmann::json;
using records::Reputation;
namespace bhttp = boost::beast::http;

std::string echo(std::string_view s) {
  constexpr std::size_t kEcho = 80;
  std::string out = "'" + std::string(s.substr(0, kEcho));
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return out + (s.size() > kEcho ? "...'" : "'");
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Parsed failed(std::string detail, bool retryable) {
  Parsed p;
  p.kind = Parsed::Kind::failed;
  p.detail = std::move(detail);
  p.retryable = retryable;
  return p;
}

// The error code of a {"error":{"code","message"}} body, "" when the body is not one.
std::string error_code(std::string_view body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "";
  auto e = j.find("error");
  if (e == j.end() || !e->is_object()) return "";
  auto c = e->find("code");
  if (c == e->end() || !c->is_string()) return "";
  return c->get<std::string>();
}

// Every status but 200 (and VirusTotal's 404 NotFoundError, read by its adapter): 429 is rate
// limiting; 5xx and 408 may pass and are retried; any other 4xx would be refused again.
Parsed http_error(unsigned status, std::string_view body, std::string_view retry_after) {
  std::string code = error_code(body);
  bool named = !code.empty() && code.size() <= 64 &&
               std::all_of(code.begin(), code.end(), [](unsigned char c) { return std::isalnum(c); });
  std::string detail = "HTTP " + std::to_string(status) + (named ? " " + code : "");
  if (status == 429) {
    Parsed p;
    p.kind = Parsed::Kind::rate_limited;
    p.retry_after = retry_after_seconds(retry_after);
    p.detail = detail + " (retry after " + std::to_string(p.retry_after.count()) + " s)";
    return p;
  }
  return failed(detail, status >= 500 || status == 408);
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c); });
}

}  // namespace

Call sluice_lookup(std::span<const std::string> hex) {
  json body = {{"hashes", json::array()}};
  for (const auto& h : hex) body["hashes"].push_back(h);
  return Call{bhttp::verb::post, "/api/v1/files/lookup", body.dump()};
}

Call sluice_health() { return Call{bhttp::verb::get, "/api/v1/health", ""}; }

Call vt_lookup(const std::string& hex) { return Call{bhttp::verb::get, "/api/v3/files/" + hex, ""}; }

std::chrono::seconds retry_after_seconds(std::string_view header) {
  constexpr long long kDefault = 60, kMax = 3600;
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  while (!header.empty() && header.back() == ' ') header.remove_suffix(1);
  if (header.empty() || header.size() > 9 ||
      !std::all_of(header.begin(), header.end(), [](unsigned char c) { return std::isdigit(c); }))
    return std::chrono::seconds(kDefault);
  return std::chrono::seconds(std::min(std::stoll(std::string(header)), kMax));
}

Parsed parse_sluice_lookup(unsigned status, std::string_view body, std::string_view retry_after,
                           std::span<const std::string> hex) {
  if (status != 200) return http_error(status, body, retry_after);
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return failed("bad answer: not JSON", true);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array())
    return failed("bad answer: no \"data\" array", true);
  const json& data = j["data"];
  if (data.size() != hex.size())
    return failed("bad answer: " + std::to_string(data.size()) + " results for " + std::to_string(hex.size()) +
                      " hashes",
                  true);
  Parsed p;
  p.kind = Parsed::Kind::answered;
  p.answers.reserve(hex.size());
  for (std::size_t i = 0; i < hex.size(); ++i) {
    const json& f = data[i];
    std::string at = "bad answer: result " + std::to_string(i) + ": ";
    if (!f.is_object()) return failed(at + "not an object", true);
    auto sha = f.find("sha256");
    if (sha == f.end() || !sha->is_string()) return failed(at + "no sha256", true);
    if (lower(sha->get<std::string>()) != hex[i])
      return failed(at + "sha256 " + echo(sha->get<std::string>()) + " where " + hex[i] + " was asked", true);
    HashAnswer a;
    auto disp = f.find("disposition");
    std::string d = disp != f.end() && disp->is_string() ? disp->get<std::string>() : "";
    if (d == "clean")
      a.reputation = Reputation::clean;
    else if (d == "malicious")
      a.reputation = Reputation::malicious;
    else if (d == "unknown")
      a.reputation = Reputation::unknown;
    else
      return failed(at + "disposition " + (disp == f.end() ? "missing" : echo(disp->dump())), true);
    if (auto t = f.find("threat_name"); t != f.end() && !t->is_null()) {
      if (!t->is_string()) return failed(at + "threat_name is not a string", true);
      a.threat_name = t->get<std::string>();
    }
    if (auto s = f.find("threat_score"); s != f.end() && !s->is_null()) {
      if (!s->is_number_integer() || s->get<int64_t>() < 0 || s->get<int64_t>() > 100)
        return failed(at + "threat_score " + echo(s->dump()) + " is not 0-100", true);
      a.threat_score = static_cast<int>(s->get<int64_t>());
    }
    auto ttl = f.find("ttl_seconds");
    if (ttl == f.end() || !ttl->is_number_integer() || ttl->get<int64_t>() < 0 ||
        ttl->get<int64_t>() > int64_t{UINT32_MAX})
      return failed(at + "ttl_seconds missing or not a count of seconds", true);
    a.ttl_seconds = static_cast<uint32_t>(ttl->get<int64_t>());
    auto up = f.find("upload_wanted");
    if (up == f.end() || !up->is_boolean()) return failed(at + "upload_wanted missing or not true/false", true);
    a.upload_wanted = up->get<bool>();
    p.answers.push_back(std::move(a));
  }
  return p;
}

Parsed parse_vt_lookup(unsigned status, std::string_view body, std::string_view retry_after, const std::string& hex,
                       unsigned malicious_threshold) {
  if (status == 404 && error_code(body) == "NotFoundError") {  // never seen by VirusTotal
    Parsed p;
    p.kind = Parsed::Kind::answered;
    p.answers.push_back(HashAnswer{Reputation::unknown, "", -1, 0, false});
    return p;
  }
  if (status != 200) return http_error(status, body, retry_after);
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return failed("bad answer: not JSON", true);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_object())
    return failed("bad answer: no \"data\" object", true);
  const json& data = j["data"];
  auto type = data.find("type");
  if (type == data.end() || *type != "file") return failed("bad answer: data.type is not \"file\"", true);
  auto id = data.find("id");
  if (id == data.end() || !id->is_string() || !is_hex64(id->get<std::string>()) ||
      lower(id->get<std::string>()) != hex)
    return failed("bad answer: data.id " + (id == data.end() ? std::string("missing") : echo(id->dump())) +
                      " where " + hex + " was asked",
                  true);
  auto attrs = data.find("attributes");
  if (attrs == data.end() || !attrs->is_object()) return failed("bad answer: no data.attributes", true);
  auto stats = attrs->find("last_analysis_stats");
  if (stats == attrs->end() || !stats->is_object())
    return failed("bad answer: no data.attributes.last_analysis_stats", true);
  int64_t count[3];
  const char* names[3] = {"malicious", "harmless", "undetected"};
  for (int k = 0; k < 3; ++k) {
    auto v = stats->find(names[k]);
    if (v == stats->end() || !v->is_number_integer() || v->get<int64_t>() < 0)
      return failed(std::string("bad answer: last_analysis_stats.") + names[k] + " missing or not a count", true);
    count[k] = v->get<int64_t>();
  }
  HashAnswer a;
  if (count[0] >= static_cast<int64_t>(malicious_threshold)) {
    a.reputation = Reputation::malicious;
    auto ptc = attrs->find("popular_threat_classification");
    if (ptc != attrs->end() && ptc->is_object()) {
      auto label = ptc->find("suggested_threat_label");
      if (label != ptc->end() && label->is_string()) a.threat_name = label->get<std::string>();
    }
  } else if (count[1] + count[2] > 0) {
    a.reputation = Reputation::clean;
  } else {
    a.reputation = Reputation::unknown;  // no engine gave a result worth the name
  }
  Parsed p;
  p.kind = Parsed::Kind::answered;
  p.answers.push_back(std::move(a));
  return p;
}

Parsed parse_health(unsigned status, std::string_view body) {
  if (status == 200) {
    Parsed p;
    p.kind = Parsed::Kind::answered;
    return p;
  }
  return http_error(status, body, "");
}

}  // namespace sluice::control::reputation
