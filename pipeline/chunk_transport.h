// Internal to pipeline/: the transport half of the attachment hand-off (attachment_handoff.h). It
// carries each attachment's decoded bytes to its worker over a ChunkChannel, in order, in 4 KiB
// chunks, with the hand-off's back-pressure, and takes the workers' results in. It knows an
// attachment as a stream (the index of its record, given by the owner) and an id; nothing of
// messages, records or events.
//
// Chunk ownership: a chunk taken from the channel is this transport's until one of: send()
// accepted it (then the channel's), it is given back with release(), or it waits in the deferred
// queue (still this transport's, released at destruction if never sent). A stream holds at most
// one partly filled chunk; close() and the destructor give it back.
//
// Back-pressure, as AttachmentHandoff documents it: no free chunk or no ring room → retry for
// `wait_us` (flushing and taking results in meanwhile), then the stream is given up: the owner
// hears on_overload(stream), and a worker that already had the stream's first bytes gets a
// terminal chunk telling it to forget them (queued in order and retried at every poll, as is a
// last chunk that found no room: chunks carrying an end are never dropped).
//
// One lcore, no locks; the staging lists are sized at construction: no allocation after it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pipeline/handoff.h"

namespace sluice::pipeline {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// What the transport tells the owner of the streams: results as they come (ResultHandler, also
// while it waits out back-pressure), and the streams it gave up.
class TransportClient : public ResultHandler {
 public:
  // Back-pressure won: nothing more of `stream` is sent. Called from write(), end() and poll(),
  // also for another stream than the one being written (flushing partial chunks to free some).
  virtual void on_overload(uint32_t stream) noexcept = 0;
};

struct TransportStats {
  uint64_t chunks = 0, bytes = 0;  // sent to workers
  uint64_t overload = 0;           // streams given up (and terminal chunks dropped, see defer())
  uint64_t no_chunk = 0;           // chunk pool empty (each occurrence)
  uint64_t ring_full = 0;          // a worker's ring had no room (each occurrence)
};

class ChunkTransport {
 public:
  // `streams`: stream indexes are below it. `wait_us`: back-pressure wait (0: give up at once).
  ChunkTransport(ChunkChannel& channel, uint32_t streams, uint32_t wait_us, TransportClient& client);
  ~ChunkTransport();  // gives partial and deferred chunks back to the channel
  ChunkTransport(const ChunkTransport&) = delete;
  ChunkTransport& operator=(const ChunkTransport&) = delete;

  // A new attachment on `stream`; its worker is chosen by `attachment` (its id). `digest`: a
  // message's content, only hashed by the worker (kChunkDigest on its first chunk).
  void open(uint32_t stream, uint64_t attachment, bool digest = false) noexcept;
  // Copies `data` into the stream's chunks; full chunks go at once, a partial one at the next
  // poll() or when chunks run out.
  void write(uint32_t stream, const uint8_t* data, std::size_t len) noexcept;
  // The last chunk, carrying how the attachment ended: sent, or queued in order for ring room.
  void end(uint32_t stream, AttachmentEnd how) noexcept;
  // The owner is done with the stream (result in, or given up): its partial chunk goes back and
  // it is no longer flushed. Idempotent.
  void close(uint32_t stream) noexcept;
  // Between bursts: sends the deferred chunks, then the partial ones, flushes, takes results in.
  void poll() noexcept;
  const TransportStats& stats() const noexcept { return stats_; }

 private:
  struct Stream {
    uint64_t id = 0;
    unsigned worker = 0;
    bool live = false;      // opened, not closed
    bool sent_any = false;  // the worker has had a chunk of it (it must be told to forget it)
    bool digest = false;    // kChunkDigest on the first chunk
    bool dirty = false;     // listed in dirty_ (at most once: dirty_ never outgrows its reserve)
    WorkChunk* chunk = nullptr;  // partly filled, sent when full or at the next poll()
  };
  struct Deferred {
    WorkChunk* chunk;
    unsigned worker;
  };

  bool send(unsigned worker, WorkChunk* c) noexcept;
  bool count_sent(const WorkChunk* c) noexcept;
  WorkChunk* alloc() noexcept;
  WorkChunk* fresh_chunk(const Stream& s) noexcept;
  bool push_chunk(uint32_t stream) noexcept;
  void give_up(uint32_t stream, WorkChunk* c) noexcept;
  void defer(unsigned worker, WorkChunk* c) noexcept;
  void send_deferred() noexcept;
  void send_dirty() noexcept;

  ChunkChannel& channel_;
  TransportClient& client_;
  uint32_t wait_us_;
  std::vector<Stream> streams_;
  std::vector<uint32_t> dirty_;       // streams with a partial chunk
  std::vector<Deferred> deferred_;    // terminal chunks waiting for ring room, in order
  std::size_t deferred_head_ = 0, n_deferred_ = 0;
  TransportStats stats_;
};

}  // namespace sluice::pipeline
