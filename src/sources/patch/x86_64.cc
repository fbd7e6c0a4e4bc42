// x86_64.cc - finds and patches the syscall sites (contract and rationale: x86_64.hpp).
//
// Algorithm:
//   1. Read /proc/self/maps: the executable segments of libc.so.6 and ld-linux-x86-64.so.2, or of the
//      executable itself when no libc.so is mapped (static link).
//   2. Scan each segment for "b8 nr 00 00 00 0f 05" with nr in the watched set, for glibc's syscall()
//      body, and for "e9 rel32 0f 05" whose target page starts with a umn stub header (another copy).
//   3. If another copy owns sites: patch nothing, return its registry (the caller joins it).
//   4. Else, per module: map one page within +-2 GiB of the text (MAP_FIXED_NOREPLACE, searching down
//      then up), write the header and one stub per site, make it read+exec, then patch every site with
//      a locked 8-byte cmpxchg under a temporary read+write+exec protection of its text page.
#include "sources/patch/x86_64.hpp"

#include <sys/mman.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "sources/sys/sys.hpp"

namespace umn::detail::patch {
namespace {

constexpr char kStubMagic[8] = {'U', 'M', 'N', 'S', 'T', 'U', 'B', '1'};
constexpr unsigned kMaxModules = 4;
constexpr unsigned kMaxSites = 64;
constexpr long kWatched[] = {SYS_mmap,  SYS_mprotect, SYS_munmap, SYS_brk,
                             SYS_mremap, SYS_madvise, SYS_shmdt,  SYS_shmat, SYS_process_madvise};

// The body of glibc's syscall(): argument shuffle, then the load of the sixth argument we patch.
constexpr unsigned char kSyscallFnBody[] = {0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xd6,
                                            0x48, 0x89, 0xca, 0x4d, 0x89, 0xc2, 0x4d, 0x89, 0xc8,
                                            0x4c, 0x8b, 0x4c, 0x24, 0x08, 0x0f, 0x05};
constexpr unsigned kSyscallFnSiteOffset = 18;  // "mov 8(%rsp),%r9" right before the syscall

struct StubPageHeader {
  char magic[8];
  Registry* registry;
};

struct Module {
  uint64_t start, end;  // the executable segment
  unsigned prot;
  uint64_t offset;      // file offset of start
  char path[256];
};

enum class SiteKind { kFresh, kSyscallFn, kShared, kForeign };

struct Site {
  uintptr_t addr;
  unsigned module;
  SiteKind kind;
  unsigned stub_offset;  // within the module's stub page, once emitted
};

bool ends_with(const char* path, const char* name) noexcept {
  const char* slash = std::strrchr(path, '/');
  const char* base = slash != nullptr ? slash + 1 : path;
  return std::strncmp(base, name, std::strlen(name)) == 0;
}

bool is_libc(const char* path) noexcept { return ends_with(path, "libc.so") || ends_with(path, "libc-2."); }
bool is_loader(const char* path) noexcept { return ends_with(path, "ld-linux"); }
// libc.so and ld.so: every site is in a leaf system call wrapper without vector code (x86_64.hpp,
// "Vector state"). A static executable's text may hold the pattern anywhere, so its stubs save the state.
bool sites_vector_free(const Module& module) noexcept { return is_libc(module.path) || is_loader(module.path); }

unsigned find_modules(Module* modules) noexcept {
  char exe[512];
  long n = sys::call(SYS_readlink, reinterpret_cast<long>("/proc/self/exe"), reinterpret_cast<long>(exe),
                     sizeof(exe) - 1);
  exe[n > 0 ? n : 0] = '\0';
  Module exe_text{};
  bool have_libc = false;
  auto make = [](const sys::MapEntry& entry) {
    Module module{entry.start, entry.end, entry.prot, entry.offset, {}};
    std::strncpy(module.path, entry.path, sizeof(module.path) - 1);
    return module;
  };
  unsigned count = 0;
  sys::MapsReader maps;
  sys::MapEntry entry;
  while (maps.next(&entry)) {
    if ((entry.prot & sys::kMapExec) == 0 || entry.path[0] != '/') continue;
    if (is_libc(entry.path) || is_loader(entry.path)) {
      have_libc |= is_libc(entry.path);
      // Patching splits the text mapping (mprotect of single pages): glue the pieces back together.
      if (count > 0 && modules[count - 1].end == entry.start && std::strcmp(modules[count - 1].path, entry.path) == 0)
        modules[count - 1].end = entry.end;
      else if (count < kMaxModules)
        modules[count++] = make(entry);
    } else if (std::strcmp(entry.path, exe) == 0) {
      if (exe_text.start == 0) exe_text = make(entry);
      else if (exe_text.end == entry.start) exe_text.end = entry.end;
    }
  }
  if (!have_libc && exe_text.start != 0 && count < kMaxModules) modules[count++] = exe_text;  // static
  return count;
}

bool watched(long nr) noexcept {
  for (long w : kWatched)
    if (w == nr) return true;
  return false;
}

bool is_umn_stub(uintptr_t target) noexcept {
  auto* header = reinterpret_cast<const StubPageHeader*>(target & ~uintptr_t{4095});
  return std::memcmp(header->magic, kStubMagic, sizeof(kStubMagic)) == 0;
}

uintptr_t jmp_target(uintptr_t site) noexcept {
  int32_t rel;
  std::memcpy(&rel, reinterpret_cast<const void*>(site + 1), sizeof(rel));
  return site + 5 + static_cast<uintptr_t>(static_cast<intptr_t>(rel));
}

// Step 2 for one module: the patterns are looked for in the file on disk, so that a site another library
// already patched in memory is still found (and then classified by what memory holds). Return: the
// number of sites appended. Not instrumented by TSan: the file copy is mapped with a raw mmap TSan does
// not see, so its shadow may still hold another thread's accesses to a mapping that used the same
// addresses before a raw munmap (a false race report, seen in programs_patch_race).
__attribute__((no_sanitize("thread"))) bool same_bytes(const unsigned char* a, const unsigned char* b,
                                                       size_t n) noexcept {
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

__attribute__((no_sanitize("thread"))) unsigned scan(const Module& module, unsigned index, Site* sites,
                                                      unsigned capacity) noexcept {
  long fd = sys::open_read(module.path);
  if (sys::failed(fd)) return 0;
  const size_t size = module.end - module.start;
  long file = sys::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, static_cast<int>(fd), static_cast<long>(module.offset));
  sys::close(static_cast<int>(fd));
  if (sys::failed(file)) return 0;
  const auto* text = reinterpret_cast<const unsigned char*>(file);
  const auto* live = reinterpret_cast<const unsigned char*>(module.start);
  unsigned count = 0;
  for (size_t i = 0; i + 7 <= size && count < capacity; ++i) {
    if (text[i + 5] != 0x0f || text[i + 6] != 0x05) continue;
    SiteKind kind;
    // mov $imm32,%eax with imm32 < 65536 (process_madvise is 440)
    if (text[i] == 0xb8 && text[i + 3] == 0 && text[i + 4] == 0 && watched(text[i + 1] | text[i + 2] << 8)) {
      kind = SiteKind::kFresh;
    } else if (i >= kSyscallFnSiteOffset &&
               same_bytes(text + i - kSyscallFnSiteOffset, kSyscallFnBody, sizeof(kSyscallFnBody))) {
      kind = SiteKind::kSyscallFn;
    } else {
      continue;
    }
    const uintptr_t site = module.start + i;
    if (!same_bytes(live + i, text + i, 7)) {
      kind = live[i] == 0xe9 && live[i + 5] == 0x0f && is_umn_stub(jmp_target(site)) ? SiteKind::kShared
                                                                                     : SiteKind::kForeign;
    }
    sites[count++] = {site, index, kind, 0};
  }
  sys::munmap(reinterpret_cast<void*>(file), size);
  return count;
}

// A tiny machine-code emitter for the stubs.
class Emitter {
 public:
  explicit Emitter(unsigned char* at) : p_(at) {}
  void bytes(std::initializer_list<unsigned char> list) {
    for (unsigned char b : list) *p_++ = b;
  }
  void raw(const void* src, size_t n) {
    std::memcpy(p_, src, n);
    p_ += n;
  }
  void imm64(uint64_t v) { raw(&v, 8); }
  void jmp(uintptr_t target) {  // e9 rel32; the caller guarantees the distance
    *p_++ = 0xe9;
    int32_t rel = static_cast<int32_t>(static_cast<intptr_t>(target - (reinterpret_cast<uintptr_t>(p_) + 4)));
    raw(&rel, 4);
  }
  unsigned char* here() const { return p_; }

