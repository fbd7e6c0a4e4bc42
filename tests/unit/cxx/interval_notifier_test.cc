// interval_notifier_test.cc - the C++ API: umn::AddressSpace, umn::Invalidation (incl. try_start and
// EAGAIN), umn::IntervalNotifier, umn::TwoPassNotifier with a FinishRecord subclass, umn::FunctionNotifier,
// and umn::Range.
#include "umn/interval_notifier.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "support/async_call.hpp"
#include "support/diag_capture.hpp"
#include "umn/umn.hpp"

namespace {

using umn::test::AsyncCall;
using umn::test::DiagCapture;

constexpr uint64_t kPage = 4096;

umn::AddressSpace make_space() {
  auto created = umn::AddressSpace::create();
  EXPECT_TRUE(created.ok());
  return std::move(created).value();
}

// What a callback saw.
struct Seen {
  uint64_t start;
  uint64_t end;
  umn::Event event;
  bool blockable;
  void* owner;
  unsigned long cur_seq;
};

// A single-pass notifier that records its calls, calls set_seq under its lock, and can refuse
// non-blockable ranges.
class Recorder : public umn::IntervalNotifier {
 public:
  ~Recorder() override { remove(); }
  std::vector<Seen> seen() {
    std::lock_guard guard(lock);
    return seen_;
  }
  std::mutex lock;  // the user lock
  bool refuse_nonblock = false;

 protected:
  bool invalidate(const umn::Range& range, unsigned long cur_seq) noexcept override {
    if (refuse_nonblock && !range.blockable()) return false;
    std::lock_guard guard(lock);
    set_seq(cur_seq);
    seen_.push_back({range.start(), range.end(), range.event(), range.blockable(), range.owner(), cur_seq});
    return true;
  }

 private:
  std::vector<Seen> seen_;
};

// A FinishRecord carrying state from the first pass to the second.
struct Flush : umn::FinishRecord {
  uint64_t start = 0;
  uint64_t end = 0;
  bool busy = false;
};

// A two-pass notifier with one embedded record; a concurrent use of a busy record falls back to doing all
// the work in the first pass (NULL finish), as the xe driver does.
class TwoPass : public umn::TwoPassNotifier {
 public:
  ~TwoPass() override { remove(); }
  std::vector<std::string> log;  // "start a-b", "sync a-b", "finish a-b"
  bool fail_nonblock = false;

 protected:
  bool invalidate_start(const umn::Range& range, unsigned long cur_seq,
                        umn::FinishRecord*& finish) noexcept override {
    if (fail_nonblock && !range.blockable()) return false;
    set_seq(cur_seq);
    if (record_.busy) {
      log.push_back("sync " + span(range.start(), range.end()));
      return true;
    }
    record_.busy = true;
    record_.start = range.start();
    record_.end = range.end();
    log.push_back("start " + span(range.start(), range.end()));
    finish = &record_;
    return true;
  }
  void invalidate_finish(umn::FinishRecord& finish) noexcept override {
    auto& flush = static_cast<Flush&>(finish);
    log.push_back("finish " + span(flush.start, flush.end));
    flush.busy = false;
  }

 private:
  static std::string span(uint64_t a, uint64_t b) { return std::to_string(a) + "-" + std::to_string(b); }
  Flush record_;
};

// An owning AddressSpace can be moved; the moved-from one owns nothing, and destruction frees (ASan).
TEST(CxxAddressSpace, CreateMoveAndDestroy) {
  umn::AddressSpace a = make_space();
  umn_mm* raw = a.get();
  ASSERT_NE(raw, nullptr);
  umn::AddressSpace b(std::move(a));
  EXPECT_EQ(b.get(), raw);
  EXPECT_EQ(a.get(), nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  umn::AddressSpace c = make_space();
  c = std::move(b);
  EXPECT_EQ(c.get(), raw);
}

// AddressSpace::invalidate calls the overlapping notifier once, blockable, with the given event; the
// Range view reports start, exclusive end and owner.
TEST(CxxIntervalNotifier, InvalidateSeesTheRange) {
  umn::AddressSpace mm = make_space();
  Recorder n;
  ASSERT_FALSE(n.insert(mm, kPage, 2 * kPage));
  EXPECT_TRUE(n.inserted());
  EXPECT_EQ(n.start(), kPage);
  EXPECT_EQ(n.last(), 3 * kPage - 1);
  mm.invalidate(0, kPage);  // ends at start-1
  mm.invalidate(2 * kPage, 4 * kPage, umn::Event::kMigrate);
  int owner_cookie = 0;
  { umn::Invalidation inv(mm, 3 * kPage - 1, 3 * kPage, umn::Event::kExclusive, &owner_cookie); }
  auto seen = n.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].start, 2 * kPage);
  EXPECT_EQ(seen[0].end, 4 * kPage);
  EXPECT_EQ(seen[0].event, umn::Event::kMigrate);
  EXPECT_TRUE(seen[0].blockable);
  EXPECT_EQ(seen[1].owner, &owner_cookie);
  EXPECT_EQ(seen[1].event, umn::Event::kExclusive);
  EXPECT_EQ(seen[0].cur_seq % 2, 1u);
}

