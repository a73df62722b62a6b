#include "pipeline/verdict_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <random>

namespace sluice::pipeline {
namespace {

// Words of a slot: [0] sequence, [1..4] SHA-256, [5] expiry (0: empty), [6] the packed fields of
// the verdict, [7..14] the threat name, [15] unused (two cache lines in all).
constexpr unsigned kSeq = 0, kSha = 1, kExpires = 5, kMeta = 6, kName = 7, kWords = 16;
constexpr unsigned kNameWords = records::kThreatNameBytes / 8;
static_assert(kName + kNameWords <= kWords);

// A reader that keeps meeting the writer in the same slot gives up and calls it a miss: an lcore
// never spins for long.
constexpr unsigned kMaxReadAttempts = 64;

uint64_t load_word(const uint64_t& w) noexcept {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(w)).load(std::memory_order_relaxed);
}
void store_word(uint64_t& w, uint64_t v) noexcept { std::atomic_ref<uint64_t>(w).store(v, std::memory_order_relaxed); }

uint64_t first_word(const uint8_t* sha) noexcept {
  uint64_t v;
  std::memcpy(&v, sha, 8);
  return v;
}

// Bit 48 of the packed fields: a local override (source kSourceOverride).
constexpr uint64_t kOverrideBit = uint64_t{1} << 48;

uint64_t pack(const records::FileVerdict& v) noexcept {
  return uint64_t{static_cast<uint8_t>(v.reputation)} | uint64_t{v.upload_wanted} << 8 |
         uint64_t{static_cast<uint16_t>(v.threat_score)} << 16 | uint64_t{v.threat_name.len} << 32 |
         (v.source == records::kSourceOverride ? kOverrideBit : 0);
}

void unpack(uint64_t m, records::FileVerdict& v) noexcept {
  v.reputation = static_cast<records::Reputation>(m & 0xff);
  v.error = records::LookupError::none;
  v.source = (m & kOverrideBit) ? records::kSourceOverride : records::kSourceCache;
  v.upload_wanted = (m >> 8) & 1;
  v.threat_score = static_cast<int16_t>(static_cast<uint16_t>(m >> 16));
  const uint16_t len = static_cast<uint16_t>(m >> 32);
  v.threat_name.len = len <= records::kThreatNameBytes ? len : 0;
}

}  // namespace

struct alignas(128) VerdictCache::Slot {
  uint64_t w[kWords];
};

// A bucket: one cache line of tags (each slot's first SHA-256 word, 0 when empty: a hint the reader
// checks before it reads a slot, so a miss costs one line per bucket), then its slots.
struct alignas(128) VerdictCache::Bucket {
  uint64_t tag[kBucketSlots];
  Slot slot[kBucketSlots];
};

