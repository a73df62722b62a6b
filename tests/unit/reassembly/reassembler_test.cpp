#include "reassembly/reassembler.h"

#include "control/event_render.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <memory>
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

// One SMTP connection 10.0.0.1:40000 -> 10.0.1.1:25 over Ethernet/IPv4, both directions in order.
class Conversation {
 public:
  explicit Conversation(Reassembler& r) : r_(r) {}
  void client(uint8_t flags, std::string_view payload = {}) { send(true, flags, payload); }
  void server(uint8_t flags, std::string_view payload = {}) { send(false, flags, payload); }
  int64_t now = 1000000;

 private:
  void send(bool to_server, uint8_t flags, std::string_view payload) {
    std::vector<uint8_t> f(14 + 20 + 20 + payload.size(), 0);
    f[12] = 0x08;
    uint8_t* ip = &f[14];
    const std::size_t total = 40 + payload.size();
    ip[0] = 0x45;
    ip[2] = static_cast<uint8_t>(total >> 8);
    ip[3] = static_cast<uint8_t>(total);
    ip[8] = 64;
    ip[9] = 6;
    const uint8_t c[4] = {10, 0, 0, 1}, s[4] = {10, 0, 1, 1};
    std::copy(to_server ? c : s, (to_server ? c : s) + 4, ip + 12);
    std::copy(to_server ? s : c, (to_server ? s : c) + 4, ip + 16);
    uint8_t* tcp = ip + 20;
    const uint16_t sp = to_server ? 40000 : 25, dp = to_server ? 25 : 40000;
    tcp[0] = sp >> 8, tcp[1] = sp & 0xff, tcp[2] = dp >> 8, tcp[3] = dp & 0xff;
    uint32_t& seq = next_[to_server ? 0 : 1];
    const uint32_t ack = next_[to_server ? 1 : 0];
    for (int k = 0; k < 4; ++k) {
      tcp[4 + k] = static_cast<uint8_t>(seq >> (24 - 8 * k));
      tcp[8 + k] = static_cast<uint8_t>(ack >> (24 - 8 * k));
    }
    tcp[12] = 0x50;
    tcp[13] = flags;
    std::copy(payload.begin(), payload.end(), tcp + 20);
    seq += static_cast<uint32_t>(payload.size()) + ((flags & tcp_flags::syn) ? 1 : 0) + ((flags & tcp_flags::fin) ? 1 : 0);
    PacketInfo info;
    ASSERT_EQ(decode_packet(f.data(), f.size(), info), DecodeStatus::ok);
    ASSERT_TRUE(r_.wants(info));
    last_step = r_.on_packet(info, f.data(), now += 1000);
  }

 public:
  FrameStep last_step;  // of the last frame sent

 private:
  Reassembler& r_;
  uint32_t next_[2] = {1000, 90000};
};

ReassemblyConfig small_config() {
  ReassemblyConfig c{};
  c.smtp_ports = {25};
  c.max_flows = 16;
  c.max_sessions = 4;
  c.memcap_mb = 1;
  c.stream = {65536, 64};
  c.idle_timeout_s = 60;
  c.closed_timeout_s = 5;
  c.max_fragment_sets = 4;
  c.fragment_timeout_s = 5;
  return c;
}

// An observer that sees nothing and asks, or not, for the frame ending each message to be held.
struct HoldingObserver final : MessageObserver {
  explicit HoldingObserver(bool hold) : hold(hold) {}
  void begin(const MessageContext&) noexcept override {}
  void data(const uint8_t*, std::size_t) noexcept override {}
  void end(bool, const uint8_t (&)[32], const MessageContext&) noexcept override {}
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

}  // namespace

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
      if (s.last_step.step == NextStep::hold) EXPECT_NE(s.last_step.flow_id, 0u);
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
    if (ask) EXPECT_EQ(s.last_step.flow_id, held_flow);
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
      if (ask) EXPECT_EQ(j.value("flow_id", uint64_t{0}), held_flow) << line;
      ++messages;
    }
    EXPECT_EQ(messages, 2);
  }
}

// Found by tests/fuzz/reassembler_fuzz (UBSan): "MAIL" and "RCPT" without an argument hand the
// transaction an empty std::string_view whose data() is nullptr, and copying it with memcpy (even
// zero bytes) is undefined behaviour. The message must still be reported, with empty addresses.
TEST(Reassembler, MailAndRcptWithoutArgument) {
  Collect out;
  Reassembler r(small_config(), out, 0);
  Conversation s(r);
  s.client(tcp_flags::syn);
  s.server(tcp_flags::syn | tcp_flags::ack);
  s.client(tcp_flags::ack);
  s.server(tcp_flags::ack | tcp_flags::psh, "220 mx ESMTP\r\n");
  s.client(tcp_flags::ack | tcp_flags::psh, "EHLO c\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 mx\r\n");
  s.client(tcp_flags::ack | tcp_flags::psh, "MAIL\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 ok\r\n");
  s.client(tcp_flags::ack | tcp_flags::psh, "RCPT\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 ok\r\n");
  s.client(tcp_flags::ack | tcp_flags::psh, "DATA\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "354 go\r\n");
  s.client(tcp_flags::ack | tcp_flags::psh, "Subject: x\r\n\r\nhi\r\n.\r\n");
  s.server(tcp_flags::ack | tcp_flags::psh, "250 queued\r\n");
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
