// The mbuf pool (issue 18). With hugepages, or with a PCI port, it is rte_pktmbuf_pool_create's, in
// DPDK's memory. Without hugepages and with only virtual devices (net_pcap, net_null,
// net_af_packet...: none DMAs), its objects live in an anonymous mapping of the process instead,
// advised for transparent huge pages: DPDK's --no-huge memory is a memfd (shared memory), where
// each 4 KiB page costs a fault at population, when every mbuf header is written, and again at
// unmap; on the lab VM the 16,383 default mbufs (37 MiB) took about 90 ms to populate and 25 ms to
// unmap there, against about 10 ms and nothing here (docs/benchmarks.md, "Start-up and
// tear-down"). The pool is then not IOVA-contiguous (RTE_MEMPOOL_F_NO_IOVA_CONTIG, no IOVA): fine
// for those drivers, never used with a PCI port. Same objects, same ops, same cache: the RX path
// sees no difference.
#pragma once

#include <rte_mempool.h>

#include <cstddef>
#include <string>

#include "dataplane/dataplane_config.h"

namespace sluice::dataplane {

class MbufPool {
 public:
  MbufPool() = default;
  ~MbufPool();  // frees the pool, then its memory
  MbufPool(const MbufPool&) = delete;
  MbufPool& operator=(const MbufPool&) = delete;

  // Whether the pool goes into process memory: no hugepages and no PCI port.
  static bool in_process_memory(const Config& config) noexcept;
  // Creates the pool: `n` mbufs with the default data room, `cache` per lcore. nullptr with
  // rte_errno set on failure.
  rte_mempool* create(const Config& config, const char* name, unsigned n, unsigned cache) noexcept;
  rte_mempool* get() const noexcept { return pool_; }
  bool in_process() const noexcept { return map_ != nullptr; }

 private:
  rte_mempool* pool_ = nullptr;
  void* map_ = nullptr;  // the mapping holding the objects (in process memory only)
  std::size_t map_len_ = 0;
};

}  // namespace sluice::dataplane
