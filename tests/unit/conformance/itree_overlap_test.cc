// itree_overlap_test.cc - interval-notifier conformance, which intervals a range calls: invariant I-5 (boundaries, order, naive and state-machine models).
// Through the public C API only, on a simulated address space; docs/semantics.md holds the spec, and
// itree_conformance.hpp the shared test doubles, the fixture and how internal state is observed.
#include "unit/conformance/itree_conformance.hpp"

namespace umn::test::itree_conformance {
namespace {

// ======================================================================================================
// I-5  a range [s, e) calls exactly the intervals with start <= e-1 && s <= last, in ascending start

// Boundaries probed at start-1, start, last, last+1 (half-open ranges that touch at their end).
TEST_F(ItreeConformance, I05_HalfOpenRangeTouchingAnIntervalDoesNotHitIt) {
  Watch a(&journal_, 1);
  ASSERT_EQ(a.insert(mm_, 0x10000, 0x1000), 0);  // [0x10000, 0x10fff]
  auto hits = [&](uint64_t s, uint64_t e) {
    journal_.clear();
    Hit(mm_, s, e);
    return journal_.first_pass_count(1) == 1;
  };
  EXPECT_FALSE(hits(0xf000, 0x10000));   // ends right before start
  EXPECT_TRUE(hits(0xf000, 0x10001));    // covers start
  EXPECT_TRUE(hits(0x10fff, 0x11000));   // covers last only
  EXPECT_FALSE(hits(0x11000, 0x12000));  // starts right after last
  EXPECT_TRUE(hits(0x10800, 0x10801));   // one byte inside
  EXPECT_TRUE(hits(0, kTop));            // everything
  EXPECT_FALSE(hits(0x11000, kTop));
}

// An interval of length L covers [start, start + L - 1]; length 1 is a single byte.
TEST_F(ItreeConformance, I05_IntervalOfLengthLCoversStartToStartPlusLMinusOne) {
  Watch a(&journal_, 1), z(&journal_, 2);
  ASSERT_EQ(a.insert(mm_, 100, 1), 0);
  ASSERT_EQ(z.insert(mm_, 0, 1), 0);  // the first byte of the space
  journal_.clear();
  Hit(mm_, 99, 100);
  Hit(mm_, 101, 102);
  Hit(mm_, 1, 100);
  EXPECT_TRUE(journal_.first_passes().empty());
  Hit(mm_, 100, 101);
  Hit(mm_, 0, 1);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{1, 2}));
}

// Intervals ending at the top of the space: [kTop - kPage + 1, kTop] is reached by [kTop - 1, kTop); an
// interval that is only the byte kTop cannot be reached by any range (end is exclusive, at most kTop).
TEST_F(ItreeConformance, I05_IntervalsAtTheTopOfTheSpace) {
  Watch top(&journal_, 1), last_byte(&journal_, 2), below(&journal_, 3);
  ASSERT_EQ(top.insert(mm_, kTop - kPage + 1, kPage), 0);
  ASSERT_EQ(last_byte.insert(mm_, kTop, 1), 0);
  ASSERT_EQ(below.insert(mm_, kTop - 2 * kPage + 1, kPage), 0);  // [kTop-2p+1, kTop-p]
  journal_.clear();
  Hit(mm_, kTop - 1, kTop);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{1}));
  journal_.clear();
  Hit(mm_, 0, kTop);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{3, 1}));
  journal_.clear();
  Hit(mm_, kTop - kPage, kTop - kPage + 1);  // the last byte of `below`, touching `top`
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{3}));
  journal_.clear();
  Hit(mm_, kTop - kPage + 1, kTop - kPage + 2);  // the first byte of `top`
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{1}));
}

