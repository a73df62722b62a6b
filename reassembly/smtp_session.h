// SMTP session parser: both directions of one SMTP connection, bytes in, callbacks out.
//
// Knows nothing of packets, flows, lcores or policy (STYLE.md, "parsers behind callbacks"). The
// caller feeds the client->server and server->client byte streams in arrival order, split anywhere;
// the parser reports commands, replies (paired with the command they answer, through PIPELINING),
// server capabilities, and the message content of each transaction (DATA after dot-unstuffing, or
// BDAT chunks verbatim), without the terminator. No exceptions, no allocation: all buffers are
// members with fixed capacities.
//
// Protocol rules (RFC 5321, RFC 2920 PIPELINING, RFC 3030 CHUNKING, RFC 3207 STARTTLS, RFC 4954 AUTH)
// - Lines end with CRLF; a bare LF is accepted as a line end too (real servers do) and counted.
// - Replies pair with pending commands first-in first-out. The first reply of a session answers the
//   connection itself (SmtpVerb::greeting). A reply with no pending command is `unpaired`.
// - Commands whose reply decides how the client's next bytes are read pause the client stream
//   until that reply is seen: DATA (354: message content follows; otherwise commands), STARTTLS
//   (220: the session is encrypted, nothing more is parsed in either direction), AUTH (334: the
//   next client line is an authentication response, never reported; any other reply ends the
//   exchange). While paused, client bytes are kept in a hold buffer of kHoldBytes. If it overflows,
//   or if the server direction has never sent a byte (a one-sided capture), the positive reply is
//   assumed and the anomaly `assumed_reply` reported.
// - DATA content: a line consisting of "." ends it; a leading "." of any other line is removed
//   (RFC 5321 4.5.2). The content handed over includes the line end of its last line
//   ("...last line\r\n"), not the "." line. A terminator using a bare LF anywhere ("\n.\n",
//   "\r\n.\n", "\n.\r\n") still ends the data, with the anomaly `bare_lf_terminator`. A "." line
//   ended by a bare CR, or "<CR>.<CR>" inside a line, does not (anomaly `bare_cr_terminator`).
//   Either way the stream's other reading (smtp_reading.h) is reported through on_reading_*,
//   one at a time per session (with set_readings(true)).
// - BDAT n [LAST]: exactly n octets follow the command line, whatever they contain, possibly in the
//   same segment as the command and possibly followed by the next command. Chunks of one message
//   are concatenated. LAST ends the message. "BDAT 0 LAST" is valid. A size that is not a decimal
//   number (or exceeds 2^53) is the anomaly `bdat_bad_size` and the line is treated as a command
//   without data.
// - RSET, a new MAIL, or DATA while a BDAT message is open ends that message as `aborted`.
// - The final reply to a message pairs with SmtpVerb::message_end (after DATA's "." line or the
//   BDAT LAST chunk): on_reply then says whether the server accepted it.
// - Line length limits (RFC 5321 4.5.3.1.4 command line 512 octets, 4.5.3.1.5 reply line 512,
//   4.5.3.1.6 text line 1000): longer lines are tolerated and counted (`long_line`); command and
//   reply lines keep their first kMaxLine bytes (the report says `truncated`). Message content is
//   never truncated by the parser.
// - Pick-up mid-session (capture started late): with from_start == false, each direction skips
//   bytes until the start of a line that looks like SMTP: a known command verb (client) or three
//   digits followed by ' ', '-' or a line end (server).
// - Gaps (bytes lost in the capture): inside DATA content, the message ends `incomplete` (reason
//   gap) and the parser looks for the "." line before reading commands again; inside a BDAT chunk
//   the gap's bytes count against the chunk (exact resync) and the message ends `incomplete` at
//   its end; elsewhere the partial line is dropped and parsing resumes at the next line. A BDAT
//   that opens a message after such a gap, with no MAIL since, may have lost its first chunks with
//   its envelope: the message ends `incomplete` too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "reassembly/smtp_reading.h"

