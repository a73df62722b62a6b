// control/cli_output: sluicectl's tables and lines from JSON answers, including shapes it does not
// know.
#include "control/cli_output.h"

#include <gtest/gtest.h>

namespace sluice::control::cli {
namespace {

TEST(CliOutput, AnObjectIsItsScalarsThenItsListsAsTables) {
  const Json status = Json::parse(R"({"mode":"tap","uptime_s":12.5,"ok":true,"none":null,
      "lcores":[{"lcore":1,"role":"rx"},{"lcore":2,"role":"worker"}],
      "ports":[{"name":"tap0","link_up":true,"rx_packets":7,"unknown":"u"}]})");
  EXPECT_EQ(render_text(status, {{"ports", {"name", "device", "link_up", "rx_packets"}}}),
            "mode: tap\n"
            "uptime_s: 12.5\n"
            "ok: true\n"
            "none: -\n"
            "\n"
            "lcores:\n"
            "lcore  role\n"
            "1      rx\n"
            "2      worker\n"
            "\n"
            "ports:\n"
            "name  link_up  rx_packets\n"  // "device" is in no row: no column
            "tap0  true     7\n");
}

TEST(CliOutput, RowsThatAreNotFlatFallBackToLines) {
  const Json list = Json::parse(R"([{"id":"q1","files":[{"sha256":"ab"}]},{"id":"q2","extra":{"a":1}}])");
  EXPECT_EQ(render_text(list),
            "id: q1\n"
            "\n"
            "files:\n"
            "sha256\n"
            "ab\n"
            "\n"
            "id: q2\n"
            "extra.a: 1\n");
  // With columns asked for, a table of those: the nested rest is for --json.
  EXPECT_EQ(render_text(list, {{"", {"id"}}}), "id\nq1\nq2\n");
}

TEST(CliOutput, ListsOfScalarsEmptyListsAndNestedObjects) {
  EXPECT_EQ(render_text(Json::parse(R"({"changed":["a","b"],"none":[],"cfg":{"x":{"y":2},"z":"w"}})")),
            "cfg.z: w\ncfg.x.y: 2\nchanged: a, b\nnone: (none)\n");
  EXPECT_EQ(render_text(Json::parse("[]")), "(none)\n");
  EXPECT_EQ(render_text(Json("just text")), "just text\n");
}

TEST(CliOutput, CellsNeverCarryControlCharactersAndAreCut) {
  EXPECT_EQ(cell_text(Json("a\x1b[31mb\r\n")), "a?[31mb??");
  EXPECT_EQ(cell_text(Json(std::string(150, 'x'))), std::string(97, 'x') + "...");
  // Cut at code points: the width is counted in characters, not bytes.
  std::string e;
  for (int i = 0; i < 120; ++i) e += "\xC3\xA9";
  std::string want;
  for (int i = 0; i < 97; ++i) want += "\xC3\xA9";
  EXPECT_EQ(cell_text(Json(e)), want + "...");
  EXPECT_EQ(cell_text(Json::parse(R"({"a":[1,2]})")), R"({"a":[1,2]})");
  EXPECT_EQ(cell_text(Json(nullptr)), "-");
}

TEST(CliOutput, WideColumnsAlignByCharacters) {
  const Json rows = Json::parse(R"([{"s":"caf\u00e9","n":1},{"s":"a","n":22}])");
  EXPECT_EQ(table_text(rows, {"s", "n", "missing"}), "s     n   missing\ncaf\xC3\xA9  1   -\na     22  -\n");
}

TEST(CliOutput, YamlOfTheConfiguration) {
  const Json cfg = Json::parse(R"({"mode":"tap","management":{"listen":"127.0.0.1:8443","rate_per_s":50},
      "lcores":{"rx":[1,2]},"secret":"<redacted>","port":"025","on":true,"none":null})");
  const std::string y = yaml_text(cfg);
  EXPECT_EQ(y, "mode: \"tap\"\nmanagement:\n  listen: \"127.0.0.1:8443\"\n  rate_per_s: 50\nlcores:\n  rx:\n    - 1\n"
               "    - 2\nsecret: \"<redacted>\"\nport: \"025\"\non: true\nnone: ~\n");
}

}  // namespace
}  // namespace sluice::control::cli
