#include "control/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <unistd.h>

#include "control/notifier.h"
#include "control/tokens.h"
#include "control/pcap_file.h"
#include "dataplane/eal.h"
#include "pipeline/analysis_groups.h"
#include "pipeline/archive.h"
#include "pipeline/sample.h"

namespace sluice::control {
namespace {

using dataplane::PortConfig;

// A configuration error, thrown inside the loader only and turned into LoadResult::error.
struct ConfigError {
  std::string message;
};

[[noreturn]] void fail(const std::string& key, const std::string& what) { throw ConfigError{"key '" + key + "': " + what}; }

std::string where(const YAML::Node& n) {
  return n.Mark().line >= 0 ? " (line " + std::to_string(n.Mark().line + 1) + ")" : "";
}

std::string scalar_text(const YAML::Node& n) {
  if (n.IsScalar()) return "'" + n.Scalar() + "'";
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

// One declared parameter. `apply` parses the YAML value into the target; the default is YAML
// text applied through the same function, so it is written in exactly one place. `canonical`
// turns a valid value into the text reload_config() compares: the parsed value written back as
// YAML (`025`, `25` and `'25'` are one integer; lists in their order; mappings with every member,
// defaults filled in, in declaration order).
template <typename Target>
struct Param {
  std::string path;
  std::string type;
  std::string default_yaml;  // empty: required (list members) or no default
  std::string help;
  std::function<void(const YAML::Node&, Target&, const std::string& key)> apply;
  std::function<std::string(const YAML::Node&)> canonical;
  bool runtime = false;      // may change at run time (reloadable()); otherwise a reload changing it is refused
  std::string default_doc;   // the reference shows this instead of default_yaml (a default finish() resolves)
};

long long parse_integer(const YAML::Node& n, const std::string& key, long long lo, long long hi) {
  const std::string range = "an integer " + std::to_string(lo) + ".." + std::to_string(hi);
  if (!n.IsScalar()) fail(key, "expected " + range + ", got " + scalar_text(n) + where(n));
  const std::string& s = n.Scalar();
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno != 0 || v < lo || v > hi)
    fail(key, "expected " + range + ", got " + scalar_text(n) + where(n));
  return v;
}

std::string parse_choice(const YAML::Node& n, const std::string& key, const std::vector<std::string>& choices) {
  std::string list;
  for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
  if (!n.IsScalar() || std::find(choices.begin(), choices.end(), n.Scalar()) == choices.end())
    fail(key, "expected one of " + list + ", got " + scalar_text(n) + where(n));
  return n.Scalar();
}

bool parse_bool(const YAML::Node& n, const std::string& key) {
  return parse_choice(n, key, {"true", "false"}) == "true";
}

std::string parse_string(const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar() && !n.IsNull()) fail(key, "expected a string, got " + scalar_text(n) + where(n));
  return n.IsNull() ? std::string() : n.Scalar();
}

// The typed helpers below take each default as a value of the key's own type and write it as YAML
// text, which load() applies through the same parser as the file: a default is range-checked like
// any value, and the reference shows exactly what is applied.
std::string yaml_text(const std::string& s) {
  YAML::Emitter e;
  e << YAML::DoubleQuoted << s;
  return e.c_str();
}

template <typename T, typename Show>
std::string yaml_list(const std::vector<T>& v, Show show) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + show(x);
  return "[" + s + "]";
}

template <typename Target>
Param<Target> param(std::string path, std::string type, std::string def, std::string help,
                    std::function<void(const YAML::Node&, Target&, const std::string& key)> apply,
                    std::function<std::string(const YAML::Node&)> canonical) {
  Param<Target> p;
  p.path = std::move(path);
  p.type = std::move(type);
  p.default_yaml = std::move(def);
  p.help = std::move(help);
  p.apply = std::move(apply);
  p.canonical = std::move(canonical);
  return p;
}

// A parameter from its parser (YAML node -> validated value, failing with the key), its setter
// (value -> target) and how the value is written back as canonical YAML text.
template <typename Target, typename Parse, typename Setter, typename Show>
Param<Target> declare(std::string path, std::string type, std::string def, std::string help, Parse parse, Setter set,
                      Show show) {
  const std::string key = path;
  return param<Target>(std::move(path), std::move(type), std::move(def), std::move(help),
                       [=](const YAML::Node& n, Target& t, const std::string& k) { set(t, parse(n, k)); },
                       [=](const YAML::Node& n) { return show(parse(n, key)); });
}

std::string integer_text(long long v) { return std::to_string(v); }
std::string bool_text(bool v) { return v ? "true" : "false"; }
std::string plain_text(const std::string& s) { return s; }  // choices: identifiers

// Marks a key that may change at run time: reload_config() takes its new value instead of refusing
// the file. Wrap a declaration in it to make the key reloadable; the daemon applies what changed.
template <typename Target>
Param<Target> reloadable(Param<Target> p) {
  p.runtime = true;
  return p;
}

template <typename Target, typename Setter>
Param<Target> integer(std::string path, long long lo, long long hi, long long def, std::string help, Setter set) {
  std::string type = "integer " + std::to_string(lo) + ".." + std::to_string(hi);
  return declare<Target>(std::move(path), std::move(type), std::to_string(def), std::move(help),
                         [=](const YAML::Node& n, const std::string& key) { return parse_integer(n, key, lo, hi); }, set,
                         integer_text);
}

template <typename Target, typename Setter>
Param<Target> choice(std::string path, std::vector<std::string> choices, std::string def, std::string help, Setter set) {
  std::string type;
  for (const auto& c : choices) type += (type.empty() ? "" : " | ") + c;
  return declare<Target>(std::move(path), std::move(type), std::move(def), std::move(help),
                         [=](const YAML::Node& n, const std::string& key) { return parse_choice(n, key, choices); }, set,
                         plain_text);
}

template <typename Target, typename Setter>
Param<Target> boolean(std::string path, bool def, std::string help, Setter set) {
  return declare<Target>(std::move(path), "true | false", bool_text(def), std::move(help), parse_bool, set, bool_text);
}

// `def` nullopt: the key is required (list members only).
template <typename Target, typename Setter>
Param<Target> string(std::string path, std::optional<std::string> def, std::string help, Setter set) {
  return declare<Target>(std::move(path), "string", def ? yaml_text(*def) : "", std::move(help), parse_string, set,
                         yaml_text);
}

template <typename Target, typename Setter>
Param<Target> integer_list(std::string path, long long lo, long long hi, std::vector<long long> def, std::string help,
                           Setter set) {
  std::string type = "list of integers " + std::to_string(lo) + ".." + std::to_string(hi);
  auto parse = [=](const YAML::Node& n, const std::string& key) {
    if (!n.IsSequence()) fail(key, "expected a list, got " + scalar_text(n) + where(n));
    std::vector<unsigned> v;
    for (std::size_t i = 0; i < n.size(); ++i)
      v.push_back(static_cast<unsigned>(parse_integer(n[i], key + "[" + std::to_string(i) + "]", lo, hi)));
    return v;
  };
  auto show = [](const std::vector<unsigned>& v) { return yaml_list(v, integer_text); };
  return declare<Target>(std::move(path), std::move(type), yaml_list(def, integer_text), std::move(help), parse, set,
                         show);
}

template <typename Target, typename Setter>
Param<Target> string_list(std::string path, std::vector<std::string> def, std::string help, Setter set) {
  auto parse = [](const YAML::Node& n, const std::string& key) {
    if (!n.IsSequence()) fail(key, "expected a list, got " + scalar_text(n) + where(n));
    std::vector<std::string> v;
    for (std::size_t i = 0; i < n.size(); ++i) v.push_back(parse_string(n[i], key + "[" + std::to_string(i) + "]"));
    return v;
  };
  auto show = [](const std::vector<std::string>& v) { return yaml_list(v, yaml_text); };
  return declare<Target>(std::move(path), "list of strings", yaml_list(def, yaml_text), std::move(help), parse, set,
                         show);
}

// ---------------------------------------------------------------------------------------------
// The declarations, one table per section. Each default is written once, in its declaration, as a
// value: read from the consuming unit's struct where that struct carries it (the pipeline's
// MimeLimits, WorkerLimits, HandoffLimits, ArchiveLimits, whose tools and tests use them too),
// otherwise written there (the data plane's and reassembly's structs are plain values without
// defaults).

// Pairs are resolved by port name once every port is known.
struct Loading {
  Config config;
  std::vector<std::pair<std::string, std::string>> pair_names;
  bool ports_given = false;
  bool cache_persist = true;
  std::vector<std::string> analysis_groups;
  unsigned sample_memory_mb = 64;
  unsigned sample_memory_total_mb = 512;
  unsigned spool_mb = 32;
  bool trace_enabled = true;
  uint32_t replay_overload_wait_ms = 10000;  // replay mode: workers.handoff.wait_us (finish())
  bool workers_auto = true;                   // lcores.workers: auto, resolved in finish()
};

using Params = std::vector<Param<Loading>>;

// The node a file gives at a dotted path below `map`, if any (a key given twice never gets here:
// check_unique_keys() refuses the file first). (Assigning a YAML::Node would write through to the
// tree; emplace only rebinds.)
std::optional<YAML::Node> given_at(const YAML::Node& map, const std::string& path) {
  if (!map.IsMap()) return std::nullopt;
  const auto dot = path.find('.');
  const std::string name = path.substr(0, dot);
  std::optional<YAML::Node> found;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar() || kv.first.Scalar() != name) continue;
    if (dot == std::string::npos) {
      found.emplace(kv.second);
    } else if (auto inner = given_at(kv.second, path.substr(dot + 1))) {
      found.emplace(*inner);
    }
  }
  return found;
}

// The value a declaration applies: the given node, else its default.
template <typename Target>
YAML::Node effective_node(const Param<Target>& p, const std::optional<YAML::Node>& given) {
  return given ? *given : YAML::Load(p.default_yaml);
}

const std::vector<Param<PortConfig>>& port_params() {
  static const std::vector<Param<PortConfig>> params = {
      string<PortConfig>("ports[].name", std::nullopt, "Required. Name used in pairs, stats and events: 1-32 "
                         "characters of letters, digits, '_' or '-'.",
                         [](PortConfig& p, std::string v) { p.name = std::move(v); }),
      string<PortConfig>("ports[].device", std::nullopt, "Required. A PCI address (`0000:03:00.0`, bound to vfio-pci) "
                         "or a DPDK virtual device: `net_af_packet0,iface=eth1`, `net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap`, "
                         "`net_ring0`, `net_null0`. Virtual device names must be unique and start with `net_`.",
                         [](PortConfig& p, std::string v) { p.device = std::move(v); }),
      integer<PortConfig>("ports[].rx_desc", 64, 16384, 1024, "RX descriptors per queue (the PMD may round). "
                          "When the ring is full the NIC drops and counts `rx_missed`.",
                          [](PortConfig& p, long long v) { p.rx_desc = static_cast<uint16_t>(v); }),
      integer<PortConfig>("ports[].tx_desc", 64, 16384, 1024, "TX descriptors per queue. When full, Sluice retries "
                          "`dataplane.tx_retries` times, then drops and counts `dropped`.",
                          [](PortConfig& p, long long v) { p.tx_desc = static_cast<uint16_t>(v); }),
      boolean<PortConfig>("ports[].promiscuous", true, "Receive frames for every MAC address (a bump in the wire "
                          "must). Ignored by PMDs without the notion (pcap files).",
                          [](PortConfig& p, bool v) { p.promiscuous = v; }),
  };
  return params;
}

// The members of each `reputation.endpoints` element; their defaults are EndpointConfig's.
const std::vector<Param<EndpointConfig>>& endpoint_params() {
  using E = EndpointConfig;
  static const E d{};
  static const std::vector<Param<E>> params = {
      string<E>("reputation.endpoints[].name", std::nullopt, "Required. Names the endpoint in events "
                "(`verdict_source`), alerts and stats: 1-32 letters, digits, '_' or '-', unique in the list.",
                [](E& e, std::string v) { e.name = std::move(v); }),
      choice<E>("reputation.endpoints[].kind", {"sluice", "virustotal"}, "sluice", "Its adapter: `sluice` "
                "(sluice-cloud's API: batch look-ups, `control/cloud/API.md`) or `virustotal` (VirusTotal API v3, "
                "`GET /api/v3/files/{sha256}`: hash look-ups only, never uploads).",
                [](E& e, const std::string& v) { e.kind = v; }),
      string<E>("reputation.endpoints[].url", std::nullopt, "Required. `https://host[:port][/prefix]`, or "
                "`http://` to a loopback address (elsewhere only with `insecure: true`).",
                [](E& e, std::string v) { e.url = std::move(v); }),
      string<E>("reputation.endpoints[].api_key", "", "Sent as `x-apikey`.",
                [](E& e, std::string v) { e.api_key = std::move(v); }),
      string<E>("reputation.endpoints[].ca_file", "", "PEM bundle the server certificate must chain to; "
                "empty: the system's trusted certificates. Verification is always on.",
                [](E& e, std::string v) { e.ca_file = std::move(v); }),
      string<E>("reputation.endpoints[].client_cert", "", "Client certificate (PEM) presented to the server; "
                "with `client_key`.", [](E& e, std::string v) { e.client_cert = std::move(v); }),
      string<E>("reputation.endpoints[].client_key", "", "The client certificate's private key (PEM).",
                [](E& e, std::string v) { e.client_key = std::move(v); }),
      string<E>("reputation.endpoints[].pin_sha256", "", "Pinned public key: base64 of the SHA-256 of the "
                "server certificate's SubjectPublicKeyInfo (as curl's `sha256//...`); a server whose key "
                "differs is a failure. Empty: no pin.",
                [](E& e, std::string v) { e.pin_sha256 = std::move(v); }),
      boolean<E>("reputation.endpoints[].insecure", d.insecure, "Allows plain `http://` to a non-loopback "
                 "address (the API key then crosses the network in clear). Never turns TLS verification off.",
                 [](E& e, bool v) { e.insecure = v; }),
      integer<E>("reputation.endpoints[].connect_timeout_ms", 1, 600000, d.connect_timeout_ms, "TCP connect "
                 "and TLS handshake; past it the attempt fails (retried, then the next endpoint).",
                 [](E& e, long long v) { e.connect_timeout_ms = static_cast<unsigned>(v); }),
      integer<E>("reputation.endpoints[].request_timeout_ms", 1, 600000, d.request_timeout_ms, "One request, "
                 "from sending to the whole answer; past it the attempt fails.",
                 [](E& e, long long v) { e.request_timeout_ms = static_cast<unsigned>(v); }),
      integer<E>("reputation.endpoints[].retries", 0, 10, d.retries, "Attempts after the first on this "
                 "endpoint, within the look-up budget, before the next endpoint is tried.",
                 [](E& e, long long v) { e.retries = static_cast<unsigned>(v); }),
      integer<E>("reputation.endpoints[].retry_backoff_ms", 0, 60000, d.retry_backoff_ms, "Wait before the "
                 "first retry, doubled for each further one.",
                 [](E& e, long long v) { e.retry_backoff_ms = static_cast<unsigned>(v); }),
      integer<E>("reputation.endpoints[].max_connections", 1, 256, d.max_connections, "Keep-alive "
                 "connections to this endpoint; requests beyond wait for one (bounded), then fail.",
                 [](E& e, long long v) { e.max_connections = static_cast<unsigned>(v); }),
      integer<E>("reputation.endpoints[].max_queued", 1, 1000000, d.max_queued, "Requests waiting for one of "
                 "its connections; beyond, a look-up fails at once (`service_unavailable`, or the next endpoint).",
                 [](E& e, long long v) { e.max_queued = static_cast<unsigned>(v); }),
      integer<E>("reputation.endpoints[].breaker_failures", 1, 1000, d.breaker_failures, "Consecutive "
                 "failures that open the circuit: the endpoint is skipped (an `endpoint_unreachable` alert) until "
                 "a health probe or a trial request succeeds (`endpoint_recovered`).",
                 [](E& e, long long v) { e.breaker_failures = static_cast<unsigned>(v); }),
      integer<E>("reputation.endpoints[].breaker_open_ms", 100, 3600000, d.breaker_open_ms, "How long an "
                 "open circuit stays open before one trial request.",
                 [](E& e, long long v) { e.breaker_open_ms = static_cast<unsigned>(v); }),
      integer<E>("reputation.endpoints[].health_interval_ms", 0, 3600000, d.health_interval_ms, "`sluice` "
                 "kind: health probe period while the circuit is open; 0: trial requests only.",
                 [](E& e, long long v) { e.health_interval_ms = static_cast<unsigned>(v); }),
      integer<E>("reputation.endpoints[].max_batch", 1, 1000, d.max_batch, "`sluice` kind: hashes per "
                 "request (the service takes up to 1000).",
                 [](E& e, long long v) { e.max_batch = static_cast<unsigned>(v); }),
      integer<E>("reputation.endpoints[].vt_malicious_threshold", 1, 1000, d.vt_malicious_threshold,
                 "`virustotal` kind: engines that must say malicious (`last_analysis_stats.malicious`) for the "
                 "file to be malicious; below, clean when engines said harmless or undetected, else unknown.",
                 [](E& e, long long v) { e.vt_malicious_threshold = static_cast<unsigned>(v); }),
      integer<E>("reputation.endpoints[].max_response_kb", 1, 1048576, d.max_response_kb, "A larger answer "
                 "is not read: the attempt fails.",
                 [](E& e, long long v) { e.max_response_kb = static_cast<unsigned>(v); }),
  };
  return params;
}