namespace sluice::reassembly {

enum class SmtpVerb : uint8_t {
  greeting,     // pseudo-command: the connection itself (answered by 220/554)
  helo, ehlo, mail, rcpt, data, bdat, rset, quit, noop, vrfy, expn, help, starttls, auth,
  message_end,  // pseudo-command: the end of a message's content ("." line, BDAT LAST)
  unknown,      // any other command line
  none,         // on_reply: no pending command (unpaired)
};
const char* smtp_verb_name(SmtpVerb v) noexcept;

// Server capabilities from the EHLO reply (RFC 5321 4.1.1.1 keywords), as bits.
namespace smtp_caps {
inline constexpr uint32_t pipelining = 1u << 0, chunking = 1u << 1, starttls = 1u << 2, auth = 1u << 3,
                          eightbitmime = 1u << 4, size = 1u << 5, smtputf8 = 1u << 6, binarymime = 1u << 7,
                          dsn = 1u << 8, enhancedstatuscodes = 1u << 9;
}

struct SmtpCommand {
  SmtpVerb verb;
  std::string_view verb_text;  // as sent (case kept), e.g. "MAIL"
  std::string_view argument;   // after the verb and its separating spaces, without the line end;
                               // for AUTH only the mechanism name (credentials are never reported)
  bool truncated;              // the line was longer than kMaxLine
};

struct SmtpReply {
  uint16_t code;              // 100..599; 0 when the line did not start with three digits
  SmtpVerb answers;           // the command this reply pairs with
  std::string_view text;      // text of the reply's last line, after "NNN " (bounded, may be truncated)
  bool multiline;
};

enum class SmtpTransfer : uint8_t { data, bdat };

enum class SmtpMessageStatus : uint8_t {
  complete,    // terminator or BDAT LAST seen, no byte missing
  incomplete,  // bytes of the content were lost (gap)
  aborted,     // RSET / MAIL / DATA / QUIT / connection end before the terminator
};

enum class SmtpAnomaly : uint8_t {
  long_line,           // a line over its RFC 5321 limit
  bare_lf,             // a command or reply line ended by LF alone
  bare_lf_terminator,  // DATA ended by a terminator using a bare LF
  unpaired_reply,      // a reply with no pending command
  too_many_pending,    // more than kMaxPending commands awaiting replies (oldest forgotten)
  assumed_reply,       // a reply the client stream waited for was assumed (hold buffer, one-sided)
  bdat_bad_size,       // BDAT size not a number
  command_in_wrong_state,  // e.g. DATA without MAIL/RCPT, BDAT after DATA
  unknown_command,
  bad_reply,           // a server line that is not a reply
  misaligned_reply,    // a 354 arrived while commands before DATA were unanswered: realigned on DATA
  // Inline enforcement's STARTTLS policy (dataplane/enforcer.h), reported by the enforcer:
  starttls_masked,     // the STARTTLS capability of an EHLO reply was overwritten (`mask`)
  starttls_blocked,    // the client's STARTTLS was answered 454 and the session ended (`block`)
  bare_cr_terminator,  // DATA content holds <CR>.<CR>, an end of data for servers that end lines at a bare CR
  data_before_reply,   // client content before DATA's reply, read at once (set_eager_data)
  // STARTTLS was accepted (220, or assumed) but the client's next octets are no TLS record: a
  // decrypted capture (TLS-terminating proxy, lab capture with keys) or a broken server. The
  // session is parsed on as plain SMTP.
  starttls_plaintext,
};
const char* smtp_anomaly_name(SmtpAnomaly a) noexcept;

class SmtpCallbacks : public SmtpReadingOutput {
 public:
  virtual ~SmtpCallbacks() = default;
  // The other reading of an ambiguous DATA stream (smtp_reading.h): its messages' content.
  // one_message begins before the primary's on_message_end (its message goes on from there).
  void reading_begin(SmtpReadingKind) noexcept override {}
  void reading_data(const uint8_t*, std::size_t) noexcept override {}
  void reading_end(bool) noexcept override {}
  virtual void on_command(const SmtpCommand& cmd) noexcept = 0;
  virtual void on_reply(const SmtpReply& reply) noexcept = 0;
  // After the EHLO reply: the keywords the server offered.
  virtual void on_capabilities(uint32_t caps) noexcept = 0;
  virtual void on_message_begin(SmtpTransfer how) noexcept = 0;
  // Content bytes, valid only during the call. Concatenated they are the message.
  virtual void on_message_data(const uint8_t* data, std::size_t len) noexcept = 0;
  virtual void on_message_end(SmtpMessageStatus status) noexcept = 0;
  // STARTTLS accepted: nothing more will be reported for this session.
  virtual void on_tls() noexcept = 0;
  virtual void on_anomaly(SmtpAnomaly what) noexcept = 0;
};

class SmtpSession {
 public:
  static constexpr std::size_t kMaxLine = 1024;   // kept of a command/reply line (RFC limit 512, slack)
  static constexpr std::size_t kHoldBytes = 4096; // client bytes kept while waiting for a reply
  static constexpr std::size_t kMaxPending = 64;  // pipelined commands awaiting replies

