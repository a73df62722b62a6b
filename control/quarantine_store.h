// The File Analysis quarantine on disk (DESIGN.md section 1 step 4, section 6 "What quarantine
// means"): the exact bytes of each message kept back while its files are analysed, with what an
// operator needs to judge it (flow, envelope, subject, the files that put it there, reasons) and
// its state: `held`, then `released` (with the action, who and why) or `deleted`. Releasing only
// records the decision; sending the stored copy anywhere is the caller's business.
//
// On disk (a directory, STATE/quarantine): per entry ID, `ID.eml` (the message bytes, exactly as
// given) and `ID.meta` (a header line with the body's length and SHA-256, then the metadata as
// JSON, which records the message's length and SHA-256). `ID.meta` is the commit record: put()
// returns success only once both files are written, fsynced, renamed into place and the directory
// fsynced. open() loads every entry whose metadata is whole and whose message file has the
// recorded length and SHA-256; anything else is reported with one line and counted, never loaded:
// the remains of a write a crash interrupted are removed (they never were an entry), torn or
// corrupt files are moved to `corrupt/` for inspection. control/NOTES.md, "File analysis stores".
//
// Threads: none inside, and no lock. The store is not thread-safe: the caller makes every call,
// reads included, one at a time (sluiced runs them as ServiceLoop::submit_ordered jobs, one strand).
// Every call that changes the store blocks on disk (fsync): never call it on the service loop.
// Times are wall-clock milliseconds since the epoch, given by the caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::control {

enum class QuarantineState : uint8_t { held, released, deleted };
const char* quarantine_state_name(QuarantineState s) noexcept;  // "held", "released", "deleted"
std::optional<QuarantineState> parse_quarantine_state(std::string_view name) noexcept;

// What put() does when a new entry would pass max_messages or max_mb.
enum class QuarantineOverflow : uint8_t {
  refuse,        // the new entry is refused (QuarantineError::full); nothing stored is touched
  evict_oldest,  // the oldest entries are removed until it fits: deleted ones (metadata only)
                 // first, then released ones, and held ones only when nothing else is left;
                 // each returned in QuarantinePut::evicted so the caller can act on held ones
};
const char* quarantine_overflow_name(QuarantineOverflow o) noexcept;  // "refuse", "evict_oldest"

// The defaults are written here once; the configuration reads them from QuarantineLimits{}.
struct QuarantineLimits {
  // expire() removes entries stored this many days ago or more, whatever their state (1..3650).
  unsigned retention_days = 14;
  // Bytes on disk (message and metadata files) in MiB (1..1048576); a message larger than this
  // alone is refused (QuarantineError::too_large) whatever `overflow` says.
  uint64_t max_mb = 1024;
  // Entries of any state, deleted ones included (their metadata is kept until removed) (1..10^7).
  uint64_t max_messages = 10000;
  // Released copies are only worth their retention, so by default they make room for new ones.
  QuarantineOverflow overflow = QuarantineOverflow::evict_oldest;
};

// A file that put the message in the quarantine.
struct QuarantinedFile {
  std::string filename;
  std::string sha256;      // 64 hex digits (stored lower case)
  std::string reputation;  // as the reputation step answered: "unknown"...
  std::string pending;     // why the message waits on it: "analysis_pending", "upload_queued"...
};

struct QuarantineEntry {
  std::string id;               // set by put(): "20261128-101500-123-9f3a61c2", the stored time
                                // (UTC, ms) then 32 random bits: unique, printable, sorts by age
  int64_t received_ms = 0;      // when the message was received (the packet's time in replay)
  int64_t stored_ms = 0;        // set by put() (its now_ms): retention and "oldest" count from it
  std::string message_sha256;   // 64 hex digits: put() refuses bytes whose SHA-256 differs
  uint64_t size = 0;            // set by put(): the message's length
  // Flow identity, as events name it (the client is src, the server dest).
  uint64_t flow_id = 0;
  uint64_t transaction = 0;     // the message's index in its session
  std::string client_ip;
  uint16_t client_port = 0;
  std::string server_ip;
  uint16_t server_port = 0;
  // Envelope and headers.
  std::string helo;
  std::string mail_from;
  std::vector<std::string> rcpt_to;
  std::string subject;
  std::string message_id;
  std::vector<QuarantinedFile> files;
  std::vector<std::string> reasons;
  // State: put() stores `held` whatever is given; release() and delete_entry() set the rest.
  QuarantineState state = QuarantineState::held;
  std::string action;           // released: the release action; deleted: "delete"
  std::string by;               // who decided: "analysis", "expiry", an operator
  std::string why;
  int64_t changed_ms = 0;       // when it was released or deleted
};
// Strings are stored as UTF-8: bytes that are not valid UTF-8 come back as U+FFFD, as in events.

enum class QuarantineError : uint8_t {
  none,
  invalid,      // bad argument: SHA-256 of the bytes differs, malformed hex, empty action...
  not_found,    // no entry with this id
  wrong_state,  // release of an entry not held, delete of a deleted one, read of a deleted one
  full,         // overflow `refuse` and the entry does not fit
  too_large,    // the message alone is larger than max_mb, or its metadata larger than 1 MiB
  io,           // a disk operation failed (the message names it and the errno text)
  corrupt,      // read or export found the message file changed since it was stored
};
const char* quarantine_error_name(QuarantineError e) noexcept;

