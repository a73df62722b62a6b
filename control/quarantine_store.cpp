// The quarantine on disk: layout, durability and recovery are described in quarantine_store.h and
// control/NOTES.md ("File analysis stores"). Every write goes through a temporary name (`.tmp`),
// is fsynced, then renamed; `ID.meta` is the commit record of an entry, `ID.drop` the commit
// record of its removal.
#include "control/hex.h"
#include "control/quarantine_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <limits>
#include <type_traits>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

namespace sluice::control {
namespace {

using nlohmann::json;

constexpr int kMetaFormat = 1;
constexpr char kMetaMagic[] = "sluice-quarantine-meta";
constexpr std::size_t kMaxMetaBytes = 1 << 20;   // far above any real entry; bounds what open() reads
constexpr std::size_t kWriteChunk = 256 << 10;   // one write(2) per chunk (and one test step)
constexpr std::size_t kMaxProblemLines = 100;    // open() lists at most this many, then a count
constexpr int64_t kDayMs = 86'400'000;
constexpr char kCorruptDir[] = "corrupt";

void (*g_step_hook)(const char*) = nullptr;
void step(const char* name) {
  if (g_step_hook) g_step_hook(name);
}

std::string errno_text(int e) { return std::strerror(e); }

std::string sha256_hex(std::string_view data) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr);
  return hex_string(d, n);
}


// "YYYYMMDD-HHMMSS-mmm-xxxxxxxx".
bool valid_id(std::string_view id) {
  if (id.size() != 28) return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    if (i == 8 || i == 15 || i == 19) {
      if (c != '-') return false;
    } else if (i > 19) {
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return true;
}

std::string make_id(int64_t now_ms) {
  const time_t secs = static_cast<time_t>(now_ms >= 0 ? now_ms / 1000 : 0);
  struct tm tm;
  gmtime_r(&secs, &tm);
  uint32_t rnd = 0;
  if (getrandom(&rnd, sizeof rnd, 0) != static_cast<ssize_t>(sizeof rnd)) {
    // No entropy source: time and address bits still make a collision unlikely, and put() checks.
    rnd = static_cast<uint32_t>(now_ms * 2654435761u) ^ static_cast<uint32_t>(reinterpret_cast<uintptr_t>(&tm));
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d-%02d%02d%02d-%03d-%08x", (tm.tm_year + 1900) % 10000, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(now_ms >= 0 ? now_ms % 1000 : 0),
                static_cast<unsigned>(rnd));
  return buf;
}

bool contains_icase(std::string_view hay, std::string_view needle) {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(),
                     [&](char a, char b) { return lower(a) == lower(b); }) != hay.end();
}

// ---- metadata: "sluice-quarantine-meta 1 LEN SHA256\n" then LEN bytes of JSON ----

std::string encode_meta(const QuarantineEntry& e) {
  nlohmann::ordered_json j;
  j["id"] = e.id;
  j["received_ms"] = e.received_ms;
  j["stored_ms"] = e.stored_ms;
  j["message_sha256"] = e.message_sha256;
  j["size"] = e.size;
  j["flow_id"] = e.flow_id;
  j["transaction"] = e.transaction;
  j["client_ip"] = e.client_ip;
  j["client_port"] = e.client_port;
  j["server_ip"] = e.server_ip;
  j["server_port"] = e.server_port;
  j["helo"] = e.helo;
  j["mail_from"] = e.mail_from;
  j["rcpt_to"] = e.rcpt_to;
  j["subject"] = e.subject;
  j["message_id"] = e.message_id;
  auto files = nlohmann::ordered_json::array();
  for (const auto& f : e.files)
    files.push_back({{"filename", f.filename}, {"sha256", f.sha256}, {"reputation", f.reputation}, {"pending", f.pending}});
  j["files"] = std::move(files);
  j["reasons"] = e.reasons;
  j["state"] = quarantine_state_name(e.state);
  j["action"] = e.action;
  j["by"] = e.by;
  j["why"] = e.why;
  j["changed_ms"] = e.changed_ms;
  const std::string body = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  return std::string(kMetaMagic) + " " + std::to_string(kMetaFormat) + " " + std::to_string(body.size()) + " " +
         sha256_hex(body) + "\n" + body;
}

