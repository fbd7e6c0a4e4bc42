// interval_tree.hpp - the interval index of an address space: a B+tree over closed intervals
// [start, last] whose entries point at nodes embedded in the caller's objects. The tree knows nothing of
// the notifiers: any standard-layout node with `uint64_t start, last` and a `void* leaf` link will do
// (the IntervalNode concept); the core instantiates it for umn.h's struct umn_interval_tree_node.
//
// Synopsis. Leaves hold up to kFanout entries (start, last, node*) sorted by start; equal starts keep
// insertion order (an insert goes after its equals). Internal nodes hold, per child, the smallest start
// and the largest last of the child's subtree. An overlap query descends once: the first child whose
// largest last reaches the query's start is the only place the first overlap can be, and if that
// child's first start is beyond the query's last there is no overlap at all. So the first of k
// overlapping entries costs O(log n) and each further one O(1) amortised (O(log n) worst case).
//
// Why a B+tree and not the kernel's intrusive red-black tree (docs/PERFORMANCE.md has the figures): at
// 1e6 notifiers an RB descent visits ~20 nodes, each in a different caller object, so most levels miss
// the cache and the TLB (t(1e6)/t(1e3) ~ 13-16). A 16-way node scans two cache lines per level and has
// 5 levels at 1e6, the upper ones hot. The price: index nodes are allocated on insert (never on the
// invalidate walk, never under the subscription lock when used through reserve()/donate()).
//
// Overlap: an entry intersects the query [start, last] iff entry.start <= last && start <= entry.last.
//
// Locking: none inside. The caller serialises insert/erase/reserve/replace; first_overlap / next_overlap
// may run concurrently with each other and with replace, but not with the other mutations. umn's core guarantees that
// with the subscription lock for mutations and the odd sequence number (a frozen tree) for its lock-free walks.
//
// Memory ordering: replace's slot store is a release, paired with the acquire loads of leaf slots in
// first_overlap / next_overlap: a concurrent walk that reaches `fresh` sees everything written to it
// before replace (its interval, its leaf link, the caller's fields).
//
// Lifetime: an inserted node must stay alive until erased. Index nodes belong to the tree;
// spare nodes (the pool) let a reserved insert run without allocating.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "base/check.hpp"

namespace umn::detail {

// What the tree needs of a caller's node: its interval and one pointer it may write (the index leaf that
// holds the node, nullptr while the node is not in a tree).
template <class N>
concept IntervalNode = std::is_standard_layout_v<N> && requires(N& node) {
  { node.start } -> std::same_as<uint64_t&>;
  { node.last } -> std::same_as<uint64_t&>;
  { node.leaf } -> std::same_as<void*&>;
};

// The tree itself, on links: a link is the address of a node's leaf field. IntervalTreeOf<Node> below is
// the typed face; use that.
class IntervalIndex {
 public:
  using Link = void*;
  static constexpr int kFanout = 16;
  struct IndexNode;

  // A list of free index nodes, for moving allocation and freeing outside the caller's lock.
  struct NodeChain {
    IndexNode* head = nullptr;
    size_t count = 0;
  };

  IntervalIndex() noexcept = default;
  IntervalIndex(const IntervalIndex&) = delete;
  IntervalIndex& operator=(const IntervalIndex&) = delete;
  ~IntervalIndex();

  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] size_t size() const noexcept { return size_; }

  // Reservation, so that inserts under a lock never allocate (and deferred inserts cannot fail):
  // spare nodes needed before `inserts` more inserts, each at most one split per level plus a new root.
  [[nodiscard]] size_t spare_needed(size_t inserts) const noexcept { return inserts * (height_ + 3); }
  [[nodiscard]] size_t spare() const noexcept { return pool_.count; }
  void donate(NodeChain chain) noexcept;
  // Detaches the spare nodes beyond `keep`, for release() outside the caller's lock.
  [[nodiscard]] NodeChain take_surplus(size_t keep) noexcept;
  // Allocates count index nodes (fewer on allocation failure); frees a chain.
  [[nodiscard]] static NodeChain allocate(size_t count) noexcept;
  static void release(NodeChain chain) noexcept;

