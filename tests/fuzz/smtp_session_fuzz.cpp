// libFuzzer target for reassembly/smtp_session: arbitrary interleavings of client bytes, server
// bytes, gaps and close, with a callbacks object that aborts on any broken contract, then the same
// run again with every data record split in two: the callback log must not change.
//
// Input layout
//   byte 0        bit 0: from_start (init's argument); bit 1: readings (set_readings); the other
//                 bits seed the split points
//   records       [op][len][len' bytes of data]
//     op & 3 == 0   client data          op & 3 == 1   server data
//     op & 3 == 2   gap: bit 2 chooses the direction (0 client, 1 server); missing bytes = len,
//                   times 4099 when bit 3 is set (large gaps reach BDAT sizes)
//     op & 3 == 3   close (the session ends; the records after it are ignored, as the reassembler
//                   never feeds a closed session)
//   len' = len, or len * 16 when op bit 7 is set (long lines, hold buffer overflow), cut to what
//   is left of the input.
// The session is closed at the end of the input if no record closed it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "reassembly/smtp_session.h"

using namespace sluice::reassembly;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "smtp_session_fuzz: invariant violated: %s\n", what);
  std::abort();
}

constexpr unsigned kVerbCount = static_cast<unsigned>(SmtpVerb::none) + 1;
// The last SmtpAnomaly value: keep it in step with reassembly/smtp_session.h.
constexpr unsigned kAnomalyCount = static_cast<unsigned>(SmtpAnomaly::starttls_plaintext) + 1;
constexpr uint32_t kAllCaps = (smtp_caps::enhancedstatuscodes << 1) - 1;

// Checks the contract of every callback and keeps a log in which consecutive on_message_data
// calls are merged (their split depends on how the input was cut, their concatenation does not).
class CheckingCallbacks final : public SmtpCallbacks {
 public:
  explicit CheckingCallbacks(std::size_t client_bytes_limit) : client_limit_(client_bytes_limit) {}

  std::string log;
  std::string rlog;  // the other reading's messages, a stream of their own

  void on_command(const SmtpCommand& c) noexcept override {
    live("on_command");
    verb(c.verb);
    if (c.verb == SmtpVerb::greeting || c.verb == SmtpVerb::message_end || c.verb == SmtpVerb::none)
      fail("on_command with a pseudo-verb");
    view(c.verb_text);
    view(c.argument);
    if (c.verb_text.size() + c.argument.size() > SmtpSession::kMaxLine) fail("command longer than kMaxLine");
    log += "C";
    log += std::to_string(static_cast<unsigned>(c.verb));
    log += c.truncated ? "t|" : "|";
    log.append(c.verb_text);
    log += '|';
    log.append(c.argument);
    log += '\n';
  }
  void on_reply(const SmtpReply& r) noexcept override {
    live("on_reply");
    verb(r.answers);
    if (r.code != 0 && (r.code < 100 || r.code > 599)) fail("reply code outside 0, 100..599");
    view(r.text);
    if (r.text.size() > SmtpSession::kMaxLine) fail("reply text longer than kMaxLine");
    log += "R" + std::to_string(r.code) + "/" + std::to_string(static_cast<unsigned>(r.answers));
    log += r.multiline ? "m|" : "|";
    log.append(r.text);
    log += '\n';
  }
  void on_capabilities(uint32_t caps) noexcept override {
    live("on_capabilities");
    if (caps & ~kAllCaps) fail("unknown capability bit");
    log += "K" + std::to_string(caps) + "\n";
  }
  void on_message_begin(SmtpTransfer how) noexcept override {
    live("on_message_begin");
    if (in_message_) fail("on_message_begin inside a message");
    if (how != SmtpTransfer::data && how != SmtpTransfer::bdat) fail("bad SmtpTransfer");
    in_message_ = true;
    in_data_message_ = how == SmtpTransfer::data;
    log += how == SmtpTransfer::data ? "B:data\n" : "B:bdat\n";
  }
  void on_message_data(const uint8_t* data, std::size_t len) noexcept override {
    live("on_message_data");
    if (!in_message_) fail("on_message_data outside a message");
    if (len > 0 && data == nullptr) fail("on_message_data with a null pointer");
    content_bytes_ += len;
    if (content_bytes_ > client_limit_) fail("more message content than client bytes fed");
    if (!in_data_) log += "D|";
    in_data_ = true;
    // Reading every byte lets ASan check the view.
    log.append(reinterpret_cast<const char*>(data), len);
  }
  void on_message_end(SmtpMessageStatus status) noexcept override {
    live("on_message_end");
    if (!in_message_) fail("on_message_end outside a message");
    if (status != SmtpMessageStatus::complete && status != SmtpMessageStatus::incomplete &&
        status != SmtpMessageStatus::aborted)
      fail("bad SmtpMessageStatus");
    in_message_ = false;
    log += "\nE" + std::to_string(static_cast<unsigned>(status)) + "\n";
  }
  void on_tls() noexcept override {
    live("on_tls");
    tls_ = true;
    log += "T\n";
  }
  void on_anomaly(SmtpAnomaly a) noexcept override {
    live("on_anomaly");
    if (static_cast<unsigned>(a) >= kAnomalyCount) fail("anomaly out of range");
    if (smtp_anomaly_name(a) == nullptr) fail("anomaly without a name");
    // The client is checked for TLS only right after STARTTLS's reply, a command: never inside DATA
    // content (a BDAT message may be open across it, between chunks).
    if (a == SmtpAnomaly::starttls_plaintext && in_message_ && in_data_message_)
      fail("starttls_plaintext inside a DATA message");
    log += "A" + std::to_string(static_cast<unsigned>(a)) + "\n";
  }

