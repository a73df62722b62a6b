// control/report: the report page's figures counted from the records, in time buckets, and the
// malicious files seen most with their latest messages.
#include "control/report.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace sluice::control {
namespace {

using namespace sluice::records;

constexpr uint32_t kInstance = 0x6757a1b2;
constexpr int64_t kT0 = 1765000020000;  // ms, 20 s into a minute

FlowIdentity flow(uint64_t id) {
  FlowIdentity f;
  f.flow_id = id;
  return f;
}

void seen_verdict(ReportCollector& r, uint64_t id, Disposition d, int64_t at, bool final_verdict = false,
                  uint64_t files = 1) {
  VerdictRecord v;
  v.flow = flow(id);
  v.disposition = d;
  v.final_verdict = final_verdict;
  v.files = files;
  r.on_record(&v, sizeof v, at);
}

void seen_file(ReportCollector& r, uint64_t id, uint8_t sha, Reputation rep, const char* name, int64_t at,
               const char* threat = "") {
  FileRecord f;
  f.flow = flow(id);
  f.hashed = true;
  std::memset(f.sha256, sha, 32);
  f.filename.set(name);
  f.verdict.reputation = rep;
  f.verdict.threat_name.set(threat);
  r.on_record(&f, sizeof f, at);
}

void seen_message(ReportCollector& r, uint64_t id, uint64_t attachments, const char* subject, int64_t at) {
  MessageRecord m;
  m.flow = flow(id);
  m.summary.present = true;
  m.summary.attachments = attachments;
  m.subject.set(subject);
  m.has_subject = true;
  m.mail_from.set("alice@example.org");
  m.message_id.set(("<" + std::to_string(id) + "@example.org>").c_str());
  m.has_message_id = true;
  r.on_record(&m, sizeof m, at);
}

TEST(ReportTest, MessagesAndFilesPerBucketAndInAll) {
  ReportCollector r({}, kInstance);
  seen_verdict(r, 1, Disposition::clean, kT0);
  seen_verdict(r, 2, Disposition::malicious, kT0 + 1000);
  seen_verdict(r, 2, Disposition::clean, kT0 + 1000, /*final_verdict=*/true);  // counted once, by its first
  seen_verdict(r, 3, Disposition::pending, kT0 + 60000);                       // the next minute
  seen_message(r, 4, 0, "no files", kT0 + 60000);
  seen_verdict(r, 4, Disposition::clean, kT0 + 60000, false, /*files=*/0);  // no_files, not clean
  seen_message(r, 1, 1, "one file", kT0);
  seen_file(r, 1, 0x11, Reputation::clean, "a.pdf", kT0);
  seen_file(r, 2, 0x22, Reputation::malicious, "b.exe", kT0 + 1000, "Win.Test");
  seen_file(r, 3, 0x33, Reputation::none, "c.bin", kT0 + 60000);
  FileRecord other;  // the other reading of an ambiguous stream: not counted
  other.reading = Reading::split;
  other.verdict.reputation = Reputation::clean;
  r.on_record(&other, sizeof other, kT0);

  const Json j = r.report(kT0 + 61000, 3600);
  EXPECT_EQ(j["bucket_s"], 60);
  ASSERT_EQ(j["series"].size(), 60u);
  const Json& last = j["series"][59];
  const Json& before = j["series"][58];
  EXPECT_EQ(last["start"], rfc3339((kT0 + 60000 - (kT0 + 60000) % 60000) * 1000));
  EXPECT_EQ(before["messages"], (Json{{"clean", 1}, {"malicious", 1}, {"unscannable", 0}, {"pending", 0}, {"no_files", 0}}));
  EXPECT_EQ(last["messages"], (Json{{"clean", 0}, {"malicious", 0}, {"unscannable", 0}, {"pending", 1}, {"no_files", 1}}));
  EXPECT_EQ(before["files"], (Json{{"clean", 1}, {"malicious", 1}, {"unknown", 0}, {"not_looked_up", 0}}));
  EXPECT_EQ(last["files"]["not_looked_up"], 1);
  EXPECT_EQ(j["series"][0]["messages"]["clean"], 0);
  EXPECT_EQ(j["totals"]["messages"],
            (Json{{"clean", 1}, {"malicious", 1}, {"unscannable", 0}, {"pending", 1}, {"no_files", 1}}));
  EXPECT_EQ(j["totals"]["files"], (Json{{"clean", 1}, {"malicious", 1}, {"unknown", 0}, {"not_looked_up", 1}}));
  // A day later the ring's buckets are other minutes: the window shows nothing, the totals stay.
  const Json later = r.report(kT0 + 86400000 + 1000, 86400);
  ASSERT_EQ(later["series"].size(), 1440u);
  for (const auto& b : later["series"]) EXPECT_EQ(b["messages"]["clean"], 0);
  EXPECT_EQ(later["totals"]["messages"]["clean"], 1);
}

TEST(ReportTest, TopMaliciousFilesWithTheirLatestMessages) {
  ReportSettings s;
  s.max_files = 2;
  s.recent_per_file = 2;
  ReportCollector r(s, kInstance);
  for (uint64_t id = 1; id <= 3; ++id) {
    seen_message(r, id, 1, ("mail " + std::to_string(id)).c_str(), kT0);
    seen_file(r, id, 0xaa, Reputation::malicious, id == 1 ? "a.exe" : "a2.exe", kT0 + int64_t(id), "Win.A");
  }
  seen_file(r, 3, 0xaa, Reputation::malicious, "a.exe", kT0 + 3);  // twice in one message: one message
  seen_file(r, 4, 0xbb, Reputation::malicious, "b.exe", kT0 + 10, "Win.B");
  Json j = r.report(kT0 + 20, 3600);
  ASSERT_EQ(j["top_malicious"].size(), 2u);
  const Json& a = j["top_malicious"][0];
  EXPECT_EQ(a["sha256"], std::string(64, 'a'));
  EXPECT_EQ(a["threat_name"], "Win.A");
  EXPECT_EQ(a["messages"], 3);
  EXPECT_EQ(a["filenames"], (std::vector<std::string>{"a.exe", "a2.exe"}));
  ASSERT_EQ(a["recent"].size(), 2u);  // newest first
  EXPECT_EQ(a["recent"][0]["ref"], "6757a1b2-3-0");
  EXPECT_EQ(a["recent"][0]["subject"], "mail 3");
  EXPECT_EQ(a["recent"][0]["message_id"], "<3@example.org>");
  EXPECT_EQ(a["recent"][1]["ref"], "6757a1b2-2-0");
  EXPECT_EQ(j["top_malicious"][1]["sha256"], std::string(64, 'b'));
  EXPECT_FALSE(j["top_malicious"][1]["recent"][0].contains("subject"));  // no envelope seen: the reference only
  // A third file: the one seen longest ago (aa, last at +3) is forgotten, not the biggest.
  seen_file(r, 5, 0xcc, Reputation::malicious, "c.exe", kT0 + 30);
  j = r.report(kT0 + 40, 3600);
  EXPECT_EQ(j["malicious_files_tracked"], 2);
  ASSERT_EQ(j["top_malicious"].size(), 2u);
  EXPECT_EQ(j["top_malicious"][0]["sha256"], std::string(64, 'c'));  // one message each: latest first
  EXPECT_EQ(j["top_malicious"][1]["sha256"], std::string(64, 'b'));
}

TEST(ReportTest, ThroughputFromThePortsOverTheLastTenSeconds) {
  ReportCollector r({}, kInstance);
  r.sample_ports(1000, 10, kT0);  // counted from 0 at start
  for (int i = 1; i <= 20; ++i) {
    if (i == 15) seen_verdict(r, 1, Disposition::clean, kT0 + i * 1000);
    r.sample_ports(1000 + uint64_t(i) * 125000, 10 + uint64_t(i) * 100, kT0 + i * 1000);  // 1 Mbit/s
  }
  const Json j = r.report(kT0 + 20000, 3600);
  EXPECT_NEAR(j["throughput"]["rx_bits_per_s"].get<double>(), 1e6, 1);
  EXPECT_NEAR(j["throughput"]["messages_per_s"].get<double>(), 0.1, 1e-9);
  EXPECT_EQ(j["totals"]["rx_bytes"], 1000 + 20u * 125000);
  EXPECT_EQ(j["totals"]["rx_packets"], 2010);
  uint64_t in_series = 0;
  for (const auto& b : j["series"]) in_series += b["rx_bytes"].get<uint64_t>();
  EXPECT_EQ(in_series, 1000 + 20u * 125000);
  // Counters that went back (a port restarted): no negative traffic.
  r.sample_ports(0, 0, kT0 + 21000);
  EXPECT_EQ(r.report(kT0 + 21000, 3600)["totals"]["rx_bytes"], 1000 + 20u * 125000);
}

TEST(ReportTest, AnalysisSummary) {
  EXPECT_TRUE(ReportCollector::analysis_summary(Json()).is_null());
  const Json a = ReportCollector::analysis_summary(
      {{"submitted", 3}, {"completed", 2}, {"malicious", 1}, {"pending_submissions", 1}, {"messages_waiting", 2},
       {"not_sent", {{"type", 4}, {"size", 1}}}, {"quarantine", {{"held", 2}}}});
  EXPECT_EQ(a["submitted"], 3);
  EXPECT_EQ(a["not_sent"], 5);
  EXPECT_EQ(a["quarantine_held"], 2);
  EXPECT_EQ(a["expired"], 0);
}

}  // namespace
}  // namespace sluice::control
