// rcu.cc - the urcu-bp wrapper (see rcu.hpp for the flavour choice) and its ThreadSanitizer annotations.
//
// liburcu's headers are included here only: they map rcu_read_lock & co. to urcu_bp_* with macros, and
// are not -Wpedantic clean, so no other umn file sees them.
#include "core/rcu.hpp"

#include <pthread.h>
#include <signal.h>
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

// What prepare could do, decided by the forking thread's own state (see "fork()" in rcu.hpp); the child
// inherits the forking thread's thread-locals, so prepare, parent and child agree.
//   t_fork_gp_locked: liburcu's grace-period and registry locks taken (not from inside a read-side
//     section: a grace period in progress may be waiting for this very section, with the lock held);
//   t_fork_paused: the call_rcu threads paused (neither from a section nor from a call() callback, which
//     runs on the call_rcu thread and would wait for itself to pause).
thread_local bool t_fork_gp_locked = false;
thread_local bool t_fork_paused = false;

// liburcu-bp's per-thread reader record, as its ABI (soname 8) has it: the LGPL read-side inlines that
// applications compile in read `ctr` through the exported TLS pointer. Only these two are used here.
// Not liburcu's own struct urcu_bp_reader (<urcu/static/urcu-bp.h>): it is declared 128-byte aligned,
// but liburcu 0.13 allocates the records less aligned, so UBSan rejects every access through that type.
struct BpReader {
  unsigned long ctr;  // the grace-period phase and, in the low half, the read-side nesting count
};
constexpr unsigned long kBpNestMask = (1UL << (sizeof(long) * 4)) - 1;  // URCU_BP_GP_CTR_NEST_MASK

}  // namespace
}  // namespace umn::detail::rcu

extern "C" __thread umn::detail::rcu::BpReader* urcu_bp_reader;  // liburcu-bp's, exported

namespace umn::detail::rcu {
namespace {

// The child of a fork from inside a read-side section: the locks prepare could not take may be held by a
// thread that does not exist here, and a grace period of such a thread may have left this thread's
// reader record on that thread's stack, out of liburcu's registry (its synchronize moves records to
// lists of its own while it waits). Release the locks (liburcu's child handler: it forgets the other
// threads, then unlocks; glibc's default mutexes unlock whoever held them, or stay unlocked), then give
// this thread a fresh registered record with the same nesting, and make the old one quiescent forever.
void repair_child_of_section() noexcept {
  BpReader* old = urcu_bp_reader;
  const unsigned long nesting = old->ctr & kBpNestMask;
  sigset_t mask;
  pthread_sigmask(SIG_SETMASK, nullptr, &mask);
  urcu_bp_after_fork_child();  // also restores a signal mask saved by an earlier fork: put ours back
  pthread_sigmask(SIG_SETMASK, &mask, nullptr);
  old->ctr = 0;              // never again an active reader, wherever the dead grace period left it
  urcu_bp_reader = nullptr;  // the next read_lock registers a fresh record in the registry
  for (unsigned long i = 0; i < nesting; ++i) urcu_bp_read_lock();
}

}  // namespace

void fork_prepare() noexcept {
  t_fork_gp_locked = urcu_bp_read_ongoing() == 0;
  t_fork_paused = t_fork_gp_locked && !t_in_callback;
  if (!t_fork_gp_locked) return;  // in a section: the child repairs what it inherits instead
  urcu_bp_read_lock();  // registers this thread now: read-side sections in the fork window take no lock
  urcu_bp_read_unlock();
  if (t_fork_paused) urcu_bp_call_rcu_before_fork();  // pauses the call_rcu threads (they take the gp lock)
  urcu_bp_before_fork();                              // takes the grace-period and registry locks
}

void fork_parent() noexcept {
  if (t_fork_gp_locked) urcu_bp_after_fork_parent();
  if (t_fork_paused) urcu_bp_call_rcu_after_fork_parent();
}

void fork_child() noexcept {
  if (t_fork_gp_locked)
    urcu_bp_after_fork_child();  // forgets the parent's other threads
  else
    repair_child_of_section();
  // A fresh call_rcu thread, inheriting the callbacks still queued (after a fork from a section not those
  // the dead call_rcu thread had taken off the queue: see "fork()" in rcu.hpp). Not from a call()
  // callback: this thread is the child's call_rcu thread then, and goes on serving its queue when the
  // callback returns.
  if (!t_in_callback) urcu_bp_call_rcu_after_fork_child();
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
