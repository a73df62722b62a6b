#include "dataplane/dataplane.h"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_ring.h>

#include <algorithm>

#include "dataplane/eal.h"
#include "dataplane/lcore_context.h"
#include "dataplane/worker_rings.h"
#include "hw/rss_key.h"
#include "pipeline/message_inspector.h"

namespace sluice::dataplane {

struct Dataplane::Impl {
  Config config;
  PortTable table{};
  RxLcoreContext* lcores = nullptr;  // n_rx_lcores contexts, cache-aligned array
  WorkerTable workers{};
  WorkerLcoreContext* worker_lcores = nullptr;  // workers.n_workers contexts
  std::vector<std::unique_ptr<pipeline::AttachmentWorker>> attachment_workers;
  std::vector<std::unique_ptr<pipeline::ChunkChannel>> channels;  // per RX lcore
  std::vector<std::unique_ptr<pipeline::AttachmentHandoff>> handoffs;  // per RX lcore
  std::unique_ptr<pipeline::MimeBodyScan> body_scan;  // mime.body_scan: hyperscan (compiled here, at start)
  std::vector<std::unique_ptr<pipeline::MimeBodyScan::Scratch>> body_scratch;  // one per RX lcore
  std::unique_ptr<pipeline::MessageInspectorFactory> inspectors;  // shared by the lcores' reassemblers
  std::vector<std::unique_ptr<reassembly::Reassembler>> reassemblers;
  std::vector<std::unique_ptr<EventRing>> rings;
  std::vector<std::unique_ptr<RingEventOutput>> outputs;
  std::vector<std::unique_ptr<uint8_t[]>> scratch;
  std::vector<std::max_align_t> drain_scratch;
  std::unique_ptr<LcoreChannels> control;  // RX lcores, then workers
  std::vector<std::shared_ptr<const LcoreSnapshot>> snapshots;  // one slot per lcore, swapped by it
  std::atomic<bool> quit{false};
  std::atomic<bool> abort_flush{false};
  bool launched = false;
  bool stopped = false;
  bool port_started[kMaxPorts] = {};
  bool symmetric_rss[kMaxPorts] = {};
  bool software_dispatch[kMaxPorts] = {};

  ~Impl() {
    for (unsigned i = 0; i < table.n_ports; ++i)
      if (port_started[i]) {
        rte_eth_dev_stop(table.port_id[i]);
        rte_eth_dev_close(table.port_id[i]);
      }
    for (unsigned i = 0; i < table.n_rx_lcores; ++i) rte_ring_free(table.inbound[i]);
    handoffs.clear();  // gives partial chunks back to their pools
    channels.clear();
    for (unsigned i = 0; i < kMaxRxForWorkers; ++i)
      for (unsigned j = 0; j < kMaxWorkers; ++j) {
        rte_ring_free(workers.chunk_ring[i][j]);
        rte_ring_free(workers.result_ring[j][i]);
      }
    for (auto* p : workers.chunks) rte_mempool_free(p);
    for (auto* p : workers.results) rte_mempool_free(p);
    if (worker_lcores)
      for (unsigned j = 0; j < workers.n_workers; ++j) worker_lcores[j].~WorkerLcoreContext();
    rte_free(worker_lcores);
    rte_free(lcores);
    rte_mempool_free(table.pool);
  }

