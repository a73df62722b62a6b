#include "reassembly/smtp_session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace sluice::reassembly;
using namespace std::string_literals;

namespace {

// Renders every callback as one line of text; consecutive on_message_data calls become one
// "data N" line (N = octets), so the log does not depend on how content was cut into spans.
struct Recorder final : SmtpCallbacks {
  std::vector<std::string> log;
  std::vector<std::string> messages;  // one per on_message_begin, content concatenated
  std::vector<std::string> errors;    // contract violations seen by the recorder
  bool open = false;
  bool tls = false;

  void add(std::string line) {
    if (tls) errors.push_back("callback after on_tls: " + line);
    log.push_back(std::move(line));
  }

  void on_command(const SmtpCommand& c) noexcept override {
    std::string s = "cmd ";
    if (c.verb == SmtpVerb::unknown) {
      s += "?";
    } else {
      std::string upper = smtp_verb_name(c.verb);
      for (char& ch : upper) ch = char(std::toupper(static_cast<unsigned char>(ch)));
      std::string sent(c.verb_text);
      for (char& ch : sent) ch = char(std::toupper(static_cast<unsigned char>(ch)));
      if (sent != upper) errors.push_back("verb_text " + std::string(c.verb_text) + " is not " + upper);
    }
    s += std::string(c.verb_text);
    if (!c.argument.empty()) s += " " + std::string(c.argument);
    if (c.truncated) s += " [truncated]";
    add(s);
  }
  void on_reply(const SmtpReply& r) noexcept override {
    std::string s = "reply " + std::to_string(r.code) + " answers=" + smtp_verb_name(r.answers);
    if (!r.text.empty()) s += " " + std::string(r.text);
    if (r.multiline) s += " [multi]";
    add(s);
  }
  void on_capabilities(uint32_t caps) noexcept override {
    static const char* names[] = {"pipelining", "chunking", "starttls",   "auth", "eightbitmime",
                                  "size",       "smtputf8", "binarymime", "dsn",  "enhancedstatuscodes"};
    std::string s = "caps";
    for (unsigned i = 0; i < 10; ++i)
      if (caps & (1u << i)) s += std::string(" ") + names[i];
    if (caps >> 10) errors.push_back("unknown capability bits");
    add(s);
  }
  void on_message_begin(SmtpTransfer how) noexcept override {
    if (open) errors.push_back("begin while a message is open");
    open = true;
    messages.emplace_back();
    add(how == SmtpTransfer::data ? "begin data" : "begin bdat");
  }
  void on_message_data(const uint8_t* data, std::size_t len) noexcept override {
    if (len == 0) errors.push_back("empty on_message_data");
    if (!open) {
      errors.push_back("data outside a message");
      return;
    }
    messages.back().append(reinterpret_cast<const char*>(data), len);
    if (!log.empty() && log.back().rfind("data ", 0) == 0) {
      log.back() = "data " + std::to_string(std::stoul(log.back().substr(5)) + len);
    } else {
      add("data " + std::to_string(len));
    }
  }
  void on_message_end(SmtpMessageStatus st) noexcept override {
    if (!open) errors.push_back("end without begin");
    open = false;
    add(st == SmtpMessageStatus::complete     ? "end complete"
        : st == SmtpMessageStatus::incomplete ? "end incomplete"
                                              : "end aborted");
  }
  void on_tls() noexcept override {
    add("tls");
    tls = true;
  }
  void on_anomaly(SmtpAnomaly a) noexcept override { add(std::string("anomaly ") + smtp_anomaly_name(a)); }
  // The other reading (set_readings): "KIND complete|incomplete:CONTENT" per message.
  std::vector<std::string> readings;
  bool reading_open = false;
  bool reading_split = false;
  void reading_begin(SmtpReadingKind k) noexcept override {
    if (reading_open) errors.push_back("reading begins while one is open");
    // split: a message inside the primary's; one_message: begins before the primary's end.
    if (!open) errors.push_back("reading begins outside the primary's message");
    reading_open = true;
    reading_split = k == SmtpReadingKind::split;
    readings.push_back(std::string(smtp_reading_name(k)) + " ");
  }
  void reading_data(const uint8_t* d, std::size_t n) noexcept override {
    if (!reading_open) errors.push_back("reading data outside a reading message");
    if (n == 0) errors.push_back("empty reading_data");
    if (reading_open) readings.back().append(reinterpret_cast<const char*>(d), n);
  }
  void reading_end(bool complete) noexcept override {
    if (!reading_open) errors.push_back("reading ends without begin");
    if (reading_split && !open) errors.push_back("split reading ends after the primary's message");
    reading_open = false;
    if (readings.empty()) return;
    const std::size_t sp = readings.back().find(' ');
    readings.back().insert(sp + 1, complete ? "complete:" : "incomplete:");
  }
};

// A capture: both directions' events in the order they were seen.
struct Ev {
  enum Kind { client, server, client_gap, server_gap, close } kind;
  std::string bytes;
  uint32_t gap = 0;
};
using Transcript = std::vector<Ev>;
Ev C(std::string s) { return {Ev::client, std::move(s)}; }
Ev S(std::string s) { return {Ev::server, std::move(s)}; }
Ev CGap(uint32_t n) { return {Ev::client_gap, {}, n}; }
Ev SGap(uint32_t n) { return {Ev::server_gap, {}, n}; }
Ev Close() { return {Ev::close, {}}; }

struct Result {
  std::vector<std::string> log;
  std::vector<std::string> messages;
  uint32_t caps = 0;
  bool encrypted = false;
  std::vector<std::string> readings;
};

// How a chunk of `len` octets is cut into calls.
using Splitter = std::function<std::vector<std::size_t>(std::size_t len)>;

std::vector<std::size_t> whole(std::size_t len) { return {len}; }
std::vector<std::size_t> bytewise(std::size_t len) { return std::vector<std::size_t>(len, 1); }
Splitter random_splits(uint32_t seed) {
  auto rng = std::make_shared<std::mt19937>(seed);
  return [rng](std::size_t len) {
    std::vector<std::size_t> parts;
    const std::size_t max_piece = std::uniform_int_distribution<std::size_t>(1, 12)(*rng) == 1 ? 4096 : 9;
    while (len > 0) {
      const std::size_t k = std::min(len, std::uniform_int_distribution<std::size_t>(1, max_piece)(*rng));
      parts.push_back(k);
      len -= k;
    }
    return parts;
  };
}

Result run(const Transcript& t, bool from_start = true, const Splitter& split = whole, bool readings = false) {
  Recorder rec;
  auto session = std::make_unique<SmtpSession>();
  session->set_readings(readings);
  session->init(&rec, from_start);
  for (const Ev& e : t) {
    switch (e.kind) {
      case Ev::client:
      case Ev::server: {
        // Each call gets its own copy, so a span kept past its call would be caught by ASan.
        std::size_t off = 0;
        for (std::size_t k : split(e.bytes.size())) {
          std::vector<uint8_t> piece(e.bytes.begin() + off, e.bytes.begin() + off + k);
          if (e.kind == Ev::client)
            session->on_client_data(piece.data(), piece.size());
          else
            session->on_server_data(piece.data(), piece.size());
          off += k;
        }
        break;
      }
      case Ev::client_gap: session->on_client_gap(e.gap); break;
      case Ev::server_gap: session->on_server_gap(e.gap); break;
      case Ev::close: session->on_close(); break;
    }
  }
  for (const std::string& err : rec.errors) ADD_FAILURE() << err;
  return {rec.log, rec.messages, session->capabilities(), session->encrypted(), rec.readings};
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& l : v) s += l + "\n";
  return s;
}

#define EXPECT_LOG(result, ...) EXPECT_EQ(join((result).log), join(std::vector<std::string>{__VA_ARGS__}))

const std::string kGreeting = "220 mx.example.org ESMTP\r\n";

// ----------------------------------------------------------------------------------------------
// Transcripts (also used by the split-invariance property test at the end)

Transcript plain_two_transactions() {
  return {S(kGreeting),
          C("EHLO client.example.com\r\n"),
          S("250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"),
          C("MAIL FROM:<alice@example.org>\r\n"),
          S("250 2.1.0 Ok\r\n"),
          C("RCPT TO:<bob@example.net>\r\n"),
          S("250 2.1.5 Ok\r\n"),
          C("DATA\r\n"),
          S("354 End data with <CR><LF>.<CR><LF>\r\n"),
          C("Subject: one\r\n\r\nHello\r\n.\r\n"),
          S("250 2.0.0 Ok: queued as 1\r\n"),
          C("mail from:<carol@example.org> SIZE=20\r\n"),
          S("250 2.1.0 Ok\r\n"),
          C("Rcpt To:<dave@example.net>\r\n"),
          S("250 2.1.5 Ok\r\n"),
          C("data\r\n"),
          S("354 go ahead\r\n"),
          C("Subject: two\r\n\r\nBye\r\n.\r\n"),
          S("250 2.0.0 Ok: queued as 2\r\n"),
          C("QUIT\r\n"),
          S("221 2.0.0 Bye\r\n"),
          Close()};
}

Transcript pipelined() {
  return {S(kGreeting),
          C("EHLO c.example\r\n"),
          S("250-mx.example.org\r\n250 PIPELINING\r\n"),
          C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nRCPT TO:<c@y.example>\r\nDATA\r\n"),
          S("250 ok\r\n250 ok\r\n550 no such user\r\n354 go\r\n"),
          C("Hi\r\n.\r\n"),
          S("250 queued\r\n"),
          C("QUIT\r\n"),
          S("221 bye\r\n")};
}

// A client that does not wait for 354: its content sits in the hold buffer until the reply.
Transcript pipelined_content_held() {
  return {S(kGreeting),
          C("EHLO c.example\r\n"),
          S("250-mx.example.org\r\n250 PIPELINING\r\n"),
          C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\nHi\r\n.\r\nQUIT\r\n"),
          S("250 ok\r\n250 ok\r\n354 go\r\n"),
          S("250 queued\r\n221 bye\r\n")};
}

