// The report page's routes (control/report_page.h): the embedded files are the files of
// control/www byte for byte, with their types and the page's security headers.
#include "control/report_page.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

namespace sluice::control {
namespace {

std::string source_file(const std::string& name) {
  std::ifstream f(std::string(SLUICE_SOURCE_DIR) + "/control/www/" + name, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// GET `path` through the route table as the server would route it.
ApiResponse get(const std::string& path) {
  for (const ApiRoute& r : report_page_routes()) {
    ApiRequest rq;
    rq.method = "GET";
    rq.path = path;
    if (!api_match(r.pattern, path, rq.params)) continue;
    EXPECT_EQ(r.access, ApiAccess::open) << r.pattern;
    ApiResponse out;
    r.handler(rq, [&out](ApiResponse rs) { out = std::move(rs); });
    return out;
  }
  ADD_FAILURE() << "no route for " << path;
  return {};
}

std::map<std::string, std::string> headers(const ApiResponse& r) {
  return {r.headers.begin(), r.headers.end()};
}

TEST(ReportPage, ServesTheFilesOfControlWwwByteForByte) {
  for (const auto& [path, name, type] :
       {std::tuple{"/", "index.html", "text/html; charset=utf-8"},
        std::tuple{"/ui/app.js", "app.js", "text/javascript; charset=utf-8"},
        std::tuple{"/ui/app.css", "app.css", "text/css; charset=utf-8"}}) {
    const ApiResponse r = get(path);
    const std::string want = source_file(name);
    ASSERT_FALSE(want.empty()) << name;
    EXPECT_EQ(r.status, 200u) << path;
    EXPECT_EQ(r.content_type, type) << path;
    EXPECT_EQ(r.body, want) << path;
    auto h = headers(r);
    EXPECT_EQ(h["Content-Security-Policy"], std::string(kReportCsp)) << path;
    EXPECT_EQ(h["X-Content-Type-Options"], "nosniff") << path;
    EXPECT_EQ(h["Referrer-Policy"], "no-referrer") << path;
    EXPECT_EQ(h["Cache-Control"], "no-cache") << path;
  }
}

TEST(ReportPage, AnUnknownFileIs404WithTheSameHeaders) {
  for (const char* path : {"/ui/nothing.js", "/ui/..%2Findex.html", "/ui/app.js.map"}) {
    const ApiResponse r = get(path);
    EXPECT_EQ(r.status, 404u) << path;
    EXPECT_EQ(r.content_type, "application/json") << path;
    EXPECT_EQ(headers(r)["X-Content-Type-Options"], "nosniff") << path;
  }
  EXPECT_FALSE(report_asset("nothing.js"));
  EXPECT_TRUE(report_asset("app.css"));
}

TEST(ReportPage, ThePolicyLoadsNothingFromElsewhereAndNoInlineCode) {
  const std::string csp(kReportCsp);
  for (const char* part : {"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
                           "frame-ancestors 'none'"})
    EXPECT_NE(csp.find(part), std::string::npos) << part;
  for (const char* bad : {"unsafe-inline", "unsafe-eval", "http:", "https:", "*"})
    EXPECT_EQ(csp.find(bad), std::string::npos) << bad;
  // The page names only its own files, and has no inline script or handler for the policy to refuse.
  const std::string html = source_file("index.html");
  EXPECT_NE(html.find("<script src=\"/ui/app.js\""), std::string::npos);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(html.find("onclick"), std::string::npos);
  EXPECT_EQ(html.find("style=\""), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);  // no absolute URL
  EXPECT_EQ(html.find("\"//"), std::string::npos);  // nor a scheme-relative one ("//cdn...")
  // app.js never turns API data into markup.
  EXPECT_EQ(source_file("app.js").find("innerHTML"), std::string::npos);
}

}  // namespace
}  // namespace sluice::control
