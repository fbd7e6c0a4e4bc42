// seccomp_filter.cc - the classic-BPF program of seccomp_filter.hpp. Layout: check the architecture,
// load the number, then one block per trapped call: `if (nr != N) skip the block; <block>`, where each
// block ends in a return. Integer arguments (flags, advice, prot) are compared on their low 32 bits,
// the bits the kernel reads.
#include "trace/seccomp_filter.hpp"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace umn::trace {

namespace {

using Program = std::vector<sock_filter>;

constexpr uint32_t kX32Bit = 0x40000000;
constexpr uint32_t arg_low(int i) { return offsetof(seccomp_data, args) + 8 * i; }  // little endian

sock_filter stmt(uint16_t code, uint32_t k) { return BPF_STMT(code, k); }
sock_filter jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) { return BPF_JUMP(code, k, jt, jf); }

const sock_filter kTrace = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRACE);
const sock_filter kAllow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);

// if (nr == number) { block } -- the accumulator holds nr on entry and after.
void guarded(Program* p, uint32_t number, const Program& block) {
  p->push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, number, 0, static_cast<uint8_t>(block.size())));
  p->insert(p->end(), block.begin(), block.end());
}

Program always() { return {kTrace}; }

Program mmap_fixed(int flags_arg) {
  return {stmt(BPF_LD | BPF_W | BPF_ABS, arg_low(flags_arg)),
          jump(BPF_JMP | BPF_JSET | BPF_K, MAP_FIXED_NOREPLACE, 2, 0),
          jump(BPF_JMP | BPF_JSET | BPF_K, MAP_FIXED, 0, 1), kTrace, kAllow};
}

// Traced when the argument (its low 32 bits) has any bit of mask set.
Program any_bit(int arg, uint32_t mask) {
  return {stmt(BPF_LD | BPF_W | BPF_ABS, arg_low(arg)), jump(BPF_JMP | BPF_JSET | BPF_K, mask, 0, 1), kTrace, kAllow};
}

// fallocate's modes that take a file's pages away from its mappings: PUNCH_HOLE, COLLAPSE_RANGE,
// ZERO_RANGE, INSERT_RANGE, WRITE_ZEROES (<linux/falloc.h>).
constexpr uint32_t kZappingFallocate = 0x02 | 0x08 | 0x10 | 0x20 | 0x80;

Program discarding_madvise(int advice_arg) {
  const uint32_t discards[] = {MADV_DONTNEED,    MADV_FREE,         MADV_REMOVE, 24 /* DONTNEED_LOCKED */,
                               21 /* PAGEOUT */, 25 /* COLLAPSE */, 102 /* GUARD_INSTALL */};
  const uint8_t n = sizeof(discards) / sizeof(discards[0]);
  Program block = {stmt(BPF_LD | BPF_W | BPF_ABS, arg_low(advice_arg))};
  for (uint8_t i = 0; i < n; ++i)
    block.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, discards[i], static_cast<uint8_t>(n - i), 0));
  block.push_back(kAllow);
  block.push_back(kTrace);
  return block;
}

Program access_losing_mprotect(int prot_arg) {
  return {stmt(BPF_LD | BPF_W | BPF_ABS, arg_low(prot_arg)),
          stmt(BPF_ALU | BPF_AND | BPF_K, PROT_READ | PROT_WRITE | PROT_GROWSDOWN | PROT_GROWSUP),
          jump(BPF_JMP | BPF_JEQ | BPF_K, PROT_READ | PROT_WRITE, 0, 1), kAllow, kTrace};
}

// Loads the number (blocks end in returns, so a skipped block leaves it loaded for the next guard).
void load_nr(Program* p, bool strip_x32) {
  p->push_back(stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  if (strip_x32) p->push_back(stmt(BPF_ALU | BPF_AND | BPF_K, ~kX32Bit));
}

Program x86_64_calls(bool memory_calls) {
  Program p;
  load_nr(&p, true);
  guarded(&p, SYS_execve, always());
  guarded(&p, SYS_execveat, always());
  if (!memory_calls) {
    p.push_back(kAllow);
    return p;
  }
  for (uint32_t nr : {SYS_munmap, SYS_mremap, SYS_brk, SYS_shmdt, SYS_shmat, SYS_process_madvise, SYS_remap_file_pages,
                      SYS_io_uring_setup, SYS_seccomp})
    guarded(&p, nr, always());
  guarded(&p, SYS_mmap, mmap_fixed(3));
  guarded(&p, SYS_madvise, discarding_madvise(2));
  guarded(&p, SYS_mprotect, access_losing_mprotect(2));
  guarded(&p, SYS_pkey_mprotect, access_losing_mprotect(2));
  guarded(&p, SYS_ftruncate, always());
  guarded(&p, SYS_fallocate, any_bit(1, kZappingFallocate));
  p.push_back(kAllow);
  return p;
}

Program i386_calls(bool memory_calls) {
  // arch/x86/entry/syscalls/syscall_32.tbl
  Program p;
  load_nr(&p, false);
  guarded(&p, 11 /* execve */, always());
  guarded(&p, 358 /* execveat */, always());
  if (!memory_calls) {
    p.push_back(kAllow);
    return p;
  }
  for (uint32_t nr : {91u /* munmap */, 163u /* mremap */, 45u /* brk */, 398u /* shmdt */, 397u /* shmat */,
                      440u /* process_madvise */, 90u /* old_mmap */, 117u /* ipc */, 257u /* remap_file_pages */,
                      425u /* io_uring_setup */, 354u /* seccomp */})
    guarded(&p, nr, always());
  guarded(&p, 192 /* mmap2 */, mmap_fixed(3));
  guarded(&p, 219 /* madvise */, discarding_madvise(2));
  guarded(&p, 125 /* mprotect */, access_losing_mprotect(2));
  guarded(&p, 380 /* pkey_mprotect */, access_losing_mprotect(2));
  p.push_back(kAllow);
  return p;
}

Program whole_program(bool memory_calls) {
  Program x86 = x86_64_calls(memory_calls), i386 = i386_calls(memory_calls);
  Program p = {stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
               jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, static_cast<uint8_t>(x86.size()))};
  p.insert(p.end(), x86.begin(), x86.end());
  p.push_back(jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_I386, 0, static_cast<uint8_t>(i386.size())));
  p.insert(p.end(), i386.begin(), i386.end());
  p.push_back(kAllow);
  return p;
}

}  // namespace

int install_seccomp_filter(bool memory_calls) noexcept {
  Program program = whole_program(memory_calls);
  sock_fprog fprog{static_cast<unsigned short>(program.size()), program.data()};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) return -errno;
  return 0;
}

}  // namespace umn::trace
