// ClamAV pre-classification (pipeline/preclass.h): the rules over hand-written JSON, then the real
// engine over ClamAV's test files (Debian's clamav-testfiles), the fixtures of
// tests/data/preclass/make.py (pairs that differ only in their dynamic part) and bombs. One
// engine per suite (creating one compiles the signatures: tens of milliseconds).
#include "pipeline/preclass.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

using namespace sluice::pipeline;
using Strings = std::vector<std::string>;

namespace {

const std::filesystem::path kData = std::filesystem::path(__FILE__).parent_path() / "../../data/preclass";
const std::filesystem::path kClam = "/usr/share/clamav-testfiles";
const std::filesystem::path kSource = std::filesystem::path(__FILE__).parent_path() / "../../../pipeline/signatures";

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// What a result must say; `error` empty.
void expect(const PreclassResult& r, bool dynamic, const Strings& reasons, const Strings& alerts = {},
            const std::string& clam_type = {}) {
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.dynamic, dynamic);
  EXPECT_EQ(r.reasons, reasons);
  EXPECT_EQ(r.alerts, alerts);
  if (!clam_type.empty()) {
    EXPECT_EQ(r.clam_type, clam_type);
  }
}

// ---- the rules, without an engine ------------------------------------------------------------

TEST(PreclassRules, PlainFileIsNotDynamic) {
  const PreclassResult r = rules_from_metadata(
      R"({"Magic":"CLAMJSONv0","RootFileType":"CL_TYPE_TEXT_ASCII","FileName":"notes.txt",
          "FileType":"CL_TYPE_TEXT_ASCII","FileSize":80,"FileMD5":"x"})");
  expect(r, false, {}, {}, "CL_TYPE_TEXT_ASCII");
  EXPECT_TRUE(r.limits.empty());
  EXPECT_EQ(r.metadata.front(), '{');
}

TEST(PreclassRules, MacroDeepInsideNestedContainersCounts) {
  // A zip holding a docm whose VBA project has the macro: three levels down.
  const PreclassResult r = rules_from_metadata(R"({"FileType":"CL_TYPE_ZIP","ContainedObjects":[
      {"FileName":"readme.txt","FileType":"CL_TYPE_TEXT_ASCII","FileSize":3},
      {"FileName":"report.docm","FileType":"CL_TYPE_OOXML_WORD","FileSize":9,"ContainedObjects":[
        {"FileName":"vbaProject.bin","FileType":"CL_TYPE_MSOLE2","FileSize":9,"Streams":["dir","_vba_project"],
         "HasMacros":true,"MacroLanguages":["VBA"]}]}]})");
  // The VBA project is an OLE2 file inside a document, but not an embedded object.
  expect(r, true, {"vba_macro"}, {}, "CL_TYPE_ZIP");
}

TEST(PreclassRules, MacroLanguages) {
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_MSXL","HasMacros":true,"MacroLanguages":["XLM"]})"), true,
         {"xlm_macro"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_MSXL","HasMacros":true,"MacroLanguages":["VBA","XLM","VBA"]})"),
         true, {"vba_macro", "xlm_macro"});
  // libclamav before 0.104 set HasMacros alone, for VBA.
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_MSWORD","HasMacros":1})"), true, {"vba_macro"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_MSWORD","HasMacros":false})"), false, {});
}

TEST(PreclassRules, Viruses14AndAlerts15AreBothRead) {
  const PreclassResult v = rules_from_metadata(
      R"({"FileType":"CL_TYPE_TEXT_ASCII","Viruses":["Sluice.Script.WScriptShell.UNOFFICIAL",
          "Sluice.Script.WScriptShell.UNOFFICIAL"]})");
  expect(v, true, {"signature"}, {"Sluice.Script.WScriptShell"});
  const PreclassResult a = rules_from_metadata(
      R"({"FileType":"CL_TYPE_TEXT_ASCII","Alerts":["Sluice.Script.WScriptShell.UNOFFICIAL"],
          "ContainedObjects":[{"FileType":"CL_TYPE_TEXT_ASCII","Alerts":["Sluice.Macro.AutoRun"]},
                              {"FileType":"CL_TYPE_TEXT_ASCII","Viruses":["Sluice.Html.Smuggling.UNOFFICIAL"]}]})");
  expect(a, true, {"signature"}, {"Sluice.Html.Smuggling", "Sluice.Macro.AutoRun", "Sluice.Script.WScriptShell"});
}

