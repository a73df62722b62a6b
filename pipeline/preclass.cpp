// ClamAV pre-classification: the engine (create, classify) and the rules (rules_from_metadata).
// NOTES.md has the rules as a table; keep the two equal.
#include "pipeline/preclass.h"

#include <clamav.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

namespace sluice::pipeline {

namespace {

using Json = nlohmann::ordered_json;

// ---- libclamav, once per process ---------------------------------------------------------------

// libclamav's messages go to stderr by default, a warning per odd file ("cli_scanxz: decompress
// file size exceeds limits"...): per-file noise for an appliance that scans every attachment. Only
// errors (a temporary directory that cannot be written, memory) are worth a line.
void on_clamav_message(enum cl_msg severity, const char* fullmsg, const char* /*msg*/, void* /*context*/) {
  if (severity != CL_MSG_ERROR || fullmsg == nullptr) return;
  std::string line = "preclass: ";
  line += fullmsg;
  if (line.empty() || line.back() != '\n') line += '\n';
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
}

cl_error_t init_clamav() {
  static std::once_flag once;
  static cl_error_t rc = CL_SUCCESS;
  std::call_once(once, [] {
    // Both are process-wide; libclamav asks for them before any thread scans.
    cl_set_clcb_msg(on_clamav_message);
    rc = cl_init(CL_INIT_DEFAULT);
  });
  return rc;
}

// What the file-properties callback receives for one scan (its cbdata is the scan's context).
struct ScanContext {
  std::string json;
  bool called = false;
};

int on_file_props(const char* json, int rc, void* cbdata) {
  auto* ctx = static_cast<ScanContext*>(cbdata);
  if (ctx != nullptr && json != nullptr) {
    try {
      ctx->json.assign(json);
      ctx->called = true;
    } catch (...) {  // out of memory: the scan is reported without metadata
    }
  }
  return rc;  // the value returned becomes the scan's result: keep libclamav's
}

bool writable_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && ::access(path.c_str(), W_OK | X_OK) == 0;
}

// ---- the rules -------------------------------------------------------------------------------

// The reasons, in the order they are reported (NOTES.md, "pre-classification rules").
enum Reason : unsigned {
  kVbaMacro,
  kXlmMacro,
  kExecutable,
  kEmbeddedExecutable,
  kOleObject,
  kPdfJavascript,
  kPdfOpenAction,
  kPdfLaunch,
  kPdfEmbeddedFile,
  kFlash,
  kScript,
  kSignature,
  kReasonCount
};
constexpr std::array<const char*, kReasonCount> kReasonNames = {
    "vba_macro",  "xlm_macro",       "executable", "embedded_executable", "ole_object", "pdf_javascript",
    "pdf_open_action", "pdf_launch", "pdf_embedded_file", "flash",   "script",     "signature"};

// libclamav names alerts of the limits it reached "Heuristics.Limits.Exceeded.<Limit>"
// (CL_SCAN_HEURISTIC_EXCEEDS_MAX); they are facts about the scan, not signatures.
constexpr std::string_view kLimitAlert = "Heuristics.Limits.Exceeded.";
// Signatures outside ClamAV's signed databases (ours) get this suffix.
constexpr std::string_view kUnofficial = ".UNOFFICIAL";

std::string limit_name(std::string_view clam) {
  if (clam == "MaxFileSize") return "max_file_bytes";
  if (clam == "MaxScanSize") return "max_scan_bytes";
  if (clam == "MaxRecursion") return "max_recursion";
  if (clam == "MaxFiles") return "max_files";
  if (clam == "MaxScanTime") return "max_scan_ms";
  // Others (MaxEmbeddedPE, MaxHTMLNormalize, MaxPartitions...): libclamav's own name.
  return std::string(clam);
}

bool is_ole2_type(std::string_view t) {
  return t == "CL_TYPE_MSOLE2" || t == "CL_TYPE_MSWORD" || t == "CL_TYPE_MSXL" || t == "CL_TYPE_MSPPT";
}

// Files in which an OLE2 file is an embedded object (the document's own parts are not OLE2 files
// to libclamav, except the VBA project, excluded by its streams).
bool is_document_type(std::string_view t) {
  return is_ole2_type(t) || t == "CL_TYPE_OOXML_WORD" || t == "CL_TYPE_OOXML_XL" || t == "CL_TYPE_OOXML_PPT" ||
         t == "CL_TYPE_RTF" || t == "CL_TYPE_XML_WORD" || t == "CL_TYPE_XML_XL";
}

// Extensions of files Windows runs through a script host or shell (lower case).
bool has_script_extension(std::string_view name) {
  static constexpr std::string_view kExt[] = {"js",  "jse", "vbs", "vbe",  "wsf",  "wsh", "wsc",
                                              "sct", "hta", "ps1", "psm1", "psd1", "bat", "cmd"};
  const std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || name.size() - dot - 1 > 4) return false;
  std::string ext(name.substr(dot + 1));
  for (char& c : ext) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return std::find(std::begin(kExt), std::end(kExt), ext) != std::end(kExt);
}

