#include "control/cloud/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace sluice::cloud;

namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-cloud-store-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Runs SQL on the store's file through a second connection (as an operator's sqlite3 would).
  void sql(const std::string& statement) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((root_ / Store::kFileName).c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, statement.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  std::filesystem::path root_;
};

Sha256 hash_of(uint8_t b) {
  Sha256 h{};
  h.fill(b);
  return h;
}

}  // namespace

TEST(Sha256Hex, ParsesEitherCaseAndRendersLower) {
  const std::string lower = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  std::string upper = lower;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  Sha256 a{}, b{};
  ASSERT_TRUE(parse_sha256(lower, a));
  ASSERT_TRUE(parse_sha256(upper, b));
  EXPECT_EQ(a, b);
  EXPECT_EQ(a[0], 0xe3);
  EXPECT_EQ(a[31], 0x55);
  EXPECT_EQ(sha256_hex(b), lower);
}

TEST(Sha256Hex, RefusesAnythingElse) {
  Sha256 h{};
  const std::string good(64, 'a');
  EXPECT_FALSE(parse_sha256("", h));
  EXPECT_FALSE(parse_sha256(good.substr(1), h));
  EXPECT_FALSE(parse_sha256(good + "a", h));
  for (char bad : {'g', 'G', ' ', '-', '\0', 'x', '/'}) {
    std::string s = good;
    s[17] = bad;
    EXPECT_FALSE(parse_sha256(s, h)) << "byte " << int(bad);
  }
}

TEST(Dispositions, NamesRoundTrip) {
  for (Disposition d : {Disposition::clean, Disposition::malicious, Disposition::unknown})
    EXPECT_EQ(parse_disposition(disposition_name(d)), d);
  EXPECT_FALSE(parse_disposition("Clean"));
  EXPECT_FALSE(parse_disposition(""));
}

TEST_F(StoreTest, UnknownHashHasNoRecord) {
  Store s(root_);
  const FileRecord r = s.lookup(hash_of(1));
  EXPECT_FALSE(r.known);
  EXPECT_EQ(r.disposition, Disposition::unknown);
  EXPECT_FALSE(r.threat_name);
  EXPECT_FALSE(r.threat_score);
  EXPECT_FALSE(r.last_changed);
}

TEST_F(StoreTest, SetThenLookUpInOrderWithDuplicates) {
  Store s(root_);
  s.set(hash_of(1), Disposition::malicious, "Evil", 90, 1000);
  s.set(hash_of(2), Disposition::clean, std::nullopt, std::nullopt, 1001);
  const std::vector<Sha256> q = {hash_of(2), hash_of(3), hash_of(1), hash_of(2)};
  const auto r = s.lookup(q);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].disposition, Disposition::clean);
  EXPECT_EQ(r[0].last_changed, 1001);
  EXPECT_FALSE(r[1].known);
  EXPECT_EQ(r[2].disposition, Disposition::malicious);
  EXPECT_EQ(r[2].threat_name, "Evil");
  EXPECT_EQ(r[2].threat_score, 90);
  EXPECT_EQ(r[3].disposition, Disposition::clean);
}

TEST_F(StoreTest, ChangeFeedRecordsOnlyChangesOfDisposition) {
  Store s(root_);
  EXPECT_EQ(s.last_change_seq(), 0u);
  s.set(hash_of(1), Disposition::unknown, std::nullopt, std::nullopt, 10);  // unknown -> unknown: no entry
  EXPECT_EQ(s.last_change_seq(), 0u);
  EXPECT_EQ(s.lookup(hash_of(1)).last_changed, 10);  // but a record now, first stored at 10
  s.set(hash_of(1), Disposition::malicious, "A", std::nullopt, 20);
  const FileRecord same = s.set(hash_of(1), Disposition::malicious, "B", 70, 30);  // same disposition
  EXPECT_EQ(same.last_changed, 20);
  EXPECT_EQ(same.threat_name, "B");
  s.set(hash_of(1), Disposition::clean, std::nullopt, std::nullopt, 40);
  s.set(hash_of(2), Disposition::clean, std::nullopt, std::nullopt, 50);
  const ChangePage all = s.changes(0, 10);
  ASSERT_EQ(all.changes.size(), 3u);
  EXPECT_FALSE(all.more);
  EXPECT_EQ(all.changes[0].seq, 1u);
  EXPECT_EQ(all.changes[0].old_disposition, Disposition::unknown);
  EXPECT_EQ(all.changes[0].new_disposition, Disposition::malicious);
  EXPECT_EQ(all.changes[0].threat_name, "A");
  EXPECT_EQ(all.changes[0].changed_at, 20);
  EXPECT_EQ(all.changes[1].old_disposition, Disposition::malicious);
  EXPECT_EQ(all.changes[1].new_disposition, Disposition::clean);
  EXPECT_FALSE(all.changes[1].threat_name);
  EXPECT_EQ(all.changes[2].sha256, hash_of(2));
  EXPECT_EQ(s.last_change_seq(), 3u);

  const ChangePage first = s.changes(0, 2);
  EXPECT_EQ(first.changes.size(), 2u);
  EXPECT_TRUE(first.more);
  const ChangePage rest = s.changes(first.changes.back().seq, 2);
  ASSERT_EQ(rest.changes.size(), 1u);
  EXPECT_EQ(rest.changes[0].seq, 3u);
  EXPECT_FALSE(rest.more);
  EXPECT_TRUE(s.changes(3, 5).changes.empty());
}

