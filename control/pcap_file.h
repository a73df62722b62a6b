// Small facts about classic pcap files that DPDK's pcap PMD does not carry: the link type.
// The PMD writes every output as Ethernet (DLT_EN10MB); a replay of a capture with another link
// type (BSD loopback, raw IP) gets its output header corrected so readers decode it as the input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace sluice::control {

// Link type of a classic pcap file (either byte order, micro- or nanosecond); nullopt for pcapng
// or anything unreadable.
std::optional<uint32_t> pcap_link_type(const std::string& path);

// Rewrites the link type field of a classic pcap file's header in place. False on failure.
bool set_pcap_link_type(const std::string& path, uint32_t link_type);

}  // namespace sluice::control
