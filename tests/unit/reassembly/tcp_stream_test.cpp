#include "reassembly/tcp_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <vector>

using namespace sluice::reassembly;

namespace {

constexpr uint8_t kAck = tcp_flags::ack;
constexpr uint8_t kSyn = tcp_flags::syn;
constexpr uint8_t kFin = tcp_flags::fin | tcp_flags::ack;
constexpr uint8_t kRst = tcp_flags::rst;

// Concatenates delivered bytes; gaps, ends and anomalies become an event list. `stream` is the
// byte stream as the consumer sees it, gaps zero-filled, with `lost` marking the gap bytes.
struct Recorder : StreamSink {
  std::string data;
  std::string stream;
  std::vector<bool> lost;
  std::vector<std::string> events;

  void on_data(const uint8_t* p, std::size_t n) noexcept override {
    data.append(reinterpret_cast<const char*>(p), n);
    stream.append(reinterpret_cast<const char*>(p), n);
    lost.resize(stream.size(), false);
  }
  void on_gap(uint32_t n) noexcept override {
    events.push_back("gap " + std::to_string(n) + " @" + std::to_string(data.size()));
    stream.append(n, '\0');
    lost.resize(stream.size(), true);
  }
  void on_end(StreamEnd how) noexcept override {
    events.push_back(how == StreamEnd::fin ? "end fin" : "end reset");
  }
  void on_anomaly(StreamAnomaly what) noexcept override {
    events.push_back(what == StreamAnomaly::overlap_conflict ? "anomaly conflict"
                     : what == StreamAnomaly::gap            ? "anomaly gap"
                     : what == StreamAnomaly::out_of_window  ? "anomaly out_of_window"
                                                             : "anomaly memcap");
  }
  std::size_t count(std::string_view event) const { return std::count(events.begin(), events.end(), event); }
};

using Events = std::vector<std::string>;

// Compares long binary strings without printing them: sizes and the first differing offset.
::testing::AssertionResult same(const std::string& got, const std::string& want) {
  if (got == want) return ::testing::AssertionSuccess();
  std::size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return ::testing::AssertionFailure() << "got " << got.size() << " bytes, want " << want.size()
                                       << ", first difference at " << i;
}

const uint8_t* bytes(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

std::string random_payload(std::mt19937& rng, std::size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = char(rng());
  return s;
}

// A segment of the payload: data offset (0 = first byte after the SYN), length, flags.
struct Seg {
  uint32_t off;
  uint32_t len;
  uint8_t flags;
};

// Cuts [0, total) into consecutive segments of 1..max_len bytes; the last one carries the FIN.
std::vector<Seg> cut(std::size_t total, std::size_t max_len, std::mt19937& rng) {
  std::vector<Seg> segs;
  for (std::size_t off = 0; off < total;) {
    const auto len = std::min<std::size_t>(total - off, 1 + rng() % max_len);
    segs.push_back({uint32_t(off), uint32_t(len), kAck});
    off += len;
  }
  if (segs.empty()) segs.push_back({0, 0, kAck});
  segs.back().flags = kFin;
  return segs;
}

class TcpStreamTest : public ::testing::Test {
 protected:
  SegmentPool pool{4096};  // room for thousands of tiny out-of-order segments
  TcpStreamLimits limits{1u << 22, 4096};
  TcpStream s;
  Recorder r;

  void SetUp() override { s.init(&limits, &pool); }
  void TearDown() override {
    s.reset();
    EXPECT_EQ(pool.available(), pool.capacity());  // every block came back
  }
  void seg(uint32_t seq, std::string_view d, uint8_t flags = kAck) { s.on_segment(seq, flags, bytes(d), d.size(), r); }
  void feed(uint32_t isn, const std::string& payload, const Seg& g) {
    s.on_segment(isn + 1 + g.off, g.flags, bytes(payload) + g.off, g.len, r);
  }
};

TEST_F(TcpStreamTest, InOrderIsDeliveredAsIsThenEndsOnFin) {
  seg(1000, "", kSyn);
  EXPECT_TRUE(s.started());
  EXPECT_EQ(s.next_seq(), 1001u);
  seg(1001, "hello ");
  seg(1007, "world");
  EXPECT_EQ(r.data, "hello world");
  EXPECT_TRUE(r.events.empty());
  seg(1012, "", kFin);
  EXPECT_EQ(r.events, Events{"end fin"});
  EXPECT_TRUE(s.ended());
  EXPECT_EQ(s.stats().delivered_bytes, 11u);
  EXPECT_EQ(s.stats().out_of_order_segments, 0u);
  EXPECT_EQ(pool.available(), pool.capacity());  // in-order data is never copied
}

TEST_F(TcpStreamTest, RandomPermutationsDeliverThePayloadExactly) {
  for (unsigned seed = 0; seed < 200; ++seed) {
    std::mt19937 rng(seed);
    const std::string payload = random_payload(rng, 1 + rng() % 20000);
    auto segs = cut(payload.size(), 1 + rng() % 3000, rng);
    std::shuffle(segs.begin(), segs.end(), rng);
    const uint32_t isn = rng();
    s.reset();
    r = Recorder{};
    seg(isn, "", kSyn);
    for (const auto& g : segs) feed(isn, payload, g);
    ASSERT_TRUE(same(r.data, payload)) << "seed " << seed << " isn " << isn
                                       << " events " << ::testing::PrintToString(r.events);
    EXPECT_EQ(r.events, Events{"end fin"}) << "seed " << seed;
    EXPECT_EQ(pool.available(), pool.capacity()) << "seed " << seed;
  }
}

TEST_F(TcpStreamTest, DuplicatedSegmentsAreDeliveredOnceAndCounted) {
  std::mt19937 rng(7);
  const std::string payload = random_payload(rng, 30000);
  auto segs = cut(payload.size(), 1460, rng);
  segs.back().flags = kAck;  // no FIN, so no duplicate arrives after the end
  auto twice = segs;
  twice.insert(twice.end(), segs.begin(), segs.end());
  std::shuffle(twice.begin(), twice.end(), rng);
  seg(99, "", kSyn);
  for (const auto& g : twice) feed(99, payload, g);
  EXPECT_TRUE(same(r.data, payload));
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(s.stats().retransmitted_bytes, payload.size());  // every byte was seen twice
  EXPECT_EQ(s.stats().overlap_conflicts, 0u);
  EXPECT_EQ(s.buffered_bytes(), 0u);
}

TEST_F(TcpStreamTest, ConsistentOverlapsWithOtherBoundariesAreNoConflict) {
  for (unsigned seed = 0; seed < 50; ++seed) {
    std::mt19937 rng(seed);
    const std::string payload = random_payload(rng, 8000);
    auto a = cut(payload.size(), 700, rng), b = cut(payload.size(), 1900, rng);
    a.insert(a.end(), b.begin(), b.end());
    std::shuffle(a.begin(), a.end(), rng);
    s.reset();
    r = Recorder{};
    seg(5, "", kSyn);
    for (const auto& g : a) feed(5, payload, g);
    ASSERT_TRUE(same(r.data, payload)) << "seed " << seed
                                       << " events " << ::testing::PrintToString(r.events);
    EXPECT_EQ(r.events, Events{"end fin"}) << "seed " << seed;
    EXPECT_EQ(s.stats().overlap_conflicts, 0u);
  }
}

TEST_F(TcpStreamTest, ConflictBufferedFirstKeepsTheBufferedBytes) {
  seg(0, "", kSyn);
  seg(11, "AAAAAAAAAA");  // [11, 21) out of order
  seg(1, "0123456789BBBBBBBBBBtail");
  EXPECT_EQ(r.data, "0123456789AAAAAAAAAAtail");
  EXPECT_EQ(r.events, Events{"anomaly conflict"});
  EXPECT_EQ(s.stats().overlap_conflicts, 1u);
  EXPECT_EQ(s.stats().retransmitted_bytes, 10u);
}

TEST_F(TcpStreamTest, ConflictBetweenTwoBufferedSegmentsKeepsTheFirst) {
  seg(0, "", kSyn);
  seg(11, "AAAA");    // [11, 15)
  seg(13, "BBBBBB");  // [13, 19): [13, 15) conflicts, [15, 19) is new
  EXPECT_EQ(s.buffered_bytes(), 8u);
  seg(1, "0123456789");
  EXPECT_EQ(r.data, "0123456789AAAABBBB");
  EXPECT_EQ(r.events, Events{"anomaly conflict"});
}

TEST_F(TcpStreamTest, ConflictIsReportedOncePerSegment) {
  seg(0, "", kSyn);
  seg(3, "x");
  seg(5, "y");
  seg(7, "z");
  seg(2, "-------");  // overlaps three blocks, all different
  EXPECT_EQ(s.stats().overlap_conflicts, 1u);
  EXPECT_EQ(r.count("anomaly conflict"), 1u);
  seg(1, "a");
  EXPECT_EQ(r.data, "a-x-y-z-");
}

TEST_F(TcpStreamTest, InOrderFirstThenDifferentRetransmissionKeepsDeliveredBytes) {
  seg(0, "", kSyn);
  seg(1, "hello");
  seg(1, "HELLO world");  // delivered bytes cannot be compared any more: counted, dropped
  EXPECT_EQ(r.data, "hello world");
  EXPECT_EQ(s.stats().retransmitted_bytes, 5u);
  EXPECT_EQ(s.stats().overlap_conflicts, 0u);
  EXPECT_TRUE(r.events.empty());
}

TEST_F(TcpStreamTest, SequenceNumbersWrapAround) {
  for (unsigned seed = 0; seed < 50; ++seed) {
    std::mt19937 rng(seed);
    const std::string payload = random_payload(rng, 6000);
    auto segs = cut(payload.size(), 900, rng);
    std::shuffle(segs.begin(), segs.end(), rng);
    const uint32_t isn = 0xFFFFFFFFu - rng() % 6000;  // the stream crosses 2^32
    s.reset();
    r = Recorder{};
    seg(isn, "", kSyn);
    for (const auto& g : segs) feed(isn, payload, g);
    ASSERT_TRUE(same(r.data, payload)) << "seed " << seed << " isn " << isn
                                       << " events " << ::testing::PrintToString(r.events);
    EXPECT_EQ(r.events, Events{"end fin"});
  }
}

TEST_F(TcpStreamTest, GapAcrossTheWrapIsExact) {
  seg(0xFFFFFFF0u, "0123456789");  // no SYN: starts here, next = 0xFFFFFFFA
  seg(0x00000004u, "after");       // hole of 10 bytes across zero
  s.on_ack(0x00000009u, r);
  EXPECT_EQ(r.data, "0123456789after");
  EXPECT_EQ(r.events, (Events{"anomaly gap", "gap 10 @10"}));
  EXPECT_EQ(s.next_seq(), 9u);
}

TEST_F(TcpStreamTest, AckBeyondAHoleDeclaresExactlyTheMissingBytes) {
  seg(0, "", kSyn);
  seg(1, "abc");     // next = 4
  seg(14, "xyz");    // hole [4, 14)
  s.on_ack(1, r);    // old
  s.on_ack(4, r);    // everything we have
  EXPECT_TRUE(r.events.empty());
  s.on_ack(17, r);
  EXPECT_EQ(r.data, "abcxyz");
  EXPECT_EQ(r.events, (Events{"anomaly gap", "gap 10 @3"}));
  EXPECT_EQ(s.stats().gaps, 1u);
  EXPECT_EQ(s.stats().gap_bytes, 10u);
  seg(4, "0123456789");  // too late: the hole was declared
  seg(17, "!");
  EXPECT_EQ(r.data, "abcxyz!");
  EXPECT_EQ(s.stats().retransmitted_bytes, 10u);
}

TEST_F(TcpStreamTest, AckInsideAHoleDeclaresOnlyUpToTheAck) {
  seg(0, "", kSyn);
  seg(1, "abc");
  seg(14, "xyz");
  s.on_ack(8, r);  // [4, 8) lost; [8, 14) may still come
  EXPECT_EQ(r.events, (Events{"anomaly gap", "gap 4 @3"}));
  seg(8, "EFGHIJ");
  EXPECT_EQ(r.data, "abcEFGHIJxyz");
  EXPECT_EQ(s.buffered_bytes(), 0u);
}

TEST_F(TcpStreamTest, AckOfTheFinIsNoGap) {
  seg(0, "", kSyn);
  seg(1, "ab");
  seg(10, "xyz", kFin);  // FIN at 13
  EXPECT_FALSE(s.ended());
  s.on_ack(14, r);  // acknowledges the FIN too
  EXPECT_EQ(r.data, "abxyz");
  EXPECT_EQ(r.events, (Events{"anomaly gap", "gap 7 @2", "end fin"}));
}

TEST_F(TcpStreamTest, MemcapByByteLimitGivesUpTheHoleAndProgresses) {
  limits = {3000, 100};
  std::mt19937 rng(3);
  const std::string payload = random_payload(rng, 10000);
  auto part = [&](int i) { return std::string_view(payload).substr(i * 1000, 1000); };
  seg(0, "", kSyn);
  for (int i = 1; i <= 3; ++i) seg(1 + i * 1000, part(i));  // part 0 missing
  EXPECT_EQ(s.buffered_bytes(), 3000u);
  EXPECT_TRUE(r.events.empty());
  seg(1 + 4000, part(4));  // no room: the hole goes, everything buffered is delivered
  EXPECT_EQ(r.events, (Events{"anomaly memcap", "anomaly gap", "gap 1000 @0"}));
  EXPECT_EQ(r.data, payload.substr(1000, 4000));
  EXPECT_EQ(s.stats().memcap_flushes, 1u);
  EXPECT_EQ(s.buffered_bytes(), 0u);
  EXPECT_EQ(pool.available(), pool.capacity());
  for (int i = 5; i < 10; ++i) seg(1 + i * 1000, part(i));
  seg(1, part(0));  // late: dropped
  seg(10001, "", kFin);
  EXPECT_EQ(r.data, payload.substr(1000));
  EXPECT_EQ(r.events.back(), "end fin");
}

TEST_F(TcpStreamTest, MemcapBySegmentLimit) {
  limits = {1u << 20, 2};
  seg(0, "", kSyn);
  seg(3, "c");
  seg(5, "e");
  seg(7, "g");  // a third block is over the limit
  EXPECT_EQ(r.events, (Events{"anomaly memcap", "anomaly gap", "gap 2 @0", "anomaly gap", "gap 1 @1", "anomaly gap",
                              "gap 1 @2"}));
  EXPECT_EQ(r.data, "ceg");
  EXPECT_EQ(s.next_seq(), 8u);
}

TEST_F(TcpStreamTest, ContiguousTinySegmentsShareABlock) {
  seg(0, "", kSyn);
  for (uint32_t i = 0; i < 100; ++i) seg(10 + i, std::string(1, char('a' + i % 26)));
  EXPECT_EQ(s.buffered_bytes(), 100u);
  EXPECT_EQ(pool.available(), pool.capacity() - 1);
  seg(1, "123456789");
  EXPECT_EQ(r.data.size(), 109u);
  EXPECT_EQ(pool.available(), pool.capacity());
}

TEST_F(TcpStreamTest, MemcapByPoolExhaustionAcrossStreams) {
  SegmentPool tiny(2);
  TcpStream a, b;
  Recorder ra, rb;
  a.init(&limits, &tiny);
  b.init(&limits, &tiny);
  const std::string block(SegmentPool::kBlockSize, 'x');
  a.on_segment(0, kSyn, nullptr, 0, ra);
  a.on_segment(101, kAck, bytes(block), block.size(), ra);
  a.on_segment(101 + block.size(), kAck, bytes(block), block.size(), ra);
  EXPECT_EQ(tiny.available(), 0u);
  b.on_segment(0, kSyn, nullptr, 0, rb);
  b.on_segment(51, kAck, bytes("later"), 5, rb);  // no block left: b skips its hole
  EXPECT_EQ(rb.events, (Events{"anomaly memcap", "anomaly gap", "gap 50 @0"}));
  EXPECT_EQ(rb.data, "later");
  EXPECT_EQ(b.stats().memcap_flushes, 1u);
  a.reset();
  EXPECT_EQ(tiny.available(), tiny.capacity());
  b.reset();
}

TEST_F(TcpStreamTest, BigSegmentSpansSeveralBlocksEvenThroughAMemcap) {
  limits = {10000, 100};  // less than one 64 KiB segment
  std::mt19937 rng(11);
  const std::string payload = random_payload(rng, 70000);
  seg(0, "", kSyn);
  seg(1001, std::string_view(payload).substr(1000, 65536));
  EXPECT_EQ(r.events, (Events{"anomaly memcap", "anomaly gap", "gap 1000 @0"}));
  EXPECT_EQ(r.data, payload.substr(1000, 65536));
  EXPECT_EQ(pool.available(), pool.capacity());
}

TEST_F(TcpStreamTest, BigSegmentsOutOfOrder) {
  std::mt19937 rng(5);
  const std::string payload = random_payload(rng, 3 * 65536 + 100);
  auto part = [&](int i) { return std::string_view(payload).substr(i * 65536, 65536); };
  seg(0, "", kSyn);
  seg(1 + 2 * 65536, std::string_view(payload).substr(2 * 65536), kFin);
  seg(1 + 65536, part(1));
  EXPECT_EQ(s.buffered_bytes(), 2 * 65536u + 100);
  EXPECT_EQ(pool.capacity() - pool.available(), 2 * 65536 / SegmentPool::kBlockSize + 1);
  seg(1 + 30000, std::string_view(payload).substr(30000, 50000));  // straddles into part 1
  seg(1, part(0));
  EXPECT_TRUE(same(r.data, payload));
  EXPECT_EQ(r.events, Events{"end fin"});
  EXPECT_EQ(pool.available(), pool.capacity());
}

TEST_F(TcpStreamTest, FinBeforeTheLastDataWaitsForIt) {
  seg(0, "", kSyn);
  seg(1, "abc");
  seg(7, "ghi", kFin);
  EXPECT_FALSE(s.ended());
  seg(4, "def");
  EXPECT_EQ(r.data, "abcdefghi");
  EXPECT_EQ(r.events, Events{"end fin"});
  seg(7, "ghi", kFin);  // retransmissions after the end are ignored
  seg(10, "junk");
  s.on_ack(100, r);
  s.flush(r);
  EXPECT_EQ(r.events, Events{"end fin"});
}

TEST_F(TcpStreamTest, BareFinBeforeTheLastData) {
  seg(0, "", kSyn);
  seg(1, "abc");
  seg(7, "", kFin);
  seg(4, "def");
  EXPECT_EQ(r.data, "abcdef");
  EXPECT_EQ(r.events, Events{"end fin"});
}

TEST_F(TcpStreamTest, DataBeyondTheFinIsDropped) {
  seg(0, "", kSyn);
  seg(5, "efghXYZ");  // buffered, partly beyond the FIN that comes next
  seg(20, "zz");
  seg(1, "abcd", kFin);  // the stream ends at 5: what is buffered after it goes
  EXPECT_EQ(r.data, "abcd");
  EXPECT_EQ(r.events, Events{"end fin"});
  EXPECT_EQ(pool.available(), pool.capacity());
}

TEST_F(TcpStreamTest, FinTruncatesABufferedBlockThatStraddlesIt) {
  seg(0, "", kSyn);
  seg(5, "efghXYZ");
  seg(9, "", kFin);  // the stream ends at 9
  EXPECT_EQ(s.buffered_bytes(), 4u);
  seg(1, "abcd");
  EXPECT_EQ(r.data, "abcdefgh");
  EXPECT_EQ(r.events, Events{"end fin"});
}

TEST_F(TcpStreamTest, RstEndsAtOnceAndReleasesTheBuffer) {
  seg(0, "", kSyn);
  seg(1, "abc");
  seg(10, "buffered");
  EXPECT_LT(pool.available(), pool.capacity());
  seg(4, "", kRst);
  EXPECT_EQ(r.events, Events{"end reset"});
  EXPECT_EQ(pool.available(), pool.capacity());
  EXPECT_EQ(s.buffered_bytes(), 0u);
  seg(4, "defghi");
  seg(4, "", kRst);
  s.flush(r);
  EXPECT_EQ(r.data, "abc");
  EXPECT_EQ(r.events, Events{"end reset"});
}

TEST_F(TcpStreamTest, MidStreamStartWithoutSyn) {
  s.on_ack(500, r);  // nothing to anchor on yet
  seg(4990, "", kFin);
  EXPECT_FALSE(s.started());
  seg(5000, "world");
  EXPECT_TRUE(s.started());
  EXPECT_EQ(s.next_seq(), 5005u);
  seg(4995, "hello");  // before the start: a retransmission
  seg(5005, "!");
  EXPECT_EQ(r.data, "world!");
  EXPECT_EQ(s.stats().retransmitted_bytes, 5u);
  EXPECT_TRUE(r.events.empty());
}

TEST_F(TcpStreamTest, SynRetransmissionDoesNotRewind) {
  seg(100, "", kSyn);
  seg(101, "abc");
  seg(100, "", kSyn);
  seg(7777, "", kSyn);  // even with another ISN
  EXPECT_EQ(s.next_seq(), 104u);
  seg(104, "def");
  EXPECT_EQ(r.data, "abcdef");
}

TEST_F(TcpStreamTest, SynDataFollowsTheSyn) {
  seg(100, "hi", kSyn);
  EXPECT_EQ(r.data, "hi");
  EXPECT_EQ(s.next_seq(), 103u);
  seg(100, "hi", kSyn);  // retransmitted SYN with data
  EXPECT_EQ(r.data, "hi");
  EXPECT_EQ(s.stats().retransmitted_bytes, 2u);
}

TEST_F(TcpStreamTest, FlushDeclaresEveryHoleThenTheStreamGoesOn) {
  seg(0, "", kSyn);
  seg(1, "a");
  seg(5, "e");
  seg(9, "i");
  s.flush(r);
  EXPECT_EQ(r.data, "aei");
  EXPECT_EQ(r.events, (Events{"anomaly gap", "gap 3 @1", "anomaly gap", "gap 3 @2"}));
  EXPECT_FALSE(s.ended());
  seg(10, "j");
  EXPECT_EQ(r.data, "aeij");
}

TEST_F(TcpStreamTest, FlushReachesASeenFin) {
  seg(0, "", kSyn);
  seg(1, "a");
  seg(5, "e");
  seg(9, "", kFin);
  s.flush(r);
  EXPECT_EQ(r.data, "ae");
  EXPECT_EQ(r.events, (Events{"anomaly gap", "gap 3 @1", "anomaly gap", "gap 3 @2", "end fin"}));
}

TEST_F(TcpStreamTest, DataBeyondAnyPossibleWindowIsRefused) {
  seg(0, "", kSyn);
  seg(1 + (1u << 30), "far");  // RFC 7323: no window reaches 2^30 bytes ahead
  EXPECT_EQ(s.buffered_bytes(), 0u);
  seg(1 + (1u << 30) - 3, "near");
  EXPECT_EQ(s.buffered_bytes(), 4u);
  EXPECT_EQ(s.stats().out_of_order_segments, 1u);
}

TEST_F(TcpStreamTest, NullPayloadAndResetReuse) {
  seg(0, "", kSyn);
  s.on_segment(1, kAck, nullptr, 100, r);  // no bytes to read: treated as empty
  EXPECT_EQ(s.next_seq(), 1u);
  seg(1, "abc");
  seg(10, "x");
  s.reset();
  EXPECT_FALSE(s.started());
  EXPECT_EQ(s.stats().delivered_bytes, 0u);
  EXPECT_EQ(pool.available(), pool.capacity());
  seg(50, "new");
  EXPECT_EQ(r.data, "abcnew");
}

// Random payloads, several random segmentations (consistent overlaps), random duplicates, any
// order, with ACKs for what a receiver would have: output is the payload, never a gap or conflict.
TEST_F(TcpStreamTest, PropertyAnyOrderOfConsistentSegmentsRebuildsThePayload) {
  for (unsigned seed = 0; seed < 300; ++seed) {
    std::mt19937 rng(seed);
    const std::string payload = random_payload(rng, rng() % 40000);
    std::vector<Seg> segs;
    for (unsigned k = 1 + rng() % 3; k > 0; --k) {
      // Segments of 1 byte up: an out-of-order segment that continues no other takes a block,
      // so the smallest maximum keeps the worst case within the fixture's pool (no memcap here).
      auto more = cut(payload.size(), 64 + rng() % 5000, rng);
      segs.insert(segs.end(), more.begin(), more.end());
    }
    for (std::size_t d = rng() % (segs.size() + 1); d > 0; --d) segs.push_back(segs[rng() % segs.size()]);
    std::shuffle(segs.begin(), segs.end(), rng);
    const uint32_t isn = seed % 2 ? rng() : 0xFFFFFFFFu - rng() % 50000;
    s.reset();
    r = Recorder{};
    seg(isn, "", kSyn);
    std::vector<bool> have(payload.size() + 1, false);  // what the receiver holds
    std::size_t acked = 0;
    for (const auto& g : segs) {
      feed(isn, payload, g);
      std::fill(have.begin() + g.off, have.begin() + g.off + g.len, true);
      while (acked < payload.size() && have[acked]) ++acked;
      if (rng() % 3 == 0) s.on_ack(isn + 1 + uint32_t(acked), r);
    }
    ASSERT_TRUE(same(r.data, payload)) << "seed " << seed << " isn " << isn
                                       << " events " << ::testing::PrintToString(r.events);
    EXPECT_EQ(r.events, Events{"end fin"}) << "seed " << seed;
    EXPECT_EQ(s.stats().overlap_conflicts, 0u);
    EXPECT_EQ(s.stats().delivered_bytes, payload.size());
    EXPECT_EQ(pool.available(), pool.capacity()) << "seed " << seed;
  }
}

// The same under memory pressure: whatever is delivered sits at its right place in the stream
// (gaps account for exactly the bytes given up), the stream reaches its FIN, no block leaks.
TEST_F(TcpStreamTest, PropertyUnderMemoryPressureStaysAlignedAndReleasesEverything) {
  SegmentPool tiny(6);
  for (unsigned seed = 0; seed < 300; ++seed) {
    std::mt19937 rng(seed);
    limits = {1 + uint32_t(rng() % 12000), 1 + uint32_t(rng() % 8)};
    s.init(&limits, &tiny);
    r = Recorder{};
    const std::string payload = random_payload(rng, 1 + rng() % 30000);
    auto segs = cut(payload.size(), 1 + rng() % 5000, rng);
    auto other = cut(payload.size(), 1 + rng() % 700, rng);
    segs.insert(segs.end(), other.begin(), other.end());
    std::shuffle(segs.begin(), segs.end(), rng);
    const uint32_t isn = rng();
    seg(isn, "", kSyn);
    for (const auto& g : segs) feed(isn, payload, g);
    s.flush(r);
    ASSERT_EQ(r.stream.size(), payload.size()) << "seed " << seed;
    for (std::size_t i = 0; i < payload.size(); ++i) {
      if (!r.lost[i]) {
        ASSERT_EQ(r.stream[i], payload[i]) << "seed " << seed << " byte " << i;
      }
    }
    EXPECT_EQ(s.stats().delivered_bytes + s.stats().gap_bytes, payload.size());
    EXPECT_EQ(s.stats().overlap_conflicts, 0u);
    EXPECT_EQ(r.count("end fin"), 1u) << "seed " << seed;
    EXPECT_EQ(tiny.available(), tiny.capacity()) << "seed " << seed;
  }
  s.init(&limits, &pool);
}

}  // namespace

// Like the receiver (issue 10): the unacknowledged copy, the receiver's window, resets.
class ReceiverTest : public TcpStreamTest {
 protected:
  void SetUp() override {
    limits.max_unacked_bytes = 64 * 1024;
    limits.unknown_window_bytes = 64 * 1024;
    TcpStreamTest::SetUp();
  }
};

TEST_F(ReceiverTest, RetransmissionDifferingFromDeliveredUnackedBytesIsAConflict) {
  seg(0, "", kSyn);
  seg(1, "hello");
  seg(1, "HELLO world");  // the delivered copy wins; the difference is an evasion signal
  EXPECT_EQ(r.data, "hello world");
  EXPECT_EQ(s.stats().overlap_conflicts, 1u);
  EXPECT_EQ(r.count("anomaly conflict"), 1u);
  EXPECT_EQ(s.stats().unverified_bytes, 0u);
}

TEST_F(ReceiverTest, ConflictIsFoundInBothOrdersAndAcrossBoundaries) {
  // Evil first, then the benign copy re-segmented: the same five bytes differ either way.
  seg(0, "", kSyn);
  seg(1, "EVIL!");
  seg(1, "ev");
  seg(3, "il! tail");
  EXPECT_EQ(r.data, "EVIL! tail");
  EXPECT_EQ(s.stats().overlap_conflicts, 2u);
  // An identical retransmission is no conflict.
  seg(1, "EVIL! tail");
  EXPECT_EQ(s.stats().overlap_conflicts, 2u);
  EXPECT_EQ(s.stats().retransmitted_bytes, 2u + 3u + 10u);
}

TEST_F(ReceiverTest, AcknowledgedBytesAreNoLongerKept) {
  seg(0, "", kSyn);
  seg(1, "hello world");
  s.on_ack(7, r);  // the receiver has "hello "
  EXPECT_EQ(pool.available(), pool.capacity() - 1);  // "world" still kept in its block
  s.on_ack(12, r);
  EXPECT_EQ(pool.available(), pool.capacity());
  seg(1, "HELLO");  // acknowledged: nothing to compare with, counted
  EXPECT_EQ(s.stats().overlap_conflicts, 0u);
  EXPECT_EQ(s.stats().unverified_bytes, 5u);
}

TEST_F(ReceiverTest, TheCopyKeepsOnlyTheMostRecentBytes) {
  limits.max_unacked_bytes = 4;
  seg(0, "", kSyn);
  seg(1, "abcdefgh");
  seg(1, "ABCDEFgh");  // only "efgh" is kept: "ABCD" unverified, "EF" differs
  EXPECT_EQ(s.stats().unverified_bytes, 4u);
  EXPECT_EQ(s.stats().overlap_conflicts, 1u);
}

TEST_F(ReceiverTest, DataBeyondTheWindowIsNotBuffered) {
  seg(1000, "", kSyn);
  s.set_window(1001, 1000);  // the receiver offers 1000 bytes: edge 1001 + 1000 + 65536 of slack
  seg(1001 + (1u << 30) - 1, "far ahead");  // the measured attack: 2^30 ahead
  seg(1001 + 1000 + 65536, "just past the edge");
  EXPECT_EQ(s.stats().out_of_window_segments, 2u);
  EXPECT_EQ(r.count("anomaly out_of_window"), 2u);
  EXPECT_EQ(s.buffered_bytes(), 0u);
  seg(1001 + 1000 + 65536 - 4, "trimmed");  // crosses the edge: the part inside is kept
  EXPECT_EQ(s.buffered_bytes(), 4u);
  s.on_ack(1001 + 1000 + 65536 - 4, r);  // the hole before it is lost: delivered after the gap
  EXPECT_EQ(r.data, "trim");
  seg(1001 + 66536, "x", kFin);
  EXPECT_EQ(r.count("end fin"), 1u);
}

TEST_F(ReceiverTest, UnknownWindowUsesTheConfiguredBound) {
  seg(5000, "mid-stream pick-up");  // no SYN, no window
  seg(5018 + 64 * 1024, "too far");
  EXPECT_EQ(s.stats().out_of_window_segments, 1u);
  seg(5018 + 60 * 1024, "in range");
  EXPECT_EQ(s.buffered_bytes(), 8u);
  s.flush(r);
}

TEST_F(ReceiverTest, InOrderDataIsNeverRefusedByTheWindow) {
  seg(0, "", kSyn);
  s.set_window(1, 0);  // a zero window: a probe byte at the edge still reaches the parser
  seg(1, "p");
  EXPECT_EQ(r.data, "p");
}

TEST_F(ReceiverTest, OnlyTheExactNextSequenceNumberResets) {
  seg(0, "", kSyn);
  seg(1, "hello");
  EXPECT_FALSE(s.accepts_reset(2));
  EXPECT_FALSE(s.accepts_reset(5000));
  EXPECT_TRUE(s.accepts_reset(6));
  seg(6, "", kFin);
  EXPECT_TRUE(s.accepts_reset(7));  // after the FIN
}
