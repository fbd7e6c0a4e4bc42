// file_events.hpp - classification of the calls that take a file's pages away from every mapping of
// the file (docs/process.md, "Events"): truncation (ftruncate, truncate, creat and openat with O_TRUNC)
// and fallocate's PUNCH_HOLE, ZERO_RANGE, WRITE_ZEROES, COLLAPSE_RANGE and INSERT_RANGE.
//
// The kernel zaps the file's pages in every mapping of it (mm/truncate.c, unmap_mapping_range; shared
// mappings, and the pages of private mappings that still map the file -- for truncation, collapse and
// insert their copied-on-write pages too), with no call on the address space. So the call is
// classified by the file it names: fstat of the descriptor (or fstatat of the path) gives its device,
// inode, size and block size; this process's mappings of that file are found in /proc/self/maps, and
// the part of each mapping that maps the zapped file range is announced as CLEAR before the call:
//   truncation to length (only when the file is longer): the file offsets from page_up(length) on
//     (truncate_pagecache: the page holding the new end keeps its mapping, its tail is zeroed);
//   an open with O_TRUNC of a non-empty regular file (not O_CREAT | O_EXCL): the whole file;
//   PUNCH_HOLE, ZERO_RANGE, WRITE_ZEROES: [offset, offset + len) rounded out to the file's block size
//     (st_blksize, at least a page): the pages wholly inside are zapped everywhere, and xfs also zaps
//     the partial blocks at both ends; elsewhere the partial pages are an over-approximation;
//   COLLAPSE_RANGE, INSERT_RANGE: from offset (rounded down likewise) to the end of the file, which
//     shifts (truncate_pagecache from offset).
// madvise's REMOVE and COLLAPSE act on the files behind the advised mappings in the same way (below).
// Events: at most kMaxEvents (events.hpp); further ranges widen the last event over them (a spurious
// invalidation of what lies in between, never a missing one).
//
// Locking: none. Lifetime: nothing is kept. Context: async-signal-safe (raw fstat/fstatfs, and
//   /proc/self/maps read with raw system calls through sys::MapsReader).
// Memory ordering: none.
#pragma once

#include <cstdint>

#include "umn/process.h"

namespace umn::detail {

// The events of system call nr (ftruncate, truncate, fallocate, openat or creat) with arguments a (as
// the kernel gets them), made by the call whose return address is caller. Return: how many (0 to
// kMaxEvents) were written to events[].
unsigned file_events(long nr, const long* a, umn_process_event* events, uintptr_t caller) noexcept;

// madvise(addr, length, advice), advice MADV_REMOVE or MADV_COLLAPSE: the advised range (CLEAR), and the
// other mappings here of the file ranges that the advised mappings map, one file range per mapping
// (several files alike). REMOVE punches a hole in the file behind each shared file mapping of the range,
// up to the first mapping that is not one (madvise_remove, vfs_fallocate; the kernel fails there);
// COLLAPSE replaces the pages of the file behind any file mapping, shared or private (read-only file
// THP), by a huge page (collapse_file), in every mapping of them. Past 8 file ranges, one joins another
// of its file, or every file mapping here is announced whole. Return: how many events (1 to kMaxEvents;
// 0 for an invalid range).
unsigned madvise_file_events(uint64_t addr, uint64_t length, int advice, umn_process_event* events,
                             uintptr_t caller) noexcept;

}  // namespace umn::detail
