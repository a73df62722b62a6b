// Pending analysis submissions in SQLite (submission_store.h). The file is checked once at open
// (integrity, format version, schema, every row) on a read-only connection, so that a refused file
// is moved aside exactly as found; the store then keeps one read-write connection.
#include "control/hex.h"
#include "control/sqlite_handle.h"
#include "control/submission_store.h"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>

namespace sluice::control {
namespace {

constexpr int kFormatVersion = 1;
constexpr int64_t kHourMs = 3'600'000;

constexpr char kSchema[] =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE submissions (sha256 TEXT PRIMARY KEY, endpoint TEXT NOT NULL, sample_id TEXT NOT NULL, "
    "submitted_ms INTEGER NOT NULL, state TEXT NOT NULL, next_poll_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, "
    "end_state TEXT NOT NULL, score INTEGER NOT NULL, disposition TEXT NOT NULL, finished_ms INTEGER NOT NULL) "
    "WITHOUT ROWID;"
    "CREATE INDEX submissions_by_poll ON submissions (end_state, next_poll_ms);"
    "CREATE TABLE waiters (seq INTEGER PRIMARY KEY, sha256 TEXT NOT NULL, quarantine_id TEXT NOT NULL, "
    "UNIQUE (sha256, quarantine_id));"
    "CREATE INDEX waiters_by_message ON waiters (quarantine_id);";

constexpr char kColumns[] =
    "sha256, endpoint, sample_id, submitted_ms, state, next_poll_ms, updated_ms, end_state, score, disposition, "
    "finished_ms";






std::optional<SubmissionEnd> parse_end(std::string_view s) {
  if (s == "pending") return SubmissionEnd::pending;
  if (s == "complete") return SubmissionEnd::complete;
  if (s == "expired") return SubmissionEnd::expired;
  return std::nullopt;
}

// One row of `kColumns`; false (and `why`) when a value is not one this store writes.
bool read_row(sqlite3_stmt* s, Submission& out, std::string& why) {
  out.sha256 = column_text(s, 0);
  out.endpoint = column_text(s, 1);
  out.sample_id = column_text(s, 2);
  out.submitted_ms = sqlite3_column_int64(s, 3);
  const auto state = parse_sample_state(column_text(s, 4));
  out.next_poll_ms = sqlite3_column_int64(s, 5);
  out.updated_ms = sqlite3_column_int64(s, 6);
  const auto end = parse_end(column_text(s, 7));
  out.score = sqlite3_column_int(s, 8);
  out.disposition = column_text(s, 9);
  out.finished_ms = sqlite3_column_int64(s, 10);
  if (normal_sha256_hex(out.sha256) != out.sha256 || out.sha256.empty()) {
    why = "a record's sha256 is not 64 hex digits";
    return false;
  }
  if (!state || !end) {
    why = "record " + out.sha256 + " has an unknown state";
    return false;
  }
  if (out.score < -1 || out.score > 100) {
    why = "record " + out.sha256 + " has score " + std::to_string(out.score);
    return false;
  }
  out.state = *state;
  out.end = *end;
  return true;
}

// Checks an existing file (reads only): "" or why it is not a valid store.
std::string check_file(const std::string& path, uint64_t& rows) {
  int rc = SQLITE_OK;
  Db db = open_for_check(path, rc);
  if (rc != SQLITE_OK) return db_error(db.get());
  if (std::string why = check_integrity_and_format(db.get(), kFormatVersion); !why.empty()) return why;
  Stmt all = prepare(db.get(), std::string("SELECT ") + kColumns + " FROM submissions");
  Stmt waiters = prepare(db.get(), "SELECT seq, sha256, quarantine_id FROM waiters");
  if (!all || !waiters) return "another schema (" + db_error(db.get()) + ")";
  int s;
  while ((s = sqlite3_step(all.get())) == SQLITE_ROW) {
    Submission sub;
    std::string why;
    if (!read_row(all.get(), sub, why)) return why;
    ++rows;
  }
  if (s != SQLITE_DONE) return db_error(db.get());
  while ((s = sqlite3_step(waiters.get())) == SQLITE_ROW) {
  }
  if (s != SQLITE_DONE) return db_error(db.get());
  return "";
}

}  // namespace

const char* submission_end_name(SubmissionEnd e) noexcept {
  switch (e) {
    case SubmissionEnd::pending: return "pending";
    case SubmissionEnd::complete: return "complete";
    case SubmissionEnd::expired: return "expired";
  }
  return "?";
}

const char* submission_error_name(SubmissionError e) noexcept {
  switch (e) {
    case SubmissionError::none: return "none";
    case SubmissionError::invalid: return "invalid";
    case SubmissionError::exists: return "exists";
    case SubmissionError::not_found: return "not_found";
    case SubmissionError::wrong_state: return "wrong_state";
    case SubmissionError::io: return "io";
  }
  return "?";
}

struct SubmissionStore::Impl {
  std::string path;
  SubmissionLimits limits;
  Db db;
  mutable SubmissionStats stats;