Transcript with_content(const std::string& content, const std::string& after = "QUIT\r\n") {
  return {S(kGreeting),      C("HELO c.example\r\n"),  S("250 mx.example.org\r\n"),
          C("MAIL FROM:<a@x.example>\r\n"), S("250 ok\r\n"), C("RCPT TO:<b@y.example>\r\n"),
          S("250 ok\r\n"),   C("DATA\r\n"),            S("354 go\r\n"),
          C(content + after), S("250 queued\r\n221 bye\r\n")};
}

const std::vector<std::string> kPrologue = {
    "reply 220 answers=greeting mx.example.org ESMTP", "cmd HELO c.example",
    "reply 250 answers=helo mx.example.org",           "cmd MAIL FROM:<a@x.example>",
    "reply 250 answers=mail ok",                       "cmd RCPT TO:<b@y.example>",
    "reply 250 answers=rcpt ok",                       "cmd DATA",
    "reply 354 answers=data go",
};

std::vector<std::string> prologue_plus(std::vector<std::string> rest) {
  std::vector<std::string> v = kPrologue;
  v.insert(v.end(), rest.begin(), rest.end());
  return v;
}

Transcript bdat_same_chunk() {
  const std::string c1 = "Subject: b\r\n\r\n.\r\nMAIL FROM:<x>\r\n";  // verbatim in BDAT
  const std::string c2 = "last part\r\n";
  return {S(kGreeting),
          C("EHLO c.example\r\n"),
          S("250-mx.example.org\r\n250-CHUNKING\r\n250 PIPELINING\r\n"),
          C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"),
          S("250 ok\r\n250 ok\r\n"),
          C("BDAT " + std::to_string(c1.size()) + "\r\n" + c1 + "BDAT " + std::to_string(c2.size()) +
            " LAST\r\n" + c2 + "QUIT\r\n"),
          S("250 chunk ok\r\n250 message ok\r\n221 bye\r\n")};
}

Transcript bdat_split() {
  return {S(kGreeting),
          C("EHLO c.example\r\n"),
          S("250-mx.example.org\r\n250 CHUNKING\r\n"),
          C("MAIL FROM:<a@x.example>\r\n"),
          S("250 ok\r\n"),
          C("RCPT TO:<b@y.example>\r\n"),
          S("250 ok\r\n"),
          C("BDAT 1"),
          C("7\r\nHello, "),
          C("wor"),
          C("ld!\r\n\r\n"),
          S("250 17 octets\r\n"),
          C("bdat 0 last\r\n"),
          S("250 message ok\r\n"),
          C("QUIT\r\n"),
          S("221 bye\r\n")};
}

Transcript bdat_bad_sizes() {
  return {S(kGreeting),
          C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"),
          S("250 ok\r\n250 ok\r\n"),
          C("BDAT abc\r\nBDAT 99999999999999999999 LAST\r\nBDAT 12x\r\nBDAT\r\nNOOP\r\n"),
          S("501 bad\r\n501 bad\r\n501 bad\r\n501 bad\r\n250 ok\r\n")};
}

// "BDAT 5 X": a parameter the syntax does not allow; the server reads no chunk (Postfix answers
// 521), so "BDAT 4 LAST" after it is the real chunk.
Transcript bdat_trailing_garbage() {
  return {S(kGreeting),
          C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"),
          S("250 ok\r\n250 ok\r\n"),
          C("BDAT 5 X\r\nBDAT 4 LAST\r\nabcd"),
          S("501 bad\r\n250 ok\r\n")};
}

// The greeting's line end is missing, so every reply is read one command late; the 354 still
// belongs to DATA (it answers nothing else), and the message must not be parsed as commands.
Transcript greeting_without_crlf() {
  return {S("220 mx.example.org ESMTP"),
          C("EHLO c\r\n"),
          S("250-mx.example.org\r\n"),
          C("MAIL FROM:<a@x.example>\r\n"),
          S("250 ok\r\n"),
          C("RCPT TO:<b@y.example>\r\n"),
          S("250 ok\r\n"),
          C("DATA\r\n"),
          S("354 go\r\n"),
          C("Subject: hi\r\n\r\nbody\r\n.\r\n"),
          S("250 queued\r\n"),
          C("QUIT\r\n"),
          S("221 bye\r\n")};
}

Transcript data_rejected() {
  return {S(kGreeting),
          C("MAIL FROM:<a@x.example>\r\n"),
          S("250 ok\r\n"),
          C("RCPT TO:<b@y.example>\r\n"),
          S("550 no such user\r\n"),
          C("DATA\r\nSubject: x\r\n\r\nbody\r\n.\r\n"),
          S("554 5.5.1 Error: no valid recipients\r\n"),
          S("500 5.5.2 Error: bad syntax\r\n500 5.5.2 Error: bad syntax\r\n"),
          S("500 5.5.2 Error: bad syntax\r\n500 5.5.2 Error: bad syntax\r\n"),
          C("QUIT\r\n"),
          S("221 bye\r\n")};
}

Transcript starttls_accepted() {
  return {S(kGreeting),
          C("EHLO c.example\r\n"),
          S("250-mx.example.org\r\n250-STARTTLS\r\n250 SIZE 1000\r\n"),
          C("STARTTLS\r\n"),
          S("220 2.0.0 Ready to start TLS\r\n"),
          C("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03MAIL FROM:<x>\r\n"s),
          S("\x16\x03\x03\x00\x7a\x02\x00\x00\x76\r\n250 ok\r\n"s),
          C("DATA\r\n"),
          CGap(10),
          Close()};
}

Transcript starttls_refused() {
  return {S(kGreeting),
          C("EHLO c.example\r\n"),
          S("250-mx.example.org\r\n250 STARTTLS\r\n"),
          C("STARTTLS\r\nMAIL FROM:<a@x.example>\r\n"),  // pipelined after STARTTLS: held
          S("454 4.7.0 TLS not available\r\n"),
          S("250 ok\r\n"),
          C("QUIT\r\n"),
          S("221 bye\r\n")};
}

Transcript auth_plain() {
  return {S(kGreeting),
          C("EHLO c.example\r\n"),
          S("250-mx.example.org\r\n250-AUTH PLAIN LOGIN\r\n250 PIPELINING\r\n"),
          C("AUTH PLAIN AGFsaWNlAHMzY3JldFBMQUlO\r\n"),
          S("235 2.7.0 Authentication successful\r\n"),
          C("MAIL FROM:<alice@example.org>\r\n"),
          S("250 ok\r\n")};
}

Transcript auth_login() {
  return {S(kGreeting),
          C("EHLO c.example\r\n"),
          S("250-mx.example.org\r\n250 AUTH=LOGIN\r\n"),
          C("AUTH LOGIN\r\n"),
          S("334 VXNlcm5hbWU6\r\n"),
          C("YWxpY2VVU0VSTkFNRQ==\r\n"),
          S("334 UGFzc3dvcmQ6\r\n"),
          C("czNjcmV0TE9HSU5QQVNT\r\nMAIL FROM:<alice@example.org>\r\n"),
          S("235 2.7.0 ok\r\n"),
          S("250 ok\r\n")};
}

Transcript auth_failed() {
  return {S(kGreeting),
          C("AUTH LOGIN\r\n"),
          S("334 VXNlcm5hbWU6\r\n"),
          C("YWxpY2VVU0VSTkFNRQ==\r\n"),
          S("334 UGFzc3dvcmQ6\r\n"),
          C("d3JvbmdQQVNTV09SRA==\r\n"),
          S("535 5.7.8 Error: authentication failed\r\n"),
          C("AUTH PLAIN\r\n"),
          S("334 \r\n"),
          C("*\r\n"),
          S("501 5.7.0 cancelled\r\n"),
          C("QUIT\r\n"),
          S("221 bye\r\n")};
}

Transcript rset_mid_transaction() {
  return {S(kGreeting),
          C("MAIL FROM:<a@x.example>\r\n"),
          S("250 ok\r\n"),
          C("RCPT TO:<b@y.example>\r\n"),
          S("250 ok\r\n"),
          C("RSET\r\n"),
          S("250 ok\r\n"),
          C("RCPT TO:<c@y.example>\r\n"),  // no transaction any more
          S("503 need MAIL\r\n"),
          C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nBDAT 4\r\nabcdRSET\r\n"),
          S("250 ok\r\n250 ok\r\n250 4 octets\r\n250 reset\r\n"),
          C("DATA\r\n"),
          S("503 need RCPT\r\n")};
}

Transcript one_sided() {
  return {C("EHLO c.example\r\n"),
          C("MAIL FROM:<a@x.example>\r\n"),
          C("RCPT TO:<b@y.example>\r\n"),
          C("DATA\r\n"),
          C("Subject: s\r\n\r\nbody\r\n.\r\n"),
          C("AUTH LOGIN\r\ndXNlcg==\r\ncGFzcw==\r\nQUIT\r\n"),
          Close()};
}

Transcript pickup_mid_line() {
  return {S("0 2.1.0 Ok\r\n"),
          C("OM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\n"),
          S("250 2.1.5 Ok\r\n"),
          C("DATA\r\n"),
          S("354 go\r\n"),
          C("Hi\r\n.\r\n"),
          S("250 queued\r\n")};
}

Transcript pickup_in_content() {
  return {C("ody text\r\nDATA is fun\r\nMAIL is old\r\n.\r\n"),
          S("250 2.0.0 queued\r\n"),
          C("QUIT\r\n"),
          S("221 bye\r\n")};
}

