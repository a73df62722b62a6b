#include "pipeline/message_records.h"

#include <time.h>

#include <algorithm>
#include <cstring>

#include "pipeline/verdict_cache.h"

namespace sluice::pipeline {
namespace {

constexpr unsigned kSlotBits = 24;  // attachment id: rx (8) | generation (32) | slot (24)

uint64_t ticket_of(uint32_t m, uint32_t generation) noexcept { return uint64_t{generation} << 32 | m; }

// Cache expiry is wall-clock time (verdict_cache.h). vDSO: no system call.
int64_t wall_clock_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// The opening every `file` event shares (attachment and member): when, which flow and message.
template <typename R>
void stamp(R& r, const records::MessageContext& ctx, const uint8_t (*message_sha256)[32]) noexcept {
  r.timestamp_us = ctx.now_us;
  r.flow = ctx.flow;
  r.transaction = ctx.transaction;
  r.reading = ctx.reading;
  r.has_message_sha256 = message_sha256 != nullptr;
  if (message_sha256) std::memcpy(r.message_sha256, *message_sha256, 32);
}

}  // namespace

const VerdictPolicy MessageRecords::kDefaultPolicy{};

uint32_t MessageRecords::file_slots(const HandoffLimits& l) noexcept {
  return std::min<uint32_t>(std::max<uint32_t>(1, l.max_files), (1u << kSlotBits) - 1);
}

MessageRecords::MessageRecords(const HandoffLimits& l, records::RecordSink& out, unsigned rx, ChunkTransport& transport)
    : transport_(transport),
      out_(out),
      rx_(rx),
      messages_(std::max<uint32_t>(1, l.max_messages)),
      files_(file_slots(l)),
      members_(l.max_members),
      digests_(l.digests ? 4 * messages_.size() : 0),
      digests_on_(l.digests),
      max_open_digests_(l.max_open_digests),
      lookups_due_(messages_.size()),
      analysis_due_(messages_.size()) {}

void MessageRecords::File::describe(const PartInfo& part) noexcept {
  path.set(part.path);
  filename.set_keep_end(part.filename);
  alt_filename.set_keep_end(part.alt_filename);
  // Whole names only: the list is cut after the last name that fits.
  std::string_view names = part.filenames;
  if (names.size() > records::kFileNamesBytes) {
    names = names.substr(0, records::kFileNamesBytes + 1);
    const std::size_t z = names.rfind('\0');
    names = z == std::string_view::npos ? std::string_view() : names.substr(0, z);
  }
  filenames.set(names);
  content_type.set_keep_end(part.content_type);  // as every field of 128 bytes or more
  disposition.set(part.disposition);
  encoding = part.encoding;
  uuencoded = part.uuencoded;
  reading = part.reading;
  same = false;
  size = 0;
  type = FileType::unknown;
  unscannable = Unscannable::none;
  detail.len = 0;
}

// ---- records ----

uint32_t MessageRecords::message_begin(const Context& ctx) noexcept {
  const uint32_t m = take_message();
  if (m == kNoRecord) {
    ++stats_.records_full;
    return kNoRecord;
  }
  messages_[m].ctx = ctx;
  if (rep_.spool)  // the other reading of a DATA stream is never spooled (nor quarantined)
    messages_[m].spool.begin(ctx.reading == records::Reading::primary ? rep_.spool : nullptr, rep_.spool_max_bytes);
  return m;
}

uint32_t MessageRecords::take_message() noexcept {
  const uint32_t m = messages_.take();
  if (m == kNoRecord) return kNoRecord;
  Message& msg = messages_[m];
  msg.used = true;
  msg.ended = false;
  msg.awaiting = false;
  ++msg.generation;
  msg.outstanding = 0;
  msg.first = msg.last = kNoRecord;
  msg.digest_file = msg.digest = kNoRecord;
  msg.sha_known = false;
  ++used_messages_;
  return m;
}

uint32_t MessageRecords::file_begin(uint32_t message, const PartInfo& part, const Context& ctx) noexcept {
  if (message == kNoRecord || files_.exhausted()) {
    write_untracked(part, ctx);
    return kNoRecord;
  }
  const uint32_t s = take_file(message, /*digest=*/false);
  files_[s].describe(part);
  Message& m = messages_[message];
  (m.last == kNoRecord ? m.first : files_[m.last].next) = s;
  m.last = s;
  ++stats_.files;
  return s;
}

uint32_t MessageRecords::take_file(uint32_t message, bool digest) noexcept {
  const uint32_t s = files_.take();
  File& f = files_[s];
  f.used = true;
  f.done = f.hashed = f.truncated = f.members_lost = false;
  f.digest = digest;
  f.id = (uint64_t{rx_} << kAttachmentRxShift) | (uint64_t{++generation_} << kSlotBits) | s;
  f.message = message;
  f.next = kNoRecord;
  f.first_member = f.last_member = kNoRecord;
  f.members = 0;
  f.verdict = records::FileVerdict{};
  f.sample = nullptr;
  f.sample_miss = SampleMiss::disabled;
  f.analysis_asked = false;
  ++messages_[message].outstanding;
  ++files_outstanding_;
  return s;
}

bool MessageRecords::file_data(uint32_t file, std::size_t len) noexcept {
  File& f = files_[file];
  f.size += len;
  return !f.done;  // given up (overload) or answered early: only counted
}

bool MessageRecords::file_end(uint32_t file, bool truncated) noexcept {
  File& f = files_[file];
  f.truncated = truncated;
  return !f.done;
}

uint32_t MessageRecords::open_digest(uint32_t message) noexcept {
  if (!digests_on_ || message == kNoRecord) return kNoRecord;
  if (files_.exhausted() || digests_.exhausted() || open_digests_ >= max_open_digests_) {
    ++stats_.digests_inline;
    return kNoRecord;
  }
  const uint32_t d = digests_.take();
  Digest& dg = digests_[d];
  dg.used = true;
  dg.ready = dg.known = false;
  if (++dg.generation == 0) dg.generation = 1;  // a ticket is never 0
  const uint32_t s = take_file(message, /*digest=*/true);
  Message& m = messages_[message];
  m.digest_file = s;
  m.digest = d;
  ++open_digests_;
  ++stats_.digests;
  return s;
}

uint64_t MessageRecords::digest_ticket(uint32_t message) const noexcept {
  if (message == kNoRecord) return 0;
  const uint32_t d = messages_[message].digest;
  return d == kNoRecord ? 0 : (uint64_t{digests_[d].generation} << 32) | d;
}

bool MessageRecords::take_digest(uint64_t ticket, uint8_t (&sha256)[32], bool& known) noexcept {
  const uint32_t d = static_cast<uint32_t>(ticket);
  if (d >= digests_.size() || !digests_[d].used || digests_[d].generation != ticket >> 32) {
    known = false;  // names no digest: not expected (every ticket is taken once)
    return true;
  }
  Digest& dg = digests_[d];
  if (!dg.ready) return false;
  known = dg.known;
  if (known) std::memcpy(sha256, dg.sha256, 32);
  dg.used = false;
  digests_.put(d);
  return true;
}

uint64_t MessageRecords::message_end(uint32_t message, const uint8_t* sha256, const Context& ctx) noexcept {
  Message& m = messages_[message];
  const uint64_t ticket = digest_ticket(message);
  m.ended = true;
  ++ended_waiting_;
  m.ctx.now_us = ctx.now_us;
  m.ctx.smuggling = ctx.smuggling;
  if (sha256) {
    std::memcpy(m.sha256, sha256, 32);
    m.sha_known = true;
  }
  if (m.outstanding == 0) decide(message);
  return ticket;
}

void MessageRecords::free_message(uint32_t m) noexcept {
  Message& msg = messages_[m];
  files_outstanding_ -= msg.outstanding;
  for (uint32_t f = msg.first; f != kNoRecord;) {
    const uint32_t next = files_[f].next;
    free_file(f);
    f = next;
  }
  if (msg.digest_file != kNoRecord) finish_digest(msg.digest_file, nullptr, false);  // taken off above
  if (msg.ended) --ended_waiting_;
  msg.spool.abandon();
  msg.used = false;
  messages_.put(m);
  --used_messages_;
}

void MessageRecords::free_file(uint32_t f) noexcept {
  File& file = files_[f];
  for (uint32_t k = file.first_member; k != kNoRecord;) {
    const uint32_t next = members_[k].next;
    release_sample(members_[k].r.sample);
    members_[k].r.sample = nullptr;
    members_.put(k);
    k = next;
  }
  release_sample(file.sample);
  file.sample = nullptr;
  transport_.close(f);
  file.used = false;
  files_.put(f);
}

// ---- results ----

void MessageRecords::on_result(const WorkResult& r) noexcept {
  ++stats_.results;
  const uint32_t slot = static_cast<uint32_t>(r.attachment & ((1u << kSlotBits) - 1));
  if (slot >= files_.built() || !files_[slot].used || files_[slot].id != r.attachment || files_[slot].done) {
    ++stats_.stale_results;
    release_sample(r.sample);  // nobody will ask for it
    return;
  }
  File& f = files_[slot];
  if (f.digest) {
    if (r.final) finish_digest(slot, &r);
    return;
  }
  if (!r.final) {
    ++f.members;
    const uint32_t k = members_.take();
    if (k == kNoRecord) {
      // Written at once, without a look-up: the attachment cannot be called scanned whole.
      ++stats_.members_unheld;
      write_member(r, f, messages_[f.message].ctx, nullptr, records::FileVerdict{});
      release_sample(r.sample);
      f.members_lost = true;
      return;
    }
    members_[k].next = kNoRecord;
    members_[k].file = slot;
    members_[k].verdict = records::FileVerdict{};
    members_[k].analysis_asked = false;
    members_[k].r = r;
    (f.last_member == kNoRecord ? f.first_member : members_[f.last_member].next) = k;
    f.last_member = k;
    return;
  }
  f.hashed = r.hashed;
  f.type = r.type;
  f.unscannable = r.unscannable;
  f.detail.set_keep_end(std::string_view(r.detail, r.detail_len));
  f.sample = r.sample;
  f.sample_miss = r.sample_miss;
  if (f.members_lost && f.unscannable == Unscannable::none) {
    f.unscannable = Unscannable::overload;
    f.detail.set("workers.max_pending_members reached: members were reported without being looked up");
  }
  std::memcpy(f.sha256, r.sha256, 32);
  finish_file(slot);
}

void MessageRecords::on_overload(uint32_t file) noexcept {
  File& f = files_[file];
  if (f.digest) return finish_digest(file, nullptr);
  f.unscannable = Unscannable::overload;
  f.hashed = false;
  finish_file(file);
}

void MessageRecords::finish_file(uint32_t file) noexcept {
  File& f = files_[file];
  if (f.done) return;
  f.done = true;
  transport_.close(file);
  Message& m = messages_[f.message];
  --m.outstanding;
  --files_outstanding_;
  if (m.ended && m.outstanding == 0) decide(f.message);
}

void MessageRecords::finish_digest(uint32_t file, const WorkResult* r, bool counted) noexcept {
  File& f = files_[file];
  if (f.done) return;
  f.done = true;
  const uint32_t message = f.message;
  Message& m = messages_[message];
  Digest& dg = digests_[m.digest];
  dg.ready = true;
  dg.known = r && r->hashed;
  if (dg.known) {
    std::memcpy(dg.sha256, r->sha256, 32);
    std::memcpy(m.sha256, r->sha256, 32);
    m.sha_known = true;
  } else {
    ++stats_.digests_lost;
  }
  m.digest_file = kNoRecord;
  --open_digests_;
  free_file(file);  // its stream closes
  if (!counted) return;
  --m.outstanding;
  --files_outstanding_;
  if (m.ended && m.outstanding == 0) decide(message);
}

// ---- the verdict seam ----

bool MessageRecords::look_up(uint64_t ticket, uint32_t item, const uint8_t* sha256, records::FileVerdict& v,
                             int64_t now_ms) noexcept {
  v = records::FileVerdict{};
  if (rep_.cache && rep_.cache->lookup(sha256, now_ms, v)) {
    ++stats_.cache_hits;
    return false;
  }
  ++stats_.cache_misses;
  v = records::FileVerdict{};
  records::LookupRequest rq{};
  rq.ticket = ticket;
  rq.item = item;
  std::memcpy(rq.sha256, sha256, 32);
  if (!rep_.channel->ask(rq)) {
    ++stats_.lookups_queue_full;
    v.error = records::LookupError::queue_full;
    return false;
  }
  ++stats_.lookups;
  return true;
}

// A file of another MIME reading whose bytes are those of an earlier file of the message (the
// primary reading's, or another reading's) says nothing new: it is neither looked up nor written.
void MessageRecords::drop_same_readings(Message& msg) noexcept {
  for (uint32_t f = msg.first; f != kNoRecord; f = files_[f].next) {
    File& file = files_[f];
    if (file.reading == MimeReading::primary || !file.hashed) continue;
    for (uint32_t g = msg.first; g != f; g = files_[g].next) {
      const File& other = files_[g];
      if (!other.same && other.hashed && std::memcmp(other.sha256, file.sha256, 32) == 0) {
        file.same = true;
        release_sample(file.sample);
        file.sample = nullptr;
        ++stats_.readings_same;
        break;
      }
    }
  }
}

// Every result is in: look the files up, then decide at once or when the answers are in.
void MessageRecords::decide(uint32_t m) noexcept {
  Message& msg = messages_[m];
  if (msg.awaiting) return;
  drop_same_readings(msg);
  if (!rep_.channel) return write_message(m);
  const int64_t now_ms = wall_clock_ms();
  const uint64_t ticket = ticket_of(m, msg.generation);
  uint32_t asked = 0;
  for (uint32_t f = msg.first; f != kNoRecord; f = files_[f].next) {
    File& file = files_[f];
    if (file.same) continue;
    if (file.hashed) asked += look_up(ticket, f, file.sha256, file.verdict, now_ms);
    for (uint32_t k = file.first_member; k != kNoRecord; k = members_[k].next)
      if (members_[k].r.hashed) asked += look_up(ticket, kMemberItem | k, members_[k].r.sha256, members_[k].verdict, now_ms);
  }
  if (asked == 0) return after_lookups(m);
  wait_for(m, asked, /*analysis=*/false);
}

void MessageRecords::wait_for(uint32_t m, uint32_t questions, bool analysis) noexcept {
  Message& msg = messages_[m];
  msg.lookups = questions;
  msg.awaiting = true;
  msg.analysing = analysis;
  msg.deadline = std::chrono::steady_clock::now() +
                 std::chrono::microseconds(analysis ? rep_.analysis_deadline_us : rep_.deadline_us);
  (analysis ? analysis_due_ : lookups_due_).push(ticket_of(m, msg.generation), [this, analysis](uint64_t t) {
    const Message& x = messages_[static_cast<uint32_t>(t)];
    return x.used && x.awaiting && x.analysing == analysis && x.generation == static_cast<uint32_t>(t >> 32);
  });
}

namespace {

records::UploadCriterion criterion_of(SampleMiss miss) noexcept {
  switch (miss) {
    case SampleMiss::type: return records::UploadCriterion::type;
    case SampleMiss::size: return records::UploadCriterion::size;
    case SampleMiss::memory: return records::UploadCriterion::memory;
    case SampleMiss::none:
    case SampleMiss::disabled:
    case SampleMiss::unreadable: break;
  }
  return records::UploadCriterion::unreadable;
}

}  // namespace

bool MessageRecords::ask_analysis(uint32_t m, uint32_t item, const Text<records::kFileNameBytes>& name,
                                  const uint8_t* sha256, uint64_t size, FileType type, bool member,
                                  SampleBlock*& sample, SampleMiss miss, records::FileVerdict& v, bool& asked) noexcept {
  asked = false;
  const bool candidate = v.reputation == records::Reputation::unknown && v.upload_wanted;
  if (candidate && messages_[m].ctx.reading != records::Reading::primary) {
    // The other reading's files share the transaction's identity with the primary's: looked up,
    // never uploaded (the message carries the smuggling action).
    v.analysis = records::AnalysisStatus::not_sent;
    v.criterion = records::UploadCriterion::reading;
  } else if (!candidate) {  // every file's event says what analysis did with it
    v.analysis = records::AnalysisStatus::not_sent;
    const bool looked_up = v.reputation != records::Reputation::none || v.error != records::LookupError::none;
    v.criterion = looked_up ? records::UploadCriterion::not_wanted : records::UploadCriterion::unreadable;
  } else if (!sample) {
    v.analysis = records::AnalysisStatus::not_sent;
    v.criterion = criterion_of(miss);
  } else {
    AnalysisRequest rq{};
    rq.ticket = ticket_of(m, messages_[m].generation);
    rq.item = item;
    rq.file_type = static_cast<uint8_t>(type);
    rq.member = member;
    std::memcpy(rq.sha256, sha256, 32);
    rq.size = size;
    rq.sample = sample;
    rq.flow = messages_[m].ctx.flow;
    rq.transaction = messages_[m].ctx.transaction;
    rq.filename.set_keep_end(name.view());
    if (rep_.channel->ask_analysis(rq)) {
      sample = nullptr;  // the control plane's now
      asked = true;
      ++stats_.analysis_asked;
      return true;
    }
    ++stats_.analysis_queue_full;
    v.analysis = records::AnalysisStatus::not_sent;
    v.criterion = records::UploadCriterion::queue_full;
  }
  // Not asked about: nobody needs its bytes any more.
  release_sample(sample);
  sample = nullptr;
  return false;
}

void MessageRecords::after_lookups(uint32_t m) noexcept {
  if (!rep_.analysis) return write_message(m);
  Message& msg = messages_[m];
  uint32_t asked = 0;
  for (uint32_t f = msg.first; f != kNoRecord; f = files_[f].next) {
    File& file = files_[f];
    if (file.same) continue;
    asked += ask_analysis(m, f, file.filename, file.sha256, file.size, file.type, false, file.sample, file.sample_miss,
                          file.verdict, file.analysis_asked);
    for (uint32_t k = file.first_member; k != kNoRecord; k = members_[k].next) {
      Member& mb = members_[k];
      Text<records::kFileNameBytes> name;
      name.set_keep_end(std::string_view(mb.r.name, mb.r.name_len));
      asked += ask_analysis(m, kMemberItem | k, name, mb.r.sha256, mb.r.size, mb.r.type, true, mb.r.sample,
                            mb.r.sample_miss, mb.verdict, mb.analysis_asked);
    }
  }
  if (asked == 0) return write_message(m);
  wait_for(m, asked, /*analysis=*/true);
}

// The verdict an answer is for: its item in message m, if that item is still what was asked.
records::FileVerdict* MessageRecords::item_verdict(uint32_t m, uint32_t item, const uint8_t* sha256) noexcept {
  if (item & kMemberItem) {
    const uint32_t k = item & ~kMemberItem;
    if (k >= members_.built()) return nullptr;
    Member& member = members_[k];
    if (member.file >= files_.built() || !files_[member.file].used || files_[member.file].message != m ||
        std::memcmp(member.r.sha256, sha256, 32) != 0)
      return nullptr;
    return &member.verdict;
  }
  if (item >= files_.built() || !files_[item].used || files_[item].message != m ||
      std::memcmp(files_[item].sha256, sha256, 32) != 0)
    return nullptr;
  return &files_[item].verdict;
}

void MessageRecords::on_answer(const records::LookupAnswer& a) noexcept {
  const uint32_t m = static_cast<uint32_t>(a.ticket);
  records::FileVerdict* v = nullptr;
  bool* asked = nullptr;
  if (m < messages_.built() && messages_[m].used && messages_[m].awaiting && messages_[m].analysing == a.analysis &&
      messages_[m].generation == static_cast<uint32_t>(a.ticket >> 32)) {
    v = item_verdict(m, a.item, a.sha256);
    if (v && a.analysis)
      asked = (a.item & kMemberItem) ? &members_[a.item & ~kMemberItem].analysis_asked : &files_[a.item].analysis_asked;
  }
  const bool fresh = v && (a.analysis ? asked && *asked
                                      : v->reputation == records::Reputation::none && v->error == records::LookupError::none);
  if (!fresh) {
    ++stats_.answers_stale;
    return;
  }
  Message& msg = messages_[m];
  if (a.analysis) {
    ++stats_.analysis_answers;
    *asked = false;
    v->analysis = a.verdict.analysis == records::AnalysisStatus::none ? records::AnalysisStatus::not_sent : a.verdict.analysis;
    v->criterion = a.verdict.criterion;
    // Analysis may have learnt the result already (analysed before): the reputation it gives.
    if (a.verdict.reputation != records::Reputation::none) {
      v->reputation = a.verdict.reputation;
      v->threat_score = a.verdict.threat_score;
      v->threat_name = a.verdict.threat_name;
    }
  } else {
    ++stats_.answers;
    *v = a.verdict;
    if (v->reputation == records::Reputation::none && v->error == records::LookupError::none)
      v->error = records::LookupError::service_unavailable;  // an answer must say something
  }
  if (--msg.lookups == 0) {
    msg.awaiting = false;
    a.analysis ? write_message(m) : after_lookups(m);
  }
}

// Deadlines are equal for all of a stage, so the oldest question expires first: only the head is
// looked at. Look-ups without an answer by then are `budget_exhausted`; analysis questions,
// `not_sent` (`timeout`).
void MessageRecords::expire(bool all) noexcept {
  const auto now = std::chrono::steady_clock::now();
  for (const bool analysis : {false, true}) {
    DeadlineQueue& due = analysis ? analysis_due_ : lookups_due_;
    while (!due.empty()) {
      const uint64_t t = due.front();
      const uint32_t m = static_cast<uint32_t>(t);
      Message& msg = messages_[m];
      const bool live = msg.used && msg.awaiting && msg.analysing == analysis &&
                        msg.generation == static_cast<uint32_t>(t >> 32);
      if (live && !all && msg.deadline > now) break;
      due.pop();
      if (!live) continue;  // answered meanwhile
      auto expire_lookup = [this](bool hashed, records::FileVerdict& v) {
        if (!hashed || v.reputation != records::Reputation::none || v.error != records::LookupError::none) return;
        v.error = records::LookupError::budget_exhausted;
        ++stats_.lookups_expired;
      };
      auto expire_analysis = [this](bool& asked, records::FileVerdict& v) {
        if (!asked) return;
        asked = false;
        v.analysis = records::AnalysisStatus::not_sent;
        v.criterion = records::UploadCriterion::timeout;
        ++stats_.analysis_expired;
      };
      for (uint32_t f = msg.first; f != kNoRecord; f = files_[f].next) {
        analysis ? expire_analysis(files_[f].analysis_asked, files_[f].verdict)
                 : expire_lookup(files_[f].hashed, files_[f].verdict);
        for (uint32_t k = files_[f].first_member; k != kNoRecord; k = members_[k].next)
          analysis ? expire_analysis(members_[k].analysis_asked, members_[k].verdict)
                   : expire_lookup(members_[k].r.hashed, members_[k].verdict);
      }
      msg.awaiting = false;
      // Out of time for look-ups: no analysis question either (its answer could not be awaited).
      write_message(m);
    }
  }
}

void MessageRecords::finish_all() noexcept {
  // Given up on: every message still waiting is written with what is known.
  for (uint32_t m = 0; m < messages_.built(); ++m) {
    Message& msg = messages_[m];
    if (!msg.used) continue;
    if (!msg.ended) {
      msg.ended = true;
      ++ended_waiting_;
    }
    if (msg.digest_file != kNoRecord) {
      finish_digest(msg.digest_file, nullptr);  // may write the message
      if (!msg.used || msg.awaiting) continue;
    }
    for (uint32_t f = msg.first; f != kNoRecord;) {
      const uint32_t next = files_[f].next;
      File& file = files_[f];
      if (!file.done) {
        ++stats_.overload;
        file.unscannable = Unscannable::overload;
        file.hashed = false;
        file.detail.set("no result from the worker before shutdown");
        finish_file(f);  // the last one asks or writes
        if (!msg.used || msg.awaiting) break;
      }
      f = next;
    }
    if (msg.used && !msg.awaiting && msg.outstanding == 0) decide(m);
  }
  expire(/*all=*/true);  // no answer will come any more
}

// ---- events ----

void MessageRecords::write_message(uint32_t m) noexcept {
  Message& msg = messages_[m];
  VerdictBuilder verdict(verdict_rec_);
  const uint8_t(*message_sha)[32] = msg.sha_known ? &msg.sha256 : nullptr;
  for (uint32_t f = msg.first; f != kNoRecord; f = files_[f].next) {
    const File& file = files_[f];
    if (file.same) continue;
    if (file.reading != MimeReading::primary) ++stats_.readings;
    write_file(file, msg.ctx, message_sha);
    verdict.add({file.filename.view(), file.sha256, file.hashed, false, file.unscannable, &file.verdict});
    for (uint32_t k = file.first_member; k != kNoRecord; k = members_[k].next) {
      const Member& member = members_[k];
      write_member(member.r, file, msg.ctx, message_sha, member.verdict);
      verdict.add({std::string_view(member.r.name, member.r.name_len), member.r.sha256, member.r.hashed, true,
                   member.r.unscannable, &member.verdict});
    }
  }
  verdict.finish(*policy_);
  records::VerdictRecord& v = verdict_rec_;
  // An ambiguous end of data (SMTP smuggling): its own action, whatever the files say.
  v.smuggling = msg.ctx.smuggling;
  if (v.smuggling && policy_->smuggling > v.action) v.action = policy_->smuggling;
  v.reading = msg.ctx.reading;
  const bool primary = msg.ctx.reading == records::Reading::primary;
  v.timestamp_us = msg.ctx.now_us;
  v.flow = msg.ctx.flow;
  v.transaction = msg.ctx.transaction;
  v.has_message_sha256 = msg.sha_known;
  std::memcpy(v.message_sha256, msg.sha256, 32);
  ++stats_.verdicts[static_cast<unsigned>(v.disposition)];
  if (v.disposition == records::Disposition::pending && rep_.spool && primary) {
    // Its bytes go to the File Analysis quarantine; the verdict record follows on the event ring.
    const uint64_t size = msg.spool.size();
    SampleBlock* bytes = msg.spool.take();
    if (bytes && !msg.sha_known) {  // the quarantine knows a message by its hash
      release_sample(bytes);
      bytes = nullptr;
    }
    if (!bytes) {
      ++stats_.spool_misses;
    } else {
      MessageCopy c{msg.ctx.flow, msg.ctx.transaction, {}, size, bytes};
      std::memcpy(c.message_sha256, msg.sha256, 32);
      if (rep_.channel && rep_.channel->send_message(c)) {
        ++stats_.spooled;
      } else {
        ++stats_.spool_queue_full;
        release_sample(bytes);
      }
    }
  }
  v.enforcement = records::Enforcement::none;
  v.reference.set("");
  if (!listener_ || !primary || !listener_->decided(msg.ctx, v)) out_.put(v);
  free_message(m);
}

void MessageRecords::write_file(const File& f, const Context& ctx, const uint8_t (*message_sha256)[32]) noexcept {
  records::FileRecord& r = file_rec_;
  stamp(r, ctx, message_sha256);
  r.filename = f.filename;
  r.filename_alt = f.alt_filename;
  r.filenames = f.filenames;
  r.mime_reading = static_cast<uint8_t>(f.reading);
  r.content_type = f.content_type;
  r.disposition = f.disposition;
  r.encoding = static_cast<uint8_t>(f.encoding);
  r.size = f.size;
  r.hashed = f.hashed;
  std::memcpy(r.sha256, f.sha256, 32);
  r.mime_path = f.path;
  r.uuencoded = f.uuencoded;
  r.truncated = f.truncated;
  r.file_type = static_cast<uint8_t>(f.type);
  r.mismatch = f.hashed ? type_mismatch(f.type, f.filename.view(), f.content_type.view()) : 0;
  r.members = f.members;
  r.unscannable = static_cast<uint8_t>(f.unscannable);
  r.unscannable_detail = f.detail;
  r.verdict = f.verdict;
  ++stats_.file_events[static_cast<unsigned>(r.verdict.reputation) & 3];
  out_.put(r);
}

void MessageRecords::write_member(const WorkResult& w, const File& parent, const Context& ctx,
                                  const uint8_t (*message_sha256)[32], const records::FileVerdict& verdict) noexcept {
  records::MemberRecord& r = member_rec_;
  stamp(r, ctx, message_sha256);
  r.filename.set(std::string_view(w.name, w.name_len));
  r.size = w.size;
  r.hashed = w.hashed;
  std::memcpy(r.sha256, w.sha256, 32);
  std::memcpy(r.parent_sha256, w.parent_sha256, 32);
  r.depth = w.depth;
  r.mime_path = parent.path;
  r.archive_filename = parent.filename;
  r.file_type = static_cast<uint8_t>(w.type);
  r.mismatch = w.mismatch;
  r.unscannable = static_cast<uint8_t>(w.unscannable);
  r.verdict = verdict;
  ++stats_.file_events[static_cast<unsigned>(r.verdict.reputation) & 3];
  out_.put(r);
}

// A file that cannot be tracked is reported at once, with what its headers say.
void MessageRecords::write_untracked(const PartInfo& part, const Context& ctx) noexcept {
  ++stats_.records_full;
  ++stats_.overload;
  File& f = spare_;
  f.describe(part);
  f.truncated = false;
  f.hashed = false;
  f.members = 0;
  f.unscannable = Unscannable::overload;
  f.verdict = records::FileVerdict{};
  f.detail.set("workers.max_pending_messages or workers.max_pending_files reached: size and hash not computed");
  write_file(f, ctx, nullptr);
}

}  // namespace sluice::pipeline
