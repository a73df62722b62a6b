// control/change_feed: sluice-cloud's change feed page, read strictly (control/cloud/API.md).
#include "control/change_feed.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::control {
namespace {

const std::string kSha(64, 'a');

std::string page(const std::string& data, const std::string& meta = R"({"cursor":"5e0c2a9f13d84b67-2","more":true})") {
  return R"({"data":[)" + data + R"(],"meta":)" + meta + "}";
}

std::string entry(const std::string& fields) {
  return R"({"sha256":")" + kSha + R"(",)" + fields + "}";
}

TEST(ChangeFeed, APageAsApiMdShowsIt) {
  const FeedPage p = parse_change_page(
      200,
      page(entry(R"("old":"unknown","new":"malicious","threat_name":"Eicar-Test-Signature","changed_at":"2026-12-02T10:11:12Z")") +
           R"(,{"sha256":")" + std::string(64, 'B') +
           R"(","old":"unknown","new":"clean","threat_name":null,"changed_at":"2026-12-02T10:11:13Z","extra":1})"),
      100);
  ASSERT_EQ(p.problem, "");
  EXPECT_EQ((p.cursor), "5e0c2a9f13d84b67-2");
  EXPECT_TRUE(p.more);
  ASSERT_EQ(p.changes.size(), 2u);
  EXPECT_EQ(p.changes[0].threat_name, "Eicar-Test-Signature");
  EXPECT_EQ(p.changes[0].changed_at, "2026-12-02T10:11:12Z");
  EXPECT_EQ(p.changes[1].sha256, std::string(64, 'b'));  // any case in, lower case out
  EXPECT_EQ(p.changes[1].threat_name, "");
  const FeedPage empty = parse_change_page(200, page("", R"({"cursor":"x-0","more":false})"), 100);
  EXPECT_EQ(empty.problem, "");
  EXPECT_TRUE(empty.changes.empty());
  EXPECT_FALSE(empty.more);
}

TEST(ChangeFeed, AnythingOffRefusesThePage) {
  const std::string ok = R"("old":"unknown","new":"malicious","changed_at":"2026-12-02T10:11:12Z")";
  struct Case {
    std::string body, says;
  } cases[] = {
      {"not json", "not a change feed page"},
      {R"({"data":{},"meta":{"cursor":"c","more":false}})", "not a change feed page"},
      {R"({"data":[]})", "not a change feed page"},
      {page("", R"({"more":false})"), "meta.cursor"},
      {page("", R"({"cursor":"","more":false})"), "meta.cursor"},
      {page("", R"({"cursor":"a b","more":false})"), "meta.cursor"},
      {page("", R"({"cursor":")" + std::string(257, 'c') + R"(","more":false})"), "meta.cursor"},
      {page("", R"({"cursor":"c","more":"yes"})"), "meta.more"},
      {page(R"({"old":"unknown","new":"malicious","changed_at":"t"})"), "without a SHA-256"},
      {page(R"({"sha256":"abc","old":"unknown","new":"malicious","changed_at":"t"})"), "without a SHA-256"},
      {page(entry(R"("new":"malicious","changed_at":"t")")), "without old and new"},
      {page(entry(R"("old":"unknown","new":"evil","changed_at":"t")")), "disposition"},
      {page(entry(R"("old":"clean","new":"clean","changed_at":"t")")), "changes nothing"},
      {page(entry(R"("old":"unknown","new":"malicious")")), "without changed_at"},
      {page(entry(R"("old":"unknown","new":"malicious","changed_at":5)")), "without changed_at"},
      {page(entry(ok + R"(,"threat_name":7)")), "threat_name"},
      {page(entry(ok + R"(,"threat_name":")" + std::string(257, 'x') + "\"")), "threat_name"},
      {page(entry(ok) + "," + entry(ok) + "," + entry(ok)), "3 entries for a limit of 2"},
      {page(entry(ok) + ",5"), "without a SHA-256"},
  };
  for (const auto& c : cases) {
    const FeedPage p = parse_change_page(200, c.body, 2);
    EXPECT_NE(p.problem.find("bad answer: "), std::string::npos) << c.body;
    EXPECT_NE(p.problem.find(c.says), std::string::npos) << p.problem << " for " << c.body;
    EXPECT_TRUE(p.changes.empty());
    EXPECT_EQ(p.cursor, "");
    EXPECT_FALSE(p.cursor_refused);
  }
}

TEST(ChangeFeed, ErrorsSayWhatTheEndpointSaidAndARefusedCursorIsKnown) {
  const FeedPage refused = parse_change_page(
      400, R"({"error":{"code":"InvalidArgumentError","message":"cursor \"x-9\" is not a cursor of this store"}})", 100);
  EXPECT_TRUE(refused.cursor_refused);
  EXPECT_EQ(refused.problem, "HTTP 400 InvalidArgumentError: 'cursor \"x-9\" is not a cursor of this store'");
  const FeedPage down = parse_change_page(503, R"({"error":{"code":"TransientError","message":"busy"}})", 100);
  EXPECT_FALSE(down.cursor_refused);
  EXPECT_NE(down.problem.find("HTTP 503"), std::string::npos);
  EXPECT_FALSE(parse_change_page(401, "", 100).cursor_refused);
  EXPECT_FALSE(parse_change_page(400, R"({"error":{"code":"BadRequestError","message":"x"}})", 100).cursor_refused);
}

}  // namespace
}  // namespace sluice::control
