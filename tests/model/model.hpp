// model.hpp - an executable reference model of umn's interval-notifier semantics.
//
// What it is: the behaviour of umn's C API (umn.h) for interval notifiers, written as plainly as possible
// so that it can be read and believed: one lock held by every public method, std::vector lists, a linear
// scan instead of a tree, no lock-free code. It answers, for a single-threaded driver, what umn must do:
// which callbacks run in which order with which cur_seq, what each call returns, which diagnostics are
// reported, and which calls would block (so that a single-threaded driver never calls those).
//
// Its sequence numbers are defined exactly as the kernel's (reference/kernel-semantics.md 2.1-2.9):
// the address space's seq starts at 2, an epoch makes it odd (seq |= 1) and its last range end makes it
// even (seq + 1); an interval notifier's seq is odd. The differential fuzzer (tests/fuzz) nevertheless
// compares umn's numbers only through a bijection (equal values in umn <=> equal values here) and
// parity, so that umn is free to number epochs differently as long as every relation holds.
//
// Locking: one std::mutex, held for the whole of every public method. Context: any thread.
// Lifetime: a Model is a value; notifiers and ranges are small integers (slots) fixed at construction.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace umn_model {

// The life cycle of one interval notifier (umn: umn_interval_notifier::state).
enum class NotifierState { kNever, kRemoved, kInTree, kPendingInsert, kPendingRemove };

// The shape of a notifier's ops table.
enum class OpsKind : uint8_t {
  kInvalidate,     // invalidate only
  kTwoPass,        // invalidate_start + invalidate_finish
  kBoth,           // all three: invalidate_start is used
  kStartNoFinish,  // invalidate_start without invalidate_finish: rejected
  kNone,           // no callback: rejected
};
constexpr int kOpsKinds = 5;

// What one first-pass callback does (chosen by the driver, identical for umn and the model).
struct Decision {
  bool ok = true;       // its return value
  bool record = false;  // two-pass: hands out a finish record (ignored for kInvalidate)
  bool set_seq = true;  // calls umn_interval_set_seq(sub, cur_seq)
};
// Called once per first-pass callback, in call order, with the notifier's slot.
using Decide = std::function<Decision(int notifier)>;

// One callback invocation.
struct Call {
  enum Kind : uint8_t { kInvalidate, kStart, kFinish } kind;
  int notifier;
  uint64_t start = 0, end = 0;  // the range (not for kFinish)
  int event = 0;
  bool blockable = false;
  unsigned long cur_seq = 0;
  bool record = false;  // kStart: a record was handed out and accepted (ok)
};

// Errno values as umn returns them (negated).
constexpr int kEINVAL = -22, kEAGAIN = -11, kEOVERFLOW = -75;

// UMN_NOTIFY_RELEASE's value in umn.h.
constexpr int kEventRelease = 5;

class Model {
 public:
  Model(int notifiers, int ranges);

  // ---- interval notifiers ----
  // umn_interval_notifier_insert. would_block: the call must not be made by a single thread (it would
  // wait for invalidations started before the address space had subscriptions); nothing changes then.
  int insert(int n, uint64_t start, uint64_t length, OpsKind ops, bool* would_block);
  // umn_interval_notifier_remove. Return: true when the call waits for the running epoch to end (the
  // removal completes at that epoch's last range end, reported by range_end's woken list).
  bool remove(int n);
  // umn_interval_read_begin: the value it returns, and whether it would wait first.
  unsigned long read_begin(int n, bool* would_block);
  bool read_retry(int n, unsigned long seq);  // also umn_interval_check_retry, single-threaded

  // ---- invalidations ----
  // umn_notifier_invalidate_range_start[_nonblock] on range slot r. Appends the callbacks to *calls.
  int range_start(int r, uint64_t start, uint64_t end, int event, bool blockable, const Decide& decide,
                  std::vector<Call>* calls);
  // umn_notifier_invalidate_range_end on range slot r. Appends the removers it wakes to *woken.
  void range_end(int r, std::vector<int>* woken);
  // umn_notifier_release / umn_mm_destroy. would_block: as for insert, or an insert is still deferred
  // (release waits for the epoch that froze the tree, so that the notifier gets its RELEASE).
  void release(const Decide& decide, std::vector<Call>* calls, std::vector<int>* woken, bool* would_block);
  void destroy(const Decide& decide, std::vector<Call>* calls, std::vector<int>* woken, bool* would_block);

  // ---- observation ----
  NotifierState state(int n) const;
  unsigned long notifier_seq(int n) const;
  unsigned long seq() const;
  unsigned long active() const;
  bool has_subscriptions() const;
  bool mm_alive() const;  // false once the last reference (creator, inserted notifiers) is gone
  bool range_open(int r) const;
  int open_ranges() const;
  // Diagnostics reported since the last call ("call: kind"), in order; clears the list.
  std::vector<std::string> take_diagnostics();

 private:
  struct Notifier {
    NotifierState state = NotifierState::kNever;
    uint64_t start = 0, last = 0;
    OpsKind ops = OpsKind::kInvalidate;
    unsigned long seq = 0;
  };
  struct Range {
    bool bare = false;           // started before subscriptions existed
    bool itree_started = false;  // counted in active_
  };

  void diag(const char* call, const char* kind);
  int invalidate_locked(uint64_t start, uint64_t last, int event, bool blockable, uint64_t end,
                        const Decide& decide, std::vector<Call>* calls);
  void end_locked(std::vector<int>* woken);
  void release_locked(const Decide& decide, std::vector<Call>* calls, std::vector<int>* woken);
  bool release_would_block_locked() const;

  mutable std::mutex lock_;
  std::vector<Notifier> notifiers_;
  std::vector<Range> ranges_;
  std::vector<int> tree_;      // notifiers in the tree, in the order they were linked
  std::vector<int> deferred_;  // pending inserts and removes, pushed at the back (applied LIFO)
  std::vector<int> waiting_removers_;
  bool has_subs_ = false;
  bool released_ = false;
  bool destroyed_ = false;
  unsigned long seq_ = 2;
  unsigned long active_ = 0;
  long bare_ranges_ = 0;
  long refs_ = 1;
  std::vector<std::string> diags_;
};

const char* to_string(NotifierState state);

}  // namespace umn_model
