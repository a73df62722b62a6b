// The public face of the hand-off: each call goes to the unit that owns its part. The transport
// (chunk_transport.h: chunks, back-pressure, results in) and the records (message_records.h:
// messages, files, members, the verdict seam, events) meet here and nowhere else: the transport
// tells the records of results and given-up attachments through Impl (its client), the records
// tell the transport only when an attachment is done with (close).
#include "pipeline/attachment_handoff.h"

#include <algorithm>

#include "pipeline/chunk_transport.h"
#include "pipeline/message_records.h"

namespace sluice::pipeline {

struct AttachmentHandoff::Impl final : TransportClient {
  Impl(const HandoffLimits& l, ChunkChannel& channel, records::RecordSink& out, unsigned rx)
      : transport(channel, MessageRecords::file_slots(l), l.wait_us, *this),
        records(l, out, rx, transport),
        max_messages(std::max<uint32_t>(1, l.max_messages)) {}
  void on_result(const WorkResult& r) noexcept override { records.on_result(r); }
  void on_overload(uint32_t file) noexcept override { records.on_overload(file); }

  ChunkTransport transport;
  MessageRecords records;
  LookupChannel* lookups = nullptr;
  std::size_t max_messages;
};

// Look-up answers taken in per poll, at most (the rest wait for the next one).
constexpr std::size_t kAnswersPerPoll = 256;

static_assert(AttachmentHandoff::kNone == kNoRecord);  // handles are record indexes

AttachmentHandoff::AttachmentHandoff(const HandoffLimits& limits, ChunkChannel& channel, records::RecordSink& out,
                                     unsigned rx_index)
    : impl_(std::make_unique<Impl>(limits, channel, out, rx_index)) {}

AttachmentHandoff::~AttachmentHandoff() = default;

AttachmentHandoff::Handle AttachmentHandoff::message_begin(const records::MessageContext& ctx) noexcept {
  Impl& d = *impl_;
  const uint32_t m = d.records.message_begin(ctx);
  // The other reading of a DATA stream is hashed by the reassembler as it goes (readings are rare).
  if (ctx.reading == records::Reading::primary) {
    const uint32_t f = d.records.open_digest(m);
    if (f != kNone) d.transport.open(f, d.records.attachment_id(f), /*digest=*/true);
  }
  return m;
}

bool AttachmentHandoff::hashes(Handle message) const noexcept {
  return impl_->records.digest_ticket(message) != 0;
}

bool AttachmentHandoff::take_digest(uint64_t ticket, uint8_t (&sha256)[32], bool& known) noexcept {
  return impl_->records.take_digest(ticket, sha256, known);
}

AttachmentHandoff::Handle AttachmentHandoff::file_begin(Handle message, const PartInfo& part,
                                                        const records::MessageContext& ctx) noexcept {
  Impl& d = *impl_;
  const uint32_t f = d.records.file_begin(message, part, ctx);
  if (f != kNone) d.transport.open(f, d.records.attachment_id(f));
  return f;
}

void AttachmentHandoff::message_data(Handle message, const uint8_t* data, std::size_t len) noexcept {
  Impl& d = *impl_;
  d.records.message_data(message, data, len);
  const uint32_t f = d.records.digest_stream(message);
  if (f != kNone) d.transport.write(f, data, len);
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

uint64_t AttachmentHandoff::message_end(Handle message, bool complete, const uint8_t* sha256,
                                        const records::MessageContext& ctx) noexcept {
  if (message == kNone) return 0;
  Impl& d = *impl_;
  // The hash covers what was delivered either way; `truncated` only tells the worker so.
  const uint32_t f = d.records.digest_stream(message);
  if (f != kNone) d.transport.end(f, complete ? AttachmentEnd::complete : AttachmentEnd::truncated);
  return d.records.message_end(message, sha256, ctx);
}

void AttachmentHandoff::poll() noexcept {
  Impl& d = *impl_;
  d.transport.poll();
  if (d.lookups) d.lookups->poll(d.records, kAnswersPerPoll);
  d.records.expire_verdicts();
}

void AttachmentHandoff::set_reputation(const ReputationSetup& setup) noexcept {
  impl_->lookups = setup.channel;
  impl_->records.set_reputation(setup);
}

void AttachmentHandoff::set_policy(const VerdictPolicy* policy) noexcept { impl_->records.set_policy(policy); }

void AttachmentHandoff::set_listener(VerdictListener* listener) noexcept { impl_->records.set_listener(listener); }

bool AttachmentHandoff::saturated() const noexcept {
  return impl_->records.ended_waiting() >= impl_->max_messages / 2;
}

void AttachmentHandoff::drain(const std::atomic<bool>& abort) noexcept {
  while (impl_->records.pending() && !abort.load(std::memory_order_relaxed)) {
    poll();
    cpu_relax();
  }
  impl_->records.finish_all();
}

std::size_t AttachmentHandoff::pending() const noexcept { return impl_->records.pending(); }
uint64_t AttachmentHandoff::results_received() const noexcept { return impl_->records.stats().results; }
uint64_t AttachmentHandoff::files_in_work() const noexcept { return impl_->records.files_outstanding(); }

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
  s.readings = r.readings;
  s.readings_same = r.readings_same;
  s.cache_hits = r.cache_hits;
  s.cache_misses = r.cache_misses;
  s.lookups = r.lookups;
  s.answers = r.answers;
  s.answers_stale = r.answers_stale;
  s.lookups_queue_full = r.lookups_queue_full;
  s.lookups_expired = r.lookups_expired;
  s.verdicts_clean = r.verdicts[static_cast<unsigned>(records::Disposition::clean)];
  s.verdicts_malicious = r.verdicts[static_cast<unsigned>(records::Disposition::malicious)];
  s.verdicts_unscannable = r.verdicts[static_cast<unsigned>(records::Disposition::unscannable)];
  s.verdicts_pending = r.verdicts[static_cast<unsigned>(records::Disposition::pending)];
  for (unsigned k = 0; k < 4; ++k) s.files_by_reputation[k] = r.file_events[k];
  s.analysis_asked = r.analysis_asked;
  s.analysis_answers = r.analysis_answers;
  s.analysis_queue_full = r.analysis_queue_full;
  s.analysis_expired = r.analysis_expired;
  s.spooled = r.spooled;
  s.digests = r.digests;
  s.digests_inline = r.digests_inline;
  s.digests_lost = r.digests_lost;
  s.spool_misses = r.spool_misses;
  s.spool_queue_full = r.spool_queue_full;
  s.awaiting = impl_->records.ended_waiting();
  return s;
}

void AttachmentHandoff::on_result(const WorkResult& r) noexcept { impl_->records.on_result(r); }

}  // namespace sluice::pipeline
