// misuse_test.cc - every public call's misuse reports a clear diagnostic (through the hook of
// umn_set_diagnostic_hook, naming the call) and leaves the address space unchanged and usable.
// Each test: misuse -> expect exactly the diagnostics named -> ExpectUsable(mm) proves that inserts,
// invalidations, read_begin/read_retry and removes still work as before.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "umn/umn.h"

namespace {

constexpr uint64_t kPage = 4096;

// Records every diagnostic: (call, message).
class Diagnostics {
 public:
  Diagnostics() { umn_set_diagnostic_hook(&Diagnostics::hook, this); }
  ~Diagnostics() { umn_set_diagnostic_hook(nullptr, nullptr); }
  std::vector<std::string> take() {
    std::lock_guard guard(lock_);
    std::vector<std::string> out;
    out.swap(calls_);
    return out;
  }
  std::string last_message() {
    std::lock_guard guard(lock_);
    return message_;
  }

 private:
  static void hook(void* self, const char* call, const char* message) {
    auto* d = static_cast<Diagnostics*>(self);
    std::lock_guard guard(d->lock_);
    d->calls_.emplace_back(call);
    d->message_ = message;
  }
  std::mutex lock_;
  std::vector<std::string> calls_;
  std::string message_;
};

struct Counting {
  umn_interval_notifier notifier;
  int calls = 0;
  Counting() { std::memset(&notifier, 0, sizeof(notifier)); }
};
bool counting_invalidate(umn_interval_notifier* sub, const umn_notifier_range*, unsigned long cur_seq) {
  reinterpret_cast<Counting*>(sub)->calls++;
  umn_interval_set_seq(sub, cur_seq);
  return true;
}
const umn_interval_notifier_ops kCountingOps = {counting_invalidate, nullptr, nullptr};

// The address space still works: a fresh notifier is inserted, invalidated once, retried, removed, and
// no diagnostic is reported on the way.
void ExpectUsable(umn_mm* mm, Diagnostics& diags) {
  Counting probe;
  ASSERT_EQ(umn_interval_notifier_insert(&probe.notifier, mm, 0x700000, kPage, &kCountingOps), 0);
  const unsigned long seq = umn_interval_read_begin(&probe.notifier);
  EXPECT_FALSE(umn_interval_read_retry(&probe.notifier, seq));
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0x700000, 0x700000 + kPage);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  EXPECT_EQ(probe.calls, 1);
  EXPECT_TRUE(umn_interval_read_retry(&probe.notifier, seq));
  EXPECT_FALSE(umn_interval_read_retry(&probe.notifier, umn_interval_read_begin(&probe.notifier)));
  umn_interval_notifier_remove(&probe.notifier);
  EXPECT_TRUE(diags.take().empty()) << "a healthy sequence reported a diagnostic";
}

class Misuse : public ::testing::Test {
 protected:
  void SetUp() override { mm = umn_mm_create(); ASSERT_NE(mm, nullptr); }
  void TearDown() override {
    if (mm != nullptr) {
      ExpectUsable(mm, diags);
      umn_mm_destroy(mm);
    }
    EXPECT_TRUE(diags.take().empty());
  }
  void ExpectDiagnostics(std::vector<std::string> calls) { EXPECT_EQ(diags.take(), calls); }
  Diagnostics diags;
  umn_mm* mm = nullptr;
};

// insert with a NULL notifier, address space or ops: -EINVAL and a diagnostic naming insert.
TEST_F(Misuse, InsertNullArgumentsAreRejected) {
  Counting c;
  EXPECT_EQ(umn_interval_notifier_insert(nullptr, mm, 0, kPage, &kCountingOps), -EINVAL);
  EXPECT_EQ(umn_interval_notifier_insert(&c.notifier, nullptr, 0, kPage, &kCountingOps), -EINVAL);
  EXPECT_EQ(umn_interval_notifier_insert(&c.notifier, mm, 0, kPage, nullptr), -EINVAL);
  ExpectDiagnostics({"umn_interval_notifier_insert", "umn_interval_notifier_insert", "umn_interval_notifier_insert"});
}

