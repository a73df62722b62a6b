// control/reputation_adapters: what each kind asks, and how strictly its answers are read.
#include "control/reputation_adapters.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace sluice::control::reputation {
namespace {

using nlohmann::json;
using records::Reputation;

const std::string kA(64, 'a'), kB(64, 'b');

json file(const std::string& sha, const char* disposition) {
  return {{"sha256", sha},          {"disposition", disposition}, {"threat_name", nullptr}, {"threat_score", nullptr},
          {"ttl_seconds", 3600},    {"upload_wanted", false},     {"last_changed", nullptr}};
}

Parsed sluice(const json& body, std::vector<std::string> hex = {kA, kB}) {
  return parse_sluice_lookup(200, body.dump(), "", hex);
}

TEST(SluiceAdapter, RequestsAreTheBatchLookUpAndHealth) {
  std::vector<std::string> hex = {kA, kB};
  Call c = sluice_lookup(hex);
  EXPECT_EQ(c.method, boost::beast::http::verb::post);
  EXPECT_EQ(c.target, "/api/v1/files/lookup");
  EXPECT_EQ(json::parse(c.body), (json{{"hashes", {kA, kB}}}));
  EXPECT_EQ(sluice_health().target, "/api/v1/health");
  EXPECT_EQ(vt_lookup(kA).target, "/api/v3/files/" + kA);
}

TEST(SluiceAdapter, ReadsEveryField) {
  json a = file(kA, "malicious");
  a["threat_name"] = "Eicar-Test-Signature";
  a["threat_score"] = 95;
  a["ttl_seconds"] = 60;
  json b = file(std::string(64, 'B'), "unknown");  // upper case hex is the same hash
  b["upload_wanted"] = true;
  Parsed p = sluice({{"data", {a, b}}});
  ASSERT_EQ(p.kind, Parsed::Kind::answered) << p.detail;
  ASSERT_EQ(p.answers.size(), 2u);
  EXPECT_EQ(p.answers[0].reputation, Reputation::malicious);
  EXPECT_EQ(p.answers[0].threat_name, "Eicar-Test-Signature");
  EXPECT_EQ(p.answers[0].threat_score, 95);
  EXPECT_EQ(p.answers[0].ttl_seconds, 60u);
  EXPECT_FALSE(p.answers[0].upload_wanted);
  EXPECT_EQ(p.answers[1].reputation, Reputation::unknown);
  EXPECT_EQ(p.answers[1].threat_score, -1);
  EXPECT_TRUE(p.answers[1].upload_wanted);
}

TEST(SluiceAdapter, AnythingOffIsAFailureNeverAGuess) {
  auto fails = [](const json& body, const std::string& detail) {
    Parsed p = sluice(body);
    EXPECT_EQ(p.kind, Parsed::Kind::failed) << body.dump();
    EXPECT_EQ(p.detail, detail);
    EXPECT_TRUE(p.answers.empty());
  };
  fails({{"data", {file(kA, "clean")}}}, "bad answer: 1 results for 2 hashes");
  fails({{"data", {file(kB, "clean"), file(kA, "clean")}}},
        "bad answer: result 0: sha256 '" + kB + "' where " + kA + " was asked");
  fails({{"data", {file(kA, "clean"), file(kB, "suspicious")}}}, "bad answer: result 1: disposition '\"suspicious\"'");
  json score = file(kB, "clean");
  score["threat_score"] = 101;
  fails({{"data", {file(kA, "clean"), score}}}, "bad answer: result 1: threat_score '101' is not 0-100");
  json ttl = file(kB, "clean");
  ttl.erase("ttl_seconds");
  fails({{"data", {file(kA, "clean"), ttl}}}, "bad answer: result 1: ttl_seconds missing or not a count of seconds");
  json up = file(kB, "clean");
  up["upload_wanted"] = "yes";
  fails({{"data", {file(kA, "clean"), up}}}, "bad answer: result 1: upload_wanted missing or not true/false");
  json name = file(kB, "malicious");
  name["threat_name"] = 7;
  fails({{"data", {file(kA, "clean"), name}}}, "bad answer: result 1: threat_name is not a string");
  fails({{"files", json::array()}}, "bad answer: no \"data\" array");
  Parsed p = parse_sluice_lookup(200, "{\"data\": [", "", std::vector<std::string>{kA});
  EXPECT_EQ(p.detail, "bad answer: not JSON");
  EXPECT_TRUE(p.retryable);
}

TEST(SluiceAdapter, ErrorStatuses) {
  std::vector<std::string> hex = {kA};
  Parsed p = parse_sluice_lookup(429, R"({"error":{"code":"QuotaExceededError","message":"m"}})", "17", hex);
  EXPECT_EQ(p.kind, Parsed::Kind::rate_limited);
  EXPECT_EQ(p.retry_after, std::chrono::seconds(17));
  EXPECT_EQ(p.detail, "HTTP 429 QuotaExceededError (retry after 17 s)");
  p = parse_sluice_lookup(503, R"({"error":{"code":"TransientError","message":"m"}})", "", hex);
  EXPECT_EQ(p.kind, Parsed::Kind::failed);
  EXPECT_EQ(p.detail, "HTTP 503 TransientError");
  EXPECT_TRUE(p.retryable);
  p = parse_sluice_lookup(401, R"({"error":{"code":"WrongCredentialsError","message":"m"}})", "", hex);
  EXPECT_EQ(p.detail, "HTTP 401 WrongCredentialsError");
  EXPECT_FALSE(p.retryable);
  p = parse_sluice_lookup(502, "<html>bad gateway</html>", "", hex);
  EXPECT_EQ(p.detail, "HTTP 502");
  EXPECT_TRUE(p.retryable);
}

TEST(RetryAfter, SecondsOrAMinuteAtMostAnHour) {
  EXPECT_EQ(retry_after_seconds("30"), std::chrono::seconds(30));
  EXPECT_EQ(retry_after_seconds(" 0 "), std::chrono::seconds(0));
  EXPECT_EQ(retry_after_seconds(""), std::chrono::seconds(60));
  EXPECT_EQ(retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), std::chrono::seconds(60));
  EXPECT_EQ(retry_after_seconds("-5"), std::chrono::seconds(60));
  EXPECT_EQ(retry_after_seconds("86400"), std::chrono::seconds(3600));
}

