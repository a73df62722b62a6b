// Per-message traces (README "Traces"): every step of the workflow a message went through, as a
// person reads it, one JSON object per line in a log of its own (`trace.path`, rotated by size).
// A line of a message names it by `ref` (the id enforcement's replies name,
// `<start>-<flow_id>-<transaction>`), `flow_id` and `transaction`; the steps of an analysis sample
// (`poll`, `complete`, `expired`) name its `sha256` only and belong to every message that waited on
// it. `trace_search()` gathers a message's lines back (the API's GET /api/v1/trace).
//
// TraceBuilder runs on the service loop's thread (it sees the lcores' records where they are
// rendered, and the control plane's own steps); TraceLog is written by the ordered pool, in order
// with nothing else; trace_search() runs on the pool and only reads.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "control/event_render.h"
#include "records/event_records.h"

namespace sluice::control {

struct TraceSettings {
  std::string path;                                 // empty: no traces
  uint64_t max_file_bytes = 64ull * 1024 * 1024;    // the current file is rotated before it passes this
  unsigned max_files = 4;                           // files kept, the current one included
};

// A message's reference id, `<instance>-<flow_id>-<transaction>` in hex, hex and decimal: the id
// inline enforcement's replies name (dataplane/enforcer.h), used by traces and reports alike.
std::string message_ref(uint32_t instance, uint64_t flow_id, uint64_t transaction);

// `path`, then `path.1` (the newest rotated), ... `path.(max_files-1)`.
std::string trace_file(const std::string& path, unsigned k);

class TraceBuilder {
 public:
  // `instance`: the first part of reference ids (sluiced's start in seconds, as enforcement's);
  // `max_lookups`: endpoint answers remembered until their file's line (sluiced: as many as
  // `reputation.max_pending` hashes may wait).
  TraceBuilder(uint32_t instance, std::size_t max_lookups);

  // The names of `reputation.endpoints`, in order.
  void set_endpoint_names(std::vector<std::string> names) { endpoints_ = std::move(names); }

  // An lcore record (message, file, member, verdict; the others have no step): its lines are
  // appended to `out`, each ending in a newline.
  void on_record(const void* record, std::size_t size, std::string& out);
  // A control-plane event (`analysis`), its lines appended to `out`.
  void on_event(std::string_view type, const Json& body, const records::FlowIdentity* flow, std::string& out);
  // An endpoint answered (or failed) a look-up of `sha256` after `latency_ms`; its file's line
  // names the endpoint and the latency.
  void on_lookup(const std::array<uint8_t, 32>& sha256, int endpoint, double latency_ms, std::string_view detail);
  // A message's quarantine entry: stored as `id`, or not (`why`).
  void on_quarantine(const records::FlowIdentity& flow, uint64_t transaction, const std::string& id,
                     const std::string& why, std::string& out);
  // A poll of an analysis sample: its state (`pending`, `running`, `succ`, `fail`) or an error.
  void on_poll(const std::string& sha256, const std::string& endpoint, const std::string& state,
               const std::string& error, double latency_ms, std::string& out);

  std::string ref(uint64_t flow_id, uint64_t transaction) const { return message_ref(instance_, flow_id, transaction); }

 private:
  struct Lookup {
    int endpoint;
    double latency_ms;
    std::string detail;
  };
  Json head(int64_t timestamp_us, const records::FlowIdentity& flow, uint64_t transaction, std::string_view step);
  void lookup_step(int64_t timestamp_us, const records::FlowIdentity& flow, uint64_t transaction,
                   std::string_view name, const uint8_t (&sha)[32], bool hashed, const records::FileVerdict& v,
                   std::string& out);
  void message(const records::MessageRecord& m, std::string& out);
  void file(const records::FileRecord& f, std::string& out);
  void member(const records::MemberRecord& f, std::string& out);
  void verdict(const records::VerdictRecord& v, std::string& out);
  std::string endpoint_name(int k) const;

  uint32_t instance_;
  std::size_t max_lookups_;
  std::vector<std::string> endpoints_;
  std::unordered_map<std::string, Lookup> lookups_;  // by hex SHA-256
  std::deque<std::string> lookup_order_;             // oldest first: forgotten beyond max_lookups
};

// Appends lines to the trace file, rotating it: a block that would take the current file past
// `max_file_bytes` first renames path.(k) to path.(k+1) (the oldest is removed) and path to path.1.
class TraceLog {
 public:
  TraceLog() = default;
  ~TraceLog();
  TraceLog(const TraceLog&) = delete;
  TraceLog& operator=(const TraceLog&) = delete;

  bool open(const TraceSettings& settings, std::string& error);
  bool enabled() const noexcept { return !s_.path.empty(); }
  void write_block(std::string_view lines);
  // Counters, read from any thread: lines written, rotations, blocks that could not be written
  // (their lines are lost; the next block tries again, reopening the file if need be).
  uint64_t lines() const noexcept { return lines_.load(std::memory_order_relaxed); }
  uint64_t write_errors() const noexcept { return write_errors_.load(std::memory_order_relaxed); }
  uint64_t rotations() const noexcept { return rotations_.load(std::memory_order_relaxed); }

 private:
  void rotate();
  TraceSettings s_;
  std::FILE* out_ = nullptr;
  uint64_t size_ = 0;
  std::atomic<uint64_t> lines_{0}, write_errors_{0}, rotations_{0};
};

// What to look for: one of them.
struct TraceQuery {
  std::string ref;
  std::string message_id;       // as the message's header has it (`<x@y>`)
  std::string message_sha256;   // lower-case hex
  std::optional<uint64_t> flow_id, transaction;
  unsigned max_messages = 20;   // the newest ones when more match
  unsigned max_steps = 2000;    // per message
};

// The messages that match, oldest first: {"messages": [{"ref", "flow_id", "transaction",
// "message_id", "message_sha256", "subject", "steps": [line objects in order]}], "files_read",
// "bytes_read"}. Reads the files of `settings` (oldest first); an unreadable file is skipped.
Json trace_search(const TraceSettings& settings, const TraceQuery& query);

}  // namespace sluice::control
