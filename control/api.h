// The management API's routes as the server (management.h) serves them, without HTTP: a route is a
// method, a path pattern whose `{name}` segments match any one segment, who may call it, and a
// handler that answers once, now or later. docs/api.md describes every route; api_routes.h makes
// sluiced's.
//
// Threads: the server calls handlers on the service loop. A handler may answer from any thread
// (a pool job that read a store): the answer is taken back to the loop before it is sent.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "control/event_render.h"
#include "control/tokens.h"

namespace sluice::control {

enum class ApiAccess : uint8_t {
  open,   // no token needed (a token sent is still checked): GET /metrics
  read,   // a read or an admin token
  admin,  // an admin token
};

struct ApiRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // without the query
  std::map<std::string, std::string> query;    // decoded; a name given twice keeps the last value
  std::vector<std::string> params;             // the `{name}` segments, in order, decoded
  std::string body;
  std::string content_type;
  std::string who;                             // "admin token of line 3", "-" without a token
  // The query parameter `name`, or `fallback` (a copy: no reference to a temporary fallback).
  std::string arg(const std::string& name, const std::string& fallback = "") const;
};

struct ApiResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// A JSON answer; an error answer, `{"error":{"code":CODE,"message":MESSAGE}}`.
ApiResponse api_json(unsigned status, const Json& body);
ApiResponse api_error(unsigned status, const std::string& code, const std::string& message);
// Common errors, with docs/api.md's codes.
ApiResponse api_bad_request(const std::string& message);
ApiResponse api_not_found(const std::string& message);
ApiResponse api_conflict(const std::string& message);
ApiResponse api_unavailable(const std::string& message);

using ApiReply = std::function<void(ApiResponse)>;  // call exactly once, from any thread
using ApiHandler = std::function<void(const ApiRequest&, ApiReply)>;

struct ApiRoute {
  std::string method;
  std::string pattern;  // "/api/v1/quarantine/{id}/release"
  ApiAccess access = ApiAccess::read;
  ApiHandler handler;
};

// Whether `path` matches `pattern` (segment by segment; `{x}` takes any non-empty segment), the
// captured segments in `params`, percent-decoded.
bool api_match(const std::string& pattern, const std::string& path, std::vector<std::string>& params);
// Percent-decoding (`+` is a space in a query); false on a malformed escape.
bool api_decode(std::string_view in, std::string& out, bool query);
// The query string's parameters; false on a malformed one.
bool api_parse_query(std::string_view query, std::map<std::string, std::string>& out);
// A time parameter: RFC 3339 ("2026-12-07T10:00:00Z", offsets and fractions allowed) or
// milliseconds since 1970; false when it is neither.
bool api_parse_time(const std::string& text, int64_t& ms);
// A SHA-256 parameter: 64 hex digits, any case; `out` lower case.
bool api_parse_sha256(const std::string& text, std::string& out);
// An unsigned parameter within [lo, hi].
bool api_parse_uint(const std::string& text, uint64_t lo, uint64_t hi, uint64_t& out);

}  // namespace sluice::control
