// pipeline/verdict_seam: a message's events wait for its verdict, with a fake responder that
// answers late, out of order, never (the deadline decides), or after the message's flow ended.
#include "pipeline/verdict_seam.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

#include "control/event_render.h"
#include "pipeline/attachment_handoff.h"

namespace sluice::pipeline {
namespace {

struct Lines final : records::RecordSink {
  std::vector<std::string> files;  // file events, rendered, in order
  control::EventRenderer renderer;
  void emit(const void* r, std::size_t n) noexcept override { files.emplace_back(renderer.render(r, n)); }
};

struct FakeResponder final : VerdictResponder {
  bool accept = true;
  std::vector<std::pair<uint64_t, uint32_t>> asked;  // ticket, transaction
  std::vector<std::pair<uint32_t, MessageDecision>> decisions;  // transaction, decision
  bool ask(uint64_t ticket, const records::MessageContext& m, uint32_t) noexcept override {
    if (!accept) return false;
    asked.emplace_back(ticket, m.transaction);
    return true;
  }
  void decided(const records::MessageContext& m, MessageDecision d) noexcept override {
    decisions.emplace_back(m.transaction, d);
  }
};

records::MessageContext ctx(uint32_t transaction) {
  records::MessageContext c;
  c.flow.flow_id = 5;
  c.transaction = transaction;
  return c;
}

PartInfo part() {
  PartInfo p{};
  p.path = "2";
  p.filename = "a.bin";
  p.content_type = "application/octet-stream";
  p.attachment = true;
  return p;
}

const uint8_t kSha[32] = {9};

struct Rig {
  Lines out;
  LocalChannel channel{WorkerLimits{}};
  AttachmentHandoff handoff{HandoffLimits{}, channel, out, 0};
  FakeResponder responder;
  explicit Rig(uint32_t deadline_us) {
    channel.set_handler(&handoff);
    handoff.set_responder(&responder, deadline_us);
  }
  // One message with one attachment; the local worker answers at once.
  void message(uint32_t transaction) {
    const auto m = handoff.message_begin(ctx(transaction));
    const auto f = handoff.file_begin(m, part(), ctx(transaction));
    const uint8_t data[3] = {'a', 'b', 'c'};
    handoff.file_data(f, data, 3);
    handoff.file_end(f, PartEnd::complete);
    handoff.message_end(m, true, kSha, ctx(transaction));
  }
};

TEST(VerdictSeam, WithoutResponderEveryMessageIsWrittenAtOnce) {
  Lines out;
  LocalChannel channel{WorkerLimits{}};
  AttachmentHandoff h{HandoffLimits{}, channel, out, 0};
  channel.set_handler(&h);
  const auto m = h.message_begin(ctx(0));
  const auto f = h.file_begin(m, part(), ctx(0));
  h.file_end(f, PartEnd::complete);
  h.message_end(m, true, kSha, ctx(0));
  EXPECT_EQ(out.files.size(), 1u);
  EXPECT_EQ(h.pending(), 0u);
}

TEST(VerdictSeam, EventsWaitForTheAnswerAndAnswersMayComeOutOfOrder) {
  Rig r(60 * 1000 * 1000);
  r.message(0);
  r.message(1);
  ASSERT_EQ(r.responder.asked.size(), 2u);
  EXPECT_TRUE(r.out.files.empty());  // held until decided
  EXPECT_EQ(r.handoff.pending(), 2u);
  r.handoff.on_verdict(r.responder.asked[1].first, MessageDecision::reject);  // the second first
  ASSERT_EQ(r.out.files.size(), 1u);
  EXPECT_NE(r.out.files[0].find("\"transaction\":1"), std::string::npos);
  r.handoff.poll();  // nothing expires within a minute
  EXPECT_EQ(r.out.files.size(), 1u);
  r.handoff.on_verdict(r.responder.asked[0].first, MessageDecision::pass);
  ASSERT_EQ(r.out.files.size(), 2u);
  EXPECT_EQ(r.responder.decisions, (std::vector<std::pair<uint32_t, MessageDecision>>{
                                       {1, MessageDecision::reject}, {0, MessageDecision::pass}}));
  EXPECT_EQ(r.handoff.stats().verdicts_answered, 2u);
  EXPECT_EQ(r.handoff.pending(), 0u);
}

TEST(VerdictSeam, NoAnswerIsDecidedByTheDeadlineAndALateAnswerIsStale) {
  Rig r(2000);  // 2 ms
  r.message(0);
  ASSERT_EQ(r.responder.asked.size(), 1u);
  r.handoff.poll();
  EXPECT_TRUE(r.out.files.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  r.handoff.poll();
  ASSERT_EQ(r.out.files.size(), 1u);
  EXPECT_EQ(r.responder.decisions.back().second, MessageDecision::timeout);
  EXPECT_EQ(r.handoff.stats().verdicts_timeout, 1u);
  // The record is reused by the next message: the old ticket must not decide it.
  r.message(1);
  r.handoff.on_verdict(r.responder.asked[0].first, MessageDecision::reject);
  EXPECT_EQ(r.handoff.stats().verdicts_stale, 1u);
  EXPECT_EQ(r.out.files.size(), 1u);
  r.handoff.on_verdict(r.responder.asked[1].first, MessageDecision::pass);
  EXPECT_EQ(r.out.files.size(), 2u);
  r.handoff.on_verdict(12345678, MessageDecision::pass);  // never issued
  EXPECT_EQ(r.handoff.stats().verdicts_stale, 2u);
}

TEST(VerdictSeam, AnswerAfterTheFlowEndedStillDecidesTheMessage) {
  // The message record outlives the session slot: the reassembler has ended the flow and reused
  // the slot for another message (transaction 7 of another flow) before the answer comes.
  Rig r(60 * 1000 * 1000);
  r.message(0);
  r.message(7);
  r.handoff.on_verdict(r.responder.asked[0].first, MessageDecision::defer);
  ASSERT_EQ(r.out.files.size(), 1u);
  EXPECT_NE(r.out.files[0].find("\"transaction\":0"), std::string::npos);
  EXPECT_EQ(r.responder.decisions[0], (std::pair<uint32_t, MessageDecision>{0, MessageDecision::defer}));
}

TEST(VerdictSeam, AResponderThatCannotTakeTheQuestionDecidesAtOnce) {
  Rig r(60 * 1000 * 1000);
  r.responder.accept = false;
  r.message(0);
  EXPECT_EQ(r.out.files.size(), 1u);
  EXPECT_EQ(r.responder.decisions.back().second, MessageDecision::unasked);
  EXPECT_EQ(r.handoff.stats().verdicts_unasked, 1u);
}

TEST(VerdictSeam, DrainDecidesWhatIsStillWaiting) {
  Rig r(60 * 1000 * 1000);
  r.message(0);
  std::atomic<bool> abort{true};  // shutdown: nobody will answer
  r.handoff.drain(abort);
  EXPECT_EQ(r.out.files.size(), 1u);
  EXPECT_EQ(r.responder.decisions.back().second, MessageDecision::timeout);
  EXPECT_EQ(r.handoff.pending(), 0u);
}

}  // namespace
}  // namespace sluice::pipeline