// ops with no callback, or invalidate_start without invalidate_finish: -EINVAL and a diagnostic.
TEST_F(Misuse, InsertBadOpsAreRejected) {
  Counting c;
  const umn_interval_notifier_ops none = {nullptr, nullptr, nullptr};
  auto start = [](umn_interval_notifier*, const umn_notifier_range*, unsigned long,
                  umn_interval_notifier_finish**) { return true; };
  const umn_interval_notifier_ops no_finish = {nullptr, start, nullptr};
  EXPECT_EQ(umn_interval_notifier_insert(&c.notifier, mm, 0, kPage, &none), -EINVAL);
  EXPECT_EQ(umn_interval_notifier_insert(&c.notifier, mm, 0, kPage, &no_finish), -EINVAL);
  ExpectDiagnostics({"umn_interval_notifier_insert", "umn_interval_notifier_insert"});
}

// Empty and overflowing intervals: -EOVERFLOW (the kernel's answer; a value, not a diagnostic).
TEST_F(Misuse, InsertEmptyOrOverflowingIntervalIsEoverflow) {
  Counting c;
  EXPECT_EQ(umn_interval_notifier_insert(&c.notifier, mm, kPage, 0, &kCountingOps), -EOVERFLOW);
  EXPECT_EQ(umn_interval_notifier_insert(&c.notifier, mm, UINT64_MAX - kPage + 2, kPage, &kCountingOps),
            -EOVERFLOW);
  // The largest legal interval ends at UINT64_MAX exactly.
  EXPECT_EQ(umn_interval_notifier_insert(&c.notifier, mm, UINT64_MAX - kPage + 1, kPage, &kCountingOps), 0);
  umn_interval_notifier_remove(&c.notifier);
}

// Inserting a notifier that is already inserted: -EINVAL, a diagnostic, and the first insert intact.
TEST_F(Misuse, DoubleInsertIsRejectedAndFirstInsertStays) {
  Counting c;
  ASSERT_EQ(umn_interval_notifier_insert(&c.notifier, mm, 0x10000, kPage, &kCountingOps), 0);
  EXPECT_EQ(umn_interval_notifier_insert(&c.notifier, mm, 0x90000, kPage, &kCountingOps), -EINVAL);
  ExpectDiagnostics({"umn_interval_notifier_insert"});
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0x10000, 0x10001);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  EXPECT_EQ(c.calls, 1);  // still watching the first interval
  umn_interval_notifier_remove(&c.notifier);
}

// remove(NULL), remove of a never inserted notifier, remove twice: each diagnosed, nothing changes.
TEST_F(Misuse, BadRemovesAreDiagnosed) {
  Counting never, twice;
  umn_interval_notifier_remove(nullptr);
  umn_interval_notifier_remove(&never.notifier);
  ASSERT_EQ(umn_interval_notifier_insert(&twice.notifier, mm, 0, kPage, &kCountingOps), 0);
  umn_interval_notifier_remove(&twice.notifier);
  umn_interval_notifier_remove(&twice.notifier);
  ExpectDiagnostics({"umn_interval_notifier_remove", "umn_interval_notifier_remove", "umn_interval_notifier_remove"});
  EXPECT_NE(diags.last_message().find("twice"), std::string::npos) << diags.last_message();
}

// A remove that fails after a failed insert (-EOVERFLOW) is "never inserted", not a dropped reference.
TEST_F(Misuse, RemoveAfterFailedInsertIsDiagnosed) {
  Counting c;
  EXPECT_EQ(umn_interval_notifier_insert(&c.notifier, mm, 0, 0, &kCountingOps), -EOVERFLOW);
  umn_interval_notifier_remove(&c.notifier);
  ExpectDiagnostics({"umn_interval_notifier_remove"});
}

