// sluice-cloud's change feed page (change_feed.h).
#include "control/change_feed.h"

#include <array>
#include <cstdint>

#include "control/event_render.h"
#include "control/hex.h"
#include "control/reputation_adapters.h"

namespace sluice::control {
namespace {

bool disposition(const std::string& d) { return d == "clean" || d == "malicious" || d == "unknown"; }

// Printable ASCII, 1 to `max` characters.
bool printable(const std::string& s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (unsigned char c : s)
    if (c < 0x21 || c > 0x7e) return false;
  return true;
}

bool string_member(const Json& o, const char* key) { return o.contains(key) && o[key].is_string(); }

}  // namespace

FeedPage parse_change_page(unsigned status, std::string_view body, unsigned limit) {
  FeedPage page;
  const Json j = Json::parse(body, nullptr, false);
  const bool error_object = j.is_object() && j.contains("error") && j["error"].is_object();
  if (status != 200) {
    page.problem = "HTTP " + std::to_string(status);
    if (error_object) {
      const std::string code = j["error"].value("code", "");
      page.problem += " " + (printable(code, 64) ? code : reputation::echo(code)) + ": " +
                      reputation::echo(j["error"].value("message", ""));
      page.cursor_refused = status == 400 && code == "InvalidArgumentError";
    }
    return page;
  }
  auto bad = [&](const std::string& why) {
    page.changes.clear();
    page.cursor.clear();
    page.more = false;
    page.problem = "bad answer: " + why;
    return page;
  };
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || !j.contains("meta") || !j["meta"].is_object())
    return bad("not a change feed page");
  const Json& meta = j["meta"];
  if (!string_member(meta, "cursor") || !printable(meta["cursor"].get<std::string>(), 256))
    return bad("meta.cursor missing or not 1 to 256 printable characters");
  if (!meta.contains("more") || !meta["more"].is_boolean()) return bad("meta.more missing or not a boolean");
  if (j["data"].size() > limit)
    return bad(std::to_string(j["data"].size()) + " entries for a limit of " + std::to_string(limit));
  page.cursor = meta["cursor"].get<std::string>();
  page.more = meta["more"].get<bool>();
  for (const Json& x : j["data"]) {
    FeedChange c;
    std::array<uint8_t, 32> bin{};
    if (!x.is_object() || !string_member(x, "sha256") || !parse_sha256_hex(x["sha256"].get<std::string>(), bin))
      return bad("an entry without a SHA-256");
    if (!string_member(x, "old") || !string_member(x, "new")) return bad("an entry without old and new");
    c.sha256 = hex_string(bin);
    c.old_disposition = x["old"].get<std::string>();
    c.new_disposition = x["new"].get<std::string>();
    if (!disposition(c.old_disposition) || !disposition(c.new_disposition))
      return bad("disposition " + reputation::echo(c.old_disposition) + " -> " + reputation::echo(c.new_disposition));
    if (c.old_disposition == c.new_disposition) return bad("an entry that changes nothing");
    if (!string_member(x, "changed_at") || !printable(x["changed_at"].get<std::string>(), 64))
      return bad("an entry without changed_at");
    c.changed_at = x["changed_at"].get<std::string>();
    if (x.contains("threat_name") && !x["threat_name"].is_null()) {
      if (!x["threat_name"].is_string() || x["threat_name"].get<std::string>().size() > 256)
        return bad("threat_name not a string of 256 bytes at most");
      c.threat_name = x["threat_name"].get<std::string>();
    }
    page.changes.push_back(std::move(c));
  }
  return page;
}

}  // namespace sluice::control
