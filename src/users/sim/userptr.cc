// userptr.cc - the userptr driver: the Userptr state, the three notifier kinds and the drivers.
//
// The two-pass flows (cf. the xe userptr patch named in userptr.hpp, and docs/sim.md):
//   1. deferred: something is pending (a running engine, or TLB entries to flush): pass 1 kicks and
//      submits everything, takes the embedded finish record and returns it; pass 2 waits, then unmaps.
//   2. idle: nothing is pending: pass 1 unmaps at once and returns no record.
//   3. busy: the record is in use by a concurrent invalidation of the same userptr: pass 1 does the whole
//      invalidation synchronously (with a TLB invalidation on its stack) and returns no record.
// Unlike xe's flow 1, pass 1 submits the TLB invalidation while preemption is still running: the PTEs are
// zapped first, so the engine cannot refill the TLB from them, and the two waits overlap.
//
// Guarantee: when either the invalidate callback or the second pass returns, the device's TLB holds no
// entry of the range and its PTEs are zapped (the stale-access detector checks this end to end).
#include "users/sim/userptr.hpp"

#include "base/check.hpp"
#include "umn/read_section.hpp"

namespace umn::sim {

const char* to_string(DriverMode mode) noexcept {
  switch (mode) {
    case DriverMode::kSinglePass:
      return "single";
    case DriverMode::kTwoPass:
      return "two-pass";
    case DriverMode::kMultiplexed:
      return "multiplexed";
  }
  return "?";
}

bool PendingWork::pending() const noexcept {
  for (unsigned i = 0; i < count; i++)
    if (!fences[i].signaled()) return true;
  return false;
}

Userptr::Userptr(Device& device, PageSpan span, detail::Mutex& notifier_lock, DriverStats& stats)
    : device_(device), span_(span), lock_(notifier_lock), stats_(stats), pinned_(span.count, 0) {}

bool Userptr::start_invalidation(TlbInvalidation& tlb, PendingWork& work) noexcept {
  repin_.store(true, std::memory_order_relaxed);
  // Zap first, so that a running engine cannot refill the TLB from the PTEs once it is flushed.
  work.count = device_.zap_and_fences(span_, mapped_, std::span(work.fences).first<kMaxEngines>());
  mapped_ = false;
  {
    Submission submission(device_.hardware());  // one lock and one clock read for the device's work
    for (unsigned i = 0; i < work.count; i++) submission.enable(work.fences[i]);
    if (tlb_dirty_) work.fences[work.count++] = device_.submit_tlb_invalidate(span_, tlb, submission);
  }
  return work.pending();
}

void Userptr::unmap() noexcept { tlb_dirty_ = false; }

void Userptr::invalidate_synchronously() noexcept {
  TlbInvalidation tlb(device_);
  PendingWork work;
  start_invalidation(tlb, work);
  work.wait();
  unmap();
}

void Userptr::pin() noexcept {
  for (uint64_t i = 0; i < span_.count; i++) pinned_[i] = device_.memory().generation(span_.first + i);
}

void Userptr::map_pinned() noexcept {
  device_.map(span_, pinned_);
  mapped_ = true;
  tlb_dirty_ = true;
  repin_.store(false, std::memory_order_relaxed);
  device_.resume();
}

std::error_code Userptr::fault_in(IntervalNotifier& notifier, Nanos timeout) {
  std::lock_guard serialise(fault_lock_);
  FaultStats fault_stats;
  auto commit = [this] {
    lock_.assert_held();  // umn::fault_in holds it around commit
    map_pinned();
  };
  std::error_code err = umn::fault_in(notifier, lock_, [this] { pin(); }, commit, timeout, &fault_stats);
  stats_.retries.fetch_add(fault_stats.retries, std::memory_order_relaxed);
  (err ? stats_.fault_timeouts : stats_.faults).fetch_add(1, std::memory_order_relaxed);
  return err;
}

namespace {

// kSinglePass: kick and wait inside invalidate.
class SinglePassUserptr final : public IntervalNotifier {
 public:
  SinglePassUserptr(Device& device, PageSpan span, detail::Mutex& lock, DriverStats& stats)
      : userptr_(device, span, lock, stats), tlb_(device) {}
  ~SinglePassUserptr() override { remove(); }
  Userptr& userptr() noexcept { return userptr_; }