// Ranges with start >= end: diagnosed (a WARN, not misuse: debug builds do not abort; see
// tests/unit/conformance), no callback, -EINVAL where there is a return value, end a no-op.
TEST_F(Misuse, EmptyOrInvertedRangesAreRejected) {
  Counting c;
  ASSERT_EQ(umn_interval_notifier_insert(&c.notifier, mm, 0, 16 * kPage, &kCountingOps), 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, kPage, kPage);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 2 * kPage, kPage);
  EXPECT_EQ(umn_notifier_invalidate_range_start_nonblock(&range), -EINVAL);
  umn_notifier_invalidate_range_end(&range);
  EXPECT_EQ(c.calls, 0);
  ExpectDiagnostics({"umn_notifier_invalidate_range_start", "umn_notifier_invalidate_range_start_nonblock"});
  EXPECT_EQ(umn_interval_read_begin(&c.notifier) & 1, 1u);  // returns at once: no epoch was left open
  umn_interval_notifier_remove(&c.notifier);
}

// NULL ranges, a range without an address space, and a second end: diagnosed or harmless no-ops.
TEST_F(Misuse, NullRangesAndDoubleEndAreHarmless) {
  umn_notifier_invalidate_range_start(nullptr);
  EXPECT_EQ(umn_notifier_invalidate_range_start_nonblock(nullptr), -EINVAL);
  umn_notifier_invalidate_range_end(nullptr);
  umn_notifier_range no_mm;
  umn_notifier_range_init(&no_mm, UMN_NOTIFY_UNMAP, 0, nullptr, 0, kPage);
  umn_notifier_invalidate_range_start(&no_mm);
  ExpectDiagnostics({"umn_notifier_invalidate_range_start", "umn_notifier_invalidate_range_start_nonblock",
                     "umn_notifier_invalidate_range_end", "umn_notifier_invalidate_range_start"});
  Counting c;
  ASSERT_EQ(umn_interval_notifier_insert(&c.notifier, mm, 0, kPage, &kCountingOps), 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0, kPage);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  umn_notifier_invalidate_range_end(&range);  // second end: no-op, the count stays balanced
  EXPECT_EQ(umn_interval_read_begin(&c.notifier) & 1, 1u);
  umn_interval_notifier_remove(&c.notifier);
}

// An end of a range that never started, on an address space without subscriptions yet (fuzzer-found:
// it used to bind a reference to a null pointer).
TEST_F(Misuse, EndWithoutStartBeforeAnySubscriptionIsANoOpRegression) {
  umn_mm* fresh = umn_mm_create();
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, fresh, 0, kPage);
  umn_notifier_invalidate_range_end(&range);
  EXPECT_EQ(umn_notifier_invalidate_range_start_nonblock(&range), 0);  // bare range
  umn_notifier_invalidate_range_end(&range);
  umn_notifier_invalidate_range_end(&range);
  ExpectUsable(fresh, diags);
  umn_mm_destroy(fresh);
}

// release(NULL) and destroy(NULL): diagnosed / ignored; release twice runs once.
TEST_F(Misuse, ReleaseNullAndTwice) {
  umn_notifier_release(nullptr);
  ExpectDiagnostics({"umn_notifier_release"});
  umn_mm_destroy(nullptr);  // documented: NULL is ignored
  umn_mm* other = umn_mm_create();
  Counting c;
  ASSERT_EQ(umn_interval_notifier_insert(&c.notifier, other, 0, kPage, &kCountingOps), 0);
  umn_notifier_release(other);
  umn_notifier_release(other);
  EXPECT_EQ(c.calls, 1);  // exactly one RELEASE
  Counting late;
  EXPECT_EQ(umn_interval_notifier_insert(&late.notifier, other, 0, kPage, &kCountingOps), -EINVAL);
  ExpectDiagnostics({"umn_interval_notifier_insert"});
  umn_interval_notifier_remove(&c.notifier);
  umn_mm_destroy(other);
  EXPECT_TRUE(diags.take().empty());
}

