// Order of checks for every request (API.md, "Errors"): route (404), method (405), authentication
// (401/403), quota (429), then the request itself (400), then the store (503).
#include "control/cloud/api.h"
#include "control/cloud/multipart.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <iostream>

#include <nlohmann/json.hpp>

namespace sluice::cloud {

namespace {

using ojson = nlohmann::ordered_json;

// A batch look-up answers at most this many hashes: 1000 file objects are about 250 KB of JSON
// and one store transaction of a few milliseconds, so no request holds the loop for long.
constexpr std::size_t kMaxBatch = 1000;
// The change feed's page size: default and maximum.
constexpr unsigned kDefaultChangeLimit = 100;
constexpr unsigned kMaxChangeLimit = 1000;
// Threat names are labels ("Eicar-Test-Signature"); the appliance keeps 64 bytes of them.
constexpr std::size_t kMaxThreatName = 256;
// Client input quoted back in error messages is cut to this many bytes.
constexpr std::size_t kQuoteMax = 80;
// A sample upload's body may exceed the largest sample by its multipart framing: the boundaries
// and the part headers (a file name is at most a few KiB).
constexpr std::size_t kMultipartOverhead = 64 * 1024;
// File names are kept up to this many bytes (cut on a UTF-8 character boundary): NAME_MAX.
constexpr std::size_t kMaxFilename = 255;
// GET /api/v1/samples?sha256= answers at most this many samples (newest first). A SHA-256 has
// more than one only when earlier analyses failed.
constexpr unsigned kMaxSamplesListed = 100;

std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

std::string quote(std::string_view s) {
  std::string q(s.substr(0, kQuoteMax));
  if (s.size() > kQuoteMax) q += "...";
  return "'" + q + "'";
}

std::string digest(std::string_view key) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned len = 0;
  EVP_Digest(key.data(), key.size(), md.data(), &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(md.data()), len);
}

bool same_digest(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Appends a JSON string literal.
void append_json_string(std::string& out, std::string_view s) { out += dump(ojson(std::string(s))); }

void append_file(std::string& out, const Sha256& hash, const FileRecord& r, const Ttls& ttl) {
  out += "{\"sha256\":\"";
  out += sha256_hex(hash);
  out += "\",\"disposition\":\"";
  out += disposition_name(r.disposition);
  out += "\",\"threat_name\":";
  if (r.threat_name) {
    append_json_string(out, *r.threat_name);
  } else {
    out += "null";
  }
  out += ",\"threat_score\":";
  out += r.threat_score ? std::to_string(*r.threat_score) : "null";
  out += ",\"ttl_seconds\":";
  switch (r.disposition) {
    case Disposition::clean: out += std::to_string(ttl.clean); break;
    case Disposition::malicious: out += std::to_string(ttl.malicious); break;
    case Disposition::unknown: out += std::to_string(ttl.unknown); break;
  }
  // Unknown and no analysis result (no threat score): the service wants the file (DESIGN.md 1,
  // step 3). Also while a sample of it is being analysed: an appliance that asks then finds the
  // sample (GET /api/v1/samples?sha256=), does not upload it again, and holds its message for the
  // result instead of letting it through unanalysed.
  const bool upload_wanted = r.disposition == Disposition::unknown && !r.threat_score;
  out += ",\"upload_wanted\":";
  out += upload_wanted ? "true" : "false";
  out += ",\"last_changed\":";
  if (r.last_changed) {
    out += '"';
    out += rfc3339(*r.last_changed);
    out += '"';
  } else {
    out += "null";
  }
  out += '}';
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi << 4 | lo);
        i += 2;
        continue;
      }
    }
    out += s[i] == '+' ? ' ' : s[i];
  }
  return out;
}

// The value of parameter `name` in a query string (the last one if repeated), decoded.
std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  std::optional<std::string> found;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    std::size_t eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq)) != name) continue;
    found = eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
  }
  return found;
}

// Decimal digits in canonical form (no sign, no leading zero): a cursor has one spelling.
bool parse_uint(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19 || (s.size() > 1 && s[0] == '0')) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::optional<std::string_view> bearer(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != scheme[i]) return std::nullopt;
  std::string_view rest = authorization.substr(scheme.size());
  if (rest.front() != ' ' && rest.front() != '\t') return std::nullopt;
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  if (rest.empty()) return std::nullopt;
  return rest;
}