TEST_F(StoreTest, PersistsAcrossReopenWithTheSameId) {
  std::string id;
  {
    Store s(root_);
    id = s.id();
    EXPECT_EQ(id.size(), 16u);
    s.set(hash_of(7), Disposition::malicious, "Kept", 100, 5);
  }
  Store s(root_);
  EXPECT_EQ(s.id(), id);
  const FileRecord r = s.lookup(hash_of(7));
  EXPECT_TRUE(r.known);
  EXPECT_EQ(r.threat_name, "Kept");
  EXPECT_EQ(s.last_change_seq(), 1u);
}

TEST_F(StoreTest, SeqIsNeverReused) {
  {
    Store s(root_);
    s.set(hash_of(1), Disposition::malicious, std::nullopt, std::nullopt, 1);
    s.set(hash_of(2), Disposition::malicious, std::nullopt, std::nullopt, 2);
  }
  sql("DELETE FROM changes");  // retention, some day
  Store s(root_);
  s.set(hash_of(3), Disposition::malicious, std::nullopt, std::nullopt, 3);
  EXPECT_EQ(s.last_change_seq(), 3u);
}

// The feed's retention (--feed-retention-days): old entries go, the seq and every cursor stay.
TEST_F(StoreTest, PruningTheFeedKeepsTheSeqAndTheCursors) {
  Store s(root_);
  s.set(hash_of(1), Disposition::malicious, std::nullopt, std::nullopt, 100);
  s.set(hash_of(2), Disposition::malicious, std::nullopt, std::nullopt, 200);
  s.set(hash_of(3), Disposition::malicious, std::nullopt, std::nullopt, 300);
  EXPECT_EQ(s.prune_changes(250), 2u);
  EXPECT_EQ(s.last_change_seq(), 3u);
  // A consumer that had read up to seq 1 gets what is left after it.
  const ChangePage after1 = s.changes(1, 10);
  ASSERT_EQ(after1.changes.size(), 1u);
  EXPECT_EQ(after1.changes[0].seq, 3u);
  // Everything pruned: the seq is still the highest given, new entries continue it.
  EXPECT_EQ(s.prune_changes(1000), 1u);
  EXPECT_EQ(s.last_change_seq(), 3u);
  EXPECT_TRUE(s.changes(3, 10).changes.empty());
  s.set(hash_of(4), Disposition::clean, std::nullopt, std::nullopt, 1100);
  EXPECT_EQ(s.changes(3, 10).changes.at(0).seq, 4u);
}

TEST_F(StoreTest, OneStorePerDirectory) {
  Store s(root_);
  try {
    Store again(root_);
    FAIL() << "a second store opened";
  } catch (const StoreError& e) {
    EXPECT_EQ(std::string(e.what()), root_.string() + " is in use by another sluice-cloud (" + root_.string() +
                                         "/cloud.lock is locked)");
  }
}

TEST_F(StoreTest, RefusesWhatIsNotItsStore) {
  {
    std::ofstream f(root_ / Store::kFileName);
    f << std::string(8192, 'x');
  }
  EXPECT_THROW(Store{root_}, StoreError);
  std::filesystem::remove(root_ / Store::kFileName);
  sql("CREATE TABLE other(x)");
  try {
    Store s(root_);
    FAIL() << "opened another program's database";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("is not a sluice-cloud store"), std::string::npos) << e.what();
  }
}

TEST_F(StoreTest, RefusesANewerSchema) {
  { Store s(root_); }
  sql("PRAGMA user_version = 99");
  try {
    Store s(root_);
    FAIL() << "opened a newer schema";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("has schema version 99, newer than this sluice-cloud (2)"), std::string::npos)
        << e.what();
  }
}

