#include "control/pcap_file.h"

#include <cstdio>
#include <cstring>

namespace sluice::control {
namespace {

constexpr uint32_t kMagicUs = 0xa1b2c3d4, kMagicNs = 0xa1b23c4d;
constexpr long kLinkTypeOffset = 20;  // pcap file header: magic, version, thiszone, sigfigs, snaplen, linktype

uint32_t swap32(uint32_t v) { return __builtin_bswap32(v); }

// Returns whether the header is readable and whether it is byte-swapped relative to this host.
bool read_header(std::FILE* f, uint32_t& link_type, bool& swapped) {
  unsigned char h[24];
  if (std::fread(h, 1, sizeof(h), f) != sizeof(h)) return false;
  uint32_t magic;
  std::memcpy(&magic, h, 4);
  std::memcpy(&link_type, h + kLinkTypeOffset, 4);
  if (magic == kMagicUs || magic == kMagicNs) {
    swapped = false;
  } else if (swap32(magic) == kMagicUs || swap32(magic) == kMagicNs) {
    swapped = true;
    link_type = swap32(link_type);
  } else {
    return false;
  }
  link_type &= 0x0fffffff;  // upper bits carry FCS information
  return true;
}

}  // namespace

std::optional<uint32_t> pcap_link_type(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return std::nullopt;
  uint32_t lt;
  bool swapped;
  const bool ok = read_header(f, lt, swapped);
  std::fclose(f);
  return ok ? std::optional<uint32_t>(lt) : std::nullopt;
}

bool set_pcap_link_type(const std::string& path, uint32_t link_type) {
  std::FILE* f = std::fopen(path.c_str(), "r+b");
  if (!f) return false;
  uint32_t old;
  bool swapped;
  bool ok = read_header(f, old, swapped);
  if (ok) {
    const uint32_t v = swapped ? swap32(link_type) : link_type;
    ok = std::fseek(f, kLinkTypeOffset, SEEK_SET) == 0 && std::fwrite(&v, 4, 1, f) == 1;
  }
  return std::fclose(f) == 0 && ok;
}

}  // namespace sluice::control