  // The other reading of an ambiguous DATA stream: begin/data/end in order, its content bounded
  // by the client's octets.
  void reading_begin(SmtpReadingKind k) noexcept override {
    if (in_reading_) fail("reading begins while one is open");
    if (k != SmtpReadingKind::one_message && k != SmtpReadingKind::split) fail("bad SmtpReadingKind");
    // split: a message smuggled inside the primary's; one_message: begins before its on_message_end.
    if (!in_message_) fail("reading begins outside the primary's message");
    in_reading_ = true;
    split_kind_ = k == SmtpReadingKind::split;
    rlog += "R" + std::to_string(static_cast<unsigned>(k)) + "\n";
  }
  void reading_data(const uint8_t* d, std::size_t n) noexcept override {
    if (!in_reading_) fail("reading data outside a reading message");
    if (split_kind_ && !in_message_) fail("split reading data outside the primary's message");
    if (n == 0 || d == nullptr) fail("empty reading data");
    reading_bytes_ += n;
    // CRLF added per line of the split reading: at most twice the client's octets, plus ".\r\n".
    if (reading_bytes_ > 2 * client_limit_ + 3) fail("more reading content than client bytes");
    volatile unsigned sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum = sum + d[i];
    (void)sum;
    reading_log_.append(reinterpret_cast<const char*>(d), n);
  }
  void reading_end(bool complete) noexcept override {
    if (!in_reading_) fail("reading ends without begin");
    if (split_kind_ && !in_message_) fail("split reading ends after the primary's message");
    in_reading_ = false;
    rlog += reading_log_ + (complete ? "\nRE1\n" : "\nRE0\n");
    reading_log_.clear();
  }

  // After the session is closed: no message may be left open.
  void check_closed() const {
    if (in_message_ && !tls_) fail("message still open after on_close");
    if (in_reading_) fail("reading still open after on_close");
  }

 private:
  void live(const char* what) noexcept {
    if (tls_) {
      std::fprintf(stderr, "smtp_session_fuzz: %s after on_tls\n", what);
      fail("callback after on_tls");
    }
    if (in_data_ && std::string_view(what) != "on_message_data") {
      in_data_ = false;
      log += '\n';
    }
  }
  static void verb(SmtpVerb v) {
    if (static_cast<unsigned>(v) >= kVerbCount) fail("verb out of range");
    if (smtp_verb_name(v) == nullptr) fail("verb without a name");
  }
  static void view(std::string_view s) {
    if (s.size() > SmtpSession::kMaxLine) fail("string_view longer than kMaxLine");
    if (!s.empty() && s.data() == nullptr) fail("non-empty string_view with a null pointer");
    volatile unsigned sum = 0;
    for (char ch : s) sum = sum + static_cast<unsigned char>(ch);
    (void)sum;
  }