TEST(PreclassRules, LimitAlertsAreLimitsNotSignatures) {
  const PreclassResult r = rules_from_metadata(
      R"({"FileType":"CL_TYPE_ZIP","Viruses":["Heuristics.Limits.Exceeded.MaxFiles",
          "Heuristics.Limits.Exceeded.MaxScanTime","Heuristics.Limits.Exceeded.MaxRecursion",
          "Heuristics.Limits.Exceeded.MaxScanSize","Heuristics.Limits.Exceeded.MaxFileSize",
          "Heuristics.Limits.Exceeded.MaxEmbeddedPE"]})");
  expect(r, false, {});
  EXPECT_EQ(r.limits,
            (Strings{"MaxEmbeddedPE", "max_file_bytes", "max_files", "max_recursion", "max_scan_bytes", "max_scan_ms"}));
}

TEST(PreclassRules, Executables) {
  // At the top: executable; anywhere below, ContainedObjects or EmbeddedObjects: embedded.
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_MSEXE","PE":{"Type":"EXE"}})"), true, {"executable"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_ELF"})"), true, {"executable"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_MACHO_UNIBIN"})"), true, {"executable"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_JAVA"})"), true, {"executable"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_ZIP","ContainedObjects":[{"FileType":"CL_TYPE_MSEXE","PE":{"a":1}}]})"),
         true, {"embedded_executable"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_HTML","EmbeddedObjects":[{"FileType":"CL_TYPE_MSEXE","Offset":9,
         "ContainedObjects":[{"FileType":"CL_TYPE_MSEXE","FileSize":9,"PE":{"Type":"EXE"}}]}]})"),
         true, {"embedded_executable"});
  // "MZ" at the start of a text makes it CL_TYPE_MSEXE with an empty PE object: not counted.
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_MSEXE","PE":{}})"), false, {});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_ZIP","ContainedObjects":[{"FileType":"CL_TYPE_MSEXE"}]})"), false,
         {});
}

TEST(PreclassRules, OleObjects) {
  // OLE1 native data (a Packager object) or a Word object storage.
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_MSWORD","Streams":["worddocument","_1_ole10native"]})"), true,
         {"ole_object"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_MSWORD","Streams":["worddocument","_3_objinfo"]})"), true,
         {"ole_object"});
  // An OLE2 file inside a document...
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_OOXML_XL","ContainedObjects":[
         {"FileName":"oleObject1.bin","FileType":"CL_TYPE_MSOLE2","FileSize":9,"Streams":["_1_compobj","contents"]}]})"),
         true, {"ole_object"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_MSPPT","ContainedObjects":[
         {"FileName":"ppt00001152.doc","FileType":"CL_TYPE_MSOLE2","FileSize":9}]})"),
         true, {"ole_object"});
  // ... found at an offset of the document (its EmbeddedObjects), too.
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_MSWORD","EmbeddedObjects":[{"FileType":"CL_TYPE_MSXL","Offset":512,
         "ContainedObjects":[{"FileType":"CL_TYPE_MSXL","FileSize":9}]}]})"),
         true, {"ole_object"});
  // ... but not a document inside an archive, nor the document's VBA project.
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_ZIP","ContainedObjects":[
         {"FileName":"a.doc","FileType":"CL_TYPE_MSWORD","FileSize":9,"Streams":["worddocument"]}]})"),
         false, {});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_OOXML_WORD","ContainedObjects":[
         {"FileName":"vbaProject.bin","FileType":"CL_TYPE_MSOLE2","FileSize":9,"Streams":["_vba_project","dir"]}]})"),
         false, {});
  // What RTF carries is an \objdata object.
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_RTF","ContainedObjects":[{"FileType":"CL_TYPE_BINARY_DATA"}]})"),
         true, {"ole_object"});
}