ApiResponse ok(const ojson& data) {
  ojson j;
  j["data"] = data;
  return ApiResponse{200, dump(j), 0, {}};
}

ApiResponse invalid(std::string_view message) { return api_error(400, "InvalidArgumentError", message); }

ApiResponse bad_json() { return api_error(400, "BadRequestError", "the request body is not valid JSON"); }

enum class Endpoint {
  health, file, lookup, changes, admin_file, admin_faults, samples, sample, sample_state, sample_threat, limits
};

struct Route {
  Endpoint endpoint;
  std::string_view allow;  // the methods it accepts
  std::string_view param;  // {sha256}
};

std::optional<Route> route(std::string_view path) {
  constexpr std::string_view files = "/api/v1/files/";
  constexpr std::string_view admin_files = "/api/v1/admin/files/";
  if (path == "/api/v1/health") return Route{Endpoint::health, "GET", {}};
  if (path == "/api/v1/files/lookup") return Route{Endpoint::lookup, "POST", {}};
  if (path == "/api/v1/dispositions/changes") return Route{Endpoint::changes, "GET", {}};
  if (path == "/api/v1/admin/faults") return Route{Endpoint::admin_faults, "GET, POST, DELETE", {}};
  if (path.starts_with(files) && path.size() > files.size() && path.find('/', files.size()) == std::string_view::npos)
    return Route{Endpoint::file, "GET", path.substr(files.size())};
  if (path.starts_with(admin_files) && path.size() > admin_files.size() &&
      path.find('/', admin_files.size()) == std::string_view::npos)
    return Route{Endpoint::admin_file, "PUT", path.substr(admin_files.size())};
  constexpr std::string_view samples = "/api/v1/samples/";
  if (path == "/api/v1/samples") return Route{Endpoint::samples, "GET, POST", {}};
  if (path == "/api/v1/limits") return Route{Endpoint::limits, "GET", {}};
  if (path.starts_with(samples) && path.size() > samples.size()) {
    const std::string_view rest = path.substr(samples.size());
    const std::size_t slash = rest.find('/');
    const std::string_view id = rest.substr(0, slash);
    if (id.empty()) return std::nullopt;
    if (slash == std::string_view::npos) return Route{Endpoint::sample, "GET", id};
    if (rest.substr(slash) == "/state") return Route{Endpoint::sample_state, "GET", id};
    if (rest.substr(slash) == "/threat") return Route{Endpoint::sample_threat, "GET", id};
  }
  return std::nullopt;
}

bool is_sample_endpoint(Endpoint e) {
  return e == Endpoint::samples || e == Endpoint::sample || e == Endpoint::sample_state ||
         e == Endpoint::sample_threat || e == Endpoint::limits;
}

bool is_sample_id(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// The name a file was submitted with, as kept: its last path component (a client may send a
// path), at most kMaxFilename bytes; none when nothing is left.
std::optional<std::string> sample_filename(const std::optional<std::string>& sent) {
  if (!sent) return std::nullopt;
  std::string_view name = *sent;
  if (const std::size_t sep = name.find_last_of("/\\"); sep != std::string_view::npos) name.remove_prefix(sep + 1);
  if (name.size() > kMaxFilename) {
    std::size_t cut = kMaxFilename;
    while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xc0) == 0x80) --cut;  // not inside a character
    name = name.substr(0, cut);
  }
  if (name.empty()) return std::nullopt;
  return std::string(name);
}

ojson sample_json(const Sample& s) {
  ojson j;
  j["id"] = s.id;
  j["sha256"] = sha256_hex(s.sha256);
  j["filename"] = s.filename ? ojson(*s.filename) : ojson(nullptr);
  j["size"] = s.size;
  j["state"] = std::string(sample_state_name(s.state));
  j["submitted_at"] = rfc3339(s.submitted_at);
  j["completed_at"] = s.completed_at ? ojson(rfc3339(*s.completed_at)) : ojson(nullptr);
  return j;
}

ApiResponse answer(unsigned status, const ojson& data) {
  ojson j;
  j["data"] = data;
  return ApiResponse{status, dump(j), 0, {}};
}

