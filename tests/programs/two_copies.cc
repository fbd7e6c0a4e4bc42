// two_copies.cc - two interposers in one process (libfabric #6474, Open MPI + UCX): this program links
// umn statically and runs with LD_PRELOAD=libumn-preload.so, whose libumn.so is a second umn copy. It
// also interposes munmap at the symbol level, as link-order hooks do. The preload patches nothing until
// a copy uses the process address space (lazy policy, checked first); then, in either order given as
// argv[1] (shared-first: the preloaded copy installs and the static copy joins it; static-first: the
// reverse), every munmap must reach both copies' notifiers exactly once, through one set of patches.
#include <dlfcn.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstring>

#include "umn/process.h"
#include "umn/umn.h"

namespace {
int g_static_calls = 0, g_shared_calls = 0, g_symbol_calls = 0;

bool on_static(umn_interval_notifier* sub, const umn_notifier_range*, unsigned long seq) {
  g_static_calls++;
  umn_interval_set_seq(sub, seq);
  return true;
}
bool on_shared(umn_interval_notifier*, const umn_notifier_range*, unsigned long) {
  g_shared_calls++;
  return true;  // the other copy's set_seq is not ours to call; nothing reads it in this test
}
}  // namespace

// A symbol-level interposer, as old link-order hooks did: forwards to the next definition.
extern "C" int munmap(void* addr, size_t length) {
  g_symbol_calls++;
  static auto next = reinterpret_cast<int (*)(void*, size_t)>(dlsym(RTLD_NEXT, "munmap"));
  return next(addr, length);
}

using InfoFn = void (*)(umn_process_hooks_info*);

// The copy that installs first must own every site; the one that joins must share them.
bool check_owner(const char* who, const umn_process_hooks_info& info) {
  if (info.status == 0 && info.sites_patched > 0 && info.sites_shared == 0 && info.sites_foreign == 0) return true;
  std::fprintf(stderr, "%s did not install: status %d patched %u shared %u foreign %u\n", who, info.status,
               info.sites_patched, info.sites_shared, info.sites_foreign);
  return false;
}
bool check_joined(const char* who, const umn_process_hooks_info& info) {
  if (info.status == 0 && info.sites_shared > 0 && info.sites_patched == 0 && info.sites_foreign == 0) return true;
  std::fprintf(stderr, "%s did not join: status %d patched %u shared %u foreign %u\n", who, info.status,
               info.sites_patched, info.sites_shared, info.sites_foreign);
  return false;
}

int main(int argc, char** argv) {
  using MmFn = umn_mm* (*)();
  using InsertFn = int (*)(umn_interval_notifier*, umn_mm*, uint64_t, uint64_t, const umn_interval_notifier_ops*);
  const bool shared_first = argc > 1 && std::strcmp(argv[1], "shared-first") == 0;
  if (argc < 2 || (!shared_first && std::strcmp(argv[1], "static-first") != 0)) {
    std::fprintf(stderr, "usage: %s shared-first|static-first\n", argv[0]);
    return 2;
  }
  void* shared_lib = dlopen("libumn.so.0", RTLD_NOW | RTLD_NOLOAD);
  if (shared_lib == nullptr) {
    std::fprintf(stderr, "run me with LD_PRELOAD=libumn-preload.so (libumn.so.0 not loaded)\n");
    return 2;
  }
  auto shared_mm = reinterpret_cast<MmFn>(dlsym(shared_lib, "umn_mm_process"));
  auto shared_insert = reinterpret_cast<InsertFn>(dlsym(shared_lib, "umn_interval_notifier_insert"));
  auto shared_info = reinterpret_cast<InfoFn>(dlsym(shared_lib, "umn_process_hooks_get_info"));
  umn_process_hooks_info info, other;
  shared_info(&other);
  if (other.status != 1) {  // lazy: loading the preload installed nothing
    std::fprintf(stderr, "the preload installed the hooks at load (status %d)\n", other.status);
    return 1;
  }
  umn_mm* theirs = shared_first ? shared_mm() : nullptr;
  umn_mm* mine = umn_mm_process();
  if (!shared_first) theirs = shared_mm();
  umn_process_hooks_get_info(&info);
  shared_info(&other);
  if (shared_first ? !(check_owner("shared copy", other) && check_joined("static copy", info))
                   : !(check_owner("static copy", info) && check_joined("shared copy", other)))
    return 1;
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  static const umn_interval_notifier_ops static_ops = {&on_static, nullptr, nullptr};
  static const umn_interval_notifier_ops shared_ops = {&on_shared, nullptr, nullptr};
  umn_interval_notifier a{}, b{};
  if (umn_interval_notifier_insert(&a, mine, reinterpret_cast<uint64_t>(p), 4096, &static_ops) != 0) return 1;
  if (shared_insert(&b, theirs, reinterpret_cast<uint64_t>(p), 4096, &shared_ops) != 0) return 1;
  munmap(p, 4096);
  std::printf("%s: calls: static copy %d, shared copy %d, symbol interposer %d\n", argv[1], g_static_calls,
              g_shared_calls, g_symbol_calls);
  umn_interval_notifier_remove(&a);
  auto shared_remove = reinterpret_cast<void (*)(umn_interval_notifier*)>(dlsym(shared_lib, "umn_interval_notifier_remove"));
  shared_remove(&b);
  return g_static_calls == 1 && g_shared_calls == 1 && g_symbol_calls >= 1 ? 0 : 1;
}
