#include "control/cloud/scoring.h"

#include <algorithm>
#include <string_view>

namespace sluice::cloud {

namespace {

// The project's pre-classification signatures (pipeline/signatures) the table knows by name.
constexpr std::string_view kAutoRun = "Sluice.Macro.AutoRun";
constexpr std::string_view kSmuggling = "Sluice.Html.Smuggling";
constexpr std::string_view kPowerShell[] = {"Sluice.Script.PowerShell.DownloadCradle",
                                            "Sluice.Script.PowerShell.WebRequestExecute",
                                            "Sluice.Script.PowerShell.EncodedCommand"};
constexpr std::string_view kWScriptShell = "Sluice.Script.WScriptShell";
// sluice-cloud's own facts (control/cloud/signatures): code that starts programs, downloads,
// loads machine code.
constexpr std::string_view kSuspiciousPrefix = "Sluice.Suspicious.";

// ClamAV types of documents (the top file), for an executable inside one.
bool is_document_type(std::string_view t) {
  constexpr std::string_view kDocs[] = {"CL_TYPE_MSOLE2",     "CL_TYPE_MSWORD",    "CL_TYPE_MSXL",
                                        "CL_TYPE_MSPPT",      "CL_TYPE_OOXML_WORD", "CL_TYPE_OOXML_XL",
                                        "CL_TYPE_OOXML_PPT",  "CL_TYPE_RTF",        "CL_TYPE_XML_WORD",
                                        "CL_TYPE_XML_XL",     "CL_TYPE_PDF",        "CL_TYPE_ONENOTE",
                                        "CL_TYPE_OOXML_HWP",  "CL_TYPE_HWP3",       "CL_TYPE_HWPOLE2"};
  return std::find(std::begin(kDocs), std::end(kDocs), t) != std::end(kDocs);
}

// What the rules read, computed once from the pre-classification result.
struct Facts {
  const pipeline::PreclassResult& r;
  std::vector<std::string_view> verdict_signatures;  // Sluice.Test.*, Sluice.Malware.*
  std::vector<std::string_view> powershell;          // the PowerShell signatures that matched
  std::vector<std::string_view> other_signatures;    // names the table does not know
  bool autorun = false, smuggling = false, wscript_shell = false, suspicious = false;

