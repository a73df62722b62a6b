// The management API's routes: the matcher and parameter parsers (api.h), and sluiced's route
// table (api_routes.h) against docs/api.openapi.yaml and docs/api.md.
#include "control/api_routes.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "control/file_analysis.h"
#include "control/file_reputation.h"
#include "control/retrospective.h"

namespace sluice::control {
namespace {

TEST(Api, PatternsMatchWholeSegmentsAndDecodeThem) {
  std::vector<std::string> p;
  EXPECT_TRUE(api_match("/api/v1/quarantine/{id}/eml", "/api/v1/quarantine/20261207-1%2F2/eml", p));
  EXPECT_EQ(p, std::vector<std::string>{"20261207-1/2"});
  EXPECT_FALSE(api_match("/api/v1/quarantine/{id}", "/api/v1/quarantine/", p));  // an empty segment
  EXPECT_FALSE(api_match("/api/v1/quarantine/{id}", "/api/v1/quarantine/a/b", p));
  EXPECT_FALSE(api_match("/api/v1/status", "/api/v1/statusx", p));
  EXPECT_FALSE(api_match("/api/v1/status", "/api/v1/status/", p));
  EXPECT_FALSE(api_match("/api/v1/cache/{sha256}", "/api/v1/cache/%zz", p));  // a malformed escape
  EXPECT_TRUE(api_match("/api/v1/endpoints/{section}/{name}/test", "/api/v1/endpoints/reputation/lab/test", p));
  EXPECT_EQ(p, (std::vector<std::string>{"reputation", "lab"}));
}

TEST(Api, QueryStringsAndParameters) {
  std::map<std::string, std::string> q;
  ASSERT_TRUE(api_parse_query("sender=a%40b.example&state=held&&flag&x=1+2&x=3", q));
  EXPECT_EQ(q["sender"], "a@b.example");
  EXPECT_EQ(q["state"], "held");
  EXPECT_EQ(q["flag"], "");
  EXPECT_EQ(q["x"], "3");  // the last one
  EXPECT_FALSE(api_parse_query("a=%4", q));
  int64_t ms = 0;
  ASSERT_TRUE(api_parse_time("2026-12-07T10:00:00Z", ms));
  EXPECT_EQ(ms, 1796637600000);
  ASSERT_TRUE(api_parse_time("2026-12-07T11:00:00.250+01:00", ms));
  EXPECT_EQ(ms, 1796637600250);
  ASSERT_TRUE(api_parse_time("1796637600000", ms));
  EXPECT_EQ(ms, 1796637600000);
  for (const char* bad : {"", "yesterday", "2026-12-07", "2026-13-07T10:00:00Z", "2026-12-07T10:00:00", "12ab"})
    EXPECT_FALSE(api_parse_time(bad, ms)) << bad;
  std::string sha;
  EXPECT_TRUE(api_parse_sha256(std::string(64, 'A'), sha));
  EXPECT_EQ(sha, std::string(64, 'a'));
  EXPECT_FALSE(api_parse_sha256(std::string(63, 'a'), sha));
  EXPECT_FALSE(api_parse_sha256(std::string(63, 'a') + "g", sha));
  uint64_t n = 0;
  EXPECT_TRUE(api_parse_uint("10000", 1, 10000, n));
  EXPECT_FALSE(api_parse_uint("10001", 1, 10000, n));
  EXPECT_FALSE(api_parse_uint("0", 1, 10000, n));
  EXPECT_FALSE(api_parse_uint("-1", 1, 10000, n));
  EXPECT_FALSE(api_parse_uint("5x", 1, 10000, n));
}

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

const char* role_name(ApiAccess a) { return a == ApiAccess::open ? "open" : a == ApiAccess::read ? "read" : "admin"; }

// The routes sluiced really serves, made as sluiced makes them (every part off: no endpoints, no
// state directory), as "METHOD PATH ROLE" lines.
std::set<std::string> served_routes() {
  auto loaded = load_config_text("mode: tap\nports: [{name: tap0, device: 'net_af_packet0,iface=lo'}]\n", "test", {});
  EXPECT_TRUE(loaded.config) << loaded.error;
  Config cfg = *loaded.config;
  ServiceLoop loop(1, 8);
  FileReputation reputation(cfg, loop);
  FileAnalysis analysis(cfg, loop);
  Retrospective retro(cfg, loop, nullptr, {});
  AlertLog alerts;
  std::set<std::string> out;
  for (const auto& r : api_routes({loop, cfg, reputation, analysis, retro, alerts, {}, {}, {}, {}, {}, {}, {}, {}}))
    EXPECT_TRUE(out.insert(r.method + " " + r.pattern + " " + role_name(r.access)).second) << r.pattern;
  return out;
}

TEST(ApiRoutes, TheOpenApiFileListsExactlyTheServersRoutes) {
  const YAML::Node doc = YAML::LoadFile(std::string(SLUICE_SOURCE_DIR) + "/docs/api.openapi.yaml");
  ASSERT_EQ(doc["openapi"].as<std::string>().substr(0, 2), "3.");
  std::set<std::string> documented;
  for (const auto& path : doc["paths"]) {
    for (const auto& op : path.second) {
      std::string method = op.first.as<std::string>();
      if (method == "parameters") continue;
      for (auto& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      ASSERT_TRUE(op.second["x-sluice-role"]) << method << " " << path.first.as<std::string>();
      documented.insert(method + " " + path.first.as<std::string>() + " " + op.second["x-sluice-role"].as<std::string>());
    }
  }
  EXPECT_EQ(documented, served_routes());
}

TEST(ApiRoutes, TheGuideTabulatesEveryRoute) {
  // docs/api.md's table: "| METHOD | `PATH` | ROLE | ...".
  const std::string md = read_file(std::string(SLUICE_SOURCE_DIR) + "/docs/api.md");
  std::set<std::string> listed;
  std::istringstream lines(md);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("| GET |", 0) != 0 && line.rfind("| POST |", 0) != 0 && line.rfind("| PUT |", 0) != 0 &&
        line.rfind("| DELETE |", 0) != 0)
      continue;
    std::vector<std::string> cells;
    std::istringstream row(line.substr(1));
    for (std::string cell; std::getline(row, cell, '|');) {
      const auto a = cell.find_first_not_of(' '), b = cell.find_last_not_of(' ');
      cells.push_back(a == std::string::npos ? "" : cell.substr(a, b - a + 1));
    }
    ASSERT_GE(cells.size(), 3u) << line;
    std::string path = cells[1];
    if (path.size() > 2 && path.front() == '`') path = path.substr(1, path.size() - 2);
    const std::string role = cells[2].rfind("none", 0) == 0 ? "open" : cells[2];
    listed.insert(cells[0] + " " + path + " " + role);
  }
  EXPECT_EQ(listed, served_routes());
}

}  // namespace
}  // namespace sluice::control
