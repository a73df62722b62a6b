// Management API tokens (tokens.h).
#include "control/tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "control/hex.h"

namespace sluice::control {
namespace {

std::array<uint8_t, 32> digest(std::string_view text) {
  std::array<uint8_t, 32> d{};
  unsigned n = 0;
  EVP_Digest(text.data(), text.size(), d.data(), &n, EVP_sha256(), nullptr);
  return d;
}

bool lower_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

const char* token_role_name(TokenRole r) noexcept { return r == TokenRole::admin ? "admin" : "read"; }

std::optional<TokenRole> token_role_named(std::string_view name) noexcept {
  if (name == "admin") return TokenRole::admin;
  if (name == "read") return TokenRole::read;
  return std::nullopt;
}

TokenFile parse_tokens(std::string_view text, const std::string& origin) {
  TokenFile out;
  std::istringstream lines{std::string(text)};
  std::string line;
  for (unsigned line_no = 1; std::getline(lines, line); ++line_no) {
    std::istringstream words(line);
    std::string role, hash, extra;
    words >> role;
    if (role.empty() || role[0] == '#') continue;
    words >> hash >> extra;
    auto refuse = [&](const std::string& why) {
      out.entries.clear();
      out.error = "token file " + origin + " line " + std::to_string(line_no) + ": " + why +
                  " (each line: 'admin sha256:HEX' or 'read sha256:HEX', HEX the lowercase hex SHA-256 of the "
                  "token; sluicectl token new prints one)";
      return out;
    };
    const auto r = token_role_named(role);
    if (!r) return refuse("role '" + role.substr(0, 40) + "' is not admin or read");
    if (hash.rfind("sha256:", 0) != 0 || !lower_hex64(std::string_view(hash).substr(7)))
      return refuse("'" + hash.substr(0, 80) + "' is not sha256: and 64 lowercase hex digits");
    if (!extra.empty()) return refuse("more than a role and a hash");
    TokenEntry e;
    e.role = *r;
    e.line = line_no;
    parse_sha256_hex(std::string_view(hash).substr(7), e.sha256);
    for (const TokenEntry& x : out.entries)
      if (x.sha256 == e.sha256) return refuse("the same token as line " + std::to_string(x.line));
    out.entries.push_back(e);
  }
  return out;
}

TokenFile load_tokens(const std::string& path) {
  TokenFile out;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    out.error = "token file " + path + ": cannot read it";
    return out;
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    out.error = "token file " + path + ": others may read or write it (it says who manages this appliance): chmod 600 it";
    return out;
  }
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  if (!f) {
    out.error = "token file " + path + ": cannot read it";
    return out;
  }
  return parse_tokens(ss.str(), path);
}

const TokenEntry* token_entry(const TokenFile& file, std::string_view token) {
  if (token.empty()) return nullptr;
  const auto d = digest(token);
  const TokenEntry* found = nullptr;
  for (const TokenEntry& e : file.entries)  // every entry, found or not: the time says nothing
    if (CRYPTO_memcmp(e.sha256.data(), d.data(), d.size()) == 0) found = &e;
  return found;
}

std::optional<TokenRole> authenticate(const TokenFile& file, std::string_view token) {
  const TokenEntry* e = token_entry(file, token);
  return e ? std::optional<TokenRole>(e->role) : std::nullopt;
}

std::string new_token() {
  unsigned char r[32];
  if (RAND_bytes(r, sizeof r) != 1) throw std::runtime_error("RAND_bytes failed");
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out = "sluice_";
  // base64url without padding: 32 bytes are 43 characters.
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : r) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 63]);
  return out;
}

std::string token_line(TokenRole role, std::string_view token) {
  return std::string(token_role_name(role)) + " sha256:" + hex_string(digest(token));
}

}  // namespace sluice::control
