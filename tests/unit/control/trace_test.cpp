// control/trace: the lines of each workflow step, the rotated log, and the search that gathers a
// message's lines back (by reference, Message-ID, message SHA-256, flow id and transaction),
// with the steps of the analysis samples it waited on.
#include "control/trace.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline/archive.h"
#include "pipeline/file_type.h"

namespace sluice::control {
namespace {

using namespace sluice::records;
namespace fs = std::filesystem;

constexpr uint32_t kInstance = 0x6757a1b2;
constexpr int64_t kTime = 1700000000036000;  // 2023-11-14T22:13:20.036000Z

FlowIdentity flow(uint64_t id) {
  FlowIdentity f;
  f.flow_id = id;
  const uint8_t c[4] = {198, 51, 100, 1}, s[4] = {192, 0, 2, 25};
  std::memcpy(f.client_ip, c, 4);
  std::memcpy(f.server_ip, s, 4);
  f.client_port = 40000;
  f.server_port = 25;
  return f;
}

void fill(uint8_t (&d)[32], uint8_t v) { std::memset(d, v, 32); }
std::array<uint8_t, 32> arr(uint8_t v) {
  std::array<uint8_t, 32> a;
  a.fill(v);
  return a;
}
const std::string kAA(64, 'a'), kBB(64, 'b'), kCC(64, 'c'), kMM(64, 'd');

MessageRecord message(uint64_t id, uint64_t transaction, const char* message_id, const char* subject) {
  MessageRecord m;
  m.timestamp_us = kTime + 500;
  m.flow = flow(id);
  m.transaction = transaction;
  m.mail_from.set("alice@example.org");
  const char rcpts[] = "bob@example.net\0carol@example.net";
  std::memcpy(m.rcpts, rcpts, sizeof rcpts);
  m.rcpt_bytes = sizeof rcpts;
  m.rcpt_kept = m.rcpt_count = 2;
  fill(m.sha256, 0xdd);
  m.size = 4096;
  m.has_subject = true;
  m.subject.set(subject);
  m.has_message_id = true;
  m.message_id.set(message_id);
  m.summary.present = true;
  m.summary.attachments = 1;
  m.summary.mime_anomalies = 1u << static_cast<unsigned>(pipeline::MimeAnomaly::bare_lf);
  m.server_reply = 250;
  return m;
}

FileRecord file(uint64_t id, uint64_t transaction, uint8_t sha, Reputation rep, uint8_t source) {
  FileRecord f;
  f.timestamp_us = kTime;
  f.flow = flow(id);
  f.transaction = transaction;
  f.filename.set("tools.zip");
  f.content_type.set("application/zip");
  f.disposition.set("attachment");
  f.size = 1234;
  f.hashed = true;
  fill(f.sha256, sha);
  f.has_message_sha256 = true;
  fill(f.message_sha256, 0xdd);
  f.mime_path.set("2");
  f.file_type = static_cast<uint8_t>(pipeline::FileType::zip);
  f.members = 1;
  f.verdict.reputation = rep;
  f.verdict.source = source;
  return f;
}

VerdictRecord verdict(uint64_t id, uint64_t transaction, Disposition d, Action a, Enforcement e) {
  VerdictRecord v;
  v.timestamp_us = kTime + 100;
  v.flow = flow(id);
  v.transaction = transaction;
  v.has_message_sha256 = true;
  fill(v.message_sha256, 0xdd);
  v.disposition = d;
  v.action = a;
  v.enforcement = e;
  v.reference.set("6757a1b2-1-0");
  v.reputation = true;
  v.files = 2;
  v.malicious = 1;
  v.unknown = 1;
  return v;
}

std::vector<Json> lines_of(const std::string& text) {
  std::vector<Json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    Json j = Json::parse(line, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << line;
    out.push_back(j);
  }
  return out;
}

TraceQuery by_ref(std::string r) {
  TraceQuery q;
  q.ref = std::move(r);
  return q;
}
TraceQuery by_id(std::string id, unsigned max = 20) {
  TraceQuery q;
  q.message_id = std::move(id);
  q.max_messages = max;
  return q;
}
TraceQuery by_sha(std::string sha, unsigned max = 20) {
  TraceQuery q;
  q.message_sha256 = std::move(sha);
  q.max_messages = max;
  return q;
}
TraceQuery by_flow(uint64_t flow_id, uint64_t transaction) {
  TraceQuery q;
  q.flow_id = flow_id;
  q.transaction = transaction;
  return q;
}

std::vector<std::string> steps_of(const Json& message) {
  std::vector<std::string> s;
  for (const auto& step : message["steps"]) s.push_back(step["step"]);
  return s;
}

class TraceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("trace-test-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    settings_.path = (dir_ / "trace.log").string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& lines) {
    TraceLog log;
    std::string error;
    ASSERT_TRUE(log.open(settings_, error)) << error;
    log.write_block(lines);
  }
  fs::path dir_;
  TraceSettings settings_;
};

TEST(TraceBuilderTest, EveryStepOfAMessageAsAPersonReadsIt) {
  TraceBuilder t(kInstance, 16);
  t.set_endpoint_names({"lab"});
  std::string out;
  // The endpoint answered the archive's look-up in 12.5 ms; the member came from the cache.
  t.on_lookup(arr(0xaa), 0, 12.5, "");
  FileRecord f = file(1, 0, 0xaa, Reputation::unknown, kSourceEndpoint0);
  f.verdict.upload_wanted = true;
  f.verdict.analysis = AnalysisStatus::not_sent;
  f.verdict.criterion = UploadCriterion::not_dynamic;
  t.on_record(&f, sizeof f, out);
  MemberRecord m;
  m.timestamp_us = kTime;
  m.flow = flow(1);
  m.filename.set("tools/setup.exe");
  m.archive_filename.set("tools.zip");
  m.depth = 1;
  m.size = 100;
  m.hashed = true;
  fill(m.sha256, 0xbb);
  fill(m.parent_sha256, 0xaa);
  m.file_type = static_cast<uint8_t>(pipeline::FileType::pe);
  m.verdict.reputation = Reputation::malicious;
  m.verdict.threat_name.set("Win.Test.Member");
  m.verdict.source = kSourceCache;
  t.on_record(&m, sizeof m, out);
  VerdictRecord v = verdict(1, 0, Disposition::malicious, Action::reject, Enforcement::rejected);
  v.listed = 1;
  v.deciding = 1;
  v.decided_by[0].filename.set("tools/setup.exe");
  fill(v.decided_by[0].sha256, 0xbb);
  v.decided_by[0].hashed = true;
  v.decided_by[0].member = true;
  v.decided_by[0].reputation = Reputation::malicious;
  v.decided_by[0].threat_name.set("Win.Test.Member");
  t.on_record(&v, sizeof v, out);
  MessageRecord msg = message(1, 0, "<m1@example.org>", "tools");
  t.on_record(&msg, sizeof msg, out);
  // Records without a step: nothing.
  FlowRecord fr;
  t.on_record(&fr, sizeof fr, out);

  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 7u) << out;
  std::vector<std::string> steps;
  for (const auto& l : lines) {
    steps.push_back(l["step"]);
    EXPECT_EQ(l["ref"], "6757a1b2-1-0");
    EXPECT_EQ(l["flow_id"], 1);
    EXPECT_EQ(l["transaction"], 0);
    EXPECT_EQ(l.begin().key(), "time");
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"file", "lookup", "upload", "member", "lookup", "verdict", "parsed"}));
  EXPECT_EQ(lines[0]["text"], "Attachment \"tools.zip\" (part 2, zip, 1234 bytes, SHA-256 aaaaaaaaaaaa…): an archive of 1 member.");
  EXPECT_EQ(lines[1]["text"],
            "Reputation of \"tools.zip\": unknown, answered by lab in 12.5 ms; the cloud would like the file for analysis.");
  EXPECT_EQ(lines[1]["latency_ms"], 12.5);
  EXPECT_EQ(lines[1]["source"], "lab");
  EXPECT_EQ(lines[2]["text"], "Not uploaded: ClamAV pre-classification found no dynamic content.");
  EXPECT_EQ(lines[2]["upload_criterion"], "not_dynamic");
  EXPECT_EQ(lines[3]["text"],
            "Archive member \"tools/setup.exe\" of \"tools.zip\" (depth 1, pe, 100 bytes, SHA-256 bbbbbbbbbbbb…).");
  EXPECT_EQ(lines[4]["text"], "Reputation of \"tools/setup.exe\": malicious (Win.Test.Member), from the verdict cache.");
  EXPECT_EQ(lines[5]["text"],
            "Verdict: malicious, action reject; 2 files evaluated (1 malicious, 0 clean, 1 unknown); decided by "
            "\"tools/setup.exe\" (Win.Test.Member); on the wire: the client got the 550 reply naming 6757a1b2-1-0, "
            "the server a reset.");
  EXPECT_EQ(lines[5]["enforcement"], "rejected");
  EXPECT_EQ(lines[6]["text"],
            "Message <m1@example.org> from <alice@example.org> to 2 recipients, subject \"tools\": 4096 bytes, 1 "
            "attachment; MIME anomalies: bare_lf; the end of data was answered 250.");
  EXPECT_EQ(lines[6]["rcpt_to"], (std::vector<std::string>{"bob@example.net", "carol@example.net"}));
  EXPECT_EQ(lines[6]["message_sha256"], kMM);
}

