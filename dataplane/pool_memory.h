// The data plane's mempools in the process's own memory (issue 18). With hugepages, or with a PCI
// port, a pool is DPDK's (rte_pktmbuf_pool_create, rte_mempool_create), in DPDK's memory. Without
// hugepages and with only virtual devices (net_pcap, net_null, net_af_packet...: none DMAs),
// DPDK's --no-huge memory is a memfd (shared memory), where each 4 KiB page costs a fault at
// population, when every object header is written, DPDK's allocator writes zeros over the whole
// pool when it is freed (so peak memory at exit includes pages never used), and the unmap costs
// again. There a pool's objects live in an anonymous mapping of the process instead:
//  - the mbuf pool and the workers' chunk and result pools (objects written whole at start, or
//    small): advised for transparent huge pages. On the lab VM the 16,383 default mbufs (37 MiB)
//    took about 90 ms to populate and 25 ms to unmap in DPDK's memory, against about 10 ms and
//    nothing here (docs/benchmarks.md, "Start-up and tear-down"); a worker lcore's 8,191 chunks
//    (33 MiB) cost start-up and exit about 0.2-0.35 s there.
//  - sample and spool blocks (64 KiB, only the header written until used): 4 KiB pages, so that
//    only what is used is resident.
// Such a pool is not IOVA-contiguous (RTE_MEMPOOL_F_NO_IOVA_CONTIG, no IOVA): fine for those
// drivers, never used with a PCI port. Same objects, same ops, same cache: the lcores see no
// difference.
#pragma once

#include <rte_mempool.h>

#include <cstddef>
#include <string>

#include "dataplane/dataplane_config.h"

namespace sluice::dataplane {

// The mapping that holds one pool's objects. Destroy it after the pool (rte_mempool_free).
class PoolMemory {
 public:
  PoolMemory() = default;
  ~PoolMemory();
  PoolMemory(const PoolMemory&) = delete;
  PoolMemory& operator=(const PoolMemory&) = delete;

  // Whether pools go into process memory: no hugepages and no PCI port. After rte_eal_init.
  static bool wanted(const Config& config) noexcept;

  // Gives the empty pool `mp` (its ops set) its `n` objects in a mapping of its own, advised for
  // transparent huge pages when `huge`. 0, or a negative errno (the pool is left to the caller).
  int populate(rte_mempool* mp, unsigned n, bool huge) noexcept;

 private:
  void* map_ = nullptr;
  std::size_t len_ = 0;
};

// rte_mempool_create(name, n, size, cache, no private data, no constructors, socket, no flags) when
// `memory` is null; otherwise the same pool with its objects in `memory` (PoolMemory::wanted()).
// nullptr with rte_errno set on failure.
rte_mempool* create_pool(const std::string& name, unsigned n, unsigned size, unsigned cache, int socket,
                         PoolMemory* memory, bool huge) noexcept;

// The mbuf pool: rte_pktmbuf_pool_create's, or its objects in process memory (huge pages).
class MbufPool {
 public:
  MbufPool() = default;
  ~MbufPool();  // frees the pool, then its memory
  MbufPool(const MbufPool&) = delete;
  MbufPool& operator=(const MbufPool&) = delete;

  // Creates the pool: `n` mbufs with the default data room, `cache` per lcore. nullptr with
  // rte_errno set on failure.
  rte_mempool* create(const Config& config, const char* name, unsigned n, unsigned cache) noexcept;
  rte_mempool* get() const noexcept { return pool_; }

 private:
  rte_mempool* pool_ = nullptr;
  PoolMemory memory_;  // in process memory only
};

}  // namespace sluice::dataplane
