// sluicectl's commands (issue 15): one entry per command, each mapping its arguments onto one
// request of the management API (docs/api.md) and its answer onto output and an exit code. The
// command line itself (global options, which command, usage) is sluicectl_main.cpp's.
//
// Exit codes (kept stable for scripts): 0 done; 1 the request failed (cannot connect, TLS, a 5xx,
// 409, 400, 429, an invalid configuration on `config validate` / `config reload`); 2 a bad
// command line; 3 not found (404); 4 not authorised (401, 403).
#pragma once

#include <boost/program_options.hpp>

#include <functional>
#include <string>
#include <vector>

#include "control/api_client.h"

namespace sluice::control::ctl {

enum Exit : int { kDone = 0, kFailed = 1, kUsage = 2, kNotFound = 3, kNotAuthorised = 4 };

// What every command that talks to the appliance gets.
struct Context {
  api::ClientOptions client;
  bool json = false;        // --json: the API's JSON, pretty-printed, instead of tables
  bool has_token = false;   // for the hint on a 401
};

struct Args {
  boost::program_options::variables_map options;
  std::vector<std::string> words;  // the positional arguments after the command's own words

  bool has(const char* name) const { return options.count(name) > 0; }
  std::string text(const char* name) const;  // "" when not given
  bool flag(const char* name) const;
};

// A bad argument: the message, printed with the usage, exit 2.
struct UsageError {
  std::string message;
};

struct Command {
  std::string words;     // "quarantine list"
  std::string synopsis;  // the arguments after the words, for the usage
  std::string what;      // one line
  unsigned min_words = 0, max_words = 0;  // positional arguments after the command's words
  bool local = false;    // needs no appliance (token new / hash)
  std::function<void(boost::program_options::options_description&)> options;
  std::function<int(Context&, const Args&)> run;  // may throw UsageError
};

const std::vector<Command>& commands();

// A token or key file's text, its trailing line ends dropped (a file written with echo); throws
// UsageError naming `option` when it cannot be read.
std::string secret_file(const std::string& path, const std::string& option);

// The exit code for an HTTP status (2xx 0, 401/403 4, 404 3, else 1).
int exit_for_status(unsigned status);

}  // namespace sluice::control::ctl
