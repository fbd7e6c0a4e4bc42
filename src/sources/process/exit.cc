// exit.cc - process exit (contract in exit.hpp).
//
// The kernel's exit_mmap runs the release notifiers once every thread is gone; here exit() runs them
// while the program's other threads still live, so umn_notifier_release() could wait forever for one
// that sleeps in a classic callback (synchronize waits for its read-side section) or holds an epoch
// open. So the release runs on a thread of its own, and exit waits for it kExitReleaseWait at most:
// then the process exits anyway (exit_group ends the waiting release with every other thread), and a
// line on stderr says that RELEASE may not have reached every notifier.
#include "sources/process/exit.hpp"

#include <pthread.h>
#include <semaphore.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "core/query.hpp"
#include "sources/process/thread_state.hpp"

namespace umn::detail {
namespace {

constexpr long kExitReleaseWaitSeconds = 2;

std::atomic<umn_mm*> g_release_mm{nullptr};  // release in arm_release_at_exit, acquire in release_at_exit
sem_t g_released;                            // posted by the release thread when umn_notifier_release returned

void* release_thread(void* mm) {
  umn_notifier_release(static_cast<umn_mm*>(mm));
  sem_post(&g_released);
  return nullptr;
}

// Waits for g_released until the deadline, a CLOCK_MONOTONIC time (a CLOCK_REALTIME one moves when the
// clock is stepped). Return: true when the release finished.
bool wait_released(const timespec& deadline) noexcept {
  while (sem_clockwait(&g_released, CLOCK_MONOTONIC, &deadline) != 0)
    if (errno != EINTR) return false;
  return true;
}

[[gnu::destructor(101)]] void release_at_exit() {
  umn_mm* mm = g_release_mm.load(std::memory_order_acquire);
  if (mm == nullptr || !mm_has_subscriptions(mm)) return;
  end_levels_at_exit();  // this thread's abandoned ranges would make the release wait (issue 17.8)
  pthread_t thread;
  if (sem_init(&g_released, 0, 0) != 0 || pthread_create(&thread, nullptr, &release_thread, mm) != 0) {
    umn_notifier_release(mm);  // no thread to spare: unbounded, as before
    return;
  }
  timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  deadline.tv_sec += kExitReleaseWaitSeconds;
  if (wait_released(deadline)) {
    pthread_join(thread, nullptr);
    return;
  }
  static const char kLine[] =
      "umn: exit: umn_notifier_release(umn_mm_process()) still waits after 2 s for another thread (asleep in "
      "a callback or holding a range open); exiting without waiting\n";
  (void)!write(STDERR_FILENO, kLine, sizeof(kLine) - 1);
}

}  // namespace

void arm_release_at_exit(umn_mm* mm) noexcept { g_release_mm.store(mm, std::memory_order_release); }

}  // namespace umn::detail
