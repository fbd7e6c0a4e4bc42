/* The port test's <linux/mmu_notifier.h> after the rename: umn's API with the kernel names. */
#include <umn/kcompat.h>
#include <umn/kernel_shim.h>
