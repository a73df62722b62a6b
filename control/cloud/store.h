// The persistent store of sluice-cloud: one SQLite database, DIR/cloud.sqlite, in WAL mode. It
// holds what the service knows of each SHA-256 (disposition, threat name and score, when it last
// changed, who set it), the change feed (every change of disposition, in order, for retrospective
// verdicts), the samples submitted for analysis with their states and results, and the number of
// samples each client submitted per UTC day (schema migrations: `kMigrations` in store.cpp;
// NOTES.md lists the layout). The bytes of samples are not here: analyses.h keeps them in files.
//
// One Store is used from one thread (sluice-cloud's event loop). Every method that touches the
// database throws StoreError on failure (disk full, I/O error, corruption found at run time); the
// API answers 503 TransientError. Opening throws StoreError with one line naming the file and why.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::cloud {

using Sha256 = std::array<uint8_t, 32>;

// 64 hex digits, either case. False (and `out` unspecified) for anything else.
bool parse_sha256(std::string_view hex, Sha256& out) noexcept;
// 64 lower-case hex digits.
std::string sha256_hex(const Sha256& h);

enum class Disposition : uint8_t { clean, malicious, unknown };
std::string_view disposition_name(Disposition d) noexcept;
std::optional<Disposition> parse_disposition(std::string_view s) noexcept;

// What the store holds of one SHA-256. `known` false: never told about it (every other field
// then holds its default: unknown, no name, no score, never changed).
struct FileRecord {
  bool known = false;
  Disposition disposition = Disposition::unknown;
  std::optional<std::string> threat_name;
  std::optional<int> threat_score;  // 0-100
  std::optional<int64_t> last_changed;  // Unix seconds
  bool by_analysis = false;  // set by an analysis; false: by the admin API (or never set)
  bool has_sample = false;   // a sample of this SHA-256 exists in any state but fail
};

// A sample's analysis states, as Secure Malware Analytics names them: waiting, preparing, running,
// processing, then succeeded or failed.
enum class SampleState : uint8_t { wait, prep, run, proc, succ, fail };
std::string_view sample_state_name(SampleState s) noexcept;
std::optional<SampleState> parse_sample_state(std::string_view s) noexcept;
inline bool is_finished(SampleState s) noexcept { return s == SampleState::succ || s == SampleState::fail; }

// The outcome of a finished analysis (succ or fail).
struct SampleResult {
  std::optional<int> score;               // 0-100; none when it failed
  std::string verdict;                    // "clean", "malicious" or "failed"
  std::optional<std::string> threat_name;
  std::string report;                     // a JSON object
};

struct Sample {
  std::string id;  // 32 lower-case hex digits
  Sha256 sha256{};
  std::optional<std::string> filename;
  uint64_t size = 0;
  SampleState state = SampleState::wait;
  int64_t submitted_at = 0;  // Unix seconds
  std::optional<int64_t> completed_at;
  std::optional<SampleResult> result;  // when finished
};

// What a finished analysis says of its file's reputation (applied by Store::finish_sample).
struct AnalysisDisposition {
  Disposition disposition = Disposition::clean;
  std::optional<std::string> threat_name;
  int threat_score = 0;
};

// One entry of the change feed. `seq` orders the feed (1, 2, ...; never reused).
struct Change {
  uint64_t seq = 0;
  Sha256 sha256{};
  Disposition old_disposition = Disposition::unknown;
  Disposition new_disposition = Disposition::unknown;
  std::optional<std::string> threat_name;
  int64_t changed_at = 0;  // Unix seconds
};

struct ChangePage {
  std::vector<Change> changes;
  bool more = false;  // entries follow the last one returned
};

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Store {
 public:
  static constexpr const char* kFileName = "cloud.sqlite";

  // Creates DIR if needed, takes an exclusive lock on DIR/cloud.lock (a second sluice-cloud on the
  // same DIR is refused), opens or creates DIR/cloud.sqlite, checks it (PRAGMA quick_check) and
  // brings its schema up to date.
  explicit Store(const std::filesystem::path& dir);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The records of `hashes`, in order (duplicates answered each time), read in one transaction
  // with one prepared statement.
  std::vector<FileRecord> lookup(std::span<const Sha256> hashes);
  FileRecord lookup(const Sha256& hash);

  // Sets what is known of `hash` (the whole record: a name or score not given is cleared). When
  // the disposition differs from the stored one (unknown when none), the change is appended to
  // the feed and `last_changed` becomes `now`; a first record also takes `now`. One transaction.
  // Records set here are the admin's (`by_analysis` false).
  FileRecord set(const Sha256& hash, Disposition d, std::optional<std::string> threat_name,
                 std::optional<int> threat_score, int64_t now);

  // -- samples --

  // The sample `id` (none when there is no such sample).
  std::optional<Sample> sample(std::string_view id);
  // The samples of `hash`, newest first, at most `limit`.
  std::vector<Sample> samples_of(const Sha256& hash, unsigned limit);
  // The newest sample of `hash` that did not fail (the one a new upload of the same bytes gets).
  std::optional<Sample> live_sample(const Sha256& hash);
  // Samples not finished (wait, prep, run, proc), oldest first: the analyses to resume at start.
  std::vector<Sample> unfinished_samples();
  // Samples `client` submitted on UTC day `day` (Unix days).
  unsigned samples_on_day(std::string_view client, int64_t day);
  // Adds a sample in state wait, submitted now, and counts it for `client` on today's UTC day (days
  // before yesterday are forgotten at the same time). One transaction.
  Sample add_sample(std::string id, const Sha256& hash, std::optional<std::string> filename, uint64_t size,
                    std::string_view client, int64_t now);
  void set_sample_state(std::string_view id, SampleState state);
  // Finishes a sample (state succ or fail) with its result, completed now; with `disposition`, in
  // the same transaction, sets the file's record as Store::set does (change feed included) unless
  // the admin set a disposition other than unknown, which an analysis never overrides. Returns the
  // file's record as it is afterwards.
  FileRecord finish_sample(std::string_view id, SampleState state, const SampleResult& result,
                           const std::optional<AnalysisDisposition>& disposition, int64_t now);

  // Up to `limit` feed entries with seq > after, in order.
  ChangePage changes(uint64_t after, unsigned limit);
  // The highest seq the feed ever gave (0 when it never had an entry; pruned entries count).
  uint64_t last_change_seq();
  // The feed's retention: drops the entries changed before `before` (Unix seconds); returns how
  // many. Cursors past them stay valid (the next page starts after them).
  uint64_t prune_changes(int64_t before);

  // A random identifier made when the store was created (16 lower hex digits); change-feed
  // cursors carry it, so that a cursor of another store is refused instead of skipping changes.
  const std::string& id() const noexcept { return id_; }
  const std::filesystem::path& path() const noexcept { return path_; }

  struct Db;  // internal to store.cpp

 private:
  std::unique_ptr<Db> db_;
  std::filesystem::path path_;
  std::string id_;
  int lock_fd_ = -1;
};

}  // namespace sluice::cloud
