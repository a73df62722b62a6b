// sluiced's management API routes (api_routes.h, docs/api.md).
#include "control/api_routes.h"

#include <yaml-cpp/yaml.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>

#include "control/file_analysis.h"
#include "control/file_reputation.h"
#include "control/hex.h"
#include "control/quarantine_store.h"
#include "control/report_page.h"
#include "control/retrospective.h"
#include "control/sightings_store.h"
#include "control/smtp_send.h"
#include "control/trace.h"

namespace sluice::control {
namespace {

constexpr uint64_t kMaxLimit = 10000;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The request body as a JSON object ({} when empty); nullopt (and the answer sent) when it is not one.
std::optional<Json> body_object(const ApiRequest& rq, const ApiReply& reply) {
  if (rq.body.empty()) return Json::object();
  Json j = Json::parse(rq.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    reply(api_bad_request("the body must be a JSON object"));
    return std::nullopt;
  }
  return j;
}

// A string member of a body ("" when absent); false (and the answer sent) when it is not a string.
bool string_member(const Json& j, const char* name, std::string& out, const ApiReply& reply, std::size_t max = 1000) {
  if (!j.contains(name) || j[name].is_null()) return true;
  if (!j[name].is_string() || j[name].get_ref<const std::string&>().size() > max) {
    reply(api_bad_request(std::string("'") + name + "' must be a string of at most " + std::to_string(max) + " bytes"));
    return false;
  }
  out = j[name].get<std::string>();
  return true;
}

bool sha_param(const std::string& text, std::string& out, const ApiReply& reply) {
  if (api_parse_sha256(text, out)) return true;
  reply(api_bad_request("'" + text.substr(0, 80) + "' is not a SHA-256 (64 hex digits)"));
  return false;
}

bool limit_param(const ApiRequest& rq, uint64_t& limit, const ApiReply& reply, uint64_t fallback = 100) {
  const std::string text = rq.arg("limit");
  if (text.empty()) {
    limit = fallback;
    return true;
  }
  if (api_parse_uint(text, 1, kMaxLimit, limit)) return true;
  reply(api_bad_request("limit must be 1.." + std::to_string(kMaxLimit)));
  return false;
}

bool time_param(const ApiRequest& rq, const char* name, int64_t& ms, const ApiReply& reply) {
  const std::string text = rq.arg(name);
  if (text.empty() || api_parse_time(text, ms)) return true;
  reply(api_bad_request(std::string(name) + " must be an RFC 3339 time or milliseconds since 1970"));
  return false;
}

Json quarantine_json(const QuarantineEntry& e) {
  Json files = Json::array();
  for (const auto& f : e.files)
    files.push_back({{"filename", f.filename}, {"sha256", f.sha256}, {"reputation", f.reputation}, {"pending", f.pending}});
  Json j = {{"id", e.id},
            {"state", quarantine_state_name(e.state)},
            {"received", rfc3339(e.received_ms * 1000)},
            {"stored", rfc3339(e.stored_ms * 1000)},
            {"size", e.size},
            {"message_sha256", e.message_sha256},
            {"flow_id", e.flow_id},
            {"transaction", e.transaction},
            {"client_ip", e.client_ip},
            {"client_port", e.client_port},
            {"server_ip", e.server_ip},
            {"server_port", e.server_port},
            {"helo", e.helo},
            {"mail_from", e.mail_from},
            {"rcpt_to", e.rcpt_to},
            {"subject", e.subject},
            {"message_id", e.message_id},
            {"files", std::move(files)},
            {"reasons", e.reasons}};
  if (e.state != QuarantineState::held) {
    j["action"] = e.action;
    j["by"] = e.by;
    j["why"] = e.why;
    j["changed"] = rfc3339(e.changed_ms * 1000);
  }
  return j;
}

ApiResponse quarantine_failure(const QuarantineResult& r) {
  switch (r.error) {
    case QuarantineError::not_found: return api_not_found(r.message);
    case QuarantineError::wrong_state: return api_conflict(r.message);
    case QuarantineError::invalid: return api_bad_request(r.message);
    default: return api_error(500, "InternalError", r.message);
  }
}

Json sighting_json(const SightedMessage& m) {
  Json files = Json::array();
  for (const auto& f : m.files) {
    Json j = {{"sha256", f.sha256}, {"filename", f.filename}, {"size", f.size}, {"file_type", f.file_type},
              {"reputation", f.reputation}};
    if (!f.archive_path.empty()) j["archive_path"] = f.archive_path;
    if (!f.threat_name.empty()) j["threat_name"] = f.threat_name;
    if (!f.reading.empty()) j["reading"] = f.reading;
    files.push_back(std::move(j));
  }
  return {{"time", rfc3339(m.time_ms * 1000)}, {"appliance", m.appliance}, {"flow_id", m.flow_id},
          {"transaction", m.transaction}, {"client_ip", m.client_ip}, {"client_port", m.client_port},
          {"server_ip", m.server_ip}, {"server_port", m.server_port}, {"message_id", m.message_id},
          {"message_sha256", m.message_sha256}, {"subject", m.subject}, {"mail_from", m.mail_from},
          {"rcpt_to", m.rcpt_to}, {"header_from", m.header_from}, {"header_to", m.header_to},
          {"header_cc", m.header_cc}, {"disposition", m.disposition}, {"action", m.action},
          {"files", std::move(files)}};
}

Json sightings_json(const std::vector<SightedMessage>& all) {
  Json list = Json::array();
  for (const auto& m : all) list.push_back(sighting_json(m));
  return list;
}

// An effective value (canonical YAML: strings quoted) as JSON, secrets redacted.
Json yaml_json(const YAML::Node& n, const std::string& key) {
  static const std::set<std::string> secrets = {"api_key", "password", "client_key"};
  if (n.IsMap()) {
    Json j = Json::object();
    for (const auto& kv : n) {
      const std::string k = kv.first.as<std::string>();
      j[k] = yaml_json(kv.second, k);
    }
    return j;
  }
  if (n.IsSequence()) {
    Json j = Json::array();
    for (const auto& v : n) j.push_back(yaml_json(v, key));
    return j;
  }
  if (!n.IsScalar()) return nullptr;
  const std::string text = n.Scalar();
  if (secrets.count(key) && !text.empty()) return "<redacted>";
  if (n.Tag() == "!") return text;  // quoted: a string
  if (text == "true" || text == "false") return text == "true";
  long long v = 0;
  if (YAML::convert<long long>::decode(n, v)) return v;
  return text;
}

}  // namespace

Json config_json(const Config& config) {
  Json keys = Json::object();
  for (const auto& [key, text] : config.effective) {
    const std::string last = key.substr(key.rfind('.') + 1);
    try {
      keys[key] = yaml_json(YAML::Load(text), last);
    } catch (const std::exception&) {
      keys[key] = text;
    }
  }
  return keys;
}

std::vector<ApiRoute> api_routes(ApiServices sv) {
  auto s = std::make_shared<ApiServices>(std::move(sv));
  // Quarantine ids being released to the relay: a second release waits for the first's end.
  auto relaying = std::make_shared<std::set<std::string>>();
  std::vector<ApiRoute> r;
  auto add = [&r](const char* method, const char* pattern, ApiAccess access, ApiHandler h) {
    r.push_back({method, pattern, access, std::move(h)});
  };

  add("GET", "/metrics", ApiAccess::open, [s](const ApiRequest&, ApiReply reply) {
    ApiResponse rs;
    rs.content_type = "text/plain; version=0.0.4; charset=utf-8";
    rs.body = s->metrics();
    reply(std::move(rs));
  });
  add("GET", "/api/v1/status", ApiAccess::read, [s](const ApiRequest&, ApiReply reply) { reply(api_json(200, s->status())); });
  add("GET", "/api/v1/counters", ApiAccess::read,
      [s](const ApiRequest&, ApiReply reply) { reply(api_json(200, s->counters())); });

  // --- endpoints ---
  add("GET", "/api/v1/endpoints", ApiAccess::read, [s](const ApiRequest&, ApiReply reply) {
    reply(api_json(200, {{"reputation", s->reputation.endpoints_status()}, {"analysis", s->analysis.endpoints_status()}}));
  });
  add("POST", "/api/v1/endpoints", ApiAccess::admin, [s](const ApiRequest& rq, ApiReply reply) {
    const auto body = body_object(rq, reply);
    if (!body) return;
    std::string section;
    if (!string_member(*body, "section", section, reply)) return;
    if (section != "reputation" && section != "analysis")
      return reply(api_bad_request("'section' must be \"reputation\" or \"analysis\""));
    EndpointConfig e;
    for (const auto& [name, field] : {std::pair{"name", &e.name}, {"kind", &e.kind}, {"url", &e.url},
                                      {"api_key", &e.api_key}, {"ca_file", &e.ca_file}, {"pin_sha256", &e.pin_sha256}})
      if (!string_member(*body, name, *field, reply)) return;
    if (body->contains("insecure")) {
      if (!(*body)["insecure"].is_boolean()) return reply(api_bad_request("'insecure' must be true or false"));
      e.insecure = (*body)["insecure"].get<bool>();
    }
    for (const auto& [k, v] : body->items())
      if (k != "section" && k != "name" && k != "kind" && k != "url" && k != "api_key" && k != "ca_file" &&
          k != "pin_sha256" && k != "insecure")
        return reply(api_bad_request("unknown member '" + k.substr(0, 80) + "'"));
    if (e.name.empty() || e.url.empty()) return reply(api_bad_request("'name' and 'url' are required"));
    if (e.kind.empty()) e.kind = "sluice";
    const bool reputation = section == "reputation";
    if (const std::string err = reputation ? s->reputation.add_endpoint(e) : s->analysis.add_endpoint(e); !err.empty()) {
      if (err.find("name used twice") != std::string::npos) return reply(api_conflict(err));
      if (err.find("not running") != std::string::npos) return reply(api_unavailable(err));
      return reply(api_bad_request(err));
    }
    if (reputation) {
      if (s->endpoints_changed) s->endpoints_changed();
      s->retrospective.add_endpoint(e);  // its change feed too, from the next heartbeat
    }
    for (const auto& j : reputation ? s->reputation.endpoints_status() : s->analysis.endpoints_status())
      if (j["name"] == e.name) return reply(api_json(201, j));
    reply(api_json(201, {{"name", e.name}}));
  });
  add("DELETE", "/api/v1/endpoints/{section}/{name}", ApiAccess::admin, [s](const ApiRequest& rq, ApiReply reply) {
    const std::string& section = rq.params[0];
    if (section != "reputation" && section != "analysis")
      return reply(api_bad_request("section must be reputation or analysis"));
    if (!(section == "reputation" ? s->reputation.remove_endpoint(rq.params[1]) : s->analysis.remove_endpoint(rq.params[1])))
      return reply(api_not_found("no " + section + " endpoint '" + rq.params[1].substr(0, 80) + "'"));
    if (section == "reputation") s->retrospective.remove_endpoint(rq.params[1]);
    reply(api_json(200, {{"removed", rq.params[1]}}));
  });
  add("POST", "/api/v1/endpoints/{section}/{name}/test", ApiAccess::admin, [s](const ApiRequest& rq, ApiReply reply) {
    if (rq.params[0] != "reputation" && rq.params[0] != "analysis")
      return reply(api_bad_request("section must be reputation or analysis"));
    auto done = [reply](Json j) { reply(api_json(200, j)); };
    const bool known = rq.params[0] == "reputation" ? s->reputation.test_endpoint(rq.params[1], done)
                                                    : s->analysis.test_endpoint(rq.params[1], done);
    if (!known) reply(api_not_found("no " + rq.params[0] + " endpoint '" + rq.params[1].substr(0, 80) + "'"));
  });

  // --- the verdict cache and overrides ---
  add("GET", "/api/v1/cache/{sha256}", ApiAccess::read, [s](const ApiRequest& rq, ApiReply reply) {
    std::string sha;
    if (!sha_param(rq.params[0], sha, reply)) return;
    const auto j = s->reputation.cache_entry(sha);
    if (!j) return reply(api_unavailable("no verdict cache: reputation endpoints are not configured"));
    reply(api_json(200, *j));
  });
  add("DELETE", "/api/v1/cache/{sha256}", ApiAccess::admin, [s](const ApiRequest& rq, ApiReply reply) {
    std::string sha;
    if (!sha_param(rq.params[0], sha, reply)) return;
    if (!s->reputation.enabled()) return reply(api_unavailable("no verdict cache: reputation endpoints are not configured"));
    if (!s->reputation.drop(sha)) {
      const auto j = s->reputation.cache_entry(sha);
      if (j && j->value("source", "") == "override")
        return reply(api_conflict("the file has a local override: DELETE /api/v1/overrides/" + sha + " removes it"));
      return reply(api_not_found("no cache entry for " + sha));
    }
    reply(api_json(200, {{"sha256", sha}, {"dropped", true}}));
  });
  add("POST", "/api/v1/cache/flush", ApiAccess::admin, [s](const ApiRequest&, ApiReply reply) {
    if (!s->reputation.enabled()) return reply(api_unavailable("no verdict cache: reputation endpoints are not configured"));
    reply(api_json(200, {{"dropped", s->reputation.flush()}}));
  });
  add("GET", "/api/v1/overrides", ApiAccess::read, [s](const ApiRequest&, ApiReply reply) {
    reply(api_json(200, {{"overrides", s->reputation.overrides()}}));
  });
  add("PUT", "/api/v1/overrides/{sha256}", ApiAccess::admin, [s](const ApiRequest& rq, ApiReply reply) {
    std::string sha, verdict, comment;
    if (!sha_param(rq.params[0], sha, reply)) return;
    const auto body = body_object(rq, reply);
    if (!body || !string_member(*body, "verdict", verdict, reply) || !string_member(*body, "comment", comment, reply, 500))
      return;
    if (verdict != "allow" && verdict != "block") return reply(api_bad_request("'verdict' must be \"allow\" or \"block\""));
    if (const std::string err = s->reputation.set_override(sha, verdict == "block", comment, rq.who); !err.empty())
      return reply(api_unavailable(err));
    for (const auto& o : s->reputation.overrides())
      if (o["sha256"] == sha) return reply(api_json(200, o));
    reply(api_json(200, {{"sha256", sha}}));
  });
  add("DELETE", "/api/v1/overrides/{sha256}", ApiAccess::admin, [s](const ApiRequest& rq, ApiReply reply) {
    std::string sha;
    if (!sha_param(rq.params[0], sha, reply)) return;
    if (!s->reputation.remove_override(sha)) return reply(api_not_found("no override for " + sha));
    reply(api_json(200, {{"sha256", sha}, {"removed", true}}));
  });

  // --- the quarantine ---
  auto no_quarantine = [] {
    return api_unavailable("no quarantine: it needs analysis endpoints and state.dir");
  };
  add("GET", "/api/v1/quarantine", ApiAccess::read, [s, no_quarantine](const ApiRequest& rq, ApiReply reply) {
    QuarantineQuery q;
    uint64_t limit = 0;
    if (!limit_param(rq, limit, reply) || !time_param(rq, "since", q.since_ms, reply)) return;
    q.limit = limit;
    if (const auto& st = rq.arg("state"); !st.empty()) {
      q.state = parse_quarantine_state(st);
      if (!q.state) return reply(api_bad_request("state must be held, released or deleted"));
    }
    q.sender = rq.arg("sender");
    if (const auto& sha = rq.arg("sha256"); !sha.empty() && !sha_param(sha, q.file_sha256, reply)) return;
    q.after = rq.arg("after");
    const std::string order = rq.arg("order", "newest");
    if (order != "newest" && order != "oldest") return reply(api_bad_request("order must be newest or oldest"));
    q.newest_first = order == "newest";
    if (!s->analysis.quarantine_job([q, reply](QuarantineStore& store) {
          const QuarantinePage page = store.list(q);
          Json entries = Json::array();
          for (const auto& e : page.entries) entries.push_back(quarantine_json(e));
          reply(api_json(200, {{"entries", std::move(entries)}, {"next", page.next}, {"matching", page.matching}}));
        }))
      reply(no_quarantine());
  });
  add("GET", "/api/v1/quarantine/{id}", ApiAccess::read, [s, no_quarantine](const ApiRequest& rq, ApiReply reply) {
    if (!s->analysis.quarantine_job([id = rq.params[0], reply](QuarantineStore& store) {
          const auto e = store.show(id);
          reply(e ? api_json(200, quarantine_json(*e)) : api_not_found("no quarantine entry " + id.substr(0, 80)));
        }))
      reply(no_quarantine());
  });
  add("GET", "/api/v1/quarantine/{id}/eml", ApiAccess::read, [s, no_quarantine](const ApiRequest& rq, ApiReply reply) {
    if (!s->analysis.quarantine_job([id = rq.params[0], reply](QuarantineStore& store) {
          ApiResponse rs;
          const QuarantineResult r = store.read(id, rs.body);
          if (!r.ok()) return reply(quarantine_failure(r));
          rs.content_type = "message/rfc822";
          rs.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + id + ".eml\"");
          reply(std::move(rs));
        }))
      reply(no_quarantine());
  });
  add("POST", "/api/v1/quarantine/{id}/delete", ApiAccess::admin, [s, no_quarantine](const ApiRequest& rq, ApiReply reply) {
    const auto body = body_object(rq, reply);
    std::string why;
    if (!body || !string_member(*body, "why", why, reply)) return;
    const int64_t now = wall_ms();
    if (!s->analysis.quarantine_job([id = rq.params[0], who = rq.who, why, now, reply](QuarantineStore& store) {
          const QuarantineResult r = store.delete_entry(id, who, why, now);
          if (!r.ok()) return reply(quarantine_failure(r));
          reply(api_json(200, quarantine_json(*store.show(id))));
        }))
      reply(no_quarantine());
  });
  // Release: the entry is read (ordered pool), sent to the relay when asked (the unordered pool: a
  // slow relay never holds up the event writer), then marked released (ordered pool again).
  add("POST", "/api/v1/quarantine/{id}/release", ApiAccess::admin,
      [s, relaying, no_quarantine](const ApiRequest& rq, ApiReply reply) {
        const auto body = body_object(rq, reply);
        std::string why;
        if (!body || !string_member(*body, "why", why, reply)) return;
        bool relay = false;
        if (body->contains("relay")) {
          if (!(*body)["relay"].is_boolean()) return reply(api_bad_request("'relay' must be true or false"));
          relay = (*body)["relay"].get<bool>();
        }
        const QuarantineRelayConfig& rc = s->config.analysis.relay;
        if (relay && rc.address.empty())
          return reply(api_conflict("no relay: set quarantine.relay (host:port) to send released messages on"));
        const std::string id = rq.params[0];
        if (relaying->count(id)) return reply(api_conflict("a release of " + id.substr(0, 80) + " is under way"));
        auto mark = [s, id, who = rq.who, why, reply](const std::string& action) {
          const int64_t now = wall_ms();
          if (!s->analysis.quarantine_job([id, who, why, now, action, reply](QuarantineStore& store) {
                const QuarantineResult r = store.release(id, action, who, why, now);
                if (!r.ok()) return reply(quarantine_failure(r));
                reply(api_json(200, quarantine_json(*store.show(id))));
              }))
            reply(api_unavailable("the control plane is busy or stopping; try again"));
        };
        if (!relay) {
          if (!s->analysis.has_quarantine()) return reply(no_quarantine());
          return mark("released");
        }
        relaying->insert(id);
        SmtpRelay smtp;
        smtp.url = smtp_url(rc.address);
        smtp.starttls = rc.starttls != "none";
        smtp.starttls_required = rc.starttls == "required";
        smtp.ca_file = rc.ca_file;
        smtp.timeout_ms = rc.timeout_ms;
        auto finished = [relaying, id](ServiceLoop& loop) { loop.post([relaying, id] { relaying->erase(id); }); };
        const bool queued = s->analysis.quarantine_job([s, id, smtp, mark, reply, finished](QuarantineStore& store) {
          const auto e = store.show(id);
          if (!e) {
            finished(s->loop);
            return reply(api_not_found("no quarantine entry " + id.substr(0, 80)));
          }
          if (e->state != QuarantineState::held) {
            finished(s->loop);
            return reply(api_conflict("quarantine entry " + id + " is " + quarantine_state_name(e->state) + ", not held"));
          }
          auto bytes = std::make_shared<std::string>();
          if (const QuarantineResult r = store.read(id, *bytes); !r.ok()) {
            finished(s->loop);
            return reply(quarantine_failure(r));
          }
          // To the unordered pool for the transfer, from the loop.
          s->loop.post([s, e = *e, bytes, smtp, mark, reply, finished] {
            const bool sent = s->loop.submit([s, e, bytes, smtp, mark, reply, finished] {
              const std::string error = smtp_send(smtp, e.mail_from, e.rcpt_to, *bytes);
              s->loop.post([s, error, mark, reply, finished, url = smtp.url] {
                finished(s->loop);
                if (!error.empty())
                  return reply(api_error(502, "RelayError",
                                         "the relay " + url + " did not take the message (" + error +
                                             "); it stays held"));
                mark("relayed");
              });
            });
            if (!sent) {
              finished(s->loop);
              reply(api_unavailable("the control plane is busy; try again"));
            }
          });
        });
        if (!queued) {
          relaying->erase(id);
          reply(no_quarantine());
        }
      });

