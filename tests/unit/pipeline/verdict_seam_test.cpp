// pipeline/verdict_seam: a message's files are looked up (verdict cache first, then the control
// plane over the lcore's look-up lane) and its `file` and `verdict` events wait for the answers:
// answers out of order, never (the deadline decides `budget_exhausted`), stale after the message was
// decided, a full lane (`queue_full`), a malicious archive member, the actions of the policy. The
// test plays the control plane on the lane's other side.
#include "pipeline/verdict_seam.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "control/event_render.h"
#include "pipeline/analysis_groups.h"
#include "pipeline/attachment_handoff.h"
#include "pipeline/lookup_lane.h"
#include "pipeline/message_records.h"
#include "pipeline/verdict_cache.h"
#include "tests/unit/pipeline/archive_builders.h"

#include <openssl/sha.h>

namespace sluice::pipeline {
namespace {

using nlohmann::json;
using records::Reputation;

struct Events final : records::RecordSink {
  std::vector<json> lines;  // rendered, in order
  control::EventRenderer renderer;
  Events() { renderer.set_endpoint_names({"lab"}); }
  void emit(const void* r, std::size_t n) noexcept override { lines.push_back(json::parse(renderer.render(r, n))); }
  std::vector<json> of(const std::string& type) const {
    std::vector<json> v;
    for (const auto& l : lines)
      if (l["event_type"] == type) v.push_back(l);
    return v;
  }
};

struct Listener final : VerdictListener {
  std::vector<std::pair<uint64_t, records::Action>> decided_;  // transaction, action
  bool decided(const records::MessageContext& m, records::VerdictRecord& v) noexcept override {
    decided_.emplace_back(m.transaction, v.action);
    return false;
  }
};

records::MessageContext ctx(uint64_t transaction) {
  records::MessageContext c;
  c.flow.flow_id = 5;
  c.transaction = transaction;
  return c;
}

PartInfo part(const char* name) {
  PartInfo p{};
  p.path = "2";
  p.filename = name;
  p.content_type = "application/octet-stream";
  p.attachment = true;
  return p;
}

std::string sha256_hex(std::string_view data) {
  uint8_t d[32];
  SHA256(reinterpret_cast<const uint8_t*>(data.data()), data.size(), d);
  char hex[65];
  control::hex_lower(d, 32, hex);
  return hex;
}

void sha256_of(std::string_view data, uint8_t (&out)[32]) {
  SHA256(reinterpret_cast<const uint8_t*>(data.data()), data.size(), out);
}

const uint8_t kMessageSha[32] = {9};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct Rig {
  Events out;
  LocalChannel channel{WorkerLimits{}};
  AttachmentHandoff handoff;
  VerdictCache cache{1024};
  LookupLane lane;
  Listener listener;
  VerdictPolicy policy;

  explicit Rig(uint32_t deadline_us, std::size_t lane_slots = 64, bool lookups = true)
      : handoff(HandoffLimits{}, channel, out, 0), lane(lane_slots, lane_slots) {
    channel.set_handler(&handoff);
    handoff.set_reputation({&cache, lookups ? &lane : nullptr, deadline_us});
    handoff.set_listener(&listener);
    handoff.set_policy(&policy);
  }
  // One message with one attachment holding `data`; the local worker answers at once.
  void message(uint64_t transaction, std::string_view data, const char* name = "a.bin") {
    const auto m = handoff.message_begin(ctx(transaction));
    const auto f = handoff.file_begin(m, part(name), ctx(transaction));
    handoff.file_data(f, reinterpret_cast<const uint8_t*>(data.data()), data.size());
    handoff.file_end(f, PartEnd::complete);
    handoff.message_end(m, true, kMessageSha, ctx(transaction));
  }
  // The control plane's side: the requests waiting on the lane.
  std::vector<records::LookupRequest> requests() {
    std::vector<records::LookupRequest> v;
    records::LookupRequest rq;
    while (lane.pop_request(rq)) v.push_back(rq);
    return v;
  }
  void answer(const records::LookupRequest& rq, Reputation rep, const char* threat = "",
              records::LookupError error = records::LookupError::none) {
    records::LookupAnswer a{};
    a.ticket = rq.ticket;
    a.item = rq.item;
    std::memcpy(a.sha256, rq.sha256, 32);
    a.verdict.reputation = rep;
    a.verdict.error = error;
    a.verdict.source = records::kSourceEndpoint0;
    a.verdict.threat_name.set(threat);
    ASSERT_TRUE(lane.push_answer(a));
    handoff.poll();
  }
};

TEST(VerdictSeam, WithoutLookupsEveryMessageIsDecidedAtOnceFromExtraction) {
  Rig r(60'000'000, 64, /*lookups=*/false);
  r.message(0, "abc");
  ASSERT_EQ(r.out.lines.size(), 2u);
  EXPECT_EQ(r.out.lines[0]["event_type"], "file");
  EXPECT_FALSE(r.out.lines[0]["file"].contains("reputation"));
  const json v = r.out.lines[1];
  EXPECT_EQ(v["event_type"], "verdict");
  EXPECT_EQ(v["transaction"], 0);
  EXPECT_EQ(v["flow_id"], 5);
  EXPECT_EQ(v["verdict"]["disposition"], "clean");
  EXPECT_EQ(v["verdict"]["action"], "pass");
  EXPECT_EQ(v["verdict"]["reasons"], json::array());
  EXPECT_EQ(v["verdict"]["files_evaluated"], 1);
  EXPECT_FALSE(v["verdict"].contains("reputation"));
  EXPECT_EQ(r.handoff.pending(), 0u);
  EXPECT_EQ(r.listener.decided_.size(), 1u);
}

TEST(VerdictSeam, ACacheHitDecidesWithoutAsking) {
  Rig r(60'000'000);
  uint8_t sha[32];
  sha256_of("evil", sha);
  records::FileVerdict known;
  known.reputation = Reputation::malicious;
  known.threat_name.set("Test.Eicar");
  r.cache.put(sha, known, now_ms() + 60'000, now_ms());
  r.message(0, "evil");
  EXPECT_TRUE(r.requests().empty());
  ASSERT_EQ(r.out.lines.size(), 2u);
  const json f = r.out.lines[0]["file"];
  EXPECT_EQ(f["reputation"], "malicious");
  EXPECT_EQ(f["threat_name"], "Test.Eicar");
  EXPECT_EQ(f["verdict_source"], "cache");
  const json v = r.out.lines[1]["verdict"];
  EXPECT_EQ(v["disposition"], "malicious");
  EXPECT_EQ(v["action"], "reject");
  ASSERT_EQ(v["files"].size(), 1u);
  EXPECT_EQ(v["files"][0]["sha256"], sha256_hex("evil"));
  EXPECT_EQ(v["files"][0]["filename"], "a.bin");
  EXPECT_EQ(r.handoff.stats().cache_hits, 1u);
  EXPECT_EQ(r.handoff.stats().verdicts_malicious, 1u);
}

TEST(VerdictSeam, EventsWaitForTheAnswersWhichMayComeOutOfOrder) {
  Rig r(60'000'000);
  r.message(0, "first");
  r.message(1, "second");
  auto rq = r.requests();
  ASSERT_EQ(rq.size(), 2u);
  EXPECT_TRUE(r.out.lines.empty());  // held until answered
  EXPECT_EQ(r.handoff.pending(), 2u);
  EXPECT_EQ(r.handoff.stats().awaiting, 2u);
  r.answer(rq[1], Reputation::clean);  // the second first
  ASSERT_EQ(r.out.lines.size(), 2u);
  EXPECT_EQ(r.out.lines[0]["transaction"], 1);
  EXPECT_EQ(r.out.lines[0]["file"]["reputation"], "clean");
  EXPECT_EQ(r.out.lines[0]["file"]["verdict_source"], "lab");
  EXPECT_EQ(r.out.lines[0]["file"]["upload_wanted"], false);
  r.handoff.poll();  // nothing expires within a minute
  EXPECT_EQ(r.out.lines.size(), 2u);
  r.answer(rq[0], Reputation::unknown);
  ASSERT_EQ(r.out.lines.size(), 4u);
  EXPECT_EQ(r.out.lines[2]["file"]["reputation"], "unknown");
  EXPECT_EQ(r.out.lines[3]["verdict"]["disposition"], "clean");  // unknown counts as clean
  EXPECT_EQ(r.out.lines[3]["verdict"]["reputation"], (json{{"malicious", 0}, {"clean", 0}, {"unknown", 1}}));
  EXPECT_EQ(r.listener.decided_, (std::vector<std::pair<uint64_t, records::Action>>{{1, records::Action::pass},
                                                                                    {0, records::Action::pass}}));
  EXPECT_EQ(r.handoff.stats().answers, 2u);
  EXPECT_EQ(r.handoff.pending(), 0u);
}

TEST(VerdictSeam, NoAnswerIsBudgetExhaustedAtTheDeadlineAndALateAnswerIsStale) {
  Rig r(2000);  // 2 ms
  r.policy.lookup_error[static_cast<unsigned>(records::LookupError::budget_exhausted)] = records::Action::defer;
  r.message(0, "slow");
  auto rq = r.requests();
  ASSERT_EQ(rq.size(), 1u);
  r.handoff.poll();
  EXPECT_TRUE(r.out.lines.empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  r.handoff.poll();
  ASSERT_EQ(r.out.lines.size(), 2u);
  EXPECT_EQ(r.out.lines[0]["file"]["lookup_error"], "budget_exhausted");
  EXPECT_FALSE(r.out.lines[0]["file"].contains("reputation"));
  const json v = r.out.lines[1]["verdict"];
  EXPECT_EQ(v["disposition"], "unscannable");
  EXPECT_EQ(v["reasons"], json::array({"budget_exhausted"}));
  EXPECT_EQ(v["action"], "defer");
  EXPECT_EQ(v["files"][0]["lookup_error"], "budget_exhausted");
  EXPECT_EQ(r.handoff.stats().lookups_expired, 1u);
  // The record is reused by the next message: the old ticket must not decide it.
  r.message(1, "next");
  auto rq2 = r.requests();
  r.answer(rq[0], Reputation::malicious);
  EXPECT_EQ(r.handoff.stats().answers_stale, 1u);
  EXPECT_EQ(r.out.lines.size(), 2u);
  r.answer(rq2[0], Reputation::clean);
  EXPECT_EQ(r.out.lines.size(), 4u);
  records::LookupRequest never = rq2[0];
  never.ticket = 12345678;
  r.answer(never, Reputation::clean);
  EXPECT_EQ(r.handoff.stats().answers_stale, 2u);
}

TEST(VerdictSeam, AnAnswerNamingAnotherFileIsStale) {
  Rig r(60'000'000);
  r.message(0, "one");
  auto rq = r.requests();
  ASSERT_EQ(rq.size(), 1u);
  records::LookupRequest wrong = rq[0];
  wrong.sha256[0] ^= 1;  // not the hash that was asked
  r.answer(wrong, Reputation::malicious);
  EXPECT_EQ(r.handoff.stats().answers_stale, 1u);
  EXPECT_TRUE(r.out.lines.empty());
  r.answer(rq[0], Reputation::clean);
  EXPECT_EQ(r.out.lines.size(), 2u);
  r.answer(rq[0], Reputation::malicious);  // a second answer for the same file
  EXPECT_EQ(r.handoff.stats().answers_stale, 2u);
}

TEST(VerdictSeam, AFullLaneIsQueueFullAtOnce) {
  Rig r(60'000'000, /*lane_slots=*/2);
  r.message(0, "a");
  r.message(1, "b");
  r.message(2, "c");  // the lane holds two requests
  EXPECT_EQ(r.out.lines.size(), 2u);
  EXPECT_EQ(r.out.lines[0]["transaction"], 2);
  EXPECT_EQ(r.out.lines[0]["file"]["lookup_error"], "queue_full");
  EXPECT_EQ(r.out.lines[1]["verdict"]["reasons"], json::array({"queue_full"}));
  EXPECT_EQ(r.out.lines[1]["verdict"]["action"], "pass");  // the default action
  EXPECT_EQ(r.handoff.stats().lookups_queue_full, 1u);
}

TEST(VerdictSeam, OneMaliciousArchiveMemberMakesTheMessageMalicious) {
  Rig r(60'000'000);
  const std::string zip = test::written_by_libarchive([](archive* a) { return archive_write_set_format_zip(a); },
                                                "payload.exe", "MZ evil member");
  r.message(0, zip, "invoice.zip");
  auto rq = r.requests();
  ASSERT_EQ(rq.size(), 2u);  // the zip and its member
  for (const auto& q : rq) {
    const bool member = (q.item & 0x80000000u) != 0;
    r.answer(q, member ? Reputation::malicious : Reputation::unknown, member ? "Win.Test.Member" : "");
  }
  ASSERT_EQ(r.out.lines.size(), 3u);
  EXPECT_EQ(r.out.lines[0]["file"]["filename"], "invoice.zip");
  EXPECT_EQ(r.out.lines[0]["file"]["reputation"], "unknown");
  EXPECT_EQ(r.out.lines[1]["file"]["filename"], "payload.exe");
  EXPECT_EQ(r.out.lines[1]["file"]["reputation"], "malicious");
  const json v = r.out.lines[2]["verdict"];
  EXPECT_EQ(v["disposition"], "malicious");
  EXPECT_EQ(v["files_evaluated"], 2);
  ASSERT_EQ(v["files"].size(), 1u);
  EXPECT_EQ(v["files"][0]["filename"], "payload.exe");
  EXPECT_EQ(v["files"][0]["member"], true);
  EXPECT_EQ(v["files"][0]["threat_name"], "Win.Test.Member");
  EXPECT_EQ(v["files"][0]["sha256"], sha256_hex("MZ evil member"));
}

TEST(VerdictSeam, TheRunningPolicyDecidesTheAction) {
  Rig r(60'000'000);
  r.message(0, "x");
  r.answer(r.requests()[0], Reputation::malicious);
  EXPECT_EQ(r.out.lines.back()["verdict"]["action"], "reject");
  VerdictPolicy monitor;
  monitor.malicious = records::Action::monitor;
  r.handoff.set_policy(&monitor);  // a reload's new snapshot
  r.message(1, "x");               // a cache miss again: the test's cache was not written
  r.answer(r.requests()[0], Reputation::malicious);
  EXPECT_EQ(r.out.lines.back()["verdict"]["action"], "monitor");
}

TEST(VerdictSeam, DrainDecidesWhatIsStillWaiting) {
  Rig r(60'000'000);
  r.message(0, "never answered");
  std::atomic<bool> abort{true};  // shutdown: nobody will answer
  r.handoff.drain(abort);
  ASSERT_EQ(r.out.lines.size(), 2u);
  EXPECT_EQ(r.out.lines[0]["file"]["lookup_error"], "budget_exhausted");
  EXPECT_EQ(r.handoff.pending(), 0u);
}

TEST(VerdictSeam, AnAnswerAfterTheFlowEndedStillDecidesTheMessage) {
  // The message record outlives the session slot: another message began before the answer came.
  Rig r(60'000'000);
  r.message(0, "a");
  r.message(7, "b");
  auto rq = r.requests();
  r.answer(rq[0], Reputation::clean);
  ASSERT_EQ(r.out.lines.size(), 2u);
  EXPECT_EQ(r.out.lines[1]["transaction"], 0);
}

// The analysis stage: once every look-up is in, the files the cloud called unknown and asked for
// are offered to the control plane with their bytes (the worker kept them) over the lane's
// analysis ring; the message waits for the answers (what analysis did with each file), then its
// verdict is `pending` while a file is with the service.
struct AnalysisRig {
  Events out;
  HeapSampleBlocks pool{64};
  LocalChannel channel;
  AttachmentHandoff handoff;
  VerdictCache cache{1024};
  LookupLane lane;
  VerdictPolicy policy;

  static WorkerLimits worker_limits() {
    WorkerLimits l;
    l.analysis_groups = default_analysis_groups();
    l.max_sample_bytes = 1 << 20;
    return l;
  }
  explicit AnalysisRig(uint32_t analysis_deadline_us = 60'000'000, std::size_t analysis_slots = 64)
      : channel(worker_limits(), 64, &pool), handoff(HandoffLimits{}, channel, out, 0), lane(64, 64, analysis_slots) {
    channel.set_handler(&handoff);
    handoff.set_reputation({&cache, &lane, 60'000'000, true, analysis_deadline_us});
    handoff.set_policy(&policy);
  }
  void message(uint64_t transaction, const std::vector<std::pair<std::string, std::string>>& files) {
    const auto m = handoff.message_begin(ctx(transaction));
    for (const auto& [name, data] : files) {
      const auto f = handoff.file_begin(m, part(name.c_str()), ctx(transaction));
      handoff.file_data(f, reinterpret_cast<const uint8_t*>(data.data()), data.size());
      handoff.file_end(f, PartEnd::complete);
    }
    handoff.message_end(m, true, kMessageSha, ctx(transaction));
  }
  // Answers every waiting look-up: `unknown` and asked for, unless `rep` says otherwise.
  void answer_lookups(Reputation rep = Reputation::unknown, bool upload_wanted = true) {
    records::LookupRequest rq;
    while (lane.pop_request(rq)) {
      records::LookupAnswer a{};
      a.ticket = rq.ticket;
      a.item = rq.item;
      std::memcpy(a.sha256, rq.sha256, 32);
      a.verdict.reputation = rep;
      a.verdict.upload_wanted = upload_wanted;
      a.verdict.source = records::kSourceEndpoint0;
      ASSERT_TRUE(lane.push_answer(a));
    }
    handoff.poll();
  }
  // The candidates offered; their sample chains are taken out (their bytes returned) and given back.
  std::vector<std::pair<AnalysisRequest, std::string>> candidates() {
    std::vector<std::pair<AnalysisRequest, std::string>> v;
    AnalysisRequest rq;
    while (lane.pop_analysis(rq)) {
      v.emplace_back(rq, sample_bytes(rq.sample));
      release_sample(rq.sample);
      v.back().first.sample = nullptr;
    }
    return v;
  }
  void answer(const AnalysisRequest& rq, records::AnalysisStatus status,
              records::UploadCriterion criterion = records::UploadCriterion::none,
              Reputation rep = Reputation::none) {
    records::LookupAnswer a{};
    a.ticket = rq.ticket;
    a.item = rq.item;
    a.analysis = true;
    std::memcpy(a.sha256, rq.sha256, 32);
    a.verdict.analysis = status;
    a.verdict.criterion = criterion;
    a.verdict.reputation = rep;
    if (rep == Reputation::malicious) a.verdict.threat_name.set("Sandbox.Macro.Dropper");
    ASSERT_TRUE(lane.push_answer(a));
    handoff.poll();
  }
};

std::string pdf_file(std::size_t n, char fill) { return "%PDF-1.7\n" + std::string(n, fill) + "\n%%EOF\n"; }

TEST(AnalysisStage, AnUnknownCandidateIsOfferedWithItsExactBytesAndTheMessageIsPending) {
  AnalysisRig r;
  const std::string doc = pdf_file(150'000, 'x');  // three sample blocks
  r.message(3, {{"invoice.pdf", doc}});
  r.answer_lookups();
  EXPECT_TRUE(r.out.lines.empty());  // waits for the analysis decision
  auto c = r.candidates();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].second, doc);
  EXPECT_EQ(c[0].first.size, doc.size());
  EXPECT_EQ(c[0].first.filename.view(), "invoice.pdf");
  EXPECT_EQ(c[0].first.transaction, 3u);
  EXPECT_EQ(c[0].first.flow.flow_id, 5u);
  EXPECT_FALSE(c[0].first.member);
  EXPECT_EQ(static_cast<FileType>(c[0].first.file_type), FileType::pdf);
  uint8_t sha[32];
  sha256_of(doc, sha);
  EXPECT_EQ(0, std::memcmp(c[0].first.sha256, sha, 32));
  r.answer(c[0].first, records::AnalysisStatus::submitted);
  ASSERT_EQ(r.out.lines.size(), 2u);
  const json f = r.out.lines[0]["file"];
  EXPECT_EQ(f["reputation"], "unknown");
  EXPECT_EQ(f["analysis"], "submitted");
  EXPECT_EQ(f["upload"], true);
  EXPECT_FALSE(f.contains("upload_criterion"));
  const json v = r.out.lines[1]["verdict"];
  EXPECT_EQ(v["disposition"], "pending");
  EXPECT_EQ(v["action"], "defer");
  EXPECT_EQ(v["pending"], 1);
  ASSERT_EQ(v["files"].size(), 1u);
  EXPECT_EQ(v["files"][0]["analysis"], "submitted");
  const auto st = r.handoff.stats();
  EXPECT_EQ(st.verdicts_pending, 1u);
  EXPECT_EQ(st.analysis_asked, 1u);
  EXPECT_EQ(st.analysis_answers, 1u);
  EXPECT_EQ(r.pool.available(), 64u);
}

TEST(AnalysisStage, WhatIsNotACandidateIsNeverOffered) {
  AnalysisRig r;
  // A PDF the cloud knows as clean, a PDF it does not want, plain text it wants (no group takes text).
  r.message(0, {{"a.pdf", pdf_file(1000, 'a')}});
  r.answer_lookups(Reputation::clean, false);
  r.message(1, {{"b.pdf", pdf_file(1000, 'b')}});
  r.answer_lookups(Reputation::unknown, false);
  r.message(2, {{"notes.txt", std::string(2000, 't')}});
  r.answer_lookups(Reputation::unknown, true);
  EXPECT_TRUE(r.candidates().empty());
  ASSERT_EQ(r.out.lines.size(), 6u);
  for (int i : {0, 2}) {  // every file says what analysis did with it
    EXPECT_EQ(r.out.lines[i]["file"]["analysis"], "not_sent") << i;
    EXPECT_EQ(r.out.lines[i]["file"]["upload"], false) << i;
    EXPECT_EQ(r.out.lines[i]["file"]["upload_criterion"], "not_wanted") << i;
  }
  EXPECT_EQ(r.out.lines[4]["file"]["analysis"], "not_sent");
  EXPECT_EQ(r.out.lines[4]["file"]["upload"], false);
  EXPECT_EQ(r.out.lines[4]["file"]["upload_criterion"], "type");
  for (int i : {1, 3, 5}) EXPECT_EQ(r.out.lines[i]["verdict"]["disposition"], "clean") << i;
  EXPECT_EQ(r.pool.available(), 64u);  // every kept sample given back
}

TEST(AnalysisStage, AFullAnalysisRingIsNotSentQueueFullAndTheSampleGoesBack) {
  AnalysisRig r(60'000'000, /*analysis_slots=*/2);  // the ring's smallest size
  r.message(0, {{"a.pdf", pdf_file(1000, 'a')}, {"b.pdf", pdf_file(1000, 'b')}});
  r.answer_lookups();
  r.message(1, {{"c.pdf", pdf_file(1000, 'c')}});
  r.answer_lookups();
  ASSERT_EQ(r.out.lines.size(), 2u);  // the second message, decided at once
  EXPECT_EQ(r.out.lines[0]["transaction"], 1);
  EXPECT_EQ(r.out.lines[0]["file"]["analysis"], "not_sent");
  EXPECT_EQ(r.out.lines[0]["file"]["upload_criterion"], "queue_full");
  EXPECT_EQ(r.out.lines[1]["verdict"]["disposition"], "clean");
  EXPECT_EQ(r.handoff.stats().analysis_queue_full, 1u);
  auto c = r.candidates();
  ASSERT_EQ(c.size(), 2u);
  for (const auto& [rq, bytes] : c) r.answer(rq, records::AnalysisStatus::not_sent, records::UploadCriterion::not_dynamic);
  ASSERT_EQ(r.out.lines.size(), 5u);
  EXPECT_EQ(r.out.lines[2]["file"]["upload_criterion"], "not_dynamic");
  EXPECT_EQ(r.out.lines[4]["verdict"]["disposition"], "clean");
  EXPECT_EQ(r.pool.available(), 64u);
}

TEST(AnalysisStage, NoDecisionByTheDeadlineIsNotSentTimeoutAndALateAnswerIsStale) {
  AnalysisRig r(2000);  // 2 ms
  r.message(0, {{"a.pdf", pdf_file(1000, 'a')}});
  r.answer_lookups();
  auto c = r.candidates();
  ASSERT_EQ(c.size(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  r.handoff.poll();
  ASSERT_EQ(r.out.lines.size(), 2u);
  EXPECT_EQ(r.out.lines[0]["file"]["analysis"], "not_sent");
  EXPECT_EQ(r.out.lines[0]["file"]["upload_criterion"], "timeout");
  EXPECT_EQ(r.out.lines[1]["verdict"]["disposition"], "clean");
  EXPECT_EQ(r.handoff.stats().analysis_expired, 1u);
  r.answer(c[0].first, records::AnalysisStatus::submitted);
  EXPECT_EQ(r.handoff.stats().answers_stale, 1u);
  EXPECT_EQ(r.out.lines.size(), 2u);
}

TEST(AnalysisStage, AFileAnalysedBeforeBringsItsResultAndMaliciousOutranksPending) {
  AnalysisRig r;
  const std::string known = pdf_file(1000, 'k'), fresh = pdf_file(1000, 'f');
  r.message(0, {{"known.pdf", known}, {"fresh.pdf", fresh}});
  r.answer_lookups();
  auto c = r.candidates();
  ASSERT_EQ(c.size(), 2u);
  r.answer(c[1].first, records::AnalysisStatus::waiting);
  EXPECT_TRUE(r.out.lines.empty());
  r.answer(c[0].first, records::AnalysisStatus::analysed, records::UploadCriterion::none, Reputation::malicious);
  ASSERT_EQ(r.out.lines.size(), 3u);
  EXPECT_EQ(r.out.lines[0]["file"]["reputation"], "malicious");
  EXPECT_EQ(r.out.lines[0]["file"]["threat_name"], "Sandbox.Macro.Dropper");
  EXPECT_EQ(r.out.lines[0]["file"]["analysis"], "analysed");
  EXPECT_EQ(r.out.lines[1]["file"]["analysis"], "waiting");
  const json v = r.out.lines[2]["verdict"];
  EXPECT_EQ(v["disposition"], "malicious");
  EXPECT_EQ(v["action"], "reject");
  EXPECT_EQ(v["pending"], 1);
  ASSERT_EQ(v["files"].size(), 1u);
  EXPECT_EQ(v["files"][0]["filename"], "known.pdf");
}

TEST(AnalysisStage, ArchiveMembersAreCandidatesOfTheirOwn) {
  AnalysisRig r;
  const std::string inner = pdf_file(3000, 'm');
  const std::string zip = test::written_by_libarchive([](archive* a) { return archive_write_set_format_zip(a); },
                                                      "inner.pdf", inner);
  r.message(0, {{"bundle.zip", zip}});
  r.answer_lookups();
  auto c = r.candidates();
  ASSERT_EQ(c.size(), 2u);  // the zip (archives are a group) and its member
  int members = 0;
  for (const auto& [rq, bytes] : c) {
    if (rq.member) {
      ++members;
      EXPECT_EQ(bytes, inner);
      EXPECT_EQ(rq.filename.view(), "inner.pdf");
    } else {
      EXPECT_EQ(bytes, zip);
    }
  }
  EXPECT_EQ(members, 1);
  for (const auto& [rq, bytes] : c)
    r.answer(rq, rq.member ? records::AnalysisStatus::submitted : records::AnalysisStatus::not_sent,
             rq.member ? records::UploadCriterion::none : records::UploadCriterion::not_dynamic);
  ASSERT_EQ(r.out.lines.size(), 3u);
  EXPECT_EQ(r.out.lines[2]["verdict"]["disposition"], "pending");
  EXPECT_EQ(r.out.lines[2]["verdict"]["files"][0]["member"], true);
}

TEST(AnalysisStage, ShutdownDecidesMessagesWaitingForAnalysis) {
  AnalysisRig r;
  r.message(0, {{"a.pdf", pdf_file(1000, 'a')}});
  r.answer_lookups();
  std::atomic<bool> abort{true};
  r.handoff.drain(abort);
  ASSERT_EQ(r.out.lines.size(), 2u);
  EXPECT_EQ(r.out.lines[0]["file"]["upload_criterion"], "timeout");
  EXPECT_EQ(r.handoff.pending(), 0u);
}

TEST(DeadlineQueue, StaleEntriesBehindALiveHeadNeverOverflowIt) {
  DeadlineQueue q(3);
  std::vector<uint64_t> live{1};
  auto is_live = [&](uint64_t t) { return std::find(live.begin(), live.end(), t) != live.end(); };
  q.push(1, is_live);
  for (uint64_t t = 2; t < 100; ++t) {  // each answered before the next: stale at once
    live.push_back(t);
    q.push(t, is_live);
    live.pop_back();
  }
  EXPECT_GT(q.compactions(), 0u);
  EXPECT_EQ(q.front(), 1u);  // the live head kept its place
  q.pop();
  EXPECT_FALSE(q.empty());
}

}  // namespace
}  // namespace sluice::pipeline
