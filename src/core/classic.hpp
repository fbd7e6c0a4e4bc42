// classic.hpp - classic (whole address space) notifiers inside libumn: the list and its walks.
//
// Locking: the list's structure changes under Subscriptions::lock; walks run under userspace RCU.
// This header is the core's view of the classic layer; the public calls live in classic.cc.
#pragma once

#include "umn/umn.h"

namespace umn::detail {

struct Subscriptions;

// The classic subscribers of one address space.
struct ClassicList {
  umn_notifier* head = nullptr;  // guarded by Subscriptions::lock for writes; RCU for walks
};

// invalidate_range_start on every classic notifier; on a non-blockable failure, every notifier with an
// end gets it and -EAGAIN is returned. Return: 0 or -EAGAIN.
int classic_invalidate_start(Subscriptions& subs, const umn_notifier_range* range) noexcept;
void classic_invalidate_end(Subscriptions& subs, const umn_notifier_range* range) noexcept;
// ->release on every classic notifier, then empties the list.
void classic_release(Subscriptions& subs, umn_mm* mm) noexcept;
// True when no classic notifier is registered. Context: any (a racy hint without the lock).
bool classic_empty(const Subscriptions& subs) noexcept;

}  // namespace umn::detail
