#include "dataplane/idle_backoff.h"

#include <sys/prctl.h>

#include <rte_cycles.h>
#include <rte_pause.h>

namespace sluice::dataplane {

void IdleBackoff::idle() noexcept {
  if (const uint32_t us = next())
    rte_delay_us_sleep(us);
  else
    rte_pause();
}

void tighten_timer_slack() noexcept { prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); }

}  // namespace sluice::dataplane