struct QuarantineResult {
  QuarantineError error = QuarantineError::none;
  std::string message;  // one line when error != none
  bool ok() const noexcept { return error == QuarantineError::none; }
};

struct QuarantinePut : QuarantineResult {
  std::string id;                        // the new entry's id on success
  std::vector<QuarantineEntry> evicted;  // removed to make room (evict_oldest), oldest first
};

// list(): filters combine with AND; entries in id order (= stored order), oldest first unless
// newest_first. Paging by cursor: pass the previous page's `next` as `after`.
struct QuarantineQuery {
  std::optional<QuarantineState> state;
  int64_t since_ms = 0;       // stored_ms >= since_ms
  std::string sender;         // mail_from contains this, ASCII case-insensitive ("" any)
  std::string file_sha256;    // one of its files has this SHA-256, any case ("" any)
  std::string after;          // only ids after this one in the listing's order ("" from the start)
  std::size_t limit = 100;    // page size, 1..10000 (0 is taken as 1, more as 10000)
  bool newest_first = false;
};

struct QuarantinePage {
  std::vector<QuarantineEntry> entries;
  std::string next;           // "" when this page is the last
  std::size_t matching = 0;   // entries matching the filters, on every page (`after` ignored)
};

struct QuarantineStats {
  // Now.
  uint64_t held = 0, released = 0, deleted = 0;
  uint64_t bytes = 0;             // message and metadata files
  // Found by open().
  uint64_t loaded = 0;            // entries loaded whole
  uint64_t interrupted = 0;       // writes a crash interrupted: temporary files and uncommitted
                                  // halves removed; an entry keeps its state before the write
  uint64_t finished = 0;          // removals and deletions a crash interrupted, completed
  uint64_t missing_message = 0;   // metadata whose message file is missing
  uint64_t extra_message = 0;     // message file without metadata
  uint64_t bad_message = 0;       // message file whose length or SHA-256 is not the recorded one
  uint64_t bad_metadata = 0;      // metadata torn or corrupt (length, checksum, fields)
  uint64_t unknown_files = 0;     // names the store does not write: left alone
  uint64_t moved_aside = 0;       // files moved to corrupt/
  // Since open().
  uint64_t stored = 0;
  uint64_t refused_invalid = 0, refused_full = 0, refused_too_large = 0;
  uint64_t write_errors = 0;      // io errors of any call
  uint64_t evicted = 0, evicted_held = 0;  // evicted_held: also counted in evicted
  uint64_t expired = 0, expired_held = 0;  // expired_held: also counted in expired
  uint64_t releases = 0, deletes = 0, exports = 0;
  uint64_t read_corrupt = 0;      // read() or export found the bytes changed since open
};

class QuarantineStore;

struct QuarantineOpen {
  std::unique_ptr<QuarantineStore> store;  // empty only when the directory cannot be used
  std::string error;                       // then one line
  std::vector<std::string> problems;       // one line per problem found and what was done about
                                           // it (at most 100, then one line with how many more)
};

class QuarantineStore {
 public:
  // Creates `dir` if missing (0750), loads and verifies every entry (reads every message file to
  // check its SHA-256: about a second per GiB). Invalid limits are an error.
  static QuarantineOpen open(const std::string& dir, const QuarantineLimits& limits = {});
  ~QuarantineStore();
  QuarantineStore(const QuarantineStore&) = delete;
  QuarantineStore& operator=(const QuarantineStore&) = delete;

  // Stores `message` with `entry`'s metadata as a new held entry; durable when it returns ok.
  QuarantinePut put(const QuarantineEntry& entry, std::string_view message, int64_t now_ms);

  QuarantinePage list(const QuarantineQuery& query) const;
  std::optional<QuarantineEntry> show(const std::string& id) const;
  // The message bytes, checked against the recorded length and SHA-256 (corrupt otherwise).
  QuarantineResult read(const std::string& id, std::string& bytes);
  // held -> released: records the action (what the caller does or did with the message), who and
  // why. Sends nothing.
  QuarantineResult release(const std::string& id, const std::string& action, const std::string& by,
                           const std::string& why, int64_t now_ms);
  // held or released -> deleted: the message file is removed, the metadata kept (action "delete",
  // who, why) until retention or eviction removes it.
  QuarantineResult delete_entry(const std::string& id, const std::string& by, const std::string& why,
                                int64_t now_ms);
  // Writes the exact bytes to `path` (through PATH.tmp, fsynced, renamed; an existing file is
  // replaced), after the same check as read().
  QuarantineResult export_eml(const std::string& id, const std::string& path);
  // Removes every entry stored retention_days ago or more (stored_ms + retention <= now_ms), any
  // state, and returns them (oldest first) so the caller can report held ones.
  std::vector<QuarantineEntry> expire(int64_t now_ms);

  const QuarantineStats& stats() const noexcept;
  const QuarantineLimits& limits() const noexcept;
  const std::string& dir() const noexcept;

  // Tests only: called before each disk operation of a write with its name ("eml.write",
  // "meta.fsync", "meta.rename", "dir.fsync"...), so a test can kill the process at any of them.
  static void set_step_hook_for_tests(void (*hook)(const char* step)) noexcept;

 private:
  struct Impl;
  explicit QuarantineStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::control
