// classic_stress_test.cc - classic notifiers under concurrency, parameterised by invalidator threads.
//
//   RegisterUnregisterCycles   registrars register / unregister heap notifiers (freed right after
//                              unregister: ASan sees any late use) while invalidators run blockable and
//                              non-blockable ranges. Checked per notifier: no end without its start
//                              (registration exclusion, including range_end's snapshot), no callback after
//                              unregister returned, none running when it returns, ->release exactly once.
//   GetPutWhileInvalidatingAndReleasing
//                              threads get / put one key while others invalidate and one tears the address
//                              space down; checked: alloc == free after synchronize, ->release at most
//                              once per notifier, no use after free (ASan), no race (TSan).
// Sizes: CI-sized by default (seconds under TSan); UMN_STRESS_LONG=1 runs 10^5 register/unregister
// cycles and 10^3 get/put rounds.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "umn/umn.h"

namespace {

bool long_run() {
  const char* env = std::getenv("UMN_STRESS_LONG");
  return env != nullptr && *env != '\0' && *env != '0';
}

// Invalidates mm until stop: alternately blockable and non-blockable ranges, yielding between ranges
// (registration has no writer preference: it needs moments with no range in flight).
void invalidate_until(umn_mm* mm, const std::atomic<bool>& stop, std::atomic<long>* ranges) {
  for (unsigned i = 0; !stop.load(std::memory_order_relaxed); ++i) {
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0x1000 * (i % 16), 0x1000 * (i % 16 + 1));
    if (i % 2 == 0) {
      umn_notifier_invalidate_range_start(&range);
      if (i % 4 == 0) std::this_thread::yield();  // a range held open: registrations must wait for it
      umn_notifier_invalidate_range_end(&range);
    } else if (umn_notifier_invalidate_range_start_nonblock(&range) == 0) {
      umn_notifier_invalidate_range_end(&range);
    }
    ranges->fetch_add(1, std::memory_order_relaxed);
    std::this_thread::yield();
  }
}

// A notifier that checks its own protocol. Violations are counted (checked by the test thread).
struct Checked {
  umn_notifier c{};  // first
  std::mutex mu;
  std::vector<const umn_notifier_range*> open;  // ranges started and not ended (reserved: no allocation)
  std::atomic<int> in_flight{0};
  std::atomic<bool> dead{false};
  std::atomic<int> releases{0};
  static inline std::atomic<long> violations{0};

  Checked() { open.reserve(64); }
  static Checked& of(umn_notifier* sub) { return *reinterpret_cast<Checked*>(sub); }
  void enter() {
    in_flight++;
    if (dead.load()) violations++;  // called after unregister returned
  }
  void leave() { in_flight--; }

  static int start(umn_notifier* sub, const umn_notifier_range* range) {
    Checked& self = of(sub);
    self.enter();
    {
      std::lock_guard guard(self.mu);
      self.open.push_back(range);
    }
    self.leave();
    return 0;
  }
  static void end(umn_notifier* sub, const umn_notifier_range* range) {
    Checked& self = of(sub);
    self.enter();
    {
      std::lock_guard guard(self.mu);
      bool found = false;
      for (auto it = self.open.begin(); it != self.open.end(); ++it)
        if (*it == range) {
          self.open.erase(it);
          found = true;
          break;
        }
      if (!found) violations++;  // an end without its start
    }
    self.leave();
  }
  static void release(umn_notifier* sub, umn_mm*) {
    of(sub).enter();
    of(sub).releases++;
    of(sub).leave();
  }
  // Start-only and failing when non-blockable: exercises the -EAGAIN path (ends for everyone else).
  static int failing_start(umn_notifier* sub, const umn_notifier_range* range) {
    of(sub).enter();
    of(sub).leave();
    return umn_notifier_range_blockable(range) ? 0 : -EAGAIN;
  }
};

const umn_notifier_ops kCheckedOps = {&Checked::release, nullptr, nullptr, nullptr, &Checked::start,
                                      &Checked::end, nullptr, nullptr, nullptr};
const umn_notifier_ops kFailingOps = {&Checked::release, nullptr, nullptr, nullptr, &Checked::failing_start,
                                      nullptr, nullptr, nullptr, nullptr};

