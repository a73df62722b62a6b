#include "dataplane/hugepages.h"

#include <gtest/gtest.h>

using namespace sluice::dataplane;

namespace {

// /proc/meminfo as the kernel writes it (the lines that matter and a few around them).
std::string meminfo(unsigned total, unsigned free, unsigned page_kb = 2048) {
  return "MemTotal:       24590140 kB\nAnonHugePages:         0 kB\nHugePages_Total:    " + std::to_string(total) +
         "\nHugePages_Free:     " + std::to_string(free) + "\nHugePages_Rsvd:        0\nHugePages_Surp:        0\n"
         "Hugepagesize:       " + std::to_string(page_kb) + " kB\nHugetlb:         0 kB\n";
}

const char* kNoHugetlbfs =
    "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\nproc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
    "/dev/vda / ext4 rw,relatime 0 0\ntmpfs /run tmpfs rw,nosuid,nodev,size=2459016k,mode=755 0 0\n";
const std::string kMounted = std::string(kNoHugetlbfs) + "hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n";

HugepageChoice choose(Hugepages mode, const std::string& info, const std::string& mounts,
                      const std::map<uint64_t, uint64_t>& sysfs = {}) {
  return choose_hugepages(mode, hugepage_facts(info, mounts, sysfs));
}

}  // namespace

TEST(Hugepages, FactsFromMeminfoAndTheMountTable) {
  const auto f = hugepage_facts(meminfo(1024, 1000), kMounted + "nodev /mnt/huge\\0401g hugetlbfs rw,pagesize=1G 0 0\n"
                                "none /mnt/plain hugetlbfs rw,relatime 0 0\n", {});
  EXPECT_EQ(f.default_page_kb, 2048u);
  EXPECT_EQ(f.free_pages, (std::map<uint64_t, uint64_t>{{2048, 1000}}));
  ASSERT_EQ(f.mounts.size(), 3u);
  EXPECT_EQ(f.mounts[0].path, "/dev/hugepages");
  EXPECT_EQ(f.mounts[0].page_kb, 2048u);
  EXPECT_EQ(f.mounts[1].path, "/mnt/huge 1g");  // \040 is a space
  EXPECT_EQ(f.mounts[1].page_kb, 1048576u);
  EXPECT_EQ(f.mounts[2].page_kb, 2048u);  // no pagesize=: the default size
  // sysfs covers every size and wins over meminfo's default-size count.
  const auto s = hugepage_facts(meminfo(0, 0), kNoHugetlbfs, {{2048, 0}, {1048576, 4}});
  EXPECT_EQ(s.free_pages, (std::map<uint64_t, uint64_t>{{2048, 0}, {1048576, 4}}));
  EXPECT_EQ(hugetlbfs_paths(kMounted), (std::vector<std::string>{"/dev/hugepages"}));
  EXPECT_TRUE(hugetlbfs_paths(kNoHugetlbfs).empty());
}

TEST(Hugepages, ReservedAndMountedAreUsed) {
  for (auto mode : {Hugepages::automatic, Hugepages::on}) {
    const auto c = choose(mode, meminfo(1024, 1024), kMounted);
    EXPECT_TRUE(c.use);
    EXPECT_EQ(c.note, "");
    EXPECT_EQ(c.error, "");
  }
  EXPECT_FALSE(choose(Hugepages::off, meminfo(1024, 1024), kMounted).use);  // off means off
}

// The case the EAL itself stops on ("no mounted hugetlbfs found"): auto falls back with one line
// saying why and how to mount; on refuses with it.
TEST(Hugepages, ReservedButNotMountedFallsBackAndSaysHowToMount) {
  const auto c = choose(Hugepages::automatic, meminfo(1024, 1024), kNoHugetlbfs);
  EXPECT_FALSE(c.use);
  EXPECT_EQ(c.error, "");
  EXPECT_EQ(c.note, "1024 free hugepages of 2 MiB are reserved but no hugetlbfs is mounted for them: running "
                    "without hugepages (--no-huge); to use them: mount -t hugetlbfs nodev /dev/hugepages");
  const auto on = choose(Hugepages::on, meminfo(1024, 1024), kNoHugetlbfs);
  EXPECT_FALSE(on.use);
  EXPECT_EQ(on.error, "eal.hugepages is on but 1024 free hugepages of 2 MiB are reserved but no hugetlbfs is mounted "
                      "for them: mount -t hugetlbfs nodev /dev/hugepages (or set eal.hugepages: auto)");
  // A mount for another page size does not help: 1 GiB pages reserved, only the 2 MiB mount.
  const auto other = choose(Hugepages::automatic, meminfo(0, 0), kMounted, {{2048, 0}, {1048576, 4}});
  EXPECT_FALSE(other.use);
  EXPECT_NE(other.note.find("4 free hugepages of 1 GiB"), std::string::npos) << other.note;
  EXPECT_NE(other.note.find("mount -t hugetlbfs -o pagesize=1048576K nodev /dev/hugepages-1048576kB"), std::string::npos)
      << other.note;
  EXPECT_TRUE(choose(Hugepages::automatic, meminfo(0, 0), kMounted + "nodev /mnt/huge1g hugetlbfs rw,pagesize=1024M 0 0\n",
                     {{2048, 0}, {1048576, 4}}).use);
}

TEST(Hugepages, NoneFreeRunsWithoutOrRefusesWhenOn) {
  for (const auto& info : {meminfo(0, 0), meminfo(512, 0), std::string()}) {  // none, all in use, no meminfo
    const auto c = choose(Hugepages::automatic, info, kMounted);
    EXPECT_FALSE(c.use);
    EXPECT_EQ(c.note, "");  // as before: silently --no-huge
    EXPECT_EQ(c.error, "");
    EXPECT_NE(choose(Hugepages::on, info, kMounted).error.find("eal.hugepages is on but no hugepage is free"), std::string::npos);
  }
}
