// Internal to pipeline/: the record half of the attachment hand-off (attachment_handoff.h). Holds,
// on the RX lcore that owns the flows, a record per message, per attachment and per archive member
// until the message can be written: every result attached to its attachment, then, once the
// message has ended and every attachment has its final result, the verdict seam (verdict_seam.h)
// decides it and the message's `file` events are written in MIME order (each attachment, then its
// members). Knows nothing of chunks: the attachment's bytes go through ChunkTransport, which this
// unit only tells when an attachment is done with (close), so its partial chunk goes back.
//
// Pools are fixed at construction (HandoffLimits); an exhausted one is counted and the file is
// still reported (at once, as AttachmentHandoff documents). One lcore, no locks, no allocation
// after construction.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "pipeline/attachment_handoff.h"
#include "pipeline/chunk_transport.h"
#include "pipeline/message_verdict.h"
#include "pipeline/verdict_seam.h"
#include "records/reserved_region.h"

namespace sluice::pipeline {

inline constexpr uint32_t kNoRecord = UINT32_MAX;

// A fixed pool of records and its free list (last given back, first taken again), so that taking
// and giving back never allocate. The records live in memory reserved at construction and are
// constructed the first time they are taken (ascending, after every record given back), so a pool
// costs its pages only as far as it has been used (reserved_region.h). Only records taken at least
// once (index < built()) may be accessed.
template <typename T>
class RecordPool {
 public:
  explicit RecordPool(uint32_t n)
      : region_(sizeof(T) * std::size_t{n}), slots_(static_cast<T*>(region_.data())), n_(n) {}
  ~RecordPool() {
    for (uint32_t i = 0; i < built_; ++i) slots_[i].~T();
  }
  RecordPool(const RecordPool&) = delete;
  RecordPool& operator=(const RecordPool&) = delete;
  // A free record's index, or kNoRecord.
  uint32_t take() noexcept {
    const uint32_t i = free_;
    if (i != kNoRecord) {
      free_ = next_free_[i];
      return i;
    }
    if (built_ == n_) return kNoRecord;
    new (&slots_[built_]) T();
    next_free_[built_] = kNoRecord;
    return built_++;
  }
  void put(uint32_t i) noexcept {
    next_free_[i] = free_;
    free_ = i;
  }
  bool exhausted() const noexcept { return free_ == kNoRecord && built_ == n_; }
  uint32_t size() const noexcept { return n_; }
  // Records taken at least once: [0, built()).
  uint32_t built() const noexcept { return built_; }
  T& operator[](uint32_t i) noexcept { return slots_[i]; }
  const T& operator[](uint32_t i) const noexcept { return slots_[i]; }

