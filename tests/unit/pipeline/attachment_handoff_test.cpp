// The RX side of the attachment hand-off with the worker's code behind it: events carry the
// worker's SHA-256, type and archive members; messages are written once complete; back-pressure,
// exhausted records and late results end in counted, reported `overload`, never a lost file.
#include "pipeline/attachment_handoff.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include "control/event_render.h"
#include <openssl/sha.h>

#include <deque>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "reassembly/reassembler.h"
#include "tests/unit/pipeline/archive_builders.h"

namespace sluice::pipeline {
namespace {

using Json = nlohmann::json;
using Bytes = std::vector<uint8_t>;

std::string sha256_hex(const Bytes& b) {
  uint8_t d[32];
  SHA256(b.data(), b.size(), d);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (uint8_t c : d) s += {hex[c >> 4], hex[c & 15]};
  return s;
}

Bytes random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (auto& c : b) c = static_cast<uint8_t>(rng());
  return b;
}

// A zip (libarchive's writer) holding `members` (name, bytes).
Bytes make_zip(const std::vector<std::pair<std::string, Bytes>>& members) {
  Bytes out(1 << 22);
  std::size_t used = 0;
  archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  archive_write_open_memory(a, out.data(), out.size(), &used);
  for (const auto& [name, data] : members)
    test::write_member(a, name.c_str(), {reinterpret_cast<const char*>(data.data()), data.size()});
  archive_write_close(a);
  archive_write_free(a);
  out.resize(used);
  return out;
}

// Records rendered as the control side renders them: `file` events, and each message's `verdict`
// event apart (verdict_seam_test.cpp tests those).
struct Capture final : records::RecordSink {
  std::vector<Json> events;
  std::vector<Json> verdicts;
  control::EventRenderer renderer;
  void emit(const void* record, std::size_t size) noexcept override {
    Json j = Json::parse(renderer.render(record, size));
    (j["event_type"] == "verdict" ? verdicts : events).push_back(std::move(j));
  }
};

// Stands in for the DPDK rings and the worker lcore (dataplane/worker_rings.h, tested end to end
// by the replay tests): a bounded pool and a bounded queue per worker; the test decides when the
// worker runs. Results queue up until the RX side polls.
class QueueChannel final : public ChunkChannel, public ResultOutput {
 public:
  QueueChannel(const WorkerLimits& limits, std::size_t pool, std::size_t ring)
      : worker_(limits), ring_(ring), pool_(pool) {}
  unsigned workers() const noexcept override { return 1; }
  WorkChunk* alloc() noexcept override { return pool_.get(); }
  void release(WorkChunk* c) noexcept override { pool_.put(c); }
  bool send(unsigned, WorkChunk* c) noexcept override {
    if (queue_.size() == ring_) return false;
    queue_.push_back(c);
    return true;
  }
  bool flush() noexcept override { return true; }
  std::size_t poll(ResultHandler& h) noexcept override {
    std::size_t n = results_.size();
    for (const auto& r : results_) h.on_result(r);
    results_.clear();
    return n;
  }
  void put(const WorkResult& r) noexcept override { results_.push_back(r); }
  // The worker lcore's loop, `max` chunks at most.
  void run_worker(std::size_t max = SIZE_MAX) {
    while (!queue_.empty() && max--) {
      WorkChunk* c = queue_.front();
      queue_.pop_front();
      worker_.on_chunk(*c, *this);
      release(c);
    }
  }
  AttachmentWorker worker_;

