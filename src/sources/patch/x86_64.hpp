// x86_64.hpp - patching the syscall sites of every executable mapping (the "bistro" of the peers, done
// so that the known failure modes cannot happen; docs/process.md has the full rationale).
//
// What is patched. Not function entries, but *syscall sites*: every "mov $nr,%eax; syscall" (5-byte
// b8 imm32, glibc and Go) or "mov $nr,%rax; syscall" (7-byte 48 c7 c0 imm32, Go) whose nr is munmap,
// mmap, mremap, madvise, mprotect, brk, shmdt, shmat or process_madvise, plus the "mov 8(%rsp),%r9;
// syscall" of glibc's generic syscall(), in the text of every file-backed executable mapping: the main
// executable (dynamic or static), every shared object mapped at installation and every one mapped
// later (on_exec_mapping: dlopen). The mov becomes "jmp stub"; the stub re-executes it, calls the
// dispatcher with the syscall's arguments, puts the raw result in %rax and jumps back behind the
// syscall instruction, so the original code sets errno, __curbrk and so on.
//
// Finding sites (sites.hpp, extents.hpp). Sites are found by decoding instructions from the entry of
// every known function (symbols, .eh_frame, Go's .gopclntab), never by a bare byte match: a pattern
// inside another instruction is never patched. Syscall instructions whose number is not an immediate
// right before them are counted (unknown); watched patterns outside every known function are counted
// (undecoded); executable mappings that are not files (JIT code) or cannot be read are counted
// (unscanned). None of those is covered.
//
// Why it is safe against concurrent execution (text_write.hpp). The patched window is exactly one
// instruction, written with one locked 8-byte compare-and-swap inside one cache line: another thread
// sees either the old instruction or the jmp, never a mix; a thread stopped between the old mov and the
// syscall just makes one unhooked call that started before installation.
//
// Sites straddling a cache line. Their window cannot be written atomically. They are patched with plain
// stores when the scan and the writes run under a SoleThreadScope that found this thread alone
// (sole_thread.hpp: every signal blocked, /proc/self/task lists one thread: nothing else executes the
// bytes meanwhile; a raw clone(CLONE_VM) sibling outside the thread group is the stated limit), and
// otherwise left alone and counted as "unsafe". Patches are never removed (restoring bytes under a
// running thread is how libfabric crashed, #10943), and libumn is linked with -z nodelete.
//
// Two interposers. A site that already holds a jmp into a umn stub area (recognised by its magic
// header) belongs to another umn copy in this process: the installer then patches nothing and joins that
// copy's observer registry, so both copies see every event once. A site holding anything else (another
// library's patch) is left alone and counted as "foreign".
//
// Vector state and stacks (stub_area.hpp). A system call preserves every register but rax, rcx and r11.
// In libc.so and ld.so every site is the body of a leaf system call wrapper whose code uses no vector or
// x87 register (checked by the test LibcAndLoaderSitesHoldNoVectorState), and whose caller follows the
// psABI: their stubs save the general registers only and run on the caller's stack. Any other module
// (the main executable, Go's runtime, other libraries) may have vector state live at the site and may be
// running on a small stack (a goroutine's): its stubs save the x87/SSE state and run the dispatcher on a
// per-thread 64 KiB hook stack (allocated by the stub at the thread's first such call, never freed).
//
// Unwinding. Every stub has an FDE registered with libgcc's unwinder: a backtrace from a callback goes
// through the stub to the function holding the site, its callers and main.
//
// Failures. Installation is all or nothing per attempt: every stub area is built before the first site
// is patched; a module for which no stub area can be mapped (-ENOMEM) or made executable (-EACCES or
// -EPERM under a W^X policy: PR_SET_MDWE, systemd's MemoryDenyWriteExecute) fails the installation, as
// does a text page that cannot be made writable. Sites patched before such an error stay patched.
//
// Locking: install() is called once per copy, serialised by the caller; on_exec_mapping() serialises
// itself (a spin lock, reset in a forked child; a signal handler of the thread that holds it maps text
// that is then counted as unscanned, not patched). Context: not from a signal handler; no malloc (but see
// decoder.hpp for fully static programs). Memory ordering: the locked cmpxchg is a full barrier; a stub
// area is made read+exec before the jmp that leads to it is published.
#pragma once

#include <cstdint>

#include "sources/patch/stub_area.hpp"
#include "umn/process.h"

namespace umn::detail::patch {

struct InstallResult {
  unsigned patched = 0;     // sites this copy patched
  unsigned shared = 0;      // sites already patched by another umn copy
  unsigned foreign = 0;     // sites patched by someone else: left alone
  unsigned unsafe = 0;      // sites whose window crosses a cache line: left alone
  unsigned unknown = 0;     // syscall instructions whose number is not an immediate at the site
  unsigned undecoded = 0;   // watched byte patterns outside every known function
  unsigned failed = 0;      // sites left unpatched by an error (see error)
  unsigned modules = 0;     // executable file mappings scanned
  unsigned unscanned = 0;   // executable mappings not scanned (anonymous, unreadable)
  bool syscall_fn = false;  // glibc's syscall() was patched (or shared)
  Registry* existing = nullptr;  // the owning copy's registry when shared > 0
  int error = 0;            // -errno of the first failure, 0 if none
};

// Finds and patches the sites of every executable mapping. own is published in this copy's stub areas
// for later copies to find.
InstallResult install(DispatchFn dispatch, Registry* own) noexcept;

// New text: a successful mmap (protection prot, with PROT_EXEC) of file descriptor fd at offset, now at [addr, addr +
// length). Patches its sites (after install() patched, never before); the dispatcher calls it after the
// loader's (or anyone's) mmap returned and before the caller can run the code.
void on_exec_mapping(int fd, uintptr_t addr, uint64_t length, uint64_t offset, int prot) noexcept;

// The counts so far: install() and every on_exec_mapping() since.
InstallResult totals() noexcept;

}  // namespace umn::detail::patch