  SubmissionResult fail(SubmissionError e, const std::string& what) const {
    if (e == SubmissionError::io) ++stats.errors;
    return SubmissionResult{e, "submissions " + path + ": " + what};
  }
  SubmissionResult io(const std::string& what) const { return fail(SubmissionError::io, what + ": " + db_error(db.get())); }

  // Runs `body` inside BEGIN IMMEDIATE .. COMMIT; rolls back unless it returns ok.
  template <typename Body>
  SubmissionResult transaction(Body&& body) {
    if (!exec_sql(db.get(), "BEGIN IMMEDIATE")) return io("cannot begin");
    SubmissionResult r = body();
    if (r.ok() && !exec_sql(db.get(), "COMMIT")) r = io("cannot commit");
    if (!r.ok()) exec_sql(db.get(), "ROLLBACK");
    refresh_counts();
    return r;
  }

  void refresh_counts() const {
    stats.pending = stats.finished = 0;
    Stmt s = prepare(db.get(), "SELECT end_state = 'pending', COUNT(*) FROM submissions GROUP BY 1");
    while (s && sqlite3_step(s.get()) == SQLITE_ROW)
      (sqlite3_column_int(s.get(), 0) ? stats.pending : stats.finished) = static_cast<uint64_t>(sqlite3_column_int64(s.get(), 1));
  }

  bool exists(const std::string& sha, SubmissionEnd* end = nullptr) const {
    Stmt s = prepare(db.get(), "SELECT end_state FROM submissions WHERE sha256 = ?");
    if (!s) return false;
    bind_at(s.get(), 1, sha);
    if (sqlite3_step(s.get()) != SQLITE_ROW) return false;
    if (end) *end = parse_end(column_text(s.get(), 0)).value_or(SubmissionEnd::pending);
    return true;
  }

  // Records matching `where` (SQL after WHERE, with ?1 bound to `arg` if given), with waiters.
  std::vector<Submission> select(const std::string& where_order, std::optional<int64_t> arg = std::nullopt,
                                 const std::string* sarg = nullptr) const {
    std::vector<Submission> out;
    Stmt s = prepare(db.get(), std::string("SELECT ") + kColumns + " FROM submissions " + where_order);
    if (!s) {
      ++stats.errors;
      return out;
    }
    if (arg) bind_at(s.get(), 1, *arg);
    if (sarg) bind_at(s.get(), 1, *sarg);
    std::map<std::string, std::size_t> index;
    while (sqlite3_step(s.get()) == SQLITE_ROW) {
      Submission sub;
      std::string why;
      if (!read_row(s.get(), sub, why)) continue;  // rows were checked at open; written only by us
      index[sub.sha256] = out.size();
      out.push_back(std::move(sub));
    }
    if (out.empty()) return out;
    Stmt w = prepare(db.get(), out.size() == 1 ? "SELECT sha256, quarantine_id FROM waiters WHERE sha256 = ? ORDER BY seq"
                                               : "SELECT sha256, quarantine_id FROM waiters ORDER BY seq");
    if (!w) return out;
    if (out.size() == 1) bind_at(w.get(), 1, out[0].sha256);
    while (sqlite3_step(w.get()) == SQLITE_ROW) {
      const auto it = index.find(column_text(w.get(), 0));
      if (it != index.end()) out[it->second].quarantine_ids.push_back(column_text(w.get(), 1));
    }
    return out;
  }