TEST(PreclassRules, PdfStatistics) {
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_PDF","PDFStats":{"PDFVersion":"1.7","PageCount":1}})"), false, {});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_PDF","PDFStats":{"JavaScriptObjectCount":2,"OpenActionCount":1,
         "LaunchCount":1,"EmbeddedFileCount":3,"FlashObjectCount":0,"RichMediaCount":1}})"),
         true, {"pdf_javascript", "pdf_open_action", "pdf_launch", "pdf_embedded_file", "flash"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_ZIP","ContainedObjects":[{"FileType":"CL_TYPE_PDF",
         "PDFStats":{"FlashObjectCount":1}}]})"),
         true, {"flash"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_PDF","PDFStats":{"JavaScriptObjectCount":0,"LaunchCount":0}})"),
         false, {});
}

TEST(PreclassRules, FlashAndScripts) {
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_SWF"})"), true, {"flash"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_TEXT_ASCII","FileName":"INVOICE.JS"})"), true, {"script"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_ZIP","ContainedObjects":[{"FileType":"CL_TYPE_TEXT_ASCII",
         "FileName":"run.cmd"}]})"),
         true, {"script"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_LNK","FileName":"x"})"), true, {"script"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_SCRENC"})"), true, {"script"});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_TEXT_ASCII","FileName":"data.json"})"), false, {});
  expect(rules_from_metadata(R"({"FileType":"CL_TYPE_TEXT_ASCII","FileName":"js"})"), false, {});
}

TEST(PreclassRules, ReasonsComeInTheTableOrder) {
  const PreclassResult r = rules_from_metadata(R"({"FileType":"CL_TYPE_ZIP","Viruses":["X"],"ContainedObjects":[
      {"FileType":"CL_TYPE_SWF"},{"FileType":"CL_TYPE_PDF","PDFStats":{"LaunchCount":1}},
      {"FileType":"CL_TYPE_MSEXE","PE":{"a":1}},{"FileType":"CL_TYPE_MSXL","HasMacros":true,"MacroLanguages":["XLM"]},
      {"FileType":"CL_TYPE_TEXT_ASCII","FileName":"a.vbs"}]})");
  expect(r, true, {"xlm_macro", "embedded_executable", "pdf_launch", "flash", "script", "signature"}, {"X"});
}

TEST(PreclassRules, BadJsonIsAnError) {
  for (const char* bad : {"", "not json", "[1,2]", "{\"FileType\":", "null"}) {
    const PreclassResult r = rules_from_metadata(bad);
    EXPECT_FALSE(r.error.empty()) << bad;
    EXPECT_FALSE(r.dynamic);
    EXPECT_TRUE(r.reasons.empty());
  }
  // Unexpected shapes are ignored, not errors.
  expect(rules_from_metadata(R"({"FileType":7,"ContainedObjects":{"a":1},"EmbeddedObjects":[1,"x",null],
         "Viruses":"X","PDFStats":[1],"HasMacros":"yes","Streams":[1]})"),
         false, {});
}

TEST(PreclassRules, InvalidUtf8NamesAreReplaced) {
  // libclamav copies member names as it finds them (here Latin-1).
  const PreclassResult r = rules_from_metadata("{\"FileType\":\"CL_TYPE_ZIP\",\"ContainedObjects\":[{\"FileName\":"
                                               "\"caf\xE9.js\",\"FileType\":\"CL_TYPE_TEXT_ASCII\"}]}");
  expect(r, true, {"script"});
  EXPECT_NE(r.metadata.find("caf\xEF\xBF\xBD.js"), std::string::npos) << r.metadata;
}

