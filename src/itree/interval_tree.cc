// interval_tree.cc - red-black balancing (Cormen et al., "Introduction to Algorithms", ch. 13, with nil
// leaves as nullptr) plus the subtree_last augmentation:
//   1. insert raises subtree_last on the way down, so every ancestor already covers the new node;
//   2. a rotation moves the whole subtree's maximum to the node that moves up and recomputes the one that
//      moves down from its new children;
//   3. erase recomputes subtree_last from the lowest node whose subtree changed up to the root.
// Colours live in bit 0 of parent_color (1 = black), so a node costs six words.
#include "itree/interval_tree.hpp"

#include <algorithm>

namespace umn::detail {
namespace {

using Node = IntervalTree::Node;

constexpr uintptr_t kBlack = 1;

Node* parent_of(const Node* n) noexcept { return reinterpret_cast<Node*>(n->parent_color & ~kBlack); }
bool is_red(const Node* n) noexcept { return n != nullptr && (n->parent_color & kBlack) == 0; }
bool is_black(const Node* n) noexcept { return !is_red(n); }
void set_parent(Node* n, const Node* p) noexcept {
  n->parent_color = reinterpret_cast<uintptr_t>(p) | (n->parent_color & kBlack);
}
void set_black(Node* n) noexcept { n->parent_color |= kBlack; }
void set_red(Node* n) noexcept { n->parent_color &= ~kBlack; }
void copy_colour(Node* to, const Node* from) noexcept {
  to->parent_color = (to->parent_color & ~kBlack) | (from->parent_color & kBlack);
}

uint64_t subtree_max(const Node* n) noexcept {
  uint64_t max = n->last;
  if (n->left != nullptr) max = std::max(max, n->left->subtree_last);
  if (n->right != nullptr) max = std::max(max, n->right->subtree_last);
  return max;
}

// The leftmost node of the subtree at n that intersects [start, last], or nullptr. n's subtree_last is
// known to be >= start. Every node left of n starts no later than n, so if the left subtree reaches start
// the answer, if any, is there: anything right of it starts later still.
Node* leftmost_overlap(Node* n, uint64_t start, uint64_t last) noexcept {
  for (;;) {
    // The next node is a child; start fetching the right one while the left one's maximum is read
    // (at 1e6 nodes most levels miss the cache: see docs/PERFORMANCE.md).
    __builtin_prefetch(n->right);
    if (n->left != nullptr && n->left->subtree_last >= start) {
      n = n->left;
      continue;
    }
    if (n->start > last) return nullptr;  // n and everything right of it start too late
    if (n->last >= start) return n;
    n = n->right;
    if (n == nullptr || n->subtree_last < start) return nullptr;
  }
}

}  // namespace

void IntervalTree::replace_child(Node* parent, const Node* old_child, Node* new_child) noexcept {
  if (parent == nullptr)
    root_ = new_child;
  else if (parent->left == old_child)
    parent->left = new_child;
  else
    parent->right = new_child;
}

void IntervalTree::rotate_left(Node* x) noexcept {
  Node* y = x->right;
  Node* p = parent_of(x);
  x->right = y->left;
  if (y->left != nullptr) set_parent(y->left, x);
  replace_child(p, x, y);
  set_parent(y, p);
  y->left = x;
  set_parent(x, y);
  y->subtree_last = x->subtree_last;
  x->subtree_last = subtree_max(x);
}

void IntervalTree::rotate_right(Node* x) noexcept {
  Node* y = x->left;
  Node* p = parent_of(x);
  x->left = y->right;
  if (y->right != nullptr) set_parent(y->right, x);
  replace_child(p, x, y);
  set_parent(y, p);
  y->right = x;
  set_parent(x, y);
  y->subtree_last = x->subtree_last;
  x->subtree_last = subtree_max(x);
}

void IntervalTree::insert(Node* node) noexcept {
  node->left = nullptr;
  node->right = nullptr;
  node->subtree_last = node->last;
  Node* parent = nullptr;
  Node** link = &root_;
  while (*link != nullptr) {
    parent = *link;
    parent->subtree_last = std::max(parent->subtree_last, node->last);
    link = node->start < parent->start ? &parent->left : &parent->right;
  }
  node->parent_color = reinterpret_cast<uintptr_t>(parent);  // red
  *link = node;
  ++size_;
  insert_fixup(node);
}

void IntervalTree::insert_fixup(Node* node) noexcept {
  Node* parent;
  while ((parent = parent_of(node)) != nullptr && is_red(parent)) {
    Node* grand = parent_of(parent);  // exists: a red node is never the root
    const bool parent_is_left = parent == grand->left;
    Node* uncle = parent_is_left ? grand->right : grand->left;
    if (is_red(uncle)) {
      set_black(parent);
      set_black(uncle);
      set_red(grand);
      node = grand;
      continue;
    }
    if (parent_is_left && node == parent->right) {
      rotate_left(parent);
      node = parent;
      parent = parent_of(node);
    } else if (!parent_is_left && node == parent->left) {
      rotate_right(parent);
      node = parent;
      parent = parent_of(node);
    }
    set_black(parent);
    set_red(grand);
    if (parent_is_left)
      rotate_right(grand);
    else
      rotate_left(grand);
  }
  set_black(root_);
}

void IntervalTree::transplant(const Node* old_node, Node* new_node) noexcept {
  Node* p = parent_of(old_node);
  replace_child(p, old_node, new_node);
  if (new_node != nullptr) set_parent(new_node, p);
}

void IntervalTree::erase(Node* node) noexcept {
  Node* child;
  Node* child_parent;
  bool removed_black = is_black(node);
  if (node->left == nullptr || node->right == nullptr) {
    child = node->left != nullptr ? node->left : node->right;
    child_parent = parent_of(node);
    transplant(node, child);
  } else {
    Node* successor = node->right;
    while (successor->left != nullptr) successor = successor->left;
    removed_black = is_black(successor);
    child = successor->right;
    if (parent_of(successor) == node) {
      child_parent = successor;
    } else {
      child_parent = parent_of(successor);
      transplant(successor, successor->right);
      successor->right = node->right;
      set_parent(successor->right, successor);
    }
    transplant(node, successor);
    successor->left = node->left;
    set_parent(successor->left, successor);
    copy_colour(successor, node);
  }
  for (Node* n = child_parent; n != nullptr; n = parent_of(n)) n->subtree_last = subtree_max(n);
  if (removed_black) erase_fixup(child, child_parent);
  node->parent_color = 0;
  node->left = nullptr;
  node->right = nullptr;
  --size_;
}

void IntervalTree::erase_fixup(Node* child, Node* parent) noexcept {
  while (child != root_ && is_black(child)) {
    const bool child_is_left = child == parent->left;
    Node* sibling = child_is_left ? parent->right : parent->left;
    if (is_red(sibling)) {
      set_black(sibling);
      set_red(parent);
      if (child_is_left) rotate_left(parent); else rotate_right(parent);
      sibling = child_is_left ? parent->right : parent->left;
    }
    Node* near = child_is_left ? sibling->left : sibling->right;
    Node* far = child_is_left ? sibling->right : sibling->left;
    if (is_black(near) && is_black(far)) {
      set_red(sibling);
      child = parent;
      parent = parent_of(child);
      continue;
    }
    if (is_black(far)) {
      set_black(near);
      set_red(sibling);
      if (child_is_left) rotate_right(sibling); else rotate_left(sibling);
      sibling = child_is_left ? parent->right : parent->left;
      far = child_is_left ? sibling->right : sibling->left;
    }
    copy_colour(sibling, parent);
    set_black(parent);
    set_black(far);
    if (child_is_left) rotate_left(parent); else rotate_right(parent);
    child = root_;
    break;
  }
  if (child != nullptr) set_black(child);
}

Node* IntervalTree::first_overlap(uint64_t start, uint64_t last) const noexcept {
  if (root_ == nullptr || root_->subtree_last < start) return nullptr;
  return leftmost_overlap(root_, start, last);
}

Node* IntervalTree::next_overlap(const Node* node, uint64_t start, uint64_t last) noexcept {
  for (;;) {
    // Anything in node's right subtree comes next in order.
    if (node->right != nullptr && node->right->subtree_last >= start)
      return leftmost_overlap(node->right, start, last);
    // Otherwise climb to the first ancestor that node lies left of.
    const Node* child;
    do {
      child = node;
      node = parent_of(node);
      if (node == nullptr) return nullptr;
    } while (node->right == child);
    if (node->start > last) return nullptr;
    if (node->last >= start) return const_cast<Node*>(node);
  }
}

namespace {

struct VerifyResult {
  bool ok = true;
  int black_height = 0;
  size_t count = 0;
};

VerifyResult verify_subtree(const Node* n, const Node* parent, const Node*& prev) noexcept {
  if (n == nullptr) return {true, 1, 0};
  VerifyResult left = verify_subtree(n->left, n, prev);
  bool ok = left.ok && parent_of(n) == parent && n->start <= n->last;
  if (prev != nullptr && prev->start > n->start) ok = false;
  prev = n;
  VerifyResult right = verify_subtree(n->right, n, prev);
  ok = ok && right.ok && left.black_height == right.black_height && n->subtree_last == subtree_max(n);
  if (is_red(n) && (is_red(n->left) || is_red(n->right))) ok = false;
  return {ok, left.black_height + (is_black(n) ? 1 : 0), left.count + right.count + 1};
}

}  // namespace

bool IntervalTree::verify() const noexcept {
  const Node* prev = nullptr;
  VerifyResult r = verify_subtree(root_, nullptr, prev);
  return r.ok && r.count == size_ && is_black(root_);
}

}  // namespace umn::detail