 private:
  std::size_t ring_;
  ChunkPool pool_;
  std::deque<WorkChunk*> queue_;
  std::deque<WorkResult> results_;
};

records::MessageContext context(uint32_t transaction) {
  records::MessageContext c;
  c.flow.flow_id = 77;
  c.flow.ip_version = 4;
  const uint8_t client[4] = {192, 0, 2, 1}, server[4] = {192, 0, 2, 2};
  std::memcpy(c.flow.client_ip, client, 4);
  std::memcpy(c.flow.server_ip, server, 4);
  c.flow.client_port = 40000;
  c.flow.server_port = 25;
  c.transaction = transaction;
  c.now_us = 1700000000000000;
  return c;
}

PartInfo part(const char* path, const char* name, const char* type = "application/octet-stream") {
  PartInfo p{};
  p.path = path;
  p.filename = name;
  p.content_type = type;
  p.disposition = "attachment";
  p.encoding = TransferEncoding::base64;
  p.attachment = true;
  return p;
}

// Feeds `b` in random pieces, as the MIME decoder does.
void feed(AttachmentHandoff& h, AttachmentHandoff::Handle f, const Bytes& b, unsigned seed) {
  std::mt19937 rng(seed);
  std::size_t at = 0;
  while (at < b.size()) {
    const std::size_t n = std::min<std::size_t>(b.size() - at, 1 + rng() % 6000);
    h.file_data(f, b.data() + at, n);
    at += n;
  }
}

// The hand-off with a worker running on its own lcore's thread (LocalChannel), events captured.
struct LocalHandoff {
  Capture out;
  LocalChannel channel{WorkerLimits{}};
  AttachmentHandoff h{HandoffLimits{}, channel, out, 0};
  LocalHandoff() { channel.set_handler(&h); }
};

const uint8_t kMessageSha[32] = {1, 2, 3};
const std::string kMessageShaHex = "0102030000000000000000000000000000000000000000000000000000000000";

TEST(AttachmentHandoff, LocalWorkerHashesTypesAndUnpacks) {
  const Bytes blob = random_bytes(100000, 1);
  const Bytes inner = make_zip({{"deep/x.bin", random_bytes(5000, 3)}});
  const Bytes zip = make_zip({{"a.txt", Bytes(3000, 'a')}, {"inner.zip", inner}});
  LocalHandoff local;
  auto& [out, channel, h] = local;

  const auto ctx = context(0);
  const auto m = h.message_begin(ctx);
  const auto f1 = h.file_begin(m, part("2", "blob.bin"), ctx);
  feed(h, f1, blob, 7);
  h.file_end(f1, PartEnd::complete);
  const auto f2 = h.file_begin(m, part("3", "report.pdf", "application/pdf"), ctx);
  feed(h, f2, zip, 8);
  h.file_end(f2, PartEnd::complete);
  h.poll();
  EXPECT_TRUE(out.events.empty()) << "events wait for the message's end";
  h.message_end(m, true, kMessageSha, ctx);

  ASSERT_EQ(out.events.size(), 5u);
  const Json& a = out.events[0]["file"];
  EXPECT_EQ(a["filename"], "blob.bin");
  EXPECT_EQ(a["sha256"], sha256_hex(blob));
  EXPECT_EQ(a["size"], blob.size());
  EXPECT_EQ(a["message_sha256"], kMessageShaHex);
  EXPECT_FALSE(a.contains("unscannable"));
  const Json& z = out.events[1]["file"];
  EXPECT_EQ(z["sha256"], sha256_hex(zip));
  EXPECT_EQ(z["file_type"], "zip");
  EXPECT_EQ(z["type_mismatch"], Json::array({"extension", "content_type"}));  // a zip named and declared PDF
  EXPECT_EQ(z["members"], 3);
  // Members follow their attachment, parents before children.
  const Json& m1 = out.events[2]["file"];
  EXPECT_EQ(m1["filename"], "a.txt");
  EXPECT_EQ(m1["sha256"], sha256_hex(Bytes(3000, 'a')));
  EXPECT_EQ(m1["parent_sha256"], sha256_hex(zip));
  EXPECT_EQ(m1["depth"], 1);
  EXPECT_EQ(m1["mime_path"], "3");
  EXPECT_EQ(m1["archive_filename"], "report.pdf");
  const Json& m2 = out.events[3]["file"];
  EXPECT_EQ(m2["filename"], "inner.zip");
  EXPECT_EQ(m2["sha256"], sha256_hex(inner));
  EXPECT_EQ(m2["file_type"], "zip");
  const Json& m3 = out.events[4]["file"];
  EXPECT_EQ(m3["filename"], "deep/x.bin");
  EXPECT_EQ(m3["depth"], 2);
  EXPECT_EQ(m3["parent_sha256"], sha256_hex(inner));
  EXPECT_EQ(m3["sha256"], sha256_hex(random_bytes(5000, 3)));
  for (const Json& e : out.events) {
    EXPECT_EQ(e["event_type"], "file");
    EXPECT_EQ(e["transaction"], 0);
    EXPECT_EQ(e["src_ip"], "192.0.2.1");
  }
  EXPECT_EQ(h.pending(), 0u);
}

// Issue 10: a gzip that starts with zeros was a gzip "scanned whole" with no member; a 7z that
// declares a 4 GiB dictionary made libarchive map 4 GiB.
TEST(AttachmentHandoff, ZeroLedGzipAndHugeDictionaryAsTheWorkerReportsThem) {
  const std::string content = std::string(1024, '\0') + test::tiny_pe();
  const std::string gz = test::gzip_of(content);
  const std::string z = test::sevenzip_patched(test::sevenzip_of(nullptr, "a.txt", "hello, world\n"),
                                               std::string("\x05\x5D\x00\x00\x80\x00", 6),   // 8 MiB, as written
                                               std::string("\x05\x5D\xFF\xFF\xFF\xFF", 6));  // 4 GiB
  LocalHandoff local;
  auto& [out, channel, h] = local;
  const auto ctx = context(0);
  const auto m = h.message_begin(ctx);
  for (const auto& [path, name, bytes] : {std::tuple("2", "report.gz", &gz), std::tuple("3", "a.7z", &z)}) {
    const auto f = h.file_begin(m, part(path, name), ctx);
    feed(h, f, Bytes(bytes->begin(), bytes->end()), 3);
    h.file_end(f, PartEnd::complete);
  }
  h.message_end(m, true, kMessageSha, ctx);

  ASSERT_EQ(out.events.size(), 3u);
  const Json& g = out.events[0]["file"];
  EXPECT_EQ(g["file_type"], "gzip");
  EXPECT_EQ(g["members"], 1);
  EXPECT_FALSE(g.contains("unscannable")) << g.dump();
  const Json& member = out.events[1]["file"];
  EXPECT_EQ(member["filename"], "data");
  EXPECT_EQ(member["size"], content.size());
  EXPECT_EQ(member["sha256"], sha256_hex(Bytes(content.begin(), content.end())));
  EXPECT_EQ(member["file_type"], "unknown");  // the PE's MZ is not at the start of the stream
  EXPECT_EQ(member["depth"], 1);
  const Json& s = out.events[2]["file"];
  EXPECT_EQ(s["file_type"], "7z");
  EXPECT_EQ(s["sha256"], sha256_hex(Bytes(z.begin(), z.end())));
  EXPECT_EQ(s["unscannable"], "limit_exceeded");
  EXPECT_EQ(s["unscannable_detail"],
            "max_decoder_bytes 128 MiB: 7z LZMA dictionary of 4097 MiB, not read (depth 1)");
  EXPECT_FALSE(s.contains("members") && s["members"] != 0) << s.dump();
  const WorkerStats& st = channel.worker().stats();
  EXPECT_EQ(st.decoder_memory_refused, 1u);
  EXPECT_EQ(st.unscannable[static_cast<int>(Unscannable::limit_exceeded)], 1u);
}

TEST(AttachmentHandoff, EventsWaitForTheWorkerAndInterleavedMessagesStayApart) {
  QueueChannel ch(WorkerLimits{}, 64, 1024);
  Capture out;
  AttachmentHandoff h(HandoffLimits{}, ch, out, 3);
  const Bytes x = random_bytes(50000, 11), y = random_bytes(70000, 12);
  const auto c0 = context(0), c1 = context(1);
  const auto m0 = h.message_begin(c0);
  const auto m1 = h.message_begin(c1);
  const auto fx = h.file_begin(m0, part("2", "x.bin"), c0);
  const auto fy = h.file_begin(m1, part("2", "y.bin"), c1);
  for (std::size_t at = 0; at < 70000; at += 1000) {  // two sessions, bytes interleaved
    if (at < x.size()) h.file_data(fx, x.data() + at, std::min<std::size_t>(1000, x.size() - at));
    h.file_data(fy, y.data() + at, 1000);
    if (at % 8000 == 0) {
      h.poll();
      ch.run_worker();
    }
  }
  h.file_end(fx, PartEnd::complete);
  h.file_end(fy, PartEnd::truncated);
  h.message_end(m1, false, kMessageSha, c1);
  h.message_end(m0, true, kMessageSha, c0);
  h.poll();
  EXPECT_TRUE(out.events.empty()) << "no result yet: the worker has not run";
  EXPECT_EQ(h.pending(), 2u);
  ch.run_worker();
  h.poll();
  ASSERT_EQ(out.events.size(), 2u);
  for (const Json& e : out.events) {
    const bool is_x = e["file"]["filename"] == "x.bin";
    EXPECT_EQ(e["transaction"], is_x ? 0 : 1);
    EXPECT_EQ(e["file"]["sha256"], sha256_hex(is_x ? x : y));
    EXPECT_EQ(e["file"]["status"], is_x ? "complete" : "truncated");
  }
  EXPECT_EQ(h.pending(), 0u);
  EXPECT_EQ(h.stats().overload, 0u);
}

TEST(AttachmentHandoff, FullRingWithoutWaitMakesTheFileUnscannableOverload) {
  QueueChannel ch(WorkerLimits{}, 64, 2);  // room for two chunks, and the worker does not run
  Capture out;
  HandoffLimits limits;
  limits.wait_us = 0;
  AttachmentHandoff h(limits, ch, out, 0);
  const auto c = context(5);
  const auto m = h.message_begin(c);
  const Bytes big = random_bytes(5 * kChunkData, 2);
  const auto f = h.file_begin(m, part("2", "big.bin"), c);
  h.file_data(f, big.data(), big.size());  // the third full chunk finds no room
  h.file_end(f, PartEnd::complete);
  const Bytes small = random_bytes(10, 3);
  const auto g = h.file_begin(m, part("3", "small.bin"), c);
  h.file_data(g, small.data(), small.size());
  h.file_end(g, PartEnd::complete);  // last chunk deferred: the ring is still full
  h.message_end(m, true, kMessageSha, c);
  EXPECT_TRUE(out.events.empty()) << "small.bin is still on its way";
  EXPECT_EQ(h.stats().overload, 1u);
  // The worker drains; the deferred chunks (big's terminal, small's data) go through in order.
  for (int i = 0; i < 5 && h.pending(); ++i) {
    ch.run_worker();
    h.poll();
  }
  ASSERT_EQ(out.events.size(), 2u);
  const Json& b = out.events[0]["file"];
  EXPECT_EQ(b["filename"], "big.bin");
  EXPECT_EQ(b["unscannable"], "overload");
  EXPECT_FALSE(b.contains("sha256"));
  EXPECT_EQ(b["size"], big.size()) << "the size is still counted";
  const Json& s = out.events[1]["file"];
  EXPECT_EQ(s["sha256"], sha256_hex(small));
  EXPECT_FALSE(s.contains("unscannable"));
  EXPECT_GE(h.stats().ring_full, 1u);
  // The worker's own result for big.bin (after the terminal) came back late and was ignored.
  EXPECT_EQ(h.stats().stale_results, 1u);
  EXPECT_EQ(ch.worker_.stats().unscannable[static_cast<int>(Unscannable::overload)], 1u);
}

TEST(AttachmentHandoff, WaitingForRoomLetsTheWorkerCatchUp) {
  // A worker that runs whenever the RX side polls: with wait_us the file gets through whole.
  class Eager final : public ChunkChannel, public ResultOutput {
   public:
    explicit Eager(QueueChannel& q) : q_(q) {}
    unsigned workers() const noexcept override { return 1; }
    WorkChunk* alloc() noexcept override { return q_.alloc(); }
    void release(WorkChunk* c) noexcept override { q_.release(c); }
    bool send(unsigned w, WorkChunk* c) noexcept override { return q_.send(w, c); }
    bool flush() noexcept override { return true; }
    std::size_t poll(ResultHandler& h) noexcept override {
      q_.run_worker(1);
      return q_.poll(h);
    }
    void put(const WorkResult&) noexcept override {}
    QueueChannel& q_;
  };
  QueueChannel q(WorkerLimits{}, 4, 2);
  Eager ch(q);
  Capture out;
  HandoffLimits limits;
  limits.wait_us = 100000;
  AttachmentHandoff h(limits, ch, out, 0);
  const auto c = context(0);
  const auto m = h.message_begin(c);
  const Bytes big = random_bytes(40 * kChunkData + 17, 4);
  const auto f = h.file_begin(m, part("2", "big.bin"), c);
  feed(h, f, big, 5);
  h.file_end(f, PartEnd::complete);
  h.message_end(m, true, kMessageSha, c);
  for (int i = 0; i < 10 && h.pending(); ++i) h.poll();
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0]["file"]["sha256"], sha256_hex(big));
  EXPECT_EQ(h.stats().overload, 0u);
  EXPECT_GE(h.stats().ring_full + h.stats().no_chunk, 1u) << "back-pressure was met and waited out";
}

