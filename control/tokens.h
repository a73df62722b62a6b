// Management API tokens (issue 15): the appliance never stores a token, only its SHA-256. The token
// file (`management.token_file`, kept stable) holds one line per token:
//
//   ROLE sha256:HEX        ROLE `admin` or `read`; HEX the lowercase hex SHA-256 of the token's text
//
// Blank lines and lines starting with '#' are ignored. `sluicectl token new --role admin|read`
// prints a new token on its first line and the line to add here on its second.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::control {

enum class TokenRole : uint8_t { read, admin };

const char* token_role_name(TokenRole r) noexcept;
std::optional<TokenRole> token_role_named(std::string_view name) noexcept;

struct TokenEntry {
  TokenRole role = TokenRole::read;
  std::array<uint8_t, 32> sha256{};
  unsigned line = 0;  // in the file, for messages ("token on line 3")
};

struct TokenFile {
  std::vector<TokenEntry> entries;
  std::string error;  // one line naming the file and the line; set when the file is refused
};

// Parses the text of a token file (`origin` names it in errors). Refused as a whole, with one line,
// for: a role that is not admin/read, a hash that is not `sha256:` and 64 lowercase hex digits,
// anything more on a line, the same hash twice.
TokenFile parse_tokens(std::string_view text, const std::string& origin);
// Reads and parses the file; a file that others can read or write is refused too (it names who may
// manage the appliance): `chmod 600`.
TokenFile load_tokens(const std::string& path);

// The entry that holds `token`'s SHA-256 (every entry compared, in constant time), or null.
const TokenEntry* token_entry(const TokenFile& file, std::string_view token);
// Its role.
std::optional<TokenRole> authenticate(const TokenFile& file, std::string_view token);

// A new token: 32 random bytes (OpenSSL's RAND_bytes) as 43 characters of base64url, prefixed
// "sluice_" so that a leaked one is recognisable. Throws std::runtime_error if RAND_bytes fails.
std::string new_token();
// The token file line of a token: "ROLE sha256:HEX".
std::string token_line(TokenRole role, std::string_view token);

}  // namespace sluice::control