// The name the daily sample limit counts under: a digest of the quota's name for the client (its
// key, or its address when the service needs no key), so that no key is stored.
std::string client_id(const std::string& quota_name) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned len = 0;
  EVP_Digest(quota_name.data(), quota_name.size(), md.data(), &len, EVP_sha256(), nullptr);
  Sha256 h{};
  std::copy_n(md.begin(), h.size(), h.begin());
  return sha256_hex(h);
}

bool method_allowed(std::string_view allow, std::string_view method) {
  while (!allow.empty()) {
    std::size_t comma = allow.find(',');
    std::string_view m = allow.substr(0, comma);
    while (!m.empty() && m.front() == ' ') m.remove_prefix(1);
    if (m == method) return true;
    allow = comma == std::string_view::npos ? std::string_view() : allow.substr(comma + 1);
  }
  return false;
}

}  // namespace

ApiResponse api_error(unsigned status, std::string_view code, std::string_view message) {
  ojson j;
  j["error"]["code"] = std::string(code);
  j["error"]["message"] = std::string(message);
  return ApiResponse{status, dump(j), 0, {}};
}

bool is_admin_target(std::string_view target) noexcept { return target.starts_with("/api/v1/admin/"); }

std::string rfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Api::Api(ApiConfig config, Store& store, Faults& faults, WallClock wall, SteadyClock steady, Analyses* analyses)
    : config_(std::move(config)),
      store_(store),
      faults_(faults),
      quota_(config_.quota_per_minute),
      analyses_(analyses),
      wall_(wall ? std::move(wall)
                 : WallClock([] {
                     return static_cast<int64_t>(
                         std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count());
                   })),
      steady_(steady ? std::move(steady) : SteadyClock([] { return Quota::Clock::now(); })) {
  for (const auto& k : config_.api_keys) key_digests_.push_back(digest(k));
  if (config_.admin_key) admin_digest_ = digest(*config_.admin_key);
}

Api::Role Api::role_of(std::string_view key) const {
  const std::string d = digest(key);
  // Every configured key is compared, so the time taken does not say which one matched.
  bool admin = config_.admin_key && same_digest(d, admin_digest_);
  bool user = false;
  for (const auto& k : key_digests_) user |= same_digest(d, k);
  return admin ? Role::admin : user ? Role::user : Role::none;
}

Api::Auth Api::authenticate(const ApiRequest& req, bool admin_endpoint) const {
  std::optional<std::string_view> key;
  if (req.x_apikey && !req.x_apikey->empty()) {
    key = req.x_apikey;
  } else if (req.authorization) {
    key = bearer(*req.authorization);
  }
  Auth a;
  if (admin_endpoint) {
    if (!config_.admin_key) {
      a.refused = api_error(403, "ForbiddenError",
                            "admin endpoints are disabled: sluice-cloud was started without --admin-key");
      return a;
    }
    if (!key) {
      a.refused = api_error(401, "AuthenticationRequiredError",
                            "this endpoint needs the admin key (x-apikey header or Authorization: Bearer)");
      return a;
    }
    a.role = role_of(*key);
    if (a.role == Role::user) {
      a.refused = api_error(403, "ForbiddenError", "this endpoint needs the admin key; the key given is not it");
    } else if (a.role == Role::none) {
      a.refused = api_error(401, "WrongCredentialsError", "the API key given is not valid");
    }
    return a;
  }
  if (key) a.role = role_of(*key);
  if (config_.api_keys.empty()) {
    // Open service: no key needed; the quota names clients by key if a valid one came, else by address.
    if (a.role == Role::none) a.role = Role::user, key.reset();
  } else if (!key) {
    a.refused = api_error(401, "AuthenticationRequiredError",
                          "an API key is required (x-apikey header or Authorization: Bearer)");
    return a;
  } else if (a.role == Role::none) {
    a.refused = api_error(401, "WrongCredentialsError", "the API key given is not valid");
    return a;
  }
  a.quota_name = key ? "key:" + digest(*key) : "addr:" + std::string(req.client);
  return a;
}

