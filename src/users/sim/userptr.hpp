// userptr.hpp - the simulation's userptr driver, built the way Linux's xe driver
// does it after "drm/xe/userptr: Convert invalidation to two-pass MMU notifier" (linux-mm, 2026):
// umn::sim::Userptr (one user range as one device mirrors it: pinned pages, page-table entries, the
// "needs repin" mark), and umn::sim::Driver, which watches every range for every device in one of three
// ways (DriverMode):
//
//   kTwoPass      one interval notifier per device per range (as real multi-GPU systems have), two-pass:
//                 invalidate_start takes the device's notifier lock, set_seq, marks for repin, zaps the
//                 PTEs, kicks preemption (enable_signaling on the VM's fences) and submits the TLB
//                 invalidation; it does everything synchronously and hands out no finish record when
//                 nothing is pending, or when the userptr's one embedded record is already in use by a
//                 concurrent invalidation. invalidate_finish waits for the fences and the TLB
//                 invalidation, unmaps the pages and clears the in-use flag. Neither pass allocates.
//   kSinglePass   the same notifiers and the same work, but kick-and-wait inside invalidate: D devices
//                 cost D latencies.
//   kMultiplexed  one notifier per range for all devices, and one notifier lock shared by all devices
//                 (the alternative that series rejects): one latency per invalidation, but every device's
//                 fault path waits on the one lock; the waits are measured in DriverStats::lock_waits.
//
// Locking
//   Lock ranks, outermost first, for the whole simulation: Userptr::fault_lock_ < notifier lock <
//   Hardware lock < Device lock.
//   The notifier lock (a Mutex of base/lock.hpp, measured into DriverStats::lock_waits: one per device,
//   or one for all in kMultiplexed) is the "user lock" of umn.h: taken by both passes around set_seq and the userptr state, and by the fault path around
//   read_retry and the page-table update. It guards Userptr::mapped_, tlb_dirty_ and the two-pass
//   finish_inuse flag. Userptr::fault_lock_ serialises fault-ins of one userptr (the pinned-page buffer);
//   it ranks above the notifier lock and is never taken by an invalidation.
//   Waits: a single-pass and a synchronous first pass wait with the notifier lock held (as xe does); the
//   deferred second pass waits without it and takes it only to unmap, so a device's fault path is not
//   blocked for a whole TLB latency.
// Lifetime
//   A Driver inserts its notifiers on create() and removes them in its destructor; the AddressSpace and
//   the Devices must outlive it. The embedded finish record, TLB invalidation and pending-work record
//   live in the notifier object.
// Context
//   Callbacks return false for a non-blockable range (they must wait). fault_in() may sleep; call it
//   with no notifier lock held and never from a callback.
// Memory ordering
//   Userptr::ready() is a relaxed hint for schedulers (the scenario); the page-table state it summarises
//   is ordered by the notifier lock and the Device lock.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <span>
#include <system_error>
#include <vector>

#include "base/lock.hpp"
#include "umn/address_space.hpp"
#include "umn/interval_notifier.hpp"
#include "users/sim/device.hpp"
#include "users/sim/wait_histogram.hpp"

namespace umn::sim {

enum class DriverMode { kSinglePass, kTwoPass, kMultiplexed };
// "single", "two-pass", "multiplexed".
const char* to_string(DriverMode mode) noexcept;

// Counters of one driver. Relaxed atomics; read them after the threads that update them stopped.
struct DriverStats {
  std::atomic<uint64_t> deferred{0};        // first passes that handed out the finish record
  std::atomic<uint64_t> sync_idle{0};       // first passes with nothing pending: done synchronously
  std::atomic<uint64_t> sync_busy{0};       // first passes whose finish record was in use: synchronous
  std::atomic<uint64_t> faults{0};          // successful fault-ins
  std::atomic<uint64_t> retries{0};         // fault attempts thrown away because read_retry said so
  std::atomic<uint64_t> fault_timeouts{0};  // fault-ins that gave up after their timeout
  WaitHistogram lock_waits;                 // contended notifier-lock acquisitions, any path
};

// The device work one invalidation must wait for: the VM's preempt fences, then the TLB invalidation's
// (fences[count - 1] when there is one).
struct PendingWork {
  std::array<Fence, kMaxEngines + 1> fences{};
  unsigned count = 0;
  // True if any of the fences has not signaled yet. Context: any.
  [[nodiscard]] bool pending() const noexcept;
  // Waits for all of them (Fence::wait_all: one sleep, barring spurious wake-ups). Context: may sleep.
  void wait() const noexcept { Fence::wait_all(std::span(fences.data(), count)); }
};

// One user range mirrored by one device (xe_userptr).
class Userptr {
 public:
  // notifier_lock: the lock both passes and the fault path take. stats: where the counters go.
  Userptr(Device& device, PageSpan span, detail::Mutex& notifier_lock, DriverStats& stats);
  Userptr(const Userptr&) = delete;
  Userptr& operator=(const Userptr&) = delete;

