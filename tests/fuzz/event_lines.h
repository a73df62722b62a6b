// What the fuzz targets that produce event records share: the way an invariant fails (a message
// scripts/fuzz greps for, then abort so libFuzzer keeps the input), and the check of each record
// rendered as the control side renders it (control/event_render): one line, one JSON object with
// a timestamp, an event_type and the object that type names.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "control/event_render.h"
#include "records/event_records.h"

namespace sluice::fuzz {

[[noreturn]] inline void fail(const char* what, std::string_view line = {}) {
  std::fprintf(stderr, "%s: invariant violated: %s\n", program_invocation_short_name, what);
  if (!line.empty()) std::fprintf(stderr, "line: %.*s\n", static_cast<int>(line.size()), line.data());
  std::abort();
}

// Renders every record and checks the line; SLUICE_FUZZ_PRINT=1 prints it on standard error (to
// look at what an input does). A target that checks the records themselves overrides on_record().
class RenderedEvents : public records::RecordSink {
 public:
  uint64_t events = 0;

  void emit(const void* record, std::size_t size) noexcept override {
    const std::string_view line = renderer_.render(record, size);
    ++events;
    if (print_) std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    if (line.empty()) fail("empty event line");
    if (line.find('\n') != std::string_view::npos) fail("newline inside an event line", line);
    if (line.front() != '{' || line.back() != '}') fail("event is not an object", line);
    const auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded()) fail("event is not valid JSON", line);
    if (!j.is_object()) fail("event is not an object", line);
    const auto type = j.find("event_type");
    if (type == j.end() || !type->is_string()) fail("event without event_type", line);
    const auto ts = j.find("timestamp");
    if (ts == j.end() || !ts->is_string()) fail("event without timestamp", line);
    if (j.find(type->get<std::string>()) == j.end()) fail("event without the object named by its type", line);
    on_record(record, size);
  }

 protected:
  virtual void on_record(const void*, std::size_t) noexcept {}

 private:
  control::EventRenderer renderer_;
  const bool print_ = std::getenv("SLUICE_FUZZ_PRINT") != nullptr;
};

}  // namespace sluice::fuzz
