// model.hpp - an executable reference model of umn's interval-notifier semantics.
//
// What it is: the behaviour of umn's C API (umn.h) for interval notifiers and for classic notifiers
// (register / unregister, get / put / synchronize, their callbacks), written as plainly as possible
// so that it can be read and believed: one lock held by every public method, std::vector lists, a linear
// scan instead of a tree, no lock-free code. It answers, for a single-threaded driver, what umn must do:
// which callbacks run in which order with which cur_seq, what each call returns, which diagnostics are
// reported, and which calls would block (so that a single-threaded driver never calls those).
//
// Its sequence numbers are defined exactly as the kernel's (docs/semantics.md 2.1-2.9):
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

// Errno values as umn returns them (negated).
constexpr int kEINVAL = -22, kEAGAIN = -11, kEOVERFLOW = -75, kENOMEM = -12;

// What one first-pass callback does (chosen by the driver, identical for umn and the model).
struct Decision {
  bool ok = true;       // its return value
  bool record = false;  // two-pass: hands out a finish record (ignored for kInvalidate)
  bool set_seq = true;  // calls umn_interval_set_seq(sub, cur_seq)
};
// Called once per first-pass callback (and classic invalidate_range_start / young callback), in call
// order, with the notifier's slot (classic: its id).
using Decide = std::function<Decision(int notifier)>;

// A classic callback's answer, from the same Decision: invalidate_range_start returns 0 when ok, else
// -EAGAIN; a young callback answers 1 when `record` is set, else 0.
inline int classic_start_return(const Decision& d) { return d.ok ? 0 : kEAGAIN; }
inline int young_return(const Decision& d) { return d.record ? 1 : 0; }

// The callbacks a classic notifier's ops table has (umn_notifier_ops), as a set of bits. kNullOps: no
// table at all (ops == NULL).
enum ClassicOp : unsigned {
  kHasRelease = 1u << 0,
  kHasStart = 1u << 1,
  kHasEnd = 1u << 2,
  kHasClearFlushYoung = 1u << 3,
  kHasClearYoung = 1u << 4,
  kHasTestYoung = 1u << 5,
  kHasArch = 1u << 6,
  kHasAlloc = 1u << 7,
  kHasFree = 1u << 8,
  kNullOps = 1u << 9,
};
using ClassicOps = unsigned;

// The young queries and arch_invalidate_secondary_tlbs.
enum class Query : uint8_t { kClearFlushYoung, kClearYoung, kTestYoung, kArch };

// One callback invocation.
struct Call {
  enum Kind : uint8_t {
    kInvalidate,
    kStart,
    kFinish,  // interval notifiers
    kClassicStart,
    kClassicEnd,
    kRelease,
    kClearFlushYoung,
    kClearYoung,
    kTestYoung,
    kArch,   // classic
    kAlloc,  // alloc_notifier of get (notifier = the key)
  } kind;
  int notifier;                 // interval: the slot; classic: the classic id (see Model)
  uint64_t start = 0, end = 0;  // the range (not for kFinish); kTestYoung: start = the address
  int event = 0;
  bool blockable = false;
  unsigned long cur_seq = 0;
  bool record = false;  // kStart: a record was handed out and accepted (ok)
};

// UMN_NOTIFY_RELEASE's value in umn.h.
constexpr int kEventRelease = 5;

// Classic notifiers are named by a classic id: ids 0 .. classic_slots-1 are caller-owned notifiers for
// register / unregister; each alloc_notifier call of get creates the next id (classic_slots, +1, ...),
// whether or not its registration then succeeds. A get key is a small integer standing for one ops
// pointer; its callbacks are fixed per key by the caller of get().
class Model {
 public:
  Model(int notifiers, int ranges, int classic_slots = 0);

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
  // umn_notifier_invalidate_range_start[_nonblock] on range slot r: the interval notifiers, then the
  // classic ones. Appends the callbacks to *calls.
  int range_start(int r, uint64_t start, uint64_t end, int event, bool blockable, const Decide& decide,
                  std::vector<Call>* calls);
  // umn_notifier_invalidate_range_end on range slot r. Appends the classic ends to *calls and the
  // removers it wakes to *woken.
  void range_end(int r, std::vector<Call>* calls, std::vector<int>* woken);
  // umn_notifier_release / umn_mm_destroy. would_block: as for insert, or an insert is still deferred
  // (release waits for the epoch that froze the tree, so that the notifier gets its RELEASE).
  void release(const Decide& decide, std::vector<Call>* calls, std::vector<int>* woken, bool* would_block);
  void destroy(const Decide& decide, std::vector<Call>* calls, std::vector<int>* woken, bool* would_block);