 private:
  records::ReservedRegion region_;
  T* slots_;
  uint32_t n_;
  uint32_t built_ = 0;
  // The free list threads through next_free_, in the same reserved memory scheme.
  records::ReservedRegion next_region_{sizeof(uint32_t) * std::size_t{n_}};
  uint32_t* next_free_ = static_cast<uint32_t*>(next_region_.data());
  uint32_t free_ = kNoRecord;
};

struct RecordStats {
  uint64_t files = 0;             // attachments given a record
  uint64_t results = 0;           // result records received
  uint64_t overload = 0;          // attachments unscannable `overload` (back-pressure, no record, drain)
  uint64_t records_full = 0;      // message or file record pool exhausted
  uint64_t members_unheld = 0;    // member events written before their message ended
  uint64_t stale_results = 0;     // results of attachments already reported (after overload)
  uint64_t readings = 0;          // files of other MIME readings written (mime_readings.h)
  uint64_t readings_same = 0;     // ... dropped: the same bytes as an earlier file of the message
  uint64_t cache_hits = 0;        // hashes answered by the verdict cache on the lcore
  uint64_t cache_misses = 0;      // hashes the cache did not have (asked, or queue_full)
  uint64_t lookups = 0;           // look-ups asked of the control plane
  uint64_t answers = 0;           // their answers
  uint64_t answers_stale = 0;     // answers for messages already decided (late, unknown ticket)
  uint64_t lookups_queue_full = 0;  // the look-up ring had no room: `queue_full`
  uint64_t lookups_expired = 0;   // no answer within the look-up deadline: `budget_exhausted`
  uint64_t verdicts[4] = {};      // messages decided, by records::Disposition
  uint64_t file_events[4] = {};   // file events (attachments and archive members), by records::Reputation
  uint64_t analysis_asked = 0;    // upload candidates handed to the control plane
  uint64_t analysis_answers = 0;
  uint64_t analysis_queue_full = 0;  // no room in the lane: not_sent `queue_full`
  uint64_t analysis_expired = 0;  // no decision within the analysis deadline: not_sent `timeout`
  uint64_t spooled = 0;           // pending messages whose bytes went to the control plane
  uint64_t spool_misses = 0;      // pending messages not kept: larger than the bound, or the spool was full
  uint64_t spool_queue_full = 0;  // pending messages not kept: no room in the lane
  uint64_t digests = 0;           // messages whose content went to a worker to be hashed
  uint64_t digests_inline = 0;    // ... hashed on the RX lcore instead: no digest or file record free
  uint64_t digests_lost = 0;      // ... whose hash did not come back (back-pressure, the worker's
                                  // in-flight limit, shutdown): written without message_sha256
};

// Tickets in the order asked, each with the same deadline after its question (so the oldest
// expires first). At most one entry per message record and stage is live; the others are stale
// (answered meanwhile) and are skipped when they reach the head. Stale entries can pile up behind
// a live head (one record waits while another is reused many times): when the queue is full, push
// keeps only the live entries (there is always room then: at most one per record).
class DeadlineQueue {
 public:
  explicit DeadlineQueue(std::size_t n) : v_(n) {}
  template <class Live>
  void push(uint64_t t, Live&& live) noexcept {
    if (n_ == v_.size()) {
      std::size_t kept = 0;
      for (std::size_t i = 0; i < n_; ++i) {
        const uint64_t x = v_[(head_ + i) % v_.size()];
        if (live(x)) v_[(head_ + kept++) % v_.size()] = x;
      }
      n_ = kept;
      ++compactions_;
    }
    v_[(head_ + n_++) % v_.size()] = t;
  }
  uint64_t compactions() const noexcept { return compactions_; }
  bool empty() const noexcept { return n_ == 0; }
  uint64_t front() const noexcept { return v_[head_]; }
  void pop() noexcept {
    head_ = (head_ + 1) % v_.size();
    --n_;
  }

 private:
  std::vector<uint64_t> v_;
  std::size_t head_ = 0, n_ = 0;
  uint64_t compactions_ = 0;
};

class MessageRecords final : public AnswerHandler {
 public:
  // File records (and so transport streams): HandoffLimits::max_files, within what an attachment
  // id has room for.
  static uint32_t file_slots(const HandoffLimits& limits) noexcept;

  // `rx` goes into the attachment ids; `transport` is only told close(file).
  MessageRecords(const HandoffLimits& limits, records::RecordSink& out, unsigned rx, ChunkTransport& transport);

  // kNoRecord when the pool is exhausted (counted).
  uint32_t message_begin(const records::MessageContext& ctx) noexcept;
  // The message's content is hashed on a worker (HandoffLimits::digests): a file record (the
  // transport stream, returned; the caller opens it with the digest flag) and a digest record
  // (where the hash waits for the smtp event, digest_ticket()). kNoRecord when either pool is
  // exhausted (counted `digests_inline`): the caller hashes the message itself.
  uint32_t open_digest(uint32_t message) noexcept;
  // The open digest's stream, kNoRecord when there is none or it is done (result in, given up).
  uint32_t digest_stream(uint32_t message) const noexcept {
    if (message == kNoRecord) return kNoRecord;
    const uint32_t f = messages_[message].digest_file;
    return f != kNoRecord && !files_[f].done ? f : kNoRecord;
  }
  // Names the message's hash for take_digest(); 0: it has no digest.
  uint64_t digest_ticket(uint32_t message) const noexcept;
  // The hash named by `ticket`: false while the worker is on it; true once it is in (`known`
  // false: it was lost), and the ticket is spent.
  bool take_digest(uint64_t ticket, uint8_t (&sha256)[32], bool& known) noexcept;
  // The message's content as the reassembler delivers it (kept in the spool, when configured).
  void message_data(uint32_t message, const uint8_t* p, std::size_t n) noexcept {
    if (message != kNoRecord && rep_.spool) messages_[message].spool.append(p, n);
  }
  // kNoRecord when the file cannot be tracked: its event is written at once, unscannable `overload`.
  uint32_t file_begin(uint32_t message, const PartInfo& part, const records::MessageContext& ctx) noexcept;
  uint64_t attachment_id(uint32_t file) const noexcept { return files_[file].id; }
  // Counts the file's bytes; false when nothing more is to be sent (the file already has its result).
  bool file_data(uint32_t file, std::size_t len) noexcept;
  // Notes how the file ended; false as file_data().
  bool file_end(uint32_t file, bool truncated) noexcept;
  // `sha256`: the content's hash, computed by the caller; nullptr when a digest was opened.
  // Returns digest_ticket() (taken before the message may be written and its record freed).
  uint64_t message_end(uint32_t message, const uint8_t* sha256, const records::MessageContext& ctx) noexcept;

