// SQLite behind the Store interface. Every statement the service runs is prepared once at open;
// each call binds, steps and resets (a guard resets on every path, so a statement that threw is
// usable again). Writes run in BEGIN IMMEDIATE transactions; a batch look-up runs in one read
// transaction, so it sees one snapshot and takes the database lock once.
#include "control/cloud/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <system_error>

namespace sluice::cloud {

namespace {

// "SLCD": PRAGMA application_id of a sluice-cloud store, so that another program's SQLite file
// given as DIR is refused rather than written into.
constexpr int32_t kApplicationId = 0x534c4344;

// Schema migrations: kMigrations[k] brings a store from user_version k to k + 1, in one
// transaction. A new version appends a step; steps already released never change.
constexpr const char* kMigrations[] = {
    // 1: dispositions and the change feed.
    R"sql(
    CREATE TABLE meta (
      key   TEXT PRIMARY KEY,
      value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE dispositions (
      sha256       BLOB PRIMARY KEY CHECK (length(sha256) = 32),
      disposition  TEXT NOT NULL CHECK (disposition IN ('clean', 'malicious', 'unknown')),
      threat_name  TEXT,
      threat_score INTEGER CHECK (threat_score BETWEEN 0 AND 100),
      last_changed INTEGER NOT NULL,
      updated_at   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE changes (
      seq         INTEGER PRIMARY KEY AUTOINCREMENT,
      sha256      BLOB NOT NULL CHECK (length(sha256) = 32),
      old         TEXT NOT NULL,
      new         TEXT NOT NULL,
      threat_name TEXT,
      changed_at  INTEGER NOT NULL
    );
    )sql",
    // 2: samples and their analyses, samples per client and day, and who set a disposition (an
    // analysis never overrides the admin's word).
    R"sql(
    ALTER TABLE dispositions ADD COLUMN source TEXT NOT NULL DEFAULT 'admin'
      CHECK (source IN ('admin', 'analysis'));
    CREATE TABLE samples (
      seq          INTEGER PRIMARY KEY,
      id           TEXT NOT NULL UNIQUE CHECK (length(id) = 32),
      sha256       BLOB NOT NULL CHECK (length(sha256) = 32),
      filename     TEXT,
      size         INTEGER NOT NULL CHECK (size >= 0),
      state        TEXT NOT NULL CHECK (state IN ('wait', 'prep', 'run', 'proc', 'succ', 'fail')),
      submitted_at INTEGER NOT NULL,
      completed_at INTEGER,
      score        INTEGER CHECK (score BETWEEN 0 AND 100),
      verdict      TEXT CHECK (verdict IN ('clean', 'malicious', 'failed')),
      threat_name  TEXT,
      report       TEXT
    );
    CREATE INDEX samples_by_sha256 ON samples(sha256, state);
    CREATE INDEX samples_unfinished ON samples(state) WHERE state NOT IN ('succ', 'fail');
    CREATE TABLE sample_days (
      day    INTEGER NOT NULL,
      client TEXT NOT NULL,
      count  INTEGER NOT NULL,
      PRIMARY KEY (day, client)
    ) WITHOUT ROWID;
    )sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// Hex digit values, 0xff for any other byte: one load per character (a batch of 1000 hashes is
// 64000 of them; a compare chain per character showed in profiles).
constexpr std::array<uint8_t, 256> kHexValue = [] {
  std::array<uint8_t, 256> t{};
  t.fill(0xff);
  for (int i = 0; i < 10; ++i) t['0' + i] = static_cast<uint8_t>(i);
  for (int i = 0; i < 6; ++i) t['a' + i] = t['A' + i] = static_cast<uint8_t>(10 + i);
  return t;
}();

std::string random_id() {
  std::random_device rd;  // /dev/urandom
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  static const char digits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[i] = digits[v & 15];
  return s;
}

}  // namespace

bool parse_sha256(std::string_view hex, Sha256& out) noexcept {
  if (hex.size() != 64) return false;
  uint8_t bad = 0;
  for (std::size_t i = 0; i < 32; ++i) {
    const uint8_t hi = kHexValue[static_cast<uint8_t>(hex[2 * i])], lo = kHexValue[static_cast<uint8_t>(hex[2 * i + 1])];
    bad |= (hi | lo) & 0xf0;
    out[i] = static_cast<uint8_t>(hi << 4 | (lo & 0x0f));
  }
  return bad == 0;
}

std::string sha256_hex(const Sha256& h) {
  static const char digits[] = "0123456789abcdef";
  std::string s(64, '0');
  for (std::size_t i = 0; i < 32; ++i) {
    s[2 * i] = digits[h[i] >> 4];
    s[2 * i + 1] = digits[h[i] & 15];
  }
  return s;
}

std::string_view disposition_name(Disposition d) noexcept {
  switch (d) {
    case Disposition::clean: return "clean";
    case Disposition::malicious: return "malicious";
    case Disposition::unknown: return "unknown";
  }
  return "unknown";
}

std::optional<Disposition> parse_disposition(std::string_view s) noexcept {
  if (s == "clean") return Disposition::clean;
  if (s == "malicious") return Disposition::malicious;
  if (s == "unknown") return Disposition::unknown;
  return std::nullopt;
}

namespace {
constexpr std::array<std::string_view, 6> kStateNames = {"wait", "prep", "run", "proc", "succ", "fail"};
}  // namespace

std::string_view sample_state_name(SampleState s) noexcept { return kStateNames[static_cast<std::size_t>(s)]; }

std::optional<SampleState> parse_sample_state(std::string_view s) noexcept {
  for (std::size_t i = 0; i < kStateNames.size(); ++i)
    if (kStateNames[i] == s) return static_cast<SampleState>(i);
  return std::nullopt;
}

struct Store::Db {
  sqlite3* db = nullptr;
  sqlite3_stmt* begin_read = nullptr;
  sqlite3_stmt* begin_write = nullptr;
  sqlite3_stmt* commit = nullptr;
  sqlite3_stmt* rollback = nullptr;
  sqlite3_stmt* get = nullptr;
  sqlite3_stmt* put = nullptr;
  sqlite3_stmt* append_change = nullptr;
  sqlite3_stmt* changes_after = nullptr;
  sqlite3_stmt* last_seq = nullptr;
  sqlite3_stmt* sample_by_id = nullptr;
  sqlite3_stmt* samples_by_hash = nullptr;
  sqlite3_stmt* live_by_hash = nullptr;
  sqlite3_stmt* unfinished = nullptr;
  sqlite3_stmt* insert_sample = nullptr;
  sqlite3_stmt* update_state = nullptr;
  sqlite3_stmt* finish = nullptr;
  sqlite3_stmt* day_count = nullptr;
  sqlite3_stmt* count_day = nullptr;
  sqlite3_stmt* prune_days = nullptr;

