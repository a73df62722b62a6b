// The data plane's ports (dataplane_impl.h): the mbuf pool, the RX lcore contexts with their
// dispatch rings, and each configured port: queues, symmetric RSS or software dispatch, offloads.
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_ring.h>

#include <algorithm>

#include "dataplane/dataplane_impl.h"
#include "dataplane/eal.h"
#include "hw/rss_key.h"

namespace sluice::dataplane {
namespace {

std::string port_label(const Config& c, unsigned idx) {
  return "ports[" + std::to_string(idx) + "] (" + c.ports[idx].name + ", " + c.ports[idx].device + ")";
}

}  // namespace

bool Dataplane::Impl::setup_ports(std::string& error) {
  const Config& c = config;
  table.n_ports = static_cast<unsigned>(c.ports.size());
  table.n_rx_lcores = static_cast<unsigned>(c.lcores.rx.size());
  table.burst = c.burst;
  table.tx_retries = c.tx_retries;
  table.enforce_watchdog_tsc = c.enforce.enabled ? rte_get_tsc_hz() / 1000 * c.enforce.watchdog_ms : 0;
  table.replay = c.mode == Mode::replay;
  table.flow_hash = c.flow_hash;
  if (table.n_ports > kMaxPorts || table.n_rx_lcores > kMaxRxLcores || table.n_rx_lcores == 0 || c.burst > kMaxBurst) {
    error = "data plane limits: at most " + std::to_string(kMaxPorts) + " ports, 1.." + std::to_string(kMaxRxLcores) +
            " RX lcores, burst up to " + std::to_string(kMaxBurst);
    return false;
  }
  for (unsigned i = 0; i < kMaxPorts; ++i) table.peer[i] = kNoPeer;
  if (c.mode != Mode::tap)
    for (const auto& [a, b] : c.pairs) {
      table.peer[a] = static_cast<uint16_t>(b);
      table.peer[b] = static_cast<uint16_t>(a);
    }

  table.pool = mbuf_pool.create(c, "sluice_mbufs", c.mbufs, c.mbuf_cache);
  if (!table.pool) {
    error = "dataplane.mbufs: cannot create a pool of " + std::to_string(c.mbufs) + " mbufs: " + rte_strerror(rte_errno) +
            " (lower dataplane.mbufs" +
            (PoolMemory::wanted(c) ? std::string(")") : std::string(" or raise eal.memory_mb)"));
    return false;
  }
  if (!setup_rx_lcores(error)) return false;
  for (unsigned i = 0; i < table.n_ports; ++i)
    if (!setup_port(i, error)) return false;
  // Registered by PMDs that deliver RX timestamps; absent otherwise.
  table.timestamp_offset = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, nullptr);
  const int flag_bit = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, nullptr);
  table.timestamp_flag = flag_bit >= 0 ? (uint64_t{1} << flag_bit) : 0;
  if (flag_bit < 0) table.timestamp_offset = -1;
  return true;
}

// The RX lcore contexts (their queues are added by setup_port) and, with several RX lcores, the
// inbound ring of each for software dispatch.
bool Dataplane::Impl::setup_rx_lcores(std::string& error) {
  const Config& c = config;
  lcores = static_cast<RxLcoreContext*>(
      rte_zmalloc("sluice_rx_lcores", sizeof(RxLcoreContext) * table.n_rx_lcores, RTE_CACHE_LINE_SIZE));
  if (!lcores) {
    error = "cannot allocate RX lcore contexts";
    return false;
  }
  for (unsigned i = 0; i < table.n_rx_lcores; ++i) {
    RxLcoreContext& lc = lcores[i];
    lc.lcore_id = c.lcores.rx[i];
    lc.index = i;
    lc.backoff.configure(c.lcores.idle_polls, c.lcores.idle_sleep_us);
    lc.table = &table;
    lc.quit = &quit;
    if (!rte_lcore_is_enabled(lc.lcore_id)) {
      error = "lcores.rx: lcore " + std::to_string(lc.lcore_id) + " is not enabled in the EAL";
      return false;
    }
    if (table.n_rx_lcores > 1) {
      const std::string name = "sluice_in_" + std::to_string(i);
      table.inbound[i] = rte_ring_create(name.c_str(), c.dispatch_ring_size, static_cast<int>(rte_socket_id()), RING_F_SC_DEQ);
      if (!table.inbound[i]) {
        error = "dataplane.dispatch_ring_size: cannot create ring: " + std::string(rte_strerror(rte_errno));
        return false;
      }
    }
  }
  return true;
}

