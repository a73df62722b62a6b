#include "pipeline/attachment_handoff.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "pipeline/chunk_transport.h"

namespace sluice::pipeline {
namespace {

using records::Text;

constexpr std::size_t kName = records::kFileNameBytes;  // file name bytes kept (UTF-8); longer names keep their end
constexpr std::size_t kType = records::kContentTypeBytes;
constexpr std::size_t kPath = records::kMimePathBytes;
constexpr uint32_t kNil = UINT32_MAX;
constexpr unsigned kSlotBits = 24;  // attachment id: rx (8) | generation (32) | slot (24)

// What a message's events need once its session slot has moved on.
using Context = records::MessageContext;

struct Message {
  bool used = false, ended = false;
  bool awaiting = false;     // asked the responder, waiting for on_verdict
  uint32_t generation = 0;   // in the ticket: an answer for an earlier user of the record is stale
  std::chrono::steady_clock::time_point deadline;
  uint32_t outstanding = 0;  // files without their result
  uint32_t first = kNil, last = kNil;
  uint32_t next_free = kNil;
  uint8_t sha256[32];
  Context ctx;
};

struct Member {
  uint32_t next = kNil;
  WorkResult r;  // name, hashes, type, depth (the record as the worker sent it)
};

struct File {
  bool used = false, done = false, hashed = false, truncated = false, uuencoded = false;
  uint64_t id = 0;
  uint32_t message = kNil, next = kNil, next_free = kNil;
  uint32_t first_member = kNil, last_member = kNil, members = 0;
  Text<kPath> path;
  Text<kName> filename, alt_filename;
  Text<kType> content_type;
  Text<16> disposition;
  TransferEncoding encoding{};
  uint64_t size = 0;
  FileType type = FileType::unknown;
  Unscannable unscannable = Unscannable::none;
  Text<records::kDetailBytes> detail;
  uint8_t sha256[32];

  // What the MIME headers say; the worker's part is unknown yet.
  void describe(const PartInfo& part) noexcept {
    path.set(part.path);
    filename.set_keep_end(part.filename);
    alt_filename.set_keep_end(part.alt_filename);
    content_type.set_keep_end(part.content_type);  // as every field of 128 bytes or more
    disposition.set(part.disposition);
    encoding = part.encoding;
    uuencoded = part.uuencoded;
    size = 0;
    type = FileType::unknown;
    unscannable = Unscannable::none;
    detail.len = 0;
  }
};

}  // namespace

// The records; the chunks go through the transport (chunk_transport.h), which tells of results
// and given-up files through this client.
struct AttachmentHandoff::Impl final : TransportClient {
  Impl(const HandoffLimits& l, ChunkChannel& ch, records::RecordSink& o, unsigned rx)
      : transport(ch, file_slots(l), l.wait_us, *this), out(o), rx(rx) {
    messages.resize(std::max<uint32_t>(1, l.max_messages));
    files.resize(file_slots(l));
    members.resize(l.max_members);
    for (uint32_t i = 0; i < messages.size(); ++i) messages[i].next_free = i + 1 < messages.size() ? i + 1 : kNil;
    for (uint32_t i = 0; i < files.size(); ++i) files[i].next_free = i + 1 < files.size() ? i + 1 : kNil;
    for (uint32_t i = 0; i < members.size(); ++i) members[i].next = i + 1 < members.size() ? i + 1 : kNil;
    free_message = 0;
    free_file = 0;
    free_member = members.empty() ? kNil : 0;
    awaiting.resize(messages.size());
  }
  static uint32_t file_slots(const HandoffLimits& l) noexcept {
    return std::min<uint32_t>(std::max<uint32_t>(1, l.max_files), (1u << kSlotBits) - 1);
  }

  // ---- records ----
  uint32_t take_message() noexcept {
    const uint32_t m = free_message;
    if (m == kNil) return kNil;
    free_message = messages[m].next_free;
    Message& msg = messages[m];
    msg.used = true;
    msg.ended = false;
    msg.awaiting = false;
    ++msg.generation;
    msg.outstanding = 0;
    msg.first = msg.last = kNil;
    ++used_messages;
    return m;
  }
  void free_message_record(uint32_t m) noexcept {
    Message& msg = messages[m];
    for (uint32_t f = msg.first; f != kNil;) {
      const uint32_t next = files[f].next;
      free_file_record(f);
      f = next;
    }
    msg.used = false;
    msg.next_free = free_message;
    free_message = m;
    --used_messages;
  }
  void free_file_record(uint32_t f) noexcept {
    File& file = files[f];
    for (uint32_t k = file.first_member; k != kNil;) {
      const uint32_t next = members[k].next;
      members[k].next = free_member;
      free_member = k;
      k = next;
    }
    transport.close(f);
    file.used = false;
    file.next_free = free_file;
    free_file = f;
  }

