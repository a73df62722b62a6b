// sluicectl: the operator's command line over the management API (issue 15; README "Management
// API, tokens and sluicectl"):
//
//   sluicectl [--url URL] [--token-file FILE] [--ca FILE | --fingerprint SHA256] [--json] COMMAND ...
//
// This file reads the command line: the global options (before the command, or after it when the
// command has no option of the same name: `endpoints add --url` is the endpoint's), which command
// (the table in sluicectl_commands.cpp), the token, the TLS policy (api_client.h), the usage.
// Tokens are never taken on the command line; options are never abbreviated (`--token X` is an
// error, not --token-file).
#include <boost/program_options.hpp>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "control/sluicectl_commands.h"

namespace {

namespace po = boost::program_options;
using namespace sluice::control;
using ctl::Command;

constexpr auto kStyle = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;

std::string usage() {
  std::string u =
      "usage: sluicectl [--url URL] [--token-file FILE] COMMAND ...\n"
      "commands:\n";
  for (const Command& c : ctl::commands())
    u += "  " + c.words + (c.synopsis.empty() ? "" : " " + c.synopsis) + "\n      " + c.what + "\n";
  return u;
}

constexpr char kAfterHelp[] =
    "\nThe token: --token-file FILE (the raw token; a trailing line end is ignored), else the\n"
    "environment variable SLUICE_TOKEN. Never on the command line.\n"
    "TLS: --fingerprint pins the certificate's SHA-256 (colons optional); --ca FILE verifies it and the\n"
    "URL's host against FILE; with neither, a loopback URL (127.0.0.0/8, ::1, localhost) accepts the\n"
    "appliance's self-signed certificate and prints its SHA-256 on standard error, any other URL is\n"
    "verified against the system's CAs. http:// is refused.\n"
    "Exit codes: 0 done; 1 the request failed (cannot connect, TLS, a 5xx, 409, 400, 429, an invalid\n"
    "configuration on config validate / reload); 2 bad command line; 3 not found (404);\n"
    "4 not authorised (401, 403).\n";

// One line saying what is wrong, the usage line (the command's when known), where the rest is.
int usage_error(const std::string& why, const Command* command = nullptr) {
  std::fprintf(stderr, "sluicectl: %s\nusage: sluicectl [--url URL] [--token-file FILE] COMMAND ...\n", why.c_str());
  if (command)
    std::fprintf(stderr, "       sluicectl [options] %s%s%s\n", command->words.c_str(), command->synopsis.empty() ? "" : " ",
                 command->synopsis.c_str());
  std::fprintf(stderr, "(sluicectl --help lists the commands, options and exit codes)\n");
  return ctl::kUsage;
}

// The global options; those named in `skip` are left out (a command's own option of that name).
void add_globals(po::options_description& d, const po::options_description* skip) {
  auto want = [&](const char* name) { return !skip || !skip->find_nothrow(name, false); };
  auto a = d.add_options();
  if (want("help")) a("help,h", "show this help");
  if (want("version")) a("version", "print the version");
  if (want("url")) a("url", po::value<std::string>(), "the management API (default https://127.0.0.1:8443)");
  if (want("token-file")) a("token-file", po::value<std::string>(), "a file holding the token (else $SLUICE_TOKEN)");
  if (want("ca")) a("ca", po::value<std::string>(), "trust the appliance's certificate if FILE (PEM) vouches for it");
  if (want("fingerprint")) a("fingerprint", po::value<std::string>(), "trust only the certificate with this SHA-256");
  if (want("connect-to"))
    a("connect-to", po::value<std::string>(),
      "connect to this IP address instead of resolving the URL's host (the certificate is still checked for the host)");
  if (want("timeout")) a("timeout", po::value<unsigned>(), "seconds to connect, and again for the answer (default 10)");
  if (want("json")) a("json", po::bool_switch(), "print the API's JSON instead of tables");
}

// Global options that take a value (to find where the command starts).
bool global_takes_value(const std::string& name) {
  for (const char* n : {"url", "token-file", "ca", "fingerprint", "connect-to", "timeout"})
    if (name == n) return true;
  return false;
}

// The value of a global option: after the command if given there (and not the command's own
// option of that name), else before it.
template <typename T>
std::optional<T> global(const po::variables_map& before, const po::variables_map& after,
                        const po::options_description& own, const char* name) {
  for (const po::variables_map* vm : {&after, &before}) {
    if (vm == &after && own.find_nothrow(name, false)) continue;
    const auto found = vm->find(name);
    if (found != vm->end() && !found->second.defaulted()) return found->second.template as<T>();
  }
  return std::nullopt;
}

int run(int argc, char** argv) {
  // Where the command starts: the first word that is neither a global option nor its value.
  std::vector<std::string> before, rest;
  int i = 1;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.size() < 2 || a[0] != '-') break;
    before.push_back(a);
    if (a.rfind("--", 0) == 0 && a.find('=') == std::string::npos && global_takes_value(a.substr(2)) && i + 1 < argc)
      before.push_back(argv[++i]);
  }
  for (; i < argc; ++i) rest.emplace_back(argv[i]);

  po::options_description globals("options");
  add_globals(globals, nullptr);
  po::variables_map gvm;
  try {
    po::store(po::command_line_parser(before).options(globals).style(kStyle).run(), gvm);
    po::notify(gvm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (gvm.count("help")) {
    std::cout << usage() << "\n" << globals << kAfterHelp;
    return ctl::kDone;
  }
  if (gvm.count("version")) {
    std::cout << "sluicectl " << SLUICE_VERSION << "\n";
    return ctl::kDone;
  }
  if (rest.empty()) return usage_error("no command");

  // Which command: the longest whose words lead the rest.
  const Command* command = nullptr;
  std::size_t used = 0;
  for (const Command& c : ctl::commands()) {
    std::istringstream words(c.words);
    std::size_t n = 0;
    bool match = true;
    for (std::string w; words >> w; ++n)
      if (n >= rest.size() || rest[n] != w) match = false;
    if (match && n > used) command = &c, used = n;
  }
  if (!command) {
    std::string line;
    for (const auto& w : rest) {
      if (!w.empty() && w[0] == '-') break;
      line += (line.empty() ? "" : " ") + w;
    }
    return usage_error("unknown command '" + line + "'");
  }

  po::options_description own(command->words + " options");
  command->options(own);
  po::options_description all;
  all.add(own);
  po::options_description shared("options");
  add_globals(shared, &own);
  all.add(shared);
  po::options_description hidden;
  hidden.add_options()("args", po::value<std::vector<std::string>>(), "");
  all.add(hidden);
  po::positional_options_description pos;
  pos.add("args", -1);
  ctl::Args args;
  const std::vector<std::string> tail(rest.begin() + static_cast<long>(used), rest.end());
  try {
    po::store(po::command_line_parser(tail).options(all).positional(pos).style(kStyle).run(), args.options);
    po::notify(args.options);
  } catch (const po::error& e) {
    return usage_error(e.what(), command);
  }
  if (args.options.count("help")) {
    std::cout << "usage: sluicectl [options] " << command->words << (command->synopsis.empty() ? "" : " ")
              << command->synopsis << "\n  " << command->what << "\n\n"
              << own << "\n"
              << globals << kAfterHelp;
    return ctl::kDone;
  }
  if (args.options.count("args")) args.words = args.options["args"].as<std::vector<std::string>>();
  if (args.words.size() < command->min_words || args.words.size() > command->max_words)
    return usage_error(command->words + " takes " +
                       (command->synopsis.empty() ? std::string("no arguments") : command->synopsis) +
                       (args.words.size() > command->max_words ? " (too many arguments)" : " (too few arguments)"),
                       command);

  ctl::Context ctx;
  if (!command->local) {
    const std::string url = global<std::string>(gvm, args.options, own, "url").value_or("https://127.0.0.1:8443");
    if (std::string e = http::parse_url(url, ctx.client.url); !e.empty())
      return usage_error("--url '" + url + "': " + e);
    if (std::string e = api::choose_tls(ctx.client.url, global<std::string>(gvm, args.options, own, "ca").value_or(""),
                                        global<std::string>(gvm, args.options, own, "fingerprint").value_or(""),
                                        ctx.client.tls);
        !e.empty())
      return usage_error(e);
    ctx.client.connect_to = global<std::string>(gvm, args.options, own, "connect-to").value_or("");
    const unsigned timeout = global<unsigned>(gvm, args.options, own, "timeout").value_or(10);
    if (timeout == 0 || timeout > 3600) return usage_error("--timeout must be 1 to 3600 seconds");
    ctx.client.timeout = std::chrono::seconds(timeout);
    ctx.client.user_agent = std::string("sluicectl/") + SLUICE_VERSION;
    if (const auto file = global<std::string>(gvm, args.options, own, "token-file")) {
      try {
        ctx.client.token = ctl::secret_file(*file, "--token-file");
      } catch (const ctl::UsageError& e) {
        return usage_error(e.message, command);
      }
    } else if (const char* env = std::getenv("SLUICE_TOKEN")) {
      ctx.client.token = env;
    }
    for (unsigned char ch : ctx.client.token)
      if (ch < 0x21 || ch == 0x7f) return usage_error("the token has a space or a control character in it");
    ctx.has_token = !ctx.client.token.empty();
    ctx.json = global<bool>(gvm, args.options, own, "json").value_or(false);
  }
  try {
    return command->run(ctx, args);
  } catch (const ctl::UsageError& e) {
    return usage_error(e.message, command);
  } catch (const std::exception& e) {  // an answer of a shape nothing expected, no memory...
    std::fprintf(stderr, "sluicectl: %s\n", e.what());
    return ctl::kFailed;
  }
}

}  // namespace

int main(int argc, char** argv) { return run(argc, argv); }
