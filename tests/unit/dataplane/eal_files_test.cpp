#include "dataplane/eal_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace sluice::dataplane;
namespace fs = std::filesystem;

namespace {

// A pid that was a process a moment ago and is no more.
pid_t dead_pid() {
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  return pid;
}

// A child that holds a lock on `path` until killed: an fcntl record lock (the EAL's lock on its
// config) or a shared flock (the EAL's lock on a hugepage file it maps).
class LockHolder {
 public:
  LockHolder(const fs::path& path, bool record_lock) {
    int ready[2];
    EXPECT_EQ(pipe(ready), 0);
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(path.c_str(), O_RDWR);
      struct flock l = {};
      l.l_type = F_WRLCK;
      l.l_whence = SEEK_SET;
      l.l_start = 8, l.l_len = 16;  // part of the file, as the EAL locks part of its config
      const bool ok = fd >= 0 && (record_lock ? fcntl(fd, F_SETLK, &l) == 0 : flock(fd, LOCK_SH) == 0);
      (void)!write(ready[1], ok ? "y" : "n", 1);
      pause();
      _exit(0);
    }
    char c = 0;
    EXPECT_EQ(read(ready[0], &c, 1), 1);
    EXPECT_EQ(c, 'y');
    close(ready[0]);
    close(ready[1]);
  }
  ~LockHolder() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_;
};

void touch(const fs::path& p, std::size_t bytes = 64) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << std::string(bytes, 'x');
}

// An instance's runtime directory as the EAL leaves it.
fs::path instance(const fs::path& run_dir, const std::string& prefix) {
  touch(run_dir / prefix / "config", 4096);
  touch(run_dir / prefix / "fbarray_memzone", 8192);
  return run_dir / prefix;
}

class EalFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) / ("eal-files-" + std::to_string(getpid()));
    fs::remove_all(root_);
    run_ = root_ / "run" / "dpdk";
    huge_ = root_ / "hugepages";
    fs::create_directories(run_);
    fs::create_directories(huge_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_, run_, huge_;
};

}  // namespace

TEST(EalFilesRunDir, AsTheEalChoosesIt) {
  EXPECT_EQ(dpdk_run_dir(0, nullptr, "/run/user/0"), "/var/run/dpdk");
  EXPECT_EQ(dpdk_run_dir(1000, nullptr, "/run/user/1000"), "/run/user/1000/dpdk");
  EXPECT_EQ(dpdk_run_dir(1000, nullptr, nullptr), "/tmp/dpdk");
  EXPECT_EQ(dpdk_run_dir(0, "/run/sluice", nullptr), "/run/sluice/dpdk");  // systemd RuntimeDirectory=
}

// Dead instances go; a live one stays whichever way it is alive: its pid, or (another pid
// namespace) the EAL's lock on its config or on a hugepage file; other names are never touched.
TEST_F(EalFiles, RemovesDeadInstancesOnly) {
  const pid_t dead = dead_pid(), dead2 = dead_pid(), dead3 = dead_pid();
  const std::string d = "sluice-" + std::to_string(dead), d2 = "sluice-" + std::to_string(dead2),
                    d3 = "sluice-" + std::to_string(dead3);
  instance(run_, d);
  const fs::path locked = instance(run_, d2);  // dead pid here, but its config is locked
  instance(run_, "sluice-" + std::to_string(getpid()));
  instance(run_, "lab");  // a named instance: DPDK reuses its directory, sluiced removes it at its own exit
  instance(run_, "sluice-12abc");
  instance(run_, "bench-" + std::to_string(dead));
  touch(huge_ / (d + "map_0"), 4096);
  touch(huge_ / (d + "map_17"));
  touch(huge_ / (d3 + "map_0"));  // in use by a process of another namespace
  touch(huge_ / (d + "map_x"));
  touch(huge_ / ("sluice-" + std::to_string(getpid()) + "map_0"));
  touch(huge_ / "labmap_0");

  LockHolder config_lock(locked / "config", true);
  LockHolder page_lock(huge_ / (d3 + "map_0"), false);
  instance(run_, "sluice-" + std::to_string(config_lock.pid()));  // alive
  touch(huge_ / ("sluice-" + std::to_string(config_lock.pid()) + "map_3"));

  const RemovedFiles r = remove_dead_instances(run_.string(), {huge_.string(), (root_ / "absent").string()}, getpid());
  EXPECT_EQ(r.instances, 1u);
  EXPECT_EQ(r.hugepage_files, 2u);
  EXPECT_GT(r.bytes, 8192u);
  EXPECT_FALSE(fs::exists(run_ / d));
  EXPECT_FALSE(fs::exists(huge_ / (d + "map_0")));
  EXPECT_FALSE(fs::exists(huge_ / (d + "map_17")));
  for (const auto& kept : {run_ / d2, run_ / ("sluice-" + std::to_string(getpid())), run_ / "lab", run_ / "sluice-12abc",
                           run_ / ("bench-" + std::to_string(dead)), run_ / ("sluice-" + std::to_string(config_lock.pid())),
                           huge_ / (d3 + "map_0"), huge_ / (d + "map_x"), huge_ / ("sluice-" + std::to_string(getpid()) + "map_0"),
                           huge_ / "labmap_0", huge_ / ("sluice-" + std::to_string(config_lock.pid()) + "map_3")})
    EXPECT_TRUE(fs::exists(kept)) << kept;
  // A run directory that does not exist (no instance ever ran) is nothing to do.
  EXPECT_EQ(remove_dead_instances((root_ / "none" / "dpdk").string(), {}, getpid()).instances, 0u);
}

TEST_F(EalFiles, RemovesOneInstancesOwnFiles) {
  const fs::path dir = instance(run_, "lab");
  touch(dir / "mp_socket");
  touch(huge_ / "labmap_0", 4096);
  touch(huge_ / "labmap_12");
  touch(huge_ / "lab2map_0");  // another instance whose prefix starts with ours
  touch(huge_ / "labmap_");
  const RemovedFiles r = remove_instance_files((run_ / "lab").string() + "/", {huge_.string()});
  EXPECT_EQ(r.instances, 1u);
  EXPECT_EQ(r.hugepage_files, 2u);
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(fs::exists(huge_ / "labmap_0"));
  EXPECT_TRUE(fs::exists(huge_ / "lab2map_0"));
  EXPECT_TRUE(fs::exists(huge_ / "labmap_"));
}

TEST_F(EalFiles, LeavesAnythingElseAlone) {
  // Not a DPDK runtime directory (its parent is not `dpdk`), and no path at all.
  touch(root_ / "elsewhere" / "lab" / "config");
  EXPECT_EQ(remove_instance_files((root_ / "elsewhere" / "lab").string(), {}).instances, 0u);
  EXPECT_TRUE(fs::exists(root_ / "elsewhere" / "lab" / "config"));
  EXPECT_EQ(remove_instance_files("", {huge_.string()}).instances, 0u);
  EXPECT_EQ(remove_instance_files((run_ / "..").string(), {}).instances, 0u);
  EXPECT_TRUE(fs::exists(run_));
  // A failed start that met another live instance with the same prefix: its lock protects it.
  const fs::path dir = instance(run_, "shared");
  touch(huge_ / "sharedmap_0");
  LockHolder other(dir / "config", true);
  EXPECT_EQ(remove_instance_files(dir.string(), {huge_.string()}).instances, 0u);
  EXPECT_TRUE(fs::exists(dir / "config"));
  EXPECT_TRUE(fs::exists(huge_ / "sharedmap_0"));
}
