// control/tokens: the token file, authentication by SHA-256, new tokens.
#include "control/tokens.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

namespace sluice::control {
namespace {

TEST(Tokens, AFileOfRolesAndHashesAuthenticatesTheTokensAndNothingElse) {
  const std::string admin = "sluice_admin-token", reader = "sluice_read-token";
  const std::string text = "# who manages this appliance\n\n" + token_line(TokenRole::admin, admin) + "\n" +
                           "  " + token_line(TokenRole::read, reader) + "  \r\n";
  const TokenFile f = parse_tokens(text, "tokens");
  ASSERT_EQ(f.error, "");
  ASSERT_EQ(f.entries.size(), 2u);
  EXPECT_EQ(f.entries[0].line, 3u);
  EXPECT_EQ(authenticate(f, admin), TokenRole::admin);
  EXPECT_EQ(authenticate(f, reader), TokenRole::read);
  EXPECT_EQ(authenticate(f, "sluice_admin-token "), std::nullopt);
  EXPECT_EQ(authenticate(f, ""), std::nullopt);
  EXPECT_EQ(authenticate(f, "wrong"), std::nullopt);
}

TEST(Tokens, TheLineIsTheRoleAndTheLowercaseHexSha256OfTheToken) {
  // printf %s abc | sha256sum
  EXPECT_EQ(token_line(TokenRole::read, "abc"),
            "read sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(token_line(TokenRole::admin, "abc").substr(0, 13), "admin sha256:");
}

TEST(Tokens, ABadLineRefusesTheWholeFileNamingTheLine) {
  const std::string good = token_line(TokenRole::admin, "a");
  struct Case {
    std::string text, says;
  } cases[] = {
      {good + "\nroot sha256:" + std::string(64, 'a') + "\n", "line 2: role 'root' is not admin or read"},
      {"admin " + std::string(64, 'a') + "\n", "line 1: '" + std::string(64, 'a') + "' is not sha256:"},
      {"admin sha256:" + std::string(64, 'A') + "\n", "is not sha256: and 64 lowercase hex digits"},
      {"admin sha256:" + std::string(63, 'a') + "\n", "is not sha256: and 64 lowercase hex digits"},
      {"read\n", "line 1: '' is not sha256:"},
      {good + " extra\n", "line 1: more than a role and a hash"},
      {good + "\n" + token_line(TokenRole::read, "a") + "\n", "line 2: the same token as line 1"},
  };
  for (const auto& c : cases) {
    const TokenFile f = parse_tokens(c.text, "/etc/sluice/tokens");
    EXPECT_TRUE(f.entries.empty()) << c.text;
    EXPECT_EQ(f.error.rfind("token file /etc/sluice/tokens line ", 0), 0u) << f.error;
    EXPECT_NE(f.error.find(c.says), std::string::npos) << f.error;
  }
  EXPECT_EQ(parse_tokens("", "x").error, "");
  EXPECT_TRUE(parse_tokens("# nothing yet\n", "x").entries.empty());
}

TEST(Tokens, AFileOthersMayReadIsRefused) {
  char tmpl[] = "/tmp/tokens_test.XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string path = dir + "/tokens";
  {
    std::ofstream f(path);
    f << token_line(TokenRole::admin, "t") << "\n";
  }
  ::chmod(path.c_str(), 0644);
  EXPECT_NE(load_tokens(path).error.find("chmod 600"), std::string::npos);
  ::chmod(path.c_str(), 0600);
  const TokenFile f = load_tokens(path);
  EXPECT_EQ(f.error, "");
  EXPECT_EQ(authenticate(f, "t"), TokenRole::admin);
  EXPECT_NE(load_tokens(dir + "/missing").error.find("cannot read it"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Tokens, NewTokensAreRandomBase64UrlWithAPrefix) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string t = new_token();
    ASSERT_EQ(t.size(), 7u + 43u) << t;
    ASSERT_EQ(t.rfind("sluice_", 0), 0u);
    for (char c : t.substr(7)) ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << t;
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace sluice::control
