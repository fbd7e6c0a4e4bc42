// replay_main.cc - runs the differential harness without libFuzzer (any compiler, any sanitizer).
//   umn_fuzz_replay FILE|DIR...              every input file (the corpus test)
//   umn_fuzz_replay --random N [--seed S]    N pseudo-random inputs from a printed seed
//   umn_fuzz_replay --threads N [--seed S]   N rounds of the multi-threaded classic mode (threads.hpp)
#include <dirent.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "harness.hpp"
#include "threads.hpp"

namespace {

int run_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return 1;
  }
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  umn_fuzz::run_input(bytes.data(), bytes.size());
  return 0;
}

int run_path(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    std::fprintf(stderr, "no such file: %s\n", path.c_str());
    return 1;
  }
  if (!S_ISDIR(st.st_mode)) return run_file(path);
  DIR* dir = opendir(path.c_str());
  int errors = 0;
  std::vector<std::string> names;
  while (dirent* entry = readdir(dir))
    if (entry->d_name[0] != '.') names.emplace_back(entry->d_name);
  closedir(dir);
  for (const std::string& name : names) errors += run_path(path + "/" + name);
  return errors;
}

}  // namespace

int main(int argc, char** argv) {
  int errors = 0;
  unsigned threads_rounds = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      const auto rounds = static_cast<unsigned>(std::strtoul(argv[++i], nullptr, 0));
      unsigned long seed = 1;
      if (i + 2 < argc && std::strcmp(argv[i + 1], "--seed") == 0) {
        seed = std::strtoul(argv[i + 2], nullptr, 0);
        i += 2;
      }
      const unsigned jitter_us = 200;
      std::printf("threads mode: %u rounds, seed %lu, read-side delays up to %u us\n", rounds, seed, jitter_us);
      const uint64_t callbacks = umn_fuzz::run_threads(seed, rounds, jitter_us);
      std::printf("threads mode: %u rounds passed, %llu walker callbacks\n", rounds,
                  static_cast<unsigned long long>(callbacks));
      threads_rounds += rounds;
    } else if (std::strcmp(argv[i], "--random") == 0 && i + 1 < argc) {
      const unsigned long count = std::strtoul(argv[++i], nullptr, 0);
      unsigned long seed = 1;
      if (i + 2 < argc && std::strcmp(argv[i + 1], "--seed") == 0) {
        seed = std::strtoul(argv[i + 2], nullptr, 0);
        i += 2;
      }
      std::printf("random inputs: %lu, seed %lu\n", count, seed);
      std::mt19937_64 rng(seed);
      std::vector<uint8_t> bytes;
      for (unsigned long k = 0; k < count; ++k) {
        bytes.resize(16 + rng() % 240);
        for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
        umn_fuzz::run_input(bytes.data(), bytes.size());
      }
    } else {
      errors += run_path(argv[i]);
    }
  }
  if (threads_rounds > 0 && errors == 0 && umn_fuzz::stats().inputs == 0) return 0;  // threads mode only
  umn_fuzz::reap();
  const umn_fuzz::Stats& s = umn_fuzz::stats();
  std::printf("inputs %llu, operations %llu (classic %llu), callbacks compared %llu, skipped (would block) %llu: %s\n",
              static_cast<unsigned long long>(s.inputs), static_cast<unsigned long long>(s.ops),
              static_cast<unsigned long long>(s.classic_ops), static_cast<unsigned long long>(s.callbacks),
              static_cast<unsigned long long>(s.skipped), errors == 0 ? "umn agrees with the model" : "errors");
  return errors == 0 && s.inputs > 0 ? 0 : 1;
}