  // First pass: marks the range for repin, zaps its PTEs, kicks preemption of the device's engines and,
  // if the TLB may hold entries of the range, submits a TLB invalidation on `tlb` (which must be idle).
  // Fills `work` with what must be waited for. Return: work.pending().
  // Context: notifier lock held; does not sleep or allocate.
  bool start_invalidation(TlbInvalidation& tlb, PendingWork& work) noexcept UMN_REQUIRES(lock_);
  // Drops the pinned pages (xe: unmap the pages). Precondition: the work of a start_invalidation that
  // followed the last fault-in was waited for. Context: notifier lock held.
  void unmap() noexcept UMN_REQUIRES(lock_);
  // The whole synchronous invalidation, with a TLB invalidation on this stack frame: start, wait, unmap.
  // Context: notifier lock held; sleeps.
  void invalidate_synchronously() noexcept UMN_REQUIRES(lock_);

  // The fault path: read_begin, pin (snapshot the CPU pages), take the notifier lock, read_retry, map the
  // pages into the device page table and resume the device's engines; retries until `timeout` passes.
  // Return: {} or std::errc::timed_out. Context: may sleep; no notifier lock held; not from a callback.
  std::error_code fault_in(IntervalNotifier& notifier, Nanos timeout);

  // True when mapped and not marked for repin (a relaxed hint).
  [[nodiscard]] bool ready() const noexcept { return !repin_.load(std::memory_order_relaxed); }
  [[nodiscard]] Device& device() noexcept { return device_; }
  [[nodiscard]] PageSpan span() const noexcept { return span_; }
  [[nodiscard]] detail::Mutex& lock() noexcept UMN_RETURN_CAPABILITY(lock_) { return lock_; }
  [[nodiscard]] DriverStats& stats() noexcept { return stats_; }

 private:
  void pin() noexcept;
  void map_pinned() noexcept UMN_REQUIRES(lock_);

  Device& device_;
  const PageSpan span_;
  detail::Mutex& lock_;
  DriverStats& stats_;
  std::mutex fault_lock_;
  std::vector<uint64_t> pinned_;      // guarded by fault_lock_: the generations pin() saw
  bool mapped_ UMN_GUARDED_BY(lock_) = false;     // PTEs installed
  bool tlb_dirty_ UMN_GUARDED_BY(lock_) = false;  // the TLB may hold entries of the range
  std::atomic<bool> repin_{true};     // atomic; written under lock_, read lock-free by ready()
};

// Watches `ranges` of an address space for `devices` in one of the three modes.
class Driver {
 public:
  // Inserts the notifiers. Return: the driver, or the insert error. Context: not from a callback.
  static Result<std::unique_ptr<Driver>> create(DriverMode mode, AddressSpace& mm, UserMemory& memory,
                                                std::span<Device* const> devices,
                                                std::span<const PageSpan> ranges);
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;
  // Removes the notifiers. Context: no invalidation of mm in flight; not from a callback.
  virtual ~Driver();

  // Faults range `range` in on device `device` (Userptr::fault_in).
  std::error_code fault_in(unsigned device, unsigned range, Nanos timeout);
  // The exec path of a job using (device, range): takes the notifier lock (as xe's exec does, to check
  // that no userptr needs a repin) and returns whether the userptr is valid; the job then runs (reads)
  // without the lock. Context: may sleep; no notifier lock held.
  bool submit_job(unsigned device, unsigned range) noexcept;
  [[nodiscard]] bool ready(unsigned device, unsigned range) noexcept { return userptr(device, range).ready(); }
  [[nodiscard]] virtual Userptr& userptr(unsigned device, unsigned range) noexcept = 0;
  // Two-pass only: whether the finish record of (device, range) is in use (false for other modes).
  [[nodiscard]] virtual bool finish_in_use(unsigned device, unsigned range) noexcept;
  [[nodiscard]] DriverStats& stats() noexcept { return stats_; }
  [[nodiscard]] DriverMode mode() const noexcept { return mode_; }

 protected:
  Driver(DriverMode mode, unsigned ranges) noexcept : mode_(mode), ranges_(ranges) {}
  [[nodiscard]] virtual IntervalNotifier& notifier(unsigned device, unsigned range) noexcept = 0;
  [[nodiscard]] unsigned index(unsigned device, unsigned range) const noexcept { return device * ranges_ + range; }

  DriverStats stats_;

 private:
  const DriverMode mode_;
  const unsigned ranges_;
};

}  // namespace umn::sim
