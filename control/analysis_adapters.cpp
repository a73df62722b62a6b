// control/analysis_adapters: see analysis_adapters.h.
#include "control/analysis_adapters.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "control/reputation_adapters.h"

namespace sluice::control::analysis {

using nlohmann::json;
using reputation::echo;
using reputation::retry_after_seconds;
namespace bhttp = boost::beast::http;
using PK = Parsed::Kind;

namespace {

// A threat name is a label, not a text (sluice-cloud stores up to 256 bytes).
constexpr std::size_t kMaxThreatName = 256;
// A member of a report kept whole in its bounded summary.
constexpr std::size_t kMaxSummaryMember = 2048;
// CAPE signatures kept in the report summary.
constexpr std::size_t kMaxSignatures = 50;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool contains(std::string_view text, std::string_view what) { return lower(text).find(what) != std::string::npos; }

// Printable ASCII only, at most `n` bytes: a service's message in a detail.
std::string printable(std::string_view s, std::size_t n = 160) {
  std::string out(s.substr(0, n));
  for (auto& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  return s.size() > n ? out + "..." : out;
}

Parsed make(PK kind, std::string detail = "", bool retryable = false) {
  Parsed p;
  p.kind = kind;
  p.detail = std::move(detail);
  p.retryable = retryable;
  return p;
}
Parsed failed(std::string detail, bool retryable) { return make(PK::failed, std::move(detail), retryable); }
Parsed bad(std::string what) { return failed("bad answer: " + std::move(what), true); }
Parsed answered() { return make(PK::answered); }

Parsed rate_limited(std::string detail, std::string_view retry_after, PK kind = PK::rate_limited) {
  Parsed p = make(kind);
  p.retry_after = retry_after_seconds(retry_after);
  p.detail = std::move(detail) + " (retry after " + std::to_string(p.retry_after.count()) + " s)";
  return p;
}

// A sample id as JSON: a string, or a non-negative integer written in decimal. "" when neither.
std::string id_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return std::to_string(v.get<int64_t>());
  return "";
}

std::optional<SampleState> sluice_state(std::string_view s) {
  static const std::pair<const char*, SampleState> names[] = {
      {"wait", SampleState::wait}, {"prep", SampleState::prep}, {"run", SampleState::run},
      {"proc", SampleState::proc}, {"succ", SampleState::succ}, {"fail", SampleState::fail}};
  for (const auto& [n, st] : names)
    if (s == n) return st;
  return std::nullopt;
}

// A report as compact JSON within ThreatOutcome::kMaxReportBytes: whole when it fits; else its
// members of up to kMaxSummaryMember bytes each, in order, while they fit, and "truncated": true.
void bound_report(const json& report, Parsed& p) {
  constexpr std::size_t kMax = ThreatOutcome::kMaxReportBytes;
  std::string whole = report.dump(-1, ' ', false, json::error_handler_t::replace);
  if (whole.size() <= kMax) {
    p.report = std::move(whole);
    return;
  }
  json summary = json::object();
  std::size_t used = 32;  // braces and the "truncated" member
  if (report.is_object())
    for (const auto& [k, v] : report.items()) {
      std::string member = json(k).dump() + ":" + v.dump(-1, ' ', false, json::error_handler_t::replace);
      if (member.size() > kMaxSummaryMember || used + member.size() + 1 > kMax) continue;
      used += member.size() + 1;
      summary[k] = v;
    }
  summary["truncated"] = true;
  p.report = summary.dump(-1, ' ', false, json::error_handler_t::replace);
  p.report_truncated = true;
}

// --- sluice-cloud ----------------------------------------------------------------------------------

struct SluiceError {
  std::string code, message;
};

SluiceError sluice_error(std::string_view body) {
  auto j = json::parse(body, nullptr, false);
  SluiceError e;
  if (j.is_discarded() || !j.is_object()) return e;
  auto err = j.find("error");
  if (err == j.end() || !err->is_object()) return e;
  auto c = err->find("code");
  auto m = err->find("message");
  if (c != err->end() && c->is_string() && c->get<std::string>().size() <= 64) {
    std::string code = c->get<std::string>();
    if (std::all_of(code.begin(), code.end(), [](unsigned char ch) { return std::isalnum(ch); })) e.code = code;
  }
  if (m != err->end() && m->is_string()) e.message = m->get<std::string>();
  return e;
}

std::string sluice_detail(unsigned status, const SluiceError& e) {
  std::string d = "HTTP " + std::to_string(status);
  if (!e.code.empty()) d += " " + e.code;
  if (!e.message.empty()) d += ": " + printable(e.message);
  return d;
}

// Every status but the operation's own answers: 429 is throttling; 5xx and 408 may pass and are
// retried; any other 4xx (401 wrong key, 404 no such endpoint...) would be refused again.
Parsed sluice_http_error(unsigned status, const SluiceError& e, std::string_view retry_after) {
  if (status == 429) return rate_limited(sluice_detail(status, e), retry_after);
  return failed(sluice_detail(status, e), status >= 500 || status == 408);
}

Parsed sluice_data(std::string_view body, json& data) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return bad("not JSON");
  if (!j.is_object() || !j.contains("data")) return bad("no \"data\"");
  data = std::move(j["data"]);
  return answered();
}

// A SAMPLE object: id, sha256 (the one asked, when `hex` is given), state.
std::string read_sample(const json& s, const std::string& hex, std::string& id, SampleState& state) {
  if (!s.is_object()) return "sample is not an object";
  auto i = s.find("id");
  id = i == s.end() ? "" : id_text(*i);
  if (!valid_sample_id(Kind::sluice, id))
    return "sample id " + (i == s.end() ? std::string("missing") : echo(i->dump()));
  if (!hex.empty()) {
    auto sha = s.find("sha256");
    if (sha == s.end() || !sha->is_string()) return "sample " + id + " has no sha256";
    if (lower(sha->get<std::string>()) != hex)
      return "sample " + id + " has sha256 " + echo(sha->get<std::string>()) + " where " + hex + " was asked";
  }
  auto st = s.find("state");
  auto known = st != s.end() && st->is_string() ? sluice_state(st->get<std::string>()) : std::nullopt;
  if (!known) return "sample " + id + " state " + (st == s.end() ? std::string("missing") : echo(st->dump()));
  state = *known;
  return "";
}

// --- CAPE ------------------------------------------------------------------------------------------

// CAPE's error answer: {"error": true, "error_value": "..."}, with HTTP 200 as often as not. A
// successful answer may carry "error": false or "error": [] (an empty list of per-file errors).
bool cape_error(const json& j, std::string& value) {
  if (!j.is_object()) return false;
  auto e = j.find("error");
  if (e == j.end() || !e->is_boolean() || !e->get<bool>()) return false;
  auto v = j.find("error_value");
  value = v != j.end() && v->is_string() ? v->get<std::string>() : "(no error_value)";
  return true;
}

// Django REST framework's own errors (authentication, throttling): {"detail": "..."}.
std::string drf_detail(std::string_view body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_object())
    if (auto d = j.find("detail"); d != j.end() && d->is_string()) return printable(d->get<std::string>());
  return "";
}