  bool setup_port(unsigned idx, std::string& error);
  bool setup_workers(std::string& error);
  bool start(std::string& error);
};

namespace {

std::string port_label(const Config& c, unsigned idx) {
  return "ports[" + std::to_string(idx) + "] (" + c.ports[idx].name + ", " + c.ports[idx].device + ")";
}

}  // namespace

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

// Pools and rings between RX lcores and worker lcores (worker_rings.h), and the workers' state.
bool Dataplane::Impl::setup_workers(std::string& error) {
  const Config& c = config;
  const unsigned n_workers = static_cast<unsigned>(c.lcores.workers.size());
  workers.n_rx = table.n_rx_lcores;
  workers.n_workers = n_workers;
  for (unsigned i = 0; i < table.n_rx_lcores; ++i) workers.rx_exited[i] = &lcores[i].exited;
  if (n_workers == 0) return true;
  if (n_workers > kMaxWorkers) {
    error = "lcores.workers: at most " + std::to_string(kMaxWorkers) + " worker lcores";
    return false;
  }
  const int socket = static_cast<int>(rte_socket_id());
  auto fail = [&](const std::string& key, const std::string& what) {
    error = key + ": cannot create " + what + ": " + rte_strerror(rte_errno) + " (lower it or raise eal.memory_mb)";
    return false;
  };
  for (unsigned i = 0; i < table.n_rx_lcores; ++i) {
    const std::string name = "sluice_chunks_" + std::to_string(i);
    workers.chunks[i] = rte_mempool_create(name.c_str(), c.workers.chunk_pool, sizeof(pipeline::WorkChunk),
                                           std::min(64u, c.workers.chunk_pool / 8), 0, nullptr, nullptr, nullptr,
                                           nullptr, socket, 0);
    if (!workers.chunks[i]) return fail("workers.chunk_pool", "a pool of " + std::to_string(c.workers.chunk_pool) + " chunks");
    for (unsigned j = 0; j < n_workers; ++j) {
      const std::string rn = "sluice_chunk_" + std::to_string(i) + "_" + std::to_string(j);
      workers.chunk_ring[i][j] = rte_ring_create(rn.c_str(), c.workers.chunk_ring_size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
      if (!workers.chunk_ring[i][j]) return fail("workers.chunk_ring_size", "ring " + rn);
    }
  }
  worker_lcores = static_cast<WorkerLcoreContext*>(
      rte_zmalloc("sluice_workers", sizeof(WorkerLcoreContext) * n_workers, RTE_CACHE_LINE_SIZE));
  if (!worker_lcores) {
    error = "cannot allocate worker lcore contexts";
    return false;
  }
  for (unsigned j = 0; j < n_workers; ++j) {
    WorkerLcoreContext& w = *new (&worker_lcores[j]) WorkerLcoreContext;
    const std::string name = "sluice_results_" + std::to_string(j);
    workers.results[j] = rte_mempool_create(name.c_str(), c.workers.result_pool, sizeof(pipeline::WorkResult),
                                            std::min(64u, c.workers.result_pool / 8), 0, nullptr, nullptr, nullptr,
                                            nullptr, socket, 0);
    if (!workers.results[j]) return fail("workers.result_pool", "a pool of " + std::to_string(c.workers.result_pool) + " results");
    for (unsigned i = 0; i < table.n_rx_lcores; ++i) {
      const std::string rn = "sluice_result_" + std::to_string(j) + "_" + std::to_string(i);
      workers.result_ring[j][i] = rte_ring_create(rn.c_str(), c.workers.result_ring_size, socket, RING_F_SP_ENQ | RING_F_SC_DEQ);
      if (!workers.result_ring[j][i]) return fail("workers.result_ring_size", "ring " + rn);
    }
    attachment_workers.push_back(std::make_unique<pipeline::AttachmentWorker>(c.workers.limits));
    w.lcore_id = c.lcores.workers[j];
    w.index = j;
    w.table = &workers;
    w.worker = attachment_workers.back().get();
    if (!rte_lcore_is_enabled(w.lcore_id)) {
      error = "lcores.workers: lcore " + std::to_string(w.lcore_id) + " is not enabled in the EAL";
      return false;
    }
  }
  return true;
}

bool Dataplane::Impl::start(std::string& error) {
  const Config& c = config;
  table.n_ports = static_cast<unsigned>(c.ports.size());
  table.n_rx_lcores = static_cast<unsigned>(c.lcores.rx.size());
  table.burst = c.burst;
  table.tx_retries = c.tx_retries;
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

  table.pool = rte_pktmbuf_pool_create("sluice_mbufs", c.mbufs, c.mbuf_cache, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                       static_cast<int>(rte_socket_id()));
  if (!table.pool) {
    error = "dataplane.mbufs: cannot create a pool of " + std::to_string(c.mbufs) + " mbufs: " + rte_strerror(rte_errno) +
            " (lower dataplane.mbufs or raise eal.memory_mb)";
    return false;
  }
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
  for (unsigned i = 0; i < table.n_ports; ++i)
    if (!setup_port(i, error)) return false;
  // Registered by PMDs that deliver RX timestamps; absent otherwise.
  table.timestamp_offset = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, nullptr);
  const int flag_bit = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, nullptr);
  table.timestamp_flag = flag_bit >= 0 ? (uint64_t{1} << flag_bit) : 0;
  if (flag_bit < 0) table.timestamp_offset = -1;

