// The report page (issue 16): a web page at `/` on the management listener (management.h) that
// reads the management API with the operator's token, in the browser. Its files are control/www/
// (index.html, app.js, app.css), turned into byte arrays at build time (embed_assets.cmake), so
// sluiced serves them from memory and needs no install path.
//
// Routes (open: the page itself carries no data; every number it shows comes from a fetch() with
// `Authorization: Bearer TOKEN`): `GET /` (index.html) and `GET /ui/{file}` (the others). Every
// answer says Content-Security-Policy (kReportCsp: nothing from another origin, no inline script
// or style, not framed), X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer and
// Cache-Control: no-cache.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "control/api.h"

namespace sluice::control {

inline constexpr std::string_view kReportCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

std::vector<ApiRoute> report_page_routes();

// The embedded file `name` ("app.js"), byte for byte; nullopt when there is none.
std::optional<std::string_view> report_asset(std::string_view name);

}  // namespace sluice::control