TEST(AttachmentHandoff, ExhaustedRecordsReportAtOnce) {
  Capture out;
  LocalChannel channel(WorkerLimits{});
  HandoffLimits limits;
  limits.max_messages = 1;
  limits.max_files = 1;
  AttachmentHandoff h(limits, channel, out, 0);
  channel.set_handler(&h);
  const auto c0 = context(0), c1 = context(1);
  const auto m0 = h.message_begin(c0);
  const auto m1 = h.message_begin(c1);  // no record left
  EXPECT_EQ(m1, AttachmentHandoff::kNone);
  const auto f0 = h.file_begin(m0, part("2", "a.bin"), c0);
  const auto f1 = h.file_begin(m0, part("3", "b.bin"), c0);  // no file record left
  EXPECT_EQ(f1, AttachmentHandoff::kNone);
  ASSERT_EQ(out.events.size(), 1u) << "b.bin is reported at once";
  EXPECT_EQ(out.events[0]["file"]["filename"], "b.bin");
  EXPECT_EQ(out.events[0]["file"]["unscannable"], "overload");
  const auto g = h.file_begin(m1, part("2", "c.bin"), c1);
  EXPECT_EQ(g, AttachmentHandoff::kNone);
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[1]["transaction"], 1);
  h.file_data(f0, reinterpret_cast<const uint8_t*>("abc"), 3);
  h.file_data(f1, reinterpret_cast<const uint8_t*>("abc"), 3);  // ignored, no crash
  h.file_end(f0, PartEnd::complete);
  h.file_end(f1, PartEnd::complete);
  h.message_end(m0, true, kMessageSha, c0);
  h.message_end(m1, true, kMessageSha, c1);
  ASSERT_EQ(out.events.size(), 3u);
  EXPECT_EQ(out.events[2]["file"]["sha256"], sha256_hex(Bytes{'a', 'b', 'c'}));
  EXPECT_EQ(h.stats().records_full, 3u);
}

