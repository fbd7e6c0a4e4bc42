// text_write.cc - the atomic jmp write (contract: text_write.hpp).
#include "sources/patch/text_write.hpp"

#include <sys/mman.h>

#include <cstring>

#include "sources/sys/sys.hpp"

namespace umn::detail::patch {
namespace {

constexpr uintptr_t kCacheLine = 64;
constexpr unsigned kJmpLength = 5;  // e9 rel32
constexpr unsigned kWord = 8;

bool same_line(uintptr_t a, uintptr_t b) noexcept { return (a & ~(kCacheLine - 1)) == (b & ~(kCacheLine - 1)); }

// The 8-byte word to compare-and-swap for a site: it holds the 5 patched bytes and stays inside one
// cache line. Return: its address, or 0 when the 5 bytes themselves straddle a line.
uintptr_t patch_word(uintptr_t site) noexcept {
  for (uintptr_t word = site; word + (kWord - kJmpLength) >= site; --word)
    if (same_line(word, word + kWord - 1)) return word;
  return 0;
}

bool cas8(uintptr_t addr, uint64_t expected, uint64_t desired) noexcept {
  unsigned char ok;
  asm volatile("lock cmpxchgq %3, (%2)\n\tsete %0"
               : "=q"(ok), "+a"(expected)
               : "r"(addr), "r"(desired)
               : "memory", "cc");
  return ok != 0;
}

}  // namespace

bool window_atomic(uintptr_t site) noexcept { return patch_word(site) != 0; }

int write_jmp(uintptr_t site, const unsigned char* expected, uintptr_t target, int exec_prot) noexcept {
  const uintptr_t word_addr = patch_word(site);
  const size_t at = site - word_addr;
  unsigned char old_bytes[kWord], new_bytes[kWord];
  std::memcpy(old_bytes, reinterpret_cast<const void*>(word_addr), kWord);
  std::memcpy(old_bytes + at, expected, kJmpLength);  // compare against what the decoder saw
  std::memcpy(new_bytes, old_bytes, kWord);
  new_bytes[at] = 0xe9;
  const auto rel = static_cast<int32_t>(static_cast<intptr_t>(target - (site + kJmpLength)));
  std::memcpy(new_bytes + at + 1, &rel, 4);
  uint64_t old_word, new_word;
  std::memcpy(&old_word, old_bytes, kWord);
  std::memcpy(&new_word, new_bytes, kWord);
  void* page = reinterpret_cast<void*>(sys::page_down(word_addr));
  // Keep exec while writable: other threads may be running this very page.
  if (long err = sys::mprotect(page, sys::kPageSize, PROT_READ | PROT_WRITE | PROT_EXEC); sys::failed(err))
    return static_cast<int>(err);
  const bool ok = cas8(word_addr, old_word, new_word);
  sys::mprotect(page, sys::kPageSize, exec_prot);
  return ok ? 1 : 0;
}

}  // namespace umn::detail::patch
