// fault_retry.cpp - a driver's fault / invalidate loop with the C++ API (the README's C++ example).
#include <cstdio>
#include <mutex>
#include <umn/umn.hpp>

class Mirror final : public umn::IntervalNotifier {
 public:
  ~Mirror() override { remove(); }
  std::mutex lock;      // the "user lock"
  bool mapped = false;  // the device translation

 private:
  bool invalidate(const umn::Range& range, unsigned long cur_seq) noexcept override {
    if (!range.blockable()) return false;
    std::lock_guard guard(lock);
    set_seq(cur_seq);
    mapped = false;  // zap the device translation before returning
    return true;
  }
};

int main() {
  auto mm = umn::AddressSpace::create().value();
  Mirror mirror;
  if (auto err = mirror.insert(mm, 0x10000, 0x4000)) return std::printf("insert: %s\n", err.message().c_str()), 1;

  auto fault = [&] {
    return umn::fault_in(
        mirror, mirror.lock, [] { /* pin pages, read addresses */ },
        [&] {
          mirror.mapped = true; /* program the device, lock held */
        });
  };
  if (fault()) return 1;
  std::printf("mapped after fault: %d\n", mirror.mapped);
  mm.invalidate(0x11000, 0x12000, umn::Event::kUnmap);
  std::printf("mapped after invalidation: %d\n", mirror.mapped);
  if (fault()) return 1;
  std::printf("mapped after re-fault: %d\n", mirror.mapped);
  return mirror.mapped ? 0 : 1;
}