  // --- sightings ---
  auto no_sightings = [] { return api_unavailable("no sightings store: it needs state.dir"); };
  add("GET", "/api/v1/sightings/{sha256}", ApiAccess::read, [s, no_sightings](const ApiRequest& rq, ApiReply reply) {
    std::string sha;
    uint64_t limit = 0;
    if (!sha_param(rq.params[0], sha, reply) || !limit_param(rq, limit, reply, 1000)) return;
    if (!s->retrospective.read_store([sha, limit, reply](SightingsStore& st) {
          reply(api_json(200, {{"sha256", sha}, {"messages", sightings_json(st.where_seen(sha, static_cast<unsigned>(limit)))}}));
        }))
      reply(no_sightings());
  });
  add("GET", "/api/v1/sightings", ApiAccess::read, [s, no_sightings](const ApiRequest& rq, ApiReply reply) {
    uint64_t limit = 0;
    int64_t from = 0, to = INT64_MAX;
    if (!limit_param(rq, limit, reply, 1000) || !time_param(rq, "from", from, reply) || !time_param(rq, "to", to, reply))
      return;
    if (from >= to) return reply(api_bad_request("from must be before to"));
    const std::string recipient = rq.arg("recipient");
    if (!s->retrospective.read_store([recipient, from, to, limit, reply](SightingsStore& st) {
          const auto n = static_cast<unsigned>(limit);
          reply(api_json(200, {{"messages", sightings_json(recipient.empty() ? st.in_range(from, to, n)
                                                                             : st.for_recipient(recipient, from, to, n))}}));
        }))
      reply(no_sightings());
  });
  add("POST", "/api/v1/retrospective/heartbeat", ApiAccess::admin, [s](const ApiRequest&, ApiReply reply) {
    const bool again = s->retrospective.heartbeat_running();
    s->retrospective.heartbeat_now();
    reply(api_json(202, {{"started", !again}, {"queued", again}}));
  });