ApiResponse Api::handle(const ApiRequest& req) {
  const std::string_view target = req.target;
  const std::size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);

  auto r = route(path);
  if (r && is_sample_endpoint(r->endpoint) && !analyses_) r.reset();
  if (!r) return api_error(404, "NotFoundError", "no such endpoint: " + quote(path));
  if (!method_allowed(r->allow, req.method)) {
    ApiResponse res = api_error(405, "MethodNotAllowedError",
                                quote(req.method) + " is not allowed here (allowed: " + std::string(r->allow) + ")");
    res.allow = r->allow;
    return res;
  }
  try {
    if (r->endpoint == Endpoint::health) return health();
    const bool admin = r->endpoint == Endpoint::admin_file || r->endpoint == Endpoint::admin_faults;
    Auth auth = authenticate(req, admin);
    if (auth.refused) return *auth.refused;
    if (!admin && quota_.enabled()) {
      if (unsigned wait = quota_.take(auth.quota_name, steady_()); wait > 0) {
        ApiResponse res = api_error(429, "QuotaExceededError",
                                    "quota of " + std::to_string(config_.quota_per_minute) +
                                        " requests per minute exceeded; retry in " + std::to_string(wait) + " s");
        res.retry_after = wait;
        return res;
      }
    }
    switch (r->endpoint) {
      case Endpoint::health: return health();
      case Endpoint::file: return get_file(r->param);
      case Endpoint::lookup: return lookup(req.body);
      case Endpoint::changes: return changes(query);
      case Endpoint::admin_file: return put_file(r->param, req.body);
      case Endpoint::admin_faults: return faults(req.method, req.body);
      case Endpoint::samples:
        return req.method == "POST" ? post_sample(req, auth.quota_name) : list_samples(query);
      case Endpoint::sample: return get_sample(r->param, "");
      case Endpoint::sample_state: return get_sample(r->param, "state");
      case Endpoint::sample_threat: return get_sample(r->param, "threat");
      case Endpoint::limits: return limits(auth.quota_name);
    }
    return api_error(404, "NotFoundError", "no such endpoint");
  } catch (const StoreError& e) {
    ++store_errors_;
    std::cerr << "sluice-cloud: store error: " << e.what() << std::endl;
    return api_error(503, "TransientError", std::string("the store is unavailable, retry later (") + e.what() + ")");
  }
}

ApiResponse Api::health() {
  store_.last_change_seq();  // the store answers (a StoreError becomes 503)
  ojson d;
  d["status"] = "ok";
  d["version"] = config_.version;
  return ok(d);
}

ApiResponse Api::get_file(std::string_view hex) {
  Sha256 h;
  if (!parse_sha256(hex, h)) return invalid(quote(hex) + " is not a SHA-256 (64 hex digits)");
  const FileRecord rec = store_.lookup(h);
  std::string body = "{\"data\":";
  append_file(body, h, rec, config_.ttl);
  body += '}';
  return ApiResponse{200, std::move(body), 0, {}};
}

ApiResponse Api::lookup(std::string_view body) {
  const ojson j = ojson::parse(body, nullptr, false);
  if (j.is_discarded()) return bad_json();
  if (!j.is_object()) return invalid("the body must be a JSON object {\"hashes\": [...]}");
  for (const auto& [key, v] : j.items())
    if (key != "hashes") return invalid("unknown field " + quote(key) + " (accepted: hashes)");
  const auto it = j.find("hashes");
  if (it == j.end() || !it->is_array()) return invalid("'hashes' must be an array of SHA-256s");
  if (it->empty() || it->size() > kMaxBatch)
    return invalid("'hashes' must hold 1 to " + std::to_string(kMaxBatch) + " SHA-256s (" +
                   std::to_string(it->size()) + " given)");
  std::vector<Sha256> hashes(it->size());
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& v = (*it)[i];
    if (!v.is_string() || !parse_sha256(v.get_ref<const std::string&>(), hashes[i]))
      return invalid("hashes[" + std::to_string(i) + "] is not a SHA-256 (64 hex digits)");
  }
  const std::vector<FileRecord> recs = store_.lookup(hashes);
  std::string out;
  out.reserve(40 + hashes.size() * 240);
  out += "{\"data\":[";
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    if (i) out += ',';
    append_file(out, hashes[i], recs[i], config_.ttl);
  }
  out += "]}";
  return ApiResponse{200, std::move(out), 0, {}};
}

