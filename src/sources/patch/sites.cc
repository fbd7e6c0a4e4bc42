// sites.cc - decoding a module's functions for syscall sites (contract: sites.hpp).
#include "sources/patch/sites.hpp"

#include <sys/syscall.h>

#include <cstring>
#include <initializer_list>

#include "sources/patch/decoder.hpp"
#include "sources/patch/pair_scan.hpp"
#include "sources/patch/stub_area.hpp"

namespace umn::detail::patch {
namespace {

constexpr long kWatched[] = {SYS_mmap,  SYS_mprotect, SYS_munmap, SYS_brk,
                             SYS_mremap, SYS_madvise, SYS_shmdt,  SYS_shmat, SYS_process_madvise,
                             SYS_pkey_mprotect, SYS_remap_file_pages, SYS_ftruncate, SYS_truncate,
                             SYS_fallocate, SYS_openat, SYS_creat};
// emit_syscall_fn_filter (stub_area.cc) compares at most 16 numbers, each with a short jump to the body.
static_assert(sizeof(kWatched) / sizeof(kWatched[0]) <= 16);
constexpr unsigned char kMovEax[] = {0xb8};              // mov $imm32,%eax
constexpr unsigned char kMovRax[] = {0x48, 0xc7, 0xc0};  // mov $simm32,%rax
constexpr uint64_t kLongestWindow = 7;                   // mov $simm32,%rax: the longest patched window
// glibc's syscall(): argument shuffle, then the load of the sixth argument (the patched window).
constexpr unsigned char kSyscallFnBody[kSyscallFnBodyLength] = {
    0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xd6, 0x48, 0x89, 0xca, 0x4d,
    0x89, 0xc2, 0x4d, 0x89, 0xc8, 0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05};
constexpr unsigned kSyscallFnWindow = 18;  // offset of "mov 8(%rsp),%r9" in the body

// The system call number the instruction at p (size bytes) puts in %rax, or -1.
long immediate_nr(const unsigned char* p, size_t size) noexcept {
  int32_t imm;
  if (size == 5 && p[0] == kMovEax[0]) std::memcpy(&imm, p + 1, 4);
  else if (size == 7 && std::memcmp(p, kMovRax, sizeof(kMovRax)) == 0) std::memcpy(&imm, p + 3, 4);
  else return -1;
  return imm;
}

// A watched site's byte pattern starting at p (at most avail bytes): its window length, or 0.
unsigned pattern_at(const unsigned char* p, uint64_t avail) noexcept {
  for (unsigned length : {5u, 7u})
    if (avail >= length + 2 && std::memcmp(p + length, kSyscallBytes, 2) == 0 && watched(immediate_nr(p, length)))
      return length;
  return 0;
}

SiteKind classify(uintptr_t addr, const unsigned char* file, unsigned length, SiteKind fresh) noexcept {
  const auto* live = reinterpret_cast<const unsigned char*>(addr);
  if (std::memcmp(live, file, length + 2) == 0) return fresh;
  if (live[0] == 0xe9 && std::memcmp(live + length, kSyscallBytes, 2) == 0 && is_umn_stub(jmp_target(addr)))
    return SiteKind::kShared;
  return SiteKind::kForeign;
}

struct ModuleScan {
  const ElfImage& image;
  const RawArray<Extent>& runtime;  // sanitizer runtime functions: never patched
  uint64_t bias;
  unsigned module;
  RawArray<Site>* sites;
  ScanCounts* counts;
};

bool in_runtime(const ModuleScan& scan, uint64_t vaddr) noexcept {
  for (const Extent& e : scan.runtime)
    if (e.start <= vaddr && vaddr < e.end) return true;
  return false;
}

bool add_site(ModuleScan& scan, uint64_t vaddr, const unsigned char* file, unsigned length, SiteKind fresh) noexcept {
  if (in_runtime(scan, vaddr)) return true;  // the sanitizer runtime's own memory management
  const uintptr_t addr = vaddr + scan.bias;
  for (const Site& s : *scan.sites)
    if (s.addr == addr) return true;  // decoded twice (overlapping extents)
  return scan.sites->push({addr, static_cast<uint8_t>(length), classify(addr, file, length, fresh), scan.module, 0});
}

// The decoded syscall at vaddr, after the instruction prev (prev_size bytes at prev_vaddr; 0: none).
bool on_syscall(ModuleScan& scan, uint64_t prev_vaddr, const unsigned char* prev, size_t prev_size) noexcept {
  const long nr = prev_size != 0 ? immediate_nr(prev, prev_size) : -1;
  if (nr >= 0)
    return !watched(nr) || add_site(scan, prev_vaddr, prev, static_cast<unsigned>(prev_size), SiteKind::kFresh);
  const unsigned char* body =
      prev_size == 5 ? scan.image.bytes_at(prev_vaddr - kSyscallFnWindow, sizeof(kSyscallFnBody)) : nullptr;
  if (body != nullptr && std::memcmp(body, kSyscallFnBody, sizeof(kSyscallFnBody)) == 0)
    return add_site(scan, prev_vaddr, prev, 5, SiteKind::kSyscallFn);
  if (!in_runtime(scan, prev_vaddr)) scan.counts->unknown++;
  return true;
}

// The first element of the ascending list at or above v (its size when none).
template <typename T, typename Key>
size_t lower_bound(const RawArray<T>& list, uint64_t v, Key key) noexcept {
  size_t lo = 0, hi = list.size();
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (key(list[mid]) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Where the decoding of the extent may stop: the end of the last 0f 05 byte pair inside it (0: none
// inside). Every syscall instruction is such a pair, so no site lies beyond it (syscalls: ascending).
uint64_t decode_end(const RawArray<uint64_t>& syscalls, const Extent& extent) noexcept {
  const size_t i = lower_bound(syscalls, extent.end - 1, [](uint64_t v) { return v; });
  if (i == 0 || syscalls[i - 1] < extent.start) return 0;
  return syscalls[i - 1] + 2;
}

// Decodes the extent from its start up to end (decode_end()): the instructions are the whole extent's
// up to there, and those past it hold no 0f 05 pair. Bytes that are no instruction end the walk.
bool decode_extent(ModuleScan& scan, Decoder& decoder, const Extent& extent, uint64_t end) noexcept {
  const uint64_t total = end - extent.start;
  const unsigned char* code = scan.image.bytes_at(extent.start, total);
  if (code == nullptr) return true;
  const unsigned char* prev = nullptr;
  uint64_t prev_vaddr = 0;
  unsigned prev_size = 0;
  for (uint64_t offset = 0; offset < total;) {
    const unsigned size = decoder.length(code + offset, total - offset);
    if (size == 0) break;
    const unsigned char* at = code + offset;
    if (size == 2 && std::memcmp(at, kSyscallBytes, 2) == 0 && !on_syscall(scan, prev_vaddr, prev, prev_size)) return false;
    prev = at, prev_size = size, prev_vaddr = extent.start + offset;
    offset += size;
  }
  return true;
}

// The file virtual addresses of every 0f 05 byte pair in the file bytes of the executable segments
// inside [text, text + length) (the mapping is page-rounded; the file bytes may end before it).
bool find_syscall_bytes(const ElfImage& image, uint64_t text, uint64_t length, RawArray<uint64_t>* out) noexcept {
  bool ok = true;
  image.for_each_exec_segment([&](uint64_t vaddr, uint64_t filesz) {
    const uint64_t from = vaddr > text ? vaddr : text;
    const uint64_t to = vaddr + filesz < text + length ? vaddr + filesz : text + length;
    const unsigned char* bytes = to > from ? image.bytes_at(from, to - from) : nullptr;
    if (bytes == nullptr) return;
    ok = ok && for_each_pair(bytes, to - from, [&](uint64_t offset) { return out->push(from + offset); });
  });
  return ok;
}

// The union of the extents (sorted by start), as disjoint ascending ranges.
bool merge_extents(const RawArray<Extent>& extents, RawArray<Extent>* out) noexcept {
  for (const Extent& e : extents) {
    if (out->size() > 0 && e.start <= (*out)[out->size() - 1].end) {
      Extent& last = (*out)[out->size() - 1];
      if (e.end > last.end) last.end = e.end;
    } else if (!out->push(e)) {
      return false;
    }
  }
  return true;
}

bool covered(const RawArray<Extent>& merged, uint64_t vaddr) noexcept {
  const size_t i = lower_bound(merged, vaddr + 1, [](const Extent& e) { return e.start; });
  return i > 0 && vaddr < merged[i - 1].end;
}

// The watched patterns ("mov $nr; syscall" ending at one of the syscalls) that no extent covers.
unsigned count_undecoded(const ElfImage& image, const RawArray<uint64_t>& syscalls, const RawArray<Extent>& merged) noexcept {
  unsigned count = 0;
  for (uint64_t at : syscalls) {
    for (unsigned window : {5u, 7u}) {
      const uint64_t start = at - window;
      const unsigned char* bytes = at >= window ? image.bytes_at(start, window + 2) : nullptr;
      if (bytes != nullptr && pattern_at(bytes, window + 2) == window && !covered(merged, start)) ++count;
    }
  }
  return count;
}

}  // namespace

bool watched(long nr) noexcept {
  for (long w : kWatched)
    if (w == nr) return true;
  return false;
}

bool is_umn_stub(uintptr_t target) noexcept { return is_stub_area(target & ~uintptr_t{4095}); }

uintptr_t jmp_target(uintptr_t site) noexcept {
  int32_t rel;
  std::memcpy(&rel, reinterpret_cast<const void*>(site + 1), sizeof(rel));
  return site + 5 + static_cast<uintptr_t>(static_cast<intptr_t>(rel));
}

bool find_sites(const ElfImage& image, uint64_t text, uint64_t length, uint64_t bias, unsigned module,
                RawArray<Site>* sites, ScanCounts* counts) noexcept {
  RawArray<Extent> extents, runtime, merged;
  RawArray<uint64_t> syscalls;
  if (!find_syscall_bytes(image, text, length, &syscalls)) return false;
  if (syscalls.size() == 0) return true;  // no site and nothing undecoded: the extents are not needed
  if (!function_extents(image, syscalls, kLongestWindow, &extents, &runtime) || !merge_extents(extents, &merged))
    return false;
  Decoder decoder;
  if (!decoder.ready()) return false;
  ModuleScan scan{image, runtime, bias, module, sites, counts};
  for (const Extent& extent : extents) {
    if (extent.start < text || extent.end > text + length) continue;
    const uint64_t end = decode_end(syscalls, extent);
    if (end != 0 && !decode_extent(scan, decoder, extent, end)) return false;
  }
  counts->undecoded += count_undecoded(image, syscalls, merged);
  return true;
}

}  // namespace umn::detail::patch