// The members of each `analysis.endpoints` element: those of a reputation endpoint (the same TLS,
// timeouts, retries, circuit breaker and health check) but the look-up ones, another `kind`, and
// the upload's own limits.
const std::vector<Param<EndpointConfig>>& analysis_endpoint_params() {
  using E = EndpointConfig;
  static const E d{};
  static const std::vector<Param<E>> params = [] {
    const std::string from = "reputation.endpoints[].", to = "analysis.endpoints[].";
    std::vector<Param<E>> v;
    for (Param<E> p : endpoint_params()) {
      const std::string member = p.path.substr(from.size());
      if (member == "max_batch" || member == "vt_malicious_threshold") continue;
      if (member == "kind") {
        v.push_back(choice<E>(to + "kind", {"sluice", "cape"}, "sluice", "Its adapter: `sluice` (sluice-cloud's "
                              "samples API, `control/cloud/API.md`) or `cape` (CAPEv2's REST API v2: "
                              "`Authorization: Token` with `api_key`; its `malscore` 0-10 is read as a score 0-100).",
                              [](E& e, std::string k) { e.kind = std::move(k); }));
        continue;
      }
      if (member == "name")
        p.help = "Required. Names the endpoint in events, alerts and stats: 1-32 letters, digits, '_' or '-', "
                 "unique in the list (a reputation endpoint may have the same name).";
      if (member == "api_key") p.help = "`sluice`: sent as `x-apikey`; `cape`: as `Authorization: Token KEY` (required).";
      p.path = to + member;
      v.push_back(std::move(p));
    }
    v.push_back(integer<E>(to + "max_sample_mb", 1, 4096, d.max_sample_mb, "Larger files are not uploaded to this "
                           "endpoint (the next one is tried); the service's own published limit applies too.",
                           [](E& e, long long x) { e.max_sample_mb = static_cast<unsigned>(x); }));
    v.push_back(integer<E>(to + "upload_timeout_ms", 1, 3600000, d.upload_timeout_ms, "One upload, from its first "
                           "byte sent to the answer.",
                           [](E& e, long long x) { e.upload_timeout_ms = static_cast<unsigned>(x); }));
    return v;
  }();
  return params;
}

// A port with every default applied (the replay port is one too).
PortConfig default_port() {
  PortConfig port{};
  for (const auto& p : port_params())
    if (!p.default_yaml.empty()) p.apply(YAML::Load(p.default_yaml), port, p.path);
  return port;
}

void check_port(const YAML::Node& n, const PortConfig& port, const std::string& key);
void check_endpoint(const YAML::Node& n, const EndpointConfig& e, const std::string& key);
template <typename Target>
void apply_map(const YAML::Node& map, Target& target, const std::vector<Param<Target>>& table,
               const std::string& table_prefix, const std::string& key_prefix, const std::string& section);

Params mode_params() {
  using dataplane::Mode;
  return {
      choice<Loading>("mode", {"inline", "tap", "replay"}, "inline",
                      "`inline`: port pairs, every frame forwarded A<->B. `tap`: ports only receive (SPAN copy). "
                      "`replay`: `replay.input` is read through DPDK's pcap PMD and Sluice exits at its end.",
                      [](Loading& l, const std::string& v) {
                        l.config.dataplane.mode = v == "inline" ? Mode::inline_ : v == "tap" ? Mode::tap : Mode::replay;
                      }),
  };
}

Params eal_params() {
  using dataplane::Hugepages;
  return {
      string<Loading>("eal.file_prefix", "", "EAL `--file-prefix`: the instance's name, which names its DPDK "
                      "runtime directory (`/var/run/dpdk/NAME` as root) and hugepage files (`NAMEmap_N`), so that "
                      "`dpdk-telemetry.py -f NAME` and `dpdk-pdump --file-prefix=NAME` reach it by name. A second "
                      "sluiced with the same name stops at start. Empty: `sluice-<pid>`, so instances never share "
                      "DPDK runtime files. Either way sluiced removes them at exit (after SIGTERM too); at start it "
                      "removes those of dead `sluice-<pid>` instances.",
                      [](Loading& l, std::string v) { l.config.dataplane.eal.file_prefix = std::move(v); }),
      choice<Loading>("eal.hugepages", {"auto", "on", "off"}, "auto",
                      "`auto`: use hugepages when some are free in a size that has a hugetlbfs mounted; reserved but "
                      "not mounted, run with `--no-huge` and say so in one line with the command that mounts them "
                      "(`mount -t hugetlbfs nodev /dev/hugepages`); none free: `--no-huge`. `on`: stop at start with "
                      "that line when hugepages cannot be used. `off` always runs without (slower DMA setup, fine "
                      "for af_packet and pcap).",
                      [](Loading& l, const std::string& v) {
                        l.config.dataplane.eal.hugepages = v == "on" ? Hugepages::on : v == "off" ? Hugepages::off : Hugepages::automatic;
                      }),
      integer<Loading>("eal.memory_mb", 64, 1048576, 512, "Memory the EAL reserves when running without hugepages "
                       "(`-m`), for DPDK's pools and rings. Too small: a pool cannot be created and Sluice exits naming its "
                       "key. The mbuf pool is not in it when every port is a virtual device (not PCI): it is then in "
                       "the process's own memory (transparent huge pages), docs/sizing.md.",
                       [](Loading& l, long long v) { l.config.dataplane.eal.memory_mb = static_cast<unsigned>(v); }),
      string_list<Loading>("eal.args", {}, "Further EAL arguments, appended after the generated ones "
                           "(arguments after `--` on the command line come last).",
                           [](Loading& l, std::vector<std::string> v) { l.config.dataplane.eal.args = std::move(v); }),
  };
}

// A list of mappings whose members are declared in their own table (`ports`, and
// `reputation.endpoints`): each element starts from the members' defaults, then what it gives;
// `check` validates one element (required members, formats). Its canonical form lists every member
// of every element, in declaration order.
template <typename Member>
Param<Loading> mapping_list(std::string path, std::string what, std::string help,
                            const std::vector<Param<Member>>& (*members)(), const std::string& member_prefix,
                            void (*check)(const YAML::Node&, const Member&, const std::string& key),
                            std::function<void(Loading&, std::vector<Member>)> set) {
  return param<Loading>(
      std::move(path), "list of " + what + " (keys below)", "[]", std::move(help),
      [=](const YAML::Node& n, Loading& l, const std::string& key) {
        if (!n.IsSequence()) fail(key, "expected a list of " + what + ", got " + scalar_text(n) + where(n));
        std::vector<Member> v;
        for (std::size_t i = 0; i < n.size(); ++i) {
          Member m{};
          for (const auto& p : members())
            if (!p.default_yaml.empty()) p.apply(YAML::Load(p.default_yaml), m, p.path);
          const std::string k = key + "[" + std::to_string(i) + "]";
          apply_map(n[i], m, members(), member_prefix, k, "");
          check(n[i], m, k);
          v.push_back(std::move(m));
        }
        set(l, std::move(v));
      },
      [=](const YAML::Node& n) {
        std::vector<std::string> elements;
        for (const auto& element : n) {
          std::string text;
          for (const auto& p : members()) {
            const std::string name = p.path.substr(member_prefix.size());
            text += (text.empty() ? "" : ", ") + name + ": " + p.canonical(effective_node(p, given_at(element, name)));
          }
          elements.push_back("{" + text + "}");
        }
        return yaml_list(elements, plain_text);
      });
}

// `ports` members are declared in port_params(); pairs name ports and are resolved in finish().
Params port_and_pair_params() {
  return {
      mapping_list<PortConfig>(
          "ports", "port mappings",
          "The DPDK ports. In `replay` mode leave empty: the port is built from `replay.input`/`replay.output`.",
          port_params, "ports[].", check_port, [](Loading& l, std::vector<PortConfig> v) {
            l.ports_given = !v.empty();
            l.config.dataplane.ports = std::move(v);
          }),
      param<Loading>(
          "pairs", "list of [port, port]", "[]",
          "Inline mode: which ports form a bump in the wire. Every frame received on one is sent on the other. "
          "Each port belongs to exactly one pair.",
          [](const YAML::Node& n, Loading& l, const std::string& key) {
            if (!n.IsSequence()) fail(key, "expected a list of [port, port], got " + scalar_text(n) + where(n));
            l.pair_names.clear();
            for (std::size_t i = 0; i < n.size(); ++i) {
              const std::string k = key + "[" + std::to_string(i) + "]";
              if (!n[i].IsSequence() || n[i].size() != 2)
                fail(k, "expected a list of two port names, got " + scalar_text(n[i]) + where(n[i]));
              l.pair_names.emplace_back(parse_string(n[i][0], k), parse_string(n[i][1], k));
            }
          },
          [](const YAML::Node& n) {
            std::vector<std::string> pairs;
            for (const auto& pair : n)
              pairs.push_back(yaml_list(std::vector<std::string>{parse_string(pair[0], "pairs"), parse_string(pair[1], "pairs")},
                                        yaml_text));
            return yaml_list(pairs, plain_text);
          }),
  };
}

// `lcores.workers`: a list of lcore ids, or `auto` (the default), resolved in finish() by the CPUs
// there are (dataplane::auto_workers). The effective value is what was given ("auto" when left
// out), so a reload compares the given layout: what auto derives from (the main and RX lcores, the
// CPUs, eal.args) cannot change at run time either.
Param<Loading> workers_param() {
  using Ids = std::optional<std::vector<unsigned>>;  // nullopt: auto
  auto parse = [](const YAML::Node& n, const std::string& key) -> Ids {
    if (n.IsScalar() && n.Scalar() == "auto") return std::nullopt;
    if (!n.IsSequence()) fail(key, "expected `auto` or a list of lcore ids, got " + scalar_text(n) + where(n));
    std::vector<unsigned> v;
    for (std::size_t i = 0; i < n.size(); ++i)
      v.push_back(static_cast<unsigned>(parse_integer(n[i], key + "[" + std::to_string(i) + "]", 0, 127)));
    return v;
  };
  auto set = [](Loading& l, Ids v) {
    l.workers_auto = !v;
    l.config.dataplane.lcores.workers = v ? std::move(*v) : std::vector<unsigned>{};
  };
  auto show = [](const Ids& v) { return v ? yaml_list(*v, integer_text) : std::string("auto"); };
  return declare<Loading>("lcores.workers", "`auto` or a list of integers 0..127", "auto",
                          "Worker lcores: SHA-256, file typing and archives of attachments, and each message's "
                          "SHA-256 (`workers.hash_messages`; DESIGN.md section 3). `[]`: none, each RX lcore does "
                          "that work itself. `auto`: with 2 CPUs or more (this process's affinity), one worker "
                          "per RX lcore as far as the CPUs beside the main and RX lcores go (at least one), at "
                          "the lcore ids after the highest of `lcores.main` and `lcores.rx` (on 2 CPUs: worker 2, "
                          "sharing CPU 0 with the main lcore, the layout measured fastest there, "
                          "docs/benchmarks.md); none on one CPU or when `eal.args` maps lcores itself "
                          "(`--lcores`, `-l`, `-c`). The start-up line says how many worker lcores run.",
                          parse, set, show);
}

Params lcore_params() {
  const dataplane::LcoreConfig idle{};  // the defaults of the idle_* keys
  return {
      integer<Loading>("lcores.main", 0, 127, 0, "The main lcore: control plane, signals, stats. Never polls ports.",
                       [](Loading& l, long long v) { l.config.dataplane.lcores.main = static_cast<unsigned>(v); }),
      integer_list<Loading>("lcores.rx", 0, 127, {1}, "RX/reassembly lcores (DESIGN.md section 3). RX lcore k polls "
                            "queue k of every port and transmits on its own TX queue k. Each lcore id runs on CPU "
                            "(id modulo the CPUs available); use `eal.args: [--lcores, ...]` for another map.",
                            [](Loading& l, std::vector<unsigned> v) { l.config.dataplane.lcores.rx = std::move(v); }),
      workers_param(),
      integer<Loading>("lcores.idle_polls", 1, 100000000, idle.idle_polls, "RX lcores: empty polls in a row "
                       "(iterations that received no frame) spent spinning before the lcore starts to sleep "
                       "between polls (`lcores.idle_sleep_us`). Any work starts the count again. Worker lcores "
                       "do not spin: they sleep as soon as their rings are empty (`lcores.idle_sleep_us`).",
                       [](Loading& l, long long v) { l.config.dataplane.lcores.idle_polls = static_cast<uint32_t>(v); }),
      integer<Loading>("lcores.idle_sleep_us", 0, 10000, idle.idle_sleep_us, "The longest sleep between two polls "
                       "of an idle RX or worker lcore, in microseconds. An RX lcore's sleeps start at 1 and double "
                       "up to this; a worker's follow the gap between the bursts of chunks it is given (doubled "
                       "when it woke to nothing, halved when it woke to a whole burst of 32), from 1 up to this. "
                       "It bounds the extra delay of the first frame or chunk after a quiet spell (plus the "
                       "kernel's wake-up); frames meanwhile wait in the RX ring (`dataplane.rx_desc`), chunks in "
                       "the worker's ring. An idle lcore then leaves its CPU to what shares it (the control "
                       "thread, another lcore). "
                       "0: idle lcores spin (a whole CPU each, the lowest latency). Counted per lcore: "
                       "`idle_sleeps` in the stats event, `sluice_lcore_idle_sleeps_total`.",
                       [](Loading& l, long long v) { l.config.dataplane.lcores.idle_sleep_us = static_cast<uint32_t>(v); }),
  };
}