ApiResponse Api::put_file(std::string_view hex, std::string_view body) {
  Sha256 h;
  if (!parse_sha256(hex, h)) return invalid(quote(hex) + " is not a SHA-256 (64 hex digits)");
  const ojson j = ojson::parse(body, nullptr, false);
  if (j.is_discarded()) return bad_json();
  if (!j.is_object()) return invalid("the body must be a JSON object {\"disposition\": ...}");
  std::optional<Disposition> d;
  std::optional<std::string> name;
  std::optional<int> score;
  for (const auto& [key, v] : j.items()) {
    if (key == "disposition") {
      if (v.is_string()) d = parse_disposition(v.get_ref<const std::string&>());
      if (!d) return invalid("disposition must be \"clean\", \"malicious\" or \"unknown\"");
    } else if (key == "threat_name") {
      if (v.is_null()) continue;
      if (!v.is_string() || v.get_ref<const std::string&>().size() > kMaxThreatName)
        return invalid("threat_name must be a string of at most " + std::to_string(kMaxThreatName) +
                       " bytes, or null");
      name = v.get<std::string>();
    } else if (key == "threat_score") {
      if (v.is_null()) continue;
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 100 ||
          (v.is_number_unsigned() && v.get<uint64_t>() > 100))
        return invalid("threat_score must be an integer from 0 to 100, or null");
      score = static_cast<int>(v.get<int64_t>());
    } else {
      return invalid("unknown field " + quote(key) + " (accepted: disposition, threat_name, threat_score)");
    }
  }
  if (!d) return invalid("disposition is required (\"clean\", \"malicious\" or \"unknown\")");
  const FileRecord rec = store_.set(h, *d, std::move(name), score, wall_());
  std::string out = "{\"data\":";
  append_file(out, h, rec, config_.ttl);
  out += '}';
  return ApiResponse{200, std::move(out), 0, {}};
}

ApiResponse Api::changes(std::string_view query) {
  unsigned limit = kDefaultChangeLimit;
  if (auto l = query_param(query, "limit")) {
    uint64_t n = 0;
    if (!parse_uint(*l, n) || n < 1 || n > kMaxChangeLimit)
      return invalid("limit must be an integer from 1 to " + std::to_string(kMaxChangeLimit));
    limit = static_cast<unsigned>(n);
  }
  // A cursor is "<store id>-<seq>": the seq of the last entry already seen, in this store.
  uint64_t after = 0;
  if (auto since = query_param(query, "since"); since && !since->empty()) {
    const std::string& id = store_.id();
    const bool ours = since->size() > id.size() + 1 && since->starts_with(id) && (*since)[id.size()] == '-';
    uint64_t seq = 0;
    if (!ours || !parse_uint(std::string_view(*since).substr(id.size() + 1), seq) || seq > store_.last_change_seq())
      return invalid("cursor " + quote(*since) +
                     " is not a cursor of this store (start again without 'since' to read the feed from the beginning)");
    after = seq;
  }
  const ChangePage page = store_.changes(after, limit);
  ojson data = ojson::array();
  for (const Change& c : page.changes) {
    ojson e;
    e["sha256"] = sha256_hex(c.sha256);
    e["old"] = std::string(disposition_name(c.old_disposition));
    e["new"] = std::string(disposition_name(c.new_disposition));
    e["threat_name"] = c.threat_name ? ojson(*c.threat_name) : ojson(nullptr);
    e["changed_at"] = rfc3339(c.changed_at);
    data.push_back(std::move(e));
  }
  const uint64_t last = page.changes.empty() ? after : page.changes.back().seq;
  ojson j;
  j["data"] = std::move(data);
  j["meta"]["cursor"] = store_.id() + "-" + std::to_string(last);
  j["meta"]["more"] = page.more;
  return ApiResponse{200, dump(j), 0, {}};
}

std::optional<Api::BodyLimit> Api::body_limit(std::string_view method, std::string_view target) const {
  if (!analyses_ || method != "POST" || target.substr(0, target.find('?')) != "/api/v1/samples") return std::nullopt;
  return BodyLimit{static_cast<std::size_t>(analyses_->config().max_sample_bytes) + kMultipartOverhead,
                   sample_too_large()};
}

ApiResponse Api::sample_too_large() const {
  const uint64_t max = analyses_ ? analyses_->config().max_sample_bytes : 0;
  return api_error(413, "PayloadTooLargeError",
                   "the sample is larger than the maximum sample size, " + std::to_string(max) + " bytes (" +
                       std::to_string(max >> 20) + " MiB)");
}

