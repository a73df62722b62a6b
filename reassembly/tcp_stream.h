// One direction of a TCP connection, reassembled into an in-order byte stream.
//
// Knows nothing of packets, mbufs, lcores or policy: the caller hands it (seq, flags, payload)
// per segment and an ACK number seen in the opposite direction; it hands in-order bytes to a
// StreamSink. Runs on an RX lcore: no locks, no exceptions, no general-heap allocation after init.
//
// Semantics
// - Sequence numbers compare modulo 2^32 (RFC 793 / RFC 9293 section 3.4), so wrap-around is free.
// - Start: a SYN sets next = seq + 1. Without a SYN (capture started mid-connection), the first
//   segment that carries data sets next = its seq. Before either, nothing is delivered.
// - In-order data is delivered straight from the caller's buffer (no copy).
// - Data entirely before `next` is a retransmission: dropped, counted (retransmitted_bytes).
//   Data partly before `next` is trimmed to its new part.
// - Data after `next` is out of order: copied into blocks of the SegmentPool, kept in a list sorted
//   by seq. Overlaps follow "first data seen wins": bytes already buffered are kept, only the new
//   bytes of a later segment are stored; where old and new bytes of an overlap differ, that is an
//   overlap conflict (counted; on_anomaly(overlap_conflict) once per segment), an evasion signal.
//   The same holds when an in-order segment overlaps buffered data: buffered bytes win.
// - Gaps: a hole that will never be filled (capture loss). It is declared, delivering on_gap(n)
//   and then the buffered data after it, when
//     * the opposite direction ACKs bytes beyond the hole (the receiver has them; we never will),
//       when the caller calls on_ack: a caller whose two directions may arrive out of step asks
//       acked_hole() first and waits for the data before it calls on_ack (reassembler.cpp),
//     * the buffered data exceeds its per-stream limits or the pool has no free block,
//     * the caller calls flush() (FIN/RST seen and done, idle timeout, end of capture).
// - FIN: remembered as the end (fin_seq); once everything before it is delivered, on_end(fin).
//   RST: on_end(reset) at once, buffered data is released (not delivered). The caller decides
//   first whether the receiver would accept the reset (accepts_reset: RFC 5961 3.2).
// - The receiver's window (like the receiver, issue 10): the caller reports each window the
//   receiver advertises (set_window: its ACK plus its scaled window); data starting at or beyond
//   the right edge plus one more window (at least 64 KiB: taps may deliver the two directions out
//   of step) is not buffered, the part of a segment beyond it is trimmed; counted
//   (out_of_window_segments), on_anomaly(out_of_window). Before any window is known (mid-stream
//   pick-up), the edge is next + limits.unknown_window_bytes.
// - Delivered but not yet acknowledged bytes are kept (copied into pool blocks, at most
//   limits.max_unacked_bytes per stream, and only while the pool is more than half free) until
//   the receiver acknowledges them, so that a retransmission that differs from what was delivered
//   is an overlap conflict like one among buffered data. Retransmitted bytes no longer kept are
//   counted (unverified_bytes).
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice::reassembly {

// A fixed pool of fixed-size blocks for out-of-order data, one per RX lcore, shared by all its
// streams. Allocated once at start; alloc/free are O(1) with a free list. Exhaustion is reported
// to the caller, never an allocation.
class SegmentPool {
 public:
  static constexpr std::size_t kBlockSize = 2048;  // payload bytes per block (one MSS fits)
  struct Block {
    Block* next;     // in a stream's sorted list, or in the free list
    uint32_t seq;    // sequence number of data[0]
    uint16_t len;    // bytes used
    uint8_t data[kBlockSize];
  };
  // Allocates `blocks` blocks from the general heap (start-up only).
  explicit SegmentPool(std::size_t blocks);
  ~SegmentPool();
  SegmentPool(const SegmentPool&) = delete;
  SegmentPool& operator=(const SegmentPool&) = delete;

  Block* alloc() noexcept;  // nullptr when exhausted
  void free(Block* b) noexcept;
  std::size_t available() const noexcept { return available_; }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  Block* storage_;
  Block* free_list_;
  std::size_t available_;
  std::size_t capacity_;
  std::size_t untouched_ = 0;  // storage_[untouched_..] has never been handed out
};

struct TcpStreamLimits {
  uint32_t max_buffered_bytes;     // out-of-order payload kept per stream; beyond: a gap is declared
  uint32_t max_buffered_segments;  // blocks per stream; beyond: same
  uint32_t max_unacked_bytes = 0;     // delivered bytes kept until acknowledged (0: none)
  uint32_t unknown_window_bytes = 0;  // data accepted ahead of next before a window is known (0: no bound)
};

enum class StreamEnd : uint8_t { fin, reset };
// rst_ignored is the caller's (a reset the receiver would not accept); the stream raises the others.
enum class StreamAnomaly : uint8_t { overlap_conflict, gap, memcap, out_of_window, rst_ignored };

class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual void on_data(const uint8_t* data, std::size_t len) noexcept = 0;
  virtual void on_gap(uint32_t missing_bytes) noexcept = 0;  // bytes that will never arrive
  virtual void on_end(StreamEnd how) noexcept = 0;
  virtual void on_anomaly(StreamAnomaly what) noexcept = 0;
};

