// registration.hpp - umn::Registration<Ops>: the one refcounted classic registration per (Ops, address
// space), as RAII over umn_notifier_get / umn_notifier_put. No container_of: umn allocates your Ops
// object next to the C notifier and hands you a reference to it.
//
//   struct Mirror {                                   // one per address space, shared by every buffer
//     explicit Mirror(umn_mm* mm);                    // or default-constructible
//     void release() noexcept;                        // every callback is optional; see below
//     bool invalidate_range_start(const umn::Range& range) noexcept;
//     void invalidate_range_end(const umn::Range& range) noexcept;
//   };
//   auto reg = umn::Registration<Mirror>::get(mm);    // Result<Registration<Mirror>>
//   reg.value()->map(...);                            // every get of (Mirror, mm) shares one Mirror
//
// Callbacks Ops may declare (detected at compile time; absent ones are NULL in the C ops, so a start
// that can fail without an end is expressible, and arch_invalidate_secondary_tlbs excludes start/end):
//   void release() noexcept;
//   bool invalidate_range_start(const Range&) noexcept;   // false: would block (non-blockable range)
//   void invalidate_range_end(const Range&) noexcept;
//   bool clear_flush_young(uint64_t start, uint64_t end) noexcept;
//   bool clear_young(uint64_t start, uint64_t end) noexcept;
//   bool test_young(uint64_t address) noexcept;
//   void arch_invalidate_secondary_tlbs(uint64_t start, uint64_t end) noexcept;
//
// Locking: as umn::Notifier (callbacks run with no umn lock held, inside an RCU read-side section, maybe
//   concurrently). The Ops constructor runs with the address space's registration lock held: it must
//   not get or put a Registration of the same address space.
// Lifetime: the Ops object is constructed by the first get of (Ops, mm) and destroyed after the last
//   Registration is reset and a grace period, on liburcu's callback thread (so ~Ops must not sleep).
//   The key is the address of Registration<Ops>'s ops table: one per program (per shared object when
//   Ops is hidden in several). Teardown calls release() once and keeps the Ops alive until the last put.
//   synchronize() waits until every Ops whose last Registration went has been destroyed.
// Context: get may sleep (it may wait for in-flight invalidations) and must not be called from a
//   callback; reset / destruction may be called from anywhere, callbacks included.
// Memory ordering: as umn_notifier_get / put: what a callback did happens-before ~Ops.
#pragma once

#include <cerrno>
#include <concepts>
#include <cstdint>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

#include "umn/address_space.hpp"
#include "umn/range.hpp"
#include "umn/result.hpp"
#include "umn/umn.h"

namespace umn {

template <class Ops>
class Registration {
 public:
  // The registration of (Ops, mm): a new Ops on the first get, else the existing one (users + 1).
  // Errors: EINVAL (teardown begun), ENOMEM (allocation or Ops constructor threw), EOVERFLOW
  // (UINT_MAX users), EDEADLK (from a callback).
  static Result<Registration> get(AddressSpace& mm) noexcept { return get(mm.get()); }
  static Result<Registration> get(umn_mm* mm) noexcept {
    umn_notifier* sub = umn_notifier_get(&kOps, mm);
    if (UMN_IS_ERR(sub)) return std::error_code(static_cast<int>(-UMN_PTR_ERR(sub)), std::generic_category());
    return Registration(sub);
  }
  // Waits until every Ops whose last Registration went is destroyed (umn_notifier_synchronize).
  static void synchronize() noexcept { umn_notifier_synchronize(); }

  Registration() noexcept = default;  // empty
  Registration(Registration&& other) noexcept : sub_(std::exchange(other.sub_, nullptr)) {}
  Registration& operator=(Registration&& other) noexcept {
    if (this != &other) {
      reset();
      sub_ = std::exchange(other.sub_, nullptr);
    }
    return *this;
  }
  Registration(const Registration&) = delete;  // use share(): it can fail
  Registration& operator=(const Registration&) = delete;
  ~Registration() { reset(); }

  // Another user of the same registration. Errors: as get (EINVAL once teardown has begun).
  [[nodiscard]] Result<Registration> share() const noexcept { return get(mm()); }
  // Drops this user (the last one frees the Ops after a grace period). Idempotent.
  void reset() noexcept {
    if (sub_ != nullptr) umn_notifier_put(std::exchange(sub_, nullptr));
  }

