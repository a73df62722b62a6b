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
  // `message_sha256` is the SHA-256 of the whole content, or nullptr when the observer said it
  // hashes the content itself (hashes()).
  virtual void end(bool complete, const uint8_t* message_sha256, const MessageContext& ctx) noexcept = 0;
  // Asked right after begin(): true when the observer computes the content's SHA-256 itself (off
  // the RX lcore, on a worker); the reassembler then does not, and after end() takes the hash
  // for the message's smtp event with take_digest(digest_ticket()), which may be later (the
  // event waits, reassembler.h).
  virtual bool hashes() const noexcept { return false; }
  // After end() of a message the observer hashes: the ticket for take_digest() (never 0).
  virtual uint64_t digest_ticket() const noexcept { return 0; }
  // False while the hash behind `ticket` is being computed; true once it is in (`known` false: it
  // was lost), and the ticket is spent. Any observer of the lcore answers for any of its tickets.
  virtual bool take_digest(uint64_t ticket, uint8_t (&sha256)[32], bool& known) noexcept {
    (void)ticket, (void)sha256;
    known = false;
    return true;
  }
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
