// File name candidates of a MIME entity (name_list.h).
#include "pipeline/name_list.h"

#include <cstring>

namespace sluice::pipeline {

namespace {

bool contains(std::string_view list, std::string_view name) noexcept {
  bool found = false;
  for_each_name(list, [&](std::string_view n) { found |= n == name; });
  return found;
}

// Appends `name` to the NUL-separated list out[0..len) when new and when it fits whole. A name
// holding NUL bytes (raw in a header, or encoded) cannot go in as it is: it goes in as a reader
// that stops at the first NUL sees it (a C string), and with its NUL bytes dropped.
void append(char* out, std::size_t cap, std::size_t& len, unsigned& n, unsigned max, std::string_view name) noexcept {
  if (const std::size_t z = name.find('\0'); z != std::string_view::npos) {
    append(out, cap, len, n, max, name.substr(0, z));
    char clean[NameList::kNameBytes];
    std::size_t c = 0;
    for (char ch : name)
      if (ch != '\0' && c < sizeof clean) clean[c++] = ch;
    return append(out, cap, len, n, max, std::string_view(clean, c));
  }
  if (name.empty() || n >= max || contains(std::string_view(out, len), name)) return;
  const std::size_t need = name.size() + (len ? 1 : 0);
  if (len + need > cap) return;
  if (len) out[len++] = '\0';
  std::memcpy(out + len, name.data(), name.size());
  len += name.size();
  ++n;
}

}  // namespace

void NameList::reset() noexcept {
  len_ = 0;
  n_ = 0;
  nsec_ = 0;
  slen_ = 0;
  fields_ = 0;
}

void NameList::add(const char* utf8, std::size_t len) noexcept {
  append(buf_, sizeof buf_, len_, n_, kMaxNames, std::string_view(utf8, len));
}

void NameList::keep_sections(const ParsedField& f, uint8_t fname_which, uint8_t name_which) noexcept {
  const uint8_t field = fields_ < 255 ? fields_++ : fields_;
  for (int i = 0; i < f.count; ++i) {
    const auto& e = f.entries[i];
    if (e.index < 0 || (e.which != fname_which && e.which != name_which)) continue;
    if (nsec_ >= kMaxSections || slen_ + e.value.size() > sizeof sbuf_) return;
    std::memcpy(sbuf_ + slen_, e.value.data(), e.value.size());
    sec_[nsec_++] = {uint8_t(e.which == fname_which ? 0 : 1), field, e.index, e.extended, e.quoted,
                     uint16_t(slen_), uint16_t(e.value.size())};
    slen_ += e.value.size();
  }
}

void NameList::merge(CharsetConverter& conv, uint8_t* scratch, std::size_t cap, char* tmp, std::size_t tmp_cap) noexcept {
  for (uint8_t base = 0; base < 2; ++base) {
    int first_field = -1;
    bool several = false;
    ParsedField pf;
    for (unsigned i = 0; i < nsec_ && pf.count < ParsedField::kMaxEntries; ++i) {
      const Section& s = sec_[i];
      if (s.base != base) continue;
      if (first_field < 0) first_field = s.field;
      several |= s.field != first_field;
      pf.entries[pf.count++] = {std::string_view(sbuf_ + s.off, s.len), s.index, s.extended, s.quoted, 0};
    }
    if (several) name_candidates(pf, 0, conv, scratch, cap, tmp, tmp_cap, *this);
  }
}

std::string_view NameList::build(std::string_view primary, std::string_view alt, char* out, std::size_t cap) const noexcept {
  std::size_t len = 0;
  unsigned n = 0;
  constexpr unsigned kMax = kMaxNames * 3;
  append(out, cap, len, n, kMax, primary);
  append(out, cap, len, n, kMax, alt);
  const std::string_view all(buf_, len_);
  for_each_name(all, [&](std::string_view name) { append(out, cap, len, n, kMax, name); });
  // Derived readings of every name so far: without '"', and the last path component. Appending
  // leaves the names before `scan_len` where they are.
  const std::size_t scan_len = len;
  for (std::size_t off = 0; off < scan_len;) {
    const char* z = static_cast<const char*>(std::memchr(out + off, '\0', scan_len - off));
    const std::size_t end = z ? std::size_t(z - out) : scan_len;
    const std::string_view name(out + off, end - off);
    if (name.find('"') != std::string_view::npos) {
      char tmp[kNameBytes];
      std::size_t t = 0;
      for (char c : name)
        if (c != '"' && t < sizeof tmp) tmp[t++] = c;
      append(out, cap, len, n, kMax, std::string_view(tmp, t));
    }
    const std::size_t slash = name.find_last_of("/\\");
    if (slash != std::string_view::npos && slash + 1 < name.size()) append(out, cap, len, n, kMax, name.substr(slash + 1));
    off = end + 1;
  }
  return std::string_view(out, len);
}

std::string_view NameList::single(std::string_view name, char* out, std::size_t cap) noexcept {
  std::size_t len = 0;
  unsigned n = 0;
  append(out, cap, len, n, 2, name);
  return std::string_view(out, len);
}

}  // namespace sluice::pipeline