  // ---- classic notifiers ----
  // umn_notifier_register of slot c with ops (ignored when c is registered: the caller does not change
  // a live notifier's ops, and registering it again is diagnosed). would_block: it would wait for ranges in flight (or,
  // before the address space has subscriptions, for bare ranges); nothing changes then.
  int classic_register(int c, ClassicOps ops, bool* would_block);
  // umn_notifier_unregister(c, mm); also for an id from get (misuse). Appends ->release if it calls it.
  void classic_unregister(int id, std::vector<Call>* calls);
  // umn_notifier_get(key's ops, mm). alloc_fails: what alloc_notifier does if called. Return: the classic
  // id, or a negative errno (get returns it as an error pointer). Appends kAlloc when alloc_notifier is called.
  int get(int key, ClassicOps ops, bool alloc_fails, std::vector<Call>* calls, bool* would_block);
  // umn_notifier_put(id). A last put queues the free (see synchronize).
  void put(int id);
  // umn_notifier_synchronize: every queued free_notifier runs. Appends the freed ids in queue order.
  void synchronize(std::vector<int>* freed);
  // The young queries and arch_invalidate_secondary_tlbs. Return: what the call returns (0 for arch).
  int query(Query query, uint64_t start, uint64_t end, const Decide& decide, std::vector<Call>* calls);

  // ---- observation ----
  NotifierState state(int n) const;
  unsigned long notifier_seq(int n) const;
  unsigned long seq() const;
  unsigned long active() const;
  bool has_subscriptions() const;
  // false once the last reference (creator, inserted notifiers, classic registrations, queued frees) is gone
  bool mm_alive() const;
  // true when only queued frees keep the address space alive (umn frees it on liburcu's thread)
  bool mm_held_only_by_frees() const;
  // Classic observation: linked ids newest first; users of an id; registrations not yet ended.
  std::vector<int> classic_list() const;
  unsigned classic_users(int id) const;
  bool classic_registered(int id) const;  // registered and not yet unregistered / last put
  unsigned long classic_registrations() const;
  // Ids whose free_notifier has run (synchronously, or through synchronize) or is queued.
  bool free_allowed(int id) const;
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
    bool bare = false;             // started before subscriptions existed
    bool itree_started = false;    // counted in active_
    bool classic_started = false;  // its end calls the classic ends
    uint64_t start = 0, end = 0;   // as passed to the callbacks
    int event = 0;
    bool blockable = false;
  };
  enum class ClassicState { kNever, kRegistered, kUnregistered, kFreeing, kFreed };
  struct Classic {
    ClassicState state = ClassicState::kNever;
    ClassicOps ops = 0;
    int key = -1;          // get key; -1 for register slots
    bool has_mm = false;   // sub->mm set (by a successful registration)
    bool claimed = false;  // ->release claimed in this registration
    unsigned users = 0;
  };

  void diag(const char* call, const char* kind);
  int invalidate_locked(uint64_t start, uint64_t last, int event, bool blockable, uint64_t end, const Decide& decide,
                        std::vector<Call>* calls);
  void end_locked(std::vector<int>* woken);
  void release_locked(const Decide& decide, std::vector<Call>* calls, std::vector<int>* woken);
  bool release_would_block_locked() const;
  bool classic_start_locked(const Range& range, const Decide& decide, std::vector<Call>* calls);
  void classic_ends_locked(const Range& range, std::vector<Call>* calls);
  void classic_link_locked(int id);
  void classic_unlink_locked(int id);

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
  std::vector<Classic> classics_;
  std::vector<int> classic_list_;  // linked classic ids, newest first
  unsigned long registrations_ = 0;
  std::vector<int> pending_free_;  // last put done, free_notifier queued
};

const char* to_string(NotifierState state);

}  // namespace umn_model
