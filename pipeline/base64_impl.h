// Internal to pipeline/ (and its tests and benchmarks): which implementation decodes the runs of
// base64 alphabet characters in Base64Decoder (pipeline/base64.h). Both give the same output and
// counters under every split; only the speed differs.
//
// Chosen once at start: AVX2 when the CPU has it, else scalar. SLUICE_BASE64=scalar in the
// environment forces scalar (for measurements: the same binary both ways). Tests switch with
// base64_set_impl() between feeds; it is not for use while other threads decode.
#pragma once

#include <cstdint>

namespace sluice::pipeline {

enum class Base64Impl : uint8_t {
  scalar,  // 8 characters per step through four lane tables (base64.cpp)
  avx2,    // 32 characters per step (x86-64 with AVX2 only)
};

// Whether this build and CPU can run `impl` (scalar always).
bool base64_impl_available(Base64Impl impl) noexcept;
// Selects `impl` for every Base64Decoder of the process; false (and nothing changed) when it is not
// available.
bool base64_set_impl(Base64Impl impl) noexcept;
Base64Impl base64_impl() noexcept;
const char* base64_impl_name(Base64Impl impl) noexcept;

}  // namespace sluice::pipeline
