// mirror_device.hpp - a fake device that mirrors part of an address space, modelled on the kernel's
// test_hmm "dmirror": a shadow page table filled by a simulated fault through read_begin / user lock /
// read_retry, cleared by the interval notifier's invalidate (single-pass) or by its second pass
// (two-pass). Every device access checks the translation it uses against the CPU-side truth.
//
// The CPU-side truth (CpuPages) is one generation number per page. A mutator changes a page only between
// umn_notifier_invalidate_range_start and _end, by bumping its generation. A translation records the
// generation its fault read. So:
//   - after range_start returns, no device may hold a translation in the range (maps_any() is false);
//   - a device access that finds a translation whose generation differs from the page's current one is a
//     stale access (the collision-retry protocol failed), and is counted.
//
// Locking
//   lock_ is the "user lock": taken by the fault's commit (around read_retry) and by the callbacks
//   (around set_seq and the table update). It guards table_ and the finish record.
//   lifecycle_ (shared) keeps insert/remove (exclusive) away from faults, which use the notifier.
// Lifetime: remove() (or the destructor) before the umn_mm goes. Context: fault() and remove() may sleep;
//   never call them from a callback or with lock_ held.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <vector>

#include "umn/umn.h"

namespace umn::test {

constexpr uint64_t kMirrorPage = 4096;

// The CPU-side truth: a generation per page of [base, base + pages * kMirrorPage).
class CpuPages {
 public:
  CpuPages(uint64_t base, size_t pages) : base_(base), pages_(pages), gens_(new std::atomic<uint64_t>[pages]) {
    for (size_t i = 0; i < pages; ++i) gens_[i].store(1, std::memory_order_relaxed);
  }
  [[nodiscard]] uint64_t base() const { return base_; }
  [[nodiscard]] size_t pages() const { return pages_; }
  [[nodiscard]] uint64_t address(size_t page) const { return base_ + page * kMirrorPage; }
  // Pairs with bump(): a fault that reads the new generation also sees what the mutator did before.
  [[nodiscard]] uint64_t generation(size_t page) const { return gens_[page].load(std::memory_order_acquire); }
  // The mutator's change of [first, first + count): only between range_start and range_end.
  void bump(size_t first, size_t count) {
    for (size_t i = first; i < first + count; ++i) gens_[i].fetch_add(1, std::memory_order_release);
  }

 private:
  uint64_t base_;
  size_t pages_;
  std::unique_ptr<std::atomic<uint64_t>[]> gens_;
};

class MirrorDevice {
 public:
  enum class Mode { kSinglePass, kTwoPass };
  enum class Access { kMiss, kHit, kStale };
  struct Options {
    Mode mode = Mode::kSinglePass;
    bool skip_set_seq = false;     // a deliberately broken driver: must produce stale accesses
    bool refuse_nonblock = false;  // return false for every non-blockable range (else only when contended)
  };
  struct Counters {
    std::atomic<uint64_t> faults{0}, retries{0}, hits{0}, misses{0}, stale{0};
    std::atomic<uint64_t> first_passes{0}, second_passes{0}, records_handed_out{0}, refusals{0};
  };

  // Mirrors pages [first_page, first_page + pages) of cpu, in address space mm.
  MirrorDevice(umn_mm* mm, CpuPages& cpu, size_t first_page, size_t pages, Options options)
      : mm_(mm), cpu_(cpu), first_page_(first_page), table_(pages), options_(options) {
    finish_.device = this;
  }
  MirrorDevice(const MirrorDevice&) = delete;
  MirrorDevice& operator=(const MirrorDevice&) = delete;
  ~MirrorDevice() { remove(); }

  // Starts mirroring with an empty table. Return: umn_interval_notifier_insert's result.
  int insert() {
    std::unique_lock life(lifecycle_);
    if (inserted_) return 0;
    int err = umn_interval_notifier_insert(&link_.sub, mm_, cpu_.address(first_page_),
                                           table_.size() * kMirrorPage, ops());
    inserted_ = err == 0;
    return err;
  }
  // Stops mirroring: drops every translation first (no callback will clear them later), then removes.
  void remove() {
    std::unique_lock life(lifecycle_);
    if (!inserted_) return;
    {
      std::lock_guard guard(lock_);
      for (Entry& e : table_) e.present = false;
    }
    umn_interval_notifier_remove(&link_.sub);
    inserted_ = false;
  }

