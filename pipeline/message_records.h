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
#include <vector>

#include "pipeline/attachment_handoff.h"
#include "pipeline/chunk_transport.h"

namespace sluice::pipeline {

inline constexpr uint32_t kNoRecord = UINT32_MAX;

// A fixed pool of records and its free list (last given back, first taken again), so that taking
// and giving back never allocate.
template <typename T>
class RecordPool {
 public:
  explicit RecordPool(uint32_t n) : slots_(n), next_free_(n) {
    for (uint32_t i = 0; i < n; ++i) next_free_[i] = i + 1 < n ? i + 1 : kNoRecord;
    free_ = n ? 0 : kNoRecord;
  }
  // A free record's index, or kNoRecord.
  uint32_t take() noexcept {
    const uint32_t i = free_;
    if (i != kNoRecord) free_ = next_free_[i];
    return i;
  }
  void put(uint32_t i) noexcept {
    next_free_[i] = free_;
    free_ = i;
  }
  bool exhausted() const noexcept { return free_ == kNoRecord; }
  uint32_t size() const noexcept { return static_cast<uint32_t>(slots_.size()); }
  T& operator[](uint32_t i) noexcept { return slots_[i]; }
  const T& operator[](uint32_t i) const noexcept { return slots_[i]; }

 private:
  std::vector<T> slots_;
  std::vector<uint32_t> next_free_;
  uint32_t free_;
};

struct RecordStats {
  uint64_t files = 0;             // attachments given a record
  uint64_t results = 0;           // result records received
  uint64_t overload = 0;          // attachments unscannable `overload` (back-pressure, no record, drain)
  uint64_t records_full = 0;      // message or file record pool exhausted
  uint64_t members_unheld = 0;    // member events written before their message ended
  uint64_t stale_results = 0;     // results of attachments already reported (after overload)
  uint64_t verdicts_asked = 0;
  uint64_t verdicts_answered = 0;
  uint64_t verdicts_timeout = 0;
  uint64_t verdicts_unasked = 0;
  uint64_t verdicts_stale = 0;
};

class MessageRecords {
 public:
  // File records (and so transport streams): HandoffLimits::max_files, within what an attachment
  // id has room for.
  static uint32_t file_slots(const HandoffLimits& limits) noexcept;

  // `rx` goes into the attachment ids; `transport` is only told close(file).
  MessageRecords(const HandoffLimits& limits, records::RecordSink& out, unsigned rx, ChunkTransport& transport);

  // kNoRecord when the pool is exhausted (counted).
  uint32_t message_begin(const records::MessageContext& ctx) noexcept;
  // kNoRecord when the file cannot be tracked: its event is written at once, unscannable `overload`.
  uint32_t file_begin(uint32_t message, const PartInfo& part, const records::MessageContext& ctx) noexcept;
  uint64_t attachment_id(uint32_t file) const noexcept { return files_[file].id; }
  // Counts the file's bytes; false when nothing more is to be sent (the file already has its result).
  bool file_data(uint32_t file, std::size_t len) noexcept;
  // Notes how the file ended; false as file_data().
  bool file_end(uint32_t file, bool truncated) noexcept;
  void message_end(uint32_t message, const uint8_t (&sha256)[32], const records::MessageContext& ctx) noexcept;

  void on_result(const WorkResult& r) noexcept;
  // The transport gave the file up: it is unscannable `overload`.
  void on_overload(uint32_t file) noexcept;

  void set_responder(VerdictResponder* responder, uint32_t deadline_us) noexcept;
  void on_verdict(uint64_t ticket, MessageDecision decision) noexcept;
  // Decides the messages whose verdict deadline passed.
  void expire_verdicts() noexcept {
    if (n_awaiting_) expire(false);
  }
  // Shutdown: every message still held is written with what is known (files without a result
  // unscannable `overload`, questions unanswered `timeout`).
  void finish_all() noexcept;

  std::size_t pending() const noexcept { return used_messages_; }
  const RecordStats& stats() const noexcept { return stats_; }

 private:
  using Context = records::MessageContext;
  template <std::size_t N>
  using Text = records::Text<N>;

  struct Message {
    bool used = false, ended = false;
    bool awaiting = false;     // asked the responder, waiting for on_verdict
    uint32_t generation = 0;   // in the ticket: an answer for an earlier user of the record is stale
    std::chrono::steady_clock::time_point deadline;
    uint32_t outstanding = 0;  // files without their result
    uint32_t first = kNoRecord, last = kNoRecord;  // its files, in MIME order
    uint8_t sha256[32];
    Context ctx;               // what its events need once its session slot has moved on
  };
  struct Member {
    uint32_t next = kNoRecord;
    WorkResult r;  // name, hashes, type, depth (the record as the worker sent it)
  };
  struct File {
    bool used = false, done = false, hashed = false, truncated = false, uuencoded = false;
    uint64_t id = 0;
    uint32_t message = kNoRecord, next = kNoRecord;
    uint32_t first_member = kNoRecord, last_member = kNoRecord;
    uint64_t members = 0;
    Text<records::kMimePathBytes> path;
    Text<records::kFileNameBytes> filename, alt_filename;  // UTF-8; longer names keep their end
    Text<records::kContentTypeBytes> content_type;
    Text<16> disposition;
    TransferEncoding encoding{};
    uint64_t size = 0;
    FileType type = FileType::unknown;
    Unscannable unscannable = Unscannable::none;
    Text<records::kDetailBytes> detail;
    uint8_t sha256[32];

    void describe(const PartInfo& part) noexcept;  // what the MIME headers say
  };

  uint32_t take_message() noexcept;
  void free_message(uint32_t m) noexcept;
  void free_file(uint32_t f) noexcept;
  void finish_file(uint32_t f) noexcept;
  void decide(uint32_t m) noexcept;
  void expire(bool all) noexcept;
  void write_message(uint32_t m, MessageDecision decision) noexcept;
  void write_file(const File& f, const Context& ctx, const uint8_t (*message_sha256)[32]) noexcept;
  void write_member(const WorkResult& w, const File& parent, const Context& ctx,
                    const uint8_t (*message_sha256)[32]) noexcept;
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
  std::size_t used_messages_ = 0;
  VerdictResponder* responder_ = nullptr;
  uint32_t verdict_deadline_us_ = 0;
  std::vector<uint64_t> awaiting_;  // tickets in the order asked (at most one per message record)
  std::size_t awaiting_head_ = 0, n_awaiting_ = 0;
  File spare_;                      // an untracked file's event
  RecordStats stats_;
};

}  // namespace sluice::pipeline
