// x-gzip64 (a gzip stream, base64-encoded: the Content-Transfer-Encoding some mailers and
// mime-is-broken's evasion tests use; no RFC defines it). Base64 as Base64Decoder reads it, then
// inflate (zlib, gzip or zlib framing detected). zlib's state lives in a fixed arena inside the
// decoder: no heap allocation per part. A decompression bomb stops at kMaxRatio times the encoded
// input (plus 1 MiB) with status `exceeded`.
#pragma once

#include <zlib.h>

#include "pipeline/base64.h"

namespace sluice::pipeline {

class Gzip64Decoder final : public Decoder {
 public:
  static constexpr uint64_t kMaxRatio = 1024;

  Gzip64Decoder() noexcept;
  ~Gzip64Decoder() override;
  Gzip64Decoder(const Gzip64Decoder&) = delete;
  Gzip64Decoder& operator=(const Gzip64Decoder&) = delete;

  void reset(uint64_t max_output = 0) noexcept override;
  DecodeStatus feed(const uint8_t* in, std::size_t len, ByteSink& out) noexcept override;
  DecodeStatus finish(ByteSink& out) noexcept override;
  uint64_t invalid() const noexcept override { return base64_.invalid() + inflate_errors_; }
  uint64_t produced() const noexcept override { return limit_.produced(); }

 private:
  struct Inflater final : ByteSink {
    Gzip64Decoder* owner;
    void on_bytes(const uint8_t* data, std::size_t len) noexcept override { owner->inflate_bytes(data, len); }
  };
  void inflate_bytes(const uint8_t* data, std::size_t len) noexcept;
  static void* arena_alloc(void* opaque, unsigned items, unsigned size);
  static void arena_free(void*, void*) {}

  // zlib needs about 7 KiB of state plus a 32 KiB window for inflate (zconf.h).
  static constexpr std::size_t kArena = 64 * 1024;
  alignas(16) uint8_t arena_[kArena];
  std::size_t arena_used_ = 0;
  z_stream z_{};
  bool z_ready_ = false;
  bool z_done_ = false;
  bool bomb_ = false;
  uint64_t consumed_ = 0;
  uint64_t inflate_errors_ = 0;
  Base64Decoder base64_;
  Inflater inflater_;
  ByteSink* out_ = nullptr;
  OutputLimit limit_;
  uint64_t max_output_ = 0;
};

}  // namespace sluice::pipeline