std::string_view str_field(const Json& node, const char* key) {
  auto it = node.find(key);
  if (it == node.end() || !it->is_string()) return {};
  return it->get_ref<const std::string&>();
}

bool has_string(const Json& node, const char* key, std::string_view value) {
  auto it = node.find(key);
  if (it == node.end() || !it->is_array()) return false;
  for (const Json& v : *it)
    if (v.is_string() && v.get_ref<const std::string&>() == value) return true;
  return false;
}

uint64_t count_field(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer()) return it->get<int64_t>() > 0 ? 1 : 0;
  if (it->is_boolean()) return it->get<bool>() ? 1 : 0;
  return 0;
}

bool is_executable(const Json& node, std::string_view type) {
  if (type == "CL_TYPE_MSEXE") {
    // libclamav types anything starting "MZ" as CL_TYPE_MSEXE, a text that begins "MZ" too; a
    // parsed PE header leaves a non-empty "PE" object. DOS programs (MZ only) are not counted.
    auto pe = node.find("PE");
    return pe != node.end() && pe->is_object() && !pe->empty();
  }
  return type == "CL_TYPE_ELF" || type == "CL_TYPE_MACHO" || type == "CL_TYPE_MACHO_UNIBIN" || type == "CL_TYPE_JAVA";
}

struct Facts {
  std::array<bool, kReasonCount> reason{};
  std::vector<std::string> alerts;
  std::vector<std::string> limits;
};

void read_alerts(const Json& node, const char* key, Facts& f) {
  auto it = node.find(key);
  if (it == node.end() || !it->is_array()) return;
  for (const Json& v : *it) {
    if (!v.is_string()) continue;
    std::string_view name = v.get_ref<const std::string&>();
    if (name.substr(0, kLimitAlert.size()) == kLimitAlert) {
      f.limits.push_back(limit_name(name.substr(kLimitAlert.size())));
      continue;
    }
    if (name.size() > kUnofficial.size() && name.substr(name.size() - kUnofficial.size()) == kUnofficial)
      name.remove_suffix(kUnofficial.size());
    if (name.empty()) continue;
    f.alerts.emplace_back(name);
    f.reason[kSignature] = true;
  }
}

