// notifier.hpp - umn::Notifier: a classic (whole address space) notifier as a C++ class with virtual
// callbacks, registered and unregistered with RAII. For the refcounted one-per-(ops, address space)
// registration, see registration.hpp.
//
// Locking
//   Callbacks run on the thread that invalidates (or tears down, or queries young bits), with no umn
//   lock held, inside an RCU read-side section (urcu-bp; umn.h "Classic ... registration" says why).
//   They may run concurrently with each other on different threads: protect your state yourself.
// Lifetime
//   register_with() links the notifier; unregister() unlinks it, calling release() first unless teardown
//   already did, and returns only when no callback of it is running. The rule: the most-derived class
//   calls unregister() first in its destructor. Until unregister() returns callbacks may run, and they
//   reach the derived overrides only while the derived object is whole (once its destructor has
//   finished they would reach this base class's no-ops, and release() would never run). ~Notifier()
//   diagnoses a notifier still registered (misuse: debug builds abort; otherwise it unregisters, without
//   the derived release()). A final class is the simplest way to keep the rule (see README.md).
//   Teardown (AddressSpace::release, destroying the AddressSpace) calls release() once but keeps the
//   registration: unregister() is still needed.
// Context
//   release, invalidate_range_start/end of a blockable range, and the young callbacks may sleep;
//   non-blockable ranges and arch_invalidate_secondary_tlbs must not. No callback may call
//   register_with / unregister, or destroy an AddressSpace. Callbacks are noexcept.
//   Which callbacks exist is fixed at construction (Callbacks mask): the core skips the others, a
//   notifier whose start can fail must not have an end, and arch_invalidate_secondary_tlbs excludes both.
// Memory ordering: register_with publishes the notifier; what a callback did happens-before the return
//   of unregister().
// Overheads (CPU time per invalidation = range_start + range_end, no interval notifier; a 2-core VM under
//   heavy load, so real time read ~6x higher): 48 ns with subscriptions and no classic notifier, 104 ns
//   with 1 (two urcu-bp read-side sections, ~28 ns each), 117 ns with 8: ~2 ns per extra subscriber
//   (its start and end calls); no lock taken by the classic walk. Produced by
//   build/classic/bench/classic_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <type_traits>
#include <utility>

#include "umn/address_space.hpp"
#include "umn/range.hpp"
#include "umn/result.hpp"
#include "umn/umn.h"

