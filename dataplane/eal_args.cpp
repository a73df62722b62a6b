// The pure part of the EAL bootstrap (eal.h): argument building and device names, without DPDK,
// so that configuration validation (control/) links no DPDK.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <regex>
#include <set>

#include "dataplane/eal.h"

namespace sluice::dataplane {

const char* mode_name(Mode m) noexcept {
  switch (m) {
    case Mode::inline_: return "inline";
    case Mode::tap: return "tap";
    case Mode::replay: return "replay";
  }
  return "?";
}

bool is_pci_address(const std::string& device) {
  static const std::regex bdf("^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\\.[0-7]$");
  return std::regex_match(device, bdf);
}

std::string device_name(const std::string& device) {
  if (is_pci_address(device)) return device.size() == 7 ? "0000:" + device : device;
  return device.substr(0, device.find(','));
}

unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return static_cast<unsigned>(CPU_COUNT(&set));
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1;
}

std::vector<unsigned> auto_workers(const LcoreConfig& lcores, const std::vector<std::string>& eal_args, unsigned cpus) {
  if (cpus < 2) return {};
  for (const auto& a : eal_args)
    if (a == "--lcores" || a.rfind("--lcores=", 0) == 0 || a.rfind("-l", 0) == 0 || a.rfind("-c", 0) == 0) return {};
  unsigned next = lcores.main;
  for (unsigned id : lcores.rx) next = std::max(next, id);
  // One per RX lcore, as far as the CPUs left beside the main and RX lcores go; at least one.
  const std::size_t spare = cpus > lcores.rx.size() + 1 ? cpus - lcores.rx.size() - 1 : 0;
  const std::size_t count = std::max<std::size_t>(1, std::min(lcores.rx.size(), spare));
  std::vector<unsigned> ids;
  for (std::size_t k = 0; k < count; ++k) ids.push_back(++next);
  if (next > kMaxLcoreId) return {};  // past the EAL's lcore ids: the configuration is the operator's
  return ids;
}

std::vector<std::string> build_eal_args(const EalArgsInput& in) {
  const Config& c = *in.config;
  std::vector<std::string> args;

  std::set<unsigned> ids{c.lcores.main};
  ids.insert(c.lcores.rx.begin(), c.lcores.rx.end());
  ids.insert(c.lcores.workers.begin(), c.lcores.workers.end());
  std::string map;
  const unsigned cpus = in.host_cpus == 0 ? 1 : in.host_cpus;
  for (unsigned id : ids) {
    if (!map.empty()) map += ',';
    map += std::to_string(id) + "@" + std::to_string(id % cpus);
  }
  args.insert(args.end(), {"--lcores", map, "--main-lcore", std::to_string(c.lcores.main)});
  // Start-up chatter (detected CPUs, IOVA mode) only at --log-level=info, given after "--".
  args.push_back("--log-level=notice");

  args.push_back("--file-prefix");
  args.push_back(c.eal.file_prefix.empty() ? "sluice-" + std::to_string(in.pid) : c.eal.file_prefix);

  const bool no_huge = c.eal.hugepages == Hugepages::off ||
                       (c.eal.hugepages == Hugepages::automatic && !in.hugepages_available);
  if (no_huge) args.insert(args.end(), {"--no-huge", "-m", std::to_string(c.eal.memory_mb)});

  bool any_pci = false;
  for (const PortConfig& p : c.ports) {
    if (is_pci_address(p.device)) {
      any_pci = true;
      args.insert(args.end(), {"-a", p.device});
    } else {
      args.insert(args.end(), {"--vdev", p.device});
    }
  }
  if (!any_pci) args.push_back("--no-pci");

  args.insert(args.end(), c.eal.args.begin(), c.eal.args.end());
  args.insert(args.end(), in.passthrough.begin(), in.passthrough.end());
  return args;
}

}  // namespace sluice::dataplane
