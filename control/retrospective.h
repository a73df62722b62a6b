// Retrospective verdicts (DESIGN.md section 1, phase 5; issue 14): a file's verdict can change after
// its message went through. sluiced records where every file was seen (sightings.h,
// sightings_store.h); a heartbeat asks each reputation endpoint what changed since it last asked,
// and for every change of a file this appliance has seen, one `retrospective` event lists every
// message that carried it and one alert tells the administrator (notifier.h sends it on).
//
// The heartbeat (every `retrospective.interval_s`, once at start-up in every mode, and on demand):
//   - sluice kind: GET /api/v1/dispositions/changes?since=CURSOR&limit=1000, page after page while
//     `more` (at most `max_changes` entries per heartbeat), from the stored cursor, or from the
//     feed's beginning when none is stored. A cursor the endpoint refuses (its store was recreated)
//     is dropped and the feed read again from its beginning (reports are unique per change, so
//     nothing is reported twice).
//   - virustotal kind (no feed): a re-look-up of up to `recheck_budget` hashes per heartbeat, seen
//     within `recheck_days` and last known unknown or clean (those never re-looked-up first); an
//     answer that differs from what was known is a change.
// A page's changes are written to the store with the cursor past them in one transaction (the
// cursor is never ahead of what is recorded): an endpoint down during a heartbeat loses nothing,
// and the next heartbeat continues where the last recorded page ended.
//
// A change replaces the verdict cache's entry of the file, and puts one in for a file reported (so
// its next message is decided at once); other files are left to their look-ups. A report is made for a file this
// appliance has seen in a message whose verdict then differs from the new disposition (a message
// that already had the new verdict needs no second look). Reports are kept in the store with
// `delivered` unset; their events and alerts go out, then they are marked delivered; reports a
// crash left undelivered go out at the next start.
//
// Threads: everything here runs on the service loop; the store (not thread-safe) is used by one
// pool job at a time (a serial queue of jobs; sightings batches join it), never on the loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/alert.h"
#include "control/config.h"
#include "control/service_loop.h"
#include "control/sightings.h"
#include "control/sightings_store.h"

namespace sluice::pipeline {
class VerdictCache;
}

namespace sluice::control {

namespace http {
class Pool;
}

struct RetrospectiveStats {
  uint64_t heartbeats = 0;          // started
  uint64_t completed = 0;           // ended (every endpoint answered or failed)
  uint64_t last_ms = 0;             // how long the last one that ended took
  uint64_t changes = 0;             // feed entries and re-look-up changes read
  uint64_t rechecks = 0;            // re-look-ups answered
  uint64_t reports = 0;             // retrospective events written
  uint64_t cache_updates = 0;
  uint64_t endpoint_errors = 0;     // a feed page or re-look-up that failed (the next heartbeat retries)
  uint64_t cursor_resets = 0;       // cursors an endpoint refused
  uint64_t store_errors = 0;
};

class Retrospective {
 public:
  struct Output {
    // Writes an event line (type, body) in order with the others.
    std::function<void(const std::string& type, Json body)> event;
    // Raises an alert (event, notifications).
    std::function<void(const Alert&)> alert;
    // Calls fn on the loop once every line given so far is written (or at once when nothing is
    // pending).
    std::function<void(std::function<void()> fn)> after_written;
  };

  // Opens the sightings store (with a state directory) and reads the stored cursors. What the
  // operator must know (a store refused) is in take_alerts().
  Retrospective(const Config& config, ServiceLoop& loop, pipeline::VerdictCache* cache, Output out);
  ~Retrospective();
  Retrospective(const Retrospective&) = delete;
  Retrospective& operator=(const Retrospective&) = delete;

  std::vector<Alert> take_alerts() { return std::move(startup_alerts_); }
  bool recording() const noexcept { return store_ != nullptr; }

  // A record from the lcores, as the loop renders it.
  void on_record(const void* record, std::size_t size);
  // This appliance's own analysis of a file ended (an `analysis` `complete` event): the messages
  // that waited for it were decided with that verdict, so a later change to the same disposition
  // (the cloud's feed records the analysis result too) does not report them.
  void learned(const std::string& sha256, const std::string& disposition);
  // Starts the timers and the start-up heartbeat (and sends the reports a crash left undelivered).
  void start();
  // A heartbeat now (SIGUSR1, later the management API); one that runs already is followed by
  // another when it ends.
  void heartbeat_now();
  // Runs `job` on the store in its serial queue (after the sightings waiting), on the pool: the
  // management API's queries. false (job dropped) without a store or once stopping.
  bool read_store(std::function<void(SightingsStore&)> job);
  bool heartbeat_running() const noexcept { return running_; }
  // Reputation endpoints added or removed at run time (the management API): an added one is asked
  // from the next heartbeat on (a `sluice` feed from its stored cursor, read first in the store's
  // queue); a removed one is asked no more (what it answers meanwhile is still taken).
  void add_endpoint(const EndpointConfig& c);
  void remove_endpoint(const std::string& name);
  // The start-up heartbeat has ended (each endpoint answered or failed); a replay waits for it.
  bool startup_done() const noexcept { return startup_done_; }
  // Nothing of a heartbeat is open: no request, no store job of one.
  bool idle() const noexcept;
  // The `sightings` and `retrospective` objects of the `stats` event.
  Json sightings_stats() const;
  Json stats() const;
  // Shutdown: no store job goes to the pool any more (call before draining it); then, once it
  // drained, finish() runs what is queued and writes every sighting still waiting, synchronously.
  // Requests in flight are abandoned (their cursors stay).
  void stop_jobs() noexcept { stopping_ = true; }
  void finish();

 private:
  struct Endpoint;
  using StoreJob = std::function<void(SightingsStore&)>;
  void store_job(StoreJob job);
  void queue_sightings();
  int64_t pending_since() const;
  void run_next_job();
  void pump_sightings(bool prune);
  void begin_heartbeat();
  void fetch_feed(Endpoint& e);
  void feed_page(Endpoint& e, unsigned status, const std::string& body);
  void recheck(Endpoint& e);
  void endpoint_done(Endpoint& e, bool ok, const std::string& why = "");
  bool asked(const Endpoint& e) const noexcept;
  void recorded(bool ok, const std::string& error, std::vector<StoredReport> inserted);
  void deliver(std::vector<StoredReport> reports);
  void update_cache(const std::string& sha256, const std::string& disposition, const std::string& threat_name,
                    bool seen);

  const Config& config_;
  ServiceLoop& loop_;
  pipeline::VerdictCache* cache_;
  Output out_;
  std::unique_ptr<SightingsStore> store_;
  SightingCollector collector_;
  std::vector<Alert> startup_alerts_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;

  // The store's serial queue: at most one job on the pool; sightings wait in `sightings_` and go
  // in the next job, so a slow disk makes bigger transactions, not a longer queue.
  std::deque<StoreJob> jobs_;
  bool job_running_ = false, stopping_ = false;
  std::vector<SightedMessage> sightings_;
  bool prune_due_ = false;
  uint64_t sightings_dropped_ = 0, sightings_failed_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  bool running_ = false, again_ = false, startup_done_ = false;
  unsigned open_ = 0;  // endpoints whose part of the heartbeat has not ended
  std::chrono::steady_clock::time_point began_{};
  RetrospectiveStats stats_;
};

}  // namespace sluice::control