struct CapeAnswer {
  Parsed outcome;           // answered: `j` holds the body; anything else ends the parse
  json j;
  std::string error_value;  // outcome failed with a CAPE error: its text (the caller may map it)
};

// HTTP status, JSON, then CAPE's "error": true. 429 is DRF's throttling; 413 an upload too large
// for the web server in front.
CapeAnswer cape_answer(unsigned status, std::string_view body, std::string_view retry_after,
                       const json::parser_callback_t& filter = nullptr) {
  CapeAnswer a;
  if (status == 429) {
    std::string d = drf_detail(body);
    a.outcome = rate_limited("HTTP 429" + (d.empty() ? "" : ": " + d), retry_after);
    return a;
  }
  if (status == 413) {
    a.outcome = make(PK::too_large, "HTTP 413 (the upload is above the sandbox's limit)");
    return a;
  }
  auto j = json::parse(body, filter, false);
  if (status != 200) {
    std::string value, d = drf_detail(body);
    if (!j.is_discarded() && cape_error(j, value)) {
      a.error_value = value;
      d = printable(value);
    }
    a.outcome = failed("HTTP " + std::to_string(status) + (d.empty() ? "" : ": " + d), status >= 500 || status == 408);
    return a;
  }
  if (j.is_discarded()) {
    a.outcome = bad("not JSON");
    return a;
  }
  if (!j.is_object()) {
    a.outcome = bad("not a JSON object");
    return a;
  }
  if (cape_error(j, a.error_value)) {
    // The same request would be refused again ("File Create API is Disabled", "Task Search API is
    // Disabled", "Error adding task to database"): not retried, but the endpoint is no use to us.
    a.outcome = failed("CAPE error: " + printable(a.error_value), false);
    return a;
  }
  a.outcome = answered();
  a.j = std::move(j);
  return a;
}

