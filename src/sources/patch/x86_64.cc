// x86_64.cc - finds and patches the syscall sites of every executable mapping (contract and rationale:
// x86_64.hpp).
//
// Algorithm (install):
//   1. Refuse at once under a W^X policy that forbids making memory executable (PR_GET_MDWE).
//   2. Read /proc/self/maps: every file-backed executable mapping is a module (pieces of one file glued).
//   3. Per module: decode its functions (sites.hpp) and classify each site by what memory holds.
//   4. If another umn copy owns sites: patch nothing, return its registry (the caller joins it).
//   5. Build every module's stub area (stub_area.hpp); on any failure patch nothing and fail.
//   6. Patch every site (text_write.hpp).
// on_exec_mapping runs steps 3, 5 and 6 for one new mapping.
#include "sources/patch/x86_64.hpp"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <initializer_list>

#include "sources/patch/elf_image.hpp"
#include "sources/patch/sites.hpp"
#include "sources/patch/sole_thread.hpp"
#include "sources/patch/text_write.hpp"
#include "sources/patch/tsan_runtime.hpp"
#include "sources/sys/sys.hpp"

namespace umn::detail::patch {
namespace {

constexpr unsigned kMaxModules = 512;
constexpr int kPrGetMdwe = 66, kMdweRefuseExecGain = 1;  // <linux/prctl.h>, Linux 6.3

struct Module {
  uint64_t start, end;  // the executable text in memory
  uint64_t offset;      // file offset of start
  int prot;             // PROT_* of the text (restored after each write)
  bool wrappers;        // libc.so / ld.so: leaf wrappers only (x86_64.hpp, "Vector state and stacks")
  char path[256];
};

// ---- totals ----------------------------------------------------------------------------------------
// Read by umn_process_hooks_get_info from any thread. Relaxed: statistics that order nothing, each
// counter read on its own.

struct Totals {
  std::atomic<unsigned> patched{0}, shared{0}, foreign{0}, unsafe{0}, unknown{0}, undecoded{0}, failed{0},
      modules{0}, unscanned{0};
  std::atomic<bool> syscall_fn{false};
  std::atomic<int> error{0};
};
Totals g_totals;
DispatchFn g_dispatch = nullptr;  // set by install before g_installed
Registry* g_own = nullptr;
std::atomic<bool> g_installed{false};  // release by install; acquire by on_exec_mapping
std::atomic<bool> g_exec_lock{false};  // serialises on_exec_mapping: acquire exchange, release store
unsigned g_next_module = 0;           // guarded by the caller of install / g_exec_lock

void add_totals(const InstallResult& r) noexcept {
  g_totals.patched.fetch_add(r.patched, std::memory_order_relaxed);
  g_totals.shared.fetch_add(r.shared, std::memory_order_relaxed);
  g_totals.foreign.fetch_add(r.foreign, std::memory_order_relaxed);
  g_totals.unsafe.fetch_add(r.unsafe, std::memory_order_relaxed);
  g_totals.unknown.fetch_add(r.unknown, std::memory_order_relaxed);
  g_totals.undecoded.fetch_add(r.undecoded, std::memory_order_relaxed);
  g_totals.failed.fetch_add(r.failed, std::memory_order_relaxed);
  g_totals.modules.fetch_add(r.modules, std::memory_order_relaxed);
  g_totals.unscanned.fetch_add(r.unscanned, std::memory_order_relaxed);
  if (r.syscall_fn) g_totals.syscall_fn.store(true, std::memory_order_relaxed);
  int none = 0;
  if (r.error != 0) g_totals.error.compare_exchange_strong(none, r.error, std::memory_order_relaxed);
}

// ---- modules ----------------------------------------------------------------------------------------

bool base_starts_with(const char* path, const char* name) noexcept {
  const char* slash = std::strrchr(path, '/');
  const char* base = slash != nullptr ? slash + 1 : path;
  return std::strncmp(base, name, std::strlen(name)) == 0;
}

// A sanitizer runtime (gcc links them as shared objects): its system calls manage its own memory, and
// the dispatcher, itself instrumented, must not run inside it (extents.hpp; docs/process.md).
bool is_sanitizer_runtime(const char* path) noexcept {
  for (const char* name : {"libasan.so", "libtsan.so", "liblsan.so", "libubsan.so", "libhwasan.so", "libclang_rt."})
    if (base_starts_with(path, name)) return true;
  return false;
}

bool is_wrapper_module(const char* path) noexcept {
  return base_starts_with(path, "libc.so") || base_starts_with(path, "libc-2.") || base_starts_with(path, "ld-linux");
}

int prot_of(unsigned map_prot) noexcept {
  return ((map_prot & sys::kMapRead) != 0 ? PROT_READ : 0) | PROT_EXEC;
}

// Step 2. Return: the number of modules; *unscanned counts executable mappings that are not files.
unsigned find_modules(Module* modules, unsigned* unscanned) noexcept {
  unsigned count = 0;
  sys::MapsReader maps;
  sys::MapEntry entry;
  while (maps.next(&entry)) {
    if ((entry.prot & sys::kMapExec) == 0) continue;
    if (is_sanitizer_runtime(entry.path)) continue;
    if (entry.path[0] != '/') {
      // [vdso]/[vsyscall]: kernel text without watched calls; umn's own stub areas; anything else is
      // anonymous executable memory (JIT code) that no file describes.
      if (entry.path[0] != '[' && !is_stub_area(entry.start)) ++*unscanned;
      continue;
    }
    Module& last = modules[count > 0 ? count - 1 : 0];
    if (count > 0 && last.end == entry.start && std::strcmp(last.path, entry.path) == 0) {
      last.end = entry.end;  // patching splits the text mapping (mprotect of single pages)
      continue;
    }
    if (count == kMaxModules) {
      ++*unscanned;
      continue;
    }
    Module& m = modules[count++];
    m = {entry.start, entry.end, entry.offset, prot_of(entry.prot), is_wrapper_module(entry.path), {}};
    std::strncpy(m.path, entry.path, sizeof(m.path) - 1);
  }
  return count;
}

// ---- scanning ---------------------------------------------------------------------------------------

void count_site(const Site& site, InstallResult* r) noexcept {
  if (site.kind == SiteKind::kForeign) r->foreign++;
  if (site.kind == SiteKind::kUnsafe) r->unsafe++;
  if (site.kind != SiteKind::kShared) return;
  r->shared++;
  const uintptr_t target = jmp_target(site.addr);
  r->existing = stub_area_owner(target);
  if (is_syscall_fn_stub(target)) r->syscall_fn = true;
}

// Step 3 for the module mapped from fd. alone: the caller holds a SoleThreadScope that found this thread
// alone (a window straddling a cache line is then patchable). Return: false when it could not be scanned.
bool scan_module(int fd, uint64_t start, uint64_t end, uint64_t offset, unsigned index, bool alone,
                 RawArray<Site>* sites, InstallResult* r) noexcept {
  ElfImage image;
  if (!image.open(fd)) return false;
  const uint64_t vaddr = image.vaddr_of_offset(offset);
  if (vaddr == 0 && offset != 0) return false;
  ScanCounts counts;
  const size_t first = sites->size();
  if (!find_sites(image, vaddr, end - start, start - vaddr, index, sites, &counts)) return false;
  r->unknown += counts.unknown;
  r->undecoded += counts.undecoded;
  for (size_t i = first; i < sites->size(); ++i) {
    Site& site = (*sites)[i];
    const bool fresh = site.kind == SiteKind::kFresh || site.kind == SiteKind::kSyscallFn;
    if (fresh && !alone && !window_atomic(site.addr)) site.kind = SiteKind::kUnsafe;
    count_site(site, r);
  }
  return true;
}

bool scan_path(const Module& m, unsigned index, bool alone, RawArray<Site>* sites, InstallResult* r) noexcept {
  long fd = sys::open_read(m.path);
  if (sys::failed(fd)) return false;
  const bool ok = scan_module(static_cast<int>(fd), m.start, m.end, m.offset, index, alone, sites, r);
  sys::close(static_cast<int>(fd));
  return ok;
}

// ---- patching ---------------------------------------------------------------------------------------

bool patchable(const Site& site) noexcept { return site.kind == SiteKind::kFresh || site.kind == SiteKind::kSyscallFn; }

unsigned patchable_in(const RawArray<Site>& sites, unsigned m) noexcept {
  unsigned n = 0;
  for (const Site& s : sites) n += s.module == m && patchable(s);
  return n;
}

// Step 5 for one module. Return: the area or -errno.
long area_for(RawArray<Site>& sites, unsigned m, uint64_t start, uint64_t end, bool wrappers) noexcept {
  const StubOptions options{g_dispatch, g_own, !wrappers, !wrappers};
  return build_stub_area(sites, m, start, end, options);
}

// Step 6 for the sites of module m whose stubs are in area. A window straddling a cache line is patchable
// only when the scan found this thread alone, under the SoleThreadScope that still holds.
void patch_module(const RawArray<Site>& sites, unsigned m, uintptr_t area, int prot, InstallResult* r) noexcept {
  for (const Site& site : sites) {
    if (site.module != m || !patchable(site)) continue;
    const uintptr_t stub = area + site.stub_offset;
    // The stub starts with the displaced instruction: the bytes the window must still hold.
    const auto* expected = reinterpret_cast<const unsigned char*>(stub);
    const int written = window_atomic(site.addr) ? write_jmp(site.addr, expected, stub, prot)
                                                 : write_jmp_alone(site.addr, expected, stub, prot);
    if (written == 1) {
      r->patched++;
      if (site.kind == SiteKind::kSyscallFn) r->syscall_fn = true;
    } else if (written == 0) {
      r->foreign++;  // changed under us: someone else patched it
    } else {
      r->failed++;
      if (r->error == 0) r->error = written;
    }
  }
}

bool mdwe_refuses_exec() noexcept {
  long flags = sys::call(SYS_prctl, kPrGetMdwe, 0, 0, 0, 0);
  return !sys::failed(flags) && (flags & kMdweRefuseExecGain) != 0;
}

unsigned count_patchable(const RawArray<Site>& sites) noexcept {
  unsigned n = 0;
  for (const Site& s : sites) n += patchable(s);
  return n;
}

// Steps 5 and 6 for all modules.
void patch_all(RawArray<Site>& sites, const Module* modules, unsigned count, InstallResult* r) noexcept {
  uintptr_t areas[kMaxModules] = {};
  for (unsigned m = 0; m < count; ++m) {
    if (patchable_in(sites, m) == 0) continue;
    long area = area_for(sites, m, modules[m].start, modules[m].end, modules[m].wrappers);
    if (sys::failed(area)) {
      r->error = static_cast<int>(area);
      r->failed = count_patchable(sites);
      return;  // nothing patched yet
    }
    areas[m] = static_cast<uintptr_t>(area);
  }
  for (unsigned m = 0; m < count; ++m)
    if (areas[m] != 0) patch_module(sites, m, areas[m], modules[m].prot, r);
}

struct SpinGuard {
  SpinGuard() noexcept {
    while (g_exec_lock.exchange(true, std::memory_order_acquire)) sys::call(SYS_sched_yield);
  }
  ~SpinGuard() { g_exec_lock.store(false, std::memory_order_release); }
};

[[gnu::tls_model("initial-exec")]] thread_local bool t_in_exec_mapping = false;

void reset_in_child() noexcept { g_exec_lock.store(false, std::memory_order_relaxed); }

}  // namespace

InstallResult install(DispatchFn dispatch, Registry* own) noexcept {
  // Files and scratch memory come from raw mmap, which ThreadSanitizer cannot see: their addresses may
  // still carry shadow of memory unmapped behind its back (raw syscall(SYS_munmap)), a false report.
  TsanIgnoreScope tsan_ignore;
  InstallResult r;
  g_dispatch = dispatch;
  g_own = own;
  if (mdwe_refuses_exec()) {
    r.error = -EPERM;
    add_totals(r);
    return r;
  }
  static Module modules[kMaxModules];  // install is serialised by the caller
  const unsigned count = find_modules(modules, &r.unscanned);
  RawArray<Site> sites;
  SoleThreadScope sole;  // from the scan to the last write
  for (unsigned m = 0; m < count; ++m) {
    if (scan_path(modules[m], m, sole.alone(), &sites, &r)) r.modules++;
    else r.unscanned++;
  }
  g_next_module = count;
  if (r.shared == 0) patch_all(sites, modules, count, &r);
  add_totals(r);
  if (r.shared == 0 && r.error == 0) {
    pthread_atfork(nullptr, nullptr, &reset_in_child);
    g_installed.store(true, std::memory_order_release);
  }
  return r;
}

void on_exec_mapping(int fd, uintptr_t addr, uint64_t length, uint64_t offset, int prot) noexcept {
  if (!g_installed.load(std::memory_order_acquire)) return;
  if (t_in_exec_mapping) {  // a signal handler interrupting this thread's patching
    g_totals.unscanned.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  t_in_exec_mapping = true;
  {
    TsanIgnoreScope tsan_ignore;  // as in install()
    SpinGuard guard;
    SoleThreadScope sole;  // from the scan to the last write
    InstallResult r;
    RawArray<Site> sites;
    const unsigned m = g_next_module++;
    if (!scan_module(fd, addr, addr + length, offset, m, sole.alone(), &sites, &r)) {
      r.unscanned++;
    } else {
      r.modules++;
      if (patchable_in(sites, m) != 0) {
        long area = area_for(sites, m, addr, addr + length, false);
        if (sys::failed(area)) r.error = static_cast<int>(area), r.failed = patchable_in(sites, m);
        else patch_module(sites, m, static_cast<uintptr_t>(area), prot | PROT_EXEC, &r);
      }
    }
    add_totals(r);
  }
  t_in_exec_mapping = false;
}

InstallResult totals() noexcept {
  InstallResult r;
  r.patched = g_totals.patched.load(std::memory_order_relaxed);
  r.shared = g_totals.shared.load(std::memory_order_relaxed);
  r.foreign = g_totals.foreign.load(std::memory_order_relaxed);
  r.unsafe = g_totals.unsafe.load(std::memory_order_relaxed);
  r.unknown = g_totals.unknown.load(std::memory_order_relaxed);
  r.undecoded = g_totals.undecoded.load(std::memory_order_relaxed);
  r.failed = g_totals.failed.load(std::memory_order_relaxed);
  r.modules = g_totals.modules.load(std::memory_order_relaxed);
  r.unscanned = g_totals.unscanned.load(std::memory_order_relaxed);
  r.syscall_fn = g_totals.syscall_fn.load(std::memory_order_relaxed);
  r.error = g_totals.error.load(std::memory_order_relaxed);
  return r;
}

}  // namespace umn::detail::patch
