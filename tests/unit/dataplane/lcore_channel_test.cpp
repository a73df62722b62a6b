#include "dataplane/lcore_channel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <thread>
#include <vector>

using namespace sluice::dataplane;
using namespace std::chrono_literals;

namespace {

using Clock = LcoreChannels::Clock;

// Deadlines for calls that must succeed: far beyond any scheduling delay on a loaded machine.
Clock::time_point generous() { return Clock::now() + 30s; }

Request ping(uint64_t token) { return make_request(RequestType::ping, Ping{token}); }

// Answers pings with token * 3 + lcore (so the answer proves which lcore handled which request),
// message verdicts with ok for a known flow (not_found otherwise); leaves other types unknown.
struct Responder {
  uint64_t lcore = 0;
  void operator()(const Request& rq, Response& rs) noexcept {
    switch (rq.type) {
      case RequestType::ping:
        rs.set(Ping{rq.as<Ping>().token * 3 + lcore});
        rs.status = ResponseStatus::ok;
        break;
      case RequestType::message_verdict:
        rs.status = rq.as<MessageVerdict>().flow_id == 42 ? ResponseStatus::ok : ResponseStatus::not_found;
        break;
      default:
        break;
    }
  }
};

// An lcore stand-in: a thread polling its port between (empty) bursts until stopped.
template <typename Handler>
class LcoreThread {
 public:
  LcoreThread(LcorePort& port, Handler h, bool polling = true) : port_(port), handler_(std::move(h)), polling_(polling) {
    thread_ = std::thread([this] { run(); });
  }
  ~LcoreThread() { stop(); }
  void start_polling() { polling_.store(true); }
  void stop() {
    quit_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    while (!quit_.load()) {
      if (!polling_.load() || port_.poll(handler_, 32) == 0) std::this_thread::yield();
    }
  }
  LcorePort& port_;
  Handler handler_;
  std::atomic<bool> polling_;
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

}  // namespace

TEST(LcoreChannel, RecordsAreTwoCacheLines) {
  EXPECT_EQ(sizeof(Request), 128u);
  EXPECT_EQ(sizeof(Response), 128u);
  SpscRing<Request> r(5);
  EXPECT_EQ(r.capacity(), 8u);
}

TEST(LcoreChannel, RequestToOneLcoreAndItsResponse) {
  LcoreChannels ch(2, 8, 8);
  Request rq = ping(7);
  const auto id = ch.send(1, rq);
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(rq.id, *id);
  EXPECT_EQ(ch.counters().requests_sent, 1u);

  Responder on0{0}, on1{1};
  EXPECT_EQ(ch.port(0).poll(on0, 32), 0u);
  EXPECT_EQ(ch.port(1).poll(on1, 32), 1u);

  std::vector<std::pair<unsigned, Response>> got;
  EXPECT_EQ(ch.poll([&](unsigned lcore, const Response& rs) { got.emplace_back(lcore, rs); }), 1u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, 1u);
  EXPECT_EQ(got[0].second.id, *id);
  EXPECT_EQ(got[0].second.type, RequestType::ping);
  EXPECT_EQ(got[0].second.status, ResponseStatus::ok);
  EXPECT_EQ(got[0].second.as<Ping>().token, 7u * 3 + 1);
  EXPECT_EQ(ch.counters().responses, 1u);
  EXPECT_EQ(ch.outstanding(), 0u);
  EXPECT_EQ(ch.poll([](unsigned, const Response&) {}), 0u);
}

TEST(LcoreChannel, MessageVerdictPayloadAndStatuses) {
  LcoreChannels ch(1, 8, 8);
  Request known = make_request(RequestType::message_verdict, MessageVerdict{42, 3, 17, 2});
  Request unknown = make_request(RequestType::message_verdict, MessageVerdict{43, 3, 17, 2});
  Request other = make_request(RequestType::cache_update, CacheUpdate{{1, 2, 3}, 1});
  ASSERT_TRUE(ch.send(0, known) && ch.send(0, unknown) && ch.send(0, other));
  Responder h;
  EXPECT_EQ(ch.port(0).poll(h, 32), 3u);
  std::vector<Response> got;
  ch.poll([&](unsigned, const Response& rs) { got.push_back(rs); });
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].status, ResponseStatus::ok);
  const MessageVerdict v = got[0].as<MessageVerdict>();  // the payload comes back as it went
  EXPECT_EQ(v.flow_id, 42u);
  EXPECT_EQ(v.transaction, 3u);
  EXPECT_EQ(v.message, 17u);
  EXPECT_EQ(v.verdict, 2u);
  EXPECT_EQ(got[1].status, ResponseStatus::not_found);
  EXPECT_EQ(got[2].status, ResponseStatus::unknown_type);  // the handler did not know it
  EXPECT_EQ(got[2].type, RequestType::cache_update);
}

