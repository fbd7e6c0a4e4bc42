// interval_tree_test.cc - the intrusive interval tree against a naive model (a std::vector of intervals
// in insertion order), with verify() after every mutation and boundary probes at start-1, start, last,
// last+1, including the top of the 64-bit space.
#include "itree/interval_tree.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "support/seed.hpp"

namespace {

// The tree's node concept, met by a node of the test's own (the core uses umn.h's struct TestNode).
struct TestNode {
  uint64_t start = 0;
  uint64_t last = 0;
  void* leaf = nullptr;
};
using IntervalTree = umn::detail::IntervalTreeOf<TestNode>;
constexpr uint64_t kMax = UINT64_MAX;

// A tree node with an identity; the node comes first so a Node* is an Item*.
struct Item {
  TestNode node;
  int id = 0;
};
static_assert(offsetof(Item, node) == 0);

Item* item_of(TestNode* node) { return reinterpret_cast<Item*>(node); }

// The ids the tree's overlap walk visits for [start, last], in visiting order.
std::vector<int> walk(const IntervalTree& tree, uint64_t start, uint64_t last) {
  std::vector<int> ids;
  for (TestNode* n = tree.first_overlap(start, last); n != nullptr; n = IntervalTree::next_overlap(n, start, last))
    ids.push_back(item_of(n)->id);
  return ids;
}

// The naive model: intervals in insertion order; a query filters, then stable-sorts by start, so equal
// starts keep insertion order.
class Model {
 public:
  void insert(Item* item) { items_.push_back(item); }
  void erase(Item* item) { items_.erase(std::find(items_.begin(), items_.end(), item)); }
  [[nodiscard]] std::vector<int> walk(uint64_t start, uint64_t last) const {
    std::vector<Item*> hits;
    for (Item* it : items_)
      if (it->node.start <= last && start <= it->node.last) hits.push_back(it);
    std::stable_sort(hits.begin(), hits.end(),
                     [](const Item* a, const Item* b) { return a->node.start < b->node.start; });
    std::vector<int> ids;
    for (Item* it : hits) ids.push_back(it->id);
    return ids;
  }
  [[nodiscard]] size_t size() const { return items_.size(); }
  [[nodiscard]] Item* at(size_t i) const { return items_[i]; }

 private:
  std::vector<Item*> items_;
};

// A pool of items plus a tree and its model, mutated in lockstep.
class Harness {
 public:
  Item* insert(uint64_t start, uint64_t last) {
    Item& item = pool_.emplace_back();
    item.id = next_id_++;
    item.node.start = start;
    item.node.last = last;
    tree_.insert(&item.node);
    model_.insert(&item);
    return &item;
  }
  void erase(Item* item) {
    tree_.erase(&item->node);
    model_.erase(item);
  }
  [[nodiscard]] const IntervalTree& tree() const { return tree_; }
  [[nodiscard]] const Model& model() const { return model_; }

