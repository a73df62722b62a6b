#include "pipeline/attachment_worker.h"

#include "pipeline/analysis_groups.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

namespace sluice::pipeline {
namespace {

constexpr uint32_t kNoSlot = UINT32_MAX;

struct Attachment {
  uint64_t id = 0;
  bool open = false;
  bool buffering = false;  // still keeping the bytes: may be an archive
  bool too_big = false;    // an archive that did not fit its buffer
  bool probed = false;     // the head was typed to decide whether to keep buffering
  bool digest = false;     // a message's content (kChunkDigest): hashed only
  uint64_t size = 0;
  EVP_MD_CTX* sha = nullptr;
  std::unique_ptr<FileTypeDetector> type;
  std::vector<uint8_t> buffer;
  SampleWriter sample;     // its bytes for analysis, while its type may be selected
};

std::size_t put_text(char* dst, std::size_t cap, std::string_view s) noexcept {
  const std::size_t n = std::min(cap, s.size());
  std::memcpy(dst, s.data(), n);
  return n;
}

}  // namespace

struct AttachmentWorker::Impl final : ArchiveVisitor {
  Impl(const WorkerLimits& l, SampleBlocks* samples)
      : limits(l), samples(samples), slots(std::max<uint32_t>(1, l.max_in_flight)), explorer(l.archive), probe(l.type_head_bytes),
        member_type(l.type_head_bytes) {
    index_mask = 1;
    while (index_mask < 2 * slots.size()) index_mask <<= 1;
    index.assign(index_mask, kNoSlot);
    --index_mask;
    for (auto& a : slots) {
      a.sha = EVP_MD_CTX_new();
      a.type = std::make_unique<FileTypeDetector>(l.type_head_bytes);
    }
    member_sha = EVP_MD_CTX_new();
    free_slots.reserve(slots.size());
    for (uint32_t i = static_cast<uint32_t>(slots.size()); i-- > 0;) free_slots.push_back(i);
  }
  ~Impl() override {
    for (auto& a : slots) EVP_MD_CTX_free(a.sha);
    EVP_MD_CTX_free(member_sha);
  }

  // Open addressing (linear probing, backward-shift deletion) from attachment id to slot.
  std::size_t home(uint64_t id) const noexcept { return (id * 0x9E3779B97F4A7C15ull >> 32) & index_mask; }
  uint32_t find(uint64_t id) const noexcept {
    for (std::size_t i = home(id);; i = (i + 1) & index_mask) {
      if (index[i] == kNoSlot) return kNoSlot;
      if (slots[index[i]].id == id) return index[i];
    }
  }
  void insert(uint64_t id, uint32_t slot) noexcept {
    std::size_t i = home(id);
    while (index[i] != kNoSlot) i = (i + 1) & index_mask;
    index[i] = slot;
  }
  void erase(uint64_t id) noexcept {
    std::size_t i = home(id);
    while (slots[index[i]].id != id) i = (i + 1) & index_mask;
    index[i] = kNoSlot;
    for (std::size_t j = (i + 1) & index_mask; index[j] != kNoSlot; j = (j + 1) & index_mask) {
      const std::size_t h = home(slots[index[j]].id);
      // Move j back to the hole at i when its home is not in (i, j] cyclically.
      if (((j - h) & index_mask) >= ((j - i) & index_mask)) {
        index[i] = index[j];
        index[j] = kNoSlot;
        i = j;
      }
    }
  }

  void on_chunk(const WorkChunk& c, ResultOutput& out) noexcept {
    ++stats.chunks;
    stats.bytes += c.len;
    uint32_t s = find(c.attachment);
    if (c.flags & kChunkFirst) {
      if (s != kNoSlot) close(s);  // a repeated first chunk: the RX side restarted the id
      if (free_slots.empty()) {
        // Later chunks of this id find no state and are ignored; its result is sent now.
        ++stats.in_flight_full;
        return refuse(c.attachment, out);
      }
      s = free_slots.back();
      free_slots.pop_back();
      open(s, c.attachment, (c.flags & kChunkDigest) != 0);
    } else if (s == kNoSlot) {
      ++stats.stray_chunks;
      return;
    }
    Attachment& a = slots[s];
    if (c.len) add(a, c.data, c.len);
    if (c.flags & kChunkLast) finish(s, c.end, out);
  }

  void open(uint32_t s, uint64_t id, bool digest) noexcept {
    Attachment& a = slots[s];
    a.id = id;
    a.open = true;
    a.digest = digest;
    a.buffering = !digest;
    a.too_big = false;
    a.probed = false;
    a.size = 0;
    a.buffer.clear();
    a.sample.begin(samples && limits.analysis_groups && !digest ? samples : nullptr, limits.max_sample_bytes);
    EVP_DigestInit_ex(a.sha, EVP_sha256(), nullptr);
    a.type->reset();
    insert(id, s);
  }

