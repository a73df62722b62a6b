#include "control/cloud/analyses.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <openssl/evp.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>

using namespace sluice::cloud;
using namespace std::chrono_literals;

namespace {

// An engine the test scripts: `answer` decides the result; `hold()` keeps scans waiting until
// `release()`.
class ScriptedEngine : public AnalysisEngine {
 public:
  std::function<AnalysisResult(std::string_view bytes, std::string_view filename)> answer =
      [](std::string_view, std::string_view) {
        AnalysisResult r;
        r.score = 5;
        return r;
      };

  AnalysisResult analyse(std::span<const uint8_t> bytes, std::string_view filename) override {
    std::unique_lock lock(m_);
    cv_.wait(lock, [this] { return !held_; });
    ++scans_;
    return answer(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), filename);
  }
  std::string name() const override { return "scripted/1"; }

  void hold() {
    std::lock_guard lock(m_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lock(m_);
      held_ = false;
    }
    cv_.notify_all();
  }
  int scans() {
    std::lock_guard lock(m_);
    return scans_;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool held_ = false;
  int scans_ = 0;
};

class AnalysesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-cloud-analyses-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    store_ = std::make_unique<Store>(root_);
    config_.samples_dir = root_ / "samples";
    config_.duration = 0ms;
  }
  void TearDown() override {
    shut();
    store_.reset();
    std::filesystem::remove_all(root_);
  }

  void make() {
    pool_ = std::make_unique<ScanPool>(io_, engine_, 1);
    analyses_ = std::make_unique<Analyses>(io_, *store_, *pool_, config_, [this] { return wall_; });
    analyses_->start();
  }
  // As a process that stops: the scans not started are dropped, the threads end.
  void shut() {
    engine_.release();
    if (analyses_) analyses_->stop();
    pool_.reset();
    analyses_.reset();
    io_.restart();
    io_.poll();  // handlers posted by the old pool go nowhere
  }

  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = 3000ms) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < end) {
      io_.restart();
      io_.run_for(5ms);
    }
    return done();
  }

  SampleState state(const std::string& id) { return store_->sample(id)->state; }

  Analyses::Submitted submit(std::string_view bytes, std::string client = "c1") {
    return analyses_->submit(bytes, std::string("f.bin"), client);
  }

  std::filesystem::path root_;
  boost::asio::io_context io_;
  std::unique_ptr<Store> store_;
  ScriptedEngine engine_;
  AnalysisConfig config_;
  std::unique_ptr<ScanPool> pool_;
  std::unique_ptr<Analyses> analyses_;
  int64_t wall_ = 1796210000;  // 2026-12-02T11:13:20Z
};


}  // namespace

