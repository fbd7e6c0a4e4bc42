// seccomp_filter.hpp - the seccomp program `umn trace` installs in the process it starts (inherited by
// every fork, clone and exec of the tree, and not removable): it returns SECCOMP_RET_TRACE for the
// memory-changing system calls only, so that the tracer stops exactly those, whatever instruction
// issued them (libc, a runtime's own `syscall`, code generated at run time, `int $0x80`).
//
// Trapped (x86-64, x32 and i386 numbers): munmap, mremap, brk, shmdt, shmat, process_madvise, execve,
// execveat always; mmap (mmap2) only with MAP_FIXED and without MAP_FIXED_NOREPLACE; madvise only with
// discarding advice; mprotect and pkey_mprotect only without read or without write access, or with
// PROT_GROWSDOWN/GROWSUP; the i386 old_mmap and ipc multiplexers always; and (x86-64 and x32 numbers
// only) ftruncate always and fallocate with a mode that zaps a file's pages. Everything else runs
// untouched.
//
// Locking: none. Lifetime: the filter lives as long as the tasks that inherit it. Memory ordering: none.
// Context: called in the child between fork and exec.
#pragma once

namespace umn::trace {

// Installs the filter on the calling thread (sets no_new_privs first, as an unprivileged seccomp
// filter requires). memory_calls false: execve and execveat only (plain `umn trace`, which follows
// execs to name call sites). Return: 0 or -errno.
int install_seccomp_filter(bool memory_calls) noexcept;

}  // namespace umn::trace