struct TcpStreamStats {
  uint64_t delivered_bytes;
  uint64_t retransmitted_bytes;   // duplicates of data already delivered or buffered
  uint64_t out_of_order_segments;
  uint64_t overlap_conflicts;
  uint64_t gaps;
  uint64_t gap_bytes;
  uint64_t memcap_flushes;        // gaps forced by limits or pool exhaustion
  uint64_t out_of_window_segments;  // data beyond the receiver's window: not buffered
  uint64_t unverified_bytes;        // retransmitted bytes already delivered and no longer kept
};

namespace tcp_flags {
inline constexpr uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10;
}

class TcpStream {
 public:
  // Limits and pool outlive the stream. A stream is reusable after reset().
  void init(const TcpStreamLimits* limits, SegmentPool* pool) noexcept;
  // Releases buffered blocks to the pool and forgets all state (init values kept).
  void reset() noexcept;

  // One segment of this direction. `flags` from tcp_flags.
  void on_segment(uint32_t seq, uint8_t flags, const uint8_t* payload, std::size_t len, StreamSink& sink) noexcept;
  // The opposite direction acknowledged everything before `ack` (its ACK flag was set).
  void on_ack(uint32_t ack, StreamSink& sink) noexcept;
  // Whether on_ack(ack) would declare a gap: bytes before `ack` (up to the FIN) not delivered yet.
  bool acked_hole(uint32_t ack) const noexcept {
    if (int32_t(next_ - ack) >= 0) return false;  // nearly always: first (a FIN only lowers ack)
    if (!started_ || ended_) return false;
    if (fin_seen_ && int32_t(fin_seq_ - ack) < 0) ack = fin_seq_;
    return int32_t(next_ - ack) < 0;
  }
  // Declares every remaining hole a gap and delivers all buffered data (then on_end(fin) if a FIN
  // was seen and reached). For close, idle timeout and end of capture.
  void flush(StreamSink& sink) noexcept;
  // The receiver (the opposite direction) advertised `window` bytes from `ack` (already scaled).
  void set_window(uint32_t ack, uint32_t window) noexcept;
  // Whether the receiver would take a reset at `seq` (RFC 5961 3.2: exactly the next expected
  // sequence number; after our FIN, the one after it). True before the stream started.
  bool accepts_reset(uint32_t seq) const noexcept;

  bool started() const noexcept { return started_; }
  bool ended() const noexcept { return ended_; }
  uint32_t next_seq() const noexcept { return next_; }
  uint32_t buffered_bytes() const noexcept { return buffered_bytes_; }
  const TcpStreamStats& stats() const noexcept { return stats_; }

 private:
  const TcpStreamLimits* limits_ = nullptr;
  SegmentPool* pool_ = nullptr;
  SegmentPool::Block* head_ = nullptr;  // buffered out-of-order data, sorted by seq, non-overlapping
  SegmentPool::Block* sent_head_ = nullptr;  // delivered, unacknowledged bytes, contiguous up to next_
  SegmentPool::Block* sent_tail_ = nullptr;
  uint32_t sent_bytes_ = 0;
  uint32_t window_edge_ = 0;  // data from here on is out of the window (when window_known_)
  bool window_known_ = false;
  uint32_t next_ = 0;                   // next in-order sequence number to deliver
  uint32_t fin_seq_ = 0;
  uint32_t buffered_bytes_ = 0;
  uint32_t buffered_segments_ = 0;
  bool started_ = false;
  bool fin_seen_ = false;
  bool ended_ = false;
  TcpStreamStats stats_{};

  // Steps of on_segment (tcp_stream.cpp says why each exists).
  void start(uint32_t seq, uint8_t flags, std::size_t len) noexcept;
  void note_fin(uint32_t fin_seq) noexcept;
  void accept(uint32_t seq, const uint8_t* p, uint32_t len, StreamSink& sink) noexcept;
  bool check_overlaps(uint32_t seq, const uint8_t* p, uint32_t len) noexcept;
  uint32_t deliver_in_order(const uint8_t* p, uint32_t len, StreamSink& sink) noexcept;
  uint32_t buffer_out_of_order(uint32_t seq, const uint8_t* p, uint32_t len, StreamSink& sink) noexcept;
  uint32_t store(SegmentPool::Block* prev, uint32_t seq, const uint8_t* p, uint32_t len) noexcept;
  // Moving `next_` forward: delivery, gaps, end.
  void deliver(const uint8_t* p, uint32_t len, StreamSink& sink) noexcept;
  void drain(StreamSink& sink) noexcept;
  void gap_to(uint32_t seq, StreamSink& sink) noexcept;
  void skip_to(uint32_t seq, StreamSink& sink) noexcept;
  void maybe_end(StreamSink& sink) noexcept;
  void end(StreamEnd how, StreamSink& sink) noexcept;
  void release() noexcept;
  // The unacknowledged copy.
  void keep_sent(const uint8_t* p, uint32_t len) noexcept;
  void forget_sent() noexcept;
  void ack_sent(uint32_t ack) noexcept;
  bool differs_from_sent(uint32_t seq, const uint8_t* p, uint32_t len) noexcept;
  bool window_limit(uint32_t& limit) const noexcept;  // false: no bound known or configured
};

}  // namespace sluice::reassembly
