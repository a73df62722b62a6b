// SQLite handles for the control plane's stores (the verdict cache's file, the submission store):
// a connection and a statement that close and finalize themselves, and the one-line error text.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace sluice::control {

struct SqliteClose {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct SqliteFinalize {
  void operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, SqliteClose>;
using Stmt = std::unique_ptr<sqlite3_stmt, SqliteFinalize>;

inline std::string db_error(sqlite3* db) { return db ? sqlite3_errmsg(db) : "cannot allocate"; }

// A prepared statement, or null when `sql` does not compile against `db` (db_error says why).
inline Stmt prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) return nullptr;
  return Stmt(s);
}

// Runs `sql` (no rows wanted); false on any error (db_error says why).
inline bool exec_sql(sqlite3* db, const char* sql) {
  return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
}

// Statement helpers. Named bind_at, not bind: with <functional> in sight an unqualified
// bind(stmt, i, std::string) finds std::bind by argument-dependent lookup and binds nothing.
inline void bind_at(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
inline void bind_at(sqlite3_stmt* s, int i, int64_t v) { sqlite3_bind_int64(s, i, v); }
// A text column as a string ("" for NULL).
inline std::string column_text(sqlite3_stmt* s, int col) {
  const auto* p = sqlite3_column_text(s, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s, col)))
           : std::string();
}

// The first checks of a store file opened read-only: SQLite's `quick_check` (its first problems on
// one line) and `meta`'s format version. "" when both pass, else why not ("integrity check: ...",
// "no format version", "format 2, this sluiced reads 1", or SQLite's error for a file that is not
// a database).
std::string check_integrity_and_format(sqlite3* db, int format);

// An existing store file opened to be checked (`check` functions of open_store_file): read-write,
// never created, so that the write-ahead log a crash left can be recovered (a read-only connection
// cannot: SQLITE_READONLY_RECOVERY), but without a checkpoint at close, so the file and its log stay
// as they were (a refused file goes aside with its log). `rc` is sqlite3_open_v2's.
Db open_for_check(const std::string& path, int& rc);

// A store file of the control plane (submissions, sightings), opened the same way: an existing
// file is checked first (`check` gives why it is not a store of ours, "" when it is; it opens the
// file with open_for_check()); a file without any table (a first start killed before its schema
// was committed) is made again as a new one; a refused file is moved aside as PATH.corrupt (its
// -wal with it, its -shm removed) and a new one created; `pragmas` are set (WAL mode and its sync level); a new file gets `schema`
// and `meta` ('format', `format`) in one transaction. `label` starts every error ("sightings PATH:
// cannot open: ..."). `db` is null only when no store can be had at all; `error` may be set with a
// `db` too (the file was refused and set aside: the store starts empty).
struct StoreFile {
  Db db;
  bool corrupt = false;  // an existing file was refused
  std::string error;     // one line
};
StoreFile open_store_file(const std::string& label, const std::string& path,
                          const std::function<std::string(const std::string&)>& check, const char* pragmas,
                          const std::string& schema, int format);

}  // namespace sluice::control
