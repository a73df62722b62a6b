// Whether the EAL runs on hugepages, decided before rte_eal_init from what the kernel says. Pure:
// the readings (/proc/meminfo, the mount table, sysfs) are passed in, so every case is unit-tested
// on a machine without hugepages; eal.cpp reads them.
//
// Hugepages are usable when some are free in a page size that has a hugetlbfs mounted for it (the
// EAL maps each page as a file there). Reserved but not mounted, the EAL would stop with "no mounted
// hugetlbfs found": `eal.hugepages: auto` then runs without (--no-huge) and says why and how to
// mount, `on` refuses to start with the same line. None free: `auto` runs without, `on` refuses.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/dataplane_config.h"

namespace sluice::dataplane {

struct HugetlbfsMount {
  std::string path;
  uint64_t page_kb;  // its pagesize= option, else the default hugepage size
};

struct HugepageFacts {
  uint64_t default_page_kb = 0;              // /proc/meminfo Hugepagesize
  std::map<uint64_t, uint64_t> free_pages;   // page size in kB -> free pages
  std::vector<HugetlbfsMount> mounts;
};

// `meminfo`: /proc/meminfo; `mounts`: /proc/mounts (octal escapes such as \040 decoded); `sysfs`:
// free pages per size from /sys/kernel/mm/hugepages/hugepages-<N>kB/free_hugepages, which covers
// every size (meminfo's HugePages_Free covers the default size only and is used when sysfs is empty).
HugepageFacts hugepage_facts(std::string_view meminfo, std::string_view mounts, const std::map<uint64_t, uint64_t>& sysfs);

// The mount points of the hugetlbfs file systems in a mount table.
std::vector<std::string> hugetlbfs_paths(std::string_view mounts);

struct HugepageChoice {
  bool use = false;   // run on hugepages (no --no-huge)
  std::string note;   // one line for the operator (why not, and how to mount), or empty
  std::string error;  // eal.hugepages: on and they cannot be used: start-up fails with this line
};

HugepageChoice choose_hugepages(Hugepages mode, const HugepageFacts& facts);

}  // namespace sluice::dataplane
