// The verdict seam (DESIGN.md section 1, step 2): where a message's verdict is assembled. The RX
// lcore that owns the flow holds the message's record (message_records.h) until every file result
// is in; then each file and archive member with a SHA-256 is looked up: first in the verdict cache
// (verdict_cache.h, read without locks), then, on a miss, by the control plane over the lcore's
// look-up channel (one request per hash; the control side batches, asks the endpoints and answers).
// When every answer is in, or the look-up deadline has passed (the unanswered ones
// `budget_exhausted`), the verdict is built (message_verdict.h), the message's `file` events and
// its `verdict` event are written, and the listener is told (where inline enforcement acts).
//
// Without a channel (no reputation endpoint configured), files are not looked up: the verdict is
// built at once from what extraction found.
#pragma once

#include <cstddef>
#include <cstdint>

#include "pipeline/sample.h"
#include "records/event_records.h"
#include "records/verdict_records.h"

namespace sluice::pipeline {

class VerdictCache;

// An upload candidate (DESIGN.md section 1, step 3): a file the cloud called unknown and asked for,
// whose bytes its worker kept. The sample chain moves with the request: the control plane copies
// it out and gives it back. The answer (LookupAnswer with `analysis` set) says what analysis did.
struct AnalysisRequest {
  uint64_t ticket;
  uint32_t item;
  uint8_t file_type;   // pipeline::FileType
  bool member;
  uint8_t reserved[2];
  uint8_t sha256[32];
  uint64_t size;
  SampleBlock* sample;
  records::FlowIdentity flow;  // the message, for the analysis events
  uint64_t transaction;
  records::Text<256> filename;
};

// The exact bytes of a message whose verdict is `pending` (a file went to analysis), for the File
// Analysis quarantine: the spool chain moves with it; the control plane copies it out and gives
// it back. Its SHA-256 is the `smtp` event's `message_sha256`.
struct MessageCopy {
  records::FlowIdentity flow;
  uint64_t transaction;
  uint8_t message_sha256[32];
  uint64_t size;
  SampleBlock* bytes;
};

class AnswerHandler {
 public:
  virtual ~AnswerHandler() = default;
  virtual void on_answer(const records::LookupAnswer& a) noexcept = 0;
};

// The RX lcore's side of look-ups. Runs on the lcore: never blocks, locks or allocates.
class LookupChannel {
 public:
  virtual ~LookupChannel() = default;
  // False when there is no room: the file's look-up fails `queue_full`.
  virtual bool ask(const records::LookupRequest& rq) noexcept = 0;
  // Hands at most `max` waiting answers to `h`; returns how many.
  virtual std::size_t poll(AnswerHandler& h, std::size_t max) noexcept = 0;
  // False when there is no room: the file is not uploaded (`queue_full`) and the caller keeps
  // (and gives back) the sample.
  virtual bool ask_analysis(const AnalysisRequest& rq) noexcept = 0;
  // A pending message's bytes; false when there is no room (then the caller gives them back and
  // the message is not stored in the quarantine).
  virtual bool send_message(const MessageCopy&) noexcept { return false; }
};

// Told of every verdict of a message's primary reading just before its `verdict` event is written
// (inline enforcement fills the record's `enforcement` and `reference`). Runs on the RX lcore; may
// be called from inside the reassembler's on_packet (a message decided as it ends) or from the
// hand-off's poll. Returns true when the listener took the record: it writes it to the lcore's
// event output itself once the record is final (a message held with others in one segment
// shares their fate on the wire, known only when all of them are decided); false: the caller
// writes it now.
class VerdictListener {
 public:
  virtual ~VerdictListener() = default;
  virtual bool decided(const records::MessageContext& message, records::VerdictRecord& verdict) noexcept = 0;
};

struct ReputationSetup {
  const VerdictCache* cache = nullptr;  // looked at first; null: every hash is asked
  LookupChannel* channel = nullptr;     // null: no look-ups
  uint32_t deadline_us = 0;             // a message's look-ups wait at most this long (wall clock)
  bool analysis = false;                // analysis endpoints configured: candidates are asked about
  uint32_t analysis_deadline_us = 0;    // a message's analysis decisions wait at most this long
  // The RX spool: every message's bytes are kept here until its verdict (null: none); a message
  // larger than spool_max_bytes, or one that finds the spool full, is not kept.
  SampleBlocks* spool = nullptr;
  uint64_t spool_max_bytes = 0;
};

}  // namespace sluice::pipeline