TEST(AttachmentHandoff, MembersBeyondTheirPoolAreWrittenAtOnce) {
  Capture out;
  LocalChannel channel(WorkerLimits{});
  HandoffLimits limits;
  limits.max_members = 1;
  AttachmentHandoff h(limits, channel, out, 0);
  channel.set_handler(&h);
  const Bytes zip = make_zip({{"1", Bytes(10, '1')}, {"2", Bytes(10, '2')}, {"3", Bytes(10, '3')}});
  const auto c = context(0);
  const auto m = h.message_begin(c);
  const auto f = h.file_begin(m, part("2", "z.zip", "application/zip"), c);
  feed(h, f, zip, 1);
  h.file_end(f, PartEnd::complete);
  ASSERT_EQ(out.events.size(), 2u) << "members 2 and 3 had no record";
  EXPECT_FALSE(out.events[0]["file"].contains("message_sha256"));
  h.message_end(m, true, kMessageSha, c);
  ASSERT_EQ(out.events.size(), 4u);
  EXPECT_EQ(out.events[2]["file"]["filename"], "z.zip");
  EXPECT_FALSE(out.events[2]["file"].contains("type_mismatch"));
  EXPECT_EQ(out.events[3]["file"]["filename"], "1");
  EXPECT_EQ(out.events[3]["file"]["message_sha256"], kMessageShaHex);
  EXPECT_EQ(h.stats().members_unheld, 2u);
  // Members 2 and 3 never reached the verdict: the archive does not read as scanned whole.
  EXPECT_EQ(out.events[2]["file"]["unscannable"], "overload");
  ASSERT_EQ(out.verdicts.size(), 1u);
  EXPECT_EQ(out.verdicts[0]["verdict"]["disposition"], "unscannable");
  EXPECT_EQ(out.verdicts[0]["verdict"]["reasons"], Json::array({"overload"}));
}

