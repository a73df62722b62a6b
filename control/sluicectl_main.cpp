// sluicectl: the operator's command line over the management API (issue 15). This first part has
// the commands that need no running appliance:
//
//   sluicectl token new --role admin|read   a new token alone on the first line, the token file
//                                           line (ROLE sha256:HEX) on the second
//   sluicectl token hash --role admin|read  the token file line of a token read from standard input
//
// Exit codes: 0 done, 1 failed, 2 bad command line. Tokens are never taken on the command line.
#include <boost/program_options.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "control/tokens.h"

namespace {

constexpr char kUsage[] =
    "usage: sluicectl [--url URL] [--token-file FILE] COMMAND ...\n"
    "commands:\n"
    "  token new --role admin|read    print a new token, then the line to add to management.token_file\n"
    "  token hash --role admin|read   print the token file line of a token read from standard input\n";

int usage_error(const std::string& why) {
  std::fprintf(stderr, "sluicectl: %s\n%s", why.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  namespace po = boost::program_options;
  using namespace sluice::control;
  po::options_description global("options");
  global.add_options()("help,h", "show this help")("version", "print the version")(
      "url", po::value<std::string>()->default_value("https://127.0.0.1:8443"), "the management API")(
      "token-file", po::value<std::string>(), "a file holding the token (else $SLUICE_TOKEN)")(
      "role", po::value<std::string>(), "token new / token hash: admin or read");
  po::options_description hidden;
  hidden.add_options()("command", po::value<std::vector<std::string>>(), "");
  po::options_description all;
  all.add(global).add(hidden);
  po::positional_options_description pos;
  pos.add("command", -1);
  po::variables_map vm;
  try {
    // No abbreviations: `--token SECRET` must not pass as --token-file.
    po::store(po::command_line_parser(argc, argv)
                  .options(all)
                  .positional(pos)
                  .style(po::command_line_style::default_style & ~po::command_line_style::allow_guessing)
                  .run(),
              vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return usage_error(e.what());
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << global;
    return 0;
  }
  if (vm.count("version")) {
    std::cout << "sluicectl " << SLUICE_VERSION << "\n";
    return 0;
  }
  const auto words = vm.count("command") ? vm["command"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (words.empty()) return usage_error("no command");
  if (words[0] == "token" && words.size() == 2 && (words[1] == "new" || words[1] == "hash")) {
    if (!vm.count("role")) return usage_error("token " + words[1] + " needs --role admin or --role read");
    const auto role = token_role_named(vm["role"].as<std::string>());
    if (!role) return usage_error("--role '" + vm["role"].as<std::string>() + "' is not admin or read");
    std::string token;
    if (words[1] == "new") {
      token = new_token();
      std::printf("%s\n", token.c_str());
    } else if (!std::getline(std::cin, token) || token.empty()) {
      std::fprintf(stderr, "sluicectl: no token on standard input\n");
      return 1;
    }
    std::printf("%s\n", token_line(*role, token).c_str());
    return 0;
  }
  std::string line;
  for (const auto& w : words) line += (line.empty() ? "" : " ") + w;
  return usage_error("unknown command '" + line + "'");
}
