// control/cloud/scoring: the table row by row over hand-made facts, the combinations above their
// parts, the order of the rules fired, and the threat names.
#include "control/cloud/scoring.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::cloud {
namespace {

pipeline::PreclassResult facts(std::vector<std::string> reasons, std::vector<std::string> alerts = {},
                               std::string clam_type = "CL_TYPE_TEXT_ASCII", std::vector<std::string> limits = {}) {
  pipeline::PreclassResult r;
  r.reasons = std::move(reasons);
  r.alerts = std::move(alerts);
  if (!r.alerts.empty()) r.reasons.push_back("signature");
  r.dynamic = !r.reasons.empty();
  r.clam_type = std::move(clam_type);
  r.limits = std::move(limits);
  return r;
}

std::vector<std::string> rule_names(const Scored& s) {
  std::vector<std::string> out;
  for (const FiredRule& f : s.rules) out.push_back(f.rule);
  return out;
}

TEST(Scoring, NothingFoundScoresZero) {
  const Scored s = score_facts(facts({}));
  EXPECT_EQ(s.score, 0);
  EXPECT_FALSE(s.threat_name);
  EXPECT_TRUE(s.rules.empty());
}

TEST(Scoring, EachFactAlone) {
  struct Case {
    pipeline::PreclassResult in;
    int score;
    std::string rule, threat;
  };
  const Case cases[] = {
      {facts({}, {"Sluice.Test.Eicar"}), 100, "verdict_signature", "Sluice.Test.Eicar"},
      {facts({}, {"Sluice.Malware.Something"}), 100, "verdict_signature", "Sluice.Malware.Something"},
      {facts({"script"}, {"Sluice.Script.PowerShell.DownloadCradle"}), 85, "powershell_download_or_encoded",
       "Sluice.Script.PowerShell.DownloadCradle"},
      {facts({}, {"Sluice.Script.PowerShell.EncodedCommand"}), 85, "powershell_download_or_encoded",
       "Sluice.Script.PowerShell.EncodedCommand"},
      {facts({}, {"Sluice.Html.Smuggling"}, "CL_TYPE_HTML"), 80, "html_smuggling", "Sluice.Html.Smuggling"},
      {facts({"pdf_launch"}, {}, "CL_TYPE_PDF"), 70, "pdf_launch", "Sluice.Heuristic.Pdf.Launch"},
      {facts({"xlm_macro"}, {}, "CL_TYPE_MSXL"), 60, "xlm_macro", "Sluice.Heuristic.Macro.Xlm"},
      {facts({"embedded_executable"}, {}, "CL_TYPE_ZIP"), 60, "executable_in_container",
       "Sluice.Heuristic.Container.Executable"},
      {facts({}, {"Someone.Elses.Signature"}), 60, "other_signature", "Someone.Elses.Signature"},
      {facts({"flash"}, {}, "CL_TYPE_SWF"), 50, "flash", "Sluice.Heuristic.Flash"},
      {facts({"executable"}, {}, "CL_TYPE_MSEXE"), 45, "executable", "Sluice.Heuristic.Executable"},
      {facts({"pdf_javascript"}, {}, "CL_TYPE_PDF"), 45, "pdf_javascript", "Sluice.Heuristic.Pdf.JavaScript"},
      {facts({"ole_object"}, {}, "CL_TYPE_MSWORD"), 35, "ole_object", "Sluice.Heuristic.Document.OleObject"},
      {facts({"vba_macro"}, {}, "CL_TYPE_MSWORD"), 30, "vba_macro", "Sluice.Heuristic.Macro.Vba"},
      {facts({"script"}), 30, "script", "Sluice.Heuristic.Script"},
      {facts({"pdf_embedded_file"}, {}, "CL_TYPE_PDF"), 30, "pdf_embedded_file", "Sluice.Heuristic.Pdf.EmbeddedFile"},
      {facts({}, {}, "CL_TYPE_ZIP", {"max_recursion"}), 25, "scan_limits", "Sluice.Heuristic.Limits"},
      {facts({}, {"Sluice.Suspicious.Download"}), 20, "suspicious_calls", "Sluice.Heuristic.SuspiciousCalls"},
      {facts({}, {"Sluice.Script.WScriptShell"}), 20, "suspicious_calls", "Sluice.Heuristic.SuspiciousCalls"},
      {facts({"pdf_open_action"}, {}, "CL_TYPE_PDF"), 10, "pdf_open_action", "Sluice.Heuristic.Pdf.OpenAction"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.rule);
    const Scored s = score_facts(c.in);
    EXPECT_EQ(s.score, c.score);
    ASSERT_FALSE(s.rules.empty());
    EXPECT_EQ(s.rules.front().rule, c.rule);
    EXPECT_EQ(s.threat_name, c.threat);
  }
}

TEST(Scoring, TheAutoRunSignatureAloneIsNoFinding) {
  // "sub autoopen" in a text file: the macro rules need a macro.
  EXPECT_EQ(score_facts(facts({}, {"Sluice.Macro.AutoRun"})).score, 0);
}

TEST(Scoring, MacrosRiseWithWhatTheyDo) {
  const int plain = score_facts(facts({"vba_macro"}, {}, "CL_TYPE_MSWORD")).score;
  const int autorun = score_facts(facts({"vba_macro"}, {"Sluice.Macro.AutoRun"}, "CL_TYPE_MSWORD")).score;
  const int calls = score_facts(facts({"vba_macro"}, {"Sluice.Suspicious.Execute"}, "CL_TYPE_MSWORD")).score;
  const Scored both =
      score_facts(facts({"vba_macro"}, {"Sluice.Macro.AutoRun", "Sluice.Suspicious.Execute"}, "CL_TYPE_MSWORD"));
  EXPECT_LT(plain, autorun);
  EXPECT_LT(autorun, calls);
  EXPECT_LT(calls, both.score);
  EXPECT_EQ(both.score, 90);
  EXPECT_EQ(both.threat_name, "Sluice.Heuristic.Macro.AutoRunSuspicious");
  EXPECT_EQ(rule_names(both), (std::vector<std::string>{"macro_autorun_suspicious_calls", "macro_suspicious_calls",
                                                        "macro_autorun", "vba_macro", "suspicious_calls"}));
  // the shell object counts as a suspicious call; so do an XLM sheet's
  EXPECT_EQ(score_facts(facts({"xlm_macro"}, {"Sluice.Macro.AutoRun", "Sluice.Script.WScriptShell"})).score, 90);
  EXPECT_EQ(score_facts(facts({"vba_macro"}, {"Sluice.Suspicious.NativeCode"})).score, 75);
}

TEST(Scoring, ExecutablesInDocumentsAboveExecutablesInArchives) {
  for (const char* doc : {"CL_TYPE_MSOLE2", "CL_TYPE_MSWORD", "CL_TYPE_MSXL", "CL_TYPE_MSPPT", "CL_TYPE_OOXML_WORD",
                          "CL_TYPE_OOXML_XL", "CL_TYPE_OOXML_PPT", "CL_TYPE_RTF", "CL_TYPE_PDF"}) {
    SCOPED_TRACE(doc);
    const Scored s = score_facts(facts({"embedded_executable", "ole_object"}, {}, doc));
    EXPECT_EQ(s.score, 80);
    EXPECT_EQ(rule_names(s),
              (std::vector<std::string>{"executable_in_document", "executable_in_container", "ole_object"}));
  }
  for (const char* container : {"CL_TYPE_ZIP", "CL_TYPE_7Z", "CL_TYPE_RAR", "CL_TYPE_MSEXE"})
    EXPECT_EQ(score_facts(facts({"embedded_executable"}, {}, container)).score, 60) << container;
}

TEST(Scoring, PdfJavaScriptRunAtOpening) {
  const Scored s = score_facts(facts({"pdf_javascript", "pdf_open_action"}, {}, "CL_TYPE_PDF"));
  EXPECT_EQ(s.score, 65);
  EXPECT_EQ(rule_names(s), (std::vector<std::string>{"pdf_javascript_at_open", "pdf_javascript", "pdf_open_action"}));
}

TEST(Scoring, ScriptsWithSuspiciousCalls) {
  EXPECT_EQ(score_facts(facts({"script"}, {"Sluice.Script.WScriptShell", "Sluice.Suspicious.Execute"})).score, 60);
  EXPECT_EQ(score_facts(facts({"script"}, {"Sluice.Suspicious.Download"})).score, 60);
}

TEST(Scoring, AVerdictSignatureNamesTheThreatWhateverElseFires) {
  const Scored s = score_facts(
      facts({"vba_macro"}, {"Sluice.Macro.AutoRun", "Sluice.Suspicious.Execute", "Sluice.Test.Eicar"}, "CL_TYPE_MSWORD"));
  EXPECT_EQ(s.score, 100);
  EXPECT_EQ(s.threat_name, "Sluice.Test.Eicar");
  EXPECT_EQ(s.rules.size(), 6u);
}

TEST(Scoring, EqualScoresKeepTheTableOrder) {
  // xlm_macro, script_suspicious_calls, executable_in_container and other_signature all score 60
  const Scored s = score_facts(
      facts({"xlm_macro", "embedded_executable", "script"}, {"Other.Sig", "Sluice.Suspicious.Execute"}, "CL_TYPE_ZIP"));
  EXPECT_EQ(s.score, 75);  // xlm_macro + suspicious calls
  EXPECT_EQ(rule_names(s), (std::vector<std::string>{"macro_suspicious_calls", "xlm_macro", "script_suspicious_calls",
                                                     "executable_in_container", "other_signature", "script",
                                                     "suspicious_calls"}));
  EXPECT_EQ(s.rules[4].threat_name, "Other.Sig");
}

}  // namespace
}  // namespace sluice::cloud
