// classic_support.hpp - test doubles for the classic-notifier tests.
//
//   Diags          installs a diagnostic hook for a scope and records (call, message); restores NULL.
//   Rec            a C umn_notifier that records every callback in a shared, ordered log, with
//                  configurable ops (which callbacks exist) and answers.
//   BareNotifier   a C umn_notifier with an ops table the test fills in (callbacks written per test).
//   Latch          a one-shot gate a callback can block on, with "entered" signalling.
//
// Locking: Diags and the log have their own mutexes (callbacks run on any thread). Lifetime: a Rec must
// outlive its registration (unregister before destroying it). Context: tests only. Memory ordering: the
// counters are seq_cst atomics; the log and Latch are ordered by their mutexes.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "umn/umn.h"

namespace umn::test {

class Diags {
 public:
  Diags() { umn_set_diagnostic_hook(&Diags::hook, this); }
  ~Diags() { umn_set_diagnostic_hook(nullptr, nullptr); }
  Diags(const Diags&) = delete;
  Diags& operator=(const Diags&) = delete;

  // Diagnostics whose message contains fragment (all when empty).
  size_t count(const std::string& fragment = "") const {
    std::lock_guard guard(mu_);
    size_t n = 0;
    for (const std::string& m : messages_)
      if (m.find(fragment) != std::string::npos) ++n;
    return n;
  }

 private:
  static void hook(void* context, const char* call, const char* message) {
    auto* self = static_cast<Diags*>(context);
    std::lock_guard guard(self->mu_);
    self->messages_.push_back(std::string(call) + ": " + message);
  }
  mutable std::mutex mu_;
  std::vector<std::string> messages_;
};

// An ordered log of "<name>:<event>" entries.
class Log {
 public:
  void add(const std::string& entry) {
    std::lock_guard guard(mu_);
    entries_.push_back(entry);
  }
  std::vector<std::string> take() {
    std::lock_guard guard(mu_);
    return std::exchange(entries_, {});
  }

 private:
  std::mutex mu_;
  std::vector<std::string> entries_;
};

// Which callbacks a Rec's ops have.
enum RecOps : unsigned {
  kRelease = 1u << 0,
  kStart = 1u << 1,
  kEnd = 1u << 2,
  kClearFlushYoung = 1u << 3,
  kClearYoung = 1u << 4,
  kTestYoung = 1u << 5,
  kArch = 1u << 6,
  kRange = kStart | kEnd,
  kAll = kRelease | kRange | kClearFlushYoung | kClearYoung | kTestYoung,
};

struct Rec {
  umn_notifier c{};  // first: a umn_notifier* is a Rec*
  std::string name;
  Log* log;
  umn_notifier_ops ops{};
  int start_result = 0;  // what invalidate_range_start returns
  int young = 0;         // what the young callbacks return
  std::atomic<int> starts{0}, ends{0}, releases{0}, youngs{0}, archs{0};
  std::atomic<unsigned> last_flags{0};

  Rec(std::string rec_name, Log* shared_log, unsigned which) : name(std::move(rec_name)), log(shared_log) {
    if (which & kRelease) ops.release = &on_release;
    if (which & kStart) ops.invalidate_range_start = &on_start;
    if (which & kEnd) ops.invalidate_range_end = &on_end;
    if (which & kClearFlushYoung) ops.clear_flush_young = &on_clear_flush_young;
    if (which & kClearYoung) ops.clear_young = &on_clear_young;
    if (which & kTestYoung) ops.test_young = &on_test_young;
    if (which & kArch) ops.arch_invalidate_secondary_tlbs = &on_arch;
    c.ops = &ops;
  }
  static Rec& of(umn_notifier* sub) { return *reinterpret_cast<Rec*>(sub); }
  void note(const char* event) {
    if (log != nullptr) log->add(name + ":" + event);
  }

  static void on_release(umn_notifier* sub, umn_mm*) {
    of(sub).releases++;
    of(sub).note("release");
  }
  static int on_start(umn_notifier* sub, const umn_notifier_range* range) {
    of(sub).starts++;
    of(sub).last_flags = range->flags;
    of(sub).note("start");
    return of(sub).start_result;
  }
  static void on_end(umn_notifier* sub, const umn_notifier_range*) {
    of(sub).ends++;
    of(sub).note("end");
  }
  static int on_clear_flush_young(umn_notifier* sub, umn_mm*, uint64_t, uint64_t) {
    of(sub).youngs++;
    of(sub).note("clear_flush_young");
    return of(sub).young;
  }
  static int on_clear_young(umn_notifier* sub, umn_mm*, uint64_t, uint64_t) {
    of(sub).youngs++;
    of(sub).note("clear_young");
    return of(sub).young;
  }
  static int on_test_young(umn_notifier* sub, umn_mm*, uint64_t) {
    of(sub).youngs++;
    of(sub).note("test_young");
    return of(sub).young;
  }
  static void on_arch(umn_notifier* sub, umn_mm*, uint64_t, uint64_t) {
    of(sub).archs++;
    of(sub).note("arch");
  }
};
static_assert(offsetof(Rec, c) == 0);

// A notifier whose ops table the test fills before registering it. Not copyable: sub points at ops.
struct BareNotifier {
  umn_notifier_ops ops{};
  umn_notifier sub{};
  BareNotifier() { sub.ops = &ops; }
  BareNotifier(const BareNotifier&) = delete;
  BareNotifier& operator=(const BareNotifier&) = delete;
};

// A gate: wait() blocks until open(); entered() tells whether someone is waiting in it.
class Latch {
 public:
  void wait() {
    std::unique_lock held(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(held, [this] { return open_; });
  }
  void open() {
    std::lock_guard guard(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until a thread is blocked in wait(). Return: false after 10 s.
  bool await_entered() {
    std::unique_lock held(mu_);
    return cv_.wait_for(held, std::chrono::seconds(10), [this] { return entered_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool open_ = false;
};

// One blockable invalidation [start, end) of mm, started and ended at once.
inline void invalidate(umn_mm* mm, uint64_t start = 0x1000, uint64_t end = 0x2000) {
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, start, end);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
}

// Runs fn on a new thread; joined by the destructor.
class Thread {
 public:
  template <class Fn>
  explicit Thread(Fn fn) : thread_(std::move(fn)) {}
  ~Thread() { join(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::thread thread_;
};

// Polls pred for up to 10 s.
template <class Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 10000; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

}  // namespace umn::test
