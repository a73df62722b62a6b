// The public face of the hand-off: each call goes to the unit that owns its part. The transport
// (chunk_transport.h: chunks, back-pressure, results in) and the records (message_records.h:
// messages, files, members, the verdict seam, events) meet here and nowhere else: the transport
// tells the records of results and given-up attachments through Impl (its client), the records
// tell the transport only when an attachment is done with (close).
#include "pipeline/attachment_handoff.h"

#include "pipeline/chunk_transport.h"
#include "pipeline/message_records.h"

namespace sluice::pipeline {

struct AttachmentHandoff::Impl final : TransportClient {
  Impl(const HandoffLimits& l, ChunkChannel& channel, records::RecordSink& out, unsigned rx)
      : transport(channel, MessageRecords::file_slots(l), l.wait_us, *this), records(l, out, rx, transport) {}
  void on_result(const WorkResult& r) noexcept override { records.on_result(r); }
  void on_overload(uint32_t file) noexcept override { records.on_overload(file); }

  ChunkTransport transport;
  MessageRecords records;
};

static_assert(AttachmentHandoff::kNone == kNoRecord);  // handles are record indexes

AttachmentHandoff::AttachmentHandoff(const HandoffLimits& limits, ChunkChannel& channel, records::RecordSink& out,
                                     unsigned rx_index)
    : impl_(std::make_unique<Impl>(limits, channel, out, rx_index)) {}

AttachmentHandoff::~AttachmentHandoff() = default;

AttachmentHandoff::Handle AttachmentHandoff::message_begin(const records::MessageContext& ctx) noexcept {
  return impl_->records.message_begin(ctx);
}

AttachmentHandoff::Handle AttachmentHandoff::file_begin(Handle message, const PartInfo& part,
                                                        const records::MessageContext& ctx) noexcept {
  Impl& d = *impl_;
  const uint32_t f = d.records.file_begin(message, part, ctx);
  if (f != kNone) d.transport.open(f, d.records.attachment_id(f));
  return f;
}

void AttachmentHandoff::file_data(Handle file, const uint8_t* data, std::size_t len) noexcept {
  if (file == kNone) return;
  Impl& d = *impl_;
  if (d.records.file_data(file, len)) d.transport.write(file, data, len);
}

void AttachmentHandoff::file_end(Handle file, PartEnd how) noexcept {
  if (file == kNone) return;
  Impl& d = *impl_;
  const bool truncated = how == PartEnd::truncated;
  if (d.records.file_end(file, truncated))
    d.transport.end(file, truncated ? AttachmentEnd::truncated : AttachmentEnd::complete);
}

void AttachmentHandoff::message_end(Handle message, bool, const uint8_t (&sha256)[32],
                                    const records::MessageContext& ctx) noexcept {
  if (message == kNone) return;
  impl_->records.message_end(message, sha256, ctx);
}

void AttachmentHandoff::poll() noexcept {
  impl_->transport.poll();
  impl_->records.expire_verdicts();
}

void AttachmentHandoff::set_responder(VerdictResponder* responder, uint32_t deadline_us) noexcept {
  impl_->records.set_responder(responder, deadline_us);
}

void AttachmentHandoff::on_verdict(uint64_t ticket, MessageDecision decision) noexcept {
  impl_->records.on_verdict(ticket, decision);
}

void AttachmentHandoff::drain(const std::atomic<bool>& abort) noexcept {
  while (impl_->records.pending() && !abort.load(std::memory_order_relaxed)) {
    poll();
    cpu_relax();
  }
  impl_->records.finish_all();
}

std::size_t AttachmentHandoff::pending() const noexcept { return impl_->records.pending(); }

HandoffStats AttachmentHandoff::stats() const noexcept {
  const RecordStats& r = impl_->records.stats();
  const TransportStats& t = impl_->transport.stats();
  HandoffStats s;
  s.files = r.files;
  s.chunks = t.chunks;
  s.bytes = t.bytes;
  s.results = r.results;
  s.overload = r.overload + t.overload;
  s.no_chunk = t.no_chunk;
  s.ring_full = t.ring_full;
  s.records_full = r.records_full;
  s.members_unheld = r.members_unheld;
  s.stale_results = r.stale_results;
  s.verdicts_asked = r.verdicts_asked;
  s.verdicts_answered = r.verdicts_answered;
  s.verdicts_timeout = r.verdicts_timeout;
  s.verdicts_unasked = r.verdicts_unasked;
  s.verdicts_stale = r.verdicts_stale;
  return s;
}

void AttachmentHandoff::on_result(const WorkResult& r) noexcept { impl_->records.on_result(r); }

}  // namespace sluice::pipeline