TEST(LcoreChannel, RequestToAllLcoresEveryResponseMatched) {
  LcoreChannels ch(3, 16, 16);
  {
    LcoreThread t0(ch.port(0), Responder{0});
    LcoreThread t1(ch.port(1), Responder{1});
    LcoreThread t2(ch.port(2), Responder{2});
    for (uint64_t round = 1; round <= 200; ++round) {
      const auto results = ch.call_all(ping(round), generous());
      ASSERT_EQ(results.size(), 3u);
      std::set<uint64_t> ids;
      for (unsigned k = 0; k < 3; ++k) {
        ASSERT_EQ(results[k].status, CallStatus::ok) << "lcore " << k;
        EXPECT_EQ(results[k].response.status, ResponseStatus::ok);
        EXPECT_EQ(results[k].response.as<Ping>().token, round * 3 + k);
        ids.insert(results[k].response.id);
      }
      EXPECT_EQ(ids.size(), 3u);  // one id per lcore
    }

    // The same through broadcast and poll.
    Request rq = ping(1000);
    const auto ids = ch.broadcast(rq);
    ASSERT_EQ(ids.size(), 3u);
    std::vector<bool> seen(3, false);
    const auto deadline = generous();
    for (unsigned n = 0; n < 3 && Clock::now() < deadline;) {
      n += ch.poll([&](unsigned lcore, const Response& rs) {
        ASSERT_TRUE(ids[lcore].has_value());
        EXPECT_EQ(rs.id, *ids[lcore]);
        EXPECT_EQ(rs.as<Ping>().token, 1000u * 3 + lcore);
        EXPECT_FALSE(seen[lcore]);
        seen[lcore] = true;
      });
      std::this_thread::yield();
    }
    EXPECT_EQ(seen, std::vector<bool>(3, true));
  }
  EXPECT_EQ(ch.counters().requests_sent, 603u);
  EXPECT_EQ(ch.counters().responses, 603u);
  EXPECT_EQ(ch.counters().timeouts + ch.counters().late_responses + ch.counters().unmatched, 0u);
  EXPECT_EQ(ch.outstanding(), 0u);
}

TEST(LcoreChannel, FullRequestRingIsReportedAsRingFull) {
  LcoreChannels ch(2, 4, 4);
  for (uint64_t i = 0; i < 4; ++i) {
    Request rq = ping(i);
    ASSERT_TRUE(ch.send(1, rq).has_value());
  }
  Request rq = ping(9);
  EXPECT_FALSE(ch.send(1, rq).has_value());
  EXPECT_EQ(ch.counters().ring_full, 1u);

  const auto ids = ch.broadcast(rq);  // lcore 0 has room, lcore 1 not
  EXPECT_TRUE(ids[0].has_value());
  EXPECT_FALSE(ids[1].has_value());
  EXPECT_EQ(ch.counters().ring_full, 2u);

  // call_all: lcore 1 is refused at once; nobody polls lcore 0, so it times out.
  const auto results = ch.call_all(ping(5), Clock::now() + 10ms);
  EXPECT_EQ(results[1].status, CallStatus::ring_full);
  EXPECT_EQ(results[0].status, CallStatus::timeout);
  EXPECT_EQ(ch.call(1, ping(6), generous()).status, CallStatus::ring_full);  // returns at once
  EXPECT_EQ(ch.counters().ring_full, 4u);
  EXPECT_EQ(ch.counters().requests_sent, 6u);
}

