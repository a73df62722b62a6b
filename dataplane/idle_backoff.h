// What an lcore does when a poll finds nothing: spin (rte_pause) for `idle_polls` empty polls in a
// row, then sleep between polls, 1 us at first and doubling up to `idle_sleep_us`; any work starts
// the count again. An idle lcore then leaves its CPU to whatever shares it (the control thread, a
// worker lcore on a 2-CPU machine) at the price of up to idle_sleep_us (plus the kernel's wake-up)
// before the first frame or chunk after a quiet spell is seen. idle_sleep_us 0: always spin.
//
// rte_power_monitor (UMWAIT/MONITORX on a NIC descriptor or a ring's tail) would wake at once, but
// the software PMDs (net_pcap, net_af_packet, net_null) give no monitor address and the guests this
// runs on do not expose WAITPKG; a sleep is what works everywhere.
//
// Plain data (zero-initialised in an rte_zmalloc'd context is "always spin"), one per lcore.
#pragma once

#include <cstdint>

namespace sluice::dataplane {

struct IdleBackoff {
  uint32_t idle_polls;     // empty polls in a row before the first sleep
  uint32_t max_sleep_us;   // 0: never sleep
  uint32_t empty;          // empty polls in a row so far (saturates at idle_polls)
  uint32_t sleep_us;       // the last sleep, 0 before the first
  uint64_t sleeps;         // counter: sleeps taken

  void configure(uint32_t polls, uint32_t max_us) noexcept {
    idle_polls = polls;
    max_sleep_us = max_us;
    empty = sleep_us = 0;
    sleeps = 0;
  }
  void work() noexcept { empty = sleep_us = 0; }
  // The next empty poll's wait: 0 to pause, else microseconds to sleep (and counts it).
  uint32_t next() noexcept {
    if (max_sleep_us == 0) return 0;
    if (empty < idle_polls) {
      ++empty;
      return 0;
    }
    sleep_us = sleep_us == 0 ? 1 : (sleep_us >= max_sleep_us / 2 ? max_sleep_us : sleep_us * 2);
    ++sleeps;
    return sleep_us;
  }
  // After a poll that found nothing: pause or sleep (idle_backoff.cpp).
  void idle() noexcept;
};

// Lets this thread's short sleeps end on time (the default timer slack is 50 us).
void tighten_timer_slack() noexcept;

}  // namespace sluice::dataplane
