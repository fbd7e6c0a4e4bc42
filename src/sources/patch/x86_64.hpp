// x86_64.hpp - patching the syscall sites of libc and the dynamic loader (the "bistro" of the peers,
// done so that the known failure modes cannot happen; docs/process.md has the full rationale).
//
// What is patched. Not function entries, but *syscall sites*: every "mov $nr,%eax; syscall" in the text
// of libc.so.6 and ld-linux-x86-64.so.2 (or of a statically linked executable) whose nr is munmap, mmap,
// mremap, madvise, mprotect, brk, shmdt, shmat or process_madvise, plus the one "mov 8(%rsp),%r9;
// syscall" of glibc's generic syscall(). The 5-byte instruction before the syscall becomes "jmp stub". The stub re-executes that
// instruction, calls the dispatcher with the syscall's arguments, puts the raw result in %rax and jumps
// back behind the syscall instruction, so libc's own code sets errno, __curbrk and so on. libc-internal
// callers (free -> munmap, realloc -> mremap, malloc_trim -> madvise, pthread stacks) and ld.so's private
// copies (dlclose -> munmap) all go through these sites; raw syscall(SYS_munmap, ...) goes through the
// syscall() site, whose stub forwards every other syscall number unchanged with an inline syscall.
//
// Why it is safe against concurrent execution. The patched window is exactly one instruction (5 bytes,
// no instruction boundary inside it), and it is written with one locked 8-byte compare-and-swap that
// stays inside one cache line (the 3 bytes around the jmp in that word are rewritten with their own
// values; the word starts up to 3 bytes before the site when the site is near a line end): another thread sees
// either the old instruction or the jmp, never a mix; a thread stopped between the old mov and the
// syscall just makes one unhooked call that started before installation. Sites whose window crosses a
// cache line themselves are left alone and counted as "unsafe". Patches are never removed (restoring bytes under a
// running thread is how libfabric crashed, #10943), and libumn is linked with -z nodelete.
//
// Two interposers. A site that already holds a jmp into a umn stub page (recognised by the page's magic
// header) belongs to another umn copy in this process: the installer then patches nothing and joins that
// copy's observer registry, so both copies see every event once. A site holding anything else (another
// library's patch) is left alone and counted as "foreign".
//
// Vector state. A system call preserves every register but rax, rcx and r11, so a stub must preserve
// whatever the dispatcher (and the callbacks it runs) may clobber that is live at the site. General
// registers are always saved. Vector and x87 registers are saved (fxsave64) only in the stubs of a
// statically linked executable, whose text may hold the pattern inside any function. In libc.so and
// ld.so every site is the body of a leaf system call wrapper (munmap, mmap, mprotect, madvise,
// posix_madvise, mremap, brk, shmdt, syscall) whose code uses no vector or x87 register; its callers,
// by the x86-64 psABI, keep nothing live in vector registers across the call (all are caller-saved;
// MXCSR and the x87 control word are callee-saved and no umn code changes them). So nothing vector is
// live at those sites and the stubs skip the save (it cost ~250 of the ~400 cycles of a hooked call).
// Checked for the installed glibc by the test LibcAndLoaderSitesHoldNoVectorState (disassembles the
// .eh_frame extent of every patched function).
//
// Locking: install() is called once per copy, serialised by the caller. Context: install() may not run
// from a signal handler; it allocates nothing from malloc (stub pages come from raw mmap).
// Memory ordering: the locked cmpxchg is a full barrier; the stub page is made executable before the
// jmp that leads to it is published.
#pragma once

#include <cstdint>

#include "umn/process.h"

namespace umn::detail {
struct Registry;  // process/registry.hpp
}

namespace umn::detail::patch {

// The dispatcher the stubs call: the syscall's six arguments, its number, and the stack pointer at the
// site (its first word is the return address of the libc function when the site is in a leaf).
using DispatchFn = long (*)(long a1, long a2, long a3, long a4, long a5, long a6, long nr, uintptr_t site_rsp);

struct InstallResult {
  unsigned patched = 0;     // sites this copy patched
  unsigned shared = 0;      // sites already patched by another umn copy
  unsigned foreign = 0;     // sites patched by someone else: left alone
  unsigned unsafe = 0;      // sites whose window crosses a cache line: left alone
  unsigned modules = 0;     // libc / loader / static executable text segments scanned
  bool syscall_fn = false;  // glibc's syscall() was patched (or shared)
  Registry* existing = nullptr;  // the owning copy's registry when shared > 0
  int error = 0;            // -errno of the first failure, 0 if none
};

// Finds and patches the sites. own is published in this copy's stub pages for later copies to find.
InstallResult install(DispatchFn dispatch, Registry* own) noexcept;

}  // namespace umn::detail::patch
