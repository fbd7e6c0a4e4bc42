#!/usr/bin/env python3
"""make_seeds.py - writes the hand-made seed inputs of tests/fuzz/corpus (the byte format of harness.cc).

Run from anywhere: python3 tests/fuzz/make_seeds.py. Each seed is a named scenario from
docs/semantics.md; crash inputs found by the fuzzer are added next to them as files (not here).
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# Decisions of first-pass callbacks: ok / fail, hand a finish record, skip set_seq.
OK, REC, FAIL, FAIL_REC, NOSEQ = 0x00, 0x04, 0x03, 0x07, 0x18
# Ops kinds (decode_ops): 0 invalidate, 1 two-pass, 2 both, 6 start without finish, 7 none.
INV, TWO, BOTH, NOFINISH, NONE = 0, 1, 2, 6, 7


def page(p, mode=0):  # start byte: page p at offset 0 / +1 / +0xfff / top of space
    return (mode << 6) | p


def pages(n):  # length byte: n whole pages (1..16)
    return n - 1


def insert(n, start, length, ops=INV): return [0, n, start, length, ops]
def remove(n): return [2, n]
def decisions(ds): return [len(ds)] + list(ds)
def start(r, s, length, nonblock=False, event=0, ds=()):
    return [3, r, s, length, (event << 1) | int(nonblock)] + decisions(ds)
def start_all(r, nonblock=False, event=0, ds=()): return [6, r, (event << 1) | int(nonblock)] + decisions(ds)
def end(r): return [7, r]
def read_begin(n): return [9, n]
def read_retry(n): return [11, n]
def check_retry(n): return [13, n]
def release(ds=()): return [14] + decisions(ds)
def destroy(ds=()): return [15, 0] + decisions(ds)

# Byte 0: bit 0 = destroy before removing at cleanup; bit 1 = no initial notifier (n0 on pages 2-4).
DEFAULT, DESTROY_FIRST, BARE = 0, 1, 2

# Classic operations (op bytes 16..23; harness.cc run_classic_op). Slots c0..c2 are registered by the
# input; gotten notifiers are numbered 0, 1, ... in alloc_notifier order (`allocated` = how many so far).
# Register variants / get keys: 0 full, 1 start-only (may fail), 2 end-only, 3 arch, 4 arch+start
# (rejected), 5 NULL ops (register) / no free_notifier (get).
FULL, START_ONLY, END_ONLY, ARCH, ARCH_START, NULL_OPS = range(6)
NO_FREE = NULL_OPS
SLOTS = 3


def arg(pred):  # the first argument byte the harness decodes as wanted
    return next(a for a in range(256) if pred(a))


def register(c, variant=FULL): return [16, arg(lambda a: a % SLOTS == c and (a >> 2) % 6 == variant)]
def unregister(c): return [17, arg(lambda a: not (a & 1 and a & 0x80) and (a >> 1) % SLOTS == c)]
def unregister_got(k, allocated): return [17, arg(lambda a: a & 1 and a & 0x80 and (a >> 1) % allocated == k)]
def get(key, alloc_fails=False): return [18, arg(lambda a: a % 6 == key and ((a & 0xc0) == 0xc0) == alloc_fails)]
def put(k, allocated): return [19, arg(lambda a: (a & 1) == 0 and (a >> 1) % allocated == k)]
def put_slot(c): return [19, arg(lambda a: a & 1 and not a & 0x80 and (a >> 1) % SLOTS == c)]
CLEAR_FLUSH_YOUNG, CLEAR_YOUNG, TEST_YOUNG, ARCH_TLBS = range(4)
def query(q, s, length, ds=()): return [20, q, s, length] + decisions(ds)
def synchronize(): return [21, 0]

SEEDS = {
    # 2.6 worked example: retry after a hit, read_begin waits for the epoch, a nested range extends it.
    "worked_example": [DEFAULT] + insert(1, page(8), pages(2)) + read_begin(1) + start(0, page(8), pages(1))
    + read_retry(1) + read_begin(1) + start(1, page(12), pages(1)) + end(0) + read_begin(1) + end(1)
    + read_begin(1) + read_retry(1) + check_retry(1),
    # 2.8: insert while the tree is frozen is deferred; a range in the same epoch does not call it.
    "deferred_insert": [DEFAULT] + start(0, page(2), pages(1)) + insert(1, page(2), pages(4))
    + read_begin(1) + start(1, page(3), pages(1)) + end(0) + end(1) + read_begin(1) + read_retry(1),
    # 2.8: insert while partially excluded makes the seq odd and the reader wait.
    "partially_excluded_insert": [DEFAULT] + start(0, page(12), pages(1)) + insert(1, page(12), pages(1))
    + read_begin(1) + end(0) + read_begin(1) + read_retry(1),
    # 2.9: remove waits for the epoch; ranges joining the epoch still call the notifier.
    "remove_waits": [DEFAULT] + start(0, page(2), pages(1)) + remove(0) + start(1, page(3), pages(1))
    + end(0) + remove(0) + end(1) + insert(0, page(2), pages(1)),
    # 2.9: removing a notifier whose insert is still deferred cancels it without waiting.
    "remove_pending_insert": [DEFAULT] + start(0, page(2), pages(1)) + insert(1, page(3), pages(1))
    + remove(1) + end(0) + remove(1),
    # 2.5 / I-11: two passes in first-pass order, records and NULL, sync fallback.
    "two_pass": [DEFAULT] + insert(1, page(2), pages(2), TWO) + insert(2, page(1), pages(4), BOTH)
    + insert(3, page(3), pages(1), TWO) + start(0, page(0), pages(8), ds=[OK, REC, OK, REC]) + end(0)
    + start(1, page(0), pages(8), nonblock=True, ds=[REC, REC, REC, REC]) + end(1),
    # I-12: non-blocking failure at position k: earlier finishes run, later notifiers are not called.
    "nonblock_fail_at_k": [DEFAULT] + insert(1, page(2), pages(2), TWO) + insert(2, page(3), pages(2), TWO)
    + insert(3, page(4), pages(2), INV) + read_begin(3)
    + start(0, page(0), pages(8), nonblock=True, ds=[REC, REC, FAIL_REC, REC]) + read_retry(3)
    + end(0) + read_begin(1) + start(1, page(0), pages(8), nonblock=True, ds=[FAIL]) + end(1),
    # 2.5: a blockable failure warns and continues (and drops a record handed out with false).
    "blockable_fail_warns": [DEFAULT] + insert(1, page(2), pages(2), TWO)
    + start(0, page(2), pages(1), ds=[FAIL, FAIL_REC]) + end(0),
    # 2.10: release with ranges open; inserts fail afterwards; notifiers still need remove.
    "release_with_open_ranges": [DEFAULT] + insert(1, page(6), pages(2), TWO) + start(0, page(2), pages(1))
    + release(ds=[OK, FAIL_REC]) + insert(2, page(1), pages(1)) + end(0) + release() + read_begin(1),
    # I-16: release waits for a deferred insert (skipped here: it would block), then reaches it.
    "release_after_deferred_insert": [DEFAULT] + start(0, page(2), pages(1)) + insert(1, page(2), pages(1))
    + release() + destroy() + end(0) + release(ds=[OK, REC]) + read_begin(1),
    # umn_mm_destroy with live notifiers: a diagnostic, RELEASE, and the memory lives until the removes.
    "destroy_with_live_notifiers": [DESTROY_FIRST] + insert(1, page(6), pages(2), BOTH)
    + start(0, page(2), pages(1)) + remove(0) + end(0) + destroy() + insert(2, page(1), pages(1)) + destroy()
    + start_all(1) + end(1) + remove(1),
    # Misuse: double insert, bad ops, zero and overflowing lengths, double remove, never inserted.
    "misuse": [DEFAULT] + insert(0, page(1), pages(1)) + insert(1, page(1), pages(1), NOFINISH)
    + insert(1, page(1), pages(1), NONE) + insert(1, page(1), 0x80) + insert(1, page(3, 3), 0xff)
    + insert(1, page(0, 3), 0x81) + remove(1) + remove(2) + insert(2, page(1), pages(1)) + remove(2)
    + remove(2) + start(0, page(4), 0x80) + start(1, page(0, 3), pages(2), nonblock=True) + end(0) + end(1),
    # I-5: equal starts in insertion order; deferred inserts land LIFO.
    "tie_order": [DEFAULT] + insert(1, page(2), pages(1)) + insert(2, page(2), pages(3))
    + start(0, page(2), pages(1)) + insert(3, page(2), pages(1)) + insert(4, page(2), pages(2)) + end(0)
    + start(1, page(2), pages(1)) + end(1),
    # Ranges before the address space had subscriptions ("bare"): insert waits, so it is skipped here.
    "bare_ranges": [BARE] + start(0, page(1), pages(1)) + insert(1, page(1), pages(1)) + release()
    + end(0) + insert(1, page(1), pages(1)) + start(0, page(1), pages(1)) + end(0),
    # A callback that skips set_seq (an event it ignores) leaves read_retry false.
    "skip_set_seq": [DEFAULT] + read_begin(0) + start(0, page(2), pages(1), event=6, ds=[NOSEQ])
    + read_retry(0) + end(0) + read_retry(0),
    # Boundaries: ranges ending at start-1 / starting at last+1 miss; at start / last they hit.
    "boundaries": [DEFAULT] + insert(1, page(8, 1), 0x40) + start(0, page(8), 0x80 | 1) + end(0)
    + start(0, page(8), 0x80 | 2) + end(0) + start(0, page(8, 2), 0x80 | 2) + end(0)
    + start(0, page(9, 1), 0x80 | 1) + end(0) + start(0, page(9, 1), 0x80 | 2) + end(0),
    # Top of the address space: whole-space ranges and notifiers ending at UINT64_MAX.
    "top_of_space": [DEFAULT] + insert(1, page(0, 3), 0x80 | 1) + start_all(0, ds=[REC, OK])
    + start(1, page(1, 3), 0x80 | 2) + end(0) + end(1),
    # Classic (3): newest first; a non-blocking start failure calls every end (the failing one has none)
    # and unwinds the interval half; young answers ORed, test_young stops at the first young one.
    "classic_walks": [DEFAULT] + register(0) + register(1, START_ONLY) + register(2, END_ONLY)
    + start(0, page(2), pages(1), ds=[OK, OK, OK]) + end(0)
    + start(1, page(2), pages(1), nonblock=True, ds=[OK, FAIL, OK]) + read_begin(0)
    + start(2, page(8), pages(1), nonblock=True, ds=[OK, OK]) + end(2)
    + query(CLEAR_FLUSH_YOUNG, page(1), pages(1), ds=[REC]) + query(CLEAR_YOUNG, page(1), pages(1), ds=[OK, REC])
    + query(TEST_YOUNG, page(1), pages(1), ds=[REC, REC]) + query(CLEAR_YOUNG, page(3), 0x80)
    + unregister(2) + register(2, ARCH) + query(ARCH_TLBS, page(1), pages(2)) + query(CLEAR_FLUSH_YOUNG, page(1), pages(1))
    + start(3, page(1), pages(1), ds=[FAIL]) + end(3),
    # Classic misuse: register twice / NULL ops / arch with start; unregister twice / never registered.
    "classic_misuse": [DEFAULT] + register(0) + register(0, END_ONLY) + register(1, NULL_OPS)
    + register(1, ARCH_START) + unregister(1) + unregister(0) + unregister(0) + put_slot(0) + put_slot(1)
    + register(0, START_ONLY) + put_slot(0) + start(0, page(2), pages(1), ds=[FAIL]) + end(0),
    # Registration waits for ranges in flight: skipped while one is open, then made.
    "classic_register_waits": [DEFAULT] + start(0, page(2), pages(1)) + register(0) + get(FULL) + end(0)
    + register(0) + get(FULL) + start(1, page(2), pages(1)) + get(FULL) + put(0, 1) + end(1) + put(0, 1),
    # 4: get returns the one notifier of its key, counts users; alloc_notifier failing; a key whose
    # registration fails (freed at once) and one without free_notifier; put without get; free after the last put.
    "get_put": [DEFAULT] + get(FULL) + get(FULL) + get(START_ONLY) + get(END_ONLY, alloc_fails=True)
    + get(ARCH_START) + get(NO_FREE) + start(0, page(2), pages(1), ds=[OK, OK]) + put(0, 4) + end(0)
    + put(0, 4) + put(0, 4) + synchronize() + put(0, 4) + put(1, 4) + get(FULL) + unregister_got(3, 4)
    + synchronize() + put(3, 4),
    # Teardown: every classic ->release once (newest first); unregister after it calls none; register and
    # get fail; the puts are still needed and the last one frees.
    "classic_release": [DEFAULT] + register(0) + register(1, START_ONLY) + get(FULL) + get(ARCH) + get(FULL)
    + release(ds=[OK]) + unregister(0) + register(2) + get(END_ONLY) + get(FULL) + put(0, 2) + put(1, 2)
    + put(0, 2),
    # umn_mm_destroy with classic registrations left: diagnosed; the address space lives until the last
    # unregister / the free after the last put.
    "destroy_with_classic_left": [DESTROY_FIRST] + register(0) + get(FULL) + get(START_ONLY)
    + destroy() + put(0, 2) + unregister(0) + query(TEST_YOUNG, page(0), 0) + put(1, 2),
}


def main():
    out = os.path.join(HERE, "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        assert all(0 <= b < 256 for b in data), name
        with open(os.path.join(out, "seed_" + name), "wb") as f:
            f.write(bytes(data))
    print(f"wrote {len(SEEDS)} seeds to {out}")


if __name__ == "__main__":
    main()
