// multipart/form-data (RFC 7578 over RFC 2046 section 5.1): finds one file field in a request body.
// A parser over bytes that are whole in memory (the server bounds the body before it gets here):
// it copies nothing but the field's file name, and answers views into the body.
//
// Accepted: the boundary parameter quoted or not; a preamble and an epilogue; parts with any
// headers (names case-insensitive, Content-Disposition required); the file name from `filename*`
// (RFC 8187: UTF-8''percent-encoded) before `filename`, either quoted (with backslash escapes) or a
// token. Lines end in CRLF, as RFC 2046 requires (curl, browsers, Python and Go all send CRLF).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::cloud {

struct FormFile {
  std::string_view content;              // the part's bytes, a view into the body
  std::optional<std::string> filename;   // as sent (not shortened); none when the part had none
};

struct FormFileResult {
  std::optional<FormFile> file;  // set on success
  std::string error;             // why not, for a 400 BadRequestError
};

// The boundary of a `multipart/form-data` Content-Type value; none (and `error` set) otherwise.
std::optional<std::string> form_data_boundary(std::string_view content_type, std::string& error);

// The part named `field` of a multipart/form-data body. Exactly one such part is accepted; other
// parts are skipped.
FormFileResult find_form_file(std::string_view content_type, std::string_view body, std::string_view field);

}  // namespace sluice::cloud
