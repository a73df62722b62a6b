// The report page's routes (report_page.h). The files are in the generated report_assets.cpp.
#include "control/report_page.h"

#include <string>

namespace sluice::control {
namespace {

// The Content-Type of an embedded file, by its extension; "" for one the page does not serve.
std::string content_type(std::string_view name) {
  const auto dot = name.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? std::string_view() : name.substr(dot);
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  return "";
}

// The file as an answer, with the page's security headers; 404 (with the same headers) when it is
// not embedded or of no type the page serves.
ApiResponse page_file(std::string_view name) {
  const auto bytes = report_asset(name);
  ApiResponse r;
  if (bytes && !content_type(name).empty()) {
    r.content_type = content_type(name);
    r.body.assign(bytes->data(), bytes->size());
  } else {
    r = api_not_found("no page file '" + std::string(name.substr(0, 80)) + "'");
  }
  r.headers = {{"Content-Security-Policy", std::string(kReportCsp)},
               {"X-Content-Type-Options", "nosniff"},
               {"Referrer-Policy", "no-referrer"},
               {"Cache-Control", "no-cache"}};
  return r;
}

}  // namespace

std::vector<ApiRoute> report_page_routes() {
  return {{"GET", "/", ApiAccess::open, [](const ApiRequest&, ApiReply reply) { reply(page_file("index.html")); }},
          {"GET", "/ui/{file}", ApiAccess::open,
           [](const ApiRequest& rq, ApiReply reply) { reply(page_file(rq.params[0])); }}};
}

}  // namespace sluice::control