TEST(LcoreChannel, FullResponseRingDeliversLaterInOrder) {
  LcoreChannels ch(1, 16, 4);
  std::vector<uint64_t> sent;
  for (uint64_t i = 0; i < 10; ++i) {
    Request rq = ping(i);
    sent.push_back(*ch.send(0, rq));
  }
  Responder h;
  LcorePort& port = ch.port(0);
  EXPECT_EQ(port.poll(h, 32), 5u);  // 4 fit, the 5th waits
  EXPECT_TRUE(port.response_waiting());
  EXPECT_EQ(port.poll(h, 32), 0u);  // still no room: takes nothing more
  EXPECT_EQ(port.counters().response_ring_full, 2u);

  std::vector<uint64_t> got;
  std::vector<uint64_t> tokens;
  auto collect = [&](unsigned, const Response& rs) {
    got.push_back(rs.id);
    tokens.push_back(rs.as<Ping>().token);
  };
  EXPECT_EQ(ch.poll(collect), 4u);
  for (int round = 0; round < 10 && got.size() < sent.size(); ++round) {
    port.poll(h, 32);
    ch.poll(collect);
  }
  EXPECT_EQ(got, sent);
  for (uint64_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(tokens[i], i * 3);
  EXPECT_FALSE(port.response_waiting());
  EXPECT_EQ(port.counters().requests, 10u);
  EXPECT_EQ(port.counters().responses, 10u);
}

TEST(LcoreChannel, StuckLcoreTimesOutAndItsLateResponseIsDropped) {
  LcoreChannels ch(2, 8, 8);
  LcoreThread live(ch.port(0), Responder{0});
  LcoreThread stuck(ch.port(1), Responder{1}, /*polling=*/false);

  EXPECT_EQ(ch.call(0, ping(1), generous()).status, CallStatus::ok);
  const auto results = ch.call_all(ping(2), Clock::now() + 100ms);
  EXPECT_EQ(results[1].status, CallStatus::timeout);
  // Lcore 0 polls, so it normally answers in time; on a badly overloaded machine it may not,
  // and then its answer is late too. Both are correct: count it in.
  const uint64_t late0 = results[0].status == CallStatus::ok ? 0 : 1;
  EXPECT_EQ(ch.counters().timeouts, 1 + late0);
  EXPECT_EQ(ch.counters().late_responses, 0u);
  EXPECT_EQ(ch.outstanding(), 1 + late0);  // still known, to recognise the answer when it comes

  stuck.start_polling();
  const CallResult r = ch.call(1, ping(3), generous());
  ASSERT_EQ(r.status, CallStatus::ok);
  EXPECT_EQ(r.response.as<Ping>().token, 3u * 3 + 1);  // not the answer to ping(2)
  // The ring is FIFO: the late answer to ping(2) was taken before the answer to ping(3).
  const auto deadline = generous();
  while (ch.counters().late_responses < 1 + late0 && Clock::now() < deadline) {
    ch.poll([](unsigned, const Response&) { ADD_FAILURE() << "a late response reached poll()"; });
    std::this_thread::yield();
  }
  EXPECT_EQ(ch.counters().late_responses, 1 + late0);
  EXPECT_EQ(ch.poll([](unsigned, const Response&) { ADD_FAILURE() << "a late response reached poll()"; }), 0u);
  EXPECT_EQ(ch.outstanding(), 0u);
  EXPECT_EQ(ch.counters().unmatched, 0u);
}

namespace {

std::atomic<int> g_destroyed{0};
std::atomic<std::thread::id> g_destroyed_on{};

struct Snapshot {
  explicit Snapshot(uint64_t v) : version(v) {}
  uint64_t version;
  ~Snapshot() {
    g_destroyed_on.store(std::this_thread::get_id());
    ++g_destroyed;
  }
};

// Swaps snapshots in; answers pings with the version in use (0: none yet).
struct SnapshotHolder {
  std::shared_ptr<const Snapshot> current;
  void operator()(const Request& rq, Response& rs) noexcept {
    if (rq.type == RequestType::config_snapshot) {
      take_snapshot(rq, rs, current);
    } else if (rq.type == RequestType::ping) {
      rs.set(Ping{current ? current->version : 0});
      rs.status = ResponseStatus::ok;
    }
  }
};

}  // namespace

TEST(LcoreChannel, ConfigSnapshotSwappedOnLcoresOldOneReleasedOnControlThread) {
  g_destroyed = 0;
  LcoreChannels ch(3, 8, 8);
  {
    LcoreThread t0(ch.port(0), SnapshotHolder{});
    LcoreThread t1(ch.port(1), SnapshotHolder{});
    LcoreThread t2(ch.port(2), SnapshotHolder{});

    auto v1 = std::make_shared<const Snapshot>(1);
    for (const auto& r : ch.call_all(snapshot_request(v1), generous())) {
      ASSERT_EQ(r.status, CallStatus::ok);
      EXPECT_EQ(r.response.status, ResponseStatus::ok);
      EXPECT_EQ(r.response.as<SnapshotPayload>().box, nullptr);  // the old (empty) one, deleted
    }
    EXPECT_EQ(v1.use_count(), 4);  // here and on each lcore
    for (const auto& r : ch.call_all(ping(0), generous())) EXPECT_EQ(r.response.as<Ping>().token, 1u);

    std::weak_ptr<const Snapshot> w1 = v1;
    v1.reset();  // the lcores hold the only references now
    auto v2 = std::make_shared<const Snapshot>(2);
    const int before = g_destroyed;
    g_destroyed_on.store(std::thread::id{});
    for (const auto& r : ch.call_all(snapshot_request(v2), generous())) ASSERT_EQ(r.status, CallStatus::ok);
    EXPECT_TRUE(w1.expired());
    EXPECT_EQ(g_destroyed - before, 1);
    EXPECT_EQ(g_destroyed_on.load(), std::this_thread::get_id());  // not on an lcore
    EXPECT_EQ(v2.use_count(), 4);
    for (const auto& r : ch.call_all(ping(0), generous())) EXPECT_EQ(r.response.as<Ping>().token, 2u);

    // A snapshot of another type is refused; its box comes back and is deleted all the same.
    auto other = std::make_shared<const int>(5);
    const CallResult r = ch.call(0, snapshot_request(other), generous());
    ASSERT_EQ(r.status, CallStatus::ok);
    EXPECT_EQ(r.response.status, ResponseStatus::bad_request);
    EXPECT_EQ(other.use_count(), 1);
  }
  // The lcores' handlers (and their references) are gone with the threads.
}

TEST(LcoreChannel, SnapshotBoxesNeverLeak) {
  auto v = std::make_shared<const Snapshot>(7);
  SnapshotHolder lcore, other_lcore;  // stand-ins for lcore handlers, polled from this thread
  auto ch = std::make_unique<LcoreChannels>(1, 2, 2);

  // Request ring full: the box is deleted at once; the caller's request no longer owns one.
  Request a = snapshot_request(v), b = snapshot_request(v), c = snapshot_request(v);
  EXPECT_EQ(v.use_count(), 4);
  ASSERT_TRUE(ch->send(0, a) && ch->send(0, b));
  EXPECT_EQ(a.as<SnapshotPayload>().box, nullptr);
  EXPECT_FALSE(ch->send(0, c));
  EXPECT_EQ(c.as<SnapshotPayload>().box, nullptr);
  EXPECT_EQ(v.use_count(), 3);  // here, a's and b's boxes

  // Built and never sent: discard().
  Request d = snapshot_request(v);
  discard(d);
  EXPECT_EQ(v.use_count(), 3);

  // Swapped in twice in a row: the first previous snapshot and the intermediate one come back.
  lcore.current = std::make_shared<const Snapshot>(6);
  std::weak_ptr<const Snapshot> previous = lcore.current;
  EXPECT_EQ(ch->port(0).poll(lcore, 32), 2u);
  EXPECT_EQ(ch->poll([](unsigned, const Response&) {}), 2u);
  EXPECT_TRUE(previous.expired());
  EXPECT_EQ(v.use_count(), 2);  // here and lcore.current

  // A timed-out call: its late response carries the lcore's previous snapshot back.
  lcore.current = std::make_shared<const Snapshot>(8);
  previous = lcore.current;
  EXPECT_EQ(v.use_count(), 1);
  EXPECT_EQ(ch->call(0, snapshot_request(v), Clock::now() + 1ms).status, CallStatus::timeout);
  EXPECT_EQ(v.use_count(), 2);  // in the request ring
  EXPECT_EQ(ch->port(0).poll(lcore, 32), 1u);
  EXPECT_EQ(ch->poll([](unsigned, const Response&) { ADD_FAILURE() << "late response delivered"; }), 0u);
  EXPECT_EQ(ch->counters().late_responses, 1u);
  EXPECT_TRUE(previous.expired());
  EXPECT_EQ(v.use_count(), 2);  // here and lcore.current

  // Left in the rings when the channels go: deleted by the destructor.
  Request e = snapshot_request(v), f = snapshot_request(v);
  ASSERT_TRUE(ch->send(0, e) && ch->send(0, f));
  other_lcore.current = std::make_shared<const Snapshot>(9);
  previous = other_lcore.current;
  EXPECT_EQ(ch->port(0).poll(other_lcore, 1), 1u);  // e answered (its box holds 9), f still queued
  EXPECT_EQ(v.use_count(), 4);                       // here, lcore, other_lcore, f's box
  ch.reset();
  EXPECT_EQ(v.use_count(), 3);
  EXPECT_TRUE(previous.expired());
}

TEST(LcoreChannel, ManyRequestsWhileTheLcoreAnswersConcurrently) {
  constexpr uint64_t kRequests = 100000;
  LcoreChannels ch(1, 64, 64);
  LcoreThread t(ch.port(0), Responder{0});
  const auto deadline = Clock::now() + 120s;  // a bound against hanging, not a measurement
  std::vector<uint64_t> ids;                  // of the send() requests, in order; token = index
  ids.reserve(kRequests);
  uint64_t answered = 0, calls = 0;
  auto check = [&](unsigned lcore, const Response& rs) {
    EXPECT_EQ(lcore, 0u);
    ASSERT_LT(answered, ids.size());
    EXPECT_EQ(rs.id, ids[answered]);  // one lcore, FIFO rings: answers come in order
    EXPECT_EQ(rs.as<Ping>().token, answered * 3);
    ++answered;
  };
  while (answered < kRequests && Clock::now() < deadline) {
    while (ids.size() < kRequests) {
      Request rq = ping(ids.size());
      const auto id = ch.send(0, rq);
      if (!id) break;  // ring full: take answers in first
      ids.push_back(*id);
      if (ids.size() % 5000 == 0) {  // a call among them: poll()'s answers are kept aside meanwhile
        const uint64_t token = 1000000000 + calls++;
        CallResult r;
        do {  // the ring may be full of our own requests: each try also takes answers in
          r = ch.call(0, ping(token), generous());
        } while (r.status == CallStatus::ring_full && Clock::now() < deadline);
        ASSERT_EQ(r.status, CallStatus::ok);
        EXPECT_EQ(r.response.as<Ping>().token, token * 3);
      }
    }
    if (ch.poll(check) == 0) std::this_thread::yield();
  }
  EXPECT_EQ(answered, kRequests);
  EXPECT_EQ(calls, kRequests / 5000);
  EXPECT_GT(ch.counters().ring_full, 0u);  // the rings did fill: the loop exercised that path
  EXPECT_EQ(ch.counters().late_responses + ch.counters().unmatched + ch.counters().timeouts, 0u);
  EXPECT_EQ(ch.outstanding(), 0u);
}
