// rcu.cc - the urcu-bp wrapper (see rcu.hpp for the flavour choice) and its ThreadSanitizer annotations.
//
// liburcu's headers are included here only: they map rcu_read_lock & co. to urcu_bp_* with macros, and
// are not -Wpedantic clean, so no other umn file sees them.
#include "core/rcu.hpp"

#include <pthread.h>
#include <urcu-bp.h>

#if defined(__SANITIZE_THREAD__)
#define UMN_RCU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UMN_RCU_TSAN 1
#endif
#endif

#ifdef UMN_RCU_TSAN
#include <sanitizer/tsan_interface.h>
#endif

static_assert(sizeof(rcu_head) == umn::detail::rcu::kHeadWords * sizeof(uintptr_t),
              "umn_notifier's private words hold exactly one liburcu rcu_head");
static_assert(alignof(rcu_head) <= alignof(uintptr_t));

namespace umn::detail::rcu {
namespace {

thread_local bool t_in_callback = false;

#ifdef UMN_RCU_TSAN
char g_grace_token;  // the one synchronisation object the TSan annotations use (see rcu.hpp)
void tsan_release() noexcept { __tsan_release(&g_grace_token); }
void tsan_acquire() noexcept { __tsan_acquire(&g_grace_token); }
#else
void tsan_release() noexcept {}
void tsan_acquire() noexcept {}
#endif

}  // namespace

#ifdef UMN_RCU_TSAN
// liburcu is not instrumented: TSan sees its internal queue nodes allocated on one thread and freed on
// the call_rcu thread without the (uninstrumented) atomics between, and reports races inside liburcu.
// Ignore the allocator/pthread interceptors called from liburcu itself; umn's own accesses, including
// everything a call() callback does, stay checked (the edges above make them ordered).
// (The name is the sanitizer runtime's hook, hence the reserved identifier.)
extern "C" __attribute__((visibility("default"))) const char* __tsan_default_suppressions() {
  return "called_from_lib:liburcu-bp.so\ncalled_from_lib:liburcu-common.so\n";
}
#endif

namespace {

// The forking thread's own state decides whether liburcu was quiesced (see "fork()" in rcu.hpp); the
// child inherits the forking thread's thread-locals, so both sides agree.
thread_local bool t_fork_quiesced = false;

}  // namespace

void fork_prepare() noexcept {
  t_fork_quiesced = urcu_bp_read_ongoing() == 0 && !t_in_callback;
  if (!t_fork_quiesced) return;  // quiescing would wait for this thread's own section or callback
  urcu_bp_read_lock();  // registers this thread now: read-side sections in the fork window take no lock
  urcu_bp_read_unlock();
  urcu_bp_call_rcu_before_fork();  // pauses the call_rcu threads (they may need the grace-period lock)
  urcu_bp_before_fork();           // takes the grace-period and registry locks, blocks signals
}

void fork_parent() noexcept {
  if (!t_fork_quiesced) return;
  urcu_bp_after_fork_parent();
  urcu_bp_call_rcu_after_fork_parent();
}

void fork_child() noexcept {
  if (!t_fork_quiesced) return;
  urcu_bp_after_fork_child();       // forgets the parent's other threads
  urcu_bp_call_rcu_after_fork_child();  // a fresh call_rcu thread, inheriting the queued callbacks
}


void read_lock() noexcept { urcu_bp_read_lock(); }

void read_unlock() noexcept {
  tsan_release();  // pairs with tsan_acquire in synchronize / callback_entered / barrier
  urcu_bp_read_unlock();
}

bool read_ongoing() noexcept { return urcu_bp_read_ongoing() != 0; }

void synchronize() noexcept {
  urcu_bp_synchronize_rcu();
  tsan_acquire();  // pairs with tsan_release in read_unlock
}

void call(rcu_head* head, void (*fn)(rcu_head*)) noexcept {
  tsan_release();  // the caller's unlink happens-before the callback; pairs with callback_entered
  urcu_bp_call_rcu(head, fn);
}

void callback_entered() noexcept {
  tsan_acquire();  // pairs with tsan_release in read_unlock and call
  t_in_callback = true;
}

void callback_exited() noexcept {
  t_in_callback = false;
  tsan_release();  // the callback's frees happen-before barrier's return; pairs with barrier
}

bool in_callback() noexcept { return t_in_callback; }

void barrier() noexcept {
  urcu_bp_barrier();
  tsan_acquire();  // pairs with tsan_release in callback_exited
}

}  // namespace umn::detail::rcu
