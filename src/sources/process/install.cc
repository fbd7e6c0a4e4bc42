// install.cc - the installer: patch the syscall sites once (or join another umn copy that owns them),
// then register the fork handlers. Private interface in hooks.hpp, public one in umn/process.h.
//
// State machine (g_install_state, state.hpp): 0 not yet -> 1 installing (one thread, by CAS) -> 2 done.
// Other threads wait for 2; the installing thread's own hooked calls (t_installing) do not wait.
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "sources/process/dispatch.hpp"
#include "sources/process/exit.hpp"
#include "sources/process/fork.hpp"
#include "sources/process/hooks.hpp"
#include "sources/process/observers.hpp"
#include "sources/patch/scratch.hpp"
#include "sources/patch/x86_64.hpp"
#include "sources/process/state.hpp"
#include "umn/process.h"

namespace umn::detail {
namespace {

bool env_disabled() noexcept {
  const char* value = std::getenv("UMN_PROCESS_HOOKS");
  return value != nullptr && std::strcmp(value, "0") == 0;
}

int do_install(umn_mm* mm) noexcept {
  if (env_disabled()) return -EPERM;
  g_mm.store(mm, std::memory_order_release);  // before the first patch: the dispatcher may run at once
  const patch::InstallResult install = patch::install(&dispatch, &g_registry);
  if (install.existing != nullptr) {
    if (install.existing->abi != kRegistryAbi) return -EPROTO;
    g_active.store(install.existing, std::memory_order_release);
    g_mm.store(nullptr, std::memory_order_release);  // our address space is fed by the owner's observer
    int slot = claim_slot(install.existing, &chained_observer, mm);
    return slot < 0 ? slot : 0;
  }
  if (install.error != 0) return install.error;  // never a partial success (patch/x86_64.hpp, "Failures")
  if (install.patched == 0) return -ENOENT;
  patch::set_scratch_unmap(&announced_munmap);  // from now on umn's own unmaps are announced too
  return 0;
}

}  // namespace
}  // namespace umn::detail

using namespace umn::detail;

extern "C" {

void umn_detail_process_autoinstall(umn_mm* mm) {
  if (g_install_state.load(std::memory_order_acquire) == 2 || t_installing) return;
  // Signals are held while this thread holds the fork lock: a handler's fork would wait in the prepare
  // handler for the lock its own thread holds (issue 12 review).
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &saved);
  hold_forks();  // a fork clones no process with the state at 1 (issue 17.9)
  int expected = 0;
  const bool installer = g_install_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel);
  if (installer) {
    t_installing = true;
    g_status = do_install(mm);
    if (g_status == 0) arm_release_at_exit(mm);
    t_installing = false;
    g_install_state.store(2, std::memory_order_release);  // pairs with the acquire loads above
  }
  release_forks();
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  while (g_install_state.load(std::memory_order_acquire) != 2) sched_yield();
}

int umn_process_hooks_install(void) {
  umn_mm_process();
  return g_status;
}

}  // extern "C"
