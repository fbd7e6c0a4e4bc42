// inline_sites.hpp - the assembly functions of inline_sites.cc.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" {
long umn_test_munmap_eax(void* addr, size_t len);               // b8 0b 00 00 00; syscall
long umn_test_munmap_rax(void* addr, size_t len);               // 48 c7 c0 0b 00 00 00; syscall
long umn_test_madvise_rax(void* addr, size_t len, int advice);  // 48 c7 c0 1c 00 00 00; syscall
uint64_t umn_test_hidden_pattern(void);                         // movabs $0x00050f0000000bb8,%rax
}
