// sluicectl's human output (issue 15): the API's JSON answers as text for a terminal. Pure
// functions, no I/O. The answers' shapes may grow fields (and some resources are still being
// written), so nothing here depends on a field being there:
//
// - an object is "key: value" lines, scalars first in the answer's order, then each nested object
//   (its keys prefixed "key.") and each list;
// - a list of objects is a table: the columns asked for (`Columns`, per list key; "" for an answer
//   that is a list itself) that any row has, else every key whose values are all scalars when
//   there are at most 8 of them; else (nothing fits a table) each object as a block of lines;
// - a list of scalars is one line, comma-separated; an empty list "(none)";
// - a cell: strings as they are, numbers and booleans as JSON writes them, null "-", an object or
//   list as compact JSON; control characters become '?' (a quarantined subject must not drive the
//   terminal), and a cell is cut at 100 characters ("...").
#pragma once

#include <map>
#include <string>
#include <vector>

#include "control/event_render.h"

namespace sluice::control::cli {

using Columns = std::map<std::string, std::vector<std::string>>;

std::string cell_text(const Json& value);
// The same without the cut: a value shown on a line of its own (sluicectl trace's step texts).
std::string line_text(const Json& value);
// Rows (a JSON list of objects) as an aligned table with a header line of the column names.
std::string table_text(const Json& rows, const std::vector<std::string>& columns);
std::string render_text(const Json& value, const Columns& columns = {});
// A JSON value as a YAML document (block style), for `config show`.
std::string yaml_text(const Json& value);

}  // namespace sluice::control::cli
