// libFuzzer target: the attachment hand-off (RX side) and the worker behind it, driven by an
// input-derived sequence of operations: messages and files opened and closed in any interleaving,
// data of any size and content (archives among it), polls, a transport that loses room and chunks
// at random, small record pools, drains. Aborts on a broken contract:
// - every file_begin gives exactly one attachment `file` event (tracked or not), every event is
//   valid JSON with the fields its kind must have;
// - nothing is written for a message before its end, unless reported at once (untracked files,
//   members beyond the pool);
// - drain() leaves nothing pending.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <string>
#include <vector>

#include "control/event_render.h"
#include "pipeline/attachment_handoff.h"
#include "reassembly/reassembler.h"

using namespace sluice::pipeline;

namespace {

struct Input {
  const uint8_t* p;
  std::size_t n;
  uint8_t byte() { return n ? (--n, *p++) : 0; }
  uint16_t u16() { return static_cast<uint16_t>(byte() | byte() << 8); }
};

struct Events final : sluice::records::RecordSink {
  std::size_t attachments = 0, members = 0;
  sluice::control::EventRenderer renderer;
  void emit(const void* record, std::size_t size) noexcept override {
    const std::string_view line = renderer.render(record, size);
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || j["event_type"] != "file" || !j.contains("file")) std::abort();
    const auto& f = j["file"];
    if (!f.contains("filename") || !f.contains("size")) std::abort();
    if (f.contains("parent_sha256")) {
      if (!f.contains("depth") || f["depth"] < 1) std::abort();
      ++members;
    } else {
      // Hashed unless unscannable overload; never both missing.
      if (!f.contains("sha256") && f.value("unscannable", "") != "overload") std::abort();
      ++attachments;
    }
  }
};

// A transport whose ring refuses at times (input-driven) and whose worker runs when polled.
class FlakyChannel final : public ChunkChannel, public ResultOutput {
 public:
  FlakyChannel(const WorkerLimits& l, Input& in) : worker_(l), in_(in), pool_(8) {}
  unsigned workers() const noexcept override { return 1; }
  WorkChunk* alloc() noexcept override { return pool_.get(); }
  void release(WorkChunk* c) noexcept override { pool_.put(c); }
  bool send(unsigned, WorkChunk* c) noexcept override {
    if (queue_.size() >= 4 || (in_.byte() & 7) == 0) return false;
    queue_.push_back(c);
    return true;
  }
  bool flush() noexcept override { return true; }
  std::size_t poll(ResultHandler& h) noexcept override {
    const std::size_t k = in_.byte() & 3;
    for (std::size_t i = 0; i < k && !queue_.empty(); ++i) run_one();
    std::size_t n = results_.size();
    for (const auto& r : results_) h.on_result(r);
    results_.clear();
    return n;
  }
  void put(const WorkResult& r) noexcept override { results_.push_back(r); }
  void run_all() {
    while (!queue_.empty()) run_one();
  }

 private:
  void run_one() {
    WorkChunk* c = queue_.front();
    queue_.pop_front();
    worker_.on_chunk(*c, *this);
    release(c);
  }
  AttachmentWorker worker_;
  Input& in_;
  ChunkPool pool_;
  std::deque<WorkChunk*> queue_;
  std::vector<WorkResult> results_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  Input in{data, size};
  WorkerLimits wl;
  wl.max_in_flight = 1 + (in.byte() & 3);
  wl.type_head_bytes = 4096;
  wl.max_archive_bytes = 1 << 16;
  wl.archive.max_members = 16;
  wl.archive.max_total_bytes = 1 << 20;
  wl.archive.max_member_bytes = 1 << 18;
  wl.archive.max_millis = 500;
  HandoffLimits hl;
  hl.max_messages = 1 + (in.byte() & 3);
  hl.max_files = 1 + (in.byte() & 7);
  hl.max_members = in.byte() & 3;
  hl.wait_us = 0;
  FlakyChannel ch(wl, in);
  Events out;
  AttachmentHandoff h(hl, ch, out, 0);

  sluice::records::MessageContext ctx;
  ctx.flow.flow_id = 1;
  ctx.flow.client_ip[0] = 192, ctx.flow.client_ip[2] = 2, ctx.flow.client_ip[3] = 1;
  ctx.flow.server_ip[0] = 192, ctx.flow.server_ip[2] = 2, ctx.flow.server_ip[3] = 2;
  ctx.flow.client_port = 1;
  ctx.flow.server_port = 25;
  const uint8_t sha[32] = {};
  struct Msg {
    AttachmentHandoff::Handle m;
    std::vector<AttachmentHandoff::Handle> open;
  };
  std::vector<Msg> msgs;
  std::size_t begun = 0;
  static const char* names[] = {"a.zip", "b.pdf", "c", "d.exe"};
  while (in.n) {
    const uint8_t op = in.byte();
    const std::size_t which = msgs.empty() ? 0 : in.byte() % msgs.size();
    switch (op % 6) {
      case 0:
        if (msgs.size() < 4) msgs.push_back({h.message_begin(ctx), {}});
        break;
      case 1:
        if (!msgs.empty() && msgs[which].open.size() < 2) {
          PartInfo p{};
          p.path = "2";
          p.filename = names[op >> 6];
          p.content_type = "application/octet-stream";
          p.attachment = true;
          msgs[which].open.push_back(h.file_begin(msgs[which].m, p, ctx));
          ++begun;
        }
        break;
      case 2:
        if (!msgs.empty() && !msgs[which].open.empty()) {
          const std::size_t len = std::min<std::size_t>(in.n, in.u16() % 9000);
          h.file_data(msgs[which].open.back(), in.p, len);
          in.p += len;
          in.n -= len;
        }
        break;
      case 3:
        if (!msgs.empty() && !msgs[which].open.empty()) {
          h.file_end(msgs[which].open.back(), (op & 0x40) ? PartEnd::truncated : PartEnd::complete);
          msgs[which].open.pop_back();
        }
        break;
      case 4:
        if (!msgs.empty()) {
          Msg& m = msgs[which];
          while (!m.open.empty()) {
            h.file_end(m.open.back(), PartEnd::truncated);
            m.open.pop_back();
          }
          h.message_end(m.m, true, sha, ctx);
          msgs.erase(msgs.begin() + static_cast<std::ptrdiff_t>(which));
        }
        break;
      default:
        h.poll();
        break;
    }
  }
  for (Msg& m : msgs) {
    while (!m.open.empty()) {
      h.file_end(m.open.back(), PartEnd::truncated);
      m.open.pop_back();
    }
    h.message_end(m.m, true, sha, ctx);
  }
  // The worker answers everything that reached it; drain then finishes (abort only if stuck).
  for (int i = 0; i < 64 && h.pending(); ++i) {
    h.poll();
    ch.run_all();
  }
  std::atomic<bool> abort{true};
  h.drain(abort);
  if (h.pending() != 0) std::abort();
  if (out.attachments != begun) {
    std::fprintf(stderr, "%zu files begun, %zu attachment events\n", begun, out.attachments);
    std::abort();
  }
  return 0;
}
