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
// Worker lcores are paced instead (configure_paced()): their work comes in bursts (an RX lcore
// enqueues its staged chunks once per receive burst, worker_rings.h), and spinning through the gap
// between two bursts cost a worker more CPU than hashing them (perf on the bulk replay, 2026-12-08:
// the idle loop was 36% of the worker's samples). A paced lcore sleeps as soon as a poll finds
// nothing, for a time that follows the gap: doubled when it woke to nothing, halved when it woke to
// a whole burst (it slept past more than one), between 1 us and max_sleep_us. Its latency bound is
// the same max_sleep_us; what it saves is the spinning.
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
  bool paced;              // configure_paced(): sleep at the first empty poll, for the learnt gap
  bool slept;              // paced: the last wait was a sleep

  void configure(uint32_t polls, uint32_t max_us) noexcept {
    idle_polls = polls;
    max_sleep_us = max_us;
    empty = sleep_us = 0;
    sleeps = 0;
    paced = slept = false;
  }
  void configure_paced(uint32_t max_us) noexcept {
    configure(0, max_us);
    paced = true;
    sleep_us = 1;
  }
  void work() noexcept { empty = sleep_us = 0; }
  // Paced: a poll found `n` items (n > 0), `full` being a whole burst.
  void worked(unsigned n, unsigned full) noexcept {
    if (slept && n >= full && sleep_us > 1) sleep_us /= 2;
    slept = false;
  }
  // The next empty poll's wait: 0 to pause, else microseconds to sleep (and counts it).
  uint32_t next() noexcept {
    if (max_sleep_us == 0) return 0;
    if (paced) {
      if (slept) sleep_us = sleep_us >= max_sleep_us / 2 ? max_sleep_us : sleep_us * 2;
      slept = true;
      ++sleeps;
      return sleep_us;
    }
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
