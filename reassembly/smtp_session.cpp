// SMTP session parser (see smtp_session.h for the contract).
//
// Structure: each direction is a byte stream cut into lines by take_line(), which hands a complete
// line either as a view of the caller's bytes (the whole line arrived in one call) or of the
// direction's LineBuffer (the line straddled calls; only its first kMaxLine octets are kept). The
// client direction switches between modes (commands, DATA content, BDAT chunk, AUTH responses,
// TLS); DATA content and BDAT chunks are handed over as spans of the input, never copied. While the
// client waits for the reply to DATA/STARTTLS/AUTH its bytes go to the hold buffer, which is
// parsed again (from the start of the mode the reply selects) when the reply arrives.
#include "reassembly/smtp_session.h"

#include "records/byte_block.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>


namespace sluice::reassembly {

struct SmtpSession::Line {
  const uint8_t* p;    // content without the line end, at most kMaxLine octets
  std::size_t len;
  bool truncated;      // the content was longer than kMaxLine
  std::size_t octets;  // the whole line as sent, line end included
  bool bare_lf;        // ended by LF alone
};

namespace {

// RFC 5321 4.5.3.1.4: a command line is at most 512 octets, CRLF included.
constexpr std::size_t kCommandLineLimit = 512;
// RFC 5321 4.5.3.1.5: a reply line is at most 512 octets, CRLF included.
constexpr std::size_t kReplyLineLimit = 512;
// RFC 5321 4.5.3.1.6: a text line is at most 1000 octets, CRLF included.
constexpr std::size_t kTextLineLimit = 1000;
// Contract: a BDAT size above 2^53 is treated as bad (no real message comes near it, and larger
// values are not exact in JSON consumers).
constexpr uint64_t kMaxBdatSize = uint64_t{1} << 53;

// Fast path of SmtpSession::feed_data_lines inside a content line (issue 18), 64 octets a step
// (AVX2 or SSE2, below): from i, inside a line of which line_octets octets came before i,
// the start `to` of the last line such that the per-line loop would pass over every line ending in
// [i, to) with no callback and no state but the line's own: none is over kTextLineLimit octets,
// none after the first starts with '.', and no '.' in (i, to) follows a CR (a "<CR>.<CR>" needs
// one; the caller checks the line's octets before i, data_tail_, for a CR). Dots elsewhere (sentences)
// do not stop it. Stopping early is always exact: the per-line loop takes over. to == i when no
// line could be passed over; retry is where the per-line loop should call again (the end of the
// step that stopped).
struct DataSkip {
  std::size_t to;
  std::size_t retry;
};

#if defined(__SSE2__)
using records::Sse2Block;
#endif
#if defined(SLUICE_LINE_SCAN_AVX2)
using records::Avx2Block;
#endif

template <class Block>
[[gnu::always_inline]] inline DataSkip skip_data_lines_with(const uint8_t* p, std::size_t i, std::size_t n,
                                                           std::size_t line_octets) noexcept {
  std::size_t to = i;
  std::size_t cur = line_octets;  // octets of the current line before b
  uint64_t eol_prev = 0;          // a CR or LF at b - 1 (inside the scanned range)
  std::size_t b = i;
  for (; n - b >= 64; b += 64) {
    const Block x(p + b);
    const uint64_t nl = x.eq('\n');
    if (x.any('.')) {  // text has dots (base64 none): where do they follow a CR or a LF?
      const uint64_t eol = nl | x.eq('\r');
      if (x.eq('.') & ((eol << 1) | eol_prev)) break;  // a '.' after a CR or at a line start
    }
    if (nl != 0) {
      // The first LF ends the line that began before b; the others end lines shorter than 64.
      if (cur + std::size_t(std::countr_zero(nl)) + 1 > kTextLineLimit) break;
      cur = std::size_t(std::countl_zero(nl));  // the octets after the last LF of the step
      to = b + 64 - cur;
    } else {
      cur += 64;
    }
    eol_prev = p[b + 63] == '\n' || p[b + 63] == '\r';
  }
  return {to, n - b >= 64 ? b + 64 : n};
}

using DataSkipFn = DataSkip (*)(const uint8_t* p, std::size_t i, std::size_t n, std::size_t line_octets) noexcept;

#if defined(__SSE2__)
DataSkip skip_data_lines_sse2(const uint8_t* p, std::size_t i, std::size_t n, std::size_t line_octets) noexcept {
  return skip_data_lines_with<Sse2Block>(p, i, n, line_octets);
}
#else
DataSkip skip_data_lines_none(const uint8_t*, std::size_t i, std::size_t n, std::size_t) noexcept { return {i, n}; }
#endif
#if defined(SLUICE_LINE_SCAN_AVX2)
__attribute__((target("avx2"))) DataSkip skip_data_lines_avx2(const uint8_t* p, std::size_t i, std::size_t n,
                                                              std::size_t line_octets) noexcept {
  return skip_data_lines_with<Avx2Block>(p, i, n, line_octets);
}
#endif

// Chosen once at start (records::avx2_line_scans(): AVX2 where the CPU has it, unless
// SLUICE_LINE_SCAN=sse2; the MIME body scan follows the same choice).
DataSkipFn pick_skip_data_lines() noexcept {
#if defined(SLUICE_LINE_SCAN_AVX2)
  if (records::avx2_line_scans()) return skip_data_lines_avx2;
#endif
#if defined(__SSE2__)
  return skip_data_lines_sse2;
#else
  return skip_data_lines_none;
#endif
}

const DataSkipFn skip_data_lines = pick_skip_data_lines();

constexpr char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view as_view(const uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

struct VerbEntry {
  std::string_view text;
  SmtpVerb verb;
};
constexpr VerbEntry kVerbs[] = {
    {"HELO", SmtpVerb::helo}, {"EHLO", SmtpVerb::ehlo}, {"MAIL", SmtpVerb::mail},
    {"RCPT", SmtpVerb::rcpt}, {"DATA", SmtpVerb::data}, {"BDAT", SmtpVerb::bdat},
    {"RSET", SmtpVerb::rset}, {"QUIT", SmtpVerb::quit}, {"NOOP", SmtpVerb::noop},
    {"VRFY", SmtpVerb::vrfy}, {"EXPN", SmtpVerb::expn}, {"HELP", SmtpVerb::help},
    {"STARTTLS", SmtpVerb::starttls}, {"AUTH", SmtpVerb::auth},
};

struct ParsedCommand {
  SmtpVerb verb;
  std::string_view verb_text;
  std::string_view argument;
};

// "VERB SP argument": the verb ends at the first space; the argument starts after the spaces.
ParsedCommand parse_command(std::string_view line) {
  ParsedCommand c{SmtpVerb::unknown, line, {}};
  const std::size_t sp = line.find(' ');
  if (sp != std::string_view::npos) {
    c.verb_text = line.substr(0, sp);
    std::size_t a = sp;
    while (a < line.size() && line[a] == ' ') ++a;
    c.argument = line.substr(a);
  }
  for (const VerbEntry& v : kVerbs) {
    if (iequals(c.verb_text, v.text)) {
      c.verb = v.verb;
      break;
    }
  }
  return c;
}

// RFC 3030 2: "BDAT" SP chunk-size [ SP end-marker ], chunk-size = 1*DIGIT, end-marker = "LAST".
bool parse_bdat(std::string_view arg, uint64_t& size, bool& last) {
  std::size_t i = 0;
  uint64_t v = 0;
  while (i < arg.size() && arg[i] >= '0' && arg[i] <= '9') {
    v = v * 10 + static_cast<uint64_t>(arg[i] - '0');
    if (v > kMaxBdatSize) return false;
    ++i;
  }
  if (i == 0 || (i < arg.size() && arg[i] != ' ')) return false;
  while (i < arg.size() && arg[i] == ' ') ++i;
  std::size_t e = i;
  while (e < arg.size() && arg[e] != ' ') ++e;
  last = iequals(arg.substr(i, e - i), "LAST");
  // Anything else after the size ("BDAT 5 X") is a syntax error: servers reject the command and
  // read no chunk (Postfix 521, others 501), so the bytes that follow are commands.
  if (e > i && !last) return false;
  while (e < arg.size() && arg[e] == ' ') ++e;
  if (e != arg.size()) return false;
  size = v;
  return true;
}

// Pick-up and resynchronisation: a line that is a known verb with the syntax RFC 5321 gives it,
// strict enough that message text ("Data follows", "Help me") is not mistaken for a command.
bool looks_like_command(const ParsedCommand& c) {
  switch (c.verb) {
    case SmtpVerb::helo:
    case SmtpVerb::ehlo:
    case SmtpVerb::vrfy:
    case SmtpVerb::expn:
    case SmtpVerb::auth:
      return !c.argument.empty();
    case SmtpVerb::mail:
      return istarts_with(c.argument, "FROM:");
    case SmtpVerb::rcpt:
      return istarts_with(c.argument, "TO:");
    case SmtpVerb::data:
    case SmtpVerb::rset:
    case SmtpVerb::quit:
    case SmtpVerb::noop:
    case SmtpVerb::help:
    case SmtpVerb::starttls:
      return c.argument.empty();
    case SmtpVerb::bdat: {
      uint64_t size = 0;
      bool last = false;
      return parse_bdat(c.argument, size, last);
    }
    default:
      return false;
  }
}

// RFC 5321 4.2: Reply-code = %x32-35 %x30-35 %x30-39; 1yz is accepted too (4.2.1).
bool reply_code(std::string_view line, uint16_t& code) {
  if (line.size() < 3) return false;
  for (std::size_t i = 0; i < 3; ++i)
    if (line[i] < '0' || line[i] > '9') return false;
  if (line[0] < '1' || line[0] > '5') return false;
  code = static_cast<uint16_t>((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
  return true;
}

// Three digits followed by ' ', '-' or the line end.
bool looks_like_reply(std::string_view line) {
  uint16_t code = 0;
  return reply_code(line, code) && (line.size() == 3 || line[3] == ' ' || line[3] == '-');
}

struct KeywordEntry {
  std::string_view text;
  uint32_t bit;
};
constexpr KeywordEntry kKeywords[] = {
    {"PIPELINING", smtp_caps::pipelining}, {"CHUNKING", smtp_caps::chunking},
    {"STARTTLS", smtp_caps::starttls},     {"AUTH", smtp_caps::auth},
    {"8BITMIME", smtp_caps::eightbitmime}, {"SIZE", smtp_caps::size},
    {"SMTPUTF8", smtp_caps::smtputf8},     {"BINARYMIME", smtp_caps::binarymime},
    {"DSN", smtp_caps::dsn},               {"ENHANCEDSTATUSCODES", smtp_caps::enhancedstatuscodes},
};

// RFC 5321 4.1.1.1: ehlo-line = ehlo-keyword *( SP ehlo-param ); "AUTH=" is the pre-RFC 4954 form.
uint32_t keyword_bit(std::string_view text) {
  std::size_t e = 0;
  while (e < text.size() && text[e] != ' ' && text[e] != '=') ++e;
  const std::string_view kw = text.substr(0, e);
  for (const KeywordEntry& k : kKeywords)
    if (iequals(kw, k.text)) return k.bit;
  return 0;
}

bool positive_for(SmtpVerb verb, uint16_t code) {
  switch (verb) {
    case SmtpVerb::data: return code == 354;
    case SmtpVerb::starttls: return code == 220;
    case SmtpVerb::auth: return code == 334;
    default: return false;
  }
}

}  // namespace

const char* smtp_verb_name(SmtpVerb v) noexcept {
  switch (v) {
    case SmtpVerb::greeting: return "greeting";
    case SmtpVerb::helo: return "helo";
    case SmtpVerb::ehlo: return "ehlo";
    case SmtpVerb::mail: return "mail";
    case SmtpVerb::rcpt: return "rcpt";
    case SmtpVerb::data: return "data";
    case SmtpVerb::bdat: return "bdat";
    case SmtpVerb::rset: return "rset";
    case SmtpVerb::quit: return "quit";
    case SmtpVerb::noop: return "noop";
    case SmtpVerb::vrfy: return "vrfy";
    case SmtpVerb::expn: return "expn";
    case SmtpVerb::help: return "help";
    case SmtpVerb::starttls: return "starttls";
    case SmtpVerb::auth: return "auth";
    case SmtpVerb::message_end: return "message_end";
    case SmtpVerb::unknown: return "unknown";
    case SmtpVerb::none: return "none";
  }
  return "unknown";
}

const char* smtp_anomaly_name(SmtpAnomaly a) noexcept {
  switch (a) {
    case SmtpAnomaly::long_line: return "long_line";
    case SmtpAnomaly::bare_lf: return "bare_lf";
    case SmtpAnomaly::bare_lf_terminator: return "bare_lf_terminator";
    case SmtpAnomaly::unpaired_reply: return "unpaired_reply";
    case SmtpAnomaly::too_many_pending: return "too_many_pending";
    case SmtpAnomaly::assumed_reply: return "assumed_reply";
    case SmtpAnomaly::bdat_bad_size: return "bdat_bad_size";
    case SmtpAnomaly::command_in_wrong_state: return "command_in_wrong_state";
    case SmtpAnomaly::unknown_command: return "unknown_command";
    case SmtpAnomaly::bad_reply: return "bad_reply";
    case SmtpAnomaly::misaligned_reply: return "misaligned_reply";
    case SmtpAnomaly::starttls_masked: return "starttls_masked";
    case SmtpAnomaly::starttls_blocked: return "starttls_blocked";
    case SmtpAnomaly::bare_cr_terminator: return "bare_cr_terminator";
    case SmtpAnomaly::data_before_reply: return "data_before_reply";
    case SmtpAnomaly::starttls_plaintext: return "starttls_plaintext";
  }
  return "unknown";
}

void SmtpSession::init(SmtpCallbacks* callbacks, bool from_start) noexcept {
  cb_ = callbacks;
  from_start_ = from_start;
  closed_ = false;
  tls_ = false;
  caps_ = 0;

  cmode_ = ClientMode::commands;
  cresync_ = from_start ? Resync::none : Resync::until_match;
  txn_ = Txn::none;
  seen_mail_ = false;
  envelope_gap_ = false;
  paused_ = false;
  awaited_ = SmtpVerb::none;
  cred_until_command_ = false;
  dot_ = DotState::line_start;
  data_emit_ = false;
  data_last_cr_ = false;
  data_prev_bare_lf_ = false;
  data_bare_cr_ = false;
  data_tail_len_ = 0;
  data_line_octets_ = 0;
  reading_ = SmtpReading{};
  split_from_ = kNoSplit;
  bdat_open_ = false;
  bdat_last_ = false;
  msg_gap_ = false;
  bdat_left_ = 0;
  cline_.total = 0;
  cline_.last_cr = false;
  hold_off_ = 0;
  hold_len_ = 0;

  server_seen_ = false;
  sresync_ = from_start ? Resync::none : Resync::until_match;
  in_multiline_ = false;
  reply_lines_ = 0;
  caps_acc_ = 0;
  sline_.total = 0;
  sline_.last_cr = false;

  pend_head_ = 0;
  pend_count_ = 0;
  // The first reply of a session answers the connection itself.
  if (from_start) push_pending(SmtpVerb::greeting);
}

bool SmtpSession::encrypted() const noexcept { return tls_; }
uint32_t SmtpSession::capabilities() const noexcept { return caps_; }

// ---------------------------------------------------------------------------------------------
// Lines

bool SmtpSession::take_line(LineBuffer& buf, const uint8_t* p, std::size_t n, std::size_t& used,
                            Line& out) noexcept {
  const auto* nl = static_cast<const uint8_t*>(std::memchr(p, '\n', n));
  const std::size_t seg = nl != nullptr ? static_cast<std::size_t>(nl - p) : n;
  if (buf.total == 0 && nl != nullptr) {  // the whole line is in this call: no copy
    const bool cr = seg > 0 && p[seg - 1] == '\r';
    const std::size_t content = seg - (cr ? 1 : 0);
    out = Line{p, std::min(content, kMaxLine), content > kMaxLine, seg + 1, !cr};
    used = seg + 1;
    return true;
  }
  if (seg > 0) {
    if (buf.total < kMaxLine) std::memcpy(buf.bytes + buf.total, p, std::min(seg, kMaxLine - buf.total));
    buf.total += seg;
    buf.last_cr = p[seg - 1] == '\r';
  }
  if (nl == nullptr) {
    used = n;
    return false;
  }
  const std::size_t content = buf.total - (buf.last_cr ? 1 : 0);
  out = Line{buf.bytes, std::min(content, kMaxLine), content > kMaxLine, buf.total + 1, !buf.last_cr};
  buf.total = 0;  // out.p stays valid until the next byte is appended
  buf.last_cr = false;
  used = seg + 1;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Pending commands

void SmtpSession::push_pending(SmtpVerb verb) noexcept {
  if (pend_count_ == kMaxPending) {  // forget the oldest
    pend_head_ = (pend_head_ + 1) % kMaxPending;
    --pend_count_;
    // In a one-sided capture nothing is ever answered: not worth an anomaly per command.
    if (server_seen_) cb_->on_anomaly(SmtpAnomaly::too_many_pending);
  }
  pending_[(pend_head_ + pend_count_) % kMaxPending] = verb;
  ++pend_count_;
}

SmtpVerb SmtpSession::pop_pending() noexcept {
  if (pend_count_ == 0) return SmtpVerb::none;
  const SmtpVerb v = pending_[pend_head_];
  pend_head_ = (pend_head_ + 1) % kMaxPending;
  --pend_count_;
  return v;
}

SmtpVerb SmtpSession::front_pending() const noexcept {
  return pend_count_ == 0 ? SmtpVerb::none : pending_[pend_head_];
}

// ---------------------------------------------------------------------------------------------
// Client direction

void SmtpSession::on_client_data(const uint8_t* data, std::size_t len) noexcept {
  if (cb_ == nullptr || closed_ || tls_ || data == nullptr) return;
  while (len > 0 && !tls_) {
    if (paused_ && eager_data_ && awaited_ == SmtpVerb::data) {
      cb_->on_anomaly(SmtpAnomaly::data_before_reply);
      paused_ = false;
      apply_reply(SmtpVerb::data, true, true);
      drain_hold();
      continue;
    }
    if (!paused_) {
      const std::size_t k = feed_client(data, len);
      data += k;
      len -= k;
      continue;
    }
    if (hold_len_ == kHoldBytes && hold_off_ > 0) {
      std::memmove(hold_, hold_ + hold_off_, hold_len_ - hold_off_);
      hold_len_ -= hold_off_;
      hold_off_ = 0;
    }
    if (hold_len_ == kHoldBytes) {  // hold buffer full: stop waiting
      assume_reply();
      continue;
    }
    const std::size_t k = std::min(len, kHoldBytes - hold_len_);
    std::memcpy(hold_ + hold_len_, data, k);
    hold_len_ += k;
    data += k;
    len -= k;
  }
}

// Parses until the input is used up, the client pauses, or the session turns to TLS. Every pass
// of the loop consumes at least one octet or changes mode, so it terminates.
std::size_t SmtpSession::feed_client(const uint8_t* p, std::size_t n) noexcept {
  std::size_t off = 0;
  while (off < n && !paused_ && cmode_ != ClientMode::tls) {
    // The strict one-message reading takes every octet after the terminator it started at.
    bool strict = reading_.kind() == SmtpReadingKind::one_message;
    std::size_t k = 0;
    switch (cmode_) {
      case ClientMode::commands:
      case ClientMode::credential:
        // The line feed_lines takes goes to the reading first: the command may end the reading
        // (STARTTLS assumed in a one-sided capture turns to TLS at once), after its own octets.
        if (strict) {
          const auto* nl = static_cast<const uint8_t*>(std::memchr(p + off, '\n', n - off));
          reading_.feed(p + off, nl != nullptr ? static_cast<std::size_t>(nl - p) + 1 - off : n - off, *cb_);
          strict = false;
        }
        k = feed_lines(p + off, n - off);
        break;
      case ClientMode::data: k = feed_data(p + off, n - off); break;
      case ClientMode::bdat: k = feed_bdat(p + off, n - off); break;
      case ClientMode::tls_check: check_tls(p[off]); break;  // changes the mode, takes nothing
      case ClientMode::tls: break;
    }
    if (strict && reading_.kind() == SmtpReadingKind::one_message) reading_.feed(p + off, k, *cb_);
    off += k;
  }
  return off;
}

// One line at most, so that a mode change takes effect at the next octet.
std::size_t SmtpSession::feed_lines(const uint8_t* p, std::size_t n) noexcept {
  std::size_t used = 0;
  Line line{};
  if (!take_line(cline_, p, n, used, line)) return used;
  if (cmode_ == ClientMode::credential) {
    credential_line(line);
    return used;
  }
  if (cresync_ != Resync::none) {
    const ParsedCommand c = parse_command(as_view(line.p, line.len));
    const bool ok = looks_like_command(c);
    if (cresync_ == Resync::one_line || ok) cresync_ = Resync::none;
    if (!ok) return used;  // dropped: not (the start of) a command line
  }
  command_line(line);
  return used;
}

void SmtpSession::credential_line(const Line& line) noexcept {
  if (cred_until_command_) {  // the exchange was assumed: it ends at the first command line
    const ParsedCommand c = parse_command(as_view(line.p, line.len));
    if (looks_like_command(c)) {
      cmode_ = ClientMode::commands;
      cred_until_command_ = false;
      command_line(line);
      return;
    }
  }
  // An authentication response: its content is never reported.
  if (line.bare_lf) cb_->on_anomaly(SmtpAnomaly::bare_lf);
  push_pending(SmtpVerb::auth);
  if (!cred_until_command_) pause_for(SmtpVerb::auth);
}

void SmtpSession::command_line(const Line& line) noexcept {
  if (line.octets > kCommandLineLimit) cb_->on_anomaly(SmtpAnomaly::long_line);
  if (line.bare_lf) cb_->on_anomaly(SmtpAnomaly::bare_lf);

  const ParsedCommand c = parse_command(as_view(line.p, line.len));
  SmtpCommand cmd{c.verb, c.verb_text, c.argument, line.truncated};
  // Transaction-state anomalies only once the session's state is known (from the start, or
  // since a MAIL after a pick-up).
  const bool state_known = from_start_ || seen_mail_;
  auto wrong_state = [&](bool cond) {
    if (cond) cb_->on_anomaly(SmtpAnomaly::command_in_wrong_state);
  };
  uint64_t bdat_size = 0;
  bool bdat_last = false;
  bool bdat_ok = false;
  switch (c.verb) {
    case SmtpVerb::unknown:
      cb_->on_anomaly(SmtpAnomaly::unknown_command);
      break;
    case SmtpVerb::mail:
      wrong_state(bdat_open_ || (state_known && txn_ != Txn::none));
      break;
    case SmtpVerb::rcpt:
      wrong_state(state_known && txn_ == Txn::none);
      break;
    case SmtpVerb::data:
      wrong_state(bdat_open_ || (state_known && txn_ != Txn::rcpt));
      break;
    case SmtpVerb::bdat:
      bdat_ok = parse_bdat(c.argument, bdat_size, bdat_last);
      if (!bdat_ok)
        cb_->on_anomaly(SmtpAnomaly::bdat_bad_size);
      else
        wrong_state(!bdat_open_ && state_known && txn_ != Txn::rcpt);
      break;
    case SmtpVerb::auth: {  // RFC 4954 4: AUTH mechanism [initial-response]; keep the mechanism only
      const std::size_t sp = c.argument.find(' ');
      if (sp != std::string_view::npos) cmd.argument = c.argument.substr(0, sp);
      break;
    }
    default:
      break;
  }
  cb_->on_command(cmd);

  switch (c.verb) {
    case SmtpVerb::helo:
    case SmtpVerb::ehlo:
    case SmtpVerb::rset:
    case SmtpVerb::quit:
      abort_bdat();
      txn_ = Txn::none;
      break;
    case SmtpVerb::mail:
      abort_bdat();
      txn_ = Txn::mail;
      seen_mail_ = true;
      envelope_gap_ = false;
      break;
    case SmtpVerb::rcpt:
      if (txn_ != Txn::none) txn_ = Txn::rcpt;
      break;
    case SmtpVerb::data:
      abort_bdat();
      break;
    default:
      break;
  }

  if (c.verb == SmtpVerb::bdat && bdat_ok) {
    // The reply to the LAST chunk is the message's final reply.
    push_pending(bdat_last ? SmtpVerb::message_end : SmtpVerb::bdat);
    if (!bdat_open_) {
      cb_->on_message_begin(SmtpTransfer::bdat);
      bdat_open_ = true;
      msg_gap_ = envelope_gap_;  // its MAIL and first chunks may have gone with the lost octets
    }
    bdat_left_ = bdat_size;
    bdat_last_ = bdat_last;
    cmode_ = ClientMode::bdat;
    if (bdat_left_ == 0) bdat_chunk_done();
    return;
  }
  push_pending(c.verb);
  if (c.verb == SmtpVerb::data || c.verb == SmtpVerb::starttls || c.verb == SmtpVerb::auth)
    pause_for(c.verb);
}

void SmtpSession::pause_for(SmtpVerb verb) noexcept {
  if (!server_seen_) {  // one-sided capture: no reply will come
    cb_->on_anomaly(SmtpAnomaly::assumed_reply);
    apply_reply(verb, true, true);
    return;
  }
  paused_ = true;
  awaited_ = verb;
}

// How the client's next octets are read once the reply to `verb` is known (or assumed).
void SmtpSession::apply_reply(SmtpVerb verb, bool positive, bool assumed) noexcept {
  cmode_ = ClientMode::commands;
  if (!positive) return;
  switch (verb) {
    case SmtpVerb::data:
      cb_->on_message_begin(SmtpTransfer::data);
      cmode_ = ClientMode::data;
      dot_ = DotState::line_start;
      data_emit_ = true;
      data_last_cr_ = false;
      data_prev_bare_lf_ = false;
      data_bare_cr_ = false;
      data_tail_len_ = 0;
      data_line_octets_ = 0;
      break;
    case SmtpVerb::starttls:
      cmode_ = ClientMode::tls_check;
      break;
    case SmtpVerb::auth:
      // A real 334 asks for exactly one response line; an assumed exchange may take several
      // (AUTH LOGIN), so every line up to the next command is taken as a response.
      cmode_ = ClientMode::credential;
      cred_until_command_ = assumed;
      break;
    default:
      break;
  }
}

void SmtpSession::resume(bool positive) noexcept {
  paused_ = false;
  apply_reply(awaited_, positive, false);
  drain_hold();
}

void SmtpSession::assume_reply() noexcept {
  cb_->on_anomaly(SmtpAnomaly::assumed_reply);
  paused_ = false;
  apply_reply(awaited_, true, true);
  drain_hold();
}

// Parses the held bytes; stops early if the client pauses again (the rest stays held).
void SmtpSession::drain_hold() noexcept {
  while (hold_off_ < hold_len_ && !paused_ && cmode_ != ClientMode::tls)
    hold_off_ += feed_client(hold_ + hold_off_, hold_len_ - hold_off_);
  if (hold_off_ == hold_len_ || cmode_ == ClientMode::tls) hold_off_ = hold_len_ = 0;
}

// DATA content, RFC 5321 4.5.2: a line "." ends it, a leading "." of any other line is removed.
// Content is handed over as runs of the input, flushed before any other callback so the order of
// callbacks does not depend on how the input was split.
std::size_t SmtpSession::feed_data(const uint8_t* p, std::size_t n) noexcept {
  split_from_ = reading_.kind() == SmtpReadingKind::split ? 0 : kNoSplit;
  const std::size_t used = feed_data_lines(p, n);
  if (split_from_ < used && reading_.kind() == SmtpReadingKind::split)
    reading_.feed(p + split_from_, used - split_from_, *cb_);
  split_from_ = kNoSplit;
  return used;
}

// <CR>.<CR> (or a "." line ended by a bare CR): reported once per message; the split reading
// starts at `split_at` in the current input.
void SmtpSession::bare_cr_seen(std::size_t split_at) noexcept {
  if (data_bare_cr_) return;
  data_bare_cr_ = true;
  cb_->on_anomaly(SmtpAnomaly::bare_cr_terminator);
  if (readings_ && !reading_.active()) {
    reading_.start_split();
    split_from_ = split_at;
  }
}

// "<CR>.<CR>" in p[from, end) of a content line, across earlier input of the line too
// (data_tail_). Found by its dot: base64 lines have none, text a few.
std::size_t SmtpSession::scan_bare_cr(const uint8_t* p, std::size_t from, std::size_t end) noexcept {
  if (from >= end) return kNoSplit;
  std::size_t at = kNoSplit;
  if (!data_bare_cr_) {
    const std::size_t len = end - from;
    if (data_tail_len_ == 2 && data_tail_[0] == '\r' && data_tail_[1] == '.' && p[from] == '\r') {
      at = from + 1;
    } else if (data_tail_len_ >= 1 && len >= 2 && data_tail_[data_tail_len_ - 1] == '\r' && p[from] == '.' &&
               p[from + 1] == '\r') {
      at = from + 2;
    } else {
      for (const uint8_t* c = p + from + 1; c + 1 < p + end &&
                                            (c = static_cast<const uint8_t*>(std::memchr(c, '.', p + end - 1 - c)));
           ++c)
        if (c[-1] == '\r' && c[1] == '\r') {
          at = static_cast<std::size_t>(c - p) + 2;
          break;
        }
    }
  }
  if (end - from >= 2) {
    data_tail_[0] = p[end - 2];
    data_tail_[1] = p[end - 1];
    data_tail_len_ = 2;
  } else {
    if (data_tail_len_ == 2) data_tail_[0] = data_tail_[1];
    data_tail_[data_tail_len_ == 2 ? 1 : data_tail_len_] = p[from];
    if (data_tail_len_ < 2) ++data_tail_len_;
  }
  return at;
}

void SmtpSession::feed_split_to(const uint8_t* p, std::size_t end) noexcept {
  if (split_from_ < end && reading_.kind() == SmtpReadingKind::split) reading_.feed(p + split_from_, end - split_from_, *cb_);
  split_from_ = kNoSplit;
}

std::size_t SmtpSession::feed_data_lines(const uint8_t* p, std::size_t n) noexcept {
  std::size_t i = 0;
  std::size_t run = 0;  // start of the content not yet handed over
  std::size_t retry = 0;  // where skip_data_lines may be tried again
  auto flush = [&](std::size_t end) {
    if (data_emit_ && end > run) cb_->on_message_data(p + run, end - run);
    run = end;
  };
  while (i < n) {
    switch (dot_) {
      case DotState::line_start:
        if (p[i] == '.') {
          flush(i);
          ++i;
          run = i;
          data_line_octets_ = 1;
          dot_ = DotState::dot;
        } else {
          dot_ = DotState::in_line;
        }
        break;
      case DotState::dot:
        if (p[i] == '\n') {  // ".\n"
          feed_split_to(p, i + 1);
          data_end(true);
          return i + 1;
        }
        if (p[i] == '\r') {
          ++i;
          run = i;
          ++data_line_octets_;
          dot_ = DotState::dot_cr;
        } else {
          dot_ = DotState::in_line;  // a stuffed dot, removed
        }
        break;
      case DotState::dot_cr:
        if (p[i] == '\n') {  // ".\r\n"
          feed_split_to(p, i + 1);
          data_end(data_prev_bare_lf_);
          return i + 1;
        }
        if (data_emit_) {  // ".\r" then more: the CR held back is content
          static constexpr uint8_t kCr = '\r';
          cb_->on_message_data(&kCr, 1);
          // A "." line ended by a bare CR: the end of data for a server that ends lines there.
          bare_cr_seen(i);
        }
        data_tail_[0] = '.';
        data_tail_[1] = '\r';
        data_tail_len_ = 2;
        dot_ = DotState::in_line;
        break;
      case DotState::in_line: {
        // Whole lines that need nothing but handing over, 64 octets a step. A line begun in
        // earlier input whose last octets hold a CR (data_tail_: a "<CR>.<CR>" may go on here)
        // goes through the loop below first.
        if (i >= retry && n - i >= 64 && (data_tail_len_ < 1 || data_tail_[0] != '\r') &&
            (data_tail_len_ < 2 || data_tail_[1] != '\r')) {
          const DataSkip s = skip_data_lines(p, i, n, data_line_octets_);
          retry = s.retry;
          if (s.to != i) {
            const std::size_t k = s.to - 1;  // the last line's LF
            data_prev_bare_lf_ = !(k > i ? p[k - 1] == '\r' : data_last_cr_);
            data_last_cr_ = false;
            data_line_octets_ = 0;
            data_tail_len_ = 0;
            i = s.to;
            dot_ = DotState::line_start;
            break;
          }
        }
        const auto* nl = static_cast<const uint8_t*>(std::memchr(p + i, '\n', n - i));
        if (nl == nullptr) {
          data_line_octets_ += n - i;
          data_last_cr_ = p[n - 1] == '\r';
          if (data_emit_) {
            const std::size_t at = scan_bare_cr(p, i, n);
            if (at != kNoSplit) {
              flush(at);  // the content before the anomaly, whatever the input's split
              bare_cr_seen(at);
            }
          }
          i = n;
          break;
        }
        const std::size_t k = static_cast<std::size_t>(nl - p);
        const bool cr = k > i ? p[k - 1] == '\r' : data_last_cr_;
        // "<CR>.<CR>" inside a line: an end of data for a server that ends lines at a bare CR
        // (one of the SMTP smuggling readings).
        if (data_emit_) {
          const std::size_t at = scan_bare_cr(p, i, k);
          if (at != kNoSplit) {
            flush(at);
            bare_cr_seen(at);
          }
        }
        data_tail_len_ = 0;
        data_line_octets_ += k - i + 1;
        i = k + 1;
        // The line stays in the run (handed over in one call with the lines around it) unless a
        // callback comes after it.
        if (data_emit_ && data_line_octets_ > kTextLineLimit) {
          flush(i);  // the line, its line end included
          cb_->on_anomaly(SmtpAnomaly::long_line);
        }
        data_prev_bare_lf_ = !cr;
        data_last_cr_ = false;
        data_line_octets_ = 0;
        dot_ = DotState::line_start;
        break;
      }
    }
  }
  flush(n);
  return n;
}

void SmtpSession::data_end(bool bare_lf) noexcept {
  if (bare_lf) cb_->on_anomaly(SmtpAnomaly::bare_lf_terminator);
  if (reading_.kind() == SmtpReadingKind::split) reading_.stop(*cb_);  // fed up to here: before on_message_end
  if (bare_lf && data_emit_ && readings_ && !reading_.active()) {
    // The strict reading goes on through the terminator (its octets, as they were, first).
    const bool crlf_before = !data_prev_bare_lf_;
    reading_.start_one_message(crlf_before, *cb_);
    static constexpr uint8_t kDotLf[2] = {'.', '\n'}, kDotCrLf[3] = {'.', '\r', '\n'};
    if (dot_ == DotState::dot_cr)
      reading_.feed(kDotCrLf, 3, *cb_);
    else
      reading_.feed(kDotLf, 2, *cb_);
  }
  if (data_emit_) cb_->on_message_end(SmtpMessageStatus::complete);
  data_emit_ = false;
  txn_ = Txn::none;
  cmode_ = ClientMode::commands;
  push_pending(SmtpVerb::message_end);
}

std::size_t SmtpSession::feed_bdat(const uint8_t* p, std::size_t n) noexcept {
  const std::size_t k = static_cast<std::size_t>(std::min<uint64_t>(bdat_left_, n));
  if (k > 0) cb_->on_message_data(p, k);
  bdat_left_ -= k;
  if (bdat_left_ == 0) bdat_chunk_done();
  return k;
}

void SmtpSession::bdat_chunk_done() noexcept {
  cmode_ = ClientMode::commands;
  if (!bdat_last_) return;
  cb_->on_message_end(msg_gap_ ? SmtpMessageStatus::incomplete : SmtpMessageStatus::complete);
  bdat_open_ = false;
  bdat_last_ = false;
  txn_ = Txn::none;
}

void SmtpSession::abort_bdat() noexcept {
  if (!bdat_open_) return;
  cb_->on_message_end(msg_gap_ ? SmtpMessageStatus::incomplete : SmtpMessageStatus::aborted);
  bdat_open_ = false;
  bdat_last_ = false;
}

void SmtpSession::go_tls() noexcept {
  if (reading_.active()) reading_.stop(*cb_);
  abort_bdat();
  tls_ = true;
  cmode_ = ClientMode::tls;
  paused_ = false;
  hold_off_ = hold_len_ = 0;
  cb_->on_tls();
}

// RFC 3207 4: after the 220 the client starts the TLS negotiation, whose first record is a
// handshake record (content type 22, 0x16; an SSL 2 ClientHello starts with 0x80). Any other
// octet is a client going on in plain text: a command line (a capture decrypted by a
// TLS-terminating proxy, a broken server that accepted STARTTLS and went on): parsed as such.
void SmtpSession::check_tls(uint8_t first_octet) noexcept {
  if (first_octet == 0x16 || first_octet == 0x80) return go_tls();
  cb_->on_anomaly(SmtpAnomaly::starttls_plaintext);
  cmode_ = ClientMode::commands;
}

void SmtpSession::on_client_gap(uint32_t missing_bytes) noexcept {
  if (cb_ == nullptr || closed_ || tls_ || missing_bytes == 0) return;
  // The octets after the gap cannot be held in order with those before it: stop waiting.
  if (paused_) assume_reply();
  // The other reading cannot go on across lost octets (after the held octets: they may start one).
  if (reading_.active()) reading_.stop(*cb_);
  uint64_t missing = missing_bytes;
  uint64_t in_chunk = 0;
  switch (cmode_) {
    case ClientMode::bdat:  // the size is known: the gap's octets count against the chunk
      msg_gap_ = true;
      in_chunk = std::min(bdat_left_, missing);
      bdat_left_ -= in_chunk;
      missing -= in_chunk;
      if (bdat_left_ == 0) bdat_chunk_done();
      if (missing == 0) break;
      [[fallthrough]];  // the gap runs on past the chunk, into command lines
    case ClientMode::commands:
      cline_.total = 0;
      cline_.last_cr = false;
      if (cresync_ == Resync::none) cresync_ = Resync::one_line;
      envelope_gap_ = true;
      break;
    case ClientMode::data:
      if (data_emit_) cb_->on_message_end(SmtpMessageStatus::incomplete);
      data_emit_ = false;  // now look for the "." line
      // The gap most often ends where a segment did; the next octet is taken as a line start.
      dot_ = DotState::line_start;
      data_last_cr_ = false;
      data_line_octets_ = 0;
      break;
    case ClientMode::credential:  // the rest of the response line is still a response
    case ClientMode::tls:
      break;
    case ClientMode::tls_check:  // what follows the STARTTLS exchange is lost: TLS, most likely
      go_tls();
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Server direction

void SmtpSession::on_server_data(const uint8_t* data, std::size_t len) noexcept {
  if (cb_ == nullptr || closed_ || data == nullptr || len == 0) return;
  server_seen_ = true;
  while (len > 0 && !tls_) {
    // A server's TLS record before the client's first octet after the 220 (the two directions of a
    // tap can arrive out of step): the session turned to TLS. Looked for at every line start, not
    // at the start of the call only, so that it does not depend on how the stream was cut (a 220
    // and the record in one call); an 0x16 inside a line is the line's.
    if (cmode_ == ClientMode::tls_check && sline_.total == 0 && data[0] == 0x16) return go_tls();
    std::size_t used = 0;
    Line line{};
    if (take_line(sline_, data, len, used, line)) server_line(line);
    data += used;
    len -= used;
  }
}

void SmtpSession::on_server_gap(uint32_t missing_bytes) noexcept {
  if (cb_ == nullptr || closed_ || missing_bytes == 0) return;
  server_seen_ = true;
  if (tls_) return;
  sline_.total = 0;
  sline_.last_cr = false;
  if (sresync_ == Resync::none) sresync_ = Resync::one_line;
}

void SmtpSession::server_line(const Line& line) noexcept {
  const std::string_view s = as_view(line.p, line.len);
  if (sresync_ != Resync::none) {
    const bool ok = looks_like_reply(s);
    if (sresync_ == Resync::one_line || ok) sresync_ = Resync::none;
    if (!ok) return;
  }
  if (line.octets > kReplyLineLimit) cb_->on_anomaly(SmtpAnomaly::long_line);
  if (line.bare_lf) cb_->on_anomaly(SmtpAnomaly::bare_lf);

  uint16_t code = 0;
  if (!reply_code(s, code)) {
    cb_->on_anomaly(SmtpAnomaly::bad_reply);
    if (in_multiline_) return;  // a stray line inside a multi-line reply
    cb_->on_reply(SmtpReply{0, SmtpVerb::none, s, false});
    return;
  }
  const bool well_formed = s.size() == 3 || s[3] == ' ' || s[3] == '-';
  if (!well_formed) cb_->on_anomaly(SmtpAnomaly::bad_reply);  // "250text": taken as a last line
  const std::string_view text = s.substr(well_formed ? std::min<std::size_t>(4, s.size()) : 3);
  if (reply_lines_ < 2) ++reply_lines_;
  // RFC 5321 4.1.1.1: the EHLO reply's lines after the first carry one keyword each.
  if (reply_lines_ > 1 && front_pending() == SmtpVerb::ehlo) caps_acc_ |= keyword_bit(text);
  if (well_formed && s.size() > 3 && s[3] == '-') {
    in_multiline_ = true;
    return;
  }
  reply_complete(code, text);
}

void SmtpSession::reply_complete(uint16_t code, std::string_view text) noexcept {
  const bool multiline = reply_lines_ > 1;
  const uint32_t caps = caps_acc_;
  reply_lines_ = 0;
  caps_acc_ = 0;
  in_multiline_ = false;

  // 354 answers nothing but DATA (RFC 5321 4.3.2). When DATA is pending behind other commands,
  // the reply stream is shifted (a reply lost in the capture, or a server line without its line
  // end merged into the next): realign on DATA rather than read the message as commands.
  if (code == 354 && front_pending() != SmtpVerb::data) {
    bool data_pending = false;
    for (std::size_t i = 0; i < pend_count_; ++i) data_pending |= pending_[(pend_head_ + i) % kMaxPending] == SmtpVerb::data;
    if (data_pending) {
      cb_->on_anomaly(SmtpAnomaly::misaligned_reply);
      while (front_pending() != SmtpVerb::data) pop_pending();
    }
  }
  SmtpVerb answers = SmtpVerb::none;
  if (pend_count_ == 0)
    cb_->on_anomaly(SmtpAnomaly::unpaired_reply);
  else
    answers = pop_pending();
  if (answers == SmtpVerb::ehlo && code / 100 == 2) {
    caps_ = caps;
    cb_->on_capabilities(caps);
  }
  cb_->on_reply(SmtpReply{code, answers, text, multiline});

  if (answers == SmtpVerb::mail && code / 100 != 2) txn_ = Txn::none;  // no transaction opened
  // The awaited command is always the newest pending one: its reply empties the ring. A 220 to the
  // awaited STARTTLS resumes the client in tls_check (TLS begins with its next octets, unless they
  // are plain SMTP: check_tls). A 220 to a STARTTLS whose reply was assumed (no server octet yet,
  // hold buffer full) changes nothing: the client's octets after it were checked then and read
  // on, perhaps into a message that is still open.
  if (paused_ && pend_count_ == 0) resume(positive_for(awaited_, code));
}

// ---------------------------------------------------------------------------------------------

void SmtpSession::on_close() noexcept {
  if (cb_ == nullptr || closed_) return;
  if (!tls_) {
    if (paused_) assume_reply();
    // STARTTLS accepted (or assumed just now) and nothing followed: TLS is what a client does
    // next (RFC 3207).
    if (cmode_ == ClientMode::tls_check) go_tls();
    if (reading_.active()) reading_.stop(*cb_);
    if (!tls_) {
      if (cmode_ == ClientMode::data && data_emit_) cb_->on_message_end(SmtpMessageStatus::aborted);
      data_emit_ = false;
      abort_bdat();
    }
  }
  closed_ = true;
}

}  // namespace sluice::reassembly
