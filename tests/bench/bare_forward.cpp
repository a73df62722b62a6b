// The reference for scripts/bench-forward: the thinnest DPDK forwarder possible on the same ports
// sluiced uses (rx_burst on one port, tx_burst on the other, free what TX refused), so the ratio
// sluiced / bare shows what Sluice's own data path costs.
//
//   bench_bare_forward SECONDS BURST [EAL args...]   (two ports, forwarded 0<->1 on lcore 1)
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace {

std::atomic<bool> quit{false};
uint16_t burst = 32;
uint64_t forwarded[2], bytes[2];

int loop(void*) {
  rte_mbuf* pkts[256];
  while (!quit.load(std::memory_order_relaxed)) {
    for (uint16_t p = 0; p < 2; ++p) {
      const uint16_t n = rte_eth_rx_burst(p, 0, pkts, burst);
      if (!n) continue;
      for (uint16_t i = 0; i < n; ++i) bytes[p] += rte_pktmbuf_pkt_len(pkts[i]);
      const uint16_t sent = rte_eth_tx_burst(p ^ 1, 0, pkts, n);
      if (sent < n) rte_pktmbuf_free_bulk(pkts + sent, n - sent);
      forwarded[p] += sent;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_bare_forward SECONDS BURST [EAL args]\n");
    return 2;
  }
  const double seconds = std::atof(argv[1]);
  burst = static_cast<uint16_t>(std::atoi(argv[2]));
  argv[2] = argv[0];
  if (rte_eal_init(argc - 2, argv + 2) < 0 || rte_eth_dev_count_avail() < 2) {
    std::fprintf(stderr, "bench_bare_forward: EAL init failed or fewer than 2 ports\n");
    return 1;
  }
  rte_mempool* pool = rte_pktmbuf_pool_create("bare", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
  for (uint16_t p = 0; p < 2; ++p) {
    rte_eth_conf conf{};
    if (rte_eth_dev_configure(p, 1, 1, &conf) || rte_eth_rx_queue_setup(p, 0, 1024, rte_socket_id(), nullptr, pool) ||
        rte_eth_tx_queue_setup(p, 0, 1024, rte_socket_id(), nullptr) || rte_eth_dev_start(p)) {
      std::fprintf(stderr, "bench_bare_forward: port %u setup failed\n", p);
      return 1;
    }
  }
  const unsigned worker = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
  rte_eal_remote_launch(loop, nullptr, worker);
  std::this_thread::sleep_for(std::chrono::duration<double>(1.0));  // warm-up
  const uint64_t p0 = forwarded[0] + forwarded[1], b0 = bytes[0] + bytes[1];
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t p1 = forwarded[0] + forwarded[1], b1 = bytes[0] + bytes[1];
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  quit = true;
  rte_eal_mp_wait_lcore();
  std::printf("{\"packets_per_s\": %.0f, \"bytes_per_s\": %.0f}\n", (p1 - p0) / dt, (b1 - b0) / dt);
  rte_eal_cleanup();
  return 0;
}