Params dataplane_params() {
  return {
      integer<Loading>("dataplane.burst", 1, 256, 32, "Frames per rx_burst/tx_burst call.",
                       [](Loading& l, long long v) { l.config.dataplane.burst = static_cast<unsigned>(v); }),
      integer<Loading>("dataplane.mbufs", 1023, 16777215, 16383, "Size of the mbuf pool shared by all ports "
                       "(best 2^n - 1). Must cover every RX descriptor plus bursts in flight; when it runs out the PMD "
                       "counts `rx_nombuf` and drops.",
                       [](Loading& l, long long v) { l.config.dataplane.mbufs = static_cast<unsigned>(v); }),
      integer<Loading>("dataplane.mbuf_cache", 0, 512, 256, "Per-lcore mbuf cache of the pool.",
                       [](Loading& l, long long v) { l.config.dataplane.mbuf_cache = static_cast<unsigned>(v); }),
      integer<Loading>("dataplane.tx_retries", 0, 1000, 8, "How many more times a TX burst is retried when the TX "
                       "queue is full; then the frames left are dropped and counted (`dropped`).",
                       [](Loading& l, long long v) { l.config.dataplane.tx_retries = static_cast<unsigned>(v); }),
      integer<Loading>("dataplane.dispatch_ring_size", 64, 1048576, 4096, "With several RX lcores and a port "
                       "without symmetric RSS: size of each lcore's inbound ring (power of two). A full ring drops "
                       "the frame and counts it (`dropped`).",
                       [](Loading& l, long long v) { l.config.dataplane.dispatch_ring_size = static_cast<unsigned>(v); }),
      integer<Loading>("dataplane.stop_timeout_ms", 0, 600000, 5000, "On SIGTERM or SIGINT, the open flows and "
                       "their half-received messages are reported (flow reason `shutdown`; a message cut short is "
                       "`incomplete` with reason `shutdown`) within this long. Past it the lcores give up: the flows and "
                       "messages left are counted, not reported (`shutdown.flows_unflushed`, `messages_unflushed`, "
                       "`events_dropped` in the exit `stats` event, and a `stop_incomplete` alert). Checked between "
                       "flows; one flow's flush, with the unpacking of its attachments when no worker lcore is "
                       "configured, is bounded by `archives.max_ms`. 0: nothing is flushed, everything is counted. Keep "
                       "it below the service manager's stop timeout (systemd `TimeoutStopSec`, 90 s by default).",
                       [](Loading& l, long long v) { l.config.dataplane.stop_timeout_ms = static_cast<unsigned>(v); }),
      choice<Loading>("dataplane.flow_hash", {"ip_pair", "five_tuple"}, "ip_pair",
                      "Software flow hash for ports without symmetric RSS. `ip_pair` keeps IP fragments (which carry "
                      "no ports) with their connection; `five_tuple` spreads one host pair over lcores.",
                      [](Loading& l, const std::string& v) {
                        l.config.dataplane.flow_hash =
                            v == "ip_pair" ? reassembly::FlowHashMode::ip_pair : reassembly::FlowHashMode::five_tuple;
                      }),
  };
}

// Frames held until their message is decided (dataplane/hold_queue.h, dataplane/enforcer.h).
Params hold_params() {
  auto action = [](const std::string& v) { return v == "forward" ? dataplane::HoldAction::forward : dataplane::HoldAction::drop; };
  return {
      integer<Loading>("hold.max_frames", 1, 1048576, 512, "Per RX lcore: frames held at once until their "
                       "message's verdict (inline enforcement holds the segment that ends a message). Held frames are "
                       "mbufs of the pool, so in inline and replay modes `dataplane.mbufs` must cover them too. When "
                       "reached, a frame to hold takes `hold.fallback` at once (counted `hold.cap_reached`).",
                       [](Loading& l, long long v) { l.config.dataplane.hold.limits.max_frames = static_cast<uint32_t>(v); }),
      integer<Loading>("hold.max_frames_per_message", 1, 4096, 16, "Frames held for one message (its last "
                       "segment, retransmissions and fragments of it), so that one message cannot take the whole "
                       "queue. When reached: `hold.fallback`, counted `hold.cap_reached`.",
                       [](Loading& l, long long v) { l.config.dataplane.hold.limits.max_frames_per_message = static_cast<uint32_t>(v); }),
      choice<Loading>("hold.fallback", {"forward", "drop"}, "forward",
                      "What happens to a frame that should be held when a hold limit is reached: `forward` lets the "
                      "message through undecided (fail open), `drop` discards the frame (the sender retransmits it).",
                      [action](Loading& l, const std::string& v) { l.config.dataplane.hold.limits.fallback = action(v); }),
      integer<Loading>("hold.max_hold_ms", 100, 540000, 60000, "Longest a frame stays held: past it, the frame "
                       "takes `hold.on_deadline` (counted `hold.expired`). Kept under the 10-minute DATA-termination "
                       "timeout of RFC 5321 4.5.3.2.6 so that the client never gives up first.",
                       [](Loading& l, long long v) { l.config.dataplane.hold.max_hold_ms = static_cast<uint32_t>(v); }),
      choice<Loading>("hold.on_deadline", {"forward", "defer", "reject", "drop"}, "forward",
                      "What happens to a held message whose verdict has not come within `hold.max_hold_ms` (counted "
                      "`enforce.expired`), and to messages still held when sluiced stops: `forward` passes it (fail "
                      "open), `defer` answers the client 451 (`enforce.defer_reply`) and resets the server, `reject` "
                      "answers 550. `drop` discards the held frames without a reply (the hold-path debug mode; "
                      "with enforcement it acts as `defer`).",
                      [](Loading& l, const std::string& v) {
                        auto& h = l.config.dataplane.hold;
                        h.limits.on_deadline = v == "forward" ? dataplane::HoldAction::forward : dataplane::HoldAction::drop;
                        l.config.dataplane.enforce.on_deadline = v == "forward"  ? records::Action::pass
                                                                 : v == "reject" ? records::Action::reject
                                                                                 : records::Action::defer;
                      }),
      boolean<Loading>("hold.debug_hold_every_message", false, "Debug, for tests of the hold path only: the frame "
                       "that ends every message is held until `hold.max_hold_ms` (no verdict releases it), then takes "
                       "`hold.on_deadline`. Never in production: every message would wait.",
                       [](Loading& l, bool v) { l.config.dataplane.hold.debug_hold_every_message = v; }),
  };
}

// Inline enforcement (dataplane/enforcer.h): the replies sluiced sends in the server's place and
// the connections it answers after a reject or defer.
Params enforce_params() {
  return {
      string<Loading>("enforce.reject_reply", "550 5.7.1 Message rejected: {reason} (reference {reference})",
                      "The reply line the client receives for a rejected message (without CRLF): a 5xx code. "
                      "`{reason}` becomes what decided it (malicious content, content that cannot be inspected, "
                      "...), `{reference}` the id that the message's `verdict` event carries as `reference`.",
                      [](Loading& l, std::string v) { l.config.dataplane.enforce.reject_reply = std::move(v); }),
      string<Loading>("enforce.defer_reply", "451 4.7.1 Message deferred: {reason}, try again later (reference {reference})",
                      "The reply line for a deferred message (a file in analysis, or `defer` actions): a 4xx code, "
                      "so that the sender retries later. Same placeholders as `enforce.reject_reply`.",
                      [](Loading& l, std::string v) { l.config.dataplane.enforce.defer_reply = std::move(v); }),
      integer<Loading>("enforce.max_connections", 1, 1 << 24, 4096, "Per RX lcore: connections holding a message "
                       "or answered by sluiced after a reject or defer, at once. When reached, a message's end is "
                       "not held (it goes on; counted `enforce.table_full`).",
                       [](Loading& l, long long v) { l.config.dataplane.enforce.max_flows = static_cast<uint32_t>(v); }),
      choice<Loading>("enforce.starttls", {"pass", "mask", "block"}, "pass",
                      "STARTTLS on an inspected SMTP port: `pass` lets TLS start (inspection of that session ends; "
                      "its flow event says `starttls`), `mask` overwrites the STARTTLS capability in the server's "
                      "EHLO reply with a same-length unknown keyword so the client stays in clear text (anomaly "
                      "`starttls_masked`), `block` answers a client's STARTTLS with 454 and ends the session as "
                      "after a reject (anomaly `starttls_blocked`; under `mask` too, for a client that sends it "
                      "anyway). Implicit TLS ports (`smtp.implicit_tls_ports`) always pass and are logged.",
                      [](Loading& l, const std::string& v) {
                        l.config.dataplane.enforce.starttls = v == "mask"    ? dataplane::StartTlsPolicy::mask
                                                              : v == "block" ? dataplane::StartTlsPolicy::block
                                                                             : dataplane::StartTlsPolicy::pass;
                      }),
      integer<Loading>("enforce.watchdog_ms", 0, 600000, 5000, "Fail-open watchdog, per RX lcore: when files "
                       "wait for the workers and no result has come for this long (a stuck worker), every held "
                       "message is let through and message ends go on unheld until results flow again (counted "
                       "`enforce.watchdog_*`; alert `enforcement_fail_open`, then `enforcement_resumed`). 0: off "
                       "(held messages then wait for `hold.max_hold_ms`).",
                       [](Loading& l, long long v) { l.config.dataplane.enforce.watchdog_ms = static_cast<uint32_t>(v); }),
      integer<Loading>("enforce.aftermath_s", 1, 3600, 60, "After a reject or defer sluiced answers the client in "
                       "the server's place (QUIT: 221, anything else: 421, then a FIN) and drops the server's "
                       "frames; a connection silent this long is forgotten.",
                       [](Loading& l, long long v) { l.config.dataplane.enforce.aftermath_ms = static_cast<uint32_t>(v) * 1000; }),
  };
}

Params replay_params() {
  return {
      string<Loading>("replay.input", "", "Replay mode: the pcap to read (`--replay`). Sluice exits at its end.",
                      [](Loading& l, std::string v) { l.config.replay_input = std::move(v); }),
      string<Loading>("replay.output", "", "Replay mode: write the frames inline mode would have forwarded to "
                      "this pcap (`--replay-out`); empty: forward nothing.",
                      [](Loading& l, std::string v) { l.config.replay_output = std::move(v); }),
      integer<Loading>("replay.wait_analysis_s", 0, 86400, 0, "Replay mode: at the end of the capture, wait this long "
                       "for pending analyses to complete (their messages' final verdicts). 0: exit at once; the next "
                       "start with the same `state.dir` resumes polling them.",
                       [](Loading& l, long long v) { l.config.analysis.replay_wait_s = static_cast<unsigned>(v); }),
      integer<Loading>("replay.overload_wait_ms", 0, 3600000, 10000, "Replay mode, instead of "
                       "`workers.overload_wait_us`: how long the RX lcore waits for a chunk or ring room when a worker "
                       "lcore falls behind before an attachment (or a message hash) is given up as `overload`. A "
                       "capture loses nothing by waiting, where a link would: a worker that shares its CPU may be "
                       "off it for milliseconds.",
                       [](Loading& l, long long v) { l.replay_overload_wait_ms = static_cast<uint32_t>(v); }),
  };
}

// Events and the periodic `stats` event, which travels with them.
Params event_params() {
  return {
      reloadable(string<Loading>("events.path", "", "JSON-lines event file (`--events`); `-` is standard output; "
                                 "empty: no events. Appended to.",
                                 [](Loading& l, std::string v) { l.config.events_path = std::move(v); })),
      reloadable(integer<Loading>("stats.interval_s", 0, 86400, 0, "Seconds between `stats` events; 0: one at exit only.",
                                  [](Loading& l, long long v) { l.config.stats_interval_s = static_cast<unsigned>(v); })),
      integer<Loading>("events.ring_kb", 64, 1048576, 16384, "Per RX lcore: the ring carrying event records "
                       "to the control thread (a message record is 7.6 KiB, a file 2.6 KiB, a verdict 3.1 KiB: 16 MiB hold "
                       "about 1200 messages with an attachment each; pages are touched only when used). When it is full a "
                       "record is lost and counted (`events_dropped` in `stats`, an `events_lost` alert); in replay mode, "
                       "at end of input and at shutdown the lcore waits instead (until the stop deadline).",
                       [](Loading& l, long long v) { l.config.dataplane.event_ring_bytes = std::size_t(v) * 1024; }),
  };
}

// Per-message traces (control/trace.h) and the report page's figures (control/report.h).
Params trace_params() {
  const TraceSettings t{};
  const ReportSettings r{};
  return {
      boolean<Loading>("trace.enabled", true, "Per-message traces: every workflow step of each message as JSON "
                       "lines in `trace.path` (served by `GET /api/v1/trace`, shown by `sluicectl trace`).",
                       [](Loading& l, bool v) { l.trace_enabled = v; }),
      string<Loading>("trace.path", "", "The trace log. Empty: `STATE/trace.log` when there is a state directory; "
                      "none in replay mode without one (give a path to trace a replay).",
                      [](Loading& l, std::string v) { l.config.trace.path = std::move(v); }),
      integer<Loading>("trace.max_file_mb", 1, 65536, static_cast<long long>(t.max_file_bytes >> 20), "The trace "
                       "log is rotated (to `PATH.1`, `PATH.2`, ...) before it passes this size.",
                       [](Loading& l, long long v) { l.config.trace.max_file_bytes = uint64_t(v) << 20; }),
      integer<Loading>("trace.max_files", 1, 100, t.max_files, "Trace files kept, the current one included; the "
                       "oldest is removed at a rotation. A search reads them all: `max_file_mb` times this bounds "
                       "its time.",
                       [](Loading& l, long long v) { l.config.trace.max_files = static_cast<unsigned>(v); }),
      integer<Loading>("report.max_files", 1, 1000000, static_cast<long long>(r.max_files), "Malicious files the "
                       "report page's figures track (`top_malicious`); beyond, the one seen longest ago is "
                       "forgotten.",
                       [](Loading& l, long long v) { l.config.report.max_files = static_cast<std::size_t>(v); }),
      integer<Loading>("report.max_messages", 1, 10000000, static_cast<long long>(r.max_messages), "Recent "
                       "messages whose subject and sender the report keeps to name the messages of malicious "
                       "files; beyond, the oldest is forgotten (listed by reference only).",
                       [](Loading& l, long long v) { l.config.report.max_messages = static_cast<std::size_t>(v); }),
  };
}

Params smtp_params() {
  return {
      integer_list<Loading>("smtp.ports", 1, 65535, {25, 587, 2525}, "TCP server ports parsed as SMTP (sessions "
                            "picked up mid-stream too).",
                            [](Loading& l, std::vector<unsigned> v) {
                              l.config.dataplane.reassembly.smtp_ports.assign(v.begin(), v.end());
                            }),
      integer_list<Loading>("smtp.implicit_tls_ports", 1, 65535, {465}, "TCP server ports of SMTP over implicit "
                            "TLS (RFC 8314): tracked and logged as `smtps` flows, not parsed.",
                            [](Loading& l, std::vector<unsigned> v) {
                              l.config.dataplane.reassembly.implicit_tls_ports.assign(v.begin(), v.end());
                            }),
      choice<Loading>("smtp.detect", {"ports", "content"}, "content",
                      "Which TCP flows are parsed as SMTP. `ports`: those on `smtp.ports` only. `content` (the "
                      "default): also flows on any other port (not `smtp.implicit_tls_ports`) whose first bytes "
                      "are SMTP, as Suricata's protocol detection does: a server greeting (`220` then a space or "
                      "`-` and a line end within 512 octets) or a client's `EHLO ` / `HELO ` line. Such a flow "
                      "holds no session slot while it is judged (at most 8 payload segments, 512 octets a side) "
                      "and is parsed from its first byte once taken for SMTP; its `smtp` and `flow` events say "
                      "`\"detected\": \"content\"`. Anything else (HTTP, TLS, binary) is bypassed at its "
                      "first payload segment; later frames cost one flow look-up. Cost: about +50-65 ns per frame of "
                      "other TCP on one lcore (a flow look-up per frame, a probe at a connection's first payload; "
                      "`ports` refuses such a frame for about 20 ns) and nothing measurable on mail "
                      "(`scripts/bench-detect`, docs/benchmarks.md), plus a flow entry per TCP connection and "
                      "1.1 KiB per `reassembly.max_sessions` for probes. `ports` (the behaviour before) forwards "
                      "other TCP without a look-up. "
                      "Counted `detect_probed`, `detect_smtp`, `detect_not_smtp`, `detect_undecided`, "
                      "`detect_evicted`.",
                      [](Loading& l, const std::string& v) { l.config.dataplane.reassembly.detect_content = v == "content"; }),
      integer<Loading>("smtp.reading_max_mb", 0, 4096, 32, "SMTP smuggling: a DATA stream with an ambiguous end "
                       "of data (`bare_lf_terminator`, `bare_cr_terminator`) is also parsed the way a server that "
                       "reads it differently would, and that reading's attachments are hashed, typed and looked up "
                       "like any other (`file` and `verdict` events with `reading`: `one_message` for the strict "
                       "reading that runs on to CRLF.CRLF, `split` for the messages a server ending lines at a bare "
                       "CR would see). One such reading at a time per RX lcore (another meanwhile is counted "
                       "`readings_skipped`); a reading is cut after this many MiB of content (ends incomplete, "
                       "`readings_truncated`). 0: only the primary reading.",
                       [](Loading& l, long long v) {
                         l.config.dataplane.reassembly.reading_max_bytes = static_cast<uint64_t>(v) << 20;
                       }),
  };
}