// Destroy with live notifiers: diagnosed, each gets RELEASE once, they can still be removed (the memory
// lives until then: ASan would report a use after free or a leak), a second destroy is diagnosed.
TEST_F(Misuse, DestroyWithLiveNotifiersIsDiagnosedAndSafe) {
  umn_mm* doomed = umn_mm_create();
  Counting a, b;
  ASSERT_EQ(umn_interval_notifier_insert(&a.notifier, doomed, 0, kPage, &kCountingOps), 0);
  ASSERT_EQ(umn_interval_notifier_insert(&b.notifier, doomed, kPage, kPage, &kCountingOps), 0);
  umn_mm_destroy(doomed);
  ExpectDiagnostics({"umn_mm_destroy"});
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(b.calls, 1);
  umn_mm_destroy(doomed);
  ExpectDiagnostics({"umn_mm_destroy"});
  Counting late;
  EXPECT_EQ(umn_interval_notifier_insert(&late.notifier, doomed, 0, kPage, &kCountingOps), -EINVAL);
  ExpectDiagnostics({"umn_interval_notifier_insert"});
  umn_interval_notifier_remove(&a.notifier);
  umn_interval_notifier_remove(&b.notifier);  // frees the address space
  EXPECT_TRUE(diags.take().empty());
}

// ---- classic notifiers and registration ----
int count_young(umn_notifier*, umn_mm*, uint64_t, uint64_t) { return 1; }
const umn_notifier_ops kYoungOps = {nullptr, count_young, count_young, nullptr, nullptr, nullptr,
                                    nullptr, nullptr, nullptr};

// register(NULL...), register twice, unregister of a never registered notifier: diagnosed.
TEST_F(Misuse, BadRegistrationsAreDiagnosed) {
  umn_notifier n;
  std::memset(&n, 0, sizeof(n));
  EXPECT_EQ(umn_notifier_register(nullptr, mm), -EINVAL);
  EXPECT_EQ(umn_notifier_register(&n, mm), -EINVAL);  // ops == NULL
  ExpectDiagnostics({"umn_notifier_register", "umn_notifier_register"});
  n.ops = &kYoungOps;
  ASSERT_EQ(umn_notifier_register(&n, mm), 0);
  EXPECT_EQ(umn_notifier_register(&n, mm), -EINVAL);
  ExpectDiagnostics({"umn_notifier_register"});
  EXPECT_EQ(umn_notifier_clear_young(mm, 0, kPage), 1);  // still registered once
  umn_notifier_unregister(&n, mm);
  umn_notifier stranger;
  std::memset(&stranger, 0, sizeof(stranger));
  stranger.ops = &kYoungOps;
  umn_notifier_unregister(&stranger, mm);
  umn_notifier_unregister(nullptr, mm);
  ExpectDiagnostics({"umn_notifier_unregister", "umn_notifier_unregister"});
  EXPECT_EQ(umn_notifier_clear_young(mm, 0, kPage), 0);
}

// put(NULL), put of a notifier that no get returned, get with unusable ops: diagnosed.
TEST_F(Misuse, BadGetPutAreDiagnosed) {
  umn_notifier_put(nullptr);
  umn_notifier never;
  std::memset(&never, 0, sizeof(never));
  never.ops = &kYoungOps;
  never.mm = mm;
  umn_notifier_put(&never);
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(&kYoungOps, mm)), -EINVAL);  // no alloc_notifier / free_notifier
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(nullptr, mm)), -EINVAL);
  const auto calls = diags.take();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0], "umn_notifier_put");
  EXPECT_EQ(calls[1], "umn_notifier_put");
  EXPECT_EQ(calls[2], "umn_notifier_get");
  EXPECT_EQ(calls[3], "umn_notifier_get");
}

