#include "dataplane/tsc_calibration.h"

#include <errno.h>
#include <time.h>

#include <atomic>

namespace sluice::dataplane {
namespace {

thread_local bool t_calibrating = false;
std::atomic<uint64_t> g_shortened{0};

}  // namespace

ShortCalibration::ShortCalibration() noexcept { t_calibrating = true; }
ShortCalibration::~ShortCalibration() { t_calibrating = false; }
uint64_t ShortCalibration::shortened() noexcept { return g_shortened.load(std::memory_order_relaxed); }

}  // namespace sluice::dataplane

// The process's nanosleep(): the C library's behaviour (clock_nanosleep on CLOCK_REALTIME, errno
// and -1 on failure), with the one exception above. Linked into every program that calls
// eal_init(); the EAL's call binds to it (statically, or through its PLT in a shared DPDK).
extern "C" int nanosleep(const struct timespec* req, struct timespec* rem) {
  struct timespec shortened;
  if (sluice::dataplane::t_calibrating && req && req->tv_sec == 0 && req->tv_nsec == 100'000'000) {
    shortened = {0, sluice::dataplane::kCalibrationNs};
    req = &shortened;
    sluice::dataplane::g_shortened.fetch_add(1, std::memory_order_relaxed);
  }
  const int e = clock_nanosleep(CLOCK_REALTIME, 0, req, rem);
  if (e == 0) return 0;
  errno = e;
  return -1;
}