TEST(AttachmentHandoff, DrainWritesWhatIsLeftWhenWorkersDoNotAnswer) {
  QueueChannel ch(WorkerLimits{}, 16, 16);
  Capture out;
  AttachmentHandoff h(HandoffLimits{}, ch, out, 0);
  const auto c = context(0);
  const auto m = h.message_begin(c);
  const auto f = h.file_begin(m, part("2", "a.bin"), c);
  h.file_data(f, reinterpret_cast<const uint8_t*>("abc"), 3);
  h.file_end(f, PartEnd::complete);
  h.message_end(m, true, kMessageSha, c);
  std::atomic<bool> abort{true};  // shutdown gave up on the workers
  h.drain(abort);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0]["file"]["unscannable"], "overload");
  EXPECT_EQ(out.events[0]["file"]["message_sha256"], kMessageShaHex);
  EXPECT_EQ(h.pending(), 0u);
}

// Message hashes on the worker (HandoffLimits::digests): the content goes as a stream of its own,
// the message waits for its hash, and the hash waits for the smtp event that takes it.
// A hand-off that streams message contents to its worker (HandoffLimits::digests) over a
// QueueChannel of `pool` chunks and `ring` ring slots.
struct DigestHandoff {
  explicit DigestHandoff(HandoffLimits limits, std::size_t pool = 64, std::size_t ring = 64)
      : ch(WorkerLimits{}, pool, ring), h(with_digests(limits), ch, out, 0) {}
  static HandoffLimits with_digests(HandoffLimits l) {
    l.digests = true;
    return l;
  }
  QueueChannel ch;
  Capture out;
  AttachmentHandoff h;
};

