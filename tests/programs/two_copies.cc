// two_copies.cc - two interposers in one process (libfabric #6474, Open MPI + UCX): this program links
// umn statically and runs with LD_PRELOAD=libumn-preload.so, whose libumn.so is a second umn copy that
// patched libc first. It also interposes munmap at the symbol level, as link-order hooks do. Every munmap
// must reach both copies' notifiers exactly once, through one set of patches.
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

int main() {
  using MmFn = umn_mm* (*)();
  using InsertFn = int (*)(umn_interval_notifier*, umn_mm*, uint64_t, uint64_t, const umn_interval_notifier_ops*);
  void* shared_lib = dlopen("libumn.so.0", RTLD_NOW | RTLD_NOLOAD);
  if (shared_lib == nullptr) {
    std::fprintf(stderr, "run me with LD_PRELOAD=libumn-preload.so (libumn.so.0 not loaded)\n");
    return 2;
  }
  auto shared_mm = reinterpret_cast<MmFn>(dlsym(shared_lib, "umn_mm_process"));
  auto shared_insert = reinterpret_cast<InsertFn>(dlsym(shared_lib, "umn_interval_notifier_insert"));
  umn_mm* mine = umn_mm_process();  // the static copy: finds the sites patched, joins the registry
  umn_process_hooks_info info;
  umn_process_hooks_get_info(&info);
  if (info.status != 0 || info.sites_shared == 0 || info.sites_patched != 0 || info.sites_foreign != 0) {
    std::fprintf(stderr, "static copy did not join: status %d patched %u shared %u\n", info.status,
                 info.sites_patched, info.sites_shared);
    return 1;
  }
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  static const umn_interval_notifier_ops static_ops = {&on_static, nullptr, nullptr};
  static const umn_interval_notifier_ops shared_ops = {&on_shared, nullptr, nullptr};
  umn_interval_notifier a{}, b{};
  if (umn_interval_notifier_insert(&a, mine, reinterpret_cast<uint64_t>(p), 4096, &static_ops) != 0) return 1;
  if (shared_insert(&b, shared_mm(), reinterpret_cast<uint64_t>(p), 4096, &shared_ops) != 0) return 1;
  munmap(p, 4096);
  std::printf("static copy joined %u shared sites; calls: static copy %d, shared copy %d, symbol interposer %d\n",
              info.sites_shared, g_static_calls, g_shared_calls, g_symbol_calls);
  umn_interval_notifier_remove(&a);
  auto shared_remove = reinterpret_cast<void (*)(umn_interval_notifier*)>(dlsym(shared_lib, "umn_interval_notifier_remove"));
  shared_remove(&b);
  return g_static_calls == 1 && g_shared_calls == 1 && g_symbol_calls >= 1 ? 0 : 1;
}
