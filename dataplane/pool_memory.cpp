#include "dataplane/pool_memory.h"

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <sys/mman.h>

#include <cerrno>

#include "dataplane/eal.h"

namespace sluice::dataplane {

namespace {
constexpr std::size_t kHugePage = std::size_t{2} << 20;  // the transparent huge page size (x86-64)
}

bool PoolMemory::wanted(const Config& config) noexcept {
  if (rte_eal_has_hugepages()) return false;
  for (const auto& p : config.ports)
    if (is_pci_address(p.device)) return false;
  return true;
}

int PoolMemory::populate(rte_mempool* mp, unsigned n, bool huge) noexcept {
  std::size_t min_chunk = 0, align = 0;
  const ssize_t need = rte_mempool_ops_calc_mem_size(mp, n, 0, &min_chunk, &align);
  if (need < 0) return static_cast<int>(need);
  // Aligned to a huge page, so that the kernel can back it with huge pages from its first byte.
  const std::size_t len = (static_cast<std::size_t>(need) + kHugePage - 1) / kHugePage * kHugePage;
  void* map = mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (map == MAP_FAILED) return -ENOMEM;
  map_ = map;
  len_ = len + kHugePage;
  char* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(map) + kHugePage - 1) & ~(kHugePage - 1));
  // Advice only: without transparent huge pages, 4 KiB pages. Sparse pools say so, since with THP
  // "always" a header written every 64 KiB would make every page resident.
  madvise(base, len, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  const int rc = rte_mempool_populate_virt(mp, base, len, kHugePage, nullptr, nullptr);
  if (rc < 0) return rc;
  return mp->populated_size == n ? 0 : -ENOMEM;
}

PoolMemory::~PoolMemory() {
  if (map_) munmap(map_, len_);
}

rte_mempool* create_pool(const std::string& name, unsigned n, unsigned size, unsigned cache, int socket,
                         PoolMemory* memory, bool huge) noexcept {
  if (!memory) return rte_mempool_create(name.c_str(), n, size, cache, 0, nullptr, nullptr, nullptr, nullptr, socket, 0);
  // rte_mempool_create's steps, with the objects in `memory` instead of a memzone.
  rte_mempool* mp = rte_mempool_create_empty(name.c_str(), n, size, cache, 0, socket, RTE_MEMPOOL_F_NO_IOVA_CONTIG);
  if (!mp) return nullptr;
  int rc = rte_mempool_set_ops_byname(mp, "ring_mp_mc", nullptr);
  if (rc == 0) rc = memory->populate(mp, n, huge);
  if (rc != 0) {
    rte_mempool_free(mp);
    rte_errno = -rc;
    return nullptr;
  }
  return mp;
}

rte_mempool* MbufPool::create(const Config& config, const char* name, unsigned n, unsigned cache) noexcept {
  const int socket = static_cast<int>(rte_socket_id());
  if (!PoolMemory::wanted(config))
    return pool_ = rte_pktmbuf_pool_create(name, n, cache, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);

  // rte_pktmbuf_pool_create's steps, with the objects in our mapping instead of a memzone.
  rte_pktmbuf_pool_private priv{};
  priv.mbuf_data_room_size = RTE_MBUF_DEFAULT_BUF_SIZE;
  priv.mbuf_priv_size = 0;
  rte_mempool* mp = rte_mempool_create_empty(name, n, sizeof(rte_mbuf) + RTE_MBUF_DEFAULT_BUF_SIZE, cache,
                                             sizeof(rte_pktmbuf_pool_private), socket, RTE_MEMPOOL_F_NO_IOVA_CONTIG);
  if (!mp) return nullptr;
  int rc = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), nullptr);
  if (rc == 0) {
    rte_pktmbuf_pool_init(mp, &priv);
    rc = memory_.populate(mp, n, true);
  }
  if (rc != 0) {
    rte_mempool_free(mp);
    rte_errno = -rc;
    return nullptr;
  }
  rte_mempool_obj_iter(mp, rte_pktmbuf_init, nullptr);
  return pool_ = mp;
}

MbufPool::~MbufPool() {
  rte_mempool_free(pool_);
  // memory_ goes after this body: after the pool.
}

}  // namespace sluice::dataplane