TEST(PreclassRules, DeepNestingAndHugeMetadataAreBounded) {
  // The walk keeps its own stack: 20,000 levels (libclamav would stop at max_recursion).
  std::string deep;
  const int levels = 20000;
  for (int i = 0; i < levels; ++i) deep += R"({"FileType":"CL_TYPE_ZIP","ContainedObjects":[)";
  deep += R"({"FileType":"CL_TYPE_SWF"})";
  for (int i = 0; i < levels; ++i) deep += "]}";
  const PreclassResult r = rules_from_metadata(deep);
  expect(r, true, {"flash"});
  EXPECT_NE(r.metadata.find("(deeper objects left out)"), std::string::npos);
  EXPECT_TRUE(nlohmann::json::accept(r.metadata));

  // Temporary paths are left out of the metadata kept; it is cut at the bound.
  std::string big = R"({"FileType":"CL_TYPE_ZIP","FilePath":"/tmp/x","ContainedObjects":[)";
  for (int i = 0; i < 5000; ++i)
    big += std::string(i ? "," : "") + R"({"FileName":"member)" + std::to_string(i) +
           R"(.txt","FilePath":"/tmp/scantemp/a","FileType":"CL_TYPE_TEXT_ASCII"})";
  big += "]}";
  const PreclassResult b = rules_from_metadata(big);
  expect(b, false, {});
  EXPECT_EQ(b.metadata.size(), kPreclassMetadataMax);
  EXPECT_EQ(b.metadata.find("FilePath"), std::string::npos);
  EXPECT_EQ(b.metadata.rfind(R"({"FileType":"CL_TYPE_ZIP","ContainedObjects":[{"FileName":"member0.txt")", 0), 0u)
      << b.metadata.substr(0, 200);
}

// ---- the engine ------------------------------------------------------------------------------

class Preclass : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string error;
    engine_ = Preclassifier::create(PreclassLimits{}, default_signatures_dir(), error).release();
    ASSERT_NE(engine_, nullptr) << error;
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  static PreclassResult classify(const std::filesystem::path& p) {
    const std::string data = read_file(p);
    EXPECT_FALSE(data.empty()) << p << (p.string().rfind(kClam.string(), 0) == 0 ? " (needs clamav-testfiles)" : "");
    return engine_->classify(reinterpret_cast<const uint8_t*>(data.data()), data.size(), p.filename().string());
  }
  static PreclassResult classify(std::string_view data, std::string_view name) {
    return engine_->classify(reinterpret_cast<const uint8_t*>(data.data()), data.size(), name);
  }
  static Preclassifier* engine_;
};
Preclassifier* Preclass::engine_ = nullptr;

TEST_F(Preclass, TheBuildCarriesTheSignaturesOfTheSourceTree) {
  EXPECT_EQ(engine_->signature_count(), 6u);
  std::size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(kSource)) {
    ++files;
    EXPECT_EQ(read_file(std::filesystem::path(default_signatures_dir()) / e.path().filename()), read_file(e.path()))
        << e.path().filename() << " differs in the build: re-run cmake";
  }
  EXPECT_GT(files, 0u);
  EXPECT_EQ(engine_->limits().temp_dir, "/dev/shm");  // the lab machines have it
}

