// pair_scan.hpp - finding every 0f 05 byte pair (the syscall instruction's encoding) in a module's text:
// the patcher decodes only the functions that hold one (sites.cc), so this scan reads all the text of
// every module at installation (~7 MB for a small C++ program) and must be cheap.
//
// Locking: none. Lifetime: nothing is kept. Context: any (no allocation, no system call). Memory
// ordering: none.
#pragma once

#include <emmintrin.h>

#include <cstdint>

namespace umn::detail::patch {

inline constexpr unsigned char kSyscallBytes[] = {0x0f, 0x05};

// Calls fn(offset) for the offset of every 0f 05 pair in [bytes, bytes + size), ascending, until fn
// returns false; then returns false. Compares 16 pair positions at a time (SSE2, which every x86-64 CPU
// has): restarting memchr at each 05 byte of code (~5000 per MB) took 1.6-2.3x as long on libc,
// libstdc++ and libm (bench/pair_scan_bench.cc measures libc).
template <typename Fn>
bool for_each_pair(const unsigned char* bytes, uint64_t size, Fn fn) noexcept {
  const __m128i first = _mm_set1_epi8(static_cast<char>(kSyscallBytes[0]));
  const __m128i second = _mm_set1_epi8(static_cast<char>(kSyscallBytes[1]));
  uint64_t i = 0;
  for (; i + 17 <= size; i += 16) {  // the pairs starting at i .. i + 15: bytes i .. i + 16
    const __m128i at = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + i));
    const __m128i next = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + i + 1));
    const __m128i pairs = _mm_and_si128(_mm_cmpeq_epi8(at, first), _mm_cmpeq_epi8(next, second));
    for (auto mask = static_cast<unsigned>(_mm_movemask_epi8(pairs)); mask != 0; mask &= mask - 1)
      if (!fn(i + static_cast<unsigned>(__builtin_ctz(mask)))) return false;
  }
  for (; i + 1 < size; ++i)
    if (bytes[i] == kSyscallBytes[0] && bytes[i + 1] == kSyscallBytes[1] && !fn(i)) return false;
  return true;
}

}  // namespace umn::detail::patch
