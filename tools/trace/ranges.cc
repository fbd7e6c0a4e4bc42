// ranges.cc - range subtraction and intersection (ranges.hpp). Quadratic in the number of ranges,
// which is a handful per system call.
#include "trace/ranges.hpp"

#include <algorithm>

namespace umn::trace {

namespace {

void subtract_one(Range piece, const std::vector<Range>& cover, size_t from, std::vector<Range>* out) {
  for (size_t i = from; i < cover.size() && !piece.empty(); ++i) {
    const Range& c = cover[i];
    if (c.end <= piece.start || c.start >= piece.end) continue;
    if (c.start > piece.start) subtract_one({piece.start, c.start}, cover, i + 1, out);
    piece.start = std::max(piece.start, c.end);
  }
  if (!piece.empty()) out->push_back(piece);
}

}  // namespace

std::vector<Range> subtract(const std::vector<Range>& from, const std::vector<Range>& cover) {
  std::vector<Range> out;
  for (const Range& piece : from) subtract_one(piece, cover, 0, &out);
  return out;
}

std::vector<Range> intersect(const std::vector<Range>& from, const std::vector<Range>& within) {
  std::vector<Range> out;
  for (const Range& piece : from)
    for (const Range& w : within) {
      Range both{std::max(piece.start, w.start), std::min(piece.end, w.end)};
      if (!both.empty()) out.push_back(both);
    }
  return out;
}

}  // namespace umn::trace