  // --- the report page's figures, traces ---
  add("GET", "/api/v1/report", ApiAccess::read, [s](const ApiRequest& rq, ApiReply reply) {
    const std::string w = rq.arg("window", "1h");
    const unsigned window_s = w == "1h" ? 3600 : w == "6h" ? 6 * 3600 : w == "24h" ? 24 * 3600 : 0;
    if (!window_s) return reply(api_bad_request("window must be 1h, 6h or 24h"));
    reply(api_json(200, s->report(window_s)));
  });
  // One search at a time per two pool threads: each may read every trace file.
  auto searches = std::make_shared<std::atomic<unsigned>>(0);
  add("GET", "/api/v1/trace", ApiAccess::read, [s, searches](const ApiRequest& rq, ApiReply reply) {
    TraceQuery q;
    unsigned keys = 0;
    if (!(q.ref = rq.arg("ref")).empty()) ++keys;
    if (!(q.message_id = rq.arg("message_id")).empty()) ++keys;
    if (const std::string m = rq.arg("message_sha256"); !m.empty()) {
      if (!sha_param(m, q.message_sha256, reply)) return;
      ++keys;
    }
    const std::string flow = rq.arg("flow_id"), transaction = rq.arg("transaction");
    if (!flow.empty() || !transaction.empty()) {
      uint64_t f = 0, t = 0;
      if (!api_parse_uint(flow, 0, UINT64_MAX, f) || !api_parse_uint(transaction, 0, UINT64_MAX, t))
        return reply(api_bad_request("flow_id and transaction go together, each an unsigned integer"));
      q.flow_id = f;
      q.transaction = t;
      ++keys;
    }
    if (keys != 1)
      return reply(api_bad_request("give one of ref, message_id, message_sha256, or flow_id with transaction"));
    uint64_t limit = 0;
    if (!limit_param(rq, limit, reply, 20)) return;
    q.max_messages = static_cast<unsigned>(std::min<uint64_t>(limit, 100));
    const TraceSettings settings = s->config.trace;
    if (settings.path.empty())
      return reply(api_unavailable("no traces: trace.enabled is false, or there is no state directory and no "
                                   "trace.path"));
    if (searches->fetch_add(1) >= 2) {
      searches->fetch_sub(1);
      return reply(api_unavailable("two trace searches are running; try again"));
    }
    const bool queued = s->loop.submit([settings, q, reply, searches] {
      Json r = trace_search(settings, q);
      searches->fetch_sub(1);
      if (r["messages"].empty()) return reply(api_not_found("no trace of that message (traces kept: trace.max_files)"));
      reply(api_json(200, r));
    });
    if (!queued) {
      searches->fetch_sub(1);
      reply(api_unavailable("the control plane is busy; try again"));
    }
  });