Transcript gap_in_data() {
  return {S(kGreeting),
          C("MAIL FROM:<a@x.example>\r\n"),
          S("250 ok\r\n"),
          C("RCPT TO:<b@y.example>\r\n"),
          S("250 ok\r\n"),
          C("DATA\r\n"),
          S("354 go\r\n"),
          C("Subject: g\r\n\r\nfirst part\r\n"),
          CGap(1460),
          C("st of a line\r\nQUIT\r\n.\r\n"),
          S("250 queued\r\n"),
          C("QUIT\r\n"),
          S("221 bye\r\n")};
}

Transcript gap_in_bdat() {
  return {S(kGreeting),
          C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"),
          S("250 ok\r\n250 ok\r\n"),
          C("BDAT 20 LAST\r\n0123456789"),
          CGap(5),
          C("ABCDEQUIT\r\n"),
          S("250 ok\r\n221 bye\r\n")};
}

Transcript gap_past_bdat() {
  return {S(kGreeting),
          C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"),
          S("250 ok\r\n250 ok\r\n"),
          C("BDAT 10\r\n01234"),
          CGap(8),  // 5 octets of the chunk and "RSE" of "RSET\r\n"
          C("T\r\nQUIT\r\n"),
          S("250 ok\r\n250 ok\r\n221 bye\r\n")};
}

Transcript bare_lf() {
  return {S("220 mx.example.org ESMTP\n"),
          C("HELO c.example\n"),
          S("250 ok\n"),
          C("MAIL FROM:<a@x.example>\nRCPT TO:<b@y.example>\r\nDATA\n"),
          S("250 ok\r\n250 ok\r\n354 go\r\n"),
          C("line1\nline2\r\n\n.\n"),
          S("250 queued\r\n"),
          C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"),
          S("250 ok\r\n250 ok\r\n354 go\r\n"),
          C("x\n.\r\n"),
          S("250 queued\r\n"),
          C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"),
          S("250 ok\r\n250 ok\r\n354 go\r\n"),
          C("y\r\n.\n"),
          S("250 queued\r\n")};
}

Transcript long_lines() {
  return {S(kGreeting),
          C("NOOP " + std::string(2000, 'x') + "\r\nQUIT\r\n"),
          S("500 " + std::string(1500, 'y') + "\r\n221 bye\r\n")};
}

Transcript ehlo_split() {
  return {S(kGreeting),
          C("EHLO c.example\r\n"),
          S("250-mx.example.org Hello c.example [192.0.2.1]\r\n250-PIPE"),
          S("LINING\r\n250-chunking\r\n250-AUTH=LOGIN\r\n250-auth PLAIN LOGIN\r\n25"),
          S("0-STARTTLS\r\n250-SIZE 10240000\r\n250-SMTPUTF8\r\n250-BINARYMIME\r\n250-DSN\r\n250-XFOO\r"),
          S("\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r"),
          S("\n")};
}

Transcript hold_overflow() {
  return {S(kGreeting),
          C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"),
          S("250 ok\r\n250 ok\r\n"),
          C(std::string(5000, 'z') + "\r\n.\r\n"),
          S("354 go\r\n250 queued\r\n")};
}

Transcript close_in_data() {
  Transcript t = with_content("partial\r\nline", "");
  t.pop_back();
  t.push_back(Close());
  return t;
}

Transcript close_while_paused() {
  return {S(kGreeting), C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\nSubject: q\r\n"),
          S("250 ok\r\n250 ok\r\n"), C("\r\nbody\r\n.\r\nQUIT\r\n"), Close()};
}

Transcript unpaired_and_bad() {
  return {S(kGreeting),   S("250 surprise\r\n"), S("hello there\r\n"), C("NOOP\r\n"),
          S("250-a\r\nnot a reply\r\n250 b\r\n"), S("250ok\r\n"), S("99 x\r\n"), S("250\r\n")};
}

Transcript too_many_pending() {
  std::string cmds;
  for (int i = 0; i < 70; ++i) cmds += "NOOP\r\n";
  std::string replies;
  for (int i = 0; i < 70; ++i) replies += "250 ok " + std::to_string(i) + "\r\n";
  return {S(kGreeting), C(cmds), S(replies)};
}

Transcript server_gap() {
  return {S(kGreeting), C("EHLO c.example\r\n"), S("250-mx.example.org\r\n250-PIPEL"), SGap(30),
          S("IZE 1000\r\n250 8BITMIME\r\n"), C("QUIT\r\n"), S("221 bye\r\n")};
}

std::vector<std::string> all_text(const Result& r) {
  std::vector<std::string> v = r.log;
  v.insert(v.end(), r.messages.begin(), r.messages.end());
  return v;
}

void expect_absent(const Result& r, const std::vector<std::string>& secrets) {
  for (const std::string& line : all_text(r))
    for (const std::string& s : secrets) EXPECT_EQ(line.find(s), std::string::npos) << line;
}

// ----------------------------------------------------------------------------------------------

TEST(SmtpSessionNames, VerbsAndAnomalies) {
  EXPECT_STREQ(smtp_verb_name(SmtpVerb::greeting), "greeting");
  EXPECT_STREQ(smtp_verb_name(SmtpVerb::starttls), "starttls");
  EXPECT_STREQ(smtp_verb_name(SmtpVerb::message_end), "message_end");
  EXPECT_STREQ(smtp_verb_name(SmtpVerb::none), "none");
  EXPECT_STREQ(smtp_anomaly_name(SmtpAnomaly::long_line), "long_line");
  EXPECT_STREQ(smtp_anomaly_name(SmtpAnomaly::bare_lf_terminator), "bare_lf_terminator");
  EXPECT_STREQ(smtp_anomaly_name(SmtpAnomaly::command_in_wrong_state), "command_in_wrong_state");
  EXPECT_STREQ(smtp_anomaly_name(SmtpAnomaly::bad_reply), "bad_reply");
}

TEST(SmtpSession, PlainSessionTwoTransactions) {
  const Result r = run(plain_two_transactions());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd EHLO client.example.com",
             "caps pipelining eightbitmime size", "reply 250 answers=ehlo 8BITMIME [multi]",
             "cmd MAIL FROM:<alice@example.org>", "reply 250 answers=mail 2.1.0 Ok",
             "cmd RCPT TO:<bob@example.net>", "reply 250 answers=rcpt 2.1.5 Ok", "cmd DATA",
             "reply 354 answers=data End data with <CR><LF>.<CR><LF>", "begin data", "data 23", "end complete",
             "reply 250 answers=message_end 2.0.0 Ok: queued as 1", "cmd mail from:<carol@example.org> SIZE=20",
             "reply 250 answers=mail 2.1.0 Ok", "cmd Rcpt To:<dave@example.net>", "reply 250 answers=rcpt 2.1.5 Ok",
             "cmd data", "reply 354 answers=data go ahead", "begin data", "data 21", "end complete",
             "reply 250 answers=message_end 2.0.0 Ok: queued as 2", "cmd QUIT", "reply 221 answers=quit 2.0.0 Bye");
  EXPECT_EQ(r.messages, (std::vector<std::string>{"Subject: one\r\n\r\nHello\r\n", "Subject: two\r\n\r\nBye\r\n"}));
  EXPECT_EQ(r.caps, smtp_caps::pipelining | smtp_caps::size | smtp_caps::eightbitmime);
  EXPECT_FALSE(r.encrypted);
}

TEST(SmtpSession, Pipelining) {
  const Result r = run(pipelined());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd EHLO c.example", "caps pipelining",
             "reply 250 answers=ehlo PIPELINING [multi]", "cmd MAIL FROM:<a@x.example>", "cmd RCPT TO:<b@y.example>",
             "cmd RCPT TO:<c@y.example>", "cmd DATA", "reply 250 answers=mail ok", "reply 250 answers=rcpt ok",
             "reply 550 answers=rcpt no such user", "reply 354 answers=data go", "begin data", "data 4",
             "end complete", "reply 250 answers=message_end queued", "cmd QUIT", "reply 221 answers=quit bye");
  EXPECT_EQ(r.messages, std::vector<std::string>{"Hi\r\n"});
}

TEST(SmtpSession, ContentSentBeforeThe354IsHeld) {
  const Result r = run(pipelined_content_held());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd EHLO c.example", "caps pipelining",
             "reply 250 answers=ehlo PIPELINING [multi]", "cmd MAIL FROM:<a@x.example>", "cmd RCPT TO:<b@y.example>",
             "cmd DATA", "reply 250 answers=mail ok", "reply 250 answers=rcpt ok", "reply 354 answers=data go",
             "begin data", "data 4", "end complete", "cmd QUIT", "reply 250 answers=message_end queued",
             "reply 221 answers=quit bye");
  EXPECT_EQ(r.messages, std::vector<std::string>{"Hi\r\n"});
}

TEST(SmtpSession, DotUnstuffing) {
  const Result r = run(with_content("Line1\r\n..dotted\r\n...two\r\n.x\r\n. \r\n.\rz\r\n..\r\n.\r\n"));
  // ".\rz": a "." line ended by a bare CR, the end of data for a server that ends lines there.
  EXPECT_LOG(r, prologue_plus({"begin data", "data 30", "anomaly bare_cr_terminator", "data 6", "end complete",
                               "cmd QUIT", "reply 250 answers=message_end queued", "reply 221 answers=quit bye"}));
  EXPECT_EQ(r.messages, std::vector<std::string>{"Line1\r\n.dotted\r\n..two\r\nx\r\n \r\n\rz\r\n.\r\n"});
}

TEST(SmtpSession, TerminatorSplitAtEveryPosition) {
  const std::string chunk = "Hello\r\n..x\r\n.\r\nQUIT\r\n";
  const std::vector<std::string> expected =
      prologue_plus({"begin data", "data 11", "end complete", "cmd QUIT", "reply 250 answers=message_end queued",
                     "reply 221 answers=quit bye"});
  for (std::size_t i = 0; i <= chunk.size(); ++i) {
    for (std::size_t j = i; j <= chunk.size(); ++j) {
      Transcript t = with_content("", "");
      t.pop_back();
      t.pop_back();
      t.push_back(C(chunk.substr(0, i)));
      t.push_back(C(chunk.substr(i, j - i)));
      t.push_back(C(chunk.substr(j)));
      t.push_back(S("250 queued\r\n221 bye\r\n"));
      const Result r = run(t);
      EXPECT_EQ(join(r.log), join(expected)) << "split at " << i << "," << j;
      EXPECT_EQ(r.messages, std::vector<std::string>{"Hello\r\n.x\r\n"}) << "split at " << i << "," << j;
    }
  }
}

