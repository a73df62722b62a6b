// Dataplane::stats() (dataplane_impl.h): the lcores' plain counters summed per port and per lcore,
// and the devices' own counters.
#include <rte_ethdev.h>

#include "dataplane/dataplane_impl.h"

namespace sluice::dataplane {

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
    rte_eth_link link{};
    if (d.port_started[p] && rte_eth_link_get_nowait(d.table.port_id[p], &link) == 0) {
      ps.link_up = link.link_status == RTE_ETH_LINK_UP;
      ps.link_speed_mbps = link.link_status == RTE_ETH_LINK_UP ? link.link_speed : 0;
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
    ls.idle_sleeps = d.lcores[l].backoff.sleeps;
    ls.events_dropped = d.lcores[l].events->dropped;
    ls.reassembly = d.lcores[l].reasm->stats();
    ls.handoff = d.handoffs[l]->stats();
    ls.hold = d.holds[l]->counters();
    ls.hold_dropped = d.lcores[l].hold_dropped;
    if (d.lcores[l].enforcer) {
      ls.enforcing = true;
      ls.enforce = d.lcores[l].enforcer->counters();
    }
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
    ls.idle_sleeps = d.worker_lcores[j].backoff.sleeps;
    s.lcores.push_back(ls);
  }
  return s;
}

}  // namespace sluice::dataplane