  // from_start: the connection was seen from its SYN (no pick-up needed).
  void init(SmtpCallbacks* callbacks, bool from_start) noexcept;
  // Report the other reading of an ambiguous DATA stream (off by default; kept across init()).
  void set_readings(bool on) noexcept { readings_ = on; }
  // Inline enforcement: client octets that arrive while DATA's reply is awaited (a client
  // pipelining past DATA, which RFC 2920 3.1 forbids, as smuggling attacks do) are read at once as
  // if the 354 had come (anomaly `data_before_reply`), so that the end of the message is found in
  // the frame that carries it, before the server can act on it. The real reply still pairs with
  // DATA. Off by default (tap and replay wait for the reply: a refused DATA makes them commands).
  void set_eager_data(bool on) noexcept { eager_data_ = on; }

  void on_client_data(const uint8_t* data, std::size_t len) noexcept;
  void on_server_data(const uint8_t* data, std::size_t len) noexcept;
  void on_client_gap(uint32_t missing_bytes) noexcept;
  void on_server_gap(uint32_t missing_bytes) noexcept;
  // The connection ended (FIN/RST/timeout): an open message ends `aborted` (or `incomplete` after
  // a gap); held client bytes are parsed as if the awaited reply were positive.
  void on_close() noexcept;

  bool encrypted() const noexcept;
  uint32_t capabilities() const noexcept;

 private:
  // Implementation state: fixed-size members only (line buffers of kMaxLine per direction, the
  // hold buffer, the pending-command ring), so a session never allocates.
  enum class ClientMode : uint8_t {
    commands,    // command lines
    data,        // DATA content (dot-unstuffing), or skipping to the "." line after a gap
    bdat,        // the octets of a BDAT chunk
    credential,  // AUTH response lines (never reported)
    tls_check,   // STARTTLS accepted: the client's next octet says whether TLS follows
    tls,         // the session turned to TLS, or closed: nothing more is parsed
  };
  enum class DotState : uint8_t { line_start, in_line, dot, dot_cr };
  // Line resynchronisation after a pick-up or a gap: the next line (one_line) or every line until
  // one (until_match) is accepted only if it looks like SMTP.
  enum class Resync : uint8_t { none, one_line, until_match };
  enum class Txn : uint8_t { none, mail, rcpt };

  struct LineBuffer {
    uint8_t bytes[kMaxLine];
    std::size_t total;  // octets of the line so far, before its LF (only kMaxLine are kept)
    bool last_cr;       // the last octet seen was CR
  };
  struct Line;  // a complete line, defined in smtp_session.cpp

  static bool take_line(LineBuffer& buf, const uint8_t* p, std::size_t n, std::size_t& used,
                        Line& out) noexcept;

