// seed.hpp - fixed, printed seeds for randomized tests.
//
// Every randomized test takes its seed from test_seed(default): the default unless the environment sets
// UMN_TEST_SEED. The seed is printed (and recorded as a GoogleTest property) so a failure can be replayed.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace umn::test {

// The seed to use: UMN_TEST_SEED if set, else default_seed. Prints it.
inline uint64_t test_seed(uint64_t default_seed) {
  uint64_t seed = default_seed;
  if (const char* env = std::getenv("UMN_TEST_SEED"); env != nullptr && *env != '\0')
    seed = std::strtoull(env, nullptr, 0);
  std::printf("[   SEED   ] %llu (replay with UMN_TEST_SEED=%llu)\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(seed));
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return seed;
}

}  // namespace umn::test