bool is_not_found(std::string_view error_value) {
  return contains(error_value, "does not exist") || contains(error_value, "not found");
}

// A task id as CAPE writes it: a positive integer.
std::string task_id(const json& v) {
  if (v.is_number_unsigned() && v.get<uint64_t>() > 0 && v.get<uint64_t>() < (uint64_t{1} << 63))
    return std::to_string(v.get<uint64_t>());
  if (v.is_number_integer() && v.get<int64_t>() > 0) return std::to_string(v.get<int64_t>());
  return "";
}

// The CAPE report's members the summary keeps; the rest (behavior, network, dropped files...:
// most of a report's megabytes) is skipped while parsing, never built.
json::parser_callback_t report_filter() {
  return [top = std::string()](int depth, json::parse_event_t event, json& parsed) mutable {
    if (event != json::parse_event_t::key) return true;
    const std::string& key = parsed.get_ref<const std::string&>();
    if (depth == 1) {
      static const std::set<std::string> kept = {"malscore", "malstatus", "detections", "malfamily", "signatures",
                                                 "target",   "info",      "error",      "error_value"};
      top = key;
      return kept.count(key) > 0;
    }
    if (top == "info" && depth == 2) {
      static const std::set<std::string> kept = {"id", "category", "package", "started", "ended", "duration", "version"};
      return kept.count(key) > 0;
    }
    if (top == "target" && depth == 2) return key == "category" || key == "file";
    if (top == "target" && depth == 3) {
      static const std::set<std::string> kept = {"name", "size", "sha256", "type", "md5"};
      return kept.count(key) > 0;
    }
    if (top == "signatures" && depth == 3) {
      static const std::set<std::string> kept = {"name", "description", "severity", "confidence", "categories",
                                                 "families"};
      return kept.count(key) > 0;
    }
    return true;
  };
}

}  // namespace

// --- requests --------------------------------------------------------------------------------------

Call sluice_limits() { return Call{bhttp::verb::get, "/api/v1/limits", std::nullopt}; }
Call sluice_search(const std::string& hex) { return Call{bhttp::verb::get, "/api/v1/samples?sha256=" + hex, std::nullopt}; }
Call sluice_submit(std::shared_ptr<const std::string> bytes, std::string filename) {
  return Call{bhttp::verb::post, "/api/v1/samples", http::Upload{"sample", std::move(filename), std::move(bytes)}};
}
Call sluice_state(const std::string& id) { return Call{bhttp::verb::get, "/api/v1/samples/" + id + "/state", std::nullopt}; }
Call sluice_threat(const std::string& id) {
  return Call{bhttp::verb::get, "/api/v1/samples/" + id + "/threat", std::nullopt};
}
Call sluice_health() { return Call{bhttp::verb::get, "/api/v1/health", std::nullopt}; }

Call cape_search(const std::string& hex) {
  return Call{bhttp::verb::get, "/apiv2/tasks/search/sha256/" + hex + "/", std::nullopt};
}
Call cape_submit(std::shared_ptr<const std::string> bytes, std::string filename) {
  return Call{bhttp::verb::post, "/apiv2/tasks/create/file/", http::Upload{"file", std::move(filename), std::move(bytes)}};
}
Call cape_status(const std::string& id) { return Call{bhttp::verb::get, "/apiv2/tasks/status/" + id + "/", std::nullopt}; }
Call cape_report(const std::string& id) {
  return Call{bhttp::verb::get, "/apiv2/tasks/get/report/" + id + "/", std::nullopt};
}

bool valid_sample_id(Kind kind, std::string_view id) {
  if (kind == Kind::cape) {
    if (id.empty() || id.size() > 18 || id[0] == '0') return false;  // 18 digits: below 2^63
    return std::all_of(id.begin(), id.end(), [](unsigned char c) { return std::isdigit(c); });
  }
  if (id.empty() || id.size() > 128 || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '_' || c == '-'; });
}

std::optional<SampleState> cape_state(std::string_view status) {
  static const std::pair<const char*, SampleState> map[] = {
      {"pending", SampleState::wait},          {"recovered", SampleState::wait},
      {"distributed", SampleState::prep},      {"running", SampleState::run},
      {"completed", SampleState::proc},        {"distributed_completed", SampleState::proc},
      {"reported", SampleState::succ},         {"failed_analysis", SampleState::fail},
      {"failed_processing", SampleState::fail}, {"failed_reporting", SampleState::fail},
      {"banned", SampleState::fail}};
  for (const auto& [name, state] : map)
    if (status == name) return state;
  return std::nullopt;
}

