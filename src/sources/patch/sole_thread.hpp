// sole_thread.hpp - whether the calling thread is the only one that can execute this process's text,
// for the plain write of a site whose window straddles a cache line (x86_64.hpp, "Sites straddling a
// cache line").
//
// SoleThreadScope blocks every signal of the calling thread (no handler of this thread can run, and so
// none can create a thread), then counts the entries of /proc/self/task. One entry means: no other
// thread of this thread group exists, and none can appear until the scope ends, because only this
// thread could create one and it runs nothing but the patcher meanwhile. The text is then written by
// nobody else and executed by nobody else, so a non-atomic write of it is safe.
//
// Limit: a process sharing this address space without being in this thread group (raw clone(CLONE_VM)
// without CLONE_THREAD, a vfork child's parent is stopped and harmless) is not listed in /proc/self/task;
// if it runs the patched bytes during the write it may execute a torn instruction. Such a sibling made
// before umn is installed is the program's own choice; umn never makes one.
//
// Locking: none; the scope is per thread. Lifetime: the mask is restored when the scope ends.
// Context: not a signal handler of a thread that expects its mask intact meanwhile (restored at the end);
// async-signal-safe (raw system calls, a small buffer on the stack). Memory ordering: none.
#pragma once

namespace umn::detail::patch {

class SoleThreadScope {
 public:
  SoleThreadScope() noexcept;
  ~SoleThreadScope();
  SoleThreadScope(const SoleThreadScope&) = delete;
  SoleThreadScope& operator=(const SoleThreadScope&) = delete;

  // Whether /proc/self/task listed only this thread when the scope began (false when it could not be read).
  bool alone() const noexcept { return alone_; }

 private:
  unsigned long saved_mask_ = 0;
  bool alone_ = false;
};

}  // namespace umn::detail::patch