  ~Db() {
    for (sqlite3_stmt* s : {begin_read, begin_write, commit, rollback, get, put, append_change, changes_after, last_seq,
                            sample_by_id, samples_by_hash, live_by_hash, unfinished, insert_sample, update_state, finish,
                            day_count, count_day, prune_days})
      sqlite3_finalize(s);
    if (db) sqlite3_close_v2(db);
  }

  [[noreturn]] void fail(const char* what) const { throw StoreError(std::string(what) + ": " + sqlite3_errmsg(db)); }

  void check(int rc, const char* what) const {
    if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) fail(what);
  }

  sqlite3_stmt* prepare(const char* sql) const {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) fail("prepare");
    return s;
  }

  void exec(const char* sql, const char* what) const {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = std::string(what) + ": " + (err ? err : sqlite3_errmsg(db));
      sqlite3_free(err);
      throw StoreError(msg);
    }
  }

  // The first column of the first row of `sql` as text ("" when no row).
  std::string query_text(const char* sql, const char* what) const {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) fail(what);
    std::string out;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW && sqlite3_column_text(s, 0)) out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail(what);
    return out;
  }

  int64_t query_int(const char* sql, const char* what) const {
    std::string v = query_text(sql, what);
    return v.empty() ? 0 : std::stoll(v);
  }

  // Runs a one-step statement (BEGIN, COMMIT...).
  void step_once(sqlite3_stmt* s, const char* what) const {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) fail(what);
  }
};

