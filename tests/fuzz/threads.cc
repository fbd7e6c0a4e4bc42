// threads.cc - the fuzzer's multi-threaded mode (see threads.hpp for what a round does and checks).
#include "threads.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <thread>
#include <vector>

#define UMN_RCU_DELAY_DEFINE_INTERPOSER
#include "support/rcu_delay.hpp"
#include "umn/umn.h"

namespace umn_fuzz {
namespace {

constexpr int kPlain = 3;

uint64_t g_seed = 0;
unsigned g_round = 0;
unsigned g_jitter_us = 0;

[[noreturn]] void fail(const char* what, int notifier) {
  std::fprintf(stderr, "--> threads mode: %s (notifier %d) in round %u of seed %llu\n", what, notifier, g_round,
               static_cast<unsigned long long>(g_seed));
  std::abort();
}

thread_local std::mt19937_64 t_rng;

// Sleeps 0..scale * jitter microseconds (0: a yield).
void pause(unsigned scale = 1) {
  const unsigned us = static_cast<unsigned>(t_rng() % (scale * g_jitter_us + 1));
  if (us == 0)
    std::this_thread::yield();
  else
    std::this_thread::sleep_for(std::chrono::microseconds(us));
}

// Seeds this thread's plan and its injected delays from the round's seed and a thread number.
void seed_thread(uint64_t round_seed, unsigned thread) {
  t_rng.seed(round_seed * 4 + thread);
  umn_test::set_jitter_seed(round_seed * 4 + thread);
}

struct Tracked {
  umn_notifier c{};  // first: a umn_notifier* is a Tracked*
  int index = -1;    // plain registrations: 0..kPlain-1; get notifiers: -1
  std::atomic<int> releases{0};
  bool release_done = false;  // plain on purpose: see threads.hpp
  std::atomic<bool> unregistered{false};
};
Tracked& tracked(umn_notifier* sub) { return *reinterpret_cast<Tracked*>(sub); }

std::atomic<long> g_callbacks{0};
std::atomic<long> g_get_releases_begun{0};
std::atomic<long> g_get_releases_done{0};
std::atomic<long> g_allocs{0};
std::atomic<long> g_frees{0};

void on_release(umn_notifier* sub, umn_mm*) {
  Tracked& t = tracked(sub);
  if (t.index < 0) g_get_releases_begun++;
  if (t.releases.fetch_add(1) != 0) fail("->release ran twice", t.index);  // C2
  pause(5);  // a release in flight for a while: long enough for a teardown to walk, unlink and wait
  t.release_done = true;
  if (t.index < 0) g_get_releases_done++;
}
void on_callback(umn_notifier* sub) {
  if (tracked(sub).unregistered.load()) fail("callback after unregister returned", tracked(sub).index);  // C3
  g_callbacks++;
}
int on_start(umn_notifier* sub, const umn_notifier_range*) {
  on_callback(sub);
  return 0;
}
void on_end(umn_notifier* sub, const umn_notifier_range*) { on_callback(sub); }
int on_young(umn_notifier* sub, umn_mm*, uint64_t, uint64_t) {
  on_callback(sub);
  return 0;
}
int on_test_young(umn_notifier* sub, umn_mm*, uint64_t) {
  on_callback(sub);
  return 0;
}
umn_notifier* on_alloc(umn_mm*) {
  g_allocs++;
  return &(new Tracked)->c;
}
void on_free(umn_notifier* sub) {
  g_frees++;
  delete &tracked(sub);  // a later callback is a use after free (ASan)
}

const umn_notifier_ops kPlainOps = {&on_release, nullptr, &on_young, &on_test_young, &on_start,
                                    &on_end,     nullptr, nullptr,   nullptr};
const umn_notifier_ops kGetOps = {&on_release, nullptr, &on_young, &on_test_young, &on_start,
                                  &on_end,     nullptr, &on_alloc, &on_free};

void unregister_all(umn_mm* mm, Tracked* plain, uint64_t round_seed) {
  seed_thread(round_seed, 1);
  int order[kPlain] = {0, 1, 2};
  std::shuffle(order, order + kPlain, t_rng);
  for (int index : order) {
    pause();
    umn_notifier_unregister(&plain[index].c, mm);
    plain[index].unregistered = true;
  }
}

void get_and_put(umn_mm* mm, uint64_t round_seed) {
  seed_thread(round_seed, 2);
  std::vector<umn_notifier*> held;
  const unsigned steps = static_cast<unsigned>(t_rng() % 12);
  for (unsigned step = 0; step < steps; ++step) {
    if (held.empty() || t_rng() % 2 == 0) {
      umn_notifier* sub = umn_notifier_get(&kGetOps, mm);
      if (UMN_IS_ERR(sub)) {
        if (UMN_PTR_ERR(sub) != -EINVAL) fail("get failed with an error other than EINVAL", -1);
        break;  // teardown has begun
      }
      held.push_back(sub);
    } else {
      umn_notifier_put(held.back());
      held.pop_back();
    }
    pause();
  }
  for (umn_notifier* sub : held) umn_notifier_put(sub);
}

void walk_until(umn_mm* mm, const std::atomic<bool>& stop, uint64_t round_seed) {
  seed_thread(round_seed, 3);
  while (!stop.load(std::memory_order_relaxed)) {
    umn_notifier_range range;
    umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0x1000, 0x3000);
    umn_notifier_invalidate_range_start(&range);  // blockable: cannot fail
    umn_notifier_invalidate_range_end(&range);
    (void)umn_notifier_clear_young(mm, 0x1000, 0x2000);
    (void)umn_notifier_test_young(mm, 0x1000);
    pause();
  }
}

// C1, right after teardown returned.
void check_after_teardown(Tracked* plain) {
  for (int i = 0; i < kPlain; ++i)
    if (!plain[i].release_done) fail("teardown returned before this notifier's ->release ran", i);
  if (g_get_releases_begun.load() != g_get_releases_done.load())
    fail("teardown returned while a get notifier's ->release was running", -1);
}

void run_round(uint64_t round_seed) {
  umn_mm* mm = umn_mm_create();
  Tracked plain[kPlain];
  for (int i = 0; i < kPlain; ++i) {
    plain[i].index = i;
    plain[i].c.ops = &kPlainOps;
    if (umn_notifier_register(&plain[i].c, mm) != 0) fail("register failed", i);
  }
  std::atomic<bool> stop{false};
  std::thread unregistering(unregister_all, mm, plain, round_seed);
  std::thread getting(get_and_put, mm, round_seed);
  std::thread walking(walk_until, mm, std::cref(stop), round_seed);
  seed_thread(round_seed, 0);
  for (unsigned k = static_cast<unsigned>(t_rng() % 4); k > 0; --k) pause();
  umn_notifier_release(mm);
  check_after_teardown(plain);
  stop = true;
  unregistering.join();
  getting.join();
  walking.join();
  for (int i = 0; i < kPlain; ++i)
    if (plain[i].releases.load() != 1) fail("->release did not run exactly once", i);  // C2
  umn_mm_destroy(mm);
  umn_notifier_synchronize();
  if (g_allocs.load() != g_frees.load()) fail("a get notifier was not freed after synchronize", -1);  // C4
}

}  // namespace

uint64_t run_threads(uint64_t seed, unsigned rounds, unsigned jitter_us) {
  g_seed = seed;
  g_jitter_us = jitter_us;
  umn_test::g_read_lock_jitter_us.store(jitter_us);
  g_callbacks = 0;
  for (g_round = 0; g_round < rounds; ++g_round) run_round(seed * 1000003 + g_round);
  umn_test::g_read_lock_jitter_us.store(0);
  return static_cast<uint64_t>(g_callbacks.load());
}

}  // namespace umn_fuzz
