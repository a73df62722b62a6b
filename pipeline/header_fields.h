// Structured MIME header fields (RFC 2045 5.1, RFC 2183, RFC 2231): "value; attr=val; ..." read
// the lenient way mail clients read them. Internal to pipeline/ (used by mime_parser).
//
// - comments "( ... )" outside quoted strings are dropped, also inside an attribute name or before
//   a value ("boundary()=x", "boundary=()x");
// - a value is a quoted string (backslash escapes; a missing closing quote runs to the end), a
//   value in single quotes when they close before the next ';', or else everything up to the next
//   ';' with trailing whitespace removed and backslash escapes applied;
// - in a file name, a double quote of a value that is not a quoted string is dropped
//   ('name=file\".zip' and 'name=file".zip' are file.zip; 'name="file\".zip"' stays file".zip):
//   see assemble_param;
// - RFC 2231: "attr*" (charset'language'%XX), "attr*N" and "attr*N*" continuations in any order;
//   they win over a plain "attr=" (a client that knows RFC 2231 shows those);
// - the first plain occurrence of an attribute wins.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pipeline/encoded_words.h"

namespace sluice::pipeline {

// Parses `field` (the unfolded field body; modified in place: quoted strings are unescaped).
// Keeps the sections of the attributes named in `wanted` (lower case, e.g. {"boundary", "name"}).
// `which[i]` of each section tells which wanted name it belongs to.
struct ParamRequest {
  std::string_view names[3];
  int n = 0;
};

struct ParsedField {
  std::string_view value;
  struct Entry {
    std::string_view value;
    int16_t index;   // -1 plain, -2 extended without index, >= 0 continuation section
    bool extended;
    bool quoted;     // written as a quoted string (its '"' characters are escaped ones)
    uint8_t which;
  };
  static constexpr int kMaxEntries = 96;
  Entry entries[kMaxEntries];
  int count = 0;
};

void parse_field(char* field, std::size_t len, const ParamRequest& req, ParsedField& out) noexcept;

// Assembles parameter `which` of a parsed field into UTF-8 (RFC 2231 first, then the plain form).
// `file_name`: the value is a file name (Content-Type name, Content-Disposition filename): RFC 2047
// words are decoded and the '"' characters of sections that were not quoted strings are dropped
// (a token cannot hold one, RFC 2045 5.1; Outlook/Exchange remove '"' from attachment names,
// MS-OXCMAIL 2.2.3.4.1.1). Otherwise (a boundary, compared as bytes) the raw bytes are kept.
// `scratch` holds the joined raw bytes. Returns false when nothing was found; `bad` is set when a
// charset or encoded word did not decode.
bool assemble_param(const ParsedField& f, uint8_t which, CharsetConverter& conv, uint8_t* scratch,
                    std::size_t scratch_cap, Utf8Out& out, bool& bad, bool file_name) noexcept;

}  // namespace sluice::pipeline
