// exit.cc - process exit (contract in exit.hpp).
#include "sources/process/exit.hpp"

#include <atomic>

#include "core/query.hpp"

namespace umn::detail {
namespace {

std::atomic<umn_mm*> g_release_mm{nullptr};  // release in arm_release_at_exit, acquire in release_at_exit

[[gnu::destructor(101)]] void release_at_exit() {
  umn_mm* mm = g_release_mm.load(std::memory_order_acquire);
  if (mm != nullptr && mm_has_subscriptions(mm)) umn_notifier_release(mm);
}

}  // namespace

void arm_release_at_exit(umn_mm* mm) noexcept { g_release_mm.store(mm, std::memory_order_release); }

}  // namespace umn::detail