ApiResponse Api::post_sample(const ApiRequest& req, const std::string& client) {
  const FormFileResult form = find_form_file(req.content_type.value_or(""), req.body, "sample");
  if (!form.file) return api_error(400, "BadRequestError", form.error);
  const std::string_view bytes = form.file->content;
  if (bytes.size() > analyses_->config().max_sample_bytes) return sample_too_large();
  if (bytes.empty()) return invalid("the sample is empty");
  Analyses::Submitted s = analyses_->submit(bytes, sample_filename(form.file->filename), client_id(client));
  switch (s.outcome) {
    case Analyses::Outcome::created: return answer(201, sample_json(s.sample));
    case Analyses::Outcome::existing: return answer(200, sample_json(s.sample));
    case Analyses::Outcome::daily_limit: {
      ApiResponse res = api_error(
          429, "QuotaExceededError",
          "daily sample limit of " + std::to_string(analyses_->config().daily_samples) + " reached for this " +
              (client.starts_with("key:") ? "API key" : "client address") + "; retry after 00:00 UTC (in " +
              std::to_string(s.retry_after) + " s)");
      res.retry_after = s.retry_after;
      return res;
    }
    case Analyses::Outcome::queue_full: {
      ApiResponse res = api_error(503, "TransientError",
                                  "the analysis queue is full (" + std::to_string(analyses_->pending()) +
                                      " samples pending); retry in " + std::to_string(s.retry_after) + " s");
      res.retry_after = s.retry_after;
      return res;
    }
  }
  return api_error(500, "InternalError", "unexpected submission outcome");
}

ApiResponse Api::list_samples(std::string_view query) {
  const auto hex = query_param(query, "sha256");
  if (!hex || hex->empty()) return invalid("the sha256 parameter is required (GET /api/v1/samples?sha256=...)");
  Sha256 h;
  if (!parse_sha256(*hex, h)) return invalid(quote(*hex) + " is not a SHA-256 (64 hex digits)");
  ojson list = ojson::array();
  for (const Sample& s : store_.samples_of(h, kMaxSamplesListed)) list.push_back(sample_json(s));
  return answer(200, list);
}

ApiResponse Api::get_sample(std::string_view id, std::string_view what) {
  std::optional<Sample> s;
  if (is_sample_id(id)) s = store_.sample(id);
  if (!s) return api_error(404, "NotFoundError", "no such sample: " + quote(id));
  if (what == "state") {
    ojson j;
    j["id"] = s->id;
    j["state"] = std::string(sample_state_name(s->state));
    return answer(200, j);
  }
  if (what != "threat") return answer(200, sample_json(*s));
  if (!s->result)
    return api_error(400, "NotAvailableYet",
                     "analysis not complete: state " + std::string(sample_state_name(s->state)));
  const SampleResult& r = *s->result;
  ojson j;
  j["score"] = r.score ? ojson(*r.score) : ojson(nullptr);
  j["verdict"] = r.verdict;
  j["threat_name"] = r.threat_name ? ojson(*r.threat_name) : ojson(nullptr);
  ojson report = ojson::parse(r.report, nullptr, false);
  j["report"] = report.is_discarded() ? ojson::object() : std::move(report);
  return answer(200, j);
}

ApiResponse Api::limits(const std::string& client) {
  ojson j;
  const AnalysisConfig& c = analyses_->config();
  j["max_sample_bytes"] = c.max_sample_bytes;
  j["daily_samples"] = c.daily_samples ? ojson(c.daily_samples) : ojson(nullptr);
  const auto available = analyses_->submissions_available(client_id(client));
  j["submissions_available"] = available ? ojson(*available) : ojson(nullptr);
  // The same under the name Secure Malware Analytics gives it (its rate-limit answer), which
  // clients written for that service read.
  j["submissions-available"] = j["submissions_available"];
  return answer(200, j);
}

ApiResponse Api::faults(std::string_view method, std::string_view body) {
  if (method == "DELETE") {
    faults_.clear();
  } else if (method == "POST") {
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded()) return bad_json();
    std::string error;
    if (!faults_.set(j, error)) return invalid(error);
  }
  return ok(faults_.to_json());
}

}  // namespace sluice::cloud