  // Simulated device fault of `page` (an index into cpu). Return: true once a translation is installed;
  // false if the device is not inserted or max_attempts attempts were all invalidated.
  bool fault(size_t page, int max_attempts = 1 << 20) {
    std::shared_lock life(lifecycle_);
    if (!inserted_) return false;
    for (int attempt = 0; attempt < max_attempts; ++attempt) {
      counters.faults.fetch_add(1, std::memory_order_relaxed);
      const unsigned long seq = umn_interval_read_begin(&link_.sub);
      const uint64_t generation = cpu_.generation(page);  // the snapshot, no lock held
      if (between_snapshot_and_commit) between_snapshot_and_commit();
      std::lock_guard guard(lock_);
      if (umn_interval_read_retry(&link_.sub, seq)) {
        counters.retries.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      table_[page - first_page_] = {true, generation};
      return true;
    }
    return false;
  }

  // A device access to `page` through its translation, checked against the CPU-side truth.
  Access access(size_t page) {
    std::lock_guard guard(lock_);
    const Entry& e = table_[page - first_page_];
    if (!e.present) {
      counters.misses.fetch_add(1, std::memory_order_relaxed);
      return Access::kMiss;
    }
    if (e.generation != cpu_.generation(page)) {
      counters.stale.fetch_add(1, std::memory_order_relaxed);
      return Access::kStale;
    }
    counters.hits.fetch_add(1, std::memory_order_relaxed);
    return Access::kHit;
  }

  // True if the device holds a translation for any page of [first, first + count) (indices into cpu).
  bool maps_any(size_t first, size_t count) {
    std::lock_guard guard(lock_);
    for (size_t p = std::max(first, first_page_); p < std::min(first + count, last_page() + 1); ++p)
      if (table_[p - first_page_].present) return true;
    return false;
  }

  [[nodiscard]] bool covers(size_t page) const { return page >= first_page_ && page <= last_page(); }
  [[nodiscard]] size_t first_page() const { return first_page_; }
  [[nodiscard]] size_t last_page() const { return first_page_ + table_.size() - 1; }
  [[nodiscard]] umn_interval_notifier* notifier() { return &link_.sub; }

  // Test hook run by fault() between the snapshot and the commit (no lock held). Set before use.
  std::function<void()> between_snapshot_and_commit;
  Counters counters;

 private:
  struct Entry {
    bool present = false;
    uint64_t generation = 0;
  };
  // The notifier, first in a standard-layout struct so that the callbacks find the device.
  struct Link {
    umn_interval_notifier sub{};
    MirrorDevice* device;
  };
  // The one embedded second-pass record: a concurrent invalidation that finds it busy works synchronously.
  struct Finish {
    umn_interval_notifier_finish c{};
    MirrorDevice* device = nullptr;
    size_t first = 0;  // pages to clear in the second pass, indices into cpu
    size_t count = 0;
    bool busy = false;  // guarded by lock_
  };

  static MirrorDevice& of(umn_interval_notifier* sub) { return *reinterpret_cast<Link*>(sub)->device; }

  [[nodiscard]] const umn_interval_notifier_ops* ops() const {
    static constexpr umn_interval_notifier_ops kSingle = {&invalidate, nullptr, nullptr};
    static constexpr umn_interval_notifier_ops kTwo = {nullptr, &invalidate_start, &invalidate_finish};
    return options_.mode == Mode::kSinglePass ? &kSingle : &kTwo;
  }

  // The pages of range that this device mirrors, as [first, first + count) indices into cpu.
  void clip(const umn_notifier_range* range, size_t* first, size_t* count) const {
    const uint64_t lo = std::max(range->start, cpu_.address(first_page_));
    const uint64_t hi = std::min(range->end - 1, cpu_.address(last_page()) + kMirrorPage - 1);
    *first = static_cast<size_t>((lo - cpu_.base()) / kMirrorPage);
    *count = static_cast<size_t>((hi - cpu_.base()) / kMirrorPage) + 1 - *first;
  }
  void clear_locked(size_t first, size_t count) {
    for (size_t p = first; p < first + count; ++p) table_[p - first_page_].present = false;
  }
  // Takes the user lock as the kernel drivers do: try-lock when the range may not sleep. Return: false if
  // the callback must refuse the range.
  bool lock_for(const umn_notifier_range* range) {
    if (umn_notifier_range_blockable(range)) {
      lock_.lock();
      return true;
    }
    if (options_.refuse_nonblock || !lock_.try_lock()) {
      counters.refusals.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }

  static bool invalidate(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq) {
    MirrorDevice& dev = of(sub);
    if (!dev.lock_for(range)) return false;
    dev.counters.first_passes.fetch_add(1, std::memory_order_relaxed);
    if (!dev.options_.skip_set_seq) umn_interval_set_seq(sub, cur_seq);
    size_t first, count;
    dev.clip(range, &first, &count);
    dev.clear_locked(first, count);
    dev.lock_.unlock();
    return true;
  }
  static bool invalidate_start(umn_interval_notifier* sub, const umn_notifier_range* range, unsigned long cur_seq,
                               umn_interval_notifier_finish** finish) {
    MirrorDevice& dev = of(sub);
    if (!dev.lock_for(range)) return false;
    dev.counters.first_passes.fetch_add(1, std::memory_order_relaxed);
    if (!dev.options_.skip_set_seq) umn_interval_set_seq(sub, cur_seq);
    size_t first, count;
    dev.clip(range, &first, &count);
    if (dev.finish_.busy) {
      dev.clear_locked(first, count);  // the record serves another invalidation: do it all now
    } else {
      dev.finish_.busy = true;  // the translations stay usable until the second pass (a TLB flush)
      dev.finish_.first = first;
      dev.finish_.count = count;
      *finish = &dev.finish_.c;
      dev.counters.records_handed_out.fetch_add(1, std::memory_order_relaxed);
    }
    dev.lock_.unlock();
    return true;
  }
  static void invalidate_finish(umn_interval_notifier_finish* finish) {
    auto* record = reinterpret_cast<Finish*>(finish);
    MirrorDevice& dev = *record->device;
    std::lock_guard guard(dev.lock_);
    dev.counters.second_passes.fetch_add(1, std::memory_order_relaxed);
    dev.clear_locked(record->first, record->count);
    record->busy = false;
  }

  umn_mm* mm_;
  CpuPages& cpu_;
  size_t first_page_;
  std::mutex lock_;
  std::vector<Entry> table_;  // guarded by lock_
  Finish finish_;             // guarded by lock_
  Link link_{{}, this};
  Options options_;
  std::shared_mutex lifecycle_;
  bool inserted_ = false;  // guarded by lifecycle_
};

struct Mutation {
  int err = 0;             // range_start's result: 0, or -EAGAIN (refused; nothing was changed)
  size_t survivors = 0;    // devices still mapping a page of the range after range_start returned
};

// The memory-management side: invalidates pages [first, first + count) of cpu, checks that no device
// still maps them, changes them (bumps their generations) and ends the range. A refused non-blocking
// start changes nothing and has no end.
// while_open, if set, runs right after range_start returns (the time the mutator takes to change the pages).
inline Mutation mutate(umn_mm* mm, CpuPages& cpu, size_t first, size_t count, bool blockable,
                       std::span<MirrorDevice* const> devices, const std::function<void()>& while_open = {}) {
  Mutation result;
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_CLEAR, 0, mm, cpu.address(first), cpu.address(first + count));
  if (blockable) {
    umn_notifier_invalidate_range_start(&range);
  } else if ((result.err = umn_notifier_invalidate_range_start_nonblock(&range)) != 0) {
    return result;
  }
  if (while_open) while_open();
  for (MirrorDevice* device : devices) result.survivors += device->maps_any(first, count) ? 1 : 0;
  cpu.bump(first, count);
  umn_notifier_invalidate_range_end(&range);
  return result;
}

}  // namespace umn::test