// One object of the tree: the top file, an entry of ContainedObjects (a file libclamav extracted)
// or of EmbeddedObjects (a file found at an offset, whose own ContainedObjects holds it).
void apply_rules(const Json& node, bool top, std::string_view container, Facts& f) {
  const std::string_view type = str_field(node, "FileType");

  // Macros: HasMacros, with the languages in MacroLanguages (VBA, XLM). Before 0.104 libclamav set
  // HasMacros alone, for VBA.
  auto has_macros = node.find("HasMacros");
  if (has_macros != node.end() && ((has_macros->is_boolean() && has_macros->get<bool>()) ||
                                   (has_macros->is_number() && has_macros->get<double>() != 0))) {
    const bool xlm = has_string(node, "MacroLanguages", "XLM");
    const bool vba = has_string(node, "MacroLanguages", "VBA");
    if (xlm) f.reason[kXlmMacro] = true;
    if (vba || !xlm) f.reason[kVbaMacro] = true;
  }

  if (is_executable(node, type)) f.reason[top ? kExecutable : kEmbeddedExecutable] = true;

  // OLE objects: an OLE1 native payload or a Word object storage in the streams; an OLE2 file
  // inside a document that is not its VBA project; anything RTF carries (RTF's only embedded
  // files are \objdata objects).
  if (has_string(node, "Streams", "_1_ole10native") || has_string(node, "Streams", "_3_objinfo"))
    f.reason[kOleObject] = true;
  if (!top && is_ole2_type(type) && is_document_type(container) && !has_string(node, "Streams", "_vba_project"))
    f.reason[kOleObject] = true;
  if (!top && container == "CL_TYPE_RTF") f.reason[kOleObject] = true;

  auto pdf = node.find("PDFStats");
  if (pdf != node.end() && pdf->is_object()) {
    if (count_field(*pdf, "JavaScriptObjectCount")) f.reason[kPdfJavascript] = true;
    if (count_field(*pdf, "OpenActionCount")) f.reason[kPdfOpenAction] = true;
    if (count_field(*pdf, "LaunchCount")) f.reason[kPdfLaunch] = true;
    if (count_field(*pdf, "EmbeddedFileCount")) f.reason[kPdfEmbeddedFile] = true;
    if (count_field(*pdf, "FlashObjectCount") || count_field(*pdf, "RichMediaCount")) f.reason[kFlash] = true;
  }
  if (type == "CL_TYPE_SWF") f.reason[kFlash] = true;

  if (type == "CL_TYPE_SCRENC" || type == "CL_TYPE_LNK" || has_script_extension(str_field(node, "FileName")))
    f.reason[kScript] = true;

  read_alerts(node, "Viruses", f);  // libclamav 1.4
  read_alerts(node, "Alerts", f);   // libclamav 1.5
}

void sort_unique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// libclamav writes names as it finds them (zip members in CP437 or anything): JSON text that is
// not UTF-8, which nlohmann::json refuses. Invalid sequences become U+FFFD.
std::string valid_utf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t n = in.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte (RFC 3629 section 4)
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    bool ok = len != 0 && i + len <= n && s[i + 1] >= lo && s[i + 1] <= hi;
    for (std::size_t k = 2; ok && k < len; ++k) ok = (s[i + k] & 0xC0) == 0x80;
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

// The metadata kept for reports: temporary paths (FilePath: where libclamav extracted each object,
// gone after the scan) removed, objects deeper than kMaxReportDepth replaced by a note (the JSON
// writer recurses; libclamav's own trees are far shallower, max_recursion bounds them), compact,
// cut at the bound on a character boundary.
constexpr int kMaxReportDepth = 64;

std::string report_metadata(Json& root) {
  std::vector<std::pair<Json*, int>> stack{{&root, 0}};
  while (!stack.empty()) {
    auto [j, depth] = stack.back();
    stack.pop_back();
    if (depth >= kMaxReportDepth) {
      *j = "(deeper objects left out)";
      continue;
    }
    if (j->is_object()) {
      j->erase("FilePath");
      for (auto& [key, value] : j->items())
        if (value.is_structured()) stack.emplace_back(&value, depth + 1);
    } else if (j->is_array()) {
      for (Json& value : *j)
        if (value.is_structured()) stack.emplace_back(&value, depth + 1);
    }
  }
  std::string text = root.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (text.size() > kPreclassMetadataMax) {
    std::size_t cut = kPreclassMetadataMax;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text.resize(cut);
  }
  return text;
}

}  // namespace

