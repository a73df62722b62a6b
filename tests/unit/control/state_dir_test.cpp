#include "control/state_dir.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using sluice::control::StateDir;

namespace {

// A fresh directory under /tmp, removed with everything in it.
class StateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-state-dir-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::string root_;
};

std::string lock_contents(const std::string& dir) {
  std::ifstream f(dir + "/lock");
  std::string s;
  std::getline(f, s);
  return s;
}

}  // namespace

TEST_F(StateDirTest, CreatesAMissingDirectoryAndItsParents) {
  const std::string path = root_ + "/var/lib/sluice";
  auto r = StateDir::open(path);
  ASSERT_TRUE(r.dir) << r.error;
  EXPECT_EQ(r.dir->path(), path);
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0027, 0u);  // 0750 at most (the umask may take more)
  EXPECT_EQ(lock_contents(path), std::to_string(getpid()));
}

TEST_F(StateDirTest, SecondOpenFailsNamingTheHolder) {
  auto first = StateDir::open(root_);
  ASSERT_TRUE(first.dir) << first.error;
  // flock belongs to the open file, so a second open in the same process conflicts too.
  auto second = StateDir::open(root_);
  EXPECT_FALSE(second.dir);
  EXPECT_EQ(second.error, "state.dir: '" + root_ + "' is in use by another sluiced (pid " + std::to_string(getpid()) + ")");
}

TEST_F(StateDirTest, OpensAgainOnceReleased) {
  {
    auto first = StateDir::open(root_);
    ASSERT_TRUE(first.dir) << first.error;
    StateDir moved = std::move(*first.dir);  // the lock moves with it
    first.dir.reset();
    EXPECT_FALSE(StateDir::open(root_).dir);
  }
  auto again = StateDir::open(root_);
  EXPECT_TRUE(again.dir) << again.error;
}

TEST_F(StateDirTest, AKilledHolderLeavesItOpenable) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    auto r = StateDir::open(root_);
    const char ok = r.dir ? 'y' : 'n';
    if (write(ready[1], &ok, 1) != 1) _exit(1);
    for (;;) pause();
  }
  close(ready[1]);
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  ASSERT_EQ(ok, 'y');

  auto while_held = StateDir::open(root_);
  EXPECT_FALSE(while_held.dir);
  EXPECT_NE(while_held.error.find("(pid " + std::to_string(child) + ")"), std::string::npos) << while_held.error;

  ASSERT_EQ(kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));

  auto after = StateDir::open(root_);
  ASSERT_TRUE(after.dir) << after.error;
  EXPECT_EQ(lock_contents(root_), std::to_string(getpid()));
}

TEST_F(StateDirTest, APathUnderARegularFileFails) {
  const std::string file = root_ + "/file";
  std::ofstream(file) << "x";
  auto r = StateDir::open(file + "/state");
  EXPECT_FALSE(r.dir);
  EXPECT_EQ(r.error, "state.dir: cannot create '" + file + "/state': Not a directory");

  auto on_file = StateDir::open(file);
  EXPECT_FALSE(on_file.dir);
  EXPECT_EQ(on_file.error, "state.dir: cannot create '" + file + "': Not a directory");
}
