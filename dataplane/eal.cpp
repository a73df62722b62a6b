#include "dataplane/eal.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_pdump.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dataplane/eal_files.h"
#include "dataplane/hugepages.h"
#include "dataplane/tsc_calibration.h"

namespace sluice::dataplane {

namespace {

std::string read_text(const char* path) {
  std::ifstream f(path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Free pages per size (kB), every size the kernel offers.
std::map<uint64_t, uint64_t> sysfs_free_hugepages() {
  std::map<uint64_t, uint64_t> free;
  std::error_code ec;
  for (const auto& dir : std::filesystem::directory_iterator("/sys/kernel/mm/hugepages", ec)) {
    const std::string name = dir.path().filename();  // hugepages-2048kB
    std::ifstream f(dir.path() / "free_hugepages");
    uint64_t n = 0;
    if (name.rfind("hugepages-", 0) == 0 && f >> n) free[std::strtoull(name.c_str() + 10, nullptr, 10)] = n;
  }
  return free;
}

std::string megabytes(uint64_t bytes) { return std::to_string((bytes + (1 << 19)) >> 20) + " MB"; }

// This instance's runtime directory, for eal_cleanup() (the EAL's own is gone after its clean-up).
std::string g_runtime_dir;
bool g_pdump = false;  // rte_pdump_init() succeeded

}  // namespace

bool eal_init(const Config& config, const std::vector<std::string>& passthrough, std::string& error,
              std::vector<std::string>& notes) {
  // First the files of dead instances: their hugepage files hold pages that count as used.
  const std::string mounts = read_text("/proc/mounts");
  const RemovedFiles dead = remove_dead_instances(
      dpdk_run_dir(getuid(), std::getenv("RUNTIME_DIRECTORY"), std::getenv("XDG_RUNTIME_DIR")), hugetlbfs_paths(mounts),
      getpid());
  if (dead.instances || dead.hugepage_files)
    notes.push_back("removed the DPDK files left by dead sluiced instances: " + std::to_string(dead.instances) +
                    " runtime directories, " + std::to_string(dead.hugepage_files) + " hugepage files (" +
                    megabytes(dead.bytes) + ")");

  const HugepageChoice huge = choose_hugepages(config.eal.hugepages,
                                               hugepage_facts(read_text("/proc/meminfo"), mounts, sysfs_free_hugepages()));
  if (!huge.error.empty()) {
    error = huge.error;
    return false;
  }
  if (!huge.note.empty()) notes.push_back(huge.note);

  EalArgsInput in{&config, passthrough, usable_cpus(), huge.use, static_cast<int>(getpid())};
  std::vector<std::string> args = build_eal_args(in);
  args.insert(args.begin(), "sluiced");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int rc;
  {
    const ShortCalibration calibration;  // the EAL's TSC measurement: 10 ms, not 100 (tsc_calibration.h)
    rc = rte_eal_init(static_cast<int>(args.size()), argv.data());
  }
  if (rc < 0) {
    const int why = rte_errno;
    std::string cmd;
    for (std::size_t i = 1; i < args.size(); ++i) cmd += (i > 1 ? " " : "") + args[i];
    error = "DPDK EAL initialisation failed (" + std::string(rte_strerror(why)) + "); EAL arguments were: " + cmd;
    // What the failed start created, unless another instance with this prefix holds it.
    remove_instance_files(rte_eal_get_runtime_dir(), hugetlbfs_paths(read_text("/proc/mounts")));
    return false;
  }
  g_runtime_dir = rte_eal_get_runtime_dir();
  // dpdk-pdump attaches as a secondary process (eal.file_prefix names the instance); it needs the
  // primary on hugepages, so without them there is nothing to set up (its statistics memzone cost
  // about 5 ms of each start and stop: issue 18). Failing here costs nothing but pdump.
  if (rte_eal_has_hugepages()) {
    g_pdump = rte_pdump_init() == 0;
    if (!g_pdump) notes.push_back("dpdk-pdump support not available: " + std::string(rte_strerror(rte_errno)));
  }
  return true;
}

void eal_cleanup() noexcept {
  if (g_pdump) rte_pdump_uninit();
  g_pdump = false;
  rte_eal_cleanup();
  try {
    remove_instance_files(g_runtime_dir, hugetlbfs_paths(read_text("/proc/mounts")));
  } catch (...) {  // std::bad_alloc from the paths: the files stay, as before
  }
}

}  // namespace sluice::dataplane
