// control/quarantine_store: exact bytes in and out (put, read, export), metadata, release and
// delete, list filters and paging, retention, both overflow actions, reopen, a process killed at
// every disk operation of a write (whole entry or nothing), and torn or corrupt files found,
// reported and set aside while the rest loads.
#include "control/quarantine_store.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <thread>

namespace sluice::control {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kT0 = 1'800'000'000'000;  // 2027-01-15, wall-clock ms
constexpr int64_t kDay = 86'400'000;

std::string sha256_hex(std::string_view data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += hex[d[i] >> 4];
    s += hex[d[i] & 15];
  }
  return s;
}

// A message of `size` bytes with every byte value in it (NUL, CR, LF, 8-bit).
std::string message(std::size_t size, unsigned seed) {
  std::string head = "From: a@example.org\r\nSubject: test " + std::to_string(seed) + "\r\n\r\n";
  std::mt19937 rng(seed);
  std::string m = head.substr(0, std::min(head.size(), size));
  while (m.size() < size) m.push_back(static_cast<char>(rng()));
  return m;
}

QuarantineEntry entry_for(const std::string& bytes, unsigned n = 1) {
  QuarantineEntry e;
  e.received_ms = kT0 - 5000;
  e.message_sha256 = sha256_hex(bytes);
  e.flow_id = 1000 + n;
  e.transaction = n % 3;
  e.client_ip = "192.0.2.10";
  e.client_port = static_cast<uint16_t>(40000 + n);
  e.server_ip = "2001:db8::25";
  e.server_port = 25;
  e.helo = "mx.example.org";
  e.mail_from = "sender" + std::to_string(n) + "@Example.ORG";
  e.rcpt_to = {"a@example.net", "b@example.net"};
  e.subject = "Invoice " + std::to_string(n) + " \xc3\xa9t\xc3\xa9";
  e.message_id = "<" + std::to_string(n) + "@example.org>";
  e.files.push_back({"invoice.docm", sha256_hex("file" + std::to_string(n)), "unknown", "analysis_pending"});
  e.reasons = {"file_analysis"};
  return e;
}

class QuarantineStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-quarantine-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/quarantine";
  }
  void TearDown() override {
    QuarantineStore::set_step_hook_for_tests(nullptr);
    fs::remove_all(root_);
  }

  std::unique_ptr<QuarantineStore> open_ok(const QuarantineLimits& limits = {}, std::vector<std::string>* problems = nullptr) {
    QuarantineOpen o = QuarantineStore::open(dir_, limits);
    EXPECT_TRUE(o.store) << o.error;
    if (problems)
      *problems = o.problems;
    else
      for (const auto& p : o.problems) ADD_FAILURE() << "unexpected problem: " << p;
    return std::move(o.store);
  }

  std::string put_ok(QuarantineStore& q, const std::string& bytes, unsigned n, int64_t now = kT0) {
    const QuarantinePut r = q.put(entry_for(bytes, n), bytes, now);
    EXPECT_TRUE(r.ok()) << r.message;
    return r.id;
  }

  std::set<std::string> files_in(const std::string& d) const {
    std::set<std::string> out;
    if (!fs::exists(d)) return out;
    for (const auto& f : fs::directory_iterator(d)) out.insert(f.path().filename().string());
    return out;
  }

  std::string root_, dir_;
};

void expect_same(const QuarantineEntry& a, const QuarantineEntry& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.received_ms, b.received_ms);
  EXPECT_EQ(a.stored_ms, b.stored_ms);
  EXPECT_EQ(a.message_sha256, b.message_sha256);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.flow_id, b.flow_id);
  EXPECT_EQ(a.transaction, b.transaction);
  EXPECT_EQ(a.client_ip, b.client_ip);
  EXPECT_EQ(a.client_port, b.client_port);
  EXPECT_EQ(a.server_ip, b.server_ip);
  EXPECT_EQ(a.server_port, b.server_port);
  EXPECT_EQ(a.helo, b.helo);
  EXPECT_EQ(a.mail_from, b.mail_from);
  EXPECT_EQ(a.rcpt_to, b.rcpt_to);
  EXPECT_EQ(a.subject, b.subject);
  EXPECT_EQ(a.message_id, b.message_id);
  ASSERT_EQ(a.files.size(), b.files.size());
  for (std::size_t i = 0; i < a.files.size(); ++i) {
    EXPECT_EQ(a.files[i].filename, b.files[i].filename);
    EXPECT_EQ(a.files[i].sha256, b.files[i].sha256);
    EXPECT_EQ(a.files[i].reputation, b.files[i].reputation);
    EXPECT_EQ(a.files[i].pending, b.files[i].pending);
  }
  EXPECT_EQ(a.reasons, b.reasons);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.action, b.action);
  EXPECT_EQ(a.by, b.by);
  EXPECT_EQ(a.why, b.why);
  EXPECT_EQ(a.changed_ms, b.changed_ms);
}

