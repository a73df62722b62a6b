// The files a DPDK instance leaves outside the process. Each EAL instance has a runtime directory,
// DPDK's run directory plus its file prefix (`/var/run/dpdk/sluice-<pid>`: config, fbarray files,
// sockets; 6.3 MB without hugepages), and, on hugepages, one file per page in a hugetlbfs mount
// (`<prefix>map_<n>`). The EAL removes neither at exit, and nothing removes those of a killed
// instance: hundreds of runs fill /run (a RAM-backed tmpfs on Debian) and exhaust the hugepages.
//
// sluiced removes its own at exit, after rte_eal_cleanup(), and those of dead instances named
// `sluice-<pid>` at start. A live instance is never touched: its pid is alive, and whatever its pid
// namespace, the EAL holds a record lock on its `config` for as long as it runs and a flock on each
// hugepage file in use (DPDK's own rte_eal_primary_proc_alive() and hugepage clean-up test the
// same locks). Nothing here calls DPDK: paths, pids and locks only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::dataplane {

// DPDK's run directory, as the EAL chooses it: $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=),
// else /var/run for root, else $XDG_RUNTIME_DIR or /tmp; then "/dpdk". nullptr: not set.
std::string dpdk_run_dir(uid_t uid, const char* runtime_directory, const char* xdg_runtime_dir);

// The file prefix sluiced names an instance by when eal.file_prefix is empty.
inline constexpr const char* kDefaultPrefixStem = "sluice-";

struct RemovedFiles {
  unsigned instances = 0;       // runtime directories removed
  unsigned hugepage_files = 0;
  uint64_t bytes = 0;           // disk (or RAM) they held
};

// Start-up: the runtime directories `<run_dir>/sluice-<pid>` and the hugepage files
// `<mount>/sluice-<pid>map_<n>` of instances that are gone: the pid is not a live process (nor
// `self`), and no process holds a lock on the directory's `config` or on the hugepage file.
RemovedFiles remove_dead_instances(const std::string& run_dir, const std::vector<std::string>& hugetlbfs_mounts,
                                   pid_t self);

// Exit (after rte_eal_cleanup()), or a failed rte_eal_init: one instance's runtime directory (its
// last component is the file prefix, its parent a `dpdk` directory; anything else is left alone)
// and its hugepage files `<prefix>map_<n>`. Nothing is removed while another process holds the lock
// on its `config` (a failed start that found another instance with the same prefix).
RemovedFiles remove_instance_files(const std::string& runtime_dir, const std::vector<std::string>& hugetlbfs_mounts);

}  // namespace sluice::dataplane
