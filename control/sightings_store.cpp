// Sightings in SQLite (sightings_store.h).
#include "control/sightings_store.h"

#include <sqlite3.h>

#include "control/sqlite_handle.h"

namespace sluice::control {
namespace {

constexpr int kFormatVersion = 1;
constexpr int64_t kDayMs = 86'400'000;

constexpr char kSchema[] =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
    "CREATE TABLE messages (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, appliance TEXT NOT NULL, "
    "flow_id INTEGER NOT NULL, txn INTEGER NOT NULL, client_ip TEXT NOT NULL, client_port INTEGER NOT NULL, "
    "server_ip TEXT NOT NULL, server_port INTEGER NOT NULL, message_sha256 TEXT NOT NULL, message_id TEXT NOT NULL, "
    "subject TEXT NOT NULL, mail_from TEXT NOT NULL, header_from TEXT NOT NULL, header_to TEXT NOT NULL, "
    "header_cc TEXT NOT NULL, disposition TEXT NOT NULL, action TEXT NOT NULL);"
    "CREATE INDEX messages_by_time ON messages (time_ms);"
    "CREATE TABLE rcpts (message INTEGER NOT NULL, addr TEXT NOT NULL COLLATE NOCASE);"
    "CREATE INDEX rcpts_by_addr ON rcpts (addr);"
    "CREATE INDEX rcpts_by_message ON rcpts (message);"
    "CREATE TABLE files (message INTEGER NOT NULL, sha256 TEXT NOT NULL, filename TEXT NOT NULL, "
    "archive_path TEXT NOT NULL, size INTEGER NOT NULL, file_type TEXT NOT NULL, reputation TEXT NOT NULL, "
    "threat_name TEXT NOT NULL, reading TEXT NOT NULL);"
    "CREATE INDEX files_by_sha256 ON files (sha256);"
    "CREATE INDEX files_by_message ON files (message);";

// Retrospective state (sightings_store.h): created when missing, so a file of the first version
// gains them at open.
constexpr char kRetrospectiveSchema[] =
    "CREATE TABLE IF NOT EXISTS cursors (endpoint TEXT PRIMARY KEY, cursor TEXT NOT NULL, updated_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS rechecks (endpoint TEXT NOT NULL, sha256 TEXT NOT NULL, disposition TEXT NOT NULL, "
    "checked_ms INTEGER NOT NULL, PRIMARY KEY (endpoint, sha256)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS reports (id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL, endpoint TEXT NOT NULL, "
    "change_key TEXT NOT NULL, sha256 TEXT NOT NULL, body TEXT NOT NULL, delivered INTEGER NOT NULL, "
    "UNIQUE (endpoint, change_key, sha256));"
    "CREATE INDEX IF NOT EXISTS reports_undelivered ON reports (delivered, id);"
    "CREATE INDEX IF NOT EXISTS reports_by_time ON reports (created_ms);";

constexpr char kMessageColumns[] =
    "id, time_ms, appliance, flow_id, txn, client_ip, client_port, server_ip, server_port, message_sha256, "
    "message_id, subject, mail_from, header_from, header_to, header_cc, disposition, action";


// Why the file at `path` is not a store of ours ("" when it is).
std::string check_file(const std::string& path) {
  int rc = SQLITE_OK;
  Db db = open_for_check(path, rc);
  sqlite3* raw = db.get();
  if (rc != SQLITE_OK) return "cannot open: " + db_error(raw);
  if (std::string why = check_integrity_and_format(raw, kFormatVersion); !why.empty()) return why;
  for (const char* table : {"messages", "rcpts", "files"}) {
    Stmt s = prepare(raw, std::string("SELECT * FROM ") + table + " LIMIT 0");
    if (!s) return std::string("no table ") + table;
  }
  Stmt cols = prepare(raw, std::string("SELECT ") + kMessageColumns + " FROM messages LIMIT 0");
  if (!cols) return "another schema: " + db_error(raw);
  return "";
}

}  // namespace

struct SightingsStore::Impl {
  std::string path;
  SightingsLimits limits;
  Db db;
  SightingsStats stats;

