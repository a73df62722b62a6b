// What moves between an RX lcore and a worker lcore (DESIGN.md section 3): attachment chunks one
// way, results the other. Plain fixed-size records, so the data plane can carry them in
// rte_mempool elements over rte_rings; the channel interfaces below are what the pipeline sees of
// that transport (dataplane/worker_rings.h implements them with DPDK; LocalChannel in
// attachment_handoff.h runs the worker on the RX lcore itself when no worker lcore is configured).
//
// Ownership: a chunk belongs to whoever holds the pointer. The RX lcore takes one from the
// channel, fills it, and either sends it (ownership moves only when send() returns true) or
// releases it. The worker reads it during on_chunk() and the transport returns it to its pool.
// Results are copied by value into the transport; the handler sees them only during the call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pipeline/archive.h"
#include "pipeline/file_type.h"
#include "pipeline/sample.h"

namespace sluice::pipeline {

// An attachment id: the RX lcore that owns its flow (results go back there), then a per-lcore
// serial (slot and generation of its record on that lcore).
inline constexpr unsigned kAttachmentRxShift = 56;
inline unsigned attachment_rx(uint64_t id) noexcept { return static_cast<unsigned>(id >> kAttachmentRxShift); }

inline constexpr std::size_t kChunkData = 4096 - 16;  // a chunk is one 4 KiB pool element

enum ChunkFlags : uint8_t {
  kChunkFirst = 1,  // the attachment's first chunk: the worker opens its state
  kChunkLast = 2,   // the last one: `end` says how the attachment ended
  kChunkDigest = 4, // with kChunkFirst: a message's content, only hashed (no typing, no archive):
                    // its `final` result carries the message's SHA-256 (MessageRecords)
};

enum class AttachmentEnd : uint8_t {
  complete,   // every decoded byte was sent
  truncated,  // the message or the MIME part was cut: what was sent is all there is
  overload,   // the RX lcore stopped sending (no chunk or no ring room): unscannable `overload`
};

struct WorkChunk {
  uint64_t attachment;
  uint32_t len;       // bytes used in `data`
  uint8_t flags;      // ChunkFlags
  AttachmentEnd end;  // with kChunkLast
  uint8_t reserved[2];
  uint8_t data[kChunkData];
};
static_assert(sizeof(WorkChunk) == 4096);

inline constexpr std::size_t kResultName = 1024;  // archive member path bytes kept

// One result record: one per archive member (in visit order, parents before children), then
// exactly one `final` record for the attachment itself, always the last for that id.
struct WorkResult {
  uint64_t attachment;
  bool final;               // the attachment itself (else an archive member)
  bool hashed;              // sha256 is valid (false when no byte was seen: overload at the start)
  FileType type;
  Unscannable unscannable;  // none, or why it could not be scanned
  uint8_t mismatch;         // members: TypeMismatch bits against the member name's extension
  uint32_t index;           // members: 0-based in the archive tree
  int32_t parent;           // members: index of the containing member, -1: the attachment
  uint32_t depth;           // members: 1 for the attachment's own members
  uint64_t size;            // bytes hashed
  uint8_t sha256[32];
  uint8_t parent_sha256[32];  // members: SHA-256 of the containing file
  uint16_t name_len;        // members: path inside the archive
  char name[kResultName];
  uint16_t detail_len;      // final: short reason text (which limit, libarchive's message)
  char detail[128];
  SampleBlock* sample;      // its bytes, kept for analysis (sample.h: whoever drops the result
                            // gives the chain back); null: see sample_miss
  SampleMiss sample_miss;
};

// A fixed set of chunks allocated once, handed out and taken back without allocating: the pool of
// transports that are not DPDK's (LocalChannel, test doubles).
class ChunkPool {
 public:
  explicit ChunkPool(std::size_t n) : chunks_(n) {
    free_.reserve(n);
    for (auto& c : chunks_) free_.push_back(&c);
  }
  WorkChunk* get() noexcept {
    if (free_.empty()) return nullptr;
    WorkChunk* c = free_.back();
    free_.pop_back();
    return c;
  }
  void put(WorkChunk* c) noexcept { free_.push_back(c); }  // capacity reserved: no allocation

 private:
  std::vector<WorkChunk> chunks_;
  std::vector<WorkChunk*> free_;
};

class ResultHandler {
 public:
  virtual ~ResultHandler() = default;
  virtual void on_result(const WorkResult& r) noexcept = 0;
};

// The RX lcore's side of the transport: chunks to workers, results back.
class ChunkChannel {
 public:
  virtual ~ChunkChannel() = default;
  virtual unsigned workers() const noexcept = 0;
  // A free chunk, or nullptr when the pool is exhausted.
  virtual WorkChunk* alloc() noexcept = 0;
  // Gives back a chunk that was not sent.
  virtual void release(WorkChunk* c) noexcept = 0;
  // Queues `c` for `worker` (staged and sent in bursts). False when there is no room even after
  // pushing what was staged: the chunk is still the caller's.
  virtual bool send(unsigned worker, WorkChunk* c) noexcept = 0;
  // Pushes staged chunks (end of an RX burst). False when some are still staged.
  virtual bool flush() noexcept = 0;
  // Hands the results waiting for this lcore to `h`; returns how many.
  virtual std::size_t poll(ResultHandler& h) noexcept = 0;
};

// The worker's side: results go back to the RX lcore named in the attachment id.
class ResultOutput {
 public:
  virtual ~ResultOutput() = default;
  virtual void put(const WorkResult& r) noexcept = 0;
};

}  // namespace sluice::pipeline
