// What the report page shows (GET /api/v1/report, docs/api.md): messages per verdict and files per
// reputation in time buckets, throughput, and the malicious files seen most, with their latest
// messages. Counted from the lcores' records where they are rendered, when the control plane sees
// them (the wall clock, not a replay's capture time), in memory: a restart starts empty.
//
// Runs on the service loop's thread only. Memory is fixed by ReportSettings: `buckets` buckets,
// `max_files` malicious files (the one seen longest ago is forgotten first), `max_messages`
// envelopes of recent messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "control/event_render.h"
#include "records/event_records.h"

namespace sluice::control {

struct ReportSettings {
  unsigned bucket_s = 60;
  unsigned buckets = 1440;          // 24 hours of minutes
  std::size_t max_files = 1000;     // malicious files tracked
  std::size_t max_messages = 4096;  // envelopes kept to name the messages of malicious files
  unsigned recent_per_file = 5;     // messages listed per malicious file
  unsigned top_files = 10;          // files in a report
};

class ReportCollector {
 public:
  // `instance`: the first part of reference ids (trace.h).
  ReportCollector(const ReportSettings& settings, uint32_t instance);

  // A record as drained from an lcore (message, file, member, verdict count; others are ignored),
  // seen at `now_ms` (ms since 1970).
  void on_record(const void* record, std::size_t size, int64_t now_ms);
  // The ports' received totals now (called about once a second; they count from 0 at start).
  void sample_ports(uint64_t rx_bytes, uint64_t rx_packets, int64_t now_ms);

  // The report over the last `window_s` seconds (a whole number of buckets, at most all of them):
  // {"bucket_s", "series", "totals", "throughput", "top_malicious"} (docs/api.md).
  Json report(int64_t now_ms, unsigned window_s) const;

  // What the report page wants of the analysis counters (`analysis` of the stats event); null
  // without analysis.
  static Json analysis_summary(const Json& analysis_stats);

 private:
  struct Counts {
    uint64_t messages[5] = {};  // clean, malicious, unscannable, pending, no_files
    uint64_t files[4] = {};     // clean, malicious, unknown, not_looked_up
    uint64_t rx_bytes = 0, rx_packets = 0;
  };
  struct Bucket {
    int64_t start_ms = -1;
    Counts c;
  };
  struct Envelope {
    int64_t time_ms;
    uint64_t flow_id, transaction;
    std::string subject, mail_from, message_id;
  };
  struct MaliciousFile {
    std::string threat_name;
    std::vector<std::string> filenames;  // at most 5, first seen first
    uint64_t messages = 0;
    int64_t last_seen_ms = 0;
    std::deque<std::string> recent;      // refs, newest last
    std::list<std::string>::iterator lru;
  };
  Counts& bucket(int64_t now_ms);
  void file_seen(const records::FileVerdict& v, const uint8_t (&sha)[32], bool hashed, std::string_view name,
                 uint64_t flow_id, uint64_t transaction, records::Reading reading, int64_t now_ms);
  std::string ref(uint64_t flow_id, uint64_t transaction) const;

  ReportSettings s_;
  uint32_t instance_;
  std::vector<Bucket> ring_;
  Counts totals_;
  std::unordered_map<std::string, MaliciousFile> malicious_;  // by hex SHA-256
  std::list<std::string> lru_;                                // malicious files, least recently seen first
  std::unordered_map<std::string, Envelope> envelopes_;       // by ref
  std::deque<std::string> envelope_order_;
  uint64_t last_rx_bytes_ = 0, last_rx_packets_ = 0;
  struct Sample {
    int64_t ms;
    uint64_t rx_bytes, messages;
  };
  std::deque<Sample> samples_;  // the last 10 s or so, for the throughput now
};

}  // namespace sluice::control
