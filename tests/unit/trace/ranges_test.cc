// ranges_test.cc - tools/trace/ranges.hpp: what of a call's effect no announcement covers, probed at
// the boundaries (start - 1, start, end - 1, end).
#include "trace/ranges.hpp"

#include <gtest/gtest.h>

namespace umn::trace {
namespace {

using Ranges = std::vector<Range>;

// An exact cover leaves nothing; one byte short at either end leaves that byte.
TEST(TraceRanges, SubtractLeavesExactlyTheUncoveredBytes) {
  EXPECT_TRUE(subtract({{100, 200}}, {{100, 200}}).empty());
  EXPECT_TRUE(subtract({{100, 200}}, {{99, 201}}).empty());
  EXPECT_EQ(subtract({{100, 200}}, {{101, 200}}), (Ranges{{100, 101}}));
  EXPECT_EQ(subtract({{100, 200}}, {{100, 199}}), (Ranges{{199, 200}}));
  EXPECT_EQ(subtract({{100, 200}}, {}), (Ranges{{100, 200}}));
}

// Covers that touch but do not overlap leave the piece whole.
TEST(TraceRanges, SubtractIgnoresAdjacentCovers) {
  EXPECT_EQ(subtract({{100, 200}}, {{0, 100}, {200, 300}}), (Ranges{{100, 200}}));
}

// Several covers, unordered and overlapping, leave every gap between them.
TEST(TraceRanges, SubtractLeavesEveryGapBetweenCovers) {
  EXPECT_EQ(subtract({{0, 100}}, {{50, 60}, {10, 20}, {15, 30}}), (Ranges{{0, 10}, {30, 50}, {60, 100}}));
}

// Only the mapped part of a range remains.
TEST(TraceRanges, IntersectKeepsOnlyTheMappedPart) {
  EXPECT_EQ(intersect({{0, 100}}, {{50, 60}, {90, 200}}), (Ranges{{50, 60}, {90, 100}}));
  EXPECT_TRUE(intersect({{0, 100}}, {{100, 200}}).empty());
}

}  // namespace
}  // namespace umn::trace