 private:
  bool invalidate(const Range& range, unsigned long cur_seq) noexcept override {
    if (!range.blockable()) return false;
    detail::MutexLock guard(userptr_.lock());
    set_seq(cur_seq);
    PendingWork work;
    userptr_.start_invalidation(tlb_, work);
    work.wait();
    userptr_.unmap();
    return true;
  }

  Userptr userptr_;
  TlbInvalidation tlb_;  // used only under the notifier lock, and waited for before it is dropped
};

// kTwoPass: the xe-style two-pass notifier.
class TwoPassUserptr final : public TwoPassNotifier {
 public:
  TwoPassUserptr(Device& device, PageSpan span, detail::Mutex& lock, DriverStats& stats)
      : userptr_(device, span, lock, stats), tlb_(device) {}
  ~TwoPassUserptr() override { remove(); }
  Userptr& userptr() noexcept { return userptr_; }
  bool finish_in_use() noexcept {
    detail::MutexLock guard(userptr_.lock());
    return finish_inuse_;
  }

 private:
  bool invalidate_start(const Range& range, unsigned long cur_seq, FinishRecord*& finish) noexcept override {
    if (!range.blockable()) return false;
    detail::MutexLock guard(userptr_.lock());
    set_seq(cur_seq);
    DriverStats& stats = userptr_.stats();
    if (finish_inuse_) {
      stats.sync_busy.fetch_add(1, std::memory_order_relaxed);
      userptr_.invalidate_synchronously();
      return true;
    }
    if (!userptr_.start_invalidation(tlb_, work_)) {
      stats.sync_idle.fetch_add(1, std::memory_order_relaxed);
      userptr_.unmap();
      return true;
    }
    stats.deferred.fetch_add(1, std::memory_order_relaxed);
    finish_inuse_ = true;
    finish = &finish_;
    return true;
  }

  void invalidate_finish(FinishRecord& /*finish*/) noexcept override {
    work_.wait();  // the in-use flag makes work_ ours; no lock needed to wait
    detail::MutexLock guard(userptr_.lock());
    userptr_.unmap();
    finish_inuse_ = false;
  }

  Userptr userptr_;
  FinishRecord finish_;
  bool finish_inuse_ UMN_GUARDED_BY(userptr_.lock()) = false;
  PendingWork work_;     // owned by whoever set finish_inuse_
  TlbInvalidation tlb_;  // likewise
};

// kMultiplexed: one notifier for all devices, under the one shared lock.
class MultiplexedRange final : public IntervalNotifier {
 public:
  MultiplexedRange(std::span<Device* const> devices, PageSpan span, detail::Mutex& lock, DriverStats& stats)
      : lock_(lock) {
    for (Device* device : devices) {
      entries_.push_back(std::make_unique<Entry>(*device, span, lock, stats));
      UMN_DCHECK(&entries_.back()->userptr.lock() == &lock_);
    }
  }
  ~MultiplexedRange() override { remove(); }
  Userptr& userptr(unsigned device) noexcept { return entries_[device]->userptr; }

 private:
  struct Entry {
    Entry(Device& device, PageSpan span, detail::Mutex& lock, DriverStats& stats)
        : userptr(device, span, lock, stats), tlb(device) {}
    Userptr userptr;
    TlbInvalidation tlb;
    PendingWork work;
  };

  bool invalidate(const Range& range, unsigned long cur_seq) noexcept override {
    if (!range.blockable()) return false;
    detail::MutexLock guard(lock_);
    set_seq(cur_seq);
    for (auto& entry : entries_) {
      entry->userptr.lock().assert_held();  // it is lock_ (checked at construction)
      entry->userptr.start_invalidation(entry->tlb, entry->work);
    }
    for (auto& entry : entries_) {
      entry->work.wait();
      entry->userptr.lock().assert_held();
      entry->userptr.unmap();
    }
    return true;
  }

