// scratch.hpp - how the patcher gives back its scratch memory (file images, site and extent lists).
//
// Before the hooks are installed it is unmapped with a raw munmap. Once they are, the process layer
// supplies an unmap that is announced like any other munmap of the process (the dispatcher's path): the
// patcher keeps working after installation (new text, dlopen), and every unmap of the process, umn's own
// included, must be visible to notifiers and to an outside verifier (`umn trace --verify`).
//
// Locking: set_scratch_unmap is called once, by the installer, before on_exec_mapping can run.
// Lifetime: the function lives as long as libumn. Context: unmap_scratch is called from the patcher
// only (not a signal handler). Memory ordering: release store / acquire load of the function.
#pragma once

#include <cstddef>

namespace umn::detail::patch {

using UnmapFn = long (*)(void* addr, size_t length);  // raw result: 0 or -errno

void set_scratch_unmap(UnmapFn fn) noexcept;
// Unmaps [addr, addr + length) of the patcher's own memory. Return: 0 or -errno.
long unmap_scratch(void* addr, size_t length) noexcept;

}  // namespace umn::detail::patch