  if (!setup_workers(error)) return false;
  // Per RX lcore: its event ring, its attachment hand-off (to the worker lcores, or to a worker
  // running on the RX lcore itself), its reassembly stage. Allocated here, never on the lcore.
  std::vector<pipeline::AttachmentHandoff*> handoff_of;
  for (unsigned i = 0; i < table.n_rx_lcores; ++i) {
    rings.push_back(std::make_unique<EventRing>(c.event_ring_bytes));
    outputs.push_back(std::make_unique<RingEventOutput>(rings.back().get()));
    if (workers.n_workers) {
      channels.push_back(std::make_unique<RingChannel>(workers, i));
      handoffs.push_back(std::make_unique<pipeline::AttachmentHandoff>(c.workers.handoff, *channels.back(), *outputs.back(), i));
    } else {
      auto local = std::make_unique<pipeline::LocalChannel>(c.workers.limits);
      handoffs.push_back(std::make_unique<pipeline::AttachmentHandoff>(c.workers.handoff, *local, *outputs.back(), i));
      local->set_handler(handoffs.back().get());
      channels.push_back(std::move(local));
    }
    handoff_of.push_back(handoffs.back().get());
  }
  std::vector<pipeline::MimeBodyScan::Scratch*> scratch_of;
  if (c.mime_hyperscan) {
    std::string why;
    body_scan = pipeline::MimeBodyScan::compile(why, /*exact_lines=*/false);
    if (!body_scan) {
      error = "mime.body_scan: " + why;
      return false;
    }
    for (unsigned i = 0; i < table.n_rx_lcores; ++i) {
      body_scratch.push_back(body_scan->make_scratch());
      if (!body_scratch.back()->s) {
        error = "mime.body_scan: cannot allocate Hyperscan scratch";
        return false;
      }
      scratch_of.push_back(body_scratch.back().get());
    }
  }
  inspectors = std::make_unique<pipeline::MessageInspectorFactory>(c.mime, handoff_of, body_scan.get(), scratch_of);
  config.reassembly.observers = inspectors.get();
  for (unsigned i = 0; i < table.n_rx_lcores; ++i) {
    RxLcoreContext& lc = lcores[i];
    lc.handoff = handoffs[i].get();
    reassemblers.push_back(std::make_unique<reassembly::Reassembler>(config.reassembly, *outputs[i], i));
    scratch.push_back(std::make_unique<uint8_t[]>(kScratchBytes));
    lc.event_ring = rings[i].get();
    lc.events = outputs[i].get();
    lc.reasm = reassemblers.back().get();
    lc.scratch = scratch.back().get();
    lc.abort_flush = &abort_flush;
  }

  // Control requests: one port per lcore (64 requests, 64 responses each).
  control = std::make_unique<LcoreChannels>(table.n_rx_lcores + workers.n_workers, 64, 64);
  snapshots.resize(table.n_rx_lcores + workers.n_workers, std::make_shared<const LcoreSnapshot>());
  for (unsigned i = 0; i < table.n_rx_lcores; ++i) {
    lcores[i].control = &control->port(i);
    lcores[i].snapshot = &snapshots[i];
  }
  for (unsigned j = 0; j < workers.n_workers; ++j) {
    worker_lcores[j].control = &control->port(table.n_rx_lcores + j);
    worker_lcores[j].snapshot = &snapshots[table.n_rx_lcores + j];
  }

  // Workers first: they wait for chunks; they end once every RX lcore has exited.
  for (unsigned j = 0; j < workers.n_workers; ++j) {
    if (int rc = rte_eal_remote_launch(worker_lcore_main, &worker_lcores[j], worker_lcores[j].lcore_id); rc != 0) {
      error = "cannot launch worker lcore " + std::to_string(worker_lcores[j].lcore_id) + ": " + rte_strerror(-rc);
      for (unsigned i = 0; i < table.n_rx_lcores; ++i) lcores[i].exited.store(true);
      rte_eal_mp_wait_lcore();
      return false;
    }
  }
  for (unsigned i = 0; i < table.n_rx_lcores; ++i) {
    if (int rc = rte_eal_remote_launch(rx_lcore_main, &lcores[i], lcores[i].lcore_id); rc != 0) {
      error = "cannot launch RX lcore " + std::to_string(lcores[i].lcore_id) + ": " + rte_strerror(-rc);
      quit.store(true);
      for (unsigned k = i; k < table.n_rx_lcores; ++k) lcores[k].exited.store(true);
      rte_eal_mp_wait_lcore();
      return false;
    }
  }
  launched = true;
  return true;
}

