#include "pipeline/message_inspector.h"

namespace sluice::pipeline {
namespace {

using Handle = AttachmentHandoff::Handle;

class MessageInspector final : public reassembly::MessageObserver, private MimeCallbacks {
  static constexpr unsigned kDepth = 4;
  struct Open {
    bool attachment = false;
    Handle file = AttachmentHandoff::kNone;
  };

 public:
  // With `carve`, the parser's own memory comes from it (MimeParser::footprint(limits, true)).
  MessageInspector(const MimeLimits& limits, AttachmentHandoff& handoff, bool hold_ends,
                   std::shared_ptr<SingleParserPool> pool, records::Carve* carve = nullptr)
      : mime_(limits, carve), handoff_(handoff), hold_ends_(hold_ends), pool_(std::move(pool)), alt_(*this) {
    mime_.set_alternate(pool_.get(), &alt_, carve);
  }

  void begin(const records::MessageContext& ctx) noexcept override {
    remember(ctx);
    attachments_ = 0;
    depth_ = 0;
    message_ = handoff_.message_begin(ctx);
    mime_.reset(this);
  }
  void begin_reading(const records::MessageContext& ctx, const reassembly::MessageObserver* from) noexcept override {
    begin(ctx);
    if (const auto* primary = dynamic_cast<const MessageInspector*>(from)) mime_.resume(this, primary->mime_);
  }
  void data(const uint8_t* bytes, std::size_t len) noexcept override {
    handoff_.message_data(message_, bytes, len);
    mime_.feed(bytes, len);
  }
  void end(bool complete, const uint8_t* message_sha256, const records::MessageContext& ctx) noexcept override {
    remember(ctx);
    mime_.finish(complete);
    anomalies_ = mime_.anomalies();
    ticket_ = handoff_.message_end(message_, complete, message_sha256, ctx);
    message_ = AttachmentHandoff::kNone;
  }
  bool hashes() const noexcept override { return handoff_.hashes(message_); }
  uint64_t digest_ticket() const noexcept override { return ticket_; }
  bool take_digest(uint64_t ticket, uint8_t (&sha256)[32], bool& known) noexcept override {
    return handoff_.take_digest(ticket, sha256, known);
  }
  void use_body_scan(const MimeBodyScan* scan, MimeBodyScan::Scratch* scratch) noexcept {
    mime_.use_body_scan(scan, scratch);
  }
  bool hold_end() const noexcept override { return hold_ends_; }
  void summary(records::MessageSummary& out) const noexcept override {
    out.present = true;
    out.attachments = attachments_;
    out.mime_anomalies = anomalies_;
  }

 private:
  // MimeCallbacks. Parts nest at most two deep here: a uuencoded block inside an open text part.
  void on_part_begin(const PartInfo& part) noexcept override {
    Open& o = open_[depth_ < kDepth ? depth_ : kDepth - 1];
    ++depth_;
    o.attachment = part.attachment;
    if (!o.attachment) return;
    ++attachments_;
    o.file = handoff_.file_begin(message_, part, ctx_);
  }
  void on_part_data(const uint8_t* data, std::size_t len) noexcept override {
    const Open& o = top();
    if (o.attachment) handoff_.file_data(o.file, data, len);
  }
  void on_part_end(PartEnd how) noexcept override {
    const Open& o = top();
    if (depth_) --depth_;
    if (o.attachment) handoff_.file_end(o.file, how);
  }
  void on_anomaly(MimeAnomaly) noexcept override {}
  // Another reading of the open part: a file of its own.
  void on_reading_begin(unsigned slot, const PartInfo& part) noexcept override {
    if (slot >= kReadings) return;
    reading_[slot] = handoff_.file_begin(message_, part, ctx_);
  }
  void on_reading_data(unsigned slot, const uint8_t* data, std::size_t len) noexcept override {
    if (slot < kReadings) handoff_.file_data(reading_[slot], data, len);
  }
  void on_reading_end(unsigned slot, PartEnd how) noexcept override {
    if (slot < kReadings) handoff_.file_end(reading_[slot], how);
  }