// --- sluice-cloud answers ----------------------------------------------------------------------------

Parsed parse_sluice_limits(unsigned status, std::string_view body, std::string_view retry_after) {
  if (status != 200) return sluice_http_error(status, sluice_error(body), retry_after);
  json d;
  if (Parsed p = sluice_data(body, d); p.kind != PK::answered) return p;
  if (!d.is_object()) return bad("data is not an object");
  auto max = d.find("max_sample_bytes");
  if (max == d.end() || !max->is_number_unsigned() || max->get<uint64_t>() == 0)
    return bad("max_sample_bytes missing or not a positive count");
  Parsed p = answered();
  p.max_sample_bytes = max->get<uint64_t>();
  // Uploads left today: `submissions-available` as Threat Grid's rate-limit answer and issue 12
  // spell it, or `submissions_available` (sluice-cloud's JSON style elsewhere); one of them is
  // required, a count, or null for no daily limit. Nothing else of the answer is read.
  auto avail = d.find("submissions-available");
  if (avail == d.end()) avail = d.find("submissions_available");
  if (avail == d.end() || !(avail->is_null() || avail->is_number_unsigned()))
    return bad("submissions-available missing or not a count or null");
  if (!avail->is_null()) p.submissions_available = avail->get<uint64_t>();
  return p;
}

Parsed parse_sluice_search(unsigned status, std::string_view body, std::string_view retry_after, const std::string& hex) {
  if (status != 200) return sluice_http_error(status, sluice_error(body), retry_after);
  json d;
  if (Parsed p = sluice_data(body, d); p.kind != PK::answered) return p;
  if (!d.is_array()) return bad("data is not an array");
  Parsed p = answered();
  // sluice-cloud keeps one sample per SHA-256; should there be several, the first that did not
  // fail stands for the file (a failed one only if all failed).
  for (const auto& s : d) {
    std::string id;
    SampleState state{};
    if (std::string why = read_sample(s, hex, id, state); !why.empty()) return bad(why);
    if (!p.found || (p.state == SampleState::fail && state != SampleState::fail)) {
      p.found = true;
      p.id = id;
      p.state = state;
    }
  }
  return p;
}

Parsed parse_sluice_submit(unsigned status, std::string_view body, std::string_view retry_after, const std::string& hex) {
  if (status != 200 && status != 201) {
    SluiceError e = sluice_error(body);
    // The daily sample limit (API.md): 429 QuotaExceededError on the upload; the request quota's
    // 429 (any request) is throttling. They are told apart by the message.
    if (status == 429 && e.code == "QuotaExceededError" && contains(e.message, "sample"))
      return rate_limited(sluice_detail(status, e), retry_after, PK::sample_limit);
    if (status == 413 || (status == 400 && e.code == "InvalidArgumentError" &&
                          (contains(e.message, "limit") || contains(e.message, "large"))))
      return make(PK::too_large, sluice_detail(status, e));
    return sluice_http_error(status, e, retry_after);
  }
  json d;
  if (Parsed p = sluice_data(body, d); p.kind != PK::answered) return p;
  Parsed p = answered();
  if (std::string why = read_sample(d, hex, p.id, p.state); !why.empty()) return bad(why);
  p.already_known = status == 200;
  return p;
}

Parsed parse_sluice_state(unsigned status, std::string_view body, std::string_view retry_after, const std::string& id) {
  if (status != 200) {
    SluiceError e = sluice_error(body);
    if (status == 404 && e.code == "NotFoundError") return make(PK::not_found, sluice_detail(status, e));
    return sluice_http_error(status, e, retry_after);
  }
  json d;
  if (Parsed p = sluice_data(body, d); p.kind != PK::answered) return p;
  Parsed p = answered();
  if (std::string why = read_sample(d, "", p.id, p.state); !why.empty()) return bad(why);
  if (p.id != id) return bad("state of sample " + echo(p.id) + " where " + id + " was asked");
  return p;
}

