// ranges.hpp - half-open address ranges and the two set operations `umn trace --verify` needs: what
// of a call's effect no announcement covers, and what of that is mapped.
//
// Locking: none. Lifetime: values. Context: any. Memory ordering: none.
#pragma once

#include <cstdint>
#include <vector>

namespace umn::trace {

struct Range {
  uint64_t start = 0, end = 0;  // [start, end)
  bool empty() const noexcept { return start >= end; }
  bool operator==(const Range&) const = default;
};

// Every part of `from` that no range of `cover` contains, in order.
std::vector<Range> subtract(const std::vector<Range>& from, const std::vector<Range>& cover);

// Every part of `from` that lies inside some range of `within` (which may overlap each other only at
// their ends, as /proc maps lines do).
std::vector<Range> intersect(const std::vector<Range>& from, const std::vector<Range>& within);

}  // namespace umn::trace
