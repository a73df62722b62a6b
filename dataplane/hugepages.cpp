#include "dataplane/hugepages.h"

#include <cstdlib>
#include <sstream>

namespace sluice::dataplane {
namespace {

// "2048 kB" -> 2048; "2M" / "1G" / "2048k" (a pagesize= option) -> kB; 0 when unreadable.
uint64_t size_kb(std::string_view s) {
  char* end = nullptr;
  const std::string text(s);
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  while (*end == ' ') ++end;
  switch (*end) {
    case 'k': case 'K': return v;
    case 'm': case 'M': return v * 1024;
    case 'g': case 'G': return v * 1024 * 1024;
    case '\0': return v / 1024;  // bytes
    default: return 0;
  }
}

// The mount table escapes spaces, tabs, newlines and backslashes in paths as \ooo.
std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const std::string oct(s.substr(i + 1, 3));
      char* end = nullptr;
      const long c = std::strtol(oct.c_str(), &end, 8);
      if (end == oct.c_str() + 3) {
        out.push_back(static_cast<char>(c));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

// Calls fn(mount point, options) for every hugetlbfs line of a mount table.
template <typename Fn>
void each_hugetlbfs(std::string_view mounts, Fn fn) {
  std::istringstream in{std::string(mounts)};
  std::string device, path, type, options;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    if (fields >> device >> path >> type >> options && type == "hugetlbfs") fn(unescape(path), options);
  }
}

std::string size_text(uint64_t kb) {
  if (kb >= 1024 * 1024 && kb % (1024 * 1024) == 0) return std::to_string(kb / (1024 * 1024)) + " GiB";
  if (kb >= 1024 && kb % 1024 == 0) return std::to_string(kb / 1024) + " MiB";
  return std::to_string(kb) + " kB";
}

}  // namespace

HugepageFacts hugepage_facts(std::string_view meminfo, std::string_view mounts, const std::map<uint64_t, uint64_t>& sysfs) {
  HugepageFacts f;
  uint64_t meminfo_free = 0;
  std::istringstream in{std::string(meminfo)};
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, colon);
    std::string_view value(line);
    value.remove_prefix(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (key == "Hugepagesize") f.default_page_kb = size_kb(value);
    if (key == "HugePages_Free") meminfo_free = std::strtoull(std::string(value).c_str(), nullptr, 10);
  }
  f.free_pages = sysfs;
  if (f.free_pages.empty() && f.default_page_kb) f.free_pages[f.default_page_kb] = meminfo_free;
  each_hugetlbfs(mounts, [&](std::string path, const std::string& options) {
    uint64_t kb = f.default_page_kb;
    const auto at = options.find("pagesize=");
    if (at != std::string::npos) kb = size_kb(std::string_view(options).substr(at + 9, options.find(',', at) - at - 9));
    f.mounts.push_back({std::move(path), kb});
  });
  return f;
}

std::vector<std::string> hugetlbfs_paths(std::string_view mounts) {
  std::vector<std::string> paths;
  each_hugetlbfs(mounts, [&](std::string path, const std::string&) { paths.push_back(std::move(path)); });
  return paths;
}

HugepageChoice choose_hugepages(Hugepages mode, const HugepageFacts& facts) {
  HugepageChoice c;
  if (mode == Hugepages::off) return c;
  uint64_t unmounted_kb = 0, unmounted_free = 0;
  for (const auto& [kb, free] : facts.free_pages) {
    if (free == 0) continue;
    bool mounted = false;
    for (const auto& m : facts.mounts) mounted |= m.page_kb == kb;
    if (mounted) {
      c.use = true;
      return c;
    }
    if (!unmounted_free) unmounted_kb = kb, unmounted_free = free;
  }
  if (unmounted_free) {
    // The one command that makes them usable (a non-default size needs its own mount).
    const std::string mount = unmounted_kb == facts.default_page_kb
                                  ? "mount -t hugetlbfs nodev /dev/hugepages"
                                  : "mkdir -p /dev/hugepages-" + std::to_string(unmounted_kb) + "kB && mount -t hugetlbfs -o pagesize=" +
                                        std::to_string(unmounted_kb) + "K nodev /dev/hugepages-" + std::to_string(unmounted_kb) + "kB";
    const std::string why = std::to_string(unmounted_free) + " free hugepages of " + size_text(unmounted_kb) +
                            " are reserved but no hugetlbfs is mounted for them";
    if (mode == Hugepages::on)
      c.error = "eal.hugepages is on but " + why + ": " + mount + " (or set eal.hugepages: auto)";
    else
      c.note = why + ": running without hugepages (--no-huge); to use them: " + mount;
    return c;
  }
  if (mode == Hugepages::on)
    c.error = "eal.hugepages is on but no hugepage is free: reserve some (dpdk-hugepages.py -p 2M --setup 1G) "
              "and mount hugetlbfs, or set eal.hugepages: auto";
  return c;
}

}  // namespace sluice::dataplane
