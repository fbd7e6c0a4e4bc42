// thread_state.hpp - the delivery state of one kernel thread: the hooked calls it has in progress
// (levels), whether one of them is running callbacks (the dispatcher's "nested" test), and the events
// each has started, kept off the stack so that an abandoned call can still be ended.
//
// Why levels. A hooked call that announces memory going away opens a range (range_start) that only its
// own frame ends. A thread can leave that frame without ending it: a siglongjmp out of a callback, or out
// of a signal handler that interrupted the call (issue 17.8). Each call in progress is therefore one
// Level of this thread's state, recorded at the call's entry with the frame address of the hook; the
// thread's next hooked call (and the process's exit) finds the levels whose frame is dead and ends their
// open ranges (END to the observers, range_end to the notifiers), so the device sees a balanced start and
// end and the thread's depth drops back. Each level owns a canary: a word in the hook's frame holding a
// token unique to the level. The thread's alternate stack is the one sigaltstack() reports or, when it
// reports none (SS_AUTODISARM disarms it while its handler runs), the one an open level saw armed at its
// entry if the thread's frame lies in it. A level is dead when (stack grows down):
//   - it began on the signal alternate stack and the thread is no longer on it, or
//   - it began on the stack the thread is on now and the thread's frame is at or above the level's, or
//   - it began on the stack the thread is on now, below whose frame the thread is, and its canary no
//     longer holds its token (the thread jumped out and its later calls reused that stack).
// A level that began on the thread's ordinary stack while the thread is now on the alternate stack is
// alive (a handler interrupting it). Limits: a jump out of a delivery whose later calls leave the canary
// word unwritten (it lies in padding or an unused buffer of their frames) stays open until the thread
// rises above the level's frame or exits; user-level stack switches (swapcontext, coroutines, the
// patcher's hook stack for sites outside libc), and an SS_AUTODISARM alternate stack armed after a level
// began, look like the ordinary stack, so a call made on another such stack while a level of this thread
// is open may judge it wrongly (docs/process.md: a live level judged dead is ended while its callbacks
// run, and its own end then unbalances the thread's delivery count; not fixed).
//
// Why kernel thread ids. Threads made by a raw clone(CLONE_VM) without CLONE_SETTLS share their
// creator's thread-local storage (issue 17.7); so does a vfork child. States therefore live in a
// process-wide pool, and each is owned, for the duration of a call, by the kernel thread id that claimed
// it (one gettid per call that delivers something). A thread's thread-local pointer names its home
// state (bound at its first claim: a free one, or one whose thread has exited); a thread that finds its
// home owned by another id (it shares the storage of that thread) uses the state its id owns, or any
// free one, for that call. Only the pointer is thread-local: 4.7 KiB of initial-exec TLS per thread would
// not fit glibc's static-TLS surplus, and libumn.so could no longer be dlopened.
//
// Locking: none. Each state is owned through `owner` (a CAS from 0 to the thread id; released by a store
//   of 0 when the thread's depth drops to 0) and bound through `home` (a CAS from 0, or from an exited
//   thread's id). Everything else in a ThreadState is touched only by its owner and the owner's signal
//   handlers.
// Lifetime: the pool's chunks are static or mapped, never unmapped; a state outlives its threads and is
//   reused by later ones. A Level lives from the hooked call's entry to its exit, or until it is found
//   dead.
// Context: any thread, signal handlers included; async-signal-safe, no malloc (a raw mmap of a chunk
//   when every state is taken).
// Memory ordering: owner is claimed with acquire and released with release (ThreadClaim), so the next
//   owner of a state sees what the previous one left in it; a chunk is linked with a release CAS and
//   followed with acquire loads.
#pragma once

#include <atomic>
#include <cstdint>

#include "sources/process/delivery.hpp"
#include "sources/process/events.hpp"

namespace umn::detail {

// Hooked calls one thread can have in progress with their events tracked (a call, a signal handler's call
// interrupting it, a handler interrupting that one). Deeper calls are announced all the same, with their
// events on the stack and no abandonment tracking.
inline constexpr unsigned kMaxLevels = 3;
// States per chunk of the process-wide pool (thread_state.cc): one chunk is static, more are mapped as
// threads need them.
inline constexpr unsigned kChunkStates = 8;

struct ThreadState;

// A signal alternate stack of a thread: [low, high), empty when none.
struct AltStack {
  uintptr_t low = 0, high = 0;
  bool on = false;  // the thread runs on it now
  bool holds(uintptr_t frame) const noexcept { return frame >= low && frame < high; }
};

// One hooked call in progress (or one fork delivery) on a thread.
struct Level {
  ThreadState* state = nullptr;
  uintptr_t frame = 0;            // the address of its canary, in the hook's frame
  uint64_t token = 0;             // what its canary holds while the frame lives
  AltStack alt;                   // the thread's alternate stack at entry (armed, or disarmed by
                                  // SS_AUTODISARM for the handler running: thread_alt in thread_state.cc)
  const void* walks = nullptr;    // the core's walk mark at entry (itree_walk_mark)
  Pending* pending = nullptr;     // kMaxEvents records; nullptr beyond kMaxLevels (the caller provides them)
  unsigned started = 0;           // events of pending[] whose start has begun
  bool delivering = false;        // its callbacks or observers are running (DeliveryScope)
};

struct ThreadState {
  std::atomic<long> owner{0};  // the kernel thread id using it, 0 when free; acquire CAS, release store
  std::atomic<long> home{0};   // the thread whose thread-local pointer names it (relaxed: a hint; owner
                               // decides who uses it)
  unsigned depth = 0;          // levels[0, depth) are in progress (filled before counted: ThreadClaim)
  // Levels with `delivering` set (plus untracked deeper ones). Atomic for the thread's own signal
  // handlers only (an increment they cannot split); relaxed: no other thread reads it.
  std::atomic<unsigned> delivering{0};
  bool sweeping = false;       // abandoned levels are being ended (no second sweep from their callbacks)
  Level levels[kMaxLevels];
  Pending pending[kMaxLevels][kMaxEvents];
};

// The calling kernel thread's state for one hooked call: claims it (gettid; its home state, or the one
// its id owns, or a free one), ends the levels the thread abandoned, and pushes a level whose canary is *canary, a word
// of the caller's frame that lives as long as the claim. The destructor pops it and releases the state
// when no level is left.
class ThreadClaim {
 public:
  explicit ThreadClaim(volatile uint64_t* canary) noexcept;
  ~ThreadClaim();
  ThreadClaim(const ThreadClaim&) = delete;
  ThreadClaim& operator=(const ThreadClaim&) = delete;
  // Whether the thread is inside a delivery (a callback or an observer of an outer call is running).
  bool nested() const noexcept { return level_->state->delivering.load(std::memory_order_relaxed) > 0; }
  Level& level() noexcept { return *level_; }

 private:
  Level* level_;
  Level untracked_;        // the level beyond kMaxLevels
  bool acquired_ = false;  // this claim took the state's ownership (and releases it)
};

// At process exit, on the exiting thread: ends every level the thread still has open (none of them can
// complete any more), so that the release does not wait for the thread's own abandoned ranges.
void end_levels_at_exit() noexcept;

// In a fork child (atfork child handler): the forking thread's state and the table belonged to the
// parent's threads; the child's only thread takes over the forking thread's levels.
void thread_state_fork_child() noexcept;

// Levels ended because their thread abandoned them (relaxed statistics, tests).
extern std::atomic<unsigned long> g_abandoned;

}  // namespace umn::detail