  void on_result(const WorkResult& r) noexcept;
  // The transport gave the file up: it is unscannable `overload`.
  void on_overload(uint32_t file) noexcept;

  // The verdict seam (verdict_seam.h). Without a channel nothing is looked up.
  void set_reputation(const ReputationSetup& setup) noexcept { rep_ = setup; }
  // The actions of the running configuration (its snapshot outlives its use here: the lcore
  // swaps the pointer when it takes a new snapshot). Null: the defaults.
  void set_policy(const VerdictPolicy* policy) noexcept { policy_ = policy ? policy : &kDefaultPolicy; }
  void set_listener(VerdictListener* listener) noexcept { listener_ = listener; }
  void on_answer(const records::LookupAnswer& a) noexcept override;
  // Decides the messages whose look-up or analysis deadline passed.
  void expire_verdicts() noexcept {
    if (!lookups_due_.empty() || !analysis_due_.empty()) expire(false);
  }
  // Shutdown: every message still held is written with what is known (files without a result
  // unscannable `overload`, look-ups unanswered `budget_exhausted`).
  void finish_all() noexcept;

  std::size_t pending() const noexcept { return used_messages_; }
  // Files handed to the workers whose result has not come (the workers' backlog).
  uint64_t files_outstanding() const noexcept { return files_outstanding_; }
  // Messages that have ended and wait for worker results or look-up answers (no more input is
  // needed to decide them).
  std::size_t ended_waiting() const noexcept { return ended_waiting_; }
  const RecordStats& stats() const noexcept { return stats_; }

 private:
  using Context = records::MessageContext;
  template <std::size_t N>
  using Text = records::Text<N>;

  static const VerdictPolicy kDefaultPolicy;
  // A look-up's item: a file record's index, or a member record's with this bit.
  static constexpr uint32_t kMemberItem = 0x80000000u;

  struct Message {
    bool used = false, ended = false;
    bool awaiting = false;     // look-ups or analysis questions asked, waiting for their answers
    bool analysing = false;    // the questions are analysis questions (else look-ups)
    uint32_t lookups = 0;      // of which this many are unanswered
    uint32_t generation = 0;   // in the ticket: an answer for an earlier user of the record is stale
    std::chrono::steady_clock::time_point deadline;
    SampleWriter spool;        // its bytes while it is decided (the RX spool), when configured
    uint32_t outstanding = 0;  // files without their result
    uint32_t first = kNoRecord, last = kNoRecord;  // its files, in MIME order
    uint32_t digest_file = kNoRecord;  // its content's stream to a worker, until the hash is in
    uint32_t digest = kNoRecord;       // the digest record the hash also goes to (for the ticket)
    bool sha_known = false;            // sha256 is valid
    uint8_t sha256[32];
    Context ctx;               // what its events need once its session slot has moved on
  };
  struct Member {
    uint32_t next = kNoRecord;
    uint32_t file = kNoRecord;      // the attachment it belongs to
    records::FileVerdict verdict;   // its look-up
    bool analysis_asked = false;
    WorkResult r;  // name, hashes, type, depth (the record as the worker sent it)
  };
  // A message's hash computed on a worker, kept until its smtp event takes it (take_digest):
  // the event may be written after the message's record is freed, or before the hash is in.
  struct Digest {
    bool used = false, ready = false, known = false;
    uint32_t generation = 0;
    uint8_t sha256[32];
  };
  struct File {
    bool used = false, done = false, hashed = false, truncated = false, uuencoded = false;
    bool digest = false;        // not an attachment: the message's content, hashed only
    bool members_lost = false;  // a member was written at once (no member record): not looked up
    bool same = false;          // another reading that gave the bytes of an earlier file: not written
    MimeReading reading = MimeReading::primary;
    uint64_t id = 0;
    uint32_t message = kNoRecord, next = kNoRecord;
    uint32_t first_member = kNoRecord, last_member = kNoRecord;
    uint64_t members = 0;
    Text<records::kMimePathBytes> path;
    Text<records::kFileNameBytes> filename, alt_filename;  // UTF-8; longer names keep their end
    Text<records::kFileNamesBytes> filenames;               // PartInfo::filenames, whole names only
    Text<records::kContentTypeBytes> content_type;
    Text<16> disposition;
    TransferEncoding encoding{};
    uint64_t size = 0;
    FileType type = FileType::unknown;
    Unscannable unscannable = Unscannable::none;
    Text<records::kDetailBytes> detail;
    uint8_t sha256[32];
    records::FileVerdict verdict;   // its look-up
    SampleBlock* sample = nullptr;  // its bytes for analysis, while held (given back when freed)
    SampleMiss sample_miss = SampleMiss::disabled;
    bool analysis_asked = false;

