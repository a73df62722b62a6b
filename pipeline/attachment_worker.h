// The work a worker lcore does on attachments (DESIGN.md sections 1 and 3): it receives each
// attachment's decoded bytes as chunks (handoff.h), hashes them with SHA-256 as they arrive, types
// the file from its content, buffers archives whole (up to a cap) and unpacks them recursively,
// hashing and typing every member. Results go back to the RX lcore that owns the flow.
//
// Runs wherever it is called: on a worker lcore fed by rings (dataplane/worker_lcore.cpp), or on
// the RX lcore through LocalChannel when no worker lcore is configured. Attachments of many
// sessions interleave; each has its state (SHA-256 context, type detector, archive buffer) in a
// fixed table of `max_in_flight` entries allocated at construction. Archive buffers and libarchive
// are the only allocations after that, off the per-packet path and bounded by the limits below.
#pragma once

#include <cstdint>
#include <memory>

#include "pipeline/archive.h"
#include "pipeline/handoff.h"

namespace sluice::pipeline {

struct WorkerLimits {
  uint32_t max_in_flight = 256;                 // attachments open at once on one worker; beyond,
                                                // a new one is unscannable `overload` at once
  uint32_t type_head_bytes = 64 * 1024;         // bytes typing looks at (ISO 9660 needs 32 KiB + 6)
  uint64_t max_archive_bytes = 64ull << 20;     // an archive is buffered whole up to this; larger:
                                                // unscannable `limit_exceeded` (still hashed, typed)
  uint64_t max_buffered_bytes = 512ull << 20;   // all archive buffers of one worker together
  ArchiveLimits archive;                        // members, depth, sizes, ratio, time
  // Samples for analysis (sample.h): files of a type in `analysis_groups` up to this size keep
  // their bytes in the worker's sample pool (given at construction; none: nothing is kept).
  uint64_t max_sample_bytes = 32ull << 20;
  uint32_t analysis_groups = 0;                 // pipeline::AnalysisGroup bits
};

struct WorkerStats {
  uint64_t chunks = 0, bytes = 0;
  uint64_t attachments = 0;        // final results sent
  uint64_t digests = 0;            // ... of which messages' contents, only hashed (kChunkDigest)
  uint64_t archives = 0;           // archives explored
  uint64_t members = 0;            // member results sent
  uint64_t in_flight_full = 0;     // attachments refused: max_in_flight reached (overload)
  uint64_t stray_chunks = 0;       // chunks of an attachment with no open state (after a refusal)
  uint64_t decoder_memory_refused = 0;  // archives and streams not read: their headers declare
                                        // more decoder memory than archives.max_dictionary_mb
  uint64_t unscannable[8] = {};    // per Unscannable value
  uint64_t samples = 0;            // files whose bytes were kept for analysis
  uint64_t sample_misses[6] = {};  // per SampleMiss: why a file of a selected type was not kept
};

class AttachmentWorker {
 public:
  // `samples`: the pool sample chains come from (null: no file is kept for analysis).
  explicit AttachmentWorker(const WorkerLimits& limits, SampleBlocks* samples = nullptr);
  ~AttachmentWorker();
  AttachmentWorker(const AttachmentWorker&) = delete;
  AttachmentWorker& operator=(const AttachmentWorker&) = delete;

  // One chunk (valid during the call). Results of attachments it completes go to `out`.
  void on_chunk(const WorkChunk& c, ResultOutput& out) noexcept;
  const WorkerStats& stats() const noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::pipeline