  // Does the node behind link still hold [start, last] (the copy in its leaf entry)?
  using EntryCheck = bool (*)(const Link* link, uint64_t start, uint64_t last) noexcept;

 protected:
  bool insert_link(Link* link, uint64_t start, uint64_t last) noexcept;
  void erase_link(Link* link) noexcept;
  void replace_link(Link* link, Link* fresh) noexcept;
  [[nodiscard]] Link* first_link(uint64_t start, uint64_t last) const noexcept;
  [[nodiscard]] static Link* next_link(const Link* link, uint64_t start, uint64_t last) noexcept;
  [[nodiscard]] bool verify_links(EntryCheck entry_ok) const noexcept;

 private:
  IndexNode* new_node(bool leaf) noexcept;
  void free_node(IndexNode* n) noexcept;
  bool split_child(IndexNode* parent, int index) noexcept;
  bool grow_root() noexcept;
  void unlink_empty(IndexNode* n) noexcept;
  void merge_if_sparse(IndexNode* n) noexcept;
  void shrink_root() noexcept;

  IndexNode* root_ = nullptr;
  size_t size_ = 0;
  size_t height_ = 0;  // levels; 0 when empty
  NodeChain pool_;
};

template <IntervalNode Node>
class IntervalTreeOf : public IntervalIndex {
 public:
  // Inserts node (start <= last set by the caller). Uses spare nodes first and allocates only when there
  // are too few. Return: false (tree unchanged) when an allocation failed.
  // UMN_DEBUG_LEVEL >= 2 verifies the whole tree afterwards (and aborts if it is broken), as erase does.
  bool insert(Node* node) noexcept {
    const bool inserted = insert_link(&node->leaf, node->start, node->last);
    UMN_EXPENSIVE_CHECK(verify());
    return inserted;
  }
  // Removes node, which must be in this tree; emptied index nodes go to the spare pool.
  void erase(Node* node) noexcept {
    erase_link(&node->leaf);
    UMN_EXPENSIVE_CHECK(verify());
  }

  // Puts fresh (not in a tree, same start and last) in node's place, in O(fanout): one leaf slot changes
  // (a release store) and nothing moves, so a concurrent walk that is not at node is not disturbed.
  // node leaves the tree. The one mutation allowed while walks run; the caller still serialises it with
  // the other mutations.
  void replace(Node* node, Node* fresh) noexcept {
    replace_link(&node->leaf, &fresh->leaf);
    UMN_EXPENSIVE_CHECK(verify());
  }

  // The overlapping node with the smallest start (oldest among equal starts), or nullptr.
  [[nodiscard]] Node* first_overlap(uint64_t start, uint64_t last) const noexcept {
    return node_of(first_link(start, last));
  }
  // The overlapping node that follows node in tree order, or nullptr.
  [[nodiscard]] static Node* next_overlap(const Node* node, uint64_t start, uint64_t last) noexcept {
    return node_of(next_link(&node->leaf, start, last));
  }
  // True if node is in some tree (its leaf link is set).
  [[nodiscard]] static bool linked(const Node* node) noexcept { return node->leaf != nullptr; }

  // Checks every invariant (order, summaries, parent and leaf links, equal leaf depth, size, and that
  // each node still holds the interval it was indexed under); O(n).
  [[nodiscard]] bool verify() const noexcept { return verify_links(&holds); }

 private:
  // The node whose leaf field is *link (the kernel's container_of).
  static Node* node_of(const Link* link) noexcept {
    if (link == nullptr) return nullptr;
    const auto* bytes = reinterpret_cast<const unsigned char*>(link) - offsetof(Node, leaf);
    return const_cast<Node*>(reinterpret_cast<const Node*>(bytes));
  }
  static bool holds(const Link* link, uint64_t start, uint64_t last) noexcept {
    const Node* node = node_of(link);
    return node->start == start && node->last == last;
  }
};

}  // namespace umn::detail