// Typed reads from a parsed body: false when the key is missing or of another type.
bool get(const json& j, const char* k, std::string& out) {
  const auto it = j.find(k);
  if (it == j.end() || !it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}
template <typename T>
bool get_int(const json& j, const char* k, T& out) {
  const auto it = j.find(k);
  if (it == j.end() || !it->is_number_integer()) return false;
  if constexpr (std::is_unsigned_v<T>) {
    if (it->is_number_unsigned()) {
      const uint64_t v = it->get<uint64_t>();
      if (v > std::numeric_limits<T>::max()) return false;
      out = static_cast<T>(v);
      return true;
    }
    const int64_t v = it->get<int64_t>();
    if (v < 0 || static_cast<uint64_t>(v) > std::numeric_limits<T>::max()) return false;
    out = static_cast<T>(v);
  } else {
    if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      return false;
    out = it->get<T>();
  }
  return true;
}
bool get_strings(const json& j, const char* k, std::vector<std::string>& out) {
  const auto it = j.find(k);
  if (it == j.end() || !it->is_array()) return false;
  out.clear();
  for (const auto& v : *it) {
    if (!v.is_string()) return false;
    out.push_back(v.get<std::string>());
  }
  return true;
}

// Checks the header's length and checksum, then every field; `why` says what is wrong.
bool decode_meta(std::string_view file, QuarantineEntry& e, std::string& why) {
  const std::size_t nl = file.find('\n');
  if (nl == std::string_view::npos || nl > 200) {
    why = file.empty() ? "empty file" : "no header line (torn or not a metadata file)";
    return false;
  }
  const std::string header(file.substr(0, nl));
  char magic[32] = {}, sum[65] = {};
  int format = 0;
  unsigned long long len = 0;
  int used = 0;
  if (std::sscanf(header.c_str(), "%31s %d %llu %64s%n", magic, &format, &len, sum, &used) != 4 ||
      static_cast<std::size_t>(used) != header.size() || std::strcmp(magic, kMetaMagic) != 0) {
    why = "bad header line";
    return false;
  }
  if (format != kMetaFormat) {
    why = "format " + std::to_string(format) + ", this sluiced reads " + std::to_string(kMetaFormat);
    return false;
  }
  const std::string_view body = file.substr(nl + 1);
  if (body.size() != len) {
    why = "length " + std::to_string(body.size()) + ", the header says " + std::to_string(len) + " (torn)";
    return false;
  }
  if (sha256_hex(body) != sum) {
    why = "checksum mismatch";
    return false;
  }
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    why = "not a JSON object";
    return false;
  }
  std::string state;
  bool ok = get(j, "id", e.id) && get_int(j, "received_ms", e.received_ms) && get_int(j, "stored_ms", e.stored_ms) &&
            get(j, "message_sha256", e.message_sha256) && get_int(j, "size", e.size) &&
            get_int(j, "flow_id", e.flow_id) && get_int(j, "transaction", e.transaction) &&
            get(j, "client_ip", e.client_ip) && get_int(j, "client_port", e.client_port) &&
            get(j, "server_ip", e.server_ip) && get_int(j, "server_port", e.server_port) && get(j, "helo", e.helo) &&
            get(j, "mail_from", e.mail_from) && get_strings(j, "rcpt_to", e.rcpt_to) && get(j, "subject", e.subject) &&
            get(j, "message_id", e.message_id) && get_strings(j, "reasons", e.reasons) && get(j, "state", state) &&
            get(j, "action", e.action) && get(j, "by", e.by) && get(j, "why", e.why) &&
            get_int(j, "changed_ms", e.changed_ms);
  const auto files = j.find("files");
  ok = ok && files != j.end() && files->is_array();
  if (ok) {
    e.files.clear();
    for (const auto& f : *files) {
      QuarantinedFile qf;
      if (!f.is_object() || !get(f, "filename", qf.filename) || !get(f, "sha256", qf.sha256) ||
          !get(f, "reputation", qf.reputation) || !get(f, "pending", qf.pending)) {
        ok = false;
        break;
      }
      e.files.push_back(std::move(qf));
    }
  }
  const auto st = parse_quarantine_state(state);
  if (!ok || !st || normal_sha256_hex(e.message_sha256) != e.message_sha256) {
    why = "a field is missing or of the wrong type";
    return false;
  }
  e.state = *st;
  return true;
}

// ---- files ----

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now and reports close(2)'s own error (delayed write errors on some file systems).
  int close() {
    const int r = ::close(fd_);
    fd_ = -1;
    return r;
  }

 private:
  int fd_;
};

