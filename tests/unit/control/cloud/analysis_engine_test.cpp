// control/cloud/analysis_engine: the static engine (libclamav with the build's cloud-signatures,
// the scoring table) over EICAR, plain files and the pre-classification fixtures
// (tests/data/preclass), its report, and the errors of its creation.
#include "control/cloud/analysis_engine.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace sluice::cloud {
namespace {

const std::string kSignatures = std::string(SLUICE_BUILD_DIR) + "/cloud-signatures";
const std::string kFixtures = std::string(SLUICE_SOURCE_DIR) + "/tests/data/preclass/";
constexpr std::string_view kEicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

std::vector<uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

std::vector<uint8_t> fixture(const std::string& name) {
  std::ifstream in(kFixtures + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class StaticEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    StaticEngineConfig c;
    c.signatures_dir = kSignatures;
    std::string error;
    engine_ = make_static_engine(c, error).release();
    ASSERT_NE(engine_, nullptr) << error;
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  static AnalysisEngine* engine_;
};
AnalysisEngine* StaticEngineTest::engine_ = nullptr;

TEST_F(StaticEngineTest, EicarIsMalicious) {
  for (const std::string& file : {std::string(kEicar), std::string(kEicar) + "\r\n",
                                  "some words before it " + std::string(kEicar) + " and after"}) {
    const AnalysisResult r = engine_->analyse(bytes(file), "eicar.com");
    ASSERT_FALSE(r.failed) << r.error;
    EXPECT_EQ(r.score, 100);
    EXPECT_EQ(r.threat_name, "Sluice.Test.Eicar");
    EXPECT_EQ(r.report["alerts"], nlohmann::ordered_json::array({"Sluice.Test.Eicar"}));
  }
}

TEST_F(StaticEngineTest, APlainFileScoresZeroWithItsReport) {
  const AnalysisResult r = engine_->analyse(bytes("Hello,\nthe figures are attached.\n"), "notes.txt");
  ASSERT_FALSE(r.failed) << r.error;
  EXPECT_EQ(r.score, 0);
  EXPECT_FALSE(r.threat_name);
  std::vector<std::string> keys;
  for (const auto& [k, v] : r.report.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"engine", "score", "rules", "file_type", "dynamic", "reasons", "alerts",
                                            "limits", "signatures", "scan_ms", "metadata"}));
  EXPECT_EQ(r.report["engine"], "sluice-static/1");
  EXPECT_EQ(r.report["file_type"], "CL_TYPE_TEXT_ASCII");
  EXPECT_EQ(r.report["rules"], nlohmann::ordered_json::array());
  EXPECT_GE(r.report["signatures"].get<int>(), 10);  // the project's six and the service's four
  EXPECT_TRUE(r.report["metadata"].is_object());
  EXPECT_EQ(r.report["metadata"]["FileType"], "CL_TYPE_TEXT_ASCII");
}

TEST_F(StaticEngineTest, FixturesScoreByTheTable) {
  struct Case {
    const char* file;
    int score;
    const char* top_rule;
  };
  const Case cases[] = {
      {"plain.doc", 0, nullptr},
      {"plain.pdf", 0, nullptr},
      {"macro.doc", 50, "macro_autorun"},
      {"macro.docm", 50, "macro_autorun"},
      {"xlm.xls", 60, "xlm_macro"},
      {"setup.exe", 45, "executable"},
      {"pe.zip", 60, "executable_in_container"},
      {"pe_object.docx", 80, "executable_in_document"},
      {"js.pdf", 65, "pdf_javascript_at_open"},
      {"launch.pdf", 70, "pdf_launch"},
      {"attach.pdf", 30, "pdf_embedded_file"},
      {"movie.swf", 50, "flash"},
      {"cradle.ps1", 85, "powershell_download_or_encoded"},
      {"run.vbs", 60, "script_suspicious_calls"},
      {"smuggle.html", 80, "html_smuggling"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    const AnalysisResult r = engine_->analyse(fixture(c.file), c.file);
    ASSERT_FALSE(r.failed) << r.error;
    EXPECT_EQ(r.score, c.score) << r.report.dump();
    if (c.top_rule) {
      ASSERT_FALSE(r.report["rules"].empty());
      EXPECT_EQ(r.report["rules"][0]["rule"], c.top_rule);
    }
  }
}

TEST_F(StaticEngineTest, TheSuspiciousCallSignaturesMatchInAnyCaseAndUtf16) {
  const AnalysisResult r = engine_->analyse(bytes("x = SHELL(\"calc\")"), "notes.txt");
  EXPECT_EQ(r.report["alerts"], nlohmann::ordered_json::array({"Sluice.Suspicious.Execute"}));
  std::string utf16;
  for (char ch : std::string("set o = CreateObject(\"MSXML2.XMLHTTP\")")) utf16 += {ch, '\0'};
  EXPECT_EQ(engine_->analyse(bytes(utf16), "notes.txt").report["alerts"],
            nlohmann::ordered_json::array({"Sluice.Suspicious.Download"}));
  EXPECT_EQ(engine_->analyse(bytes("Private Declare PtrSafe Function VirtualAlloc Lib \"kernel32\""), "m.bas")
                .report["alerts"],
            nlohmann::ordered_json::array({"Sluice.Suspicious.NativeCode"}));
  // words alone are not calls
  EXPECT_EQ(engine_->analyse(bytes("a shell company declared its results"), "n.txt").report["alerts"],
            nlohmann::ordered_json::array());
}

TEST(StaticEngine, CreationErrors) {
  std::string error;
  StaticEngineConfig c;
  c.signatures_dir = "/nonexistent/sluice-signatures";
  EXPECT_EQ(make_static_engine(c, error), nullptr);
  EXPECT_NE(error.find("/nonexistent/sluice-signatures"), std::string::npos) << error;
}

}  // namespace
}  // namespace sluice::cloud