namespace umn {

// The callbacks a Notifier implements. The C ops table gets NULL for the others.
enum class Callbacks : unsigned {
  kNone = 0,
  kRelease = 1u << 0,
  kInvalidateRangeStart = 1u << 1,
  kInvalidateRangeEnd = 1u << 2,
  kClearFlushYoung = 1u << 3,
  kClearYoung = 1u << 4,
  kTestYoung = 1u << 5,
  kArchInvalidateSecondaryTlbs = 1u << 6,
  kInvalidateRange = kInvalidateRangeStart | kInvalidateRangeEnd,
  kYoung = kClearFlushYoung | kClearYoung | kTestYoung,
};
constexpr Callbacks operator|(Callbacks a, Callbacks b) noexcept {
  return static_cast<Callbacks>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
constexpr bool has(Callbacks set, Callbacks one) noexcept {
  return (static_cast<unsigned>(set) & static_cast<unsigned>(one)) != 0;
}

class UMN_API Notifier {
 public:
  // A notifier with the given callbacks (default: release and invalidate_range_start/end).
  explicit Notifier(Callbacks callbacks = Callbacks::kRelease | Callbacks::kInvalidateRange) noexcept;
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;
  // Diagnoses a notifier still registered (the most-derived destructor must unregister; see Lifetime),
  // then unregisters it. Not from a callback.
  virtual ~Notifier();

  // Subscribes to every event of mm. Waits for in-flight invalidations of mm. Errors: EINVAL (already
  // registered, released address space, arch_invalidate_secondary_tlbs with start/end), ENOMEM,
  // EDEADLK (from a callback). See umn_notifier_register.
  std::error_code register_with(AddressSpace& mm) noexcept { return register_with(mm.get()); }
  std::error_code register_with(umn_mm* mm) noexcept;
  // Ends the registration (release() first, unless teardown called it); waits for running callbacks.
  // A no-op when not registered. Refused as misuse (diagnosed) from a callback: then registered() stays
  // true.
  void unregister() noexcept;
  [[nodiscard]] bool registered() const noexcept { return registered_; }
  // The address space registered with (nullptr before the first registration).
  [[nodiscard]] umn_mm* mm() const noexcept { return link_.c.mm; }
  // The C notifier, for code that mixes both APIs.
  [[nodiscard]] umn_notifier* c_notifier() noexcept { return &link_.c; }

 protected:
  // Teardown or unregister: drop every secondary mapping and build no new one. Called once.
  virtual void release() noexcept {}
  // Pages of the range are about to go: stop using them until the end. Return false only if
  // !range.blockable() and the work would sleep (the invalidation then fails with EAGAIN).
  virtual bool invalidate_range_start(const Range& range) noexcept {
    (void)range;
    return true;
  }
  virtual void invalidate_range_end(const Range& range) noexcept { (void)range; }
  // Test and clear accessed bits in [start, end) (and flush). Return: true if any was young.
  virtual bool clear_flush_young(uint64_t start, uint64_t end) noexcept { return clear_young(start, end); }
  virtual bool clear_young(uint64_t start, uint64_t end) noexcept {
    (void)start;
    (void)end;
    return false;
  }
  virtual bool test_young(uint64_t address) noexcept {
    (void)address;
    return false;
  }
  // Secondary TLBs that share the CPU page tables. Must not sleep.
  virtual void arch_invalidate_secondary_tlbs(uint64_t start, uint64_t end) noexcept {
    (void)start;
    (void)end;
  }

 private:
  friend struct NotifierOpsTables;
  struct Link {
    umn_notifier c;  // first: a umn_notifier* is a Link*
    Notifier* self;
  };
  Link link_;
  const umn_notifier_ops* ops_;
  bool registered_ = false;
};

// The C ops tables of umn::Notifier: one per Callbacks mask, all trampolines into the virtuals.
struct NotifierOpsTables {
  static constexpr unsigned kMasks = 1u << 7;

  static Notifier& self(umn_notifier* sub) noexcept { return *reinterpret_cast<Notifier::Link*>(sub)->self; }
  static void release(umn_notifier* sub, umn_mm*) noexcept { self(sub).release(); }
  static int start(umn_notifier* sub, const umn_notifier_range* range) noexcept {
    return self(sub).invalidate_range_start(Range(*range)) ? 0 : -EAGAIN;
  }
  static void end(umn_notifier* sub, const umn_notifier_range* range) noexcept {
    self(sub).invalidate_range_end(Range(*range));
  }
  static int clear_flush_young(umn_notifier* sub, umn_mm*, uint64_t start, uint64_t end) noexcept {
    return self(sub).clear_flush_young(start, end) ? 1 : 0;
  }
  static int clear_young(umn_notifier* sub, umn_mm*, uint64_t start, uint64_t end) noexcept {
    return self(sub).clear_young(start, end) ? 1 : 0;
  }
  static int test_young(umn_notifier* sub, umn_mm*, uint64_t address) noexcept {
    return self(sub).test_young(address) ? 1 : 0;
  }
  static void arch_tlbs(umn_notifier* sub, umn_mm*, uint64_t start, uint64_t end) noexcept {
    self(sub).arch_invalidate_secondary_tlbs(start, end);
  }

  static constexpr umn_notifier_ops make(unsigned mask) noexcept {
    auto pick = [mask](Callbacks one, auto fn) { return has(static_cast<Callbacks>(mask), one) ? fn : nullptr; };
    return umn_notifier_ops{pick(Callbacks::kRelease, &release),
                            pick(Callbacks::kClearFlushYoung, &clear_flush_young),
                            pick(Callbacks::kClearYoung, &clear_young),
                            pick(Callbacks::kTestYoung, &test_young),
                            pick(Callbacks::kInvalidateRangeStart, &start),
                            pick(Callbacks::kInvalidateRangeEnd, &end),
                            pick(Callbacks::kArchInvalidateSecondaryTlbs, &arch_tlbs),
                            nullptr,
                            nullptr};
  }
  template <size_t... Mask>
  static constexpr std::array<umn_notifier_ops, kMasks> make_all(std::index_sequence<Mask...>) noexcept {
    return {make(static_cast<unsigned>(Mask))...};
  }
};

inline constexpr std::array<umn_notifier_ops, NotifierOpsTables::kMasks> kNotifierOpsTables =
    NotifierOpsTables::make_all(std::make_index_sequence<NotifierOpsTables::kMasks>{});

inline Notifier::Notifier(Callbacks callbacks) noexcept
    : link_{{}, this}, ops_(&kNotifierOpsTables[static_cast<unsigned>(callbacks) % NotifierOpsTables::kMasks]) {}

inline std::error_code Notifier::register_with(umn_mm* mm) noexcept {
  if (registered_) return std::make_error_code(std::errc::invalid_argument);
  link_.c.ops = ops_;
  const int err = umn_notifier_register(&link_.c, mm);
  registered_ = err == 0;
  return errno_code(err);
}

static_assert(std::is_standard_layout_v<umn_notifier>);

}  // namespace umn