// A classic notifier for the probes below: counts its starts, ends and frees.
struct ClassicProbe {
  umn_notifier notifier;  // first member
  int starts = 0, ends = 0;
  ClassicProbe() { std::memset(&notifier, 0, sizeof(notifier)); }
};
int g_classic_frees = 0;
int probe_start(umn_notifier* sub, const umn_notifier_range*) {
  reinterpret_cast<ClassicProbe*>(sub)->starts++;
  return 0;
}
void probe_end(umn_notifier* sub, const umn_notifier_range*) { reinterpret_cast<ClassicProbe*>(sub)->ends++; }
umn_notifier* probe_alloc(umn_mm*) { return &(new ClassicProbe)->notifier; }
void probe_free(umn_notifier* sub) {
  g_classic_frees++;
  delete reinterpret_cast<ClassicProbe*>(sub);
}
const umn_notifier_ops kProbeOps = {nullptr, nullptr, nullptr, nullptr, probe_start, probe_end,
                                    nullptr, probe_alloc, probe_free};

// Classic registration still works on mm: a registered notifier and a gotten one each see one start and
// one end of an invalidation, and go away without a diagnostic.
void ExpectClassicUsable(umn_mm* mm, Diagnostics& diags) {
  ClassicProbe registered;
  registered.notifier.ops = &kProbeOps;
  ASSERT_EQ(umn_notifier_register(&registered.notifier, mm), 0);
  umn_notifier* got = umn_notifier_get(&kProbeOps, mm);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(got));
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0, kPage);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  EXPECT_EQ(registered.starts + registered.ends, 2);
  EXPECT_EQ(reinterpret_cast<ClassicProbe*>(got)->starts + reinterpret_cast<ClassicProbe*>(got)->ends, 2);
  umn_notifier_unregister(&registered.notifier, mm);
  const int frees = g_classic_frees;
  umn_notifier_put(got);
  umn_notifier_synchronize();
  EXPECT_EQ(g_classic_frees, frees + 1);
  EXPECT_TRUE(diags.take().empty()) << "a healthy classic sequence reported a diagnostic";
}

// Mixing the two registration kinds, a put without get (users already 0), unregister with another
// address space, ops with arch_invalidate_secondary_tlbs and invalidate_range_start: diagnosed, and
// nothing is unlinked, freed early or freed twice.
TEST_F(Misuse, ClassicCrossMisuseAndPutWithoutGetAreDiagnosed) {
  ClassicProbe registered;
  registered.notifier.ops = &kProbeOps;
  ASSERT_EQ(umn_notifier_register(&registered.notifier, mm), 0);
  umn_notifier* got = umn_notifier_get(&kProbeOps, mm);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(got));
  umn_notifier_put(&registered.notifier);         // not from get
  umn_notifier_unregister(got, mm);               // from get: use put
  umn_mm* other = umn_mm_create();
  umn_notifier_unregister(&registered.notifier, other);  // not its address space
  static const umn_notifier_ops bad = {nullptr, nullptr, nullptr, nullptr, probe_start, nullptr,
                                       [](umn_notifier*, umn_mm*, uint64_t, uint64_t) {}, nullptr, nullptr};
  ClassicProbe both;
  both.notifier.ops = &bad;
  EXPECT_EQ(umn_notifier_register(&both.notifier, mm), -EINVAL);
  ExpectDiagnostics({"umn_notifier_put", "umn_notifier_unregister", "umn_notifier_unregister",
                     "umn_notifier_register"});
  umn_notifier_range range;  // both still registered, each called once per start and end
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0, kPage);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  EXPECT_EQ(registered.starts + registered.ends, 2);
  EXPECT_EQ(reinterpret_cast<ClassicProbe*>(got)->ends, 1);
  const int frees = g_classic_frees;
  umn_notifier_put(got);
  umn_notifier_synchronize();
  EXPECT_EQ(g_classic_frees, frees + 1);
  umn_notifier_unregister(&registered.notifier, mm);
  ExpectDiagnostics({});
  // Put without get: a second put of a notifier whose users are already 0 (its free_notifier keeps the
  // memory, so that the misuse is observable rather than a use after free).
  static ClassicProbe* s_kept;
  static const umn_notifier_ops keep_ops = {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                            [](umn_mm*) { s_kept = new ClassicProbe; return &s_kept->notifier; },
                                            [](umn_notifier*) { g_classic_frees++; }};
  umn_notifier* once = umn_notifier_get(&keep_ops, mm);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(once));
  umn_notifier_put(once);
  umn_notifier_synchronize();
  umn_notifier_put(once);  // users already 0: WARN, nothing freed twice
  umn_notifier_synchronize();
  ExpectDiagnostics({"umn_notifier_put"});
  EXPECT_EQ(g_classic_frees, frees + 2);
  delete s_kept;
  umn_mm_destroy(other);
  ExpectClassicUsable(mm, diags);
}