TEST(TraceBuilderTest, FailedLookupsAnalysisStepsAndBadUtf8) {
  TraceBuilder t(kInstance, 1);  // one answer remembered: the second forgets the first
  t.set_endpoint_names({"lab", "backup"});
  std::string out;
  t.on_lookup(arr(0xaa), 1, 3000, "backup: timeout after 3000 ms");
  FileRecord f = file(2, 1, 0xaa, Reputation::none, kSourceNone);
  f.verdict.error = LookupError::service_unavailable;
  f.filename.set("bad\xff\xfe.zip");  // not UTF-8: replaced, the line stays
  t.on_record(&f, sizeof f, out);
  t.on_lookup(arr(0xbb), 0, 1, "lab: HTTP 503");
  FileRecord g = file(2, 1, 0xaa, Reputation::none, kSourceNone);
  g.verdict.error = LookupError::budget_exhausted;
  t.on_record(&g, sizeof g, out);  // its answer was forgotten: no endpoint named
  const FlowIdentity fl = flow(2);
  t.on_event("analysis", {{"sha256", kCC}, {"status", "submitted"}, {"size", 10}, {"endpoint", "sandbox"},
                          {"sample_id", "s-1"}, {"dynamic", {"vba_macro", "signature"}}, {"transaction", 1},
                          {"filename", "q.docm"}}, &fl, out);
  t.on_event("analysis", {{"sha256", kCC}, {"status", "complete"}, {"endpoint", "sandbox"}, {"sample_id", "s-1"},
                          {"state", "succ"}, {"disposition", "malicious"}, {"messages", 2}, {"score", 90},
                          {"threat_name", "Doc.Macro"}}, nullptr, out);
  t.on_event("stats", {{"x", 1}}, nullptr, out);  // not a step
  t.on_quarantine(fl, 1, "q-17", "", out);
  t.on_quarantine(fl, 1, "", "full: 1 GiB used", out);
  t.on_poll(kCC, "sandbox", "run", "", 8.25, out);
  t.on_poll(kCC, "sandbox", "", "service_unavailable: HTTP 503", 2, out);
  const auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 10u) << out;
  EXPECT_EQ(lines[0]["step"], "file");
  EXPECT_NE(lines[0]["filename"].get<std::string>().find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
  EXPECT_EQ(lines[1]["text"], "Reputation of \"bad\xef\xbf\xbd\xef\xbf\xbd.zip\": no answer (service_unavailable: backup: "
                              "timeout after 3000 ms).");
  EXPECT_EQ(lines[1]["endpoint"], "backup");
  EXPECT_EQ(lines[3]["text"], "Reputation of \"tools.zip\": no answer (budget_exhausted).");
  EXPECT_FALSE(lines[3].contains("endpoint"));
  EXPECT_EQ(lines[4]["step"], "analysis");
  EXPECT_EQ(lines[4]["ref"], "6757a1b2-2-1");
  EXPECT_EQ(lines[4]["text"], "Submitted \"q.docm\" to sandbox as sample s-1 (dynamic content: vba_macro, signature).");
  EXPECT_EQ(lines[5]["step"], "complete");
  EXPECT_FALSE(lines[5].contains("ref"));
  EXPECT_EQ(lines[5]["text"], "Analysis of cccccccccccc… at sandbox complete: score 90, malicious (Doc.Macro); 2 "
                              "messages waited on it.");
  EXPECT_EQ(lines[6]["text"], "Stored in the File Analysis quarantine as q-17.");
  EXPECT_EQ(lines[7]["text"], "Not stored in the quarantine (full: 1 GiB used): it is still analysed.");
  EXPECT_EQ(lines[8]["text"], "Polled sandbox for cccccccccccc…: run (8.2 ms).");
  EXPECT_EQ(lines[9]["text"], "Poll of cccccccccccc… at sandbox failed: service_unavailable: HTTP 503; asked again later.");
}

