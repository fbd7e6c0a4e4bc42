// regcache.hpp - umn::RegCache: the registration cache of umn/regcache.h for C++, with RAII handles.
//
// Locking, Context, Memory ordering: exactly those of umn/regcache.h (this is a thin layer). The
//   callables in Ops run where the C ops run: reg/dereg under the cache lock in a cache call,
//   invalidate inside the notifier (no allocation, no lock the unmapping code may hold, no cache call).
// Lifetime
//   - A Handle holds one reference (get .. destruction or reset()); it is move-only.
//   - Destroying the RegCache while Handles are alive is diagnosed (as umn_regcache_destroy); the
//     handles' regions stay registered until they are released, and the Ops callables stay alive until
//     the last of them is deregistered.
//
//   auto cache = umn::RegCache::create(umn::AddressSpace::process(), {}, {.reg = ..., .dereg = ...});
//   if (auto handle = cache.value().get(buf, len)) use(handle.value().handle());
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "umn/address_space.hpp"
#include "umn/regcache.h"
#include "umn/result.hpp"

namespace umn {

class RegCache {
 public:
  struct Ops {
    std::function<int(umn_regcache_region&)> reg;  // 0 or -errno; sets region.handle
    std::function<void(umn_regcache_region&)> dereg;
    std::function<void(umn_regcache_region&)> invalidate;  // optional
  };

  // One reference to a region; released by the destructor or reset().
  class Handle {
   public:
    Handle() = default;
    Handle(Handle&& other) noexcept
        : cache_(std::exchange(other.cache_, nullptr)), region_(std::exchange(other.region_, nullptr)) {}
    Handle& operator=(Handle&& other) noexcept {
      if (this != &other) {
        reset();
        cache_ = std::exchange(other.cache_, nullptr);
        region_ = std::exchange(other.region_, nullptr);
      }
      return *this;
    }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    ~Handle() { reset(); }

    // Drops the reference now (umn_regcache_put). Idempotent.
    void reset() noexcept {
      if (region_ != nullptr) umn_regcache_put(cache_, std::exchange(region_, nullptr));
    }
    explicit operator bool() const noexcept { return region_ != nullptr; }
    [[nodiscard]] uint64_t start() const noexcept { return region_->start; }
    [[nodiscard]] uint64_t end() const noexcept { return region_->end; }
    // What reg stored. Precondition: the handle holds a region.
    [[nodiscard]] void* handle() const noexcept { return region_->handle; }
    [[nodiscard]] umn_regcache_region* region() const noexcept { return region_; }

   private:
    friend class RegCache;
    Handle(umn_regcache* cache, umn_regcache_region* region) noexcept : cache_(cache), region_(region) {}
    umn_regcache* cache_ = nullptr;
    umn_regcache_region* region_ = nullptr;
  };

  // A cache over `mm` (which must outlive it). Errors: those of umn_regcache_create (EINVAL, ENOMEM).
  static Result<RegCache> create(const AddressSpace& mm, const umn_regcache_params& params, Ops ops) {
    if (!ops.reg || !ops.dereg) return errno_code(-EINVAL);
    auto* state = new State{std::move(ops), {1}};
    umn_regcache* cache = nullptr;
    if (int err = umn_regcache_create(mm.get(), &params, &kOps, state, &cache); err != 0) {
      delete state;
      return errno_code(err);
    }
    return RegCache(cache, state);
  }

  RegCache(RegCache&& other) noexcept
      : cache_(std::exchange(other.cache_, nullptr)), state_(std::exchange(other.state_, nullptr)) {}
  RegCache& operator=(RegCache&& other) noexcept {
    if (this != &other) {
      reset();
      cache_ = std::exchange(other.cache_, nullptr);
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  RegCache(const RegCache&) = delete;
  RegCache& operator=(const RegCache&) = delete;
  ~RegCache() { reset(); }

  // A handle on a region covering [addr, addr + len). Errors: those of umn_regcache_get.
  Result<Handle> get(const void* addr, size_t len) noexcept {
    umn_regcache_region* region = nullptr;
    if (int err = umn_regcache_get(cache_, addr, len, &region); err != 0) return errno_code(err);
    return Handle(cache_, region);
  }
  void flush() noexcept { umn_regcache_flush(cache_); }
  [[nodiscard]] struct umn_regcache_stats stats() const noexcept {
    struct umn_regcache_stats out {};
    umn_regcache_stats(cache_, &out);
    return out;
  }
  [[nodiscard]] umn_regcache* native() const noexcept { return cache_; }

 private:
  // The callables, alive while the RegCache or any registration made through them is.
  struct State {
    Ops ops;
    std::atomic<long> refs;  // 1 for the RegCache + 1 per registered region; acq_rel, pairs with itself
    void drop() noexcept {
      if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }
  };
  static int reg(void* ctx, umn_regcache_region* region) noexcept {
    auto* state = static_cast<State*>(ctx);
    int err = state->ops.reg(*region);
    if (err == 0) state->refs.fetch_add(1, std::memory_order_relaxed);
    return err;
  }
  static void dereg(void* ctx, umn_regcache_region* region) noexcept {
    auto* state = static_cast<State*>(ctx);
    state->ops.dereg(*region);
    state->drop();
  }
  static void invalidate(void* ctx, umn_regcache_region* region) noexcept {
    auto* state = static_cast<State*>(ctx);
    if (state->ops.invalidate) state->ops.invalidate(*region);
  }
  static constexpr umn_regcache_ops kOps = {&RegCache::reg, &RegCache::dereg, &RegCache::invalidate};

  RegCache(umn_regcache* cache, State* state) noexcept : cache_(cache), state_(state) {}
  void reset() noexcept {
    if (cache_ == nullptr) return;
    umn_regcache_destroy(std::exchange(cache_, nullptr));
    std::exchange(state_, nullptr)->drop();
  }

  umn_regcache* cache_ = nullptr;
  State* state_ = nullptr;
};

}  // namespace umn