VerdictCache::VerdictCache(std::size_t capacity) {
  buckets_ = capacity <= kBucketSlots ? 1 : (capacity + kBucketSlots - 1) / kBucketSlots;
  slots_n_ = buckets_ * kBucketSlots;
  // Anonymous memory is zeroed (every slot empty) and only touched as entries arrive.
  void* p = mmap(nullptr, buckets_ * sizeof(Bucket), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  buckets_mem_ = static_cast<Bucket*>(p);
  std::random_device rd;
  key_ = (uint64_t{rd()} << 32) ^ rd();
}

VerdictCache::~VerdictCache() { munmap(buckets_mem_, buckets_ * sizeof(Bucket)); }

VerdictCache::Slot& VerdictCache::slot(std::size_t i) const noexcept {
  return buckets_mem_[i / kBucketSlots].slot[i % kBucketSlots];
}

uint64_t& VerdictCache::tag(std::size_t i) const noexcept { return buckets_mem_[i / kBucketSlots].tag[i % kBucketSlots]; }

// Two buckets per hash (its first and second 8 bytes, mixed with the key): the entry goes where
// there is room, so the table fills to 95% and more before anything is evicted.
std::size_t VerdictCache::bucket_of(const uint8_t* sha, unsigned choice) const noexcept {
  uint64_t w;
  std::memcpy(&w, sha + 8 * choice, 8);
  uint64_t x = (w ^ key_) * 0x9e3779b97f4a7c15ull;
  x ^= x >> 29;
  return static_cast<std::size_t>((static_cast<unsigned __int128>(x) * buckets_) >> 64);
}

bool VerdictCache::read_slot(std::size_t i, uint8_t* sha, records::FileVerdict& v, int64_t& expires) const noexcept {
  const Slot& s = slot(i);
  uint64_t w[kWords];
  for (unsigned attempt = 0; attempt < kMaxReadAttempts; ++attempt) {
    const uint64_t seq = std::atomic_ref<uint64_t>(const_cast<uint64_t&>(s.w[kSeq])).load(std::memory_order_acquire);
    if (seq & 1) continue;  // the writer is in this slot
    for (unsigned k = 1; k < kWords; ++k) w[k] = load_word(s.w[k]);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (load_word(s.w[kSeq]) != seq) continue;
    expires = static_cast<int64_t>(w[kExpires]);
    if (expires == 0) return false;
    std::memcpy(sha, &w[kSha], 32);
    unpack(w[kMeta], v);
    std::memcpy(v.threat_name.data, &w[kName], records::kThreatNameBytes);
    return true;
  }
  return false;
}

void VerdictCache::write_slot(std::size_t i, const uint8_t* sha, const records::FileVerdict* v, int64_t expires) noexcept {
  Slot& s = slot(i);
  const uint64_t seq = load_word(s.w[kSeq]);
  store_word(s.w[kSeq], seq + 1);
  std::atomic_thread_fence(std::memory_order_release);
  uint64_t w[kWords] = {};
  if (v) {
    std::memcpy(&w[kSha], sha, 32);
    w[kExpires] = static_cast<uint64_t>(expires);
    w[kMeta] = pack(*v);
    std::memcpy(&w[kName], v->threat_name.data, std::min<std::size_t>(v->threat_name.len, records::kThreatNameBytes));
  }
  for (unsigned k = 1; k < kWords; ++k) store_word(s.w[k], w[k]);
  std::atomic_ref<uint64_t>(s.w[kSeq]).store(seq + 2, std::memory_order_release);
  store_word(tag(i), w[kSha]);
}

bool VerdictCache::lookup(const uint8_t* sha, int64_t now_ms, records::FileVerdict& out) const noexcept {
  int64_t expires;
  return entry(sha, now_ms, out, expires);
}

bool VerdictCache::entry(const uint8_t* sha, int64_t now_ms, records::FileVerdict& out, int64_t& expires) const noexcept {
  const uint64_t first = first_word(sha);
  for (unsigned choice = 0; choice < 2; ++choice) {
    const std::size_t base = bucket_of(sha, choice) * kBucketSlots;
    for (std::size_t i = base; i < base + kBucketSlots; ++i) {
      if (load_word(tag(i)) != first) continue;  // the tag line first: a miss reads nothing else
      uint8_t key[32];
      if (read_slot(i, key, out, expires) && std::memcmp(key, sha, 32) == 0) return expires > now_ms;
    }
  }
  return false;
}

std::size_t VerdictCache::find(const uint8_t* sha) const noexcept {
  for (unsigned choice = 0; choice < 2; ++choice) {
    const std::size_t base = bucket_of(sha, choice) * kBucketSlots;
    for (std::size_t i = base; i < base + kBucketSlots; ++i)
      if (slot(i).w[kExpires] != 0 && std::memcmp(&slot(i).w[kSha], sha, 32) == 0) return i;
  }
  return SIZE_MAX;
}

VerdictCache::Put VerdictCache::put(const uint8_t* sha, const records::FileVerdict& v, int64_t expires_ms,
                                    int64_t now_ms) noexcept {
  // The writer is the only one to change slots: it reads its own words plainly.
  const bool override = v.source == records::kSourceOverride;
  if (const std::size_t i = find(sha); i != SIZE_MAX) {
    if ((slot(i).w[kMeta] & kOverrideBit) && !override) return Put::kept;
    write_slot(i, sha, &v, expires_ms);
    return Put::updated;
  }
  // The bucket with more room takes it (two choices keep buckets even); both full: an expired
  // slot, else the entry that expires first.
  std::size_t empty = SIZE_MAX, expired = SIZE_MAX, soonest = SIZE_MAX;
  unsigned most_room = 0;
  int64_t soonest_expiry = INT64_MAX;
  for (unsigned choice = 0; choice < 2; ++choice) {
    const std::size_t base = bucket_of(sha, choice) * kBucketSlots;
    unsigned room = 0;
    std::size_t first_empty = SIZE_MAX;
    for (std::size_t i = base; i < base + kBucketSlots; ++i) {
      const int64_t expires = static_cast<int64_t>(slot(i).w[kExpires]);
      if (expires == 0) {
        if (!room++) first_empty = i;
        continue;
      }
      if (slot(i).w[kMeta] & kOverrideBit) continue;  // never made room for another entry
      if (expires <= now_ms && expired == SIZE_MAX) expired = i;
      if (expires < soonest_expiry) {
        soonest_expiry = expires;
        soonest = i;
      }
    }
    if (room > most_room) {
      most_room = room;
      empty = first_empty;
    }
  }
  if (empty != SIZE_MAX) {
    write_slot(empty, sha, &v, expires_ms);
    ++used_;
    return Put::inserted;
  }
  if (expired != SIZE_MAX) {  // an entry nobody can read any more: not an eviction
    write_slot(expired, sha, &v, expires_ms);
    return Put::inserted;
  }
  if (soonest == SIZE_MAX) return Put::kept;  // both buckets hold overrides only
  write_slot(soonest, sha, &v, expires_ms);
  ++evictions_;
  return Put::evicted;
}

bool VerdictCache::erase(const uint8_t* sha) noexcept {
  const std::size_t i = find(sha);
  if (i == SIZE_MAX) return false;
  write_slot(i, nullptr, nullptr, 0);
  --used_;
  return true;
}

}  // namespace sluice::pipeline
