// umn.hpp - the C++ API of umn, in one include.
//
//   umn::AddressSpace      RAII owner of an address space (address_space.hpp); umn::Invalidation for the
//                          memory-management side's start/end.
//   umn::IntervalNotifier  watch a range; override invalidate (interval_notifier.hpp).
//   umn::TwoPassNotifier   two-pass invalidation with umn::FinishRecord.
//   umn::FunctionNotifier  a notifier from a callable.
//   umn::ReadSection, umn::fault_in   the collision-retry loop (read_section.hpp).
//   umn::Notifier         a classic (whole address space) notifier; override its callbacks (notifier.hpp).
//   umn::Registration<Ops> the one refcounted classic registration per (Ops, address space) (registration.hpp).
//   umn::Range, umn::Event what an invalidation covers (range.hpp).
//   umn::Result, umn::errno_code      errors (result.hpp).
// The C API (umn.h) is the same core; both can be mixed.
#pragma once

#include "umn/address_space.hpp"
#include "umn/interval_notifier.hpp"
#include "umn/notifier.hpp"
#include "umn/range.hpp"
#include "umn/read_section.hpp"
#include "umn/registration.hpp"
#include "umn/result.hpp"
#include "umn/umn.h"
