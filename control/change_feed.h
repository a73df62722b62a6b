// sluice-cloud's change feed, as the retrospective heartbeat reads it (control/cloud/API.md,
// GET /api/v1/dispositions/changes): a pure function from an answer to what it says, strict like
// the reputation adapters: anything off is a problem with a detail, and nothing of that page is
// taken.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sluice::control {

struct FeedChange {
  std::string sha256;          // 64 lowercase hex digits
  std::string old_disposition;  // clean | malicious | unknown, differing from new_disposition
  std::string new_disposition;
  std::string threat_name;     // "" for none
  std::string changed_at;      // as sent (RFC 3339 text)
};

struct FeedPage {
  std::vector<FeedChange> changes;  // oldest first
  std::string cursor;               // meta.cursor: the `since` of the next page
  bool more = false;                // meta.more
  bool cursor_refused = false;      // 400 InvalidArgumentError: the cursor is not one of this store's
  std::string problem;              // set: the page is not taken ("HTTP 503 TransientError: ...", "bad answer: ...")
};

// `limit`: the entries asked for; a page with more is a bad answer.
FeedPage parse_change_page(unsigned status, std::string_view body, unsigned limit);

}  // namespace sluice::control
