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

// The static engine: libclamav (pipeline/preclass.h) with the project's pre-classification
// signatures and sluice-cloud's own (control/cloud/signatures) scans the file and describes it; the
// scoring table (scoring.h) turns the facts into the score and the threat name. Its report:
//   {"engine": "sluice-static/1", "score", "rules": [{"rule", "score", "threat_name"}...],
//    "file_type", "dynamic", "reasons", "alerts", "limits", "signatures", "scan_ms",
//    "metadata": libclamav's JSON description of the file}
// A scan libclamav cannot finish (an error other than a limit) fails the analysis.
struct StaticEngineConfig {
  std::string signatures_dir;      // --signatures: a directory of ClamAV signature files
  uint64_t max_sample_bytes = 32ull << 20;  // the largest sample (--max-sample-mb)
  // Scan time per sample (libclamav's MaxScanTime): an analysis, unlike a pre-classification on
  // the appliance, may take its time; a bomb still ends.
  uint32_t max_scan_ms = 30000;
};

// nullptr and `error` (one line) when the engine cannot be built (the signatures, libclamav).
std::unique_ptr<AnalysisEngine> make_static_engine(const StaticEngineConfig& config, std::string& error);

}  // namespace sluice::cloud