  void close(uint32_t s) noexcept {
    Attachment& a = slots[s];
    erase(a.id);
    stop_buffering(a);
    a.sample.abandon();
    a.open = false;
    free_slots.push_back(s);
  }

  void stop_buffering(Attachment& a) noexcept {
    buffered -= a.buffer.size();
    a.buffering = false;
    if (a.buffer.capacity() > limits.type_head_bytes) std::vector<uint8_t>().swap(a.buffer);  // give big ones back
    a.buffer.clear();
  }

  void add(Attachment& a, const uint8_t* p, std::size_t n) noexcept {
    EVP_DigestUpdate(a.sha, p, n);
    a.size += n;
    if (a.digest) return;
    a.type->feed(p, n);
    if (a.sample.active()) a.sample.append(p, n);
    if (!a.buffering) return;
    if (a.buffer.size() + n > limits.max_archive_bytes || buffered + n > limits.max_buffered_bytes) {
      a.too_big = true;  // matters only if the file turns out to be an archive
      stop_buffering(a);
      return;
    }
    try {
      a.buffer.insert(a.buffer.end(), p, p + n);
    } catch (...) {
      a.too_big = true;
      stop_buffering(a);
      return;
    }
    buffered += n;
    // Past the typing head, keep buffering only what looks like an archive.
    if (!a.probed && a.buffer.size() >= limits.type_head_bytes) {
      a.probed = true;
      probe.reset();
      probe.feed(a.buffer.data(), limits.type_head_bytes);
      const FileType head = probe.finish();
      // A file whose head is of no selected type keeps no sample (its final type is looked at
      // again at its end).
      if (a.sample.active() && !analysis_selects(limits.analysis_groups, head)) a.sample.give_up(SampleMiss::type);
      if (!is_archive(head)) stop_buffering(a);
    }
  }

  void refuse(uint64_t id, ResultOutput& out) noexcept {
    WorkResult& r = result;
    clear(r, id);
    r.final = true;
    r.unscannable = Unscannable::overload;
    r.detail_len = static_cast<uint16_t>(put_text(r.detail, sizeof(r.detail), "worker.max_in_flight attachments already open"));
    r.sample_miss = SampleMiss::unreadable;
    count(r);
    out.put(r);
  }

  static void clear(WorkResult& r, uint64_t id) noexcept {
    r.attachment = id;
    r.final = false;
    r.hashed = false;
    r.type = FileType::unknown;
    r.unscannable = Unscannable::none;
    r.mismatch = 0;
    r.index = 0;
    r.parent = -1;
    r.depth = 0;
    r.size = 0;
    r.name_len = 0;
    r.detail_len = 0;
    r.sample = nullptr;
    r.sample_miss = SampleMiss::disabled;
  }

  void count(const WorkResult& r) noexcept {
    ++(r.final ? stats.attachments : stats.members);
    const auto u = static_cast<std::size_t>(r.unscannable);
    if (u < std::size(stats.unscannable)) ++stats.unscannable[u];
  }

  void finish(uint32_t s, AttachmentEnd end, ResultOutput& out) noexcept {
    Attachment& a = slots[s];
    WorkResult& r = result;
    clear(r, a.id);
    r.final = true;
    r.size = a.size;
    unsigned int n = 0;
    EVP_DigestFinal_ex(a.sha, r.sha256, &n);
    r.hashed = end != AttachmentEnd::overload;
    if (a.digest) {  // a message's content: its hash is all there is to it
      ++stats.digests;  // not an attachment: not in `attachments` nor `unscannable`
      if (!r.hashed) r.unscannable = Unscannable::overload;
      out.put(r);
      return close(s);
    }
    r.type = a.type->finish();
    if (end == AttachmentEnd::overload) {
      r.unscannable = Unscannable::overload;
    } else if (is_archive(r.type)) {
      if (!a.buffering) {
        r.unscannable = Unscannable::limit_exceeded;
        r.detail_len = static_cast<uint16_t>(put_text(
            r.detail, sizeof(r.detail),
            a.too_big ? "archive larger than its buffer (archives.max_buffer_mb, archives.buffer_total_mb)"
                      : "not an archive in its first bytes, an archive at its end: not buffered"));
      } else {
        explore(a, out);
      }
    }
    keep_sample(a, r);
    count(r);
    out.put(r);
    close(s);
  }

