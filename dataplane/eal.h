// EAL bootstrap: turns the data-plane configuration into EAL arguments and initialises DPDK.
#pragma once

#include <string>
#include <vector>

#include "dataplane/dataplane_config.h"

namespace sluice::dataplane {

struct EalArgsInput {
  const Config* config;
  std::vector<std::string> passthrough;  // what followed "--" on the command line
  unsigned host_cpus;                     // CPUs this process may run on
  bool hugepages_available;               // free hugepages with a hugetlbfs mounted (hugepages.h)
  int pid;
};

// Pure function, unit-tested: the argv (without argv[0]) given to rte_eal_init.
// - lcores: main + rx + workers, each mapped to CPU (id % host_cpus) so a lab config with more
//   lcores than CPUs still starts (lcores then share CPUs; fine for tests, not for production);
// - memory: --no-huge -m memory_mb when hugepages are off, or auto and none are usable (free and
//   mounted: choose_hugepages(), hugepages.h);
// - devices: PCI addresses as -a, everything else as --vdev; --no-pci when no PCI port is
//   configured, so Sluice never takes a NIC it was not given;
// - --log-level=notice (EAL start-up chatter is info; a later --log-level overrides it);
// - --file-prefix from eal.file_prefix or sluice-<pid>; then eal.args, then the passthrough.
std::vector<std::string> build_eal_args(const EalArgsInput& in);

inline constexpr unsigned kMaxLcoreId = 127;  // RTE_MAX_LCORE - 1 in Debian's build; the config's bound

// CPUs this process may run on (its affinity mask; else the CPUs online).
unsigned usable_cpus();

// The worker lcores of `lcores.workers: auto` (the default): with 2 CPUs or more, one worker per RX
// lcore as far as the CPUs beside the main and RX lcores go, at least one, at the lcore ids after
// the highest of the main and RX lcores; none on one CPU, when `eal_args` maps lcores itself
// (--lcores, -l, -c: the ids might not exist), or past the last lcore id. On 2 CPUs the default
// (main 0, RX 1) gets worker 2, on the main lcore's CPU: the layout measured fastest there, where
// the worker is about as busy as the RX lcore (docs/benchmarks.md, issue 18).
std::vector<unsigned> auto_workers(const LcoreConfig& lcores, const std::vector<std::string>& eal_args, unsigned cpus);

bool is_pci_address(const std::string& device);

// The ethdev name DPDK gives the device: the vdev name before the first comma, or the PCI address.
std::string device_name(const std::string& device);

// Reads the host facts build_eal_args needs, removes the DPDK files of dead sluiced instances
// (eal_files.h), decides on hugepages (hugepages.h), then calls rte_eal_init and enables dpdk-pdump
// (rte_pdump_init). On failure returns false with a one-line reason in `error` (and removes the
// runtime directory the failed start created). `notes`: lines for the operator (hugepages reserved
// but not mounted, dead instances' files removed).
bool eal_init(const Config& config, const std::vector<std::string>& passthrough, std::string& error,
              std::vector<std::string>& notes);

// Exit: rte_eal_cleanup(), then this instance's runtime directory and hugepage files are removed.
// After a successful eal_init() only, once.
void eal_cleanup() noexcept;

}  // namespace sluice::dataplane
