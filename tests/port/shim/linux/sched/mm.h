/* The port test's <linux/sched/mm.h>: the primitives shim. */
#include <umn/kcompat.h>
#include <umn/kernel_shim.h>