TEST(SmtpSession, EmptyMessages) {
  // "\r\n.\r\n" right after the 354: one empty line, then the terminator.
  Result r = run(with_content("\r\n.\r\n"));
  EXPECT_LOG(r, prologue_plus({"begin data", "data 2", "end complete", "cmd QUIT",
                               "reply 250 answers=message_end queued", "reply 221 answers=quit bye"}));
  EXPECT_EQ(r.messages, std::vector<std::string>{"\r\n"});
  // "." right after the 354: no content at all (the DATA line's CRLF starts the terminator).
  r = run(with_content(".\r\n"));
  EXPECT_LOG(r, prologue_plus({"begin data", "end complete", "cmd QUIT", "reply 250 answers=message_end queued",
                               "reply 221 answers=quit bye"}));
  EXPECT_EQ(r.messages, std::vector<std::string>{""});
}

TEST(SmtpSession, BdatInOneChunkFollowedByNextCommand) {
  const Result r = run(bdat_same_chunk());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd EHLO c.example", "caps pipelining chunking",
             "reply 250 answers=ehlo PIPELINING [multi]", "cmd MAIL FROM:<a@x.example>", "cmd RCPT TO:<b@y.example>",
             "reply 250 answers=mail ok", "reply 250 answers=rcpt ok", "cmd BDAT 32", "begin bdat", "data 32",
             "cmd BDAT 11 LAST", "data 11", "end complete", "cmd QUIT", "reply 250 answers=bdat chunk ok",
             "reply 250 answers=message_end message ok", "reply 221 answers=quit bye");
  EXPECT_EQ(r.messages, std::vector<std::string>{"Subject: b\r\n\r\n.\r\nMAIL FROM:<x>\r\nlast part\r\n"});
}

TEST(SmtpSession, BdatSplitAcrossChunksAndZeroLast) {
  const Result r = run(bdat_split());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd EHLO c.example", "caps chunking",
             "reply 250 answers=ehlo CHUNKING [multi]", "cmd MAIL FROM:<a@x.example>", "reply 250 answers=mail ok",
             "cmd RCPT TO:<b@y.example>", "reply 250 answers=rcpt ok", "cmd BDAT 17", "begin bdat", "data 17",
             "reply 250 answers=bdat 17 octets", "cmd bdat 0 last", "end complete",
             "reply 250 answers=message_end message ok", "cmd QUIT", "reply 221 answers=quit bye");
  EXPECT_EQ(r.messages, std::vector<std::string>{"Hello, world!\r\n\r\n"});
}

TEST(SmtpSession, BdatZeroLastAlone) {
  const Result r = run({S(kGreeting), C("MAIL FROM:<a>\r\nRCPT TO:<b>\r\nBDAT 0 LAST\r\n"),
                        S("250 ok\r\n250 ok\r\n250 empty message ok\r\n")});
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd MAIL FROM:<a>", "cmd RCPT TO:<b>",
             "cmd BDAT 0 LAST", "begin bdat", "end complete", "reply 250 answers=mail ok",
             "reply 250 answers=rcpt ok", "reply 250 answers=message_end empty message ok");
  EXPECT_EQ(r.messages, std::vector<std::string>{""});
}

TEST(SmtpSession, BdatBadSize) {
  const Result r = run(bdat_bad_sizes());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd MAIL FROM:<a@x.example>",
             "cmd RCPT TO:<b@y.example>", "reply 250 answers=mail ok", "reply 250 answers=rcpt ok",
             "anomaly bdat_bad_size", "cmd BDAT abc", "anomaly bdat_bad_size", "cmd BDAT 99999999999999999999 LAST",
             "anomaly bdat_bad_size", "cmd BDAT 12x", "anomaly bdat_bad_size", "cmd BDAT", "cmd NOOP",
             "reply 501 answers=bdat bad", "reply 501 answers=bdat bad", "reply 501 answers=bdat bad",
             "reply 501 answers=bdat bad", "reply 250 answers=noop ok");
  EXPECT_TRUE(r.messages.empty());
}

TEST(SmtpSession, BdatWithTrailingGarbageReadsNoChunk) {
  const Result r = run(bdat_trailing_garbage());
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0], "abcd");
  EXPECT_NE(std::find(r.log.begin(), r.log.end(), "anomaly bdat_bad_size"), r.log.end());
}

TEST(SmtpSession, RepliesShiftedByAMissingLineEndRealignOn354) {
  const Result r = run(greeting_without_crlf());
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0], "Subject: hi\r\n\r\nbody\r\n");
  EXPECT_NE(std::find(r.log.begin(), r.log.end(), "anomaly misaligned_reply"), r.log.end());
  EXPECT_NE(std::find(r.log.begin(), r.log.end(), "reply 250 answers=message_end queued"), r.log.end());
}

TEST(SmtpSession, DataRejectedContentParsedAsCommands) {
  const Result r = run(data_rejected());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd MAIL FROM:<a@x.example>",
             "reply 250 answers=mail ok", "cmd RCPT TO:<b@y.example>", "reply 550 answers=rcpt no such user",
             "cmd DATA", "reply 554 answers=data 5.5.1 Error: no valid recipients", "anomaly unknown_command",
             "cmd ?Subject: x", "anomaly unknown_command", "cmd ?", "anomaly unknown_command", "cmd ?body",
             "anomaly unknown_command", "cmd ?.", "reply 500 answers=unknown 5.5.2 Error: bad syntax",
             "reply 500 answers=unknown 5.5.2 Error: bad syntax", "reply 500 answers=unknown 5.5.2 Error: bad syntax",
             "reply 500 answers=unknown 5.5.2 Error: bad syntax", "cmd QUIT", "reply 221 answers=quit bye");
  EXPECT_TRUE(r.messages.empty());
}

TEST(SmtpSession, StarttlsAccepted) {
  const Result r = run(starttls_accepted());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd EHLO c.example", "caps starttls size",
             "reply 250 answers=ehlo SIZE 1000 [multi]", "cmd STARTTLS",
             "reply 220 answers=starttls 2.0.0 Ready to start TLS", "tls");
  EXPECT_TRUE(r.encrypted);
}

TEST(SmtpSession, StarttlsRefused) {
  const Result r = run(starttls_refused());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd EHLO c.example", "caps starttls",
             "reply 250 answers=ehlo STARTTLS [multi]", "cmd STARTTLS",
             "reply 454 answers=starttls 4.7.0 TLS not available", "cmd MAIL FROM:<a@x.example>",
             "reply 250 answers=mail ok", "cmd QUIT", "reply 221 answers=quit bye");
  EXPECT_FALSE(r.encrypted);
}

TEST(SmtpSession, AuthPlainInitialResponseNeverReported) {
  const Result r = run(auth_plain());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd EHLO c.example", "caps pipelining auth",
             "reply 250 answers=ehlo PIPELINING [multi]", "cmd AUTH PLAIN",
             "reply 235 answers=auth 2.7.0 Authentication successful", "cmd MAIL FROM:<alice@example.org>",
             "reply 250 answers=mail ok");
  expect_absent(r, {"AGFsaWNl", "PLAIN A"});
}

TEST(SmtpSession, AuthLoginExchangeNeverReported) {
  const Result r = run(auth_login());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd EHLO c.example", "caps auth",
             "reply 250 answers=ehlo AUTH=LOGIN [multi]", "cmd AUTH LOGIN", "reply 334 answers=auth VXNlcm5hbWU6",
             "reply 334 answers=auth UGFzc3dvcmQ6", "reply 235 answers=auth 2.7.0 ok",
             "cmd MAIL FROM:<alice@example.org>", "reply 250 answers=mail ok");
  expect_absent(r, {"YWxpY2VVU0VSTkFNRQ", "czNjcmV0TE9HSU5QQVNT"});
}

TEST(SmtpSession, AuthFailedAndCancelled) {
  const Result r = run(auth_failed());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd AUTH LOGIN",
             "reply 334 answers=auth VXNlcm5hbWU6", "reply 334 answers=auth UGFzc3dvcmQ6",
             "reply 535 answers=auth 5.7.8 Error: authentication failed", "cmd AUTH PLAIN", "reply 334 answers=auth",
             "reply 501 answers=auth 5.7.0 cancelled", "cmd QUIT", "reply 221 answers=quit bye");
  expect_absent(r, {"YWxpY2VVU0VSTkFNRQ", "d3JvbmdQQVNTV09SRA"});
}

TEST(SmtpSession, RsetMidTransaction) {
  const Result r = run(rset_mid_transaction());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd MAIL FROM:<a@x.example>",
             "reply 250 answers=mail ok", "cmd RCPT TO:<b@y.example>", "reply 250 answers=rcpt ok", "cmd RSET",
             "reply 250 answers=rset ok", "anomaly command_in_wrong_state", "cmd RCPT TO:<c@y.example>",
             "reply 503 answers=rcpt need MAIL", "cmd MAIL FROM:<a@x.example>", "cmd RCPT TO:<b@y.example>",
             "cmd BDAT 4", "begin bdat", "data 4", "cmd RSET", "end aborted", "reply 250 answers=mail ok",
             "reply 250 answers=rcpt ok", "reply 250 answers=bdat 4 octets", "reply 250 answers=rset reset",
             "anomaly command_in_wrong_state", "cmd DATA", "reply 503 answers=data need RCPT");
  EXPECT_EQ(r.messages, std::vector<std::string>{"abcd"});
}

