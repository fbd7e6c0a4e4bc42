// thread_state.cc - the delivery state of one kernel thread (contract and rationale in thread_state.hpp).
//
// Claim (ThreadClaim's constructor):
//   1. tid = gettid(). The thread's home state (bound at its first claim) is ours if its owner CAS
//      0 -> tid succeeds or finds tid; else another kernel thread shares this thread-local storage (raw
//      clone, vfork child): take the state whose owner is tid, or a free one (the pool grows).
//   2. If levels are open, end those the thread abandoned (sweep), top first.
//   3. Push a level (beyond kMaxLevels: an untracked one in the claim itself).
// Release (destructor): pop; at depth 0, owner = 0 (release).
#include "sources/process/thread_state.hpp"

#include <sched.h>
#include <sys/mman.h>
#include <signal.h>
#include <sys/syscall.h>

#include <cerrno>
#include <new>

#include "core/query.hpp"
#include "sources/sys/sys.hpp"

namespace umn::detail {

std::atomic<unsigned long> g_abandoned{0};

namespace {

// The states, in chunks: one static, more mapped when every state is taken (never unmapped: a thread of
// ours may still read one). Only a pointer is thread-local, so that libumn.so stays loadable by dlopen
// (initial-exec TLS of a dlopened object comes from glibc's small static-TLS surplus).
struct Chunk {
  ThreadState states[kChunkStates];
  std::atomic<Chunk*> next{nullptr};  // release when linked, acquire when followed
};
Chunk g_first_chunk;
[[gnu::tls_model("initial-exec")]] thread_local ThreadState* t_home = nullptr;  // this thread's state

// Calls fn(state) for every state until it returns true. Return: that state, or nullptr.
template <typename Fn>
ThreadState* find_state(Fn fn) noexcept {
  for (Chunk* chunk = &g_first_chunk; chunk != nullptr; chunk = chunk->next.load(std::memory_order_acquire))
    for (ThreadState& state : chunk->states)
      if (fn(state)) return &state;
  return nullptr;
}

// Maps a chunk and links it at the end (async-signal-safe: a raw mmap, CAS links). Return: false when
// no memory could be mapped.
bool grow() noexcept {
  long mapped = sys::mmap(nullptr, sizeof(Chunk), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (sys::failed(mapped)) return false;
  Chunk* chunk = new (reinterpret_cast<void*>(mapped)) Chunk;
  Chunk* last = &g_first_chunk;
  for (;;) {
    Chunk* expected = nullptr;
    // Pairs with the acquire loads in find_state: the new chunk's states are seen initialised.
    if (last->next.compare_exchange_strong(expected, chunk, std::memory_order_acq_rel)) return true;
    last = expected;
  }
}

// Whether thread tid of this process has exited.
bool thread_gone(long tid) noexcept {
  return sys::call(SYS_tgkill, sys::getpid(), tid, 0) == -ESRCH;
}

// Takes a state for tid (owner CAS 0 -> tid, acquire): one that is no thread's home first, then any free
// one, growing the pool when none is (and waiting when no memory can be mapped). Return: the state.
ThreadState* take_free(long tid) noexcept {
  auto take = [tid](ThreadState& state) {
    long expected = 0;
    return state.owner.compare_exchange_strong(expected, tid, std::memory_order_acquire);
  };
  for (;;) {
    if (ThreadState* state = find_state([&](ThreadState& s) {
          return s.home.load(std::memory_order_relaxed) == 0 && take(s);
        }))
      return state;
    if (ThreadState* state = find_state(take)) return state;
    if (!grow()) sys::call(SYS_sched_yield);  // no memory: wait for a state to be released
  }
}

ThreadState* bind_home(long tid) noexcept;  // below: it ends levels

// Return: the state tid owns or has claimed (acquire; pairs with the release store in ~ThreadClaim);
// *acquired: this call claimed it (else it was tid's already: a signal handler's call, or a callback's,
// inside one of the thread's own calls).
ThreadState* claim_state(long tid, bool* acquired) noexcept {
  *acquired = false;
  ThreadState* home = t_home;
  if (home == nullptr) t_home = home = bind_home(tid);  // shared with TLS sharers: only a hint for them
  long expected = 0;
  if (home->owner.compare_exchange_strong(expected, tid, std::memory_order_acquire)) {
    *acquired = true;
    return home;
  }
  if (expected == tid) return home;
  // Another kernel thread uses our thread-local storage's state (a raw clone, a vfork child, or we are
  // one of those): ours is the state owned by tid, or a free one.
  if (ThreadState* state = find_state([tid](ThreadState& s) { return s.owner.load(std::memory_order_acquire) == tid; }))
    return state;
  *acquired = true;
  return take_free(tid);
}

// The signal alternate stack of the calling thread, as the kernel knows it.
AltStack alt_stack() noexcept {
  stack_t ss;
  AltStack alt;
  if (sys::failed(sys::call(SYS_sigaltstack, 0, reinterpret_cast<long>(&ss)))) return alt;
  alt.on = (ss.ss_flags & SS_ONSTACK) != 0;
  if ((ss.ss_flags & SS_DISABLE) == 0) {
    alt.low = reinterpret_cast<uintptr_t>(ss.ss_sp);
    alt.high = alt.low + ss.ss_size;
  }
  return alt;
}

// The alternate stack of the calling thread, now at frame: the kernel's, or, when the kernel reports none
// (an SS_AUTODISARM stack is disarmed while its handler runs, and reported as SS_DISABLE), the one an open
// level of state saw at its entry if frame lies in it (the thread runs a handler on it).
AltStack thread_alt(const ThreadState& state, uintptr_t frame) noexcept {
  const AltStack alt = alt_stack();
  if (alt.low != alt.high) return alt;
  for (unsigned i = state.depth; i-- > 0;) {
    const AltStack& seen = state.levels[i].alt;
    if (seen.holds(frame)) return {seen.low, seen.high, true};
  }
  return alt;
}

// Whether level, in progress on this thread, is dead for a thread now at frame (rules in the header).
// The canary is read only below a level's frame on the stack the thread runs on: memory of that stack
// (a redzone of a live frame under ASan, hence no instrumentation).
[[gnu::no_sanitize_address]] bool dead(const Level& level, uintptr_t frame, const AltStack& alt) noexcept {
  const bool began_on_alt = level.alt.holds(level.frame) || alt.holds(level.frame);
  if (began_on_alt && !(alt.on && alt.holds(level.frame))) return true;  // left the alt stack it began on
  if (!began_on_alt && alt.on) return false;                             // a handler interrupting it
  if (frame >= level.frame) return true;
  return *reinterpret_cast<const volatile uint64_t*>(level.frame) != level.token;
}

// Ends what level started and did not end: its events in reverse, each with -EINTR as the call's result
// (the call was abandoned; it may or may not have run), after restoring the core's walk list to what it
// was when the level began (the walks it entered died with its frames).
void end_level(Level& level) noexcept {
  ThreadState& state = *level.state;
  if (level.delivering) {  // abandoned inside its callbacks: their DeliveryScope never ended
    level.delivering = false;
    state.delivering.fetch_sub(1, std::memory_order_relaxed);
  }
  itree_walk_restore(level.walks);
  for (unsigned i = level.started; i-- > 0;) deliver_end(level, &level.pending[i], -EINTR);
  level.started = 0;
  g_abandoned.fetch_add(1, std::memory_order_relaxed);
}

// Ends levels [from, depth) of state, top first, then drops them.
void end_levels(ThreadState& state, unsigned from) noexcept {
  state.sweeping = true;
  for (unsigned i = state.depth; i-- > from;) end_level(state.levels[i]);
  state.depth = from;
  state.sweeping = false;
}

// Ends the levels the thread left for good: the lowest dead one and every level above it.
void sweep(ThreadState& state, uintptr_t frame, const AltStack& alt) noexcept {
  for (unsigned i = 0; i < state.depth; ++i) {
    if (!dead(state.levels[i], frame, alt)) continue;
    end_levels(state, i);
    return;
  }
}

// The calling thread's first claim: a home state bound to tid -- one that is nobody's home and free, or
// one whose home thread has exited (a predecessor with our id included); the levels such a thread left
// open (it died inside a delivery) are ended first: they cannot complete any more.
ThreadState* bind_home(long tid) noexcept {
  for (;;) {
    if (ThreadState* state = find_state([tid](ThreadState& s) {
          long home = 0;
          return s.owner.load(std::memory_order_relaxed) == 0 &&
                 s.home.compare_exchange_strong(home, tid, std::memory_order_acq_rel);
        }))
      return state;
    if (ThreadState* state = find_state([tid](ThreadState& s) {
          long home = s.home.load(std::memory_order_relaxed), owner = s.owner.load(std::memory_order_acquire);
          return home != 0 && (home == tid || thread_gone(home)) && (owner == 0 || owner == home) &&
                 s.owner.compare_exchange_strong(owner, tid, std::memory_order_acquire);
        })) {
      state->home.store(tid, std::memory_order_relaxed);
      if (state->depth > 0) end_levels(*state, 0);
      state->owner.store(0, std::memory_order_release);  // pairs with the acquire CAS in claim_state
      return state;
    }
    if (!grow()) sys::call(SYS_sched_yield);
  }
}

// Tokens: unique per level instance on this thread (odd, so never 0 or a small count).
[[gnu::tls_model("initial-exec")]] thread_local uint64_t t_tokens = 0;

void init_level(Level& level, ThreadState* state, volatile uint64_t* canary, const AltStack& alt,
                Pending* pending) noexcept {
  level.state = state;
  level.frame = reinterpret_cast<uintptr_t>(canary);
  level.token = ((++t_tokens * 0x9e3779b97f4a7c15ull) ^ reinterpret_cast<uintptr_t>(canary)) | 1;
  *canary = level.token;
  level.alt = alt;
  level.walks = itree_walk_mark();
  level.pending = pending;
  level.started = 0;
  level.delivering = false;
}

}  // namespace

// The thread's own signal handlers may interrupt a claim anywhere: a level is filled before depth counts
// it (the signal fence keeps the compiler from reordering the two), and a claim leaves depth at its own
// level's index, so a handler's claim in between always sees whole levels and leaves depth as it found it.
ThreadClaim::ThreadClaim(volatile uint64_t* canary) noexcept {
  ThreadState* state = claim_state(sys::gettid(), &acquired_);
  const uintptr_t frame = reinterpret_cast<uintptr_t>(canary);
  const AltStack alt = thread_alt(*state, frame);
  if (state->depth > 0 && !state->sweeping) sweep(*state, frame, alt);
  const unsigned i = state->depth;
  if (i < kMaxLevels) {
    level_ = &state->levels[i];
    init_level(*level_, state, canary, alt, state->pending[i]);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    state->depth = i + 1;
  } else {
    level_ = &untracked_;
    init_level(untracked_, state, canary, alt, nullptr);
  }
}

ThreadClaim::~ThreadClaim() {
  ThreadState* state = level_->state;
  if (level_ != &untracked_) {
    const auto index = static_cast<unsigned>(level_ - state->levels);
    // A level above ours was abandoned and not swept (our frame is below it): it is dead now.
    if (index + 1 < state->depth) end_levels(*state, index + 1);
    if (index < state->depth) state->depth = index;  // else a sweep already ended ours
  }
  // Pairs with the acquire CAS in claim_state: the next owner sees this state as we leave it.
  if (acquired_ && state->depth == 0) state->owner.store(0, std::memory_order_release);
}

void end_levels_at_exit() noexcept {
  bool acquired;
  ThreadState* state = claim_state(sys::gettid(), &acquired);
  if (state->depth > 0) end_levels(*state, 0);
  state->owner.store(0, std::memory_order_release);  // pairs with the acquire CAS in claim_state
}

void thread_state_fork_child() noexcept {
  const long tid = sys::gettid();
  find_state([tid](ThreadState& state) {
    if (&state == t_home) {
      state.home.store(tid, std::memory_order_relaxed);
      if (state.owner.load(std::memory_order_relaxed) != 0) state.owner.store(tid, std::memory_order_relaxed);
      return false;
    }
    state.depth = 0;  // the parent's other threads: gone in the child, with their open ranges (the core
    state.delivering.store(0, std::memory_order_relaxed);  // forgets those in its own fork handler)
    state.home.store(0, std::memory_order_relaxed);
    state.owner.store(0, std::memory_order_relaxed);
    return false;
  });
}

}  // namespace umn::detail
