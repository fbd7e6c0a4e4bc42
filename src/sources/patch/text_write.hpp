// text_write.hpp - replacing a site's first five bytes with "jmp stub" while other threads may be
// executing them (x86_64.hpp, "Why it is safe against concurrent execution").
//
// The window is one instruction; it is written with one locked 8-byte compare-and-swap inside one cache
// line (the bytes around the jmp in that word are rewritten with their own values), under a temporary
// read+write+exec protection of the page (other threads may be running it). A window whose five bytes
// straddle a cache line cannot be written atomically: write_jmp_alone() writes it with plain stores,
// and only a caller that holds a SoleThreadScope which found this thread alone may call it
// (sole_thread.hpp): no other thread then executes or writes the bytes meanwhile.
//
// Locking: none; the installer's caller serialises writers. Lifetime: patches are never removed.
// Context: not a signal handler. Memory ordering: the locked cmpxchg is a full barrier; the stub must
// be executable before write_jmp() publishes the jmp to it.
#pragma once

#include <cstdint>

namespace umn::detail::patch {

// Whether the 5-byte window at site can be written atomically.
bool window_atomic(uintptr_t site) noexcept;

// Writes "jmp target" over the window at site, if it still holds expected (its first 5 bytes).
// exec_prot is the page's protection to restore. Return: 1 written, 0 the bytes changed under us
// (someone else patched it), -errno when the page could not be made writable (W^X policies).
int write_jmp(uintptr_t site, const unsigned char* expected, uintptr_t target, int exec_prot) noexcept;

// As write_jmp, for a window that straddles a cache line (and perhaps a page), with plain stores.
// Precondition: the caller holds a SoleThreadScope whose alone() is true.
int write_jmp_alone(uintptr_t site, const unsigned char* expected, uintptr_t target, int exec_prot) noexcept;

}  // namespace umn::detail::patch