  // The attachment's sample goes with its result when its final type is selected.
  void keep_sample(Attachment& a, WorkResult& r) noexcept {
    if (!samples || !limits.analysis_groups) return;
    if (r.unscannable == Unscannable::overload || !r.hashed) {
      a.sample.give_up(SampleMiss::unreadable);
    } else if (!analysis_selects(limits.analysis_groups, r.type)) {
      a.sample.give_up(SampleMiss::type);
    }
    r.sample = a.sample.take();
    r.sample_miss = r.sample ? SampleMiss::none : a.sample.miss();
    note_sample(r);
  }

  void note_sample(const WorkResult& r) noexcept {
    if (r.sample) ++stats.samples;
    else if (r.sample_miss != SampleMiss::type && static_cast<std::size_t>(r.sample_miss) < std::size(stats.sample_misses))
      ++stats.sample_misses[static_cast<std::size_t>(r.sample_miss)];
  }

  // A member's sample: a copy of its bytes when its type is selected.
  void keep_member_sample(WorkResult& r, const uint8_t* data, std::size_t len) noexcept {
    if (!samples || !limits.analysis_groups) return;
    if (!r.hashed) {
      r.sample_miss = SampleMiss::unreadable;
    } else if (!analysis_selects(limits.analysis_groups, r.type)) {
      r.sample_miss = SampleMiss::type;
    } else {
      member_sample.begin(samples, limits.max_sample_bytes);
      member_sample.append(data, len);
      r.sample = member_sample.take();
      r.sample_miss = r.sample ? SampleMiss::none : member_sample.miss();
    }
    note_sample(r);
  }

  // Archive members: each hashed and typed; archives among them explored (ArchiveExplorer limits).
  void explore(Attachment& a, ResultOutput& out) noexcept {
    ++stats.archives;
    attachment_id = a.id;
    output = &out;
    std::memcpy(parent_sha[0], result.sha256, 32);
    ArchiveResult ar = explorer.explore(a.buffer.data(), a.buffer.size(), *this);
    stats.decoder_memory_refused += ar.memory_refused;
    // explore() reused `member`, not `result`: the final record is intact.
    result.unscannable = ar.reason;
    result.detail_len = static_cast<uint16_t>(put_text(result.detail, sizeof(result.detail), ar.detail));
  }

  bool on_member(const ArchiveMember& m, const uint8_t* data, std::size_t len) override {
    WorkResult& r = member;
    clear(r, attachment_id);
    r.index = m.index;
    r.parent = m.parent;
    r.depth = m.depth;
    r.size = len;
    r.unscannable = m.reason;
    r.name_len = static_cast<uint16_t>(put_text(r.name, sizeof(r.name), m.path));
    const uint32_t d = std::min<uint32_t>(m.depth, kMaxDepth);
    std::memcpy(r.parent_sha256, parent_sha[d - 1], 32);
    // An encrypted member has no readable content: no hash, no type.
    r.hashed = m.reason != Unscannable::encrypted;
    bool descend = false;
    if (r.hashed) {
      unsigned int n = 0;
      EVP_DigestInit_ex(member_sha, EVP_sha256(), nullptr);
      EVP_DigestUpdate(member_sha, data, len);
      EVP_DigestFinal_ex(member_sha, r.sha256, &n);
      member_type.reset();
      member_type.feed(data, len);
      r.type = member_type.finish();
      r.mismatch = type_mismatch(r.type, m.path, {});
      descend = m.complete && is_archive(r.type);
      if (d < kMaxDepth) std::memcpy(parent_sha[d], r.sha256, 32);
    }
    keep_member_sample(r, data, len);
    count(r);
    output->put(r);
    return descend;
  }

  static constexpr uint32_t kMaxDepth = 64;
  WorkerLimits limits;
  SampleBlocks* samples;
  SampleWriter member_sample;
  std::vector<Attachment> slots;
  std::vector<uint32_t> free_slots;
  std::vector<uint32_t> index;
  std::size_t index_mask = 0;
  uint64_t buffered = 0;
  ArchiveExplorer explorer;
  FileTypeDetector probe;
  FileTypeDetector member_type;
  EVP_MD_CTX* member_sha = nullptr;
  WorkResult result{};
  WorkResult member{};
  uint64_t attachment_id = 0;
  ResultOutput* output = nullptr;
  uint8_t parent_sha[kMaxDepth][32]{};
  WorkerStats stats;
};

AttachmentWorker::AttachmentWorker(const WorkerLimits& limits, SampleBlocks* samples)
    : impl_(std::make_unique<Impl>(limits, samples)) {}
AttachmentWorker::~AttachmentWorker() = default;
void AttachmentWorker::on_chunk(const WorkChunk& c, ResultOutput& out) noexcept { impl_->on_chunk(c, out); }
const WorkerStats& AttachmentWorker::stats() const noexcept { return impl_->stats; }

}  // namespace sluice::pipeline
