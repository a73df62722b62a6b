#include "dataplane/eal.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sluice::dataplane {

namespace {

bool free_hugepages() {
  std::error_code ec;
  const std::filesystem::path root("/sys/kernel/mm/hugepages");
  for (const auto& dir : std::filesystem::directory_iterator(root, ec)) {
    std::ifstream f(dir.path() / "free_hugepages");
    unsigned long n = 0;
    if (f >> n && n > 0) return true;
  }
  return false;
}

unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return static_cast<unsigned>(CPU_COUNT(&set));
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1;
}

}  // namespace

bool eal_init(const Config& config, const std::vector<std::string>& passthrough, std::string& error) {
  EalArgsInput in{&config, passthrough, usable_cpus(), free_hugepages(), static_cast<int>(getpid())};
  std::vector<std::string> args = build_eal_args(in);
  args.insert(args.begin(), "sluiced");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0) {
    std::string cmd;
    for (std::size_t i = 1; i < args.size(); ++i) cmd += (i > 1 ? " " : "") + args[i];
    error = "DPDK EAL initialisation failed (" + std::string(rte_strerror(rte_errno)) +
            "); EAL arguments were: " + cmd;
    return false;
  }
  return true;
}

}  // namespace sluice::dataplane