// register / get / unregister / synchronize from a classic callback, and synchronize from free_notifier:
// each may wait for the walk running it; diagnosed (-EDEADLK / NULL with EDEADLK / ignored).
TEST_F(Misuse, ClassicCallsFromCallbacksAreDiagnosed) {
  static umn_mm* s_mm;
  static int s_register;
  static umn_notifier* s_got;
  s_mm = mm;
  static const umn_notifier_ops reentrant = {
      nullptr, nullptr, nullptr, nullptr,
      [](umn_notifier* self, const umn_notifier_range*) {
        ClassicProbe inner;
        inner.notifier.ops = &kProbeOps;
        s_register = umn_notifier_register(&inner.notifier, s_mm);
        s_got = umn_notifier_get(&kProbeOps, s_mm);
        umn_notifier_unregister(self, s_mm);
        umn_notifier_synchronize();
        return 0;
      },
      nullptr, nullptr, nullptr, nullptr};
  ClassicProbe sub;
  sub.notifier.ops = &reentrant;
  ASSERT_EQ(umn_notifier_register(&sub.notifier, mm), 0);
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0, kPage);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  EXPECT_EQ(s_register, -EDEADLK);
  EXPECT_EQ(UMN_PTR_ERR(s_got), -EDEADLK);
  ExpectDiagnostics({"umn_notifier_register", "umn_notifier_get", "umn_notifier_unregister",
                     "umn_notifier_synchronize"});
  umn_notifier_unregister(&sub.notifier, mm);  // still registered: the callback's unregister was refused
  static const umn_notifier_ops sync_in_free = {
      nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, probe_alloc,
      [](umn_notifier* n) {
        umn_notifier_synchronize();  // would wait for itself
        probe_free(n);
      }};
  const int frees = g_classic_frees;
  umn_notifier* got = umn_notifier_get(&sync_in_free, mm);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(got));
  umn_notifier_put(got);
  umn_notifier_synchronize();
  EXPECT_EQ(g_classic_frees, frees + 1);
  ExpectDiagnostics({"umn_notifier_synchronize"});
  ExpectClassicUsable(mm, diags);
}

// After teardown: register is refused with a diagnostic, get with EINVAL and none (racing teardown is
// legal); registrations made before still need their unregister / put, which work.
TEST_F(Misuse, RegistrationAfterReleaseIsRefused) {
  umn_mm* doomed = umn_mm_create();
  umn_notifier* got = umn_notifier_get(&kProbeOps, doomed);
  ASSERT_FALSE(UMN_IS_ERR_OR_NULL(got));
  umn_notifier_release(doomed);
  ClassicProbe late;
  late.notifier.ops = &kProbeOps;
  EXPECT_EQ(umn_notifier_register(&late.notifier, doomed), -EINVAL);
  EXPECT_EQ(UMN_PTR_ERR(umn_notifier_get(&kProbeOps, doomed)), -EINVAL);
  ExpectDiagnostics({"umn_notifier_register"});
  const int frees = g_classic_frees;
  umn_notifier_put(got);
  umn_mm_destroy(doomed);
  umn_notifier_synchronize();  // the last reference goes with the free
  EXPECT_EQ(g_classic_frees, frees + 1);
  ExpectDiagnostics({});
}

