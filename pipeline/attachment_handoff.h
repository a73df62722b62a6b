// The RX lcore's side of the attachment hand-off (DESIGN.md section 3). One per RX lcore, shared by
// that lcore's message inspectors (one per SMTP session slot):
// - each attachment gets an id and a record; its decoded bytes are copied into 4 KiB chunks that
//   go, in order, to one worker (chosen by the id) over the ChunkChannel;
// - results come back over the same channel; a message's `file` events (the attachment, then
//   the members of an archive) are written once the message has ended and every one of its
//   attachments has its result. That record of a message is where its verdict will be assembled
//   (inline enforcement holds the message's last segment meanwhile, DESIGN.md section 5).
//
// Back-pressure: when no chunk is free or a worker's ring stays full, `wait_us` > 0 keeps polling
// results and retrying for that long; then (or at once with 0) the attachment becomes unscannable
// `overload`: it is still reported, without SHA-256, and counted. Records are fixed pools
// allocated at construction; exhausting one is counted and the file is still reported (see
// HandoffLimits). Everything runs on the owning RX lcore: no locks.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "pipeline/attachment_worker.h"
#include "pipeline/handoff.h"
#include "pipeline/mime_parser.h"
#include "pipeline/message_verdict.h"
#include "pipeline/verdict_seam.h"
#include "reassembly/message_observer.h"

namespace sluice::pipeline {

struct HandoffLimits {
  uint32_t max_messages = 1024;   // messages whose file events wait for results; beyond, a new
                                  // message's attachments are reported at once, unscannable `overload`
  uint32_t max_files = 4096;      // attachments waiting (same fallback)
  uint32_t max_members = 4096;    // archive member records waiting; beyond, a member's event is
                                  // written at once, without message_sha256
  uint32_t wait_us = 0;           // back-pressure: retry this long before `overload` (0: at once)
  // Each message's content is hashed (message_sha256) on a worker instead of by the reassembler
  // on the RX lcore: the bytes go as one more stream (a file record while in flight) and the hash
  // waits in a digest record, 4 per message record, until the message's smtp event takes it.
  // Not with LocalChannel (its worker runs on the RX lcore anyway: copies for nothing).
  bool digests = false;
  // Message contents being hashed on the workers at once (each holds a worker's in-flight slot,
  // WorkerLimits::max_in_flight, for as long as its message streams); beyond, a new message is
  // hashed on the RX lcore (`digests_inline`), so that slow messages cannot fill the workers.
  uint32_t max_open_digests = 128;
};

struct HandoffStats {
  uint64_t files = 0;             // attachments handed off
  uint64_t chunks = 0, bytes = 0; // sent to workers
  uint64_t results = 0;           // result records received
  uint64_t overload = 0;          // attachments made unscannable by back-pressure
  uint64_t no_chunk = 0;          // chunk pool empty (each occurrence)
  uint64_t ring_full = 0;         // a worker's ring had no room (each occurrence)
  uint64_t records_full = 0;      // message or file record pool exhausted
  uint64_t members_unheld = 0;    // member events written before their message ended
  uint64_t stale_results = 0;     // results of attachments already reported (after overload)
  uint64_t readings = 0;          // files of other MIME readings written (pipeline/mime_readings.h)
  uint64_t readings_same = 0;     // ... dropped: the same bytes as an earlier file of their message
  uint64_t cache_hits = 0;        // hashes answered by the verdict cache on this lcore
  uint64_t cache_misses = 0;
  uint64_t lookups = 0;           // hashes asked of the control plane
  uint64_t answers = 0;
  uint64_t answers_stale = 0;     // answers for messages already decided (late, unknown ticket)
  uint64_t lookups_queue_full = 0;  // no room in the look-up ring: `queue_full`
  uint64_t lookups_expired = 0;   // no answer within the look-up deadline: `budget_exhausted`
  uint64_t verdicts_clean = 0, verdicts_malicious = 0, verdicts_unscannable = 0;  // messages decided
  uint64_t verdicts_pending = 0;  // messages that went to the File Analysis quarantine
  uint64_t files_by_reputation[4] = {};  // file events (attachments, archive members) by records::Reputation
  uint64_t analysis_asked = 0;    // upload candidates handed to the control plane
  uint64_t analysis_answers = 0;
  uint64_t analysis_queue_full = 0;
  uint64_t analysis_expired = 0;
  uint64_t spooled = 0, spool_misses = 0, spool_queue_full = 0;  // pending messages' bytes for the quarantine
  uint64_t digests = 0, digests_inline = 0, digests_lost = 0;  // message hashes on workers (HandoffLimits::digests)
  uint64_t awaiting = 0;          // now: ended messages waiting for results or answers
};

class AttachmentHandoff final : public ResultHandler {
 public:
  using Handle = uint32_t;
  static constexpr Handle kNone = UINT32_MAX;