// insert errors map to std::error_code: EOVERFLOW for length 0, EINVAL for a second insert.
TEST(CxxIntervalNotifier, InsertErrorsAreErrorCodes) {
  DiagCapture diags;
  umn::AddressSpace mm = make_space();
  Recorder n;
  EXPECT_EQ(n.insert(mm, 0, 0), std::errc::value_too_large);
  EXPECT_FALSE(n.inserted());
  EXPECT_EQ(n.insert(mm, UINT64_MAX, 2), std::errc::value_too_large);
  ASSERT_FALSE(n.insert(mm, 0, kPage));
  EXPECT_EQ(n.insert(mm, 0, kPage), std::errc::invalid_argument);
  EXPECT_TRUE(n.inserted());
}

// remove() is idempotent and stops callbacks; the destructor removes a notifier still inserted.
TEST(CxxIntervalNotifier, RemoveIsIdempotentAndTheDestructorRemoves) {
  DiagCapture diags;
  umn::AddressSpace mm = make_space();
  {
    Recorder n;
    ASSERT_FALSE(n.insert(mm, 0, kPage));
    n.remove();
    n.remove();
    EXPECT_FALSE(n.inserted());
    mm.invalidate(0, kPage);
    EXPECT_TRUE(n.seen().empty());
    ASSERT_FALSE(n.insert(mm, 0, kPage));
  }
  mm.invalidate(0, kPage);  // the destroyed notifier is no longer in the tree (ASan would notice)
  EXPECT_EQ(diags.count(), 0u);
}

// An Invalidation holds the notifier's readers until it is destroyed.
TEST(CxxInvalidation, ReadersWaitUntilTheInvalidationEnds) {
  umn::AddressSpace mm = make_space();
  Recorder n;
  ASSERT_FALSE(n.insert(mm, 0, kPage));
  auto inv = std::make_unique<umn::Invalidation>(mm, 0, kPage);
  EXPECT_EQ(inv->range().start(), 0u);
  EXPECT_EQ(inv->range().end(), kPage);
  AsyncCall reader([&] { (void)n.read_begin(); });
  EXPECT_TRUE(reader.stays_blocked());
  inv.reset();
  EXPECT_TRUE(reader.finishes());
}

// try_start returns EAGAIN when a callback refuses a non-blockable range (nothing to end), and a
// started Invalidation otherwise, ended by end() once only.
TEST(CxxInvalidation, TryStartReportsEagainAndOtherwiseStarts) {
  umn::AddressSpace mm = make_space();
  Recorder n;
  ASSERT_FALSE(n.insert(mm, 0, kPage));
  n.refuse_nonblock = true;
  auto refused = umn::Invalidation::try_start(mm, 0, kPage);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error(), std::errc::resource_unavailable_try_again);
  AsyncCall free_reader([&] { (void)n.read_begin(); });
  EXPECT_TRUE(free_reader.finishes());
  n.refuse_nonblock = false;
  auto started = umn::Invalidation::try_start(mm, 0, kPage);
  ASSERT_TRUE(started.ok());
  EXPECT_FALSE(n.seen().back().blockable);
  AsyncCall reader([&] { (void)n.read_begin(); });
  EXPECT_TRUE(reader.stays_blocked());
  started.value().end();
  started.value().end();
  EXPECT_TRUE(reader.finishes());
}

