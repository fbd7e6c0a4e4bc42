// rig.hpp - a small simulated system for the sim tests: hardware, user memory, an address space, devices
// and (optionally) a driver over `ranges` ranges of `pages` pages each.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <vector>

#include "users/sim/device.hpp"
#include "users/sim/userptr.hpp"

namespace umn::sim::testing {

using namespace std::chrono_literals;

inline DeviceConfig latencies(Nanos tlb, Nanos preempt) {
  DeviceConfig config;
  config.tlb.latency = tlb;
  config.preempt.latency = preempt;
  return config;
}

struct Rig {
  Rig(unsigned devices, unsigned ranges, const DeviceConfig& config, unsigned pages = 4)
      : memory(0x10000000, uint64_t{ranges} * pages), mm(std::move(AddressSpace::create().value())) {
    for (unsigned d = 0; d < devices; d++) {
      owned.push_back(std::make_unique<Device>(hardware, memory, config, d));
      devices_.push_back(owned.back().get());
    }
    for (unsigned r = 0; r < ranges; r++) spans.push_back({uint64_t{r} * pages, pages});
  }
  ~Rig() { driver.reset(); }

  void make_driver(DriverMode mode) {
    auto created = Driver::create(mode, mm, memory, devices_, spans);
    ASSERT_TRUE(created.ok());
    driver = std::move(created.value());
  }
  // Invalidates range r the way the memory-management side does: start, remap the pages, end.
  void invalidate(unsigned r) {
    const uint64_t start = memory.address(spans[r].first);
    Invalidation invalidation(mm, start, start + spans[r].count * UserMemory::kPageSize);
    memory.remap(spans[r]);
  }
  Device& device(unsigned d) { return *devices_[d]; }
  uint64_t stale() const {
    uint64_t total = 0;
    for (const auto& device : owned) total += device->stale_accesses();
    return total;
  }

  Hardware hardware{7};
  UserMemory memory;
  AddressSpace mm;
  std::vector<std::unique_ptr<Device>> owned;
  std::vector<Device*> devices_;
  std::vector<PageSpan> spans;
  std::unique_ptr<Driver> driver;
};

}  // namespace umn::sim::testing
