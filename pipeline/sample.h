// Samples: the bytes of a file that may go to the analysis sandbox (DESIGN.md section 1, step 3),
// kept from the worker that hashed it until the file's reputation answer decides: handed to the
// control plane (an upload candidate) or given back. A sample is a chain of fixed blocks taken
// from a pool; every block names its pool, so whoever ends up with a chain (a worker, an RX lcore,
// the control plane) gives it back to the right one. In sluiced the pools are DPDK mempools (any
// thread may take and give back without locks: dataplane/workers.cpp); tests use HeapSampleBlocks.
//
// Ownership: a chain belongs to one holder at a time, the pointer travelling in the record that
// moves it (WorkResult.sample, then the message record's file or member, then the analysis
// request). Whoever drops a record that carries a chain gives the chain back first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::pipeline {

class SampleBlocks;

inline constexpr std::size_t kSampleBlockBytes = 64 * 1024;

struct SampleBlock {
  SampleBlock* next;
  SampleBlocks* pool;  // where it goes back
  uint32_t len;        // bytes used in data
  uint32_t reserved;
  uint8_t data[kSampleBlockBytes - 24];
};
static_assert(sizeof(SampleBlock) == kSampleBlockBytes);

// Why a file has no sample (the `upload_criterion` of its `file` event when it would have been
// uploaded otherwise).
enum class SampleMiss : uint8_t {
  none = 0,      // it has one
  disabled,      // no analysis endpoint configured
  type,          // its file type is in no selected analysis group
  size,          // larger than analysis.max_sample_mb
  memory,        // its worker's sample memory (analysis.sample_memory_mb) was full
  unreadable,    // no content to keep (encrypted member, overload)
};
constexpr std::string_view sample_miss_name(SampleMiss m) noexcept {
  switch (m) {
    case SampleMiss::none: return "none";
    case SampleMiss::disabled: return "disabled";
    case SampleMiss::type: return "type";
    case SampleMiss::size: return "size";
    case SampleMiss::memory: return "memory";
    case SampleMiss::unreadable: return "unreadable";
  }
  return "none";
}

class SampleBlocks {
 public:
  virtual ~SampleBlocks() = default;
  // A free block (its header set: pool, next null, len 0), or nullptr when the pool is empty.
  virtual SampleBlock* get() noexcept = 0;
  // Gives one block back to this pool.
  virtual void put(SampleBlock* b) noexcept = 0;
};

// Gives a whole chain back, each block to its own pool. Null: nothing.
inline void release_sample(SampleBlock* head) noexcept {
  while (head) {
    SampleBlock* next = head->next;
    head->pool->put(head);
    head = next;
  }
}

// The bytes of a chain, in order (the control plane copies a candidate out before releasing it).
inline std::string sample_bytes(const SampleBlock* head) {
  std::string out;
  for (const SampleBlock* b = head; b; b = b->next) out.append(reinterpret_cast<const char*>(b->data), b->len);
  return out;
}

// Builds one chain, appending bytes; at most `max_bytes`. Lives with the file being read.
class SampleWriter {
 public:
  SampleWriter() = default;
  SampleWriter(const SampleWriter&) = delete;  // owns its chain
  SampleWriter& operator=(const SampleWriter&) = delete;
  // Starts a chain in `pool` (nullptr: none is kept).
  void begin(SampleBlocks* pool, uint64_t max_bytes) noexcept {
    abandon();
    pool_ = pool;
    max_ = max_bytes;
    miss_ = pool ? SampleMiss::none : SampleMiss::disabled;
  }
  bool active() const noexcept { return pool_ != nullptr && miss_ == SampleMiss::none; }
  // False once the chain was given up (over max_bytes, or no block free): then `miss()` says why.
  bool append(const uint8_t* p, std::size_t n) noexcept {
    if (!active()) return false;
    if (size_ + n > max_) return give_up(SampleMiss::size);
    while (n) {
      if (!tail_ || tail_->len == sizeof(tail_->data)) {
        SampleBlock* b = pool_->get();
        if (!b) return give_up(SampleMiss::memory);
        (tail_ ? tail_->next : head_) = b;
        tail_ = b;
      }
      const std::size_t room = sizeof(tail_->data) - tail_->len;
      const std::size_t k = n < room ? n : room;
      std::memcpy(tail_->data + tail_->len, p, k);
      tail_->len += static_cast<uint32_t>(k);
      p += k;
      n -= k;
      size_ += k;
    }
    return true;
  }
  // Stops keeping, for `why`; gives back what was kept.
  bool give_up(SampleMiss why) noexcept {
    release_sample(head_);
    head_ = tail_ = nullptr;
    size_ = 0;
    if (miss_ == SampleMiss::none) miss_ = why;
    return false;
  }
  // The chain (now the caller's), or nullptr with `miss()` saying why.
  SampleBlock* take() noexcept {
    SampleBlock* h = active() ? head_ : nullptr;
    if (!h && miss_ == SampleMiss::none) miss_ = SampleMiss::unreadable;
    head_ = tail_ = nullptr;
    size_ = 0;
    pool_ = nullptr;
    return h;
  }
  SampleMiss miss() const noexcept { return miss_; }
  uint64_t size() const noexcept { return size_; }
  void abandon() noexcept {
    release_sample(head_);
    head_ = tail_ = nullptr;
    size_ = 0;
  }
  ~SampleWriter() { abandon(); }

 private:
  SampleBlocks* pool_ = nullptr;
  uint64_t max_ = 0, size_ = 0;
  SampleBlock* head_ = nullptr;
  SampleBlock* tail_ = nullptr;
  SampleMiss miss_ = SampleMiss::disabled;
};

// A pool on the heap for tests and tools: `blocks` allocated at construction; thread-safe.
class HeapSampleBlocks final : public SampleBlocks {
 public:
  explicit HeapSampleBlocks(std::size_t blocks) : storage_(blocks) {
    free_.reserve(blocks);
    for (auto& b : storage_) free_.push_back(&b);
  }
  SampleBlock* get() noexcept override {
    std::lock_guard<std::mutex> g(mu_);
    if (free_.empty()) return nullptr;
    SampleBlock* b = free_.back();
    free_.pop_back();
    b->next = nullptr;
    b->pool = this;
    b->len = 0;
    return b;
  }
  void put(SampleBlock* b) noexcept override {
    std::lock_guard<std::mutex> g(mu_);
    free_.push_back(b);
  }
  std::size_t available() const {
    std::lock_guard<std::mutex> g(mu_);
    return free_.size();
  }

 private:
  std::vector<SampleBlock> storage_;
  std::vector<SampleBlock*> free_;
  mutable std::mutex mu_;
};

}  // namespace sluice::pipeline