TEST_F(QuarantineStoreTest, PutShowReadAndExportGiveTheExactBytes) {
  auto q = open_ok();
  const std::string small = message(50 << 10, 1), big = message(1 << 20, 2), tiny = "x";
  std::map<std::string, std::string> bytes_of;
  unsigned n = 0;
  for (const std::string* m : {&small, &big, &tiny}) {
    const QuarantineEntry in = entry_for(*m, ++n);
    const QuarantinePut r = q->put(in, *m, kT0 + n);
    ASSERT_TRUE(r.ok()) << r.message;
    EXPECT_TRUE(r.evicted.empty());
    EXPECT_EQ(r.id.size(), 28u) << r.id;
    bytes_of[r.id] = *m;
    const auto shown = q->show(r.id);
    ASSERT_TRUE(shown);
    QuarantineEntry expected = in;
    expected.id = r.id;
    expected.stored_ms = kT0 + n;
    expected.size = m->size();
    expect_same(*shown, expected);
  }
  EXPECT_EQ(q->stats().held, 3u);
  EXPECT_EQ(q->stats().stored, 3u);
  for (const auto& [id, m] : bytes_of) {
    std::string out;
    ASSERT_TRUE(q->read(id, out).ok());
    EXPECT_EQ(out.size(), m.size());
    EXPECT_EQ(sha256_hex(out), sha256_hex(m));
    const std::string path = root_ + "/" + id + ".eml";
    ASSERT_TRUE(q->export_eml(id, path).ok());
    std::ifstream f(path, std::ios::binary);
    const std::string exported((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(sha256_hex(exported), q->show(id)->message_sha256);
    EXPECT_FALSE(fs::exists(path + ".tmp"));
  }
  EXPECT_EQ(q->stats().exports, 3u);
  // The files on disk: one message and one metadata file per entry, nothing else.
  EXPECT_EQ(files_in(dir_).size(), 6u);
  const auto id = bytes_of.begin()->first;
  EXPECT_EQ(fs::file_size(dir_ + "/" + id + ".eml"), bytes_of.begin()->second.size());
  EXPECT_EQ(q->stats().bytes, [&] {
    uint64_t b = 0;
    for (const auto& f : fs::directory_iterator(dir_)) b += f.file_size();
    return b;
  }());
}

TEST_F(QuarantineStoreTest, PutRefusesBytesThatAreNotTheEntrysMessage) {
  auto q = open_ok();
  const std::string m = message(4096, 3);
  QuarantineEntry e = entry_for(m);
  QuarantinePut r = q->put(e, m.substr(1), kT0);
  EXPECT_EQ(r.error, QuarantineError::invalid);
  EXPECT_NE(r.message.find("SHA-256"), std::string::npos) << r.message;
  e.message_sha256 = "nothex";
  EXPECT_EQ(q->put(e, m, kT0).error, QuarantineError::invalid);
  e = entry_for(m);
  e.files[0].sha256 = "abc";
  EXPECT_EQ(q->put(e, m, kT0).error, QuarantineError::invalid);
  // Upper-case hex is the same SHA-256.
  e = entry_for(m);
  for (char& c : e.message_sha256) c = static_cast<char>(toupper(c));
  r = q->put(e, m, kT0);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(q->show(r.id)->message_sha256, sha256_hex(m));
  EXPECT_EQ(q->stats().refused_invalid, 3u);
  EXPECT_EQ(files_in(dir_).size(), 2u);
}

TEST_F(QuarantineStoreTest, ReleaseAndDeleteRecordWhoAndWhy) {
  auto q = open_ok();
  const std::string m1 = message(10000, 4), m2 = message(20000, 5);
  const std::string a = put_ok(*q, m1, 1), b = put_ok(*q, m2, 2);

  ASSERT_TRUE(q->release(a, "pass", "analysis", "score 12: clean", kT0 + 60'000).ok());
  auto e = q->show(a);
  EXPECT_EQ(e->state, QuarantineState::released);
  EXPECT_EQ(e->action, "pass");
  EXPECT_EQ(e->by, "analysis");
  EXPECT_EQ(e->why, "score 12: clean");
  EXPECT_EQ(e->changed_ms, kT0 + 60'000);
  std::string out;
  EXPECT_TRUE(q->read(a, out).ok()) << "a released message keeps its bytes";
  EXPECT_EQ(q->release(a, "pass", "x", "", kT0).error, QuarantineError::wrong_state);
  EXPECT_EQ(q->release(b, "", "x", "", kT0).error, QuarantineError::invalid);
  EXPECT_EQ(q->release("20270115-000000-000-00000000", "pass", "x", "", kT0).error, QuarantineError::not_found);
  EXPECT_EQ(q->release("../../etc/passwd", "pass", "x", "", kT0).error, QuarantineError::not_found);

  ASSERT_TRUE(q->delete_entry(b, "operator alice", "spam", kT0 + 120'000).ok());
  e = q->show(b);
  EXPECT_EQ(e->state, QuarantineState::deleted);
  EXPECT_EQ(e->action, "delete");
  EXPECT_EQ(e->by, "operator alice");
  EXPECT_FALSE(fs::exists(dir_ + "/" + b + ".eml")) << "deleting removes the message";
  EXPECT_TRUE(fs::exists(dir_ + "/" + b + ".meta")) << "and keeps the record";
  EXPECT_EQ(q->read(b, out).error, QuarantineError::wrong_state);
  EXPECT_EQ(q->export_eml(b, root_ + "/x.eml").error, QuarantineError::wrong_state);
  EXPECT_EQ(q->delete_entry(b, "x", "", kT0).error, QuarantineError::wrong_state);
  EXPECT_EQ(q->release(b, "pass", "x", "", kT0).error, QuarantineError::wrong_state);
  ASSERT_TRUE(q->delete_entry(a, "operator", "", kT0).ok()) << "a released entry can be deleted";
  EXPECT_EQ(q->stats().held, 0u);
  EXPECT_EQ(q->stats().released, 0u);
  EXPECT_EQ(q->stats().deleted, 2u);
  EXPECT_EQ(q->stats().releases, 1u);
  EXPECT_EQ(q->stats().deletes, 2u);
}

TEST_F(QuarantineStoreTest, ListFiltersAndPages) {
  auto q = open_ok();
  std::vector<std::string> ids;
  const std::string shared_file = sha256_hex("shared attachment");
  for (unsigned i = 0; i < 25; ++i) {
    const std::string m = message(1000 + i, 100 + i);
    QuarantineEntry e = entry_for(m, i);
    e.mail_from = (i % 2 ? "bob@corp.example" : "alice@Other.example");
    if (i % 5 == 0) e.files.push_back({"x.xlsm", shared_file, "unknown", "analysis_pending"});
    const QuarantinePut r = q->put(e, m, kT0 + i * 1000);
    ASSERT_TRUE(r.ok()) << r.message;
    ids.push_back(r.id);
  }
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end())) << "ids sort by stored time";
  for (unsigned i = 0; i < 25; i += 3) ASSERT_TRUE(q->release(ids[i], "pass", "t", "", kT0).ok());

  QuarantineQuery all;
  all.limit = 1000;
  EXPECT_EQ(q->list(all).entries.size(), 25u);
  QuarantineQuery held;
  held.state = QuarantineState::held;
  held.limit = 1000;
  EXPECT_EQ(q->list(held).matching, 25u - 9u);
  QuarantineQuery bob;
  bob.sender = "BOB@corp";
  bob.limit = 1000;
  for (const auto& e : q->list(bob).entries) EXPECT_EQ(e.mail_from, "bob@corp.example");
  EXPECT_EQ(q->list(bob).matching, 12u);
  QuarantineQuery since;
  since.since_ms = kT0 + 20'000;
  EXPECT_EQ(q->list(since).matching, 5u);
  QuarantineQuery by_file;
  by_file.file_sha256 = shared_file;
  for (char& c : by_file.file_sha256) c = static_cast<char>(toupper(c));
  EXPECT_EQ(q->list(by_file).matching, 5u);
  QuarantineQuery combined = by_file;
  combined.state = QuarantineState::released;  // i in {0, 15}
  const auto page = q->list(combined);
  ASSERT_EQ(page.entries.size(), 2u);
  EXPECT_EQ(page.entries[0].id, ids[0]);
  EXPECT_EQ(page.entries[1].id, ids[15]);

  // Pages of 10, both orders: every entry once, in order; then a cursor survives a change.
  for (bool newest : {false, true}) {
    QuarantineQuery p;
    p.limit = 10;
    p.newest_first = newest;
    std::vector<std::string> seen;
    for (int pages = 0;; ++pages) {
      ASSERT_LT(pages, 5);
      const auto pg = q->list(p);
      EXPECT_EQ(pg.matching, 25u);
      for (const auto& e : pg.entries) seen.push_back(e.id);
      if (pg.next.empty()) break;
      EXPECT_EQ(pg.next, pg.entries.back().id);
      p.after = pg.next;
    }
    std::vector<std::string> expected = ids;
    if (newest) std::reverse(expected.begin(), expected.end());
    EXPECT_EQ(seen, expected);
  }
  QuarantineQuery p;
  p.limit = 10;
  auto first = q->list(p);
  ASSERT_TRUE(q->delete_entry(ids[10], "t", "", kT0).ok());  // state changes, entry stays
  p.after = first.next;
  EXPECT_EQ(q->list(p).entries.front().id, ids[10]);
  // Limits of the page size.
  p = {};
  p.limit = 0;
  EXPECT_EQ(q->list(p).entries.size(), 1u);
}

TEST_F(QuarantineStoreTest, ReopenLoadsEverythingBack) {
  std::map<std::string, QuarantineEntry> before;
  std::map<std::string, std::string> bytes;
  {
    auto q = open_ok();
    for (unsigned i = 0; i < 12; ++i) {
      const std::string m = message(3000 * (i + 1), 200 + i);
      const std::string id = put_ok(*q, m, i, kT0 + i);
      bytes[id] = m;
    }
    auto it = bytes.begin();
    ASSERT_TRUE(q->release(it->first, "relay", "operator", "false positive", kT0 + 99).ok());
    ++it;
    ASSERT_TRUE(q->delete_entry(it->first, "operator", "phish", kT0 + 100).ok());
    for (const auto& [id, m] : bytes) before[id] = *q->show(id);
  }
  auto q = open_ok();
  EXPECT_EQ(q->stats().loaded, 12u);
  EXPECT_EQ(q->stats().held, 10u);
  EXPECT_EQ(q->stats().released, 1u);
  EXPECT_EQ(q->stats().deleted, 1u);
  QuarantineQuery all;
  all.limit = 100;
  ASSERT_EQ(q->list(all).entries.size(), 12u);
  for (const auto& [id, e] : before) {
    const auto after = q->show(id);
    ASSERT_TRUE(after) << id;
    expect_same(*after, e);
    if (e.state == QuarantineState::deleted) continue;
    std::string out;
    ASSERT_TRUE(q->read(id, out).ok());
    EXPECT_EQ(out, bytes[id]);
  }
}

TEST_F(QuarantineStoreTest, RetentionRemovesOldEntriesOfEveryState) {
  QuarantineLimits limits;
  limits.retention_days = 7;
  std::vector<std::string> ids;
  {
    auto q = open_ok(limits);
    for (int i = 0; i < 6; ++i) ids.push_back(put_ok(*q, message(500, 300 + i), i, kT0 + i * kDay));
    ASSERT_TRUE(q->release(ids[0], "pass", "t", "", kT0).ok());
    ASSERT_TRUE(q->delete_entry(ids[1], "t", "", kT0).ok());
    EXPECT_TRUE(q->expire(kT0 + 7 * kDay - 1).empty());
    const auto gone = q->expire(kT0 + 2 * kDay + 7 * kDay);  // entries 0, 1, 2 are 7 days old or more
    ASSERT_EQ(gone.size(), 3u);
    EXPECT_EQ(gone[0].id, ids[0]);
    EXPECT_EQ(gone[0].state, QuarantineState::released);
    EXPECT_EQ(gone[1].state, QuarantineState::deleted);
    EXPECT_EQ(gone[2].state, QuarantineState::held);
    EXPECT_EQ(q->stats().expired, 3u);
    EXPECT_EQ(q->stats().expired_held, 1u);
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(q->show(ids[i]));
    EXPECT_EQ(files_in(dir_).size(), 6u) << "three entries left, two files each";
  }
  auto q = open_ok(limits);
  EXPECT_EQ(q->stats().loaded, 3u);
}

TEST_F(QuarantineStoreTest, OverflowRefuseKeepsWhatIsStored) {
  QuarantineLimits limits;
  limits.overflow = QuarantineOverflow::refuse;
  limits.max_messages = 3;
  auto q = open_ok(limits);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(put_ok(*q, message(100, 400 + i), i));
  ASSERT_TRUE(q->release(ids[0], "pass", "t", "", kT0).ok());
  const std::string m = message(100, 410);
  const QuarantinePut r = q->put(entry_for(m), m, kT0);
  EXPECT_EQ(r.error, QuarantineError::full);
  EXPECT_NE(r.message.find("max_messages 3"), std::string::npos) << r.message;
  EXPECT_EQ(q->stats().refused_full, 1u);
  EXPECT_EQ(q->stats().released + q->stats().held, 3u);
  q.reset();

  // By size: 1 MiB holds two 400 KiB messages, not three; a 2 MiB message never fits.
  fs::remove_all(dir_);
  limits.max_messages = 100;
  limits.max_mb = 1;
  q = open_ok(limits);
  put_ok(*q, message(400 << 10, 420), 1);
  put_ok(*q, message(400 << 10, 421), 2);
  const std::string third = message(400 << 10, 422);
  EXPECT_EQ(q->put(entry_for(third), third, kT0).error, QuarantineError::full);
  const std::string huge = message(2 << 20, 423);
  const QuarantinePut h = q->put(entry_for(huge), huge, kT0);
  EXPECT_EQ(h.error, QuarantineError::too_large);
  EXPECT_EQ(q->stats().refused_too_large, 1u);
  EXPECT_LE(q->stats().bytes, 1u << 20);
}

TEST_F(QuarantineStoreTest, OverflowEvictsDeletedThenReleasedThenHeldOldestFirst) {
  QuarantineLimits limits;
  limits.max_messages = 4;
  ASSERT_EQ(limits.overflow, QuarantineOverflow::evict_oldest) << "the default";
  auto q = open_ok(limits);
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(put_ok(*q, message(100, 500 + i), i, kT0 + i));
  ASSERT_TRUE(q->release(ids[2], "pass", "t", "", kT0).ok());
  ASSERT_TRUE(q->delete_entry(ids[3], "t", "", kT0).ok());
  std::vector<std::string> evicted;
  for (int i = 0; i < 4; ++i) {
    const std::string m = message(100, 510 + i);
    const QuarantinePut r = q->put(entry_for(m), m, kT0 + 10 + i);
    ASSERT_TRUE(r.ok()) << r.message;
    ASSERT_EQ(r.evicted.size(), 1u);
    evicted.push_back(r.evicted[0].id);
  }
  // The deleted one, the released one, then the held ones by age.
  EXPECT_EQ(evicted, (std::vector<std::string>{ids[3], ids[2], ids[0], ids[1]}));
  EXPECT_EQ(q->stats().evicted, 4u);
  EXPECT_EQ(q->stats().evicted_held, 2u);
  EXPECT_EQ(q->stats().held, 4u);
  EXPECT_EQ(files_in(dir_).size(), 8u);

  // By size: room is made for a large message by evicting as many as needed.
  q.reset();
  fs::remove_all(dir_);
  limits.max_messages = 100;
  limits.max_mb = 1;
  q = open_ok(limits);
  for (int i = 0; i < 4; ++i) put_ok(*q, message(200 << 10, 520 + i), i, kT0 + i);
  const std::string big = message(700 << 10, 530);
  const QuarantinePut r = q->put(entry_for(big), big, kT0 + 10);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.evicted.size(), 3u);
  EXPECT_LE(q->stats().bytes, 1u << 20);
}

// ---- crashes: a child killed with SIGKILL before each disk operation of a write ----

int g_kill_at = 0;  // the step (1-based) at which the child kills itself; 0: count only
int g_steps = 0;
void kill_hook(const char*) {
  if (++g_steps == g_kill_at) raise(SIGKILL);
}
std::vector<std::string> g_step_names;
void record_hook(const char* name) { g_step_names.push_back(name); }

// Runs `op` in a child killed at step `k` (or exiting when op ends first); true if it was killed.
template <typename Op>
bool run_killed_at(int k, Op op) {
  const pid_t pid = fork();
  if (pid == 0) {
    g_steps = 0;
    g_kill_at = k;
    QuarantineStore::set_step_hook_for_tests(kill_hook);
    _exit(op() ? 0 : 3);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) << "status " << status;
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

// Steps of `op` run once in this process, by name.
template <typename Op>
std::vector<std::string> steps_of(Op op) {
  g_step_names.clear();
  QuarantineStore::set_step_hook_for_tests(record_hook);
  op();
  QuarantineStore::set_step_hook_for_tests(nullptr);
  return g_step_names;
}

int index_of(const std::vector<std::string>& steps, const std::string& name) {
  const auto it = std::find(steps.begin(), steps.end(), name);
  return it == steps.end() ? -1 : static_cast<int>(it - steps.begin()) + 1;  // 1-based
}

// Opening after a crash: only interrupted-write lines, nothing corrupt, no temporary file left.
void expect_clean_recovery(const QuarantineOpen& o, const std::string& dir) {
  ASSERT_TRUE(o.store) << o.error;
  const QuarantineStats& s = o.store->stats();
  EXPECT_EQ(s.bad_message + s.bad_metadata + s.missing_message + s.extra_message + s.moved_aside, 0u);
  for (const auto& p : o.problems) EXPECT_NE(p.find("crash"), std::string::npos) << p;
  for (const auto& f : fs::directory_iterator(dir)) {
    const std::string n = f.path().filename().string();
    EXPECT_TRUE(n.ends_with(".eml") || n.ends_with(".meta")) << n;
  }
}

TEST_F(QuarantineStoreTest, KilledAtAnyStepOfPutLeavesTheWholeEntryOrNothing) {
  const std::string old_bytes = message(3000, 600), m = message(600 << 10, 601);  // three write chunks
  const auto steps = steps_of([&] {
    auto q = QuarantineStore::open(root_ + "/count").store;
    return q->put(entry_for(m), m, kT0).ok();
  });
  ASSERT_EQ(steps.size(), 11u) << "create, 3 writes, fsync for the message; create, write, fsync for the "
                                  "metadata; two renames; the directory's fsync";
  const int commit = index_of(steps, "meta.rename");
  for (int k = 1; k <= static_cast<int>(steps.size()) + 1; ++k) {
    SCOPED_TRACE("killed before step " + std::to_string(k) + (k <= static_cast<int>(steps.size()) ? " " + steps[k - 1] : " (none)"));
    fs::remove_all(dir_);
    std::string old_id;
    {
      auto q = open_ok();
      old_id = put_ok(*q, old_bytes, 7);
    }
    const bool killed = run_killed_at(k, [&] {
      auto q = QuarantineStore::open(dir_).store;
      return q && q->put(entry_for(m, 2), m, kT0 + 1).ok();
    });
    EXPECT_EQ(killed, k <= static_cast<int>(steps.size()));
    QuarantineOpen o = QuarantineStore::open(dir_);
    expect_clean_recovery(o, dir_);
    auto& q = *o.store;
    std::string out;
    ASSERT_TRUE(q.read(old_id, out).ok()) << "the entry already there is untouched";
    EXPECT_EQ(out, old_bytes);
    QuarantineQuery all;
    const auto page = q.list(all);
    if (k <= commit) {
      EXPECT_EQ(page.entries.size(), 1u) << "not committed: absent";
    } else {
      ASSERT_EQ(page.entries.size(), 2u) << "committed: whole";
      const auto& e = page.entries[0].id == old_id ? page.entries[1] : page.entries[0];
      ASSERT_TRUE(q.read(e.id, out).ok());
      EXPECT_EQ(sha256_hex(out), sha256_hex(m));
      EXPECT_EQ(e.subject, entry_for(m, 2).subject);
    }
  }
}

TEST_F(QuarantineStoreTest, KilledAtAnyStepOfReleaseDeleteOrExpiryLeavesOneStateOrTheOther) {
  const std::string m = message(5000, 700);
  struct Case {
    const char* name;
    std::function<bool(QuarantineStore&, const std::string&)> op;
    QuarantineState after;  // committed
    bool gone;              // committed: the entry is removed
  };
  const std::vector<Case> cases = {
      {"release", [](QuarantineStore& q, const std::string& id) { return q.release(id, "pass", "t", "", kT0).ok(); },
       QuarantineState::released, false},
      {"delete", [](QuarantineStore& q, const std::string& id) { return q.delete_entry(id, "t", "", kT0).ok(); },
       QuarantineState::deleted, false},
      {"expire", [](QuarantineStore& q, const std::string&) { return q.expire(kT0 + 400 * kDay).size() == 1; },
       QuarantineState::held, true},
  };
  for (const Case& c : cases) {
    const auto steps = steps_of([&] {
      fs::remove_all(root_ + "/count");
      auto q = QuarantineStore::open(root_ + "/count").store;
      const std::string id = q->put(entry_for(m), m, kT0).id;
      QuarantineStore::set_step_hook_for_tests(nullptr);
      g_step_names.clear();
      QuarantineStore::set_step_hook_for_tests(record_hook);
      return c.op(*q, id);
    });
    ASSERT_FALSE(steps.empty()) << c.name;
    const int commit = index_of(steps, c.gone ? "drop.rename" : "meta.rename");
    ASSERT_GT(commit, 0) << c.name;
    for (int k = 1; k <= static_cast<int>(steps.size()) + 1; ++k) {
      SCOPED_TRACE(std::string(c.name) + ": killed before step " + std::to_string(k));
      fs::remove_all(dir_);
      std::string id;
      {
        auto q = open_ok();
        id = put_ok(*q, m, 1);
      }
      run_killed_at(k, [&] {
        auto q = QuarantineStore::open(dir_).store;
        return q && c.op(*q, id);
      });
      QuarantineOpen o = QuarantineStore::open(dir_);
      expect_clean_recovery(o, dir_);
      const auto e = o.store->show(id);
      if (k <= commit) {
        ASSERT_TRUE(e);
        EXPECT_EQ(e->state, QuarantineState::held);
      } else if (c.gone) {
        EXPECT_FALSE(e);
        EXPECT_TRUE(files_in(dir_).empty());
        continue;
      } else {
        ASSERT_TRUE(e);
        EXPECT_EQ(e->state, c.after);
      }
      std::string out;
      if (e->state == QuarantineState::deleted) {
        EXPECT_FALSE(fs::exists(dir_ + "/" + id + ".eml"));
      } else {
        ASSERT_TRUE(o.store->read(id, out).ok());
        EXPECT_EQ(out, m);
      }
    }
  }
}

TEST_F(QuarantineStoreTest, KilledAtRandomTimesDuringManyPutsLosesNothingAcknowledged) {
  std::mt19937 rng(42);
  for (int round = 0; round < 6; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    fs::remove_all(dir_);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      auto q = QuarantineStore::open(dir_).store;
      for (unsigned i = 0;; ++i) {
        const std::string msg = message((64 << 10) + i, 800 + i);
        const QuarantinePut r = q->put(entry_for(msg, i), msg, kT0 + i);
        if (!r.ok()) _exit(3);
        const std::string line = r.id + "\n";
        if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(4);
      }
    }
    close(fds[1]);
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 80));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status));
    std::string acked;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) acked.append(buf, static_cast<std::size_t>(n));
    close(fds[0]);
    QuarantineOpen o = QuarantineStore::open(dir_);
    expect_clean_recovery(o, dir_);
    std::size_t count = 0;
    for (std::size_t pos = 0; pos < acked.size(); pos = acked.find('\n', pos) + 1) {
      const std::string id = acked.substr(pos, acked.find('\n', pos) - pos);
      std::string out;
      ASSERT_TRUE(o.store->read(id, out).ok()) << id;
      EXPECT_EQ(sha256_hex(out), o.store->show(id)->message_sha256);
      ++count;
    }
    // At most one more: committed, killed before it could say so.
    EXPECT_GE(o.store->stats().loaded, count);
    EXPECT_LE(o.store->stats().loaded, count + 1);
  }
}