  std::size_t client_limit_;
  std::size_t content_bytes_ = 0;
  bool in_message_ = false;
  bool in_data_message_ = false;  // the open message came with DATA (not BDAT)
  bool in_data_ = false;
  bool tls_ = false;
  bool in_reading_ = false;
  bool split_kind_ = false;
  std::size_t reading_bytes_ = 0;
  std::string reading_log_;
};

std::size_t total_client_bytes(const uint8_t* data, std::size_t size) {
  std::size_t total = 0;
  for (std::size_t i = 1; i + 2 <= size;) {
    const uint8_t op = data[i];
    std::size_t len = data[i + 1];
    i += 2;
    if ((op & 3) == 3) break;
    if ((op & 3) == 2) continue;
    if (op & 0x80) len *= 16;
    if (len > size - i) len = size - i;
    if ((op & 3) == 0) total += len;
    i += len;
  }
  return total;
}

// One run over the records. split == true: each data record is fed in two calls, cut at a point
// derived from the input.
std::string run(const uint8_t* data, std::size_t size, bool split) {
  const bool from_start = data[0] & 1;
  uint32_t rng = 0x9e3779b9u ^ (static_cast<uint32_t>(data[0]) * 0x01000193u);
  CheckingCallbacks cb(total_client_bytes(data, size));
  // SmtpSession is about 11 KiB: on the heap so ASan sees its bounds exactly.
  auto session = std::make_unique<SmtpSession>();
  session->set_readings(data[0] & 2);
  session->init(&cb, from_start);
  bool closed = false;
  for (std::size_t i = 1; i + 2 <= size && !closed;) {
    const uint8_t op = data[i];
    const uint8_t lenb = data[i + 1];
    i += 2;
    switch (op & 3) {
      case 0:
      case 1: {
        std::size_t len = op & 0x80 ? std::size_t{lenb} * 16 : lenb;
        if (len > size - i) len = size - i;
        // An exact-size heap copy: a read past the record is caught by ASan.
        std::unique_ptr<uint8_t[]> buf(new uint8_t[len ? len : 1]);
        std::copy(data + i, data + i + len, buf.get());
        i += len;
        auto feed = [&](const uint8_t* p, std::size_t n) {
          if ((op & 3) == 0)
            session->on_client_data(p, n);
          else
            session->on_server_data(p, n);
        };
        if (split && len > 1) {
          rng = rng * 1664525u + 1013904223u + op + lenb;
          const std::size_t cut = (rng >> 8) % (len + 1);
          feed(buf.get(), cut);
          feed(buf.get() + cut, len - cut);
        } else {
          feed(buf.get(), len);
        }
        break;
      }
      case 2: {
        const uint32_t missing = op & 8 ? uint32_t{lenb} * 4099u : lenb;
        if (op & 4)
          session->on_server_gap(missing);
        else
          session->on_client_gap(missing);
        break;
      }
      case 3:
        closed = true;
        break;
    }
  }
  session->on_close();
  cb.check_closed();
  return cb.log + "\n=== readings\n" + cb.rlog;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string whole = run(data, size, false);
  const std::string split = run(data, size, true);
  // SLUICE_FUZZ_PRINT=1: the callback log on standard error (to look at what an input does).
  static const bool print = std::getenv("SLUICE_FUZZ_PRINT") != nullptr;
  if (print) std::fprintf(stderr, "%s", whole.c_str());
  if (whole != split) {
    std::size_t at = 0;
    while (at < whole.size() && at < split.size() && whole[at] == split[at]) ++at;
    const std::size_t from = at > 200 ? at - 200 : 0;
    std::fprintf(stderr, "smtp_session_fuzz: split changed the callback log at offset %zu\n--- whole:\n%s\n--- split:\n%s\n",
                 at, whole.substr(from, 400).c_str(), split.substr(from, 400).c_str());
    fail("split invariance");
  }
  return 0;
}
