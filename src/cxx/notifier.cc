// notifier.cc - umn::Notifier's out-of-line members: unregister() (which reads the core's registration
// state, so that a refused unregister leaves the notifier registered) and the diagnosing destructor.
#include "umn/notifier.hpp"

#include "base/check.hpp"
#include "core/classic.hpp"

namespace umn {

Notifier::~Notifier() {
  // The derived object is gone: a callback now would reach the base no-ops, and release() would never
  // reach the derived class. Unregistering still keeps the list free of freed memory.
  if (!UMN_CHECK(!registered_, "umn::Notifier::~Notifier",
                 "destroyed while registered: call unregister() first in the most-derived destructor"))
    unregister();
}

void Notifier::unregister() noexcept {
  if (!registered_) return;
  umn_notifier_unregister(&link_.c, link_.c.mm);
  // A refused unregister (misuse, diagnosed: e.g. from a callback) leaves the registration in place.
  const uintptr_t state = detail::classic_word(&link_.c, detail::kWordState).load(std::memory_order_acquire);
  registered_ = state != detail::kClassicUnregistered;
}

}  // namespace umn