// ---- torn and corrupt files ----

void flip_bit(const std::string& path, std::size_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c;
  f.get(c);
  f.seekp(static_cast<std::streamoff>(offset));
  f.put(static_cast<char>(c ^ 0x10));
}

TEST_F(QuarantineStoreTest, TornAndCorruptFilesAreReportedAndSetAsideTheRestLoads) {
  std::vector<std::string> ids;
  std::vector<std::string> msgs;
  {
    auto q = open_ok();
    for (int i = 0; i < 8; ++i) {
      msgs.push_back(message(20000 + i, 900 + i));
      ids.push_back(put_ok(*q, msgs.back(), i, kT0 + i));
    }
  }
  const auto eml = [&](int i) { return dir_ + "/" + ids[i] + ".eml"; };
  const auto meta = [&](int i) { return dir_ + "/" + ids[i] + ".meta"; };
  fs::resize_file(eml(0), 12345);                   // torn message
  flip_bit(eml(1), 15000);                          // bit rot in a message
  fs::resize_file(meta(2), fs::file_size(meta(2)) - 7);  // torn metadata
  flip_bit(meta(3), fs::file_size(meta(3)) - 20);   // bit rot in the metadata
  fs::remove(eml(4));                               // message file missing
  fs::copy_file(eml(5), dir_ + "/20270101-000000-000-0badf00d.eml");  // message without metadata
  { std::ofstream(meta(6), std::ios::trunc); }      // empty metadata
  { std::ofstream(dir_ + "/README.txt") << "not ours\n"; }

  std::vector<std::string> problems;
  auto q = open_ok({}, &problems);
  const QuarantineStats& s = q->stats();
  EXPECT_EQ(s.loaded, 2u);  // 5 and 7
  EXPECT_EQ(s.bad_message, 2u);
  EXPECT_EQ(s.bad_metadata, 3u);
  EXPECT_EQ(s.missing_message, 1u);
  EXPECT_EQ(s.extra_message, 1u);
  EXPECT_EQ(s.unknown_files, 1u);
  EXPECT_EQ(s.moved_aside, 12u);  // both files of 0, 1, 2, 3 and 6; the metadata of 4; the extra message
  ASSERT_EQ(problems.size(), 8u);
  auto has = [&](const std::string& id, const std::string& what) {
    return std::any_of(problems.begin(), problems.end(), [&](const std::string& p) {
      return p.find(id) != std::string::npos && p.find(what) != std::string::npos && p.find('\n') == std::string::npos;
    });
  };
  EXPECT_TRUE(has(ids[0], "message file is 12345 bytes, the metadata says 20000 (torn or corrupt): moved to corrupt/"));
  EXPECT_TRUE(has(ids[1], "SHA-256 is not the recorded one"));
  EXPECT_TRUE(has(ids[2], "metadata torn or corrupt (length"));
  EXPECT_TRUE(has(ids[3], "metadata torn or corrupt (checksum mismatch)"));
  EXPECT_TRUE(has(ids[4], "the message file is missing"));
  EXPECT_TRUE(has("20270101-000000-000-0badf00d", "message file without metadata"));
  EXPECT_TRUE(has(ids[6], "metadata torn or corrupt (empty file)"));
  EXPECT_TRUE(has("README.txt", "left alone"));
  for (int i : {5, 7}) {
    std::string out;
    ASSERT_TRUE(q->read(ids[i], out).ok());
    EXPECT_EQ(out, msgs[i]);
  }
  EXPECT_TRUE(fs::exists(dir_ + "/corrupt/" + ids[0] + ".eml"));
  EXPECT_TRUE(fs::exists(dir_ + "/corrupt/" + ids[3] + ".meta"));
  q.reset();
  // Reported once: the next open finds only what it loads (and the file it leaves alone).
  q = open_ok({}, &problems);
  EXPECT_EQ(q->stats().loaded, 2u);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("README.txt"), std::string::npos);
}