 private:
  std::deque<Item> pool_;  // stable addresses
  IntervalTree tree_;
  Model model_;
  int next_id_ = 0;
};

// An empty tree verifies, is empty, and finds nothing anywhere.
TEST(IntervalTree, EmptyTreeFindsNothing) {
  IntervalTree tree;
  EXPECT_TRUE(tree.verify());
  EXPECT_TRUE(tree.empty());
  EXPECT_EQ(tree.size(), 0u);
  EXPECT_EQ(tree.first_overlap(0, kMax), nullptr);
}

// A query finds [start, last] exactly when it touches it: probes at start-1, start, last and last+1.
TEST(IntervalTree, OverlapIsInclusiveAtBothEndsOfTheInterval) {
  Harness h;
  h.insert(100, 199);
  ASSERT_TRUE(h.tree().verify());
  EXPECT_TRUE(walk(h.tree(), 0, 99).empty());      // ends at start-1
  EXPECT_EQ(walk(h.tree(), 0, 100).size(), 1u);    // ends at start
  EXPECT_EQ(walk(h.tree(), 99, 99).size(), 0u);    // start-1 alone
  EXPECT_EQ(walk(h.tree(), 100, 100).size(), 1u);  // start alone
  EXPECT_EQ(walk(h.tree(), 199, 199).size(), 1u);  // last alone
  EXPECT_EQ(walk(h.tree(), 199, 500).size(), 1u);  // begins at last
  EXPECT_TRUE(walk(h.tree(), 200, 500).empty());   // begins at last+1
  EXPECT_EQ(walk(h.tree(), 150, 160).size(), 1u);  // inside
  EXPECT_EQ(walk(h.tree(), 0, kMax).size(), 1u);   // covering
}

// Intervals reaching the very top of the 64-bit space are found, and nothing wraps around to 0.
TEST(IntervalTree, IntervalsAtTheTopOfTheSpaceDoNotWrap) {
  Harness h;
  h.insert(kMax - 4095, kMax);
  h.insert(kMax, kMax);
  h.insert(0, 0);
  ASSERT_TRUE(h.tree().verify());
  EXPECT_EQ(walk(h.tree(), kMax, kMax), (std::vector<int>{0, 1}));
  EXPECT_EQ(walk(h.tree(), kMax - 1, kMax - 1), (std::vector<int>{0}));
  EXPECT_TRUE(walk(h.tree(), kMax - 8192, kMax - 4096).empty());  // last+1 of the query is start
  EXPECT_EQ(walk(h.tree(), kMax - 4096, kMax - 4095), (std::vector<int>{0}));
  EXPECT_EQ(walk(h.tree(), 0, 0), (std::vector<int>{2}));
  EXPECT_EQ(walk(h.tree(), 0, kMax), (std::vector<int>{2, 0, 1}));
}

// Equal starts are visited oldest first, also after erasing some of them and inserting more.
TEST(IntervalTree, EqualStartsKeepInsertionOrder) {
  Harness h;
  std::vector<Item*> items;
  for (int i = 0; i < 40; ++i) items.push_back(h.insert(500, 500 + static_cast<uint64_t>(i % 7)));
  for (int i = 0; i < 40; i += 3) {
    h.erase(items[static_cast<size_t>(i)]);
    ASSERT_TRUE(h.tree().verify());
  }
  for (int i = 0; i < 10; ++i) h.insert(500, 600);
  ASSERT_TRUE(h.tree().verify());
  EXPECT_EQ(walk(h.tree(), 0, kMax), h.model().walk(0, kMax));
  EXPECT_EQ(walk(h.tree(), 503, 503), h.model().walk(503, 503));
}

// erase() leaves the node unlinked (no leaf link), so a stale walk or a second erase is detectable.
TEST(IntervalTree, EraseLeavesTheNodeUnlinked) {
  Harness h;
  std::vector<Item*> items;
  for (uint64_t i = 0; i < 16; ++i) items.push_back(h.insert(i * 10, i * 10 + 5));
  for (Item* item : items) {
    h.erase(item);
    ASSERT_TRUE(h.tree().verify());
    EXPECT_EQ(item->node.leaf, nullptr);
    EXPECT_FALSE(IntervalTree::linked(&item->node));
  }
  EXPECT_TRUE(h.tree().empty());
}

// Ascending and descending insertion (the worst cases for an unbalanced tree) keep every leaf at one depth.
TEST(IntervalTree, SortedInsertionStaysBalanced) {
  Harness up;
  Harness down;
  for (uint64_t i = 0; i < 2000; ++i) {
    up.insert(i, i + 3);
    down.insert(5000 - i, 5000 - i);
  }
  ASSERT_TRUE(up.tree().verify());
  ASSERT_TRUE(down.tree().verify());
  EXPECT_EQ(walk(up.tree(), 1000, 1003), up.model().walk(1000, 1003));
  EXPECT_EQ(walk(down.tree(), 3000, 3100), down.model().walk(3000, 3100));
}

// verify() is not vacuous: an interval that no longer matches its index entry, or a broken order, is detected.
TEST(IntervalTree, VerifyDetectsCorruption) {
  Harness h;
  std::vector<Item*> items;
  for (uint64_t i = 0; i < 8; ++i) items.push_back(h.insert(i * 10, i * 10 + 1));
  ASSERT_TRUE(h.tree().verify());
  const uint64_t saved = items[3]->node.last;
  items[3]->node.last = saved + 1000;
  EXPECT_FALSE(h.tree().verify());
  items[3]->node.last = saved;
  ASSERT_TRUE(h.tree().verify());
  items[3]->node.start = 1000;  // larger than its in-order successors
  items[3]->node.last = 1001;
  EXPECT_FALSE(h.tree().verify());
}

// Picks an interval: mostly small and clustered (many overlaps and ties), sometimes near 0 or the top.
std::pair<uint64_t, uint64_t> random_interval(std::mt19937_64& rng) {
  const unsigned kind = rng() % 10;
  uint64_t start;
  if (kind == 0) {
    start = kMax - rng() % 64;
  } else if (kind == 1) {
    start = rng() % 64;
  } else {
    start = 1000 + rng() % 2000;
  }
  const uint64_t max_len = kind < 2 ? 16 : (rng() % 4 == 0 ? 1000 : 40);
  const uint64_t len = rng() % max_len;
  const uint64_t last = start > kMax - len ? kMax : start + len;
  return {start, last};
}

// Compares the tree's walk with the model's for a few random queries and the boundary probes of item.
void check_queries(const Harness& h, std::mt19937_64& rng, const Item* probe) {
  for (int q = 0; q < 4; ++q) {
    auto [s, l] = random_interval(rng);
    ASSERT_EQ(walk(h.tree(), s, l), h.model().walk(s, l)) << "query [" << s << ", " << l << "]";
  }
  if (probe == nullptr) return;
  const uint64_t s = probe->node.start;
  const uint64_t l = probe->node.last;
  const uint64_t points[] = {s - 1, s, l, l + 1};  // wrap at 0 / top is itself a useful probe
  for (uint64_t p : points) ASSERT_EQ(walk(h.tree(), p, p), h.model().walk(p, p)) << "point " << p;
}

// Random inserts and erases, compared with the naive model after each step, verify() after each mutation.
TEST(IntervalTree, RandomOperationsMatchTheNaiveModel) {
  std::mt19937_64 rng(umn::test::test_seed(0x756d6e2d69747265ull));
  Harness h;
  for (int step = 0; step < 20000; ++step) {
    const bool grow = h.model().size() < 50 || rng() % 100 < 52;
    const Item* probe = nullptr;
    if (grow || h.model().size() == 0) {
      auto [s, l] = random_interval(rng);
      probe = h.insert(s, l);
    } else {
      Item* victim = h.model().at(rng() % h.model().size());
      h.erase(victim);
    }
    ASSERT_TRUE(h.tree().verify()) << "after step " << step;
    ASSERT_EQ(h.tree().size(), h.model().size());
    check_queries(h, rng, probe);
    if (HasFatalFailure()) FAIL() << "at step " << step;
  }
  EXPECT_EQ(walk(h.tree(), 0, kMax), h.model().walk(0, kMax));
}

// Growing to thousands of intervals (several index levels) and erasing them all, in random order, keeps
// every invariant: splits, merges of sparse nodes and root changes included.
TEST(IntervalTree, GrowAndShrinkThroughSeveralLevels) {
  std::mt19937_64 rng(umn::test::test_seed(0x756d6e2d67726f77ull));
  Harness h;
  std::vector<Item*> items;
  for (int i = 0; i < 6000; ++i) {
    const uint64_t start = rng() % 100000;
    items.push_back(h.insert(start, start + rng() % 3));  // short intervals, many equal starts
    if (i % 97 == 0) {
      ASSERT_TRUE(h.tree().verify()) << "after insert " << i;
    }
  }
  ASSERT_TRUE(h.tree().verify());
  EXPECT_EQ(walk(h.tree(), 0, kMax), h.model().walk(0, kMax));
  std::shuffle(items.begin(), items.end(), rng);
  for (size_t i = 0; i < items.size(); ++i) {
    h.erase(items[i]);
    if (i % 97 == 0) {
      ASSERT_TRUE(h.tree().verify()) << "after erase " << i;
      EXPECT_EQ(walk(h.tree(), 20000, 30000), h.model().walk(20000, 30000));
    }
  }
  EXPECT_TRUE(h.tree().empty());
  EXPECT_TRUE(h.tree().verify());
}

// With spare nodes donated beforehand, inserts take no node from the allocator: the pool shrinks by
// exactly the index nodes the tree grew by, and never below zero.
TEST(IntervalTree, ReservedInsertsUseOnlySpareNodes) {
  IntervalTree tree;
  constexpr size_t kItems = 500;
  tree.donate(IntervalTree::allocate(tree.spare_needed(1) * kItems));
  const size_t donated = tree.spare();
  ASSERT_GE(donated, tree.spare_needed(kItems));
  std::vector<Item> items(kItems);
  for (size_t i = 0; i < kItems; ++i) {
    items[i].node.start = i * 10;
    items[i].node.last = i * 10 + 3;
    ASSERT_TRUE(tree.insert(&items[i].node));
  }
  EXPECT_LT(tree.spare(), donated);
  for (auto& item : items) tree.erase(&item.node);
  EXPECT_EQ(tree.spare(), donated);  // every index node came from, and went back to, the pool
  IntervalTree::release(tree.take_surplus(0));
  EXPECT_EQ(tree.spare(), 0u);
}

}  // namespace