Parsed parse_sluice_threat(unsigned status, std::string_view body, std::string_view retry_after) {
  if (status != 200) {
    SluiceError e = sluice_error(body);
    if (status == 404 && e.code == "NotFoundError") return make(PK::not_found, sluice_detail(status, e));
    if (status == 400 && e.code == "NotAvailableYet") return make(PK::not_ready, sluice_detail(status, e));
    return sluice_http_error(status, e, retry_after);
  }
  json d;
  if (Parsed p = sluice_data(body, d); p.kind != PK::answered) return p;
  if (!d.is_object()) return bad("data is not an object");
  Parsed p = answered();
  auto v = d.find("verdict");
  std::string verdict = v != d.end() && v->is_string() ? v->get<std::string>() : "";
  if (verdict == "clean")
    p.verdict = Verdict::clean;
  else if (verdict == "suspicious")
    p.verdict = Verdict::suspicious;
  else if (verdict == "malicious")
    p.verdict = Verdict::malicious;
  else if (verdict == "failed")
    p.verdict = Verdict::failed;
  else
    return bad("verdict " + (v == d.end() ? std::string("missing") : echo(v->dump())));
  auto s = d.find("score");
  if (s == d.end()) return bad("score missing");
  if (p.verdict == Verdict::failed) {
    if (!s->is_null()) return bad("score " + echo(s->dump()) + " for a failed analysis");
  } else {
    if (!s->is_number_integer() || s->get<int64_t>() < 0 || s->get<int64_t>() > 100)
      return bad("score " + echo(s->dump()) + " is not 0-100");
    p.score = static_cast<int>(s->get<int64_t>());
  }
  if (auto t = d.find("threat_name"); t != d.end() && !t->is_null()) {
    if (!t->is_string() || t->get<std::string>().size() > kMaxThreatName)
      return bad("threat_name is not a string of up to 256 bytes");
    p.threat_name = t->get<std::string>();
  }
  auto r = d.find("report");
  if (r == d.end() || !r->is_object()) return bad("report missing or not an object");
  bound_report(*r, p);
  return p;
}

Parsed parse_sluice_health(unsigned status, std::string_view body) {
  if (status == 200) return answered();
  return sluice_http_error(status, sluice_error(body), "");
}

// --- CAPE answers ------------------------------------------------------------------------------------

Parsed parse_cape_search(unsigned status, std::string_view body, std::string_view retry_after, const std::string& hex) {
  CapeAnswer a = cape_answer(status, body, retry_after);
  if (a.outcome.kind != PK::answered) return a.outcome;
  auto data = a.j.find("data");
  if (data == a.j.end() || !data->is_array()) return bad("no \"data\" array");
  // Several tasks may have analysed the file: the newest that did not fail stands for it (a
  // failed one only if all failed).
  Parsed p = answered();
  uint64_t best = 0;
  for (const auto& t : *data) {
    if (!t.is_object()) return bad("task is not an object");
    std::string id = t.contains("id") ? task_id(t["id"]) : "";
    if (id.empty()) return bad("task id " + (t.contains("id") ? echo(t["id"].dump()) : std::string("missing")));
    auto st = t.find("status");
    auto state = st != t.end() && st->is_string() ? cape_state(st->get<std::string>()) : std::nullopt;
    if (!state) return bad("task " + id + " status " + (st == t.end() ? std::string("missing") : echo(st->dump())));
    if (auto s = t.find("sample"); s != t.end() && s->is_object())
      if (auto sha = s->find("sha256"); sha != s->end() && sha->is_string() && lower(sha->get<std::string>()) != hex)
        return bad("task " + id + " is of sha256 " + echo(sha->get<std::string>()) + " where " + hex + " was asked");
    uint64_t n = std::stoull(id);
    bool better = !p.found || (p.state == SampleState::fail && *state != SampleState::fail) ||
                  ((p.state == SampleState::fail) == (*state == SampleState::fail) && n > best);
    if (better) {
      p.found = true;
      p.id = id;
      p.state = *state;
      best = n;
    }
  }
  return p;
}

Parsed parse_cape_submit(unsigned status, std::string_view body, std::string_view retry_after) {
  CapeAnswer a = cape_answer(status, body, retry_after);
  if (a.outcome.kind != PK::answered) return a.outcome;
  auto data = a.j.find("data");
  if (data == a.j.end() || !data->is_object()) return bad("no \"data\" object");
  auto ids = data->find("task_ids");
  if (ids == data->end() || !ids->is_array() || ids->empty()) return bad("no data.task_ids");
  // CAPE may split a file (an archive) into several tasks: the first stands for the sample.
  Parsed p = answered();
  p.id = task_id((*ids)[0]);
  if (p.id.empty()) return bad("task id " + echo((*ids)[0].dump()));
  p.state = SampleState::wait;
  return p;
}

