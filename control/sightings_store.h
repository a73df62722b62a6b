// Sightings (DESIGN.md section 1, phase 5; issue 14): every file and archive member that passed
// this appliance, with the message that carried it, so that when a file's verdict changes later the
// administrator learns exactly where it was seen.
//
// A sighting is one message (flow, transaction, message_sha256, Message-ID, subject, envelope
// sender and every recipient, the header's From, To and Cc, time, this appliance's name, the
// message's verdict and action then) and its files (SHA-256, file name, the path inside its
// archive for a member, size, type, reputation then, and the reading of the DATA stream it came
// from). Messages without a hashed file are not kept.
//
// An SQLite file (STATE/sightings.sqlite) in WAL mode with synchronous=NORMAL: add() writes a whole
// batch in one transaction, so a crash loses at most the batches not yet committed (never part of
// one); a committed batch survives a process crash (a power cut may lose the last ones: the
// sightings are a record for investigation, not a queue). A file that is not a valid store (not
// SQLite, corrupt pages, another schema or format) is refused with one line, moved aside as
// PATH.corrupt, and the store starts empty.
//
// Bounds: prune() drops messages older than `retention_days`, then the oldest messages until the
// live data is within `max_mb` (the file's free pages are reused, not returned to the system).
//
// Retrospective verdicts (retrospective.h) keep their state in the same file, so that a change
// and the cursor past it are written in one transaction: `cursors` (per reputation endpoint, the
// change feed's cursor), `rechecks` (per endpoint and SHA-256, what a re-look-up last answered),
// and `reports` (each retrospective report, its JSON body, and whether its event went out). These
// tables are created at open when missing (a file of the first version gains them).
//
// Threads: none inside, no lock; not thread-safe. sluiced makes every call one at a time as
// jobs of Retrospective's serial store queue on the pool. Times are wall-clock milliseconds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice::control {

struct SightingsLimits {
  unsigned retention_days = 30;  // 1..3650
  unsigned max_mb = 1024;        // 1..1048576: live data of the file
};

struct SightedFile {
  std::string sha256;        // 64 lower-case hex digits
  std::string filename;      // the attachment's name (for a member: the attachment's)
  std::string archive_path;  // a member's path inside its archive; empty for an attachment
  uint64_t size = 0;
  std::string file_type;
  std::string reputation;    // as the file event said it ("" when not looked up)
  std::string threat_name;
  std::string reading;       // "" (the primary reading), "one_message", "split"
};

struct SightedMessage {
  int64_t id = 0;            // the store's (set by add(), given by queries)
  int64_t time_ms = 0;       // when this appliance decided it (wall clock; retention counts from it)
  std::string appliance;
  uint64_t flow_id = 0;
  uint64_t transaction = 0;
  std::string client_ip, server_ip;
  uint16_t client_port = 0, server_port = 0;
  std::string message_sha256, message_id, subject;
  std::string mail_from;
  std::vector<std::string> rcpt_to;
  std::string header_from, header_to, header_cc;
  std::string disposition, action;  // the message's verdict then
  std::vector<SightedFile> files;
};

struct SightingsStats {
  uint64_t messages = 0, files = 0;   // now
  uint64_t added_messages = 0, added_files = 0;
  uint64_t pruned_age = 0, pruned_size = 0;  // messages dropped by prune()
  uint64_t reports = 0;               // retrospective reports recorded by this process
  uint64_t errors = 0;                // calls that failed
  bool corrupt = false;               // open() refused the file (moved aside)
};

// A retrospective report to record (retrospective.h builds them).
struct ReportToRecord {
  std::string key;     // the change, unique per endpoint: "feed:<cursor of its entry>", "recheck:<ms>"
  std::string sha256;
  std::string body;    // JSON
};
struct StoredReport {
  int64_t id = 0;
  int64_t created_ms = 0;
  std::string endpoint, sha256, body;
  bool delivered = false;
};
// What a re-look-up answered for one hash at one endpoint.
struct Recheck {
  std::string sha256;
  std::string disposition;  // "clean", "malicious", "unknown"
  int64_t checked_ms = 0;
};

class SightingsStore;

struct SightingsOpen {
  std::unique_ptr<SightingsStore> store;  // empty only when no store can be created at all
  std::string error;                      // one line: why the file was refused or there is no store
};

class SightingsStore {
 public:
  // Opens or creates the file (its directory must exist).
  static SightingsOpen open(const std::string& path, const SightingsLimits& limits = {});
  ~SightingsStore();
  SightingsStore(const SightingsStore&) = delete;
  SightingsStore& operator=(const SightingsStore&) = delete;

  // One transaction for the whole batch; false (and `error`, one line) when it was not written.
  bool add(const std::vector<SightedMessage>& batch, std::string& error);

  // Queries, newest first, at most `limit` messages each (with all their files and recipients).
  // Every message that carried the file (as an attachment or an archive member).
  std::vector<SightedMessage> where_seen(const std::string& sha256, unsigned limit = 1000) const;
  // What reached a recipient (envelope RCPT TO, case-insensitive), within [from_ms, to_ms).
  std::vector<SightedMessage> for_recipient(const std::string& rcpt, int64_t from_ms, int64_t to_ms,
                                            unsigned limit = 1000) const;
  // Messages with files, within [from_ms, to_ms).
  std::vector<SightedMessage> in_range(int64_t from_ms, int64_t to_ms, unsigned limit = 1000) const;

  // This appliance's analysis of `sha256` ended with `disposition`: every message that waited for
  // it (verdict `pending`) gets it as the file's reputation then (unless one was known). Returns
  // the files changed.
  // Only messages seen since `since_ms` (an older pending one's analysis has aged out).
  uint64_t adopt(const std::string& sha256, const std::string& disposition, int64_t since_ms);

  // Retention, then the size bound; returns the messages dropped. Reports older than the retention
  // go too.
  uint64_t prune(int64_t now_ms);

  // Retrospective state. The change feed's cursor of `endpoint` ("" when none is stored).
  std::string cursor(const std::string& endpoint) const;
  // In one transaction: `reports` (a report whose key this endpoint already recorded is skipped),
  // `rechecks` (upserted), and the endpoint's cursor when `new_cursor` is given (an empty one
  // removes it). The reports inserted are appended to `inserted` (undelivered, with their ids).
  // false (and `error`) when nothing was written.
  bool record(const std::string& endpoint, const std::vector<ReportToRecord>& reports,
              const std::vector<Recheck>& rechecks, const std::string* new_cursor, int64_t now_ms,
              std::vector<StoredReport>& inserted, std::string& error);
  // Reports whose event has not gone out yet (oldest first), and marking them done.
  std::vector<StoredReport> undelivered(unsigned limit = 1000, int64_t after_id = 0) const;
  bool mark_delivered(const std::vector<int64_t>& ids, std::string& error);
  // Reports, newest first, created within [from_ms, to_ms).
  std::vector<StoredReport> reports(int64_t from_ms, int64_t to_ms, unsigned limit = 1000) const;
  // Hashes to look up again at `endpoint`: files seen since `since_ms` whose disposition last known
  // is unknown, clean or none; last known is the newer of the newest sighting's reputation and the
  // endpoint's last re-look-up. Those never re-looked-up first, then the longest ago; each with
  // that disposition ("" for none).
  std::vector<std::pair<std::string, std::string>> recheck_candidates(const std::string& endpoint, int64_t since_ms,
                                                                     unsigned limit) const;

  const SightingsStats& stats() const noexcept;
  const std::string& path() const noexcept;

 private:
  struct Impl;
  explicit SightingsStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::control
