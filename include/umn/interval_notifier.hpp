// interval_notifier.hpp - umn::IntervalNotifier, umn::TwoPassNotifier, umn::FinishRecord and
// umn::FunctionNotifier: interval notifiers for C++, with RAII removal and no container_of.
//
// Locking
//   Callbacks run on the invalidating thread with no umn lock held. They must take your "user lock"
//   (the one you also hold around read_retry) and call set_seq(cur_seq) under it.
// Lifetime
//   insert() links the notifier into an address space; remove() unlinks it and, when it returns, no
//   callback runs or will run. The rule: the most-derived class calls remove() first in its destructor.
//   Until remove() returns, callbacks may run (a range on another thread can join the open epoch while
//   remove waits for it), and they reach the derived invalidate only while the derived object is whole:
//   once its destructor has finished they would call the pure virtual one. ~IntervalNotifier()
//   diagnoses a notifier still inserted (misuse: debug builds abort; otherwise it removes it, racing any
//   such callback). Destroying a notifier from a callback of its own address space is misuse too
//   (remove() would wait for that very invalidation, so it is refused): diagnosed, and where that does not
//   abort the notifier is taken out of the tree at once (a tombstone stands in until the epoch ends), so
//   that the running walk never touches its memory again. A final class (FunctionNotifier, README.md's
//   Mirror) keeps the rule simply.
//   A FinishRecord belongs to the caller and serves one invalidation at a time.
// Context
//   invalidate / invalidate_start may sleep iff range.blockable(); otherwise return false rather than
//   block. invalidate_finish may sleep only for blockable ranges (it is called for both). No callback may
//   call insert, remove, read_begin, or destroy an AddressSpace. Callbacks are noexcept.
// Memory ordering: as umn.h (set_seq releases, read_begin acquires).
#pragma once

#include <cstdint>
#include <system_error>
#include <utility>

#include "umn/address_space.hpp"
#include "umn/range.hpp"
#include "umn/result.hpp"
#include "umn/umn.h"

namespace umn {

class UMN_API IntervalNotifier {
 public:
  IntervalNotifier() noexcept;
  IntervalNotifier(const IntervalNotifier&) = delete;
  IntervalNotifier& operator=(const IntervalNotifier&) = delete;
  // Diagnoses a notifier still inserted (the most-derived destructor must remove it; see Lifetime),
  // then removes it. Not from a callback.
  virtual ~IntervalNotifier();

  // Watches [start, start + length) of mm. Errors: EOVERFLOW (length 0 or overflow), EINVAL (already
  // inserted, dead address space), ENOMEM. See umn_interval_notifier_insert.
  std::error_code insert(AddressSpace& mm, uint64_t start, uint64_t length) noexcept {
    return insert(mm.get(), start, length);
  }
  std::error_code insert(umn_mm* mm, uint64_t start, uint64_t length) noexcept;
  // Stops watching; waits for a running invalidation of the tree. A no-op when not inserted. Refused as
  // misuse (diagnosed) from a callback: then inserted() stays true.
  void remove() noexcept;
  [[nodiscard]] bool inserted() const noexcept { return inserted_; }

  // The collision-retry protocol (see umn.h and ReadSection for a loop that uses them).
  [[nodiscard]] unsigned long read_begin() noexcept { return umn_interval_read_begin(&link_.c); }
  [[nodiscard]] bool read_retry(unsigned long seq) noexcept { return umn_interval_read_retry(&link_.c, seq); }
  [[nodiscard]] bool check_retry(unsigned long seq) noexcept { return umn_interval_check_retry(&link_.c, seq); }
  void set_seq(unsigned long cur_seq) noexcept { umn_interval_set_seq(&link_.c, cur_seq); }

  [[nodiscard]] uint64_t start() const noexcept { return link_.c.interval_tree.start; }
  [[nodiscard]] uint64_t last() const noexcept { return link_.c.interval_tree.last; }
  // The C notifier, for code that mixes both APIs.
  [[nodiscard]] umn_interval_notifier* c_notifier() noexcept { return &link_.c; }

 protected:
  // Stop the device from using [range.start(), range.end()) before returning. Take the user lock and call
  // set_seq(cur_seq) under it. Return false only if !range.blockable() and the work would sleep.
  virtual bool invalidate(const Range& range, unsigned long cur_seq) noexcept = 0;

 private:
  friend class TwoPassNotifier;
  friend struct NotifierTrampolines;
  // The ops table this notifier inserts with (single-pass by default).
  [[nodiscard]] virtual const umn_interval_notifier_ops* ops_table() const noexcept;

  struct Link {
    umn_interval_notifier c;  // first: a umn_interval_notifier* is a Link*
    IntervalNotifier* self;
  } link_;
  bool inserted_ = false;
};

// A record handed from invalidate_start to invalidate_finish. Derive from it to carry state between the
// passes (static_cast back in invalidate_finish).
class UMN_API FinishRecord {
 public:
  FinishRecord() noexcept = default;
  FinishRecord(const FinishRecord&) = delete;
  FinishRecord& operator=(const FinishRecord&) = delete;

 private:
  friend struct NotifierTrampolines;
  umn_interval_notifier_finish c_{};  // first: a umn_interval_notifier_finish* is a FinishRecord*
};

class UMN_API TwoPassNotifier : public IntervalNotifier {
 protected:
  // First pass: start the device work. Leave finish null to say everything is done (as invalidate);
  // point it at a free record of yours to get invalidate_finish(record) after the whole tree walk.
  virtual bool invalidate_start(const Range& range, unsigned long cur_seq, FinishRecord*& finish) noexcept = 0;
  // Second pass: wait for what invalidate_start started. Called once per record handed out.
  virtual void invalidate_finish(FinishRecord& finish) noexcept = 0;

 private:
  friend struct NotifierTrampolines;
  bool invalidate(const Range& range, unsigned long cur_seq) noexcept final;
  [[nodiscard]] const umn_interval_notifier_ops* ops_table() const noexcept final;
};

// An interval notifier whose invalidate is a callable: bool(IntervalNotifier&, const Range&, unsigned long).
template <class Fn>
class FunctionNotifier final : public IntervalNotifier {
 public:
  explicit FunctionNotifier(Fn fn) : fn_(std::move(fn)) {}
  ~FunctionNotifier() override { remove(); }  // before fn_ goes

 private:
  bool invalidate(const Range& range, unsigned long cur_seq) noexcept override {
    return fn_(static_cast<IntervalNotifier&>(*this), range, cur_seq);
  }
  Fn fn_;
};

}  // namespace umn
