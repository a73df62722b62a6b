#include "control/events.h"

#include <cerrno>
#include <cstring>
#include <algorithm>

namespace sluice::control {

EventWriter::~EventWriter() { close(); }

void EventWriter::close() {
  if (owned_ && out_) std::fclose(out_);
  out_ = nullptr;
  owned_ = false;
}

bool EventWriter::open(const std::string& path, std::string& error) {
  close();
  path_ = path;
  if (path.empty()) return true;
  if (path == "-") {
    out_ = stdout;
    return true;
  }
  out_ = std::fopen(path.c_str(), "a");
  if (!out_) {
    error = "events.path: cannot open '" + path + "': " + std::strerror(errno);
    return false;
  }
  owned_ = true;
  return true;
}

bool EventWriter::reopen(const std::string& path, std::string& error) {
  std::FILE* next = nullptr;
  if (!path.empty() && path != "-") {
    next = std::fopen(path.c_str(), "a");
    if (!next) {
      error = "events.path: cannot open '" + path + "': " + std::strerror(errno);
      return false;
    }
  }
  flush();
  close();
  path_ = path;
  if (next) {
    out_ = next;
    owned_ = true;
  } else if (path == "-") {
    out_ = stdout;
  }
  return true;
}

void EventWriter::write(const std::string& type, const Json& body, const records::FlowIdentity* flow) {
  if (!out_) return;
  write_line(renderer_.control_event(type, body, now_unix_us(), flow));
  std::fflush(out_);
}

void EventWriter::write_record(const void* record, std::size_t size) {
  if (!out_) return;
  const std::string_view line = renderer_.render(record, size);
  if (line.empty()) {
    ++unrenderable_;
    return;
  }
  write_line(line);
}

void EventWriter::write_block(std::string_view lines) {
  if (!out_ || lines.empty()) return;
  std::fwrite(lines.data(), 1, lines.size(), out_);
  written_ += static_cast<uint64_t>(std::count(lines.begin(), lines.end(), '\n'));
}

void EventWriter::write_line(std::string_view json) {
  if (!out_) return;
  std::fwrite(json.data(), 1, json.size(), out_);
  std::fputc('\n', out_);
  ++written_;
}

}  // namespace sluice::control