TEST_F(StoreTest, RunTimeFailuresThrowAndTheStoreRecovers) {
  Store s(root_);
  s.set(hash_of(1), Disposition::clean, std::nullopt, std::nullopt, 1);
  sql("ALTER TABLE dispositions RENAME TO hidden");
  EXPECT_THROW(s.lookup(hash_of(1)), StoreError);
  const std::vector<Sha256> q = {hash_of(1), hash_of(2)};
  EXPECT_THROW(s.lookup(q), StoreError);
  EXPECT_THROW(s.set(hash_of(2), Disposition::clean, std::nullopt, std::nullopt, 2), StoreError);
  sql("ALTER TABLE hidden RENAME TO dispositions");
  EXPECT_EQ(s.lookup(q)[0].disposition, Disposition::clean);  // no transaction left open
  s.set(hash_of(2), Disposition::malicious, std::nullopt, std::nullopt, 3);
  EXPECT_EQ(s.lookup(hash_of(2)).disposition, Disposition::malicious);
}

TEST_F(StoreTest, MigratesAVersion1Store) {
  // A store as sluice-cloud 0.1.0 (schema version 1) left it, with one admin record.
  sql(R"sql(
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE dispositions (
      sha256 BLOB PRIMARY KEY CHECK (length(sha256) = 32),
      disposition TEXT NOT NULL CHECK (disposition IN ('clean', 'malicious', 'unknown')),
      threat_name TEXT, threat_score INTEGER CHECK (threat_score BETWEEN 0 AND 100),
      last_changed INTEGER NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, sha256 BLOB NOT NULL CHECK (length(sha256) = 32),
      old TEXT NOT NULL, new TEXT NOT NULL, threat_name TEXT, changed_at INTEGER NOT NULL);
    INSERT INTO meta VALUES ('store_id', '0123456789abcdef');
    INSERT INTO dispositions VALUES (zeroblob(32), 'malicious', 'Old.Name', 90, 5, 5);
    PRAGMA application_id = 1397506884;
    PRAGMA user_version = 1;
  )sql");
  Store s(root_);
  EXPECT_EQ(s.id(), "0123456789abcdef");
  const FileRecord r = s.lookup(hash_of(0));
  EXPECT_TRUE(r.known);
  EXPECT_EQ(r.disposition, Disposition::malicious);
  EXPECT_EQ(r.threat_name, "Old.Name");
  EXPECT_FALSE(r.by_analysis);  // what was there was the admin's
  EXPECT_FALSE(r.has_sample);
  EXPECT_TRUE(s.unfinished_samples().empty());
}

TEST_F(StoreTest, SamplesFromSubmissionToResult) {
  Store s(root_);
  const Sha256 h = hash_of(7);
  const std::string id1(32, 'a'), id2(32, 'b');
  EXPECT_FALSE(s.live_sample(h));
  EXPECT_FALSE(s.sample(id1));
  const Sample added = s.add_sample(id1, h, "a.doc", 1234, "client-1", 86400 * 3 + 5);
  EXPECT_EQ(added.state, SampleState::wait);
  const auto got = s.sample(id1);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->id, id1);
  EXPECT_EQ(got->sha256, h);
  EXPECT_EQ(got->filename, "a.doc");
  EXPECT_EQ(got->size, 1234u);
  EXPECT_EQ(got->submitted_at, 86400 * 3 + 5);
  EXPECT_FALSE(got->completed_at);
  EXPECT_FALSE(got->result);
  EXPECT_TRUE(s.lookup(h).has_sample);
  EXPECT_FALSE(s.lookup(h).known);
  EXPECT_EQ(s.live_sample(h)->id, id1);
  EXPECT_EQ(s.unfinished_samples().size(), 1u);
  EXPECT_EQ(s.samples_on_day("client-1", 3), 1u);
  EXPECT_EQ(s.samples_on_day("client-1", 2), 0u);
  EXPECT_EQ(s.samples_on_day("client-2", 3), 0u);

  s.set_sample_state(id1, SampleState::run);
  EXPECT_EQ(s.sample(id1)->state, SampleState::run);

  // A failure leaves the disposition alone; the hash is wanted again.
  SampleResult failed{std::nullopt, "failed", std::nullopt, R"({"error":"boom"})"};
  FileRecord r = s.finish_sample(id1, SampleState::fail, failed, std::nullopt, 86400 * 3 + 9);
  EXPECT_FALSE(r.known);
  EXPECT_FALSE(r.has_sample);
  EXPECT_FALSE(s.live_sample(h));
  EXPECT_TRUE(s.unfinished_samples().empty());
  ASSERT_TRUE(s.sample(id1)->result);
  EXPECT_EQ(s.sample(id1)->result->report, R"({"error":"boom"})");
  EXPECT_EQ(s.sample(id1)->completed_at, 86400 * 3 + 9);

  // A second submission, then a result that sets the disposition (and feeds it).
  s.add_sample(id2, h, std::nullopt, 1234, "client-1", 86400 * 3 + 20);
  EXPECT_EQ(s.samples_on_day("client-1", 3), 2u);
  SampleResult ok{91, "malicious", "Bad.Macro", R"({"findings":[]})"};
  r = s.finish_sample(id2, SampleState::succ, ok, AnalysisDisposition{Disposition::malicious, "Bad.Macro", 91},
                      86400 * 3 + 30);
  EXPECT_EQ(r.disposition, Disposition::malicious);
  EXPECT_EQ(r.threat_score, 91);
  EXPECT_TRUE(r.by_analysis);
  EXPECT_TRUE(r.has_sample);
  EXPECT_EQ(s.lookup(h).threat_name, "Bad.Macro");
  const auto page = s.changes(0, 10);
  ASSERT_EQ(page.changes.size(), 1u);
  EXPECT_EQ(page.changes[0].new_disposition, Disposition::malicious);
  EXPECT_EQ(page.changes[0].threat_name, "Bad.Macro");
  const auto list = s.samples_of(h, 10);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id, id2);  // newest first
  EXPECT_EQ(list[0].result->score, 91);
  EXPECT_EQ(list[1].id, id1);
  EXPECT_EQ(s.samples_of(h, 1).size(), 1u);
  EXPECT_EQ(s.live_sample(h)->id, id2);
}