TEST_F(TraceTest, SearchGathersAMessageAndTheSamplesItWaitedOn) {
  TraceBuilder t(kInstance, 16);
  std::string out;
  // Message 1 waits on sample cc; message 2 is unrelated; a poll of another sample too.
  FileRecord a = file(1, 0, 0xcc, Reputation::unknown, kSourceCache);
  a.verdict.analysis = AnalysisStatus::submitted;
  t.on_record(&a, sizeof a, out);
  FileRecord b = file(2, 0, 0xaa, Reputation::clean, kSourceCache);
  t.on_record(&b, sizeof b, out);
  t.on_poll(kBB, "sandbox", "run", "", 1, out);
  t.on_poll(kCC, "sandbox", "run", "", 1, out);
  VerdictRecord v = verdict(1, 0, Disposition::pending, Action::defer, Enforcement::deferred);
  v.pending = 1;
  t.on_record(&v, sizeof v, out);
  MessageRecord m1 = message(1, 0, "<m1@example.org>", "first"), m2 = message(2, 0, "<m2@example.org>", "second");
  fill(m2.sha256, 0xee);
  t.on_record(&m1, sizeof m1, out);
  t.on_record(&m2, sizeof m2, out);
  t.on_event("analysis", {{"sha256", kCC}, {"status", "complete"}, {"endpoint", "sandbox"}, {"state", "succ"},
                          {"disposition", "clean"}, {"score", 10}, {"messages", 1}}, nullptr, out);
  VerdictRecord fin = verdict(1, 0, Disposition::clean, Action::pass, Enforcement::none);
  fin.final_verdict = true;
  fin.timestamp_us = now_unix_us();  // as the analysis service stamps it
  fin.quarantine = QuarantineMark::released;
  fin.quarantine_id.set("q-1");
  t.on_record(&fin, sizeof fin, out);
  write(out);

  for (const TraceQuery& q : {by_ref("6757a1b2-1-0"), by_id("<m1@example.org>"),
                              by_sha(kMM), by_flow(1, 0)}) {
    const Json r = trace_search(settings_, q);
    ASSERT_EQ(r["messages"].size(), q.message_sha256.empty() ? 1u : 2u) << r.dump();
    const Json& m = r["messages"][0];
    EXPECT_EQ(m["ref"], "6757a1b2-1-0");
    EXPECT_EQ(m["flow_id"], 1);
    EXPECT_EQ(m["message_id"], "<m1@example.org>");
    EXPECT_EQ(m["subject"], "first");
    EXPECT_EQ(steps_of(m), (std::vector<std::string>{"parsed", "file", "lookup", "upload", "poll", "verdict", "complete",
                                                     "final_verdict"}));
    EXPECT_EQ(m["steps"][4]["sha256"], kCC);  // the poll of its own sample only
    EXPECT_EQ(m["steps"][7]["text"],
              "Final verdict: clean, action pass; 2 files evaluated (1 malicious, 0 clean, 1 unknown); its quarantine "
              "entry q-1 is released.");
  }
  // Message 2's `parsed` line names its own SHA-256 (its file line, made above, says 0xdd).
  const Json second = trace_search(settings_, by_sha(std::string(64, 'e')));
  ASSERT_EQ(second["messages"].size(), 1u);
  EXPECT_EQ(second["messages"][0]["ref"], "6757a1b2-2-0");
  EXPECT_EQ(steps_of(second["messages"][0]), (std::vector<std::string>{"parsed", "file", "lookup"}));
  // Nothing matches: no message.
  EXPECT_TRUE(trace_search(settings_, by_id("<none@example.org>"))["messages"].empty());
  EXPECT_TRUE(trace_search(settings_, by_ref("6757a1b2-9-0"))["messages"].empty());
  EXPECT_TRUE(trace_search(settings_, TraceQuery{})["messages"].empty());
  EXPECT_TRUE(trace_search(TraceSettings{}, by_ref("6757a1b2-1-0"))["messages"].empty());
}

