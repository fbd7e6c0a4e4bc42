// syscall_effect.hpp - what a memory-changing system call takes away, computed by the tracer from the
// call's own arguments and the kernel's rules (mm/mmap.c, mm/mremap.c, mm/madvise.c, mm/mprotect.c,
// ipc/shm.c), independently of the hooks it checks: the hooks' classification (src/sources/process) is
// not used here.
//
// Locking: none. Lifetime: values. Memory ordering: none (single-threaded).
// Context: the tracer, with the calling thread stopped at its seccomp stop (the call has not run yet);
// reads the tracee's memory (process_madvise's iovecs) and /proc files.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "trace/ranges.hpp"
#include "umn/process.h"

namespace umn::trace {

// A system call as the seccomp stop reports it.
struct Syscall {
  uint32_t arch = 0;  // AUDIT_ARCH_X86_64 or AUDIT_ARCH_I386 (int 0x80 from a 64-bit process)
  long nr = 0;        // without the x32 bit
  uint64_t args[6] = {};
  uint64_t ip = 0;  // address after the system call instruction
  pid_t tid = 0, tgid = 0;
};

enum class Loss {
  kNone,          // takes nothing away (or is refused by the kernel for its arguments)
  kMapping,       // the pages of `ranges` go (unmap, replace, discard)
  kAccess,        // the mappings in `ranges` lose the access in `access_lost`
  kBrkShrink,     // known at the call's exit: [page_up(new break), page_up(old break))
  kExec,          // execve/execveat: not a loss; the tracer snapshots the maps for call sites
  kUnverifiable,  // lets memory be taken away by calls the tracer cannot stop (`why`): the process
                  // cannot be verified (io_uring_setup; seccomp with a user-notification listener)
};

struct Effect {
  const char* name = "";                   // the system call's name
  umn_process_call call = UMN_CALL_COUNT;  // the announcement that covers it
  Loss loss = Loss::kNone;
  std::vector<Range> ranges;                   // lost if the call succeeds (in whole or in part)
  std::vector<Range> if_moved;                 // mremap growing with MREMAP_MAYMOVE: lost if the mapping moved
  bool read_lost = false, write_lost = false;  // kAccess
  bool unresolved = false;                     // the tracer could not compute the ranges (see `why`)
  std::string why;
};

// Return: the effect of call (Loss::kNone for a call that is not memory-changing).
Effect effect_of(const Syscall& call);

// Whether the tracer traps this system call at all (for per-syscall counts). Return: its name or nullptr.
const char* trapped_name(uint32_t arch, long nr);

}  // namespace umn::trace
