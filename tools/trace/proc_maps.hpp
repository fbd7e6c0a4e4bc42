// proc_maps.hpp - a traced process's mappings as /proc/PID/maps lists them, read by the tracer (never by
// the traced process: the check does not depend on the code it checks).
//
// Locking: none. Lifetime: values. Memory ordering: none (single-threaded).
// Context: the tracer process; reading another process's maps needs ptrace access, which the tracer has
// over the tree it traces (but a non-dumpable process's maps need CAP_SYS_PTRACE: empty then).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "trace/ranges.hpp"

namespace umn::trace {

struct MapLine {
  Range range;
  bool read = false, write = false, exec = false, shared = false;
  uint64_t offset = 0, inode = 0;
  std::string device, path;
};

// The mappings of thread tid's process (read through that thread: a process's leader may be a zombie
// while other threads run), in address order; empty when the file cannot be read.
std::vector<MapLine> read_maps(pid_t tid);

// "file+0xoffset" for an address inside a file mapping of maps, "[anon]+0x..." or "?0x..." otherwise.
std::string describe_address(const std::vector<MapLine>& maps, uint64_t address);

}  // namespace umn::trace
