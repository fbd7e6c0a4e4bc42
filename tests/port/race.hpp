// race.hpp - the hardware side of the port test: the CPU's page frames, and a race of device faults
// against invalidations that counts stale translations.
//
// Frames. Every page of the watched window has a frame number, which the drivers read through
// port_cpu_frame() (their hmm_range_fault) and cache in their device tables:
//   - SimSpace: a simulated address space (umn_mm_create). A frame is a number in an array; an invalidator
//     changes a page's frame only between umn_notifier_invalidate_range_start and _end, as the kernel
//     changes PTEs.
//   - ProcessSpace: real memory on umn_mm_process(). A page's frame is a stamp stored in its first word;
//     a remapper replaces pages with mmap(MAP_FIXED) or discards them with madvise(MADV_DONTNEED) (the
//     process hooks run the invalidation around the syscall), then writes a new stamp. A page reads 0
//     until stamped; the drivers then report "busy" and install nothing.
// Stale translation: a device entry (frame != 0) that differs from the page's frame now. The drivers'
// *_check() count them under their own lock, the lock their callbacks zap under. Zapping happens before
// the frame changes, and no fault can install while an invalidation of the page runs, so any stale
// entry is a broken protocol: checked after every frame change (before range_end, on the simulated
// space) and after every fault.
//
// Locking: frames are atomics. Lifetime: one space per test, set as the current one for port_cpu_frame.
// Context: port_cpu_frame is called by the drivers with their locks held (it takes none).
#pragma once

#include <gtest/gtest.h>

#include <sys/mman.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "umn/umn.h"

extern "C" {
#include "drivers.h"  // the renamed copy (build dir): struct umn_mm, umn_* names
}

namespace umn::port {

constexpr uint64_t kPage = 4096;

// Where port_cpu_frame reads frames. Exactly one space is current at a time.
class Space {
 public:
  virtual ~Space() = default;
  [[nodiscard]] virtual umn_mm* mm() const noexcept = 0;
  [[nodiscard]] virtual uint64_t base() const noexcept = 0;
  [[nodiscard]] virtual size_t pages() const noexcept = 0;
  // The frame at addr now (0: none), for port_cpu_frame.
  [[nodiscard]] virtual unsigned long frame(uint64_t addr) const noexcept = 0;
  // Changes the frames of pages [first, first + count) inside an invalidation (event chosen by the
  // space), calling check() once the frames changed and before the invalidation ends where the space
  // can. Returns false if the invalidation was refused (a non-blockable start that failed).
  virtual bool invalidate(size_t first, size_t count, std::mt19937_64& rng, const std::function<void()>& check) = 0;
};

inline std::atomic<Space*> g_space{nullptr};

#if defined(__SANITIZE_THREAD__)
constexpr bool kTsan = true;
#else
constexpr bool kTsan = false;
#endif

// The simulated address space: frames in an array, invalidations driven by the test.
class SimSpace : public Space {
 public:
  SimSpace(size_t pages, void* self_migrate_owner)
      : mm_(umn_mm_create()), frames_(pages), self_migrate_owner_(self_migrate_owner) {
    for (auto& frame : frames_) frame.store(next_++, std::memory_order_relaxed);
  }
  ~SimSpace() override { umn_mm_destroy(mm_); }
  [[nodiscard]] umn_mm* mm() const noexcept override { return mm_; }
  [[nodiscard]] uint64_t base() const noexcept override { return kBase; }
  [[nodiscard]] size_t pages() const noexcept override { return frames_.size(); }
  [[nodiscard]] unsigned long frame(uint64_t addr) const noexcept override {
    if (addr < kBase || addr >= kBase + frames_.size() * kPage) return 0;
    return frames_[(addr - kBase) / kPage].load(std::memory_order_acquire);
  }
  bool invalidate(size_t first, size_t count, std::mt19937_64& rng, const std::function<void()>& check) override {
    static constexpr umn_notifier_event kEvents[] = {UMN_NOTIFY_UNMAP, UMN_NOTIFY_CLEAR, UMN_NOTIFY_PROTECTION_VMA,
                                                     UMN_NOTIFY_MIGRATE};
    const umn_notifier_event event = kEvents[rng() % 4];
    // A migration the mirror device started itself (owner = its cookie) moves no CPU page here: the
    // mirror skips it, as test_hmm's dmirror does, and nothing may go stale.
    const bool self_migration = event == UMN_NOTIFY_MIGRATE && rng() % 2 == 0;
    umn_notifier_range range;
    umn_notifier_range_init_owner(&range, event, 0, mm_, kBase + first * kPage, kBase + (first + count) * kPage,
                                  self_migration ? self_migrate_owner_ : nullptr);
    if (rng() % 8 == 0) {
      if (umn_notifier_invalidate_range_start_nonblock(&range) != 0) return false;
    } else {
      umn_notifier_invalidate_range_start(&range);
    }
    if (!self_migration)
      for (size_t i = first; i < first + count; ++i) frames_[i].store(next_++, std::memory_order_release);
    check();
    umn_notifier_invalidate_range_end(&range);
    return true;
  }

