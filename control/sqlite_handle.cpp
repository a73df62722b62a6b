#include "control/sqlite_handle.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sluice::control {

std::string check_integrity_and_format(sqlite3* db, int format) {
  // SQLite reads the header lazily: the first statement tells whether this is a database at all.
  Stmt check = prepare(db, "PRAGMA quick_check");
  if (!check || sqlite3_step(check.get()) != SQLITE_ROW) return db_error(db);
  std::string verdict = column_text(check.get(), 0);
  if (verdict != "ok") {  // several lines: the first problems, on one line
    std::replace(verdict.begin(), verdict.end(), '\n', ' ');
    if (verdict.size() > 200) verdict = verdict.substr(0, 200) + "...";
    return "integrity check: " + verdict;
  }
  Stmt version = prepare(db, "SELECT value FROM meta WHERE key = 'format'");
  if (!version || sqlite3_step(version.get()) != SQLITE_ROW) return "no format version";
  const int v = sqlite3_column_int(version.get(), 0);
  if (v != format) return "format " + std::to_string(v) + ", this sluiced reads " + std::to_string(format);
  return "";
}

Db open_for_check(const std::string& path, int& rc) {
  sqlite3* raw = nullptr;
  rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
  Db db(raw);
  if (rc == SQLITE_OK) sqlite3_db_config(raw, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  return db;
}

namespace {

// A database without a single table: a first start that ended (killed) before its schema was
// committed, which is one transaction. Nothing was stored in it; it is simply made again.
bool never_initialised(const std::string& path) {
  int rc = SQLITE_OK;
  Db db = open_for_check(path, rc);
  if (rc != SQLITE_OK) return false;
  Stmt n = prepare(db.get(), "SELECT count(*) FROM sqlite_master");
  return n && sqlite3_step(n.get()) == SQLITE_ROW && sqlite3_column_int64(n.get(), 0) == 0;
}

}  // namespace

StoreFile open_store_file(const std::string& label, const std::string& path,
                          const std::function<std::string(const std::string&)>& check, const char* pragmas,
                          const std::string& schema, int format) {
  StoreFile r;
  struct stat st;
  bool create = stat(path.c_str(), &st) != 0 || never_initialised(path);
  if (!create) {
    const std::string why = check(path);
    if (!why.empty()) {
      r.corrupt = true;
      const std::string aside = path + ".corrupt";
      const bool moved = std::rename(path.c_str(), aside.c_str()) == 0;
      const int e = errno;
      // The write-ahead log belongs to the refused file: applied to a new one it would bring back
      // what was refused.
      std::rename((path + "-wal").c_str(), (aside + "-wal").c_str());
      std::remove((path + "-shm").c_str());
      r.error = label + " " + path + " is not a valid store (" + why + "): starting empty" +
                (moved ? "; the file was moved to " + aside
                       : "; the file could not be moved aside: " + std::string(std::strerror(e)));
      if (!moved) return r;  // cannot start empty over a file we must not overwrite
      create = true;
    }
  }
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0), nullptr);
  Db db(raw);
  auto no_store = [&](const std::string& what) {
    r.error = (r.error.empty() ? "" : r.error + "; ") + label + " " + path + ": " + what + ": " + db_error(db.get());
    return std::move(r);
  };
  if (rc != SQLITE_OK) return no_store("cannot open");
  if (!exec_sql(db.get(), pragmas)) return no_store("cannot set WAL mode");
  if (create) {
    const std::string init = "BEGIN;" + schema + "INSERT INTO meta VALUES ('format', " + std::to_string(format) +
                             "); COMMIT;";
    if (!exec_sql(db.get(), init.c_str()))
      return no_store("cannot create the schema");
  }
  r.db = std::move(db);
  return r;
}

}  // namespace sluice::control
