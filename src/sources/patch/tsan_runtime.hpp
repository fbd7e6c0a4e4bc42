// tsan_runtime.hpp - whether ThreadSanitizer's runtime is in this process, decided at run time: a program
// built with -fsanitize=thread may use a libumn that was not (the usual case for an installed libumn), and
// ThreadSanitizer intercepts libumn's calls (pthread_mutex_lock, memcmp...) all the same.
//
// Locking: none. Lifetime: the answer is fixed when the process is loaded. Context: any, including signal
// handlers (one load of a resolved symbol address). Memory ordering: none.
#pragma once

extern "C" {
// Weak references, resolved by the dynamic linker (or the static link) only when the runtime is present.
void __tsan_init() __attribute__((weak));
void __tsan_ignore_thread_begin() __attribute__((weak));
void __tsan_ignore_thread_end() __attribute__((weak));
}

namespace umn::detail {

inline bool tsan_present() noexcept { return &__tsan_init != nullptr; }

// Around code that reads memory ThreadSanitizer cannot know about (raw mmap): its plain accesses, and
// those of the interceptors it calls, are ignored; synchronisation is still tracked.
struct TsanIgnoreScope {
  TsanIgnoreScope() noexcept {
    if (&__tsan_ignore_thread_begin != nullptr) __tsan_ignore_thread_begin();
  }
  ~TsanIgnoreScope() {
    if (&__tsan_ignore_thread_end != nullptr) __tsan_ignore_thread_end();
  }
  TsanIgnoreScope(const TsanIgnoreScope&) = delete;
  TsanIgnoreScope& operator=(const TsanIgnoreScope&) = delete;
};

}  // namespace umn::detail
