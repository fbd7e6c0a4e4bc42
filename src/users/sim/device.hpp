// device.hpp - a simulated device that mirrors user memory: umn::sim::UserMemory (the CPU side: pages
// whose generation changes when they are remapped), umn::sim::Device (a page table mirroring user ranges,
// a TLB, engines that run jobs reading user memory through them, asynchronous TLB invalidation and
// preemption that complete on the Hardware timer) and the stale-access detector.
//
// The stale-access detector: a page table entry and a TLB entry hold the generation of the CPU page
// they were filled from. Every job read compares that generation with the CPU's current one. The CPU
// side (the scenario, or a test) remaps pages only after umn_notifier_invalidate_range_start returned,
// i.e. after every notifier promised the device no longer uses the old pages; so a mismatch is a read
// through a translation whose invalidation already completed: a stale access. It is counted.
//
// Locking
//   Device::lock_ (rank: below the Hardware lock) guards the page table, the TLB and each engine's
//   running state. Reads by jobs, map/zap by the driver, and the hardware's completions (TLB flush,
//   engine stop) all take it, so a read is atomic with respect to a completion: once a TLB invalidation
//   or a preemption has signaled, no read that began before it is still in progress.
//   The driver calls map() and zap() with its own notifier lock held; the device does not check that.
// Lifetime
//   UserMemory and Hardware outlive the Device. A TlbInvalidation names its Device and must not outlive
//   it. Fences handed out by a Device are valid while the Device lives.
// Context
//   Nothing here sleeps except Fence::wait(); everything takes only the locks named above.
// Memory ordering
//   UserMemory generations are release-stored by remap() and acquire-loaded by read(), so a reader that
//   sees a new generation sees everything the remapping thread did before it (see also fence.hpp for
//   the fence orderings). The read and stale counters are relaxed statistics.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/lock.hpp"
#include "users/sim/fence.hpp"
#include "users/sim/fence_slot.hpp"
#include "users/sim/hardware.hpp"
#include "users/sim/latency_model.hpp"
#include "users/sim/submission.hpp"

namespace umn::sim {

// Pages [first, first + count) of a UserMemory.
struct PageSpan {
  uint64_t first = 0;
  uint64_t count = 0;
};

// The CPU side of the simulation: `pages` pages at address `base`, each with the generation of the
// physical page currently mapped there (starting at 1).
class UserMemory {
 public:
  static constexpr uint64_t kPageSize = 4096;
  UserMemory(uint64_t base, uint64_t pages);

  [[nodiscard]] uint64_t base() const noexcept { return base_; }
  [[nodiscard]] uint64_t pages() const noexcept { return pages_; }
  [[nodiscard]] uint64_t address(uint64_t page) const noexcept { return base_ + page * kPageSize; }
  // The generation of the page now mapped at `page`. Context: any; acquire.
  [[nodiscard]] uint64_t generation(uint64_t page) const noexcept {
    return generations_[page].load(std::memory_order_acquire);  // pairs with remap()
  }
  // Maps new physical pages over span. Call only between range_start's return and range_end, as the
  // kernel changes PTEs only inside an invalidation. Context: any.
  void remap(PageSpan span) noexcept;

