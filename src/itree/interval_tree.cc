// interval_tree.cc - a B+tree of intervals with per-child summaries (smallest start, largest last).
//
// Algorithms:
//   1. insert descends by start, splitting full nodes on the way down (so a split never cascades up),
//      places the entry after its equal starts, then refreshes the summaries on the path to the root.
//   2. erase removes the entry from its leaf (found through the node's leaf link), unlinks emptied index
//      nodes, merges a node that fell below a quarter full into a sibling with room, and drops a root
//      left with one child. Freed index nodes go to the spare pool.
//   3. The overlap descent never backtracks: in a node, the first slot whose largest last reaches the
//      query's start holds the first overlap if there is one (all earlier slots end before the query;
//      all later slots start no earlier). next_overlap continues in the leaf, then climbs through parent
//      links to the next slot that reaches the start, and descends again.
// Every leaf entry keeps a copy of its node's start and last, so a walk reads only index nodes until it
// returns a hit.
#include "itree/interval_tree.hpp"

#include <algorithm>
#include <atomic>
#include <new>

namespace umn::detail {

struct IntervalIndex::IndexNode {
  IndexNode* parent;  // in the spare pool: the next spare node
  int count;
  bool leaf;
  uint64_t max_last[kFanout];   // leaf: the entry's last; internal: the child's largest last
  uint64_t min_start[kFanout];  // leaf: the entry's start; internal: the child's smallest start
  void* slot[kFanout];          // leaf: Link* (a node's leaf field); internal: IndexNode*
};

namespace {

using IndexNode = IntervalIndex::IndexNode;
using Link = IntervalIndex::Link;
constexpr int kFanout = IntervalIndex::kFanout;

IndexNode* child(const IndexNode* n, int i) noexcept { return static_cast<IndexNode*>(n->slot[i]); }
// Acquire: pairs with replace_link's release store. A walk of another thread may reach a slot swapped to
// a tombstone during its walk; the load orders the tombstone's writes (its leaf link, interval, ops)
// before the walk reads them. (A plain mov on x86.)
Link* entry(const IndexNode* n, int i) noexcept {
  return static_cast<Link*>(std::atomic_ref(const_cast<IndexNode*>(n)->slot[i]).load(std::memory_order_acquire));
}
IndexNode* leaf_of(const Link* link) noexcept { return static_cast<IndexNode*>(*link); }

uint64_t largest_last(const IndexNode* n) noexcept { return *std::max_element(n->max_last, n->max_last + n->count); }

int index_in_parent(const IndexNode* n) noexcept {
  const IndexNode* p = n->parent;
  return static_cast<int>(std::find(p->slot, p->slot + p->count, n) - p->slot);
}

// A walk scans the whole leaf while replace_link may swap another entry of it (its only write during a
// walk). Acquire loads (entry(): pairs with replace_link's release store), although the value read here
// is only compared: every concurrent read of a slot is ordered after the swap it sees.
int index_of_entry(const IndexNode* leaf, const Link* link) noexcept {
  int i = 0;
  while (i < leaf->count && entry(leaf, i) != link) ++i;
  return i;
}

// The first slot at or after `from` whose largest last reaches start; n->count if none.
int first_reaching(const IndexNode* n, int from, uint64_t start) noexcept {
  int i = from;
  while (i < n->count && n->max_last[i] < start) ++i;
  return i;
}

// Points slot i's back link (an entry's leaf link, or a child's parent link) at n.
void adopt(IndexNode* n, int i) noexcept {
  if (n->leaf)
    *entry(n, i) = n;
  else
    child(n, i)->parent = n;
}

// Moves count slots from src[from..] to dst[at..] (dst has room and no slots at or after `at`).
void move_slots(IndexNode* dst, int at, IndexNode* src, int from, int count) noexcept {
  std::copy_n(src->max_last + from, count, dst->max_last + at);
  std::copy_n(src->min_start + from, count, dst->min_start + at);
  std::copy_n(src->slot + from, count, dst->slot + at);
  dst->count = at + count;
  for (int i = at; i < at + count; ++i) adopt(dst, i);
}

// Opens a gap at slot i (n has room).
void open_slot(IndexNode* n, int i) noexcept {
  std::copy_backward(n->max_last + i, n->max_last + n->count, n->max_last + n->count + 1);
  std::copy_backward(n->min_start + i, n->min_start + n->count, n->min_start + n->count + 1);
  std::copy_backward(n->slot + i, n->slot + n->count, n->slot + n->count + 1);
  ++n->count;
}

void close_slot(IndexNode* n, int i) noexcept {
  std::copy(n->max_last + i + 1, n->max_last + n->count, n->max_last + i);
  std::copy(n->min_start + i + 1, n->min_start + n->count, n->min_start + i);
  std::copy(n->slot + i + 1, n->slot + n->count, n->slot + i);
  --n->count;
}

// Rewrites n's summary in its parent, and so on up while anything changed. n is not empty.
void refresh_up(IndexNode* n) noexcept {
  for (IndexNode* p = n->parent; p != nullptr; n = p, p = p->parent) {
    const int i = index_in_parent(n);
    const uint64_t last = largest_last(n);
    if (p->max_last[i] == last && p->min_start[i] == n->min_start[0]) return;
    p->max_last[i] = last;
    p->min_start[i] = n->min_start[0];
  }
}

// From a node whose subtree reaches start: the first entry with last >= start if it starts by `last`.
Link* descend(const IndexNode* n, uint64_t start, uint64_t last) noexcept {
  for (;;) {
    const int i = first_reaching(n, 0, start);
    if (i == n->count || n->min_start[i] > last) return nullptr;
    if (n->leaf) return entry(n, i);
    n = child(n, i);
  }
}

// Where an insert of key goes in n: after every slot whose smallest start is <= key.
int upper_slot(const IndexNode* n, uint64_t key) noexcept {
  return static_cast<int>(std::upper_bound(n->min_start, n->min_start + n->count, key) - n->min_start);
}

void free_subtree(IndexNode* n) noexcept {
  if (!n->leaf)
    for (int i = 0; i < n->count; ++i) free_subtree(child(n, i));
  delete n;
}

}  // namespace

IntervalIndex::~IntervalIndex() {
  if (root_ != nullptr) free_subtree(root_);
  release(pool_);
}

IntervalIndex::NodeChain IntervalIndex::allocate(size_t count) noexcept {
  NodeChain chain;
  for (; chain.count < count; ++chain.count) {
    auto* n = new (std::nothrow) IndexNode;
    if (n == nullptr) break;
    n->parent = chain.head;
    chain.head = n;
  }
  return chain;
}

void IntervalIndex::release(NodeChain chain) noexcept {
  while (chain.head != nullptr) {
    IndexNode* next = chain.head->parent;
    delete chain.head;
    chain.head = next;
  }
}

void IntervalIndex::donate(NodeChain chain) noexcept {
  while (chain.head != nullptr) {
    IndexNode* next = chain.head->parent;
    free_node(chain.head);
    chain.head = next;
  }
}

IntervalIndex::NodeChain IntervalIndex::take_surplus(size_t keep) noexcept {
  NodeChain surplus;
  while (pool_.count > keep) {
    IndexNode* n = pool_.head;
    pool_.head = n->parent;
    --pool_.count;
    n->parent = surplus.head;
    surplus.head = n;
    ++surplus.count;
  }
  return surplus;
}

IntervalIndex::IndexNode* IntervalIndex::new_node(bool leaf) noexcept {
  IndexNode* n = pool_.head;
  if (n != nullptr) {
    pool_.head = n->parent;
    --pool_.count;
  } else {
    n = new (std::nothrow) IndexNode;
    if (n == nullptr) return nullptr;
  }
  n->parent = nullptr;
  n->count = 0;
  n->leaf = leaf;
  return n;
}

void IntervalIndex::free_node(IndexNode* n) noexcept {
  n->parent = pool_.head;
  pool_.head = n;
  ++pool_.count;
}

// Splits parent's full child i in two halves; the upper half becomes child i + 1.
bool IntervalIndex::split_child(IndexNode* parent, int i) noexcept {
  IndexNode* left = child(parent, i);
  IndexNode* right = new_node(left->leaf);
  if (right == nullptr) return false;
  constexpr int kHalf = kFanout / 2;
  move_slots(right, 0, left, kHalf, kFanout - kHalf);
  left->count = kHalf;
  open_slot(parent, i + 1);
  parent->slot[i + 1] = right;
  right->parent = parent;
  parent->min_start[i + 1] = right->min_start[0];
  parent->max_last[i + 1] = largest_last(right);
  parent->max_last[i] = largest_last(left);
  return true;
}

// Puts a new root above a full root and splits it.
bool IntervalIndex::grow_root() noexcept {
  IndexNode* old_root = root_;
  IndexNode* top = new_node(false);
  if (top == nullptr) return false;
  top->count = 1;
  top->slot[0] = old_root;
  top->min_start[0] = old_root->min_start[0];
  top->max_last[0] = largest_last(old_root);
  old_root->parent = top;
  if (!split_child(top, 0)) {
    old_root->parent = nullptr;
    free_node(top);
    return false;
  }
  root_ = top;
  ++height_;
  return true;
}

bool IntervalIndex::insert_link(Link* link, uint64_t start, uint64_t last) noexcept {
  if (root_ == nullptr) {
    root_ = new_node(true);
    if (root_ == nullptr) return false;
    height_ = 1;
  }
  if (root_->count == kFanout && !grow_root()) return false;
  IndexNode* n = root_;
  while (!n->leaf) {
    int i = std::max(upper_slot(n, start) - 1, 0);
    if (child(n, i)->count == kFanout) {
      if (!split_child(n, i)) return false;
      if (n->min_start[i + 1] <= start) ++i;
    }
    n = child(n, i);
  }
  const int at = upper_slot(n, start);
  open_slot(n, at);
  n->min_start[at] = start;
  n->max_last[at] = last;
  n->slot[at] = link;
  *link = n;
  ++size_;
  refresh_up(n);
  return true;
}

void IntervalIndex::erase_link(Link* link) noexcept {
  IndexNode* n = leaf_of(link);
  close_slot(n, index_of_entry(n, link));
  *link = nullptr;
  --size_;
  if (n->count == 0) {
    unlink_empty(n);
  } else {
    refresh_up(n);
    merge_if_sparse(n);
  }
  shrink_root();
}

void IntervalIndex::replace_link(Link* link, Link* fresh) noexcept {
  IndexNode* n = leaf_of(link);
  *fresh = n;
  // Release: pairs with the acquire loads of entry() (and index_of_entry) in other threads' walks, which
  // may reach this slot: they read *fresh (just written) and the tombstone's fields after seeing it.
  std::atomic_ref(n->slot[index_of_entry(n, link)]).store(fresh, std::memory_order_release);
  *link = nullptr;
}

// Removes an empty index node from its parent (and the parent too if that empties it).
void IntervalIndex::unlink_empty(IndexNode* n) noexcept {
  IndexNode* parent = n->parent;
  if (parent == nullptr) {
    root_ = nullptr;
    height_ = 0;
  } else {
    close_slot(parent, index_in_parent(n));
    if (parent->count == 0) {
      unlink_empty(parent);
    } else {
      refresh_up(parent);
      merge_if_sparse(parent);
    }
  }
  free_node(n);
}

// Folds a node below a quarter full into a neighbour with room, keeping the tree compact after erases.
void IntervalIndex::merge_if_sparse(IndexNode* n) noexcept {
  IndexNode* parent = n->parent;
  if (parent == nullptr || n->count >= kFanout / 4) return;
  const int i = index_in_parent(n);
  IndexNode* into;
  IndexNode* gone;
  if (i > 0 && child(parent, i - 1)->count + n->count <= kFanout) {
    into = child(parent, i - 1);
    gone = n;
  } else if (i + 1 < parent->count && child(parent, i + 1)->count + n->count <= kFanout) {
    into = n;
    gone = child(parent, i + 1);
  } else {
    return;
  }
  move_slots(into, into->count, gone, 0, gone->count);
  close_slot(parent, index_in_parent(gone));
  free_node(gone);
  parent->max_last[index_in_parent(into)] = largest_last(into);
  refresh_up(parent);
  merge_if_sparse(parent);
}

void IntervalIndex::shrink_root() noexcept {
  while (root_ != nullptr && !root_->leaf && root_->count == 1) {
    IndexNode* old_root = root_;
    root_ = child(old_root, 0);
    root_->parent = nullptr;
    free_node(old_root);
    --height_;
  }
}

IntervalIndex::Link* IntervalIndex::first_link(uint64_t start, uint64_t last) const noexcept {
  return root_ == nullptr ? nullptr : descend(root_, start, last);
}

IntervalIndex::Link* IntervalIndex::next_link(const Link* link, uint64_t start, uint64_t last) noexcept {
  const IndexNode* n = leaf_of(link);
  int from = index_of_entry(n, link) + 1;
  for (;;) {
    const int i = first_reaching(n, from, start);
    if (i < n->count) {
      if (n->min_start[i] > last) return nullptr;
      return n->leaf ? entry(n, i) : descend(child(n, i), start, last);
    }
    if (n->parent == nullptr) return nullptr;
    from = index_in_parent(n) + 1;
    n = n->parent;
  }
}

namespace {

struct VerifyState {
  IntervalIndex::EntryCheck entry_ok;
  size_t entries = 0;
  uint64_t previous_start = 0;
  bool ok = true;
};

// Checks the subtree at n (depth counted from 1 at the root) and that its summary is what its parent says.
void verify_node(const IndexNode* n, const IndexNode* parent, size_t depth, size_t height, VerifyState& s) {
  s.ok = s.ok && n->parent == parent && n->count >= 1 && n->count <= kFanout;
  if (!s.ok) return;
  for (int i = 0; i < n->count; ++i) {
    if (n->leaf) {
      const Link* e = entry(n, i);
      const uint64_t start = n->min_start[i];
      s.ok = s.ok && depth == height && *e == n && s.entry_ok(e, start, n->max_last[i]) && start <= n->max_last[i] &&
             start >= s.previous_start;
      s.previous_start = start;
      ++s.entries;
      continue;
    }
    const IndexNode* c = child(n, i);
    verify_node(c, n, depth + 1, height, s);
    if (!s.ok) return;
    s.ok = n->min_start[i] == c->min_start[0] && n->max_last[i] == largest_last(c);
  }
}

}  // namespace

bool IntervalIndex::verify_links(EntryCheck entry_ok) const noexcept {
  if (root_ == nullptr) return size_ == 0 && height_ == 0;
  VerifyState state{entry_ok};
  verify_node(root_, nullptr, 1, height_, state);
  return state.ok && state.entries == size_;
}

}  // namespace umn::detail
