// events.hpp - classification: which hooked system calls take memory away, and the range each announces
// (the table in docs/process.md, "Events").
//
// Locking: none. Lifetime: nothing is kept. Context: async-signal-safe (shmdt, mprotect with
//   PROT_GROWSDOWN and the file calls of file_events.hpp read /proc/self/maps with raw system calls into
//   a stack buffer; brk, shmat, mmap of a file with MAP_FIXED and the file calls issue raw queries).
// Memory ordering: none.
#pragma once

#include <cstdint>

#include "umn/process.h"

namespace umn::detail {

// Fills *event for [addr, addr + length) if it is a valid, non-empty, page-aligned range. Return: 1 or 0.
unsigned make_event(umn_process_event* event, umn_process_call call, umn_notifier_event kind, uint64_t addr,
                    uint64_t length, uintptr_t caller) noexcept;

// Whether madvise advice takes the pages behind a range away (announced as CLEAR).
bool discards(long advice) noexcept;

// The most events one call causes: mremap(MREMAP_FIXED) unmaps the destination, then the old range; a
// file call (file_events.hpp) zaps its pages in two mappings of the file (more widen the last event).
inline constexpr unsigned kMaxEvents = 2;

// The events system call nr with arguments a (as the kernel gets them: an int argument is the low 32
// bits of its register) causes, made by the call whose return address is caller, in the order the
// kernel takes the memory. Return: how many events (0 to kMaxEvents) were written to events[].
unsigned events_of(long nr, const long* a, umn_process_event* events, uintptr_t caller) noexcept;

}  // namespace umn::detail