TEST(SmtpSession, OneSidedCapture) {
  const Result r = run(one_sided());
  EXPECT_LOG(r, "cmd EHLO c.example", "cmd MAIL FROM:<a@x.example>", "cmd RCPT TO:<b@y.example>", "cmd DATA",
             "anomaly assumed_reply", "begin data", "data 20", "end complete", "cmd AUTH LOGIN",
             "anomaly assumed_reply", "cmd QUIT");
  EXPECT_EQ(r.messages, std::vector<std::string>{"Subject: s\r\n\r\nbody\r\n"});
  expect_absent(r, {"dXNlcg", "cGFzcw"});
}

TEST(SmtpSession, OneSidedStarttls) {
  const Result r = run({C("EHLO c\r\nSTARTTLS\r\n\x16\x03\x01 MAIL FROM:<x>\r\n"), Close()});
  EXPECT_LOG(r, "cmd EHLO c", "cmd STARTTLS", "anomaly assumed_reply", "tls");
  EXPECT_TRUE(r.encrypted);
}

// STARTTLS accepted, then plain text: a capture decrypted by a TLS-terminating proxy, or a broken
// server. The session turns to TLS only when the client's next octet starts a TLS record; here it
// is a command, so the message that follows is parsed (and the anomaly says why).
TEST(SmtpSession, StarttlsFollowedByPlainTextIsParsedOn) {
  const Transcript t = {S(kGreeting),
                        C("EHLO c.example\r\n"),
                        S("250-mx.example.org\r\n250 STARTTLS\r\n"),
                        C("STARTTLS\r\n"),
                        S("220 2.0.0 Ready to start TLS\r\n"),
                        C("EHLO c.example\r\n"),
                        S("250 mx.example.org\r\n"),
                        C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"),
                        S("250 ok\r\n250 ok\r\n354 go\r\n"),
                        C("Subject: s\r\n\r\nbody\r\n.\r\n"),
                        S("250 queued\r\n"),
                        Close()};
  for (int s = 0; s < 3; ++s) {
    SCOPED_TRACE(s);
    const Result r = run(t, true, s == 0 ? whole : s == 1 ? Splitter(bytewise) : random_splits(7));
    EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd EHLO c.example", "caps starttls",
               "reply 250 answers=ehlo STARTTLS [multi]", "cmd STARTTLS",
               "reply 220 answers=starttls 2.0.0 Ready to start TLS", "anomaly starttls_plaintext",
               "cmd EHLO c.example", "caps", "reply 250 answers=ehlo mx.example.org", "cmd MAIL FROM:<a@x.example>",
               "cmd RCPT TO:<b@y.example>", "cmd DATA", "reply 250 answers=mail ok", "reply 250 answers=rcpt ok",
               "reply 354 answers=data go", "begin data", "data 20", "end complete",
               "reply 250 answers=message_end queued");
    EXPECT_EQ(r.messages, std::vector<std::string>{"Subject: s\r\n\r\nbody\r\n"});
    EXPECT_FALSE(r.encrypted);
  }
  // The client's bytes held while the 220 was awaited are checked the same way.
  const Result held = run({S(kGreeting), C("STARTTLS\r\nNOOP\r\n"), S("220 go ahead\r\n250 ok\r\n"), Close()});
  EXPECT_LOG(held, "reply 220 answers=greeting mx.example.org ESMTP", "cmd STARTTLS", "reply 220 answers=starttls go ahead", "anomaly starttls_plaintext", "cmd NOOP",
             "reply 250 answers=noop ok");
  EXPECT_FALSE(held.encrypted);
  // A ClientHello held behind the STARTTLS, an SSL 2 one, a one-sided capture, a server record
  // first (directions out of step): TLS.
  EXPECT_TRUE(run({S(kGreeting), C("STARTTLS\r\n\x16\x03\x01\x00"s), S("220 go\r\n"), Close()}).encrypted);
  EXPECT_TRUE(run({S(kGreeting), C("STARTTLS\r\n"), S("220 go\r\n"), C("\x80\x2e\x01"s), Close()}).encrypted);
  EXPECT_TRUE(run({C("STARTTLS\r\n\x16\x03\x01"), Close()}).encrypted);
  const Result server_first =
      run({S(kGreeting), C("STARTTLS\r\n"), S("220 go\r\n"), S("\x16\x03\x03\x00\x7a"s), C("\x16\x03\x01"), Close()});
  EXPECT_TRUE(server_first.encrypted);
  expect_absent(server_first, {"bad_reply", "starttls_plaintext"});
  // STARTTLS accepted and nothing after it (the capture ends): TLS, as a client does next.
  const Result nothing_after = run({C("EHLO\n"), C("rset\nstaRttLs\n"), S("250\n"), S("250\n"), S("220\n"), Close()});
  EXPECT_TRUE(nothing_after.encrypted) << join(nothing_after.log);
  // Its 220 never seen: assumed at the close, then TLS all the same.
  EXPECT_TRUE(run({S(kGreeting), C("STARTTLS\r\n"), Close()}).encrypted);
  // A one-sided capture going on in plain text.
  const Result one_sided = run({C("STARTTLS\r\nMAIL FROM:<x@y>\r\n"), Close()});
  EXPECT_LOG(one_sided, "cmd STARTTLS", "anomaly assumed_reply", "anomaly starttls_plaintext", "cmd MAIL FROM:<x@y>");
  EXPECT_FALSE(one_sided.encrypted);
}

// Found by smtp_session_fuzz (regressions/smtp_session_fuzz/server_tls_record_after_the_220_in_one_call.bin,
// late_220_to_an_assumed_starttls.bin).
TEST(SmtpSession, StarttlsCheckDoesNotDependOnTheSplitAndKeepsAnAssumedReply) {
  // The 220 and the server's TLS record in one call (directions out of step; its octets hold a line
  // feed): TLS at the record, however the server's stream was cut. It was looked for at the start
  // of a call only: whole, the record was read as a reply line (bad_reply) and the client's next
  // octet decided.
  const Transcript server_record = {S(kGreeting), C("STARTTLS\r\n"),
                                    S("220 go\r\n\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03\n\r\n"s),
                                    C("\x16\x03\x01\x00\xc8"s), Close()};
  for (int s = 0; s < 5; ++s) {
    SCOPED_TRACE(s);
    const Result r = run(server_record, true, s == 0 ? whole : s == 1 ? Splitter(bytewise) : random_splits(s));
    EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd STARTTLS", "reply 220 answers=starttls go", "tls");
    EXPECT_TRUE(r.encrypted);
  }
  // An 0x16 inside a server line is the line's: not TLS, whatever the cut.
  const Transcript mid_line = {S(kGreeting), C("STARTTLS\r\n"), S("220 go\r\n4"), S("\x16\r\n"s), C("NOOP\r\n"), Close()};
  for (int s = 0; s < 3; ++s) {
    SCOPED_TRACE(s);
    const Result r = run(mid_line, true, s == 0 ? whole : s == 1 ? Splitter(bytewise) : random_splits(s + 20));
    EXPECT_FALSE(r.encrypted);
    EXPECT_EQ(r.log.back(), "cmd NOOP");
  }
  // The server's stream seen only after the client's (directions out of step): STARTTLS's reply was
  // assumed and the client went on in plain text, into a message. The late 220 answers STARTTLS and
  // changes nothing; it turned the client back to tls_check, so the message's end was read as a
  // command and the message was never ended.
  const Transcript late = {C("EHLO c\r\nSTARTTLS\r\nEHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nSubject: s\r\n\r\nbody\r\n"),
                           S(kGreeting + "250 mx\r\n220 go\r\n250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n"), C("more\r\n.\r\n"),
                           S("250 queued\r\n"), Close()};
  for (int s = 0; s < 3; ++s) {
    SCOPED_TRACE(s);
    const Result r = run(late, true, s == 0 ? whole : s == 1 ? Splitter(bytewise) : random_splits(s + 30));
    EXPECT_LOG(r, "cmd EHLO c", "cmd STARTTLS", "anomaly assumed_reply", "anomaly starttls_plaintext", "cmd EHLO c",
               "cmd MAIL FROM:<a@x>", "cmd RCPT TO:<b@y>", "cmd DATA", "anomaly assumed_reply", "begin data", "data 20",
               "reply 220 answers=greeting mx.example.org ESMTP", "caps", "reply 250 answers=ehlo mx",
               "reply 220 answers=starttls go", "caps", "reply 250 answers=ehlo mx", "reply 250 answers=mail ok",
               "reply 250 answers=rcpt ok", "reply 354 answers=data go", "data 6", "end complete",
               "reply 250 answers=message_end queued");
    EXPECT_EQ(r.messages, std::vector<std::string>{"Subject: s\r\n\r\nbody\r\nmore\r\n"});
    EXPECT_FALSE(r.encrypted);
  }
  // A late 220 while the client is still where the assumed reply left it: TLS or plain text as before.
  EXPECT_TRUE(run({C("STARTTLS\r\n"), S("220 go\r\n"), C("\x16\x03\x01"s), Close()}, false).encrypted);
  EXPECT_TRUE(run({C("STARTTLS\r\n"), S("220 go\r\n"), Close()}, false).encrypted);
}

TEST(SmtpSession, PickUpMidLine) {
  const Result r = run(pickup_mid_line(), false);
  EXPECT_LOG(r, "cmd RCPT TO:<bob@example.net>", "reply 250 answers=rcpt 2.1.5 Ok", "cmd DATA",
             "reply 354 answers=data go", "begin data", "data 4", "end complete",
             "reply 250 answers=message_end queued");
  EXPECT_EQ(r.messages, std::vector<std::string>{"Hi\r\n"});
}

