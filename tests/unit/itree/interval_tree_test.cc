#include <gtest/gtest.h>
#include "itree/interval_tree.hpp"
TEST(IntervalTree, Empty) { umn::detail::IntervalTree t; EXPECT_TRUE(t.verify()); }