 private:
  uint64_t base_;
  uint64_t pages_;
  std::unique_ptr<std::atomic<uint64_t>[]> generations_;  // atomic; release-stored by remap()
};

inline constexpr unsigned kMaxEngines = 4;

struct DeviceConfig {
  LatencyModel tlb{LatencyModel::Kind::kFixed, Nanos(50'000)};
  LatencyModel preempt{LatencyModel::Kind::kFixed, Nanos(20'000)};
  unsigned engines = 1;  // 1..kMaxEngines
};

// What one job read found.
enum class Access {
  kOk,         // read through a current translation
  kStale,      // read through a translation whose invalidation had completed (counted)
  kPageFault,  // no translation: the job must fault the range in
  kPreempted,  // the engine is preempted: the job must wait for the driver to resume it
};

class Device;

// One TLB invalidation (xe's inval batch): embedded where the invalidation's state lives (a userptr, or
// the stack of a synchronous path); reusable once its fence signaled.
class TlbInvalidation final : public FenceSlot {
 public:
  explicit TlbInvalidation(Device& device) noexcept;
  ~TlbInvalidation() override { detach(); }

 private:
  friend class Device;
  void retire() noexcept override;
  Device& device_;
  PageSpan span_;  // written by Device::submit_tlb_invalidate before schedule(); the Hardware lock orders it
};

class Device {
 public:
  // id: for reports. memory: the user memory this device mirrors. config.engines in 1..kMaxEngines.
  Device(Hardware& hardware, UserMemory& memory, const DeviceConfig& config, unsigned id);
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  ~Device();

  // Page table, driver side: map span to the pages of the given generations (one per page), or zap it.
  // Context: the driver's notifier lock held; takes the device lock.
  void map(PageSpan span, std::span<const uint64_t> generations) noexcept;
  void zap(PageSpan span) noexcept;
  [[nodiscard]] bool mapped(uint64_t page) noexcept;

  // Starts invalidating the TLB entries of span (the entries are dropped when the fence signals, after
  // the configured TLB latency). `op` must be idle (its previous fence signaled). Context: the driver's
  // notifier lock held; takes the Hardware lock.
  Fence submit_tlb_invalidate(PageSpan span, TlbInvalidation& op) noexcept;
  // The same through a Submission (submission.hpp) that also carries other work of this device.
  // Context: the driver's notifier lock held; inside `submission` (the Hardware lock held).
  Fence submit_tlb_invalidate(PageSpan span, TlbInvalidation& op, Submission& submission) noexcept;

  // The fences of the device's VM, one per engine (as a dma_resv's preempt fences): each signals once its
  // engine is preempted; lazily, i.e. preemption starts only at enable_signaling(). An idle (preempted)
  // engine's fence is already signaled. Returns how many were written. Context: takes the device lock.
  unsigned vm_fences(std::span<Fence, kMaxEngines> out) noexcept;
  // What a first pass needs from the device, under one device-lock acquisition: zaps span (if `zap`) and
  // writes the VM's fences (as vm_fences). Return: how many fences were written. Context: the driver's
  // notifier lock held; takes the device lock.
  unsigned zap_and_fences(PageSpan span, bool zap, std::span<Fence, kMaxEngines> out) noexcept;
  // Kicks preemption of `engine` and returns its fence (signals after the preempt latency).
  Fence preempt(unsigned engine) noexcept;
  // Lets every preempted engine run again (what the rebind worker does after repinning).
  // Context: the driver's notifier lock held; takes the device lock.
  void resume() noexcept;
  [[nodiscard]] bool running(unsigned engine) noexcept;

  // A job on `engine` reads `page` through the TLB (filled from the page table on a miss). Counts reads
  // and stale accesses. Context: any thread; takes the device lock.
  Access read(unsigned engine, uint64_t page) noexcept;

  [[nodiscard]] uint64_t reads() const noexcept { return reads_.load(std::memory_order_relaxed); }
  [[nodiscard]] uint64_t stale_accesses() const noexcept { return stale_.load(std::memory_order_relaxed); }
  [[nodiscard]] unsigned id() const noexcept { return id_; }
  [[nodiscard]] unsigned engines() const noexcept { return static_cast<unsigned>(engines_.size()); }
  [[nodiscard]] const DeviceConfig& config() const noexcept { return config_; }
  [[nodiscard]] Hardware& hardware() noexcept { return hardware_; }
  [[nodiscard]] UserMemory& memory() noexcept { return memory_; }

 private:
  friend class TlbInvalidation;
  class Engine;

  void flush_tlb(PageSpan span) noexcept;
  void zap_locked(PageSpan span) noexcept UMN_REQUIRES(lock_);
  unsigned vm_fences_locked(std::span<Fence, kMaxEngines> out) noexcept UMN_REQUIRES(lock_);
  void stop(Engine& engine) noexcept;

  Hardware& hardware_;
  UserMemory& memory_;
  const DeviceConfig config_;
  const unsigned id_;
  detail::Mutex lock_;
  std::vector<uint64_t> page_table_ UMN_GUARDED_BY(lock_);  // generation mapped; 0: none
  std::vector<uint64_t> tlb_ UMN_GUARDED_BY(lock_);         // cached page_table_ entries; 0: none
  std::vector<std::unique_ptr<Engine>> engines_;           // fixed after construction
  std::atomic<uint64_t> reads_{0};                         // atomic; relaxed statistics
  std::atomic<uint64_t> stale_{0};                         // atomic; relaxed statistics
};

}  // namespace umn::sim
