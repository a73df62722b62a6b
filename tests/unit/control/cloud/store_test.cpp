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
    EXPECT_NE(std::string(e.what()).find("has schema version 99, newer than this sluice-cloud (1)"), std::string::npos)
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
