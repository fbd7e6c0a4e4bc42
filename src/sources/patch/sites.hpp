// sites.hpp - finding the syscall sites of one module by decoding its functions (x86_64.hpp, "Finding
// sites"): the instruction right before each decoded `syscall` tells what the site is.
//
//   b8 imm32 (mov $nr,%eax, 5 bytes; glibc, Go)  or  48 c7 c0 imm32 (mov $nr,%rax, 7 bytes; Go)
//       with nr a watched call: a site; the mov is the patched window.
//   4c 8b 4c 24 08 (mov 8(%rsp),%r9) at the end of glibc's syscall() body: the syscall() site.
//   anything else (the number comes from a register: syscall(), Go's Syscall6, umn's own boundary):
//       counted as unknown, not patched.
// A site is taken only at a decoded instruction boundary inside a known function extent (extents.hpp);
// the watched byte patterns found outside every extent are counted as undecoded, never patched.
//
// Locking: none. Lifetime: sites are copied out. Context: not a signal handler; no malloc (but the
// Capstone decoder of fully static programs allocates its handle once per scan, decoder.hpp). Memory
// ordering: none.
#pragma once

#include <cstdint>

#include "sources/patch/elf_image.hpp"
#include "sources/patch/extents.hpp"
#include "sources/patch/raw_array.hpp"

namespace umn::detail::patch {

enum class SiteKind : uint8_t { kFresh, kSyscallFn, kShared, kForeign, kUnsafe };

struct Site {
  uintptr_t addr;        // the window: the instruction before the syscall, in memory
  uint8_t length;        // its length (5 or 7); the syscall instruction follows
  SiteKind kind;
  unsigned module;       // index of the module (x86_64.cc)
  unsigned stub_offset;  // within the module's stub area, once emitted (0: none)
};

struct ScanCounts {
  unsigned unknown = 0;    // decoded syscall instructions with a number not known at the site
  unsigned undecoded = 0;  // watched patterns outside every function extent
};

// The watched system call numbers (the calls that can take memory away, and shmat/mmap for the
// tracer's quiet phase).
bool watched(long nr) noexcept;
inline constexpr long kSyscallFnBodyLength = 25;  // glibc's syscall() from its first instruction

// Decodes the functions of image lying in [text, text + length) (file virtual addresses; the module is
// mapped at text + bias) and appends its sites, classified by what memory holds (fresh, shared with
// another umn copy, foreign). Return: false when memory ran out.
bool find_sites(const ElfImage& image, uint64_t text, uint64_t length, uint64_t bias, unsigned module,
                RawArray<Site>* sites, ScanCounts* counts) noexcept;

// Whether the page of target starts with a umn stub area header (another copy's, or ours).
bool is_umn_stub(uintptr_t target) noexcept;
// The target of the e9 rel32 jmp at site.
uintptr_t jmp_target(uintptr_t site) noexcept;

}  // namespace umn::detail::patch
