/*
 * uring_copy.c - copy a file through io_uring fixed buffers while the buffers are malloc'd, realloc'd
 * and freed all the time: umn_uring_buffers re-registers whatever memory is behind an address before
 * each use, so no write ever carries the pages of a freed buffer.
 *
 *   example_uring_copy SRC DST    copies SRC to DST
 *   example_uring_copy            copies a generated 8 MiB temporary file and checks the copy
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "umn/process.h"
#include "umn/uring_buffers.h"

/* One fixed-buffer I/O (read or write) of len bytes at offset; returns the completion's result. */
static int fixed_io(struct io_uring* ring, int write, int fd, void* buf, unsigned len, off_t offset, unsigned index) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(ring);
  struct io_uring_cqe* cqe;
  int res;

  if (write)
    io_uring_prep_write_fixed(sqe, fd, buf, len, offset, (int)index);
  else
    io_uring_prep_read_fixed(sqe, fd, buf, len, offset, (int)index);
  io_uring_submit(ring);
  if (io_uring_wait_cqe(ring, &cqe) != 0) return -EIO;
  res = cqe->res;
  io_uring_cqe_seen(ring, cqe);
  return res;
}

/* Copies in chunks of varying size, each through a freshly allocated (or reallocated) buffer. */
static int copy(struct io_uring* ring, struct umn_uring_buffers* bufs, int in, int out) {
  static const unsigned sizes[] = {64 << 10, 256 << 10, 4 << 10, 1 << 20, 192 << 10};
  char* buf = NULL;
  off_t offset = 0;

  for (unsigned i = 0;; ++i) {
    unsigned len = sizes[i % 5];
    struct umn_uring_buffer fixed;
    char* bigger = (i % 3 == 0) ? realloc(buf, len) : (free(buf), malloc(len));
    int n, err;

    if (bigger == NULL) return -ENOMEM;
    buf = bigger;
    err = umn_uring_buffers_get(bufs, buf, len, &fixed);
    if (err != 0) return err;
    n = fixed_io(ring, 0, in, buf, len, offset, fixed.index);
    if (n > 0) n = fixed_io(ring, 1, out, buf, (unsigned)n, offset, fixed.index);
    umn_uring_buffers_put(bufs, &fixed);
    if (n <= 0) {
      free(buf);
      return n;
    }
    offset += n;
  }
}

/* Writes a generated file of `size` bytes to fd (plain writes). */
static int generate(int fd, size_t size) {
  char block[4096];
  for (size_t done = 0; done < size; done += sizeof(block)) {
    for (size_t i = 0; i < sizeof(block); ++i) block[i] = (char)((done + i) * 2654435761u >> 24);
    if (pwrite(fd, block, sizeof(block), (off_t)done) != (ssize_t)sizeof(block)) return -errno;
  }
  return 0;
}

/* 0 if both files have the same contents. */
static int compare(int a, int b) {
  char x[4096], y[4096];
  for (off_t offset = 0;; offset += (off_t)sizeof(x)) {
    ssize_t n = pread(a, x, sizeof(x), offset), m = pread(b, y, sizeof(y), offset);
    if (n != m || (n > 0 && memcmp(x, y, (size_t)n) != 0)) return -1;
    if (n <= 0) return 0;
  }
}

int main(int argc, char** argv) {
  struct io_uring ring;
  struct umn_uring_buffers* bufs;
  struct umn_regcache_stats stats;
  int self_test = argc < 3, in, out, err;

  if (umn_process_hooks_install() != 0) {
    fprintf(stderr, "uring_copy: the process hooks are not available\n");
    return 1;
  }
  in = self_test ? open("/tmp", O_TMPFILE | O_RDWR, 0600) : open(argv[1], O_RDONLY);
  out = self_test ? open("/tmp", O_TMPFILE | O_RDWR, 0600) : open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || out < 0 || (self_test && generate(in, 8u << 20) != 0)) {
    perror("uring_copy: open");
    return 1;
  }
  if ((err = io_uring_queue_init(8, &ring, 0)) != 0 || (err = umn_uring_buffers_create(&ring, 8, NULL, &bufs)) != 0) {
    fprintf(stderr, "uring_copy: io_uring: %s\n", strerror(-err));
    return 1;
  }
  err = copy(&ring, bufs, in, out);
  umn_regcache_stats(umn_uring_buffers_cache(bufs), &stats);
  printf("uring_copy: %s; registrations %llu, hits %llu, invalidations %llu, evictions %llu\n",
         err == 0 ? "copied" : strerror(-err), (unsigned long long)stats.misses, (unsigned long long)stats.hits,
         (unsigned long long)stats.invalidations, (unsigned long long)stats.evictions);
  umn_uring_buffers_destroy(bufs);
  io_uring_queue_exit(&ring);
  if (err == 0 && self_test && compare(in, out) != 0) {
    fprintf(stderr, "uring_copy: the copy differs from the source\n");
    err = -1;
  }
  return err == 0 ? 0 : 1;
}
