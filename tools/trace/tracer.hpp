// tracer.hpp - runs a command under ptrace and follows its whole process tree (fork, vfork, clone, exec),
// and with verification stops every memory-changing system call (seccomp_filter.hpp) to match it
// against the announcements the calling thread's hooks have open in the shared record: any part of the
// call's effect (syscall_effect.hpp) that no open announcement of the same call covers, and that was
// mapped, is a miss -- unless the kernel then refused the call (checked at its exit).
//
// A process image (one exec, or one fork child until it execs) is verified from the moment its hooks
// report ready in its record (a fork child inherits its parent's state); its calls before that (the
// loader mapping the program and the preload) are counted as before_hooks: no notifier can exist in an
// image before umn is loaded in it. An image that never gets hooks is reported as not verifiable.
//
// Locking: none (single-threaded). Lifetime: run_traced borrows the Region; TraceRun owns its values.
// Context: the tracer process; a tracee stays stopped while the tracer handles its stop.
// Memory ordering: the Region's (trace_record.hpp): a thread's announcements are read only while that
// thread is stopped; a record's ready flag with acquire.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sources/preload/trace_record.hpp"
#include "trace/proc_maps.hpp"
#include "trace/syscall_effect.hpp"

namespace umn::trace {

struct Image {
  pid_t pid = 0, ppid = 0;
  std::string exe;
  uint32_t watermark = 0;  // records claimed before this image began: its own has an index >= this
  bool hooked = false;     // hooks and the trace observer are up (its record said so, or inherited)
  int record = -1;         // its ProcessRecord, once known
  std::string ended = "running";
  uint64_t trapped = 0, checked = 0, before_hooks = 0, misses = 0;
  // The last break a brk returned (0: none seen yet), one cell per address space: shared with the
  // processes made with CLONE_VM (kcmp KCMP_VM), which move the same break.
  std::shared_ptr<uint64_t> brk = std::make_shared<uint64_t>(0);
  std::vector<MapLine> maps;  // the last snapshot (at exec and thread exits), for naming call sites
};

struct SyscallTally {
  uint64_t trapped = 0, checked = 0, before_hooks = 0, misses = 0;
};

struct Miss {
  pid_t pid = 0, tid = 0;
  std::string exe, syscall, detail, where;
};

struct TraceRun {
  std::deque<Image> images;  // a deque: the tracer holds pointers to images while it adds more
  std::map<std::string, SyscallTally> syscalls;
  std::vector<Miss> misses;
  std::vector<std::string> problems;  // why some part of the run could not be verified
  int status = 0;                     // the command's exit status as a shell reports it
};

// Runs command (PATH searched); setup runs in the child just before exec (to set the environment).
// verify: trap and check the memory-changing calls; otherwise only exec is trapped.
TraceRun run_traced(Region* region, bool verify, const std::vector<std::string>& command,
                    const std::function<void()>& setup);

// After the run: gives each image its ProcessRecord (the first claimed by its pid after the image began)
// and marks the images whose record says hooked.
void settle_records(const Region* region, TraceRun* run);

}  // namespace umn::trace
