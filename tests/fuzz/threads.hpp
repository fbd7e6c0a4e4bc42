// threads.hpp - the fuzzer's multi-threaded mode: classic register / unregister / get / put, walks (range
// start/end, young queries) and teardown on real threads, with a seeded random delay injected before
// every read-side lock (tests/support/rcu_delay.hpp), checked against the classic contract (umn.h)
// instead of the single-threaded model. The schedule is not replayable; the seed fixes each round's plan
// and the delays' pseudo-random sequence, so a failure names its round and seed.
//
// One round: an address space with three plain registrations and one get/put key; thread U unregisters
// the plain ones in a random order with random pauses; thread G gets and puts the key (alloc_notifier
// runs then) a random number of times; thread W walks (blockable ranges, clear_young, test_young); the
// main thread tears the address space down (umn_notifier_release) after a random pause. Checked:
//   C1 when teardown returns, every plain notifier's ->release has returned, and every ->release begun
//      on a get notifier has returned (umn.h: "when any release returns, every ... ->release has run");
//   C2 ->release runs exactly once per plain registration, at most once per get notifier;
//   C3 no callback after a notifier's unregister returned or after its free_notifier;
//   C4 every notifier alloc_notifier made is freed after umn_notifier_synchronize.
// The ->release "done" marks are plain bools written by the callback and read by the main thread after
// teardown, so that under TSan a missing happens-before edge (a weakened acquire or release in the list
// or the teardown) is reported even when the interleaving happened to be benign.
//
// Context: the main thread of umn_fuzz_replay; aborts with the round and seed on the first violation.
#pragma once

#include <cstdint>

namespace umn_fuzz {

// Runs `rounds` rounds from `seed`, with up to `jitter_us` microseconds of injected delay. Return: the
// number of walker callbacks seen (a round that saw none tested little).
uint64_t run_threads(uint64_t seed, unsigned rounds, unsigned jitter_us);

}  // namespace umn_fuzz
