// pair_scan_bench.cc - the patcher's scan for 0f 05 byte pairs (src/sources/patch/pair_scan.hpp), which
// reads all the text of every module at installation, against the memchr scan it replaced (memchr for
// each 05 byte, the rarer of the two, then a look at the byte before), over the bytes of this process's
// libc.so file. Both must find the same pairs (checked before timing).
//   BM_PairScan_Sse2     for_each_pair(): 16 pair positions per step.
//   BM_PairScan_Memchr   the baseline.
// Prints how many times faster the SSE2 scan is (target: >= 1.3x, the reason it replaced memchr).
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "baseline.hpp"
#include "sources/patch/pair_scan.hpp"

namespace {

const std::vector<unsigned char>& libc_bytes() {
  static const std::vector<unsigned char> bytes = [] {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&std::printf), &info) == 0 || info.dli_fname == nullptr)
      return std::vector<unsigned char>{};
    std::ifstream file(info.dli_fname, std::ios::binary);
    return std::vector<unsigned char>(std::istreambuf_iterator<char>(file), {});
  }();
  return bytes;
}

size_t scan_sse2(const std::vector<unsigned char>& bytes, std::vector<uint64_t>* out) {
  out->clear();
  umn::detail::patch::for_each_pair(bytes.data(), bytes.size(), [out](uint64_t offset) {
    out->push_back(offset);
    return true;
  });
  return out->size();
}

size_t scan_memchr(const std::vector<unsigned char>& bytes, std::vector<uint64_t>* out) {
  out->clear();
  const unsigned char* begin = bytes.data();
  const unsigned char* end = begin + bytes.size();
  for (const unsigned char* p = begin + 1; p < end; ++p) {
    p = static_cast<const unsigned char*>(std::memchr(p, 0x05, static_cast<size_t>(end - p)));
    if (p == nullptr) break;
    if (p[-1] == 0x0f) out->push_back(static_cast<uint64_t>(p - 1 - begin));
  }
  return out->size();
}

template <size_t (*Scan)(const std::vector<unsigned char>&, std::vector<uint64_t>*)>
void BM_PairScan(benchmark::State& state) {
  const std::vector<unsigned char>& bytes = libc_bytes();
  if (bytes.empty()) return state.SkipWithError("libc's file could not be read");
  std::vector<uint64_t> pairs, expected;
  scan_memchr(bytes, &expected);
  if (Scan(bytes, &pairs) != expected.size() || pairs != expected) return state.SkipWithError("different pairs");
  pairs.reserve(expected.size());
  for (auto _ : state) benchmark::DoNotOptimize(Scan(bytes, &pairs));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
  state.counters["pairs"] = static_cast<double>(expected.size());
}
void BM_PairScan_Sse2(benchmark::State& state) { BM_PairScan<scan_sse2>(state); }
void BM_PairScan_Memchr(benchmark::State& state) { BM_PairScan<scan_memchr>(state); }
BENCHMARK(BM_PairScan_Sse2);
BENCHMARK(BM_PairScan_Memchr);

}  // namespace

int main(int argc, char** argv) {
  return umn::bench::run(argc, argv,
                         {{"BM_PairScan_Sse2", "BM_PairScan_Memchr", "0f 05 pair scan of libc, vs memchr", 1.3}});
}
