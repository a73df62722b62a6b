// Per-direction TCP reassembly (contract in tcp_stream.h).
//
// Invariant between calls: the buffered blocks are sorted, do not overlap, and all lie after
// `next_` (a block that `next_` reaches is delivered at once). Every path that moves `next_`
// (deliver, drain, gap_to) keeps it, so the code below never has to look behind `next_`.
#include "reassembly/tcp_stream.h"

#include <algorithm>
#include <cstring>

namespace sluice::reassembly {

namespace {

using Block = SegmentPool::Block;

// RFC 9293 section 3.4: sequence numbers compare modulo 2^32.
bool seq_lt(uint32_t a, uint32_t b) { return int32_t(a - b) < 0; }
bool seq_leq(uint32_t a, uint32_t b) { return int32_t(a - b) <= 0; }
uint32_t seq_max(uint32_t a, uint32_t b) { return seq_lt(a, b) ? b : a; }
uint32_t seq_min(uint32_t a, uint32_t b) { return seq_lt(a, b) ? a : b; }
uint32_t block_end(const Block* b) { return b->seq + b->len; }

// Bigger than any real segment (64 KiB with segmentation offload, 512 KiB with BIG TCP), small
// enough that a segment's end stays comparable with its start modulo 2^32.
constexpr std::size_t kMaxSegment = std::size_t{1} << 20;
// RFC 7323 section 2.3: window scale 14 at most, so no sender may be 2^30 bytes ahead. Data
// further ahead is bogus; refusing it keeps every buffered sequence number comparable.
constexpr uint32_t kMaxWindow = uint32_t{1} << 30;

}  // namespace

// Blocks never used are handed out in order (`untouched_`), so a pool's pages are faulted in
// only when out-of-order data needs them, not all at start-up.
SegmentPool::SegmentPool(std::size_t blocks)
    : storage_(new Block[blocks]), free_list_(nullptr), available_(blocks), capacity_(blocks) {}

SegmentPool::~SegmentPool() { delete[] storage_; }

Block* SegmentPool::alloc() noexcept {
  Block* b = free_list_;
  if (b == nullptr) {
    if (untouched_ == capacity_) return nullptr;
    b = &storage_[untouched_++];
    b->next = nullptr;
    --available_;
    return b;
  }
  free_list_ = b->next;
  b->next = nullptr;
  --available_;
  return b;
}

void SegmentPool::free(Block* b) noexcept {
  if (b == nullptr) return;
  b->next = free_list_;
  free_list_ = b;
  ++available_;
}

void TcpStream::init(const TcpStreamLimits* limits, SegmentPool* pool) noexcept {
  reset();  // blocks of a previous life go back to the pool they came from
  limits_ = limits;
  pool_ = pool;
}

void TcpStream::reset() noexcept {
  release();
  next_ = fin_seq_ = 0;
  started_ = fin_seen_ = ended_ = false;
  window_edge_ = 0;
  window_known_ = false;
  stats_ = {};
}

void TcpStream::on_segment(uint32_t seq, uint8_t flags, const uint8_t* payload, std::size_t len,
                           StreamSink& sink) noexcept {
  if (ended_) return;  // late retransmissions and strays after the end
  if (flags & tcp_flags::rst) {  // the connection is gone: what is buffered will never be needed
    end(StreamEnd::reset, sink);
    return;
  }
  len = payload == nullptr ? 0 : std::min(len, kMaxSegment);
  if (flags & tcp_flags::syn) seq += 1;  // the SYN takes one sequence number; its data follows
  start(seq, flags, len);
  if (!started_) return;  // nothing to anchor sequence numbers on yet (e.g. a bare FIN)
  if (flags & tcp_flags::fin) note_fin(seq + uint32_t(len));
  accept(seq, payload, uint32_t(len), sink);
  maybe_end(sink);
}

// `seq` is where this segment's data starts. Only the first SYN anchors the stream, so a
// retransmitted SYN cannot rewind it; without one, the first data does (mid-connection capture).
void TcpStream::start(uint32_t seq, uint8_t flags, std::size_t len) noexcept {
  if (started_ || (!(flags & tcp_flags::syn) && len == 0)) return;
  next_ = seq;
  started_ = true;
}

// The first FIN fixes the end of the stream; data buffered beyond it can never be delivered.
void TcpStream::note_fin(uint32_t fin_seq) noexcept {
  if (fin_seen_) return;
  fin_seen_ = true;
  fin_seq_ = fin_seq;
  Block** link = &head_;
  while (*link && seq_lt((*link)->seq, fin_seq)) {
    Block* b = *link;
    if (seq_lt(fin_seq, block_end(b))) {
      buffered_bytes_ -= block_end(b) - fin_seq;
      b->len = uint16_t(fin_seq - b->seq);
    }
    link = &b->next;
  }
  while (Block* b = *link) {
    *link = b->next;
    buffered_bytes_ -= b->len;
    --buffered_segments_;
    pool_->free(b);
  }
}

void TcpStream::accept(uint32_t seq, const uint8_t* p, uint32_t len, StreamSink& sink) noexcept {
  bool conflict = false;
  if (seq_lt(seq, next_)) {  // already delivered: compared with the unacknowledged copy, if kept
    const uint32_t old = std::min(len, next_ - seq);
    stats_.retransmitted_bytes += old;
    conflict = differs_from_sent(seq, p, old);
    seq += old, p += old, len -= old;
  }
  if (fin_seen_ && seq_lt(fin_seq_, seq + len)) len = seq_lt(seq, fin_seq_) ? fin_seq_ - seq : 0;
  if (len != 0 && seq - next_ >= kMaxWindow) len = 0;
  uint32_t limit;
  if (len != 0 && seq != next_ && window_limit(limit)) {  // out of order: only within the receiver's window
    if (!seq_lt(seq, limit)) {
      ++stats_.out_of_window_segments;
      sink.on_anomaly(StreamAnomaly::out_of_window);
      len = 0;
    } else if (seq_lt(limit, seq + len)) {
      len = limit - seq;
    }
  }
  // Compare with what is buffered before anything moves, so each segment is judged once.
  if (len != 0) {
    if (seq != next_) ++stats_.out_of_order_segments;
    conflict |= check_overlaps(seq, p, len);
  }
  if (conflict) {
    ++stats_.overlap_conflicts;
    sink.on_anomaly(StreamAnomaly::overlap_conflict);
  }
  while (len > 0) {
    uint32_t n;
    if (seq_lt(seq, next_)) {
      n = std::min(len, next_ - seq);  // covered by buffered bytes just delivered: they won
    } else if (seq == next_) {
      n = deliver_in_order(p, len, sink);
    } else {
      n = buffer_out_of_order(seq, p, len, sink);
    }
    seq += n, p += n, len -= n;
  }
}

// Bytes of [seq, seq + len) already buffered count as retransmitted; returns whether any differ.
bool TcpStream::check_overlaps(uint32_t seq, const uint8_t* p, uint32_t len) noexcept {
  const uint32_t end = seq + len;
  bool conflict = false;
  for (const Block* b = head_; b && seq_lt(b->seq, end); b = b->next) {
    const uint32_t lo = seq_max(seq, b->seq), hi = seq_min(end, block_end(b));
    if (!seq_lt(lo, hi)) continue;
    stats_.retransmitted_bytes += hi - lo;
    conflict |= std::memcmp(b->data + (lo - b->seq), p + (lo - seq), hi - lo) != 0;
  }
  return conflict;
}

// `p` is at next_: delivered from the caller's buffer without a copy, up to the first buffered
// block (whose bytes win), then the buffer delivers what it holds from there.
uint32_t TcpStream::deliver_in_order(const uint8_t* p, uint32_t len, StreamSink& sink) noexcept {
  const uint32_t n = head_ ? std::min(len, head_->seq - next_) : len;
  deliver(p, n, sink);
  drain(sink);
  return n;
}

// `seq` is after next_. Returns how many bytes it consumed: skipped (already buffered), stored,
// or 0 after a memcap flush has brought next_ up to `seq` (the caller then delivers in order).
uint32_t TcpStream::buffer_out_of_order(uint32_t seq, const uint8_t* p, uint32_t len, StreamSink& sink) noexcept {
  Block* prev = nullptr;
  for (Block* b = head_; b && seq_leq(b->seq, seq); b = b->next) prev = b;
  if (prev && seq_lt(seq, block_end(prev))) return std::min(len, block_end(prev) - seq);
  const Block* after = prev ? prev->next : head_;
  const uint32_t hole = after ? std::min(len, after->seq - seq) : len;
  if (const uint32_t n = store(prev, seq, p, hole)) return n;
  // Out of memory for this stream: give up the holes before this data rather than the data, so
  // the stream always progresses and the buffer is freed up to here.
  ++stats_.memcap_flushes;
  sink.on_anomaly(StreamAnomaly::memcap);
  skip_to(seq, sink);
  return 0;
}

// Copies up to `len` bytes at `seq` into the buffer right after `prev`, within the limits:
// appended to `prev` when it ends at `seq` and has room (so tiny segments share a block), else
// into a new block. Returns the bytes stored, 0 when limits or pool allow none.
uint32_t TcpStream::store(Block* prev, uint32_t seq, const uint8_t* p, uint32_t len) noexcept {
  if (limits_ == nullptr || pool_ == nullptr) return 0;
  const uint32_t cap = limits_->max_buffered_bytes;
  len = std::min(len, cap > buffered_bytes_ ? cap - buffered_bytes_ : 0);
  if (len == 0) return 0;
  Block* b = prev;
  if (!b || block_end(b) != seq || b->len == SegmentPool::kBlockSize) {
    if (buffered_segments_ >= limits_->max_buffered_segments || !(b = pool_->alloc())) return 0;
    b->seq = seq;
    b->len = 0;
    Block** link = prev ? &prev->next : &head_;
    b->next = *link;
    *link = b;
    ++buffered_segments_;
  }
  len = std::min(len, uint32_t(SegmentPool::kBlockSize - b->len));
  std::memcpy(b->data + b->len, p, len);
  b->len = uint16_t(b->len + len);
  buffered_bytes_ += len;
  return len;
}

void TcpStream::deliver(const uint8_t* p, uint32_t len, StreamSink& sink) noexcept {
  if (len == 0) return;
  keep_sent(p, len);
  next_ += len;
  stats_.delivered_bytes += len;
  sink.on_data(p, len);
}

// Delivers the buffered blocks that next_ has reached, in order, and frees them.
void TcpStream::drain(StreamSink& sink) noexcept {
  while (head_ && seq_leq(head_->seq, next_)) {
    Block* b = head_;
    const uint32_t seen = next_ - b->seq;  // 0 while the invariant holds; robust if not
    if (seen < b->len) deliver(b->data + seen, b->len - seen, sink);
    head_ = b->next;
    buffered_bytes_ -= b->len;
    --buffered_segments_;
    pool_->free(b);
  }
}

// Declares [next_, seq) lost for good.
void TcpStream::gap_to(uint32_t seq, StreamSink& sink) noexcept {
  if (!seq_lt(next_, seq)) return;
  forget_sent();  // the copy covers [.., next_) without holes
  const uint32_t missing = seq - next_;
  next_ = seq;
  ++stats_.gaps;
  stats_.gap_bytes += missing;
  sink.on_anomaly(StreamAnomaly::gap);
  sink.on_gap(missing);
}

// Brings next_ to at least `seq`: buffered data before it is delivered, every hole a gap.
void TcpStream::skip_to(uint32_t seq, StreamSink& sink) noexcept {
  while (head_ && seq_lt(head_->seq, seq)) {
    gap_to(head_->seq, sink);
    drain(sink);
  }
  gap_to(seq, sink);
  drain(sink);  // a block that starts exactly at `seq` is reached now (the invariant above)
}

void TcpStream::on_ack(uint32_t ack, StreamSink& sink) noexcept {
  if (!started_ || ended_) return;
  if (fin_seen_ && seq_lt(fin_seq_, ack)) ack = fin_seq_;  // acknowledging the FIN acks no data
  ack_sent(ack);
  skip_to(ack, sink);  // the receiver holds everything before ack: what we lack there is lost
  maybe_end(sink);
}

void TcpStream::flush(StreamSink& sink) noexcept {
  if (!started_ || ended_) return;
  while (head_) {
    gap_to(head_->seq, sink);
    drain(sink);
  }
  if (fin_seen_) gap_to(fin_seq_, sink);
  maybe_end(sink);
}

void TcpStream::maybe_end(StreamSink& sink) noexcept {
  if (fin_seen_ && !ended_ && seq_leq(fin_seq_, next_)) end(StreamEnd::fin, sink);
}

void TcpStream::end(StreamEnd how, StreamSink& sink) noexcept {
  ended_ = true;
  release();
  sink.on_end(how);
}

void TcpStream::release() noexcept {
  while (Block* b = head_) {
    head_ = b->next;
    pool_->free(b);
  }
  buffered_bytes_ = 0;
  buffered_segments_ = 0;
  forget_sent();
}

// The receiver's window. A sender may not send past ack + window (RFC 9293 3.8.6); one more window
// (at least 64 KiB) of slack covers a tap that shows the data before the ACK that opened the window.
void TcpStream::set_window(uint32_t ack, uint32_t window) noexcept {
  const uint32_t edge = ack + std::min(window, kMaxWindow) + std::max(std::min(window, kMaxWindow), uint32_t{65536});
  if (!window_known_ || seq_lt(window_edge_, edge)) window_edge_ = edge;
  window_known_ = true;
}

bool TcpStream::window_limit(uint32_t& limit) const noexcept {
  const uint32_t floor = next_ + 65536;  // never refuse what is just ahead (an ACK we missed)
  if (window_known_) {
    limit = seq_max(window_edge_, floor);
    return true;
  }
  const uint32_t unknown = limits_ ? limits_->unknown_window_bytes : 0;
  limit = next_ + std::max(unknown, uint32_t{65536});
  return unknown != 0;
}

bool TcpStream::accepts_reset(uint32_t seq) const noexcept {
  if (!started_ || ended_ || seq == next_ || (fin_seen_ && seq == fin_seq_ + 1)) return true;
  // Bytes we buffered after a hole we never saw may have reached the receiver: the end of them.
  const Block* last = head_;
  while (last && last->next) last = last->next;
  return last && seq == block_end(last);
}

// Appends delivered bytes to the copy kept until acknowledged: the most recent max_unacked_bytes,
// from the pool only while it is more than half free (out-of-order data needs it more).
void TcpStream::keep_sent(const uint8_t* p, uint32_t len) noexcept {
  const uint32_t cap = limits_ ? limits_->max_unacked_bytes : 0;
  if (cap == 0 || pool_ == nullptr) return;
  uint32_t at = next_;  // sequence number of p[0]; the copy ends at next_
  if (len >= cap) {     // only the end of this delivery fits
    forget_sent();
    at += len - cap;
    p += len - cap;
    len = cap;
  }
  while (sent_head_ && sent_bytes_ + len > cap) {  // the oldest bytes make room
    Block* b = sent_head_;
    sent_head_ = b->next;
    if (!sent_head_) sent_tail_ = nullptr;
    sent_bytes_ -= b->len;
    pool_->free(b);
  }
  while (len > 0) {
    Block* b = sent_tail_;
    if (!b || b->len == SegmentPool::kBlockSize) {
      if (pool_->available() * 2 <= pool_->capacity() || !(b = pool_->alloc())) {
        forget_sent();  // no hole may appear in the copy: start again after this delivery
        return;
      }
      b->seq = at;
      b->len = 0;
      b->next = nullptr;
      (sent_tail_ ? sent_tail_->next : sent_head_) = b;
      sent_tail_ = b;
    }
    const uint32_t n = std::min(len, uint32_t(SegmentPool::kBlockSize - b->len));
    std::memcpy(b->data + b->len, p, n);
    b->len = uint16_t(b->len + n);
    sent_bytes_ += n;
    at += n, p += n, len -= n;
  }
}

void TcpStream::forget_sent() noexcept {
  while (Block* b = sent_head_) {
    sent_head_ = b->next;
    pool_->free(b);
  }
  sent_tail_ = nullptr;
  sent_bytes_ = 0;
}

// The receiver has everything before `ack`: blocks wholly before it are no longer needed.
void TcpStream::ack_sent(uint32_t ack) noexcept {
  while (sent_head_ && seq_leq(block_end(sent_head_), ack)) {
    Block* b = sent_head_;
    sent_head_ = b->next;
    if (!sent_head_) sent_tail_ = nullptr;
    sent_bytes_ -= b->len;
    pool_->free(b);
  }
}

// Retransmitted bytes [seq, seq + len), all before next_: compared with the kept copy where it
// holds them (a difference is an overlap conflict), counted as unverified where it does not.
bool TcpStream::differs_from_sent(uint32_t seq, const uint8_t* p, uint32_t len) noexcept {
  const uint32_t end = seq + len;
  uint32_t verified = 0;
  bool conflict = false;
  for (const Block* b = sent_head_; b && seq_lt(b->seq, end); b = b->next) {
    const uint32_t lo = seq_max(seq, b->seq), hi = seq_min(end, block_end(b));
    if (!seq_lt(lo, hi)) continue;
    verified += hi - lo;
    conflict |= std::memcmp(b->data + (lo - b->seq), p + (lo - seq), hi - lo) != 0;
  }
  stats_.unverified_bytes += len - verified;
  return conflict;
}

}  // namespace sluice::reassembly
