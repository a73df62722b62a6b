// control/submission_store: records and their waiters through add, update, complete, expire and
// remove; everything back after a reopen and after a SIGKILL in the middle of writes; a file that
// is not a valid store (garbage, torn, foreign, another version, a bad row) refused with one line,
// moved aside, and the store started empty.
#include "control/submission_store.h"
#include "tests/unit/control/kill_midway.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

namespace sluice::control {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kT0 = 1'800'000'000'000;
constexpr int64_t kHour = 3'600'000;

std::string sha(unsigned n) {
  char buf[65];
  std::snprintf(buf, sizeof buf, "%064x", n);
  return buf;
}

Submission sample(unsigned n, int64_t submitted = kT0) {
  Submission s;
  s.sha256 = sha(n);
  s.endpoint = "lab";
  s.sample_id = "sample-" + std::to_string(n);
  s.submitted_ms = submitted;
  s.state = SampleState::wait;
  s.next_poll_ms = submitted + 30'000;
  s.quarantine_ids = {"20270115-000000-000-0000000" + std::to_string(n % 10)};
  return s;
}

class SubmissionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-submission-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    path_ = root_ + "/submissions.sqlite";
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<SubmissionStore> open_ok(const SubmissionLimits& limits = {}) {
    SubmissionOpen o = SubmissionStore::open(path_, limits);
    EXPECT_TRUE(o.store);
    EXPECT_EQ(o.error, "");
    return std::move(o.store);
  }

  std::string root_, path_;
};

