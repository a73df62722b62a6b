// The file name candidates of one MIME entity (PartInfo::filenames): every reading of its
// Content-Type and Content-Disposition name parameters that a client could take, gathered while
// the header block is read, then put in order when the part begins. Internal to pipeline/ (used
// by mime_parser). Fixed buffers, no allocation, no exceptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pipeline/header_fields.h"

namespace sluice::pipeline {

class NameList final : public NameSink {
 public:
  static constexpr std::size_t kBytes = 2048;  // candidates, NUL-separated
  static constexpr unsigned kMaxNames = 16;
  static constexpr std::size_t kNameBytes = 1024;  // one name (MimeParser's cap)

  void reset() noexcept;
  void add(const char* utf8, std::size_t len) noexcept override;
  // Keeps the RFC 2231 sections of `filename` (entries `fname_which`) and `name` (`name_which`)
  // of one field: sections of one parameter spread over several fields are joined at the end
  // (merge), as a reader that gathers every parameter of the header block into one table does.
  void keep_sections(const ParsedField& f, uint8_t fname_which, uint8_t name_which) noexcept;
  // Adds the joined readings of sections found in more than one field.
  void merge(CharsetConverter& conv, uint8_t* scratch, std::size_t cap, char* tmp, std::size_t tmp_cap) noexcept;
  // The list as reported: `primary` and `alt` first, then every candidate, then for each name
  // with a '"' the name without it (MS-OXCMAIL 2.2.3.4.1.1: Outlook removes the characters a file
  // name cannot hold) and for each name with a '/' or '\' its last component (clients save the
  // base name). Distinct names, NUL-separated, in `out`.
  std::string_view build(std::string_view primary, std::string_view alt, char* out, std::size_t cap) const noexcept;
  // The list of a name that comes alone (a uuencoded block's "begin" line): the name, or for a
  // name holding NUL bytes what build() makes of it (its C-string reading and the name without
  // them), never fragments.
  static std::string_view single(std::string_view name, char* out, std::size_t cap) noexcept;

 private:
  struct Section {
    uint8_t base;  // 0 filename, 1 name
    uint8_t field;
    int16_t index;
    bool extended, quoted;
    uint16_t off, len;
  };
  static constexpr unsigned kMaxSections = 32;
  static constexpr std::size_t kSectionBytes = 1024;

  char buf_[kBytes];
  std::size_t len_ = 0;
  unsigned n_ = 0;
  Section sec_[kMaxSections];
  unsigned nsec_ = 0;
  char sbuf_[kSectionBytes];
  std::size_t slen_ = 0;
  uint8_t fields_ = 0;
};

// The names of a NUL-separated list, one by one.
template <typename F>
void for_each_name(std::string_view list, F&& f) {
  while (!list.empty()) {
    const std::size_t z = list.find('\0');
    f(list.substr(0, z));
    if (z == std::string_view::npos) break;
    list.remove_prefix(z + 1);
  }
}

}  // namespace sluice::pipeline
