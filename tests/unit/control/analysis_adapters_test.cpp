// control/analysis_adapters: the requests each kind sends and the strictness of every answer read
// (pure functions: no process, no socket).
#include "control/analysis_adapters.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace sluice::control::analysis {
namespace {

using PK = Parsed::Kind;
const std::string kHex = std::string(64, 'a');
const std::string kId = "0123456789abcdef0123456789abcdef";

std::string sample(const std::string& state, const std::string& sha = kHex, const nlohmann::json& id = kId) {
  return nlohmann::json{{"id", id}, {"sha256", sha}, {"filename", "x.doc"}, {"size", 10}, {"state", state},
                        {"submitted_at", "2026-12-02T10:11:12Z"}, {"completed_at", nullptr}}
      .dump();
}

TEST(AnalysisAdapters, Requests) {
  auto bytes = std::make_shared<const std::string>("abc");
  Call c = sluice_submit(bytes, "a.doc");
  EXPECT_EQ(c.method, boost::beast::http::verb::post);
  EXPECT_EQ(c.target, "/api/v1/samples");
  ASSERT_TRUE(c.upload);
  EXPECT_EQ(c.upload->field, "sample");
  EXPECT_EQ(c.upload->bytes, bytes);  // shared, not copied
  EXPECT_EQ(cape_submit(bytes, "a.doc").upload->field, "file");
  EXPECT_EQ(cape_submit(bytes, "a.doc").target, "/apiv2/tasks/create/file/");
  EXPECT_EQ(sluice_search(kHex).target, "/api/v1/samples?sha256=" + kHex);
  EXPECT_EQ(cape_search(kHex).target, "/apiv2/tasks/search/sha256/" + kHex + "/");
  EXPECT_EQ(sluice_state(kId).target, "/api/v1/samples/" + kId + "/state");
  EXPECT_EQ(sluice_threat(kId).target, "/api/v1/samples/" + kId + "/threat");
  EXPECT_EQ(cape_status("12").target, "/apiv2/tasks/status/12/");
  EXPECT_EQ(cape_report("12").target, "/apiv2/tasks/get/report/12/");
  EXPECT_EQ(sluice_limits().target, "/api/v1/limits");
}

TEST(AnalysisAdapters, SampleIds) {
  EXPECT_TRUE(valid_sample_id(Kind::sluice, kId));
  EXPECT_TRUE(valid_sample_id(Kind::sluice, "a-b_c.d"));
  EXPECT_FALSE(valid_sample_id(Kind::sluice, ""));
  EXPECT_FALSE(valid_sample_id(Kind::sluice, ".."));
  EXPECT_FALSE(valid_sample_id(Kind::sluice, "a/b"));
  EXPECT_FALSE(valid_sample_id(Kind::sluice, "a?b"));
  EXPECT_FALSE(valid_sample_id(Kind::sluice, std::string(129, 'a')));
  EXPECT_TRUE(valid_sample_id(Kind::cape, "1"));
  EXPECT_TRUE(valid_sample_id(Kind::cape, "999999999999999999"));
  EXPECT_FALSE(valid_sample_id(Kind::cape, "0"));
  EXPECT_FALSE(valid_sample_id(Kind::cape, "012"));
  EXPECT_FALSE(valid_sample_id(Kind::cape, "1x"));
  EXPECT_FALSE(valid_sample_id(Kind::cape, "1000000000000000000"));
}

TEST(AnalysisAdapters, CapeStatesMapOntoSluices) {
  const std::pair<const char*, SampleState> map[] = {
      {"pending", SampleState::wait},          {"recovered", SampleState::wait},
      {"distributed", SampleState::prep},      {"running", SampleState::run},
      {"completed", SampleState::proc},        {"distributed_completed", SampleState::proc},
      {"reported", SampleState::succ},         {"failed_analysis", SampleState::fail},
      {"failed_processing", SampleState::fail}, {"failed_reporting", SampleState::fail},
      {"banned", SampleState::fail}};
  for (const auto& [status, state] : map) EXPECT_EQ(cape_state(status), state) << status;
  EXPECT_FALSE(cape_state("Reported"));
  EXPECT_FALSE(cape_state(""));
}

TEST(AnalysisAdapters, SluiceSubmitAndSearch) {
  Parsed p = parse_sluice_submit(201, R"({"data":)" + sample("wait") + "}", "", kHex);
  ASSERT_EQ(p.kind, PK::answered) << p.detail;
  EXPECT_EQ(p.id, kId);
  EXPECT_FALSE(p.already_known);
  p = parse_sluice_submit(200, R"({"data":)" + sample("succ", std::string(64, 'A')) + "}", "", kHex);
  ASSERT_EQ(p.kind, PK::answered) << p.detail;  // either case
  EXPECT_TRUE(p.already_known);
  EXPECT_EQ(p.state, SampleState::succ);
  p = parse_sluice_submit(201, R"({"data":)" + sample("wait", std::string(64, 'b')) + "}", "", kHex);
  EXPECT_EQ(p.kind, PK::failed);
  EXPECT_EQ(p.detail, "bad answer: sample " + kId + " has sha256 '" + std::string(64, 'b') + "' where " + kHex +
                          " was asked");
  EXPECT_EQ(parse_sluice_submit(201, R"({"data":)" + sample("done") + "}", "", kHex).detail,
            "bad answer: sample " + kId + " state '\"done\"'");
  EXPECT_EQ(parse_sluice_submit(201, R"({"data":)" + sample("wait", kHex, "../x") + "}", "", kHex).detail,
            "bad answer: sample id '\"../x\"'");
  p = parse_sluice_submit(201, R"({"data":)" + sample("wait", kHex, 42) + "}", "", kHex);
  EXPECT_EQ(p.id, "42");  // a number is an id too
  p = parse_sluice_submit(429, R"({"error":{"code":"QuotaExceededError","message":"daily sample limit of 5 reached"}})",
                          "3600", kHex);
  EXPECT_EQ(p.kind, PK::sample_limit);
  EXPECT_EQ(p.retry_after, std::chrono::seconds(3600));
  p = parse_sluice_submit(429, R"({"error":{"code":"QuotaExceededError","message":"quota of 3 requests per minute"}})",
                          "20", kHex);
  EXPECT_EQ(p.kind, PK::rate_limited);
  EXPECT_EQ(p.detail, "HTTP 429 QuotaExceededError: quota of 3 requests per minute (retry after 20 s)");
  EXPECT_EQ(parse_sluice_submit(400, R"({"error":{"code":"InvalidArgumentError","message":"the sample is larger than the maximum"}})",
                                "", kHex)
                .kind,
            PK::too_large);
  p = parse_sluice_submit(413, R"j({"error":{"code":"PayloadTooLargeError","message":"the sample is larger than the maximum sample size, 1048576 bytes (1 MiB)"}})j",
                          "", kHex);
  EXPECT_EQ(p.kind, PK::too_large);
  EXPECT_EQ(p.detail, "HTTP 413 PayloadTooLargeError: the sample is larger than the maximum sample size, 1048576 bytes (1 MiB)");
  p = parse_sluice_submit(400, R"({"error":{"code":"BadRequestError","message":"no sample part"}})", "", kHex);
  EXPECT_EQ(p.kind, PK::failed);
  EXPECT_FALSE(p.retryable);
  EXPECT_EQ(p.detail, "HTTP 400 BadRequestError: no sample part");
  EXPECT_TRUE(parse_sluice_submit(503, R"({"error":{"code":"TransientError","message":"queue full"}})", "5", kHex)
                  .retryable);

  p = parse_sluice_search(200, R"({"data":[]})", "", kHex);
  ASSERT_EQ(p.kind, PK::answered);
  EXPECT_FALSE(p.found);
  p = parse_sluice_search(200, R"({"data":[)" + sample("fail", kHex, "a1") + "," + sample("run", kHex, "a2") + "]}", "",
                          kHex);
  ASSERT_EQ(p.kind, PK::answered) << p.detail;
  EXPECT_TRUE(p.found);
  EXPECT_EQ(p.id, "a2");  // one that did not fail
  EXPECT_EQ(p.state, SampleState::run);
  EXPECT_EQ(parse_sluice_search(200, R"({"data":{}})", "", kHex).detail, "bad answer: data is not an array");
  EXPECT_EQ(parse_sluice_search(200, R"({"dat":[]})", "", kHex).detail, "bad answer: no \"data\"");
}

TEST(AnalysisAdapters, SluiceStateThreatAndLimits) {
  Parsed p = parse_sluice_state(200, R"({"data":{"id":")" + kId + R"(","state":"proc"}})", "", kId);
  ASSERT_EQ(p.kind, PK::answered) << p.detail;
  EXPECT_EQ(p.state, SampleState::proc);
  EXPECT_EQ(parse_sluice_state(200, R"({"data":{"id":"other","state":"proc"}})", "", kId).detail,
            "bad answer: state of sample 'other' where " + kId + " was asked");
  EXPECT_EQ(parse_sluice_state(404, R"({"error":{"code":"NotFoundError","message":"no such sample"}})", "", kId).kind,
            PK::not_found);

  p = parse_sluice_threat(200,
                          R"({"data":{"score":92,"verdict":"malicious","threat_name":"Eicar","report":{"engine":"x"}}})",
                          "");
  ASSERT_EQ(p.kind, PK::answered) << p.detail;
  EXPECT_EQ(p.score, 92);
  EXPECT_EQ(p.verdict, Verdict::malicious);
  EXPECT_EQ(p.threat_name, "Eicar");
  EXPECT_EQ(p.report, R"({"engine":"x"})");
  p = parse_sluice_threat(200, R"({"data":{"score":null,"verdict":"failed","report":{"error":"scan failed"}}})", "");
  ASSERT_EQ(p.kind, PK::answered) << p.detail;
  EXPECT_FALSE(p.score);
  EXPECT_EQ(p.verdict, Verdict::failed);
  EXPECT_EQ(p.threat_name, "");
  EXPECT_EQ(parse_sluice_threat(200, R"({"data":{"score":5,"verdict":"failed","report":{}}})", "").detail,
            "bad answer: score '5' for a failed analysis");
  EXPECT_EQ(parse_sluice_threat(200, R"({"data":{"score":101,"verdict":"clean","report":{}}})", "").detail,
            "bad answer: score '101' is not 0-100");
  EXPECT_EQ(parse_sluice_threat(200, R"({"data":{"score":null,"verdict":"clean","report":{}}})", "").detail,
            "bad answer: score 'null' is not 0-100");
  p = parse_sluice_threat(200, R"({"data":{"score":55,"verdict":"suspicious","threat_name":null,"report":{}}})", "");
  EXPECT_EQ(p.verdict, Verdict::suspicious);
  EXPECT_EQ(p.score, 55);
  EXPECT_EQ(parse_sluice_threat(200, R"({"data":{"score":1,"verdict":"benign","report":{}}})", "").detail,
            "bad answer: verdict '\"benign\"'");
  EXPECT_EQ(parse_sluice_threat(200, R"({"data":{"score":1,"verdict":"clean"}})", "").detail,
            "bad answer: report missing or not an object");
  EXPECT_EQ(parse_sluice_threat(400, R"({"error":{"code":"NotAvailableYet","message":"analysis not complete"}})", "")
                .kind,
            PK::not_ready);

  p = parse_sluice_limits(200, R"({"data":{"max_sample_bytes":1048576,"daily_samples":10,"submissions-available":3}})",
                          "");
  ASSERT_EQ(p.kind, PK::answered) << p.detail;
  EXPECT_EQ(p.max_sample_bytes, 1048576u);
  EXPECT_EQ(p.submissions_available, 3u);
  p = parse_sluice_limits(200, R"({"data":{"max_sample_bytes":1048576,"submissions_available":4}})", "");
  ASSERT_EQ(p.kind, PK::answered) << p.detail;  // either spelling; daily_samples is not read
  EXPECT_EQ(p.submissions_available, 4u);
  p = parse_sluice_limits(200, R"({"data":{"max_sample_bytes":1048576,"daily_samples":null,"submissions-available":null}})",
                          "");
  ASSERT_EQ(p.kind, PK::answered) << p.detail;
  EXPECT_FALSE(p.submissions_available);  // no daily limit
  EXPECT_EQ(parse_sluice_limits(200, R"({"data":{"max_sample_bytes":1048576,"daily_samples":null}})", "").detail,
            "bad answer: submissions-available missing or not a count or null");
  EXPECT_EQ(parse_sluice_limits(200, R"({"data":{"max_sample_bytes":1048576,"submissions-available":-2}})", "").detail,
            "bad answer: submissions-available missing or not a count or null");
  EXPECT_EQ(parse_sluice_limits(503, R"({"error":{"code":"TransientError","message":"store"}})", "").retryable, true);
  EXPECT_EQ(parse_sluice_limits(200, R"({"data":{"max_sample_bytes":-1}})", "").detail,
            "bad answer: max_sample_bytes missing or not a positive count");
}

TEST(AnalysisAdapters, TheReportIsBounded) {
  nlohmann::json report = {{"engine", "clamav"}, {"big", std::string(100 * 1024, 'x')}, {"score", 3}};
  Parsed p = parse_sluice_threat(
      200, nlohmann::json{{"data", {{"score", 3}, {"verdict", "clean"}, {"report", report}}}}.dump(), "");
  ASSERT_EQ(p.kind, PK::answered) << p.detail;
  EXPECT_TRUE(p.report_truncated);
  EXPECT_EQ(p.report, R"({"engine":"clamav","score":3,"truncated":true})");
}

TEST(AnalysisAdapters, CapeErrorsWithHttp200) {
  // A success may say "error": [] (CAPE's per-file error list) or false: not an error.
  Parsed p = parse_cape_submit(200, R"({"error":[],"data":{"task_ids":[7,8],"message":"Task IDs 7, 8"},"errors":[]})", "");
  ASSERT_EQ(p.kind, PK::answered) << p.detail;
  EXPECT_EQ(p.id, "7");  // the first of an archive's tasks
  p = parse_cape_submit(200, R"({"error":true,"error_value":"Error adding task to database"})", "");
  EXPECT_EQ(p.kind, PK::failed);
  EXPECT_FALSE(p.retryable);
  EXPECT_EQ(p.detail, "CAPE error: Error adding task to database");
  EXPECT_EQ(parse_cape_submit(200, R"({"error":true})", "").detail, "CAPE error: (no error_value)");
  EXPECT_EQ(parse_cape_submit(200, R"({"error":[],"data":{"task_ids":[]}})", "").detail, "bad answer: no data.task_ids");
  EXPECT_EQ(parse_cape_submit(200, R"({"error":[],"data":{"task_ids":[-3]}})", "").detail, "bad answer: task id '-3'");
  EXPECT_EQ(parse_cape_status(200, R"({"error":true,"error_value":"Task does not exist"})", "").kind, PK::not_found);
  EXPECT_EQ(parse_cape_status(404, R"({"error":true,"error_value":"Task not found"})", "").kind, PK::not_found);
  p = parse_cape_status(200, R"({"error":false,"data":"running"})", "");
  EXPECT_EQ(p.state, SampleState::run);
  EXPECT_EQ(parse_cape_status(200, R"({"error":false,"data":3})", "").detail, "bad answer: status '3'");
  EXPECT_EQ(parse_cape_report(200, R"({"error":true,"error_value":"Task is still being analyzed"})", "").kind,
            PK::not_ready);
  p = parse_cape_report(200, R"({"error":true,"error_value":"Task failed"})", "");
  EXPECT_EQ(p.kind, PK::answered);
  EXPECT_EQ(p.verdict, Verdict::failed);
  EXPECT_EQ(parse_cape_search(200, R"({"data":[],"error":false})", "", kHex).found, false);
  EXPECT_EQ(parse_cape_search(200, R"({"error":[],"data":[{"id":3,"status":"reported","sample":{"sha256":")" +
                                       std::string(64, 'c') + R"("}}]})",
                              "", kHex)
                .detail,
            "bad answer: task 3 is of sha256 '" + std::string(64, 'c') + "' where " + kHex + " was asked");
  p = parse_cape_search(429, R"({"detail":"Request was throttled. Expected available in 12 seconds."})", "12", kHex);
  EXPECT_EQ(p.kind, PK::rate_limited);
  EXPECT_EQ(p.retry_after, std::chrono::seconds(12));
  EXPECT_EQ(parse_cape_submit(413, "<html>413</html>", "").kind, PK::too_large);
}