  // Client direction.
  std::size_t feed_client(const uint8_t* p, std::size_t n) noexcept;
  std::size_t feed_lines(const uint8_t* p, std::size_t n) noexcept;
  std::size_t feed_data(const uint8_t* p, std::size_t n) noexcept;
  std::size_t feed_data_lines(const uint8_t* p, std::size_t n) noexcept;
  void bare_cr_seen(std::size_t split_at) noexcept;
  std::size_t scan_bare_cr(const uint8_t* p, std::size_t from, std::size_t end) noexcept;
  void feed_split_to(const uint8_t* p, std::size_t end) noexcept;
  std::size_t feed_bdat(const uint8_t* p, std::size_t n) noexcept;
  void credential_line(const Line& line) noexcept;
  void command_line(const Line& line) noexcept;
  void pause_for(SmtpVerb verb) noexcept;
  void apply_reply(SmtpVerb verb, bool positive, bool assumed) noexcept;
  void resume(bool positive) noexcept;
  void assume_reply() noexcept;
  void drain_hold() noexcept;
  void data_end(bool bare_lf) noexcept;
  void bdat_chunk_done() noexcept;
  void abort_bdat() noexcept;
  void go_tls() noexcept;
  void check_tls(uint8_t first_octet) noexcept;
  // Server direction.
  void server_line(const Line& line) noexcept;
  void reply_complete(uint16_t code, std::string_view text) noexcept;
  // Pending-command ring.
  void push_pending(SmtpVerb verb) noexcept;
  SmtpVerb pop_pending() noexcept;
  SmtpVerb front_pending() const noexcept;

  SmtpCallbacks* cb_ = nullptr;
  bool from_start_ = false;
  bool closed_ = false;
  bool tls_ = false;
  uint32_t caps_ = 0;

  // Client state.
  ClientMode cmode_ = ClientMode::commands;
  Resync cresync_ = Resync::none;
  Txn txn_ = Txn::none;
  bool seen_mail_ = false;        // a MAIL was seen: transaction-state anomalies are meaningful
  bool paused_ = false;           // waiting for the reply to awaited_
  SmtpVerb awaited_ = SmtpVerb::none;
  bool cred_until_command_ = false;  // assumed AUTH exchange: hide lines until a command
  // DATA content.
  DotState dot_ = DotState::line_start;
  bool data_emit_ = false;        // false: skipping to the "." line after a gap
  bool data_last_cr_ = false;
  bool data_prev_bare_lf_ = false;
  bool data_bare_cr_ = false;  // bare_cr_terminator reported for this message
  uint8_t data_tail_[2] = {};  // the last two octets of the current content line (bare-CR scan)
  std::size_t data_tail_len_ = 0;
  // The other reading (smtp_reading.h). split: fed from feed_data, from split_from_ on in the
  // current input (kNoSplit: not fed); fed through the terminator and stopped before on_message_end.
  bool readings_ = false;
  bool eager_data_ = false;
  SmtpReading reading_;
  static constexpr std::size_t kNoSplit = SIZE_MAX;
  std::size_t split_from_ = kNoSplit;
  std::size_t data_line_octets_ = 0;
  // BDAT.
  bool bdat_open_ = false;
  bool bdat_last_ = false;
  bool msg_gap_ = false;          // the open BDAT message lost bytes
  // Client octets were lost among commands since the last transaction ended or MAIL: a BDAT that
  // opens a message now may follow chunks (and an envelope) that were lost with them.
  bool envelope_gap_ = false;
  uint64_t bdat_left_ = 0;
  LineBuffer cline_{};
  std::size_t hold_off_ = 0;     // held bytes are hold_[hold_off_, hold_len_)
  std::size_t hold_len_ = 0;
  uint8_t hold_[kHoldBytes];

  // Server state.
  bool server_seen_ = false;      // the server direction has sent at least one octet
  Resync sresync_ = Resync::none;
  bool in_multiline_ = false;
  uint32_t reply_lines_ = 0;
  uint32_t caps_acc_ = 0;
  LineBuffer sline_{};

  // Commands awaiting replies, oldest at pend_head_.
  SmtpVerb pending_[kMaxPending];
  std::size_t pend_head_ = 0;
  std::size_t pend_count_ = 0;
};

}  // namespace sluice::reassembly
