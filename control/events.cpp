#include "control/events.h"

#include <cerrno>
#include <cstring>

namespace sluice::control {

EventWriter::~EventWriter() { close(); }

void EventWriter::close() {
  if (owned_ && out_) std::fclose(out_);
  out_ = nullptr;
  owned_ = false;
}

bool EventWriter::open(const std::string& path, std::string& error) {
  close();
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

void EventWriter::write(const std::string& type, const Json& body, const records::FlowIdentity* flow) {
  if (!out_) return;
  write_line(renderer_.control_event(type, body, now_unix_us(), flow));
  std::fflush(out_);
}

void EventWriter::write_block(std::string_view lines) {
  if (!out_ || lines.empty()) return;
  std::fwrite(lines.data(), 1, lines.size(), out_);
}

void EventWriter::write_line(std::string_view json) {
  if (!out_) return;
  std::fwrite(json.data(), 1, json.size(), out_);
  std::fputc('\n', out_);
}

}  // namespace sluice::control
