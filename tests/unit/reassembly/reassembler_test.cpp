#include "reassembly/reassembler.h"

#include "control/event_render.h"
#include "tests/fuzz/tcp_frames.h"
#include "tests/unit/reassembly/test_config.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <string_view>
#include <vector>

using namespace sluice::reassembly;

namespace {

// Records rendered as the control side renders them.
struct Collect final : sluice::records::RecordSink {
  std::vector<std::string> lines;
  sluice::control::EventRenderer renderer;
  void emit(const void* record, std::size_t size) noexcept override { lines.emplace_back(renderer.render(record, size)); }
};

// The events of one type, parsed.
std::vector<nlohmann::json> events_of(const Collect& out, const std::string& type) {
  std::vector<nlohmann::json> v;
  for (const std::string& line : out.lines) {
    auto j = nlohmann::json::parse(line);
    if (j.value("event_type", "") == type) v.push_back(std::move(j));
  }
  return v;
}

// One SMTP connection 10.0.0.1:40000 -> 10.0.1.1:25 over Ethernet/IPv4, both directions in order.
class Conversation {
 public:
  explicit Conversation(Reassembler& r, uint16_t client_port = 40000, uint8_t client_host = 1)
      : r_(r), flow_{4, client_host, client_port, 25, {1000, 90000}} {}
  void client(uint8_t flags, std::string_view payload = {}) { send(true, flags, payload); }
  void server(uint8_t flags, std::string_view payload = {}) { send(false, flags, payload); }
  // A client segment at the next sequence number plus `offset`, which moves nothing: forged,
  // retransmitted or out-of-order data, resets.
  void client_at(int64_t offset, uint8_t flags, std::string_view payload = {}) { send(true, flags, payload, offset, false); }
  // The client sent `n` bytes that the capture lost: nothing is fed, the sequence number moves.
  void client_lost(std::size_t n) { flow_.next[0] += static_cast<uint32_t>(n); }
  int64_t now = 1000000;