// What each of ClamAV's own test files holds (clam.exe is a 544-byte PE that prints a message).
TEST_F(Preclass, ClamavTestFiles) {
  struct Case {
    const char* file;
    const char* type;
    Strings reasons;
  };
  const Case cases[] = {
      // A Word document with clam.exe packaged as an OLE object (Ole10Native, ObjInfo).
      {"clam.ole.doc", "CL_TYPE_MSWORD", {"embedded_executable", "ole_object"}},
      // A PowerPoint deck embedding that Word document (extracted from the slide stream).
      {"clam.ppt", "CL_TYPE_MSPPT", {"embedded_executable", "ole_object"}},
      // An RTF with clam.exe in an \objdata object.
      {"clam.exe.rtf", "CL_TYPE_RTF", {"embedded_executable", "ole_object"}},
      // A PDF with clam.exe as an embedded file; no JavaScript, no action.
      {"clam.pdf", "CL_TYPE_PDF", {"embedded_executable", "pdf_embedded_file"}},
      {"clam.exe", "CL_TYPE_MSEXE", {"executable"}},
      // Packed or installer PEs: the unpacked or contained PE is an embedded executable.
      {"clam-upx.exe", "CL_TYPE_MSEXE", {"executable", "embedded_executable"}},
      {"clam-nsis.exe", "CL_TYPE_MSEXE", {"executable", "embedded_executable"}},
      // clam.exe in every container libclamav opens.
      {"clam.zip", "CL_TYPE_ZIP", {"embedded_executable"}},
      {"clam.7z", "CL_TYPE_7Z", {"embedded_executable"}},
      {"clam.tar.gz", "CL_TYPE_GZ", {"embedded_executable"}},
      {"clam.cab", "CL_TYPE_MSCAB", {"embedded_executable"}},
      {"clam.chm", "CL_TYPE_MSCHM", {"embedded_executable"}},
      {"clam.arj", "CL_TYPE_ARJ", {"embedded_executable"}},
      {"clam.exe.bz2", "CL_TYPE_BZ", {"embedded_executable"}},
      {"clam.exe.binhex", "CL_TYPE_BINHEX", {"embedded_executable"}},
      {"clam.tnef", "CL_TYPE_TNEF", {"embedded_executable"}},
      {"clam.mail", "CL_TYPE_MAIL", {"embedded_executable"}},
      {"clam.exe.mbox.base64", "CL_TYPE_MAIL", {"embedded_executable"}},
      // An HTML page carrying a MIME message with clam.exe.
      {"clam.exe.html", "CL_TYPE_HTML", {"embedded_executable"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    const PreclassResult r = classify(kClam / c.file);
    expect(r, true, c.reasons, {}, c.type);
    EXPECT_TRUE(r.limits.empty());
    EXPECT_GT(r.ms, 0);
    EXPECT_EQ(r.metadata.find("FilePath"), std::string::npos);
  }
  // Nine levels of tar.gz around clam.exe: libclamav stops at max_recursion (8) before it.
  const PreclassResult deep = classify(kClam / "clam_cache_emax.tgz");
  expect(deep, false, {}, {}, "CL_TYPE_GZ");
  EXPECT_EQ(deep.limits, Strings{"max_recursion"});
}

TEST_F(Preclass, OfficeMacrosAgainstTheSameDocumentWithout) {
  expect(classify(kData / "macro.docm"), true, {"vba_macro", "signature"}, {"Sluice.Macro.AutoRun"},
         "CL_TYPE_OOXML_WORD");
  expect(classify(kData / "plain.docx"), false, {}, {}, "CL_TYPE_OOXML_WORD");
  expect(classify(kData / "macro.xlsm"), true, {"vba_macro", "signature"}, {"Sluice.Macro.AutoRun"}, "CL_TYPE_OOXML_XL");
  expect(classify(kData / "macro.doc"), true, {"vba_macro", "signature"}, {"Sluice.Macro.AutoRun"}, "CL_TYPE_MSWORD");
  expect(classify(kData / "plain.doc"), false, {}, {}, "CL_TYPE_MSWORD");
  // An Excel 4.0 macro sheet (hidden) beside a worksheet, against two worksheets.
  expect(classify(kData / "xlm.xls"), true, {"xlm_macro"}, {}, "CL_TYPE_MSXL");
  expect(classify(kData / "plain.xls"), false, {}, {}, "CL_TYPE_MSXL");
  // The macro document inside a zip.
  expect(classify(kData / "macro_in.zip"), true, {"vba_macro", "signature"}, {"Sluice.Macro.AutoRun"}, "CL_TYPE_ZIP");
  // The name plays no part for a document.
  const std::string docm = read_file(kData / "macro.docm");
  expect(classify(docm, ""), true, {"vba_macro", "signature"}, {"Sluice.Macro.AutoRun"});
  expect(classify(docm, "renamed.txt"), true, {"vba_macro", "signature"}, {"Sluice.Macro.AutoRun"});
}

TEST_F(Preclass, ExecutablesAloneInAZipAndInAWordDocument) {
  expect(classify(kData / "setup.exe"), true, {"executable"}, {}, "CL_TYPE_MSEXE");
  expect(classify(kData / "pe.zip"), true, {"embedded_executable"}, {}, "CL_TYPE_ZIP");
  // Packaged as an OLE object (word/embeddings/oleObject1.bin, an Ole10Native stream).
  expect(classify(kData / "pe_object.docx"), true, {"embedded_executable", "ole_object"}, {}, "CL_TYPE_OOXML_WORD");
  // A text that starts with "MZ" is typed CL_TYPE_MSEXE by libclamav but is no executable.
  expect(classify("MZ is where the meeting is.\n", "note.txt"), false, {}, {}, "CL_TYPE_MSEXE");
}

TEST_F(Preclass, PdfJavaScriptAndActionsAgainstAPlainPdf) {
  expect(classify(kData / "plain.pdf"), false, {}, {}, "CL_TYPE_PDF");
  expect(classify(kData / "js.pdf"), true, {"pdf_javascript", "pdf_open_action"}, {}, "CL_TYPE_PDF");
  expect(classify(kData / "launch.pdf"), true, {"pdf_launch"}, {}, "CL_TYPE_PDF");
  expect(classify(kData / "attach.pdf"), true, {"pdf_embedded_file"}, {}, "CL_TYPE_PDF");
}

TEST_F(Preclass, FlashTextAndScripts) {
  expect(classify(kData / "movie.swf"), true, {"flash"}, {}, "CL_TYPE_SWF");
  expect(classify(kData / "notes.txt"), false, {}, {}, "CL_TYPE_TEXT_ASCII");
  // A script by its name, whatever it holds.
  expect(classify(read_file(kData / "notes.txt"), "notes.js"), true, {"script"});
  // Each of our signatures on a file made for it.
  const std::string cradle = "Sluice.Script.PowerShell.DownloadCradle";
  expect(classify(kData / "cradle.ps1"), true, {"script", "signature"}, {cradle});
  expect(classify(kData / "cradle.txt"), true, {"signature"}, {cradle}, "CL_TYPE_TEXT_ASCII");
  expect(classify(kData / "iwr.ps1"), true, {"script", "signature"}, {"Sluice.Script.PowerShell.WebRequestExecute"});
  expect(classify(kData / "encoded.bat"), true, {"script", "signature"}, {"Sluice.Script.PowerShell.EncodedCommand"});
  expect(classify(kData / "run.vbs"), true, {"script", "signature"}, {"Sluice.Script.WScriptShell"});
  expect(classify(kData / "smuggle.html"), true, {"signature"}, {"Sluice.Html.Smuggling"}, "CL_TYPE_HTML");
  // An HTML page with an ordinary script: nothing.
  expect(classify(kData / "page.html"), false, {}, {}, "CL_TYPE_HTML");
  // The cradle as UTF-16LE text (PowerShell's own encoding for saved scripts).
  const std::string text = read_file(kData / "cradle.txt");
  std::string wide = "\xFF\xFE";
  for (char c : text) wide += std::string{c, '\0'};
  expect(classify(wide, "cradle.txt"), true, {"signature"}, {cradle}, "CL_TYPE_TEXT_UTF16LE");
}

TEST_F(Preclass, EmptyOddlyNamedAndOversizedFiles) {
  const PreclassResult empty = engine_->classify(nullptr, 0, "empty.txt");
  expect(empty, false, {});
  EXPECT_EQ(empty.metadata, "");
  // A name that is not UTF-8 (Latin-1) still gives valid metadata.
  const PreclassResult latin = classify(read_file(kData / "cradle.txt"), "caf\xE9.ps1");
  expect(latin, true, {"script", "signature"}, {"Sluice.Script.PowerShell.DownloadCradle"});
  EXPECT_NE(latin.metadata.find("caf\xEF\xBF\xBD.ps1"), std::string::npos) << latin.metadata;
  EXPECT_TRUE(nlohmann::json::accept(latin.metadata));
  // Over max_file_bytes: refused before libclamav sees it (no byte is read).
  const uint8_t byte = 0;
  const PreclassResult big = engine_->classify(&byte, (32u << 20) + 1, "big.bin");
  EXPECT_FALSE(big.dynamic);
  EXPECT_NE(big.error.find("max_file_bytes"), std::string::npos) << big.error;
  EXPECT_EQ(big.limits, Strings{"max_file_bytes"});
}

TEST_F(Preclass, ThreadsShareTheEngine) {
  const char* files[] = {"macro.docm", "pe_object.docx", "js.pdf", "cradle.ps1", "plain.docx", "xlm.xls"};
  std::vector<std::string> data;
  std::vector<PreclassResult> serial;
  for (const char* f : files) {
    data.push_back(read_file(kData / f));
    serial.push_back(classify(data.back(), f));
  }
  // (file index, result) per thread.
  std::vector<std::vector<std::pair<std::size_t, PreclassResult>>> got(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round)
        for (std::size_t i = 0; i < data.size(); ++i) {
          const std::size_t k = (i + t) % data.size();  // each thread in another order
          got[t].emplace_back(k, classify(data[k], files[k]));
        }
    });
  for (auto& th : threads) th.join();
  for (const auto& results : got) {
    ASSERT_EQ(results.size(), 3 * data.size());
    for (const auto& [k, r] : results) {
      SCOPED_TRACE(files[k]);
      EXPECT_EQ(r.error, "");
      EXPECT_EQ(r.reasons, serial[k].reasons);
      EXPECT_EQ(r.alerts, serial[k].alerts);
      EXPECT_EQ(r.clam_type, serial[k].clam_type);
    }
  }
}

