#include "pipeline/message_inspector.h"

#include <cstdio>
#include <cstring>

#include "reassembly/json_line.h"

namespace sluice::pipeline {
namespace {

using reassembly::JsonLine;
using Handle = AttachmentHandoff::Handle;

class MessageInspector final : public reassembly::MessageObserver, private MimeCallbacks {
  static constexpr unsigned kDepth = 4;
  struct Open {
    bool attachment = false;
    Handle file = AttachmentHandoff::kNone;
  };

 public:
  MessageInspector(const MimeLimits& limits, AttachmentHandoff& handoff) : mime_(limits), handoff_(handoff) {}

  void begin(const reassembly::MessageContext& ctx) noexcept override {
    remember(ctx);
    attachments_ = 0;
    depth_ = 0;
    message_ = handoff_.message_begin(ctx);
    mime_.reset(this);
  }
  void data(const uint8_t* bytes, std::size_t len) noexcept override { mime_.feed(bytes, len); }
  void end(bool complete, const uint8_t (&message_sha256)[32], const reassembly::MessageContext& ctx) noexcept override {
    remember(ctx);
    mime_.finish(complete);
    anomalies_ = mime_.anomalies();
    handoff_.message_end(message_, complete, message_sha256, ctx);
    message_ = AttachmentHandoff::kNone;
  }
  void use_body_scan(const MimeBodyScan* scan, MimeBodyScan::Scratch* scratch) noexcept {
    mime_.use_body_scan(scan, scratch);
  }
  std::size_t summary(char* buf, std::size_t cap) const noexcept override {
    // Rendered as members of the smtp object: "attachments":N,"mime_anomalies":[...]
    char scratch[1024];
    JsonLine j(scratch, sizeof(scratch));
    j.begin_object();
    j.key("attachments").num(attachments_);
    j.key("mime_anomalies").begin_array();
    for (unsigned i = 0; i < static_cast<unsigned>(MimeAnomaly::count_); ++i)
      if (anomalies_ & (1u << i)) j.str(mime_anomaly_name(static_cast<MimeAnomaly>(i)));
    j.end_array();
    const std::string_view obj = j.finish();
    if (obj.size() < 2 || obj.size() - 2 > cap) return 0;
    std::memcpy(buf, obj.data() + 1, obj.size() - 2);  // without the braces
    return obj.size() - 2;
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

  // The context's strings belong to the reassembler and change with the next flow: keep a copy.
  void remember(const reassembly::MessageContext& ctx) noexcept {
    ctx_ = ctx;
    std::snprintf(src_, sizeof(src_), "%s", ctx.src_ip ? ctx.src_ip : "");
    std::snprintf(dst_, sizeof(dst_), "%s", ctx.dest_ip ? ctx.dest_ip : "");
    ctx_.src_ip = src_;
    ctx_.dest_ip = dst_;
  }

  const Open& top() const noexcept { return open_[depth_ == 0 ? 0 : (depth_ <= kDepth ? depth_ - 1 : kDepth - 1)]; }
  MimeParser mime_;
  AttachmentHandoff& handoff_;
  reassembly::MessageContext ctx_{};
  char src_[48] = {}, dst_[48] = {};
  Handle message_ = AttachmentHandoff::kNone;
  Open open_[kDepth];
  unsigned depth_ = 0;
  uint32_t attachments_ = 0;
  uint32_t anomalies_ = 0;
};

}  // namespace

std::unique_ptr<reassembly::MessageObserver> MessageInspectorFactory::make(reassembly::EventOutput&, unsigned lcore) {
  auto inspector = std::make_unique<MessageInspector>(limits_, *handoffs_.at(lcore));
  // Opens the parser's Hyperscan stream; if that fails the parser keeps its SSE2 scan (same parts).
  if (body_scan_) inspector->use_body_scan(body_scan_, scratches_.at(lcore));
  return inspector;
}

}  // namespace sluice::pipeline
