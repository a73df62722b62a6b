// control/cli_output: see cli_output.h.
#include "control/cli_output.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

namespace sluice::control::cli {

namespace {

constexpr std::size_t kCellMax = 100;      // a SHA-256 (64) and a long subject fit; past it, "..."
constexpr std::size_t kScalarColumns = 8;  // a wider table than this is no longer readable

bool is_scalar(const Json& v) { return !v.is_object() && !v.is_array(); }

bool is_list_of_objects(const Json& v) {
  return v.is_array() && !v.empty() && std::all_of(v.begin(), v.end(), [](const Json& x) { return x.is_object(); });
}

// Characters as UTF-8 code points for the width of a column (a subject may be in any script).
std::size_t width(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// Cut at `max` code points, never inside one.
std::string cut(const std::string& s, std::size_t max) {
  if (width(s) <= max) return s;
  std::size_t points = 0, at = 0;
  for (; at < s.size(); ++at) {
    if ((s[at] & 0xC0) != 0x80 && points++ == max - 3) break;
  }
  return s.substr(0, at) + "...";
}

// The columns of a table: those asked for that a row has, in the order asked; else every key whose
// values are all scalars, first seen first, if there are few enough. Empty: no table.
std::vector<std::string> pick_columns(const Json& rows, const std::vector<std::string>& wanted) {
  std::vector<std::string> cols;
  for (const auto& w : wanted)
    if (std::any_of(rows.begin(), rows.end(), [&](const Json& r) { return r.contains(w); })) cols.push_back(w);
  if (!cols.empty()) return cols;
  for (const auto& row : rows)
    for (const auto& [key, value] : row.items()) {
      if (std::find(cols.begin(), cols.end(), key) == cols.end()) cols.push_back(key);
      if (!is_scalar(value)) return {};
    }
  if (cols.size() > kScalarColumns) return {};
  return cols;
}

// One empty line between sections, never two, none at the top.
void blank_line(std::string& out) {
  if (!out.empty() && !(out.size() >= 2 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n')) out += "\n";
}

void render_into(const Json& value, const Columns& columns, const std::string& key, const std::string& prefix,
                 std::string& out);

void list_into(const Json& list, const Columns& columns, const std::string& key, const std::string& prefix,
               std::string& out) {
  const std::string label = prefix + key;
  if (list.empty()) {
    out += (label.empty() ? "" : label + ": ") + "(none)\n";
    return;
  }
  if (std::all_of(list.begin(), list.end(), is_scalar)) {
    std::string line;
    for (const auto& x : list) line += (line.empty() ? "" : ", ") + cell_text(x);
    out += (label.empty() ? "" : label + ": ") + line + "\n";
    return;
  }
  blank_line(out);
  if (!label.empty()) out += label + ":\n";
  const auto wanted = columns.find(key);
  const auto cols =
      is_list_of_objects(list) ? pick_columns(list, wanted == columns.end() ? std::vector<std::string>{} : wanted->second)
                               : std::vector<std::string>{};
  if (!cols.empty()) {
    out += table_text(list, cols);
  } else {
    for (const auto& item : list) {
      blank_line(out);
      render_into(item, columns, "", "", out);
    }
  }
  blank_line(out);
}

void render_into(const Json& value, const Columns& columns, const std::string& key, const std::string& prefix,
                 std::string& out) {
  if (value.is_array()) return list_into(value, columns, key, prefix, out);
  if (!value.is_object()) {
    out += (prefix + key).empty() ? cell_text(value) + "\n" : prefix + key + ": " + cell_text(value) + "\n";
    return;
  }
  const std::string inner = key.empty() ? prefix : prefix + key + ".";
  if (value.empty() && !key.empty()) out += prefix + key + ": {}\n";
  for (const auto& [k, v] : value.items())
    if (is_scalar(v)) out += inner + k + ": " + cell_text(v) + "\n";
  for (const auto& [k, v] : value.items())
    if (v.is_object()) render_into(v, columns, k, inner, out);
  for (const auto& [k, v] : value.items())
    if (v.is_array()) list_into(v, columns, k, inner, out);
}

// Strings double-quoted, as the configuration's canonical text writes them: "025", "true" or
// "~" stay strings when the YAML is read back.
void emit_yaml(YAML::Emitter& e, const Json& v) {
  if (v.is_object()) {
    e << YAML::BeginMap;
    for (const auto& [k, x] : v.items()) {
      e << YAML::Key << k << YAML::Value;
      emit_yaml(e, x);
    }
    e << YAML::EndMap;
  } else if (v.is_array()) {
    e << YAML::BeginSeq;
    for (const auto& x : v) emit_yaml(e, x);
    e << YAML::EndSeq;
  } else if (v.is_string()) {
    e << YAML::DoubleQuoted << v.get<std::string>();
  } else if (v.is_boolean()) {
    e << v.get<bool>();
  } else if (v.is_number_unsigned()) {
    e << v.get<uint64_t>();
  } else if (v.is_number_integer()) {
    e << v.get<int64_t>();
  } else if (v.is_number_float()) {
    e << v.get<double>();
  } else {
    e << YAML::Null;
  }
}

}  // namespace

std::string cell_text(const Json& value) { return cut(line_text(value), kCellMax); }

std::string line_text(const Json& value) {
  std::string s;
  if (value.is_null()) return "-";
  if (value.is_string()) {
    s = value.get<std::string>();
  } else {
    s = value.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return s;
}

std::string table_text(const Json& rows, const std::vector<std::string>& columns) {
  std::vector<std::vector<std::string>> cells;
  cells.push_back(columns);
  for (const auto& row : rows) {
    std::vector<std::string> line;
    for (const auto& c : columns) line.push_back(row.is_object() && row.contains(c) ? cell_text(row[c]) : "-");
    cells.push_back(std::move(line));
  }
  std::vector<std::size_t> widths(columns.size(), 0);
  for (const auto& line : cells)
    for (std::size_t i = 0; i < line.size(); ++i) widths[i] = std::max(widths[i], width(line[i]));
  std::string out;
  for (const auto& line : cells) {
    std::string text;
    for (std::size_t i = 0; i < line.size(); ++i) {
      text += line[i];
      if (i + 1 < line.size()) text += std::string(widths[i] - width(line[i]) + 2, ' ');
    }
    out += text + "\n";
  }
  return out;
}

std::string render_text(const Json& value, const Columns& columns) {
  std::string out;
  render_into(value, columns, "", "", out);
  while (out.size() > 1 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n') out.pop_back();
  return out;
}

std::string yaml_text(const Json& value) {
  YAML::Emitter e;
  emit_yaml(e, value);
  return std::string(e.c_str()) + "\n";
}

}  // namespace sluice::control::cli