Params reassembly_params() {
  const reassembly::ReassemblyConfig hole_wait{};  // the defaults of the ack_hole_wait_* keys
  return {
      integer<Loading>("reassembly.max_flows", 1024, 16777216, 65536, "Flow table entries per RX lcore (SMTP and "
                       "implicit-TLS ports; under `smtp.detect: content` every TCP connection, those off the SMTP "
                       "ports kept as embryonic until taken for SMTP). When full, the oldest embryonic flow (no "
                       "payload yet, or off the SMTP ports) is evicted (flow event, reason `evicted`, for flows "
                       "on the SMTP ports); without one, emergency timeouts apply; a new flow that still "
                       "does not fit is not tracked: counted (`flows_table_full`), reported once a second "
                       "(`flow_table_full` anomaly) and handled by `reassembly.untracked_action`.",
                       [](Loading& l, long long v) { l.config.dataplane.reassembly.max_flows = static_cast<uint32_t>(v); }),
      integer<Loading>("reassembly.max_sessions", 16, 1048576, 2048, "SMTP sessions inspected at once per RX "
                       "lcore (about 34 KiB each for reassembly plus about 492 KiB for MIME parsing: address space "
                       "reserved at start, a slot built the first time it is used and its pages touched as mail "
                       "needs them: about 180-225 KiB resident per session on ordinary mail, docs/sizing.md). A flow takes a slot when it shows payload, not at its SYN. When "
                       "none is free, emergency timeouts apply; a session that still finds none is forwarded "
                       "uninspected, counted (`sessions_pool_full`) and reported as an `anomaly` event.",
                       [](Loading& l, long long v) { l.config.dataplane.reassembly.max_sessions = static_cast<uint32_t>(v); }),
      integer<Loading>("reassembly.memcap_mb", 1, 65536, 64, "Out-of-order TCP data buffered per RX lcore, all "
                       "flows together. When exhausted, the stream that needs room skips its hole: the message is "
                       "reported `incomplete` with reason `memcap`.",
                       [](Loading& l, long long v) { l.config.dataplane.reassembly.memcap_mb = static_cast<uint32_t>(v); }),
      integer<Loading>("reassembly.stream_max_buffered_kb", 4, 65536, 1024, "Out-of-order data buffered per flow "
                       "and direction; beyond, the hole is skipped (`memcap`), as above.",
                       [](Loading& l, long long v) {
                         l.config.dataplane.reassembly.stream.max_buffered_bytes = static_cast<uint32_t>(v * 1024);
                       }),
      integer<Loading>("reassembly.stream_max_segments", 4, 65536, 1024, "Out-of-order segments buffered per flow "
                       "and direction; beyond, as above.",
                       [](Loading& l, long long v) {
                         l.config.dataplane.reassembly.stream.max_buffered_segments = static_cast<uint32_t>(v);
                       }),
      integer<Loading>("reassembly.retransmit_check_kb", 0, 4096, 64, "Per flow and direction: the most recent "
                       "delivered bytes kept until the receiver acknowledges them, so that a retransmission that "
                       "differs from what was delivered is an `overlap_conflict` (an evasion: the receiver may keep "
                       "either copy). Taken from the `memcap_mb` pool only while it is more than half free; 0: no "
                       "copy, retransmissions are only counted.",
                       [](Loading& l, long long v) {
                         l.config.dataplane.reassembly.stream.max_unacked_bytes = static_cast<uint32_t>(v * 1024);
                       }),
      integer<Loading>("reassembly.unknown_window_kb", 64, 1048576, 1024, "Out-of-order data is buffered only within "
                       "the receiver's advertised window (scaled as the handshake says, plus one window of slack for "
                       "taps). For a connection picked up mid-stream, whose window scale is unknown: this far ahead "
                       "of the next expected byte. Data beyond is not buffered (`out_of_window` anomaly, "
                       "`out_of_window_segments`).",
                       [](Loading& l, long long v) {
                         l.config.dataplane.reassembly.stream.unknown_window_bytes = static_cast<uint32_t>(v * 1024);
                       }),
      integer<Loading>("reassembly.ack_hole_wait_ms", 0, 600000, hole_wait.ack_hole_wait_us / 1000, "Tap and replay modes: when one side "
                       "acknowledges bytes of the other that have not been seen yet (a TAP or SPAN with a port per "
                       "direction, or two RX queues, can deliver the ACK first), the hole is waited for this long "
                       "(packet time, since its stream last moved) before it is declared a gap; the acknowledging "
                       "side's segments are held meanwhile, so the session sees replies after the commands they "
                       "answer. Filled holes are counted `acked_holes_filled`. At this limit (or the two below, at "
                       "FIN, RST, expiry or end of input) the hole is declared a gap as it always was: the message "
                       "is reported `incomplete` with reason `gap`, counted `acked_holes_declared`. 0: declared at "
                       "once. Inline mode always declares at once (both directions pass through the appliance in "
                       "step).",
                       [](Loading& l, long long v) {
                         l.config.dataplane.reassembly.ack_hole_wait_us = static_cast<uint32_t>(v * 1000);
                       }),
      integer<Loading>("reassembly.ack_hole_wait_kb", 0, 65536, hole_wait.ack_hole_wait_bytes / 1024, "Tap and replay modes: an acknowledged hole "
                       "is declared a gap once more than this many KiB of payload (both directions) arrived on its "
                       "flow since its stream last moved, or once the segments held for it would pass this size "
                       "(as above). 0: declared at once.",
                       [](Loading& l, long long v) {
                         l.config.dataplane.reassembly.ack_hole_wait_bytes = static_cast<uint32_t>(v * 1024);
                       }),
      integer<Loading>("reassembly.ack_hole_wait_segments", 0, 65536, hole_wait.ack_hole_wait_segments, "Tap and replay modes: an acknowledged "
                       "hole is declared a gap once more than this many segments (both directions) arrived on its "
                       "flow since its stream last moved, or once more would be held for it (as above). 0: "
                       "declared at once.",
                       [](Loading& l, long long v) {
                         l.config.dataplane.reassembly.ack_hole_wait_segments = static_cast<uint32_t>(v);
                       }),
      integer<Loading>("reassembly.idle_timeout_s", 1, 86400, 600, "An open flow without packets for this long is "
                       "closed and reported (RFC 5321 4.5.3.2: servers wait 5 minutes for a command, 10 for the end "
                       "of data). Packet time in replay.",
                       [](Loading& l, long long v) { l.config.dataplane.reassembly.idle_timeout_s = static_cast<uint32_t>(v); }),
      integer<Loading>("reassembly.embryonic_timeout_s", 1, 3600, 30, "A flow that has shown no payload yet "
                       "(a SYN, a handshake, a half-open connection) and no packet for this long is closed and "
                       "reported. Such flows hold no session slot and are evicted first when the table is full.",
                       [](Loading& l, long long v) { l.config.dataplane.reassembly.embryonic_timeout_s = static_cast<uint32_t>(v); }),
      integer<Loading>("reassembly.emergency_idle_timeout_s", 1, 86400, 60, "Emergency (the flow table full of "
                       "active flows, or no session slot free when a flow shows payload): the idle timeout of open "
                       "flows, in force until usage falls below `reassembly.emergency_recovery_percent`. Counted "
                       "(`emergency_entered`), and an `alert` (`flow_emergency`).",
                       [](Loading& l, long long v) { l.config.dataplane.reassembly.emergency_idle_timeout_s = static_cast<uint32_t>(v); }),
      integer<Loading>("reassembly.emergency_embryonic_timeout_s", 1, 3600, 5, "Emergency: the timeout of "
                       "embryonic flows.",
                       [](Loading& l, long long v) { l.config.dataplane.reassembly.emergency_embryonic_timeout_s = static_cast<uint32_t>(v); }),
      integer<Loading>("reassembly.emergency_recovery_percent", 10, 99, 80, "Emergency ends when active flows "
                       "and session slots in use are both below this share of `max_flows` and `max_sessions`.",
                       [](Loading& l, long long v) { l.config.dataplane.reassembly.emergency_recovery_percent = static_cast<uint32_t>(v); }),
      choice<Loading>("reassembly.untracked_action", {"forward", "drop_syn"}, "forward",
                      "Inline mode: a new SMTP connection that cannot be tracked or inspected even in emergency. "
                      "`forward`: its frames pass uninspected (counted `flows_table_full` / `sessions_pool_full`). "
                      "`drop_syn`: its SYN is dropped (counted `syns_dropped`), so the client retries later and "
                      "nothing passes uninspected from a new connection. Tap mode only observes: `forward` only.",
                      [](Loading& l, const std::string& v) { l.config.dataplane.reassembly.drop_untracked_syn = v == "drop_syn"; }),
      integer<Loading>("reassembly.closed_timeout_s", 1, 3600, 10, "A flow closed by FIN both ways or RST is kept "
                       "this long to absorb late retransmissions, then forgotten.",
                       [](Loading& l, long long v) { l.config.dataplane.reassembly.closed_timeout_s = static_cast<uint32_t>(v); }),
      integer<Loading>("reassembly.max_fragment_sets", 1, 65536, 64, "IP datagrams in fragment reassembly at once "
                       "per RX lcore (64 KiB each). When all are busy, a new fragmented datagram is not inspected "
                       "(`fragments_dropped`).",
                       [](Loading& l, long long v) { l.config.dataplane.reassembly.max_fragment_sets = static_cast<uint32_t>(v); }),
      integer<Loading>("reassembly.max_fragment_sets_per_source", 1, 65536, 16, "Of `max_fragment_sets`, how many "
                       "one source address may hold; its oldest incomplete set gives way to a new one. A new set that "
                       "finds every slot busy evicts the oldest set of all, so sets that never complete cannot block "
                       "reassembly (counted `fragments_evicted`).",
                       [](Loading& l, long long v) { l.config.dataplane.reassembly.max_fragment_sets_per_source = static_cast<uint32_t>(v); }),
      integer<Loading>("reassembly.fragment_timeout_s", 1, 600, 30, "An incomplete fragmented datagram is dropped "
                       "after this long (RFC 791 suggests 15 s to 2 min).",
                       [](Loading& l, long long v) { l.config.dataplane.reassembly.fragment_timeout_s = static_cast<uint32_t>(v); }),
  };
}

Params mime_params() {
  const pipeline::MimeLimits defaults{};
  return {
      integer<Loading>("mime.max_depth", 1, 256, defaults.max_depth, "Multipart and message/rfc822 nesting followed "
                       "in a message; deeper bodies are read as one part (anomaly `depth_exceeded`).",
                       [](Loading& l, long long v) { l.config.dataplane.mime.max_depth = static_cast<uint32_t>(v); }),
      integer<Loading>("mime.max_parts", 1, 1000000, defaults.max_parts, "Leaf parts reported per message; beyond, "
                       "the rest of the message is not inspected (anomaly `too_many_parts`).",
                       [](Loading& l, long long v) { l.config.dataplane.mime.max_parts = static_cast<uint32_t>(v); }),
      integer<Loading>("mime.max_field_kb", 1, 1024, defaults.max_field_bytes / 1024, "One unfolded header field "
                       "(RFC 2231 file names can be long); beyond, the field is truncated (anomaly `header_too_long`).",
                       [](Loading& l, long long v) { l.config.dataplane.mime.max_field_bytes = static_cast<uint32_t>(v * 1024); }),
      boolean<Loading>("mime.parse_rfc822", defaults.parse_rfc822, "Descend into attached messages (message/rfc822) "
                       "and report their attachments; false: an attached message is one file.",
                       [](Loading& l, bool v) { l.config.dataplane.mime.parse_rfc822 = v; }),
      boolean<Loading>("mime.uuencode", defaults.uuencode, "Report uuencoded blocks (`begin 644 name`) inside text "
                       "bodies as attachments.",
                       [](Loading& l, bool v) { l.config.dataplane.mime.uuencode = v; }),
      integer<Loading>("mime.max_readings", 0, 64, defaults.max_readings, "Other readings of ambiguous attachment "
                       "parts taken per message (README \"Other readings of a MIME part\": a Content-Transfer-Encoding "
                       "not spelled as the RFC or given twice, junk in base64, line ends of quoted-printable and raw "
                       "parts; and `header_lenient`, the whole message parsed again when its top-level header is "
                       "ambiguous, counted as one, at most one such parse at a time per RX lcore), each reported as a `file` with `reading` and looked up like any other; one that gives "
                       "the bytes of another file of the message is dropped. Past the limit the primary reading "
                       "stays and the message gets the anomaly `reading_skipped`. 0: no other readings.",
                       [](Loading& l, long long v) { l.config.dataplane.mime.max_readings = static_cast<uint32_t>(v); }),
      integer<Loading>("mime.reading_retain_kb", 0, 1024, defaults.reading_retain_bytes / 1024, "The first KiB of "
                       "every attachment body, and of every message up to the end of its top-level header, held by "
                       "its session's parser, so that a reading found needed later (junk in base64, a line break in "
                       "a raw or quoted-printable part, an ambiguous top-level header) starts from the beginning. A "
                       "trigger found past them takes no reading (anomaly `reading_skipped`). Memory: twice this "
                       "much per session in use, faulted in as far as used; cost: one copy of each attachment's "
                       "first KiB and of each top-level header.",
                       [](Loading& l, long long v) { l.config.dataplane.mime.reading_retain_bytes = static_cast<uint32_t>(v * 1024); }),
      choice<Loading>("mime.body_scan", {"sse2", "hyperscan"}, "sse2",
                      "How the parser passes over body lines it does not need. `sse2`: 64 bytes a step, every "
                      "line end checked, so `bare_lf` and `line_too_long` are exact. `hyperscan`: a Hyperscan "
                      "stream per message finds the line starts that matter (`--`, `begin `, `end`), compiled "
                      "once at start, one scratch per RX lcore; the same attachments, about 1.8x faster on "
                      "text-heavy mail and +10% on attachment-heavy mail (docs/benchmarks.md), but `bare_lf` and "
                      "`line_too_long` are then reported only for lines the parser reads (headers, boundaries "
                      "and their neighbours).",
                      [](Loading& l, const std::string& v) { l.config.dataplane.mime_hyperscan = v == "hyperscan"; }),
  };
}

