// fork.cc - umn's pthread_atfork handlers (contract and the order of every step in fork.hpp).
#include "core/fork.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <new>

#include "base/check.hpp"
#include "core/itree_invalidate.hpp"
#include "core/rcu.hpp"
#include "core/subscriptions.hpp"

namespace umn::detail {

[[gnu::tls_model("initial-exec")]] thread_local OwnProcessRanges t_own_process_ranges;

namespace {

std::atomic<const ForkSource*> g_source{nullptr};  // release in fork_set_source, acquire in prepare
// Written in prepare, read in parent/child: the forking thread's (glibc runs one fork's handlers at a time).
const ForkSource* g_forking_source = nullptr;
umn_mm* g_fork_mm = nullptr;
sigset_t g_saved_mask;

Subscriptions* fork_subscriptions() noexcept { return g_fork_mm != nullptr ? subscriptions_of(g_fork_mm) : nullptr; }

// Step 6 in the child: the parent's other threads are gone, with the ranges they had open and their waits.
// Not analysed: the lock was taken by prepare(), in another function.
void forget_dead_threads(umn_mm* mm, Subscriptions* subs) noexcept UMN_NO_THREAD_SAFETY_ANALYSIS {
  const OwnProcessRanges own = t_own_process_ranges;
  mm->bare_ranges.store(own.bare, std::memory_order_seq_cst);
  subs->waiters = 0;
  new (&subs->epoch_ended) CondVar;  // the old one's waiters died with their threads
  // One range more than ours, ended as the last of the dead threads' ranges would have ended: when no
  // range of ours is left either, the epoch closes (seq turns even, the deferred list is applied).
  subs->active = static_cast<unsigned long>(own.active) + 1;
  t_own_process_ranges.active++;  // the range itree_invalidate_end is about to end counts as ours
  subs->lock.unlock();
  itree_invalidate_end(*subs);
}

// Not analysed: the locks are released by finish(), in another handler.
void prepare() noexcept UMN_NO_THREAD_SAFETY_ANALYSIS {
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &saved);
  const ForkSource* source = g_source.load(std::memory_order_acquire);
  umn_mm* handed_out = source != nullptr ? source->enter() : nullptr;
  g_forking_source = source;
  g_saved_mask = saved;
  umn_mm* mm = process_address_space();
  // Published now when handed out, so that no thread can publish (and lock) fresh ones before the clone.
  Subscriptions* subs = handed_out != nullptr ? subscriptions_publish(mm) : subscriptions_of(mm);
  g_fork_mm = subs != nullptr ? mm : nullptr;  // nullptr also when out of memory: nothing to lock then
  if (subs != nullptr) subs->classic.get_lock.lock();
  if (source != nullptr) source->start(handed_out);
  rcu::fork_prepare();
  if (subs != nullptr) subs->lock.lock();
}

void finish(bool child) noexcept UMN_NO_THREAD_SAFETY_ANALYSIS {
  Subscriptions* subs = fork_subscriptions();
  if (subs != nullptr && child) forget_dead_threads(g_fork_mm, subs);
  else if (subs != nullptr) subs->lock.unlock();
  if (child) rcu::fork_child();
  else rcu::fork_parent();
  const ForkSource* source = g_forking_source;
  if (source != nullptr) source->finish(child);
  if (subs != nullptr) subs->classic.get_lock.unlock();
  const sigset_t saved = g_saved_mask;
  if (source != nullptr) source->leave();
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
}

void parent() noexcept { finish(false); }
void child() noexcept {
  diag_fork_child();  // step 0: a hook write a dead thread began (base/check.hpp)
  finish(true);
}

// Fails only with ENOMEM at load; forks then still work, only a child may hang (the issue this fixes).
[[gnu::constructor]] void register_handlers() noexcept { (void)pthread_atfork(&prepare, &parent, &child); }

}  // namespace

void fork_set_source(const ForkSource* source) noexcept { g_source.store(source, std::memory_order_release); }

}  // namespace umn::detail
