// uring_buffers.cc - io_uring fixed buffers on the registration cache (contract: umn/uring_buffers.h).
//
// A sparse table of N slots is registered once (io_uring_register_buffers_sparse). The cache's reg
// takes a free slot and points it at the region (io_uring_register_buffers_update_tag: the kernel pins
// the pages mapped there now), dereg points the slot at nothing (the kernel unpins once no request
// uses the old buffer) and frees the slot. Both run under the cache lock, which guards the free list.
// No slot free: reg returns -ENOMEM, so the cache evicts unused regions and retries once.
// The object is reference counted (1 + one per registered slot) so that a put after destroy (misuse,
// diagnosed by the cache) still finds it; the table is unregistered when the last reference goes.
#include "umn/uring_buffers.h"

#include <liburing.h>

#include <atomic>
#include <cerrno>
#include <new>
#include <vector>

#include "umn/umn.h"

struct umn_uring_buffers {
  io_uring* ring = nullptr;
  umn_regcache* cache = nullptr;
  std::vector<unsigned> free_slots;  // guarded by the cache lock (touched only in reg/dereg)
  std::atomic<long> refs{1};         // acq_rel, pairs with itself: 1 + registered slots
};

namespace {

void drop(umn_uring_buffers* bufs) noexcept {
  if (bufs->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  io_uring_unregister_buffers(bufs->ring);
  delete bufs;
}

// Points `slot` at [base, base + length) (length 0: at nothing). Return: 0 or -errno.
int update_slot(umn_uring_buffers* bufs, unsigned slot, void* base, size_t length) noexcept {
  iovec iov = {base, length};
  __u64 tag = 0;
  int ret = io_uring_register_buffers_update_tag(bufs->ring, slot, &iov, &tag, 1);
  return ret < 0 ? ret : 0;
}

int slot_reg(void* ctx, umn_regcache_region* region) {
  auto* bufs = static_cast<umn_uring_buffers*>(ctx);
  if (bufs->free_slots.empty()) return -ENOMEM;
  const unsigned slot = bufs->free_slots.back();
  int err = update_slot(bufs, slot, reinterpret_cast<void*>(region->start), region->end - region->start);
  if (err != 0) return err;
  bufs->free_slots.pop_back();
  region->handle = reinterpret_cast<void*>(static_cast<uintptr_t>(slot));
  bufs->refs.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

void slot_dereg(void* ctx, umn_regcache_region* region) {
  auto* bufs = static_cast<umn_uring_buffers*>(ctx);
  const auto slot = static_cast<unsigned>(reinterpret_cast<uintptr_t>(region->handle));
  (void)update_slot(bufs, slot, nullptr, 0);  // fails only if the ring is gone: nothing left to unpin
  bufs->free_slots.push_back(slot);           // capacity reserved at create: no allocation
  drop(bufs);
}

const umn_regcache_ops kSlotOps = {&slot_reg, &slot_dereg, nullptr};

}  // namespace

extern "C" {

int umn_uring_buffers_create(io_uring* ring, unsigned slots, const umn_regcache_params* params,
                             umn_uring_buffers** out) {
  if (ring == nullptr || slots == 0 || out == nullptr) return -EINVAL;
  auto* bufs = new (std::nothrow) umn_uring_buffers;
  if (bufs == nullptr) return -ENOMEM;
  try {
    bufs->free_slots.reserve(slots);
  } catch (...) {
    delete bufs;
    return -ENOMEM;
  }
  for (unsigned slot = slots; slot-- > 0;) bufs->free_slots.push_back(slot);
  bufs->ring = ring;
  if (int err = io_uring_register_buffers_sparse(ring, slots); err < 0) {
    delete bufs;
    return err;
  }
  if (int err = umn_regcache_create(umn_mm_process(), params, &kSlotOps, bufs, &bufs->cache); err != 0) {
    io_uring_unregister_buffers(ring);
    delete bufs;
    return err;
  }
  *out = bufs;
  return 0;
}

int umn_uring_buffers_get(umn_uring_buffers* bufs, const void* addr, size_t len, umn_uring_buffer* out) {
  if (bufs == nullptr || out == nullptr) return -EINVAL;
  umn_regcache_region* region = nullptr;
  if (int err = umn_regcache_get(bufs->cache, addr, len, &region); err != 0) return err;
  out->index = static_cast<unsigned>(reinterpret_cast<uintptr_t>(region->handle));
  out->region = region;
  return 0;
}

void umn_uring_buffers_put(umn_uring_buffers* bufs, umn_uring_buffer* buf) {
  if (bufs == nullptr || buf == nullptr) return;
  umn_regcache_put(bufs->cache, buf->region);
  buf->region = nullptr;
}

umn_regcache* umn_uring_buffers_cache(umn_uring_buffers* bufs) { return bufs != nullptr ? bufs->cache : nullptr; }

void umn_uring_buffers_destroy(umn_uring_buffers* bufs) {
  if (bufs == nullptr) return;
  umn_regcache_destroy(bufs->cache);  // deregisters every unused slot; held ones at their put
  drop(bufs);
}

}  // extern "C"
