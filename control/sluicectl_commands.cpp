// control/sluicectl_commands: see sluicectl_commands.h. Every command is a thin mapping: arguments
// checked here only where a mistake is certain without asking (a SHA-256 that is not 64 hex
// digits, a section or state that does not exist, a limit that is not a number); everything else is
// the appliance's to judge.
#include "control/sluicectl_commands.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "control/cli_output.h"
#include "control/hex.h"
#include "control/tokens.h"

namespace sluice::control::ctl {

namespace po = boost::program_options;

std::string Args::text(const char* name) const {
  return options.count(name) ? options[name].as<std::string>() : std::string();
}

bool Args::flag(const char* name) const { return options.count(name) && options[name].as<bool>(); }

int exit_for_status(unsigned status) {
  if (status >= 200 && status < 300) return kDone;
  if (status == 401 || status == 403) return kNotAuthorised;
  if (status == 404) return kNotFound;
  return kFailed;
}

std::string secret_file(const std::string& path, const std::string& option) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw UsageError{option + " '" + path + "' cannot be read"};
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

namespace {

// ---- arguments ---------------------------------------------------------------------------------

std::string sha256_arg(const std::string& text, const std::string& what) {
  const std::string s = normal_sha256_hex(text);
  if (s.empty()) throw UsageError{what + " '" + text.substr(0, 80) + "' is not a SHA-256 (64 hex digits)"};
  return s;
}

std::string one_of(const std::string& text, const std::string& what, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (text == a) return text;
    list += (list.empty() ? "" : "|") + std::string(a);
  }
  throw UsageError{what + " '" + text.substr(0, 80) + "' is not " + list};
}

std::string limit_arg(const Args& a) {
  const std::string s = a.text("limit");
  // docs/api.md: a page is at most 10,000 entries.
  if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos || std::stoul(s) == 0 ||
      std::stoul(s) > 10000)
    throw UsageError{"--limit '" + s.substr(0, 80) + "' is not a number from 1 to 10000"};
  return std::to_string(std::stoul(s));
}

std::string nonempty(const std::string& text, const std::string& what) {
  if (text.empty()) throw UsageError{what + " is empty"};
  return text;
}