 private:
  static constexpr uint64_t kBase = 0x10000000;
  umn_mm* mm_;
  std::vector<std::atomic<unsigned long>> frames_;
  std::atomic<unsigned long> next_{1};  // only the invalidator thread writes frames
  void* self_migrate_owner_;
};

// Real memory of this process on umn_mm_process(): a page's frame is the stamp in its first word.
class ProcessSpace : public Space {
 public:
  explicit ProcessSpace(size_t pages) : pages_(pages) {
    void* p = mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    base_ = p == MAP_FAILED ? nullptr : static_cast<char*>(p);
    if (base_ != nullptr)
      for (size_t i = 0; i < pages; ++i) stamp(i);
  }
  ~ProcessSpace() override {
    if (base_ != nullptr) munmap(base_, pages_ * kPage);
  }
  [[nodiscard]] bool ok() const noexcept { return base_ != nullptr; }
  [[nodiscard]] umn_mm* mm() const noexcept override { return umn_mm_process(); }
  [[nodiscard]] uint64_t base() const noexcept override { return reinterpret_cast<uint64_t>(base_); }
  [[nodiscard]] size_t pages() const noexcept override { return pages_; }
  [[nodiscard]] unsigned long frame(uint64_t addr) const noexcept override {
    const uint64_t base = this->base();
    if (addr < base || addr >= base + pages_ * kPage) return 0;
    return __atomic_load_n(reinterpret_cast<unsigned long*>(addr & ~(kPage - 1)), __ATOMIC_ACQUIRE);
  }
  // The hooks invalidate around the syscall; check() runs once the syscall returned (the pages read 0:
  // any entry left is stale), then the pages get new stamps. Under TSan only madvise: TSan's mmap
  // interceptor records the new mapping as a plain write by this thread, which the faulters' atomic
  // loads of the stamp would race with (the kernel's zeroing, not the program's).
  bool invalidate(size_t first, size_t count, std::mt19937_64& rng, const std::function<void()>& check) override {
    char* at = base_ + first * kPage;
    if (rng() % 2 == 0 && !kTsan) {
      if (mmap(at, count * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != at)
        std::abort();
    } else if (madvise(at, count * kPage, MADV_DONTNEED) != 0) {
      std::abort();
    }
    check();
    for (size_t i = first; i < first + count; ++i) stamp(i);
    return true;
  }

 private:
  void stamp(size_t page) noexcept {
    __atomic_store_n(reinterpret_cast<unsigned long*>(base_ + page * kPage), next_++, __ATOMIC_RELEASE);
  }
  char* base_ = nullptr;
  size_t pages_;
  unsigned long next_ = 1;  // only the constructor and the invalidator thread stamp
};

// One device as the race sees it: a fault at an address, and a count of its stale translations.
struct Device {
  std::function<int(uint64_t addr)> fault;
  std::function<unsigned long()> check;
};

struct RaceResult {
  unsigned long stale = 0;
  unsigned long faults = 0;       // faults that installed a translation
  unsigned long invalidations = 0;
};

// Runs `faulters` threads faulting random pages of every device (checking after each fault) against
// one invalidator thread running `invalidations` random invalidations of 1-4 pages.
inline RaceResult race(Space& space, const std::vector<Device>& devices, unsigned long invalidations,
                       int faulters, uint64_t seed) {
  std::atomic<unsigned long> stale{0}, faults{0};
  std::atomic<bool> stop{false};
  auto check_all = [&] {
    for (const Device& device : devices) stale += device.check();
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < faulters; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(seed + 1 + static_cast<uint64_t>(t));
      while (!stop.load(std::memory_order_relaxed)) {
        const uint64_t addr = space.base() + (rng() % space.pages()) * kPage + rng() % kPage;
        for (const Device& device : devices) {
          if (device.fault(addr) == 0) faults++;
          stale += device.check();
        }
      }
    });
  }
  std::mt19937_64 rng(seed);
  unsigned long done = 0;
  for (unsigned long i = 0; i < invalidations; ++i) {
    const size_t count = 1 + rng() % 4;
    const size_t first = rng() % (space.pages() - count + 1);
    if (space.invalidate(first, count, rng, check_all)) done++;
  }
  stop = true;
  for (auto& thread : threads) thread.join();
  check_all();
  return {stale.load(), faults.load(), done};
}

// CI-sized by default; UMN_STRESS_LONG=1 for ten times more.
inline unsigned long scaled(unsigned long n) {
  const char* long_run = std::getenv("UMN_STRESS_LONG");
  return long_run != nullptr && *long_run == '1' ? n * 10 : n;
}

}  // namespace umn::port

// The drivers' page walk: the current space's frame at addr.
extern "C" unsigned long port_cpu_frame(umn_mm* mm, unsigned long addr) {
  umn::port::Space* space = umn::port::g_space.load(std::memory_order_acquire);
  const unsigned long frame = space != nullptr && space->mm() == mm ? space->frame(addr) : 0;
  // Every 8th walk yields before its driver installs the frame: that widens the window in which a
  // driver's collision check (read_retry, gru's range sequence) matters, so that a driver without it
  // leaves stale translations in this race (it was caught only by luck on 2 cores).
  thread_local unsigned walks = 0;
  if (++walks % 8 == 0) std::this_thread::yield();
  return frame;
}