// Pools and rings are the data plane's (dataplane::WorkerConfig, no defaults of its own); pending
// records and in-flight attachments are the pipeline's limits and take their defaults.
Params worker_params() {
  const pipeline::WorkerLimits worker{};
  const pipeline::HandoffLimits handoff{};
  return {
      integer<Loading>("workers.chunk_pool", 1023, 4194303, 8191, "Attachment chunks (4 KiB each) per RX lcore, "
                       "in flight to the worker lcores (best 2^n - 1). When none is free, see `workers.overload_wait_us`.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.chunk_pool = static_cast<unsigned>(v); }),
      integer<Loading>("workers.debug_stall_ms", 0, 600000, 0, "Debug, for tests of the enforcement watchdog only: "
                       "each worker lcore stops for this long the first time work waits for it, as a stuck decoder "
                       "would. Needs worker lcores. Never in production.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.debug_stall_ms = static_cast<uint32_t>(v); }),
      integer<Loading>("workers.chunk_ring_size", 64, 1048576, 1024, "Chunks queued from one RX lcore to one worker "
                       "lcore (power of two). When full, see `workers.overload_wait_us`.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.chunk_ring_size = static_cast<unsigned>(v); }),
      integer<Loading>("workers.result_pool", 1023, 4194303, 4095, "Result records per worker lcore (one per "
                       "attachment and per archive member, about 1.3 KiB each). When none is free, the worker waits "
                       "for its RX lcores to take results in.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.result_pool = static_cast<unsigned>(v); }),
      integer<Loading>("workers.result_ring_size", 64, 1048576, 1024, "Results queued from one worker to one RX lcore "
                       "(power of two). When full, the worker waits.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.result_ring_size = static_cast<unsigned>(v); }),
      // Not HandoffLimits::wait_us (0, what the pipeline's tests and tools use): sluiced waits 1 ms
      // before giving up on a file.
      integer<Loading>("workers.overload_wait_us", 0, 1000000, 1000, "Back-pressure: when no chunk is free or a "
                       "worker's ring stays full, the RX lcore keeps retrying (taking results in) this long; then the "
                       "attachment is reported unscannable `overload`, without SHA-256, and counted. 0: at once. The "
                       "RX lcore does not read packets while it waits.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.handoff.wait_us = static_cast<uint32_t>(v); }),
      integer<Loading>("workers.max_pending_messages", 1, 1048576, handoff.max_messages, "Messages per "
                       "RX lcore whose `file` events wait for worker results. Beyond, a new message's attachments are "
                       "reported at once, unscannable `overload` (no size, no hash).",
                       [](Loading& l, long long v) { l.config.dataplane.workers.handoff.max_messages = static_cast<uint32_t>(v); }),
      // Not HandoffLimits::digests (off, what the pipeline's tests and tools use): measured faster
      // with a worker lcore (docs/benchmarks.md).
      boolean<Loading>("workers.hash_messages", true, "With worker lcores: each message's "
                       "`message_sha256` is computed on a worker, in parallel with the RX lcore (its content goes as "
                       "one more stream of chunks), instead of by the RX lcore as the message streams by. The `smtp` "
                       "event then waits for the hash (events keep their order). A hash lost to back-pressure "
                       "(`workers.overload_wait_us`) leaves the message's events without `message_sha256` (counted "
                       "`digests_lost`). Without worker lcores the RX lcore always hashes.",
                       [](Loading& l, bool v) { l.config.dataplane.workers.handoff.digests = v; }),
      integer<Loading>("workers.max_pending_files", 1, 16777215, handoff.max_files, "Attachments per RX "
                       "lcore waiting for worker results (about 4.5 KiB each, touched as used). Beyond, as `max_pending_messages`.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.handoff.max_files = static_cast<uint32_t>(v); }),
      integer<Loading>("workers.max_pending_members", 0, 16777216, handoff.max_members, "Archive member "
                       "results per RX lcore held until their message is written (about 1.3 KiB each). Beyond, a "
                       "member's event is written at once, without `message_sha256`.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.handoff.max_members = static_cast<uint32_t>(v); }),
      integer<Loading>("workers.max_in_flight", 1, 1048576, worker.max_in_flight, "Attachments open at "
                       "once on one worker (64 KiB of typing state each). Beyond, a new attachment is unscannable "
                       "`overload`.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.limits.max_in_flight = static_cast<uint32_t>(v); }),
      integer<Loading>("workers.type_head_kb", 33, 1024, worker.type_head_bytes / 1024, "Bytes at the "
                       "start of a file that typing keeps (ISO 9660 is recognised at 32 KiB + 6).",
                       [](Loading& l, long long v) { l.config.dataplane.workers.limits.type_head_bytes = static_cast<uint32_t>(v * 1024); }),
  };
}

// Archive buffering is the worker's (WorkerLimits), unpacking the archive reader's (ArchiveLimits).
Params archive_params() {
  const pipeline::WorkerLimits worker{};
  const pipeline::ArchiveLimits archive{};
  return {
      integer<Loading>("archives.max_buffer_mb", 1, 65536, worker.max_archive_bytes >> 20, "An archive "
                       "attachment is buffered whole (on its worker) up to this; a larger one is hashed and typed but "
                       "not unpacked: unscannable `limit_exceeded`.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.limits.max_archive_bytes = static_cast<uint64_t>(v) << 20; }),
      integer<Loading>("archives.buffer_total_mb", 1, 1048576, worker.max_buffered_bytes >> 20, "All "
                       "archive buffers of one worker together; an archive that does not fit is `limit_exceeded`.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.limits.max_buffered_bytes = static_cast<uint64_t>(v) << 20; }),
      integer<Loading>("archives.max_depth", 1, 64, archive.max_depth, "Archive nesting unpacked "
                       "(members of the attachment are depth 1); deeper archives are reported as files, not unpacked: "
                       "unscannable `limit_exceeded`.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.limits.archive.max_depth = static_cast<uint32_t>(v); }),
      integer<Loading>("archives.max_members", 1, 10000000, archive.max_members, "Members of one "
                       "attachment's whole archive tree; the rest are not read: unscannable `limit_exceeded`.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.limits.archive.max_members = static_cast<uint32_t>(v); }),
      integer<Loading>("archives.max_member_mb", 1, 65536, archive.max_member_bytes >> 20, "Expanded "
                       "size of one member; bytes beyond are not read (the member is hashed as cut, "
                       "`limit_exceeded`).",
                       [](Loading& l, long long v) { l.config.dataplane.workers.limits.archive.max_member_bytes = static_cast<uint64_t>(v) << 20; }),
      integer<Loading>("archives.max_total_mb", 1, 1048576, archive.max_total_bytes >> 20, "Expanded "
                       "bytes of one attachment's whole tree; extraction stops there: `limit_exceeded`.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.limits.archive.max_total_bytes = static_cast<uint64_t>(v) << 20; }),
      integer<Loading>("archives.max_ratio", 1, 1000000, archive.max_ratio, "Expanded bytes over the "
                       "archive's size (zip bombs); extraction stops there: `limit_exceeded`.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.limits.archive.max_ratio = static_cast<uint32_t>(v); }),
      integer<Loading>("archives.max_ms", 1, 3600000, archive.max_millis, "Wall time to unpack one "
                       "attachment's tree (the worker does nothing else meanwhile); extraction stops there: "
                       "`limit_exceeded`.",
                       [](Loading& l, long long v) { l.config.dataplane.workers.limits.archive.max_millis = static_cast<uint32_t>(v); }),
      integer<Loading>("archives.max_dictionary_mb", 1, 4096, archive.max_decoder_bytes >> 20, "Decoder memory "
                       "an attachment's archives and compressed streams may reserve, as their headers declare it "
                       "(LZMA, LZMA2 and xz dictionaries, PPMd models, zstd windows, 7z BCJ2 buffers and header "
                       "tables), summed over the nesting levels open at once (a 7z inside a tar.xz counts both). "
                       "Checked from the headers before anything is decoded: libarchive allocates whatever is "
                       "declared (a 230-byte 7z can ask for 4 GiB). An archive or stream over it is not read: "
                       "unscannable `limit_exceeded`, counted in the worker's `decoder_memory_refused`. xz -9 and "
                       "7-Zip's ultra preset declare 64 MiB, zstd --ultra -22 128 MiB (libzstd refuses more by "
                       "itself).",
                       [](Loading& l, long long v) { l.config.dataplane.workers.limits.archive.max_decoder_bytes = static_cast<uint64_t>(v) << 20; }),
  };
}

// File reputation: the endpoints, the control plane's batching and budget, the verdict cache.
Params reputation_params() {
  const ReputationLimits r{};
  return {
      mapping_list<EndpointConfig>(
          "reputation.endpoints", "endpoint mappings",
          "Reputation endpoints, tried in order (fail-over): each file's SHA-256 that the verdict cache does not "
          "have is looked up in the first one whose circuit is closed. Empty: no look-ups (files get no "
          "`reputation`; the verdict comes from extraction alone).",
          endpoint_params, "reputation.endpoints[].", check_endpoint,
          [](Loading& l, std::vector<EndpointConfig> v) { l.config.reputation.endpoints = std::move(v); }),
      integer<Loading>("reputation.batch_size", 1, 1000, r.batch_size, "Distinct hashes, across messages and "
                       "RX lcores, handed to the endpoint client at once.",
                       [](Loading& l, long long v) { l.config.reputation.limits.batch_size = static_cast<unsigned>(v); }),
      integer<Loading>("reputation.batch_wait_ms", 0, 10000, r.batch_wait_ms, "A batch that is not full leaves "
                       "when its oldest hash has waited this long.",
                       [](Loading& l, long long v) { l.config.reputation.limits.batch_wait_ms = static_cast<unsigned>(v); }),
      integer<Loading>("reputation.budget_ms", 10, 600000, r.budget_ms, "A message's look-ups, all attempts "
                       "and endpoints included (wall clock, in every mode). What has no answer by then is "
                       "`lookup_error: budget_exhausted` (action `actions.lookup_error.budget_exhausted`).",
                       [](Loading& l, long long v) { l.config.reputation.limits.budget_ms = static_cast<unsigned>(v); }),
      integer<Loading>("reputation.max_in_flight", 1, 1024, r.max_in_flight, "Batches at the endpoint client at "
                       "once; more wait in the queue.",
                       [](Loading& l, long long v) { l.config.reputation.limits.max_in_flight = static_cast<unsigned>(v); }),
      integer<Loading>("reputation.max_pending", 1, 16777216, static_cast<long long>(r.max_pending), "Distinct hashes "
                       "waiting for an answer. Beyond, a new one is answered `queue_full` at once.",
                       [](Loading& l, long long v) { l.config.reputation.limits.max_pending = static_cast<std::size_t>(v); }),
      integer<Loading>("reputation.lane_size", 64, 1048576, 4096, "Per RX lcore: look-up requests waiting for "
                       "the control plane (48 bytes each; answers get twice the room). A request that finds it full "
                       "is `queue_full`.",
                       [](Loading& l, long long v) { l.config.dataplane.verdicts.lane_requests = static_cast<uint32_t>(v); }),
      integer<Loading>("reputation.cache.max_entries", 8, 268435456, 262144, "Verdict cache entries (128 bytes "
                       "each, read by the RX lcores without locks). When a hash's bucket is full, the entry that "
                       "expires first makes room (counted: `cache_evictions`).",
                       [](Loading& l, long long v) { l.config.reputation.cache_entries = static_cast<std::size_t>(v); }),
      integer<Loading>("reputation.cache.ttl_clean_s", 0, 31536000, r.ttl_clean_s, "How long a `clean` answer is "
                       "kept (shortened by the endpoint's `ttl_seconds`); 0: not cached.",
                       [](Loading& l, long long v) { l.config.reputation.limits.ttl_clean_s = static_cast<unsigned>(v); }),
      integer<Loading>("reputation.cache.ttl_malicious_s", 0, 31536000, r.ttl_malicious_s, "Same, `malicious`.",
                       [](Loading& l, long long v) { l.config.reputation.limits.ttl_malicious_s = static_cast<unsigned>(v); }),
      integer<Loading>("reputation.cache.ttl_unknown_s", 0, 31536000, r.ttl_unknown_s, "Same, `unknown`.",
                       [](Loading& l, long long v) { l.config.reputation.limits.ttl_unknown_s = static_cast<unsigned>(v); }),
      boolean<Loading>("reputation.cache.persist", true, "Keep the cache across restarts in `reputation.cache.path`.",
                       [](Loading& l, bool v) { l.cache_persist = v; }),
      [] {
        auto p = string<Loading>("reputation.cache.path", "", "The cache on disk (SQLite): loaded at start "
                                 "(expired entries dropped), written every `save_interval_s` and at exit. A file "
                                 "that is not a valid cache is refused with one line and an `alert`, moved aside as "
                                 "PATH.corrupt, and sluiced starts with an empty cache. Empty: "
                                 "`verdict-cache.sqlite` in `state.dir`; none without a state directory.",
                                 [](Loading& l, std::string v) { l.config.reputation.cache_path = std::move(v); });
        p.default_doc = "`STATE_DIR/verdict-cache.sqlite`; none without `state.dir`";
        return p;
      }(),
      integer<Loading>("reputation.cache.save_interval_s", 0, 86400, 60, "Seconds between writes of the cache "
                       "to disk; 0: only at exit.",
                       [](Loading& l, long long v) { l.config.reputation.cache_save_interval_s = static_cast<unsigned>(v); }),
  };
}

void check_analysis_endpoint(const YAML::Node& n, const EndpointConfig& e, const std::string& key);

// File analysis (DESIGN.md section 1, steps 3-4): which unknown files go to the sandbox, how they
// are kept on the lcores until the reputation answer, and how the control plane submits and polls.
Params analysis_params() {
  const AnalysisSettings a{};
  const std::vector<std::string> actions = {"pass", "monitor", "defer", "reject"};
  std::vector<std::string> default_groups;
  for (unsigned g = 0; g < pipeline::kAnalysisGroups; ++g)
    if (pipeline::default_analysis_groups() & (1u << g))
      default_groups.emplace_back(pipeline::analysis_group_name(static_cast<pipeline::AnalysisGroup>(g)));
  std::string all_groups;
  for (unsigned g = 0; g < pipeline::kAnalysisGroups; ++g)
    all_groups += std::string(all_groups.empty() ? "" : ", ") + "`" +
                  std::string(pipeline::analysis_group_name(static_cast<pipeline::AnalysisGroup>(g))) + "`";
  return {
      mapping_list<EndpointConfig>(
          "analysis.endpoints", "endpoint mappings",
          "Analysis (sandbox) endpoints, tried in order: a candidate file is searched for and uploaded at the first "
          "one that answers, and polled where it went. Empty: no analysis (unknown files count as clean).",
          analysis_endpoint_params, "analysis.endpoints[].", check_analysis_endpoint,
          [](Loading& l, std::vector<EndpointConfig> v) { l.config.analysis.endpoints = std::move(v); }),
      integer<Loading>("analysis.poll_interval_s", 1, 3600, a.poll_interval_s, "Seconds between two polls of a "
                       "submission's state.",
                       [](Loading& l, long long v) { l.config.analysis.settings.poll_interval_s = static_cast<unsigned>(v); }),
      string_list<Loading>("analysis.groups", default_groups, "File types that may go to analysis, by group "
                           "(each group's types are listed in `pipeline/analysis_groups.cpp` and the README): " +
                           all_groups + ". A file of another type is `not_sent` (`type`).",
                           [](Loading& l, std::vector<std::string> v) { l.analysis_groups = std::move(v); }),
      integer<Loading>("analysis.max_sample_mb", 1, 4096, static_cast<long long>(a.max_sample_bytes >> 20),
                       "Larger files are not kept nor uploaded (`not_sent`, `size`); the service's published limit "
                       "applies too (read at start and every hour).",
                       [](Loading& l, long long v) { l.config.analysis.settings.max_sample_bytes = static_cast<uint64_t>(v) << 20; }),
      integer<Loading>("analysis.sample_memory_mb", 1, 65536, 64, "Per worker lcore (or RX lcore without "
                       "workers): memory that keeps candidate files' bytes from the worker until the reputation "
                       "answer decides (64 KiB blocks, allocated at start). A file that finds it full is `not_sent` "
                       "(`memory`), counted (`sample_misses`).",
                       [](Loading& l, long long v) { l.sample_memory_mb = static_cast<unsigned>(v); }),
      integer<Loading>("analysis.sample_memory_total_mb", 1, 1048576, 512, "The bound on all of it: "
                       "`sample_memory_mb` times the worker lcores (or the RX lcores without workers) must not pass "
                       "it, or sluiced does not start (the pools are allocated whole at start).",
                       [](Loading& l, long long v) { l.sample_memory_total_mb = static_cast<unsigned>(v); }),
      integer<Loading>("analysis.upload_queue", 1, 100000, static_cast<long long>(a.upload_queue), "Candidate files "
                       "being decided at once (pre-classification, search, upload). Beyond, a file is `not_sent` "
                       "(`queue_full`); its message goes on.",
                       [](Loading& l, long long v) { l.config.analysis.settings.upload_queue = static_cast<std::size_t>(v); }),
      integer<Loading>("analysis.decision_ms", 100, 600000, a.decision_ms, "A candidate's decision (scan, search, "
                       "upload) ends within this; then it is `not_sent` (`timeout` on the lcore, `unreachable` when "
                       "the service did not answer in time). Its message waits for it on the lcore.",
                       [](Loading& l, long long v) { l.config.analysis.settings.decision_ms = static_cast<unsigned>(v); }),
      integer<Loading>("analysis.malicious_score", 0, 100, a.malicious_score, "A completed analysis scoring this "
                       "or more makes the file malicious (below: clean).",
                       [](Loading& l, long long v) { l.config.analysis.settings.malicious_score = static_cast<int>(v); }),
      integer<Loading>("analysis.max_age_h", 1, 720, a.max_age_h, "A submission not complete this long after it "
                       "was made ages out (`expired`): its messages get their final verdict without it "
                       "(`analysis.expired_action`).",
                       [](Loading& l, long long v) { l.config.analysis.settings.max_age_h = static_cast<unsigned>(v); }),
      choice<Loading>("analysis.expired_action", actions, "pass", "The least action of a message whose file's "
                      "analysis aged out.",
                      [](Loading& l, const std::string& v) {
                        l.config.analysis.settings.expired_action =
                            v == "reject" ? records::Action::reject : v == "defer" ? records::Action::defer
                            : v == "monitor" ? records::Action::monitor : records::Action::pass;
                      }),
      integer<Loading>("analysis.max_waiting_messages", 1, 1000000, static_cast<long long>(a.max_waiting), "Messages "
                       "waiting for analyses at once (about 3.5 KiB each; their bytes are on disk). Beyond, a message "
                       "whose file is already in analysis is not held for it: `not_sent` (`queue_full`), counted "
                       "(`waiting_full`); the analysis itself goes on.",
                       [](Loading& l, long long v) { l.config.analysis.settings.max_waiting = static_cast<std::size_t>(v); }),
      integer<Loading>("analysis.scan_threads", 1, 64, 1, "Threads of the ClamAV pre-classification pool (never "
                       "lcores).",
                       [](Loading& l, long long v) { l.config.analysis.scan_threads = static_cast<unsigned>(v); }),
      integer<Loading>("analysis.scan_queue", 1, 100000, 256, "Files waiting for a scan thread; beyond, a file is "
                       "`not_sent` (`preclass_error`).",
                       [](Loading& l, long long v) { l.config.analysis.scan_queue = static_cast<std::size_t>(v); }),
      integer<Loading>("analysis.lane_size", 2, 1048576, 256, "Per RX lcore: candidate files waiting for the "
                       "control plane. A candidate that finds it full is `not_sent` (`queue_full`).",
                       [](Loading& l, long long v) { l.config.dataplane.verdicts.lane_analysis = static_cast<uint32_t>(v); }),
  };
}

// The File Analysis quarantine: the RX spool that keeps messages until their verdict, and the store
// in state.dir that keeps the pending ones (control/quarantine_store.h).
Params quarantine_params() {
  const QuarantineLimits q{};
  return {
      integer<Loading>("quarantine.spool_mb", 1, 65536, 32, "Per RX lcore, with analysis endpoints and a state "
                       "directory: memory that keeps each message's bytes until its verdict (64 KiB blocks, "
                       "allocated at start), so that a message whose file goes to analysis can be stored whole. A "
                       "message larger than this, or one that finds it full, is still analysed but not stored "
                       "(`quarantine: not_stored` in its final verdict; `spool_misses`).",
                       [](Loading& l, long long v) { l.spool_mb = static_cast<unsigned>(v); }),
      integer<Loading>("quarantine.retention_days", 1, 3650, q.retention_days, "Entries stored this many days ago "
                       "are removed, whatever their state (checked every hour).",
                       [](Loading& l, long long v) { l.config.analysis.quarantine.retention_days = static_cast<unsigned>(v); }),
      integer<Loading>("quarantine.max_mb", 1, 1048576, static_cast<long long>(q.max_mb), "Disk used by the "
                       "quarantine (messages and metadata). A message larger than this alone is not stored.",
                       [](Loading& l, long long v) { l.config.analysis.quarantine.max_mb = static_cast<uint64_t>(v); }),
      integer<Loading>("quarantine.max_messages", 1, 10000000, static_cast<long long>(q.max_messages), "Entries of any "
                       "state.",
                       [](Loading& l, long long v) { l.config.analysis.quarantine.max_messages = static_cast<uint64_t>(v); }),
      choice<Loading>("quarantine.overflow", {"evict_oldest", "refuse"}, "evict_oldest", "At `max_mb` or "
                      "`max_messages`: `evict_oldest` removes the oldest entries (deleted, then released, then held "
                      "ones) to make room; `refuse` stores nothing new (`not_stored`).",
                      [](Loading& l, const std::string& v) {
                        l.config.analysis.quarantine.overflow =
                            v == "refuse" ? QuarantineOverflow::refuse : QuarantineOverflow::evict_oldest;
                      }),
      string<Loading>("quarantine.relay", "", "SMTP relay, `host:port`, that a manual release with `relay` "
                      "(`POST /api/v1/quarantine/ID/release`, `sluicectl quarantine release ID --relay`) hands the "
                      "stored message to, with its original envelope. Empty: releases only record the decision.",
                      [](Loading& l, std::string v) { l.config.analysis.relay.address = std::move(v); }),
      choice<Loading>("quarantine.relay_starttls", {"none", "opportunistic", "required"}, "opportunistic",
                      "STARTTLS with the relay: never, when offered, or always (no release without it).",
                      [](Loading& l, const std::string& v) { l.config.analysis.relay.starttls = v; }),
      string<Loading>("quarantine.relay_ca_file", "", "PEM bundle the relay's certificate must chain to; empty: "
                      "the system's.",
                      [](Loading& l, std::string v) { l.config.analysis.relay.ca_file = std::move(v); }),
      integer<Loading>("quarantine.relay_timeout_ms", 1000, 600000, 30000, "One release's whole transfer; past it "
                       "the release fails (502 RelayError) and the message stays held.",
                       [](Loading& l, long long v) { l.config.analysis.relay.timeout_ms = static_cast<unsigned>(v); }),
  };
}

// What a message's verdict leads to (evaluated and reported now; enforced inline by a later issue).
Params action_params() {
  const std::vector<std::string> actions = {"pass", "monitor", "defer", "reject"};
  auto action = [](const std::string& v) {
    return v == "reject" ? records::Action::reject : v == "defer" ? records::Action::defer
           : v == "monitor" ? records::Action::monitor : records::Action::pass;
  };
  const pipeline::VerdictPolicy d{};
  const auto text = [](records::Action a) { return std::string(records::action_name(a)); };
  Params p = {
      reloadable(choice<Loading>("actions.clean", actions, text(d.clean), "A clean message (unknown files "
                                 "included). `pass`: it goes on; `monitor`: it goes on and the event says what would "
                                 "have happened; `defer`: the sender is told to retry later (451); `reject`: refused "
                                 "(550). With several reasons the most severe action wins (reject, defer, monitor, pass).",
                                 [action](Loading& l, const std::string& v) { l.config.dataplane.verdicts.policy.clean = action(v); })),
      reloadable(choice<Loading>("actions.malicious", actions, text(d.malicious), "A message with a malicious file or "
                                 "archive member.",
                                 [action](Loading& l, const std::string& v) { l.config.dataplane.verdicts.policy.malicious = action(v); })),
      reloadable(choice<Loading>("actions.pending", actions, text(d.pending), "A message with a file in analysis "
                                 "(disposition `pending`; its final verdict follows when the analysis ends).",
                                 [action](Loading& l, const std::string& v) { l.config.dataplane.verdicts.policy.pending = action(v); })),
      reloadable(choice<Loading>("actions.smuggling", actions, text(d.smuggling), "A message whose DATA stream "
                                 "ends, or holds an end, that mail servers read differently: a bare LF or CR around "
                                 "the dot (`<LF>.<LF>`, `<CR><LF>.<LF>`, `<LF>.<CR><LF>`, `<CR>.<CR>`; anomalies "
                                 "`bare_lf_terminator`, `bare_cr_terminator`), with which a second message can hide "
                                 "in the first (SMTP smuggling). Applies whatever its files say (reason "
                                 "`smtp_smuggling`); `reject` as Postfix's `smtpd_forbid_bare_newline` does.",
                                 [action](Loading& l, const std::string& v) { l.config.dataplane.verdicts.policy.smuggling = action(v); })),
  };
  for (unsigned u = 1; u < pipeline::kUnscannableReasons; ++u) {
    const std::string name(pipeline::unscannable_name(static_cast<pipeline::Unscannable>(u)));
    p.push_back(reloadable(choice<Loading>("actions.unscannable." + name, actions, text(d.unscannable[u]),
                                           "A message with a file unscannable `" + name + "`.",
                                           [action, u](Loading& l, const std::string& v) {
                                             l.config.dataplane.verdicts.policy.unscannable[u] = action(v);
                                           })));
  }
  for (unsigned e = 1; e < records::kLookupErrors; ++e) {
    const std::string name(records::lookup_error_name(static_cast<records::LookupError>(e)));
    p.push_back(reloadable(choice<Loading>("actions.lookup_error." + name, actions, text(d.lookup_error[e]),
                                           "A message with a file whose look-up failed `" + name + "`.",
                                           [action, e](Loading& l, const std::string& v) {
                                             l.config.dataplane.verdicts.policy.lookup_error[e] = action(v);
                                           })));
  }
  return p;
}

// Resolved in finish(), by mode: the one place this default is written.
const char* const kStateDirDefault = "/var/lib/sluice";

// Where files were seen (control/sightings_store.h).
Params sightings_params() {
  const SightingsLimits s{};
  auto name = string<Loading>("appliance.name", "", "This appliance's name, recorded with every sighting and named "
                              "in retrospective alerts (several appliances may report to one administrator). Empty "
                              "or left out: the host name.",
                              [](Loading& l, std::string v) { l.config.sightings.appliance = std::move(v); });
  name.default_doc = "the host name";
  Params p;
  p.push_back(std::move(name));
  p.push_back(integer<Loading>("sightings.retention_days", 1, 3650, s.retention_days, "With a state directory every "
                               "file and archive member that passed is recorded with its message (sender, "
                               "recipients, subject, Message-ID, header From/To/Cc, verdict then) in "
                               "`STATE/sightings.sqlite`, for retrospective verdicts. Sightings older than this "
                               "are removed (checked at start and every hour).",
                               [](Loading& l, long long v) { l.config.sightings.limits.retention_days = static_cast<unsigned>(v); }));
  p.push_back(integer<Loading>("sightings.max_mb", 1, 1048576, s.max_mb, "Live data of the sightings file: beyond, "
                               "the oldest sightings are removed (a tenth at a time, checked with the retention).",
                               [](Loading& l, long long v) { l.config.sightings.limits.max_mb = static_cast<unsigned>(v); }));
  return p;
}

// The heartbeat of retrospective verdicts (control/retrospective.h).
Params retrospective_params() {
  const RetrospectiveConfig r{};
  return {
      integer<Loading>("retrospective.interval_s", 1, 86400, r.interval_s, "Seconds between two heartbeats, each "
                       "asking every reputation endpoint what changed since the last (sluice-cloud's change feed; a "
                       "re-look-up for `virustotal`). One also runs at start-up in every mode (a replay waits for it, "
                       "`retrospective.replay_wait_s`) and on SIGUSR1. A change of a file this appliance saw raises a "
                       "`retrospective` event and a `retrospective_verdict` alert naming every message that carried "
                       "it. This key is kept stable.",
                       [](Loading& l, long long v) { l.config.retrospective.interval_s = static_cast<unsigned>(v); }),
      integer<Loading>("retrospective.recheck_budget", 0, 10000, r.recheck_budget, "`virustotal` endpoints (no "
                       "feed): hashes looked up again per heartbeat, among files seen within "
                       "`retrospective.recheck_days` and last known unknown or clean (those never looked up again "
                       "first, then the longest ago). VirusTotal's public API allows 4 a minute and 500 a day: 1 "
                       "per 300 s heartbeat is 288 a day. 0: none.",
                       [](Loading& l, long long v) { l.config.retrospective.recheck_budget = static_cast<unsigned>(v); }),
      integer<Loading>("retrospective.recheck_days", 1, 3650, r.recheck_days, "Files seen within this many days "
                       "are looked up again (`virustotal` endpoints).",
                       [](Loading& l, long long v) { l.config.retrospective.recheck_days = static_cast<unsigned>(v); }),
      integer<Loading>("retrospective.max_changes", 1000, 100000000, r.max_changes, "Change feed entries read per "
                       "endpoint and heartbeat (in pages of 200); the rest waits for the next heartbeat.",
                       [](Loading& l, long long v) { l.config.retrospective.max_changes = static_cast<unsigned>(v); }),
      integer<Loading>("retrospective.max_messages_listed", 1, 10000, r.max_messages_listed, "Messages named in one "
                       "`retrospective` event (newest first); every message is counted in `messages_total`.",
                       [](Loading& l, long long v) { l.config.retrospective.max_messages_listed = static_cast<unsigned>(v); }),
      integer<Loading>("retrospective.replay_wait_s", 0, 3600, r.replay_wait_s, "A replay ends only once its start-up "
                       "heartbeat has and the notifications it raised are sent, waiting at most this long past the "
                       "end of the capture.",
                       [](Loading& l, long long v) { l.config.retrospective.replay_wait_s = static_cast<unsigned>(v); }),
      integer<Loading>("retrospective.failures_before_alert", 1, 1000, r.failures_before_alert, "Heartbeats in a "
                       "row an endpoint's part fails (unreachable, a bad answer, a store error) before the "
                       "`retrospective_endpoint_failing` alert; `retrospective_endpoint_recovered` follows its next "
                       "success. Nothing is lost meanwhile: the cursor stays where it was.",
                       [](Loading& l, long long v) { l.config.retrospective.failures_before_alert = static_cast<unsigned>(v); }),
  };
}

// Where alerts go besides the `alert` event (control/notifier.h).
Params notify_params() {
  const NotifyConfig n{};
  const EndpointConfig d{};
  const std::vector<std::string> severities = {"info", "warning", "critical"};
  return {
      string<Loading>("notifications.syslog.address", "", "Syslog collector, `host:port` or `[v6]:port`: every "
                      "alert of `min_severity` or above as an RFC 5424 message (MSGID the alert type, structured "
                      "data `sluice@32473` with its details). Empty: none.",
                      [](Loading& l, std::string v) { l.config.notify.syslog_address = std::move(v); }),
      choice<Loading>("notifications.syslog.transport", {"udp", "tcp"}, "udp", "`udp` (one datagram per alert, 8 KiB "
                      "at most, RFC 5426) or `tcp` (octet-counting framing, RFC 6587; reconnects with back-off).",
                      [](Loading& l, const std::string& v) { l.config.notify.syslog_tcp = v == "tcp"; }),
      integer<Loading>("notifications.syslog.facility", 0, 23, n.syslog_facility, "Syslog facility number (16: "
                       "local0).",
                       [](Loading& l, long long v) { l.config.notify.syslog_facility = static_cast<unsigned>(v); }),
      choice<Loading>("notifications.syslog.min_severity", severities, n.syslog_min_severity, "Alerts below this "
                      "severity are not sent to syslog.",
                      [](Loading& l, const std::string& v) { l.config.notify.syslog_min_severity = v; }),
      integer<Loading>("notifications.syslog.max_queued", 1, 1000000, n.syslog_max_queued, "Alerts waiting for the "
                       "collector; beyond, the oldest is dropped (counted in `notifications.syslog.dropped`).",
                       [](Loading& l, long long v) { l.config.notify.syslog_max_queued = static_cast<unsigned>(v); }),
      string<Loading>("notifications.webhook.url", "", "`https://host[:port][/path]`: every alert of `min_severity` "
                      "or above is POSTed there as its event's JSON line, in order, retried with back-off (1 s "
                      "doubling to 5 min) on failures, 5xx, 408 and 429. Plain `http://` only to loopback or with "
                      "`insecure`. Empty: none.",
                      [](Loading& l, std::string v) { l.config.notify.webhook.url = std::move(v); }),
      string<Loading>("notifications.webhook.ca_file", "", "PEM bundle the receiver's certificate must chain to; "
                      "empty: the system's.",
                      [](Loading& l, std::string v) { l.config.notify.webhook.ca_file = std::move(v); }),
      string<Loading>("notifications.webhook.pin_sha256", "", "Pinned public key of the receiver (as "
                      "`reputation.endpoints[].pin_sha256`).",
                      [](Loading& l, std::string v) { l.config.notify.webhook.pin_sha256 = std::move(v); }),
      boolean<Loading>("notifications.webhook.insecure", false, "Allows plain `http://` to a non-loopback host.",
                       [](Loading& l, bool v) { l.config.notify.webhook.insecure = v; }),
      string<Loading>("notifications.webhook.authorization", "", "Value of the `Authorization` header sent with "
                      "each POST (`Bearer TOKEN`); empty: none.",
                      [](Loading& l, std::string v) { l.config.notify.webhook_authorization = std::move(v); }),
      integer<Loading>("notifications.webhook.timeout_ms", 1, 600000, d.request_timeout_ms, "One POST, from sending "
                       "to the answer.",
                       [](Loading& l, long long v) { l.config.notify.webhook.request_timeout_ms = static_cast<unsigned>(v); }),
      choice<Loading>("notifications.webhook.min_severity", severities, n.webhook_min_severity, "Alerts below this "
                      "severity are not posted.",
                      [](Loading& l, const std::string& v) { l.config.notify.webhook_min_severity = v; }),
      integer<Loading>("notifications.webhook.max_queued", 1, 1000000, n.webhook_max_queued, "Alerts waiting to be "
                       "posted; beyond, the oldest is dropped (counted).",
                       [](Loading& l, long long v) { l.config.notify.webhook_max_queued = static_cast<unsigned>(v); }),
      integer<Loading>("notifications.webhook.max_attempts", 1, 100, n.webhook_max_attempts, "Attempts per alert; "
                       "then it is dropped (counted in `failed`). A 4xx other than 408 and 429 is not retried.",
                       [](Loading& l, long long v) { l.config.notify.webhook_max_attempts = static_cast<unsigned>(v); }),
      string<Loading>("notifications.email.relay", "", "SMTP relay, `host:port`: every alert of `min_severity` or "
                      "above is mailed to `notifications.email.to`. Empty: none.",
                      [](Loading& l, std::string v) { l.config.notify.email_relay = std::move(v); }),
      string<Loading>("notifications.email.from", "", "Envelope and header sender. Empty: `sluice@` and the "
                      "appliance's name.",
                      [](Loading& l, std::string v) { l.config.notify.email_from = std::move(v); }),
      string_list<Loading>("notifications.email.to", {}, "The administrators' addresses (required with a relay).",
                           [](Loading& l, std::vector<std::string> v) { l.config.notify.email_to = std::move(v); }),
      choice<Loading>("notifications.email.starttls", {"none", "opportunistic", "required"}, n.email_starttls,
                      "STARTTLS with the relay: never, when offered, or always (no mail without it).",
                      [](Loading& l, const std::string& v) { l.config.notify.email_starttls = v; }),
      string<Loading>("notifications.email.ca_file", "", "PEM bundle the relay's certificate must chain to; empty: "
                      "the system's.",
                      [](Loading& l, std::string v) { l.config.notify.email_ca_file = std::move(v); }),
      string<Loading>("notifications.email.username", "", "Login at the relay (with `password_file`); empty: none.",
                      [](Loading& l, std::string v) { l.config.notify.email_username = std::move(v); }),
      string<Loading>("notifications.email.password_file", "", "File whose first line is the relay password.",
                      [](Loading& l, std::string v) { l.config.notify.email_password_file = std::move(v); }),
      choice<Loading>("notifications.email.min_severity", severities, n.email_min_severity, "Alerts below this "
                      "severity are not mailed (by default only critical ones: a file now malicious, an endpoint "
                      "loss that leaves none).",
                      [](Loading& l, const std::string& v) { l.config.notify.email_min_severity = v; }),
      integer<Loading>("notifications.email.max_queued", 1, 100000, n.email_max_queued, "Mails waiting; beyond, the "
                       "oldest is dropped (counted).",
                       [](Loading& l, long long v) { l.config.notify.email_max_queued = static_cast<unsigned>(v); }),
      integer<Loading>("notifications.email.timeout_ms", 1000, 600000, n.email_timeout_ms, "One mail's whole "
                       "transfer.",
                       [](Loading& l, long long v) { l.config.notify.email_timeout_ms = static_cast<unsigned>(v); }),
  };
}

// The management API (control/management.h).
Params management_params() {
  const ManagementConfig m{};
  return {
      string<Loading>("management.listen", "", "`host:port` (an IP address) of the management API (HTTPS): "
                      "`GET /api/v1/status`, `GET /metrics`. Give the management address, never an inspected "
                      "port. Empty: no management API. Kept stable.",
                      [](Loading& l, std::string v) { l.config.management.listen = std::move(v); }),
      string<Loading>("management.token_file", "", "Required with `management.listen`: one `ROLE sha256:HEX` "
                      "line per token (ROLE `admin` or `read`, HEX the lowercase hex SHA-256 of the token; "
                      "`sluicectl token new` prints both), not readable by others. Kept stable.",
                      [](Loading& l, std::string v) { l.config.management.token_file = std::move(v); }),
      string<Loading>("management.cert_file", "", "The API's TLS certificate chain (PEM). Empty: a self-signed "
                      "one made on first start in `STATE/management.crt` (its SHA-256 fingerprint is printed).",
                      [](Loading& l, std::string v) { l.config.management.cert_file = std::move(v); }),
      string<Loading>("management.key_file", "", "The certificate's private key (PEM), with `cert_file`.",
                      [](Loading& l, std::string v) { l.config.management.key_file = std::move(v); }),
      integer<Loading>("management.rate_per_s", 1, 100000, m.rate_per_s, "Requests a second per token (bursts "
                       "of twice that; `/metrics` without a token counts as one more token); beyond: 429.",
                       [](Loading& l, long long v) { l.config.management.rate_per_s = static_cast<unsigned>(v); }),
      integer<Loading>("management.max_connections", 1, 100000, m.max_connections, "Connections open at once; "
                       "one beyond is closed as soon as it is accepted (a flood costs nothing more).",
                       [](Loading& l, long long v) { l.config.management.max_connections = static_cast<unsigned>(v); }),
      integer<Loading>("management.max_header_kb", 1, 1024, m.max_header_kb, "A request's header; beyond: 400 "
                       "and the connection closed.",
                       [](Loading& l, long long v) { l.config.management.max_header_kb = static_cast<unsigned>(v); }),
      integer<Loading>("management.max_body_kb", 1, 65536, m.max_body_kb, "A request's body (a configuration to "
                       "validate is the largest); beyond: 413 and the connection closed.",
                       [](Loading& l, long long v) { l.config.management.max_body_kb = static_cast<unsigned>(v); }),
      integer<Loading>("management.request_timeout_s", 1, 3600, m.request_timeout_s, "The TLS handshake, and "
                       "writing each answer; past it the connection is closed.",
                       [](Loading& l, long long v) { l.config.management.request_timeout_s = static_cast<unsigned>(v); }),
      integer<Loading>("management.idle_timeout_s", 1, 86400, m.idle_timeout_s, "How long a connection may take "
                       "to send its next request (kept alive, or slowly); past it the connection is closed.",
                       [](Loading& l, long long v) { l.config.management.idle_timeout_s = static_cast<unsigned>(v); }),
      integer<Loading>("management.alerts_kept", 1, 1000000, m.alerts_kept, "The latest alerts `GET /api/v1/alerts` "
                       "can list (kept in memory; the events file has them all); the oldest is dropped beyond.",
                       [](Loading& l, long long v) { l.config.management.alerts_kept = static_cast<unsigned>(v); }),
  };
}

// What outlives a run (control/state_dir.h).
Params state_params() {
  auto dir = string<Loading>("state.dir", "", std::string("Directory of what persists across restarts (the verdict "
                             "cache, quarantine, submissions and sightings, as they are added). Created at start if missing (mode 0750, "
                             "parents too). `PATH/lock` is held (flock) while sluiced runs, so a second sluiced on "
                             "the same directory stops at start naming the first one's pid; a killed sluiced never "
                             "leaves it locked. Empty or left out: `") + kStateDirDefault + "` in inline and tap "
                             "modes; none in replay mode (nothing persists, no lock is taken).",
                             [](Loading& l, std::string v) { l.config.state_dir = std::move(v); });
  dir.default_doc = std::string("`") + kStateDirDefault + "` (inline, tap); none (replay)";
  return {std::move(dir)};
}

// Every key, in the order of the reference; built once.
const Params& params() {
  static const Params all = [] {
    Params all;
    for (Params (*section)() : {mode_params, eal_params, port_and_pair_params, lcore_params, dataplane_params,
                                hold_params, enforce_params, replay_params, event_params, trace_params, state_params, smtp_params, reassembly_params, mime_params,
                                worker_params, archive_params, reputation_params, analysis_params, quarantine_params, sightings_params,
                                retrospective_params, notify_params, management_params, action_params}) {
      Params s = section();
      all.insert(all.end(), std::make_move_iterator(s.begin()), std::make_move_iterator(s.end()));
    }
    return all;
  }();
  return all;
}

// A key given twice in one mapping, anywhere in the file (two `reassembly:` blocks, a member twice
// in a port): yaml-cpp keeps both pairs and a lookup sees only one, so one value would be
// silently ignored. Refused with the key and both lines, before anything is applied.
void check_unique_keys(const YAML::Node& n, const std::string& key) {
  if (n.IsSequence()) {
    for (std::size_t i = 0; i < n.size(); ++i) check_unique_keys(n[i], key + "[" + std::to_string(i) + "]");
    return;
  }
  if (!n.IsMap()) return;
  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) continue;
    const std::string& name = kv.first.Scalar();
    const std::string path = key.empty() ? name : key + "." + name;
    const auto [first, fresh] = seen.emplace(name, kv.first.Mark());
    if (!fresh) {
      const int a = first->second.line + 1, b = kv.first.Mark().line + 1;
      fail(path, a == b ? "given twice on line " + std::to_string(a)
                        : "given twice (lines " + std::to_string(a) + " and " + std::to_string(b) + ")");
    }
    check_unique_keys(kv.second, path);
  }
}

// Walks a mapping and applies the parameters it names; any key that is neither a parameter nor a
// section holding parameters is an error listing what is accepted at that level.
template <typename Target>
void apply_map(const YAML::Node& map, Target& target, const std::vector<Param<Target>>& table,
               const std::string& table_prefix, const std::string& key_prefix, const std::string& section) {
  if (!map.IsMap()) fail(key_prefix.empty() ? "(top)" : key_prefix, "expected a mapping, got " + scalar_text(map) + where(map));
  for (const auto& kv : map) {
    const std::string name = kv.first.as<std::string>();
    const std::string path = section.empty() ? name : section + "." + name;
    const std::string full = table_prefix + path;
    const std::string key = key_prefix.empty() ? path : key_prefix + "." + name;
    auto param = std::find_if(table.begin(), table.end(), [&](const Param<Target>& p) { return p.path == full; });
    if (param != table.end()) {
      param->apply(kv.second, target, key);
      continue;
    }
    const bool is_section = std::any_of(table.begin(), table.end(),
                                        [&](const Param<Target>& p) { return p.path.rfind(full + ".", 0) == 0; });
    if (is_section) {
      apply_map(kv.second, target, table, table_prefix, key, path);
      continue;
    }
    std::set<std::string> accepted;
    const std::string level = table_prefix + (section.empty() ? "" : section + ".");
    for (const auto& p : table)
      if (p.path.rfind(level, 0) == 0) accepted.insert(p.path.substr(level.size(), p.path.find('.', level.size()) - level.size()));
    std::string list;
    for (const auto& a : accepted) list += (list.empty() ? "" : ", ") + a;
    fail(key, "unknown key" + where(kv.first) + "; accepted here: " + list);
  }
}

// One element of `ports`, members applied.
void check_port(const YAML::Node& n, const PortConfig& port, const std::string& key) {
  static const std::regex name_re("^[A-Za-z0-9_-]{1,32}$");
  if (!n["name"]) fail(key + ".name", "required" + where(n));
  if (!std::regex_match(port.name, name_re))
    fail(key + ".name", "expected 1-32 letters, digits, '_' or '-', got '" + port.name + "'");
  if (!n["device"]) fail(key + ".device", "required" + where(n));
  if (!dataplane::is_pci_address(port.device) && port.device.rfind("net_", 0) != 0)
    fail(key + ".device", "expected a PCI address (0000:03:00.0) or a DPDK vdev starting with net_ "
                          "(net_af_packet0,iface=eth1; net_pcap0,rx_pcap=...; net_ring0; net_null0), got '" + port.device + "'");
}

// One element of `reputation.endpoints`, members applied.
// What every endpoint element needs (`name`, `url`), then the kind's own checks.
void check_endpoint_with(const YAML::Node& n, const EndpointConfig& e, const std::string& key,
                         std::string (*validate)(const EndpointConfig&)) {
  static const std::regex name_re("^[A-Za-z0-9_-]{1,32}$");
  for (const char* required : {"name", "url"})
    if (!n[required]) fail(key + "." + required, "required" + where(n));
  if (!std::regex_match(e.name, name_re))
    fail(key + ".name", "expected 1-32 letters, digits, '_' or '-', got '" + e.name + "'");
  if (const std::string why = validate(e); !why.empty()) fail(key, why);
}

void check_endpoint(const YAML::Node& n, const EndpointConfig& e, const std::string& key) {
  check_endpoint_with(n, e, key, validate_endpoint);
}

// One element of `analysis.endpoints`, members applied.
void check_analysis_endpoint(const YAML::Node& n, const EndpointConfig& e, const std::string& key) {
  check_endpoint_with(n, e, key, validate_analysis_endpoint);
}

// Names are unique within one endpoint list (the other list may reuse them); at most 200.
void check_endpoint_list(const std::vector<EndpointConfig>& list, const std::string& key) {
  std::set<std::string> names;
  for (std::size_t i = 0; i < list.size(); ++i)
    if (!names.insert(list[i].name).second)
      fail(key + "[" + std::to_string(i) + "].name", "duplicate endpoint name '" + list[i].name + "'");
  if (list.size() > 200) fail(key, "at most 200 endpoints");
}

void check_readable(const std::string& key, const std::string& path) {
  if (access(path.c_str(), R_OK) != 0) fail(key, "cannot read '" + path + "': " + std::strerror(errno));
}

void check_writable_dir(const std::string& key, const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  if (access(dir.c_str(), W_OK) != 0) fail(key, "cannot write in '" + dir + "': " + std::strerror(errno));
}

void finish(Loading& l) {
  using dataplane::Mode;
  Config& c = l.config;
  dataplane::Config& d = c.dataplane;

  if (d.mode == Mode::replay) {
    if (l.ports_given) fail("ports", "replay mode builds its own net_pcap port from replay.input; leave ports empty");
    if (c.replay_input.empty()) fail("replay.input", "replay mode needs a pcap to read (or --replay FILE)");
    check_readable("replay.input", c.replay_input);
    for (const auto* f : {&c.replay_input, &c.replay_output})
      if (f->find(',') != std::string::npos)
        fail(f == &c.replay_input ? "replay.input" : "replay.output", "a path with ',' cannot be given to the pcap PMD");
    if (!c.replay_output.empty()) check_writable_dir("replay.output", c.replay_output);
    if (!l.pair_names.empty()) fail("pairs", "not used in replay mode: frames leave by the replay port itself");
    if (d.lcores.rx.size() != 1) fail("lcores.rx", "replay reads one pcap through one queue: list exactly one RX lcore");
    d.workers.handoff.wait_us = std::min<uint64_t>(uint64_t{l.replay_overload_wait_ms} * 1000, UINT32_MAX);
    // The output is a second dumper on the same port, so it carries exactly what inline mode would
    // have sent; without an output nothing is forwarded (tap semantics).
    std::string dev = "net_pcap0,rx_pcap=" + c.replay_input + ",tx_pcap=" + (c.replay_output.empty() ? "/dev/null" : c.replay_output);
    const auto dlt = pcap_link_type(c.replay_input);
    PortConfig port = default_port();
    port.name = "replay";
    port.device = dev;
    port.promiscuous = false;
    port.link_type = dlt ? reassembly::link_type_from_dlt(*dlt) : reassembly::LinkType::ethernet;
    d.ports = {std::move(port)};
    if (!c.replay_output.empty()) d.pairs = {{0, 0}};
  } else {
    if (!c.replay_input.empty() || !c.replay_output.empty())
      fail("replay.input", std::string("only used in replay mode, and mode is ") + dataplane::mode_name(d.mode));
    if (d.ports.empty()) fail("ports", std::string("mode ") + dataplane::mode_name(d.mode) + " needs at least one port");
    std::set<std::string> names, devices;
    for (std::size_t i = 0; i < d.ports.size(); ++i) {
      const std::string k = "ports[" + std::to_string(i) + "]";
      if (!names.insert(d.ports[i].name).second) fail(k + ".name", "duplicate port name '" + d.ports[i].name + "'");
      if (!devices.insert(dataplane::device_name(d.ports[i].device)).second)
        fail(k + ".device", "device '" + dataplane::device_name(d.ports[i].device) + "' is used twice");
    }
    auto index_of = [&](const std::string& name, const std::string& key) {
      for (std::size_t i = 0; i < d.ports.size(); ++i)
        if (d.ports[i].name == name) return i;
      std::string list;
      for (const auto& p : d.ports) list += (list.empty() ? "" : ", ") + p.name;
      fail(key, "no port named '" + name + "'; ports are: " + list);
    };
    d.pairs.clear();
    std::vector<int> paired(d.ports.size(), 0);
    for (std::size_t i = 0; i < l.pair_names.size(); ++i) {
      const std::string k = "pairs[" + std::to_string(i) + "]";
      const std::size_t a = index_of(l.pair_names[i].first, k), b = index_of(l.pair_names[i].second, k);
      if (a == b) fail(k, "a port cannot be paired with itself");
      if (++paired[a] > 1 || ++paired[b] > 1) fail(k, "a port belongs to at most one pair");
      d.pairs.emplace_back(a, b);
    }
    if (d.mode == Mode::inline_) {
      for (std::size_t i = 0; i < d.ports.size(); ++i)
        if (!paired[i]) fail("pairs", "inline mode: port '" + d.ports[i].name + "' is in no pair (every port needs one)");
    } else if (!d.pairs.empty()) {
      fail("pairs", "only used in inline mode; tap ports only receive");
    }
  }

  if (l.workers_auto) d.lcores.workers = dataplane::auto_workers(d.lcores, d.eal.args, dataplane::usable_cpus());
  std::set<unsigned> used{d.lcores.main};
  if (d.lcores.rx.empty()) fail("lcores.rx", "at least one RX lcore is needed");
  for (unsigned id : d.lcores.rx)
    if (!used.insert(id).second) fail("lcores.rx", "lcore " + std::to_string(id) + " is listed twice or is the main lcore");
  for (unsigned id : d.lcores.workers)
    if (!used.insert(id).second) fail("lcores.workers", "lcore " + std::to_string(id) + " is already the main lcore, an RX lcore or listed twice");
  for (auto [key, v] : {std::pair{"workers.chunk_ring_size", d.workers.chunk_ring_size},
                        std::pair{"workers.result_ring_size", d.workers.result_ring_size}})
    if (v & (v - 1)) fail(key, "expected a power of two, got " + std::to_string(v));
  if (d.dispatch_ring_size & (d.dispatch_ring_size - 1)) fail("dataplane.dispatch_ring_size", "expected a power of two, got " + std::to_string(d.dispatch_ring_size));

  // Every RX descriptor holds an mbuf, every lcore may cache some and hold a burst.
  unsigned long need = 0;
  for (const auto& p : d.ports) need += static_cast<unsigned long>(p.rx_desc) * d.lcores.rx.size();
  need += static_cast<unsigned long>(d.lcores.rx.size() + 1) * (d.mbuf_cache + d.burst);
  // Where frames go on (inline, replay into a pcap), held frames keep their mbufs.
  const unsigned long held = d.mode == Mode::tap ? 0 : static_cast<unsigned long>(d.hold.limits.max_frames) * d.lcores.rx.size();
  if (d.mbufs < need + held)
    fail("dataplane.mbufs", std::to_string(d.mbufs) + " mbufs cannot fill the RX rings of this configuration: at least " +
                                std::to_string(need + held) + " are needed (or lower ports[].rx_desc" +
                                (held ? ", hold.max_frames)" : ")"));
  if (d.mode == Mode::tap && d.reassembly.drop_untracked_syn)
    fail("reassembly.untracked_action", "drop_syn needs inline mode (a tap cannot drop frames)");
  if (d.hold.limits.max_frames_per_message > d.hold.limits.max_frames)
    fail("hold.max_frames_per_message", "must be at most hold.max_frames (" + std::to_string(d.hold.limits.max_frames) + ")");
  if (d.mbuf_cache > d.mbufs / 1.5) fail("dataplane.mbuf_cache", "must be at most mbufs / 1.5 (DPDK mempool rule)");

  if (!c.events_path.empty() && c.events_path != "-") check_writable_dir("events.path", c.events_path);
  // Created and locked at start (StateDir::open), not here: --check-config must not take the lock.
  if (c.state_dir.empty() && d.mode != Mode::replay) c.state_dir = kStateDirDefault;
  if (!l.trace_enabled)
    c.trace.path.clear();
  else if (!c.trace.path.empty())
    check_writable_dir("trace.path", c.trace.path);
  else if (!c.state_dir.empty())
    c.trace.path = c.state_dir + "/trace.log";  // the directory is made at start

  ReputationConfig& r = c.reputation;
  check_endpoint_list(r.endpoints, "reputation.endpoints");
  if (!l.cache_persist)
    r.cache_path.clear();
  else if (r.cache_path.empty() && !c.state_dir.empty())
    r.cache_path = c.state_dir + "/verdict-cache.sqlite";
  d.verdicts.lookups = !r.endpoints.empty();
  // The lcore's own deadline is a backstop: the control plane answers `budget_exhausted` at the
  // budget; a second more covers the rings.
  d.verdicts.deadline_ms = r.limits.budget_ms + 1000;

  AnalysisConfig& a = c.analysis;
  check_endpoint_list(a.endpoints, "analysis.endpoints");
  uint32_t groups = 0;
  for (const auto& name : l.analysis_groups) {
    const auto g = pipeline::analysis_group_named(name);
    if (!g) fail("analysis.groups", "no analysis group '" + name + "'");
    groups |= 1u << static_cast<unsigned>(*g);
  }
  if (!a.endpoints.empty() && r.endpoints.empty())
    fail("analysis.endpoints", "analysis takes the files the reputation endpoints call unknown: configure "
                               "reputation.endpoints too");
  a.settings.ttl_malicious_s = r.limits.ttl_malicious_s;
  a.settings.ttl_clean_s = r.limits.ttl_clean_s;
  a.submissions_path = c.state_dir.empty() ? "" : c.state_dir + "/submissions.sqlite";
  c.sightings.path = c.state_dir.empty() ? "" : c.state_dir + "/sightings.sqlite";
  if (c.sightings.appliance.empty()) {
    char host[256] = {};
    c.sightings.appliance = gethostname(host, sizeof host - 1) == 0 && host[0] ? host : "sluice";
  }
  ManagementConfig& mg = c.management;
  if (!mg.listen.empty()) {
    std::string h, pt;
    if (!split_host_port(mg.listen, h, pt)) fail("management.listen", "'" + mg.listen + "' is not host:port or [v6]:port");
    if (mg.token_file.empty()) fail("management.token_file", "the management API needs a token file");
    if (const TokenFile t = load_tokens(mg.token_file); !t.error.empty()) fail("management.token_file", t.error);
    if (mg.cert_file.empty() != mg.key_file.empty())
      fail("management.cert_file", "give both management.cert_file and management.key_file, or neither");
    if (mg.cert_file.empty() && c.state_dir.empty())
      fail("management.cert_file", "give a certificate, or a state.dir to keep the one made at start");
  }
  NotifyConfig& n = c.notify;
  std::string host, port;
  if (!n.syslog_address.empty() && !split_host_port(n.syslog_address, host, port))
    fail("notifications.syslog.address", "'" + n.syslog_address + "' is not host:port or [v6]:port");
  if (!n.webhook.url.empty()) {
    n.webhook.name = "webhook";
    if (std::string p = validate_endpoint_settings(n.webhook); !p.empty()) fail("notifications.webhook.url", p);
  }
  if (const auto& relay = c.analysis.relay.address; !relay.empty() && !split_host_port(relay, host, port))
    fail("quarantine.relay", "'" + relay + "' is not host:port or [v6]:port");
  if (!n.email_relay.empty()) {
    if (!split_host_port(n.email_relay, host, port))
      fail("notifications.email.relay", "'" + n.email_relay + "' is not host:port or [v6]:port");
    if (n.email_to.empty()) fail("notifications.email.to", "give at least one address to mail alerts to");
    if (n.email_from.empty()) n.email_from = "sluice@" + c.sightings.appliance;
    if (!n.email_password_file.empty() && n.email_username.empty())
      fail("notifications.email.username", "a password_file needs a username");
    if (!n.email_username.empty() && n.email_starttls != "required")
      fail("notifications.email.starttls", "a login at the relay needs starttls: required (else the password may go "
                                           "in clear text)");
  }
  d.verdicts.analysis = !a.endpoints.empty();
  d.verdicts.analysis_deadline_ms = a.settings.decision_ms + 1000;  // the control plane answers first
  if (d.verdicts.analysis) {
    d.workers.limits.analysis_groups = groups;
    d.workers.limits.max_sample_bytes = a.settings.max_sample_bytes;
    d.workers.sample_blocks = static_cast<unsigned>((uint64_t{l.sample_memory_mb} << 20) / pipeline::kSampleBlockBytes);
    const std::size_t pools = d.lcores.workers.empty() ? d.lcores.rx.size() : d.lcores.workers.size();
    if (uint64_t{l.sample_memory_mb} * pools > l.sample_memory_total_mb)
      fail("analysis.sample_memory_total_mb",
           std::to_string(l.sample_memory_mb) + " MiB per " + (d.lcores.workers.empty() ? "RX" : "worker") +
               " lcore times " + std::to_string(pools) + " is " + std::to_string(uint64_t{l.sample_memory_mb} * pools) +
               " MiB, over the total of " + std::to_string(l.sample_memory_total_mb) +
               " MiB: lower analysis.sample_memory_mb or raise the total");
    if (!c.state_dir.empty()) {
      a.quarantine_dir = c.state_dir + "/quarantine";
      d.verdicts.spool_blocks = static_cast<unsigned>((uint64_t{l.spool_mb} << 20) / pipeline::kSampleBlockBytes);
      d.verdicts.spool_max_bytes = uint64_t{l.spool_mb} << 20;
    }
  }

  // Inline enforcement: where frames go on (inline, or replay into a pcap), verdicts act on them.
  dataplane::EnforceConfig& e = d.enforce;
  e.enabled = (d.mode == Mode::inline_ || !c.replay_output.empty()) && !d.hold.debug_hold_every_message;
  e.max_hold_us = int64_t{d.hold.max_hold_ms} * 1000;
  e.instance = static_cast<uint32_t>(std::time(nullptr));
  e.smtp_ports = d.reassembly.smtp_ports;
  auto check_reply = [](const char* key, const std::string& v, char cls) {
    if (v.size() < 4 || v[0] != cls || !std::isdigit(static_cast<unsigned char>(v[1])) ||
        !std::isdigit(static_cast<unsigned char>(v[2])) || v[3] != ' ')
      fail(key, std::string("must start with a ") + cls + "xx reply code and a space (RFC 5321 4.2), e.g. \"" + cls +
                    (cls == '5' ? "50 5.7.1 ...\"" : "51 4.7.1 ...\""));
    for (unsigned char ch : v)
      if (ch < 0x20 || ch > 0x7e) fail(key, "printable ASCII only, one line (CR, LF and control characters are not allowed)");
    if (v.size() > 400) fail(key, "at most 400 characters");
  };
  check_reply("enforce.reject_reply", e.reject_reply, '5');
  check_reply("enforce.defer_reply", e.defer_reply, '4');
  if (e.enabled) {
    // The verdict must be able to come before the hold deadline: look-ups, then analysis.
    const uint64_t verdict_ms = (d.verdicts.lookups ? d.verdicts.deadline_ms : 0) +
                                (d.verdicts.analysis ? d.verdicts.analysis_deadline_ms : 0);
    if (verdict_ms >= d.hold.max_hold_ms)
      fail("hold.max_hold_ms", std::to_string(d.hold.max_hold_ms) + " ms is not longer than a verdict may take (" +
                                   std::to_string(verdict_ms) + " ms: reputation.budget_ms" +
                                   (d.verdicts.analysis ? " + analysis.decision_ms" : "") +
                                   ", each plus 1 s): raise it or lower those");
  }
}

const Param<Loading>& param_named(const std::string& path) {
  return *std::find_if(params().begin(), params().end(), [&](const Param<Loading>& p) { return p.path == path; });
}

// The keys the command line sets, applied after the file through the same declarations.
std::vector<std::pair<std::string, std::string>> overridden(const Overrides& o) {
  std::vector<std::pair<std::string, std::string>> keys;
  if (o.replay_input) {
    keys.emplace_back("mode", "replay");
    keys.emplace_back("replay.input", *o.replay_input);
  }
  if (o.replay_output) keys.emplace_back("replay.output", *o.replay_output);
  if (o.events_path) keys.emplace_back("events.path", *o.events_path);
  return keys;
}

LoadResult load(const YAML::Node* root, const std::string& origin, const Overrides& o) {
  LoadResult result;
  try {
    Loading l;
    for (const auto& p : params())
      if (!p.default_yaml.empty()) p.apply(YAML::Load(p.default_yaml), l, p.path);
    const bool given = root && !root->IsNull();
    if (given) {
      check_unique_keys(*root, "");
      apply_map(*root, l, params(), "", "", "");
    }
    std::map<std::string, YAML::Node> command_line;
    for (const auto& [key, value] : overridden(o)) {
      const YAML::Node n(value);
      param_named(key).apply(n, l, key);
      command_line.emplace(key, n);
    }
    for (const auto& p : params()) {
      const auto cl = command_line.find(p.path);
      const std::optional<YAML::Node> node = cl != command_line.end() ? std::optional(cl->second)
                                             : given                  ? given_at(*root, p.path)
                                                                      : std::nullopt;
      l.config.effective[p.path] = p.canonical(effective_node(p, node));
    }
    finish(l);
    result.config = std::move(l.config);
  } catch (const ConfigError& e) {
    result.error = origin + ": " + e.message;
  } catch (const YAML::Exception& e) {
    result.error = origin + ": invalid YAML: " + e.what();
  }
  return result;
}

}  // namespace

LoadResult load_config_text(const std::string& yaml, const std::string& origin, const Overrides& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return {std::nullopt, origin + ": invalid YAML: " + e.what()};
  }
  return load(&root, origin, overrides);
}

LoadResult load_config(const std::string& path, const Overrides& overrides) {
  if (path.empty()) return load(nullptr, "command line", overrides);
  std::ifstream f(path);
  if (!f) return {std::nullopt, "config " + path + ": cannot open: " + std::strerror(errno)};
  std::stringstream ss;
  ss << f.rdbuf();
  return load_config_text(ss.str(), "config " + path, overrides);
}

ReloadResult reload_config(const Config& running, const std::string& path, const Overrides& overrides) {
  return compare_config(running, load_config(path, overrides),
                        path.empty() ? std::string("command line") : "config " + path);
}

ReloadResult compare_config(const Config& running, LoadResult loaded, const std::string& origin) {
  if (!loaded.config) return {std::nullopt, {}, std::move(loaded.error)};
  std::vector<std::string> changed, fixed;
  for (const auto& p : params()) {
    const auto was = running.effective.find(p.path);
    if (was != running.effective.end() && was->second == loaded.config->effective.at(p.path)) continue;
    (p.runtime ? changed : fixed).push_back(p.path);
  }
  if (!fixed.empty()) {
    std::string keys;
    for (const auto& k : fixed) keys += (keys.empty() ? "'" : ", '") + k + "'";
    const bool one = fixed.size() == 1;
    return {std::nullopt, {},
            origin + ": " + (one ? "key " : "keys ") + keys +
                " cannot change at run time (restart sluiced to apply " + (one ? "it)" : "them)")};
  }
  return {std::move(loaded.config), std::move(changed), {}};
}

const std::vector<std::string>& reloadable_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> k;
    for (const auto& p : params())
      if (p.runtime) k.push_back(p.path);
    return k;
  }();
  return keys;
}

std::string config_reference_markdown() {
  std::ostringstream out;
  out << "| key | type | default | meaning |\n| --- | --- | --- | --- |\n";
  auto row = [&](const auto& p) {
    const std::string def = !p.default_doc.empty() ? p.default_doc : p.default_yaml.empty() ? "required" : "`" + p.default_yaml + "`";
    out << "| `" << p.path << "` | " << p.type << " | " << def << " | " << p.help
        << (p.runtime ? " Reloadable: a reload (SIGHUP) applies it without a restart." : "") << " |\n";
  };
  for (const auto& p : params()) {
    row(p);
    if (p.path == "ports")
      for (const auto& pp : port_params()) row(pp);
    if (p.path == "reputation.endpoints")
      for (const auto& pp : endpoint_params()) row(pp);
    if (p.path == "analysis.endpoints")
      for (const auto& pp : analysis_endpoint_params()) row(pp);
  }
  return out.str();
}

}  // namespace sluice::control