  bool fail(std::string& error, const std::string& what) {
    ++stats.errors;
    error = "sightings " + path + ": " + what + ": " + db_error(db.get());
    exec_sql(db.get(), "ROLLBACK");
    return false;
  }
  void refresh_counts() {
    Stmt m = prepare(db.get(), "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM files)");
    if (m && sqlite3_step(m.get()) == SQLITE_ROW) {
      stats.messages = static_cast<uint64_t>(sqlite3_column_int64(m.get(), 0));
      stats.files = static_cast<uint64_t>(sqlite3_column_int64(m.get(), 1));
    }
  }
  // Messages (newest first) chosen by `where` (bound by `binder`), with their recipients and files.
  template <typename Binder>
  std::vector<SightedMessage> select(const std::string& where, unsigned limit, Binder binder) const {
    std::vector<SightedMessage> out;
    Stmt s = prepare(db.get(), std::string("SELECT ") + kMessageColumns + " FROM messages WHERE " + where +
                                   " ORDER BY time_ms DESC, id DESC LIMIT " + std::to_string(limit));
    if (!s) return out;
    binder(s.get());
    while (sqlite3_step(s.get()) == SQLITE_ROW) {
      SightedMessage m;
      m.id = sqlite3_column_int64(s.get(), 0);
      m.time_ms = sqlite3_column_int64(s.get(), 1);
      m.appliance = column_text(s.get(), 2);
      m.flow_id = static_cast<uint64_t>(sqlite3_column_int64(s.get(), 3));
      m.transaction = static_cast<uint64_t>(sqlite3_column_int64(s.get(), 4));
      m.client_ip = column_text(s.get(), 5);
      m.client_port = static_cast<uint16_t>(sqlite3_column_int(s.get(), 6));
      m.server_ip = column_text(s.get(), 7);
      m.server_port = static_cast<uint16_t>(sqlite3_column_int(s.get(), 8));
      m.message_sha256 = column_text(s.get(), 9);
      m.message_id = column_text(s.get(), 10);
      m.subject = column_text(s.get(), 11);
      m.mail_from = column_text(s.get(), 12);
      m.header_from = column_text(s.get(), 13);
      m.header_to = column_text(s.get(), 14);
      m.header_cc = column_text(s.get(), 15);
      m.disposition = column_text(s.get(), 16);
      m.action = column_text(s.get(), 17);
      out.push_back(std::move(m));
    }
    Stmt r = prepare(db.get(), "SELECT addr FROM rcpts WHERE message = ? ORDER BY rowid");
    Stmt f = prepare(db.get(),
                     "SELECT sha256, filename, archive_path, size, file_type, reputation, threat_name, reading "
                     "FROM files WHERE message = ? ORDER BY rowid");
    for (SightedMessage& m : out) {
      if (r) {
        sqlite3_reset(r.get());
        bind_at(r.get(), 1, m.id);
        while (sqlite3_step(r.get()) == SQLITE_ROW) m.rcpt_to.push_back(column_text(r.get(), 0));
      }
      if (f) {
        sqlite3_reset(f.get());
        bind_at(f.get(), 1, m.id);
        while (sqlite3_step(f.get()) == SQLITE_ROW) {
          SightedFile x;
          x.sha256 = column_text(f.get(), 0);
          x.filename = column_text(f.get(), 1);
          x.archive_path = column_text(f.get(), 2);
          x.size = static_cast<uint64_t>(sqlite3_column_int64(f.get(), 3));
          x.file_type = column_text(f.get(), 4);
          x.reputation = column_text(f.get(), 5);
          x.threat_name = column_text(f.get(), 6);
          x.reading = column_text(f.get(), 7);
          m.files.push_back(std::move(x));
        }
      }
    }
    return out;
  }
  // Deletes the messages `where` picks (and their rows); returns how many.
  uint64_t remove(const std::string& where, int64_t arg) {
    const std::string sub = "(SELECT id FROM messages WHERE " + where + ")";
    if (!exec_sql(db.get(), "BEGIN")) return 0;
    uint64_t n = 0;
    for (const std::string& sql : {"DELETE FROM rcpts WHERE message IN " + sub,
                                   "DELETE FROM files WHERE message IN " + sub,
                                   "DELETE FROM messages WHERE id IN " + sub}) {
      Stmt s = prepare(db.get(), sql);
      if (!s) {
        exec_sql(db.get(), "ROLLBACK");
        ++stats.errors;
        return 0;
      }
      bind_at(s.get(), 1, arg);
      if (sqlite3_step(s.get()) != SQLITE_DONE) {
        exec_sql(db.get(), "ROLLBACK");
        ++stats.errors;
        return 0;
      }
      n = static_cast<uint64_t>(sqlite3_changes(db.get()));
    }
    if (!exec_sql(db.get(), "COMMIT")) {
      exec_sql(db.get(), "ROLLBACK");
      ++stats.errors;
      return 0;
    }
    return n;
  }
  uint64_t live_bytes() const {
    Stmt s = prepare(db.get(), "SELECT (SELECT page_count FROM pragma_page_count()) - "
                               "(SELECT freelist_count FROM pragma_freelist_count()), "
                               "(SELECT page_size FROM pragma_page_size())");
    if (!s || sqlite3_step(s.get()) != SQLITE_ROW) return 0;
    return static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0)) * static_cast<uint64_t>(sqlite3_column_int64(s.get(), 1));
  }
};