    void describe(const PartInfo& part) noexcept;  // what the MIME headers say
  };

  uint32_t take_message() noexcept;
  void drop_same_readings(Message& msg) noexcept;
  // Looks one hash up (the cache, else the channel); true when a request went out.
  bool look_up(uint64_t ticket, uint32_t item, const uint8_t* sha256, records::FileVerdict& v, int64_t now_ms) noexcept;
  records::FileVerdict* item_verdict(uint32_t m, uint32_t item, const uint8_t* sha256) noexcept;
  // Every look-up is in: ask about the upload candidates, or write the message.
  void after_lookups(uint32_t m) noexcept;
  // One file or member: asks about it when it is an upload candidate; true when a question went out.
  bool ask_analysis(uint32_t m, uint32_t item, const Text<records::kFileNameBytes>& name, const uint8_t* sha256,
                    uint64_t size, FileType type, bool member, SampleBlock*& sample, SampleMiss miss,
                    records::FileVerdict& v, bool& asked) noexcept;
  void wait_for(uint32_t m, uint32_t questions, bool analysis) noexcept;
  void free_message(uint32_t m) noexcept;
  void free_file(uint32_t f) noexcept;
  void finish_file(uint32_t f) noexcept;
  // A free file record (the caller checked the pool) for `message`, counted outstanding: an
  // attachment, or the message's own content (`digest`).
  uint32_t take_file(uint32_t message, bool digest) noexcept;
  // The message's digest stream ended: with the worker's result, or lost (nullptr). `counted`
  // false: the message is being freed (its outstanding files already taken off).
  void finish_digest(uint32_t f, const WorkResult* r, bool counted = true) noexcept;
  void decide(uint32_t m) noexcept;
  void expire(bool all) noexcept;
  void write_message(uint32_t m) noexcept;
  void write_file(const File& f, const Context& ctx, const uint8_t (*message_sha256)[32]) noexcept;
  void write_member(const WorkResult& w, const File& parent, const Context& ctx,
                    const uint8_t (*message_sha256)[32], const records::FileVerdict& verdict) noexcept;
  void write_untracked(const PartInfo& part, const Context& ctx) noexcept;

  ChunkTransport& transport_;
  records::RecordSink& out_;
  records::FileRecord file_rec_;      // filled per event, then copied by the sink
  records::MemberRecord member_rec_;
  unsigned rx_;
  uint32_t generation_ = 0;
  RecordPool<Message> messages_;
  RecordPool<File> files_;
  RecordPool<Member> members_;
  RecordPool<Digest> digests_;
  bool digests_on_ = false;
  uint32_t open_digests_ = 0, max_open_digests_ = 0;  // streams to the workers now, and the bound
  std::size_t used_messages_ = 0;
  ReputationSetup rep_;
  const VerdictPolicy* policy_ = &kDefaultPolicy;
  VerdictListener* listener_ = nullptr;
  uint64_t files_outstanding_ = 0;
  records::VerdictRecord verdict_rec_;
  std::size_t ended_waiting_ = 0;
  DeadlineQueue lookups_due_, analysis_due_;
  File spare_;                      // an untracked file's event
  RecordStats stats_;
};

}  // namespace sluice::pipeline
