#include "control/cloud/analysis_engine.h"

#include <algorithm>

#include "control/cloud/scoring.h"
#include "pipeline/preclass.h"

namespace sluice::cloud {

namespace {

using ojson = nlohmann::ordered_json;

ojson string_array(const std::vector<std::string>& v) {
  ojson a = ojson::array();
  for (const std::string& s : v) a.push_back(s);
  return a;
}

class StaticEngine final : public AnalysisEngine {
 public:
  explicit StaticEngine(std::unique_ptr<pipeline::Preclassifier> p) : preclass_(std::move(p)) {}

  AnalysisResult analyse(std::span<const uint8_t> bytes, std::string_view filename) override {
    const pipeline::PreclassResult facts = preclass_->classify(bytes.data(), bytes.size(), filename);
    AnalysisResult out;
    if (!facts.error.empty()) {
      out.failed = true;
      out.error = "ClamAV could not scan the file: " + facts.error;
      return out;
    }
    const Scored scored = score_facts(facts);
    out.score = scored.score;
    out.threat_name = scored.threat_name;
    ojson& r = out.report;
    r["engine"] = name();
    r["score"] = scored.score;
    ojson rules = ojson::array();
    for (const FiredRule& f : scored.rules)
      rules.push_back(ojson{{"rule", f.rule}, {"score", f.score}, {"threat_name", f.threat_name}});
    r["rules"] = std::move(rules);
    r["file_type"] = facts.clam_type;
    r["dynamic"] = facts.dynamic;
    r["reasons"] = string_array(facts.reasons);
    r["alerts"] = string_array(facts.alerts);
    r["limits"] = string_array(facts.limits);
    r["signatures"] = preclass_->signature_count();
    r["scan_ms"] = static_cast<int64_t>(facts.ms + 0.5);
    // libclamav's description of the file; cut at its bound, it is no longer JSON: then kept as text.
    ojson metadata = ojson::parse(facts.metadata, nullptr, false);
    r["metadata"] = metadata.is_discarded() ? ojson(facts.metadata) : std::move(metadata);
    return out;
  }

  std::string name() const override { return "sluice-static/1"; }

 private:
  std::unique_ptr<pipeline::Preclassifier> preclass_;
};

}  // namespace

std::unique_ptr<AnalysisEngine> make_static_engine(const StaticEngineConfig& config, std::string& error) {
  pipeline::PreclassLimits limits;
  // A sample is never cut: libclamav scans files up to the largest sample, and twice that in all
  // (a document's extracted objects), at least the pre-classifier's defaults.
  limits.max_file_bytes = std::max<uint64_t>(limits.max_file_bytes, config.max_sample_bytes);
  limits.max_scan_bytes = std::max<uint64_t>(limits.max_scan_bytes, 2 * config.max_sample_bytes);
  limits.max_scan_ms = config.max_scan_ms;
  auto p = pipeline::Preclassifier::create(limits, config.signatures_dir, error);
  if (!p) return nullptr;
  return std::make_unique<StaticEngine>(std::move(p));
}

}  // namespace sluice::cloud