namespace {

// Resets a prepared statement and clears its bindings on every path out of a scope.
class Reset {
 public:
  explicit Reset(sqlite3_stmt* s) : s_(s) {}
  ~Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Reset(const Reset&) = delete;
  Reset& operator=(const Reset&) = delete;

 private:
  sqlite3_stmt* s_;
};

// A transaction rolled back unless committed.
class Transaction {
 public:
  Transaction(const Store::Db& db, bool write) : db_(db) {
    db_.step_once(write ? db_.begin_write : db_.begin_read, "begin transaction");
  }
  ~Transaction() {
    if (!done_) {
      sqlite3_step(db_.rollback);
      sqlite3_reset(db_.rollback);
    }
  }
  void commit() {
    db_.step_once(db_.commit, "commit");
    done_ = true;
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

 private:
  const Store::Db& db_;
  bool done_ = false;
};

std::optional<std::string> column_text(sqlite3_stmt* s, int col) {
  if (sqlite3_column_type(s, col) == SQLITE_NULL) return std::nullopt;
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, col));
  return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s, col)));
}

Disposition column_disposition(sqlite3_stmt* s, int col) {
  auto t = column_text(s, col);
  auto d = t ? parse_disposition(*t) : std::nullopt;
  return d ? *d : Disposition::unknown;
}

void bind_text(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}

void bind_hash(sqlite3_stmt* s, int i, const Sha256& h) {
  sqlite3_bind_blob(s, i, h.data(), static_cast<int>(h.size()), SQLITE_STATIC);
}

// Reads the row of `get` (columns: disposition, threat_name, threat_score, last_changed, source,
// whether a sample that did not fail exists; one row always, the first five null when the hash
// has no record).
FileRecord read_record(const Store::Db& db, const Sha256& hash) {
  Reset reset(db.get);
  bind_hash(db.get, 1, hash);
  FileRecord r;
  int rc = sqlite3_step(db.get);
  if (rc != SQLITE_ROW) db.fail("look-up");
  if (sqlite3_column_type(db.get, 0) != SQLITE_NULL) {
    r.known = true;
    r.disposition = column_disposition(db.get, 0);
    r.threat_name = column_text(db.get, 1);
    if (sqlite3_column_type(db.get, 2) != SQLITE_NULL) r.threat_score = sqlite3_column_int(db.get, 2);
    r.last_changed = sqlite3_column_int64(db.get, 3);
    r.by_analysis = column_text(db.get, 4) == std::optional<std::string>("analysis");
  }
  r.has_sample = sqlite3_column_int(db.get, 5) != 0;
  return r;
}

// Writes the record of `hash` and, when its disposition changes, a change-feed entry (inside the
// caller's write transaction). `before` is the record as read in that transaction.
FileRecord write_record(const Store::Db& db, const Sha256& hash, const FileRecord& before, Disposition d,
                        std::optional<std::string> threat_name, std::optional<int> threat_score, bool by_analysis,
                        int64_t now) {
  const bool changed = d != before.disposition;  // a hash never stored is unknown
  FileRecord after;
  after.known = true;
  after.disposition = d;
  after.threat_name = std::move(threat_name);
  after.threat_score = threat_score;
  after.last_changed = (changed || !before.known) ? now : *before.last_changed;
  after.by_analysis = by_analysis;
  after.has_sample = before.has_sample;
  {
    Reset reset(db.put);
    bind_hash(db.put, 1, hash);
    bind_text(db.put, 2, disposition_name(d));
    if (after.threat_name) bind_text(db.put, 3, *after.threat_name);
    if (after.threat_score) sqlite3_bind_int(db.put, 4, *after.threat_score);
    sqlite3_bind_int64(db.put, 5, *after.last_changed);
    sqlite3_bind_int64(db.put, 6, now);
    bind_text(db.put, 7, by_analysis ? "analysis" : "admin");
    db.check(sqlite3_step(db.put), "store disposition");
  }
  if (changed) {
    Reset reset(db.append_change);
    bind_hash(db.append_change, 1, hash);
    bind_text(db.append_change, 2, disposition_name(before.disposition));
    bind_text(db.append_change, 3, disposition_name(d));
    if (after.threat_name) bind_text(db.append_change, 4, *after.threat_name);
    sqlite3_bind_int64(db.append_change, 5, now);
    db.check(sqlite3_step(db.append_change), "append to the change feed");
  }
  return after;
}

