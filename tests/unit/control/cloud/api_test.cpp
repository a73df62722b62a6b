#include "control/cloud/api.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

using namespace sluice::cloud;
using nlohmann::json;

namespace {

const std::string kA = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb";
const std::string kB = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";

// An Api over a store in a fresh directory, with clocks the test sets.
class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-cloud-api-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    store_ = std::make_unique<Store>(root_);
    make({"key"}, "admin", 0);
  }
  void TearDown() override {
    api_.reset();
    store_.reset();
    std::filesystem::remove_all(root_);
  }

  void make(std::vector<std::string> keys, std::optional<std::string> admin, unsigned quota) {
    ApiConfig c;
    c.api_keys = std::move(keys);
    c.admin_key = std::move(admin);
    c.quota_per_minute = quota;
    c.version = "9.9.9";
    api_ = std::make_unique<Api>(c, *store_, faults_, [this] { return wall_; }, [this] { return steady_; });
  }

  ApiResponse call(std::string_view method, std::string_view target, std::string_view body = {},
                   std::optional<std::string_view> key = "key", std::optional<std::string_view> authorization = {}) {
    ApiRequest r;
    r.method = method;
    r.target = target;
    r.body = body;
    r.x_apikey = key;
    r.authorization = authorization;
    r.client = "192.0.2.1";
    return api_->handle(r);
  }

  static json error(const std::string& code, const std::string& message) {
    return json{{"error", {{"code", code}, {"message", message}}}};
  }

  std::filesystem::path root_;
  std::unique_ptr<Store> store_;
  Faults faults_;
  std::unique_ptr<Api> api_;
  int64_t wall_ = 1796210000;  // 2026-12-02T11:13:20Z
  Quota::Clock::time_point steady_ = Quota::Clock::time_point{} + std::chrono::hours(1);
};

}  // namespace

TEST(Rfc3339, Utc) {
  EXPECT_EQ(rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(rfc3339(1796210000), "2026-12-02T11:13:20Z");
}

TEST_F(ApiTest, UnknownFileExactBody) {
  const ApiResponse r = call("GET", "/api/v1/files/" + kA);
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"data":{"sha256":")" + kA +
                        R"(","disposition":"unknown","threat_name":null,"threat_score":null,"ttl_seconds":900,)"
                        R"("upload_wanted":true,"last_changed":null}})");
}

TEST_F(ApiTest, SetThenLookUpExactBodies) {
  ApiResponse r = call("PUT", "/api/v1/admin/files/" + kA,
                       R"({"disposition":"malicious","threat_name":"Eicar \"quoted\"","threat_score":100})", "admin");
  ASSERT_EQ(r.status, 200u) << r.body;
  const std::string file = R"({"sha256":")" + kA +
                           R"(","disposition":"malicious","threat_name":"Eicar \"quoted\"","threat_score":100,)"
                           R"("ttl_seconds":3600,"upload_wanted":false,"last_changed":"2026-12-02T11:13:20Z"})";
  EXPECT_EQ(r.body, R"({"data":)" + file + "}");
  r = call("POST", "/api/v1/files/lookup", R"({"hashes":[")" + kA + R"(",")" + kB + "\"]}");
  ASSERT_EQ(r.status, 200u);
  const json j = json::parse(r.body);
  EXPECT_EQ(j["data"][0], json::parse(file));
  EXPECT_EQ(j["data"][1]["disposition"], "unknown");
}

TEST_F(ApiTest, ChangeFeedCursorFormat) {
  call("PUT", "/api/v1/admin/files/" + kA, R"({"disposition":"clean"})", "admin");
  ApiResponse r = call("GET", "/api/v1/dispositions/changes");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, R"({"data":[{"sha256":")" + kA +
                        R"(","old":"unknown","new":"clean","threat_name":null,"changed_at":"2026-12-02T11:13:20Z"}],)"
                        R"("meta":{"cursor":")" + store_->id() + R"(-1","more":false}})");
  // percent-encoded parameters are decoded
  r = call("GET", "/api/v1/dispositions/changes?limit=%31&since=" + store_->id() + "%2D0");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(json::parse(r.body)["data"].size(), 1u);
}

