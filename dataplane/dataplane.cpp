// The data plane's factory and lifecycle (dataplane_impl.h has what it owns and which unit builds
// each part): start() runs the set-up steps in order and launches the lcores; finished(), the
// event drain, stop() and tear-down.
#include "dataplane/dataplane.h"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <chrono>

#include "dataplane/dataplane_impl.h"

namespace sluice::dataplane {

Dataplane::Impl::~Impl() {
  for (unsigned i = 0; i < table.n_ports; ++i)
    if (port_started[i]) {
      rte_eth_dev_stop(table.port_id[i]);
      rte_eth_dev_close(table.port_id[i]);
    }
  for (unsigned i = 0; i < table.n_rx_lcores; ++i) rte_ring_free(table.inbound[i]);
  handoffs.clear();  // gives partial chunks back to their pools
  channels.clear();
  // Workers give their unfinished samples back, and the lanes the chains still in their rings
  // (candidates, pending messages' bytes): the sample pools go last.
  attachment_workers.clear();
  lanes.clear();
  sample_pools.clear();
  for (unsigned i = 0; i < kMaxRxForWorkers; ++i)
    for (unsigned j = 0; j < kMaxWorkers; ++j) {
      rte_ring_free(workers.chunk_ring[i][j]);
      rte_ring_free(workers.result_ring[j][i]);
    }
  chunk_pools.clear();
  for (auto* p : workers.results) rte_mempool_free(p);
  if (worker_lcores)
    for (unsigned j = 0; j < workers.n_workers; ++j) worker_lcores[j].~WorkerLcoreContext();
  rte_free(worker_lcores);
  rte_free(lcores);
  // table.pool goes with mbuf_pool, after this body.
}

bool Dataplane::Impl::start(std::string& error) {
  return setup_ports(error) && setup_workers(error) && wire_pipeline(error) && launch(error);
}

bool Dataplane::Impl::launch(std::string& error) {
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

void Dataplane::request_stop() noexcept {
  Impl& d = *impl_;
  if (d.stop_requested || d.stopped) return;
  d.stop_requested = true;
  d.stop_t0 = std::chrono::steady_clock::now();
  d.stop_deadline = d.stop_t0 + std::chrono::milliseconds(d.config.stop_timeout_ms);
  // A zero deadline: nothing is flushed. Set before quit, so an lcore that sees quit sees it too.
  if (d.config.stop_timeout_ms == 0) {
    d.abort_flush.store(true);
    d.stop_deadline_reached = true;
  }
  d.quit.store(true);
}

bool Dataplane::stop_progress() noexcept {
  Impl& d = *impl_;
  bool all_exited = true;
  for (unsigned i = 0; i < d.table.n_rx_lcores; ++i) all_exited &= d.lcores[i].exited.load(std::memory_order_acquire);
  if (!all_exited && !d.stop_deadline_reached && std::chrono::steady_clock::now() >= d.stop_deadline) {
    d.abort_flush.store(true);  // the lcores stop flushing, the workers stop reading
    d.stop_deadline_reached = true;
  }
  return all_exited;
}

Dataplane::StopReport Dataplane::stop(const RecordFn& fn) noexcept {
  StopReport report;
  if (!impl_ || impl_->stopped) return report;
  request_stop();
  if (impl_->launched) {
    // The lcores report their open flows on the way out; keep their rings moving meanwhile.
    const RecordFn sink = fn ? fn : [](const void*, std::size_t) {};
    for (;;) {
      const bool all_exited = stop_progress();
      if (drain_events(sink) == 0 && all_exited) break;
      if (!all_exited) rte_delay_us_sleep(1000);
    }
    rte_eal_mp_wait_lcore();
    drain_events(sink);
  }
  impl_->stopped = true;
  report.deadline_reached = impl_->stop_deadline_reached;
  report.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - impl_->stop_t0).count();
  return report;
}

std::vector<pipeline::LookupLane*> Dataplane::lookup_lanes() noexcept {
  std::vector<pipeline::LookupLane*> v;
  for (auto& l : impl_->lanes) v.push_back(l.get());
  return v;
}

}  // namespace sluice::dataplane