TEST(SmtpSession, PickUpInsideMessageContent) {
  const Result r = run(pickup_in_content(), false);
  EXPECT_LOG(r, "anomaly unpaired_reply", "reply 250 answers=none 2.0.0 queued", "cmd QUIT",
             "reply 221 answers=quit bye");
  EXPECT_TRUE(r.messages.empty());
}

TEST(SmtpSession, GapInsideData) {
  const Result r = run(gap_in_data());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd MAIL FROM:<a@x.example>",
             "reply 250 answers=mail ok", "cmd RCPT TO:<b@y.example>", "reply 250 answers=rcpt ok", "cmd DATA",
             "reply 354 answers=data go", "begin data", "data 26", "end incomplete",
             "reply 250 answers=message_end queued", "cmd QUIT", "reply 221 answers=quit bye");
  EXPECT_EQ(r.messages, std::vector<std::string>{"Subject: g\r\n\r\nfirst part\r\n"});
}

TEST(SmtpSession, GapInsideBdatChunk) {
  const Result r = run(gap_in_bdat());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd MAIL FROM:<a@x.example>",
             "cmd RCPT TO:<b@y.example>", "reply 250 answers=mail ok", "reply 250 answers=rcpt ok",
             "cmd BDAT 20 LAST", "begin bdat", "data 15", "end incomplete", "cmd QUIT",
             "reply 250 answers=message_end ok", "reply 221 answers=quit bye");
  EXPECT_EQ(r.messages, std::vector<std::string>{"0123456789ABCDE"});
}

TEST(SmtpSession, GapRunningPastBdatChunk) {
  const Result r = run(gap_past_bdat());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd MAIL FROM:<a@x.example>",
             "cmd RCPT TO:<b@y.example>", "reply 250 answers=mail ok", "reply 250 answers=rcpt ok", "cmd BDAT 10",
             "begin bdat", "data 5", "cmd QUIT", "end incomplete", "reply 250 answers=bdat ok",
             "reply 250 answers=quit ok", "anomaly unpaired_reply", "reply 221 answers=none bye");
  EXPECT_EQ(r.messages, std::vector<std::string>{"01234"});
}

TEST(SmtpSession, BareLf) {
  const Result r = run(bare_lf());
  EXPECT_LOG(r, "anomaly bare_lf", "reply 220 answers=greeting mx.example.org ESMTP", "anomaly bare_lf",
             "cmd HELO c.example", "anomaly bare_lf", "reply 250 answers=helo ok", "anomaly bare_lf",
             "cmd MAIL FROM:<a@x.example>", "cmd RCPT TO:<b@y.example>", "anomaly bare_lf", "cmd DATA",
             "reply 250 answers=mail ok", "reply 250 answers=rcpt ok", "reply 354 answers=data go", "begin data",
             "data 14", "anomaly bare_lf_terminator", "end complete", "reply 250 answers=message_end queued",
             "cmd MAIL FROM:<a@x.example>", "cmd RCPT TO:<b@y.example>", "cmd DATA", "reply 250 answers=mail ok",
             "reply 250 answers=rcpt ok", "reply 354 answers=data go", "begin data", "data 2",
             "anomaly bare_lf_terminator", "end complete", "reply 250 answers=message_end queued",
             "cmd MAIL FROM:<a@x.example>", "cmd RCPT TO:<b@y.example>", "cmd DATA", "reply 250 answers=mail ok",
             "reply 250 answers=rcpt ok", "reply 354 answers=data go", "begin data", "data 3",
             "anomaly bare_lf_terminator", "end complete", "reply 250 answers=message_end queued");
  EXPECT_EQ(r.messages, (std::vector<std::string>{"line1\nline2\r\n\n", "x\n", "y\r\n"}));
}

// "<CR>.<CR>" ends DATA for a server that ends lines at a bare CR: reported once per message, the
// content read on to the real end (both readings stay visible: this one as content, the anomaly
// for the other).
TEST(SmtpSession, BareCrTerminatorIsReportedNotEnded) {
  const Result r = run({S("220 mx.example.org ESMTP\r\n"), C("HELO c.example\r\n"), S("250 ok\r\n"),
                        C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"),
                        S("250 ok\r\n250 ok\r\n354 go\r\n"),
                        C("one.\r\ntwo\r.\rMAIL FROM:<x@y>\r.\r\nthree\r\n.\r\n"), S("250 queued\r\n")});
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd HELO c.example", "reply 250 answers=helo ok",
             "cmd MAIL FROM:<a@x.example>", "cmd RCPT TO:<b@y.example>", "cmd DATA", "reply 250 answers=mail ok",
             "reply 250 answers=rcpt ok", "reply 354 answers=data go", "begin data", "data 12",
             "anomaly bare_cr_terminator", "data 26", "end complete", "reply 250 answers=message_end queued");
  EXPECT_EQ(r.messages, std::vector<std::string>{"one.\r\ntwo\r.\rMAIL FROM:<x@y>\r.\r\nthree\r\n"});
}

// SMTP smuggling: every known ambiguous end of data, the stream's primary messages and its other
// reading (smtp_reading.h), the same however the input is cut.
Transcript smuggle(const std::string& terminator) {
  return {S("220 mx.example.org ESMTP\r\n"), C("EHLO c.example\r\n"), S("250-mx\r\n250 PIPELINING\r\n"),
          C("MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"), S("250 ok\r\n250 ok\r\n354 go\r\n"),
          C("Subject: first\r\n\r\nhello" + terminator +
            "MAIL FROM:<ceo@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\nSubject: smuggled\r\n\r\n"
            "pay now\r\n..dot\r\n.\r\n"),
          S("250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n"), C("QUIT\r\n"), S("221 bye\r\n"),
          Close()};
}

TEST(SmtpSession, EveryAmbiguousEndOfDataGetsItsOtherReading) {
  const std::string tail = "MAIL FROM:<ceo@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\nSubject: smuggled\r\n\r\n"
                           "pay now\r\n.dot\r\n";
  const std::string smuggled = "Subject: smuggled\r\n\r\npay now\r\n.dot\r\n";
  struct Case {
    std::string terminator;
    std::vector<std::string> messages;  // the primary reading's
    std::vector<std::string> readings;  // the other
  };
  const std::vector<Case> cases = {
      // Ends at the bare LF: the strict reading is one message running on to CRLF.CRLF.
      {"\n.\n", {"Subject: first\r\n\r\nhello\n", smuggled}, {"one_message complete:.\n" + tail}},
      {"\r\n.\n", {"Subject: first\r\n\r\nhello\r\n", smuggled}, {"one_message complete:\n" + tail}},
      {"\n.\r\n", {"Subject: first\r\n\r\nhello\n", smuggled}, {"one_message complete:.\r\n" + tail}},
      // Reads on through the bare CR: a server ending lines there sees the smuggled message.
      {"\r.\r", {"Subject: first\r\n\r\nhello\r.\r" + tail}, {"split complete:" + smuggled}},
      {"\r\n.\r", {"Subject: first\r\n\r\nhello\r\n\r" + tail}, {"split complete:" + smuggled}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::PrintToString(c.terminator));
    for (int s = 0; s < 3; ++s) {
      const Splitter split = s == 0 ? Splitter(whole) : s == 1 ? Splitter(bytewise) : random_splits(7);
      const Result r = run(smuggle(c.terminator), true, split, true);
      EXPECT_EQ(r.messages, c.messages) << s;
      EXPECT_EQ(r.readings, c.readings) << s;
      // Off by default: the same primary reading, no other.
      const Result off = run(smuggle(c.terminator), true, split);
      EXPECT_EQ(off.messages, c.messages) << s;
      EXPECT_TRUE(off.readings.empty());
    }
  }
}

