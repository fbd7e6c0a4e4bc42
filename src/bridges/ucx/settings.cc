// settings.cc - UCX's own hooks off while umn feeds UCX, unless the user asked for them.
//
// UCX reads its UCX_MEM_* settings in libucs's constructor and hands them to UCM with
// ucm_set_global_opts(), which at once patches libc (bistro mode, the default) when memory events are
// on. A constructor of ours cannot run earlier than libucs's when the program links UCX, and setting the
// environment afterwards is too late. So this library defines ucm_set_global_opts() itself: loaded with
// LD_PRELOAD (or linked ahead of libucm) it is the definition libucs calls; it adjusts the settings and
// calls UCM's own (the next definition). Only the first four fields of ucm_global_config_t are touched;
// they are the same from UCX 1.8 to 1.x master, and the version is checked first (will_feed).
#include <dlfcn.h>

#include <cstdlib>

#include "bridges/ucx/bridge.hpp"

namespace umn::ucx {

bool settings_for_umn(ucm_global_config_t* opts) noexcept {
  if (std::getenv("UCX_MEM_MMAP_HOOK_MODE") == nullptr) opts->mmap_hook_mode = UCM_MMAP_HOOK_NONE;
  if (std::getenv("UCX_MEM_MALLOC_HOOKS") == nullptr) opts->enable_malloc_hooks = 0;
  return opts->mmap_hook_mode == UCM_MMAP_HOOK_NONE;
}

}  // namespace umn::ucx

extern "C" __attribute__((visibility("default"))) void ucm_set_global_opts(const ucm_global_config_t* opts) {
  using Fn = void (*)(const ucm_global_config_t*);
  static Fn ucm_own = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "ucm_set_global_opts"));
  if (ucm_own == nullptr) std::abort();  // we are loaded, so libucm is: its definition must be found
  // Adjusted in place: libucs passes a writable local of its constructor (ucs_init_ucm_opts), and a copy
  // would have this header's size, not that of the UCX running (later versions add fields at the end).
  auto* writable = const_cast<ucm_global_config_t*>(opts);
  if (umn::ucx::will_feed(*opts)) umn::ucx::settings_for_umn(writable);
  ucm_own(opts);
}
