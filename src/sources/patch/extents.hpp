// extents.hpp - where the functions of an ELF file are: the ranges the patcher decodes instruction by
// instruction (x86_64.hpp, "Finding sites"). Decoding starts only at a known function entry, so a byte
// pattern inside another instruction (an immediate, a displacement) is never taken for a site.
//
// Sources, all read from the file (virtual addresses of the file, before the load bias):
//   - .symtab and .dynsym: STT_FUNC symbols with a size;
//   - .eh_frame: every FDE's [pc_begin, pc_begin + pc_range) (all of glibc, stripped or not);
//   - .gopclntab: the Go runtime's function table (Go 1.18 and later), for stripped Go binaries.
// Text covered by none of them is not decoded; the sites found there by a byte match are only counted
// (InstallResult::undecoded).
//
// Locking: none. Lifetime: the extents are copied out of the image. Context: not a signal handler; no
// malloc. Memory ordering: none.
#pragma once

#include <cstdint>

#include "sources/patch/elf_image.hpp"
#include "sources/patch/raw_array.hpp"

namespace umn::detail::patch {

struct Extent {
  uint64_t start, end;  // file virtual addresses, end exclusive
};

// Appends the extents of every source above that intersect [p - before, p + 2) for some p in pairs (the
// ascending addresses of the file's 0f 05 byte pairs: the others can hold no syscall instruction and no
// window before one), sorted by start, duplicates removed (overlaps are kept: each extent is decoded on
// its own), and to *runtime the symbol extents of a sanitizer runtime linked into the file (namespaces
// __sanitizer, __asan, __tsan, __lsan, __msan, __ubsan, __hwasan, __interception): their system calls
// manage the runtime's own memory, and the dispatcher, itself instrumented, must not run inside the
// runtime. Return: false when memory ran out.
bool function_extents(const ElfImage& image, const RawArray<uint64_t>& pairs, uint64_t before, RawArray<Extent>* out,
                      RawArray<Extent>* runtime) noexcept;

}  // namespace umn::detail::patch