TEST_F(StoreTest, AnAnalysisNeverOverridesTheAdmin) {
  Store s(root_);
  const Sha256 h = hash_of(8);
  s.set(h, Disposition::clean, std::nullopt, std::nullopt, 1);
  s.add_sample(std::string(32, 'c'), h, std::nullopt, 1, "c", 2);
  SampleResult ok{95, "malicious", "X", "{}"};
  FileRecord r = s.finish_sample(std::string(32, 'c'), SampleState::succ, ok,
                                 AnalysisDisposition{Disposition::malicious, "X", 95}, 3);
  EXPECT_EQ(r.disposition, Disposition::clean);
  EXPECT_FALSE(r.threat_score);
  EXPECT_EQ(s.changes(0, 10).changes.size(), 1u);  // the admin's only
  // An admin "unknown" is no word on the file: the next analysis sets it.
  s.set(h, Disposition::unknown, std::nullopt, std::nullopt, 4);
  s.add_sample(std::string(32, 'd'), h, std::nullopt, 1, "c", 5);
  r = s.finish_sample(std::string(32, 'd'), SampleState::succ, ok, AnalysisDisposition{Disposition::malicious, "X", 95}, 6);
  EXPECT_EQ(r.disposition, Disposition::malicious);
  // and a later admin PUT wins over it
  r = s.set(h, Disposition::clean, std::nullopt, std::nullopt, 7);
  EXPECT_FALSE(r.by_analysis);
  EXPECT_EQ(s.lookup(h).disposition, Disposition::clean);
}

TEST_F(StoreTest, DailyCountsOlderThanYesterdayAreForgotten) {
  Store s(root_);
  s.add_sample(std::string(32, '1'), hash_of(1), std::nullopt, 1, "c", 86400 * 10);
  s.add_sample(std::string(32, '2'), hash_of(2), std::nullopt, 1, "c", 86400 * 11);
  EXPECT_EQ(s.samples_on_day("c", 10), 1u);
  s.add_sample(std::string(32, '3'), hash_of(3), std::nullopt, 1, "c", 86400 * 12);
  EXPECT_EQ(s.samples_on_day("c", 10), 0u);
  EXPECT_EQ(s.samples_on_day("c", 11), 1u);
  EXPECT_EQ(s.samples_on_day("c", 12), 1u);
}

TEST_F(StoreTest, SamplesPersistAcrossReopen) {
  {
    Store s(root_);
    s.add_sample(std::string(32, 'e'), hash_of(9), "x.bin", 10, "c", 100);
    s.set_sample_state(std::string(32, 'e'), SampleState::proc);
  }
  Store s(root_);
  const auto u = s.unfinished_samples();
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0].state, SampleState::proc);
  EXPECT_EQ(u[0].filename, "x.bin");
}

TEST(SampleStates, NamesRoundTrip) {
  for (auto st : {SampleState::wait, SampleState::prep, SampleState::run, SampleState::proc, SampleState::succ,
                  SampleState::fail})
    EXPECT_EQ(parse_sample_state(sample_state_name(st)), st);
  EXPECT_FALSE(parse_sample_state("done"));
  EXPECT_TRUE(is_finished(SampleState::fail));
  EXPECT_FALSE(is_finished(SampleState::proc));
}
