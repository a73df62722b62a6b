#include "dataplane/eal.h"

#include <gtest/gtest.h>

#include <algorithm>

using namespace sluice::dataplane;

namespace {

Config base() {
  Config c{};
  c.mode = Mode::inline_;
  c.eal.hugepages = Hugepages::automatic;
  c.eal.memory_mb = 512;
  c.lcores.main = 0;
  c.lcores.rx = {1, 2};
  c.ports = {{"a", "net_af_packet0,iface=veth0", 1024, 1024, true, sluice::reassembly::LinkType::ethernet},
             {"b", "net_af_packet1,iface=veth1", 1024, 1024, true, sluice::reassembly::LinkType::ethernet}};
  return c;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : " ") + a;
  return s;
}

}  // namespace

TEST(EalArgs, NoHugepagesAvailableMeansNoHuge) {
  Config c = base();
  const auto args = build_eal_args({&c, {}, 2, false, 42});
  EXPECT_EQ(joined(args),
            "--lcores 0@0,1@1,2@0 --main-lcore 0 --log-level=notice --file-prefix sluice-42 --no-huge -m 512 "
            "--vdev net_af_packet0,iface=veth0 --vdev net_af_packet1,iface=veth1 --no-pci");
}

TEST(EalArgs, HugepagesWhenFree) {
  Config c = base();
  c.eal.file_prefix = "lab";
  const std::string s = joined(build_eal_args({&c, {"--log-level=debug"}, 8, true, 1}));
  EXPECT_EQ(s.find("--no-huge"), std::string::npos);
  EXPECT_NE(s.find("--file-prefix lab"), std::string::npos);
  EXPECT_NE(s.find("--lcores 0@0,1@1,2@2"), std::string::npos);
  EXPECT_EQ(s.substr(s.size() - 17), "--log-level=debug");
  c.eal.hugepages = Hugepages::off;
  EXPECT_NE(joined(build_eal_args({&c, {}, 8, true, 1})).find("--no-huge -m 512"), std::string::npos);
}

TEST(EalArgs, PciDevicesAreAllowListedAndPciStaysOn) {
  Config c = base();
  c.ports[1].device = "0000:3b:00.1";
  const std::string s = joined(build_eal_args({&c, {}, 2, false, 1}));
  EXPECT_NE(s.find("-a 0000:3b:00.1"), std::string::npos);
  EXPECT_EQ(s.find("--no-pci"), std::string::npos);
}

TEST(EalArgs, DeviceNames) {
  EXPECT_TRUE(is_pci_address("0000:03:00.0"));
  EXPECT_TRUE(is_pci_address("03:00.1"));
  EXPECT_FALSE(is_pci_address("net_pcap0"));
  EXPECT_EQ(device_name("03:00.1"), "0000:03:00.1");
  EXPECT_EQ(device_name("net_pcap0,rx_pcap=a.pcap,tx_pcap=b.pcap"), "net_pcap0");
  EXPECT_EQ(device_name("net_null0"), "net_null0");
}

TEST(EalArgs, AutoWorkers) {
  LcoreConfig lc{};
  lc.rx = {1};
  EXPECT_EQ(auto_workers(lc, {}, 1), std::vector<unsigned>{});
  EXPECT_EQ(auto_workers(lc, {}, 2), std::vector<unsigned>{2});
  EXPECT_EQ(auto_workers(lc, {}, 32), std::vector<unsigned>{2});
  lc.rx = {1, 2, 3};
  EXPECT_EQ(auto_workers(lc, {}, 8), (std::vector<unsigned>{4, 5, 6})) << "one per RX lcore";
  EXPECT_EQ(auto_workers(lc, {}, 6), (std::vector<unsigned>{4, 5})) << "as far as the CPUs go";
  EXPECT_EQ(auto_workers(lc, {}, 3), std::vector<unsigned>{4}) << "at least one";
  lc.main = 9;
  EXPECT_EQ(auto_workers(lc, {}, 8), (std::vector<unsigned>{10, 11, 12}));
  // eal.args that map lcores themselves: the ids might not exist, so none.
  for (const char* a : {"--lcores", "--lcores=0@0,1@1", "-l", "-l0-3", "-c", "-c0xf"})
    EXPECT_EQ(auto_workers(lc, {"--no-telemetry", a}, 8), std::vector<unsigned>{}) << a;
  EXPECT_EQ(auto_workers(lc, {"--log-level=debug"}, 8).size(), 3u);
  lc.rx = {126};
  lc.main = 0;
  EXPECT_EQ(auto_workers(lc, {}, 8), std::vector<unsigned>{127});
  lc.rx = {127};
  EXPECT_EQ(auto_workers(lc, {}, 8), std::vector<unsigned>{}) << "no lcore id left";
}
