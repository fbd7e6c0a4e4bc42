// scratch.cc - giving back the patcher's scratch memory (contract: scratch.hpp).
#include "sources/patch/scratch.hpp"

#include <atomic>

#include "sources/sys/sys.hpp"

namespace umn::detail::patch {
namespace {

std::atomic<UnmapFn> g_unmap{nullptr};  // release by set_scratch_unmap, acquire by unmap_scratch

}  // namespace

void set_scratch_unmap(UnmapFn fn) noexcept { g_unmap.store(fn, std::memory_order_release); }

long unmap_scratch(void* addr, size_t length) noexcept {
  const UnmapFn fn = g_unmap.load(std::memory_order_acquire);
  return fn != nullptr ? fn(addr, length) : sys::munmap(addr, length);
}

}  // namespace umn::detail::patch