  void remember(const records::MessageContext& ctx) noexcept { ctx_ = ctx; }

  // The parts of the message's header_lenient parse (MimeParser::set_alternate): its attachments
  // are files of the same message (`reading` header_lenient), with their own nesting.
  class AltParts final : public MimeCallbacks {
   public:
    explicit AltParts(MessageInspector& owner) : owner_(owner) {}
    void on_part_begin(const PartInfo& part) noexcept override {
      Open& o = open_[depth_ < kDepth ? depth_ : kDepth - 1];
      ++depth_;
      o.attachment = part.attachment;
      if (o.attachment) o.file = owner_.handoff_.file_begin(owner_.message_, part, owner_.ctx_);
    }
    void on_part_data(const uint8_t* data, std::size_t len) noexcept override {
      const Open& o = open_[depth_ == 0 ? 0 : (depth_ <= kDepth ? depth_ - 1 : kDepth - 1)];
      if (o.attachment) owner_.handoff_.file_data(o.file, data, len);
    }
    void on_part_end(PartEnd how) noexcept override {
      const Open& o = open_[depth_ == 0 ? 0 : (depth_ <= kDepth ? depth_ - 1 : kDepth - 1)];
      if (depth_) --depth_;
      if (o.attachment) owner_.handoff_.file_end(o.file, how);
    }
    void on_anomaly(MimeAnomaly) noexcept override {}  // the message's anomalies are the primary parse's

   private:
    MessageInspector& owner_;
    Open open_[kDepth];
    unsigned depth_ = 0;
  };

  const Open& top() const noexcept { return open_[depth_ == 0 ? 0 : (depth_ <= kDepth ? depth_ - 1 : kDepth - 1)]; }
  MimeParser mime_;
  AttachmentHandoff& handoff_;
  const bool hold_ends_;
  std::shared_ptr<SingleParserPool> pool_;
  AltParts alt_;
  records::MessageContext ctx_{};
  Handle message_ = AttachmentHandoff::kNone;
  uint64_t ticket_ = 0;  // the last message's hash on a worker (digest_ticket())
  Open open_[kDepth];
  static constexpr unsigned kReadings = kMaxPartReadings;
  Handle reading_[kReadings] = {AttachmentHandoff::kNone, AttachmentHandoff::kNone, AttachmentHandoff::kNone,
                                AttachmentHandoff::kNone};
  unsigned depth_ = 0;
  uint64_t attachments_ = 0;
  uint32_t anomalies_ = 0;
};

}  // namespace

std::unique_ptr<reassembly::MessageObserver> MessageInspectorFactory::make(records::RecordSink&, unsigned lcore) {
  auto inspector = std::make_unique<MessageInspector>(limits_, *handoffs_.at(lcore), hold_ends_, pools_.at(lcore));
  // Opens the parser's Hyperscan stream; if that fails the parser keeps its SSE2 scan (same parts).
  if (body_scan_) inspector->use_body_scan(body_scan_, scratches_.at(lcore));
  return inspector;
}

std::size_t MessageInspectorFactory::footprint() const noexcept {
  return records::Carve::round(sizeof(MessageInspector)) + MimeParser::footprint(limits_, true);
}

reassembly::MessageObserver* MessageInspectorFactory::make_at(void* memory, records::RecordSink&, unsigned lcore) noexcept {
  if (lcore >= handoffs_.size()) return nullptr;
  const std::size_t own = records::Carve::round(sizeof(MessageInspector));
  records::Carve carve(static_cast<char*>(memory) + own, footprint() - own);
  auto* inspector = new (memory) MessageInspector(limits_, *handoffs_[lcore], hold_ends_, pools_[lcore], &carve);
  // With mime.body_scan: hyperscan, the parser's stream is still Hyperscan's allocation
  // (hs_open_stream), made here, once per slot.
  if (body_scan_) inspector->use_body_scan(body_scan_, scratches_[lcore]);
  return inspector;
}

}  // namespace sluice::pipeline