  // `rx_index` goes into the attachment ids (results come back to this lcore).
  AttachmentHandoff(const HandoffLimits& limits, ChunkChannel& channel, records::RecordSink& out, unsigned rx_index);
  ~AttachmentHandoff() override;

  Handle message_begin(const records::MessageContext& ctx) noexcept;
  // kNone when the message or the file cannot be tracked: the file's event is written at once.
  Handle file_begin(Handle message, const PartInfo& part, const records::MessageContext& ctx) noexcept;
  void file_data(Handle file, const uint8_t* data, std::size_t len) noexcept;
  // The message's own content (for the RX spool: a pending message's bytes go to the quarantine).
  void message_data(Handle message, const uint8_t* data, std::size_t len) noexcept;
  void file_end(Handle file, PartEnd how) noexcept;
  // `sha256`: the content's hash computed by the caller (the reassembler), or nullptr when
  // hashes(message) said the hand-off computes it (on a worker; digest_ticket() names it then).
  // Returns the ticket of the message's hash when hashes() said the hand-off computes it, else 0.
  uint64_t message_end(Handle message, bool complete, const uint8_t* sha256, const records::MessageContext& ctx) noexcept;
  // After message_begin(): whether the message's content is hashed on a worker (HandoffLimits::
  // digests, a primary reading, records free); if not, the caller hashes it and gives message_end
  // the result.
  bool hashes(Handle message) const noexcept;
  // The message hash named by `ticket`: false while a worker is on it; true once it is in
  // (`known` false: lost to back-pressure or shutdown; counted `digests_lost`), the ticket spent.
  bool take_digest(uint64_t ticket, uint8_t (&sha256)[32], bool& known) noexcept;

  // The verdict seam (verdict_seam.h): look-ups (cache, then the channel, within
  // `setup.deadline_us`), the actions of the running configuration, who is told of each verdict.
  // Without a channel (the default) nothing is looked up and every message is decided at once.
  void set_reputation(const ReputationSetup& setup) noexcept;
  void set_policy(const VerdictPolicy* policy) noexcept;
  void set_listener(VerdictListener* listener) noexcept;

  // Between bursts: sends what was staged or deferred, takes in results and look-up answers,
  // writes finished messages, decides the messages whose look-up deadline passed.
  void poll() noexcept;
  // End of input or shutdown: polls until every message is written or `abort` is set; then
  // writes what is left with what is known (unfinished files unscannable `overload`).
  void drain(const std::atomic<bool>& abort) noexcept;
  // Messages still waiting for results.
  std::size_t pending() const noexcept;
  // Result records received so far, and files whose result has not come: the workers' progress
  // and backlog (cheap).
  uint64_t results_received() const noexcept;
  uint64_t files_in_work() const noexcept;
  // Half the message records or more hold ended messages waiting for results or answers: a replay
  // stops reading until they are decided, so that a fast capture never turns files into
  // `overload` because answers are slower than the file.
  bool saturated() const noexcept;
  // The counters of the transport and of the records, put together (a copy).
  HandoffStats stats() const noexcept;

  void on_result(const WorkResult& r) noexcept override;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// No worker lcore: the worker runs on the RX lcore, inside send(). Results reach the handler
// (set_handler, the AttachmentHandoff) at once.
class LocalChannel final : public ChunkChannel, private ResultOutput {
 public:
  // `chunks`: partly filled chunks held at once (one per attachment written to since the last
  // poll); when they run out, the hand-off sends the partial ones, which frees them.
  // `samples`: where the worker keeps files for analysis (null: none).
  explicit LocalChannel(const WorkerLimits& limits, std::size_t chunks = 64, SampleBlocks* samples = nullptr)
      : worker_(limits, samples), pool_(chunks) {}
  void set_handler(ResultHandler* h) noexcept { handler_ = h; }
  unsigned workers() const noexcept override { return 1; }
  WorkChunk* alloc() noexcept override { return pool_.get(); }
  void release(WorkChunk* c) noexcept override { pool_.put(c); }
  bool send(unsigned, WorkChunk* c) noexcept override {
    worker_.on_chunk(*c, *this);
    release(c);
    return true;
  }
  bool flush() noexcept override { return true; }
  std::size_t poll(ResultHandler&) noexcept override { return 0; }
  const AttachmentWorker& worker() const noexcept { return worker_; }

 private:
  void put(const WorkResult& r) noexcept override {
    if (handler_) handler_->on_result(r);
  }
  AttachmentWorker worker_;
  ResultHandler* handler_ = nullptr;
  ChunkPool pool_;
};

}  // namespace sluice::pipeline
