// Memory reserved at start-up and touched only as it is used (issue 18). One anonymous private
// mapping (MAP_NORESERVE): the kernel supplies each page, zero-filled, the first time it is
// touched. For fixed pools whose slots are constructed on first use: start-up costs one mmap, not
// a page fault per page of the whole pool, the lcores never call the general heap for a slot, and
// the resident memory follows the slots used, not the pool's capacity.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <new>

// LeakSanitizer scans the heap, stacks and globals for pointers, not mappings of our own: objects
// built in a region would hold the only pointers to their heap memory (iconv descriptors of a
// MIME parser), reported as leaks. Under ASan/LSan the region is a root region.
#if defined(__SANITIZE_ADDRESS__)
#define SLUICE_LSAN_ROOTS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define SLUICE_LSAN_ROOTS 1
#endif
#endif
#ifdef SLUICE_LSAN_ROOTS
#include <sanitizer/lsan_interface.h>
#endif

namespace sluice::records {

class ReservedRegion {
 public:
  ReservedRegion() noexcept = default;
  // At least `bytes` (rounded up to whole pages; 0 maps nothing). Throws std::bad_alloc when the
  // address space cannot be had.
  explicit ReservedRegion(std::size_t bytes) {
    if (bytes == 0) return;
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t size = (bytes + page - 1) / page * page;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = p;
    size_ = size;
#ifdef SLUICE_LSAN_ROOTS
    __lsan_register_root_region(data_, size_);
#endif
  }
  ~ReservedRegion() { release(); }
  ReservedRegion(ReservedRegion&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr, o.size_ = 0; }
  ReservedRegion& operator=(ReservedRegion&& o) noexcept {
    if (this != &o) {
      release();
      data_ = o.data_;
      size_ = o.size_;
      o.data_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }
  ReservedRegion(const ReservedRegion&) = delete;
  ReservedRegion& operator=(const ReservedRegion&) = delete;

  void* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  void release() noexcept {
    if (!data_) return;
#ifdef SLUICE_LSAN_ROOTS
    __lsan_unregister_root_region(data_, size_);
#endif
    munmap(data_, size_);
  }

  void* data_ = nullptr;
  std::size_t size_ = 0;
};

// Hands out consecutive pieces of one object's share of a reserved region (a session slot's),
// each aligned to kAlign, at set-up of the object; nothing is given back piece by piece.
class Carve {
 public:
  static constexpr std::size_t kAlign = 64;  // a cache line
  static constexpr std::size_t round(std::size_t n) noexcept { return (n + kAlign - 1) / kAlign * kAlign; }
  Carve(void* begin, std::size_t bytes) noexcept : next_(static_cast<char*>(begin)), end_(next_ + bytes) {}
  // `bytes` (rounded up to kAlign) of untouched memory, or nullptr when the share is used up.
  void* take(std::size_t bytes) noexcept {
    const std::size_t n = round(bytes);
    if (static_cast<std::size_t>(end_ - next_) < n) return nullptr;
    void* p = next_;
    next_ += n;
    return p;
  }
  std::size_t left() const noexcept { return static_cast<std::size_t>(end_ - next_); }

 private:
  char* next_;
  char* end_;
};

}  // namespace sluice::records