  SubmissionResult insert_waiter(const std::string& sha, const std::string& qid) {
    Stmt w = prepare(db.get(), "INSERT OR IGNORE INTO waiters (sha256, quarantine_id) VALUES (?, ?)");
    if (!w) return io("cannot prepare");
    bind_at(w.get(), 1, sha);
    bind_at(w.get(), 2, qid);
    if (sqlite3_step(w.get()) != SQLITE_DONE) return io("cannot add a waiter to " + sha);
    return {};
  }
};

SubmissionStore::SubmissionStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SubmissionStore::~SubmissionStore() = default;
const SubmissionStats& SubmissionStore::stats() const noexcept { return impl_->stats; }
const std::string& SubmissionStore::path() const noexcept { return impl_->path; }

SubmissionOpen SubmissionStore::open(const std::string& path, const SubmissionLimits& limits) {
  SubmissionOpen r;
  if (limits.max_age_h < 1 || limits.max_age_h > 720) {
    r.error = "submissions " + path + ": max_age_h " + std::to_string(limits.max_age_h) + " out of range (1..720)";
    return r;
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->limits = limits;
  uint64_t rows = 0;
  // WAL with a sync at every commit: a committed transaction survives a power cut, an uncommitted
  // one disappears whole (SQLite checks every WAL frame's checksum on recovery).
  StoreFile f = open_store_file("submissions", path, [&rows](const std::string& p) { return check_file(p, rows); },
                                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cell_size_check=ON;", kSchema,
                                kFormatVersion);
  r.error = std::move(f.error);
  impl->stats.corrupt = f.corrupt;
  if (!f.db) return r;
  if (!f.corrupt) impl->stats.loaded = rows;
  impl->db = std::move(f.db);
  impl->refresh_counts();
  r.store.reset(new SubmissionStore(std::move(impl)));
  return r;
}

SubmissionResult SubmissionStore::add(const Submission& in) {
  Impl& m = *impl_;
  const std::string sha = normal_sha256_hex(in.sha256);
  if (sha.empty()) return m.fail(SubmissionError::invalid, "sha256 '" + in.sha256 + "' is not 64 hex digits");
  if (in.endpoint.empty() || in.sample_id.empty())
    return m.fail(SubmissionError::invalid, sha + ": the endpoint and the sample id are required");
  for (const auto& q : in.quarantine_ids)
    if (q.empty()) return m.fail(SubmissionError::invalid, sha + ": an empty quarantine id");
  SubmissionResult r = m.transaction([&]() -> SubmissionResult {
    if (m.exists(sha)) return m.fail(SubmissionError::exists, sha + ": already submitted");
    Stmt s = prepare(m.db.get(), std::string("INSERT INTO submissions (") + kColumns +
                                     ") VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', -1, '', 0)");
    if (!s) return m.io("cannot prepare");
    bind_at(s.get(), 1, sha);
    bind_at(s.get(), 2, in.endpoint);
    bind_at(s.get(), 3, in.sample_id);
    bind_at(s.get(), 4, in.submitted_ms);
    bind_at(s.get(), 5, std::string(sample_state_name(in.state)));
    bind_at(s.get(), 6, in.next_poll_ms);
    bind_at(s.get(), 7, in.updated_ms ? in.updated_ms : in.submitted_ms);
    if (sqlite3_step(s.get()) != SQLITE_DONE) return m.io("cannot add " + sha);
    for (const auto& q : in.quarantine_ids)
      if (auto w = m.insert_waiter(sha, q); !w.ok()) return w;
    return {};
  });
  if (r.ok()) ++m.stats.added;
  return r;
}

SubmissionResult SubmissionStore::add_waiter(const std::string& sha256, const std::string& quarantine_id) {
  Impl& m = *impl_;
  const std::string sha = normal_sha256_hex(sha256);
  if (sha.empty() || quarantine_id.empty()) return m.fail(SubmissionError::invalid, "add_waiter: bad sha256 or empty id");
  return m.transaction([&]() -> SubmissionResult {
    if (!m.exists(sha)) return m.fail(SubmissionError::not_found, sha + ": no such submission");
    return m.insert_waiter(sha, quarantine_id);
  });
}

SubmissionResult SubmissionStore::remove_waiter(const std::string& sha256, const std::string& quarantine_id) {
  Impl& m = *impl_;
  const std::string sha = normal_sha256_hex(sha256);
  if (sha.empty()) return m.fail(SubmissionError::invalid, "remove_waiter: bad sha256");
  return m.transaction([&]() -> SubmissionResult {
    if (!m.exists(sha)) return m.fail(SubmissionError::not_found, sha + ": no such submission");
    Stmt s = prepare(m.db.get(), "DELETE FROM waiters WHERE sha256 = ? AND quarantine_id = ?");
    if (!s) return m.io("cannot prepare");
    bind_at(s.get(), 1, sha);
    bind_at(s.get(), 2, quarantine_id);
    if (sqlite3_step(s.get()) != SQLITE_DONE) return m.io("cannot remove a waiter of " + sha);
    return {};
  });
}

SubmissionResult SubmissionStore::update(const std::string& sha256, SampleState state, int64_t next_poll_ms,
                                         int64_t now_ms) {
  Impl& m = *impl_;
  const std::string sha = normal_sha256_hex(sha256);
  if (sha.empty()) return m.fail(SubmissionError::invalid, "update: bad sha256");
  SubmissionResult r = m.transaction([&]() -> SubmissionResult {
    SubmissionEnd end{};
    if (!m.exists(sha, &end)) return m.fail(SubmissionError::not_found, sha + ": no such submission");
    if (end != SubmissionEnd::pending)
      return m.fail(SubmissionError::wrong_state, sha + ": " + submission_end_name(end) + ", no longer polled");
    Stmt s = prepare(m.db.get(), "UPDATE submissions SET state = ?, next_poll_ms = ?, updated_ms = ? WHERE sha256 = ?");
    if (!s) return m.io("cannot prepare");
    bind_at(s.get(), 1, std::string(sample_state_name(state)));
    bind_at(s.get(), 2, next_poll_ms);
    bind_at(s.get(), 3, now_ms);
    bind_at(s.get(), 4, sha);
    if (sqlite3_step(s.get()) != SQLITE_DONE) return m.io("cannot update " + sha);
    return {};
  });
  if (r.ok()) ++m.stats.updates;
  return r;
}

SubmissionResult SubmissionStore::complete(const std::string& sha256, SampleState state, int score,
                                           const std::string& disposition, int64_t now_ms) {
  Impl& m = *impl_;
  const std::string sha = normal_sha256_hex(sha256);
  if (sha.empty()) return m.fail(SubmissionError::invalid, "complete: bad sha256");
  if (state != SampleState::succ && state != SampleState::fail)
    return m.fail(SubmissionError::invalid, sha + ": complete with state " + sample_state_name(state) + " (succ or fail)");
  if (score < -1 || score > 100) return m.fail(SubmissionError::invalid, sha + ": score " + std::to_string(score) + " (0..100, or -1)");
  SubmissionResult r = m.transaction([&]() -> SubmissionResult {
    SubmissionEnd end{};
    if (!m.exists(sha, &end)) return m.fail(SubmissionError::not_found, sha + ": no such submission");
    if (end != SubmissionEnd::pending)
      return m.fail(SubmissionError::wrong_state, sha + ": already " + submission_end_name(end));
    Stmt s = prepare(m.db.get(),
                     "UPDATE submissions SET state = ?, end_state = 'complete', score = ?, disposition = ?, "
                     "finished_ms = ?, updated_ms = ? WHERE sha256 = ?");
    if (!s) return m.io("cannot prepare");
    bind_at(s.get(), 1, std::string(sample_state_name(state)));
    bind_at(s.get(), 2, int64_t{score});
    bind_at(s.get(), 3, disposition);
    bind_at(s.get(), 4, now_ms);
    bind_at(s.get(), 5, now_ms);
    bind_at(s.get(), 6, sha);
    if (sqlite3_step(s.get()) != SQLITE_DONE) return m.io("cannot complete " + sha);
    return {};
  });
  if (r.ok()) ++m.stats.completed;
  return r;
}

SubmissionResult SubmissionStore::remove(const std::string& sha256) {
  Impl& m = *impl_;
  const std::string sha = normal_sha256_hex(sha256);
  if (sha.empty()) return m.fail(SubmissionError::invalid, "remove: bad sha256");
  SubmissionResult r = m.transaction([&]() -> SubmissionResult {
    if (!m.exists(sha)) return m.fail(SubmissionError::not_found, sha + ": no such submission");
    for (const char* sql : {"DELETE FROM waiters WHERE sha256 = ?", "DELETE FROM submissions WHERE sha256 = ?"}) {
      Stmt s = prepare(m.db.get(), sql);
      if (!s) return m.io("cannot prepare");
      bind_at(s.get(), 1, sha);
      if (sqlite3_step(s.get()) != SQLITE_DONE) return m.io("cannot remove " + sha);
    }
    return {};
  });
  if (r.ok()) ++m.stats.removed;
  return r;
}

std::optional<Submission> SubmissionStore::find(const std::string& sha256) const {
  const std::string sha = normal_sha256_hex(sha256);
  if (sha.empty()) return std::nullopt;
  auto v = impl_->select("WHERE sha256 = ?1", std::nullopt, &sha);
  if (v.empty()) return std::nullopt;
  return std::move(v.front());
}

std::vector<Submission> SubmissionStore::pending() const {
  return impl_->select("WHERE end_state = 'pending' ORDER BY next_poll_ms, sha256");
}

std::vector<Submission> SubmissionStore::due(int64_t now_ms) const {
  return impl_->select("WHERE end_state = 'pending' AND next_poll_ms <= ?1 ORDER BY next_poll_ms, sha256", now_ms);
}

std::vector<Submission> SubmissionStore::finished() const {
  return impl_->select("WHERE end_state != 'pending' ORDER BY finished_ms, sha256");
}

std::vector<std::string> SubmissionStore::waiting_on(const std::string& quarantine_id) const {
  std::vector<std::string> out;
  Stmt s = prepare(impl_->db.get(), "SELECT sha256 FROM waiters WHERE quarantine_id = ? ORDER BY seq");
  if (!s) return out;
  bind_at(s.get(), 1, quarantine_id);
  while (sqlite3_step(s.get()) == SQLITE_ROW) out.push_back(column_text(s.get(), 0));
  return out;
}

std::vector<Submission> SubmissionStore::expire(int64_t now_ms) {
  Impl& m = *impl_;
  const int64_t age_ms = int64_t{m.limits.max_age_h} * kHourMs;
  std::vector<Submission> aged;
  uint64_t dropped = 0;
  SubmissionResult r = m.transaction([&]() -> SubmissionResult {
    aged = m.select("WHERE end_state = 'pending' AND submitted_ms <= ?1 ORDER BY submitted_ms, sha256", now_ms - age_ms);
    Stmt s = prepare(m.db.get(),
                     "UPDATE submissions SET end_state = 'expired', finished_ms = ?1, updated_ms = ?1 "
                     "WHERE end_state = 'pending' AND submitted_ms <= ?2");
    if (!s) return m.io("cannot prepare");
    bind_at(s.get(), 1, now_ms);
    bind_at(s.get(), 2, now_ms - age_ms);
    if (sqlite3_step(s.get()) != SQLITE_DONE) return m.io("cannot expire");
    // Finished records nobody removed.
    for (const char* sql : {"DELETE FROM waiters WHERE sha256 IN (SELECT sha256 FROM submissions "
                            "WHERE end_state != 'pending' AND finished_ms <= ?1)",
                            "DELETE FROM submissions WHERE end_state != 'pending' AND finished_ms <= ?1"}) {
      Stmt d = prepare(m.db.get(), sql);
      if (!d) return m.io("cannot prepare");
      bind_at(d.get(), 1, now_ms - age_ms);
      if (sqlite3_step(d.get()) != SQLITE_DONE) return m.io("cannot drop finished records");
      dropped = static_cast<uint64_t>(sqlite3_changes(m.db.get()));
    }
    return {};
  });
  if (!r.ok()) return {};
  for (auto& s : aged) {
    s.end = SubmissionEnd::expired;
    s.finished_ms = s.updated_ms = now_ms;
  }
  m.stats.expired += aged.size();
  m.stats.finished_dropped += dropped;
  return aged;
}

}  // namespace sluice::control