TEST_F(QuarantineStoreTest, BytesChangedAfterOpenAreNeverReturned) {
  auto q = open_ok();
  const std::string m = message(30000, 950);
  const std::string id = put_ok(*q, m, 1);
  flip_bit(dir_ + "/" + id + ".eml", 100);
  std::string out;
  const QuarantineResult r = q->read(id, out);
  EXPECT_EQ(r.error, QuarantineError::corrupt);
  EXPECT_TRUE(out.empty());
  const std::string path = root_ + "/out.eml";
  EXPECT_EQ(q->export_eml(id, path).error, QuarantineError::corrupt);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(q->stats().read_corrupt, 2u);
  fs::resize_file(dir_ + "/" + id + ".eml", 10);
  EXPECT_EQ(q->read(id, out).error, QuarantineError::corrupt);
}

TEST_F(QuarantineStoreTest, LeftoversOfInterruptedWritesAreRemoved) {
  std::string id;
  {
    auto q = open_ok();
    id = put_ok(*q, message(1000, 960), 1);
  }
  // An update whose rename never happened, and a put that never got to its metadata.
  fs::copy_file(dir_ + "/" + id + ".meta", dir_ + "/" + id + ".meta.tmp");
  { std::ofstream(dir_ + "/20270101-000000-000-00000001.eml.tmp") << "partial"; }
  { std::ofstream(dir_ + "/20270101-000000-000-00000002.eml") << "renamed"; }
  { std::ofstream(dir_ + "/20270101-000000-000-00000002.meta.tmp") << "partial"; }
  { std::ofstream(dir_ + "/20270101-000000-000-00000003.drop") << "removal"; }
  { std::ofstream(dir_ + "/20270101-000000-000-00000003.eml") << "removal"; }
  std::vector<std::string> problems;
  auto q = open_ok({}, &problems);
  EXPECT_EQ(q->stats().loaded, 1u);
  EXPECT_EQ(q->stats().interrupted, 3u);
  EXPECT_EQ(q->stats().finished, 1u);
  EXPECT_EQ(problems.size(), 4u);
  EXPECT_EQ(files_in(dir_), (std::set<std::string>{id + ".eml", id + ".meta"}));
}

TEST_F(QuarantineStoreTest, OpenRefusesLimitsOutOfRange) {
  QuarantineLimits l;
  l.max_mb = 0;
  const QuarantineOpen o = QuarantineStore::open(dir_, l);
  EXPECT_FALSE(o.store);
  EXPECT_NE(o.error.find("max_mb"), std::string::npos) << o.error;
  const QuarantineOpen f = QuarantineStore::open("/proc/version/quarantine");
  EXPECT_FALSE(f.store);
  EXPECT_NE(f.error.find("/proc/version/quarantine"), std::string::npos) << f.error;
}

}  // namespace
}  // namespace sluice::control