TEST_F(SubmissionStoreTest, ARecordGoesThroughItsLife) {
  auto s = open_ok();
  Submission in = sample(1);
  in.sha256 = std::string(64, 'A');  // stored lower case
  ASSERT_TRUE(s->add(in).ok());
  auto got = s->find(std::string(64, 'a'));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->sha256, std::string(64, 'a'));
  EXPECT_EQ(got->endpoint, "lab");
  EXPECT_EQ(got->sample_id, "sample-1");
  EXPECT_EQ(got->submitted_ms, kT0);
  EXPECT_EQ(got->updated_ms, kT0);
  EXPECT_EQ(got->state, SampleState::wait);
  EXPECT_EQ(got->next_poll_ms, kT0 + 30'000);
  EXPECT_EQ(got->quarantine_ids, in.quarantine_ids);
  EXPECT_EQ(got->end, SubmissionEnd::pending);
  EXPECT_EQ(got->score, -1);

  ASSERT_TRUE(s->update(in.sha256, SampleState::run, kT0 + 60'000, kT0 + 30'000).ok());
  got = s->find(in.sha256);
  EXPECT_EQ(got->state, SampleState::run);
  EXPECT_EQ(got->next_poll_ms, kT0 + 60'000);
  EXPECT_EQ(got->updated_ms, kT0 + 30'000);
  EXPECT_EQ(s->stats().pending, 1u);

  ASSERT_TRUE(s->complete(in.sha256, SampleState::succ, 87, "malicious", kT0 + 90'000).ok());
  got = s->find(in.sha256);
  EXPECT_EQ(got->end, SubmissionEnd::complete);
  EXPECT_EQ(got->state, SampleState::succ);
  EXPECT_EQ(got->score, 87);
  EXPECT_EQ(got->disposition, "malicious");
  EXPECT_EQ(got->finished_ms, kT0 + 90'000);
  EXPECT_TRUE(s->pending().empty());
  ASSERT_EQ(s->finished().size(), 1u) << "kept until the caller has released its messages";
  EXPECT_EQ(s->stats().finished, 1u);
  EXPECT_EQ(s->update(in.sha256, SampleState::run, 0, 0).error, SubmissionError::wrong_state);
  EXPECT_EQ(s->complete(in.sha256, SampleState::succ, 1, "clean", 0).error, SubmissionError::wrong_state);

  ASSERT_TRUE(s->remove(in.sha256).ok());
  EXPECT_FALSE(s->find(in.sha256));
  EXPECT_TRUE(s->waiting_on(in.quarantine_ids[0]).empty());
  EXPECT_EQ(s->remove(in.sha256).error, SubmissionError::not_found);
  EXPECT_EQ(s->stats().added, 1u);
  EXPECT_EQ(s->stats().completed, 1u);
  EXPECT_EQ(s->stats().removed, 1u);
}

TEST_F(SubmissionStoreTest, WaitersJoinAndLeave) {
  auto s = open_ok();
  ASSERT_TRUE(s->add(sample(1)).ok());
  ASSERT_TRUE(s->add(sample(2)).ok());
  const std::string a = "20270115-000000-000-aaaaaaaa", b = "20270115-000000-000-bbbbbbbb";
  ASSERT_TRUE(s->add_waiter(sha(1), a).ok());
  ASSERT_TRUE(s->add_waiter(sha(1), b).ok());
  ASSERT_TRUE(s->add_waiter(sha(1), a).ok()) << "joining twice is one wait";
  ASSERT_TRUE(s->add_waiter(sha(2), a).ok());
  EXPECT_EQ(s->find(sha(1))->quarantine_ids, (std::vector<std::string>{sample(1).quarantine_ids[0], a, b}));
  EXPECT_EQ(s->waiting_on(a), (std::vector<std::string>{sha(1), sha(2)}));
  ASSERT_TRUE(s->remove_waiter(sha(1), a).ok());
  EXPECT_EQ(s->waiting_on(a), (std::vector<std::string>{sha(2)}));
  EXPECT_EQ(s->add_waiter(sha(3), a).error, SubmissionError::not_found);
  EXPECT_EQ(s->add_waiter(sha(1), "").error, SubmissionError::invalid);
}

TEST_F(SubmissionStoreTest, BadCallsAreRefusedAndChangeNothing) {
  auto s = open_ok();
  ASSERT_TRUE(s->add(sample(1)).ok());
  EXPECT_EQ(s->add(sample(1)).error, SubmissionError::exists);
  Submission bad = sample(2);
  bad.sha256 = "xyz";
  EXPECT_EQ(s->add(bad).error, SubmissionError::invalid);
  bad = sample(2);
  bad.sample_id.clear();
  EXPECT_EQ(s->add(bad).error, SubmissionError::invalid);
  EXPECT_EQ(s->update(sha(9), SampleState::run, 0, 0).error, SubmissionError::not_found);
  EXPECT_EQ(s->complete(sha(1), SampleState::run, 5, "", 0).error, SubmissionError::invalid);
  EXPECT_EQ(s->complete(sha(1), SampleState::succ, 101, "", 0).error, SubmissionError::invalid);
  const SubmissionResult r = s->add(sample(1));
  EXPECT_NE(r.message.find(sha(1)), std::string::npos) << r.message;
  EXPECT_EQ(s->stats().pending, 1u);
  EXPECT_EQ(s->stats().errors, 0u);
}

TEST_F(SubmissionStoreTest, DueListsWhatToPollInOrder) {
  auto s = open_ok();
  for (unsigned i = 1; i <= 5; ++i) {
    Submission x = sample(i);
    x.next_poll_ms = kT0 + (6 - i) * 1000;
    ASSERT_TRUE(s->add(x).ok());
  }
  ASSERT_TRUE(s->complete(sha(5), SampleState::fail, -1, "", kT0).ok());
  const auto due = s->due(kT0 + 3000);
  ASSERT_EQ(due.size(), 2u);  // 4 (at +2000) and 3 (at +3000); 5 is finished
  EXPECT_EQ(due[0].sha256, sha(4));
  EXPECT_EQ(due[1].sha256, sha(3));
  EXPECT_EQ(due[0].quarantine_ids, sample(4).quarantine_ids);
  EXPECT_EQ(s->pending().size(), 4u);
}

TEST_F(SubmissionStoreTest, RecordsAgeOutAndFinishedOnesAreDroppedLater) {
  SubmissionLimits limits;
  limits.max_age_h = 2;
  auto s = open_ok(limits);
  ASSERT_TRUE(s->add(sample(1, kT0)).ok());
  ASSERT_TRUE(s->add(sample(2, kT0 + kHour)).ok());
  ASSERT_TRUE(s->add(sample(3, kT0)).ok());
  ASSERT_TRUE(s->complete(sha(3), SampleState::succ, 10, "clean", kT0 + 10).ok());
  EXPECT_TRUE(s->expire(kT0 + 2 * kHour - 1).empty());
  const auto aged = s->expire(kT0 + 2 * kHour);
  ASSERT_EQ(aged.size(), 1u);
  EXPECT_EQ(aged[0].sha256, sha(1));
  EXPECT_EQ(aged[0].end, SubmissionEnd::expired);
  EXPECT_EQ(aged[0].quarantine_ids, sample(1).quarantine_ids) << "so the caller can release them";
  EXPECT_EQ(s->find(sha(1))->end, SubmissionEnd::expired);
  EXPECT_EQ(s->finished().size(), 2u);
  EXPECT_TRUE(s->expire(kT0 + 2 * kHour).empty()) << "reported once";
  // Nobody removed 3 (finished at +10 ms) nor 1 (expired at +2 h): dropped 2 h after they finished.
  const auto later = s->expire(kT0 + 3 * kHour + 5);
  ASSERT_EQ(later.size(), 1u);  // 2 ages out
  EXPECT_FALSE(s->find(sha(3)));
  EXPECT_TRUE(s->find(sha(1)));
  EXPECT_EQ(s->stats().finished_dropped, 1u);
  EXPECT_EQ(s->stats().expired, 2u);
}

TEST_F(SubmissionStoreTest, EverythingIsBackAfterAReopen) {
  {
    auto s = open_ok();
    for (unsigned i = 1; i <= 20; ++i) ASSERT_TRUE(s->add(sample(i)).ok());
    ASSERT_TRUE(s->add_waiter(sha(7), "q-extra").ok());
    ASSERT_TRUE(s->update(sha(3), SampleState::proc, kT0 + 5, kT0 + 4).ok());
    ASSERT_TRUE(s->complete(sha(4), SampleState::succ, 95, "malicious", kT0 + 6).ok());
  }
  SubmissionOpen o = SubmissionStore::open(path_);
  ASSERT_TRUE(o.store);
  EXPECT_EQ(o.error, "");
  auto& s = *o.store;
  EXPECT_EQ(s.stats().loaded, 20u);
  EXPECT_EQ(s.stats().pending, 19u);
  EXPECT_EQ(s.stats().finished, 1u);
  EXPECT_EQ(s.find(sha(3))->state, SampleState::proc);
  EXPECT_EQ(s.find(sha(4))->score, 95);
  EXPECT_EQ(s.find(sha(7))->quarantine_ids.size(), 2u);
  EXPECT_EQ(s.finished()[0].disposition, "malicious");
}

TEST_F(SubmissionStoreTest, AKill9InTheMiddleOfWritesLosesNoCommittedRecord) {
  std::mt19937 rng(9);
  for (int round = 0; round < 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    fs::remove_all(root_);
    fs::create_directories(root_);
    const uint32_t acked = testing::kill_midway(rng, [&]() -> std::function<bool(uint32_t)> {
      std::shared_ptr<SubmissionStore> s = SubmissionStore::open(path_).store;
      if (!s) return {};
      return [s](uint32_t i) {
        Submission x = sample(i);
        x.quarantine_ids = {"q" + std::to_string(i) + "a", "q" + std::to_string(i) + "b", "q" + std::to_string(i) + "c"};
        return s->add(x).ok() && (i == 1 || s->update(sha(i - 1), SampleState::run, kT0 + i, kT0 + i).ok());
      };
    });
    SubmissionOpen o = SubmissionStore::open(path_);
    ASSERT_TRUE(o.store);
    EXPECT_EQ(o.error, "");
    EXPECT_GE(o.store->stats().loaded, acked);
    EXPECT_LE(o.store->stats().loaded, acked + 1u);
    for (const Submission& x : o.store->pending())
      EXPECT_EQ(x.quarantine_ids.size(), 3u) << x.sha256 << ": a record and its waiters are one transaction";
    for (uint32_t i = 1; i + 1 <= acked; ++i) EXPECT_EQ(o.store->find(sha(i))->state, SampleState::run);
    o.store->add(sample(100000));  // and it is writable
    EXPECT_TRUE(o.store->find(sha(100000)));
  }
}

// ---- files that are not a valid store ----

class SubmissionStoreRefusedFile : public SubmissionStoreTest {
 protected:
  void expect_refused(const std::string& why) {
    SubmissionOpen o = SubmissionStore::open(path_);
    ASSERT_TRUE(o.store) << o.error;
    EXPECT_EQ(o.error.find('\n'), std::string::npos);
    EXPECT_NE(o.error.find("submissions " + path_ + " is not a valid store ("), std::string::npos) << o.error;
    EXPECT_NE(o.error.find(why), std::string::npos) << o.error;
    EXPECT_NE(o.error.find("starting empty; the file was moved to " + path_ + ".corrupt"), std::string::npos) << o.error;
    EXPECT_TRUE(o.store->stats().corrupt);
    EXPECT_TRUE(fs::exists(path_ + ".corrupt"));
    EXPECT_TRUE(o.store->pending().empty());
    EXPECT_TRUE(o.store->add(sample(1)).ok());
    o.store.reset();
    SubmissionOpen again = SubmissionStore::open(path_);
    EXPECT_EQ(again.error, "");
    EXPECT_EQ(again.store->stats().loaded, 1u);
  }
  void fill(unsigned n) {
    auto s = open_ok();
    for (unsigned i = 1; i <= n; ++i) {
      Submission x = sample(i);
      x.endpoint = std::string(n > 1 ? 3000 : 1, 'e');  // a page or so per record
      ASSERT_TRUE(s->add(x).ok());
    }
  }
  void sql(const char* statement) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, statement, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
};

TEST_F(SubmissionStoreRefusedFile, Garbage) {
  {
    std::ofstream f(path_, std::ios::binary);
    std::mt19937 rng(7);
    for (int i = 0; i < 8192; ++i) f.put(static_cast<char>(rng()));
  }
  expect_refused("file is not a database");
}

TEST_F(SubmissionStoreRefusedFile, TruncatedInTheMiddle) {
  fill(40);
  ASSERT_FALSE(fs::exists(path_ + "-wal")) << "the last close checkpoints";
  const auto size = fs::file_size(path_);
  ASSERT_GT(size, 16u * 4096);
  fs::resize_file(path_, size / 2);
  expect_refused("");
}

TEST_F(SubmissionStoreRefusedFile, ABitFlippedInAPage) {
  fill(40);
  // The type byte of page 3's b-tree header: 0x0d (table leaf) becomes 0x1d, not a page type.
  {
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2 * 4096);
    char c = 0;
    f.seekg(2 * 4096);
    f.get(c);
    f.seekp(2 * 4096);
    f.put(static_cast<char>(c ^ 0x10));
  }
  expect_refused("");
}

TEST_F(SubmissionStoreRefusedFile, AnotherSchema) {
  sql("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER); INSERT INTO meta VALUES ('format', 1);"
      "CREATE TABLE other (x INTEGER);");
  expect_refused("another schema");
}

TEST_F(SubmissionStoreRefusedFile, AnotherVersion) {
  fill(1);
  sql("UPDATE meta SET value = 2 WHERE key = 'format'");
  expect_refused("format 2, this sluiced reads 1");
}

TEST_F(SubmissionStoreRefusedFile, ARowThisStoreNeverWrites) {
  fill(3);
  sql("UPDATE submissions SET state = 'bogus' WHERE sample_id = 'sample-2'");
  expect_refused("unknown state");
}

TEST_F(SubmissionStoreRefusedFile, ItsWriteAheadLogGoesAsideWithIt) {
  // A child killed with the store open leaves its last transactions in the -wal file.
  const pid_t pid = fork();
  if (pid == 0) {
    auto s = SubmissionStore::open(path_).store;
    for (unsigned i = 1; i <= 50; ++i) s->add(sample(i));
    sqlite3* db = nullptr;
    sqlite3_open(path_.c_str(), &db);
    sqlite3_exec(db, "UPDATE meta SET value = 2 WHERE key = 'format'", nullptr, nullptr, nullptr);
    raise(SIGKILL);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(fs::exists(path_ + "-wal"));
  SubmissionOpen o = SubmissionStore::open(path_);
  ASSERT_TRUE(o.store);
  EXPECT_TRUE(o.store->stats().corrupt) << o.error;
  EXPECT_TRUE(fs::exists(path_ + ".corrupt-wal"));
  EXPECT_TRUE(o.store->pending().empty()) << "the refused file's log is not replayed into the new one";
}

TEST_F(SubmissionStoreTest, OpenRefusesALimitOutOfRangeAndAnUnusablePath) {
  SubmissionLimits l;
  l.max_age_h = 0;
  SubmissionOpen o = SubmissionStore::open(path_, l);
  EXPECT_FALSE(o.store);
  EXPECT_NE(o.error.find("max_age_h"), std::string::npos);
  o = SubmissionStore::open(root_ + "/missing/dir/submissions.sqlite");
  EXPECT_FALSE(o.store);
  EXPECT_NE(o.error.find("cannot open"), std::string::npos) << o.error;
}

}  // namespace
}  // namespace sluice::control
