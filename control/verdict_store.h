// The verdict cache on disk (`reputation.cache.path`, by default `verdict-cache.sqlite` in
// `state.dir`), so that a restart does not look everything up again. An SQLite file with one table
// of entries (SHA-256, reputation, threat name and score, upload_wanted, expiry in wall-clock
// milliseconds) and a format version. Loaded once at start (entries already expired are dropped);
// written whole by the control plane's pool every `reputation.cache.save_interval_s` and at exit,
// to a temporary file renamed over the old one, so a crash mid-write leaves the previous file.
//
// A file that is not a store of this format (not SQLite, another schema, a newer version, corrupt
// pages) is refused with one line naming the file and what is wrong; sluiced then starts with an
// empty cache and keeps the file aside as PATH.corrupt for inspection.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/verdict_cache.h"

namespace sluice::control {

struct StoredVerdict {
  std::array<uint8_t, 32> sha256;
  records::FileVerdict verdict;
  int64_t expires_ms;
};

struct StoreLoad {
  std::size_t loaded = 0;   // entries put into the cache
  std::size_t expired = 0;  // entries dropped: expired by now
  bool corrupt = false;     // the file was refused (and moved aside)
  std::string error;        // one line when something went wrong (corrupt or unreadable)
};

// A missing file is an empty store (no error). `max_ttl_s[r]` (by records::Reputation; 0: no
// bound) caps what a loaded entry keeps of its life: a TTL lowered since the file was written
// applies to the entries in it.
StoreLoad load_verdict_store(const std::string& path, pipeline::VerdictCache& cache, int64_t now_ms,
                             const std::array<unsigned, 4>& max_ttl_s = {});

// The cache's live entries, read on the writer's thread (the control loop).
std::vector<StoredVerdict> snapshot_verdicts(const pipeline::VerdictCache& cache, int64_t now_ms);

// Writes `entries` as the whole store (any thread: touches only the file). "" or one error line.
std::string save_verdict_store(const std::string& path, const std::vector<StoredVerdict>& entries);

}  // namespace sluice::control