  [[nodiscard]] explicit operator bool() const noexcept { return sub_ != nullptr; }
  // The shared Ops. Precondition: not empty.
  [[nodiscard]] Ops& operator*() const noexcept { return ops_of(sub_); }
  [[nodiscard]] Ops* operator->() const noexcept { return &ops_of(sub_); }
  [[nodiscard]] umn_mm* mm() const noexcept { return sub_ != nullptr ? sub_->mm : nullptr; }
  [[nodiscard]] umn_notifier* c_notifier() const noexcept { return sub_; }
  // The C key of (Ops, any address space): the ops table umn_notifier_get is called with.
  [[nodiscard]] static const umn_notifier_ops* c_ops() noexcept { return &kOps; }

 private:
  // The allocation: the C notifier first, so a umn_notifier* is a Node* (standard layout).
  struct Node {
    umn_notifier c;
    alignas(Ops) unsigned char storage[sizeof(Ops)];
  };
  static_assert(std::is_standard_layout_v<Node>);

  explicit Registration(umn_notifier* sub) noexcept : sub_(sub) {}

  static Ops& ops_of(umn_notifier* sub) noexcept {
    return *std::launder(reinterpret_cast<Ops*>(reinterpret_cast<Node*>(sub)->storage));
  }
  static umn_notifier* alloc(umn_mm* mm) noexcept {
    auto* node = new (std::nothrow) Node{};
    if (node == nullptr) return nullptr;
    try {
      if constexpr (std::is_constructible_v<Ops, umn_mm*>)
        new (node->storage) Ops(mm);
      else
        new (node->storage) Ops();
    } catch (...) {
      delete node;
      return nullptr;  // umn reports ENOMEM
    }
    return &node->c;
  }
  static void free(umn_notifier* sub) noexcept {
    ops_of(sub).~Ops();
    delete reinterpret_cast<Node*>(sub);
  }

  static void release(umn_notifier* sub, umn_mm*) noexcept { ops_of(sub).release(); }
  static int start(umn_notifier* sub, const umn_notifier_range* range) noexcept {
    return ops_of(sub).invalidate_range_start(Range(*range)) ? 0 : -EAGAIN;
  }
  static void end(umn_notifier* sub, const umn_notifier_range* range) noexcept {
    ops_of(sub).invalidate_range_end(Range(*range));
  }
  static int clear_flush_young(umn_notifier* sub, umn_mm*, uint64_t start, uint64_t end) noexcept {
    return ops_of(sub).clear_flush_young(start, end) ? 1 : 0;
  }
  static int clear_young(umn_notifier* sub, umn_mm*, uint64_t start, uint64_t end) noexcept {
    return ops_of(sub).clear_young(start, end) ? 1 : 0;
  }
  static int test_young(umn_notifier* sub, umn_mm*, uint64_t address) noexcept {
    return ops_of(sub).test_young(address) ? 1 : 0;
  }
  static void arch_tlbs(umn_notifier* sub, umn_mm*, uint64_t start, uint64_t end) noexcept {
    ops_of(sub).arch_invalidate_secondary_tlbs(start, end);
  }

  static constexpr umn_notifier_ops make_ops() noexcept {
    umn_notifier_ops ops{};
    if constexpr (requires(Ops & o) { o.release(); }) ops.release = &release;
    if constexpr (requires(Ops & o, const Range& r) {
                    { o.invalidate_range_start(r) } -> std::convertible_to<bool>;
                  })
      ops.invalidate_range_start = &start;
    if constexpr (requires(Ops & o, const Range& r) { o.invalidate_range_end(r); }) ops.invalidate_range_end = &end;
    if constexpr (requires(Ops & o, uint64_t a) {
                    { o.clear_flush_young(a, a) } -> std::convertible_to<bool>;
                  })
      ops.clear_flush_young = &clear_flush_young;
    if constexpr (requires(Ops & o, uint64_t a) {
                    { o.clear_young(a, a) } -> std::convertible_to<bool>;
                  })
      ops.clear_young = &clear_young;
    if constexpr (requires(Ops & o, uint64_t a) {
                    { o.test_young(a) } -> std::convertible_to<bool>;
                  })
      ops.test_young = &test_young;
    if constexpr (requires(Ops & o, uint64_t a) { o.arch_invalidate_secondary_tlbs(a, a); })
      ops.arch_invalidate_secondary_tlbs = &arch_tlbs;
    ops.alloc_notifier = &alloc;
    ops.free_notifier = &free;
    return ops;
  }
  static constexpr umn_notifier_ops kOps = make_ops();

  umn_notifier* sub_ = nullptr;
};

}  // namespace umn