PreclassResult rules_from_metadata(std::string_view json) {
  PreclassResult r;
  try {
    Json root = Json::parse(valid_utf8(json), nullptr, /*allow_exceptions=*/false);
    if (root.is_discarded() || !root.is_object()) {
      r.error = "libclamav's metadata is not a JSON object";
      return r;
    }
    Facts f;
    // Depth-first over the tree, with an explicit stack: libclamav bounds the depth by
    // max_recursion, but this function takes any JSON. Children are pushed in reverse so that the
    // walk meets them in document order.
    struct Frame {
      const Json* node;
      std::string_view container;  // FileType of the file holding this object
      bool top;
      bool embedded;  // an EmbeddedObjects entry: a place in its container, not a file
    };
    std::vector<Frame> stack{{&root, {}, true, false}};
    while (!stack.empty()) {
      const Frame fr = stack.back();
      stack.pop_back();
      const Json& node = *fr.node;
      if (!node.is_object()) continue;
      apply_rules(node, fr.top, fr.container, f);
      const std::string_view type = str_field(node, "FileType");
      auto push = [&](const char* key, std::string_view container, bool embedded) {
        auto it = node.find(key);
        if (it == node.end() || !it->is_array()) return;
        for (auto c = it->rbegin(); c != it->rend(); ++c) stack.push_back({&*c, container, false, embedded});
      };
      // What an EmbeddedObjects entry holds was found in the entry's container.
      push("ContainedObjects", fr.embedded ? fr.container : type, false);
      push("EmbeddedObjects", type, true);
    }
    sort_unique(f.alerts);
    sort_unique(f.limits);
    for (unsigned i = 0; i < kReasonCount; ++i)
      if (f.reason[i]) r.reasons.emplace_back(kReasonNames[i]);
    r.dynamic = !r.reasons.empty();
    r.alerts = std::move(f.alerts);
    r.limits = std::move(f.limits);
    r.clam_type = std::string(str_field(root, "FileType"));
    r.metadata = report_metadata(root);
  } catch (const std::exception& e) {
    r = PreclassResult{};
    r.error = std::string("reading libclamav's metadata: ") + e.what();
  }
  return r;
}

// ---- the engine ------------------------------------------------------------------------------

