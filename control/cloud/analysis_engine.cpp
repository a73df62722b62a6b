#include "control/cloud/analysis_engine.h"

#include <algorithm>

namespace sluice::cloud {

namespace {

// The EICAR anti-virus test file's 68 bytes (www.eicar.org), found anywhere in the file.
constexpr std::string_view kEicar =
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

class EicarEngine final : public AnalysisEngine {
 public:
  AnalysisResult analyse(std::span<const uint8_t> bytes, std::string_view) override {
    AnalysisResult r;
    const auto* p = reinterpret_cast<const char*>(bytes.data());
    const bool eicar = std::string_view(p, bytes.size()).find(kEicar) != std::string_view::npos;
    r.score = eicar ? 100 : 5;
    if (eicar) r.threat_name = "Eicar-Test-Signature";
    r.report["engine"] = name();
    r.report["findings"] = nlohmann::ordered_json::array();
    if (eicar) r.report["findings"].push_back({{"rule", "signature"}, {"name", "Eicar-Test-Signature"}, {"score", 100}});
    return r;
  }
  std::string name() const override { return "sluice-eicar/1"; }
};

}  // namespace

std::unique_ptr<AnalysisEngine> make_eicar_engine() { return std::make_unique<EicarEngine>(); }

}  // namespace sluice::cloud
