// read_section_test.cc - the C++ read side: umn::ReadSection by hand, umn::fault_in (commit, retry,
// timeout -> errc::timed_out, void snapshot), and umn::Result / umn::errno_code.
#include "umn/read_section.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "umn/umn.hpp"

namespace {

constexpr uint64_t kPage = 4096;

// A notifier that clears a one-page "device translation" under its user lock.
class Page : public umn::IntervalNotifier {
 public:
  ~Page() override { remove(); }
  std::mutex lock;
  int translation = 0;  // guarded by lock; 0 = none
  int invalidations = 0;

 protected:
  bool invalidate(const umn::Range&, unsigned long cur_seq) noexcept override {
    std::lock_guard guard(lock);
    set_seq(cur_seq);
    translation = 0;
    ++invalidations;
    return true;
  }
};

umn::AddressSpace make_space() { return std::move(umn::AddressSpace::create()).value(); }

// ReadSection: valid() and maybe_valid() until an invalidation hits, then both false; begin() again
// starts a fresh valid section.
TEST(CxxReadSection, TurnsInvalidWhenAnInvalidationHits) {
  umn::AddressSpace mm = make_space();
  Page page;
  ASSERT_FALSE(page.insert(mm, 0, kPage));
  umn::ReadSection section(page);
  section.begin();
  EXPECT_EQ(section.seq() % 2, 1u);
  EXPECT_TRUE(section.maybe_valid());
  {
    std::lock_guard guard(page.lock);
    EXPECT_TRUE(section.valid());
  }
  mm.invalidate(0, kPage);
  EXPECT_FALSE(section.maybe_valid());
  {
    std::lock_guard guard(page.lock);
    EXPECT_FALSE(section.valid());
  }
  section.begin();
  std::lock_guard guard(page.lock);
  EXPECT_TRUE(section.valid());
}

// fault_in commits the snapshot under the user lock when nothing intervenes.
TEST(CxxFaultIn, CommitsWhenNothingIntervenes) {
  umn::AddressSpace mm = make_space();
  Page page;
  ASSERT_FALSE(page.insert(mm, 0, kPage));
  umn::FaultStats stats;
  auto err = umn::fault_in(
      page, page.lock, [] { return 42; },
      [&](int value) { page.translation = value; }, std::chrono::seconds(5), &stats);
  EXPECT_FALSE(err);
  EXPECT_EQ(page.translation, 42);
  EXPECT_EQ(stats.retries, 0u);
}

// An invalidation between snapshot and commit throws the snapshot away: fault_in retries and commits
// the second snapshot.
TEST(CxxFaultIn, RetriesAfterAnInvalidationDuringTheSnapshot) {
  umn::AddressSpace mm = make_space();
  Page page;
  ASSERT_FALSE(page.insert(mm, 0, kPage));
  int attempt = 0;
  umn::FaultStats stats;
  auto snapshot = [&] {
    if (++attempt == 1) mm.invalidate(0, kPage);  // the CPU side changes under the first snapshot
    return attempt;
  };
  auto err = umn::fault_in(page, page.lock, snapshot, [&](int value) { page.translation = value; },
                           std::chrono::seconds(5), &stats);
  EXPECT_FALSE(err);
  EXPECT_EQ(page.translation, 2);
  EXPECT_EQ(stats.retries, 1u);
  EXPECT_EQ(page.invalidations, 1);
}

// A stream of invalidations that hits every attempt makes fault_in give up with errc::timed_out, having
// committed nothing; a void snapshot takes a commit with no argument.
TEST(CxxFaultIn, GivesUpWithTimedOutUnderAStreamOfInvalidations) {
  umn::AddressSpace mm = make_space();
  Page page;
  ASSERT_FALSE(page.insert(mm, 0, kPage));
  bool committed = false;
  umn::FaultStats stats;
  auto err = umn::fault_in(
      page, page.lock, [&] { mm.invalidate(0, kPage); }, [&] { committed = true; },
      std::chrono::milliseconds(20), &stats);
  EXPECT_EQ(err, std::errc::timed_out);
  EXPECT_FALSE(committed);
  EXPECT_GE(stats.retries, 1u);
  EXPECT_EQ(page.invalidations, static_cast<int>(stats.retries));
}

// errno_code maps 0 to success and -E to generic_category E.
TEST(CxxResult, ErrnoCodeMapsNegativeErrno) {
  EXPECT_FALSE(umn::errno_code(0));
  EXPECT_EQ(umn::errno_code(-EAGAIN), std::errc::resource_unavailable_try_again);
  EXPECT_EQ(umn::errno_code(-EOVERFLOW), std::errc::value_too_large);
  EXPECT_EQ(umn::errno_code(-EINVAL).category(), std::generic_category());
}

// Result holds a value or an error, never both.
TEST(CxxResult, HoldsAValueOrAnError) {
  umn::Result<int> good(7);
  EXPECT_TRUE(good.ok());
  EXPECT_TRUE(static_cast<bool>(good));
  EXPECT_EQ(good.value(), 7);
  EXPECT_FALSE(good.error());
  umn::Result<int> bad(std::make_error_code(std::errc::not_enough_memory));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), std::errc::not_enough_memory);
}

}  // namespace