  // ---- results and events ----
  // The transport gave the file up: it is unscannable `overload`.
  void on_overload(uint32_t slot) noexcept override {
    File& f = files[slot];
    f.unscannable = Unscannable::overload;
    f.hashed = false;
    finish_file(slot);
  }
  void finish_file(uint32_t slot) noexcept {
    File& f = files[slot];
    if (f.done) return;
    f.done = true;
    transport.close(slot);
    Message& m = messages[f.message];
    --m.outstanding;
    if (m.ended && m.outstanding == 0) decide(f.message);
  }

  // ---- the verdict seam ----
  static uint64_t ticket_of(uint32_t m, uint32_t generation) noexcept { return uint64_t{generation} << 32 | m; }
  // Every result is in: decide now, or ask and wait.
  void decide(uint32_t m) noexcept {
    Message& msg = messages[m];
    if (msg.awaiting) return;
    if (!responder) return write_message(m, MessageDecision::no_policy);
    uint32_t files_n = 0;
    for (uint32_t f = msg.first; f != kNil; f = files[f].next) ++files_n;
    if (!responder->ask(ticket_of(m, msg.generation), msg.ctx, files_n)) {
      ++stats.verdicts_unasked;
      return write_message(m, MessageDecision::unasked);
    }
    ++stats.verdicts_asked;
    msg.awaiting = true;
    msg.deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(verdict_deadline_us);
    awaiting[(awaiting_head + n_awaiting++) % awaiting.size()] = ticket_of(m, msg.generation);
  }
  // Deadlines are equal for all, so the oldest question expires first: only the head is looked at.
  void expire_verdicts(bool all) noexcept {
    const auto now = std::chrono::steady_clock::now();
    while (n_awaiting) {
      const uint64_t t = awaiting[awaiting_head];
      const uint32_t m = static_cast<uint32_t>(t);
      Message& msg = messages[m];
      const bool live = msg.used && msg.awaiting && msg.generation == static_cast<uint32_t>(t >> 32);
      if (live && !all && msg.deadline > now) return;
      awaiting_head = (awaiting_head + 1) % awaiting.size();
      --n_awaiting;
      if (!live) continue;  // answered meanwhile
      ++stats.verdicts_timeout;
      msg.awaiting = false;
      write_message(m, MessageDecision::timeout);
    }
  }
  void on_verdict(uint64_t ticket, MessageDecision decision) noexcept {
    const uint32_t m = static_cast<uint32_t>(ticket);
    if (m >= messages.size() || !messages[m].used || !messages[m].awaiting ||
        messages[m].generation != static_cast<uint32_t>(ticket >> 32)) {
      ++stats.verdicts_stale;
      return;
    }
    ++stats.verdicts_answered;
    messages[m].awaiting = false;
    write_message(m, decision);
  }

  void write_message(uint32_t m, MessageDecision decision) noexcept {
    Message& msg = messages[m];
    if (responder) responder->decided(msg.ctx, decision);
    for (uint32_t f = msg.first; f != kNil; f = files[f].next) {
      const File& file = files[f];
      write_file(file, msg.ctx, &msg.sha256);
      for (uint32_t k = file.first_member; k != kNil; k = members[k].next)
        write_member(members[k].r, file, msg.ctx, &msg.sha256);
    }
    free_message_record(m);
  }

  void write_file(const File& f, const Context& ctx, const uint8_t (*message_sha256)[32]) noexcept {
    records::FileRecord& r = file_rec;
    r.timestamp_us = ctx.now_us;
    r.flow = ctx.flow;
    r.transaction = ctx.transaction;
    r.filename = f.filename;
    r.filename_alt = f.alt_filename;
    r.content_type = f.content_type;
    r.disposition = f.disposition;
    r.encoding = static_cast<uint8_t>(f.encoding);
    r.size = f.size;
    r.hashed = f.hashed;
    std::memcpy(r.sha256, f.sha256, 32);
    r.has_message_sha256 = message_sha256 != nullptr;
    if (message_sha256) std::memcpy(r.message_sha256, *message_sha256, 32);
    r.mime_path = f.path;
    r.uuencoded = f.uuencoded;
    r.truncated = f.truncated;
    r.file_type = static_cast<uint8_t>(f.type);
    r.mismatch = f.hashed ? type_mismatch(f.type, f.filename.view(), f.content_type.view()) : 0;
    r.members = f.members;
    r.unscannable = static_cast<uint8_t>(f.unscannable);
    r.unscannable_detail = f.detail;
    out.put(r);
  }