 private:
  void send(bool to_server, uint8_t flags, std::string_view payload, int64_t offset = 0, bool advance = true) {
    const int dir = to_server ? 0 : 1;
    const uint32_t seq = flow_.next[dir] + static_cast<uint32_t>(offset);
    const auto f = sluice::fuzz::tcp_frame(flow_, to_server, seq, flow_.next[1 - dir], flags,
                                           reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
    if (advance) sluice::fuzz::advance(flow_, dir, seq, payload.size(), flags);
    PacketInfo info;
    ASSERT_EQ(decode_packet(f.data(), f.size(), info), DecodeStatus::ok);
    ASSERT_TRUE(r_.wants(info));
    last_step = r_.on_packet(info, f.data(), now += 1000);
  }

 public:
  FrameStep last_step;  // of the last frame sent

 private:
  Reassembler& r_;
  sluice::fuzz::FlowState flow_;
};

// One command, or a pipelined group, from the client and the server's reply.
void exchange(Conversation& s, std::string_view commands, std::string_view replies) {
  s.client(tcp_flags::ack | tcp_flags::psh, commands);
  s.server(tcp_flags::ack | tcp_flags::psh, replies);
}

// Handshake and greeting.
void open_session(Conversation& s) {
  s.client(tcp_flags::syn);
  s.server(tcp_flags::syn | tcp_flags::ack);
  s.client(tcp_flags::ack);
  s.server(tcp_flags::ack | tcp_flags::psh, "220 mx ESMTP\r\n");
}

// Handshake, greeting, and one transaction up to the 354 that starts its DATA.
void open_data(Conversation& s) {
  open_session(s);
  s.client(tcp_flags::ack | tcp_flags::psh, "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n");
}

using test::small_config;

// An observer that sees nothing and asks, or not, for the frame ending each message to be held.
struct HoldingObserver final : MessageObserver {
  explicit HoldingObserver(bool hold) : hold(hold) {}
  void begin(const MessageContext&) noexcept override {}
  void data(const uint8_t*, std::size_t) noexcept override {}
  void end(bool, const uint8_t*, const MessageContext&) noexcept override {}
  void summary(sluice::records::MessageSummary&) const noexcept override {}
  bool hold_end() const noexcept override { return hold; }
  bool hold;
};

struct HoldingFactory final : MessageObserverFactory {
  explicit HoldingFactory(bool hold) : hold(hold) {}
  std::unique_ptr<MessageObserver> make(sluice::records::RecordSink&, unsigned) override {
    return std::make_unique<HoldingObserver>(hold);
  }
  bool hold;
};

// An observer that hashes the content itself (as on a worker lcore): its hashes become known only
// when the test releases them, in order.
struct HashingObserver final : MessageObserver {
  struct Shared {
    std::vector<std::string> contents;  // per ticket - 1
    std::set<uint64_t> released;        // tickets whose hash is in
  };
  explicit HashingObserver(Shared& s) : shared(s) {}
  void begin(const MessageContext&) noexcept override { shared.contents.emplace_back(); }
  void data(const uint8_t* p, std::size_t n) noexcept override {
    shared.contents.back().append(reinterpret_cast<const char*>(p), n);
  }
  void end(bool, const uint8_t* sha, const MessageContext&) noexcept override {
    given_hash = sha != nullptr;
    ticket = shared.contents.size();
  }
  void summary(sluice::records::MessageSummary&) const noexcept override {}
  bool hashes() const noexcept override { return true; }
  uint64_t digest_ticket() const noexcept override { return ticket; }
  bool take_digest(uint64_t t, uint8_t (&sha)[32], bool& known) noexcept override {
    if (!shared.released.count(t)) return false;
    const std::string& c = shared.contents.at(t - 1);
    SHA256(reinterpret_cast<const uint8_t*>(c.data()), c.size(), sha);
    known = true;
    return true;
  }
  Shared& shared;
  uint64_t ticket = 0;
  bool given_hash = false;
};

struct HashingFactory final : MessageObserverFactory {
  std::unique_ptr<MessageObserver> make(sluice::records::RecordSink&, unsigned) override {
    return std::make_unique<HashingObserver>(shared);
  }
  HashingObserver::Shared shared;
};

}  // namespace

// A message hashed by its observer (on a worker): the reassembler does not hash it, and its smtp
// event waits for the hash, keeping the order of the events that were due.
TEST(Reassembler, SmtpEventWaitsForTheObserversHash) {
  Collect out;
  HashingFactory factory;
  ReassemblyConfig c = small_config();
  c.observers = &factory;
  c.max_digest_waits = 8;
  Reassembler r(c, out, 0);
  Conversation s(r);
  open_data(s);
  s.client(tcp_flags::ack | tcp_flags::psh, "Subject: one\r\n\r\nfirst\r\n.\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 queued\r\n");
  s.client(tcp_flags::ack | tcp_flags::psh, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 ok\r\n250 ok\r\n354 go\r\n");
  s.client(tcp_flags::ack | tcp_flags::psh, "Subject: two\r\n\r\nsecond\r\n.\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 queued\r\n");
  auto smtp_events = [&] {
    std::vector<nlohmann::json> v;
    for (const std::string& line : out.lines) {
      auto j = nlohmann::json::parse(line);
      if (j.value("event_type", "") == "smtp") v.push_back(j.at("smtp"));
    }
    return v;
  };
  EXPECT_TRUE(smtp_events().empty()) << "both replies came, no hash yet";
  EXPECT_EQ(r.waiting(), 2u);
  factory.shared.released.insert(2);  // the second is in, the first not: the second waits behind it
  r.emit_waiting();
  EXPECT_TRUE(smtp_events().empty());
  factory.shared.released.insert(1);
  r.emit_waiting();
  const auto ev = smtp_events();
  ASSERT_EQ(ev.size(), 2u);
  ASSERT_EQ(factory.shared.contents.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    uint8_t d[32];
    const std::string& content = factory.shared.contents[i];
    SHA256(reinterpret_cast<const uint8_t*>(content.data()), content.size(), d);
    std::string hex;
    for (uint8_t b : d) hex += "0123456789abcdef"[b >> 4], hex += "0123456789abcdef"[b & 15];
    EXPECT_EQ(ev[i].value("message_sha256", ""), hex);
    EXPECT_EQ(ev[i].value("subject", ""), i == 0 ? "one" : "two");
  }
  EXPECT_EQ(r.stats().smtp_digest_waits, 2u);
  // One that is never released: written without the hash at the end (after the pipeline's drain).
  s.client(tcp_flags::ack | tcp_flags::psh, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 ok\r\n250 ok\r\n354 go\r\n");
  s.client(tcp_flags::ack | tcp_flags::psh, "Subject: three\r\n\r\n.\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 queued\r\n");
  r.flush_all(s.now + 1000);
  r.emit_waiting();
  EXPECT_EQ(smtp_events().size(), 2u);
  r.emit_waiting(/*all=*/true);
  const auto last = smtp_events();
  ASSERT_EQ(last.size(), 3u);
  EXPECT_FALSE(last[2].contains("message_sha256"));
  EXPECT_EQ(last[2].value("subject", ""), "three");
  EXPECT_EQ(r.waiting(), 0u);
}

// The per-frame next step (frame_step.h): only the frame that carries the end of a message is held,
// under that message's flow id and transaction, and only when the observer asks.
TEST(Reassembler, FrameEndingAMessageIsHeldWhenTheObserverAsks) {
  for (const bool ask : {true, false}) {
    SCOPED_TRACE(ask ? "observer asks" : "observer does not ask");
    Collect out;
    HoldingFactory factory(ask);
    ReassemblyConfig c = small_config();
    c.observers = &factory;
    Reassembler r(c, out, 0);
    Conversation s(r);
    std::vector<std::pair<NextStep, uint32_t>> steps;  // of every client frame carrying data
    auto client = [&](std::string_view payload) {
      s.client(tcp_flags::ack | tcp_flags::psh, payload);
      steps.emplace_back(s.last_step.step, s.last_step.transaction);
      if (s.last_step.step == NextStep::hold) {
        EXPECT_NE(s.last_step.flow_id, 0u);
      }
    };
    s.client(tcp_flags::syn);
    EXPECT_EQ(s.last_step.step, NextStep::forward);
    s.server(tcp_flags::syn | tcp_flags::ack);
    s.client(tcp_flags::ack);
    s.server(tcp_flags::ack | tcp_flags::psh, "220 mx ESMTP\r\n");
    client("EHLO c\r\n");
    s.server(tcp_flags::ack | tcp_flags::psh, "250-mx\r\n250 CHUNKING\r\n");
    client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
    s.server(tcp_flags::ack | tcp_flags::psh, "250 ok\r\n250 ok\r\n354 go\r\n");
    client("Subject: one\r\n\r\nfirst part\r\n");
    client("second part\r\n.\r\n");  // ends transaction 0
    EXPECT_EQ(s.last_step.step, ask ? NextStep::hold : NextStep::forward);
    const uint64_t held_flow = s.last_step.flow_id;
    s.server(tcp_flags::ack | tcp_flags::psh, "250 queued\r\n");
    client("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n");
    s.server(tcp_flags::ack | tcp_flags::psh, "250 ok\r\n250 ok\r\n");
    client("BDAT 12 LAST\r\nSubject: 2\r\n");  // ends transaction 1
    EXPECT_EQ(s.last_step.step, ask ? NextStep::hold : NextStep::forward);
    if (ask) {
      EXPECT_EQ(s.last_step.flow_id, held_flow);
    }
    s.server(tcp_flags::ack | tcp_flags::psh, "250 queued\r\n");
    client("QUIT\r\n");
    s.client(tcp_flags::ack | tcp_flags::fin);
    s.server(tcp_flags::ack | tcp_flags::fin);
    r.flush_all(s.now + 1000);

    const NextStep end = ask ? NextStep::hold : NextStep::forward;
    const std::vector<std::pair<NextStep, uint32_t>> want = {
        {NextStep::forward, 0}, {NextStep::forward, 0}, {NextStep::forward, 0}, {end, 0},
        {NextStep::forward, 0}, {end, ask ? 1u : 0u}, {NextStep::forward, 0}};
    EXPECT_EQ(steps, want);
    // The held frames name the flow of the messages' events.
    int messages = 0;
    for (const std::string& line : out.lines) {
      const auto j = nlohmann::json::parse(line);
      if (j.value("event_type", "") != "smtp") continue;
      EXPECT_EQ(j.at("smtp").value("status", ""), "complete") << line;
      if (ask) {
        EXPECT_EQ(j.value("flow_id", uint64_t{0}), held_flow) << line;
      }
      ++messages;
    }
    EXPECT_EQ(messages, 2);
  }
}

// A segment that ends several pipelined messages names the last and how many ended in it, so
// inline enforcement waits for every one of their verdicts.
TEST(Reassembler, ASegmentEndingPipelinedMessagesNamesThemAll) {
  Collect out;
  HoldingFactory factory(true);
  ReassemblyConfig c = small_config();
  c.observers = &factory;
  Reassembler r(c, out, 0);
  Conversation s(r);
  open_session(s);
  exchange(s, "EHLO c\r\n", "250-mx\r\n250 PIPELINING\r\n");
  exchange(s, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", "250 ok\r\n250 ok\r\n354 go\r\n");
  s.client(tcp_flags::ack | tcp_flags::psh,
           "one\r\n.\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 5\r\ntwo\r\nBDAT 0 LAST\r\n"
           "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 7 LAST\r\nthree\r\n");
  EXPECT_EQ(s.last_step.step, NextStep::hold);
  EXPECT_EQ(s.last_step.transaction, 2u);
  EXPECT_EQ(s.last_step.ended, 3u);
  EXPECT_EQ(s.last_step.first_transaction(), 0u);
  s.client(tcp_flags::ack | tcp_flags::psh, "QUIT\r\n");
  EXPECT_EQ(s.last_step.step, NextStep::forward);
}

// Found by tests/fuzz/reassembler_fuzz (UBSan): "MAIL" and "RCPT" without an argument hand the
// transaction an empty std::string_view whose data() is nullptr, and copying it with memcpy (even
// zero bytes) is undefined behaviour. The message must still be reported, with empty addresses.
TEST(Reassembler, MailAndRcptWithoutArgument) {
  Collect out;
  Reassembler r(small_config(), out, 0);
  Conversation s(r);
  open_session(s);
  exchange(s, "EHLO c\r\n", "250 mx\r\n");
  exchange(s, "MAIL\r\n", "250 ok\r\n");
  exchange(s, "RCPT\r\n", "250 ok\r\n");
  exchange(s, "DATA\r\n", "354 go\r\n");
  exchange(s, "Subject: x\r\n\r\nhi\r\n.\r\n", "250 queued\r\n");
  s.client(tcp_flags::ack | tcp_flags::fin);
  s.server(tcp_flags::ack | tcp_flags::fin);
  r.flush_all(s.now + 1000);

  int smtp_events = 0;
  for (const std::string& line : out.lines) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    if (j.value("event_type", "") != "smtp") continue;
    ++smtp_events;
    const auto& m = j.at("smtp");
    EXPECT_EQ(m.value("mail_from", "?"), "") << line;
    ASSERT_TRUE(m.at("rcpt_to").is_array()) << line;
    EXPECT_EQ(m.at("rcpt_to").size(), 1u) << line;
    EXPECT_EQ(m.value("status", ""), "complete") << line;
    EXPECT_EQ(m.value("server_reply", 0), 250) << line;
  }
  EXPECT_EQ(smtp_events, 1);
}

// Counters that cannot wrap (issue 10): 70,000 recipients were reported as rcpt_count 4,464 (16
// bits), and a count of one anomaly kind stopped at 65,535. Every count is 64-bit end to end.
TEST(Reassembler, CountsPastSixteenBitsAreReportedWhole) {
  constexpr int kRecipients = 70000, kBatch = 50;  // a batch stays within kMaxPending pipelined commands
  Collect out;
  Reassembler r(small_config(), out, 0);
  Conversation s(r);
  open_session(s);
  exchange(s, "EHLO c\r\n", "250 mx\r\n");
  exchange(s, "MAIL FROM:<a@x>\r\n", "250 ok\r\n");
  // kRecipients commands in pipelined groups of kBatch, each group answered.
  auto pipelined = [&](auto command, std::string_view reply) {
    for (int i = 0; i < kRecipients; i += kBatch) {
      std::string commands, replies;
      for (int k = i; k < i + kBatch; ++k) {
        commands += command(k);
        replies += reply;
      }
      exchange(s, commands, replies);
    }
  };
  pipelined([](int k) { return "RCPT TO:<r" + std::to_string(k) + "@y>\r\n"; }, "250 ok\r\n");
  pipelined([](int) { return std::string("XYZZY\r\n"); }, "500 unknown\r\n");
  exchange(s, "DATA\r\n", "354 go\r\n");
  exchange(s, "Subject: many\r\n\r\nhi\r\n.\r\n", "250 queued\r\n");
  s.client(tcp_flags::ack | tcp_flags::fin);
  s.server(tcp_flags::ack | tcp_flags::fin);
  r.flush_all(s.now + 1000);

  const auto smtp = events_of(out, "smtp"), flow = events_of(out, "flow");
  ASSERT_EQ(smtp.size(), 1u);
  const auto& m = smtp[0]["smtp"];
  EXPECT_EQ(m["rcpt_count"], kRecipients);
  // The first recipients are kept, as many as 2 KiB holds (rN@y and its NUL: 6 to 10 bytes), in order.
  ASSERT_GT(m["rcpt_to"].size(), 2048u / 10);
  EXPECT_LE(m["rcpt_to"].size(), 2048u / 6);
  EXPECT_EQ(m["rcpt_to"][0], "r0@y");
  EXPECT_EQ(m["rcpt_to"][m["rcpt_to"].size() - 1], "r" + std::to_string(m["rcpt_to"].size() - 1) + "@y");
  EXPECT_EQ(m["status"], "complete");
  ASSERT_EQ(flow.size(), 1u);
  EXPECT_EQ(flow[0]["flow"]["messages"], 1);
  EXPECT_EQ(flow[0]["flow"]["smtp_anomalies"]["unknown_command"], kRecipients);
}

// A stop loses nothing (issue 10): flush_all(shutdown) reports every open flow with reason
// `shutdown` and a half-received message `incomplete` with reason `shutdown`; once the abort flag
// (the stop deadline) is set, the flows left are counted instead, with the messages they hold.
namespace {

// Stops the flush after `limit` flow events, as the control thread does at the deadline.
struct AbortAfterFlows final : sluice::records::RecordSink {
  Collect lines;
  std::atomic<bool> abort{false};
  int limit, flows = 0;
  explicit AbortAfterFlows(int n) : limit(n) {}
  void emit(const void* record, std::size_t size) noexcept override {
    lines.emit(record, size);
    if (*static_cast<const sluice::records::RecordType*>(record) == sluice::records::RecordType::flow && ++flows == limit)
      abort.store(true);
  }
};

// Three sessions, oldest first: one in the middle of DATA, one idle after EHLO, one whose message
// ended without the server's reply yet; then flush_all(reason, abort). Returns the stats after.
ReassemblyStats flush_three_sessions(sluice::records::RecordSink& out, sluice::records::FlowEndReason reason,
                                     const std::atomic<bool>* abort) {
  Reassembler r(small_config(), out, 0);
  std::vector<std::unique_ptr<Conversation>> convs;
  for (uint16_t port : {40001, 40002, 40003}) {
    convs.push_back(std::make_unique<Conversation>(r, port));
    Conversation& s = *convs.back();
    open_session(s);
    exchange(s, "EHLO c\r\n", "250 mx\r\n");
    if (port == 40002) continue;
    exchange(s, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", "250 ok\r\n250 ok\r\n354 go\r\n");
    s.client(tcp_flags::ack | tcp_flags::psh, port == 40001 ? "Subject: half\r\n\r\nthe first half" : "Subject: whole\r\n\r\nall\r\n.\r\n");
  }
  r.flush_all(convs.back()->now + 1000, reason, abort);
  return r.stats();
}

}  // namespace

TEST(Reassembler, ShutdownReportsOpenFlowsAndHalfReceivedMessages) {
  AbortAfterFlows out(100);  // never reached
  const ReassemblyStats stats = flush_three_sessions(out, sluice::records::FlowEndReason::shutdown, &out.abort);

  const auto flows = events_of(out.lines, "flow");
  ASSERT_EQ(flows.size(), 3u);
  for (const auto& f : flows) EXPECT_EQ(f["flow"]["reason"], "shutdown") << f;
  const auto smtp = events_of(out.lines, "smtp");
  ASSERT_EQ(smtp.size(), 2u);
  EXPECT_EQ(smtp[0]["src_port"], 40001);
  EXPECT_EQ(smtp[0]["smtp"]["status"], "incomplete");
  EXPECT_EQ(smtp[0]["smtp"]["incomplete_reason"], "shutdown");
  EXPECT_EQ(smtp[0]["smtp"]["message_size"], std::string_view("Subject: half\r\n\r\nthe first half").size());
  EXPECT_EQ(smtp[1]["src_port"], 40003);
  EXPECT_EQ(smtp[1]["smtp"]["status"], "complete");  // the content ended; only the reply is missing
  EXPECT_TRUE(smtp[1]["smtp"]["server_reply"].is_null());
  EXPECT_EQ(stats.flows_unflushed, 0u);
  EXPECT_EQ(stats.messages_unflushed, 0u);

  // The end of a replay keeps its own reason, and a client's abort stays `aborted`.
  Collect replay;
  flush_three_sessions(replay, sluice::records::FlowEndReason::end_of_input, nullptr);
  for (const auto& f : events_of(replay, "flow")) EXPECT_EQ(f["flow"]["reason"], "end_of_input");
  EXPECT_EQ(events_of(replay, "smtp")[0]["smtp"]["incomplete_reason"], "aborted");
}

TEST(Reassembler, ShutdownPastItsDeadlineCountsWhatIsLeft) {
  AbortAfterFlows out(1);  // the deadline passes after the first flow is reported
  const ReassemblyStats stats = flush_three_sessions(out, sluice::records::FlowEndReason::shutdown, &out.abort);

  const auto flows = events_of(out.lines, "flow");
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["src_port"], 40001);
  ASSERT_EQ(events_of(out.lines, "smtp").size(), 1u);  // the half message of the first flow
  // Left: the idle session and the one whose message awaits its reply.
  EXPECT_EQ(stats.flows_unflushed, 2u);
  EXPECT_EQ(stats.messages_unflushed, 1u);
}

// Flows under pressure (issue 10). small_config(): 16 flows, 4 sessions, embryonic 30 s, idle 60 s,
// emergency idle 60 s (set lower per test), emergency embryonic 5 s.
namespace {

// A whole session carrying one message from `conv`'s client; returns its smtp events.
void full_mail(Conversation& s) {
  open_data(s);
  s.client(tcp_flags::ack | tcp_flags::psh, "Subject: real\r\n\r\nreal mail\r\n.\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 queued\r\n");
  s.client(tcp_flags::ack | tcp_flags::fin);
  s.server(tcp_flags::ack | tcp_flags::fin);
}

}  // namespace

// Before: each bare SYN took a session slot for the idle timeout, so 4 SYNs switched inspection off.
// Now SYNs hold no session and are evicted oldest first: a real mail after 100 of them is inspected.
TEST(FlowPressure, SynFloodDoesNotKeepARealMailFromInspection) {
  Collect out;
  Reassembler r(small_config(), out, 0);
  int64_t now = 1000000;
  for (uint16_t i = 0; i < 100; ++i) {
    Conversation syn(r, static_cast<uint16_t>(50000 + i), 66);
    syn.now = now += 100;
    syn.client(tcp_flags::syn);
  }
  Conversation real(r, 40000, 1);
  real.now = now;
  full_mail(real);
  r.flush_all(real.now + 1000);

  const auto smtp = events_of(out, "smtp");
  ASSERT_EQ(smtp.size(), 1u);
  EXPECT_EQ(smtp[0]["smtp"]["status"], "complete");
  EXPECT_EQ(smtp[0]["smtp"]["subject"], "real");
  const ReassemblyStats& st = r.stats();
  EXPECT_EQ(st.flows_evicted, 100u - 15u);  // 16 entries: the real flow's needed one more
  EXPECT_EQ(st.sessions_pool_full, 0u);
  EXPECT_EQ(st.flows_table_full, 0u);
  EXPECT_EQ(st.emergency_entered, 0u);
  int evicted = 0;
  for (const auto& f : events_of(out, "flow")) evicted += f["flow"]["reason"] == "evicted";
  EXPECT_EQ(evicted, 85);
}

// Handshakes completed but silent (half-open from the inspector's view): embryonic too.
TEST(FlowPressure, SilentHandshakesAreEmbryonicAndTimeOut) {
  Collect out;
  Reassembler r(small_config(), out, 0);
  for (uint16_t i = 0; i < 10; ++i) {
    Conversation h(r, static_cast<uint16_t>(50000 + i), 66);
    h.now = 1000000 + i * 1000;
    h.client(tcp_flags::syn);
    h.server(tcp_flags::syn | tcp_flags::ack);
    h.client(tcp_flags::ack);
  }
  EXPECT_EQ(r.stats().sessions_active, 0u);
  r.expire(1000000 + 29 * 1000000);
  EXPECT_TRUE(events_of(out, "flow").empty());
  r.expire(1000000 + 31 * 1000000);  // embryonic_timeout_s 30
  const auto flows = events_of(out, "flow");
  ASSERT_EQ(flows.size(), 10u);
  for (const auto& f : flows) {
    EXPECT_EQ(f["flow"]["reason"], "timeout");
    EXPECT_EQ(f["flow"]["inspected"], true);  // nothing to inspect, nothing refused
  }
}

// Four idle sessions that showed data hold every slot: the fifth flow's payload brings emergency
// timeouts (here 10 s), which free the idle ones, and it is inspected. Recovery follows.
TEST(FlowPressure, EmergencyTimeoutsFreeIdleSessions) {
  Collect out;
  ReassemblyConfig c = small_config();
  c.emergency_idle_timeout_s = 10;
  Reassembler r(c, out, 0);
  for (uint16_t i = 0; i < 4; ++i) {
    Conversation idle(r, static_cast<uint16_t>(50000 + i), 66);
    idle.now = 1000000 + i * 1000;
    idle.client(tcp_flags::syn);
    idle.server(tcp_flags::syn | tcp_flags::ack);
    idle.client(tcp_flags::ack);
    idle.server(tcp_flags::ack | tcp_flags::psh, "220 mx ESMTP\r\n");
  }
  EXPECT_EQ(r.stats().sessions_active, 4u);
  Conversation real(r, 40000, 1);
  real.now = 1000000 + 20 * 1000000;  // 20 s later: under the idle timeout, past the emergency one
  full_mail(real);
  const ReassemblyStats& st = r.stats();
  EXPECT_EQ(st.emergency_entered, 1u);
  EXPECT_EQ(st.sessions_pool_full, 0u);
  const auto smtp = events_of(out, "smtp");
  ASSERT_EQ(smtp.size(), 1u);
  EXPECT_EQ(smtp[0]["smtp"]["status"], "complete");
  r.expire(real.now + 2000000);
  EXPECT_EQ(r.stats().emergency, 0u);  // below 80% again
}

// A connection nothing can track, even in emergency: dropped at its SYN with drop_untracked_syn,
// forwarded and counted without; either way reported once a second with no flow id.
TEST(FlowPressure, UntrackedConnectionsFollowThePolicy) {
  for (const bool drop : {false, true}) {
    SCOPED_TRACE(drop ? "drop_syn" : "forward");
    Collect out;
    ReassemblyConfig c = small_config();
    c.drop_untracked_syn = drop;
    Reassembler r(c, out, 0);
    // 16 active flows (non-SMTP payload on port 25 from the server side keeps them active).
    for (uint16_t i = 0; i < 16; ++i) {
      Conversation a(r, static_cast<uint16_t>(50000 + i), 66);
      a.now = 1000000 + i * 1000;
      a.client(tcp_flags::syn);
      a.server(tcp_flags::syn | tcp_flags::ack);
      a.client(tcp_flags::ack);
      a.server(tcp_flags::ack | tcp_flags::psh, "220 mx ESMTP\r\n");
    }
    for (uint16_t i = 0; i < 3; ++i) {
      Conversation late(r, static_cast<uint16_t>(40000 + i), 1);
      late.now = 1000000 + 100000 + i * 1000;
      late.client(tcp_flags::syn);
      EXPECT_EQ(late.last_step.step, drop ? NextStep::drop : NextStep::forward);
    }
    const ReassemblyStats& st = r.stats();
    // With drop_syn, once the 4 session slots are taken by flows with data, every new SMTP SYN is
    // dropped: 12 of the 16 connections above, and the 3 late ones.
    EXPECT_EQ(st.syns_dropped, drop ? 15u : 0u);
    EXPECT_GE(st.emergency_entered, 1u);
    const auto anomalies = events_of(out, "anomaly");
    int table_full = 0;
    for (const auto& a : anomalies)
      if (a["anomaly"]["type"] == "flow_table_full" || a["anomaly"].value("name", "") == "flow_table_full") {
        ++table_full;
        EXPECT_EQ(a["flow_id"], 0);
        EXPECT_EQ(a["src_port"], 40000);
      }
    // Sessions ran out first (4 slots, 16 flows with data): with drop_syn, the SYNs go before any
    // flow entry is looked for; with forward, the table is full and reported once (same second).
    if (!drop) {
      EXPECT_EQ(st.flows_table_full, 3u);
      EXPECT_EQ(table_full, 1);
    }
  }
}

// Found by flow_table_fuzz: a frame whose flow needed the last session slot ran the emergency
// expiry, which ended another flow's half-received message; that observer asked for a hold, and
// the frame (of another connection, here a greeting) came back as `hold` for the expired message.
// An end reached at expiry holds nothing (message_observer.h): the frame is forwarded.
TEST(FlowPressure, EmergencyExpiryHoldsNoFrameOfAnotherFlow) {
  Collect out;
  HoldingFactory factory(true);
  ReassemblyConfig c = small_config();
  c.max_sessions = 1;
  c.emergency_idle_timeout_s = 10;
  c.observers = &factory;
  Reassembler r(c, out, 0);
  Conversation idle(r, 50000, 66);
  open_data(idle);
  idle.client(tcp_flags::ack | tcp_flags::psh, "Subject: cut\r\n\r\nhalf a mail");
  Conversation next(r, 40000, 1);
  next.now = idle.now + 20 * 1000000;  // past the emergency idle timeout, under the idle one
  next.client(tcp_flags::syn);
  next.server(tcp_flags::syn | tcp_flags::ack);
  next.client(tcp_flags::ack);
  next.server(tcp_flags::ack | tcp_flags::psh, "220 mx ESMTP\r\n");  // needs the slot
  EXPECT_EQ(next.last_step.step, NextStep::forward);
  EXPECT_EQ(r.stats().emergency_entered, 1u);
  EXPECT_EQ(r.stats().sessions_pool_full, 0u);
  const auto smtp = events_of(out, "smtp");
  ASSERT_EQ(smtp.size(), 1u);
  EXPECT_EQ(smtp[0]["smtp"]["status"], "incomplete");
  EXPECT_EQ(smtp[0]["src_port"], 50000);
}

// TCP like the receiver (issue 10), through the whole stage.
TEST(LikeTheReceiver, OnlyAnExactResetEndsTheSession) {
  Collect out;
  Reassembler r(small_config(), out, 0);
  Conversation s(r);
  open_data(s);
  s.client(tcp_flags::ack | tcp_flags::psh, "Subject: rst\r\n\r\nfirst half\r\n");
  s.client_at(1000, tcp_flags::rst);  // forged, in the window: the receiver sends a challenge ACK
  s.client_at(-5, tcp_flags::rst);
  EXPECT_EQ(r.stats().rst_ignored, 2u);
  s.client(tcp_flags::ack | tcp_flags::psh, "second half\r\n.\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 queued\r\n");
  s.client_at(0, tcp_flags::rst);  // exact: the connection is gone
  const auto smtp = events_of(out, "smtp");
  ASSERT_EQ(smtp.size(), 1u);
  EXPECT_EQ(smtp[0]["smtp"]["status"], "complete");
  const auto flows = events_of(out, "flow");
  ASSERT_EQ(flows.size(), 1u);
  EXPECT_EQ(flows[0]["flow"]["reason"], "rst");
  int ignored = 0;
  for (const auto& a : events_of(out, "anomaly")) ignored += a["anomaly"]["type"] == "rst_ignored";
  EXPECT_EQ(ignored, 1);  // the first of its kind in the flow
}

TEST(LikeTheReceiver, FarAheadSegmentsDoNotCostTheMessage) {
  Collect out;
  ReassemblyConfig c = small_config();
  c.stream.max_unacked_bytes = 64 * 1024;
  c.stream.unknown_window_bytes = 1024 * 1024;
  Reassembler r(c, out, 0);
  Conversation s(r);
  open_data(s);
  // Before, these were buffered: past the stream's 64 segments the stream gave up its hole and
  // skipped to them, past the whole message.
  s.client_at((int64_t{1} << 30) - 100, tcp_flags::ack | tcp_flags::psh, "junk far ahead");
  for (int i = 0; i < 70; ++i) s.client_at((10 << 20) + i * 100, tcp_flags::ack | tcp_flags::psh, "junk 10 MB ahead");
  s.client(tcp_flags::ack | tcp_flags::psh, "Subject: far\r\n\r\nbody\r\n.\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 queued\r\n");
  s.client(tcp_flags::ack | tcp_flags::fin);
  s.server(tcp_flags::ack | tcp_flags::fin);
  const auto smtp = events_of(out, "smtp");
  ASSERT_EQ(smtp.size(), 1u);
  EXPECT_EQ(smtp[0]["smtp"]["status"], "complete");
  EXPECT_EQ(smtp[0]["smtp"]["subject"], "far");
  EXPECT_EQ(r.stats().out_of_window_segments, 71u);
  EXPECT_EQ(r.stats().gaps, 0u);
  EXPECT_EQ(r.stats().memcap_flushes, 0u);
}

TEST(LikeTheReceiver, ConflictingRetransmissionOfDeliveredBytesIsReported) {
  Collect out;
  ReassemblyConfig c = small_config();
  c.stream.max_unacked_bytes = 64 * 1024;
  Reassembler r(c, out, 0);
  Conversation s(r);
  open_data(s);
  s.client(tcp_flags::ack | tcp_flags::psh, "Subject: benign\r\n\r\n");
  // Not acknowledged yet: the same bytes again, different (the receiver may keep these).
  s.client_at(-19, tcp_flags::ack | tcp_flags::psh, "Subject: EVIL!!\r\n\r\n");
  s.client(tcp_flags::ack | tcp_flags::psh, "body\r\n.\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 queued\r\n");
  const auto smtp = events_of(out, "smtp");
  ASSERT_EQ(smtp.size(), 1u);
  EXPECT_EQ(smtp[0]["smtp"]["subject"], "benign");  // the first copy seen is the one read
  EXPECT_EQ(r.stats().overlap_conflicts, 1u);
  int conflicts = 0;
  for (const auto& a : events_of(out, "anomaly")) conflicts += a["anomaly"]["type"] == "overlap_conflict";
  EXPECT_EQ(conflicts, 1);
}

// Directions out of step (issue 17): a tap that delivers an ACK before the data it acknowledges.
namespace {

// One SMTP connection recorded as the real exchange went (each segment acknowledges what its
// sender had received), then played in any order.
class Capture {
 public:
  // Returns the frame's index.
  std::size_t client(uint8_t flags, std::string_view payload = {}) { return add(true, flags, payload); }
  std::size_t server(uint8_t flags, std::string_view payload = {}) { return add(false, flags, payload); }
  std::size_t size() const { return frames_.size(); }
  bool to_server(std::size_t i) const { return to_server_[i]; }
  // Feeds the frames in `order` (every index once), 1 ms apart.
  void play(Reassembler& r, const std::vector<std::size_t>& order, int64_t& now) const {
    for (std::size_t i : order) {
      PacketInfo info;
      ASSERT_EQ(decode_packet(frames_[i].data(), frames_[i].size(), info), DecodeStatus::ok);
      r.on_packet(info, frames_[i].data(), now += 1000);
    }
  }
  std::vector<std::size_t> in_order() const {
    std::vector<std::size_t> v(size());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = i;
    return v;
  }
  // The client's frames `ahead` frames late (a tap whose client port lags): each direction in its
  // own order, the server's ACKs ahead of the client data they acknowledge.
  std::vector<std::size_t> server_ahead(std::size_t ahead) const {
    std::vector<std::size_t> v = in_order();
    std::stable_sort(v.begin(), v.end(), [&](std::size_t a, std::size_t b) {
      return a + (to_server_[a] ? ahead : 0) < b + (to_server_[b] ? ahead : 0);
    });
    return v;
  }

 private:
  std::size_t add(bool to_server, uint8_t flags, std::string_view payload) {
    const int dir = to_server ? 0 : 1;
    const uint32_t seq = flow_.next[dir];
    frames_.push_back(sluice::fuzz::tcp_frame(flow_, to_server, seq, flow_.next[1 - dir], flags,
                                              reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
    sluice::fuzz::advance(flow_, dir, seq, payload.size(), flags);
    to_server_.push_back(to_server);
    return frames_.size() - 1;
  }
  std::vector<std::vector<uint8_t>> frames_;
  std::vector<bool> to_server_;
  sluice::fuzz::FlowState flow_{4, 1, 40000, 25, {5000, 70000}};
};

constexpr uint8_t kAck = tcp_flags::ack, kPsh = tcp_flags::ack | tcp_flags::psh;

// A mail of `segments` body segments, each command and reply in its own frame, the server
// acknowledging every client segment.
Capture mail_capture(int segments) {
  Capture c;
  c.client(tcp_flags::syn);
  c.server(tcp_flags::syn | kAck);
  c.client(kAck);
  c.server(kPsh, "220 mx ESMTP\r\n");
  c.client(kPsh, "EHLO c\r\n");
  c.server(kPsh, "250 mx\r\n");
  c.client(kPsh, "MAIL FROM:<a@x>\r\n");
  c.server(kPsh, "250 ok\r\n");
  c.client(kPsh, "RCPT TO:<b@y>\r\n");
  c.server(kPsh, "250 ok\r\n");
  c.client(kPsh, "DATA\r\n");
  c.server(kPsh, "354 go\r\n");
  c.client(kPsh, "Subject: out of step\r\n\r\n");
  for (int i = 0; i < segments; ++i) {
    c.client(kPsh, std::string(1000, static_cast<char>('a' + i % 26)) + "\r\n");
    c.server(kAck);
  }
  c.client(kPsh, ".\r\n");
  c.server(kPsh, "250 queued\r\n");
  c.client(kPsh, "QUIT\r\n");
  c.server(kPsh, "221 bye\r\n");
  c.client(kAck | tcp_flags::fin);
  c.server(kAck | tcp_flags::fin);
  c.client(kAck);
  return c;
}

ReassemblyConfig tap_config() {
  ReassemblyConfig c = small_config();
  c.directions_in_step = false;
  return c;
}

struct Played {
  std::vector<nlohmann::json> smtp;
  ReassemblyStats stats;
};

Played play(const ReassemblyConfig& config, const Capture& cap, const std::vector<std::size_t>& order,
            int64_t end_gap_us = 1000) {
  Collect out;
  Reassembler r(config, out, 0);
  int64_t now = 1000000;
  cap.play(r, order, now);
  r.flush_all(now + end_gap_us);
  return {events_of(out, "smtp"), r.stats()};
}

}  // namespace

TEST(OutOfStep, ShufflingMovesServerFramesAheadOfTheDataTheyAcknowledge) {
  const Capture cap = mail_capture(3);
  const auto order = cap.server_ahead(3);
  ASSERT_NE(order, cap.in_order());
  // The 250 to EHLO (frame 5) comes before the EHLO (frame 4).
  const auto pos = [&](std::size_t i) { return std::find(order.begin(), order.end(), i) - order.begin(); };
  EXPECT_LT(pos(5), pos(4));
}

// Every hole an early ACK passed is filled by the data that follows; the replies reach the
// session after the commands they answer: the same message, envelope and reply as in order.
TEST(OutOfStep, HolesAreFilledAndTheMessageIsRebuiltWhole) {
  const Capture cap = mail_capture(40);
  const Played ref = play(tap_config(), cap, cap.in_order());
  ASSERT_EQ(ref.smtp.size(), 1u);
  EXPECT_EQ(ref.stats.acked_holes_filled + ref.stats.acked_holes_declared, 0u);
  for (std::size_t ahead : {2u, 3u, 5u, 30u}) {
    SCOPED_TRACE(ahead);
    const Played p = play(tap_config(), cap, cap.server_ahead(ahead));
    ASSERT_EQ(p.smtp.size(), 1u);
    const auto& m = p.smtp[0]["smtp"];
    EXPECT_EQ(m["status"], "complete");
    EXPECT_EQ(m["message_sha256"], ref.smtp[0]["smtp"]["message_sha256"]);
    EXPECT_EQ(m["helo"], "c");
    EXPECT_EQ(m["mail_from"], "a@x");
    EXPECT_EQ(m["rcpt_to"], nlohmann::json::array({"b@y"}));
    EXPECT_EQ(m["server_reply"], 250);
    EXPECT_GT(p.stats.acked_holes_filled, 0u);
    EXPECT_EQ(p.stats.acked_holes_declared, 0u);
    EXPECT_EQ(p.stats.gaps, 0u);
  }
}

// The same capture in step (inline) declares the hole at the first early ACK: the message is lost
// or cut, as before.
TEST(OutOfStep, InlineDeclaresAtOnce) {
  const Capture cap = mail_capture(10);
  const Played p = play(small_config(), cap, cap.server_ahead(2));
  EXPECT_EQ(p.stats.acked_holes_filled, 0u);
  EXPECT_GT(p.stats.acked_holes_declared, 0u);
  EXPECT_GT(p.stats.gaps, 0u);
  bool whole = false;
  for (const auto& e : p.smtp) whole |= e["smtp"]["status"] == "complete";
  EXPECT_FALSE(whole);
  // Any limit at 0 is the same.
  ReassemblyConfig zero = tap_config();
  zero.ack_hole_wait_us = 0;
  const Played z = play(zero, cap, cap.server_ahead(2));
  EXPECT_EQ(z.stats.acked_holes_filled, 0u);
  EXPECT_EQ(z.stats.acked_holes_declared, p.stats.acked_holes_declared);
}

namespace {

// The 354 acknowledges DATA and the first body segment is lost for good: the server's ACKs of the
// body keep passing the hole while the client's later body segments arrive.
Capture lost_segment_capture(std::size_t& lost) {
  Capture c;
  c.client(tcp_flags::syn);
  c.server(tcp_flags::syn | kAck);
  c.client(kAck);
  c.server(kPsh, "220 mx ESMTP\r\n");
  c.client(kPsh, "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n");
  c.server(kPsh, "250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n");
  lost = c.client(kPsh, "Subject: lost\r\n\r\n");
  for (int i = 0; i < 20; ++i) c.client(kPsh, std::string(100, 'x') + "\r\n");
  c.server(kAck);  // acknowledges everything, past the lost segment
  for (int i = 0; i < 20; ++i) c.client(kPsh, std::string(100, 'y') + "\r\n");
  c.client(kPsh, ".\r\n");
  c.server(kPsh, "250 queued\r\n");
  return c;
}

std::vector<std::size_t> without(const Capture& c, std::size_t lost) {
  std::vector<std::size_t> v = c.in_order();
  v.erase(v.begin() + static_cast<std::ptrdiff_t>(lost));
  return v;
}

}  // namespace

// A hole that never fills is declared at each limit: segments, bytes, time (at the flow's next
// packet or at expiry), and at the end of input. The message is then incomplete with reason gap.
TEST(OutOfStep, LostDataIsDeclaredAtEachLimit) {
  std::size_t lost = 0;
  const Capture cap = lost_segment_capture(lost);
  const auto order = without(cap, lost);
  const auto check = [](const Played& p, const char* what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(p.stats.acked_holes_declared, 1u);
    EXPECT_EQ(p.stats.acked_holes_filled, 0u);
    EXPECT_GE(p.stats.gaps, 1u);
    ASSERT_EQ(p.smtp.size(), 1u);
    EXPECT_EQ(p.smtp[0]["smtp"]["status"], "incomplete");
    EXPECT_EQ(p.smtp[0]["smtp"]["incomplete_reason"], "gap");
  };
  {
    ReassemblyConfig c = tap_config();
    c.ack_hole_wait_segments = 5;
    Collect out;
    Reassembler r(c, out, 0);
    int64_t now = 1000000;
    // up to the server's ACK, then 5 more segments: still waiting; the 6th declares
    std::vector<std::size_t> head(order.begin(), order.begin() + 27 + 4);
    cap.play(r, head, now);
    EXPECT_EQ(r.stats().acked_holes_declared, 0u);
    cap.play(r, {order[31]}, now);
    EXPECT_EQ(r.stats().acked_holes_declared, 1u);
    cap.play(r, std::vector<std::size_t>(order.begin() + 32, order.end()), now);
    r.flush_all(now + 1000);
    check({events_of(out, "smtp"), r.stats()}, "segments");
  }
  {
    ReassemblyConfig c = tap_config();
    c.ack_hole_wait_bytes = 1000;  // ten of the 102-byte segments
    Collect out;
    Reassembler r(c, out, 0);
    int64_t now = 1000000;
    cap.play(r, std::vector<std::size_t>(order.begin(), order.begin() + 27 + 9), now);
    EXPECT_EQ(r.stats().acked_holes_declared, 0u);
    cap.play(r, {order[36]}, now);
    EXPECT_EQ(r.stats().acked_holes_declared, 1u);
    cap.play(r, std::vector<std::size_t>(order.begin() + 37, order.end()), now);
    r.flush_all(now + 1000);
    check({events_of(out, "smtp"), r.stats()}, "bytes");
  }
  {
    ReassemblyConfig c = tap_config();
    c.ack_hole_wait_us = 10000;  // 10 ms: the frames are 1 ms apart
    check(play(c, cap, order), "time");
  }
  {  // time, with no packet of the flow after the ACK: at expiry
    ReassemblyConfig c = tap_config();
    Collect out;
    Reassembler r(c, out, 0);
    int64_t now = 1000000;
    cap.play(r, std::vector<std::size_t>(order.begin(), order.begin() + 27), now);
    r.expire(now + 500000);
    EXPECT_EQ(r.stats().acked_holes_declared, 0u);
    r.expire(now + 1000001);
    EXPECT_EQ(r.stats().acked_holes_declared, 1u);
    now += 1000001;
    cap.play(r, std::vector<std::size_t>(order.begin() + 27, order.end()), now);
    r.flush_all(now + 1000);
    check({events_of(out, "smtp"), r.stats()}, "expiry");
  }
  {
    ReassemblyConfig c = tap_config();
    c.ack_hole_wait_segments = 1000;
    c.ack_hole_wait_bytes = 1 << 20;
    check(play(c, cap, order), "end of input");
  }
}

// Replies that arrive before the commands they answer are held and released in order, each after
// its command: pipelined replies, the 354, and the final reply after the end of data.
TEST(OutOfStep, RepliesAreHeldAndReleasedInOrder) {
  Capture c;
  c.client(tcp_flags::syn);
  c.server(tcp_flags::syn | kAck);
  c.client(kAck);
  const std::size_t greeting = c.server(kPsh, "220 mx ESMTP\r\n");
  const std::size_t ehlo = c.client(kPsh, "EHLO c\r\n");
  const std::size_t ehlo_reply = c.server(kPsh, "250-mx\r\n250 PIPELINING\r\n");
  const std::size_t mail = c.client(kPsh, "MAIL FROM:<a@x>\r\n");
  const std::size_t rcpt1 = c.client(kPsh, "RCPT TO:<b@y>\r\n");
  const std::size_t rcpt2 = c.client(kPsh, "RCPT TO:<c@y>\r\n");
  const std::size_t data = c.client(kPsh, "DATA\r\n");
  const std::size_t r_mail = c.server(kPsh, "250 ok\r\n");    // acknowledges up to DATA
  const std::size_t r_rcpts = c.server(kPsh, "250 ok\r\n550 no\r\n354 go\r\n");
  const std::size_t body = c.client(kPsh, "Subject: held\r\n\r\nbody\r\n.\r\n");
  const std::size_t queued = c.server(kPsh, "250 queued\r\n");
  const std::size_t quit = c.client(kPsh, "QUIT\r\n");
  const std::size_t bye = c.server(kPsh, "221 bye\r\n");
  const std::vector<std::size_t> order = {0,     1,     2,    greeting, ehlo_reply, ehlo, r_mail, r_rcpts, mail,
                                          rcpt1, rcpt2, data, queued,   bye,        body, quit};
  const Played ref = play(tap_config(), c, c.in_order());
  const Played p = play(tap_config(), c, order);
  ASSERT_EQ(p.smtp.size(), 1u);
  const auto& m = p.smtp[0]["smtp"];
  EXPECT_EQ(m["status"], "complete");
  EXPECT_EQ(m["server_reply"], 250);
  EXPECT_EQ(m["mail_from"], "a@x");
  EXPECT_EQ(m["rcpt_to"], ref.smtp[0]["smtp"]["rcpt_to"]);
  EXPECT_EQ(m["message_sha256"], ref.smtp[0]["smtp"]["message_sha256"]);
  EXPECT_EQ(m["subject"], "held");
  EXPECT_EQ(p.stats.acked_holes_filled, 3u);  // EHLO; MAIL..DATA; the body and QUIT
  EXPECT_EQ(p.stats.acked_holes_declared, 0u);
  EXPECT_EQ(p.stats.gaps, 0u);
  // No SMTP anomaly the in-order run does not have.
  EXPECT_EQ(p.stats.messages_incomplete, 0u);
}

// A SYN-ACK (and what follows from the server) seen before the client's SYN anchors the client's
// stream at its acknowledgement: the session is read from the start, the early replies held.
TEST(OutOfStep, SynAckBeforeSynAnchorsTheStreams) {
  const Capture cap = mail_capture(3);
  std::vector<std::size_t> order = cap.in_order();
  // SYN-ACK, greeting and the reply to EHLO before the SYN.
  order.erase(order.begin(), order.begin() + 6);
  order.insert(order.begin(), {1, 3, 5, 0, 2, 4});
  const Played ref = play(tap_config(), cap, cap.in_order());
  const Played p = play(tap_config(), cap, order);
  ASSERT_EQ(p.smtp.size(), 1u);
  EXPECT_EQ(p.smtp[0]["smtp"]["status"], "complete");
  EXPECT_EQ(p.smtp[0]["smtp"]["helo"], "c");
  EXPECT_EQ(p.smtp[0]["smtp"]["message_sha256"], ref.smtp[0]["smtp"]["message_sha256"]);
  EXPECT_EQ(p.stats.gaps, 0u);
  EXPECT_EQ(p.stats.acked_holes_declared, 0u);
  // The SYN lost altogether: the SYN-ACK alone anchors the client's stream.
  order.erase(std::find(order.begin(), order.end(), std::size_t{0}));
  const Played q = play(tap_config(), cap, order);
  ASSERT_EQ(q.smtp.size(), 1u);
  EXPECT_EQ(q.smtp[0]["smtp"]["status"], "complete");
  EXPECT_EQ(q.smtp[0]["smtp"]["helo"], "c");
}

// A lost frame holding a whole "MAIL ... RCPT ... BDAT n" group: the next "BDAT n LAST" is a
// message whose start and envelope were lost. Before, it completed under the previous message's
// envelope.
TEST(Gaps, BdatAfterALostEnvelopeIsIncompleteWithoutThePreviousEnvelope) {
  Collect out;
  Reassembler r(small_config(), out, 0);
  Conversation s(r);
  open_session(s);
  exchange(s, "EHLO c\r\n", "250-mx\r\n250 CHUNKING\r\n");
  exchange(s, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 12 LAST\r\nSubject: 1\r\n", "250 ok\r\n250 ok\r\n250 queued\r\n");
  const std::string lost = "MAIL FROM:<c@x>\r\nRCPT TO:<d@y>\r\nBDAT 12\r\nSubject: 2\r\n";
  s.client_lost(lost.size());
  exchange(s, "BDAT 4 LAST\r\nbody", "250 ok\r\n250 ok\r\n250 ok\r\n250 queued\r\n");
  r.flush_all(s.now + 1000);
  const auto smtp = events_of(out, "smtp");
  ASSERT_GE(smtp.size(), 2u);
  EXPECT_EQ(smtp[0]["smtp"]["mail_from"], "a@x");
  EXPECT_EQ(smtp[0]["smtp"]["status"], "complete");
  const auto& m = smtp[1]["smtp"];
  EXPECT_EQ(m["status"], "incomplete");
  EXPECT_EQ(m["incomplete_reason"], "gap");
  EXPECT_NE(m["mail_from"], "a@x");
  EXPECT_EQ(m["rcpt_to"], nlohmann::json::array());
}
