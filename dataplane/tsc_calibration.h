// DPDK's TSC calibration, shortened (issue 18). rte_eal_init learns the TSC frequency from CPUID
// leaf 0x15 or, on some Intel models, the platform-info MSR; where neither gives it (AMD CPUs, most
// virtual machines: this lab's VMs) DPDK 22.11 measures it: TSC and CLOCK_MONOTONIC_RAW read around
// a nanosleep() of 100 ms, the quotient rounded to 10 MHz. That sleep was the largest single cost
// of a sluiced start (docs/benchmarks.md, "Start-up and tear-down"). While a ShortCalibration is
// alive, a nanosleep() of exactly 100 ms on the thread that made it sleeps kCalibrationNs instead:
// the quotient is measured over the shorter span (both clocks are read around the sleep, so the
// result does not depend on its length); no other sleep and no other thread is affected.
#pragma once

#include <cstdint>

namespace sluice::dataplane {

// 10 ms: the 10 MHz rounding of DPDK's result is 0.4% of a 2.5 GHz TSC; over 10 ms that is 40 us
// of error in the two clock readings, far more than a reading costs. Measured on the lab VM: the
// same 2,450,000 kHz as with 100 ms (rte_get_tsc_hz(), 20 starts of each).
inline constexpr long kCalibrationNs = 10'000'000;

class ShortCalibration {
 public:
  ShortCalibration() noexcept;
  ~ShortCalibration();
  ShortCalibration(const ShortCalibration&) = delete;
  ShortCalibration& operator=(const ShortCalibration&) = delete;
  // Sleeps of 100 ms shortened while this object was alive (1 for a calibration, 0 when DPDK had
  // the frequency from the CPU).
  static uint64_t shortened() noexcept;
};

}  // namespace sluice::dataplane