  void write_member(const WorkResult& w, const File& parent, const Context& ctx,
                    const uint8_t (*message_sha256)[32]) noexcept {
    records::MemberRecord& r = member_rec;
    r.timestamp_us = ctx.now_us;
    r.flow = ctx.flow;
    r.transaction = ctx.transaction;
    r.filename.set(std::string_view(w.name, w.name_len));
    r.size = w.size;
    r.hashed = w.hashed;
    std::memcpy(r.sha256, w.sha256, 32);
    std::memcpy(r.parent_sha256, w.parent_sha256, 32);
    r.depth = w.depth;
    r.has_message_sha256 = message_sha256 != nullptr;
    if (message_sha256) std::memcpy(r.message_sha256, *message_sha256, 32);
    r.mime_path = parent.path;
    r.archive_filename = parent.filename;
    r.file_type = static_cast<uint8_t>(w.type);
    r.mismatch = w.mismatch;
    r.unscannable = static_cast<uint8_t>(w.unscannable);
    out.put(r);
  }

  // A file that cannot be tracked is reported at once, with what its headers say.
  void write_untracked(const PartInfo& part, const records::MessageContext& c) noexcept {
    ++stats.records_full;
    ++stats.overload;
    File& f = spare;
    f.describe(part);
    f.truncated = false;
    f.hashed = false;
    f.members = 0;
    f.unscannable = Unscannable::overload;
    f.detail.set("workers.max_pending_messages or workers.max_pending_files reached: size and hash not computed");
    write_file(f, c, nullptr);
  }

  void on_result(const WorkResult& r) noexcept override {
    ++stats.results;
    const uint32_t slot = static_cast<uint32_t>(r.attachment & ((1u << kSlotBits) - 1));
    if (slot >= files.size() || !files[slot].used || files[slot].id != r.attachment || files[slot].done) {
      ++stats.stale_results;
      return;
    }
    File& f = files[slot];
    if (!r.final) {
      ++f.members;
      const uint32_t k = free_member;
      if (k == kNil) {
        ++stats.members_unheld;
        write_member(r, f, messages[f.message].ctx, nullptr);
        return;
      }
      free_member = members[k].next;
      members[k].next = kNil;
      members[k].r = r;
      (f.last_member == kNil ? f.first_member : members[f.last_member].next) = k;
      f.last_member = k;
      return;
    }
    f.hashed = r.hashed;
    f.type = r.type;
    f.unscannable = r.unscannable;
    f.detail.set_keep_end(std::string_view(r.detail, r.detail_len));
    std::memcpy(f.sha256, r.sha256, 32);
    finish_file(slot);
  }

