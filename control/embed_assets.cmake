# Turns the report page's files (control/www/) into a C++ source of byte arrays, so sluiced serves
# them from its own memory and needs no install path (control/report_page.h). Run at build time by
# the custom command in control/CMakeLists.txt:
#   cmake -DOUT=report_assets.cpp -DDIR=control/www "-DFILES=index.html;app.js;app.css" -P embed_assets.cmake
# Each file becomes `const unsigned char kN[]` (16 bytes a line, a 0 after the last so an empty file
# is still an array) and an entry of the table that report_asset() searches.
cmake_minimum_required(VERSION 3.20)
set(body "")
set(table "")
set(n 0)
foreach(name IN LISTS FILES)
  file(READ "${DIR}/${name}" hex HEX)
  file(SIZE "${DIR}/${name}" size)
  # 32 hex digits (16 bytes) a line; CMake's regular expressions have no {n}.
  string(REGEX REPLACE "(................................)" "\\1\n    " hex "${hex}")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(APPEND body "// ${name}, ${size} bytes\nconst unsigned char k${n}[] = {\n    ${hex}0x00};\n")
  string(APPEND table "    {\"${name}\", k${n}, ${size}},\n")
  math(EXPR n "${n} + 1")
endforeach()
file(CONFIGURE OUTPUT "${OUT}" @ONLY CONTENT [=[
// Generated at build time by control/embed_assets.cmake from control/www/: do not edit.
#include "control/report_page.h"

#include <cstddef>

namespace sluice::control {
namespace {

@body@
struct Asset {
  std::string_view name;
  const unsigned char* data;
  std::size_t size;
};

const Asset kAssets[] = {
@table@};

}  // namespace

std::optional<std::string_view> report_asset(std::string_view name) {
  for (const Asset& a : kAssets)
    if (a.name == name) return std::string_view(reinterpret_cast<const char*>(a.data), a.size);
  return std::nullopt;
}

}  // namespace sluice::control
]=])