TEST_F(TraceTest, OneFlowAndTransactionInTwoRunsAreTwoMessagesTheNewestKept) {
  std::string out;
  for (uint32_t run : {1u, 2u, 3u}) {
    TraceBuilder t(run, 16);
    MessageRecord m = message(1, 0, "<same@example.org>", "again");
    t.on_record(&m, sizeof m, out);
  }
  write(out);
  Json r = trace_search(settings_, by_flow(1, 0));
  ASSERT_EQ(r["messages"].size(), 3u);
  EXPECT_EQ(r["messages"][0]["ref"], "00000001-1-0");
  EXPECT_EQ(r["messages"][2]["ref"], "00000003-1-0");
  r = trace_search(settings_, by_id("<same@example.org>", 2));
  ASSERT_EQ(r["messages"].size(), 2u);
  EXPECT_EQ(r["messages"][0]["ref"], "00000002-1-0");
  EXPECT_EQ(r["messages"][1]["ref"], "00000003-1-0");
  r = trace_search(settings_, by_flow(1, 1));
  EXPECT_TRUE(r["messages"].empty());
}

TEST_F(TraceTest, TheLogRotatesAndTheSearchReadsEveryFileKept) {
  TraceBuilder t(kInstance, 16);
  std::string one;
  MessageRecord first = message(10, 0, "<m10@example.org>", "rotating");
  t.on_record(&first, sizeof first, one);
  // Room for two lines a file, 3 files kept: of 12 messages the 6 newest survive.
  const uint64_t max = one.size() * 5 / 2;
  settings_.max_file_bytes = max;
  settings_.max_files = 3;
  TraceLog log;
  std::string error;
  ASSERT_TRUE(log.open(settings_, error)) << error;
  for (uint64_t i = 1; i <= 12; ++i) {
    std::string out;
    MessageRecord m = message(i, 0, ("<m" + std::to_string(i) + "@example.org>").c_str(), "rotating");
    t.on_record(&m, sizeof m, out);
    log.write_block(out);
  }
  EXPECT_EQ(log.rotations(), 5u);
  EXPECT_EQ(log.write_errors(), 0u);
  EXPECT_TRUE(fs::exists(trace_file(settings_.path, 0)));
  EXPECT_TRUE(fs::exists(trace_file(settings_.path, 1)));
  EXPECT_TRUE(fs::exists(trace_file(settings_.path, 2)));
  EXPECT_FALSE(fs::exists(trace_file(settings_.path, 3)));
  for (unsigned k = 0; k < 3; ++k) EXPECT_LE(fs::file_size(trace_file(settings_.path, k)), max);
  const Json r = trace_search(settings_, by_sha(kMM, 100));
  ASSERT_EQ(r["messages"].size(), 6u);
  EXPECT_EQ(r["messages"][0]["message_id"], "<m7@example.org>");  // oldest kept first
  EXPECT_EQ(r["messages"][5]["message_id"], "<m12@example.org>");
  EXPECT_EQ(r["files_read"], 3);
  // Reopened, it appends to the current file and keeps its size in mind.
  const auto before = fs::file_size(settings_.path);
  TraceLog again;
  ASSERT_TRUE(again.open(settings_, error));
  std::string out;
  MessageRecord m = message(13, 0, "<m13@example.org>", "rotating");
  t.on_record(&m, sizeof m, out);
  again.write_block(out);
  EXPECT_EQ(again.rotations(), before + out.size() > max ? 1u : 0u);
}

