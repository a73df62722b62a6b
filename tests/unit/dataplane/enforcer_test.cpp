// dataplane/enforcer: the gated-connection state machine, without the EAL. Frames are real
// Ethernet/IP/TCP bytes; mbufs are opaque handles to them; a fake EnforcerIo records what leaves
// (forwarded, discarded, injected) and what the reassembler is shown, and says which shown frame
// ends a message (what the reassembler would answer).
#include "dataplane/enforcer.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "reassembly/segment_forge.h"
#include "reassembly/smtp_session.h"
#include "tests/fuzz/tcp_frames.h"

namespace sluice::dataplane {
namespace {

using reassembly::kTcpAck;
using reassembly::kTcpFin;
using reassembly::kTcpPsh;
using reassembly::kTcpRst;
using reassembly::kTcpSyn;

struct Frame {
  std::vector<uint8_t> bytes;
  uint16_t port;             // 0: client side, 1: server side
  bool ends = false;         // the reassembler would end message `txn` with it
  uint64_t txn = 0;
};

rte_mbuf* handle(Frame* f) { return reinterpret_cast<rte_mbuf*>(f); }
Frame* frame_of(rte_mbuf* m) { return reinterpret_cast<Frame*>(m); }

struct FakeIo final : EnforcerIo {
  std::vector<Frame*> forwarded, discarded, observed;
  std::vector<reassembly::PacketInfo> injected;  // decoded
  std::vector<std::string> injected_payload;
  std::vector<uint16_t> injected_port;
  std::map<const uint8_t*, Frame*> by_bytes;

  uint8_t* writable(rte_mbuf* m, uint32_t& len) noexcept override {
    Frame* f = frame_of(m);
    len = static_cast<uint32_t>(f->bytes.size());
    return f->bytes.data();
  }
  const uint8_t* bytes(rte_mbuf* m, uint32_t& len, uint16_t& in_port) noexcept override {
    Frame* f = frame_of(m);
    len = static_cast<uint32_t>(f->bytes.size());
    in_port = f->port;
    by_bytes[f->bytes.data()] = f;
    return f->bytes.data();
  }
  void forward(rte_mbuf** m, std::size_t n) noexcept override {
    for (std::size_t i = 0; i < n; ++i) forwarded.push_back(frame_of(m[i]));
  }
  void discard(rte_mbuf** m, std::size_t n) noexcept override {
    for (std::size_t i = 0; i < n; ++i) discarded.push_back(frame_of(m[i]));
  }
  uint16_t peer(uint16_t port) noexcept override { return port ^ 1; }
  bool inject(uint16_t port, const uint8_t* frame, std::size_t len) noexcept override {
    reassembly::PacketInfo p{};
    EXPECT_EQ(reassembly::decode_packet(frame, len, p), reassembly::DecodeStatus::ok);
    injected.push_back(p);
    injected_payload.emplace_back(reinterpret_cast<const char*>(frame + p.payload_offset), p.payload_len);
    injected_port.push_back(port);
    return true;
  }
  reassembly::FrameStep observe(const uint8_t* frame, std::size_t, uint16_t) noexcept override {
    auto it = by_bytes.find(frame);
    if (it == by_bytes.end()) return {};  // a forged frame
    observed.push_back(it->second);
    if (!it->second->ends) return {};
    return reassembly::FrameStep{reassembly::NextStep::hold, it->second->txn, kFlow};
  }
  static constexpr uint64_t kFlow = 77;
};

struct AnomalySink final : records::RecordSink {
  std::vector<records::AnomalyRecord> anomalies;
  std::vector<records::VerdictRecord> verdicts;  // those the enforcer took and wrote itself
  void emit(const void* record, std::size_t size) noexcept override {
    if (size == sizeof(records::AnomalyRecord)) anomalies.push_back(*static_cast<const records::AnomalyRecord*>(record));
    if (size == sizeof(records::VerdictRecord)) verdicts.push_back(*static_cast<const records::VerdictRecord*>(record));
  }
};

class EnforcerTest : public ::testing::Test {
 protected:
  static constexpr int64_t kHoldUs = 10'000'000;

