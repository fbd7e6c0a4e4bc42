// cxx_lifetime.cc - the members of the C++ notifier classes that read the core's notifier state:
// IntervalNotifier's destructor and remove(), Notifier's destructor and unregister(). The rest of the
// C++ API (src/cxx/) compiles against the public headers alone; these four need to know whether the C
// call really unlinked the notifier (it refuses misuse, e.g. from a callback) and to report misuse.
//
// The rule they enforce (include/umn/interval_notifier.hpp, notifier.hpp, Lifetime): the most-derived
// destructor removes / unregisters. By the time a base destructor runs the derived object is gone: a
// callback would call the pure virtual invalidate or the base's no-op release(). The base destructors
// therefore diagnose a notifier still linked, then unlink it so that no freed memory stays linked.
#include <atomic>

#include "base/check.hpp"
#include "core/itree_invalidate.hpp"
#include "core/subscriptions.hpp"
#include "umn/interval_notifier.hpp"
#include "umn/notifier.hpp"

namespace umn {

IntervalNotifier::~IntervalNotifier() {
  constexpr const char* kCall = "umn::IntervalNotifier::~IntervalNotifier";
  if (UMN_CHECK(!inserted_, kCall, "destroyed while inserted: call remove() first in the most-derived destructor"))
    return;
  // Destroyed from a callback of its own address space (the derived remove() was refused, as a remove
  // here would be): the memory goes when this returns, so take it out of this thread's walk now.
  if (detail::itree_abandon(&link_.c)) {
    UMN_CHECK(false, kCall,
              "destroyed from an invalidate callback of its own address space: taken out of the tree without "
              "waiting (a callback running on another thread meanwhile may still touch it)");
    inserted_ = false;
    return;
  }
  remove();
}

void IntervalNotifier::remove() noexcept {
  if (!inserted_) return;
  umn_interval_notifier_remove(&link_.c);
  // A refused remove (misuse, diagnosed) leaves the notifier in the tree. Relaxed: this thread's remove
  // wrote the state, or waited under Subscriptions::lock for the epoch end that wrote it.
  inserted_ = std::atomic_ref(link_.c.state).load(std::memory_order_relaxed) != detail::kStateRemoved;
}

Notifier::~Notifier() {
  if (!UMN_CHECK(!registered_, "umn::Notifier::~Notifier",
                 "destroyed while registered: call unregister() first in the most-derived destructor"))
    unregister();
}

void Notifier::unregister() noexcept {
  if (!registered_) return;
  umn_notifier_unregister(&link_.c, link_.c.mm);
  // A refused unregister (misuse, diagnosed) leaves the registration in place. Pairs with the release
  // store of kClassicUnregistered at the end of this thread's unregister_notifier (registration.cc).
  const uintptr_t state = detail::classic_word(&link_.c, detail::kWordState).load(std::memory_order_acquire);
  registered_ = state != detail::kClassicUnregistered;
}

}  // namespace umn
