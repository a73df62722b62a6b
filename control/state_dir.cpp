#include "control/state_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace sluice::control {
namespace {

std::string failure(const std::string& what, const std::string& path, int err) {
  return "state.dir: cannot " + what + " '" + path + "': " + std::strerror(err);
}

// mkdir -p: every missing component is created with mode 0750 (less the umask); existing ones are
// left as they are. Returns errno, 0 on success.
int make_directories(const std::string& path) {
  for (std::size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
    const std::string prefix = path.substr(0, end);
    if (mkdir(prefix.c_str(), 0750) != 0 && errno != EEXIST) return errno;
    if (end == std::string::npos) break;
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return errno;
  return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

// The pid the holder wrote, or "unknown" (it may not have written it yet).
std::string holder_pid(int fd) {
  char buf[32] = {};
  const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return "unknown";
  char* end = nullptr;
  const long pid = std::strtol(buf, &end, 10);
  return pid > 0 && (*end == '\n' || *end == '\0') ? std::to_string(pid) : "unknown";
}

}  // namespace

StateDirResult StateDir::open(const std::string& path) {
  if (path.empty()) return {std::nullopt, "state.dir: empty path"};
  if (int err = make_directories(path)) return {std::nullopt, failure("create", path, err)};

  const std::string lock_path = path + "/lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return {std::nullopt, failure("open", lock_path, errno)};
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string error = err == EWOULDBLOCK
                            ? "state.dir: '" + path + "' is in use by another sluiced (pid " + holder_pid(fd) + ")"
                            : failure("lock", lock_path, err);
    close(fd);
    return {std::nullopt, std::move(error)};
  }
  const std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int err = errno;
    close(fd);
    return {std::nullopt, failure("write", lock_path, err)};
  }
  return {StateDir(path, fd), {}};
}

StateDir::StateDir(StateDir&& other) noexcept
    : path_(std::move(other.path_)), lock_fd_(std::exchange(other.lock_fd_, -1)) {}

StateDir& StateDir::operator=(StateDir&& other) noexcept {
  if (this != &other) {
    if (lock_fd_ >= 0) close(lock_fd_);
    path_ = std::move(other.path_);
    lock_fd_ = std::exchange(other.lock_fd_, -1);
  }
  return *this;
}

StateDir::~StateDir() {
  if (lock_fd_ >= 0) close(lock_fd_);  // closing the only descriptor of the open file drops the flock
}

std::string write_file_atomically(const std::string& path, const std::string& text, unsigned mode) {
  const std::string tmp = path + ".tmp";
  auto failed = [&](const char* what) {
    const std::string e = path + ": cannot " + what + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return e;
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(mode));
  if (fd < 0) return failed("create the temporary file");
  std::size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return failed("write");
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return failed("fsync");
  }
  if (::close(fd) != 0) return failed("close");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return failed("rename");
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  if (const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
    ::fsync(d);
    ::close(d);
  }
  return "";
}

}  // namespace sluice::control
