// device.cc - the simulated device: page table, TLB, engines and their preempt fences.
//
// An engine is either running (its preempt fence in flight, lazily: preemption starts only when someone
// enables signalling) or preempted (fence signaled). The timer thread stops the engine in the fence's
// retire() hook, under the device lock; jobs read under the same lock and give up when the engine is
// stopped, so after the preempt fence signaled no job reads on that engine until resume().
#include "users/sim/device.hpp"

#include <algorithm>

#include "base/check.hpp"

namespace umn::sim {

UserMemory::UserMemory(uint64_t base, uint64_t pages)
    : base_(base), pages_(pages), generations_(new std::atomic<uint64_t>[pages]) {
  for (uint64_t page = 0; page < pages; page++) generations_[page].store(1, std::memory_order_relaxed);
}

void UserMemory::remap(PageSpan span) noexcept {
  for (uint64_t page = span.first; page < span.first + span.count; page++)
    generations_[page].fetch_add(1, std::memory_order_release);  // pairs with generation()
}

TlbInvalidation::TlbInvalidation(Device& device) noexcept : FenceSlot(device.hardware()), device_(device) {}

void TlbInvalidation::retire() noexcept { device_.flush_tlb(span_); }

// One engine: its running state (device lock) and its preempt fence.
class Device::Engine final : public FenceSlot {
 public:
  Engine(Device& device) noexcept : FenceSlot(device.hardware()), device_(device) {}
  ~Engine() override { detach(); }
  bool running = false;  // guarded by device_.lock_

 private:
  void retire() noexcept override { device_.stop(*this); }
  const LatencyModel* lazy_latency() const noexcept override { return &device_.config_.preempt; }
  Device& device_;
};

Device::Device(Hardware& hardware, UserMemory& memory, const DeviceConfig& config, unsigned id)
    : hardware_(hardware),
      memory_(memory),
      config_(config),
      id_(id),
      page_table_(memory.pages(), 0),
      tlb_(memory.pages(), 0) {
  const unsigned engines = std::clamp(config.engines, 1u, kMaxEngines);
  for (unsigned i = 0; i < engines; i++) engines_.push_back(std::make_unique<Engine>(*this));
}

Device::~Device() = default;

void Device::map(PageSpan span, std::span<const uint64_t> generations) noexcept {
  detail::MutexLock guard(lock_);
  std::copy_n(generations.begin(), span.count, page_table_.begin() + static_cast<ptrdiff_t>(span.first));
}

void Device::zap(PageSpan span) noexcept {
  detail::MutexLock guard(lock_);
  zap_locked(span);
}

void Device::zap_locked(PageSpan span) noexcept {
  std::fill_n(page_table_.begin() + static_cast<ptrdiff_t>(span.first), span.count, 0);
}

bool Device::mapped(uint64_t page) noexcept {
  detail::MutexLock guard(lock_);
  return page_table_[page] != 0;
}

Fence Device::submit_tlb_invalidate(PageSpan span, TlbInvalidation& op) noexcept {
  Submission submission(hardware_);
  return submit_tlb_invalidate(span, op, submission);
}

Fence Device::submit_tlb_invalidate(PageSpan span, TlbInvalidation& op, Submission& submission) noexcept {
  op.span_ = span;
  Fence fence = op.arm();
  op.schedule(config_.tlb, submission);
  return fence;
}

void Device::flush_tlb(PageSpan span) noexcept {
  detail::MutexLock guard(lock_);
  std::fill_n(tlb_.begin() + static_cast<ptrdiff_t>(span.first), span.count, 0);
}

unsigned Device::vm_fences(std::span<Fence, kMaxEngines> out) noexcept {
  detail::MutexLock guard(lock_);
  return vm_fences_locked(out);
}

unsigned Device::vm_fences_locked(std::span<Fence, kMaxEngines> out) noexcept {
  for (size_t i = 0; i < engines_.size(); i++) out[i] = engines_[i]->current();
  return engines();
}

unsigned Device::zap_and_fences(PageSpan span, bool zap, std::span<Fence, kMaxEngines> out) noexcept {
  detail::MutexLock guard(lock_);
  if (zap) zap_locked(span);
  return vm_fences_locked(out);
}

Fence Device::preempt(unsigned engine) noexcept {
  Fence fence;
  {
    detail::MutexLock guard(lock_);
    fence = engines_[engine]->current();
  }
  fence.enable_signaling();
  return fence;
}

void Device::resume() noexcept {
  detail::MutexLock guard(lock_);
  for (auto& engine : engines_) {
    if (engine->running) continue;
    engine->running = true;
    engine->arm();
  }
}

bool Device::running(unsigned engine) noexcept {
  detail::MutexLock guard(lock_);
  return engines_[engine]->running;
}

void Device::stop(Engine& engine) noexcept {
  detail::MutexLock guard(lock_);
  engine.running = false;
}

Access Device::read(unsigned engine, uint64_t page) noexcept {
  detail::MutexLock guard(lock_);
  if (!engines_[engine]->running) return Access::kPreempted;
  uint64_t translation = tlb_[page];
  if (translation == 0) {
    translation = page_table_[page];
    if (translation == 0) return Access::kPageFault;
    tlb_[page] = translation;
  }
  reads_.fetch_add(1, std::memory_order_relaxed);
  if (translation == memory_.generation(page)) return Access::kOk;
  stale_.fetch_add(1, std::memory_order_relaxed);
  return Access::kStale;
}

}  // namespace umn::sim