// One register / unregister cycle of a fresh heap notifier, checking what unregister promises.
// Every other cycle stays registered until a range has completed (bounded), so that registrations and
// ranges really interleave whatever the scheduler does.
void register_cycle(umn_mm* mm, unsigned i, const std::atomic<long>& ranges) {
  auto* checked = new Checked;
  checked->c.ops = (i % 8 == 7) ? &kFailingOps : &kCheckedOps;
  ASSERT_EQ(umn_notifier_register(&checked->c, mm), 0);
  const long seen = ranges.load();
  for (int spin = 0; i % 2 == 0 && spin < 1000 && ranges.load() == seen; ++spin) std::this_thread::yield();
  umn_notifier_unregister(&checked->c, mm);
  EXPECT_EQ(checked->in_flight.load(), 0) << "a callback was running when unregister returned";
  EXPECT_EQ(checked->releases.load(), 1);
  checked->dead = true;
  delete checked;  // any later use is a use-after-free for ASan
}

class ClassicStress : public ::testing::TestWithParam<int> {};

TEST_P(ClassicStress, RegisterUnregisterCycles) {
  const int invalidators = GetParam();
  const unsigned total = long_run() ? 100000 : 2000;
  constexpr int kRegistrars = 2;
  umn_mm* mm = umn_mm_create();
  Checked::violations = 0;
  std::atomic<bool> stop{false};
  std::atomic<long> ranges{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < invalidators; ++t) threads.emplace_back(invalidate_until, mm, std::cref(stop), &ranges);
  while (ranges.load() < 10L * invalidators) std::this_thread::yield();  // invalidators are running
  std::vector<std::thread> registrars;
  for (int r = 0; r < kRegistrars; ++r)
    registrars.emplace_back([&, r] {
      for (unsigned i = r; i < total; i += kRegistrars) register_cycle(mm, i, ranges);
    });
  for (auto& t : registrars) t.join();
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(Checked::violations.load(), 0);
  std::printf("[ INFO     ] %u register/unregister cycles against %ld ranges\n", total, ranges.load());
  umn_mm_destroy(mm);
}

// get/put of one key.
struct Shared {
  umn_notifier c{};
  std::atomic<int> releases{0};
  static inline std::atomic<long> allocs{0}, frees{0}, bad_releases{0};
  static umn_notifier* alloc(umn_mm*) {
    allocs++;
    return &(new Shared)->c;
  }
  static void free(umn_notifier* sub) {
    auto* shared = reinterpret_cast<Shared*>(sub);
    if (shared->releases.load() > 1) bad_releases++;
    frees++;
    delete shared;
  }
  static void release(umn_notifier* sub, umn_mm*) { reinterpret_cast<Shared*>(sub)->releases++; }
  static int start(umn_notifier*, const umn_notifier_range*) { return 0; }
  static void end(umn_notifier*, const umn_notifier_range*) {}
};
const umn_notifier_ops kSharedOps = {&Shared::release, nullptr, nullptr, nullptr, &Shared::start,
                                     &Shared::end, nullptr, &Shared::alloc, &Shared::free};

// Gets and puts the key until stop, holding up to 4 users at a time.
void get_put_until(umn_mm* mm, const std::atomic<bool>& stop) {
  std::vector<umn_notifier*> held;
  for (unsigned i = 0; !stop.load(std::memory_order_relaxed) || !held.empty(); ++i) {
    if (!stop.load(std::memory_order_relaxed) && held.size() < 4 && i % 3 != 2) {
      umn_notifier* sub = umn_notifier_get(&kSharedOps, mm);
      if (!UMN_IS_ERR(sub)) held.push_back(sub);
      else ASSERT_EQ(UMN_PTR_ERR(sub), -EINVAL);  // the address space was released meanwhile
    } else if (!held.empty()) {
      umn_notifier_put(held.back());
      held.pop_back();
    }
  }
}

TEST_P(ClassicStress, GetPutWhileInvalidatingAndReleasing) {
  const int invalidators = GetParam();
  const int rounds = long_run() ? 1000 : 40;
  umn_notifier_synchronize();
  Shared::allocs = 0;
  Shared::frees = 0;
  Shared::bad_releases = 0;
  for (int round = 0; round < rounds; ++round) {
    umn_mm* mm = umn_mm_create();
    std::atomic<bool> stop{false};
    std::atomic<long> ranges{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < invalidators; ++t) threads.emplace_back(invalidate_until, mm, std::cref(stop), &ranges);
    for (int t = 0; t < 3; ++t) threads.emplace_back(get_put_until, mm, std::cref(stop));
    std::this_thread::sleep_for(std::chrono::microseconds(200 + 50 * (round % 8)));
    umn_notifier_release(mm);  // teardown in the middle of it all
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    stop = true;
    for (auto& t : threads) t.join();
    umn_mm_destroy(mm);  // every put is done: nothing left to diagnose
  }
  umn_notifier_synchronize();
  EXPECT_EQ(Shared::allocs.load(), Shared::frees.load());
  EXPECT_EQ(Shared::bad_releases.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Invalidators, ClassicStress, ::testing::Values(1, 2, 4));

}  // namespace
