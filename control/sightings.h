// Builds sightings (sightings_store.h) from the lcores' event records, on the control thread.
//
// A message's records arrive in no fixed order across types: its `file` records (attachments and
// archive members) and then its `verdict` come when the files are decided; its `smtp` record
// comes when the server answered the end of data (or the connection ended), before or after them.
// The collector keeps each message's parts by (flow_id, transaction, reading) until it has both the
// smtp record (for the other reading of an ambiguous DATA stream: its primary's, kept a while) and
// its first verdict; then the sighting is ready (messages without a hashed file are dropped:
// nothing to look up later). Bounded: at most
// `max_pending` messages wait; beyond, and after `max_wait_ms`, the oldest is taken as it is
// (an smtp record lost, say), counted `incomplete`. flush_all() takes everything (at exit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "control/sightings_store.h"

namespace sluice::control {

struct SightingCollectorStats {
  uint64_t ready = 0;        // messages with files handed out
  uint64_t without_files = 0;  // complete messages with no hashed file (not kept)
  uint64_t incomplete = 0;   // taken before their smtp record or verdict came (age, bound, exit)
  uint64_t pending = 0;      // now
};

// The rule of SightingCollector::learned() for one message (also applied to sightings queued for
// the store).
void adopt_learned(SightedMessage& m, const std::string& sha256, const std::string& disposition);

class SightingCollector {
 public:
  SightingCollector(std::string appliance, std::size_t max_pending = 65536, int64_t max_wait_ms = 600'000)
      : appliance_(std::move(appliance)), max_pending_(max_pending), max_wait_ms_(max_wait_ms) {}

  // One lcore record (records/event_records.h), as the control loop drains them.
  void on_record(const void* record, std::size_t size, int64_t now_ms);
  // The sightings ready now (and those waiting past max_wait_ms), moved out.
  std::vector<SightedMessage> take(int64_t now_ms);
  // Everything, complete or not (shutdown).
  std::vector<SightedMessage> flush_all();
  // This appliance's own analysis of `sha256` ended with `disposition`: the messages that waited
  // for it (verdict `pending`) were decided with it, so their file takes it as its verdict then.
  void learned(const std::string& sha256, const std::string& disposition);

  const SightingCollectorStats& stats() const noexcept { return stats_; }

 private:
  struct Pending {
    SightedMessage message;
    int64_t first_ms = 0;
    bool smtp = false;
    bool verdict = false;  // its first verdict
  };
  struct Key {
    uint64_t flow_id, transaction;
    uint8_t reading;
    bool operator<(const Key& o) const noexcept {
      return flow_id != o.flow_id ? flow_id < o.flow_id
             : transaction != o.transaction ? transaction < o.transaction
                                            : reading < o.reading;
    }
  };
  Pending& at(const Key& k, int64_t now_ms);
  void try_finish(const Key& k);
  void finish(std::map<Key, Pending>::iterator it, bool complete);
  void copy_envelope(const SightedMessage& from, SightedMessage& to) const;

  std::string appliance_;
  std::size_t max_pending_;
  int64_t max_wait_ms_;
  std::map<Key, Pending> pending_;
  std::deque<Key> arrival_;  // pending keys in arrival order (some already taken): the oldest first
  // Envelopes of primary messages already taken, for their other readings' verdicts that come
  // later (the strict reading runs on past its primary's end): the most recent kRecent.
  static constexpr std::size_t kRecent = 4096;
  std::map<std::pair<uint64_t, uint64_t>, SightedMessage> recent_;
  std::vector<std::pair<uint64_t, uint64_t>> recent_order_;
  std::size_t recent_next_ = 0;
  std::vector<SightedMessage> ready_;
  SightingCollectorStats stats_;
};

}  // namespace sluice::control
