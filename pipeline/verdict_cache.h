// The verdict cache (DESIGN.md section 1, step 2): SHA-256 -> what the reputation cloud said of
// it (records::FileVerdict) until an expiry time. One writer, the control plane (look-up answers,
// the store loaded at start); any number of readers, the RX lcores, without locks: each slot is
// a sequence lock (the writer makes the sequence odd, writes, makes it even again; a reader that
// saw it odd or changed reads again), and every word is a relaxed atomic, so a reader never
// blocks the writer or another reader and never sees a half-written entry.
//
// Layout: buckets of 8 slots of 128 bytes (two cache lines each) behind one cache line of tags (each
// slot's first 8 hash bytes: a reader looks at the tags first, so a miss reads one line per
// bucket). A hash may live in two buckets (from its first and its second 8 bytes, mixed with a
// per-process key, so that files ground for colliding prefixes do not pick the bucket); an entry
// goes where there is room, and when both are full the entry that expires first makes room
// (`evictions`).
// Expiry is wall-clock time in milliseconds since 1970 (a TTL outlives a restart and a replayed
// capture's packet times do not matter); an expired entry is a miss and its slot is free.
//
// Memory: `capacity` entries, rounded up to a whole number of buckets, 136 bytes each (slot and tag),
// allocated zeroed at construction (pages are touched as entries arrive).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "records/verdict_records.h"

namespace sluice::pipeline {

class VerdictCache {
 public:
  static constexpr std::size_t kBucketSlots = 8;

  explicit VerdictCache(std::size_t capacity);
  ~VerdictCache();
  VerdictCache(const VerdictCache&) = delete;
  VerdictCache& operator=(const VerdictCache&) = delete;

  // Any thread. True, with `out` filled (source kSourceCache), when the hash has an entry that
  // expires after `now_ms`.
  bool lookup(const uint8_t* sha256, int64_t now_ms, records::FileVerdict& out) const noexcept;

  // Any thread: like lookup(), and the entry's expiry.
  bool entry(const uint8_t* sha256, int64_t now_ms, records::FileVerdict& out, int64_t& expires_ms) const noexcept;

  // The writer thread only. An entry of the same hash is replaced; else the hash takes an empty
  // slot of its bucket, or one expired by `now_ms`, or evicts the entry that expires first.
  // A local override (a verdict whose source is records::kSourceOverride, written by the
  // management API) is replaced only by another override, never evicted, and read back with that
  // source; erase() removes it. `kept`: nothing written (the hash has an override, or both its
  // buckets hold overrides only).
  enum class Put : uint8_t { inserted, updated, evicted, kept };
  Put put(const uint8_t* sha256, const records::FileVerdict& v, int64_t expires_ms, int64_t now_ms) noexcept;
  bool erase(const uint8_t* sha256) noexcept;
  // Calls fn(sha256, verdict, expires_ms) for every entry that expires after `now_ms`.
  template <typename Fn>
  void for_each(int64_t now_ms, Fn&& fn) const {
    for (std::size_t i = 0; i < slots_n_; ++i) {
      uint8_t sha[32];
      records::FileVerdict v;
      int64_t expires;
      if (read_slot(i, sha, v, expires) && expires > now_ms) fn(static_cast<const uint8_t*>(sha), v, expires);
    }
  }
  // Entries held (expired ones included until their slot is reused), and evictions by put().
  std::size_t size() const noexcept { return used_; }
  std::size_t capacity() const noexcept { return slots_n_; }
  uint64_t evictions() const noexcept { return evictions_; }

 private:
  struct Slot;
  struct Bucket;
  Slot& slot(std::size_t i) const noexcept;
  uint64_t& tag(std::size_t i) const noexcept;
  std::size_t bucket_of(const uint8_t* sha256, unsigned choice) const noexcept;
  std::size_t find(const uint8_t* sha256) const noexcept;  // writer: the slot holding it, or SIZE_MAX
  // A consistent copy of slot i; false when empty.
  bool read_slot(std::size_t i, uint8_t* sha, records::FileVerdict& v, int64_t& expires) const noexcept;
  void write_slot(std::size_t i, const uint8_t* sha, const records::FileVerdict* v, int64_t expires) noexcept;

  std::size_t buckets_;
  std::size_t slots_n_;
  Bucket* buckets_mem_;
  uint64_t key_;
  std::size_t used_ = 0;
  uint64_t evictions_ = 0;
};

}  // namespace sluice::pipeline
