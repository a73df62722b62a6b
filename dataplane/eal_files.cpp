#include "dataplane/eal_files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <string_view>

namespace sluice::dataplane {
namespace fs = std::filesystem;
namespace {

// The pid in "<stem><digits>", or -1.
pid_t pid_named(std::string_view name, std::string_view stem) {
  if (name.size() <= stem.size() || name.substr(0, stem.size()) != stem || name.size() - stem.size() > 9) return -1;
  long v = 0;
  for (char c : name.substr(stem.size())) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v > 0 ? static_cast<pid_t>(v) : -1;
}

bool pid_alive(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

// Whether another process holds a record lock on `path` (the EAL's primary holds one on its config
// as long as it runs, a secondary a read lock). Locks of this process are not reported by F_GETLK.
bool locked_by_other(const fs::path& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock probe = {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  const bool locked = fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
  close(fd);
  return locked;
}

// Whether some process holds a flock on a hugepage file (the EAL does on every page it maps).
bool hugepage_in_use(const fs::path& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;  // cannot tell: leave it
  const bool busy = flock(fd, LOCK_EX | LOCK_NB) != 0;
  close(fd);
  return busy;
}

uint64_t disk_bytes(const fs::path& p) {
  struct stat st;
  return lstat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_blocks) * 512 : 0;
}

void remove_dir(const fs::path& dir, RemovedFiles& r) {
  std::error_code ec;
  uint64_t bytes = 0;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) bytes += disk_bytes(it->path());
  if (fs::remove_all(dir, ec) != static_cast<std::uintmax_t>(-1) && !ec) {
    ++r.instances;
    r.bytes += bytes;
  }
}

void remove_file(const fs::path& file, RemovedFiles& r) {
  const uint64_t bytes = disk_bytes(file);
  if (unlink(file.c_str()) == 0) {
    ++r.hugepage_files;
    r.bytes += bytes;
  }
}

// "<prefix>map_<digits>": the EAL's hugepage file name (HUGEFILE_FMT "%s/%smap_%d"); the prefix
// must match whole, so that sluice-12 never takes sluice-123map_0.
bool hugepage_file_of(std::string_view name, std::string_view prefix) {
  if (name.size() <= prefix.size() + 4 || name.substr(0, prefix.size()) != prefix || name.substr(prefix.size(), 4) != "map_")
    return false;
  for (char c : name.substr(prefix.size() + 4))
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

std::string dpdk_run_dir(uid_t uid, const char* runtime_directory, const char* xdg_runtime_dir) {
  std::string base = runtime_directory ? runtime_directory : uid == 0 ? "/var/run" : xdg_runtime_dir ? xdg_runtime_dir : "/tmp";
  return base + "/dpdk";
}

RemovedFiles remove_dead_instances(const std::string& run_dir, const std::vector<std::string>& hugetlbfs_mounts, pid_t self) {
  RemovedFiles r;
  // A file prefix "sluice-<pid>" whose process is gone.
  auto dead = [self](std::string_view prefix) {
    const pid_t pid = pid_named(prefix, kDefaultPrefixStem);
    return pid > 0 && pid != self && !pid_alive(pid);
  };
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir, ec)) {
    const std::string name = e.path().filename();
    if (dead(name) && e.is_directory(ec) && !locked_by_other(e.path() / "config")) remove_dir(e.path(), r);
  }
  for (const auto& mount : hugetlbfs_mounts)
    for (const auto& e : fs::directory_iterator(mount, ec)) {
      const std::string name = e.path().filename();
      const std::string prefix = name.substr(0, name.rfind("map_"));
      if (hugepage_file_of(name, prefix) && dead(prefix) && !hugepage_in_use(e.path())) remove_file(e.path(), r);
    }
  return r;
}

RemovedFiles remove_instance_files(const std::string& runtime_dir, const std::vector<std::string>& hugetlbfs_mounts) {
  RemovedFiles r;
  fs::path dir = fs::path(runtime_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();  // "/var/run/dpdk/lab/"
  const std::string prefix = dir.filename();
  if (runtime_dir.empty() || prefix.empty() || prefix == "." || prefix == ".." || dir.parent_path().filename() != "dpdk")
    return r;
  if (locked_by_other(dir / "config")) return r;
  std::error_code ec;
  if (fs::is_directory(dir, ec)) remove_dir(dir, r);
  for (const auto& mount : hugetlbfs_mounts)
    for (const auto& e : fs::directory_iterator(mount, ec))
      if (hugepage_file_of(e.path().filename().native(), prefix)) remove_file(e.path(), r);
  return r;
}

}  // namespace sluice::dataplane