  ChunkTransport transport;
  records::RecordSink& out;
  records::FileRecord file_rec;      // filled per event, then copied by the sink
  records::MemberRecord member_rec;
  unsigned rx;
  uint32_t generation = 0;
  std::vector<Message> messages;
  std::vector<File> files;
  std::vector<Member> members;
  uint32_t free_message = kNil, free_file = kNil, free_member = kNil;
  std::size_t used_messages = 0;
  VerdictResponder* responder = nullptr;
  uint32_t verdict_deadline_us = 0;
  std::vector<uint64_t> awaiting;  // tickets in the order asked (at most one per message record)
  std::size_t awaiting_head = 0, n_awaiting = 0;
  File spare;
  HandoffStats stats;
};

AttachmentHandoff::AttachmentHandoff(const HandoffLimits& limits, ChunkChannel& channel, records::RecordSink& out,
                                     unsigned rx_index)
    : impl_(std::make_unique<Impl>(limits, channel, out, rx_index)) {}

AttachmentHandoff::~AttachmentHandoff() = default;

AttachmentHandoff::Handle AttachmentHandoff::message_begin(const records::MessageContext& ctx) noexcept {
  Impl& d = *impl_;
  const uint32_t m = d.take_message();
  if (m == kNil) {
    ++d.stats.records_full;
    return kNone;
  }
  d.messages[m].ctx = ctx;
  return m;
}

AttachmentHandoff::Handle AttachmentHandoff::file_begin(Handle message, const PartInfo& part,
                                                        const records::MessageContext& ctx) noexcept {
  Impl& d = *impl_;
  if (message == kNone || d.free_file == kNil) {
    d.write_untracked(part, ctx);
    return kNone;
  }
  const uint32_t s = d.free_file;
  d.free_file = d.files[s].next_free;
  File& f = d.files[s];
  f.used = true;
  f.done = f.hashed = f.truncated = false;
  f.id = (uint64_t{d.rx} << kAttachmentRxShift) | (uint64_t{++d.generation} << kSlotBits) | s;
  f.message = message;
  f.next = kNil;
  f.first_member = f.last_member = kNil;
  f.members = 0;
  f.describe(part);
  Message& m = d.messages[message];
  (m.last == kNil ? m.first : d.files[m.last].next) = s;
  m.last = s;
  ++m.outstanding;
  ++d.stats.files;
  d.transport.open(s, f.id);
  return s;
}

void AttachmentHandoff::file_data(Handle file, const uint8_t* data, std::size_t len) noexcept {
  if (file == kNone) return;
  Impl& d = *impl_;
  File& f = d.files[file];
  f.size += len;
  if (f.done) return;  // given up (overload): only counted
  d.transport.write(file, data, len);
}

void AttachmentHandoff::file_end(Handle file, PartEnd how) noexcept {
  if (file == kNone) return;
  Impl& d = *impl_;
  File& f = d.files[file];
  f.truncated = how == PartEnd::truncated;
  if (f.done) return;
  d.transport.end(file, f.truncated ? AttachmentEnd::truncated : AttachmentEnd::complete);
}

void AttachmentHandoff::message_end(Handle message, bool, const uint8_t (&sha256)[32],
                                    const records::MessageContext& ctx) noexcept {
  if (message == kNone) return;
  Impl& d = *impl_;
  Message& m = d.messages[message];
  m.ended = true;
  m.ctx.now_us = ctx.now_us;
  std::memcpy(m.sha256, sha256, 32);
  if (m.outstanding == 0) d.decide(message);
}

void AttachmentHandoff::poll() noexcept {
  Impl& d = *impl_;
  d.transport.poll();
  if (d.n_awaiting) d.expire_verdicts(false);
}

void AttachmentHandoff::set_responder(VerdictResponder* responder, uint32_t deadline_us) noexcept {
  impl_->responder = responder;
  impl_->verdict_deadline_us = deadline_us;
}

void AttachmentHandoff::on_verdict(uint64_t ticket, MessageDecision decision) noexcept {
  impl_->on_verdict(ticket, decision);
}

void AttachmentHandoff::drain(const std::atomic<bool>& abort) noexcept {
  Impl& d = *impl_;
  while (d.used_messages && !abort.load(std::memory_order_relaxed)) {
    poll();
    cpu_relax();
  }
  // Given up on: every message still waiting is written with what is known.
  for (uint32_t m = 0; m < d.messages.size(); ++m) {
    Message& msg = d.messages[m];
    if (!msg.used) continue;
    msg.ended = true;
    for (uint32_t f = msg.first; f != kNil;) {
      const uint32_t next = d.files[f].next;
      File& file = d.files[f];
      if (!file.done) {
        ++d.stats.overload;
        file.unscannable = Unscannable::overload;
        file.hashed = false;
        file.detail.set("no result from the worker before shutdown");
        d.finish_file(f);  // the last one writes and frees the message
        if (!msg.used) break;
      }
      f = next;
    }
    if (msg.used && msg.outstanding == 0) d.decide(m);
  }
  d.expire_verdicts(/*all=*/true);  // no answer will come any more
}

std::size_t AttachmentHandoff::pending() const noexcept { return impl_->used_messages; }

HandoffStats AttachmentHandoff::stats() const noexcept {
  HandoffStats s = impl_->stats;
  const TransportStats& t = impl_->transport.stats();
  s.chunks = t.chunks;
  s.bytes = t.bytes;
  s.overload += t.overload;
  s.no_chunk = t.no_chunk;
  s.ring_full = t.ring_full;
  return s;
}
void AttachmentHandoff::on_result(const WorkResult& r) noexcept { impl_->on_result(r); }

const char* message_decision_name(MessageDecision d) noexcept {
  switch (d) {
    case MessageDecision::no_policy: return "no_policy";
    case MessageDecision::pass: return "pass";
    case MessageDecision::reject: return "reject";
    case MessageDecision::defer: return "defer";
    case MessageDecision::timeout: return "timeout";
    case MessageDecision::unasked: return "unasked";
  }
  return "?";
}

}  // namespace sluice::pipeline
