#include "control/cloud/api.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>

#include <boost/asio/io_context.hpp>
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

namespace {

// multipart/form-data with one file field "sample".
std::string form(std::string_view content, std::string_view filename = "a.doc") {
  return "--B\r\nContent-Disposition: form-data; name=\"sample\"; filename=\"" + std::string(filename) +
         "\"\r\n\r\n" + std::string(content) + "\r\n--B--\r\n";
}

// Scores every file 5: these tests never wait for an analysis to end (analyses_test.cpp does).
class FixedEngine final : public AnalysisEngine {
 public:
  AnalysisResult analyse(std::span<const uint8_t>, std::string_view) override {
    AnalysisResult r;
    r.score = 5;
    return r;
  }
  std::string name() const override { return "fixed/1"; }
};

// An Api with the analysis side: analyses take a minute (samples stay in wait), 1 MiB samples, a
// daily limit of 2.
class ApiSamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-cloud-api-samples-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    store_ = std::make_unique<Store>(root_);
    pool_ = std::make_unique<ScanPool>(io_, engine_, 1);
    AnalysisConfig a;
    a.duration = std::chrono::seconds(60);
    a.max_sample_bytes = 1 << 20;
    a.daily_samples = 2;
    a.samples_dir = root_ / "samples";
    analyses_ = std::make_unique<Analyses>(io_, *store_, *pool_, a, [this] { return wall_; });
    analyses_->start();
    ApiConfig c;
    c.api_keys = {"key", "key2"};
    c.admin_key = "admin";
    api_ = std::make_unique<Api>(c, *store_, faults_, [this] { return wall_; }, [] { return Quota::Clock::now(); },
                                 analyses_.get());
  }
  void TearDown() override {
    analyses_->stop();
    pool_.reset();
    api_.reset();
    analyses_.reset();
    store_.reset();
    std::filesystem::remove_all(root_);
  }

  ApiResponse call(std::string_view method, std::string_view target, std::string_view body = {},
                   std::string_view key = "key", std::optional<std::string_view> type = "multipart/form-data; boundary=B") {
    ApiRequest r;
    r.method = method;
    r.target = target;
    r.body = body;
    r.x_apikey = key;
    r.content_type = type;
    r.client = "192.0.2.1";
    return api_->handle(r);
  }

  static json error(const std::string& code, const std::string& message) {
    return json{{"error", {{"code", code}, {"message", message}}}};
  }

  std::filesystem::path root_;
  boost::asio::io_context io_;
  FixedEngine engine_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<ScanPool> pool_;
  std::unique_ptr<Analyses> analyses_;
  Faults faults_;
  std::unique_ptr<Api> api_;
  int64_t wall_ = 1796210000;  // 2026-12-02T11:13:20Z
};

}  // namespace

TEST_F(ApiSamplesTest, SubmitThenReadBack) {
  const ApiResponse r = call("POST", "/api/v1/samples", form("abc", "dir/x.doc"));
  ASSERT_EQ(r.status, 201u) << r.body;
  const json s = json::parse(r.body)["data"];
  const std::string id = s["id"];
  EXPECT_EQ(r.body, R"({"data":{"id":")" + id +
                        R"(","sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","filename":"x.doc",)"
                        R"("size":3,"state":"wait","submitted_at":"2026-12-02T11:13:20Z","completed_at":null}})");
  EXPECT_EQ(call("POST", "/api/v1/samples", form("abc", "other")).body, r.body);
  EXPECT_EQ(call("POST", "/api/v1/samples", form("abc", "other")).status, 200u);
  EXPECT_EQ(call("GET", "/api/v1/samples/" + id).body, r.body);
  EXPECT_EQ(call("GET", "/api/v1/samples/" + id + "/state").body, R"({"data":{"id":")" + id + R"(","state":"wait"}})");
  const auto list = call("GET", "/api/v1/samples?sha256=BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
  EXPECT_EQ(json::parse(list.body)["data"], json::array({s}));
  const auto threat = call("GET", "/api/v1/samples/" + id + "/threat");
  EXPECT_EQ(threat.status, 400u);
  EXPECT_EQ(json::parse(threat.body), error("NotAvailableYet", "analysis not complete: state wait"));
  // still wanted while it has no result: an appliance searches first and finds the sample
  const auto file = json::parse(call("GET", "/api/v1/files/" + s["sha256"].get<std::string>()).body);
  EXPECT_EQ(file["data"]["upload_wanted"], true);
}