TEST(AttachmentHandoff, MessageHashOnTheWorkerWaitsForItsTicket) {
  DigestHandoff d(HandoffLimits{}, 256, 256);
  auto& [ch, out, h] = d;
  const auto c = context(3);
  const Bytes content = random_bytes(3 * kChunkData + 123, 11);
  const Bytes file = random_bytes(9000, 12);
  const auto m = h.message_begin(c);
  ASSERT_TRUE(h.hashes(m));
  std::mt19937 rng(5);
  for (std::size_t at = 0; at < content.size();) {
    const std::size_t n = std::min<std::size_t>(content.size() - at, 1 + rng() % 3000);
    h.message_data(m, content.data() + at, n);
    at += n;
  }
  const auto f = h.file_begin(m, part("2", "a.bin"), c);
  feed(h, f, file, 3);
  h.file_end(f, PartEnd::complete);
  const uint64_t ticket = h.message_end(m, true, nullptr, c);
  ASSERT_NE(ticket, 0u);
  uint8_t sha[32];
  bool known = true;
  EXPECT_FALSE(h.take_digest(ticket, sha, known)) << "the worker has not run";
  h.poll();
  ch.run_worker(2);  // part of the content only
  h.poll();
  EXPECT_FALSE(h.take_digest(ticket, sha, known));
  EXPECT_TRUE(out.events.empty()) << "the message waits for its hash too";
  ch.run_worker();
  h.poll();
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0]["file"]["sha256"], sha256_hex(file));
  EXPECT_EQ(out.events[0]["file"]["message_sha256"], sha256_hex(content));
  ASSERT_EQ(out.verdicts.size(), 1u);
  EXPECT_EQ(out.verdicts[0]["verdict"]["message_sha256"], sha256_hex(content));
  EXPECT_EQ(h.pending(), 0u) << "the record is free; the hash waits in its digest record";
  ASSERT_TRUE(h.take_digest(ticket, sha, known));
  EXPECT_TRUE(known);
  uint8_t want[32];
  SHA256(content.data(), content.size(), want);
  EXPECT_EQ(Bytes(sha, sha + 32), Bytes(want, want + 32));
  EXPECT_TRUE(h.take_digest(ticket, sha, known)) << "a spent ticket answers at once";
  EXPECT_FALSE(known);
  const HandoffStats s = h.stats();
  EXPECT_EQ(s.digests, 1u);
  EXPECT_EQ(s.digests_lost, 0u);
  EXPECT_EQ(s.files, 1u) << "the content is not an attachment";
  EXPECT_EQ(ch.worker_.stats().digests, 1u);
  EXPECT_EQ(ch.worker_.stats().attachments, 1u);
}

