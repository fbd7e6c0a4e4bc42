// fuzz_target.cc - libFuzzer entry point of the differential fuzzer (see harness.hpp).
// Built with clang++ -fsanitize=fuzzer,address,undefined by tests/fuzz/run_libfuzzer.sh.
#include <cstdio>
#include <cstdlib>

#include "harness.hpp"

namespace {
void print_totals() {
  umn_fuzz::reap();
  const umn_fuzz::Stats& s = umn_fuzz::stats();
  std::fprintf(stderr, "umn-fuzz totals: inputs %llu ops %llu classic-ops %llu callbacks %llu skipped-blocking %llu\n",
               static_cast<unsigned long long>(s.inputs), static_cast<unsigned long long>(s.ops),
               static_cast<unsigned long long>(s.classic_ops), static_cast<unsigned long long>(s.callbacks),
               static_cast<unsigned long long>(s.skipped));
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::atexit(print_totals);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  umn_fuzz::run_input(data, size);
  return 0;
}
