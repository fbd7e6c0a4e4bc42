// expensive_check_test.cc - UMN_DEBUG_LEVEL=2: the interval tree verifies itself after every insert and
// erase, so a corrupted tree aborts at the next mutation instead of misdirecting a later walk. This file
// compiles the tree at level 2 whatever the build's level (the checks are in the header template).
#undef UMN_DEBUG_LEVEL
#define UMN_DEBUG_LEVEL 2
#include <gtest/gtest.h>

#include <cstdint>

#include "itree/interval_tree.hpp"

namespace {

struct Node {
  uint64_t start = 0;
  uint64_t last = 0;
  void* leaf = nullptr;
};
using Tree = umn::detail::IntervalTreeOf<Node>;

// A healthy tree passes the check on every mutation.
TEST(ExpensiveChecks, HealthyMutationsPass) {
  Tree tree;
  Node nodes[40];
  for (int i = 0; i < 40; ++i) {
    nodes[i].start = static_cast<uint64_t>(i) * 10;
    nodes[i].last = nodes[i].start + 15;
    ASSERT_TRUE(tree.insert(&nodes[i]));
  }
  for (Node& node : nodes) tree.erase(&node);
  EXPECT_TRUE(tree.empty());
}

// Indexes three nodes, corrupting the middle one's interval behind the tree's back before the third.
void corrupt_then_insert() {
  Tree tree;
  Node a{10, 20, nullptr};
  Node b{30, 40, nullptr};
  Node c{50, 60, nullptr};
  tree.insert(&a);
  tree.insert(&b);
  b.last = 100;  // the tree's copy of b still says 40
  tree.insert(&c);
}

// A node whose interval changed while indexed aborts the next mutation, naming the failed verify().
TEST(ExpensiveChecksDeathTest, MutationOfACorruptedTreeAborts) { EXPECT_DEATH(corrupt_then_insert(), "verify"); }

}  // namespace
