#include "pipeline/message_inspector.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

#include "reassembly/json_line.h"
#include "reassembly/reassembler.h"

namespace sluice::pipeline {
namespace {

using reassembly::JsonLine;

constexpr std::size_t kName = 1024;   // file name bytes kept (UTF-8); longer names keep their end
constexpr std::size_t kType = 128;
constexpr std::size_t kPath = 64;
constexpr std::size_t kEventBytes = 8192;

template <std::size_t N>
struct Text {
  char data[N];
  std::size_t len = 0;
  // Keeps the start and the end of an over-long value: the extension of a file name is what
  // matters most (a Suricata defect truncated "...exe" away).
  void set(std::string_view s) noexcept {
    if (s.size() <= N || N < 128) {  // short fields (types, paths) are simply cut
      len = std::min(s.size(), N);
      std::memcpy(data, s.data(), len);
      return;
    }
    static constexpr std::string_view kCut = "\xe2\x80\xa6";  // U+2026 HORIZONTAL ELLIPSIS
    const std::size_t tail = 64, head = N - tail - kCut.size();
    std::memcpy(data, s.data(), head);
    std::memcpy(data + head, kCut.data(), kCut.size());
    std::memcpy(data + head + kCut.size(), s.data() + s.size() - tail, tail);
    len = N;
  }
  std::string_view view() const noexcept { return {data, len}; }
};

struct FileRecord {
  Text<kPath> path;
  Text<kName> filename;
  Text<kName> alt_filename;
  Text<kType> content_type;
  Text<16> disposition;
  TransferEncoding encoding;
  bool uuencoded;
  bool truncated;
  uint64_t size;
  uint8_t sha256[32];
};

class MessageInspector final : public reassembly::MessageObserver, private MimeCallbacks {
 public:
  MessageInspector(const InspectorLimits& limits, reassembly::EventOutput& out)
      : limits_(limits), out_(out), mime_(limits.mime), records_(std::max<uint32_t>(1, limits.max_file_records)) {
    sha_ = EVP_MD_CTX_new();
  }
  ~MessageInspector() override { EVP_MD_CTX_free(sha_); }

  void begin(const reassembly::MessageContext& ctx) noexcept override {
    remember(ctx);
    n_records_ = 0;
    attachments_ = 0;
    in_attachment_ = false;
    mime_.reset(this);
  }
  void data(const uint8_t* bytes, std::size_t len) noexcept override { mime_.feed(bytes, len); }
  void end(bool complete, const uint8_t (&message_sha256)[32], const reassembly::MessageContext& ctx) noexcept override {
    mime_.finish(complete);
    for (std::size_t i = 0; i < n_records_; ++i) emit(records_[i], &message_sha256, ctx);
    n_records_ = 0;
    anomalies_ = mime_.anomalies();
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
  // MimeCallbacks
  void on_part_begin(const PartInfo& part) noexcept override {
    in_attachment_ = part.attachment;
    if (!in_attachment_) return;
    FileRecord& r = current_;
    r.path.set(part.path);
    r.filename.set(part.filename);
    r.alt_filename.set(part.alt_filename);
    r.content_type.set(part.content_type);
    r.disposition.set(part.disposition);
    r.encoding = part.encoding;
    r.uuencoded = part.uuencoded;
    r.truncated = false;
    r.size = 0;
    EVP_DigestInit_ex(sha_, EVP_sha256(), nullptr);
  }
  void on_part_data(const uint8_t* data, std::size_t len) noexcept override {
    if (!in_attachment_) return;
    EVP_DigestUpdate(sha_, data, len);
    current_.size += len;
  }
  void on_part_end(PartEnd how) noexcept override {
    if (!in_attachment_) return;
    in_attachment_ = false;
    unsigned int n = 0;
    EVP_DigestFinal_ex(sha_, current_.sha256, &n);
    current_.truncated = how == PartEnd::truncated;
    ++attachments_;
    if (n_records_ == records_.size()) {
      // More attachments than records: the oldest goes out now, without the message's hash.
      emit(records_[0], nullptr, last_ctx_);
      std::move(records_.begin() + 1, records_.end(), records_.begin());
      --n_records_;
    }
    records_[n_records_++] = current_;
  }
  void on_anomaly(MimeAnomaly) noexcept override {}

  // The context's strings belong to the caller: keep a copy for events written mid-message.
  void remember(const reassembly::MessageContext& ctx) noexcept {
    last_ctx_ = ctx;
    std::snprintf(src_, sizeof(src_), "%s", ctx.src_ip ? ctx.src_ip : "");
    std::snprintf(dst_, sizeof(dst_), "%s", ctx.dest_ip ? ctx.dest_ip : "");
    last_ctx_.src_ip = src_;
    last_ctx_.dest_ip = dst_;
  }

  void emit(const FileRecord& r, const uint8_t (*message_sha256)[32], const reassembly::MessageContext& ctx) noexcept {
    char buf[kEventBytes];
    JsonLine j(buf, sizeof(buf));
    char ts[40];
    reassembly::format_rfc3339(ctx.now_us, ts);
    j.begin_object();
    j.key("timestamp").str(ts);
    j.key("event_type").str("file");
    j.key("flow_id").num(ctx.flow_id);
    j.key("src_ip").str(ctx.src_ip ? ctx.src_ip : "");
    j.key("src_port").num(ctx.src_port);
    j.key("dest_ip").str(ctx.dest_ip ? ctx.dest_ip : "");
    j.key("dest_port").num(ctx.dest_port);
    j.key("proto").str("TCP");
    j.key("transaction").num(ctx.transaction);
    j.key("file").begin_object();
    j.key("filename").str(r.filename.view());
    if (r.alt_filename.len) j.key("filename_alt").str(r.alt_filename.view());
    j.key("content_type").str(r.content_type.view());
    if (r.disposition.len) j.key("disposition").str(r.disposition.view());
    j.key("encoding").str(transfer_encoding_name(r.encoding));
    j.key("size").num(r.size);
    char sha[65];
    reassembly::hex_lower(r.sha256, 32, sha);
    j.key("sha256").str(sha);
    if (message_sha256) {
      reassembly::hex_lower(*message_sha256, 32, sha);
      j.key("message_sha256").str(sha);
    }
    j.key("mime_path").str(r.path.view());
    if (r.uuencoded) j.key("uuencoded").boolean(true);
    j.key("status").str(r.truncated ? "truncated" : "complete");
    j.end_object();
    out_.emit(j.finish());
  }

  const InspectorLimits& limits_;
  reassembly::EventOutput& out_;
  MimeParser mime_;
  EVP_MD_CTX* sha_ = nullptr;
  FileRecord current_;
  std::vector<FileRecord> records_;  // allocated once, with the slot
  std::size_t n_records_ = 0;
  uint32_t attachments_ = 0;
  uint32_t anomalies_ = 0;
  bool in_attachment_ = false;
  reassembly::MessageContext last_ctx_{};
  char src_[48] = {}, dst_[48] = {};
};

}  // namespace

std::unique_ptr<reassembly::MessageObserver> MessageInspectorFactory::make(reassembly::EventOutput& out) {
  return std::make_unique<MessageInspector>(limits_, out);
}

}  // namespace sluice::pipeline
