// stub_area.hpp - the pages of stubs one module's sites jump to: placed within rel32 reach of the
// module, headed by umn's magic (so another umn copy recognises them), with unwind information.
//
// Layout: stub pages, each starting with the header (magic, owning registry) and holding whole stubs,
// then the pages of an .eh_frame (one CIE, one FDE per stub) registered with libgcc's
// __register_frame_info, so that backtrace(), C++ exceptions, profilers using the libgcc unwinder see
// through a stub to the function that made the system call and its callers (x86_64.hpp, "Unwinding").
//
// The stub (emit order): the displaced instruction; for glibc's syscall() a filter that runs unwatched
// numbers with an inline syscall; then the call body: save the site's stack pointer and skip its red
// zone, frame pointer, optionally switch to this thread's hook stack (sites outside libc/ld.so: the Go
// runtime calls from small goroutine stacks), optionally save the x87/SSE state, call the dispatcher,
// restore, and jump back behind the syscall instruction with the raw result in %rax.
//
// Locking: none; the installer's caller serialises. Lifetime: areas are never unmapped (patched code
// jumps into them). Context: not a signal handler; no malloc (libgcc's registration allocates only later,
// at the first unwind through the area). Memory ordering: the area is made read+exec before the caller
// publishes a jmp to it.
#pragma once

#include <cstdint>

#include "sources/patch/raw_array.hpp"
#include "sources/patch/sites.hpp"

namespace umn::detail {
struct Registry;
}

namespace umn::detail::patch {

using DispatchFn = long (*)(long a1, long a2, long a3, long a4, long a5, long a6, long nr, uintptr_t site_rsp);

struct StubOptions {
  DispatchFn dispatch;
  Registry* owner;       // published in the header for later umn copies
  bool save_vector;      // fxsave64 around the dispatcher
  bool switch_stack;     // run the dispatcher on the thread's hook stack
};

// Whether the page at page starts with a stub area header.
bool is_stub_area(uintptr_t page) noexcept;
// The registry published in the header of the stub area holding target.
Registry* stub_area_owner(uintptr_t target) noexcept;
// Whether target is the entry of a syscall() stub (its first instruction is the displaced r9 load).
bool is_syscall_fn_stub(uintptr_t target) noexcept;

// Maps an area for the sites of module m in sites (within reach of [text_start, text_end)), emits their
// stubs (setting stub_offset to the stub's offset from the returned base), registers the unwind
// information and makes the area read+exec. Return: the area's base, or -errno (-ENOMEM: no hole in
// reach; -EPERM/-EACCES: the system refuses executable memory).
long build_stub_area(RawArray<Site>& sites, unsigned m, uint64_t text_start, uint64_t text_end,
                     const StubOptions& options) noexcept;

}  // namespace umn::detail::patch