  EnforcerTest() : hold_(HoldLimits{64, 16, HoldAction::forward, HoldAction::forward}) {
    config_.enabled = true;
    config_.max_hold_us = kHoldUs;
    config_.on_deadline = records::Action::defer;
    config_.reject_reply = "550 5.7.1 Message rejected: {reason} (reference {reference})";
    config_.defer_reply = "451 4.7.1 Message deferred: {reason} (reference {reference})";
    config_.max_flows = 4;
    config_.aftermath_ms = 60000;
    config_.instance = 0xabcdef01;
    config_.smtp_ports = {25, 587};
    make();
  }
  void make() { enf_ = std::make_unique<Enforcer>(config_, hold_, io_, reassembly::LinkType::ethernet, &sink_); }

  // A frame of the connection; advances that side's sequence number.
  Frame* seg(bool from_client, uint8_t flags, const std::string& payload = "") {
    const int dir = from_client ? 0 : 1;
    const uint32_t seq = flow_.next[dir], ack = flow_.next[dir ^ 1];
    auto l4 = fuzz::tcp_segment(flow_, from_client, seq, ack, flags, false,
                                reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
    fuzz::advance(flow_, dir, seq, payload.size(), flags);
    frames_.push_back(Frame{fuzz::ethernet(flow_, fuzz::ip_packet(flow_, from_client, l4.data(), l4.size())),
                            static_cast<uint16_t>(from_client ? 0 : 1)});
    return &frames_.back();
  }
  // A copy of an earlier frame (a retransmission).
  Frame* again(const Frame* f) {
    frames_.push_back(*f);
    return &frames_.back();
  }
  reassembly::PacketInfo info(const Frame* f) {
    reassembly::PacketInfo p{};
    EXPECT_EQ(reassembly::decode_packet(f->bytes.data(), f->bytes.size(), p), reassembly::DecodeStatus::ok);
    return p;
  }
  records::MessageContext message(uint64_t txn) {
    records::MessageContext m;
    m.flow.flow_id = FakeIo::kFlow;
    m.flow.ip_version = 4;
    const uint8_t c[4] = {10, 0, 0, flow_.client_host}, s[4] = {10, 0, 1, 1};
    std::memcpy(m.flow.client_ip, c, 4);
    std::memcpy(m.flow.server_ip, s, 4);
    m.flow.client_port = flow_.client_port;
    m.flow.server_port = flow_.server_port;
    m.transaction = txn;
    return m;
  }
  // The RX loop's path for one frame; returns what it does with the frame.
  enum class Fate { taken, transmit, held, freed };
  Fate arrive(Frame* f, bool ends = false, uint64_t txn = 0) {
    const reassembly::PacketInfo p = info(f);
    if (enf_->active() && enf_->before_inspect(p, handle(f), now_)) return Fate::taken;
    enf_->begin_frame();
    io_.by_bytes[f->bytes.data()] = f;
    if (!ends) return Fate::transmit;
    switch (enf_->after_inspect(reassembly::FrameStep{reassembly::NextStep::hold, txn, FakeIo::kFlow}, p, handle(f), now_)) {
      case Disposition::transmit: return Fate::transmit;
      case Disposition::held: return Fate::held;
      case Disposition::free: return Fate::freed;
    }
    return Fate::freed;
  }
  // The record as the enforcer filled it at once (for a held message, what its own action would do).
  records::VerdictRecord decide(uint64_t txn, records::Action a,
                                records::Disposition d = records::Disposition::malicious) {
    records::VerdictRecord v;
    v.action = a;
    v.disposition = d;
    v.transaction = txn;
    taken_.push_back(enf_->decided(message(txn), v));
    return v;
  }
  std::vector<bool> taken_;  // per decide(): the enforcer took the record (writes it when settled)
  // The client's usual dialogue up to the end of DATA: only the last frame matters here.
  Frame* data_end() { return seg(true, kTcpAck | kTcpPsh, "body\r\n.\r\n"); }

  EnforceConfig config_;
  AnomalySink sink_;
  HoldQueue hold_;
  FakeIo io_;
  std::unique_ptr<Enforcer> enf_;
  fuzz::FlowState flow_{4, 9, 40000, 25, {1000, 5000}};
  std::deque<Frame> frames_;
  int64_t now_ = 1'000'000;
};

TEST_F(EnforcerTest, PassReleasesTheHeldSegmentAndWhatQueuedBehindInOrder) {
  Frame* end = data_end();
  EXPECT_EQ(arrive(end, true, 0), Fate::held);
  EXPECT_TRUE(enf_->active());
  Frame* ack = seg(false, kTcpAck);                    // the server
  Frame* quit = seg(true, kTcpAck | kTcpPsh, "QUIT\r\n");  // the client, pipelined
  EXPECT_EQ(arrive(ack), Fate::taken);
  EXPECT_EQ(arrive(quit), Fate::taken);
  EXPECT_EQ(arrive(again(end)), Fate::taken);  // a retransmission of the held data: absorbed
  EXPECT_EQ(io_.discarded.size(), 1u);
  const auto v = decide(0, records::Action::pass, records::Disposition::clean);
  EXPECT_EQ(v.enforcement, records::Enforcement::released);
  EXPECT_EQ(v.reference.view(), "abcdef01-4d-0");
  EXPECT_TRUE(io_.forwarded.empty());  // nothing moves before run()
  enf_->run(now_);
  EXPECT_EQ(io_.forwarded, (std::vector<Frame*>{end, ack, quit}));
  // The frames that waited behind were shown to the reassembler as they left; the head was seen.
  EXPECT_EQ(io_.observed, (std::vector<Frame*>{ack, quit}));
  EXPECT_FALSE(enf_->active());
  EXPECT_EQ(enf_->counters().passed, 1u);
  EXPECT_EQ(enf_->counters().absorbed, 1u);
  EXPECT_EQ(hold_.counters().in_queue, 0u);
}

TEST_F(EnforcerTest, DecidedAsItEndsIsSettledAtTheEndOfTheBurst) {
  Frame* end = data_end();
  const reassembly::PacketInfo p = info(end);
  enf_->begin_frame();
  const auto v = decide(0, records::Action::pass, records::Disposition::clean);  // inside on_packet
  EXPECT_EQ(v.enforcement, records::Enforcement::released);
  EXPECT_EQ(enf_->after_inspect(reassembly::FrameStep{reassembly::NextStep::hold, 0, FakeIo::kFlow}, p, handle(end), now_),
            Disposition::held);
  enf_->run(now_);
  EXPECT_EQ(io_.forwarded, (std::vector<Frame*>{end}));
  EXPECT_FALSE(enf_->active());
}

TEST_F(EnforcerTest, RejectRepliesToTheClientResetsTheServerAndAnswersWhatFollows) {
  Frame* end = data_end();
  const reassembly::PacketInfo held = info(end);
  ASSERT_EQ(arrive(end, true, 0), Fate::held);
  const auto v = decide(0, records::Action::reject);
  EXPECT_EQ(v.enforcement, records::Enforcement::rejected);
  enf_->run(now_);
  EXPECT_EQ(io_.discarded, (std::vector<Frame*>{end}));
  ASSERT_EQ(io_.injected.size(), 2u);
  // The server: RST at the next byte it expects, out of the server-side port.
  EXPECT_EQ(io_.injected_port[0], 1);
  EXPECT_EQ(io_.injected[0].tcp_flags, kTcpRst | kTcpAck);
  EXPECT_EQ(io_.injected[0].tcp_seq, held.tcp_seq);
  EXPECT_EQ(io_.injected[0].dst_port, 25);
  // The client: the reply, where its acknowledgement says the server's bytes continue.
  EXPECT_EQ(io_.injected_port[1], 0);
  EXPECT_EQ(io_.injected[1].tcp_seq, held.tcp_ack);
  EXPECT_EQ(io_.injected[1].tcp_ack, held.tcp_seq + held.payload_len);
  EXPECT_EQ(io_.injected_payload[1], "550 5.7.1 Message rejected: malicious content (reference abcdef01-4d-0)\r\n");
  EXPECT_EQ(enf_->counters().rejected, 1u);
  EXPECT_EQ(enf_->counters().blocked, 1u);
  // Later: the server's frames are dropped, the client's QUIT answered with 221 and a FIN.
  EXPECT_EQ(arrive(seg(false, kTcpAck)), Fate::taken);
  Frame* quit = seg(true, kTcpAck | kTcpPsh, "QUIT\r\n");
  EXPECT_EQ(arrive(quit), Fate::taken);
  ASSERT_EQ(io_.injected.size(), 3u);
  const uint32_t reply_end = held.tcp_ack + static_cast<uint32_t>(io_.injected_payload[1].size());
  EXPECT_EQ(io_.injected_payload[2], "221 2.0.0 Bye\r\n");
  EXPECT_EQ(io_.injected[2].tcp_flags, kTcpAck | kTcpPsh | kTcpFin);
  EXPECT_EQ(io_.injected[2].tcp_seq, reply_end);
  EXPECT_EQ(io_.injected[2].tcp_ack, held.tcp_seq + held.payload_len + 6);
  // The QUIT sent again (the 221 was lost): the same 221 again.
  EXPECT_EQ(arrive(again(quit)), Fate::taken);
  ASSERT_EQ(io_.injected.size(), 4u);
  EXPECT_EQ(io_.injected_payload[3], "221 2.0.0 Bye\r\n");
  EXPECT_EQ(io_.injected[3].tcp_seq, reply_end);
  // The client's FIN: acknowledged.
  EXPECT_EQ(arrive(seg(true, kTcpAck | kTcpFin)), Fate::taken);
  ASSERT_EQ(io_.injected.size(), 5u);
  EXPECT_EQ(io_.injected[4].tcp_flags, kTcpAck);
  EXPECT_EQ(io_.injected[4].tcp_seq, reply_end + 15 + 1);
  EXPECT_EQ(io_.injected[4].tcp_ack, held.tcp_seq + held.payload_len + 6 + 1);
  // None of the client's frames went to the server; nothing was forwarded at all.
  EXPECT_TRUE(io_.forwarded.empty());
  // Both sides closed: forgotten a little later.
  enf_->expire(now_ + 3'000'000);
  EXPECT_FALSE(enf_->active());
}

TEST_F(EnforcerTest, AnyOtherCommandAfterARejectGets421) {
  ASSERT_EQ(arrive(data_end(), true, 0), Fate::held);
  decide(0, records::Action::defer, records::Disposition::pending);
  enf_->run(now_);
  ASSERT_EQ(io_.injected.size(), 2u);
  EXPECT_EQ(io_.injected_payload[1], "451 4.7.1 Message deferred: content under analysis (reference abcdef01-4d-0)\r\n");
  EXPECT_EQ(arrive(seg(true, kTcpAck | kTcpPsh, "MAIL FROM:<x@example.org>\r\n")), Fate::taken);
  ASSERT_EQ(io_.injected.size(), 3u);
  EXPECT_EQ(io_.injected_payload[2], "421 4.7.0 Connection closed by policy\r\n");
  EXPECT_EQ(io_.injected[2].tcp_flags & kTcpFin, kTcpFin);
  EXPECT_EQ(enf_->counters().deferred, 1u);
}

TEST_F(EnforcerTest, AHeldMessageWithoutAVerdictTakesTheDeadlineAction) {
  ASSERT_EQ(arrive(data_end(), true, 0), Fate::held);
  enf_->expire(now_ + kHoldUs - 1);
  EXPECT_TRUE(io_.injected.empty());
  EXPECT_EQ(enf_->next_deadline(), now_ + kHoldUs);
  enf_->expire(now_ + kHoldUs);
  ASSERT_EQ(io_.injected.size(), 2u);
  EXPECT_EQ(io_.injected_payload[1], "451 4.7.1 Message deferred: no verdict in time (reference abcdef01-4d-0)\r\n");
  EXPECT_EQ(enf_->counters().expired, 1u);
  // Its verdict, late: nothing held any more.
  EXPECT_EQ(decide(0, records::Action::pass).enforcement, records::Enforcement::not_held);
  EXPECT_EQ(enf_->counters().not_held, 1u);
}

TEST_F(EnforcerTest, AMessageEndingBehindTheHeadWaitsForItsOwnVerdict) {
  Frame* end1 = data_end();
  ASSERT_EQ(arrive(end1, true, 0), Fate::held);
  Frame* ok = seg(false, kTcpAck | kTcpPsh, "250 2.0.0 Ok\r\n");  // would be the server's reply: behind
  Frame* end2 = seg(true, kTcpAck | kTcpPsh, "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r\n.\r\n");
  end2->ends = true;
  end2->txn = 1;
  Frame* quit = seg(true, kTcpAck | kTcpPsh, "QUIT\r\n");
  EXPECT_EQ(arrive(ok), Fate::taken);
  EXPECT_EQ(arrive(end2), Fate::taken);
  EXPECT_EQ(arrive(quit), Fate::taken);
  decide(0, records::Action::pass, records::Disposition::clean);
  enf_->run(now_);
  // The first message's end and what preceded the second's end left; the second's end is the head.
  EXPECT_EQ(io_.forwarded, (std::vector<Frame*>{end1, ok}));
  EXPECT_EQ(io_.observed, (std::vector<Frame*>{ok, end2}));
  EXPECT_TRUE(enf_->active());
  // Its verdict (decided as the reassembler saw it, or later: here later).
  EXPECT_EQ(decide(1, records::Action::reject).enforcement, records::Enforcement::rejected);
  enf_->run(now_);
  ASSERT_EQ(io_.injected.size(), 3u);  // RST, 550, and the 221 for the QUIT behind it
  const reassembly::PacketInfo h2 = info(end2), okp = info(ok);
  // The reply continues after the server's bytes that reached the client (its 250).
  EXPECT_EQ(io_.injected[1].tcp_seq, okp.tcp_seq + okp.payload_len);
  EXPECT_EQ(io_.injected[1].tcp_ack, h2.tcp_seq + h2.payload_len);
  EXPECT_EQ(io_.injected_payload[2], "221 2.0.0 Bye\r\n");
  EXPECT_EQ(io_.discarded, (std::vector<Frame*>{end2, quit}));
  EXPECT_EQ(enf_->counters().messages_held, 2u);
  EXPECT_EQ(enf_->counters().passed, 1u);
  EXPECT_EQ(enf_->counters().rejected, 1u);
}

TEST_F(EnforcerTest, MessagesEndingInOneSegmentShareTheFateOfTheRejectedOne) {
  // Two messages pipelined into one segment: the second (no attachment) is decided as the segment
  // is read, pass; the first (a malicious file) later, reject. The client gets one 550 and the
  // server never sees either end of data: both verdict events say rejected, with its reference.
  Frame* end = seg(true, kTcpAck | kTcpPsh, "a\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nb\r\n.\r\n");
  const reassembly::PacketInfo p = info(end);
  enf_->begin_frame();
  decide(1, records::Action::pass, records::Disposition::clean);
  EXPECT_EQ(enf_->after_inspect(reassembly::FrameStep{reassembly::NextStep::hold, 1, FakeIo::kFlow, 2}, p, handle(end),
                                now_),
            Disposition::held);
  enf_->run(now_);
  EXPECT_TRUE(io_.forwarded.empty());   // the first message has no verdict yet
  EXPECT_TRUE(sink_.verdicts.empty());  // and the second's fate is not known
  decide(0, records::Action::reject);
  enf_->run(now_);
  EXPECT_EQ(taken_, (std::vector<bool>{true, true}));
  ASSERT_EQ(sink_.verdicts.size(), 2u);
  ASSERT_EQ(io_.injected_payload.size(), 2u);  // RST, 550
  EXPECT_NE(io_.injected_payload[1].find("(reference abcdef01-4d-0)"), std::string::npos) << io_.injected_payload[1];
  for (const auto& v : sink_.verdicts) {
    EXPECT_EQ(v.enforcement, records::Enforcement::rejected) << v.transaction;
    EXPECT_EQ(v.reference.view(), "abcdef01-4d-0") << v.transaction;
  }
  EXPECT_EQ(sink_.verdicts[0].action, records::Action::pass);
  EXPECT_EQ(io_.discarded, (std::vector<Frame*>{end}));
  EXPECT_TRUE(io_.forwarded.empty());
}

TEST_F(EnforcerTest, MoreMessagesInOneSegmentThanAreTrackedAreDeferred) {
  Frame* end = data_end();
  ASSERT_EQ(enf_->after_inspect(reassembly::FrameStep{reassembly::NextStep::hold, 16, FakeIo::kFlow, 17}, info(end),
                                handle(end), now_),
            Disposition::held);
  enf_->run(now_);
  for (uint64_t t = 0; t < 16; ++t) decide(t, records::Action::pass, records::Disposition::clean);
  enf_->run(now_);
  EXPECT_EQ(enf_->counters().pipelined_untracked, 1u);
  ASSERT_EQ(io_.injected_payload.size(), 2u);
  EXPECT_EQ(io_.injected_payload[1].rfind("451 4.7.1 Message deferred: too many messages in one segment", 0), 0u)
      << io_.injected_payload[1];
  EXPECT_TRUE(io_.forwarded.empty());
  ASSERT_EQ(sink_.verdicts.size(), 16u);
  EXPECT_EQ(sink_.verdicts[3].enforcement, records::Enforcement::deferred);
}

TEST_F(EnforcerTest, APassingHeadWritesItsVerdictsReleasedAndANotHeldOneAtOnce) {
  ASSERT_EQ(arrive(data_end(), true, 0), Fate::held);
  enf_->run(now_);  // the end of the burst
  decide(9, records::Action::pass, records::Disposition::clean);  // nothing of it held
  decide(0, records::Action::pass, records::Disposition::clean);
  EXPECT_EQ(taken_, (std::vector<bool>{false, true}));
  EXPECT_TRUE(sink_.verdicts.empty());
  enf_->run(now_);
  ASSERT_EQ(sink_.verdicts.size(), 1u);
  EXPECT_EQ(sink_.verdicts[0].enforcement, records::Enforcement::released);
  EXPECT_EQ(sink_.verdicts[0].reference.view(), "abcdef01-4d-0");
}

TEST_F(EnforcerTest, AFullTableFailsOpenAndCounts) {
  config_.max_flows = 1;
  make();
  ASSERT_EQ(arrive(data_end(), true, 0), Fate::held);
  fuzz::FlowState other{4, 10, 40001, 25, {1, 1}};
  std::swap(flow_, other);
  EXPECT_EQ(arrive(data_end(), true, 0), Fate::transmit);
  EXPECT_EQ(enf_->counters().table_full, 1u);
}

TEST_F(EnforcerTest, AVerdictWithNothingHeldIsReportedNotHeld) {
  EXPECT_EQ(decide(3, records::Action::reject).enforcement, records::Enforcement::not_held);
  EXPECT_FALSE(enf_->active());
  EXPECT_TRUE(io_.injected.empty());
}

TEST_F(EnforcerTest, ANewConnectionOnTheAddressesOfABlockedOneStartsAfresh) {
  ASSERT_EQ(arrive(data_end(), true, 0), Fate::held);
  decide(0, records::Action::reject);
  enf_->run(now_);
  EXPECT_TRUE(enf_->active());
  flow_.next[0] = 900000;
  Frame* syn = seg(true, kTcpSyn);
  EXPECT_EQ(arrive(syn), Fate::transmit);
  EXPECT_FALSE(enf_->active());
}

TEST_F(EnforcerTest, ShutdownSettlesEveryHeldMessageWithTheDeadlineAction) {
  config_.on_deadline = records::Action::pass;
  make();
  Frame* end = data_end();
  ASSERT_EQ(arrive(end, true, 0), Fate::held);
  enf_->release_all(now_);
  EXPECT_EQ(io_.forwarded, (std::vector<Frame*>{end}));
  EXPECT_FALSE(enf_->active());
  EXPECT_EQ(hold_.counters().in_queue, 0u);
}

TEST_F(EnforcerTest, StartTlsMaskRewritesTheEhloReplyInPlace) {
  config_.starttls = StartTlsPolicy::mask;
  make();
  Frame* ehlo = seg(false, kTcpAck | kTcpPsh, "250-mx.example.net\r\n250-STARTTLS\r\n250 8BITMIME\r\n");
  EXPECT_FALSE(enf_->police_starttls(info(ehlo), handle(ehlo), now_));  // still goes on
  const reassembly::PacketInfo p = info(ehlo);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(ehlo->bytes.data() + p.payload_offset), p.payload_len),
            "250-mx.example.net\r\n250-X-NO-TLS\r\n250 8BITMIME\r\n");
  EXPECT_EQ(enf_->counters().starttls_masked, 1u);
  ASSERT_EQ(sink_.anomalies.size(), 1u);
  EXPECT_EQ(sink_.anomalies[0].code, static_cast<uint8_t>(reassembly::SmtpAnomaly::starttls_masked));
  EXPECT_EQ(sink_.anomalies[0].flow.server_port, 25);
  // A client's message content is never rewritten, even with such a line.
  Frame* body = seg(true, kTcpAck | kTcpPsh, "250-STARTTLS\r\n");
  EXPECT_FALSE(enf_->police_starttls(info(body), handle(body), now_));
  EXPECT_EQ(enf_->counters().starttls_masked, 1u);
}

TEST_F(EnforcerTest, StartTlsBlockRefusesTheCommandAndEndsTheSession) {
  config_.starttls = StartTlsPolicy::block;
  make();
  Frame* ehlo = seg(false, kTcpAck | kTcpPsh, "250-mx\r\n250 STARTTLS\r\n");
  EXPECT_FALSE(enf_->police_starttls(info(ehlo), handle(ehlo), now_));  // left as it is
  Frame* cmd = seg(true, kTcpAck | kTcpPsh, "STARTTLS\r\n");
  const reassembly::PacketInfo c = info(cmd);
  EXPECT_TRUE(enf_->police_starttls(c, handle(cmd), now_));
  EXPECT_EQ(io_.discarded, (std::vector<Frame*>{cmd}));
  ASSERT_EQ(io_.injected.size(), 2u);
  EXPECT_EQ(io_.injected[0].tcp_flags, kTcpRst | kTcpAck);
  EXPECT_EQ(io_.injected[0].tcp_seq, c.tcp_seq);
  EXPECT_EQ(io_.injected_payload[1], "454 4.7.0 TLS not available due to local policy\r\n");
  EXPECT_EQ(io_.injected[1].tcp_seq, c.tcp_ack);
  EXPECT_EQ(io_.injected[1].tcp_ack, c.tcp_seq + 10);
  EXPECT_EQ(enf_->counters().starttls_blocked, 1u);
  ASSERT_EQ(sink_.anomalies.size(), 1u);
  EXPECT_EQ(sink_.anomalies[0].code, static_cast<uint8_t>(reassembly::SmtpAnomaly::starttls_blocked));
  // Then as after a reject: QUIT answered by sluiced.
  EXPECT_EQ(arrive(seg(true, kTcpAck | kTcpPsh, "QUIT\r\n")), Fate::taken);
  ASSERT_EQ(io_.injected.size(), 3u);
  EXPECT_EQ(io_.injected_payload[2], "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(io_.forwarded.empty());
}

TEST(EnforceLatency, BucketsAreLogLinearAndCoverEveryValue) {
  for (uint64_t us : {0ull, 1ull, 3ull, 4ull, 5ull, 7ull, 8ull, 100ull, 999ull, 1000ull, 65535ull, 1ull << 23}) {
    const unsigned b = latency_bucket(us);
    EXPECT_LE(latency_bucket_low(b), us) << us;
    EXPECT_GT(latency_bucket_low(b + 1), us) << us;
    if (us >= 4) {
      EXPECT_LT(static_cast<double>(us - latency_bucket_low(b)) / static_cast<double>(us), 0.2) << us;
    }
  }
  EXPECT_EQ(latency_bucket(uint64_t{1} << 40), kLatencyBuckets - 1);
}

TEST_F(EnforcerTest, EverySettledMessageRecordsItsLatency) {
  ASSERT_EQ(arrive(data_end(), true, 0), Fate::held);
  decide(0, records::Action::pass, records::Disposition::clean);
  enf_->run(now_);
  uint64_t n = 0;
  for (uint64_t c : enf_->counters().latency_us) n += c;
  EXPECT_EQ(n, 1u);
  EXPECT_LT(enf_->counters().latency_us[latency_bucket(1'000'000)], 1u);  // well under a second here
}

TEST_F(EnforcerTest, FailingOpenLetsEveryHeldMessageThroughAndHoldsNothingUntilResumed) {
  Frame* end = data_end();
  ASSERT_EQ(arrive(end, true, 0), Fate::held);
  enf_->fail_open(now_);
  EXPECT_EQ(io_.forwarded, (std::vector<Frame*>{end}));
  EXPECT_TRUE(enf_->failing_open());
  EXPECT_EQ(enf_->counters().watchdog_trips, 1u);
  EXPECT_EQ(enf_->counters().watchdog_released, 1u);
  // Meanwhile a message end goes on unheld; its late verdict finds nothing held.
  EXPECT_EQ(arrive(data_end(), true, 1), Fate::transmit);
  EXPECT_EQ(enf_->counters().watchdog_bypassed, 1u);
  enf_->run(now_);  // the end of that burst
  EXPECT_EQ(decide(0, records::Action::reject).enforcement, records::Enforcement::not_held);
  enf_->resume();
  EXPECT_EQ(arrive(data_end(), true, 2), Fate::held);
}

}  // namespace
}  // namespace sluice::dataplane
