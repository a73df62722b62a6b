// The analysis engine behind sluice-cloud's samples: bytes and a file name in, a threat score
// 0-100, a threat name and a JSON report out. The service (analyses.h) runs it on the scan pool's
// threads (scan_pool.h), never on the HTTP thread, and turns the score into a verdict with
// --malicious-score; the engine knows nothing of states, timing, storage or HTTP.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace sluice::cloud {

struct AnalysisResult {
  bool failed = false;   // the engine could not analyse the file (`error` says why)
  std::string error;
  int score = 0;         // 0-100 when not failed
  std::optional<std::string> threat_name;  // the strongest finding's name, if it has one
  nlohmann::ordered_json report = nlohmann::ordered_json::object();  // what the engine found
};

class AnalysisEngine {
 public:
  virtual ~AnalysisEngine() = default;
  // Analyses one file. Called from several threads at once: implementations are thread-safe.
  virtual AnalysisResult analyse(std::span<const uint8_t> bytes, std::string_view filename) = 0;
  // A short name and version for reports ("sluice-static/1").
  virtual std::string name() const = 0;
};

// The stand-in engine until the static engine lands: the EICAR test string is malicious (100,
// Eicar-Test-Signature), anything else scores 5.
std::unique_ptr<AnalysisEngine> make_eicar_engine();

}  // namespace sluice::cloud