SightingsStore::SightingsStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SightingsStore::~SightingsStore() = default;
const SightingsStats& SightingsStore::stats() const noexcept { return impl_->stats; }
const std::string& SightingsStore::path() const noexcept { return impl_->path; }

SightingsOpen SightingsStore::open(const std::string& path, const SightingsLimits& limits) {
  SightingsOpen r;
  if (limits.retention_days < 1 || limits.retention_days > 3650 || limits.max_mb < 1 || limits.max_mb > 1048576) {
    r.error = "sightings " + path + ": limits out of range (retention_days 1..3650, max_mb 1..1048576)";
    return r;
  }
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->limits = limits;
  StoreFile f = open_store_file("sightings", path, check_file, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                                kSchema, kFormatVersion);
  r.error = std::move(f.error);
  impl->stats.corrupt = f.corrupt;
  if (!f.db) return r;
  impl->db = std::move(f.db);
  if (!exec_sql(impl->db.get(), kRetrospectiveSchema)) {
    r.error = "sightings " + path + ": cannot create the retrospective tables: " + db_error(impl->db.get());
    return r;
  }
  impl->refresh_counts();
  r.store.reset(new SightingsStore(std::move(impl)));
  return r;
}

bool SightingsStore::add(const std::vector<SightedMessage>& batch, std::string& error) {
  Impl& m = *impl_;
  if (batch.empty()) return true;
  if (!exec_sql(m.db.get(), "BEGIN")) return m.fail(error, "cannot begin");
  Stmt msg = prepare(m.db.get(), "INSERT INTO messages (time_ms, appliance, flow_id, txn, client_ip, client_port, "
                                 "server_ip, server_port, message_sha256, message_id, subject, mail_from, header_from, "
                                 "header_to, header_cc, disposition, action) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  Stmt rcpt = prepare(m.db.get(), "INSERT INTO rcpts (message, addr) VALUES (?, ?)");
  Stmt file = prepare(m.db.get(), "INSERT INTO files (message, sha256, filename, archive_path, size, file_type, "
                                  "reputation, threat_name, reading) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!msg || !rcpt || !file) return m.fail(error, "cannot prepare");
  uint64_t files = 0;
  for (const SightedMessage& s : batch) {
    sqlite3_reset(msg.get());
    bind_at(msg.get(), 1, s.time_ms);
    bind_at(msg.get(), 2, s.appliance);
    bind_at(msg.get(), 3, static_cast<int64_t>(s.flow_id));
    bind_at(msg.get(), 4, static_cast<int64_t>(s.transaction));
    bind_at(msg.get(), 5, s.client_ip);
    bind_at(msg.get(), 6, int64_t{s.client_port});
    bind_at(msg.get(), 7, s.server_ip);
    bind_at(msg.get(), 8, int64_t{s.server_port});
    bind_at(msg.get(), 9, s.message_sha256);
    bind_at(msg.get(), 10, s.message_id);
    bind_at(msg.get(), 11, s.subject);
    bind_at(msg.get(), 12, s.mail_from);
    bind_at(msg.get(), 13, s.header_from);
    bind_at(msg.get(), 14, s.header_to);
    bind_at(msg.get(), 15, s.header_cc);
    bind_at(msg.get(), 16, s.disposition);
    bind_at(msg.get(), 17, s.action);
    if (sqlite3_step(msg.get()) != SQLITE_DONE) return m.fail(error, "cannot insert a message");
    const int64_t id = sqlite3_last_insert_rowid(m.db.get());
    for (const std::string& a : s.rcpt_to) {
      sqlite3_reset(rcpt.get());
      bind_at(rcpt.get(), 1, id);
      bind_at(rcpt.get(), 2, a);
      if (sqlite3_step(rcpt.get()) != SQLITE_DONE) return m.fail(error, "cannot insert a recipient");
    }
    for (const SightedFile& f : s.files) {
      sqlite3_reset(file.get());
      bind_at(file.get(), 1, id);
      bind_at(file.get(), 2, f.sha256);
      bind_at(file.get(), 3, f.filename);
      bind_at(file.get(), 4, f.archive_path);
      bind_at(file.get(), 5, static_cast<int64_t>(f.size));
      bind_at(file.get(), 6, f.file_type);
      bind_at(file.get(), 7, f.reputation);
      bind_at(file.get(), 8, f.threat_name);
      bind_at(file.get(), 9, f.reading);
      if (sqlite3_step(file.get()) != SQLITE_DONE) return m.fail(error, "cannot insert a file");
      ++files;
    }
  }
  if (!exec_sql(m.db.get(), "COMMIT")) return m.fail(error, "cannot commit");
  m.stats.added_messages += batch.size();
  m.stats.added_files += files;
  m.stats.messages += batch.size();
  m.stats.files += files;
  return true;
}

std::vector<SightedMessage> SightingsStore::where_seen(const std::string& sha256, unsigned limit) const {
  std::string lower = sha256;
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
  return impl_->select("id IN (SELECT message FROM files WHERE sha256 = ?)", limit,
                       [&](sqlite3_stmt* s) { bind_at(s, 1, lower); });
}

std::vector<SightedMessage> SightingsStore::for_recipient(const std::string& rcpt, int64_t from_ms, int64_t to_ms,
                                                          unsigned limit) const {
  return impl_->select("id IN (SELECT message FROM rcpts WHERE addr = ?) AND time_ms >= ? AND time_ms < ?", limit,
                       [&](sqlite3_stmt* s) {
                         bind_at(s, 1, rcpt);
                         bind_at(s, 2, from_ms);
                         bind_at(s, 3, to_ms);
                       });
}

std::vector<SightedMessage> SightingsStore::in_range(int64_t from_ms, int64_t to_ms, unsigned limit) const {
  return impl_->select("time_ms >= ? AND time_ms < ?", limit, [&](sqlite3_stmt* s) {
    bind_at(s, 1, from_ms);
    bind_at(s, 2, to_ms);
  });
}

uint64_t SightingsStore::prune(int64_t now_ms) {
  Impl& m = *impl_;
  const uint64_t aged = m.remove("time_ms < ?", now_ms - int64_t{m.limits.retention_days} * kDayMs);
  m.stats.pruned_age += aged;
  uint64_t sized = 0;
  const uint64_t bound = uint64_t{m.limits.max_mb} << 20;
  // The oldest tenth at a time until the live pages fit.
  for (int round = 0; round < 64 && m.live_bytes() > bound; ++round) {
    Stmt c = prepare(m.db.get(), "SELECT count(*) FROM messages");
    if (!c || sqlite3_step(c.get()) != SQLITE_ROW) break;
    const int64_t n = sqlite3_column_int64(c.get(), 0);
    if (n == 0) break;
    const int64_t k = n / 10 > 0 ? n / 10 : n;
    Stmt t = prepare(m.db.get(), "SELECT time_ms FROM messages ORDER BY time_ms LIMIT 1 OFFSET ?");
    if (!t) break;
    bind_at(t.get(), 1, k - 1);
    if (sqlite3_step(t.get()) != SQLITE_ROW) break;
    const uint64_t d = m.remove("time_ms <= ?", sqlite3_column_int64(t.get(), 0));
    if (d == 0) break;
    sized += d;
  }
  m.stats.pruned_size += sized;
  if (aged || sized) m.refresh_counts();
  if (Stmt r = prepare(m.db.get(), "DELETE FROM reports WHERE created_ms < ?")) {
    bind_at(r.get(), 1, now_ms - int64_t{m.limits.retention_days} * kDayMs);
    if (sqlite3_step(r.get()) != SQLITE_DONE) ++m.stats.errors;
  }
  if (Stmt r = prepare(m.db.get(), "DELETE FROM rechecks WHERE checked_ms < ?")) {
    bind_at(r.get(), 1, now_ms - int64_t{m.limits.retention_days} * kDayMs);
    if (sqlite3_step(r.get()) != SQLITE_DONE) ++m.stats.errors;
  }
  return aged + sized;
}

uint64_t SightingsStore::adopt(const std::string& sha256, const std::string& disposition, int64_t since_ms) {
  // By the file's index, then its message: never a scan of every message.
  Stmt s = prepare(impl_->db.get(), "UPDATE files SET reputation = ?2 WHERE sha256 = ?1 AND reputation IN ('', 'unknown') "
                                    "AND EXISTS (SELECT 1 FROM messages m WHERE m.id = files.message AND "
                                    "m.disposition = 'pending' AND m.time_ms >= ?3)");
  if (!s) return 0;
  bind_at(s.get(), 1, sha256);
  bind_at(s.get(), 2, disposition);
  bind_at(s.get(), 3, since_ms);
  if (sqlite3_step(s.get()) != SQLITE_DONE) {
    ++impl_->stats.errors;
    return 0;
  }
  return static_cast<uint64_t>(sqlite3_changes(impl_->db.get()));
}

std::string SightingsStore::cursor(const std::string& endpoint) const {
  Stmt s = prepare(impl_->db.get(), "SELECT cursor FROM cursors WHERE endpoint = ?");
  if (!s) return "";
  bind_at(s.get(), 1, endpoint);
  return sqlite3_step(s.get()) == SQLITE_ROW ? column_text(s.get(), 0) : "";
}

bool SightingsStore::record(const std::string& endpoint, const std::vector<ReportToRecord>& reports,
                            const std::vector<Recheck>& rechecks, const std::string* new_cursor, int64_t now,
                            std::vector<StoredReport>& inserted, std::string& error) {
  Impl& m = *impl_;
  if (!exec_sql(m.db.get(), "BEGIN")) return m.fail(error, "cannot begin");
  const std::size_t first = inserted.size();
  auto failed = [&](const char* what) {
    inserted.resize(first);
    return m.fail(error, what);
  };
  Stmt rep = prepare(m.db.get(), "INSERT OR IGNORE INTO reports (created_ms, endpoint, change_key, sha256, body, "
                                 "delivered) VALUES (?, ?, ?, ?, ?, 0)");
  Stmt chk = prepare(m.db.get(), "INSERT OR REPLACE INTO rechecks (endpoint, sha256, disposition, checked_ms) "
                                 "VALUES (?, ?, ?, ?)");
  if (!rep || !chk) return failed("cannot prepare");
  for (const ReportToRecord& r : reports) {
    sqlite3_reset(rep.get());
    bind_at(rep.get(), 1, now);
    bind_at(rep.get(), 2, endpoint);
    bind_at(rep.get(), 3, r.key);
    bind_at(rep.get(), 4, r.sha256);
    bind_at(rep.get(), 5, r.body);
    if (sqlite3_step(rep.get()) != SQLITE_DONE) return failed("cannot insert a report");
    if (sqlite3_changes(m.db.get()) == 1)
      inserted.push_back({sqlite3_last_insert_rowid(m.db.get()), now, endpoint, r.sha256, r.body, false});
  }
  for (const Recheck& c : rechecks) {
    sqlite3_reset(chk.get());
    bind_at(chk.get(), 1, endpoint);
    bind_at(chk.get(), 2, c.sha256);
    bind_at(chk.get(), 3, c.disposition);
    bind_at(chk.get(), 4, c.checked_ms);
    if (sqlite3_step(chk.get()) != SQLITE_DONE) return failed("cannot record a re-look-up");
  }
  if (new_cursor) {
    Stmt c = prepare(m.db.get(), new_cursor->empty()
                                     ? "DELETE FROM cursors WHERE endpoint = ?1"
                                     : "INSERT OR REPLACE INTO cursors (endpoint, cursor, updated_ms) VALUES (?1, ?2, ?3)");
    if (!c) return failed("cannot prepare");
    bind_at(c.get(), 1, endpoint);
    if (!new_cursor->empty()) {
      bind_at(c.get(), 2, *new_cursor);
      bind_at(c.get(), 3, now);
    }
    if (sqlite3_step(c.get()) != SQLITE_DONE) return failed("cannot store the cursor");
  }
  if (!exec_sql(m.db.get(), "COMMIT")) return failed("cannot commit");
  m.stats.reports += inserted.size() - first;
  return true;
}

namespace {
std::vector<StoredReport> read_reports(sqlite3_stmt* s) {
  std::vector<StoredReport> out;
  while (sqlite3_step(s) == SQLITE_ROW) {
    StoredReport r;
    r.id = sqlite3_column_int64(s, 0);
    r.created_ms = sqlite3_column_int64(s, 1);
    r.endpoint = column_text(s, 2);
    r.sha256 = column_text(s, 3);
    r.body = column_text(s, 4);
    r.delivered = sqlite3_column_int(s, 5) != 0;
    out.push_back(std::move(r));
  }
  return out;
}
}  // namespace

std::vector<StoredReport> SightingsStore::undelivered(unsigned limit, int64_t after_id) const {
  Stmt s = prepare(impl_->db.get(), "SELECT id, created_ms, endpoint, sha256, body, delivered FROM reports "
                                    "WHERE delivered = 0 AND id > ? ORDER BY id LIMIT " + std::to_string(limit));
  if (!s) return {};
  bind_at(s.get(), 1, after_id);
  return read_reports(s.get());
}

std::vector<StoredReport> SightingsStore::reports(int64_t from_ms, int64_t to_ms, unsigned limit) const {
  Stmt s = prepare(impl_->db.get(), "SELECT id, created_ms, endpoint, sha256, body, delivered FROM reports "
                                    "WHERE created_ms >= ? AND created_ms < ? ORDER BY id DESC LIMIT " +
                                        std::to_string(limit));
  if (!s) return {};
  bind_at(s.get(), 1, from_ms);
  bind_at(s.get(), 2, to_ms);
  return read_reports(s.get());
}

bool SightingsStore::mark_delivered(const std::vector<int64_t>& ids, std::string& error) {
  Impl& m = *impl_;
  if (ids.empty()) return true;
  if (!exec_sql(m.db.get(), "BEGIN")) return m.fail(error, "cannot begin");
  Stmt s = prepare(m.db.get(), "UPDATE reports SET delivered = 1 WHERE id = ?");
  if (!s) return m.fail(error, "cannot prepare");
  for (int64_t id : ids) {
    sqlite3_reset(s.get());
    bind_at(s.get(), 1, id);
    if (sqlite3_step(s.get()) != SQLITE_DONE) return m.fail(error, "cannot mark a report");
  }
  if (!exec_sql(m.db.get(), "COMMIT")) return m.fail(error, "cannot commit");
  return true;
}

std::vector<std::pair<std::string, std::string>> SightingsStore::recheck_candidates(const std::string& endpoint,
                                                                                    int64_t since_ms,
                                                                                    unsigned limit) const {
  std::vector<std::pair<std::string, std::string>> out;
  // Per hash seen since `since_ms`: what is known of it is the newer of its newest sighting's
  // reputation and this endpoint's last re-look-up; malicious is not asked again (the feed or an
  // analysis says otherwise).
  Stmt s = prepare(impl_->db.get(),
                   "WITH seen AS (SELECT f.sha256 AS sha256, max(m.time_ms) AS last_ms FROM files f "
                   "JOIN messages m ON m.id = f.message WHERE m.time_ms >= ?1 GROUP BY f.sha256), "
                   "latest AS (SELECT seen.sha256, seen.last_ms, (SELECT f2.reputation FROM files f2 JOIN messages m2 "
                   "ON m2.id = f2.message WHERE f2.sha256 = seen.sha256 ORDER BY m2.time_ms DESC, m2.id DESC LIMIT 1) "
                   "AS reputation FROM seen) "
                   "SELECT sha256, known FROM (SELECT latest.sha256 AS sha256, latest.last_ms AS last_ms, "
                   "r.checked_ms AS checked_ms, CASE WHEN r.checked_ms IS NOT NULL AND r.checked_ms >= latest.last_ms "
                   "THEN r.disposition ELSE latest.reputation END AS known FROM latest "
                   "LEFT JOIN rechecks r ON r.endpoint = ?2 AND r.sha256 = latest.sha256) "
                   "WHERE known IN ('', 'unknown', 'clean') "
                   "ORDER BY checked_ms IS NOT NULL, checked_ms, last_ms DESC LIMIT ?3");
  if (!s) return out;
  bind_at(s.get(), 1, since_ms);
  bind_at(s.get(), 2, endpoint);
  bind_at(s.get(), 3, int64_t{limit});
  while (sqlite3_step(s.get()) == SQLITE_ROW) out.emplace_back(column_text(s.get(), 0), column_text(s.get(), 1));
  return out;
}

}  // namespace sluice::control