TEST_F(TraceTest, AFullDiskLosesTheBlockCountsItAndTriesAgain) {
  TraceSettings full;
  full.path = "/dev/full";
  TraceLog log;
  std::string error;
  ASSERT_TRUE(log.open(full, error)) << error;
  log.write_block("{\"a\":1}\n{\"b\":2}\n");
  log.write_block("{\"c\":3}\n");
  EXPECT_EQ(log.write_errors(), 2u);
  EXPECT_EQ(log.lines(), 0u);
  TraceLog ok;
  ASSERT_TRUE(ok.open(settings_, error)) << error;
  ok.write_block("{\"a\":1}\n{\"b\":2}\n");
  EXPECT_EQ(ok.lines(), 2u);
  EXPECT_EQ(ok.write_errors(), 0u);
}

TEST_F(TraceTest, AnUnwritableLogIsAnErrorAtOpen) {
  TraceLog log;
  std::string error;
  settings_.path = (dir_ / "missing" / "trace.log").string();
  EXPECT_FALSE(log.open(settings_, error));
  EXPECT_NE(error.find("trace.path"), std::string::npos) << error;
  // A half-written last line (no newline) is not read.
  settings_.path = (dir_ / "trace.log").string();
  TraceBuilder t(kInstance, 16);
  std::string out;
  MessageRecord m = message(1, 0, "<m1@example.org>", "x");
  t.on_record(&m, sizeof m, out);
  write(out + "{\"time\":\"x\",\"ref\":\"6757a1b2-1-0\",\"flow_id\":1,\"transaction\":0,\"step\":\"fi");
  const Json r = trace_search(settings_, by_ref("6757a1b2-1-0"));
  ASSERT_EQ(r["messages"].size(), 1u);
  EXPECT_EQ(r["messages"][0]["steps"].size(), 1u);
}

}  // namespace
}  // namespace sluice::control
