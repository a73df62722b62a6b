// SQLite handles for the control plane's stores (the verdict cache's file, the submission store):
// a connection and a statement that close and finalize themselves, and the one-line error text.
#pragma once

#include <sqlite3.h>

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

}  // namespace sluice::control
