// harness.hpp - differential execution of umn against the reference model (tests/model/model.hpp).
//
// An input is a byte string decoded into a sequence of API operations on one address space with a few
// interval notifiers and range slots: insert, remove, invalidate_range_start (blockable and
// non-blocking, nested and overlapping ranges kept open), invalidate_range_end, read_begin, read_retry,
// check_retry, release and destroy; and classic notifiers: register, unregister, get (alloc_notifier
// succeeding or not), put, the young queries, arch_invalidate_secondary_tlbs and synchronize. Every first-pass callback
// does what the input says (return true or false, hand out a two-pass finish record or not, call set_seq or not). The
// same operations run on umn and on the model; after every operation the harness compares the callback sequence (kind,
// notifier, range, event, blockable, record; classic: start/end, release, young, alloc), every return value (get: which
// notifier, or errno), every diagnostic (by call name), each notifier's state, the count of active ranges, the interval
// tree's shape, the classic list (order, users, registrations), and when free_notifier runs (never before the last put;
// all queued ones after synchronize). Sequence numbers are compared as relations: a bijection between umn's values and
// the model's, with equal parity.
//
// Threads: the operations are a single-threaded interleaving. The one exception is remove(), which runs
// on a helper thread so that a remove that must wait for an invalidation epoch can be observed waiting
// (its notifier turns pending-remove) and joined when the model says the epoch ends. read_begin, insert,
// release and destroy are never called when the model says they would block.
//
// On the first divergence the harness prints the operation trace and the difference, then aborts (the
// fuzzer records a crash; the replay test fails).
#pragma once

#include <cstddef>
#include <cstdint>

namespace umn_fuzz {

struct Stats {
  uint64_t inputs = 0;
  uint64_t ops = 0;          // operations executed on both umn and the model
  uint64_t classic_ops = 0;  // of which classic: register, unregister, get, put, young, synchronize
  uint64_t callbacks = 0;    // callbacks compared
  uint64_t skipped = 0;      // operations skipped because they would block a single thread
};

// Runs one input on umn and on the model. Aborts with a report on divergence.
void run_input(const uint8_t* data, size_t size);

// Waits for the free_notifier calls still queued by finished inputs and checks that each ran. Call it
// once at the end (run_input calls it now and then).
void reap();

// Totals since the process started.
const Stats& stats();

}  // namespace umn_fuzz
