// latency_model.hpp - umn::sim::LatencyModel: how long a simulated device operation takes, and the
// simulation's clock types (Clock, Nanos).
//
// Locking
//   None: a LatencyModel is a value. Hardware draws from it under its own lock (hardware.hpp).
// Lifetime
//   A value; FenceSlot::lazy_latency() returns one that lives as long as the slot.
// Context
//   Any.
// Memory ordering
//   None (a plain value, shared read-only after construction).
#pragma once

#include <chrono>

namespace umn::sim {

using Clock = std::chrono::steady_clock;
using Nanos = std::chrono::nanoseconds;

// How long a device operation takes.
struct LatencyModel {
  enum class Kind { kFixed, kUniform, kLogNormal };
  Kind kind = Kind::kFixed;
  Nanos latency{50'000};  // fixed: the latency; uniform: the mean (range 0.5x..1.5x); log-normal: the median
  double sigma = 0.25;    // log-normal only: the standard deviation of ln(latency)
};

}  // namespace umn::sim