bool Dataplane::Impl::setup_port(unsigned idx, std::string& error) {
  const PortConfig& pc = config.ports[idx];
  const std::string label = port_label(config, idx);
  uint16_t port_id;
  if (rte_eth_dev_get_port_by_name(device_name(pc.device).c_str(), &port_id) != 0) {
    error = label + ": no such DPDK port after EAL start (check the device string and that its driver is installed)";
    return false;
  }
  table.port_id[idx] = port_id;

  rte_eth_dev_info info;
  if (int rc = rte_eth_dev_info_get(port_id, &info); rc != 0) {
    error = label + ": cannot read device info: " + rte_strerror(-rc);
    return false;
  }
  const uint16_t want = static_cast<uint16_t>(table.n_rx_lcores);
  if (info.max_tx_queues < want) {
    error = label + ": the device has " + std::to_string(info.max_tx_queues) + " TX queue(s) but lcores.rx lists " +
            std::to_string(want) + " RX lcores, each needing its own TX queue; use fewer RX lcores or a multi-queue device";
    return false;
  }
  const uint16_t rxq = std::min<uint16_t>(want, info.max_rx_queues);
  const bool rss = want > 1 && rxq == want && info.flow_type_rss_offloads != 0;
  symmetric_rss[idx] = rss;
  software_dispatch[idx] = want > 1 && !rss;

  rte_eth_conf conf{};
  std::vector<uint8_t> key;
  if (rss) {
    key = hw::symmetric_rss_key(info.hash_key_size ? info.hash_key_size : 40);
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_key = key.data();
    conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<uint8_t>(key.size());
    conf.rx_adv_conf.rss_conf.rss_hf = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
  }
  // Frames larger than one mbuf (jumbo, or captures made with segmentation offload) chain.
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER) conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
  if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
  // Capture time on each frame (net_pcap): events of a replay carry the time of the packet.
  if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP) conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
  table.link_type[idx] = pc.link_type;

  if (int rc = rte_eth_dev_configure(port_id, rxq, want, &conf); rc != 0) {
    error = label + ": configure failed: " + rte_strerror(-rc);
    return false;
  }
  uint16_t nb_rx = pc.rx_desc, nb_tx = pc.tx_desc;
  rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &nb_rx, &nb_tx);
  const int socket = rte_eth_dev_socket_id(port_id);
  const unsigned sock = socket < 0 ? SOCKET_ID_ANY : static_cast<unsigned>(socket);
  for (uint16_t q = 0; q < rxq; ++q)
    if (int rc = rte_eth_rx_queue_setup(port_id, q, nb_rx, sock, nullptr, table.pool); rc != 0) {
      error = label + ": RX queue " + std::to_string(q) + " setup failed: " + rte_strerror(-rc);
      return false;
    }
  for (uint16_t q = 0; q < want; ++q)
    if (int rc = rte_eth_tx_queue_setup(port_id, q, nb_tx, sock, nullptr); rc != 0) {
      error = label + ": TX queue " + std::to_string(q) + " setup failed: " + rte_strerror(-rc);
      return false;
    }
  if (int rc = rte_eth_dev_start(port_id); rc != 0) {
    error = label + ": start failed: " + rte_strerror(-rc);
    return false;
  }
  port_started[idx] = true;
  if (pc.promiscuous) {
    // A bump in the wire sees frames for other MACs; PMDs without the notion (pcap files) say so.
    int rc = rte_eth_promiscuous_enable(port_id);
    if (rc != 0 && rc != -ENOTSUP)
      RTE_LOG(WARNING, USER1, "%s: promiscuous mode not enabled: %s\n", label.c_str(), rte_strerror(-rc));
  }
  // RX lcore k polls queue k of every port that has one.
  for (uint16_t q = 0; q < rxq; ++q) {
    RxLcoreContext& lc = lcores[q];
    lc.queues[lc.n_queues++] = RxQueueRef{static_cast<uint16_t>(idx), q, software_dispatch[idx]};
  }
  return true;
}

}  // namespace sluice::dataplane
