// interval_tree.hpp - an intrusive, augmented red-black interval tree over closed intervals [start, last].
//
// Synopsis: nodes (struct umn_itree_node, from umn.h) live inside the caller's objects; the tree never
// allocates. Nodes are ordered by start; equal starts keep insertion order (an insert goes right on a
// tie), so an in-order walk visits equal starts oldest first. Every node also stores subtree_last, the
// largest `last` in its subtree, which lets an overlap query skip subtrees: finding the first of k
// overlapping nodes costs O(log n), each further one amortised O(log n) at worst and O(1) typically.
//
// Overlap: a node intersects the query [start, last] iff node.start <= last && start <= node.last.
//
// Locking: none inside. The caller serialises insert/erase; readers (first_overlap / next_overlap) may run
// concurrently with each other but not with insert/erase. umn's core guarantees that with the
// subscription lock for mutations and the odd sequence number (a frozen tree) for its lock-free walks.
//
// Lifetime: a node must stay alive while it is in the tree; erase() resets it to the unlinked state.
#pragma once

#include <cstddef>
#include <cstdint>

#include "umn/umn.h"

namespace umn::detail {

class IntervalTree {
 public:
  using Node = umn_itree_node;

  // Inserts node, whose start and last (start <= last) the caller has set. O(log n).
  void insert(Node* node) noexcept;
  // Removes node, which must be in this tree. O(log n). Leaves node unlinked (all links null).
  void erase(Node* node) noexcept;

  // The overlapping node with the smallest start (oldest among equal starts), or nullptr.
  [[nodiscard]] Node* first_overlap(uint64_t start, uint64_t last) const noexcept;
  // The overlapping node that follows node in tree order, or nullptr.
  [[nodiscard]] static Node* next_overlap(const Node* node, uint64_t start, uint64_t last) noexcept;

  [[nodiscard]] bool empty() const noexcept { return root_ == nullptr; }
  [[nodiscard]] size_t size() const noexcept { return size_; }

  // Checks every invariant (order, red-black shape, parent links, subtree_last, size); O(n). For tests.
  [[nodiscard]] bool verify() const noexcept;

 private:
  void rotate_left(Node* x) noexcept;
  void rotate_right(Node* x) noexcept;
  void replace_child(Node* parent, const Node* old_child, Node* new_child) noexcept;
  void transplant(const Node* old_node, Node* new_node) noexcept;
  void insert_fixup(Node* node) noexcept;
  void erase_fixup(Node* child, Node* parent) noexcept;

  Node* root_ = nullptr;
  size_t size_ = 0;
};

}  // namespace umn::detail