json vt_file(const std::string& sha, int malicious, int harmless, int undetected) {
  return {{"data",
           {{"type", "file"},
            {"id", sha},
            {"attributes",
             {{"last_analysis_stats",
               {{"harmless", harmless}, {"type-unsupported", 4}, {"suspicious", 0}, {"confirmed-timeout", 0},
                {"timeout", 0}, {"failure", 0}, {"malicious", malicious}, {"undetected", undetected}}}}}}}};
}

Parsed vt(const json& body, unsigned threshold = 3) { return parse_vt_lookup(200, body.dump(), "", kA, threshold); }

TEST(VirusTotalAdapter, ThresholdAndLabel) {
  json f = vt_file(kA, 3, 0, 50);
  f["data"]["attributes"]["popular_threat_classification"] = {{"suggested_threat_label", "trojan.emotet/generic"}};
  Parsed p = vt(f);
  ASSERT_EQ(p.kind, Parsed::Kind::answered) << p.detail;
  EXPECT_EQ(p.answers.at(0).reputation, Reputation::malicious);
  EXPECT_EQ(p.answers[0].threat_name, "trojan.emotet/generic");
  EXPECT_EQ(vt(f, 4).answers.at(0).reputation, Reputation::clean);
  EXPECT_EQ(vt(f, 4).answers.at(0).threat_name, "");
  EXPECT_EQ(vt(vt_file(kA, 3, 0, 0)).answers.at(0).threat_name, "");  // malicious, no label
  EXPECT_EQ(vt(vt_file(kA, 0, 1, 0)).answers.at(0).reputation, Reputation::clean);
  EXPECT_EQ(vt(vt_file(kA, 2, 0, 0)).answers.at(0).reputation, Reputation::unknown);
  EXPECT_EQ(vt(vt_file(kA, 0, 0, 0)).answers.at(0).reputation, Reputation::unknown);
}

TEST(VirusTotalAdapter, NotFoundIsUnknownOnlyWithItsErrorCode) {
  Parsed p = parse_vt_lookup(404, R"({"error":{"code":"NotFoundError","message":"File not found"}})", "", kA, 3);
  ASSERT_EQ(p.kind, Parsed::Kind::answered);
  EXPECT_EQ(p.answers.at(0).reputation, Reputation::unknown);
  p = parse_vt_lookup(404, "<html>no such page</html>", "", kA, 3);  // a wrong URL prefix, not an answer
  EXPECT_EQ(p.kind, Parsed::Kind::failed);
  EXPECT_EQ(p.detail, "HTTP 404");
  EXPECT_FALSE(p.retryable);
}

TEST(VirusTotalAdapter, AnythingOffIsAFailure) {
  EXPECT_EQ(vt(vt_file(kB, 5, 0, 0)).detail, "bad answer: data.id '\"" + kB + "\"' where " + kA + " was asked");
  json f = vt_file(kA, 5, 0, 0);
  f["data"]["type"] = "url";
  EXPECT_EQ(vt(f).detail, "bad answer: data.type is not \"file\"");
  f = vt_file(kA, 5, 0, 0);
  f["data"]["attributes"]["last_analysis_stats"].erase("undetected");
  EXPECT_EQ(vt(f).detail, "bad answer: last_analysis_stats.undetected missing or not a count");
  f = vt_file(kA, 5, 0, 0);
  f["data"]["attributes"].erase("last_analysis_stats");
  EXPECT_EQ(vt(f).detail, "bad answer: no data.attributes.last_analysis_stats");
  EXPECT_EQ(vt(json{{"error", "x"}}).detail, "bad answer: no \"data\" object");
  Parsed p = parse_vt_lookup(429, R"({"error":{"code":"TooManyRequestsError","message":"m"}})", "", kA, 3);
  EXPECT_EQ(p.kind, Parsed::Kind::rate_limited);
  EXPECT_EQ(p.retry_after, std::chrono::seconds(60));
}

}  // namespace
}  // namespace sluice::control::reputation