Parsed parse_cape_status(unsigned status, std::string_view body, std::string_view retry_after) {
  CapeAnswer a = cape_answer(status, body, retry_after);
  if (!a.error_value.empty() && is_not_found(a.error_value))
    return make(PK::not_found, "CAPE error: " + printable(a.error_value));
  if (a.outcome.kind != PK::answered) return a.outcome;
  auto data = a.j.find("data");
  auto state = data != a.j.end() && data->is_string() ? cape_state(data->get<std::string>()) : std::nullopt;
  if (!state) return bad("status " + (data == a.j.end() ? std::string("missing") : echo(data->dump())));
  Parsed p = answered();
  p.state = *state;
  return p;
}

Parsed parse_cape_report(unsigned status, std::string_view body, std::string_view retry_after) {
  CapeAnswer a = cape_answer(status, body, retry_after, report_filter());
  if (!a.error_value.empty()) {
    if (is_not_found(a.error_value)) return make(PK::not_found, "CAPE error: " + printable(a.error_value));
    if (contains(a.error_value, "still being analyzed"))
      return make(PK::not_ready, "CAPE error: " + printable(a.error_value));
    if (contains(a.error_value, "task failed")) {  // failed_analysis, _processing, _reporting: no report
      Parsed p = answered();
      p.verdict = Verdict::failed;
      p.report = json{{"error", a.error_value}}.dump(-1, ' ', false, json::error_handler_t::replace);
      return p;
    }
  }
  if (a.outcome.kind != PK::answered) return a.outcome;
  const json& r = a.j;
  auto ms = r.find("malscore");
  if (ms == r.end() || !ms->is_number() || !(ms->get<double>() >= 0.0 && ms->get<double>() <= 10.0))
    return bad("malscore " + (ms == r.end() ? std::string("missing") : echo(ms->dump())) + " is not 0-10");
  int score = static_cast<int>(std::lround(ms->get<double>() * 10.0));
  Parsed p = answered();
  // malstatus (lib/cuckoo/common/scoring.py): Malicious, Suspicious, Clean, Undetected, Failed (the
  // sample never ran); none for file types scored generically: then the score decides with CAPE's
  // own thresholds (7.0 malicious, 4.0 suspicious).
  auto st = r.find("malstatus");
  std::string malstatus = st != r.end() && st->is_string() ? st->get<std::string>() : "";
  if (st != r.end() && !st->is_null() && !st->is_string()) return bad("malstatus " + echo(st->dump()));
  if (malstatus == "Malicious")
    p.verdict = Verdict::malicious;
  else if (malstatus == "Suspicious")
    p.verdict = Verdict::suspicious;
  else if (malstatus == "Clean" || malstatus == "Undetected")
    p.verdict = Verdict::clean;
  else if (malstatus == "Failed")
    p.verdict = Verdict::failed;
  else if (malstatus.empty())
    p.verdict = score >= 70 ? Verdict::malicious : score >= 40 ? Verdict::suspicious : Verdict::clean;
  else
    return bad("malstatus " + echo(malstatus));
  if (p.verdict != Verdict::failed) p.score = score;
  // The family: "detections" (a name in older releases, a list of {"family", "details"} in newer
  // ones), else "malfamily".
  if (auto d = r.find("detections"); d != r.end()) {
    if (d->is_string())
      p.threat_name = d->get<std::string>();
    else if (d->is_array() && !d->empty() && (*d)[0].is_object() && (*d)[0].contains("family") &&
             (*d)[0]["family"].is_string())
      p.threat_name = (*d)[0]["family"].get<std::string>();
  }
  if (p.threat_name.empty())
    if (auto f = r.find("malfamily"); f != r.end() && f->is_string()) p.threat_name = f->get<std::string>();
  if (p.threat_name.size() > kMaxThreatName) p.threat_name.resize(kMaxThreatName);
  json summary = json::object();
  for (const char* k : {"malscore", "malstatus", "detections", "malfamily", "info", "target"})
    if (auto it = r.find(k); it != r.end()) summary[k] = *it;
  if (auto sigs = r.find("signatures"); sigs != r.end() && sigs->is_array()) {
    json kept = json::array();
    for (const auto& s : *sigs) {
      if (kept.size() == kMaxSignatures) break;
      kept.push_back(s);
    }
    summary["signatures"] = std::move(kept);
  }
  bound_report(summary, p);
  return p;
}

}  // namespace sluice::control::analysis
