// Event output: one JSON object per line (DESIGN.md section 7), written by control-plane threads
// only. Every event carries `timestamp` (RFC 3339, UTC) and `event_type`; the object named after
// the event type holds the rest.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "dataplane/dataplane.h"

namespace sluice::control {

// Keys keep the order they are written in: timestamp and event_type first, as a reader expects.
using Json = nlohmann::ordered_json;

class EventWriter {
 public:
  EventWriter() = default;
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // "-" is standard output; an empty path disables events. Appends to an existing file.
  bool open(const std::string& path, std::string& error);
  bool enabled() const noexcept { return out_ != nullptr; }
  // Writes {"timestamp":..., "event_type": type, type: body} and flushes the line.
  void write(const std::string& type, Json body);
  // A complete event produced elsewhere (the data plane renders its own), written as one line.
  void write_line(std::string_view json);
  void flush() { if (out_) std::fflush(out_); }

 private:
  std::FILE* out_ = nullptr;
  bool owned_ = false;
};

// RFC 3339 with microseconds, UTC: 2026-11-27T23:56:50.123456Z. `unix_us`: microseconds since 1970.
std::string rfc3339(int64_t unix_us);
int64_t now_unix_us();

// The body of a `stats` event.
Json stats_json(const dataplane::StatsSnapshot& s);

}  // namespace sluice::control