std::string whole_file(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw UsageError{what + " '" + path + "' cannot be read"};
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// "?a=1&b=2" of the pairs whose value is not empty, in the order given.
std::string query(const std::vector<std::pair<std::string, std::string>>& pairs) {
  std::string q;
  for (const auto& [k, v] : pairs)
    if (!v.empty()) q += (q.empty() ? "?" : "&") + k + "=" + api::url_encode(v);
  return q;
}
std::string query(std::initializer_list<std::pair<const char*, std::string>> pairs) {
  return query(std::vector<std::pair<std::string, std::string>>(pairs.begin(), pairs.end()));
}

api::Request get(std::string target) { return api::Request{"GET", std::move(target), "", "", "application/json"}; }
api::Request del(std::string target) { return api::Request{"DELETE", std::move(target), "", "", "application/json"}; }
api::Request post(std::string target, const Json& body = nullptr) {
  return api::Request{"POST", std::move(target), body.is_null() ? "" : body.dump(), body.is_null() ? "" : "application/json",
                      "application/json"};
}
api::Request put(std::string target, const Json& body) {
  return api::Request{"PUT", std::move(target), body.dump(), "application/json", "application/json"};
}

// ---- the exchange ------------------------------------------------------------------------------

// Sends the request. An HTTP answer in `out` and -1; else the exit code, the failure or the error
// object already written to standard error.
int exchange(Context& ctx, const api::Request& rq, api::Response& out) {
  out = api::perform(ctx.client, rq);
  if (ctx.client.tls.trust == api::Trust::any_on_loopback && !out.peer_fingerprint.empty())
    std::fprintf(stderr, "sluicectl: appliance certificate SHA-256 %s\n", out.peer_fingerprint.c_str());
  if (!out.failure.empty()) {
    std::fprintf(stderr, "sluicectl: %s\n", out.failure.c_str());
    return kFailed;
  }
  const int code = exit_for_status(out.status);
  if (code == kDone) return -1;
  const Json body = Json::parse(out.body, nullptr, false);
  if (body.is_object() && body.contains("error") && body["error"].is_object()) {
    const Json& e = body["error"];
    std::fprintf(stderr, "sluicectl: %u %s: %s\n", out.status, cli::cell_text(e.value("code", Json("-"))).c_str(),
                 cli::cell_text(e.value("message", Json(""))).c_str());
  } else {
    std::string text = out.body.substr(0, 200);
    for (char& c : text)
      if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    std::fprintf(stderr, "sluicectl: HTTP %u from the appliance: %s\n", out.status, text.c_str());
  }
  if (out.status == 401 && !ctx.has_token)
    std::fprintf(stderr, "sluicectl: no token given: --token-file FILE or the environment variable SLUICE_TOKEN\n");
  return code;
}

// The answer as JSON (--json) or as text; 0.
int show(const Context& ctx, const api::Response& r, const cli::Columns& columns = {}) {
  const Json body = Json::parse(r.body, nullptr, false);
  if (body.is_discarded()) {
    std::fwrite(r.body.data(), 1, r.body.size(), stdout);  // not JSON: as it came
  } else if (ctx.json) {
    std::printf("%s\n", body.dump(2, ' ', false, Json::error_handler_t::replace).c_str());
  } else if (!body.is_null()) {
    std::printf("%s", cli::render_text(body, columns).c_str());
  }
  return kDone;
}

int call(Context& ctx, const api::Request& rq, const cli::Columns& columns = {}) {
  api::Response r;
  if (int code = exchange(ctx, rq, r); code >= 0) return code;
  return show(ctx, r, columns);
}

// config validate / reload: {"<ok_key>": bool, "error": "...", "changed": [...]}; exit 1 unless
// the key is true.
int config_outcome(Context& ctx, const api::Request& rq, const char* ok_key, const char* yes, const char* no) {
  api::Response r;
  if (int code = exchange(ctx, rq, r); code >= 0) return code;
  const Json body = Json::parse(r.body, nullptr, false);
  const bool said = body.is_object() && body.contains(ok_key) && body[ok_key].is_boolean();
  const bool ok = said && body[ok_key].get<bool>();
  if (ctx.json) {
    show(ctx, r);
  } else {
    std::printf("%s\n", ok ? yes : no);
    if (body.is_object() && body.contains("error") && body["error"].is_string() && !body["error"].get<std::string>().empty())
      std::printf("error: %s\n", cli::cell_text(body["error"]).c_str());
    if (body.is_object() && body.contains("changed") && body["changed"].is_array()) {
      std::string list;
      for (const auto& k : body["changed"]) list += (list.empty() ? "" : ", ") + cli::cell_text(k);
      std::printf("changed: %s\n", list.empty() ? "(nothing)" : list.c_str());
    }
  }
  if (!said) std::fprintf(stderr, "sluicectl: the answer has no boolean '%s'\n", ok_key);
  return ok ? kDone : kFailed;
}

// ---- columns of the tables ---------------------------------------------------------------------

const cli::Columns kStatusColumns = {
    {"lcores", {"lcore", "role"}},
    {"ports", {"name", "device", "link_up", "link_speed_mbps", "rx_packets", "tx_packets"}}};
// The columns are the API's field names (docs/api.md); --json shows every field.
const std::vector<std::string> kEndpointColumns = {"section",  "name",     "kind",     "url",
                                                   "reachable", "circuit", "requests", "failures",
                                                   "last_latency_ms"};
const cli::Columns kEndpointsColumns = {{"reputation", kEndpointColumns}, {"analysis", kEndpointColumns}};
const cli::Columns kOverrideColumns = {{"overrides", {"sha256", "verdict", "comment", "by", "at"}}};
const cli::Columns kQuarantineColumns = {{"entries", {"id", "state", "received", "mail_from", "subject", "size"}}};
const std::vector<std::string> kSightingColumns = {"time", "mail_from", "rcpt_to", "subject", "message_id",
                                                   "disposition", "action"};
const cli::Columns kSightingsColumns = {{"messages", kSightingColumns}};
const cli::Columns kAlertsColumns = {{"alerts", {"id", "timestamp", "severity", "type", "message"}}};

// ---- commands ----------------------------------------------------------------------------------

int token_command(const Args& a, bool fresh) {
  const std::string name = a.text("role");
  if (name.empty()) throw UsageError{std::string("token ") + (fresh ? "new" : "hash") + " needs --role admin or --role read"};
  const auto role = token_role_named(name);
  if (!role) throw UsageError{"--role '" + name + "' is not admin or read"};
  std::string token;
  if (fresh) {
    token = new_token();
    std::printf("%s\n", token.c_str());
  } else if (!std::getline(std::cin, token) || token.empty()) {
    std::fprintf(stderr, "sluicectl: no token on standard input\n");
    return kFailed;
  }
  std::printf("%s\n", token_line(*role, token).c_str());
  return kDone;
}

void role_option(po::options_description& d) {
  d.add_options()("role", po::value<std::string>(), "admin or read");
}
void comment_option(po::options_description& d) {
  d.add_options()("comment", po::value<std::string>(), "why (kept with the override)");
}
void limit_option(po::options_description& d) {
  d.add_options()("limit", po::value<std::string>(), "at most N entries (1-10000; the API's default 100)");
}

int quarantine_list(Context& ctx, const Args& a) {
  const std::string state = a.has("state") ? one_of(a.text("state"), "--state", {"held", "released", "deleted"}) : "";
  const std::string sha = a.has("sha256") ? sha256_arg(a.text("sha256"), "--sha256") : "";
  const std::string limit = a.has("limit") ? limit_arg(a) : "";
  const auto rq = get("/api/v1/quarantine" + query({{"state", state},
                                                     {"sender", a.text("sender")},
                                                     {"sha256", sha},
                                                     {"since", a.text("since")},
                                                     {"limit", limit},
                                                     {"after", a.text("after")},
                                                     {"order", a.flag("oldest-first") ? "oldest" : ""}}));
  api::Response r;
  if (int code = exchange(ctx, rq, r); code >= 0) return code;
  const Json body = Json::parse(r.body, nullptr, false);
  if (ctx.json || !body.is_object() || !body.contains("entries")) return show(ctx, r, kQuarantineColumns);
  std::printf("%s", cli::render_text(body["entries"], {{"", kQuarantineColumns.at("entries")}}).c_str());
  if (body["entries"].empty()) std::printf("\n");
  for (const auto& [k, v] : body.items())
    if (k != "entries" && k != "next") std::printf("%s: %s\n", k.c_str(), cli::cell_text(v).c_str());
  if (body.contains("next") && body["next"].is_string() && !body["next"].get<std::string>().empty())
    std::printf("more: --after %s\n", body["next"].get<std::string>().c_str());
  return kDone;
}

int quarantine_eml(Context& ctx, const Args& a) {
  auto rq = get("/api/v1/quarantine/" + api::url_encode(nonempty(a.words[0], "ID")) + "/eml");
  rq.accept = "message/rfc822";
  const std::string path = a.text("output");
  api::Response r;
  if (int code = exchange(ctx, rq, r); code >= 0) return code;
  if (path.empty() || path == "-") {
    const bool ok = std::fwrite(r.body.data(), 1, r.body.size(), stdout) == r.body.size() && std::fflush(stdout) == 0;
    if (!ok) std::fprintf(stderr, "sluicectl: cannot write the message to standard output\n");
    return ok ? kDone : kFailed;
  }
  // 0600: a quarantined message is somebody's mail.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  bool ok = fd >= 0;
  for (std::size_t at = 0; ok && at < r.body.size();) {
    const ssize_t n = ::write(fd, r.body.data() + at, r.body.size() - at);
    ok = n > 0;
    if (ok) at += static_cast<std::size_t>(n);
  }
  if (fd >= 0) ok = ::close(fd) == 0 && ok;
  if (!ok) {
    std::fprintf(stderr, "sluicectl: cannot write %s\n", path.c_str());
    return kFailed;
  }
  std::fprintf(stderr, "sluicectl: %zu bytes written to %s\n", r.body.size(), path.c_str());
  return kDone;
}

int sightings(Context& ctx, const Args& a) {
  const std::string limit = a.has("limit") ? limit_arg(a) : "";
  if (!a.words.empty()) {
    if (a.has("recipient") || a.has("from") || a.has("to"))
      throw UsageError{"sightings SHA256 takes no --recipient, --from or --to"};
    const std::string sha = sha256_arg(a.words[0], "SHA256");
    return call(ctx, get("/api/v1/sightings/" + sha + query({{"limit", limit}})), kSightingsColumns);
  }
  if (!a.has("recipient")) throw UsageError{"sightings needs a SHA256 or --recipient ADDRESS"};
  return call(ctx,
              get("/api/v1/sightings" + query({{"recipient", nonempty(a.text("recipient"), "--recipient")},
                                               {"from", a.text("from")},
                                               {"to", a.text("to")},
                                               {"limit", limit}})),
              kSightingsColumns);
}

// trace MESSAGE: a reference id (`6757a1b2-3-0`), a message SHA-256 (64 hex digits),
// `FLOW_ID:TRANSACTION`, else a Message-ID.
std::vector<std::pair<std::string, std::string>> trace_key(const std::string& m) {
  const auto all = [&](std::size_t from, std::size_t to, auto pred) {
    if (from >= to) return false;
    for (std::size_t i = from; i < to; ++i)
      if (!pred(static_cast<unsigned char>(m[i]))) return false;
    return true;
  };
  const auto hex = [](unsigned char c) { return std::isxdigit(c) != 0; };
  const auto digit = [](unsigned char c) { return std::isdigit(c) != 0; };
  if (m.size() == 64 && all(0, 64, hex)) return {{"message_sha256", m}};
  if (const auto colon = m.find(':'); colon != std::string::npos && all(0, colon, digit) && all(colon + 1, m.size(), digit))
    return {{"flow_id", m.substr(0, colon)}, {"transaction", m.substr(colon + 1)}};
  const auto d1 = m.find('-'), d2 = m.find('-', d1 == std::string::npos ? m.size() : d1 + 1);
  if (d1 == 8 && d2 != std::string::npos && all(0, 8, hex) && all(9, d2, hex) && all(d2 + 1, m.size(), digit))
    return {{"ref", m}};
  return {{"message_id", m}};
}

int trace(Context& ctx, const Args& a) {
  auto params = trace_key(nonempty(a.words[0], "MESSAGE"));
  if (a.has("limit")) params.emplace_back("limit", limit_arg(a));
  api::Response r;
  if (int code = exchange(ctx, get("/api/v1/trace" + query(params)), r); code >= 0) return code;
  if (ctx.json) return show(ctx, r);
  const Json body = Json::parse(r.body, nullptr, false);
  if (!body.is_object() || !body.contains("messages") || !body["messages"].is_array()) {
    std::fprintf(stderr, "sluicectl: the answer has no 'messages'\n");
    return kFailed;
  }
  bool first = true;
  for (const auto& m : body["messages"]) {
    if (!first) std::printf("\n");
    first = false;
    std::printf("message %s  flow %s transaction %s\n", cli::cell_text(m.value("ref", Json())).c_str(),
                cli::cell_text(m.value("flow_id", Json())).c_str(), cli::cell_text(m.value("transaction", Json())).c_str());
    for (const char* k : {"message_id", "subject", "message_sha256"})
      if (m.contains(k) && !m[k].is_null()) std::printf("  %s: %s\n", k, cli::cell_text(m[k]).c_str());
    if (!m.contains("steps") || !m["steps"].is_array()) continue;
    for (const auto& step : m["steps"])
      std::printf("  %s  %-13s %s\n", cli::cell_text(step.value("time", Json())).c_str(),
                  cli::cell_text(step.value("step", Json())).c_str(), cli::line_text(step.value("text", Json())).c_str());
    if (m.value("steps_truncated", false)) std::printf("  (more steps not shown)\n");
  }
  return kDone;
}

int config_show(Context& ctx, const Args&) {
  api::Response r;
  if (int code = exchange(ctx, get("/api/v1/config"), r); code >= 0) return code;
  const Json body = Json::parse(r.body, nullptr, false);
  if (ctx.json || body.is_discarded()) return show(ctx, r);
  std::printf("%s", cli::yaml_text(body).c_str());
  return kDone;
}

std::vector<Command> make_commands() {
  std::vector<Command> c;
  auto no_options = [](po::options_description&) {};
  c.push_back({"status", "", "the appliance's mode, version, uptime, lcores and ports (exit 0: it answers)", 0, 0, false,
               no_options, [](Context& ctx, const Args&) { return call(ctx, get("/api/v1/status"), kStatusColumns); }});
  c.push_back({"counters", "", "every counter (the body of the stats event now)", 0, 0, false, no_options,
               [](Context& ctx, const Args&) { return call(ctx, get("/api/v1/counters")); }});

  c.push_back({"endpoints list", "", "the reputation and analysis endpoints: health, latency, circuit breaker", 0, 0,
               false, no_options,
               [](Context& ctx, const Args&) { return call(ctx, get("/api/v1/endpoints"), kEndpointsColumns); }});
  c.push_back({"endpoints add",
               "--section reputation|analysis --name N --kind K --url U [--api-key-file F] [--ca-file F] [--insecure]",
               "add an endpoint at run time (--ca-file: a path on the appliance)", 0, 0, false,
               [](po::options_description& d) {
                 d.add_options()("section", po::value<std::string>(), "reputation or analysis")(
                     "name", po::value<std::string>(), "the endpoint's name")("kind", po::value<std::string>(),
                                                                              "its kind (sluice, virustotal, ...)")(
                     "url", po::value<std::string>(), "its URL (after the command: the endpoint's, not the API's)")(
                     "api-key-file", po::value<std::string>(), "a file holding its API key (never on the command line)")(
                     "ca-file", po::value<std::string>(), "a CA file on the appliance to verify it with")(
                     "insecure", po::bool_switch(), "do not verify its certificate");
               },
               [](Context& ctx, const Args& a) {
                 for (const char* o : {"section", "name", "kind", "url"})
                   if (!a.has(o)) throw UsageError{std::string("endpoints add needs --") + o};
                 Json body = {{"section", one_of(a.text("section"), "--section", {"reputation", "analysis"})},
                              {"name", nonempty(a.text("name"), "--name")},
                              {"kind", nonempty(a.text("kind"), "--kind")},
                              {"url", nonempty(a.text("url"), "--url")},
                              {"api_key", a.has("api-key-file") ? secret_file(a.text("api-key-file"), "--api-key-file") : ""},
                              {"ca_file", a.text("ca-file")},
                              {"insecure", a.flag("insecure")}};
                 return call(ctx, post("/api/v1/endpoints", body), kEndpointsColumns);
               }});
  c.push_back({"endpoints remove", "SECTION NAME", "remove an endpoint at run time", 2, 2, false, no_options,
               [](Context& ctx, const Args& a) {
                 const auto section = one_of(a.words[0], "SECTION", {"reputation", "analysis"});
                 return call(ctx, del("/api/v1/endpoints/" + section + "/" + api::url_encode(nonempty(a.words[1], "NAME"))));
               }});
  c.push_back({"endpoints test", "SECTION NAME", "send the endpoint's health request now and show its answer", 2, 2,
               false, no_options, [](Context& ctx, const Args& a) {
                 const auto section = one_of(a.words[0], "SECTION", {"reputation", "analysis"});
                 return call(ctx, post("/api/v1/endpoints/" + section + "/" +
                                       api::url_encode(nonempty(a.words[1], "NAME")) + "/test"));
               }});

  c.push_back({"cache show", "SHA256", "the verdict cache's entry for a file", 1, 1, false, no_options,
               [](Context& ctx, const Args& a) { return call(ctx, get("/api/v1/cache/" + sha256_arg(a.words[0], "SHA256"))); }});
  c.push_back({"cache drop", "SHA256", "drop a file's entry (the next message with it asks again)", 1, 1, false,
               no_options,
               [](Context& ctx, const Args& a) { return call(ctx, del("/api/v1/cache/" + sha256_arg(a.words[0], "SHA256"))); }});
  c.push_back({"cache flush", "", "drop every entry but the local overrides", 0, 0, false, no_options,
               [](Context& ctx, const Args&) { return call(ctx, post("/api/v1/cache/flush")); }});

  c.push_back({"override list", "", "the local overrides", 0, 0, false, no_options,
               [](Context& ctx, const Args&) { return call(ctx, get("/api/v1/overrides"), kOverrideColumns); }});
  for (const char* verdict : {"allow", "block"}) {
    const std::string v = verdict;
    c.push_back({"override " + v, "SHA256 [--comment TEXT]", v + " a file whatever the endpoints say", 1, 1, false,
                 comment_option, [v](Context& ctx, const Args& a) {
                   const auto sha = sha256_arg(a.words[0], "SHA256");
                   return call(ctx, put("/api/v1/overrides/" + sha, {{"verdict", v}, {"comment", a.text("comment")}}),
                               kOverrideColumns);
                 }});
  }
  c.push_back({"override remove", "SHA256", "remove a file's override", 1, 1, false, no_options,
               [](Context& ctx, const Args& a) {
                 return call(ctx, del("/api/v1/overrides/" + sha256_arg(a.words[0], "SHA256")));
               }});

  c.push_back({"quarantine list",
               "[--state held|released|deleted] [--sender S] [--sha256 X] [--since T] [--limit N] [--after CURSOR] "
               "[--oldest-first]",
               "the quarantine, newest first, a page at a time (T: RFC 3339 or ms since 1970)", 0, 0, false,
               [](po::options_description& d) {
                 d.add_options()("state", po::value<std::string>(), "held, released or deleted")(
                     "sender", po::value<std::string>(), "the envelope sender")(
                     "sha256", po::value<std::string>(), "messages that carried this file")(
                     "since", po::value<std::string>(), "received at or after T")(
                     "after", po::value<std::string>(), "the page after this cursor (the previous page's next)")(
                     "oldest-first", po::bool_switch(), "oldest first");
                 limit_option(d);
               },
               quarantine_list});
  c.push_back({"quarantine show", "ID", "one entry's metadata", 1, 1, false, no_options, [](Context& ctx, const Args& a) {
                 return call(ctx, get("/api/v1/quarantine/" + api::url_encode(nonempty(a.words[0], "ID"))));
               }});
  c.push_back({"quarantine release", "ID [--relay] [--why TEXT]", "release a held message (--relay: to the relay)", 1,
               1, false,
               [](po::options_description& d) {
                 d.add_options()("relay", po::bool_switch(), "send it on to the relay")(
                     "why", po::value<std::string>(), "the reason, kept with the entry");
               },
               [](Context& ctx, const Args& a) {
                 return call(ctx, post("/api/v1/quarantine/" + api::url_encode(nonempty(a.words[0], "ID")) + "/release",
                                       {{"relay", a.flag("relay")}, {"why", a.text("why")}}));
               }});
  c.push_back({"quarantine delete", "ID [--why TEXT]", "delete a message (its metadata stays until retention)", 1, 1,
               false,
               [](po::options_description& d) {
                 d.add_options()("why", po::value<std::string>(), "the reason, kept with the entry");
               },
               [](Context& ctx, const Args& a) {
                 return call(ctx, post("/api/v1/quarantine/" + api::url_encode(nonempty(a.words[0], "ID")) + "/delete",
                                       {{"why", a.text("why")}}));
               }});
  c.push_back({"quarantine eml", "ID [--output FILE]", "the message's exact bytes (to FILE, 0600, or standard output)",
               1, 1, false,
               [](po::options_description& d) {
                 d.add_options()("output,o", po::value<std::string>(), "write to FILE instead of standard output");
               },
               quarantine_eml});

  c.push_back({"sightings", "SHA256 [--limit N] | --recipient R [--from T] [--to T] [--limit N]",
               "where a file was seen, or a recipient's messages in a time range", 0, 1, false,
               [](po::options_description& d) {
                 d.add_options()("recipient", po::value<std::string>(), "messages to this address")(
                     "from", po::value<std::string>(), "at or after T")("to", po::value<std::string>(), "before T");
                 limit_option(d);
               },
               sightings});
  c.push_back({"alerts", "[--limit N] [--severity info|warning|critical]", "the latest alerts, newest first", 0, 0,
               false,
               [](po::options_description& d) {
                 d.add_options()("severity", po::value<std::string>(), "info, warning or critical");
                 limit_option(d);
               },
               [](Context& ctx, const Args& a) {
                 const std::string limit = a.has("limit") ? limit_arg(a) : "";
                 const std::string severity =
                     a.has("severity") ? one_of(a.text("severity"), "--severity", {"info", "warning", "critical"}) : "";
                 return call(ctx, get("/api/v1/alerts" + query({{"limit", limit}, {"severity", severity}})),
                             kAlertsColumns);
               }});
  c.push_back({"alerts test", "[--severity info|warning|critical] [--text TEXT]",
               "raise a test alert through every notification channel it reaches (syslog, webhook, email)", 0, 0,
               false,
               [](po::options_description& d) {
                 d.add_options()("severity", po::value<std::string>(), "info, warning (default) or critical")(
                     "text", po::value<std::string>(), "a note carried in its message");
               },
               [](Context& ctx, const Args& a) {
                 Json body = Json::object();
                 if (a.has("severity"))
                   body["severity"] = one_of(a.text("severity"), "--severity", {"info", "warning", "critical"});
                 if (a.has("text")) body["text"] = a.text("text");
                 return call(ctx, post("/api/v1/alerts/test", body));
               }});
  c.push_back({"trace", "MESSAGE [--limit N]",
               "a message's trace, step by step; MESSAGE: a reference id, a message SHA-256, FLOW_ID:TRANSACTION or "
               "a Message-ID",
               1, 1, false, limit_option, trace});
  c.push_back({"heartbeat", "", "a retrospective heartbeat now", 0, 0, false, no_options,
               [](Context& ctx, const Args&) { return call(ctx, post("/api/v1/retrospective/heartbeat")); }});

  c.push_back({"config show", "", "the running configuration (YAML; --json: JSON), secrets redacted", 0, 0, false,
               no_options, config_show});
  c.push_back({"config validate", "FILE", "check a configuration file against the running one (exit 1: invalid)", 1, 1,
               false, no_options, [](Context& ctx, const Args& a) {
                 const api::Request rq{"POST", "/api/v1/config/validate", whole_file(a.words[0], "FILE"),
                                       "application/yaml", "application/json"};
                 return config_outcome(ctx, rq, "valid", "valid", "invalid");
               }});
  c.push_back({"config reload", "", "reload the configuration file, as SIGHUP does (exit 1: not reloaded)", 0, 0, false,
               no_options, [](Context& ctx, const Args&) {
                 return config_outcome(ctx, post("/api/v1/config/reload"), "reloaded", "reloaded", "not reloaded");
               }});

  c.push_back({"token new", "--role admin|read", "print a new token, then the line to add to management.token_file", 0,
               0, true, role_option, [](Context&, const Args& a) { return token_command(a, true); }});
  c.push_back({"token hash", "--role admin|read", "print the token file line of a token read from standard input", 0,
               0, true, role_option, [](Context&, const Args& a) { return token_command(a, false); }});
  return c;
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> table = make_commands();
  return table;
}

}  // namespace sluice::control::ctl
