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

// The five bytes of "jmp target" placed at site.
void jmp_bytes(uintptr_t site, uintptr_t target, unsigned char* out) noexcept {
  out[0] = 0xe9;
  const auto rel = static_cast<int32_t>(static_cast<intptr_t>(target - (site + kJmpLength)));
  std::memcpy(out + 1, &rel, 4);
}

// Keep exec while writable: other threads may be running these very pages.
long make_writable(uintptr_t first, uint64_t length) noexcept {
  return sys::mprotect(reinterpret_cast<void*>(first), length, PROT_READ | PROT_WRITE | PROT_EXEC);
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
  jmp_bytes(site, target, new_bytes + at);
  uint64_t old_word, new_word;
  std::memcpy(&old_word, old_bytes, kWord);
  std::memcpy(&new_word, new_bytes, kWord);
  const uintptr_t page = sys::page_down(word_addr);
  if (long err = make_writable(page, sys::kPageSize); sys::failed(err)) return static_cast<int>(err);
  const bool ok = cas8(word_addr, old_word, new_word);
  sys::mprotect(reinterpret_cast<void*>(page), sys::kPageSize, exec_prot);
  return ok ? 1 : 0;
}

int write_jmp_alone(uintptr_t site, const unsigned char* expected, uintptr_t target, int exec_prot) noexcept {
  auto* window = reinterpret_cast<unsigned char*>(site);
  if (std::memcmp(window, expected, kJmpLength) != 0) return 0;
  unsigned char new_bytes[kJmpLength];
  jmp_bytes(site, target, new_bytes);
  const uintptr_t first = sys::page_down(site), length = sys::page_up(site + kJmpLength) - first;
  if (long err = make_writable(first, length); sys::failed(err)) return static_cast<int>(err);
  // volatile: five byte stores the compiler may not elide or merge into anything wider than it likes;
  // no other thread runs (the precondition), so their order and width do not matter.
  for (unsigned i = 0; i < kJmpLength; ++i) static_cast<volatile unsigned char*>(window)[i] = new_bytes[i];
  sys::mprotect(reinterpret_cast<void*>(first), length, exec_prot);
  return 1;
}

}  // namespace umn::detail::patch
