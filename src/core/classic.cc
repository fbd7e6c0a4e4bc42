// classic.cc - PLACEHOLDER until issue 3 lands: classic notifiers are not supported yet.
// Registration returns -ENOSYS; the walks see an empty list.
#include <cerrno>

#include "core/classic.hpp"
#include "core/subscriptions.hpp"

namespace umn::detail {

int classic_invalidate_start(Subscriptions&, const umn_notifier_range*) noexcept { return 0; }
void classic_invalidate_end(Subscriptions&, const umn_notifier_range*) noexcept {}
void classic_release(Subscriptions&, umn_mm*) noexcept {}
bool classic_empty(const Subscriptions& subs) noexcept { return subs.classic.head == nullptr; }

}  // namespace umn::detail

extern "C" {

int umn_notifier_clear_flush_young(umn_mm*, uint64_t, uint64_t) { return 0; }
int umn_notifier_clear_young(umn_mm*, uint64_t, uint64_t) { return 0; }
int umn_notifier_test_young(umn_mm*, uint64_t) { return 0; }
void umn_notifier_arch_invalidate_secondary_tlbs(umn_mm*, uint64_t, uint64_t) {}
int umn_notifier_register(umn_notifier*, umn_mm*) { return -ENOSYS; }
void umn_notifier_unregister(umn_notifier*, umn_mm*) {}
umn_notifier* umn_notifier_get(const umn_notifier_ops*, umn_mm*) {
  errno = ENOSYS;
  return nullptr;
}
void umn_notifier_put(umn_notifier*) {}
void umn_notifier_synchronize(void) {}

}  // extern "C"