TEST(AttachmentHandoff, MessageHashLostToBackPressureLeavesItsEventsWithoutIt) {
  HandoffLimits limits;
  limits.wait_us = 0;
  DigestHandoff d(limits, 64, 2);  // room for two chunks, and the worker does not run yet
  auto& [ch, out, h] = d;
  const auto c = context(4);
  const auto m = h.message_begin(c);
  ASSERT_TRUE(h.hashes(m));
  const Bytes content = random_bytes(4 * kChunkData, 13);
  h.message_data(m, content.data(), content.size());  // the third chunk finds no room
  const Bytes small = random_bytes(100, 14);
  const auto f = h.file_begin(m, part("2", "s.bin"), c);
  h.file_data(f, small.data(), small.size());
  h.file_end(f, PartEnd::complete);
  const uint64_t ticket = h.message_end(m, true, nullptr, c);
  for (int i = 0; i < 5 && h.pending(); ++i) {
    ch.run_worker();
    h.poll();
  }
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0]["file"]["sha256"], sha256_hex(small)) << "the attachment is whole";
  EXPECT_FALSE(out.events[0]["file"].contains("message_sha256"));
  ASSERT_EQ(out.verdicts.size(), 1u);
  EXPECT_FALSE(out.verdicts[0]["verdict"].contains("message_sha256"));
  uint8_t sha[32];
  bool known = true;
  ASSERT_TRUE(h.take_digest(ticket, sha, known));
  EXPECT_FALSE(known);
  EXPECT_EQ(h.stats().digests_lost, 1u);
}

TEST(AttachmentHandoff, MessageHashWithoutFreeRecordsIsTheCallers) {
  HandoffLimits limits;
  limits.max_files = 1;
  DigestHandoff d(limits);
  auto& [ch, out, h] = d;
  const auto c0 = context(0), c1 = context(1);
  const auto m0 = h.message_begin(c0);
  EXPECT_TRUE(h.hashes(m0)) << "the one file record carries its content";
  const auto m1 = h.message_begin(c1);
  EXPECT_FALSE(h.hashes(m1)) << "no file record left: the caller hashes";
  EXPECT_EQ(h.message_end(m1, true, kMessageSha, c1), 0u);
  ASSERT_EQ(out.verdicts.size(), 1u);
  EXPECT_EQ(out.verdicts[0]["verdict"]["message_sha256"], kMessageShaHex);
  EXPECT_EQ(h.stats().digests_inline, 1u);
  // Another reading of a DATA stream is always hashed by the caller.
  records::MessageContext reading = context(2);
  reading.reading = records::Reading::split;
  EXPECT_FALSE(h.hashes(h.message_begin(reading)));
}

// At most max_open_digests contents stream to the workers at once; the next is the caller's until a
// hash comes in.
TEST(AttachmentHandoff, MessageHashesOpenAtOnceAreBounded) {
  HandoffLimits limits;
  limits.max_open_digests = 1;
  DigestHandoff d(limits);
  auto& [ch, out, h] = d;
  const auto c0 = context(0), c1 = context(1);
  const auto a = h.message_begin(c0);
  EXPECT_TRUE(h.hashes(a));
  const auto b = h.message_begin(c1);
  EXPECT_FALSE(h.hashes(b)) << "one is open: the second is the caller's";
  const uint64_t t = h.message_end(a, true, nullptr, c0);
  h.poll();
  ch.run_worker();
  h.poll();
  uint8_t sha[32];
  bool known = false;
  ASSERT_TRUE(h.take_digest(t, sha, known));
  EXPECT_TRUE(known);
  EXPECT_TRUE(h.hashes(h.message_begin(context(2)))) << "its hash is in: room again";
  EXPECT_EQ(h.stats().digests_inline, 1u);
}

TEST(AttachmentWorker, InFlightLimitRefusesWithOverload) {
  WorkerLimits limits;
  limits.max_in_flight = 1;
  QueueChannel ch(limits, 8, 8);
  Capture out;
  AttachmentHandoff h(HandoffLimits{}, ch, out, 0);
  const auto c = context(0);
  const auto m = h.message_begin(c);
  const auto a = h.file_begin(m, part("2", "a.bin"), c);
  const auto b = h.file_begin(m, part("3", "b.bin"), c);
  h.file_data(a, reinterpret_cast<const uint8_t*>("aaaa"), 4);
  h.file_data(b, reinterpret_cast<const uint8_t*>("bbbb"), 4);
  h.poll();  // both first chunks reach the worker while a is open
  ch.run_worker();
  h.file_end(a, PartEnd::complete);
  h.file_end(b, PartEnd::complete);
  h.message_end(m, true, kMessageSha, c);
  ch.run_worker();
  h.poll();
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0]["file"]["sha256"], sha256_hex(Bytes{'a', 'a', 'a', 'a'}));
  EXPECT_EQ(out.events[1]["file"]["unscannable"], "overload");
  EXPECT_EQ(ch.worker_.stats().in_flight_full, 1u);
  EXPECT_EQ(ch.worker_.stats().stray_chunks, 1u) << "b's last chunk found no state";
}

}  // namespace
}  // namespace sluice::pipeline
