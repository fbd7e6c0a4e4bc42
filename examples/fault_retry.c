/*
 * fault_retry.c - a driver's fault / invalidate loop with the C API (the README's C example).
 *
 * A "device" mirrors the pages of a buffer in its own page table. Its fault path maps pages through
 * umn_interval_read_begin / umn_interval_read_retry; its invalidate callback zaps them under the same
 * lock. The main thread plays the memory-management side and invalidates half of the buffer.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <umn/umn.h>

#define PAGES 8
#define PAGE 4096ul

struct device {
  struct umn_interval_notifier notifier; /* first member: the callback casts back */
  pthread_mutex_t lock;                  /* the "user lock" */
  uint64_t base;
  int mapped[PAGES]; /* the device page table: 1 = translation installed */
  unsigned invalidations;
};

static bool device_invalidate(struct umn_interval_notifier* sub, const struct umn_notifier_range* range,
                              unsigned long cur_seq) {
  struct device* dev = (struct device*)sub;
  if (!umn_notifier_range_blockable(range)) return false; /* we would sleep on the lock */
  pthread_mutex_lock(&dev->lock);
  umn_interval_set_seq(sub, cur_seq);
  for (int i = 0; i < PAGES; i++) {
    uint64_t page = dev->base + i * PAGE;
    if (page < range->end && page + PAGE > range->start)
      dev->mapped[i] = 0; /* zap the translation; a real device also flushes its TLB here */
  }
  dev->invalidations++;
  pthread_mutex_unlock(&dev->lock);
  return true;
}

static const struct umn_interval_notifier_ops device_ops = {.invalidate = device_invalidate};

/* The device fault path: map every page, retrying if an invalidation raced with us. */
static int device_fault(struct device* dev) {
  for (int attempt = 0; attempt < 100; attempt++) {
    unsigned long seq = umn_interval_read_begin(&dev->notifier);
    /* ... here a real driver pins the pages and reads their addresses, with no lock held ... */
    pthread_mutex_lock(&dev->lock);
    if (umn_interval_read_retry(&dev->notifier, seq)) {
      pthread_mutex_unlock(&dev->lock);
      continue; /* an invalidation ran meanwhile: what we read may be stale */
    }
    for (int i = 0; i < PAGES; i++) dev->mapped[i] = 1;
    pthread_mutex_unlock(&dev->lock);
    return 0;
  }
  return -1;
}

static int count_mapped(struct device* dev) {
  int n = 0;
  pthread_mutex_lock(&dev->lock);
  for (int i = 0; i < PAGES; i++) n += dev->mapped[i];
  pthread_mutex_unlock(&dev->lock);
  return n;
}

int main(void) {
  struct umn_mm* mm = umn_mm_create();
  struct device dev;
  memset(&dev, 0, sizeof(dev));
  pthread_mutex_init(&dev.lock, NULL);
  dev.base = 0x100000;
  int err = umn_interval_notifier_insert(&dev.notifier, mm, dev.base, PAGES * PAGE, &device_ops);
  if (err) {
    fprintf(stderr, "insert: %s\n", strerror(-err));
    return 1;
  }
  if (device_fault(&dev) != 0) return 1;
  printf("after fault:        %d of %d pages mapped on the device\n", count_mapped(&dev), PAGES);

  struct umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, dev.base, dev.base + PAGES / 2 * PAGE);
  umn_notifier_invalidate_range_start(&range); /* device translations gone before this returns */
  printf("during invalidation: %d of %d pages mapped\n", count_mapped(&dev), PAGES);
  umn_notifier_invalidate_range_end(&range);

  if (device_fault(&dev) != 0) return 1;
  printf("after re-fault:     %d of %d pages mapped, %u invalidation(s) seen\n", count_mapped(&dev), PAGES,
         dev.invalidations);

  umn_interval_notifier_remove(&dev.notifier);
  umn_mm_destroy(mm);
  pthread_mutex_destroy(&dev.lock);
  return count_mapped(&dev) == PAGES && dev.invalidations == 1 ? 0 : 1;
}