// The columns every sample query selects, in this order.
#define SLUICE_SAMPLE_COLUMNS \
  "id, sha256, filename, size, state, submitted_at, completed_at, score, verdict, threat_name, report"

Sample read_sample(sqlite3_stmt* s) {
  Sample out;
  out.id = column_text(s, 0).value_or("");
  if (sqlite3_column_bytes(s, 1) == 32) std::memcpy(out.sha256.data(), sqlite3_column_blob(s, 1), 32);
  out.filename = column_text(s, 2);
  out.size = static_cast<uint64_t>(sqlite3_column_int64(s, 3));
  const auto state = column_text(s, 4);
  out.state = state ? parse_sample_state(*state).value_or(SampleState::fail) : SampleState::fail;
  out.submitted_at = sqlite3_column_int64(s, 5);
  if (sqlite3_column_type(s, 6) != SQLITE_NULL) out.completed_at = sqlite3_column_int64(s, 6);
  if (is_finished(out.state)) {
    SampleResult r;
    if (sqlite3_column_type(s, 7) != SQLITE_NULL) r.score = sqlite3_column_int(s, 7);
    r.verdict = column_text(s, 8).value_or(out.state == SampleState::fail ? "failed" : "clean");
    r.threat_name = column_text(s, 9);
    r.report = column_text(s, 10).value_or("{}");
    out.result = std::move(r);
  }
  return out;
}

// Every row of a prepared sample query (bindings already made).
std::vector<Sample> read_samples(const Store::Db& db, sqlite3_stmt* s, const char* what) {
  Reset reset(s);
  std::vector<Sample> out;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) out.push_back(read_sample(s));
  if (rc != SQLITE_DONE) db.fail(what);
  return out;
}

int64_t utc_day(int64_t unix_seconds) { return unix_seconds >= 0 ? unix_seconds / 86400 : (unix_seconds - 86399) / 86400; }

}  // namespace

