// The data plane's own view of the configuration: plain values, already validated by control/
// (control/config.cpp declares every key, its range and its default, once). The data plane never
// parses files and never sees YAML.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "reassembly/packet_decode.h"
#include "pipeline/message_inspector.h"
#include "reassembly/reassembler.h"

namespace sluice::dataplane {

enum class Mode : uint8_t { inline_, tap, replay };
enum class Hugepages : uint8_t { automatic, on, off };

struct PortConfig {
  std::string name;    // operator's name, used in stats and events
  std::string device;  // PCI address (0000:03:00.0) or a vdev spec (net_af_packet0,iface=eth1)
  uint16_t rx_desc;
  uint16_t tx_desc;
  bool promiscuous;
  reassembly::LinkType link_type;  // ethernet, except replays of other pcap link types
};

struct EalConfig {
  std::string file_prefix;  // empty: "sluice-<pid>", so two instances never collide
  Hugepages hugepages;
  unsigned memory_mb;       // with --no-huge
  std::vector<std::string> args;  // appended verbatim
};

struct LcoreConfig {
  unsigned main;
  std::vector<unsigned> rx;
  std::vector<unsigned> workers;
};

struct Config {
  Mode mode;
  EalConfig eal;
  std::vector<PortConfig> ports;
  std::vector<std::pair<std::size_t, std::size_t>> pairs;  // indexes into ports
  LcoreConfig lcores;
  unsigned burst;
  unsigned mbufs;
  unsigned mbuf_cache;
  unsigned tx_retries;
  unsigned dispatch_ring_size;
  reassembly::FlowHashMode flow_hash;
  reassembly::ReassemblyConfig reassembly;  // `observers` is set by the data plane
  pipeline::InspectorLimits inspector;      // MIME parsing and attachments of every message
  std::size_t event_ring_bytes;  // per RX lcore
};

const char* mode_name(Mode m) noexcept;

}  // namespace sluice::dataplane
