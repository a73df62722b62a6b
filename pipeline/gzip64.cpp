#include "pipeline/gzip64.h"

#include <algorithm>

namespace sluice::pipeline {

Gzip64Decoder::Gzip64Decoder() noexcept { inflater_.owner = this; }

Gzip64Decoder::~Gzip64Decoder() {
  if (z_ready_) inflateEnd(&z_);
}

void* Gzip64Decoder::arena_alloc(void* opaque, unsigned items, unsigned size) {
  auto* self = static_cast<Gzip64Decoder*>(opaque);
  const std::size_t n = (static_cast<std::size_t>(items) * size + 15) & ~std::size_t{15};
  if (self->arena_used_ + n > kArena) return Z_NULL;
  void* p = self->arena_ + self->arena_used_;
  self->arena_used_ += n;
  return p;
}

void Gzip64Decoder::reset(uint64_t max_output) noexcept {
  if (z_ready_) inflateEnd(&z_);
  arena_used_ = 0;
  z_ = z_stream{};
  z_.zalloc = arena_alloc;
  z_.zfree = arena_free;
  z_.opaque = this;
  // 15 + 32: a 32 KiB window, gzip or zlib header detected automatically.
  z_ready_ = inflateInit2(&z_, 15 + 32) == Z_OK;
  z_done_ = false;
  consumed_ = 0;
  inflate_errors_ = z_ready_ ? 0 : 1;
  bomb_ = false;
  base64_.reset(0);
  max_output_ = max_output;
  limit_.reset(max_output);
}

void Gzip64Decoder::inflate_bytes(const uint8_t* data, std::size_t len) noexcept {
  if (!z_ready_ || z_done_) return;
  uint8_t out[16 * 1024];
  z_.next_in = const_cast<Bytef*>(data);
  z_.avail_in = static_cast<uInt>(len);
  while (z_.avail_in > 0 || z_.avail_out == 0) {
    z_.next_out = out;
    z_.avail_out = sizeof(out);
    const int rc = inflate(&z_, Z_NO_FLUSH);
    const std::size_t got = sizeof(out) - z_.avail_out;
    // A bomb: far more out than came in. Stop producing; the part is cut (exceeded).
    const uint64_t allowed = consumed_ * kMaxRatio + (1u << 20);
    if (limit_.produced() + got > allowed) {
      limit_.emit(out, static_cast<std::size_t>(allowed - std::min(allowed, limit_.produced())), *out_);
      bomb_ = true;
      z_done_ = true;
      return;
    }
    limit_.emit(out, got, *out_);
    if (rc == Z_STREAM_END) {
      z_done_ = true;  // bytes after the gzip member are not content
      return;
    }
    if (rc != Z_OK) {
      if (rc != Z_BUF_ERROR) ++inflate_errors_, z_done_ = true;
      return;
    }
    if (z_.avail_in == 0 && z_.avail_out != 0) return;
  }
}

DecodeStatus Gzip64Decoder::feed(const uint8_t* in, std::size_t len, ByteSink& out) noexcept {
  out_ = &out;
  consumed_ += len;
  base64_.feed(in, len, inflater_);
  return bomb_ ? DecodeStatus::exceeded : limit_.status(invalid());
}

DecodeStatus Gzip64Decoder::finish(ByteSink& out) noexcept {
  out_ = &out;
  base64_.finish(inflater_);
  if (z_ready_ && !z_done_) ++inflate_errors_;  // the gzip stream was cut short
  return bomb_ ? DecodeStatus::exceeded : limit_.status(invalid());
}

}  // namespace sluice::pipeline
