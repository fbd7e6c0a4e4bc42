/* consumer.c - a plain C11 user of the installed umn: one notifier, one invalidation. */
#include <stdio.h>
#include <umn/umn.h>

static int calls;

static bool on_invalidate(struct umn_interval_notifier* sub, const struct umn_notifier_range* range,
                          unsigned long cur_seq) {
  (void)range;
  umn_interval_set_seq(sub, cur_seq);
  calls++;
  return true;
}

int main(void) {
  static const struct umn_interval_notifier_ops ops = {.invalidate = on_invalidate};
  struct umn_interval_notifier notifier = {0};
  struct umn_mm* mm = umn_mm_create();
  if (!mm || umn_interval_notifier_insert(&notifier, mm, 0x1000, 0x1000, &ops) != 0) return 1;
  unsigned long seq = umn_interval_read_begin(&notifier);
  struct umn_notifier_range range;
  umn_notifier_range_init(&range, UMN_NOTIFY_UNMAP, 0, mm, 0x1800, 0x1900);
  umn_notifier_invalidate_range_start(&range);
  umn_notifier_invalidate_range_end(&range);
  int ok = calls == 1 && umn_interval_read_retry(&notifier, seq);
  umn_interval_notifier_remove(&notifier);
  umn_mm_destroy(mm);
  printf("C consumer: %s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