Dataplane::Dataplane(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Dataplane::~Dataplane() { stop(); }

std::unique_ptr<Dataplane> Dataplane::start(const Config& config, std::string& error) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  if (!impl->start(error)) return nullptr;
  return std::unique_ptr<Dataplane>(new Dataplane(std::move(impl)));
}

LcoreChannels& Dataplane::channels() noexcept { return *impl_->control; }

bool Dataplane::finished() const noexcept {
  if (!impl_->table.replay) return false;
  for (unsigned i = 0; i < impl_->table.n_rx_lcores; ++i)
    if (!impl_->lcores[i].finished.load(std::memory_order_acquire)) return false;
  return true;
}

std::size_t Dataplane::drain_events(const RecordFn& fn) {
  std::size_t n = 0;
  for (auto& ring : impl_->rings) n += ring->drain(fn, impl_->drain_scratch);
  return n;
}

void Dataplane::stop(const RecordFn& fn) noexcept {
  if (!impl_ || impl_->stopped) return;
  impl_->quit.store(true);
  if (impl_->launched) {
    // The lcores report their open flows on the way out; keep their rings moving meanwhile.
    const RecordFn sink = fn ? fn : [](const void*, std::size_t) {};
    for (;;) {
      bool all_exited = true;
      for (unsigned i = 0; i < impl_->table.n_rx_lcores; ++i)
        all_exited &= impl_->lcores[i].exited.load(std::memory_order_acquire);
      if (drain_events(sink) == 0 && all_exited) break;
      if (!all_exited) rte_delay_us_sleep(1000);
    }
    rte_eal_mp_wait_lcore();
    drain_events(sink);
  }
  impl_->stopped = true;
}

StatsSnapshot Dataplane::stats() const {
  const Impl& d = *impl_;
  StatsSnapshot s;
  for (unsigned p = 0; p < d.table.n_ports; ++p) {
    PortStats ps;
    ps.name = d.config.ports[p].name;
    ps.device = d.config.ports[p].device;
    ps.symmetric_rss = d.symmetric_rss[p];
    ps.software_dispatch = d.software_dispatch[p];
    for (unsigned l = 0; l < d.table.n_rx_lcores; ++l) {
      const PortCounters& c = d.lcores[l].counters[p];
      ps.rx_packets += c.rx_packets;
      ps.rx_bytes += c.rx_bytes;
      ps.tx_packets += c.tx_packets;
      ps.tx_bytes += c.tx_bytes;
      ps.dropped += c.dropped;
    }
    rte_eth_stats es;
    if (d.port_started[p] && rte_eth_stats_get(d.table.port_id[p], &es) == 0) {
      ps.rx_missed = es.imissed;
      ps.rx_errors = es.ierrors;
      ps.tx_errors = es.oerrors;
      ps.rx_nombuf = es.rx_nombuf;
    }
    s.ports.push_back(ps);
  }
  for (unsigned l = 0; l < d.table.n_rx_lcores; ++l) {
    LcoreStats ls;
    ls.lcore = d.lcores[l].lcore_id;
    ls.role = "rx";
    for (unsigned p = 0; p < d.table.n_ports; ++p) {
      const PortCounters& c = d.lcores[l].counters[p];
      ls.rx_packets += c.rx_packets;
      ls.rx_bytes += c.rx_bytes;
      ls.tx_packets += c.tx_packets;
      ls.tx_bytes += c.tx_bytes;
      ls.dropped += c.dropped;
      ls.dispatched_out += c.dispatched_out;
    }
    ls.events = d.lcores[l].events->emitted;
    ls.events_dropped = d.lcores[l].events->dropped;
    ls.reassembly = d.lcores[l].reasm->stats();
    ls.handoff = d.handoffs[l]->stats();
    ls.runs_worker = d.workers.n_workers == 0;
    if (ls.runs_worker)  // the worker runs on this lcore
      ls.worker = static_cast<const pipeline::LocalChannel&>(*d.channels[l]).worker().stats();
    s.lcores.push_back(ls);
  }
  for (unsigned j = 0; j < d.workers.n_workers; ++j) {
    LcoreStats ls;
    ls.lcore = d.worker_lcores[j].lcore_id;
    ls.role = "worker";
    ls.runs_worker = true;
    ls.worker = d.worker_lcores[j].worker->stats();
    ls.results_dropped = d.worker_lcores[j].counters.results_dropped;
    s.lcores.push_back(ls);
  }
  return s;
}

}  // namespace sluice::dataplane
