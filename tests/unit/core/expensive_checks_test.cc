// expensive_checks_test.cc - what the library's UMN_DEBUG_LEVEL does to an address space's interval tree.
// At level 2 every insert and remove verifies the whole tree (src/itree/interval_tree.hpp), so a
// notifier whose interval changed behind the tree's back aborts the next insert; below level 2 no insert
// walks the tree (O(log n), the cost docs/PERFORMANCE.md measures). scripts/test.sh builds the ASan stage
// at level 2, where this proves the level reaches the core's own trees; tests/unit/itree/
// expensive_check_test.cc checks the check itself on a tree of its own, in every build.
#include <gtest/gtest.h>

#include "support/core_test.hpp"

namespace {

using namespace umn::test;  // NOLINT(google-build-using-namespace): the shared test doubles

// Indexes a and b, widens a's interval behind the tree's back (the tree's copy still says one page), then
// inserts c and returns what the insert returned; a's interval is restored afterwards, for the removes.
int insert_after_corrupting(umn_mm* mm, CallLog* log) {
  RecordingNotifier a(1, log), b(2, log), c(3, log);
  if (a.insert(mm, 0, kPage) != 0 || b.insert(mm, 4 * kPage, kPage) != 0) return -1;
  a.sub.interval_tree.last += 2 * kPage;
  const int inserted = c.insert(mm, 8 * kPage, kPage);
  a.sub.interval_tree.last -= 2 * kPage;
  a.remove();
  b.remove();
  if (inserted == 0) c.remove();
  return inserted;
}

#if UMN_DEBUG_LEVEL >= 2
class LibraryDebugLevelDeathTest : public AddressSpaceTest {};

// Level 2: the insert after the corruption verifies the tree, finds a's interval changed, and aborts.
TEST_F(LibraryDebugLevelDeathTest, Level2InsertIntoACorruptedTreeAborts) {
  EXPECT_DEATH(insert_after_corrupting(mm_, &log_), "verify");
}
#else
class LibraryDebugLevel : public AddressSpaceTest {};

// Below level 2 the insert does not walk the tree: it succeeds, corruption unseen.
TEST_F(LibraryDebugLevel, BelowLevel2InsertDoesNotVerifyTheTree) { EXPECT_EQ(insert_after_corrupting(mm_, &log_), 0); }
#endif

}  // namespace
