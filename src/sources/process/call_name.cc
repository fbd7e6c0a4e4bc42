// call_name.cc - umn_process_call_name(): the printable name of each umn_process_call, built with or
// without the process hooks.
#include "umn/process.h"

extern "C" const char* umn_process_call_name(umn_process_call call) {
  static const char* const names[] = {"munmap", "mremap",          "madvise",  "mprotect", "brk",
                                      "shmdt",  "mmap_fixed",      "fork",     "uffd",     "quiet",
                                      "shmat",  "process_madvise", "truncate", "fallocate"};
  static_assert(sizeof(names) / sizeof(names[0]) == UMN_CALL_COUNT);
  return static_cast<unsigned>(call) < UMN_CALL_COUNT ? names[call] : "?";
}
