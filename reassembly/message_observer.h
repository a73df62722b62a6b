// The hand-off of message content from the reassembly stage to the attachment pipeline.
//
// The reassembler frames each SMTP message and streams its content (DATA after dot-unstuffing, or
// BDAT chunks) to a MessageObserver; the pipeline (MIME parsing, attachments) implements it.
// One observer per SMTP session slot, made by a factory at start-up (an observer may hold large
// per-message state such as a MIME parser); it runs on the RX lcore and must not block, lock or
// allocate per call. Events it writes go to the same RecordSink as the reassembler's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "records/event_records.h"

namespace sluice::reassembly {

using records::MessageContext;

class MessageObserver {
 public:
  virtual ~MessageObserver() = default;
  virtual void begin(const MessageContext& ctx) noexcept = 0;
  virtual void data(const uint8_t* bytes, std::size_t len) noexcept = 0;
  // The content ended (`complete` false: bytes were lost or the transfer was aborted).
  // `message_sha256` is the SHA-256 of the whole content; the observer writes its events now.
  virtual void end(bool complete, const uint8_t (&message_sha256)[32], const MessageContext& ctx) noexcept = 0;
  // After end(): the observer's part of the message's `smtp` event (attachments, MIME anomalies).
  // Kept by the reassembler until the server's reply completes the event.
  virtual void summary(records::MessageSummary& out) const noexcept = 0;
  // Asked right after end(): whether the frame that carried the end of the message (the end of
  // DATA, or BDAT LAST) is to be held until the message is decided (frame_step.h). Only a frame
  // being processed can be held: an end reached at flow expiry or flush holds nothing.
  virtual bool hold_end() const noexcept { return false; }
  // Instead of begin(): a message of the other reading of an ambiguous DATA stream
  // (ctx.reading, reassembly/smtp_reading.h), then data() and end() as usual. `resume_from`: the
  // primary reading's observer (made by the same factory) at the octet where the readings part,
  // before its end(): the content continues its MIME structure (the strict one-message reading);
  // nullptr: a message of its own. Never held (hold_end() is not asked).
  virtual void begin_reading(const MessageContext& ctx, const MessageObserver* resume_from) noexcept {
    (void)resume_from;
    begin(ctx);
  }
};

class MessageObserverFactory {
 public:
  virtual ~MessageObserverFactory() = default;
  // Start-up only (or on an lcore the first time a session slot is used, once per slot).
  // `lcore`: the index of the RX lcore (its Reassembler's lcore_index) the observer will run on.
  virtual std::unique_ptr<MessageObserver> make(records::RecordSink& out, unsigned lcore) = 0;
  // In place, for session slots (issue 18): footprint() is the bytes one observer needs with
  // everything it owns (0: not offered, make() is used). The Reassembler reserves footprint() bytes
  // per slot at start-up (records::ReservedRegion, untouched) and, the first time a slot is used,
  // calls make_at() on the lcore with the slot's share (aligned to 64 bytes): the observer is
  // constructed there, without the general heap. Destroyed with its destructor, never deleted.
  virtual std::size_t footprint() const noexcept { return 0; }
  virtual MessageObserver* make_at(void* memory, records::RecordSink& out, unsigned lcore) noexcept {
    (void)memory, (void)out, (void)lcore;
    return nullptr;
  }
};

}  // namespace sluice::reassembly