Store::Store(const std::filesystem::path& dir) : db_(std::make_unique<Db>()), path_(dir / kFileName) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir))
    throw StoreError("cannot create data directory " + dir.string() + ": " +
                     (ec ? ec.message() : std::string("not a directory")));

  const std::string lock_path = (dir / "cloud.lock").string();
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) throw StoreError("cannot open " + lock_path + ": " + std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (e == EWOULDBLOCK) throw StoreError(dir.string() + " is in use by another sluice-cloud (" + lock_path + " is locked)");
    throw StoreError("cannot lock " + lock_path + ": " + std::strerror(e));
  }

  try {
    const std::string where = path_.string();
    Db& d = *db_;
    if (sqlite3_open_v2(where.c_str(), &d.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        nullptr) != SQLITE_OK)
      throw StoreError("cannot open " + where + ": " + (d.db ? sqlite3_errmsg(d.db) : "out of memory"));
    sqlite3_extended_result_codes(d.db, 1);
    // The directory lock keeps other sluice-clouds out; a short wait covers an operator's sqlite3
    // shell reading at the same time.
    sqlite3_busy_timeout(d.db, 1000);

    // The first read: a file that is not SQLite fails here (SQLITE_NOTADB).
    int64_t app_id;
    try {
      app_id = d.query_int("PRAGMA application_id", "read");
      std::string check = d.query_text("PRAGMA quick_check(1)", "integrity check");
      if (check != "ok") throw StoreError("integrity check: " + check);
    } catch (const StoreError& e) {
      throw StoreError(where + " is corrupt or not a SQLite database (" + e.what() + ")");
    }
    const int64_t version = d.query_int("PRAGMA user_version", "read schema version");
    const int64_t tables = d.query_int("SELECT count(*) FROM sqlite_schema", "read schema");
    if (app_id != kApplicationId && !(app_id == 0 && version == 0 && tables == 0))
      throw StoreError(where + " is not a sluice-cloud store (another program's SQLite database)");
    if (version > kSchemaVersion)
      throw StoreError(where + " has schema version " + std::to_string(version) + ", newer than this sluice-cloud (" +
                       std::to_string(kSchemaVersion) + ")");

    // WAL: readers never wait for the writer; NORMAL synchronisation is durable across a crash of
    // the process (a power loss may lose the last transactions; NOTES.md).
    if (d.query_text("PRAGMA journal_mode=WAL", "set WAL mode") != "wal")
      throw StoreError("cannot put " + where + " in WAL mode");
    d.exec("PRAGMA synchronous=NORMAL", "set synchronous");

    for (int64_t v = version; v < kSchemaVersion; ++v) {
      d.exec("BEGIN IMMEDIATE", "migrate");
      try {
        d.exec(kMigrations[v], "migrate schema");
        if (v == 0) {
          d.exec(("PRAGMA application_id=" + std::to_string(kApplicationId)).c_str(), "migrate");
          d.exec(("INSERT INTO meta(key, value) VALUES('store_id', '" + random_id() + "')").c_str(), "migrate");
        }
        d.exec(("PRAGMA user_version=" + std::to_string(v + 1)).c_str(), "migrate");
        d.exec("COMMIT", "migrate");
      } catch (...) {
        sqlite3_exec(d.db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
    }
    id_ = d.query_text("SELECT value FROM meta WHERE key = 'store_id'", "read store id");
    if (id_.size() != 16) throw StoreError(where + " has no valid store id");

    d.begin_read = d.prepare("BEGIN");
    d.begin_write = d.prepare("BEGIN IMMEDIATE");
    d.commit = d.prepare("COMMIT");
    d.rollback = d.prepare("ROLLBACK");
    // One row per hash, known or not; the EXISTS is one probe of samples_by_sha256.
    d.get = d.prepare(
        "SELECT d.disposition, d.threat_name, d.threat_score, d.last_changed, d.source, "
        "EXISTS(SELECT 1 FROM samples s WHERE s.sha256 = ?1 AND s.state <> 'fail') "
        "FROM (SELECT 1) LEFT JOIN dispositions d ON d.sha256 = ?1");
    d.put = d.prepare(
        "INSERT INTO dispositions(sha256, disposition, threat_name, threat_score, last_changed, updated_at, source) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(sha256) DO UPDATE SET disposition = excluded.disposition, "
        "threat_name = excluded.threat_name, threat_score = excluded.threat_score, "
        "last_changed = excluded.last_changed, updated_at = excluded.updated_at, source = excluded.source");
    d.append_change = d.prepare(
        "INSERT INTO changes(sha256, old, new, threat_name, changed_at) VALUES(?1, ?2, ?3, ?4, ?5)");
    d.changes_after = d.prepare(
        "SELECT seq, sha256, old, new, threat_name, changed_at FROM changes WHERE seq > ?1 ORDER BY seq LIMIT ?2");
    // The highest seq ever given (AUTOINCREMENT keeps it when old entries are pruned): a consumer's
    // cursor stays valid however far the feed was cut.
    d.last_seq = d.prepare("SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)");
    d.sample_by_id = d.prepare("SELECT " SLUICE_SAMPLE_COLUMNS " FROM samples WHERE id = ?1");
    d.samples_by_hash =
        d.prepare("SELECT " SLUICE_SAMPLE_COLUMNS " FROM samples WHERE sha256 = ?1 ORDER BY seq DESC LIMIT ?2");
    d.live_by_hash = d.prepare("SELECT " SLUICE_SAMPLE_COLUMNS
                               " FROM samples WHERE sha256 = ?1 AND state <> 'fail' ORDER BY seq DESC LIMIT 1");
    d.unfinished = d.prepare("SELECT " SLUICE_SAMPLE_COLUMNS
                             " FROM samples WHERE state NOT IN ('succ', 'fail') ORDER BY seq");
    d.insert_sample = d.prepare(
        "INSERT INTO samples(id, sha256, filename, size, state, submitted_at) VALUES(?1, ?2, ?3, ?4, 'wait', ?5)");
    d.update_state = d.prepare("UPDATE samples SET state = ?2 WHERE id = ?1");
    d.finish = d.prepare(
        "UPDATE samples SET state = ?2, completed_at = ?3, score = ?4, verdict = ?5, threat_name = ?6, report = ?7 "
        "WHERE id = ?1");
    d.day_count = d.prepare("SELECT count FROM sample_days WHERE day = ?1 AND client = ?2");
    d.count_day = d.prepare(
        "INSERT INTO sample_days(day, client, count) VALUES(?1, ?2, 1) "
        "ON CONFLICT(day, client) DO UPDATE SET count = count + 1");
    d.prune_days = d.prepare("DELETE FROM sample_days WHERE day < ?1");
  } catch (const StoreError& e) {
    db_.reset();
    ::close(lock_fd_);
    lock_fd_ = -1;
    if (std::string_view(e.what()).starts_with(path_.string())) throw;
    throw StoreError(path_.string() + ": " + e.what());
  }
}

Store::~Store() {
  db_.reset();  // closes the database (and checkpoints the WAL) before the lock goes
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

std::vector<FileRecord> Store::lookup(std::span<const Sha256> hashes) {
  std::vector<FileRecord> out;
  out.reserve(hashes.size());
  Transaction t(*db_, false);
  for (const Sha256& h : hashes) out.push_back(read_record(*db_, h));
  t.commit();
  return out;
}

FileRecord Store::lookup(const Sha256& hash) { return read_record(*db_, hash); }

FileRecord Store::set(const Sha256& hash, Disposition d, std::optional<std::string> threat_name,
                      std::optional<int> threat_score, int64_t now) {
  Db& db = *db_;
  Transaction t(db, true);
  const FileRecord before = read_record(db, hash);
  FileRecord after = write_record(db, hash, before, d, std::move(threat_name), threat_score, false, now);
  t.commit();
  return after;
}

std::optional<Sample> Store::sample(std::string_view id) {
  Db& db = *db_;
  bind_text(db.sample_by_id, 1, id);
  auto rows = read_samples(db, db.sample_by_id, "read a sample");
  if (rows.empty()) return std::nullopt;
  return std::move(rows.front());
}

std::vector<Sample> Store::samples_of(const Sha256& hash, unsigned limit) {
  Db& db = *db_;
  bind_hash(db.samples_by_hash, 1, hash);
  sqlite3_bind_int64(db.samples_by_hash, 2, limit);
  return read_samples(db, db.samples_by_hash, "read samples");
}

std::optional<Sample> Store::live_sample(const Sha256& hash) {
  Db& db = *db_;
  bind_hash(db.live_by_hash, 1, hash);
  auto rows = read_samples(db, db.live_by_hash, "read samples");
  if (rows.empty()) return std::nullopt;
  return std::move(rows.front());
}

std::vector<Sample> Store::unfinished_samples() {
  Db& db = *db_;
  return read_samples(db, db.unfinished, "read unfinished samples");
}

unsigned Store::samples_on_day(std::string_view client, int64_t day) {
  Db& db = *db_;
  Reset reset(db.day_count);
  sqlite3_bind_int64(db.day_count, 1, day);
  bind_text(db.day_count, 2, client);
  int rc = sqlite3_step(db.day_count);
  if (rc == SQLITE_ROW) return static_cast<unsigned>(sqlite3_column_int64(db.day_count, 0));
  if (rc != SQLITE_DONE) db.fail("read the daily sample count");
  return 0;
}

Sample Store::add_sample(std::string id, const Sha256& hash, std::optional<std::string> filename, uint64_t size,
                         std::string_view client, int64_t now) {
  Db& db = *db_;
  const int64_t day = utc_day(now);
  Transaction t(db, true);
  {
    Reset reset(db.insert_sample);
    bind_text(db.insert_sample, 1, id);
    bind_hash(db.insert_sample, 2, hash);
    if (filename) bind_text(db.insert_sample, 3, *filename);
    sqlite3_bind_int64(db.insert_sample, 4, static_cast<int64_t>(size));
    sqlite3_bind_int64(db.insert_sample, 5, now);
    db.check(sqlite3_step(db.insert_sample), "add a sample");
  }
  {
    Reset reset(db.count_day);
    sqlite3_bind_int64(db.count_day, 1, day);
    bind_text(db.count_day, 2, client);
    db.check(sqlite3_step(db.count_day), "count a sample");
  }
  {
    // Only today's counts are read; yesterday's stays for a clock that steps back a little.
    Reset reset(db.prune_days);
    sqlite3_bind_int64(db.prune_days, 1, day - 1);
    db.check(sqlite3_step(db.prune_days), "forget old daily counts");
  }
  t.commit();
  Sample s;
  s.id = std::move(id);
  s.sha256 = hash;
  s.filename = std::move(filename);
  s.size = size;
  s.submitted_at = now;
  return s;
}

void Store::set_sample_state(std::string_view id, SampleState state) {
  Db& db = *db_;
  Reset reset(db.update_state);
  bind_text(db.update_state, 1, id);
  bind_text(db.update_state, 2, sample_state_name(state));
  db.check(sqlite3_step(db.update_state), "set a sample's state");
}

FileRecord Store::finish_sample(std::string_view id, SampleState state, const SampleResult& result,
                                const std::optional<AnalysisDisposition>& disposition, int64_t now) {
  Db& db = *db_;
  Transaction t(db, true);
  bind_text(db.sample_by_id, 1, id);
  auto rows = read_samples(db, db.sample_by_id, "read a sample");
  if (rows.empty()) throw StoreError("finish sample " + std::string(id) + ": no such sample");
  const Sha256 hash = rows.front().sha256;
  {
    Reset reset(db.finish);
    bind_text(db.finish, 1, id);
    bind_text(db.finish, 2, sample_state_name(state));
    sqlite3_bind_int64(db.finish, 3, now);
    if (result.score) sqlite3_bind_int(db.finish, 4, *result.score);
    bind_text(db.finish, 5, result.verdict);
    if (result.threat_name) bind_text(db.finish, 6, *result.threat_name);
    bind_text(db.finish, 7, result.report);
    db.check(sqlite3_step(db.finish), "finish a sample");
  }
  FileRecord rec = read_record(db, hash);
  const bool admin_said = rec.known && !rec.by_analysis && rec.disposition != Disposition::unknown;
  if (disposition && !admin_said)
    rec = write_record(db, hash, rec, disposition->disposition, disposition->threat_name, disposition->threat_score,
                       true, now);
  t.commit();
  return rec;
}

ChangePage Store::changes(uint64_t after, unsigned limit) {
  Db& db = *db_;
  ChangePage page;
  Reset reset(db.changes_after);
  sqlite3_bind_int64(db.changes_after, 1, static_cast<int64_t>(after));
  sqlite3_bind_int64(db.changes_after, 2, static_cast<int64_t>(limit) + 1);  // one more: is there more?
  int rc;
  while ((rc = sqlite3_step(db.changes_after)) == SQLITE_ROW) {
    if (page.changes.size() == limit) {
      page.more = true;
      break;
    }
    Change c;
    c.seq = static_cast<uint64_t>(sqlite3_column_int64(db.changes_after, 0));
    if (sqlite3_column_bytes(db.changes_after, 1) == 32)
      std::memcpy(c.sha256.data(), sqlite3_column_blob(db.changes_after, 1), 32);
    c.old_disposition = column_disposition(db.changes_after, 2);
    c.new_disposition = column_disposition(db.changes_after, 3);
    c.threat_name = column_text(db.changes_after, 4);
    c.changed_at = sqlite3_column_int64(db.changes_after, 5);
    page.changes.push_back(std::move(c));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) db.fail("read the change feed");
  return page;
}

uint64_t Store::prune_changes(int64_t before) {
  Db& db = *db_;
  Transaction t(db, true);
  sqlite3_stmt* s = db.prepare("DELETE FROM changes WHERE changed_at < ?1");
  sqlite3_bind_int64(s, 1, before);
  const int rc = sqlite3_step(s);
  sqlite3_finalize(s);
  if (rc != SQLITE_DONE) db.fail("prune the change feed");
  const auto n = static_cast<uint64_t>(sqlite3_changes(db.db));
  t.commit();
  return n;
}

uint64_t Store::last_change_seq() {
  Db& db = *db_;
  Reset reset(db.last_seq);
  if (sqlite3_step(db.last_seq) != SQLITE_ROW) db.fail("read the change feed");
  return static_cast<uint64_t>(sqlite3_column_int64(db.last_seq, 0));
}

}  // namespace sluice::cloud