TEST_F(ApiSamplesTest, ThreatOfFinishedSamples) {
  const ApiResponse r = call("POST", "/api/v1/samples", form("abc"));
  const std::string id = json::parse(r.body)["data"]["id"];
  store_->finish_sample(id, SampleState::succ, SampleResult{93, "malicious", "Bad.Doc", R"({"findings":[1,2]})"},
                        AnalysisDisposition{Disposition::malicious, "Bad.Doc", 93}, wall_ + 5);
  EXPECT_EQ(call("GET", "/api/v1/samples/" + id + "/threat").body,
            R"({"data":{"score":93,"verdict":"malicious","threat_name":"Bad.Doc","report":{"findings":[1,2]}}})");
  EXPECT_EQ(json::parse(call("GET", "/api/v1/samples/" + id).body)["data"]["completed_at"], "2026-12-02T11:13:25Z");
  const ApiResponse r2 = call("POST", "/api/v1/samples", form("def"));
  const std::string id2 = json::parse(r2.body)["data"]["id"];
  store_->finish_sample(id2, SampleState::fail, SampleResult{std::nullopt, "failed", std::nullopt, R"({"error":"x"})"},
                        std::nullopt, wall_);
  EXPECT_EQ(call("GET", "/api/v1/samples/" + id2 + "/threat").body,
            R"({"data":{"score":null,"verdict":"failed","threat_name":null,"report":{"error":"x"}}})");
}

TEST_F(ApiSamplesTest, LimitsAndTheDailyLimit) {
  EXPECT_EQ(call("GET", "/api/v1/limits").body,
            R"({"data":{"max_sample_bytes":1048576,"daily_samples":2,"submissions_available":2,"submissions-available":2}})");
  EXPECT_EQ(call("POST", "/api/v1/samples", form("1")).status, 201u);
  EXPECT_EQ(call("POST", "/api/v1/samples", form("2")).status, 201u);
  const ApiResponse r = call("POST", "/api/v1/samples", form("3"));
  EXPECT_EQ(r.status, 429u);
  EXPECT_EQ(r.retry_after, 46000u);
  EXPECT_EQ(json::parse(r.body), error("QuotaExceededError",
                                       "daily sample limit of 2 reached for this API key; retry after 00:00 UTC (in 46000 s)"));
  EXPECT_EQ(call("GET", "/api/v1/limits").body,
            R"({"data":{"max_sample_bytes":1048576,"daily_samples":2,"submissions_available":0,"submissions-available":0}})");
  EXPECT_EQ(call("POST", "/api/v1/samples", form("3"), "key2").status, 201u);
  EXPECT_EQ(call("POST", "/api/v1/samples", form("1")).status, 200u);
}

TEST_F(ApiSamplesTest, Refusals) {
  const std::string big(1048577, 'x');
  EXPECT_EQ(json::parse(call("POST", "/api/v1/samples", form(big)).body),
            error("PayloadTooLargeError", "the sample is larger than the maximum sample size, 1048576 bytes (1 MiB)"));
  EXPECT_EQ(call("POST", "/api/v1/samples", form(std::string(1048576, 'x'))).status, 201u);
  EXPECT_EQ(json::parse(call("POST", "/api/v1/samples", form("")).body),
            error("InvalidArgumentError", "the sample is empty"));
  EXPECT_EQ(json::parse(call("POST", "/api/v1/samples", form("x"), "key", std::nullopt).body),
            error("BadRequestError", "the request must be multipart/form-data (Content-Type is '')"));
  EXPECT_EQ(json::parse(call("GET", "/api/v1/samples?sha256=1").body),
            error("InvalidArgumentError", "'1' is not a SHA-256 (64 hex digits)"));
  EXPECT_EQ(json::parse(call("GET", "/api/v1/samples/" + std::string(32, 'a') + "/threat").body),
            error("NotFoundError", "no such sample: '" + std::string(32, 'a') + "'"));
  EXPECT_EQ(call("GET", "/api/v1/samples//state").status, 404u);
  EXPECT_EQ(call("POST", "/api/v1/samples", form("x"), "wrong").status, 401u);
}

TEST_F(ApiSamplesTest, BodyLimitOfUploadsOnly) {
  const auto l = api_->body_limit("POST", "/api/v1/samples?x=1");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->bytes, (1u << 20) + 64 * 1024);
  EXPECT_EQ(l->refusal.status, 413u);
  EXPECT_FALSE(api_->body_limit("GET", "/api/v1/samples"));
  EXPECT_FALSE(api_->body_limit("POST", "/api/v1/files/lookup"));
}

TEST_F(ApiTest, NoAnalysisSideNoSampleEndpoints) {
  for (const char* target : {"/api/v1/samples", "/api/v1/limits", "/api/v1/samples/0/state"})
    EXPECT_EQ(call("GET", target).status, 404u) << target;
  EXPECT_FALSE(api_->body_limit("POST", "/api/v1/samples"));
}
