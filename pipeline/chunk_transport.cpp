// Chunk ownership (chunk_transport.h): every chunk this file takes from the channel ends in exactly
// one of: accepted by send() (the channel's from then on), released, held as a stream's partial
// chunk, or queued in deferred_; the last two are released by close() or the destructor.
#include "pipeline/chunk_transport.h"

#include <algorithm>
#include <chrono>
#include <cstring>

namespace sluice::pipeline {

ChunkTransport::ChunkTransport(ChunkChannel& channel, uint32_t streams, uint32_t wait_us, TransportClient& client)
    : channel_(channel), client_(client), wait_us_(wait_us), streams_(streams) {
  dirty_.reserve(streams);
  deferred_.resize(2 * std::size_t{streams});
}

ChunkTransport::~ChunkTransport() {
  for (auto& s : streams_)
    if (s.chunk) channel_.release(s.chunk);
  for (std::size_t i = 0; i < n_deferred_; ++i)
    channel_.release(deferred_[(deferred_head_ + i) % deferred_.size()].chunk);
}

void ChunkTransport::open(uint32_t stream, uint64_t attachment, bool digest) noexcept {
  Stream& s = streams_[stream];
  s.id = attachment;
  s.digest = digest;
  s.worker = static_cast<unsigned>((attachment * 0x9E3779B97F4A7C15ull) >> 40) % channel_.workers();
  s.live = true;
  s.sent_any = false;
  s.chunk = nullptr;
  // `dirty` stays: a stream reopened before the next poll is still listed once in dirty_, and that
  // entry serves its new attachment (listing it again let dirty_ outgrow its reserve).
}

void ChunkTransport::write(uint32_t stream, const uint8_t* data, std::size_t len) noexcept {
  Stream& s = streams_[stream];
  while (len) {
    if (!s.chunk && !(s.chunk = fresh_chunk(s))) return give_up(stream, nullptr);
    WorkChunk& c = *s.chunk;
    const std::size_t n = std::min(len, kChunkData - c.len);
    std::memcpy(c.data + c.len, data, n);
    c.len += static_cast<uint32_t>(n);
    data += n;
    len -= n;
    if (c.len == kChunkData) {
      if (!push_chunk(stream)) return;
    } else if (!s.dirty) {
      s.dirty = true;
      dirty_.push_back(stream);
    }
  }
}

void ChunkTransport::end(uint32_t stream, AttachmentEnd how) noexcept {
  Stream& s = streams_[stream];
  if (!s.chunk && !(s.chunk = fresh_chunk(s))) return give_up(stream, nullptr);
  WorkChunk* c = s.chunk;
  s.chunk = nullptr;
  c->flags |= kChunkLast;
  c->end = how;
  if (send(s.worker, c)) {
    s.sent_any = true;
    return;  // the result comes back through the client (possibly already, on a local channel)
  }
  // The last chunk carries data the worker needs: it waits for room in order, the stream stays open.
  defer(s.worker, c);
}

void ChunkTransport::close(uint32_t stream) noexcept {
  Stream& s = streams_[stream];
  s.live = false;
  if (s.chunk) {
    channel_.release(s.chunk);
    s.chunk = nullptr;
  }
}

void ChunkTransport::poll() noexcept {
  send_deferred();
  send_dirty();
  channel_.flush();
  channel_.poll(client_);
}

// Sends `c` to `worker`, waiting up to wait_us (taking results in meanwhile) when there is no room.
bool ChunkTransport::send(unsigned worker, WorkChunk* c) noexcept {
  if (channel_.send(worker, c)) return count_sent(c);
  ++stats_.ring_full;
  if (wait_us_) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(wait_us_);
    do {
      channel_.flush();
      channel_.poll(client_);
      if (channel_.send(worker, c)) return count_sent(c);
      cpu_relax();
    } while (std::chrono::steady_clock::now() < deadline);
  }
  return false;
}

bool ChunkTransport::count_sent(const WorkChunk* c) noexcept {
  ++stats_.chunks;
  stats_.bytes += c->len;
  return true;
}

WorkChunk* ChunkTransport::alloc() noexcept {
  if (WorkChunk* c = channel_.alloc()) return c;
  ++stats_.no_chunk;
  send_dirty();  // local channel: sending frees chunks at once
  if (WorkChunk* c = channel_.alloc()) return c;
  if (wait_us_) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(wait_us_);
    do {
      channel_.flush();
      channel_.poll(client_);
      if (WorkChunk* c = channel_.alloc()) return c;
      cpu_relax();
    } while (std::chrono::steady_clock::now() < deadline);
  }
  return nullptr;
}

WorkChunk* ChunkTransport::fresh_chunk(const Stream& s) noexcept {
  WorkChunk* c = alloc();
  if (!c) return nullptr;
  c->attachment = s.id;
  c->len = 0;
  c->flags = s.sent_any ? 0 : s.digest ? kChunkFirst | kChunkDigest : kChunkFirst;
  c->end = AttachmentEnd::complete;
  return c;
}

// The stream's partial chunk goes now (full, or the end of a burst).
bool ChunkTransport::push_chunk(uint32_t stream) noexcept {
  Stream& s = streams_[stream];
  WorkChunk* c = s.chunk;
  s.chunk = nullptr;
  if (!send(s.worker, c)) {
    give_up(stream, c);
    return false;
  }
  s.sent_any = true;
  return true;
}

// Back-pressure won: if the worker has the stream's first bytes, it is told to forget them (that
// terminal chunk is retried at every poll); the owner hears it last.
void ChunkTransport::give_up(uint32_t stream, WorkChunk* c) noexcept {
  ++stats_.overload;
  const Stream& s = streams_[stream];
  if (s.sent_any) {
    if (!c) c = channel_.alloc();
    if (c) {
      c->attachment = s.id;
      c->len = 0;
      c->flags = kChunkLast;
      c->end = AttachmentEnd::overload;
      defer(s.worker, c);
    }
  } else if (c) {
    channel_.release(c);
  }
  client_.on_overload(stream);
}

void ChunkTransport::defer(unsigned worker, WorkChunk* c) noexcept {
  if (n_deferred_ == deferred_.size()) {  // cannot happen while streams are bounded; counted if it does
    channel_.release(c);
    ++stats_.overload;
    return;
  }
  deferred_[(deferred_head_ + n_deferred_++) % deferred_.size()] = {c, worker};
}

void ChunkTransport::send_deferred() noexcept {
  while (n_deferred_) {
    auto& d = deferred_[deferred_head_];
    if (!channel_.send(d.worker, d.chunk)) return;
    count_sent(d.chunk);
    deferred_head_ = (deferred_head_ + 1) % deferred_.size();
    --n_deferred_;
  }
}

void ChunkTransport::send_dirty() noexcept {
  for (uint32_t i : dirty_) {
    Stream& s = streams_[i];
    s.dirty = false;
    if (s.live && s.chunk && s.chunk->len) push_chunk(i);
  }
  dirty_.clear();
}

}  // namespace sluice::pipeline
