// Symmetric RSS: a Toeplitz key under which (src, dst) and (dst, src) hash alike, so a NIC's
// receive-side scaling puts both directions of a TCP connection on the same queue and lcore.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace sluice::hw {

// The key repeats the 16-bit pattern 0x6d5a (Woo and Park, "Scalable TCP Session Monitoring with
// Symmetric Receive-side Scaling", 2012). Any length works; NICs want 40 or 52 bytes.
std::vector<uint8_t> symmetric_rss_key(std::size_t len);

// Reference Toeplitz hash, the function NICs compute in hardware: used by tests and by the
// hardware-profile checks to show that a key is symmetric. `key` must be at least
// input.size() + 4 bytes long.
uint32_t toeplitz_hash(std::span<const uint8_t> key, std::span<const uint8_t> input) noexcept;

}  // namespace sluice::hw