// A strict reading that never meets CRLF.CRLF ends incomplete with the connection; one reading at
// a time (a second ambiguous message while one is open gets none).
TEST(SmtpSession, AnOpenReadingEndsIncompleteAtTheEnd) {
  const Result r = run({S("220 mx\r\n"), C("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
                        S("250 ok\r\n250 ok\r\n354 go\r\n"), C("one\n.\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
                        S("250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n"), C("two\n.\nQUIT\r\n"), Close()},
                       true, whole, true);
  EXPECT_EQ(r.messages, (std::vector<std::string>{"one\n", "two\n"}));
  EXPECT_EQ(r.readings, (std::vector<std::string>{
                            "one_message incomplete:.\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\ntwo\n.\nQUIT\r\n"}));
}

// Found by tests/fuzz/smtp_session_fuzz (regressions/smtp_session_fuzz/): the bare-CR anomaly, the
// split reading's order against the primary's end, a gap while the DATA reply is awaited, and an
// assumed STARTTLS after a bare-LF terminator gave callbacks that depended on how the input was cut.
TEST(SmtpSession, ReadingsDoNotDependOnTheSplit) {
  const std::vector<std::pair<bool, Transcript>> cases = {
      {true, {C("DATA\n1\r.\r"), Close()}},
      {false, {C("DATA\r\n"), C("x\r.\rDATA\ry\r\n.\r\n"), Close()}},
      {true, {S("220 mx\r\n"), C("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"),
              C("x\r.\rMAIL FROM:<a@x>\r\nDATA\r\nSubject: y\r\n"), CGap(237742), Close()}},
      {false, {C("DATA\n.\nSTARTTLS\n"), Close()}},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(i);
    const Result whole_r = run(cases[i].second, cases[i].first, whole, true);
    for (int s = 0; s < 4; ++s) {
      const Result r = run(cases[i].second, cases[i].first, s == 0 ? Splitter(bytewise) : random_splits(s), true);
      EXPECT_EQ(join(r.log), join(whole_r.log)) << s;
      EXPECT_EQ(r.readings, whole_r.readings) << s;
    }
  }
  // The anomaly comes right after the content up to <CR>.<CR>.
  EXPECT_EQ(join(run(cases[0].second, true, bytewise, true).log), join({"anomaly bare_lf", "anomaly command_in_wrong_state", "cmd DATA", "anomaly assumed_reply", "begin data", "data 4", "anomaly bare_cr_terminator", "end aborted"}));
}

// Inline enforcement reads content sent before DATA's 354 at once, so that the frame carrying its
// end is the one held; the real replies still pair with the commands.
TEST(SmtpSession, EagerDataReadsContentSentBeforeThe354) {
  Recorder rec;
  auto session = std::make_unique<SmtpSession>();
  session->set_eager_data(true);
  session->init(&rec, true);
  auto client = [&](const std::string& b) { session->on_client_data(reinterpret_cast<const uint8_t*>(b.data()), b.size()); };
  auto server = [&](const std::string& b) { session->on_server_data(reinterpret_cast<const uint8_t*>(b.data()), b.size()); };
  server("220 mx\r\n");
  client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n");
  const std::size_t before_replies = rec.log.size();
  server("250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n");
  session->on_close();
  for (const std::string& err : rec.errors) ADD_FAILURE() << err;
  EXPECT_EQ(join(std::vector<std::string>(rec.log.begin(), rec.log.begin() + static_cast<long>(before_replies))),
            join({"reply 220 answers=greeting mx", "cmd MAIL FROM:<a@x>", "cmd RCPT TO:<b@y>", "cmd DATA",
                  "anomaly data_before_reply", "begin data", "data 18", "end complete"}));
  EXPECT_EQ(join(std::vector<std::string>(rec.log.begin() + static_cast<long>(before_replies), rec.log.end())),
            join({"reply 250 answers=mail ok", "reply 250 answers=rcpt ok", "reply 354 answers=data go",
                  "reply 250 answers=message_end queued"}));
  // Off (tap, replay): the content waits for the reply.
  const Result r = run({S("220 mx\r\n"), C("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n"),
                        S("250 ok\r\n250 ok\r\n554 no\r\n")});
  EXPECT_TRUE(r.messages.empty());
}

TEST(SmtpSession, OverlongLines) {
  const Result r = run(long_lines());
  ASSERT_EQ(r.log.size(), 7u) << join(r.log);
  EXPECT_EQ(r.log[1], "anomaly long_line");
  EXPECT_EQ(r.log[2], "cmd NOOP " + std::string(SmtpSession::kMaxLine - 5, 'x') + " [truncated]");
  EXPECT_EQ(r.log[3], "cmd QUIT");
  EXPECT_EQ(r.log[4], "anomaly long_line");
  EXPECT_EQ(r.log[5], "reply 500 answers=noop " + std::string(SmtpSession::kMaxLine - 4, 'y'));
  EXPECT_EQ(r.log[6], "reply 221 answers=quit bye");
}

TEST(SmtpSession, LongLineOverRfcLimitButKept) {
  const std::string arg(600, 'a');
  const Result r = run({S(kGreeting), C("VRFY " + arg + "\r\n"), S("252 maybe\r\n")});
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "anomaly long_line", "cmd VRFY " + arg,
             "reply 252 answers=vrfy maybe");
  // A text line over 1000 octets is counted, never truncated.
  const std::string text(1200, 't');
  const Result d = run(with_content(text + "\r\n.\r\n"));
  EXPECT_LOG(d, prologue_plus({"begin data", "data 1202", "anomaly long_line", "end complete", "cmd QUIT",
                               "reply 250 answers=message_end queued", "reply 221 answers=quit bye"}));
  EXPECT_EQ(d.messages, std::vector<std::string>{text + "\r\n"});
}

TEST(SmtpSession, MultiLineEhloReplySplitAcrossChunks) {
  const Result r = run(ehlo_split());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd EHLO c.example",
             "caps pipelining chunking starttls auth eightbitmime size smtputf8 binarymime dsn enhancedstatuscodes",
             "reply 250 answers=ehlo 8BITMIME [multi]");
  EXPECT_EQ(r.caps, 0x3ffu);
}

TEST(SmtpSession, HoldBufferOverflowAssumesTheReply) {
  const Result r = run(hold_overflow());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd MAIL FROM:<a@x.example>",
             "cmd RCPT TO:<b@y.example>", "cmd DATA", "reply 250 answers=mail ok", "reply 250 answers=rcpt ok",
             "anomaly assumed_reply", "begin data", "data 5002", "anomaly long_line", "end complete",
             "reply 354 answers=data go", "reply 250 answers=message_end queued");
  EXPECT_EQ(r.messages, std::vector<std::string>{std::string(5000, 'z') + "\r\n"});
}

TEST(SmtpSession, CloseInsideData) {
  const Result r = run(close_in_data());
  EXPECT_LOG(r, prologue_plus({"begin data", "data 13", "end aborted"}));
  EXPECT_EQ(r.messages, std::vector<std::string>{"partial\r\nline"});
}

TEST(SmtpSession, CloseWhilePausedParsesHeldBytes) {
  const Result r = run(close_while_paused());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd MAIL FROM:<a@x.example>",
             "cmd RCPT TO:<b@y.example>", "cmd DATA", "reply 250 answers=mail ok", "reply 250 answers=rcpt ok",
             "anomaly assumed_reply", "begin data", "data 20", "end complete", "cmd QUIT");
  EXPECT_EQ(r.messages, std::vector<std::string>{"Subject: q\r\n\r\nbody\r\n"});
}

TEST(SmtpSession, UnpairedAndBadReplies) {
  const Result r = run(unpaired_and_bad());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "anomaly unpaired_reply",
             "reply 250 answers=none surprise", "anomaly bad_reply", "reply 0 answers=none hello there",
             "cmd NOOP", "anomaly bad_reply", "reply 250 answers=noop b [multi]", "anomaly bad_reply",
             "anomaly unpaired_reply", "reply 250 answers=none ok", "anomaly bad_reply",
             "reply 0 answers=none 99 x", "anomaly unpaired_reply", "reply 250 answers=none");
}

TEST(SmtpSession, TooManyPending) {
  const Result r = run(too_many_pending());
  std::size_t too_many = 0, unpaired = 0, noop = 0;
  for (const std::string& l : r.log) {
    too_many += l == "anomaly too_many_pending";
    unpaired += l == "anomaly unpaired_reply";
    noop += l.rfind("reply 250 answers=noop", 0) == 0;
  }
  // 70 NOOPs for 64 places: the 6 oldest are forgotten, so 6 of the 70 replies find no command.
  EXPECT_EQ(too_many, 6u);
  EXPECT_EQ(noop, 64u);
  EXPECT_EQ(unpaired, 6u);
}

TEST(SmtpSession, ServerGapInsideEhloReply) {
  const Result r = run(server_gap());
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd EHLO c.example", "caps eightbitmime",
             "reply 250 answers=ehlo 8BITMIME [multi]", "cmd QUIT", "reply 221 answers=quit bye");
}

TEST(SmtpSession, DataAfterBdatAbortsIt) {
  const Result r = run({S(kGreeting), C("MAIL FROM:<a>\r\nRCPT TO:<b>\r\nBDAT 3\r\nabcDATA\r\n"),
                        S("250 ok\r\n250 ok\r\n250 ok\r\n503 mixing\r\n"), C("QUIT\r\n"), Close()});
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd MAIL FROM:<a>", "cmd RCPT TO:<b>",
             "cmd BDAT 3", "begin bdat", "data 3", "anomaly command_in_wrong_state", "cmd DATA", "end aborted",
             "reply 250 answers=mail ok", "reply 250 answers=rcpt ok", "reply 250 answers=bdat ok",
             "reply 503 answers=data mixing", "cmd QUIT");
}

TEST(SmtpSession, ClientGapWhileWaitingForTheReply) {
  const Result r = run({S(kGreeting), C("MAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\nSubject: w\r\n"), CGap(100),
                        S("250 ok\r\n250 ok\r\n354 go\r\n"), C("tail\r\n.\r\nQUIT\r\n"),
                        S("250 queued\r\n221 bye\r\n")});
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd MAIL FROM:<a>", "cmd RCPT TO:<b>",
             "cmd DATA", "anomaly assumed_reply", "begin data", "data 12", "end incomplete",
             "reply 250 answers=mail ok", "reply 250 answers=rcpt ok", "reply 354 answers=data go", "cmd QUIT",
             "reply 250 answers=message_end queued", "reply 221 answers=quit bye");
  EXPECT_EQ(r.messages, std::vector<std::string>{"Subject: w\r\n"});
}

TEST(SmtpSession, RejectedEhloReportsNoCapabilities) {
  const Result r = run({S(kGreeting), C("EHLO c\r\n"), S("502-not\r\n502-PIPELINING\r\n502 here\r\n"),
                        C("HELO c\r\n"), S("250 ok\r\n")});
  EXPECT_LOG(r, "reply 220 answers=greeting mx.example.org ESMTP", "cmd EHLO c", "reply 502 answers=ehlo here [multi]",
             "cmd HELO c", "reply 250 answers=helo ok");
  EXPECT_EQ(r.caps, 0u);
}