// ---- creation errors -------------------------------------------------------------------------

TEST(PreclassCreate, RefusesWhatWouldLeaveItUnboundedOrEmpty) {
  std::string error;
  PreclassLimits zero;
  zero.max_recursion = 0;
  EXPECT_EQ(Preclassifier::create(zero, default_signatures_dir(), error), nullptr);
  EXPECT_NE(error.find("at least 1"), std::string::npos) << error;

  EXPECT_EQ(Preclassifier::create(PreclassLimits{}, "/nonexistent/signatures", error), nullptr);
  EXPECT_NE(error.find("/nonexistent/signatures"), std::string::npos) << error;

  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("preclass_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  EXPECT_EQ(Preclassifier::create(PreclassLimits{}, dir.string(), error), nullptr);
  EXPECT_NE(error.find("no signature"), std::string::npos) << error;
  std::ofstream(dir / "bad.ldb") << "Broken;Engine:81-255,Target:0;0&1;414141\n";
  EXPECT_EQ(Preclassifier::create(PreclassLimits{}, dir.string(), error), nullptr);
  EXPECT_NE(error.find("loading signatures"), std::string::npos) << error;
  std::filesystem::remove_all(dir);

  PreclassLimits tmp;
  tmp.temp_dir = "/nonexistent/tmp";
  EXPECT_EQ(Preclassifier::create(tmp, default_signatures_dir(), error), nullptr);
  EXPECT_NE(error.find("/nonexistent/tmp"), std::string::npos) << error;
}

// ---- bombs -----------------------------------------------------------------------------------

// Limits small enough for small bombs (the fixtures stay a few KiB); the default ones are the
// same code with larger numbers (a 568-byte zip of 64 MiB of zeros costs 0.7-0.9 s of CPU under them).
class PreclassBombs : public ::testing::Test {
 protected:
  static PreclassLimits limits() {
    PreclassLimits l;
    l.max_file_bytes = 1 << 20;
    l.max_scan_bytes = 2 << 20;
    l.max_recursion = 8;
    l.max_files = 10;
    l.max_scan_ms = 2000;
    return l;
  }
  static void SetUpTestSuite() {
    std::string error;
    engine_ = Preclassifier::create(limits(), default_signatures_dir(), error).release();
    ASSERT_NE(engine_, nullptr) << error;
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  // Classifies a fixture and checks the scan ended in time (with a margin for a busy machine).
  static PreclassResult bomb(const Preclassifier& e, const char* name, double max_ms) {
    const std::string data = read_file(kData / name);
    const auto t0 = std::chrono::steady_clock::now();
    PreclassResult r = e.classify(reinterpret_cast<const uint8_t*>(data.data()), data.size(), name);
    const double wall = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LT(wall, max_ms) << name;
    EXPECT_EQ(r.error, "") << name;
    return r;
  }
  static Preclassifier* engine_;
};
Preclassifier* PreclassBombs::engine_ = nullptr;

TEST_F(PreclassBombs, RatioBombIsCutAtMaxFileBytes) {
  // 64 MiB of zeros three zips down: libclamav extracts the member up to max_file_bytes, silently.
  const PreclassResult r = bomb(*engine_, "ratio_bomb.zip", 2000);
  expect(r, false, {}, {}, "CL_TYPE_ZIP");
  const nlohmann::json meta = nlohmann::json::parse(r.metadata);
  const nlohmann::json& zeros = meta["ContainedObjects"][0]["ContainedObjects"][0]["ContainedObjects"][0]
                                    ["ContainedObjects"][0];
  EXPECT_EQ(zeros["FileName"], "zeros.bin");
  EXPECT_LE(zeros["FileSize"].get<uint64_t>(), limits().max_file_bytes);
}

TEST_F(PreclassBombs, ScanSizeRecursionAndFileCountEndTheScan) {
  const PreclassResult scan = bomb(*engine_, "scan_bomb.zip", 2000);
  expect(scan, false, {});
  EXPECT_EQ(scan.limits, Strings{"max_scan_bytes"});
  const PreclassResult depth = bomb(*engine_, "depth_bomb.zip", 2000);
  expect(depth, false, {});
  EXPECT_EQ(depth.limits, Strings{"max_recursion"});
  // The 51st member, a download cradle, is never reached: the facts are partial, and say so.
  const PreclassResult files = bomb(*engine_, "files_bomb.zip", 2000);
  expect(files, false, {});
  EXPECT_EQ(files.limits, Strings{"max_files"});
}

TEST_F(PreclassBombs, ScanTimeEndsTheScan) {
  PreclassLimits l;
  l.max_file_bytes = 64 << 20;
  l.max_scan_bytes = 256 << 20;
  l.max_scan_ms = 50;
  std::string error;
  const auto timed = Preclassifier::create(l, default_signatures_dir(), error);
  ASSERT_NE(timed, nullptr) << error;
  // Unbounded by size, the ratio bomb runs into the time limit; libclamav checks it between steps,
  // so it stops a little after 50 ms (hundreds of milliseconds on a loaded machine).
  const PreclassResult r = bomb(*timed, "ratio_bomb.zip", 3000);
  EXPECT_FALSE(r.dynamic);
  EXPECT_EQ(r.limits, Strings{"max_scan_ms"});
}

}  // namespace