TEST_F(AnalysesTest, StatesInOrderThenACleanResult) {
  config_.duration = 200ms;
  engine_.answer = [](std::string_view bytes, std::string_view filename) {
    AnalysisResult r;
    r.score = 42;
    r.threat_name = "Not.Shown";  // below the threshold: no name
    r.report["size"] = bytes.size();
    r.report["name"] = std::string(filename);
    return r;
  };
  make();
  const auto t0 = std::chrono::steady_clock::now();
  const auto s = submit("hello");
  ASSERT_EQ(s.outcome, Analyses::Outcome::created);
  EXPECT_EQ(s.sample.id.size(), 32u);
  EXPECT_EQ(s.sample.submitted_at, wall_);
  EXPECT_TRUE(std::filesystem::exists(config_.samples_dir / sha256_hex(s.sample.sha256)));
  std::vector<SampleState> seen{state(s.sample.id)};
  ASSERT_TRUE(run_until([&] {
    if (seen.back() != state(s.sample.id)) seen.push_back(state(s.sample.id));
    return seen.back() == SampleState::succ;
  }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);
  EXPECT_EQ(seen, (std::vector<SampleState>{SampleState::wait, SampleState::prep, SampleState::run, SampleState::proc,
                                            SampleState::succ}));
  const auto done = store_->sample(s.sample.id);
  ASSERT_TRUE(done->result);
  EXPECT_EQ(done->result->score, 42);
  EXPECT_EQ(done->result->verdict, "clean");
  EXPECT_FALSE(done->result->threat_name);
  EXPECT_EQ(nlohmann::json::parse(done->result->report)["name"], "f.bin");
  EXPECT_EQ(done->completed_at, wall_);
  // below the threshold: the score is recorded, the disposition stays unknown, nothing is fed
  const FileRecord r = store_->lookup(s.sample.sha256);
  EXPECT_EQ(r.disposition, Disposition::unknown);
  EXPECT_EQ(r.threat_score, 42);
  EXPECT_FALSE(r.threat_name);
  EXPECT_TRUE(r.by_analysis);
  EXPECT_TRUE(r.known);
  EXPECT_EQ(store_->changes(0, 10).changes.size(), 0u);
  EXPECT_FALSE(std::filesystem::exists(config_.samples_dir / sha256_hex(s.sample.sha256)));
  EXPECT_EQ(analyses_->pending(), 0u);
}

TEST_F(AnalysesTest, MaliciousAtTheThreshold) {
  config_.malicious_score = 80;
  engine_.answer = [](std::string_view bytes, std::string_view) {
    AnalysisResult r;
    r.score = bytes == "bad" ? 80 : 79;
    r.threat_name = "Rule.Name";
    return r;
  };
  make();
  const auto bad = submit("bad"), meh = submit("meh");
  ASSERT_TRUE(run_until([&] { return analyses_->pending() == 0; }));
  EXPECT_EQ(store_->sample(bad.sample.id)->result->verdict, "malicious");
  EXPECT_EQ(store_->sample(bad.sample.id)->result->threat_name, "Rule.Name");
  EXPECT_EQ(store_->lookup(bad.sample.sha256).disposition, Disposition::malicious);
  EXPECT_EQ(store_->lookup(bad.sample.sha256).threat_name, "Rule.Name");
  EXPECT_EQ(store_->sample(meh.sample.id)->result->verdict, "clean");
  EXPECT_EQ(store_->lookup(meh.sample.sha256).disposition, Disposition::unknown);
  EXPECT_EQ(store_->lookup(meh.sample.sha256).threat_score, 79);
  const auto feed = store_->changes(0, 10).changes;
  ASSERT_EQ(feed.size(), 1u);
  EXPECT_EQ(feed[0].sha256, bad.sample.sha256);
  EXPECT_EQ(feed[0].new_disposition, Disposition::malicious);
}

TEST_F(AnalysesTest, ALateScanHoldsTheSampleInProc) {
  config_.duration = 40ms;
  engine_.hold();
  make();
  const auto s = submit("slow");
  run_until([] { return false; }, 200ms);
  EXPECT_EQ(state(s.sample.id), SampleState::proc);
  engine_.release();
  EXPECT_TRUE(run_until([&] { return state(s.sample.id) == SampleState::succ; }));
}

TEST_F(AnalysesTest, AFailedAnalysisAndASecondSubmission) {
  engine_.answer = [](std::string_view, std::string_view) {
    AnalysisResult r;
    r.failed = true;
    r.error = "engine said no";
    return r;
  };
  make();
  const auto s = submit("x");
  ASSERT_TRUE(run_until([&] { return state(s.sample.id) == SampleState::fail; }));
  const auto done = store_->sample(s.sample.id);
  EXPECT_EQ(done->result->verdict, "failed");
  EXPECT_FALSE(done->result->score);
  EXPECT_EQ(done->result->report, R"({"error":"engine said no"})");
  EXPECT_FALSE(store_->lookup(s.sample.sha256).known);
  EXPECT_FALSE(store_->lookup(s.sample.sha256).has_sample);
  // the same bytes again: a new sample (and counted)
  const auto again = submit("x");
  EXPECT_EQ(again.outcome, Analyses::Outcome::created);
  EXPECT_NE(again.sample.id, s.sample.id);
  EXPECT_EQ(store_->samples_on_day("c1", wall_ / 86400), 2u);
}

TEST_F(AnalysesTest, SameBytesSameSampleNotCounted) {
  config_.duration = 10s;
  config_.daily_samples = 1;
  make();
  const auto a = submit("same");
  const auto b = submit("same", "c2");
  EXPECT_EQ(b.outcome, Analyses::Outcome::existing);
  EXPECT_EQ(b.sample.id, a.sample.id);
  EXPECT_EQ(analyses_->submissions_available("c1"), 0u);
  EXPECT_EQ(analyses_->submissions_available("c2"), 1u);
  // also when its client is over the limit
  EXPECT_EQ(submit("same").outcome, Analyses::Outcome::existing);
}

TEST_F(AnalysesTest, DailyLimitPerClientUntilMidnightUtc) {
  config_.duration = 10s;
  config_.daily_samples = 2;
  make();
  EXPECT_EQ(submit("1").outcome, Analyses::Outcome::created);
  EXPECT_EQ(submit("2").outcome, Analyses::Outcome::created);
  const auto refused = submit("3");
  EXPECT_EQ(refused.outcome, Analyses::Outcome::daily_limit);
  EXPECT_EQ(refused.retry_after, 46000u);  // 11:13:20 to midnight: 12 h 46 min 40 s
  EXPECT_EQ(submit("3", "c2").outcome, Analyses::Outcome::created);
  wall_ += refused.retry_after;  // 00:00:00 the next day
  EXPECT_EQ(analyses_->submissions_available("c1"), 2u);
  EXPECT_EQ(submit("4").outcome, Analyses::Outcome::created);
  config_.daily_samples = 0;
  shut();
  make();
  EXPECT_FALSE(analyses_->submissions_available("c1"));
}

TEST_F(AnalysesTest, QueueBounds) {
  config_.duration = 10s;
  config_.max_pending = 2;
  make();
  submit("1");
  submit("2");
  const auto full = submit("3");
  EXPECT_EQ(full.outcome, Analyses::Outcome::queue_full);
  EXPECT_EQ(full.retry_after, 10u);
  EXPECT_EQ(submit("1").outcome, Analyses::Outcome::existing);  // not refused: nothing new to analyse
  EXPECT_EQ(store_->samples_on_day("c1", wall_ / 86400), 2u);
  shut();
  config_.max_pending = 100;
  config_.max_pending_bytes = 10;
  make();  // the two resumed hold 2 bytes
  EXPECT_EQ(submit("12345678").outcome, Analyses::Outcome::created);
  EXPECT_EQ(submit("x").outcome, Analyses::Outcome::queue_full);
}

TEST_F(AnalysesTest, AnAnalysisInProgressResumesAfterARestart) {
  config_.duration = 400ms;
  make();
  const auto s = submit("resume me");
  ASSERT_TRUE(run_until([&] { return state(s.sample.id) == SampleState::run; }));
  shut();
  EXPECT_EQ(state(s.sample.id), SampleState::run);  // as written when it happened
  EXPECT_TRUE(std::filesystem::exists(config_.samples_dir / sha256_hex(s.sample.sha256)));
  const int scans = engine_.scans();
  make();
  EXPECT_EQ(analyses_->pending(), 1u);
  std::vector<SampleState> seen{state(s.sample.id)};
  ASSERT_TRUE(run_until([&] {
    if (seen.back() != state(s.sample.id)) seen.push_back(state(s.sample.id));
    return seen.back() == SampleState::succ;
  }));
  EXPECT_EQ(seen, (std::vector<SampleState>{SampleState::run, SampleState::proc, SampleState::succ}));
  EXPECT_EQ(engine_.scans(), scans + 1);  // scanned again
  EXPECT_TRUE(store_->lookup(s.sample.sha256).threat_score);
}

TEST_F(AnalysesTest, AMissingFileFailsTheAnalysis) {
  config_.duration = 10s;
  make();
  const auto s = submit("vanishing");
  shut();
  const auto file = config_.samples_dir / sha256_hex(s.sample.sha256);
  std::filesystem::remove(file);
  config_.duration = 0ms;
  make();
  ASSERT_TRUE(run_until([&] { return state(s.sample.id) == SampleState::fail; }));
  EXPECT_EQ(nlohmann::json::parse(store_->sample(s.sample.id)->result->report)["error"],
            "cannot open the sample's file " + file.string() + ": No such file or directory");
}

TEST_F(AnalysesTest, StartRemovesFilesOfNoUnfinishedSample) {
  std::filesystem::create_directories(config_.samples_dir);
  for (const char* name : {"stray", "0000000000000000000000000000000000000000000000000000000000000000.tmp"})
    std::ofstream(config_.samples_dir / name) << "x";
  config_.duration = 10s;
  make();
  const auto s = submit("kept");
  shut();
  std::ofstream(config_.samples_dir / "stray") << "x";
  make();
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(config_.samples_dir)) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{sha256_hex(s.sample.sha256)});
}

