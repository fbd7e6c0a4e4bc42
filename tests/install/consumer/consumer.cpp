// consumer.cpp - a C++ user of the installed umn through find_package(umn).
#include <cstdio>
#include <umn/umn.hpp>

int main() {
  auto mm = umn::AddressSpace::create().value();
  int calls = 0;
  umn::FunctionNotifier notifier([&](umn::IntervalNotifier& self, const umn::Range&, unsigned long cur_seq) {
    self.set_seq(cur_seq);
    ++calls;
    return true;
  });
  if (notifier.insert(mm, 0x1000, 0x1000)) return 1;
  mm.invalidate(0x1000, 0x2000);
  std::printf("C++ consumer: %s\n", calls == 1 ? "ok" : "FAILED");
  return calls == 1 ? 0 : 1;
}
