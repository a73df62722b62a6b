// ClamAV pre-classification (DESIGN.md section 1, step 3; issue 12): does this file carry dynamic
// content — macros, executables, OLE objects, PDF JavaScript or actions, Flash, scripts, or one of
// the project's own signatures? One upload criterion of the appliance, and a fact the analysis
// engine of sluice-cloud scores.
//
// libclamav runs in process: one engine, compiled once from the project's signature set
// (pipeline/signatures, copied to the build and found at run time, NOTES.md), scans a file from
// memory with metadata collection on; libclamav hands back its JSON description of the file (its
// type, macros, PDF statistics, every contained and embedded object, the signatures that matched),
// and rules_from_metadata() — the one place where the rules live, table in NOTES.md — turns that
// JSON into `dynamic` and its reasons. Limits (size, scan size, recursion, files, time) bound every
// scan, so a bomb ends with a partial result or an error.
//
// Threads: classify() may run on several threads at once over one Preclassifier (libclamav scans
// one compiled engine concurrently). It blocks (the scan writes extracted members to a temporary
// directory and may take up to max_scan_ms or a little more): never call it on an lcore; the
// control plane's bounded pool (control/preclass_pool.h) runs it. create() is slow (tens of
// milliseconds): at start-up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct cl_engine;  // libclamav's engine (clamav.h), kept out of this header

namespace sluice::pipeline {

struct PreclassLimits {
  // A file (the attachment itself or anything extracted from it) larger than this is not scanned
  // (libclamav's MaxFileSize); an attachment over it is refused at once (`error`).
  uint64_t max_file_bytes = 32 << 20;
  // Bytes scanned per attachment, all extracted objects together (MaxScanSize): the bound on the
  // work a compression bomb can cause.
  uint64_t max_scan_bytes = 64 << 20;
  // Containers inside containers (MaxRecursion): a zip in a zip in a document... 8 is deeper than
  // any real document; depth bombs stop here.
  uint32_t max_recursion = 8;
  // Objects extracted per attachment (MaxFiles).
  uint32_t max_files = 1000;
  // Scan time per attachment (MaxScanTime). libclamav checks it between steps, so a scan may
  // overrun it by the step under way (a few hundred milliseconds measured on a bomb).
  uint32_t max_scan_ms = 5000;
  // Where libclamav writes what it extracts during a scan (a directory per scan, removed at its
  // end). Empty: /dev/shm when it is a writable directory, else libclamav's default ($TMPDIR or
  // /tmp). Memory-backed matters: each scan creates and removes a directory; on the lab machine's
  // ext4 that is 0.1-0.5 ms more per small scan at the median and 2-8 ms for single scans that
  // meet a journal write, none of which /dev/shm has (docs/benchmarks.md, issue 12). What it
  // holds is bounded by the limits above: about max_scan_bytes per running scan.
  std::string temp_dir;
};

struct PreclassResult {
  bool dynamic = false;                 // upload criterion: the file carries dynamic content
  std::vector<std::string> reasons;     // why, stable lower_snake_case names in the order of the
                                        // table in NOTES.md: vba_macro, xlm_macro, executable,
                                        // embedded_executable, ole_object, pdf_javascript,
                                        // pdf_open_action, pdf_launch, pdf_embedded_file, flash,
                                        // script, signature (plus the signature name in `alerts`)
  std::vector<std::string> alerts;      // signature names that matched (ours; Viruses/Alerts in the
                                        // JSON), sorted, without libclamav's ".UNOFFICIAL" suffix
  std::vector<std::string> limits;      // limits the scan reached, by PreclassLimits field name
                                        // (max_files, max_recursion, max_scan_bytes, max_scan_ms...):
                                        // the facts above are those found before it
  std::string clam_type;                // ClamAV's FileType for the top file (e.g. CL_TYPE_MSOLE2)
  std::string metadata;                 // the JSON ClamAV gave, compact, without its temporary file
                                        // paths, cut at kPreclassMetadataMax bytes (then not JSON)
  std::string error;                    // non-empty: the scan failed (why); dynamic is then false
  double ms = 0;                        // how long the scan took
};

// Bound of PreclassResult::metadata (for reports and events).
inline constexpr std::size_t kPreclassMetadataMax = 64 * 1024;

class Preclassifier {
 public:
  // Loads and compiles the engine once (slow: call at start-up, off any lcore). nullptr + error on
  // failure (a limit of 0, which libclamav reads as "no limit"; no signature in the directory; a
  // signature libclamav refuses; the temporary directory not writable).
  static std::unique_ptr<Preclassifier> create(const PreclassLimits& limits, const std::string& signatures_dir,
                                               std::string& error);
  ~Preclassifier();
  Preclassifier(const Preclassifier&) = delete;
  Preclassifier& operator=(const Preclassifier&) = delete;

  // Thread-safe (one compiled engine scanned from several threads at once, as libclamav allows).
  // Never throws. `data` is read only during the call; `filename` (may be empty) names the file in
  // the metadata and lets the rules see a script's extension.
  PreclassResult classify(const uint8_t* data, std::size_t len, std::string_view filename) const;

  // How many signatures the engine holds.
  unsigned signature_count() const noexcept { return signatures_; }
  const PreclassLimits& limits() const noexcept { return limits_; }

 private:
  Preclassifier() = default;
  ::cl_engine* engine_ = nullptr;
  PreclassLimits limits_;
  unsigned signatures_ = 0;
};

// The rules mapping ClamAV's JSON metadata to `dynamic` + reasons, in ONE documented place (pure,
// unit-testable without an engine). Fills every field but `ms`; JSON that does not parse gives
// `error`. Reads libclamav 1.4's `Viruses` and 1.5's `Alerts`.
PreclassResult rules_from_metadata(std::string_view json);

// The signature directory of this build (${CMAKE_BINARY_DIR}/signatures, a copy of
// pipeline/signatures made by CMake): what sluiced and sluice-cloud pass to create() unless
// configured otherwise.
std::string default_signatures_dir();

}  // namespace sluice::pipeline
