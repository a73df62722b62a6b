// control/verdict_store: the verdict cache survives a restart (entries and their fields; expired
// ones dropped), a missing file is an empty cache, and a file that is not a valid store is refused
// with one line and moved aside.
#include "control/verdict_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdio>
#include <fstream>
#include <random>

namespace sluice::control {
namespace {

std::string temp_path(const char* name) {
  const std::string p = ::testing::TempDir() + "/verdict_store_" + std::to_string(getpid()) + "_" + name;
  std::remove(p.c_str());
  std::remove((p + ".corrupt").c_str());
  return p;
}

std::array<uint8_t, 32> sha_of(uint8_t n) {
  std::array<uint8_t, 32> s{};
  s.fill(n);
  return s;
}

bool exists(const std::string& p) { return std::ifstream(p).good(); }

TEST(VerdictStore, EntriesSurviveARestartAndExpiredOnesAreDropped) {
  const std::string path = temp_path("cache.sqlite");
  pipeline::VerdictCache before(64);
  records::FileVerdict bad;
  bad.reputation = records::Reputation::malicious;
  bad.threat_name.set("Win.Test.Agent");
  bad.threat_score = 95;
  records::FileVerdict unknown;
  unknown.reputation = records::Reputation::unknown;
  unknown.upload_wanted = true;
  before.put(sha_of(1).data(), bad, 50'000, 0);
  before.put(sha_of(2).data(), unknown, 20'000, 0);
  const auto entries = snapshot_verdicts(before, 10'000);
  ASSERT_EQ(entries.size(), 2u);
  ASSERT_EQ(save_verdict_store(path, entries), "");
  EXPECT_FALSE(exists(path + ".tmp"));

  pipeline::VerdictCache after(64);
  const StoreLoad r = load_verdict_store(path, after, 30'000);  // sha 2 expired by then
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.loaded, 1u);
  EXPECT_EQ(r.expired, 1u);
  records::FileVerdict v;
  ASSERT_TRUE(after.lookup(sha_of(1).data(), 30'000, v));
  EXPECT_EQ(v.reputation, records::Reputation::malicious);
  EXPECT_EQ(v.threat_name.view(), "Win.Test.Agent");
  EXPECT_EQ(v.threat_score, 95);
  EXPECT_FALSE(after.lookup(sha_of(1).data(), 50'000, v)) << "the expiry travels with the entry";
  EXPECT_FALSE(after.lookup(sha_of(2).data(), 30'000, v));
  // Saved again over the old file.
  ASSERT_EQ(save_verdict_store(path, {}), "");
  pipeline::VerdictCache empty(64);
  EXPECT_EQ(load_verdict_store(path, empty, 0).loaded, 0u);
}

TEST(VerdictStore, AMissingFileIsAnEmptyCache) {
  pipeline::VerdictCache c(8);
  const StoreLoad r = load_verdict_store(temp_path("missing.sqlite"), c, 0);
  EXPECT_EQ(r.error, "");
  EXPECT_FALSE(r.corrupt);
  EXPECT_EQ(r.loaded, 0u);
}

TEST(VerdictStore, AFileThatIsNotAStoreIsRefusedAndMovedAside) {
  const std::string path = temp_path("garbage.sqlite");
  {
    std::ofstream f(path);
    std::mt19937 rng(7);
    for (int i = 0; i < 8192; ++i) f.put(static_cast<char>(rng()));
  }
  pipeline::VerdictCache c(8);
  const StoreLoad r = load_verdict_store(path, c, 0);
  EXPECT_TRUE(r.corrupt);
  EXPECT_NE(r.error.find("verdict cache " + path + " is not a valid cache (file is not a database)"), std::string::npos)
      << r.error;
  EXPECT_NE(r.error.find("moved to " + path + ".corrupt"), std::string::npos) << r.error;
  EXPECT_EQ(r.error.find('\n'), std::string::npos);
  EXPECT_FALSE(exists(path));
  EXPECT_TRUE(exists(path + ".corrupt"));

  // A database of another shape (another program's file) is refused too.
  const std::string other = temp_path("other.sqlite");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(other.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  const StoreLoad o = load_verdict_store(other, c, 0);
  EXPECT_TRUE(o.corrupt);
  EXPECT_NE(o.error.find("no such table: meta"), std::string::npos) << o.error;
}

TEST(VerdictStore, ATruncatedStoreIsRefused) {
  const std::string path = temp_path("truncated.sqlite");
  pipeline::VerdictCache c(4096);
  records::FileVerdict v;
  v.reputation = records::Reputation::clean;
  for (int i = 0; i < 2000; ++i) {
    std::array<uint8_t, 32> s{};
    std::memcpy(s.data(), &i, sizeof(i));
    s[31] = 1;
    c.put(s.data(), v, 1'000'000, 0);
  }
  ASSERT_EQ(save_verdict_store(path, snapshot_verdicts(c, 0)), "");
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  ASSERT_GT(bytes.size(), 8192u);
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  pipeline::VerdictCache after(4096);
  const StoreLoad r = load_verdict_store(path, after, 0);
  EXPECT_TRUE(r.corrupt) << r.error << " loaded " << r.loaded;
}

}  // namespace
}  // namespace sluice::control