TEST_F(ApiTest, AuthMatrix) {
  const std::string file = "/api/v1/files/" + kA;
  const std::string admin = "/api/v1/admin/faults";
  EXPECT_EQ(call("GET", file, {}, std::nullopt).status, 401u);
  EXPECT_EQ(call("GET", file, {}, "").status, 401u);  // an empty key is no key
  EXPECT_EQ(call("GET", file, {}, "nope").status, 401u);
  EXPECT_EQ(call("GET", file, {}, "key").status, 200u);
  EXPECT_EQ(call("GET", file, {}, "admin").status, 200u);
  EXPECT_EQ(call("GET", file, {}, std::nullopt, "Bearer key").status, 200u);
  EXPECT_EQ(call("GET", file, {}, std::nullopt, "BEARER\tkey ").status, 200u);
  EXPECT_EQ(call("GET", file, {}, std::nullopt, "Bearerkey").status, 401u);
  EXPECT_EQ(call("GET", file, {}, std::nullopt, "Bearer ").status, 401u);
  // x-apikey wins over Authorization
  EXPECT_EQ(call("GET", file, {}, "nope", "Bearer key").status, 401u);
  EXPECT_EQ(call("GET", admin, {}, "key").status, 403u);
  EXPECT_EQ(call("GET", admin, {}, "admin").status, 200u);
  EXPECT_EQ(call("GET", admin, {}, std::nullopt, "Bearer admin").status, 200u);
  EXPECT_EQ(call("GET", "/api/v1/health", {}, "nope").status, 200u);

  make({}, std::nullopt, 0);
  EXPECT_EQ(call("GET", file, {}, std::nullopt).status, 200u);
  EXPECT_EQ(call("GET", file, {}, "anything").status, 200u);
  const ApiResponse r = call("GET", admin, {}, "anything");
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(json::parse(r.body), error("ForbiddenError",
                                       "admin endpoints are disabled: sluice-cloud was started without --admin-key"));
}

TEST_F(ApiTest, QuotaPerKeyWithRetryAfter) {
  make({"key", "key2"}, "admin", 2);
  const std::string file = "/api/v1/files/" + kA;
  EXPECT_EQ(call("GET", file).status, 200u);
  EXPECT_EQ(call("GET", file).status, 200u);
  ApiResponse r = call("GET", file);
  EXPECT_EQ(r.status, 429u);
  EXPECT_EQ(r.retry_after, 30u);
  EXPECT_EQ(json::parse(r.body), error("QuotaExceededError", "quota of 2 requests per minute exceeded; retry in 30 s"));
  EXPECT_EQ(call("GET", file, {}, "key2").status, 200u);
  EXPECT_EQ(call("GET", "/api/v1/health").status, 200u);
  EXPECT_EQ(call("GET", "/api/v1/admin/faults", {}, "admin").status, 200u);
  steady_ += std::chrono::seconds(10);
  EXPECT_EQ(call("GET", file).retry_after, 20u);
  steady_ += std::chrono::seconds(20);
  EXPECT_EQ(call("GET", file).status, 200u);
  // without keys, clients are told apart by address
  make({}, "admin", 1);
  EXPECT_EQ(call("GET", file, {}, std::nullopt).status, 200u);
  EXPECT_EQ(call("GET", file, {}, std::nullopt).status, 429u);
}

TEST_F(ApiTest, StoreFailureIsTransientError) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((root_ / Store::kFileName).c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "ALTER TABLE dispositions RENAME TO hidden", nullptr, nullptr, nullptr), SQLITE_OK);
  ApiResponse r = call("GET", "/api/v1/files/" + kA);
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(json::parse(r.body)["error"]["code"], "TransientError");
  r = call("POST", "/api/v1/files/lookup", R"({"hashes":[")" + kA + "\"]}");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(api_->store_errors(), 2u);
  ASSERT_EQ(sqlite3_exec(db, "ALTER TABLE hidden RENAME TO dispositions", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(call("GET", "/api/v1/files/" + kA).status, 200u);
}

TEST_F(ApiTest, AdminTargetsAreTheAdminPrefix) {
  EXPECT_TRUE(is_admin_target("/api/v1/admin/faults"));
  EXPECT_TRUE(is_admin_target("/api/v1/admin/files/x?y"));
  EXPECT_FALSE(is_admin_target("/api/v1/files/lookup"));
  EXPECT_FALSE(is_admin_target("/api/v1/admin"));
}
