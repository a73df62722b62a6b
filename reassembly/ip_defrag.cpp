#include "reassembly/ip_defrag.h"

#include <algorithm>
#include <cstring>

namespace sluice::reassembly {

IpDefrag::IpDefrag(std::size_t max_datagrams, uint32_t timeout_s, std::size_t max_per_source)
    : slots_(max_datagrams),
      max_per_source_(std::clamp<std::size_t>(max_per_source, 1, std::max<std::size_t>(1, max_datagrams))),
      timeout_us_(int64_t{timeout_s} * 1000000) {
  memory_ = new uint8_t[std::max<std::size_t>(1, max_datagrams) * (kHeadroom + kMaxPayload)];
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    slots_[i] = Slot{};
    slots_[i].buf = memory_ + i * (kHeadroom + kMaxPayload);
  }
}

IpDefrag::~IpDefrag() { delete[] memory_; }

IpDefrag::Slot* IpDefrag::find_or_claim(const PacketInfo& info, int64_t now_us) noexcept {
  const std::size_t alen = info.ip_version == 6 ? 16 : 4;
  Slot* free_slot = nullptr;
  Slot* oldest = nullptr;         // of all sets
  Slot* oldest_of_src = nullptr;  // of this source's
  std::size_t of_src = 0;
  for (Slot& s : slots_) {
    if (!s.used) {
      if (!free_slot) free_slot = &s;
      continue;
    }
    const bool same_src = s.version == info.ip_version && std::memcmp(s.src, info.src_addr, alen) == 0;
    if (same_src && s.id == info.fragment_id && s.proto == info.l4_proto && std::memcmp(s.dst, info.dst_addr, alen) == 0)
      return &s;
    if (!oldest || s.started_us < oldest->started_us) oldest = &s;
    if (same_src) {
      ++of_src;
      if (!oldest_of_src || s.started_us < oldest_of_src->started_us) oldest_of_src = &s;
    }
  }
  Slot* claim = of_src >= max_per_source_ ? oldest_of_src : free_slot ? free_slot : oldest;
  if (!claim) return nullptr;  // no slots at all
  if (claim->used) ++stats_.evicted;
  Slot& s = *claim;
  s.used = true;
  s.version = info.ip_version;
  s.proto = info.l4_proto;
  s.id = info.fragment_id;
  std::memcpy(s.src, info.src_addr, 16);
  std::memcpy(s.dst, info.dst_addr, 16);
  s.started_us = now_us;
  s.total = 0;
  s.have_last = s.have_first = false;
  s.header_len = 0;
  s.n_ranges = 0;
  return &s;
}

// Copies the bytes of [begin, begin+len) not yet held; held bytes win and must match.
bool IpDefrag::store(Slot& s, uint32_t begin, const uint8_t* data, uint32_t len) noexcept {
  const uint32_t end = begin + len;
  uint8_t* payload = s.buf + kHeadroom;
  for (uint32_t i = 0; i < s.n_ranges; ++i) {
    const Range& r = s.ranges[i];
    const uint32_t lo = std::max(begin, r.begin), hi = std::min(end, r.end);
    if (lo < hi && std::memcmp(payload + lo, data + (lo - begin), hi - lo) != 0) return false;
  }
  // Copy the whole fragment under the held bytes, then restore nothing: held bytes are equal.
  std::memcpy(payload + begin, data, len);
  // Merge [begin, end) into the sorted, disjoint range list.
  Range merged{begin, end};
  Range next[kMaxPieces];
  uint32_t n = 0;
  bool placed = false;
  for (uint32_t i = 0; i < s.n_ranges; ++i) {
    const Range& r = s.ranges[i];
    if (r.end < merged.begin) {
      next[n++] = r;
    } else if (r.begin > merged.end) {
      if (!placed) {
        if (n == kMaxPieces) return false;
        next[n++] = merged;
        placed = true;
      }
      if (n == kMaxPieces) return false;
      next[n++] = r;
    } else {
      merged.begin = std::min(merged.begin, r.begin);
      merged.end = std::max(merged.end, r.end);
    }
  }
  if (!placed) {
    if (n == kMaxPieces) return false;
    next[n++] = merged;
  }
  std::memcpy(s.ranges, next, n * sizeof(Range));
  s.n_ranges = n;
  return true;
}

DefragResult IpDefrag::add(const PacketInfo& info, const uint8_t* frame, int64_t now_us, const uint8_t*& out,
                           std::size_t& out_len) noexcept {
  if (info.ip_end < info.fragment_payload) {
    ++stats_.malformed;
    return DefragResult::dropped;
  }
  const uint32_t begin = info.fragment_offset;
  const uint32_t len = info.ip_end - info.fragment_payload;
  // RFC 791: every fragment but the last carries a multiple of 8 bytes.
  if (begin + len > kMaxPayload || (info.more_fragments && len % 8 != 0)) {
    ++stats_.malformed;
    return DefragResult::dropped;
  }
  Slot* s = find_or_claim(info, now_us);
  if (!s) {
    ++stats_.no_slot;
    return DefragResult::dropped;
  }
  if (!info.more_fragments) {
    if (s->have_last && s->total != begin + len) {
      ++stats_.conflicts;
      s->used = false;
      return DefragResult::dropped;
    }
    s->have_last = true;
    s->total = begin + len;
  }
  if (!store(*s, begin, frame + info.fragment_payload, len)) {
    ++stats_.conflicts;
    s->used = false;
    return DefragResult::dropped;
  }
  if (begin == 0 && !s->have_first) {
    // Rebuild a plain header in front of the payload: the first fragment's IPv4 header with the
    // fragment fields cleared, or a fixed IPv6 header whose next header is the fragment's.
    s->have_first = true;
    const uint8_t* ip = frame + info.l3_offset;
    uint8_t* payload = s->buf + kHeadroom;
    if (info.ip_version == 4) {
      const std::size_t ihl = info.fragment_payload - info.l3_offset;
      s->header_len = static_cast<uint8_t>(ihl);
      std::memcpy(payload - ihl, ip, ihl);
    } else {
      s->header_len = 40;
      std::memcpy(payload - 40, ip, 40);
      payload[-40 + 6] = s->proto;
    }
  }
  if (!s->have_first || !s->have_last || s->n_ranges != 1 || s->ranges[0].begin != 0 || s->ranges[0].end != s->total)
    return DefragResult::need_more;

  uint8_t* hdr = s->buf + kHeadroom - s->header_len;
  if (s->version == 4) {
    const uint32_t total = s->header_len + s->total;
    hdr[2] = static_cast<uint8_t>(total >> 8);
    hdr[3] = static_cast<uint8_t>(total);
    hdr[6] = hdr[7] = 0;  // no more fragments, offset 0 (checksum not recomputed: not checked)
  } else {
    hdr[4] = static_cast<uint8_t>(s->total >> 8);
    hdr[5] = static_cast<uint8_t>(s->total);
  }
  out = hdr;
  out_len = s->header_len + s->total;
  s->used = false;  // the buffer stays valid until the slot is claimed again (next add)
  ++stats_.completed;
  return DefragResult::complete;
}

void IpDefrag::expire(int64_t now_us) noexcept {
  for (Slot& s : slots_)
    if (s.used && s.started_us + timeout_us_ <= now_us) {
      s.used = false;
      ++stats_.timeouts;
    }
}

}  // namespace sluice::reassembly
