#!/bin/sh
# extract.sh LINUX_TREE OUT - the notifier parts of three Linux 6.1 drivers, unedited (each function or
# struct copied from its first line to its closing brace), renamed by ../rename.sed, each preceded by the
# shims and followed by its adapter: OUT/real_hmm.c, OUT/real_odp.c, OUT/real_gru.c. Run by run.sh.
set -eu
src=$1
out=$2
rename=$(cd "$(dirname "$0")/.." && pwd)/rename.sed
x() { awk -v re="$2" 'f == 0 && $0 ~ re { f = 1 } f == 1 { print } f == 1 && /^}/ { exit }' "$src/$1"; }
mkdir -p "$out"
{
  echo '#include "vshim.h"'
  echo 'struct dmirror;'
  echo 'static int dmirror_do_fault(struct dmirror *dmirror, struct hmm_range *range);'
  echo 'static void dmirror_do_update(struct dmirror *dmirror, unsigned long start, unsigned long end);'
  x lib/test_hmm.c '^struct dmirror {'
  x lib/test_hmm.c '^static bool dmirror_interval_invalidate'
  x lib/test_hmm.c '^static const struct mmu_interval_notifier_ops dmirror_min_ops = {'
  x lib/test_hmm.c '^static int dmirror_range_fault'
  x lib/test_hmm.c '^static int dmirror_fault'
  echo '#include "adapt_hmm.c"'
} | sed -f "$rename" >"$out/real_hmm.c"
{
  echo '#include "vshim.h"'
  echo '#include "mlx5_stubs.h"'
  x include/rdma/ib_umem_odp.h '^static inline unsigned long ib_umem_start'
  x include/rdma/ib_umem_odp.h '^static inline unsigned long ib_umem_end'
  x drivers/infiniband/hw/mlx5/odp.c '^static bool mlx5_ib_invalidate_range'
  x drivers/infiniband/hw/mlx5/odp.c '^const struct mmu_interval_notifier_ops mlx5_mn_ops = {'
  echo '#include "adapt_odp.c"'
} | sed -f "$rename" >"$out/real_odp.c"
{
  echo '#include "vshim.h"'
  echo '#include "gru_stubs.h"'
  x drivers/misc/sgi-gru/grutables.h '^struct gru_mm_tracker {'
  x drivers/misc/sgi-gru/grutables.h '^struct gru_mm_struct {'
  x drivers/misc/sgi-gru/grutlbpurge.c '^static int gru_invalidate_range_start'
  x drivers/misc/sgi-gru/grutlbpurge.c '^static void gru_invalidate_range_end'
  x drivers/misc/sgi-gru/grutlbpurge.c '^static struct mmu_notifier \*gru_alloc_notifier'
  x drivers/misc/sgi-gru/grutlbpurge.c '^static void gru_free_notifier'
  x drivers/misc/sgi-gru/grutlbpurge.c '^static const struct mmu_notifier_ops gru_mmuops = {'
  x drivers/misc/sgi-gru/grutlbpurge.c '^struct gru_mm_struct \*gru_register_mmu_notifier'
  x drivers/misc/sgi-gru/grutlbpurge.c '^void gru_drop_mmu_notifier'
  echo '#include "adapt_gru.c"'
} | sed -f "$rename" >"$out/real_gru.c"