std::unique_ptr<Preclassifier> Preclassifier::create(const PreclassLimits& limits, const std::string& signatures_dir,
                                                     std::string& error) {
  error.clear();
  // libclamav reads 0 as "no limit": a bomb would then run away.
  if (limits.max_file_bytes == 0 || limits.max_scan_bytes == 0 || limits.max_recursion == 0 ||
      limits.max_files == 0 || limits.max_scan_ms == 0) {
    error = "preclass: every limit must be at least 1 (0 means no limit to libclamav)";
    return nullptr;
  }
  constexpr uint64_t kMaxLL = static_cast<uint64_t>(INT64_MAX);
  if (limits.max_file_bytes > kMaxLL || limits.max_scan_bytes > kMaxLL) {
    error = "preclass: max_file_bytes and max_scan_bytes must fit in 63 bits";
    return nullptr;
  }
  struct stat st {};
  if (::stat(signatures_dir.c_str(), &st) != 0) {
    error = "preclass: signature directory '" + signatures_dir + "': " + std::strerror(errno);
    return nullptr;
  }
  if (!S_ISDIR(st.st_mode)) {
    error = "preclass: signature directory '" + signatures_dir + "': not a directory";
    return nullptr;
  }
  // libclamav says "Can't open file or directory" of a directory without database files.
  static constexpr std::string_view kDbExt[] = {".ldb", ".ndb", ".hdb", ".hsb", ".mdb", ".msb", ".yara",
                                                ".yar", ".cdb", ".ftm", ".fp",  ".sfp", ".ign2"};
  bool any_db = false;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(signatures_dir, ec)) {
    const std::string ext = entry.path().extension().string();
    if (std::find(std::begin(kDbExt), std::end(kDbExt), ext) != std::end(kDbExt)) any_db = true;
  }
  if (!any_db) {
    error = "preclass: no signature file (.ldb, .ndb, .yara...) in '" + signatures_dir +
            "' (expected a copy of pipeline/signatures)";
    return nullptr;
  }
  std::string temp_dir = limits.temp_dir;
  if (temp_dir.empty() && writable_dir("/dev/shm")) temp_dir = "/dev/shm";
  if (!temp_dir.empty() && !writable_dir(temp_dir)) {
    error = "preclass: temporary directory " + temp_dir + " is not a writable directory";
    return nullptr;
  }

  if (cl_error_t rc = init_clamav(); rc != CL_SUCCESS) {
    error = std::string("preclass: cl_init: ") + cl_strerror(rc);
    return nullptr;
  }
  std::unique_ptr<Preclassifier> p(new Preclassifier());
  p->limits_ = limits;
  p->limits_.temp_dir = temp_dir;
  p->engine_ = cl_engine_new();
  if (p->engine_ == nullptr) {
    error = "preclass: cl_engine_new failed (out of memory)";
    return nullptr;
  }
  cl_engine* e = p->engine_;
  struct NumSetting {
    cl_engine_field field;
    long long value;
    const char* name;
  };
  const NumSetting nums[] = {
      {CL_ENGINE_MAX_FILESIZE, static_cast<long long>(limits.max_file_bytes), "max_file_bytes"},
      {CL_ENGINE_MAX_SCANSIZE, static_cast<long long>(limits.max_scan_bytes), "max_scan_bytes"},
      {CL_ENGINE_MAX_RECURSION, limits.max_recursion, "max_recursion"},
      {CL_ENGINE_MAX_FILES, limits.max_files, "max_files"},
      {CL_ENGINE_MAX_SCANTIME, limits.max_scan_ms, "max_scan_ms"},
      // libclamav's cache of files it found clean (by MD5) only costs memory here: the verdict
      // cache, by SHA-256, is where a file seen before is answered.
      {CL_ENGINE_DISABLE_CACHE, 1, "disable_cache"},
  };
  for (const NumSetting& s : nums) {
    if (cl_error_t rc = cl_engine_set_num(e, s.field, s.value); rc != CL_SUCCESS) {
      error = std::string("preclass: setting ") + s.name + ": " + cl_strerror(rc);
      return nullptr;
    }
  }
  if (!temp_dir.empty()) {
    if (cl_error_t rc = cl_engine_set_str(e, CL_ENGINE_TMPDIR, temp_dir.c_str()); rc != CL_SUCCESS) {
      error = std::string("preclass: setting the temporary directory: ") + cl_strerror(rc);
      return nullptr;
    }
  }
  unsigned signatures = 0;
  // No CL_DB_* option: no bytecode, no phishing or PUA sets; the directory holds our files only.
  if (cl_error_t rc = cl_load(signatures_dir.c_str(), e, &signatures, 0); rc != CL_SUCCESS) {
    error = "preclass: loading signatures from " + signatures_dir + ": " + cl_strerror(rc);
    return nullptr;
  }
  if (signatures == 0) {
    error = "preclass: no signature in '" + signatures_dir + "' (expected a copy of pipeline/signatures)";
    return nullptr;
  }
  if (cl_error_t rc = cl_engine_compile(e); rc != CL_SUCCESS) {
    error = std::string("preclass: compiling the engine: ") + cl_strerror(rc);
    return nullptr;
  }
  cl_engine_set_clcb_file_props(e, on_file_props);
  p->signatures_ = signatures;
  return p;
}

Preclassifier::~Preclassifier() {
  if (engine_ != nullptr) cl_engine_free(engine_);
}