  // --- alerts ---
  add("GET", "/api/v1/alerts", ApiAccess::read, [s](const ApiRequest& rq, ApiReply reply) {
    uint64_t limit = 0;
    if (!limit_param(rq, limit, reply)) return;
    Severity min = Severity::info;
    if (const auto& sev = rq.arg("severity"); !sev.empty()) {
      if (sev == "warning") min = Severity::warning;
      else if (sev == "critical") min = Severity::critical;
      else if (sev != "info") return reply(api_bad_request("severity must be info, warning or critical"));
    }
    reply(api_json(200, {{"alerts", s->alerts.list(limit, min)}, {"total", s->alerts.total()}}));
  });
  // A test alert through every channel whose minimum severity it reaches: checks the plumbing
  // (syslog, webhook, email) end to end. {"severity": info|warning|critical (default warning), "text"}.
  add("POST", "/api/v1/alerts/test", ApiAccess::admin, [s](const ApiRequest& rq, ApiReply reply) {
    auto body = body_object(rq, reply);
    if (!body) return;
    std::string sev = "warning", text;
    if (!string_member(*body, "severity", sev, reply, 16) || !string_member(*body, "text", text, reply, 500)) return;
    for (const auto& [k, v] : body->items())
      if (k != "severity" && k != "text") return reply(api_bad_request("unknown member '" + k.substr(0, 80) + "'"));
    Severity severity = Severity::warning;
    if (sev == "info") severity = Severity::info;
    else if (sev == "critical") severity = Severity::critical;
    else if (sev != "warning") return reply(api_bad_request("severity must be info, warning or critical"));
    Alert a{"test", severity,
            "a test alert asked by " + rq.who + (text.empty() ? "" : ": " + text) +
                " (no action needed: it checks that alerts reach their channels)",
            std::nullopt, ""};
    if (s->alert) s->alert(a);
    reply(api_json(202, {{"raised", true}, {"type", "test"}, {"severity", severity_name(severity)}}));
  });

  // --- the configuration ---
  add("GET", "/api/v1/config", ApiAccess::read, [s](const ApiRequest&, ApiReply reply) {
    reply(api_json(200, {{"keys", config_json(s->config)}}));
  });
  add("POST", "/api/v1/config/validate", ApiAccess::admin, [s](const ApiRequest& rq, ApiReply reply) {
    reply(api_json(200, s->validate(rq.body)));
  });
  add("POST", "/api/v1/config/reload", ApiAccess::admin, [s](const ApiRequest&, ApiReply reply) {
    reply(api_json(200, s->reload()));
  });

  // --- the report page (report_page.h) ---
  for (auto& page : report_page_routes()) r.push_back(std::move(page));
  return r;
}

}  // namespace sluice::control
