#include "pipeline/analysis_groups.h"

#include <array>

namespace sluice::pipeline {
namespace {

using F = FileType;

constexpr F kDocuments[] = {F::doc, F::xls, F::ppt, F::docx, F::xlsx, F::pptx, F::odt, F::ods, F::odp, F::odg,
                            F::rtf, F::ole2, F::onenote, F::msg};
constexpr F kMacroDocuments[] = {F::docm, F::xlsm, F::pptm};
constexpr F kPdf[] = {F::pdf};
constexpr F kExecutables[] = {F::pe, F::elf, F::macho, F::msi, F::javaclass, F::jar, F::apk, F::lnk, F::chm};
constexpr F kArchives[] = {F::zip, F::rar4, F::rar5, F::sevenzip, F::gzip, F::bzip2, F::xz, F::zstd, F::tar,
                           F::cab, F::iso, F::cpio, F::arj, F::lzh, F::tnef};
constexpr F kScripts[] = {F::javascript, F::vbscript, F::powershell, F::batch, F::hta};
constexpr F kWeb[] = {F::html, F::svg};

struct Group {
  std::string_view name;
  std::span<const F> types;
};

constexpr std::array<Group, kAnalysisGroups> kGroups = {{
    {"documents", kDocuments},
    {"macro_documents", kMacroDocuments},
    {"pdf", kPdf},
    {"executables", kExecutables},
    {"archives", kArchives},
    {"scripts", kScripts},
    {"web", kWeb},
}};

}  // namespace

std::string_view analysis_group_name(AnalysisGroup g) noexcept {
  const auto i = static_cast<std::size_t>(g);
  return i < kGroups.size() ? kGroups[i].name : std::string_view();
}

std::optional<AnalysisGroup> analysis_group_named(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kGroups.size(); ++i)
    if (kGroups[i].name == name) return static_cast<AnalysisGroup>(i);
  return std::nullopt;
}

std::span<const FileType> analysis_group_types(AnalysisGroup g) noexcept {
  const auto i = static_cast<std::size_t>(g);
  return i < kGroups.size() ? kGroups[i].types : std::span<const FileType>();
}

uint32_t default_analysis_groups() noexcept {
  return ((1u << kAnalysisGroups) - 1) & ~(1u << static_cast<unsigned>(AnalysisGroup::web));
}

bool analysis_selects(uint32_t groups, FileType type) noexcept {
  for (std::size_t i = 0; i < kGroups.size(); ++i) {
    if (!(groups & (1u << i))) continue;
    for (F t : kGroups[i].types)
      if (t == type) return true;
  }
  return false;
}

}  // namespace sluice::pipeline