// Overlapping intervals are called in ascending start order, whatever the insertion order.
TEST_F(ItreeConformance, I05_RangeCallsIntersectingIntervalsInAscendingStart) {
  std::vector<std::unique_ptr<Watch>> watches;
  const std::vector<uint64_t> starts = {7, 3, 9, 1, 5, 0, 8, 2, 6, 4};
  for (uint64_t s : starts) {
    watches.push_back(std::make_unique<Watch>(&journal_, static_cast<int>(s), s % 2 == 0));
    ASSERT_EQ(watches.back()->insert(mm_, s * kPage, (12 - s) * kPage), 0);  // all cover page 11
  }
  journal_.clear();
  Hit(mm_, 11 * kPage, 11 * kPage + 1);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  journal_.clear();
  Hit(mm_, 4 * kPage + 5, 6 * kPage);  // [4p+5, 6p-1]: intervals starting at or below page 5
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

// Equal starts are visited in insertion order (the kernel inserts to the right on ties, 2.3).
TEST_F(ItreeConformance, I05_EqualStartsAreVisitedInInsertionOrder) {
  std::vector<std::unique_ptr<Watch>> watches;
  const std::vector<uint64_t> lengths = {3, 1, 5, 2, 4, 1, 6};
  for (size_t i = 0; i < lengths.size(); ++i) {
    watches.push_back(std::make_unique<Watch>(&journal_, static_cast<int>(i)));
    ASSERT_EQ(watches.back()->insert(mm_, kPage, lengths[i] * kPage), 0);
  }
  journal_.clear();
  Hit(mm_, kPage, kPage + 1);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  watches[2]->remove();  // re-inserted: now last among the equal starts
  ASSERT_EQ(watches[2]->insert(mm_, kPage, kPage), 0);
  journal_.clear();
  Hit(mm_, kPage, kPage + 1);
  EXPECT_EQ(journal_.first_passes(), (std::vector<int>{0, 1, 3, 4, 5, 6, 2}));
}

// Many overlapping intervals, random ranges, inserts and removes, against a naive model (fixed seed).
TEST_F(ItreeConformance, I05_ManyOverlappingIntervalsMatchANaiveModel) {
  constexpr uint32_t kSeed = 0x5eed1705;
  SCOPED_TRACE(::testing::Message() << "seed " << kSeed);
  std::mt19937_64 rng(kSeed);
  struct Model {
    uint64_t start, last;
    int id;
    uint64_t order;  // insertion order, for equal starts
  };
  constexpr int kCount = 96;
  std::vector<std::unique_ptr<Watch>> watches;
  std::vector<Model> model;
  uint64_t order = 0;
  auto insert = [&](int id) {
    uint64_t start, length;
    switch (rng() % 8) {
      case 0: start = kTop - (rng() % 4096); length = kTop - start + 1; break;  // ends at kTop
      case 1: start = (rng() % 8) * 512; length = 1 + rng() % 4096; break;      // equal starts likely
      default: start = rng() % (1u << 20); length = 1 + rng() % (1u << 16); break;
    }
    ASSERT_EQ(watches[id]->insert(mm_, start, length), 0);
    model.push_back({start, start + length - 1, id, order++});
  };
  for (int id = 0; id < kCount; ++id) {
    watches.push_back(std::make_unique<Watch>(&journal_, id, id % 3 == 0));
    insert(id);
  }
  for (int round = 0; round < 400; ++round) {
    if (round % 5 == 4) {  // replace one interval
      const size_t pos = rng() % model.size();
      const int id = model[pos].id;
      watches[id]->remove();
      model.erase(model.begin() + static_cast<long>(pos));
      insert(id);
    }
    uint64_t s = rng() % 3 == 0 ? kTop - 1 - rng() % 8192 : rng() % (1u << 20);
    uint64_t e = s + 1 + rng() % (1u << 15);
    if (e < s || e == 0) e = kTop;  // wrapped: clamp to the top
    std::vector<Model> expected;
    for (const Model& m : model)
      if (m.start <= e - 1 && s <= m.last) expected.push_back(m);
    std::sort(expected.begin(), expected.end(), [](const Model& x, const Model& y) {
      return x.start != y.start ? x.start < y.start : x.order < y.order;
    });
    std::vector<int> want;
    for (const Model& m : expected) want.push_back(m.id);
    journal_.clear();
    Hit(mm_, s, e);
    ASSERT_EQ(journal_.first_passes(), want) << "round " << round << " range [" << s << ", " << e << ")";
  }
}

// A seeded random walk over nested ranges (blocking and non-blocking, some failing), inserts and removes
// (deferred or not), checked at every step against a model of 2.1-2.9: which notifiers each range calls
// and in what order, the cur_seq they get, -EAGAIN, and every notifier's seq (I-1..I-5, I-8, I-10, 2.7).
TEST_F(ItreeConformance, I05_RandomWalkMatchesTheStateMachineModel) {
  constexpr uint32_t kSeed = 0x17ee0002;
  SCOPED_TRACE(::testing::Message() << "seed " << kSeed);
  std::mt19937_64 rng(kSeed);
  enum class St { kAbsent, kTree, kPending };
  struct M {
    uint64_t start = 0, last = 0;
    St st = St::kAbsent;
    unsigned long seq = 0;
  };
  constexpr int kCount = 48;
  std::vector<std::unique_ptr<Watch>> w;
  std::vector<M> m(kCount);
  for (int id = 0; id < kCount; ++id) {
    w.push_back(std::make_unique<Watch>(&journal_, id, id % 3 == 0));
    w[id]->fail_nonblock = id % 7 == 3;
    m[id].start = static_cast<uint64_t>(id) * 0x10000 + rng() % 0x8000;  // distinct starts
    m[id].last = m[id].start + rng() % 0x40000;
  }
  Watch seed(&journal_, -1);
  ASSERT_EQ(seed.insert(mm_, kProbeBase, kPage), 0);  // subscriptions exist: seq 2
  unsigned long seq = 2;
  int active = 0;
  std::vector<std::unique_ptr<Range>> open;
  auto close_epoch_if_done = [&] {
    if (active > 0 || seq % 2 == 0) return;
    ++seq;
    for (M& x : m)
      if (x.st == St::kPending) x.st = St::kTree;
  };
  int stats[4] = {};  // deferred inserts, partially-excluded inserts, -EAGAIN, ranges that hit
  for (int step = 0; step < 4000; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    const int what = static_cast<int>(rng() % 10);
    const int id = static_cast<int>(rng() % kCount);
    if (what < 3) {  // insert
      if (m[id].st != St::kAbsent) continue;
      ASSERT_EQ(w[id]->insert(mm_, m[id].start, m[id].last - m[id].start + 1), 0);
      if (active > 0 && seq % 2 == 1) {
        m[id].st = St::kPending;
        m[id].seq = seq;
        stats[0]++;
      } else {
        if (active > 0) seq |= 1, stats[1]++;
        m[id].st = St::kTree;
        m[id].seq = active > 0 ? seq : seq - 1;
      }
    } else if (what < 5) {  // remove, when it does not have to wait (this thread holds the ranges)
      if (m[id].st == St::kAbsent || (m[id].st == St::kTree && seq % 2 == 1)) continue;
      w[id]->remove();
      m[id].st = St::kAbsent;
    } else if (what < 7 && open.size() < 6) {  // open a range
      // A third land where no notifier is: they open partially-excluded periods.
      const uint64_t s = rng() % (kCount * 0x10000) + (rng() % 3 == 0 ? kCount * 0x10000 + 0x100000 : 0);
      const uint64_t e = s + 1 + rng() % 0x30000;
      const bool nonblock = rng() % 3 == 0;
      std::vector<int> hits;
      for (int i = 0; i < kCount; ++i)
        if (m[i].st == St::kTree && m[i].start <= e - 1 && s <= m[i].last) hits.push_back(i);
      std::sort(hits.begin(), hits.end(), [&](int a, int b) { return m[a].start < m[b].start; });
      ++active;
      if (!hits.empty()) seq |= 1;
      std::vector<int> called;
      bool failed = false;
      for (int i : hits) {
        called.push_back(i);
        if (nonblock && w[i]->fail_nonblock) {
          failed = true;
          break;
        }
        m[i].seq = seq;
      }
      journal_.clear();
      auto range = std::make_unique<Range>(mm_, s, e, nonblock ? Range::kNonBlock : Range::kBlock);
      ASSERT_EQ(journal_.first_passes(), called);
      for (const Record& r : journal_.all())
        if (r.kind != Kind::kFinish) { ASSERT_EQ(r.cur_seq, seq); }
      ASSERT_EQ(range->result(), failed ? -EAGAIN : 0);
      stats[2] += failed;
      stats[3] += !hits.empty();
      if (failed) {
        --active;
        close_epoch_if_done();
      } else {
        open.push_back(std::move(range));
      }
    } else if (!open.empty()) {  // close the innermost range
      open.pop_back();
      --active;
      close_epoch_if_done();
    }
    for (int i = 0; i < kCount; ++i)
      if (m[i].st != St::kAbsent) { ASSERT_TRUE(w[i]->seq_is(m[i].seq)) << "notifier " << i; }
  }
  while (!open.empty()) {
    open.pop_back();
    --active;
    close_epoch_if_done();
  }
  EXPECT_EQ(ExpectIdle(), seq + 2);
  // The walk must reach every state it is meant to check.
  EXPECT_GT(stats[0], 10);
  EXPECT_GT(stats[1], 20);
  EXPECT_GT(stats[2], 10);
  EXPECT_GT(stats[3], 100);
  std::printf("deferred inserts %d, partially-excluded inserts %d, -EAGAIN %d, hitting ranges %d\n", stats[0],
              stats[1], stats[2], stats[3]);
}

// A range overlapping a thousand intervals calls each exactly once, all with the same cur_seq.
TEST_F(ItreeConformance, I05_ThousandOverlappingIntervalsEachCalledOnce) {
  constexpr int kCount = 1000;
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < kCount; ++i) {
    watches.push_back(std::make_unique<Watch>(&journal_, i, i % 2 == 1));
    ASSERT_EQ(watches.back()->insert(mm_, static_cast<uint64_t>(i) * 16, 1 << 20), 0);
  }
  journal_.clear();
  Hit(mm_, 1 << 19, (1 << 19) + 1);
  std::vector<int> want(kCount);
  for (int i = 0; i < kCount; ++i) want[i] = i;
  EXPECT_EQ(journal_.first_passes(), want);
  std::vector<int> odd;
  for (int i = 1; i < kCount; i += 2) odd.push_back(i);
  EXPECT_EQ(journal_.finishes(), odd);
  for (const Record& r : journal_.all())
    if (r.kind != Kind::kFinish) { ASSERT_EQ(r.cur_seq, 3u); }
}

}  // namespace
}  // namespace umn::test::itree_conformance
