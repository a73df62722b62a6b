// Which files may go to the analysis sandbox by their detected type (DESIGN.md section 1, step 3):
// file types grouped as operators select them (`analysis.groups`). Every group's members are
// listed here and nowhere else; the README and the configuration reference are generated from it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "pipeline/file_type.h"

namespace sluice::pipeline {

enum class AnalysisGroup : uint8_t {
  documents,        // Office and OpenDocument files, RTF, OneNote, Outlook items
  macro_documents,  // Office Open XML with macros (docm, xlsm, pptm)
  pdf,
  executables,      // PE, ELF, Mach-O, installers, Java, shortcuts, compiled help
  archives,         // every container Sluice unpacks (the sandbox sees the archive whole)
  scripts,          // JavaScript, VBScript, PowerShell, batch, HTA
  web,              // HTML, SVG (script carriers, often phishing pages)
};
inline constexpr unsigned kAnalysisGroups = 7;

std::string_view analysis_group_name(AnalysisGroup g) noexcept;
std::optional<AnalysisGroup> analysis_group_named(std::string_view name) noexcept;
// The members of a group.
std::span<const FileType> analysis_group_types(AnalysisGroup g) noexcept;
// Bit g set: group g selected. The default: every group but `web`.
uint32_t default_analysis_groups() noexcept;
// Whether a file of this type may be uploaded with these groups selected.
bool analysis_selects(uint32_t groups, FileType type) noexcept;

}  // namespace sluice::pipeline
