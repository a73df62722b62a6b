// Test harness for the Content-Transfer-Encoding decoders (pipeline/decoder.h): feeds an input
// whole or in given pieces and collects what comes out, so that tests can check the central
// property that every split of the input gives the same result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/decoder.h"

namespace sluice::pipeline::test {

struct StringSink final : ByteSink {
  std::string data;
  std::size_t calls = 0;
  void on_bytes(const uint8_t* d, std::size_t n) noexcept override {
    data.append(reinterpret_cast<const char*>(d), n);
    ++calls;
  }
};

struct Decoded {
  std::string out;
  uint64_t invalid = 0;
  uint64_t produced = 0;
  DecodeStatus status = DecodeStatus::ok;
  bool operator==(const Decoded&) const = default;
};

// The result a test expects: `out`, with produced() equal to its size.
inline Decoded expect(std::string out, uint64_t invalid = 0, DecodeStatus st = DecodeStatus::ok) {
  Decoded d;
  d.produced = out.size();
  d.out = std::move(out);
  d.invalid = invalid;
  d.status = st;
  return d;
}

inline const char* status_name(DecodeStatus s) {
  switch (s) {
    case DecodeStatus::ok: return "ok";
    case DecodeStatus::exceeded: return "exceeded";
    case DecodeStatus::malformed: return "malformed";
  }
  return "?";
}

inline std::ostream& operator<<(std::ostream& os, const Decoded& d) {
  return os << "{out " << d.out.size() << " bytes, invalid " << d.invalid << ", produced " << d.produced
            << ", " << status_name(d.status) << "}";
}

// Feeds `in` cut at the (increasing) offsets in `cuts`, then finishes.
inline Decoded decode_split(Decoder& d, std::string_view in, const std::vector<std::size_t>& cuts,
                            uint64_t limit = 0) {
  d.reset(limit);
  StringSink sink;
  std::size_t at = 0;
  auto bytes = reinterpret_cast<const uint8_t*>(in.data());
  for (std::size_t c : cuts) {
    d.feed(bytes + at, c - at, sink);
    at = c;
  }
  d.feed(bytes + at, in.size() - at, sink);
  Decoded r;
  r.status = d.finish(sink);
  r.out = std::move(sink.data);
  r.invalid = d.invalid();
  r.produced = d.produced();
  return r;
}

inline Decoded decode(Decoder& d, std::string_view in, uint64_t limit = 0) {
  return decode_split(d, in, {}, limit);
}

inline Decoded decode_bytewise(Decoder& d, std::string_view in, uint64_t limit = 0) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < in.size(); ++i) cuts.push_back(i);
  return decode_split(d, in, cuts, limit);
}

// Random cut points: mostly small pieces, some large, sometimes empty feeds.
inline std::vector<std::size_t> random_cuts(std::mt19937_64& rng, std::size_t size) {
  std::vector<std::size_t> cuts;
  const std::size_t max_piece = std::size_t{1} << (rng() % 12);
  std::size_t at = 0;
  while (true) {
    at += rng() % (max_piece + 1);
    if (at >= size) break;
    cuts.push_back(at);
  }
  return cuts;
}

}  // namespace sluice::pipeline::test
