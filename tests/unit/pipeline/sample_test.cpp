// pipeline/sample and the worker's samples (attachment_worker): files of a selected analysis group
// keep their exact bytes in a chain from the worker's pool (attachments and archive members),
// others do not (type), a file over the size bound or a full pool gives its chain back (size,
// memory), and every chain comes back to its pool whatever happens to the file: the pool is full
// again once the hand-off has written the messages.
#include "pipeline/sample.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "pipeline/analysis_groups.h"
#include "pipeline/attachment_handoff.h"
#include "pipeline/attachment_worker.h"
#include "tests/unit/pipeline/archive_builders.h"

namespace sluice::pipeline {
namespace {

std::string random_text(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, ' ');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string pdf(std::size_t n, unsigned seed) { return "%PDF-1.7\n" + random_text(n, seed) + "\n%%EOF\n"; }

struct Results final : ResultOutput {
  std::vector<WorkResult> got;
  void put(const WorkResult& r) noexcept override { got.push_back(r); }
  ~Results() override {
    for (auto& r : got) release_sample(r.sample);
  }
};

WorkerLimits limits(uint64_t max_sample = 1 << 20) {
  WorkerLimits l;
  l.analysis_groups = default_analysis_groups();
  l.max_sample_bytes = max_sample;
  return l;
}

// Sends `data` as one attachment in 4 KiB chunks.
void send(AttachmentWorker& w, uint64_t id, const std::string& data, Results& out) {
  WorkChunk c{};
  c.attachment = id;
  std::size_t at = 0;
  bool first = true;
  do {
    const std::size_t n = std::min(data.size() - at, sizeof(c.data));
    std::memcpy(c.data, data.data() + at, n);
    c.len = static_cast<uint32_t>(n);
    at += n;
    c.flags = (first ? kChunkFirst : 0) | (at == data.size() ? kChunkLast : 0);
    c.end = AttachmentEnd::complete;
    w.on_chunk(c, out);
    first = false;
  } while (at < data.size());
}

TEST(AnalysisGroups, NamesMembersAndDefaults) {
  EXPECT_EQ(analysis_group_named("macro_documents"), AnalysisGroup::macro_documents);
  EXPECT_FALSE(analysis_group_named("images"));
  const uint32_t d = default_analysis_groups();
  for (FileType t : {FileType::doc, FileType::docx, FileType::docm, FileType::xls, FileType::xlsm, FileType::ppt,
                     FileType::pdf, FileType::pe, FileType::zip, FileType::javascript})
    EXPECT_TRUE(analysis_selects(d, t)) << file_type_name(t);
  for (FileType t : {FileType::text, FileType::png, FileType::html, FileType::unknown})
    EXPECT_FALSE(analysis_selects(d, t)) << file_type_name(t);
  EXPECT_TRUE(analysis_selects(1u << static_cast<unsigned>(AnalysisGroup::web), FileType::html));
  // Every type is in at most one group.
  for (std::size_t t = 0; t < kFileTypeCount; ++t) {
    int groups = 0;
    for (unsigned g = 0; g < kAnalysisGroups; ++g) groups += analysis_selects(1u << g, static_cast<FileType>(t));
    EXPECT_LE(groups, 1) << file_type_name(static_cast<FileType>(t));
  }
}

TEST(Samples, ASelectedTypeKeepsItsExactBytesOthersDoNot) {
  HeapSampleBlocks pool(64);
  AttachmentWorker w(limits(), &pool);
  Results out;
  const std::string doc = pdf(200'000, 1), text(150'000, 'x');
  send(w, 1, doc, out);
  send(w, 2, text, out);
  ASSERT_EQ(out.got.size(), 2u);
  ASSERT_NE(out.got[0].sample, nullptr);
  EXPECT_EQ(out.got[0].sample_miss, SampleMiss::none);
  EXPECT_EQ(sample_bytes(out.got[0].sample), doc);
  EXPECT_EQ(out.got[1].sample, nullptr);
  EXPECT_EQ(out.got[1].sample_miss, SampleMiss::type);
  EXPECT_EQ(w.stats().samples, 1u);
  EXPECT_EQ(pool.available(), 64u - 4u);  // 200 KiB in blocks of 64 KiB less their header
}

TEST(Samples, OverTheSizeBoundOrAFullPoolGivesTheChainBack) {
  HeapSampleBlocks pool(3);
  AttachmentWorker w(limits(100'000), &pool);
  Results out;
  send(w, 1, pdf(150'000, 2), out);  // over 100 KB
  ASSERT_EQ(out.got.size(), 1u);
  EXPECT_EQ(out.got[0].sample, nullptr);
  EXPECT_EQ(out.got[0].sample_miss, SampleMiss::size);
  EXPECT_EQ(pool.available(), 3u);
  AttachmentWorker w2(limits(10 << 20), &pool);
  send(w2, 2, pdf(300'000, 3), out);  // needs 5 blocks, the pool has 3
  EXPECT_EQ(out.got[1].sample_miss, SampleMiss::memory);
  EXPECT_EQ(pool.available(), 3u);
  EXPECT_EQ(w2.stats().sample_misses[static_cast<unsigned>(SampleMiss::memory)], 1u);
}

TEST(Samples, WithoutAPoolNothingIsKept) {
  AttachmentWorker w(limits(), nullptr);
  Results out;
  send(w, 1, pdf(1000, 4), out);
  EXPECT_EQ(out.got[0].sample, nullptr);
  EXPECT_EQ(out.got[0].sample_miss, SampleMiss::disabled);
}

TEST(Samples, ArchiveMembersOfASelectedTypeKeepTheirBytes) {
  HeapSampleBlocks pool(64);
  AttachmentWorker w(limits(), &pool);
  Results out;
  const std::string inner = pdf(5000, 5);
  const std::string zip = test::written_by_libarchive([](archive* a) { return archive_write_set_format_zip(a); },
                                                      "docs/inner.pdf", inner);
  send(w, 1, zip, out);
  ASSERT_EQ(out.got.size(), 2u);  // the member, then the attachment
  EXPECT_FALSE(out.got[0].final);
  ASSERT_NE(out.got[0].sample, nullptr);
  EXPECT_EQ(sample_bytes(out.got[0].sample), inner);
  EXPECT_TRUE(out.got[1].final);
  ASSERT_NE(out.got[1].sample, nullptr);  // archives are a group too
  EXPECT_EQ(sample_bytes(out.got[1].sample), zip);
}

TEST(Samples, TheHandOffGivesEveryChainBack) {
  HeapSampleBlocks pool(64);
  struct Sink final : records::RecordSink {
    void emit(const void*, std::size_t) noexcept override {}
  } sink;
  LocalChannel channel(limits(), 64, &pool);
  AttachmentHandoff h(HandoffLimits{}, channel, sink, 0);
  channel.set_handler(&h);
  records::MessageContext ctx{};
  PartInfo part{};
  part.path = "2";
  part.filename = "a.pdf";
  part.attachment = true;
  for (uint64_t t = 0; t < 5; ++t) {
    ctx.transaction = t;
    const auto m = h.message_begin(ctx);
    const auto f = h.file_begin(m, part, ctx);
    const std::string doc = pdf(70'000, static_cast<unsigned>(t));
    h.file_data(f, reinterpret_cast<const uint8_t*>(doc.data()), doc.size());
    h.file_end(f, PartEnd::complete);
    const uint8_t sha[32] = {};
    h.message_end(m, true, sha, ctx);
  }
  EXPECT_EQ(h.pending(), 0u);
  EXPECT_EQ(pool.available(), 64u);
  EXPECT_EQ(channel.worker().stats().samples, 5u);
}

}  // namespace
}  // namespace sluice::pipeline