 private:
  unsigned char* p_;
};

// The call into the dispatcher, entered with %rax = nr and the kernel argument registers; jumps back to
// `resume` with %rax = the raw result. Saves what a syscall preserves among the general registers (all
// but rax, rcx, r11) and skips the red zone of the interrupted function. With save_vector it also saves
// the x87/SSE state (fxsave64, ~250 cycles of the ~400 a hooked call cost with it): needed only where a
// vector register may be live across the site (see "Vector state" in x86_64.hpp).
void emit_call_body(Emitter& e, DispatchFn dispatch, uintptr_t resume, bool save_vector) {
  e.bytes({0x49, 0x89, 0xe3});                          // mov %rsp,%r11        (site rsp, 8th arg)
  e.bytes({0x48, 0x8d, 0x64, 0x24, 0x80});              // lea -128(%rsp),%rsp  (red zone)
  e.bytes({0x55, 0x48, 0x89, 0xe5});                    // push %rbp; mov %rsp,%rbp
  e.bytes({0x48, 0x83, 0xe4, 0xf0});                    // and $-16,%rsp
  if (save_vector) {
    e.bytes({0x48, 0x81, 0xec, 0x00, 0x02, 0x00, 0x00});  // sub $512,%rsp
    e.bytes({0x48, 0x0f, 0xae, 0x04, 0x24});              // fxsave64 (%rsp)
  }
  e.bytes({0x57, 0x56, 0x52, 0x41, 0x50, 0x41, 0x51, 0x41, 0x52});  // push rdi rsi rdx r8 r9 r10
  e.bytes({0x41, 0x53, 0x50});                          // push %r11 (8th); push %rax (7th: nr)
  e.bytes({0x4c, 0x89, 0xd1});                          // mov %r10,%rcx        (4th argument)
  e.bytes({0x48, 0xb8});                                // movabs $dispatch,%rax
  e.imm64(reinterpret_cast<uint64_t>(dispatch));
  e.bytes({0xff, 0xd0});                                // call *%rax
  e.bytes({0x48, 0x83, 0xc4, 0x10});                    // add $16,%rsp
  e.bytes({0x41, 0x5a, 0x41, 0x59, 0x41, 0x58, 0x5a, 0x5e, 0x5f});  // pop r10 r9 r8 rdx rsi rdi
  if (save_vector) e.bytes({0x48, 0x0f, 0xae, 0x0c, 0x24});  // fxrstor64 (%rsp)
  e.bytes({0x48, 0x89, 0xec, 0x5d});                    // mov %rbp,%rsp; pop %rbp
  e.bytes({0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00});  // lea 128(%rsp),%rsp
  e.jmp(resume);
}

// One stub for one site. Return: its entry.
unsigned char* emit_stub(Emitter& e, const Site& site, DispatchFn dispatch, bool save_vector) {
  unsigned char* entry = e.here();
  const uintptr_t resume = site.addr + 7;  // behind the syscall instruction
  e.raw(reinterpret_cast<const void*>(site.addr), 5);  // the displaced instruction, position-independent
  if (site.kind == SiteKind::kSyscallFn) {
    // syscall(): only the watched numbers go to the dispatcher; everything else (clone, vfork, exit...)
    // runs the real syscall instruction right here, with the caller's stack untouched.
    unsigned char* fixups[sizeof(kWatched) / sizeof(kWatched[0])];
    unsigned n = 0;
    for (long nr : kWatched) {
      if (nr < 128) {
        e.bytes({0x48, 0x83, 0xf8, static_cast<unsigned char>(nr)});  // cmp $nr,%rax (imm8)
      } else {
        const auto imm = static_cast<uint32_t>(nr);
        e.bytes({0x48, 0x3d});  // cmp $nr,%rax (imm32)
        e.raw(&imm, 4);
      }
      fixups[n++] = e.here();
      e.bytes({0x74, 0x00});                                         // je body (patched below)
    }
    e.bytes({0x0f, 0x05});  // syscall
    e.jmp(resume);
    unsigned char* body = e.here();
    for (unsigned i = 0; i < n; ++i) fixups[i][1] = static_cast<unsigned char>(body - (fixups[i] + 2));
  }
  emit_call_body(e, dispatch, resume, save_vector);
  return entry;
}

// Maps a page within rel32 reach of [start, end). Return: the page or nullptr.
unsigned char* map_near(uint64_t start, uint64_t end) noexcept {
  constexpr uint64_t kStep = 1 << 20;
  constexpr uint64_t kReach = (1ull << 31) - (1ull << 24);
  for (uint64_t distance = kStep; distance < kReach; distance += kStep) {
    for (int dir = 0; dir < 2; ++dir) {
      uint64_t hint = dir == 0 ? (start > distance ? start - distance : 0) : end + distance;
      if (hint == 0 || (dir == 0 ? end - hint : hint + 4096 - start) >= kReach) continue;
      long got = sys::mmap(reinterpret_cast<void*>(hint), 4096, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (!sys::failed(got)) {
        if (static_cast<uint64_t>(got) == hint) return reinterpret_cast<unsigned char*>(got);
        sys::munmap(reinterpret_cast<void*>(got), 4096);  // old kernel ignoring NOREPLACE
      }
    }
  }
  return nullptr;
}

// One locked 8-byte compare-and-swap; the window never crosses a cache line (checked by the caller).
bool cas8(uintptr_t addr, uint64_t expected, uint64_t desired) noexcept {
  unsigned char ok;
  asm volatile("lock cmpxchgq %3, (%2)\n\tsete %0"
               : "=q"(ok), "+a"(expected)
               : "r"(addr), "r"(desired)
               : "memory", "cc");
  return ok != 0;
}

// The 8-byte word to compare-and-swap for a site: it must hold the 5 patched bytes and stay inside one
// cache line (bytes around them are rewritten with their own values). Return: its address, or 0 when
// the 5 bytes themselves straddle a cache line (no atomic write can cover them).
uintptr_t patch_word(uintptr_t site) noexcept {
  for (uintptr_t word = site; word + 3 >= site && word + 8 >= site + 5; --word)
    if ((word & ~uintptr_t{63}) == ((word + 7) & ~uintptr_t{63})) return word;
  return 0;
}

bool patch_site(const Site& site, const Module& module, unsigned char* stub) noexcept {
  const uintptr_t word_addr = patch_word(site.addr);
  const size_t at = site.addr - word_addr;
  uint64_t old_word;
  std::memcpy(&old_word, reinterpret_cast<const void*>(word_addr), 8);
  unsigned char word[8];
  std::memcpy(word, &old_word, 8);
  word[at] = 0xe9;
  int32_t rel = static_cast<int32_t>(static_cast<intptr_t>(reinterpret_cast<uintptr_t>(stub) - (site.addr + 5)));
  std::memcpy(word + at + 1, &rel, 4);
  uint64_t new_word;
  std::memcpy(&new_word, word, 8);
  void* page = reinterpret_cast<void*>(sys::page_down(word_addr));
  // Keep exec while writable: other threads may be running this very page.
  if (sys::failed(sys::mprotect(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC))) return false;
  bool ok = cas8(word_addr, old_word, new_word);
  int prot = ((module.prot & sys::kMapRead) != 0 ? PROT_READ : 0) | PROT_EXEC;
  sys::mprotect(page, 4096, prot);
  return ok;
}

bool window_safe(uintptr_t site) noexcept { return patch_word(site) != 0; }

}  // namespace

InstallResult install(DispatchFn dispatch, Registry* own) noexcept {
  InstallResult result;
  Module modules[kMaxModules];
  result.modules = find_modules(modules);
  static Site sites[kMaxSites];  // install is serialised by the caller
  unsigned count = 0;
  for (unsigned m = 0; m < result.modules; ++m) count += scan(modules[m], m, sites + count, kMaxSites - count);
  for (unsigned i = 0; i < count; ++i) {
    if (sites[i].kind == SiteKind::kForeign) result.foreign++;
    if (sites[i].kind != SiteKind::kShared) continue;
    result.shared++;
    uintptr_t target = jmp_target(sites[i].addr);
    result.existing = reinterpret_cast<const StubPageHeader*>(target & ~uintptr_t{4095})->registry;
    if (reinterpret_cast<const unsigned char*>(target)[0] == 0x4c) result.syscall_fn = true;  // mov ..,%r9
  }
  if (result.shared > 0) return result;
  for (unsigned m = 0; m < result.modules; ++m) {
    unsigned char* page = nullptr;
    Emitter emitter(nullptr);
    for (unsigned i = 0; i < count; ++i) {
      Site& site = sites[i];
      if (site.module != m || site.kind == SiteKind::kForeign) continue;
      if (!window_safe(site.addr)) {
        result.unsafe++;
        continue;
      }
      if (page == nullptr) {
        page = map_near(modules[m].start, modules[m].end);
        if (page == nullptr) {
          result.error = -ENOMEM;
          break;
        }
        StubPageHeader header{};
        std::memcpy(header.magic, kStubMagic, sizeof(kStubMagic));
        header.registry = own;
        std::memcpy(page, &header, sizeof(header));
        emitter = Emitter(page + 64);
      }
      if (emitter.here() + 256 > page + 4096) {
        result.unsafe++;  // out of stub space: cannot happen with glibc's dozen sites
        continue;
      }
      site.stub_offset = static_cast<unsigned>(emit_stub(emitter, site, dispatch, !sites_vector_free(modules[m])) - page);
    }
    if (page == nullptr) continue;
    if (sys::failed(sys::mprotect(page, 4096, PROT_READ | PROT_EXEC))) {
      result.error = -EACCES;
      continue;
    }
    for (unsigned i = 0; i < count; ++i) {
      if (sites[i].module != m || sites[i].stub_offset == 0) continue;
      unsigned char* stub = page + sites[i].stub_offset;
      if (patch_site(sites[i], modules[m], stub)) {
        result.patched++;
        if (sites[i].kind == SiteKind::kSyscallFn) result.syscall_fn = true;
      } else {
        result.foreign++;  // changed under us: someone else patched it
      }
    }
  }
  return result;
}

}  // namespace umn::detail::patch