// Writes `data` to dir/name (created or truncated, 0640) and fsyncs it. "" or what failed.
std::string write_synced(int dirfd, const std::string& name, std::string_view data, const char* what) {
  step(what == std::string_view("eml") ? "eml.create" : "meta.create");
  Fd fd(openat(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (fd.get() < 0) return "cannot create " + name + ": " + errno_text(errno);
  const char* write_step = what == std::string_view("eml") ? "eml.write" : "meta.write";
  std::size_t off = 0;
  while (off < data.size()) {
    step(write_step);
    const std::size_t n = std::min(kWriteChunk, data.size() - off);
    const ssize_t w = ::write(fd.get(), data.data() + off, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return "cannot write " + name + ": " + errno_text(errno);
    }
    off += static_cast<std::size_t>(w);
  }
  step(what == std::string_view("eml") ? "eml.fsync" : "meta.fsync");
  if (fsync(fd.get()) != 0) return "cannot fsync " + name + ": " + errno_text(errno);
  if (fd.close() != 0) return "cannot close " + name + ": " + errno_text(errno);
  return "";
}

// Reads dir/name whole, at most `cap` bytes (more: `too_big`). "" or what failed.
std::string read_file(int dirfd, const std::string& name, std::size_t cap, std::string& out, bool& too_big) {
  too_big = false;
  Fd fd(openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return "cannot open " + name + ": " + errno_text(errno);
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return "cannot stat " + name + ": " + errno_text(errno);
  if (static_cast<uint64_t>(st.st_size) > cap) {
    too_big = true;
    return "";
  }
  out.resize(static_cast<std::size_t>(st.st_size));
  std::size_t off = 0;
  while (off < out.size()) {
    const ssize_t r = ::read(fd.get(), out.data() + off, out.size() - off);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return "cannot read " + name + ": " + errno_text(errno);
    if (r == 0) break;  // shrank since fstat
    off += static_cast<std::size_t>(r);
  }
  out.resize(off);
  return "";
}

// The length and SHA-256 of dir/name, read in pieces (message files can be large).
std::string hash_file(int dirfd, const std::string& name, uint64_t& size, std::string& sha) {
  Fd fd(openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return "cannot open " + name + ": " + errno_text(errno);
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return "cannot hash " + name;
  std::vector<char> buf(1 << 20);
  size = 0;
  for (;;) {
    const ssize_t r = ::read(fd.get(), buf.data(), buf.size());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return "cannot read " + name + ": " + errno_text(errno);
    if (r == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(r));
    size += static_cast<uint64_t>(r);
  }
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(ctx.get(), d, &n);
  sha = hex_string(d, n);
  return "";
}

bool exists_at(int dirfd, const std::string& name) {
  struct stat st;
  return fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

}  // namespace

const char* quarantine_state_name(QuarantineState s) noexcept {
  switch (s) {
    case QuarantineState::held: return "held";
    case QuarantineState::released: return "released";
    case QuarantineState::deleted: return "deleted";
  }
  return "?";
}

std::optional<QuarantineState> parse_quarantine_state(std::string_view name) noexcept {
  if (name == "held") return QuarantineState::held;
  if (name == "released") return QuarantineState::released;
  if (name == "deleted") return QuarantineState::deleted;
  return std::nullopt;
}

const char* quarantine_overflow_name(QuarantineOverflow o) noexcept {
  return o == QuarantineOverflow::refuse ? "refuse" : "evict_oldest";
}

const char* quarantine_error_name(QuarantineError e) noexcept {
  switch (e) {
    case QuarantineError::none: return "none";
    case QuarantineError::invalid: return "invalid";
    case QuarantineError::not_found: return "not_found";
    case QuarantineError::wrong_state: return "wrong_state";
    case QuarantineError::full: return "full";
    case QuarantineError::too_large: return "too_large";
    case QuarantineError::io: return "io";
    case QuarantineError::corrupt: return "corrupt";
  }
  return "?";
}

struct QuarantineStore::Impl {
  struct Item {
    QuarantineEntry entry;
    uint64_t meta_bytes = 0;
  };

  std::string dir;
  int dirfd = -1;
  QuarantineLimits limits;
  uint64_t max_bytes = 0;
  QuarantineStats stats;
  std::map<std::string, Item> items;  // by id: stored order

  ~Impl() {
    if (dirfd >= 0) ::close(dirfd);
  }

  std::string where(const std::string& id) const { return "quarantine " + dir + ": " + id; }

  uint64_t on_disk(const Item& it) const {
    return it.meta_bytes + (it.entry.state == QuarantineState::deleted ? 0 : it.entry.size);
  }
  uint64_t& count_of(QuarantineState s) {
    return s == QuarantineState::held ? stats.held : s == QuarantineState::released ? stats.released : stats.deleted;
  }
  void account(const Item& it, bool add) {
    if (add) {
      ++count_of(it.entry.state);
      stats.bytes += on_disk(it);
    } else {
      --count_of(it.entry.state);
      stats.bytes -= on_disk(it);
    }
  }

  std::string sync_dir(const char* what) {
    step(what);
    if (fsync(dirfd) != 0) return "cannot fsync the directory: " + errno_text(errno);
    return "";
  }

  // Replaces ID.meta with `e`'s metadata (durable on success). "" or what failed.
  std::string write_meta(const QuarantineEntry& e, uint64_t& meta_bytes) {
    const std::string meta = encode_meta(e);
    const std::string tmp = e.id + ".meta.tmp";
    std::string err = write_synced(dirfd, tmp, meta, "meta");
    if (err.empty()) {
      step("meta.rename");
      if (renameat(dirfd, tmp.c_str(), dirfd, (e.id + ".meta").c_str()) != 0)
        err = "cannot rename " + tmp + ": " + errno_text(errno);
    }
    if (err.empty()) err = sync_dir("dir.fsync");
    if (!err.empty()) {
      unlinkat(dirfd, tmp.c_str(), 0);
      return err;
    }
    meta_bytes = meta.size();
    return "";
  }

  // Removes an entry's files: ID.meta renamed to ID.drop commits the removal, then the message
  // file and ID.drop go. Not fsynced: a removal a crash undoes is redone, or finished by open().
  std::string drop(const std::string& id) {
    const std::string meta = id + ".meta", dropped = id + ".drop";
    step("drop.rename");
    if (renameat(dirfd, meta.c_str(), dirfd, dropped.c_str()) != 0 && errno != ENOENT)
      return "cannot rename " + meta + ": " + errno_text(errno);
    step("drop.unlink");
    unlinkat(dirfd, (id + ".eml").c_str(), 0);
    unlinkat(dirfd, dropped.c_str(), 0);
    const auto it = items.find(id);
    if (it != items.end()) {
      account(it->second, false);
      items.erase(it);
    }
    return "";
  }

  QuarantineResult fail(QuarantineError e, std::string message) {
    if (e == QuarantineError::io) ++stats.write_errors;
    return QuarantineResult{e, std::move(message)};
  }

  // The entry to evict next: the oldest deleted, else the oldest released, else the oldest held.
  const Item* victim() const {
    const Item* by_state[3] = {nullptr, nullptr, nullptr};
    for (const auto& [id, it] : items) {
      const auto s = static_cast<std::size_t>(it.entry.state);
      if (!by_state[s]) by_state[s] = &it;
      if (by_state[static_cast<std::size_t>(QuarantineState::deleted)]) break;
    }
    for (QuarantineState s : {QuarantineState::deleted, QuarantineState::released, QuarantineState::held})
      if (by_state[static_cast<std::size_t>(s)]) return by_state[static_cast<std::size_t>(s)];
    return nullptr;
  }

  QuarantineResult read(const std::string& id, std::string& bytes) {
    const auto it = items.find(id);
    if (it == items.end()) return fail(QuarantineError::not_found, "quarantine: no entry " + id);
    const QuarantineEntry& e = it->second.entry;
    if (e.state == QuarantineState::deleted)
      return fail(QuarantineError::wrong_state, where(id) + ": deleted, its message is gone");
    bool too_big = false;
    const std::string err = read_file(dirfd, id + ".eml", e.size, bytes, too_big);
    if (!err.empty()) return fail(QuarantineError::io, where(id) + ": " + err);
    if (too_big || bytes.size() != e.size || sha256_hex(bytes) != e.message_sha256) {
      ++stats.read_corrupt;
      bytes.clear();
      return fail(QuarantineError::corrupt,
                  where(id) + ": the message file no longer has its recorded length and SHA-256 (changed on disk)");
    }
    return {};
  }
};

QuarantineStore::QuarantineStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QuarantineStore::~QuarantineStore() = default;

const QuarantineStats& QuarantineStore::stats() const noexcept { return impl_->stats; }
const QuarantineLimits& QuarantineStore::limits() const noexcept { return impl_->limits; }
const std::string& QuarantineStore::dir() const noexcept { return impl_->dir; }
void QuarantineStore::set_step_hook_for_tests(void (*hook)(const char*)) noexcept { g_step_hook = hook; }

QuarantineOpen QuarantineStore::open(const std::string& dir, const QuarantineLimits& limits) {
  QuarantineOpen r;
  if (limits.retention_days < 1 || limits.retention_days > 3650 || limits.max_mb < 1 || limits.max_mb > (1u << 20) ||
      limits.max_messages < 1 || limits.max_messages > 10'000'000) {
    r.error = "quarantine " + dir + ": limits out of range (retention_days 1..3650, max_mb 1..1048576, max_messages 1..10000000)";
    return r;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    r.error = "quarantine " + dir + ": cannot create the directory: " + ec.message();
    return r;
  }
  chmod(dir.c_str(), 0750);
  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  impl->limits = limits;
  impl->max_bytes = limits.max_mb << 20;
  impl->dirfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (impl->dirfd < 0) {
    r.error = "quarantine " + dir + ": cannot open the directory: " + errno_text(errno);
    return r;
  }
  const int dfd = impl->dirfd;
  QuarantineStats& st = impl->stats;
  std::size_t unlisted = 0;
  auto note = [&](std::string line) {
    if (r.problems.size() < kMaxProblemLines)
      r.problems.push_back(std::move(line));
    else
      ++unlisted;
  };

  // Every name, grouped by entry.
  struct Names {
    bool meta = false, eml = false, meta_tmp = false, eml_tmp = false, drop = false;
  };
  std::map<std::string, Names> by_id;
  std::vector<std::string> unknown;
  {
    const int dup_fd = dup(dfd);
    DIR* d = dup_fd >= 0 ? fdopendir(dup_fd) : nullptr;
    if (!d) {
      if (dup_fd >= 0) ::close(dup_fd);
      r.error = "quarantine " + dir + ": cannot list the directory: " + errno_text(errno);
      return r;
    }
    while (const dirent* de = readdir(d)) {
      const std::string name = de->d_name;
      if (name == "." || name == ".." || name == kCorruptDir) continue;
      const std::size_t dot = name.find('.');
      const std::string id = name.substr(0, dot);
      const std::string suffix = dot == std::string::npos ? "" : name.substr(dot);
      bool* flag = nullptr;
      if (valid_id(id)) {
        Names& n = by_id[id];
        flag = suffix == ".meta" ? &n.meta : suffix == ".eml" ? &n.eml : suffix == ".meta.tmp" ? &n.meta_tmp
             : suffix == ".eml.tmp" ? &n.eml_tmp : suffix == ".drop" ? &n.drop : nullptr;
      }
      if (flag)
        *flag = true;
      else
        unknown.push_back(name);
    }
    closedir(d);
  }

  bool changed = false;
  auto remove_name = [&](const std::string& name) {
    unlinkat(dfd, name.c_str(), 0);
    changed = true;
  };
  auto move_aside = [&](const std::string& id, std::initializer_list<const char*> suffixes) -> std::string {
    if (mkdirat(dfd, kCorruptDir, 0750) != 0 && errno != EEXIST) return ": could not be moved aside: " + errno_text(errno);
    std::string failed;
    for (const char* sfx : suffixes) {
      const std::string name = id + sfx;
      if (!exists_at(dfd, name)) continue;
      if (renameat(dfd, name.c_str(), dfd, (std::string(kCorruptDir) + "/" + name).c_str()) == 0) {
        ++st.moved_aside;
        changed = true;
      } else {
        failed = errno_text(errno);
      }
    }
    return failed.empty() ? ": moved to " + std::string(kCorruptDir) + "/" : ": could not be moved aside: " + failed;
  };

  for (auto& [id, n] : by_id) {
    const std::string here = "quarantine " + dir + ": " + id;
    if (n.drop) {  // a committed removal: finish it
      for (const char* sfx : {".meta", ".eml", ".meta.tmp", ".eml.tmp", ".drop"})
        if (exists_at(dfd, id + sfx)) remove_name(id + sfx);
      ++st.finished;
      note(here + ": a removal interrupted by a crash was finished");
      continue;
    }
    if (n.meta_tmp) remove_name(id + ".meta.tmp");
    if (n.eml_tmp) remove_name(id + ".eml.tmp");
    if (!n.meta) {
      if (n.eml && !n.meta_tmp) {
        ++st.extra_message;
        note(here + ": message file without metadata" + move_aside(id, {".eml"}));
      } else {
        if (n.eml) remove_name(id + ".eml");
        ++st.interrupted;
        note(here + ": a write interrupted by a crash before it was committed: its files were removed");
      }
      continue;
    }
    std::string file, why;
    bool too_big = false;
    const std::string rerr = read_file(dfd, id + ".meta", kMaxMetaBytes + 200, file, too_big);
    QuarantineEntry e;
    if (!rerr.empty() || too_big || !decode_meta(file, e, why) || e.id != id) {
      if (!rerr.empty())
        why = rerr;
      else if (too_big)
        why = "larger than " + std::to_string(kMaxMetaBytes) + " bytes";
      else if (why.empty())
        why = "it names another entry (" + e.id + ")";
      ++st.bad_metadata;
      note(here + ": metadata torn or corrupt (" + why + ")" + move_aside(id, {".meta", ".eml"}));
      continue;
    }
    if (n.meta_tmp) {
      ++st.interrupted;
      note(here + ": an update interrupted by a crash was discarded; the entry keeps its state (" +
           quarantine_state_name(e.state) + ")");
    }
    if (e.state == QuarantineState::deleted) {
      if (n.eml) {
        remove_name(id + ".eml");
        ++st.finished;
        note(here + ": a deletion interrupted by a crash was finished");
      }
    } else if (!n.eml) {
      if (n.eml_tmp) {  // the metadata's rename reached the disk, the message's did not
        remove_name(id + ".meta");
        ++st.interrupted;
        note(here + ": a write interrupted by a crash before it was committed: its files were removed");
      } else {
        ++st.missing_message;
        note(here + ": the message file is missing" + move_aside(id, {".meta"}));
      }
      continue;
    } else {
      uint64_t size = 0;
      std::string sha;
      const std::string herr = hash_file(dfd, id + ".eml", size, sha);
      if (!herr.empty() || size != e.size || sha != e.message_sha256) {
        ++st.bad_message;
        const std::string what = !herr.empty() ? herr
                                 : size != e.size ? "message file is " + std::to_string(size) + " bytes, the metadata says " + std::to_string(e.size)
                                                  : "message file's SHA-256 is not the recorded one";
        note(here + ": " + what + " (torn or corrupt)" + move_aside(id, {".meta", ".eml"}));
        continue;
      }
    }
    Impl::Item item{std::move(e), file.size()};
    impl->account(item, true);
    impl->items.emplace(id, std::move(item));
    ++st.loaded;
  }
  if (!unknown.empty()) {
    st.unknown_files = unknown.size();
    note("quarantine " + dir + ": " + std::to_string(unknown.size()) + " file(s) the store does not write, left alone (first: " +
         unknown.front() + ")");
  }
  if (changed) fsync(dfd);
  if (unlisted) r.problems.push_back("quarantine " + dir + ": " + std::to_string(unlisted) + " more problem(s), counted in the stats");
  r.store.reset(new QuarantineStore(std::move(impl)));
  return r;
}

QuarantinePut QuarantineStore::put(const QuarantineEntry& entry, std::string_view message, int64_t now_ms) {
  Impl& m = *impl_;
  QuarantinePut r;
  auto refuse = [&](QuarantineError e, std::string msg) {
    if (e == QuarantineError::invalid) ++m.stats.refused_invalid;
    if (e == QuarantineError::full) ++m.stats.refused_full;
    if (e == QuarantineError::too_large) ++m.stats.refused_too_large;
    static_cast<QuarantineResult&>(r) = m.fail(e, "quarantine " + m.dir + ": " + std::move(msg));
    return r;
  };
  QuarantineEntry e = entry;
  e.message_sha256 = normal_sha256_hex(entry.message_sha256);
  if (e.message_sha256.empty()) return refuse(QuarantineError::invalid, "message_sha256 is not 64 hex digits");
  for (auto& f : e.files) {
    f.sha256 = normal_sha256_hex(f.sha256);
    if (f.sha256.empty()) return refuse(QuarantineError::invalid, "a file's sha256 is not 64 hex digits");
  }
  const std::string actual = sha256_hex(message);
  if (actual != e.message_sha256)
    return refuse(QuarantineError::invalid, "the message's SHA-256 is " + actual + ", the entry says " + e.message_sha256);
  e.stored_ms = now_ms;
  e.size = message.size();
  e.state = QuarantineState::held;
  e.action.clear();
  e.by.clear();
  e.why.clear();
  e.changed_ms = 0;
  do e.id = make_id(now_ms);
  while (m.items.count(e.id));
  const std::string meta = encode_meta(e);
  if (meta.size() > kMaxMetaBytes)
    return refuse(QuarantineError::too_large, "metadata of " + std::to_string(meta.size()) + " bytes (at most " +
                                                  std::to_string(kMaxMetaBytes) + ")");
  const uint64_t need = message.size() + meta.size();
  if (need > m.max_bytes)
    return refuse(QuarantineError::too_large, "a message of " + std::to_string(message.size()) + " bytes does not fit in max_mb " +
                                                  std::to_string(m.limits.max_mb));
  while (m.items.size() + 1 > m.limits.max_messages || m.stats.bytes + need > m.max_bytes) {
    if (m.limits.overflow == QuarantineOverflow::refuse)
      return refuse(QuarantineError::full, std::string("full (") + std::to_string(m.items.size()) + " entries, " +
                                               std::to_string(m.stats.bytes) + " bytes; max_messages " +
                                               std::to_string(m.limits.max_messages) + ", max_mb " +
                                               std::to_string(m.limits.max_mb) + ", overflow refuse)");
    const Impl::Item* v = m.victim();
    if (!v) break;  // cannot happen: need fits in an empty store
    QuarantineEntry gone = v->entry;
    const std::string err = m.drop(gone.id);
    if (!err.empty()) {
      static_cast<QuarantineResult&>(r) = m.fail(QuarantineError::io, m.where(gone.id) + ": evicting: " + err);
      return r;
    }
    ++m.stats.evicted;
    if (gone.state == QuarantineState::held) ++m.stats.evicted_held;
    r.evicted.push_back(std::move(gone));
  }

  // The message, then the metadata (the commit record), each written under a temporary name and
  // fsynced; both renamed; the directory fsynced.
  const std::string eml = e.id + ".eml", eml_tmp = eml + ".tmp", meta_name = e.id + ".meta", meta_tmp = meta_name + ".tmp";
  std::string err = write_synced(m.dirfd, eml_tmp, message, "eml");
  if (err.empty()) err = write_synced(m.dirfd, meta_tmp, meta, "meta");
  if (err.empty()) {
    step("eml.rename");
    if (renameat(m.dirfd, eml_tmp.c_str(), m.dirfd, eml.c_str()) != 0) err = "cannot rename " + eml_tmp + ": " + errno_text(errno);
  }
  if (err.empty()) {
    step("meta.rename");
    if (renameat(m.dirfd, meta_tmp.c_str(), m.dirfd, meta_name.c_str()) != 0)
      err = "cannot rename " + meta_tmp + ": " + errno_text(errno);
  }
  if (err.empty()) err = m.sync_dir("dir.fsync");
  if (!err.empty()) {
    for (const std::string& n : {meta_name, meta_tmp, eml, eml_tmp}) unlinkat(m.dirfd, n.c_str(), 0);
    static_cast<QuarantineResult&>(r) = m.fail(QuarantineError::io, m.where(e.id) + ": " + err);
    return r;
  }
  r.id = e.id;
  Impl::Item item{std::move(e), meta.size()};
  m.account(item, true);
  m.items.emplace(r.id, std::move(item));
  ++m.stats.stored;
  return r;
}

QuarantinePage QuarantineStore::list(const QuarantineQuery& q) const {
  const Impl& m = *impl_;
  QuarantinePage page;
  const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, 10000);
  const std::string file_sha = normal_sha256_hex(q.file_sha256);
  bool more = false;
  auto visit = [&](const Impl::Item& it) {
    const QuarantineEntry& e = it.entry;
    if (q.state && e.state != *q.state) return;
    if (e.stored_ms < q.since_ms) return;
    if (!q.sender.empty() && !contains_icase(e.mail_from, q.sender)) return;
    if (!q.file_sha256.empty() &&
        std::none_of(e.files.begin(), e.files.end(), [&](const QuarantinedFile& f) { return f.sha256 == file_sha; }))
      return;
    ++page.matching;
    if (!q.after.empty() && (q.newest_first ? e.id >= q.after : e.id <= q.after)) return;
    if (page.entries.size() < limit)
      page.entries.push_back(e);
    else
      more = true;
  };
  if (q.newest_first)
    for (auto it = m.items.rbegin(); it != m.items.rend(); ++it) visit(it->second);
  else
    for (const auto& [id, it] : m.items) visit(it);
  if (more) page.next = page.entries.back().id;
  return page;
}

std::optional<QuarantineEntry> QuarantineStore::show(const std::string& id) const {
  const auto it = impl_->items.find(id);
  if (it == impl_->items.end()) return std::nullopt;
  return it->second.entry;
}

QuarantineResult QuarantineStore::read(const std::string& id, std::string& bytes) { return impl_->read(id, bytes); }

QuarantineResult QuarantineStore::release(const std::string& id, const std::string& action, const std::string& by,
                                          const std::string& why, int64_t now_ms) {
  Impl& m = *impl_;
  const auto it = m.items.find(id);
  if (it == m.items.end()) return m.fail(QuarantineError::not_found, "quarantine: no entry " + id);
  if (action.empty()) return m.fail(QuarantineError::invalid, m.where(id) + ": a release needs an action");
  if (it->second.entry.state != QuarantineState::held)
    return m.fail(QuarantineError::wrong_state,
                  m.where(id) + ": " + quarantine_state_name(it->second.entry.state) + ", only a held entry is released");
  QuarantineEntry e = it->second.entry;
  e.state = QuarantineState::released;
  e.action = action;
  e.by = by;
  e.why = why;
  e.changed_ms = now_ms;
  uint64_t meta_bytes = 0;
  const std::string err = m.write_meta(e, meta_bytes);
  if (!err.empty()) return m.fail(QuarantineError::io, m.where(id) + ": " + err);
  m.account(it->second, false);
  it->second = Impl::Item{std::move(e), meta_bytes};
  m.account(it->second, true);
  ++m.stats.releases;
  return {};
}

QuarantineResult QuarantineStore::delete_entry(const std::string& id, const std::string& by, const std::string& why,
                                               int64_t now_ms) {
  Impl& m = *impl_;
  const auto it = m.items.find(id);
  if (it == m.items.end()) return m.fail(QuarantineError::not_found, "quarantine: no entry " + id);
  if (it->second.entry.state == QuarantineState::deleted)
    return m.fail(QuarantineError::wrong_state, m.where(id) + ": already deleted");
  QuarantineEntry e = it->second.entry;
  e.state = QuarantineState::deleted;
  e.action = "delete";
  e.by = by;
  e.why = why;
  e.changed_ms = now_ms;
  uint64_t meta_bytes = 0;
  const std::string err = m.write_meta(e, meta_bytes);
  if (!err.empty()) return m.fail(QuarantineError::io, m.where(id) + ": " + err);
  // Committed: the message file goes now, or at the next open() if this fails.
  step("eml.unlink");
  if (unlinkat(m.dirfd, (id + ".eml").c_str(), 0) != 0 && errno != ENOENT) ++m.stats.write_errors;
  m.account(it->second, false);
  it->second = Impl::Item{std::move(e), meta_bytes};
  m.account(it->second, true);
  ++m.stats.deletes;
  return {};
}

QuarantineResult QuarantineStore::export_eml(const std::string& id, const std::string& path) {
  Impl& m = *impl_;
  std::string bytes;
  QuarantineResult r = m.read(id, bytes);
  if (!r.ok()) return r;
  const std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640));
  if (fd.get() < 0) return m.fail(QuarantineError::io, "quarantine export " + id + ": cannot create " + tmp + ": " + errno_text(errno));
  std::size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t w = ::write(fd.get(), bytes.data() + off, bytes.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      const int e = errno;
      unlink(tmp.c_str());
      return m.fail(QuarantineError::io, "quarantine export " + id + ": cannot write " + tmp + ": " + errno_text(e));
    }
    off += static_cast<std::size_t>(w);
  }
  if (fsync(fd.get()) != 0 || fd.close() != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    unlink(tmp.c_str());
    return m.fail(QuarantineError::io, "quarantine export " + id + ": cannot write " + path + ": " + errno_text(e));
  }
  const std::string parent = std::filesystem::path(path).parent_path().string();
  Fd pfd(::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (pfd.get() >= 0) fsync(pfd.get());
  ++m.stats.exports;
  return {};
}

std::vector<QuarantineEntry> QuarantineStore::expire(int64_t now_ms) {
  Impl& m = *impl_;
  const int64_t keep_ms = int64_t{m.limits.retention_days} * kDayMs;
  std::vector<std::string> due;
  for (const auto& [id, it] : m.items)
    if (it.entry.stored_ms + keep_ms <= now_ms) due.push_back(id);
  std::vector<QuarantineEntry> out;
  for (const std::string& id : due) {
    QuarantineEntry e = m.items.at(id).entry;
    if (!m.drop(id).empty()) {  // stays; tried again at the next expire()
      ++m.stats.write_errors;
      continue;
    }
    ++m.stats.expired;
    if (e.state == QuarantineState::held) ++m.stats.expired_held;
    out.push_back(std::move(e));
  }
  std::sort(out.begin(), out.end(), [](const QuarantineEntry& a, const QuarantineEntry& b) {
    return a.stored_ms != b.stored_ms ? a.stored_ms < b.stored_ms : a.id < b.id;
  });
  return out;
}

}  // namespace sluice::control