TEST(AnalysisAdapters, CapeReportThreatNames) {
  Parsed p = parse_cape_report(200, R"({"malscore":10,"malstatus":"Malicious","detections":"AgentTesla"})", "");
  ASSERT_EQ(p.kind, PK::answered) << p.detail;
  EXPECT_EQ(p.threat_name, "AgentTesla");  // older releases: a name
  EXPECT_EQ(p.score, 100);
  p = parse_cape_report(200, R"({"malscore":9.0,"malstatus":"Malicious","detections":[{"family":"Emotet","details":[]}]})",
                        "");
  EXPECT_EQ(p.threat_name, "Emotet");
  p = parse_cape_report(200, R"({"malscore":9.0,"malstatus":"Malicious","malfamily":"Qakbot"})", "");
  EXPECT_EQ(p.threat_name, "Qakbot");
  EXPECT_EQ(parse_cape_report(200, R"({"malscore":9.0,"malstatus":"Evil"})", "").detail, "bad answer: malstatus 'Evil'");
  EXPECT_EQ(parse_cape_report(200, R"({"malstatus":"Clean"})", "").detail, "bad answer: malscore missing is not 0-10");
  EXPECT_EQ(parse_cape_report(200, R"({"malscore":"5"})", "").detail, "bad answer: malscore '\"5\"' is not 0-10");
  // Only the summary's members are built: the rest of a report is skipped while parsing.
  p = parse_cape_report(200, R"({"malscore":1.0,"malstatus":"Clean","behavior":{"processes":[1,2,3]},
                                "info":{"id":4,"machine":{"name":"w"},"duration":9},
                                "signatures":[{"name":"s","severity":2,"data":[1,2]}]})",
                        "");
  ASSERT_EQ(p.kind, PK::answered) << p.detail;
  EXPECT_EQ(p.report,
            R"({"info":{"duration":9,"id":4},"malscore":1.0,"malstatus":"Clean","signatures":[{"name":"s","severity":2}]})");
}

}  // namespace
}  // namespace sluice::control::analysis
