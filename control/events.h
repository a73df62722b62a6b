// Event output: one JSON object per line (DESIGN.md section 7), written by the control plane's
// service loop only. Lcore records and control-plane events are rendered by control/event_render.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include "control/event_render.h"

namespace sluice::control {

class EventWriter {
 public:
  EventWriter() = default;
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // "-" is standard output; an empty path disables events. Appends to an existing file.
  bool open(const std::string& path, std::string& error);
  // Closes the current output and opens `path` (a reload of events.path). On failure the current
  // output stays and `error` says why.
  bool reopen(const std::string& path, std::string& error);
  bool enabled() const noexcept { return out_ != nullptr; }
  const std::string& path() const noexcept { return path_; }
  // A control-plane event: {"timestamp": now, "event_type": type, type: body}, flushed.
  void write(const std::string& type, const Json& body, const records::FlowIdentity* flow = nullptr);
  // One lcore record (records/event_records.h), rendered; not flushed (see flush()).
  void write_record(const void* record, std::size_t size);
  void write_line(std::string_view json);
  // Lines already rendered, each ending in a newline.
  void write_block(std::string_view lines);
  void flush() { if (out_) std::fflush(out_); }
  uint64_t written() const noexcept { return written_; }
  uint64_t unrenderable() const noexcept { return unrenderable_; }  // records of an unknown type or size

 private:
  void close();
  std::FILE* out_ = nullptr;
  bool owned_ = false;
  std::string path_;
  EventRenderer renderer_;
  uint64_t written_ = 0, unrenderable_ = 0;
};

}  // namespace sluice::control
