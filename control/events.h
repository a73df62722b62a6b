// Event output: one JSON object per line (DESIGN.md section 7), appended by one thread at a time
// (sluiced: the service loop's ordered pool). Lines come from control/event_render.
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
  bool enabled() const noexcept { return out_ != nullptr; }
  // A control-plane event: {"timestamp": now, "event_type": type, type: body}, flushed.
  void write(const std::string& type, const Json& body, const records::FlowIdentity* flow = nullptr);
  void write_line(std::string_view json);
  // Lines already rendered, each ending in a newline.
  void write_block(std::string_view lines);
  void flush() { if (out_) std::fflush(out_); }

 private:
  void close();
  std::FILE* out_ = nullptr;
  bool owned_ = false;
  EventRenderer renderer_;
};

}  // namespace sluice::control