PreclassResult Preclassifier::classify(const uint8_t* data, std::size_t len, std::string_view filename) const {
  const auto start = std::chrono::steady_clock::now();
  auto elapsed_ms = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  };
  PreclassResult r;
  try {
    if (len > limits_.max_file_bytes) {
      r.error = "file of " + std::to_string(len) + " bytes is over max_file_bytes (" +
                std::to_string(limits_.max_file_bytes) + ")";
      r.limits.push_back("max_file_bytes");
      r.ms = elapsed_ms();
      return r;
    }
    static const uint8_t kEmpty[1] = {0};
    cl_fmap_t* map = cl_fmap_open_memory(data != nullptr ? data : kEmpty, len);
    if (map == nullptr) {
      r.error = "cl_fmap_open_memory failed (out of memory)";
      r.ms = elapsed_ms();
      return r;
    }
    cl_scan_options options{};
    // All matches: the scan goes on after a signature, so the metadata describes the whole file.
    options.general = CL_SCAN_GENERAL_COLLECT_METADATA | CL_SCAN_GENERAL_ALLMATCHES;
    // Every container and document parser; images are not parsed (no dynamic content to find, and
    // their fuzzy hashes cost time).
    options.parse = CL_SCAN_PARSE_ARCHIVE | CL_SCAN_PARSE_ELF | CL_SCAN_PARSE_PDF | CL_SCAN_PARSE_SWF |
                    CL_SCAN_PARSE_HWP3 | CL_SCAN_PARSE_XMLDOCS | CL_SCAN_PARSE_MAIL | CL_SCAN_PARSE_OLE2 |
                    CL_SCAN_PARSE_HTML | CL_SCAN_PARSE_PE | CL_SCAN_PARSE_ONENOTE;
    // A limit reached becomes an alert "Heuristics.Limits.Exceeded.*" (reported in `limits`), and
    // the scan time limit a result instead of CL_ETIMEOUT.
    options.heuristic = CL_SCAN_HEURISTIC_EXCEEDS_MAX;
    ScanContext ctx;
    const std::string name(filename);
    const char* virname = nullptr;
    unsigned long scanned = 0;
    const cl_error_t rc = cl_scanmap_callback(map, name.empty() ? nullptr : name.c_str(), &virname, &scanned,
                                              engine_, &options, &ctx);
    cl_fmap_close(map);

    if (ctx.called) {
      r = rules_from_metadata(ctx.json);
    } else if (len > 0 && (rc == CL_CLEAN || rc == CL_VIRUS)) {
      r.error = "libclamav gave no metadata (built without JSON support?)";
    }
    if (rc != CL_CLEAN && rc != CL_VIRUS) {
      const std::string why = std::string("scan failed: ") + cl_strerror(rc);
      r.error = r.error.empty() ? why : why + "; " + r.error;
    }
    if (!r.error.empty()) {
      r.dynamic = false;
    } else if (rc == CL_VIRUS && virname != nullptr && ctx.called) {
      // The JSON lists every match; the name returned is one of them, checked for safety.
      std::string_view v = virname;
      if (v.substr(0, kLimitAlert.size()) != kLimitAlert) {
        if (v.size() > kUnofficial.size() && v.substr(v.size() - kUnofficial.size()) == kUnofficial)
          v.remove_suffix(kUnofficial.size());
        if (std::find(r.alerts.begin(), r.alerts.end(), v) == r.alerts.end()) {
          r.alerts.emplace_back(v);
          sort_unique(r.alerts);
          if (std::find(r.reasons.begin(), r.reasons.end(), "signature") == r.reasons.end())
            r.reasons.emplace_back("signature");
          r.dynamic = true;
        }
      }
    }
  } catch (const std::exception& e) {
    r = PreclassResult{};
    r.error = std::string("pre-classification failed: ") + e.what();
  } catch (...) {
    r = PreclassResult{};
    r.error = "pre-classification failed";
  }
  r.ms = elapsed_ms();
  return r;
}

// Set by pipeline/CMakeLists.txt; builds that compile this file on their own (the fuzz targets)
// have no signature directory.
#ifndef SLUICE_PRECLASS_SIGNATURES_DIR
#define SLUICE_PRECLASS_SIGNATURES_DIR ""
#endif
std::string default_signatures_dir() { return SLUICE_PRECLASS_SIGNATURES_DIR; }

}  // namespace sluice::pipeline
