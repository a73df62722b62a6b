// The state directory (`state.dir`): where sluiced keeps what outlives a run. It holds the stores
// the coming issues add: the verdict cache, the quarantine, submissions and sightings. One sluiced
// at a time per directory: PATH/lock is held with flock(2) for as long as the StateDir lives.
// Since flock belongs to the open file, the kernel releases it when the process dies however it
// dies, so a killed sluiced never leaves the directory locked; the pid written in the file only
// names the holder in the error and proves nothing by itself.
#pragma once

#include <optional>
#include <string>

namespace sluice::control {

struct StateDirResult;

class StateDir {
 public:
  // Creates `path` if missing (mode 0750, parents too), opens PATH/lock, takes it without waiting
  // and writes the pid into it. Errors are one line: "state.dir: '/x' is in use by another sluiced
  // (pid 1234)", or what failed with the path and strerror.
  static StateDirResult open(const std::string& path);

  StateDir(StateDir&& other) noexcept;
  StateDir& operator=(StateDir&& other) noexcept;
  StateDir(const StateDir&) = delete;
  StateDir& operator=(const StateDir&) = delete;
  ~StateDir();  // releases the lock; the file stays, with the last holder's pid

  const std::string& path() const { return path_; }

 private:
  StateDir(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}

  std::string path_;
  int lock_fd_ = -1;  // holds the flock; close-on-exec
};

// Replaces `path` with `text` durably: PATH.tmp written (mode `mode`), fsynced, renamed over
// PATH, the directory fsynced. "" or one line naming the path and what failed.
std::string write_file_atomically(const std::string& path, const std::string& text, unsigned mode = 0600);

struct StateDirResult {
  std::optional<StateDir> dir;
  std::string error;  // one line, set when dir is empty
};

}  // namespace sluice::control
