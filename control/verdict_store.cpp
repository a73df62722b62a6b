#include "control/verdict_store.h"

#include "control/sqlite_handle.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace sluice::control {
namespace {

constexpr int kFormatVersion = 1;



}  // namespace

StoreLoad load_verdict_store(const std::string& path, pipeline::VerdictCache& cache, int64_t now_ms,
                             const std::array<unsigned, 4>& max_ttl_s) {
  StoreLoad r;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) r.error = "verdict cache " + path + ": " + std::strerror(errno);
    return r;
  }
  auto refuse = [&](const std::string& why) {
    r.corrupt = true;
    const std::string aside = path + ".corrupt";
    const bool moved = std::rename(path.c_str(), aside.c_str()) == 0;
    r.error = "verdict cache " + path + " is not a valid cache (" + why + "): starting with an empty cache" +
              (moved ? "; the file was moved to " + aside : std::string("; the file could not be moved aside: ") + std::strerror(errno));
    return r;
  };
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) return refuse(db_error(raw));
  // SQLite reads the header lazily: the first statement tells whether this is a database at all.
  Stmt version = prepare(db.get(), "SELECT value FROM meta WHERE key = 'format'");
  if (!version) return refuse(db_error(db.get()));
  if (sqlite3_step(version.get()) != SQLITE_ROW) return refuse("no format version");
  const int v = sqlite3_column_int(version.get(), 0);
  if (v != kFormatVersion) return refuse("format " + std::to_string(v) + ", this sluiced reads " + std::to_string(kFormatVersion));
  Stmt rows = prepare(db.get(), "SELECT sha256, reputation, threat_name, threat_score, upload_wanted, expires_ms FROM verdicts");
  if (!rows) return refuse(db_error(db.get()));
  std::size_t loaded = 0, expired = 0;
  int step;
  while ((step = sqlite3_step(rows.get())) == SQLITE_ROW) {
    if (sqlite3_column_bytes(rows.get(), 0) != 32) return refuse("an entry's sha256 is not 32 bytes");
    const auto* sha = static_cast<const uint8_t*>(sqlite3_column_blob(rows.get(), 0));
    const int rep = sqlite3_column_int(rows.get(), 1);
    if (rep < static_cast<int>(records::Reputation::clean) || rep > static_cast<int>(records::Reputation::unknown))
      return refuse("an entry's reputation is " + std::to_string(rep));
    int64_t expires = sqlite3_column_int64(rows.get(), 5);
    if (const unsigned cap = max_ttl_s[static_cast<std::size_t>(rep)]) expires = std::min(expires, now_ms + int64_t{cap} * 1000);
    if (expires <= now_ms) {
      ++expired;
      continue;
    }
    records::FileVerdict fv;
    fv.reputation = static_cast<records::Reputation>(rep);
    if (const auto* name = sqlite3_column_text(rows.get(), 2))
      fv.threat_name.set(std::string_view(reinterpret_cast<const char*>(name), sqlite3_column_bytes(rows.get(), 2)));
    const int score = sqlite3_column_int(rows.get(), 3);
    fv.threat_score = static_cast<int16_t>(score >= 0 && score <= 100 ? score : -1);
    fv.upload_wanted = sqlite3_column_int(rows.get(), 4) != 0;
    cache.put(sha, fv, expires, now_ms);
    ++loaded;
  }
  if (step != SQLITE_DONE) return refuse(db_error(db.get()));
  r.loaded = loaded;
  r.expired = expired;
  return r;
}

std::vector<StoredVerdict> snapshot_verdicts(const pipeline::VerdictCache& cache, int64_t now_ms) {
  std::vector<StoredVerdict> out;
  out.reserve(cache.size());
  cache.for_each(now_ms, [&](const uint8_t* sha, const records::FileVerdict& v, int64_t expires) {
    if (v.source == records::kSourceOverride) return;  // kept in their own file (file_reputation.h)
    StoredVerdict e;
    std::memcpy(e.sha256.data(), sha, 32);
    e.verdict = v;
    e.expires_ms = expires;
    out.push_back(e);
  });
  return out;
}

std::string save_verdict_store(const std::string& path, const std::vector<StoredVerdict>& entries) {
  const std::string tmp = path + ".tmp";
  unlink(tmp.c_str());
  auto fail = [&](sqlite3* db, const std::string& what) {
    const std::string e = "verdict cache " + path + ": " + what + (db ? ": " + db_error(db) : std::string());
    return e;
  };
  {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(tmp.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    Db db(raw);
    if (rc != SQLITE_OK) return fail(raw, "cannot create " + tmp);
    // One transaction, no journal: the file is renamed into place only once complete.
    if (!exec_sql(db.get(), "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; BEGIN;"
                        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
                        "CREATE TABLE verdicts (sha256 BLOB PRIMARY KEY, reputation INTEGER NOT NULL, "
                        "threat_name TEXT, threat_score INTEGER NOT NULL, upload_wanted INTEGER NOT NULL, "
                        "expires_ms INTEGER NOT NULL) WITHOUT ROWID;"))
      return fail(db.get(), "cannot write the schema");
    const std::string meta = "INSERT INTO meta VALUES ('format', " + std::to_string(kFormatVersion) + ");";
    if (!exec_sql(db.get(), meta.c_str())) return fail(db.get(), "cannot write the format version");
    Stmt ins = prepare(db.get(), "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?)");
    if (!ins) return fail(db.get(), "cannot prepare");
    for (const auto& e : entries) {
      sqlite3_bind_blob(ins.get(), 1, e.sha256.data(), 32, SQLITE_STATIC);
      sqlite3_bind_int(ins.get(), 2, static_cast<int>(e.verdict.reputation));
      if (e.verdict.threat_name.len)
        sqlite3_bind_text(ins.get(), 3, e.verdict.threat_name.data, e.verdict.threat_name.len, SQLITE_STATIC);
      else
        sqlite3_bind_null(ins.get(), 3);
      sqlite3_bind_int(ins.get(), 4, e.verdict.threat_score);
      sqlite3_bind_int(ins.get(), 5, e.verdict.upload_wanted ? 1 : 0);
      sqlite3_bind_int64(ins.get(), 6, e.expires_ms);
      if (sqlite3_step(ins.get()) != SQLITE_DONE) return fail(db.get(), "cannot write an entry");
      sqlite3_reset(ins.get());
    }
    if (!exec_sql(db.get(), "COMMIT;")) return fail(db.get(), "cannot commit");
  }
  // The data reaches the disk before the rename makes it the store.
  if (FILE* f = std::fopen(tmp.c_str(), "rb")) {
    fsync(fileno(f));
    std::fclose(f);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return "verdict cache " + path + ": cannot rename " + tmp + ": " + std::strerror(errno);
  return "";
}

}  // namespace sluice::control