TEST(SmtpSession, InputAfterCloseIgnored) {
  Recorder rec;
  SmtpSession s;
  s.init(&rec, true);
  s.on_close();
  const std::string bytes = "220 hi\r\nEHLO x\r\n";
  s.on_server_data(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  s.on_client_data(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  s.on_client_gap(5);
  s.on_close();
  EXPECT_TRUE(rec.log.empty());
}

// ----------------------------------------------------------------------------------------------
// The central property: how the octets are cut into calls never changes what is reported.

struct Named {
  const char* name;
  Transcript t;
  bool from_start;
};

std::vector<Named> all_transcripts() {
  return {
      {"plain", plain_two_transactions(), true},
      {"pipelined", pipelined(), true},
      {"pipelined_held", pipelined_content_held(), true},
      {"unstuffing", with_content("Line1\r\n..dotted\r\n.x\r\n.\rz\r\n..\r\n.\r\n"), true},
      {"empty", with_content("\r\n.\r\n"), true},
      {"bdat_same_chunk", bdat_same_chunk(), true},
      {"bdat_split", bdat_split(), true},
      {"bdat_bad", bdat_bad_sizes(), true},
      {"data_rejected", data_rejected(), true},
      {"starttls_accepted", starttls_accepted(), true},
      {"starttls_refused", starttls_refused(), true},
      {"auth_plain", auth_plain(), true},
      {"auth_login", auth_login(), true},
      {"auth_failed", auth_failed(), true},
      {"rset", rset_mid_transaction(), true},
      {"one_sided", one_sided(), true},
      {"pickup_mid_line", pickup_mid_line(), false},
      {"pickup_in_content", pickup_in_content(), false},
      {"gap_in_data", gap_in_data(), true},
      {"gap_in_bdat", gap_in_bdat(), true},
      {"gap_past_bdat", gap_past_bdat(), true},
      {"bare_lf", bare_lf(), true},
      {"long_lines", long_lines(), true},
      {"long_text", with_content(std::string(3000, 'l') + "\r\n.\r\n"), true},
      {"ehlo_split", ehlo_split(), true},
      {"hold_overflow", hold_overflow(), true},
      {"close_in_data", close_in_data(), true},
      {"close_while_paused", close_while_paused(), true},
      {"unpaired_bad", unpaired_and_bad(), true},
      {"too_many_pending", too_many_pending(), true},
      {"server_gap", server_gap(), true},
  };
}

TEST(SmtpSessionProperty, SameReportWhateverTheSplits) {
  for (const Named& n : all_transcripts()) {
    SCOPED_TRACE(n.name);
    const Result ref = run(n.t, n.from_start, whole);
    const Result bytes = run(n.t, n.from_start, bytewise);
    EXPECT_EQ(join(bytes.log), join(ref.log));
    EXPECT_EQ(bytes.messages, ref.messages);
    EXPECT_EQ(bytes.caps, ref.caps);
    for (uint32_t seed = 1; seed <= 25; ++seed) {
      const Result r = run(n.t, n.from_start, random_splits(seed));
      EXPECT_EQ(join(r.log), join(ref.log)) << "seed " << seed;
      EXPECT_EQ(r.messages, ref.messages) << "seed " << seed;
      EXPECT_EQ(r.encrypted, ref.encrypted) << "seed " << seed;
    }
  }
}

// Hostile input: random sessions assembled from SMTP fragments and noise. Nothing may crash or
// hang (ASan/UBSan builds), the recorder's invariants hold, and splitting still changes nothing.
TEST(SmtpSessionProperty, RandomSessionsAreSplitInvariant) {
  const std::vector<std::string> client_tokens = {
      "EHLO x\r\n", "MAIL FROM:<a>\r\n", "RCPT TO:<b>\r\n", "DATA\r\n", "BDAT 5\r\n", "BDAT 3 LAST\r\n",
      "BDAT 0 LAST\r\n", "BDAT x\r\n", "RSET\r\n", "QUIT\r\n", "AUTH LOGIN\r\n", "AUTH PLAIN abc=\r\n", "STARTTLS\r\n",
      ".\r\n", "..x\r\n", "\r\n", "\n", "\r", ".", "text line\r\n", "\n.\n", std::string(700, 'L'), "NOOP\r\n",
      "\0\xff\x80"s};
  const std::vector<std::string> server_tokens = {
      "220 hi\r\n", "250 ok\r\n", "250-a\r\n", "250-PIPELINING\r\n", "354 go\r\n", "334 xx\r\n", "235 ok\r\n",
      "454 no\r\n", "554 no\r\n", "junk\r\n", "\n", "25", "0 x\r\n", std::string(600, 'R'), "220 tls\r\n"};
  for (uint32_t seed = 1; seed <= 150; ++seed) {
    std::mt19937 rng(seed);
    Transcript t;
    const int events = std::uniform_int_distribution<int>(1, 40)(rng);
    const bool one_sided = seed % 7 == 0;
    for (int e = 0; e < events; ++e) {
      const int kind = std::uniform_int_distribution<int>(0, 19)(rng);
      if (kind == 0) {
        t.push_back(CGap(std::uniform_int_distribution<uint32_t>(1, 3000)(rng)));
      } else if (kind == 1 && !one_sided) {
        t.push_back(SGap(std::uniform_int_distribution<uint32_t>(1, 50)(rng)));
      } else if (kind < 11 || one_sided) {
        std::string s;
        const int n = std::uniform_int_distribution<int>(1, 8)(rng);
        for (int i = 0; i < n; ++i)
          s += client_tokens[std::uniform_int_distribution<std::size_t>(0, client_tokens.size() - 1)(rng)];
        if (kind == 10) s += std::string(std::uniform_int_distribution<std::size_t>(1, 6000)(rng), 'H');
        t.push_back(C(s));
      } else {
        std::string s;
        const int n = std::uniform_int_distribution<int>(1, 5)(rng);
        for (int i = 0; i < n; ++i)
          s += server_tokens[std::uniform_int_distribution<std::size_t>(0, server_tokens.size() - 1)(rng)];
        t.push_back(S(s));
      }
    }
    if (seed % 3 == 0) t.push_back(Close());
    for (bool from_start : {true, false}) {
      SCOPED_TRACE("seed " + std::to_string(seed) + (from_start ? " from start" : " pick-up"));
      const Result ref = run(t, from_start, whole);
      const Result bytes = run(t, from_start, bytewise);
      ASSERT_EQ(join(bytes.log), join(ref.log));
      ASSERT_EQ(bytes.messages, ref.messages);
      for (uint32_t s2 = 1; s2 <= 3; ++s2) {
        const Result r = run(t, from_start, random_splits(seed * 10 + s2));
        ASSERT_EQ(join(r.log), join(ref.log));
        ASSERT_EQ(r.messages, ref.messages);
      }
    }
  }
}

TEST(SmtpSessionProperty, RandomBytesNeverCrash) {
  for (uint32_t seed = 1; seed <= 50; ++seed) {
    std::mt19937 rng(seed);
    Recorder rec;
    SmtpSession s;
    s.init(&rec, seed % 2 == 0);
    for (int i = 0; i < 200; ++i) {
      std::vector<uint8_t> buf(std::uniform_int_distribution<std::size_t>(0, 300)(rng));
      for (uint8_t& b : buf) {
        const int r = std::uniform_int_distribution<int>(0, 9)(rng);
        b = r == 0 ? '\n' : r == 1 ? '\r' : r == 2 ? '.' : static_cast<uint8_t>(rng());
      }
      switch (std::uniform_int_distribution<int>(0, 4)(rng)) {
        case 0: s.on_server_data(buf.data(), buf.size()); break;
        case 1: s.on_client_gap(static_cast<uint32_t>(rng())); break;
        default: s.on_client_data(buf.data(), buf.size()); break;
      }
    }
    s.on_close();
    EXPECT_TRUE(rec.errors.empty());
  }
}

}  // namespace

// DATA content is passed over 64 octets a step when its lines need nothing but handing over (issue
// 18): long runs of base64-like lines with, at random places, what must stop that step — a line
// starting with '.' (stuffed or the end), "<CR>.<CR>" and a '.' after a CR, lines of 998 to 1001
// octets, bare LF and bare CR line ends, a line begun in the previous call. Fed whole, in pieces of
// up to 300 octets and byte by byte (which never takes the fast path): the same report, the same
// other reading.
TEST(SmtpSessionProperty, DataContentFastPathIsExact) {
  const std::string b64 = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0";
  const std::vector<std::string> hazards = {
      "..stuffed\r\n", ".\r\n", ".\n", "x\r.\ry\r\n", "x\r.y\r\n", "\r.\r\n", "a.b. c.\r\n",
      std::string(996, 'L') + "\r\n", std::string(997, 'L') + "\r\n", std::string(998, 'L') + "\r\n",
      std::string(999, 'L') + "\n", "bare\n", "bare\rcr\r\n", "\r\n", "\n", ".x\n", std::string(63, 'M') + "\n."};
  for (uint32_t seed = 1; seed <= 120; ++seed) {
    std::mt19937 rng(seed);
    std::string content;
    const int lines = std::uniform_int_distribution<int>(1, 400)(rng);
    for (int l = 0; l < lines; ++l) {
      if (std::uniform_int_distribution<int>(0, 30)(rng) == 0)
        content += hazards[std::uniform_int_distribution<std::size_t>(0, hazards.size() - 1)(rng)];
      else
        content += b64.substr(0, std::uniform_int_distribution<std::size_t>(60, b64.size())(rng)) + "\r\n";
    }
    const bool bare_lf_end = seed % 5 == 0;
    Transcript t = {S(kGreeting), C("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n"), S("354 go\r\n"),
                    C(content + (bare_lf_end ? "\n.\n" : "\r\n.\r\n")), S("250 ok\r\n"), Close()};
    for (bool readings : {false, true}) {
      SCOPED_TRACE("seed " + std::to_string(seed) + (readings ? " readings" : ""));
      const Result ref = run(t, true, bytewise, readings);
      const Result w = run(t, true, whole, readings);
      ASSERT_EQ(join(w.log), join(ref.log));
      ASSERT_EQ(w.messages, ref.messages);
      ASSERT_EQ(w.readings, ref.readings);
      auto rng2 = std::make_shared<std::mt19937>(seed);
      const Splitter pieces = [rng2](std::size_t len) {
        std::vector<std::size_t> parts;
        while (len > 0) {
          const std::size_t k = std::min(len, std::uniform_int_distribution<std::size_t>(1, 300)(*rng2));
          parts.push_back(k);
          len -= k;
        }
        return parts;
      };
      const Result r = run(t, true, pieces, readings);
      ASSERT_EQ(join(r.log), join(ref.log));
      ASSERT_EQ(r.messages, ref.messages);
      ASSERT_EQ(r.readings, ref.readings);
    }
  }
}