  explicit Facts(const pipeline::PreclassResult& result) : r(result) {
    for (const std::string& a : r.alerts) {
      const std::string_view name = a;
      bool known = false;
      for (const char* p : kVerdictSignaturePrefixes)
        if (name.starts_with(p)) {
          verdict_signatures.push_back(name);
          known = true;
        }
      for (std::string_view ps : kPowerShell)
        if (name == ps) {
          powershell.push_back(name);
          known = true;
        }
      if (name == kAutoRun) autorun = known = true;
      if (name == kSmuggling) smuggling = known = true;
      if (name == kWScriptShell) wscript_shell = known = true;
      if (name.starts_with(kSuspiciousPrefix)) suspicious = known = true;
      if (!known) other_signatures.push_back(name);
    }
  }
  bool has(std::string_view reason) const {
    return std::find(r.reasons.begin(), r.reasons.end(), reason) != r.reasons.end();
  }
  bool macro() const { return has("vba_macro") || has("xlm_macro"); }
  // Code that starts programs, downloads or loads machine code (ours), or the shell object.
  bool suspicious_calls() const { return suspicious || wscript_shell; }
};

// One row of the table: when `fires`, the file scores at least `score`. `threat_name` empty: the
// name of the signature that made it fire (the first, alerts are sorted).
struct Rule {
  const char* name;
  int score;
  const char* threat_name;
  bool (*fires)(const Facts&);
  std::string_view (*signature)(const Facts&) = nullptr;  // the signature named by the rule, if any
};

// The table, highest score first (API.md, "How a sample is scored", lists it in this order).
const Rule kRules[] = {
    {"verdict_signature", 100, "", [](const Facts& f) { return !f.verdict_signatures.empty(); },
     [](const Facts& f) { return f.verdict_signatures.front(); }},
    {"macro_autorun_suspicious_calls", 90, "Sluice.Heuristic.Macro.AutoRunSuspicious",
     [](const Facts& f) { return f.macro() && f.autorun && f.suspicious_calls(); }},
    {"powershell_download_or_encoded", 85, "", [](const Facts& f) { return !f.powershell.empty(); },
     [](const Facts& f) { return f.powershell.front(); }},
    {"html_smuggling", 80, "", [](const Facts& f) { return f.smuggling; },
     [](const Facts&) { return kSmuggling; }},
    {"executable_in_document", 80, "Sluice.Heuristic.Document.EmbeddedExecutable",
     [](const Facts& f) { return f.has("embedded_executable") && is_document_type(f.r.clam_type); }},
    {"macro_suspicious_calls", 75, "Sluice.Heuristic.Macro.Suspicious",
     [](const Facts& f) { return f.macro() && f.suspicious_calls(); }},
    {"pdf_launch", 70, "Sluice.Heuristic.Pdf.Launch", [](const Facts& f) { return f.has("pdf_launch"); }},
    {"pdf_javascript_at_open", 65, "Sluice.Heuristic.Pdf.JavaScriptAtOpen",
     [](const Facts& f) { return f.has("pdf_javascript") && f.has("pdf_open_action"); }},
    {"xlm_macro", 60, "Sluice.Heuristic.Macro.Xlm", [](const Facts& f) { return f.has("xlm_macro"); }},
    {"script_suspicious_calls", 60, "Sluice.Heuristic.Script.Suspicious",
     [](const Facts& f) { return f.has("script") && f.suspicious_calls(); }},
    {"executable_in_container", 60, "Sluice.Heuristic.Container.Executable",
     [](const Facts& f) { return f.has("embedded_executable"); }},
    {"other_signature", 60, "", [](const Facts& f) { return !f.other_signatures.empty(); },
     [](const Facts& f) { return f.other_signatures.front(); }},
    {"macro_autorun", 50, "Sluice.Heuristic.Macro.AutoRun", [](const Facts& f) { return f.macro() && f.autorun; }},
    {"flash", 50, "Sluice.Heuristic.Flash", [](const Facts& f) { return f.has("flash"); }},
    {"executable", 45, "Sluice.Heuristic.Executable", [](const Facts& f) { return f.has("executable"); }},
    {"pdf_javascript", 45, "Sluice.Heuristic.Pdf.JavaScript", [](const Facts& f) { return f.has("pdf_javascript"); }},
    {"ole_object", 35, "Sluice.Heuristic.Document.OleObject", [](const Facts& f) { return f.has("ole_object"); }},
    {"vba_macro", 30, "Sluice.Heuristic.Macro.Vba", [](const Facts& f) { return f.has("vba_macro"); }},
    {"script", 30, "Sluice.Heuristic.Script", [](const Facts& f) { return f.has("script"); }},
    {"pdf_embedded_file", 30, "Sluice.Heuristic.Pdf.EmbeddedFile",
     [](const Facts& f) { return f.has("pdf_embedded_file"); }},
    {"scan_limits", 25, "Sluice.Heuristic.Limits", [](const Facts& f) { return !f.r.limits.empty(); }},
    {"suspicious_calls", 20, "Sluice.Heuristic.SuspiciousCalls", [](const Facts& f) { return f.suspicious_calls(); }},
    {"pdf_open_action", 10, "Sluice.Heuristic.Pdf.OpenAction", [](const Facts& f) { return f.has("pdf_open_action"); }},
};

}  // namespace

Scored score_facts(const pipeline::PreclassResult& result) {
  const Facts facts(result);
  Scored out;
  for (const Rule& rule : kRules) {
    if (!rule.fires(facts)) continue;
    FiredRule fired{rule.name, rule.score, rule.threat_name};
    if (rule.signature) fired.threat_name = std::string(rule.signature(facts));
    out.rules.push_back(std::move(fired));
  }
  // The table is in descending order; a stable sort keeps the table's order among equal scores.
  std::stable_sort(out.rules.begin(), out.rules.end(),
                   [](const FiredRule& a, const FiredRule& b) { return a.score > b.score; });
  if (!out.rules.empty()) {
    out.score = out.rules.front().score;
    out.threat_name = out.rules.front().threat_name;
  }
  return out;
}

}  // namespace sluice::cloud