// try_start with start >= end is EINVAL (and diagnosed).
TEST(CxxInvalidation, TryStartRejectsAnEmptyRange) {
  DiagCapture diags;
  umn::AddressSpace mm = make_space();
  auto bad = umn::Invalidation::try_start(mm, kPage, kPage);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), std::errc::invalid_argument);
  EXPECT_EQ(diags.count(), 1u);
}

// TwoPassNotifier: the record handed out in the first pass comes back in the second with its state, and
// each of two nested invalidations gets both passes before its start returns.
TEST(CxxTwoPassNotifier, FinishRecordCarriesStateToTheSecondPass) {
  umn::AddressSpace mm = make_space();
  TwoPass n;
  ASSERT_FALSE(n.insert(mm, 0, 4 * kPage));
  mm.invalidate(kPage, 2 * kPage);
  EXPECT_EQ(n.log, (std::vector<std::string>{"start 4096-8192", "finish 4096-8192"}));
  n.log.clear();
  {
    umn::Invalidation outer(mm, 0, kPage);
    umn::Invalidation inner(mm, 2 * kPage, 3 * kPage);
  }
  EXPECT_EQ(n.log, (std::vector<std::string>{"start 0-4096", "finish 0-4096", "start 8192-12288",
                                             "finish 8192-12288"}));
}

// TwoPassNotifier refusing a non-blockable range gives EAGAIN and no second pass.
TEST(CxxTwoPassNotifier, RefusedFirstPassGetsNoSecondPass) {
  umn::AddressSpace mm = make_space();
  TwoPass n;
  n.fail_nonblock = true;
  ASSERT_FALSE(n.insert(mm, 0, kPage));
  auto refused = umn::Invalidation::try_start(mm, 0, kPage);
  EXPECT_EQ(refused.error(), std::errc::resource_unavailable_try_again);
  EXPECT_TRUE(n.log.empty());
}

// FunctionNotifier calls its callable with itself, the range and cur_seq; its destructor removes it.
TEST(CxxFunctionNotifier, CallsTheCallable) {
  umn::AddressSpace mm = make_space();
  std::vector<unsigned long> seqs;
  {
    auto fn = [&seqs](umn::IntervalNotifier& self, const umn::Range& range, unsigned long cur_seq) {
      self.set_seq(cur_seq);
      EXPECT_TRUE(range.overlaps(self.start(), self.last() - self.start() + 1));
      seqs.push_back(cur_seq);
      return true;
    };
    umn::FunctionNotifier<decltype(fn)> n(fn);
    ASSERT_FALSE(n.insert(mm, 0, kPage));
    const unsigned long before = n.read_begin();
    mm.invalidate(0, 1);
    EXPECT_TRUE(n.read_retry(before));
    EXPECT_TRUE(n.check_retry(before));
  }
  mm.invalidate(0, 1);
  ASSERT_EQ(seqs.size(), 1u);
}

// AddressSpace::release delivers one RELEASE; inserts afterwards fail with EINVAL; the notifier is still
// removable.
TEST(CxxAddressSpace, ReleaseDeliversReleaseOnceAndRefusesInserts) {
  DiagCapture diags;
  umn::AddressSpace mm = make_space();
  Recorder n;
  Recorder late;
  ASSERT_FALSE(n.insert(mm, 0, kPage));
  mm.release();
  mm.release();
  ASSERT_EQ(n.seen().size(), 1u);
  EXPECT_EQ(n.seen()[0].event, umn::Event::kRelease);
  EXPECT_EQ(late.insert(mm, 0, kPage), std::errc::invalid_argument);
  n.remove();
}

// Range::overlaps is [start, start + length) against [range.start, range.end), probed at the edges.
TEST(CxxRange, OverlapsProbesBothEdges) {
  umn_notifier_range raw;
  umn_notifier_range_init(&raw, UMN_NOTIFY_UNMAP, 0, nullptr, 100, 200);
  umn::Range range(raw);
  EXPECT_EQ(range.length(), 100u);
  EXPECT_FALSE(range.overlaps(0, 100));   // ends at start-1
  EXPECT_TRUE(range.overlaps(0, 101));    // ends at start
  EXPECT_TRUE(range.overlaps(199, 1));    // at last
  EXPECT_FALSE(range.overlaps(200, 10));  // at last+1
  EXPECT_FALSE(range.overlaps(150, 0));   // empty
  EXPECT_TRUE(range.overlaps(0, UINT64_MAX));
  EXPECT_FALSE(range.blockable());
}

}  // namespace