  detail::Mutex& lock_;
  std::vector<std::unique_ptr<Entry>> entries_;  // one per device; fixed after construction
};

// kSinglePass and kTwoPass: one notifier per device per range, one lock per device.
template <class Notifier>
class PerDeviceDriver final : public Driver {
 public:
  PerDeviceDriver(DriverMode mode, std::span<Device* const> devices, std::span<const PageSpan> ranges)
      : Driver(mode, static_cast<unsigned>(ranges.size())) {
    for (Device* device : devices) {
      locks_.push_back(std::make_unique<detail::Mutex>(&stats_.lock_waits));
      for (const PageSpan& span : ranges)
        notifiers_.push_back(std::make_unique<Notifier>(*device, span, *locks_.back(), stats_));
    }
  }
  ~PerDeviceDriver() override {
    for (auto& notifier : notifiers_) notifier->remove();
  }
  Userptr& userptr(unsigned device, unsigned range) noexcept override {
    return notifiers_[index(device, range)]->userptr();
  }
  bool finish_in_use(unsigned device, unsigned range) noexcept override {
    if constexpr (std::is_same_v<Notifier, TwoPassUserptr>) return notifiers_[index(device, range)]->finish_in_use();
    return false;
  }
  std::error_code insert(AddressSpace& mm, UserMemory& memory) {
    for (auto& notifier : notifiers_) {
      PageSpan span = notifier->userptr().span();
      if (auto err = notifier->insert(mm, memory.address(span.first), span.count * UserMemory::kPageSize)) return err;
    }
    return {};
  }

 private:
  IntervalNotifier& notifier(unsigned device, unsigned range) noexcept override {
    return *notifiers_[index(device, range)];
  }
  std::vector<std::unique_ptr<detail::Mutex>> locks_;  // one per device
  std::vector<std::unique_ptr<Notifier>> notifiers_;
};

class MultiplexedDriver final : public Driver {
 public:
  MultiplexedDriver(std::span<Device* const> devices, std::span<const PageSpan> ranges)
      : Driver(DriverMode::kMultiplexed, static_cast<unsigned>(ranges.size())), lock_(&stats_.lock_waits) {
    for (const PageSpan& span : ranges) notifiers_.push_back(std::make_unique<MultiplexedRange>(devices, span, lock_, stats_));
  }
  ~MultiplexedDriver() override {
    for (auto& notifier : notifiers_) notifier->remove();
  }
  Userptr& userptr(unsigned device, unsigned range) noexcept override { return notifiers_[range]->userptr(device); }
  std::error_code insert(AddressSpace& mm, UserMemory& memory) {
    for (auto& notifier : notifiers_) {
      PageSpan span = notifier->userptr(0).span();
      if (auto err = notifier->insert(mm, memory.address(span.first), span.count * UserMemory::kPageSize)) return err;
    }
    return {};
  }

 private:
  IntervalNotifier& notifier(unsigned /*device*/, unsigned range) noexcept override { return *notifiers_[range]; }
  detail::Mutex lock_;  // the one notifier lock of every device
  std::vector<std::unique_ptr<MultiplexedRange>> notifiers_;
};

template <class ConcreteDriver, class... Args>
Result<std::unique_ptr<Driver>> make_driver(AddressSpace& mm, UserMemory& memory, Args&&... args) {
  auto driver = std::make_unique<ConcreteDriver>(std::forward<Args>(args)...);
  if (std::error_code err = driver->insert(mm, memory)) return err;
  return std::unique_ptr<Driver>(std::move(driver));
}

}  // namespace

Driver::~Driver() = default;

bool Driver::finish_in_use(unsigned /*device*/, unsigned /*range*/) noexcept { return false; }

std::error_code Driver::fault_in(unsigned device, unsigned range, Nanos timeout) {
  return userptr(device, range).fault_in(notifier(device, range), timeout);
}

bool Driver::submit_job(unsigned device, unsigned range) noexcept {
  Userptr& target = userptr(device, range);
  detail::MutexLock guard(target.lock());
  return target.ready();
}

Result<std::unique_ptr<Driver>> Driver::create(DriverMode mode, AddressSpace& mm, UserMemory& memory,
                                               std::span<Device* const> devices,
                                               std::span<const PageSpan> ranges) {
  switch (mode) {
    case DriverMode::kSinglePass:
      return make_driver<PerDeviceDriver<SinglePassUserptr>>(mm, memory, mode, devices, ranges);
    case DriverMode::kTwoPass:
      return make_driver<PerDeviceDriver<TwoPassUserptr>>(mm, memory, mode, devices, ranges);
    case DriverMode::kMultiplexed:
      return make_driver<MultiplexedDriver>(mm, memory, devices, ranges);
  }
  return std::make_error_code(std::errc::invalid_argument);
}

}  // namespace umn::sim
