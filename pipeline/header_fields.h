// Structured MIME header fields (RFC 2045 5.1, RFC 2183, RFC 2231): "value; attr=val; ..." read
// the lenient way mail clients read them. Internal to pipeline/ (used by mime_parser).
//
// - comments "( ... )" outside quoted strings are dropped, also inside an attribute name or before
//   a value ("boundary()=x", "boundary=()x");
// - a value is a quoted string (backslash escapes; a missing closing quote runs to the end; a
//   fold inside loses its line break only), a value in single quotes when they close before the
//   next ';', or else everything up to the next ';' that no backslash escapes, with trailing
//   whitespace removed and backslash escapes applied, and ended by a fold once it has begun (a
//   token cannot span a line break: 'name=report.pdf' CRLF ' X-Mailer: x' names report.pdf);
//   the caller marks each fold of the unfolded field by a '\n' where the line break was;
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

// Every reading of a file name that a client could take, for the `filenames` list of a part
// (PartInfo::filenames): the receiver of each candidate dedupes.
class NameSink {
 public:
  virtual ~NameSink() = default;
  virtual void add(const char* utf8, std::size_t len) noexcept = 0;
};

// From a parsed field, for parameter `which` (as assemble_param's file names): each plain and
// extended occurrence on its own (duplicate parameters: first, last, any between; a plain value
// next to RFC 2231 forms), the RFC 2231 sections in index order and in the order written.
// `tmp` holds one candidate at a time.
void name_candidates(const ParsedField& f, uint8_t which, CharsetConverter& conv, uint8_t* scratch,
                     std::size_t cap, char* tmp, std::size_t tmp_cap, NameSink& sink) noexcept;

// From the raw field body (before parse_field; a fold marked by '\n'), for each unquoted value of
// `attr` (lower case, e.g. "filename"): the value up to the first ';' with backslashes dropped
// and folds joined (the reading of a client that unfolds first and splits at every ';'), and the
// value up to the ';' that starts another "attr=" parameter ('name=file;.zip' as file;.zip).
void lenient_name_values(std::string_view raw, std::string_view attr, CharsetConverter& conv, uint8_t* scratch,
                         std::size_t cap, char* tmp, std::size_t tmp_cap, NameSink& sink) noexcept;

}  // namespace sluice::pipeline