TEST_F(AnalysesTest, TheAdminsWordStands) {
  engine_.answer = [](std::string_view, std::string_view) {
    AnalysisResult r;
    r.score = 100;
    r.threat_name = "Engine.Says";
    return r;
  };
  make();
  Sha256 h{};
  unsigned len = 0;
  const std::string bytes = "admin knows";
  EVP_Digest(bytes.data(), bytes.size(), h.data(), &len, EVP_sha256(), nullptr);
  store_->set(h, Disposition::clean, "Vendor.Tool", std::nullopt, 1);
  const auto s = submit(bytes);
  ASSERT_TRUE(run_until([&] { return analyses_->pending() == 0; }));
  EXPECT_EQ(store_->sample(s.sample.id)->result->verdict, "malicious");
  const FileRecord r = store_->lookup(h);
  EXPECT_EQ(r.disposition, Disposition::clean);
  EXPECT_EQ(r.threat_name, "Vendor.Tool");
}

TEST_F(AnalysesTest, ALargeReportLosesItsMetadata) {
  engine_.answer = [](std::string_view, std::string_view) {
    AnalysisResult r;
    r.score = 1;
    r.report["findings"] = nlohmann::ordered_json::array();
    r.report["metadata"] = std::string(kMaxReportBytes, 'm');
    return r;
  };
  make();
  const auto s = submit("big report");
  ASSERT_TRUE(run_until([&] { return analyses_->pending() == 0; }));
  const auto report = nlohmann::json::parse(store_->sample(s.sample.id)->result->report);
  EXPECT_FALSE(report.contains("metadata"));
  EXPECT_EQ(report["truncated"], true);
  EXPECT_TRUE(report.contains("findings"));
}