// Young queries and secondary-TLB calls with a NULL address space (misuse) or start >= end (a WARN): a
// diagnostic and -EINVAL (where a value is returned), never a callback.
TEST_F(Misuse, YoungQueriesRejectBadArguments) {
  umn_notifier n;
  std::memset(&n, 0, sizeof(n));
  n.ops = &kYoungOps;
  ASSERT_EQ(umn_notifier_register(&n, mm), 0);
  EXPECT_EQ(umn_notifier_clear_young(nullptr, 0, kPage), -EINVAL);
  EXPECT_EQ(umn_notifier_clear_flush_young(nullptr, 0, kPage), -EINVAL);
  EXPECT_EQ(umn_notifier_test_young(nullptr, 0), -EINVAL);
  EXPECT_EQ(umn_notifier_clear_young(mm, kPage, kPage), -EINVAL);
  EXPECT_EQ(umn_notifier_clear_flush_young(mm, 2 * kPage, kPage), -EINVAL);
  umn_notifier_arch_invalidate_secondary_tlbs(nullptr, 0, kPage);
  ExpectDiagnostics({"umn_notifier_clear_young", "umn_notifier_clear_flush_young", "umn_notifier_test_young",
                     "umn_notifier_clear_young", "umn_notifier_clear_flush_young",
                     "umn_notifier_arch_invalidate_secondary_tlbs"});
  EXPECT_EQ(umn_notifier_clear_young(mm, 0, kPage), 1);
  umn_notifier_unregister(&n, mm);
}

// read_begin on a never inserted notifier (or NULL): a diagnostic and 0 instead of a crash.
TEST_F(Misuse, ReadBeginOnNeverInsertedNotifierIsDiagnosed) {
  Counting never;
  EXPECT_EQ(umn_interval_read_begin(&never.notifier), 0u);
  EXPECT_EQ(umn_interval_read_begin(nullptr), 0u);
  ExpectDiagnostics({"umn_interval_read_begin", "umn_interval_read_begin"});
}

// Two notifiers hand out one finish record in the same invalidation ("one record serves one
// invalidation at a time"): diagnosed, and the second pass ends. Before the fix the queue linked the
// record to itself and invalidate_finish ran forever without a diagnostic (issue 12 defect 5); the
// callback here breaks the loop after 8 calls so that the old code fails instead of hanging.
umn_interval_notifier_finish g_shared_record;
int g_shared_finishes = 0;
bool hand_out_shared(umn_interval_notifier* sub, const umn_notifier_range*, unsigned long cur_seq,
                     umn_interval_notifier_finish** finish) {
  umn_interval_set_seq(sub, cur_seq);
  *finish = &g_shared_record;
  return true;
}
void finish_shared(umn_interval_notifier_finish* finish) {
  if (++g_shared_finishes > 8) finish->link = nullptr;  // escape the old code's endless loop
}
const umn_interval_notifier_ops kSharedRecordOps = {nullptr, hand_out_shared, finish_shared};

TEST_F(Misuse, FinishRecordQueuedTwiceIsDiagnosedAndTheSecondPassEndsRegression) {
  Counting first, second;
  ASSERT_EQ(umn_interval_notifier_insert(&first.notifier, mm, 0x100000, kPage, &kSharedRecordOps), 0);
  ASSERT_EQ(umn_interval_notifier_insert(&second.notifier, mm, 0x101000, kPage, &kSharedRecordOps), 0);
  g_shared_finishes = 0;
  umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0x100000, 0x100000 + 2 * kPage);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  EXPECT_EQ(g_shared_finishes, 2) << "each hand-out is finished once, and the second pass ends";
  ExpectDiagnostics({"umn_notifier_invalidate_range_start"});
  umn_interval_notifier_remove(&first.notifier);
  umn_interval_notifier_remove(&second.notifier);
}

}  // namespace
