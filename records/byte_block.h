// 64-byte blocks compared with byte values, for the line scans that pass over ordinary lines 64
// bytes a step: SMTP DATA content (reassembly/smtp_session.cpp, skip_data_lines) and MIME bodies
// (pipeline/mime_parser.cpp, skip_plain_lines). eq(c): bit k set where p[k] is c; eq(c, c2): where
// it is either; any(c): whether c is in the block. Built with SSE2 (the x86-64 baseline) and with
// AVX2 (SLUICE_LINE_SCAN_AVX2 where the compiler can target it); a scan is instantiated with each
// block type and chosen once at start (avx2_line_scans()).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SLUICE_LINE_SCAN_AVX2 1
#include <immintrin.h>
#endif

namespace sluice::records {

#if defined(__SSE2__)
struct Sse2Block {
  __m128i v[4];
  explicit Sse2Block(const uint8_t* p) noexcept {
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) v[q] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * q));
  }
  uint64_t eq(char c) const noexcept {
    const __m128i vc = _mm_set1_epi8(c);
    uint64_t m = 0;
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q)
      m |= uint64_t(uint16_t(_mm_movemask_epi8(_mm_cmpeq_epi8(v[q], vc)))) << (16 * q);
    return m;
  }
  uint64_t eq(char c, char c2) const noexcept {
    const __m128i vc = _mm_set1_epi8(c), vc2 = _mm_set1_epi8(c2);
    uint64_t m = 0;
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const __m128i e = _mm_or_si128(_mm_cmpeq_epi8(v[q], vc), _mm_cmpeq_epi8(v[q], vc2));
      m |= uint64_t(uint16_t(_mm_movemask_epi8(e))) << (16 * q);
    }
    return m;
  }
  bool any(char c) const noexcept {
    const __m128i vc = _mm_set1_epi8(c);
    __m128i e = _mm_cmpeq_epi8(v[0], vc);
#pragma GCC unroll 3
    for (int q = 1; q < 4; ++q) e = _mm_or_si128(e, _mm_cmpeq_epi8(v[q], vc));
    return _mm_movemask_epi8(e) != 0;
  }
};
#endif

#if defined(SLUICE_LINE_SCAN_AVX2)
struct Avx2Block {
  __m256i lo, hi;
  __attribute__((target("avx2"))) explicit Avx2Block(const uint8_t* p) noexcept
      : lo(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))),
        hi(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32))) {}
  __attribute__((target("avx2"))) uint64_t eq(char c) const noexcept {
    const __m256i vc = _mm256_set1_epi8(c);
    return uint64_t(uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, vc)))) |
           uint64_t(uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi8(hi, vc)))) << 32;
  }
  __attribute__((target("avx2"))) uint64_t eq(char c, char c2) const noexcept {
    const __m256i vc = _mm256_set1_epi8(c), vc2 = _mm256_set1_epi8(c2);
    const __m256i l = _mm256_or_si256(_mm256_cmpeq_epi8(lo, vc), _mm256_cmpeq_epi8(lo, vc2));
    const __m256i h = _mm256_or_si256(_mm256_cmpeq_epi8(hi, vc), _mm256_cmpeq_epi8(hi, vc2));
    return uint64_t(uint32_t(_mm256_movemask_epi8(l))) | uint64_t(uint32_t(_mm256_movemask_epi8(h))) << 32;
  }
  __attribute__((target("avx2"))) bool any(char c) const noexcept {
    const __m256i vc = _mm256_set1_epi8(c);
    const __m256i e = _mm256_or_si256(_mm256_cmpeq_epi8(lo, vc), _mm256_cmpeq_epi8(hi, vc));
    return !_mm256_testz_si256(e, e);
  }
};
#endif

// The AVX2 scans where the compiler built them and the CPU has AVX2, unless SLUICE_LINE_SCAN=sse2
// (measurements and tests: the same binary both ways; ctest pipeline.line_scans_sse2).
inline bool avx2_line_scans() noexcept {
#if defined(SLUICE_LINE_SCAN_AVX2)
  const char* env = std::getenv("SLUICE_LINE_SCAN");
  __builtin_cpu_init();
  return !(env && std::strcmp(env, "sse2") == 0) && __builtin_cpu_supports("avx2");
#else
  return false;
#endif
}

}  // namespace sluice::records
